"""BERT masking and the MLM loss, checked by statistics on 10^6 tokens and against torch's cross entropy."""

import pytest
import torch
import torch.nn.functional as F

from llm_from_scratch.mlm import IGNORE_INDEX, mask_tokens, mlm_loss

V = 1000
PAD, CLS, SEP, MASK = 0, 1, 2, 3
SPECIAL = (CLS, SEP)


def _batch(b=4, t=16, seed=0):
    """Token ids with [CLS] ... [SEP] and right padding, like a tokenizer's batch."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(4, V, (b, t), generator=g)
    ids[:, 0] = CLS
    for row, length in enumerate(torch.randint(t // 2, t + 1, (b,), generator=g).tolist()):
        ids[row, length - 1] = SEP
        ids[row, length:] = PAD
    return ids


def _mask(ids, **kw):
    kw = {"vocab_size": V, "mask_token_id": MASK, "special_token_ids": SPECIAL, "pad_token_id": PAD} | kw
    return mask_tokens(ids, **kw)


def test_fractions_on_a_million_tokens():
    ids = _batch(b=1000, t=1000)  # 10^6 tokens, with specials and padding
    inputs, labels = _mask(ids, generator=torch.Generator().manual_seed(1))
    eligible = ~torch.isin(ids, torch.tensor([PAD, CLS, SEP]))
    selected = labels != IGNORE_INDEX
    n_sel = int(selected.sum())
    assert abs(n_sel / int(eligible.sum()) - 0.15) < 0.005
    masked = selected & (inputs == MASK)
    kept = selected & (inputs == ids)
    randomised = selected & (inputs != MASK) & (inputs != ids)
    # A random replacement may draw the original token (BERT's rule): 1/(V-4) of the 10% land in "kept".
    p_same = 0.1 / (V - 4)
    assert abs(int(masked.sum()) / n_sel - 0.8) < 0.005
    assert abs(int(randomised.sum()) / n_sel - (0.1 - p_same)) < 0.005
    assert abs(int(kept.sum()) / n_sel - (0.1 + p_same)) < 0.005
    # Outside the selection nothing changes, and labels hold the original ids inside it.
    assert torch.equal(inputs[~selected], ids[~selected])
    assert torch.equal(labels[selected], ids[selected])
    # Random replacements are spread over the whole ordinary vocabulary (not stuck on a few ids).
    drawn = inputs[randomised]
    assert drawn.min() >= 4 and drawn.max() == V - 1 and drawn.unique().numel() > 0.9 * (V - 4)


def test_specials_and_padding_are_never_selected_nor_drawn():
    ids = _batch(b=64, t=64)
    special = ids.lt(4)
    for seed in range(5):
        # A high rate makes every eligible token likely to be selected and many to be randomised.
        inputs, labels = _mask(ids, mlm_probability=0.9, generator=torch.Generator().manual_seed(seed))
        assert (labels[special] == IGNORE_INDEX).all()
        assert torch.equal(inputs[special], ids[special])
        replaced = (labels != IGNORE_INDEX) & (inputs != MASK)
        assert (inputs[replaced] >= 4).all(), "a random replacement drew a special, pad or [MASK] id"


def test_random_replacement_never_draws_a_special_in_a_tiny_vocabulary():
    # Vocabulary of 6: specials 0..3, ordinary 4 and 5; every random draw must be 4 or 5.
    ids = torch.tensor([[1, 4, 5, 4, 5, 2, 0]]).repeat(2000, 1)
    inputs, labels = mask_tokens(ids, vocab_size=6, mask_token_id=3, special_token_ids=[1, 2], pad_token_id=0,
                                 mlm_probability=0.5, generator=torch.Generator().manual_seed(0))
    replaced = (labels != IGNORE_INDEX) & (inputs != 3)
    assert set(inputs[replaced].unique().tolist()) == {4, 5}


def test_deterministic_with_a_generator_and_input_untouched():
    ids = _batch()
    before = ids.clone()
    a = _mask(ids, generator=torch.Generator().manual_seed(7))
    b = _mask(ids, generator=torch.Generator().manual_seed(7))
    c = _mask(ids, generator=torch.Generator().manual_seed(8))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[1], c[1])
    assert torch.equal(ids, before), "mask_tokens modified its input in place"


@pytest.mark.parametrize("dtype", [torch.long, torch.int32])
@pytest.mark.parametrize("shape", [(50,), (3, 17), (2, 3, 5)])
def test_shapes_and_dtypes_unchanged(shape, dtype):
    ids = torch.randint(4, V, shape, dtype=dtype)
    inputs, labels = _mask(ids)
    assert inputs.shape == labels.shape == ids.shape
    assert inputs.dtype == labels.dtype == dtype


def test_without_specials_or_pad():
    ids = torch.randint(0, 50, (200, 50))
    inputs, labels = mask_tokens(ids, vocab_size=50, mask_token_id=49, generator=torch.Generator().manual_seed(0))
    sel = labels != IGNORE_INDEX
    # [MASK] itself is never selected nor drawn; everything else can be.
    assert (labels[ids == 49] == IGNORE_INDEX).all()
    assert ((inputs[sel & (inputs != ids)] == 49) | (inputs[sel & (inputs != ids)] < 49)).all()
    assert 0.12 < sel.float().mean() < 0.18


@pytest.mark.parametrize("p", [0.0, 1.0, -0.1, 1.5])
def test_bad_probability(p):
    with pytest.raises(ValueError, match="mlm_probability"):
        _mask(_batch(), mlm_probability=p)


def test_bad_ids():
    ids = _batch()
    with pytest.raises(ValueError, match="mask_token_id"):
        _mask(ids, mask_token_id=V)
    with pytest.raises(ValueError, match="pad_token_id"):
        _mask(ids, pad_token_id=-1)
    with pytest.raises(ValueError, match="special token"):
        _mask(ids, special_token_ids=(1, V + 3))
    with pytest.raises(ValueError, match="outside the vocabulary"):
        _mask(ids, vocab_size=10)
    with pytest.raises(TypeError, match="integer"):
        _mask(ids.float())
    with pytest.raises(ValueError, match="no ordinary token"):
        mask_tokens(torch.tensor([[0, 1]]), vocab_size=2, mask_token_id=1, special_token_ids=[0])


# ---- the loss ---------------------------------------------------------------------------------------------


def test_mlm_loss_equals_torch_cross_entropy():
    torch.manual_seed(0)
    ids = _batch(b=8, t=32)
    _, labels = _mask(ids, generator=torch.Generator().manual_seed(0))
    logits = torch.randn(8, 32, V, requires_grad=True)
    ours = mlm_loss(logits, labels)
    ref = F.cross_entropy(logits.view(-1, V), labels.view(-1), ignore_index=-100)
    torch.testing.assert_close(ours, ref, rtol=1e-6, atol=1e-6)
    g_ours, = torch.autograd.grad(ours, logits)
    g_ref, = torch.autograd.grad(ref, logits)
    torch.testing.assert_close(g_ours, g_ref, rtol=1e-5, atol=1e-8)


def test_mlm_loss_by_hand():
    # Two positions, vocabulary of 3; only the second is masked, its target is token 2.
    logits = torch.tensor([[[5.0, 0.0, 0.0], [1.0, 2.0, 3.0]]])
    labels = torch.tensor([[-100, 2]])
    expected = -(3.0 - torch.log(torch.tensor(1.0).exp() + torch.tensor(2.0).exp() + torch.tensor(3.0).exp()))
    torch.testing.assert_close(mlm_loss(logits, labels), expected)


def test_mlm_loss_is_stable_for_huge_logits():
    logits = torch.tensor([[1e4, -1e4, 0.0], [-1e4, 1e4, 1e4]], requires_grad=True)
    labels = torch.tensor([1, 2])
    loss = mlm_loss(logits, labels)
    ref = F.cross_entropy(logits, labels)
    assert torch.isfinite(loss)
    torch.testing.assert_close(loss, ref)
    loss.backward()
    assert torch.isfinite(logits.grad).all()


def test_mlm_loss_with_nothing_masked_is_a_zero_with_grad():
    logits = torch.randn(2, 5, 7, requires_grad=True)
    labels = torch.full((2, 5), -100)
    loss = mlm_loss(logits, labels)
    assert loss.item() == 0.0 and not torch.isnan(loss)
    loss.backward()
    assert torch.equal(logits.grad, torch.zeros_like(logits))
    assert torch.isnan(F.cross_entropy(logits.view(-1, 7), labels.view(-1)))  # what we avoid


def test_mlm_loss_bad_input():
    with pytest.raises(ValueError, match="shape"):
        mlm_loss(torch.randn(2, 5, 7), torch.zeros(2, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="outside"):
        mlm_loss(torch.randn(2, 5, 7), torch.full((2, 5), 7))
    with pytest.raises(TypeError, match="integer"):
        mlm_loss(torch.randn(2, 5, 7), torch.zeros(2, 5))
