"""Exercises of chapters 09-12: the references (the package's own code) and the public tests."""

from __future__ import annotations


import torch
import torch.nn.functional as F

from llm_from_scratch import crf, metrics, train
from llm_from_scratch.exercises.core import Exercise, Mismatch, expect_close, generator, randn, same_as_reference

# ---------------------------------------------------------------------------------------------- 09


def standardize_targets(y):
    """z = (y − ȳ) / s with ȳ the mean and s the sample standard deviation (n − 1, torch's default, as
    chapter 09's ``ys.std()``). y (N,) -> (z (N,), ȳ float, s float)."""
    mean, std = y.mean().item(), y.std().item()
    return (y - mean) / std, mean, std


def rmse_in_years(pred_z, y_true, mean, std):
    """The model predicts standardised targets; report the error in the targets' own unit:
    ŷ = pred_z · s + ȳ, then √((1/N) Σ (yᵢ − ŷᵢ)²) (metrics.rmse)."""
    return metrics.rmse(y_true.tolist(), (pred_z * std + mean).tolist())


def pearson_r(x, y):
    """r = Σ(x−x̄)(y−ȳ) / √(Σ(x−x̄)² Σ(y−ȳ)²) for two 1-D tensors (metrics.pearson_r)."""
    return metrics.pearson_r(x.tolist(), y.tolist())


def _years(seed, n):
    return 1590 + 25 * torch.rand(n, generator=generator(seed), dtype=torch.float64)


# ---------------------------------------------------------------------------------------------- 10
# One sequence, no batch: emissions (T, K); start (K,); trans (K, K) with trans[i, j] the score of i -> j;
# end (K,). score(x, y) = start[y₀] + Σₜ E[t, yₜ] + Σₜ trans[yₜ₋₁, yₜ] + end[y_{T−1}].


def _crf(start, trans, end):
    model = crf.CRF(len(start))
    with torch.no_grad():
        model.start_transitions.copy_(start)
        model.transitions.copy_(trans)
        model.end_transitions.copy_(end)
    return model


def sequence_score(emissions, tags, start, trans, end):
    """score(x, y) of one tag sequence: a 0-d tensor (crf.CRF.score)."""
    return _crf(start, trans, end).score(emissions[None], torch.as_tensor(tags)[None])[0].detach()


def log_partition(emissions, start, trans, end):
    """log Z(x) = log Σ_y exp score(x, y) by the forward algorithm: α₀ = start + E[0];
    αₜ(j) = logsumexp_i(αₜ₋₁(i) + trans[i, j]) + E[t, j]; log Z = logsumexp(α_{T−1} + end). A 0-d tensor."""
    return _crf(start, trans, end).log_partition(emissions[None])[0].detach()


def viterbi(emissions, start, trans, end):
    """The tag sequence of the highest score (max instead of logsumexp, then the backtrace from the best
    last tag INCLUDING end): a list of T ints (crf.CRF.decode)."""
    return _crf(start, trans, end).decode(emissions[None])[0]


def _crf_args(seed, T, K, end_scale=1.0):
    g = generator(seed)
    return (torch.randn(T, K, generator=g), torch.randn(K, generator=g), torch.randn(K, K, generator=g),
            end_scale * torch.randn(K, generator=g))


def _tags(seed, T, K):
    return torch.randint(K, (T,), generator=generator(seed)).tolist()


# ---------------------------------------------------------------------------------------------- 11


def conv1d_to_linear(weight):
    """GPT-2's Conv1D stores W of shape (in, out) and computes x W + b; nn.Linear stores (out, in) and
    computes x Wᵀ + b. So the Linear's weight is the transpose: (in, out) -> (out, in)."""
    return weight.t().contiguous()


def split_qkv(c_attn_weight, c_attn_bias):
    """GPT-2's fused c_attn: a Conv1D weight (d, 3d) and bias (3d,), the output columns in the order q, k, v.
    -> ((W_q, b_q), (W_k, b_k), (W_v, b_v)) with each W in nn.Linear's (out, in) = (d, d) layout."""
    d = c_attn_weight.shape[0]
    ws = conv1d_to_linear(c_attn_weight).split(d, dim=0)
    bs = c_attn_bias.split(d)
    return tuple((w.contiguous(), b.contiguous()) for w, b in zip(ws, bs))


def gelu_tanh(x):
    """GPT-2's GELU: 0.5 x (1 + tanh(√(2/π) (x + 0.044715 x³)))."""
    return F.gelu(x, approximate="tanh")


# ---------------------------------------------------------------------------------------------- 12


def mfu(tokens_per_s, n_params, n_layer, n_head, head_dim, seq_len, peak_flops):
    """MFU = tokens/s × (6N + 12·L·H·Q·T) / peak FLOP/s (train.flops_per_token, train.mfu)."""
    return train.mfu(tokens_per_s, train.flops_per_token(n_params, n_layer, n_head, head_dim, seq_len), peak_flops)


def scaler_step(grads, scale, growth_tracker, growth_factor=2.0, backoff_factor=0.5, growth_interval=2000):
    """One step of dynamic loss scaling (torch.amp.GradScaler's rule). grads were computed on loss × scale.
    Unscale: g / scale. If any unscaled gradient is inf or NaN: skip the step -> (None, scale × backoff, 0).
    Else count the good step: tracker + 1; when it reaches growth_interval, scale × growth and tracker 0.
    Returns (the unscaled grads or None, new scale, new tracker)."""
    unscaled = [g / scale for g in grads]
    if not all(bool(torch.isfinite(g).all()) for g in unscaled):
        return None, scale * backoff_factor, 0
    growth_tracker += 1
    if growth_tracker == growth_interval:
        return unscaled, scale * growth_factor, 0
    return unscaled, scale, growth_tracker


def _scaler_test(doc, grads, scale, tracker, interval):
    def test(fn):
        want = scaler_step([g.clone() for g in grads], scale, tracker, growth_interval=interval)
        got = fn([g.clone() for g in grads], scale, tracker, growth_interval=interval)
        on = f"{doc}: scale={scale}, growth_tracker={tracker}, growth_interval={interval}"
        if not isinstance(got, tuple) or len(got) != 3:
            raise Mismatch(f"on {on}: expected (grads or None, scale, tracker), got {type(got).__name__}")
        if want[0] is None and got[0] is not None:
            raise Mismatch(f"on {on}: expected None (skip the step: a gradient overflowed), got gradients")
        if want[0] is not None:
            if got[0] is None:
                raise Mismatch(f"on {on}: expected the unscaled gradients, got None (the step was skipped)")
            expect_close(list(got[0]), want[0], on, what="the unscaled grads")
        expect_close(got[1], want[1], on, what="the new scale")
        expect_close(got[2], want[2], on, what="the new growth_tracker")

    test.__doc__ = doc
    return test


def micro_batch_index(first_index, micro, rank, world_size):
    """The micro-batch that rank r reads at micro-step m of a step whose first micro-batch is first_index:
    first_index + m·W + r, so that W ranks with one micro-step each read what one rank with W micro-steps
    reads (train.micro_batch_index)."""
    return train.micro_batch_index(first_index, micro, rank, world_size)


def _micro_batch_test(fn):
    """every (step, micro-step, rank) of 2 steps with K = 3 micro-steps on W = 1, 2 and 4 ranks"""
    for W in (1, 2, 4):
        K = 3
        for s in range(2):
            for m in range(K):
                for r in range(W):
                    on = f"first_index={s * K * W} (step {s}), micro={m}, rank={r}, world_size={W}"
                    expect_close(fn(s * K * W, m, r, W), micro_batch_index(s * K * W, m, r, W), on, atol=0, rtol=0)


EXERCISES = [
    Exercise("09.1", "Standardised regression targets", "09_finetune_regression", "standardize_targets",
             "standardize_targets(y (N,)) -> (z (N,), mean: float, std: float)",
             "z = (y − ȳ)/s with s = y.std() (n − 1): the head then predicts numbers near 0 with spread 1",
             standardize_targets,
             (same_as_reference("20 years between 1590 and 1615", standardize_targets, lambda: (_years(180, 20),)),
              same_as_reference("2 values", standardize_targets, lambda: (torch.tensor([1600.0, 1610.0], dtype=torch.float64),)))),
    Exercise("09.2", "The error in years", "09_finetune_regression", "rmse_in_years",
             "rmse_in_years(pred_z, y_true, mean, std) -> float",
             "undo the standardisation first, ŷ = z·s + ȳ, then RMSE = √(mean (y − ŷ)²) in years", rmse_in_years,
             (same_as_reference("10 predictions, mean 1600, std 6", rmse_in_years,
                                lambda: (randn(181, 10).double(), _years(182, 10), 1600.0, 6.0)),
              same_as_reference("a perfect prediction (RMSE 0)", rmse_in_years,
                                lambda: (torch.tensor([-1.0, 0.5], dtype=torch.float64), torch.tensor([1594.0, 1603.0], dtype=torch.float64), 1600.0, 6.0)))),
    Exercise("09.3", "Pearson's correlation", "09_finetune_regression", "pearson_r", "pearson_r(x (N,), y (N,)) -> float",
             "r = Σ(x−x̄)(y−ȳ) / √(Σ(x−x̄)² Σ(y−ȳ)²): centre both sides first", pearson_r,
             (same_as_reference("30 noisy points around a line", pearson_r,
                                lambda: (_years(183, 30), 2 * _years(183, 30) + 5 * randn(184, 30).double())),
              same_as_reference("a perfect negative relation", pearson_r,
                                lambda: (torch.tensor([1.0, 2.0, 3.0, 4.0]) + 1000, torch.tensor([8.0, 6.0, 4.0, 2.0]))))),
    Exercise("10.1", "The score of a tag sequence", "10_sequence_labeling_crf", "sequence_score",
             "sequence_score(emissions (T, K), tags: list[int], start (K,), trans (K, K), end (K,)) -> 0-d Tensor",
             "score = start[y₀] + Σ E[t, yₜ] + Σ trans[yₜ₋₁, yₜ] + end[y_{T−1}] (trans[i, j]: from i to j)",
             sequence_score,
             (same_as_reference("T = 6, K = 4", sequence_score, lambda: (_crf_args(190, 6, 4)[0], _tags(191, 6, 4), *_crf_args(190, 6, 4)[1:])),
              same_as_reference("a single token (T = 1)", sequence_score,
                                lambda: (_crf_args(192, 1, 3)[0], [2], *_crf_args(192, 1, 3)[1:])))),
    Exercise("10.2", "The forward algorithm (log Z)", "10_sequence_labeling_crf", "log_partition",
             "log_partition(emissions (T, K), start (K,), trans (K, K), end (K,)) -> 0-d Tensor",
             "α₀ = start + E[0]; αₜ(j) = logsumexp_i(αₜ₋₁(i) + trans[i, j]) + E[t, j]; log Z = logsumexp(α + end)",
             log_partition,
             (same_as_reference("T = 5, K = 3", log_partition, lambda: _crf_args(193, 5, 3)),
              same_as_reference("a single token (T = 1)", log_partition, lambda: _crf_args(194, 1, 4)),
              same_as_reference("large end scores", log_partition, lambda: _crf_args(195, 4, 3, end_scale=5.0)))),
    Exercise("10.3", "Viterbi decoding with the backtrace", "10_sequence_labeling_crf", "viterbi",
             "viterbi(emissions (T, K), start (K,), trans (K, K), end (K,)) -> list[int]",
             "δₜ(j) = maxᵢ(δₜ₋₁(i) + trans[i, j]) + E[t, j], remember the argmax; start the backtrace from "
             "argmax(δ_{T−1} + end)", viterbi,
             tuple(same_as_reference(doc, viterbi, (lambda a=a: a), what="the best path") for doc, a in [
                 ("T = 7, K = 4", _crf_args(196, 7, 4)),
                 ("a single token (T = 1)", _crf_args(197, 1, 5)),
                 ("end scores that change the best last tag", _crf_args(198, 4, 3, end_scale=6.0)),
                 ("strong transitions, weak emissions", (0.1 * randn(199, 6, 3), randn(200, 3), 4 * randn(201, 3, 3), randn(202, 3))),
             ])),
    Exercise("11.1", "The Conv1D weight transpose", "11_pretrained_gpt2", "conv1d_to_linear",
             "conv1d_to_linear(weight (in, out)) -> Tensor (out, in)",
             "Conv1D computes x W + b with W (in, out); nn.Linear computes x Wᵀ + b with W (out, in): transpose",
             conv1d_to_linear,
             (same_as_reference("a (4, 12) weight (like c_attn, d = 4)", conv1d_to_linear, lambda: (randn(210, 4, 12),)),
              same_as_reference("a square (5, 5) weight (like c_proj)", conv1d_to_linear, lambda: (randn(211, 5, 5),)))),
    Exercise("11.2", "Splitting GPT-2's fused q, k, v", "11_pretrained_gpt2", "split_qkv",
             "split_qkv(c_attn_weight (d, 3d), c_attn_bias (3d,)) -> ((W_q, b_q), (W_k, b_k), (W_v, b_v))",
             "the OUTPUT columns hold q, k, v in that order: split the 3d columns in thirds, and transpose each "
             "to nn.Linear's (out, in)", split_qkv,
             (same_as_reference("d = 4", split_qkv, lambda: (randn(212, 4, 12), randn(213, 12))),
              same_as_reference("d = 6", split_qkv, lambda: (randn(214, 6, 18), randn(215, 18))))),
    Exercise("11.3", "GPT-2's GELU", "11_pretrained_gpt2", "gelu_tanh", "gelu_tanh(x) -> Tensor",
             "GPT-2 uses the tanh approximation 0.5x(1 + tanh(√(2/π)(x + 0.044715x³))), not the exact erf form",
             gelu_tanh,
             (same_as_reference("x from -4 to 4", gelu_tanh, lambda: (torch.linspace(-4, 4, 81, dtype=torch.float64),),
                                atol=1e-7, rtol=1e-7),
              same_as_reference("random x of shape (3, 5)", gelu_tanh, lambda: (randn(216, 3, 5).double(),), atol=1e-7, rtol=1e-7))),
    Exercise("12.1", "Model FLOPs utilisation", "12_scaling_up", "mfu",
             "mfu(tokens_per_s, n_params, n_layer, n_head, head_dim, seq_len, peak_flops) -> float",
             "FLOPs per token = 6N (2 forward + 4 backward per parameter) + 12·L·H·Q·T (attention); "
             "MFU = tokens/s × FLOPs per token / peak", mfu,
             (same_as_reference("GPT-2 small at 10,000 tokens/s on an H100 (989 TFLOP/s)", mfu,
                                lambda: (1e4, 124_000_000, 12, 12, 64, 1024, 989e12), atol=1e-12, rtol=1e-9),
              same_as_reference("a tiny model, long context", mfu, lambda: (2e5, 1_000_000, 4, 4, 32, 4096, 65e12),
                                atol=1e-12, rtol=1e-9))),
    Exercise("12.2", "A gradient-scaler step", "12_scaling_up", "scaler_step",
             "scaler_step(grads, scale, growth_tracker, growth_factor=2.0, backoff_factor=0.5, growth_interval=2000)"
             " -> (grads or None, scale, growth_tracker)",
             "unscale g/scale; any inf or NaN: skip (None), halve the scale, tracker 0; else tracker + 1 and double "
             "the scale when it reaches growth_interval", scaler_step,
             (_scaler_test("finite gradients", [randn(220, 3) * 1024, randn(221, 2, 2) * 1024], 1024.0, 5, 2000),
              _scaler_test("an inf gradient", [randn(222, 3), torch.tensor([1.0, float("inf")])], 65536.0, 7, 2000),
              _scaler_test("a NaN gradient", [torch.tensor([float("nan")])], 8.0, 0, 2000),
              _scaler_test("the step that reaches growth_interval", [randn(223, 4)], 256.0, 2, 3))),
    Exercise("12.3", "Which micro-batch each rank reads", "12_scaling_up", "micro_batch_index",
             "micro_batch_index(first_index, micro, rank, world_size) -> int",
             "index = first_index + micro·W + rank: the ranks interleave, so W ranks × 1 micro-step read the same "
             "batches as 1 rank × W micro-steps", micro_batch_index, (_micro_batch_test,)),
]
