"""llm_from_scratch.attention against independent references: torch's scaled_dot_product_attention and
nn.MultiheadAttention, brute-force loops, a hand-worked softmax, and the sinusoidal formula in NumPy."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from llm_from_scratch.attention import (
    LearnedPositionalEmbedding,
    MultiHeadAttention,
    SinusoidalPositionalEncoding,
    causal_mask,
    repeat_kv,
    scaled_dot_product_attention,
    sinusoidal_positional_encoding,
)

ATOL = 1e-5


def _alive(mask: torch.Tensor, shape) -> torch.Tensor:
    """(..., T, 1): True where the query row has at least one key it may attend to."""
    return mask.expand(shape).any(dim=-1, keepdim=True)


# --------------------------------------------------------------------------------------------
# causal_mask
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("T,S", [(1, 1), (4, 4), (1, 5), (3, 7), (0, 3)])
def test_causal_mask_brute_force(T, S):
    m = causal_mask(T, S)
    assert m.dtype == torch.bool and m.shape == (T, S)
    for i in range(T):
        for j in range(S):
            # query i is absolute position (S - T) + i; it may see every key at or before it
            assert bool(m[i, j]) == (j <= (S - T) + i)


def test_causal_mask_square_is_torch_tril_and_default_S():
    assert torch.equal(causal_mask(5), torch.ones(5, 5).tril().bool())


def test_causal_mask_rejects_fewer_keys_than_queries():
    with pytest.raises(ValueError, match="S must be >= T"):
        causal_mask(4, 2)


# --------------------------------------------------------------------------------------------
# scaled_dot_product_attention
# --------------------------------------------------------------------------------------------
def test_hand_worked_example():
    # One query [1], two keys [0] and [ln 3], d = 1 so the scale is 1:
    # scores [0, ln 3] -> softmax [1/4, 3/4] -> out = 1/4 * 10 + 3/4 * 20 = 17.5
    q = torch.tensor([[1.0]])
    k = torch.tensor([[0.0], [math.log(3.0)]])
    v = torch.tensor([[10.0], [20.0]])
    out, w = scaled_dot_product_attention(q, k, v)
    assert torch.allclose(w, torch.tensor([[0.25, 0.75]]))
    assert torch.allclose(out, torch.tensor([[17.5]]))


def test_scale_is_one_over_sqrt_dk():
    # d = 4: scores are divided by 2. q . k0 = 0, q . k1 = 2 ln 3 -> scaled [0, ln 3].
    q = torch.tensor([[1.0, 1.0, 1.0, 1.0]])
    k = torch.tensor([[0.0, 0.0, 0.0, 0.0], [2 * math.log(3.0), 0.0, 0.0, 0.0]])
    v = torch.eye(2, 4)
    _, w = scaled_dot_product_attention(q, k, v)
    assert torch.allclose(w, torch.tensor([[0.25, 0.75]]))


@settings(max_examples=60, deadline=None)
@given(
    batch=st.lists(st.integers(1, 3), min_size=0, max_size=2),
    T=st.integers(1, 7),
    S=st.integers(1, 7),
    d=st.integers(1, 12),
    dv=st.integers(1, 12),
    mask_kind=st.sampled_from(["none", "full", "row", "float"]),
    seed=st.integers(0, 2**16),
)
def test_matches_torch_sdpa(batch, T, S, d, dv, mask_kind, seed):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(*batch, T, d, generator=g)
    k = torch.randn(*batch, S, d, generator=g)
    v = torch.randn(*batch, S, dv, generator=g)
    shape = (*batch, T, S)
    mask = None
    if mask_kind == "full":
        mask = torch.rand(shape, generator=g) < 0.7
    elif mask_kind == "row":  # broadcast over queries, like key padding
        mask = torch.rand(*batch, 1, S, generator=g) < 0.7
    elif mask_kind == "float":
        mask = torch.randn(shape, generator=g)
    out, w = scaled_dot_product_attention(q, k, v, mask)
    ref = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    assert out.shape == ref.shape and w.shape == shape
    if mask is not None and mask.dtype == torch.bool:
        alive = _alive(mask, shape)
        assert torch.allclose(out * alive, ref * alive, atol=ATOL)  # compare where torch is defined
        assert torch.all(out[~alive.expand_as(out)] == 0)  # nothing to attend to -> zeros
        assert torch.all(w[~alive.expand(shape)] == 0)
        assert torch.all(w[~mask.expand(shape)] == 0)  # masked keys get exactly zero weight
    else:
        assert torch.allclose(out, ref, atol=ATOL)
    assert not torch.isnan(out).any()
    row_sums = w.sum(-1)
    assert torch.allclose(row_sums[row_sums > 0], torch.ones(()), atol=1e-6)


@pytest.mark.parametrize("shape", [(1, 1, 1, 8), (2, 3, 5, 8), (4, 2, 16, 4), (3, 9, 1)])
@pytest.mark.parametrize("scale", [None, 0.3])
def test_causal_matches_torch(shape, scale):
    torch.manual_seed(0)
    q, k, v = (torch.randn(shape) for _ in range(3))
    out, w = scaled_dot_product_attention(q, k, v, is_causal=True, scale=scale)
    ref = F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=scale)
    assert torch.allclose(out, ref, atol=ATOL)
    assert torch.all(w.triu(diagonal=1) == 0)  # no weight on the future
    # the same as passing the mask explicitly
    out2, _ = scaled_dot_product_attention(q, k, v, mask=causal_mask(shape[-2]), scale=scale)
    assert torch.allclose(out, out2, atol=1e-6)


def test_causal_with_more_keys_than_queries_is_bottom_right_aligned():
    # The last 3 queries of a causal sequence of 7 == attending the whole sequence and keeping the last 3 rows.
    torch.manual_seed(1)
    q, k, v = torch.randn(2, 7, 8), torch.randn(2, 7, 8), torch.randn(2, 7, 8)
    full = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    out, _ = scaled_dot_product_attention(q[:, -3:], k, v, is_causal=True)
    assert torch.allclose(out, full[:, -3:], atol=ATOL)


def test_fully_masked_row_gives_zeros_and_finite_gradients():
    torch.manual_seed(2)
    q = torch.randn(2, 4, 6, dtype=torch.float64, requires_grad=True)
    k = torch.randn(2, 5, 6, dtype=torch.float64, requires_grad=True)
    v = torch.randn(2, 5, 3, dtype=torch.float64, requires_grad=True)
    mask = torch.rand(2, 4, 5) < 0.6
    mask[0, 1] = False  # query 1 of sequence 0 may attend to nothing
    mask[1, :, 0] = True  # everyone else has something
    mask[0, [0, 2, 3], 0] = True
    out, w = scaled_dot_product_attention(q, k, v, mask)
    assert torch.all(out[0, 1] == 0) and torch.all(w[0, 1] == 0)
    (out.sin().sum()).backward()
    for t in (q, k, v):
        assert torch.isfinite(t.grad).all()
    assert torch.all(q.grad[0, 1] == 0)  # a query that attends to nothing influences nothing
    # Gradients on the defined rows equal torch's.
    q2, k2, v2 = (t.detach().clone().requires_grad_() for t in (q, k, v))
    ref = F.scaled_dot_product_attention(q2, k2, v2, attn_mask=mask)
    alive = _alive(mask, mask.shape)
    (torch.where(alive, ref, 0).sin().sum()).backward()
    for ours, theirs in ((q, q2), (k, k2), (v, v2)):
        assert torch.allclose(ours.grad, theirs.grad, atol=1e-10)


def test_fully_masked_row_with_float_mask_has_finite_gradients():
    # A float mask adds -inf to the scores, so no masked_fill zeroes the gradient of a dead row:
    # the softmax itself must not produce NaN.
    q = torch.randn(1, 3, 4, requires_grad=True)
    k = torch.randn(1, 3, 4, requires_grad=True)
    v = torch.randn(1, 3, 4)
    additive = torch.zeros(3, 3)
    additive[1] = float("-inf")
    out, w = scaled_dot_product_attention(q, k, v, additive)
    assert torch.all(out[0, 1] == 0) and torch.all(w[0, 1] == 0)
    out.sum().backward()
    assert torch.isfinite(q.grad).all() and torch.isfinite(k.grad).all()


def test_gradcheck():
    torch.manual_seed(3)
    q = torch.randn(2, 3, 4, dtype=torch.float64, requires_grad=True)
    k = torch.randn(2, 5, 4, dtype=torch.float64, requires_grad=True)
    v = torch.randn(2, 5, 2, dtype=torch.float64, requires_grad=True)
    mask = torch.ones(2, 3, 5, dtype=torch.bool)
    mask[0, 0] = False
    mask[1, :, 2] = False
    assert torch.autograd.gradcheck(lambda q, k, v: scaled_dot_product_attention(q, k, v, mask)[0], (q, k, v))


def test_half_precision_close_to_fp32():
    torch.manual_seed(4)
    q, k, v = (torch.randn(2, 2, 6, 16) for _ in range(3))
    ref, _ = scaled_dot_product_attention(q, k, v, is_causal=True)
    out, w = scaled_dot_product_attention(q.bfloat16(), k.bfloat16(), v.bfloat16(), is_causal=True)
    assert out.dtype == torch.bfloat16 and w.dtype == torch.bfloat16
    assert torch.allclose(out.float(), ref, atol=3e-2)


def test_dropout_unbiased_deterministic_and_off_in_eval():
    torch.manual_seed(5)
    q, k, v = torch.randn(3, 4), torch.randn(5, 4), torch.randn(5, 2)
    clean, w = scaled_dot_product_attention(q, k, v)
    off, _ = scaled_dot_product_attention(q, k, v, dropout_p=0.5, training=False)
    assert torch.equal(off, clean)
    a, wa = scaled_dot_product_attention(q, k, v, dropout_p=0.5, generator=torch.Generator().manual_seed(0))
    b, _ = scaled_dot_product_attention(q, k, v, dropout_p=0.5, generator=torch.Generator().manual_seed(0))
    assert torch.equal(a, b) and not torch.allclose(a, clean)
    assert torch.equal(wa, w)  # the returned weights are the probabilities, before dropout
    # Inverted dropout keeps the expectation: the mean over many draws approaches the clean output.
    g = torch.Generator().manual_seed(1)
    qq, kk, vv = q.expand(4000, 3, 4), k.expand(4000, 5, 4), v.expand(4000, 5, 2)
    mean = scaled_dot_product_attention(qq, kk, vv, dropout_p=0.3, generator=g)[0].mean(0)
    assert torch.allclose(mean, clean, atol=0.06)


def test_sdpa_bad_input_errors():
    q, k, v = torch.randn(2, 3, 4), torch.randn(2, 5, 4), torch.randn(2, 5, 4)
    with pytest.raises(ValueError, match="same last dim"):
        scaled_dot_product_attention(q, torch.randn(2, 5, 3), v)
    with pytest.raises(ValueError, match="same length S"):
        scaled_dot_product_attention(q, k, torch.randn(2, 4, 4))
    with pytest.raises(ValueError, match="does not broadcast"):
        scaled_dot_product_attention(q, k, v, mask=torch.ones(3, 4, dtype=torch.bool))
    with pytest.raises(TypeError, match="bool"):
        scaled_dot_product_attention(q, k, v, mask=torch.ones(3, 5, dtype=torch.long))
    with pytest.raises(ValueError, match="dropout_p"):
        scaled_dot_product_attention(q, k, v, dropout_p=1.0)
    with pytest.raises(ValueError, match="at least 2"):
        scaled_dot_product_attention(torch.randn(4), k, v)


# --------------------------------------------------------------------------------------------
# MultiHeadAttention
# --------------------------------------------------------------------------------------------
def _torch_mha_copy(mha: MultiHeadAttention) -> nn.MultiheadAttention:
    bias = mha.qkv.bias is not None
    ref = nn.MultiheadAttention(mha.d_model, mha.n_heads, bias=bias, batch_first=True)
    with torch.no_grad():
        ref.in_proj_weight.copy_(mha.qkv.weight)
        ref.out_proj.weight.copy_(mha.out_proj.weight)
        if bias:
            ref.in_proj_bias.copy_(mha.qkv.bias)
            ref.out_proj.bias.copy_(mha.out_proj.bias)
    return ref.eval()


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("padding", [False, True])
def test_mha_matches_torch_multiheadattention(bias, causal, padding):
    torch.manual_seed(6)
    B, T, d, H = 3, 6, 16, 4
    mha = MultiHeadAttention(d, H, bias=bias, causal=causal).eval()
    ref = _torch_mha_copy(mha)
    x = torch.randn(B, T, d)
    real = None
    if padding:  # right padding: sequence b has 6, 4, 1 real tokens
        real = torch.arange(T)[None, :] < torch.tensor([6, 4, 1])[:, None]
    # torch's masks say True = NOT allowed: the opposite of ours
    ref_out, ref_w = ref(
        x, x, x,
        key_padding_mask=None if real is None else ~real,
        attn_mask=~causal_mask(T) if causal else None,
        need_weights=True, average_attn_weights=False,
    )
    fast = mha(x, mask=real)
    explicit = mha(x, mask=real, need_weights=True)
    assert torch.allclose(fast, ref_out, atol=ATOL)
    assert torch.allclose(explicit, ref_out, atol=ATOL)
    assert mha.last_attn_weights.shape == (B, H, T, T)
    assert torch.allclose(mha.last_attn_weights, ref_w, atol=ATOL)


def test_mha_layout_heads_by_hand():
    """The documented layout: qkv rows = [W_q; W_k; W_v], head h = rows h*d_head:(h+1)*d_head of each."""
    torch.manual_seed(7)
    d, H = 12, 3
    dh = d // H
    mha = MultiHeadAttention(d, H).eval()
    x = torch.randn(2, 5, d)
    Wq, Wk, Wv = mha.qkv.weight.split(d, dim=0)
    bq, bk, bv = mha.qkv.bias.split(d)
    heads = []
    for h in range(H):
        rows = slice(h * dh, (h + 1) * dh)
        Q = x @ Wq[rows].T + bq[rows]
        K = x @ Wk[rows].T + bk[rows]
        V = x @ Wv[rows].T + bv[rows]
        A = torch.softmax(Q @ K.transpose(-2, -1) / math.sqrt(dh), dim=-1)
        heads.append(A @ V)
    expected = torch.cat(heads, dim=-1) @ mha.out_proj.weight.T + mha.out_proj.bias
    assert torch.allclose(mha(x), expected, atol=ATOL)


def test_mha_full_4d_mask_fast_equals_explicit_and_torch():
    torch.manual_seed(8)
    B, T, d, H = 2, 5, 8, 2
    mha = MultiHeadAttention(d, H).eval()
    x = torch.randn(B, T, d)
    mask = torch.rand(B, H, T, T) < 0.6
    mask[..., 0] = True
    fast, explicit = mha(x, mask=mask), mha(x, mask=mask, need_weights=True)
    assert torch.allclose(fast, explicit, atol=ATOL)
    ref = _torch_mha_copy(mha)
    ref_out, _ = ref(x, x, x, attn_mask=~mask.reshape(B * H, T, T))
    assert torch.allclose(fast, ref_out, atol=ATOL)
    # a (1, 1, T, S) mask broadcasts over batch and heads
    m2 = causal_mask(T)[None, None]
    assert torch.allclose(mha(x, mask=m2), MultiHeadAttention.forward(_with_causal(mha), x), atol=ATOL)


def test_mha_float_mask_equals_bool_mask_with_causal():
    torch.manual_seed(15)
    B, T, d, H = 2, 5, 8, 2
    mha = MultiHeadAttention(d, H, causal=True).eval()
    x = torch.randn(B, T, d)
    real = torch.tensor([[True, True, True, False, False], [True] * 5])
    as_bool = real[:, None, None, :]  # (B, 1, 1, S)
    as_float = torch.zeros(B, 1, 1, T).masked_fill(~as_bool, float("-inf"))
    ref = mha(x, mask=real)
    for m in (as_bool, as_float):
        assert torch.allclose(mha(x, mask=m), ref, atol=ATOL)
        assert torch.allclose(mha(x, mask=m, need_weights=True), ref, atol=ATOL)


def _with_causal(mha: MultiHeadAttention) -> MultiHeadAttention:
    clone = MultiHeadAttention(mha.d_model, mha.n_heads, causal=True).eval()
    clone.load_state_dict(mha.state_dict())
    return clone


def test_mha_left_padding_with_causal_no_nan():
    # Left padding under a causal mask: the pad query at position 0 can see only a pad key, i.e. nothing.
    torch.manual_seed(9)
    B, T, d, H = 2, 5, 8, 2
    mha = MultiHeadAttention(d, H, causal=True).eval()
    x = torch.randn(B, T, d, requires_grad=True)
    real = torch.tensor([[False, False, True, True, True], [True] * 5])
    fast = mha(x, mask=real)
    explicit = mha(x, mask=real, need_weights=True)
    assert torch.isfinite(fast).all()
    assert torch.allclose(fast, explicit, atol=ATOL)
    # rows with nothing to attend to: the heads give zeros, so the output is the out_proj bias
    assert torch.allclose(fast[0, :2], mha.out_proj.bias.expand(2, d), atol=1e-6)
    # real tokens match the unpadded sequence's computation
    alone = mha(x[:1, 2:])
    assert torch.allclose(fast[0, 2:], alone[0], atol=ATOL)
    fast.sum().backward()
    assert torch.isfinite(x.grad).all()


@pytest.mark.parametrize("chunks", [[1, 1, 1, 1, 1, 1, 1], [3, 1, 1, 2], [4, 3]])
def test_mha_kv_cache_equals_full_causal_forward(chunks):
    torch.manual_seed(10)
    B, d, H = 2, 16, 4
    T = sum(chunks)
    mha = MultiHeadAttention(d, H, causal=True).eval()
    x = torch.randn(B, T, d)
    full = mha(x)
    outs, cache, start = [], None, 0
    for n in chunks:
        out, cache = mha(x[:, start : start + n], past_kv=cache, use_cache=True)
        assert cache[0].shape == (B, H, start + n, d // H) and cache[1].shape == cache[0].shape
        outs.append(out)
        start += n
    assert torch.allclose(torch.cat(outs, dim=1), full, atol=ATOL)
    # the explicit path with a cache agrees, and sees (T, S) weights
    out, _ = mha(x[:, -2:], past_kv=tuple(t[:, :, :-2] for t in cache), use_cache=True, need_weights=True)
    assert torch.allclose(out, full[:, -2:], atol=ATOL)
    assert mha.last_attn_weights.shape == (B, H, 2, T)


def test_mha_kv_cache_with_padding_mask():
    torch.manual_seed(11)
    B, T, d, H = 2, 6, 8, 2
    mha = MultiHeadAttention(d, H, causal=True).eval()
    x = torch.randn(B, T, d)
    real = torch.tensor([[False, True, True, True, True, True], [True] * 6])
    full = mha(x, mask=real)
    out1, cache = mha(x[:, :4], mask=real[:, :4], use_cache=True)
    out2, cache = mha(x[:, 4:], mask=real, past_kv=cache, use_cache=True)  # the mask covers all S keys
    assert torch.allclose(torch.cat([out1, out2], 1), full, atol=ATOL)


def test_mha_dropout_train_vs_eval():
    torch.manual_seed(12)
    mha = MultiHeadAttention(8, 2, dropout=0.5)
    x = torch.randn(2, 5, 8)
    torch.manual_seed(0)
    a = mha(x)
    torch.manual_seed(1)
    b = mha(x)
    assert not torch.allclose(a, b)
    mha.eval()
    assert torch.equal(mha(x), mha(x))
    assert torch.allclose(mha(x), mha(x, need_weights=True), atol=ATOL)


def test_mha_bad_input_errors():
    with pytest.raises(ValueError, match="multiple of n_heads"):
        MultiHeadAttention(10, 3)
    mha = MultiHeadAttention(8, 2)
    x = torch.randn(2, 5, 8)
    with pytest.raises(ValueError, match=r"\(B, T, d_model=8\)"):
        mha(torch.randn(2, 5, 6))
    with pytest.raises(ValueError, match="key-padding mask"):
        mha(x, mask=torch.ones(5, 5, dtype=torch.bool))
    with pytest.raises(TypeError, match="bool"):
        mha(x, mask=torch.ones(2, 5, dtype=torch.long))
    with pytest.raises(ValueError, match="2-D .* or 4-D"):
        mha(x, mask=torch.ones(2, 5, 5, dtype=torch.bool))
    with pytest.raises(ValueError, match="does not broadcast"):
        mha(x, mask=torch.ones(2, 3, 5, 5, dtype=torch.bool))
    with pytest.raises(ValueError, match="past_kv"):
        mha(x, past_kv=(torch.zeros(2, 2, 3, 3), torch.zeros(2, 2, 3, 3)))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_mha_fast_path_on_gpu_half_precision():
    torch.manual_seed(13)
    mha = MultiHeadAttention(64, 4, causal=True).cuda().eval()
    x = torch.randn(2, 128, 64, device="cuda")
    ref = mha(x, need_weights=True)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        out = mha(x)
    assert torch.allclose(out.float(), ref, atol=5e-2)


# --------------------------------------------------------------------------------------------
# Positions
# --------------------------------------------------------------------------------------------
def _pe_numpy(max_len: int, d: int) -> np.ndarray:
    pe = np.zeros((max_len, d))
    for pos in range(max_len):
        for j in range(d):
            i = j // 2
            angle = pos / 10000 ** (2 * i / d)
            pe[pos, j] = math.sin(angle) if j % 2 == 0 else math.cos(angle)
    return pe


def test_sinusoidal_hand_values():
    pe = sinusoidal_positional_encoding(8, 4)
    assert pe[0].tolist() == [0.0, 1.0, 0.0, 1.0]  # position 0: sin 0 = 0, cos 0 = 1
    # pos 1, i = 0: angle 1; pos 2, i = 1: angle 2 / 10000^(2/4) = 2 / 100 = 0.02
    assert pe[1, 0].item() == pytest.approx(0.8414709848, abs=1e-7)  # sin 1
    assert pe[1, 1].item() == pytest.approx(0.5403023059, abs=1e-7)  # cos 1
    assert pe[2, 2].item() == pytest.approx(0.0199986667, abs=1e-7)  # sin 0.02
    assert pe[2, 3].item() == pytest.approx(0.9998000067, abs=1e-7)  # cos 0.02


@pytest.mark.parametrize("max_len,d", [(50, 16), (7, 5), (300, 2)])
def test_sinusoidal_matches_numpy_formula(max_len, d):
    pe = sinusoidal_positional_encoding(max_len, d)
    assert pe.dtype == torch.float32 and pe.shape == (max_len, d)
    np.testing.assert_allclose(pe.numpy(), _pe_numpy(max_len, d), atol=1e-6)


def test_sinusoidal_module():
    module = SinusoidalPositionalEncoding(d_model=6, max_len=20)
    x = torch.randn(2, 5, 6)
    assert torch.allclose(module(x), x + torch.from_numpy(_pe_numpy(20, 6)[:5]).float(), atol=1e-6)
    assert torch.allclose(module(x, offset=3), x + module.pe[3:8])
    assert "pe" not in module.state_dict()  # recomputed, never saved
    assert list(module.parameters()) == []
    with pytest.raises(ValueError, match="max_len=20"):
        module(torch.randn(1, 21, 6))
    with pytest.raises(ValueError, match="max_len=20"):
        module(x, offset=16)


def test_learned_positional_embedding():
    torch.manual_seed(14)
    module = LearnedPositionalEmbedding(max_len=10, d_model=4)
    x = torch.randn(3, 6, 4)
    assert torch.equal(module(x), x + module.embedding.weight[:6])
    assert torch.equal(module(x[:, :1], offset=7), x[:, :1] + module.weight[7])
    module(x).sum().backward()
    grad = module.embedding.weight.grad
    assert torch.allclose(grad[:6], torch.full((6, 4), 3.0)) and torch.all(grad[6:] == 0)
    with pytest.raises(ValueError, match="max_len=10"):
        module(torch.randn(1, 11, 4))
    with pytest.raises(ValueError, match="d_model=4"):
        module(torch.randn(1, 3, 5))


# --------------------------------------------------------------------------------------------
# Grouped-query attention and cross-attention
# --------------------------------------------------------------------------------------------
def _gqa_by_hand(mha: MultiHeadAttention, x, context=None, causal=False, key_real=None):
    """Per query head h, with key/value head h // (H / H_kv), written out from the weights."""
    H, Hkv, dh = mha.n_heads, mha.n_kv_heads, mha.d_head
    if mha.cross:
        Wq, bq = mha.q_proj.weight, mha.q_proj.bias
        Wk, Wv = mha.kv_proj.weight.split(Hkv * dh)
        bk, bv = mha.kv_proj.bias.split(Hkv * dh)
        src = context
    else:
        Wq, Wk, Wv = mha.qkv.weight.split([H * dh, Hkv * dh, Hkv * dh])
        bq, bk, bv = mha.qkv.bias.split([H * dh, Hkv * dh, Hkv * dh])
        src = x
    T, S = x.shape[1], src.shape[1]
    heads = []
    for h in range(H):
        g = h // (H // Hkv)
        q_rows, kv_rows = slice(h * dh, (h + 1) * dh), slice(g * dh, (g + 1) * dh)
        Q = x @ Wq[q_rows].T + bq[q_rows]
        K = src @ Wk[kv_rows].T + bk[kv_rows]
        V = src @ Wv[kv_rows].T + bv[kv_rows]
        scores = Q @ K.transpose(-2, -1) / math.sqrt(dh)
        if causal:
            scores = scores.masked_fill(~torch.ones(T, S, dtype=torch.bool).tril(), float("-inf"))
        if key_real is not None:
            scores = scores.masked_fill(~key_real[:, None, :], float("-inf"))
        heads.append(torch.softmax(scores, dim=-1) @ V)
    return torch.cat(heads, dim=-1) @ mha.out_proj.weight.T + mha.out_proj.bias


def test_repeat_kv_matches_transformers_layout():
    x = torch.arange(2 * 3 * 4 * 5, dtype=torch.float32).view(2, 3, 4, 5)
    # transformers: x[:, :, None].expand(B, H_kv, n_rep, S, d).reshape(B, H_kv * n_rep, S, d)
    expected = x[:, :, None].expand(2, 3, 2, 4, 5).reshape(2, 6, 4, 5)
    assert torch.equal(repeat_kv(x, 2), expected)
    assert repeat_kv(x, 1) is x
    with pytest.raises(ValueError):
        repeat_kv(x, 0)


@pytest.mark.parametrize("n_kv", [1, 2, 4])
@pytest.mark.parametrize("causal", [False, True])
def test_gqa_matches_per_head_brute_force(n_kv, causal):
    torch.manual_seed(20)
    B, T, d, H = 2, 5, 16, 4
    mha = MultiHeadAttention(d, H, causal=causal, n_kv_heads=n_kv).eval()
    assert mha.qkv.weight.shape == ((H + 2 * n_kv) * (d // H), d)
    x = torch.randn(B, T, d)
    expected = _gqa_by_hand(mha, x, causal=causal)
    assert torch.allclose(mha(x), expected, atol=ATOL)
    assert torch.allclose(mha(x, need_weights=True), expected, atol=ATOL)


def test_gqa_with_separate_head_dim():
    """Qwen3 sets d_head apart from d_model / n_heads (e.g. 1024 wide, 16 heads of 128)."""
    torch.manual_seed(21)
    mha = MultiHeadAttention(12, 4, n_kv_heads=2, d_head=8, causal=True).eval()
    assert mha.out_proj.weight.shape == (12, 32)
    x = torch.randn(2, 6, 12)
    assert torch.allclose(mha(x), _gqa_by_hand(mha, x, causal=True), atol=ATOL)


@pytest.mark.parametrize("chunks", [[6], [3, 1, 1, 1], [1] * 6])
def test_gqa_cache_keeps_kv_heads_and_equals_uncached(chunks):
    torch.manual_seed(22)
    mha = MultiHeadAttention(16, 4, n_kv_heads=2, causal=True).eval()
    x = torch.randn(2, sum(chunks), 16)
    full = mha(x)
    outs, cache, start = [], None, 0
    for n in chunks:
        out, cache = mha(x[:, start:start + n], past_kv=cache, use_cache=True)
        outs.append(out)
        start += n
    assert cache[0].shape == (2, 2, 6, 4)  # n_kv_heads heads are cached, not n_heads
    assert torch.allclose(torch.cat(outs, dim=1), full, atol=ATOL)


def test_gqa_bad_head_counts():
    with pytest.raises(ValueError, match="must divide"):
        MultiHeadAttention(16, 4, n_kv_heads=3)
    with pytest.raises(ValueError, match="no causal"):
        MultiHeadAttention(16, 4, cross=True, causal=True)


@pytest.mark.parametrize("padding", [False, True])
def test_cross_attention_matches_torch_multiheadattention(padding):
    """Queries from x, keys and values from the context: torch's module called as mha(x, c, c)."""
    torch.manual_seed(23)
    B, T, S, d, H = 3, 4, 6, 16, 4
    mha = MultiHeadAttention(d, H, cross=True).eval()
    ref = nn.MultiheadAttention(d, H, batch_first=True).eval()
    with torch.no_grad():
        ref.in_proj_weight.copy_(torch.cat([mha.q_proj.weight, mha.kv_proj.weight]))
        ref.in_proj_bias.copy_(torch.cat([mha.q_proj.bias, mha.kv_proj.bias]))
        ref.out_proj.weight.copy_(mha.out_proj.weight)
        ref.out_proj.bias.copy_(mha.out_proj.bias)
    x, c = torch.randn(B, T, d), torch.randn(B, S, d)
    real = torch.arange(S)[None, :] < torch.tensor([6, 3, 1])[:, None] if padding else None
    ref_out, _ = ref(x, c, c, key_padding_mask=None if real is None else ~real)
    assert torch.allclose(mha(x, mask=real, context=c), ref_out, atol=ATOL)
    assert torch.allclose(mha(x, mask=real, context=c, need_weights=True), ref_out, atol=ATOL)


def test_cross_attention_other_width_and_gqa_by_hand():
    torch.manual_seed(24)
    mha = MultiHeadAttention(8, 4, cross=True, n_kv_heads=2, d_context=10).eval()
    x, c = torch.randn(2, 3, 8), torch.randn(2, 5, 10)
    real = torch.tensor([[True] * 5, [True, True, False, False, False]])
    assert torch.allclose(mha(x, mask=real, context=c), _gqa_by_hand(mha, x, context=c, key_real=real), atol=ATOL)


def test_cross_attention_cache_projects_the_context_once():
    torch.manual_seed(25)
    mha = MultiHeadAttention(8, 2, cross=True).eval()
    x, c = torch.randn(2, 4, 8), torch.randn(2, 5, 8)
    full = mha(x, context=c)
    out0, cache = mha(x[:, :1], context=c, use_cache=True)
    steps = [out0]
    for t in range(1, 4):
        out, cache2 = mha(x[:, t:t + 1], past_kv=cache, use_cache=True)  # no context needed
        assert cache2[0] is cache[0]  # reused, not appended
        steps.append(out)
    assert torch.allclose(torch.cat(steps, dim=1), full, atol=ATOL)
    with pytest.raises(ValueError, match="context"):
        mha(x)
    with pytest.raises(ValueError, match="cross=True"):
        MultiHeadAttention(8, 2)(x, context=c)


def test_masked_attention_compiles_fullgraph():
    """No data-dependent Python branch: padded, causal attention compiles as one graph."""
    torch.manual_seed(26)
    mha = MultiHeadAttention(16, 4, causal=True, n_kv_heads=2).eval()
    x = torch.randn(2, 5, 16)
    real = torch.tensor([[False, False, True, True, True], [True] * 5])  # left padding: dead rows
    compiled = torch.compile(mha, backend="eager", fullgraph=True)
    expected = mha(x, mask=real)
    assert torch.allclose(compiled(x, mask=real), expected, atol=ATOL)
    assert torch.isfinite(expected).all()
    # a query with no key attends to nothing: its heads are zero, so only Wᴼ's bias is left
    assert torch.allclose(expected[0, :2], mha.out_proj.bias.expand(2, 16), atol=ATOL)
    explicit = torch.compile(
        lambda q, k, v, m: scaled_dot_product_attention(q, k, v, m)[0], backend="eager", fullgraph=True
    )
    q = torch.randn(2, 3, 4)
    m = torch.tensor([[True, False, True], [False, False, False], [True, True, True]])
    assert torch.allclose(explicit(q, q, q, m), scaled_dot_product_attention(q, q, q, m)[0], atol=ATOL)
