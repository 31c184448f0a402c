"""The exercises' checks can fail: for every exercise the check rejects the stub, a function that returns
zeros of the right shape, and plausible mistakes, and accepts the reference. The references themselves are
compared with independent ones here (torch's ops, torch.optim, brute force over every tag sequence)."""

from __future__ import annotations

import copy
import itertools
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from llm_from_scratch.exercises import EXERCISES, check, grade_namespace, load_hidden_tests
from llm_from_scratch.exercises import specs_01_04 as S1, specs_05_08 as S5, specs_09_12 as S9, specs_13_15 as S13

IDS = list(EXERCISES)


def _stub(*args, **kwargs):
    raise NotImplementedError


class _StubModule(nn.Module):
    def __init__(self, *args, **kwargs):
        raise NotImplementedError


def _zeroed(x):
    if isinstance(x, torch.Tensor):
        return torch.zeros_like(x)
    if isinstance(x, bool) or x is None:
        return x
    if isinstance(x, (int, float)):
        return type(x)(0)
    if isinstance(x, (list, tuple)):
        return type(x)(_zeroed(v) for v in x)
    if isinstance(x, dict):
        return {k: 0 for k in x}
    return x


def _zeros_like_reference(ex):
    """A function of the right signature that returns zeros of the right shape (and changes nothing)."""
    if ex.kind == "class":
        class Zeros(ex.reference):
            def forward(self, x):
                return torch.zeros_like(super().forward(x))
        return Zeros

    def zeros(*args, **kwargs):
        return _zeroed(ex.reference(*copy.deepcopy(args), **kwargs))
    return zeros


# ------------------------------------------------------------------------------------------------
# Plausible mistakes, at least one per exercise.


def _attention_no_scale(q, k, v, mask=None):
    s = q @ k.transpose(-2, -1)
    if mask is not None:
        s = s.masked_fill(~mask, float("-inf"))
    return torch.softmax(s, -1) @ v


def _attention_nan_rows(q, k, v, mask=None):  # right formula, but a fully masked row becomes NaN
    s = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if mask is not None:
        s = s.masked_fill(~mask, float("-inf"))
    return torch.softmax(s, -1) @ v


def _adam_no_bias_correction(theta, grad, m, v, t, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8):
    m = beta1 * m + (1 - beta1) * grad
    v = beta2 * v + (1 - beta2) * grad * grad
    return theta - lr * m / (v.sqrt() + eps), m, v


def _mask_all_as_mask(input_ids, vocab_size, mask_token_id, special_ids, generator):
    special = torch.tensor(list(special_ids) + [mask_token_id])
    selected = (torch.rand(input_ids.shape, generator=generator) < 0.15) & ~torch.isin(input_ids, special)
    inputs = input_ids.masked_fill(selected, mask_token_id)
    return inputs, torch.where(selected, input_ids, torch.full_like(input_ids, -100))


def _mask_labels_only_masked(input_ids, vocab_size, mask_token_id, special_ids, generator):
    inputs, labels = S5.mask_tokens(input_ids, vocab_size, mask_token_id, special_ids, generator)
    return inputs, torch.where(inputs == mask_token_id, labels, torch.full_like(labels, -100))


def _top_p_drops_crossing_token(logits, p):
    probs = torch.softmax(logits, -1)
    sorted_probs, idx = probs.sort(-1, descending=True)
    remove = sorted_probs.cumsum(-1) > p
    remove[..., 0] = False
    return logits.masked_fill(torch.zeros_like(remove).scatter(-1, idx, remove), float("-inf"))


def _kv_attend_before_append(q, k_new, v_new, cache=None):
    if cache is None:
        return S5.kv_cache_step(q, k_new, v_new, None)
    out = torch.softmax(q @ cache[0].transpose(-2, -1) / math.sqrt(q.shape[-1]), -1) @ cache[1]
    return out, (torch.cat([cache[0], k_new], 2), torch.cat([cache[1], v_new], 2))


def _ppl_mean_of_exp(logits, targets):
    nll = F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1), reduction="none")
    return nll.exp().mean().item(), (logits.argmax(-1) == targets).float().mean().item()


def _accum_without_division(model, loss_fn, micro_batches):
    model.zero_grad()
    total = 0.0
    for x, y in micro_batches:
        loss = loss_fn(model(x), y)
        loss.backward()
        total += loss.item() / len(micro_batches)
    return total


def _accum_without_zero_grad(model, loss_fn, micro_batches):
    total = 0.0
    for x, y in micro_batches:
        loss = loss_fn(model(x), y) / len(micro_batches)
        loss.backward()
        total += loss.item()
    return total


def _clip_per_parameter(parameters, max_norm):
    norms = []
    for p in parameters:
        n = p.grad.norm()
        norms.append(n)
        if n > max_norm:
            p.grad.mul_(max_norm / (n + 1e-6))
    return torch.stack(norms).norm().item()


class _LoRAScaleAlpha(S5.LoRALinear):  # scales by alpha, not alpha / r
    def forward(self, x):
        return self.base(x) + self.alpha * F.linear(F.linear(x, self.lora_A), self.lora_B)


class _LoRABaseTrainable(S5.LoRALinear):
    def __init__(self, base, r, alpha):
        super().__init__(base, r, alpha)
        self.base.weight.requires_grad_(True)


class _LoRARandomB(S5.LoRALinear):
    def __init__(self, base, r, alpha):
        super().__init__(base, r, alpha)
        nn.init.normal_(self.lora_B)


def _viterbi_no_end(emissions, start, trans, end):
    return S9.viterbi(emissions, start, trans, torch.zeros_like(end))


def _logz_no_end(emissions, start, trans, end):
    return S9.log_partition(emissions, start, trans, torch.zeros_like(end))


def _logz_max(emissions, start, trans, end):  # Viterbi's max instead of logsumexp
    alpha = start + emissions[0]
    for t in range(1, len(emissions)):
        alpha = (alpha[:, None] + trans).max(0).values + emissions[t]
    return (alpha + end).max()


def _scaler_no_skip(grads, scale, growth_tracker, growth_factor=2.0, backoff_factor=0.5, growth_interval=2000):
    g = [x / scale for x in grads]
    growth_tracker += 1
    if growth_tracker == growth_interval:
        return g, scale * growth_factor, 0
    return g, scale, growth_tracker


def _scaler_never_grows(grads, scale, growth_tracker, growth_factor=2.0, backoff_factor=0.5, growth_interval=2000):
    out = S9.scaler_step(grads, scale, growth_tracker, growth_factor, backoff_factor, growth_interval)
    return out if out[0] is None else (out[0], scale, growth_tracker + 1)


def _cross_no_mask(x, memory, src_mask=None):  # padding attended
    return S13.cross_attention(x, memory, None)


def _cross_mask_after_softmax(x, memory, src_mask=None):  # padding zeroed after the softmax: rows no longer sum to 1
    w = torch.softmax(x @ memory.transpose(-2, -1) / math.sqrt(x.shape[-1]), -1)
    if src_mask is not None:
        w = w * src_mask[:, None, :]
    return w @ memory, w


def _cross_no_scale(x, memory, src_mask=None):
    s = x @ memory.transpose(-2, -1)
    if src_mask is not None:
        s = s.masked_fill(~src_mask[:, None, :], float("-inf"))
    w = torch.softmax(s, -1)
    return w @ memory, w


def _hamming(a, b):  # position by position, plus the length difference: no insertions or deletions
    return sum(x != y for x, y in zip(a, b)) + abs(len(a) - len(b))


def _cer_mean_per_line(predictions, references):
    from llm_from_scratch.metrics import edit_distance
    return sum(edit_distance(p, r) / len(r) for p, r in zip(predictions, references)) / len(references)


def _beam_per_prefix(scores, logp, beam_size):  # the best token of each prefix, not the best of all K·V
    K, V = logp.shape
    best, tok = (scores[:, None] + logp).max(-1)
    order = best.argsort(descending=True)
    idx = torch.arange(K)[order].repeat(beam_size)[:beam_size]
    return (best[idx], idx, tok[idx])


def _beam_ignores_prefix_scores(scores, logp, beam_size):
    V = logp.shape[1]
    live = torch.where(torch.isfinite(scores)[:, None], logp, torch.full_like(logp, float("-inf")))
    top, idx = live.reshape(-1).topk(beam_size)
    return scores[idx // V] + top, idx // V, idx % V


def _rms_fp16_statistic(x, weight, eps=1e-6):  # squares in x's dtype: they overflow float16
    return weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))


def _rope_interleaved(x, positions, theta=10000.0):  # RoFormer's neighbour pairs (2i, 2i+1)
    D = x.shape[-1]
    ang = positions.float()[..., None] * theta ** (-torch.arange(0, D, 2).float() / D)
    if positions.dim() == 2:
        ang = ang[:, None]
    cos, sin = ang.cos(), ang.sin()
    x1, x2 = x[..., 0::2], x[..., 1::2]
    return torch.stack([x1 * cos - x2 * sin, x2 * cos + x1 * sin], -1).flatten(-2)


def _rope_wrong_frequencies(x, positions, theta=10000.0):  # θᵢ = theta^(−i/D): the 2 of 2i/D forgotten
    D = x.shape[-1]
    angles = positions.float()[..., None] * theta ** (-torch.arange(D // 2).float() / D)
    emb = torch.cat([angles, angles], -1)
    if positions.dim() == 2:
        emb = emb[:, None]
    return x * emb.cos() + torch.cat([-x[..., D // 2:], x[..., : D // 2]], -1) * emb.sin()


def _labels_everywhere(tokenizer, messages):
    ids, _ = S13.encode_conversation(tokenizer, messages)
    return ids, ids.clone()


def _labels_without_end(tokenizer, messages):  # the model never learns to stop
    ids, labels = S13.encode_conversation(tokenizer, messages)
    return ids, labels.masked_fill(ids == tokenizer.vocab["<|end|>"], -100)


def _labels_last_answer_only(tokenizer, messages):
    ids, labels = S13.encode_conversation(tokenizer, messages)
    kept = (labels != -100).nonzero().flatten().tolist()
    ends = [i for i in kept if ids[i] == tokenizer.vocab["<|end|>"]]
    if len(ends) > 1:
        labels[: ends[-2] + 1] = -100
    return ids, labels


def _labels_whole_text(tokenizer, messages):  # the template encoded as one string: '<|end|>' typed becomes the token
    from llm_from_scratch.sft import format_chat
    ids = torch.tensor(tokenizer.encode(format_chat(messages), allowed_special="all"))
    return ids, S13.encode_conversation(tokenizer, messages)[1]


def _logps_unshifted(logits, labels):
    keep = labels != -100
    lp = torch.log_softmax(logits, -1).gather(-1, labels.clamp(min=0)[..., None])[..., 0]
    return (lp * keep).sum(-1)


def _logps_mean(logits, labels):
    keep = labels[:, 1:] != -100
    return S13.sequence_logprobs(logits, labels) / keep.sum(-1)


def _logps_unmasked(logits, labels):
    lp = torch.log_softmax(logits[:, :-1], -1).gather(-1, labels[:, 1:].clamp(min=0)[..., None])[..., 0]
    return lp.sum(-1)


def _dpo_beta_outside(pc, pr, rc, rr, beta=0.1):
    margin = (pc - rc) - (pr - rr)
    return beta * F.softplus(-margin).mean(), beta * (pc - rc), beta * (pr - rr)


def _dpo_no_reference(pc, pr, rc, rr, beta=0.1):
    return S13.dpo_loss(pc, pr, torch.zeros_like(rc), torch.zeros_like(rr), beta)


def _dpo_naive_log_sigmoid(pc, pr, rc, rr, beta=0.1):
    rw, rl = beta * (pc - rc), beta * (pr - rr)
    return -torch.log(torch.sigmoid(rw - rl)).mean(), rw, rl


MISTAKES = {
    "01.1": [lambda x, W, b: x @ W.T, lambda x, W, b: x @ W + b],  # no bias; no transpose
    "01.2": [lambda w, X, y: X.T @ (X @ w - y) / X.shape[0], lambda w, X, y: 2 * X.T @ (X @ w - y)],
    "01.3": [lambda n, k, s=1, p=0: (n + p - k) // s + 1, lambda n, k, s=1, p=0: (n + 2 * p - k) // s],
    "02.1": [lambda ids: {pair: 1 for pair in zip(ids, ids[1:])}],
    "02.2": [lambda ids, pair, new: [new if (a, b) == tuple(pair) else a for a, b in zip(ids, list(ids[1:]) + [None])]],
    "02.3": [lambda tokens, starts, T: (torch.stack([tokens[s:s + T] for s in starts]),) * 2],
    "03.1": [lambda T: torch.ones(T, T, dtype=torch.bool).triu(), lambda T: torch.ones(T, T, dtype=torch.bool).tril(-1)],
    "03.2": [_attention_no_scale, _attention_nan_rows,
             lambda q, k, v, mask=None: S1.attention(q, k, v, mask) * math.sqrt(q.shape[-1]) / math.sqrt(v.shape[-1])],
    "03.3": [lambda n, d: S1.sinusoidal_pe(n, d)[:, [i ^ 1 for i in range(d)]],  # sine and cosine swapped
             lambda n, d: torch.stack([torch.sin(torch.arange(n)[:, None] / 10000 ** (torch.arange(0, d, 2) / 2 / d)),
                                       torch.cos(torch.arange(n)[:, None] / 10000 ** (torch.arange(0, d, 2) / 2 / d))],
                                      -1).reshape(n, d)],  # i/d instead of 2i/d
    "03.4": [lambda x, H: x.reshape(x.shape[0], H, x.shape[1], x.shape[2] // H)],
    "04.1": [lambda th, g, v, lr, b: (th - lr * (b * v + (1 - b) * g), b * v + (1 - b) * g)],
    "04.2": [_adam_no_bias_correction],
    "04.3": [lambda s, hi, W, T, lo=0.0: hi * s / W if s < W else S1.warmup_cosine(s, hi, W, T, lo)],
    "05.1": [_mask_all_as_mask, _mask_labels_only_masked],
    "05.2": [lambda logits, labels: F.cross_entropy(logits.flatten(0, 1), labels.flatten().clamp(min=0))],
    "05.3": [lambda logits, labels: (logits.argmax(-1) == labels).float().mean().item()],
    "06.1": [lambda V, T, L, d: S5.gpt_param_count(V, T, L, d) + V * d, lambda V, T, L, d: V * d + T * d + L * 12 * d * d],
    "06.2": [_top_p_drops_crossing_token, lambda logits, p: logits.masked_fill(torch.softmax(logits, -1) < 1 - p, float("-inf"))],
    "06.3": [_kv_attend_before_append, lambda q, k, v, cache=None: S5.kv_cache_step(q, k, v, None)],
    "07.1": [_ppl_mean_of_exp],
    "07.2": [_accum_without_division, _accum_without_zero_grad],
    "07.3": [_clip_per_parameter],
    "08.1": [lambda h, m: h[:, -1]],
    "08.2": [_LoRAScaleAlpha, _LoRABaseTrainable, _LoRARandomB],
    "08.3": [lambda h, m: h.mean(1)],
    "09.1": [lambda y: ((y - y.mean()) / y.std(unbiased=False), y.mean().item(), y.std(unbiased=False).item()),
             lambda y: (y - y.mean(), y.mean().item(), 1.0)],
    "09.2": [lambda z, y, mu, s: math.sqrt(((z + mu - y) ** 2).mean().item())],
    "09.3": [lambda x, y: ((x * y).sum() / (x.norm() * y.norm())).item()],
    "10.1": [lambda E, tags, start, trans, end: S9.sequence_score(E, tags, start, trans, torch.zeros_like(end))],
    "10.2": [_logz_no_end, _logz_max],
    "10.3": [_viterbi_no_end, lambda E, start, trans, end: E.argmax(-1).tolist()],
    "11.1": [lambda w: w.reshape(w.shape[1], w.shape[0])],
    "11.2": [lambda w, b: tuple((x, y) for x, y in zip(w.split(w.shape[0], dim=1), b.split(w.shape[0])))],
    "11.3": [lambda x: F.gelu(x)],
    "12.1": [lambda tps, N, L, H, Q, T, peak: tps * 6 * N / peak, lambda tps, N, L, H, Q, T, peak: tps * (2 * N + 12 * L * H * Q * T) / peak],
    "12.2": [_scaler_no_skip, _scaler_never_grows],
    "12.3": [lambda first, m, r, W: first + r * 3 + m, lambda first, m, r, W: first + m + r],
    "13.1": [_cross_no_mask, _cross_mask_after_softmax, _cross_no_scale],
    "13.2": [lambda p, r: sum(_hamming(a, b) for a, b in zip(p, r)) / sum(len(x) for x in r), _cer_mean_per_line,
             lambda p, r: S13.character_error_rate(p, r) * sum(len(x) for x in r) / max(1, sum(len(x) for x in p))],
    "13.3": [_beam_per_prefix, _beam_ignores_prefix_scores,
             lambda s, lp, n: (lambda t, i: (t, i % lp.shape[1], i // lp.shape[1]))(*(s[:, None] + lp).reshape(-1).topk(n))],
    "14.1": [_rms_fp16_statistic, lambda x, w, eps=1e-6: w * F.layer_norm(x.float(), x.shape[-1:], eps=eps).to(x.dtype),
             lambda x, w, eps=1e-6: w * x / (x.float().pow(2).mean(-1, keepdim=True).sqrt() + eps).to(x.dtype)],
    "14.2": [_rope_interleaved, _rope_wrong_frequencies,
             lambda x, pos, theta=10000.0: S13.apply_rope(x, pos[0] if pos.dim() == 2 else pos, theta)],
    "14.3": [lambda x, n: x.repeat(1, n, 1, 1)],  # the whole stack tiled: k0 k1 k0 k1
    "15.1": [_labels_everywhere, _labels_without_end, _labels_last_answer_only, _labels_whole_text],
    "15.2": [_logps_unshifted, _logps_mean, _logps_unmasked],
    "15.3": [_dpo_beta_outside, _dpo_no_reference, _dpo_naive_log_sigmoid],
}


def test_every_chapter_01_to_15_has_at_least_three_exercises_and_every_one_a_mistake():
    per_chapter = {}
    for ex in EXERCISES.values():
        per_chapter.setdefault(ex.id[:2], []).append(ex.id)
        assert ex.chapter[:2] == ex.id[:2] and ex.tests and ex.hint and ex.name in ex.signature
    assert all(len(per_chapter.get(f"{c:02d}", [])) >= 3 for c in range(1, 16)), per_chapter
    assert set(MISTAKES) >= set(EXERCISES), f"no plausible mistake for {sorted(set(EXERCISES) - set(MISTAKES))}"


@pytest.mark.parametrize("eid", IDS)
def test_check_accepts_the_reference(eid, capsys):
    assert check(eid, EXERCISES[eid].reference) is True
    assert "✓" in capsys.readouterr().out


@pytest.mark.parametrize("eid", IDS)
def test_check_says_not_attempted_for_the_stub(eid, capsys):
    stub = _StubModule if EXERCISES[eid].kind == "class" else _stub
    assert check(eid, stub) is False
    out = capsys.readouterr().out
    assert "not attempted yet" in out and out.count("\n") == 1


@pytest.mark.parametrize("eid", IDS)
def test_check_rejects_zeros_and_plausible_mistakes_with_a_hint(eid, capsys):
    ex = EXERCISES[eid]
    for wrong in [_zeros_like_reference(ex), *MISTAKES[eid]]:
        assert check(eid, wrong) is False, f"{eid}: the check accepted {getattr(wrong, '__name__', wrong)}"
        out = capsys.readouterr().out
        assert "✗" in out and "Hint:" in out and ex.hint in out


def test_check_never_raises_on_an_answer_that_raises_or_returns_garbage(capsys):
    assert check("03.2", lambda q, k, v, mask=None: 1 / 0) is False
    assert "raised ZeroDivisionError" in capsys.readouterr().out
    assert check("03.2", lambda q, k, v, mask=None: "hello") is False
    assert check("08.2", int) is False


def test_unknown_id_is_one_line_listing_the_ids(capsys):
    assert check("99.9", _stub) is False
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "unknown exercise id '99.9'" in out and "03.2" in out


# ------------------------------------------------------------------------------------------------
# The references against independent ones.


def test_references_match_torch_and_autograd():
    g = torch.Generator().manual_seed(0)
    w, X, y = torch.randn(3, generator=g, requires_grad=True), torch.randn(7, 3, generator=g), torch.randn(7, generator=g)
    ((X @ w - y) ** 2).mean().backward()
    assert torch.allclose(S1.mse_grad(w.detach(), X, y), w.grad, atol=1e-6)
    for n, k, s, p in [(8, 3, 1, 1), (7, 3, 2, 1), (10, 4, 3, 0)]:
        out = nn.Conv2d(1, 1, k, stride=s, padding=p)(torch.zeros(1, 1, n, n))
        assert out.shape[-1] == S1.conv2d_output_size(n, k, s, p)
    q, k_, v = (torch.randn(2, 5, 8, generator=g) for _ in range(3))
    assert torch.allclose(S1.attention(q, k_, v, S1.causal_mask(5)), F.scaled_dot_product_attention(q, k_, v, is_causal=True), atol=1e-6)
    assert torch.equal(S1.split_heads(torch.arange(24.).view(1, 2, 12), 3)[0, 1, 0], torch.tensor([4., 5, 6, 7]))
    assert torch.allclose(S9.gelu_tanh(torch.tensor([1.0])), 0.5 * torch.tensor([1 + math.tanh(math.sqrt(2 / math.pi) * 1.044715)]))


def test_adam_and_momentum_references_match_torch_optim():
    g = torch.Generator().manual_seed(1)
    for opt_cls, kw in [(torch.optim.Adam, dict(lr=0.05, betas=(0.9, 0.99), eps=1e-8)), (torch.optim.SGD, dict(lr=0.05, momentum=0.8))]:
        p = nn.Parameter(torch.randn(4, generator=g))
        opt = opt_cls([p], **kw)
        theta, m, v, b = p.detach().clone(), torch.zeros(4), torch.zeros(4), torch.zeros(4)
        for t in range(1, 6):
            p.grad = torch.randn(4, generator=g)
            if opt_cls is torch.optim.Adam:
                theta, m, v = S1.adam_step(theta, p.grad, m, v, t, 0.05, 0.9, 0.99)
            else:
                theta, b = S1.momentum_step(theta, p.grad, b, 0.05, 0.8)
            opt.step()
            assert torch.allclose(theta, p.detach(), atol=1e-6)


def test_accumulation_and_clipping_references_match_a_full_batch_and_torch():
    torch.manual_seed(0)
    model = nn.Linear(3, 2)
    x, y = torch.randn(8, 3), torch.randn(8, 2)
    full = copy.deepcopy(model)
    F.mse_loss(full(x), y).backward()
    S5.accumulate_gradients(model, F.mse_loss, [(x[:4], y[:4]), (x[4:], y[4:])])
    assert torch.allclose(model.weight.grad, full.weight.grad, atol=1e-6)
    ps = [nn.Parameter(torch.zeros(3)), nn.Parameter(torch.zeros(2, 2))]
    qs = [nn.Parameter(torch.zeros(3)), nn.Parameter(torch.zeros(2, 2))]
    for a, b in zip(ps, qs):
        a.grad = torch.randn(a.shape) * 5
        b.grad = a.grad.clone()
    assert math.isclose(S5.clip_grad_norm(ps, 1.0), nn.utils.clip_grad_norm_(qs, 1.0).item(), rel_tol=1e-6)
    assert all(torch.allclose(a.grad, b.grad) for a, b in zip(ps, qs))


def test_crf_references_match_brute_force_over_every_tag_sequence():
    E, start, trans, end = S9._crf_args(7, 4, 3, end_scale=3.0)
    scores = {tags: float(start[tags[0]] + sum(E[t, tags[t]] for t in range(4))
                          + sum(trans[tags[t - 1], tags[t]] for t in range(1, 4)) + end[tags[-1]])
              for tags in itertools.product(range(3), repeat=4)}
    assert math.isclose(S9.sequence_score(E, [0, 2, 1, 1], start, trans, end).item(), scores[(0, 2, 1, 1)], rel_tol=1e-5)
    assert math.isclose(S9.log_partition(E, start, trans, end).item(),
                        torch.logsumexp(torch.tensor(list(scores.values())), 0).item(), rel_tol=1e-5)
    assert tuple(S9.viterbi(E, start, trans, end)) == max(scores, key=scores.get)


def test_scaler_reference_matches_torch_gradscaler_rule():
    # torch.amp.GradScaler's documented rule, worked by hand: 3 good steps with interval 3 double the scale.
    grads, scale, tracker = [torch.tensor([4.0])], 4.0, 0
    for _ in range(3):
        out, scale, tracker = S9.scaler_step(grads, scale, tracker, growth_interval=3)
    assert (scale, tracker, out[0].item()) == (8.0, 0, 1.0)
    assert S9.scaler_step([torch.tensor([float("inf")])], 8.0, 2) == (None, 4.0, 0)


def test_hidden_tests_file_and_grade_namespace(tmp_path):
    hidden = tmp_path / "hidden.py"
    hidden.write_text("def t(fn):\n    '''one more shape'''\n    assert fn(3).shape == (3, 3)\nHIDDEN_TESTS = {'03.1': [t]}\n")
    assert list(load_hidden_tests(hidden)) == ["03.1"]
    rows = grade_namespace({"causal_mask": S1.causal_mask, "attention": _attention_no_scale},
                           ["03.1", "03.2", "03.3"], str(hidden))
    assert [(r["exercise"], r["status"]) for r in rows] == [("03.1", "passed"), ("03.2", "failed"), ("03.3", "missing")]
    assert rows[0]["total"] == len(EXERCISES["03.1"].tests) + 1
    bad = tmp_path / "bad.py"
    bad.write_text("HIDDEN_TESTS = {'77.1': []}\n")
    with pytest.raises(ValueError, match="unknown exercise ids"):
        load_hidden_tests(bad)


def test_solution_blocks_become_stubs_at_their_indentation():
    from llm_from_scratch.exercises.notebook import drop_markers, strip_solutions

    src = "class A:\n    def f(self):\n        ### BEGIN SOLUTION\n        x = 1\n        return x\n        ### END SOLUTION\n\ncheck('01.1', A)"
    assert strip_solutions(src) == ("class A:\n    def f(self):\n        raise NotImplementedError  # your code here\n"
                                    "\ncheck('01.1', A)")
    assert drop_markers(src) == "class A:\n    def f(self):\n        x = 1\n        return x\n\ncheck('01.1', A)"
    for broken in ("### BEGIN SOLUTION\nx = 1", "x = 1\n### END SOLUTION", "### BEGIN SOLUTION\n### BEGIN SOLUTION"):
        with pytest.raises(ValueError):
            strip_solutions(broken)


def test_references_13_to_15_match_torch_and_hand_worked_ones():
    g = torch.Generator().manual_seed(3)
    x, mem = torch.randn(2, 3, 4, generator=g), torch.randn(2, 5, 4, generator=g)
    keep = torch.tensor([[True] * 5, [True, True, False, False, False]])
    out, w = S13.cross_attention(x, mem, keep)
    assert torch.allclose(out, F.scaled_dot_product_attention(x, mem, mem, attn_mask=keep[:, None, :]), atol=1e-6)
    assert torch.equal(w[1, :, 2:], torch.zeros(3, 3)) and torch.allclose(w.sum(-1), torch.ones(2, 3))
    # kitten -> sitting: 2 substitutions and 1 insertion; over 7 + 4 reference characters with "" -> "abcd" (4)
    assert S13.character_error_rate(["kitten", ""], ["sitting", "abcd"]) == (3 + 4) / 11
    scores, logp = S9.randn(5, 3), torch.log_softmax(S9.randn(6, 3, 7), -1)
    every = sorted(((scores[k] + logp[k, v]).item(), k, v) for k in range(3) for v in range(7))[::-1][:4]
    top, beam, tok = S13.beam_step(scores, logp, 4)
    assert [(round(s, 5), k, v) for s, k, v in every] == [(round(s, 5), k, v) for s, k, v in zip(top.tolist(), beam.tolist(), tok.tolist())]
    x, wt = torch.randn(3, 8, generator=g), torch.randn(8, generator=g)
    assert torch.allclose(S13.rms_norm(x, wt, 1e-5), F.rms_norm(x, (8,), wt, 1e-5), atol=1e-6)
    q, pos = torch.randn(1, 2, 5, 6, generator=g), torch.tensor([0, 3, 4, 9, 100])
    z = torch.complex(q[..., :3], q[..., 3:]) * torch.polar(torch.ones(5, 3), pos[:, None] * 10000.0 ** (-torch.arange(0, 6, 2) / 6))
    assert torch.allclose(S13.apply_rope(q, pos), torch.cat([z.real, z.imag], -1), atol=1e-5)
    kv = torch.randn(2, 3, 4, 5, generator=g)
    assert torch.equal(S13.repeat_kv(kv, 2), torch.stack([kv[:, h // 2] for h in range(6)], 1))
    tok = S13.chat_tokenizer()
    ids, labels = S13.encode_conversation(tok, S13._LONG)
    assert tok.decode(labels[labels != -100].tolist()) == "Roderigo<|end|>Iago<|end|>"
    assert tok.decode(ids.tolist()) == S13.sft.format_chat(S13._LONG)
    logits, lab = S13._logprob_args(9, 2, 6, 5, [(2, 5), (1, 3)])
    loop = [sum(torch.log_softmax(logits[b, t], -1)[lab[b, t + 1]].item() for t in range(5) if lab[b, t + 1] != -100)
            for b in range(2)]
    assert torch.allclose(S13.sequence_logprobs(logits, lab), torch.tensor(loop), atol=1e-5)
    loss, rw, rl = S13.dpo_loss(torch.tensor([-3.0]), torch.tensor([-5.0]), torch.tensor([-4.0]), torch.tensor([-4.0]), 0.5)
    # r_w = 0.5 (−3 + 4) = 0.5, r_l = 0.5 (−5 + 4) = −0.5: loss = −log σ(1) = log(1 + e^−1)
    assert (rw.item(), rl.item()) == (0.5, -0.5) and math.isclose(loss.item(), math.log1p(math.exp(-1)), rel_tol=1e-6)
