"""Exercises of chapters 01-04: the references (the package's own code, or the formula written out where
the package inlines it) and the public tests. Test inputs come from ``generator(seed)``: fixed."""

from __future__ import annotations

from collections import Counter

import torch

from llm_from_scratch import attention as A
from llm_from_scratch import optim
from llm_from_scratch.exercises.core import Exercise, Mismatch, expect_close, generator, randn, same_as_reference

# ---------------------------------------------------------------------------------------------- 01


def linear_forward(x, W, b):
    """y = x Wᵀ + b, nn.Linear's convention: x (..., in), W (out, in), b (out,) -> (..., out)."""
    return torch.nn.functional.linear(x, W, b)


def mse_grad(w, X, y):
    """∂L/∂w of L(w) = (1/N) Σᵢ (xᵢ·w − yᵢ)² = (2/N) Xᵀ (X w − y). X (N, D), w (D,), y (N,) -> (D,)."""
    return 2.0 / X.shape[0] * X.T @ (X @ w - y)


def conv2d_output_size(n, kernel_size, stride=1, padding=0):
    """Side of a Conv2d/MaxPool2d output: ⌊(n + 2p − k) / s⌋ + 1."""
    return (n + 2 * padding - kernel_size) // stride + 1


def _conv_sizes_test(fn):
    """sizes of SimpleNet's layers and strided cases"""
    for n, k, s, p in [(8, 3, 1, 1), (8, 2, 2, 0), (28, 5, 1, 0), (7, 3, 2, 1), (10, 4, 3, 0), (1, 1, 1, 0)]:
        expect_close(fn(n, k, s, p), conv2d_output_size(n, k, s, p), f"n={n}, kernel_size={k}, stride={s}, padding={p}")


# ---------------------------------------------------------------------------------------------- 02


def count_pairs(ids):
    """How often each adjacent pair (ids[i], ids[i+1]) occurs: {pair: count} (overlaps count: 'aaa' has 2)."""
    return dict(Counter(zip(ids, ids[1:])))


def _merge_by_str_replace(ids, pair, new_id):
    """The same merge by another road, to grade against: write each id as one character and let
    ``str.replace`` do it (it too replaces non-overlapping occurrences, left to right)."""
    text = "".join(map(chr, ids)).replace(chr(pair[0]) + chr(pair[1]), chr(new_id))
    return [ord(c) for c in text]


def merge_pair(ids, pair, new_id):
    """Replace each occurrence of ``pair`` by ``new_id``, scanning left to right, never overlapping."""
    out, i = [], 0
    while i < len(ids):
        if i + 1 < len(ids) and (ids[i], ids[i + 1]) == tuple(pair):
            out.append(new_id)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


def make_batch(tokens, starts, block_size):
    """Inputs x[b] = tokens[s_b : s_b + T] and targets y[b] = tokens[s_b + 1 : s_b + T + 1] -> (B, T) each."""
    x = torch.stack([tokens[s: s + block_size] for s in starts])
    y = torch.stack([tokens[s + 1: s + block_size + 1] for s in starts])
    return x, y


def _random_ids(seed, n, vocab):
    return torch.randint(vocab, (n,), generator=generator(seed)).tolist()


# ---------------------------------------------------------------------------------------------- 03


def causal_mask(T):
    """(T, T) bool, True = may attend: query i sees keys j <= i (the lower triangle, diagonal included)."""
    return A.causal_mask(T)


def attention(q, k, v, mask=None):
    """softmax(QKᵀ/√d_k + mask) V. q (..., T, d_k), k (..., S, d_k), v (..., S, d_v), mask bool (T, S)
    True = may attend -> (..., T, d_v); a query that may attend to no key gets a row of zeros."""
    return A.scaled_dot_product_attention(q, k, v, mask)[0]


def sinusoidal_pe(max_len, d_model):
    """PE(pos, 2i) = sin(pos / 10000^(2i/d)), PE(pos, 2i+1) = cos(pos / 10000^(2i/d)) -> (max_len, d_model)."""
    return A.sinusoidal_positional_encoding(max_len, d_model)


def split_heads(x, n_heads):
    """(B, T, C) -> (B, H, T, C/H): head h holds the features h·C/H ... (h+1)·C/H − 1 of every position."""
    B, T, C = x.shape
    return x.view(B, T, n_heads, C // n_heads).transpose(1, 2)


def _mask_with_empty_row():
    m = A.causal_mask(4).clone()
    m[2] = False  # query 2 may attend to nothing: its output must be zeros, not NaN
    return m


# ---------------------------------------------------------------------------------------------- 04


def momentum_step(theta, grad, velocity, lr, beta):
    """SGD with momentum (PyTorch's form): b_t = μ b_{t−1} + g_t; θ_t = θ_{t−1} − α b_t. Returns (θ_t, b_t)."""
    b = beta * velocity + grad
    return theta - lr * b, b


def adam_step(theta, grad, m, v, t, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8):
    """One Adam step (t = 1 for the first). m_t = β₁m + (1−β₁)g; v_t = β₂v + (1−β₂)g²;
    m̂ = m_t/(1−β₁ᵗ); v̂ = v_t/(1−β₂ᵗ); θ_t = θ − α m̂/(√v̂ + ε). Returns (θ_t, m_t, v_t).
    (The same equations as ``optim.Adam._step_reference``, without the optimizer's state dict.)"""
    m = beta1 * m + (1 - beta1) * grad
    v = beta2 * v + (1 - beta2) * grad * grad
    m_hat = m / (1 - beta1**t)
    v_hat = v / (1 - beta2**t)
    return theta - lr * m_hat / (v_hat.sqrt() + eps), m, v


def warmup_cosine(step, max_lr, warmup_steps, total_steps, min_lr=0.0):
    """optim.warmup_cosine: max_lr (s+1)/W during warmup, then a half cosine down to min_lr at step T."""
    return optim.warmup_cosine(step, max_lr=max_lr, warmup_steps=warmup_steps, total_steps=total_steps, min_lr=min_lr)


def _schedule_test(fn):
    """the learning rate at the steps that matter (0, end of warmup, middle, end, after)"""
    for W, T, hi, lo in [(10, 100, 1e-3, 1e-4), (1, 5, 0.5, 0.0), (0, 20, 2.0, 0.2)]:
        for s in sorted({0, max(W - 1, 0), W, (W + T) // 2, T - 1, T, T + 7}):
            expect_close(fn(s, hi, W, T, lo), warmup_cosine(s, hi, W, T, lo),
                         f"step={s}, max_lr={hi}, warmup_steps={W}, total_steps={T}, min_lr={lo}", atol=1e-12)


def _adam_state(seed, n):
    g = generator(seed)
    return (torch.randn(n, generator=g), torch.randn(n, generator=g), 0.1 * torch.randn(n, generator=g),
            0.01 * torch.rand(n, generator=g))


def _adam_first_step(fn):
    """the first step, t = 1, from m = v = 0: every coordinate moves by about α (times the sign of g)"""
    theta, grad = randn(40, 6), randn(41, 6) * 1e-3
    z = torch.zeros(6)
    got = fn(theta.clone(), grad.clone(), z.clone(), z.clone(), 1, 0.1)
    want = adam_step(theta, grad, z, z, 1, 0.1)
    if not isinstance(got, tuple) or len(got) != 3:
        raise Mismatch(f"expected a tuple (theta, m, v), got {type(got).__name__}")
    for g_, w_, name in zip(got, want, ("theta", "m", "v")):
        expect_close(g_, w_, "t=1, m=v=0, lr=0.1, a gradient of size 1e-3", what=name)


EXERCISES = [
    Exercise("01.1", "A linear layer by hand", "01_pytorch_basics", "linear_forward", "linear_forward(x, W, b) -> Tensor",
             "nn.Linear computes y = x Wᵀ + b with W of shape (out, in) (section on nn.Module)", linear_forward,
             (same_as_reference("a batch of 4 inputs", linear_forward, lambda: (randn(1, 4, 3), randn(2, 5, 3), randn(3, 5))),
              same_as_reference("a square W (does W need a transpose?)", linear_forward,
                                lambda: (randn(4, 2, 3), randn(5, 3, 3), randn(6, 3))),
              same_as_reference("extra leading dimensions (2, 3, in)", linear_forward,
                                lambda: (randn(7, 2, 3, 4), randn(8, 2, 4), randn(9, 2))))),
    Exercise("01.2", "A gradient by hand", "01_pytorch_basics", "mse_grad", "mse_grad(w, X, y) -> Tensor (D,)",
             "L = (1/N) Σ (xᵢ·w − yᵢ)², so ∂L/∂w = (2/N) Xᵀ(Xw − y); compare with autograd as the chapter does",
             mse_grad,
             (same_as_reference("N=5 points in D=3", mse_grad, lambda: (randn(10, 3), randn(11, 5, 3), randn(12, 5))),
              same_as_reference("N=1 point", mse_grad, lambda: (randn(13, 2), randn(14, 1, 2), randn(15, 1))),
              same_as_reference("N=50 points in D=4", mse_grad, lambda: (randn(16, 4), randn(17, 50, 4), randn(18, 50))))),
    Exercise("01.3", "The output size of a convolution", "01_pytorch_basics", "conv2d_output_size",
             "conv2d_output_size(n, kernel_size, stride=1, padding=0) -> int",
             "out = ⌊(n + 2·padding − kernel_size) / stride⌋ + 1: padding adds to both sides", conv2d_output_size,
             (_conv_sizes_test,)),
    Exercise("02.1", "Count adjacent pairs (one BPE statistic)", "02_tokenization_and_data", "count_pairs",
             "count_pairs(ids: list[int]) -> dict[tuple[int, int], int]",
             "BPE counts every adjacent pair (ids[i], ids[i+1]); overlapping pairs count ([5, 5, 5] holds (5, 5) twice)",
             count_pairs,
             (same_as_reference("a short list with repeats", count_pairs, lambda: ([1, 2, 1, 2, 1, 3],), what="the counts"),
              same_as_reference("a run of one id (overlaps)", count_pairs, lambda: ([5, 5, 5, 5],), what="the counts"),
              same_as_reference("a list of one id", count_pairs, lambda: ([7],), what="the counts"),
              same_as_reference("200 random ids", count_pairs, lambda: (_random_ids(20, 200, 6),), what="the counts"))),
    Exercise("02.2", "Apply one merge", "02_tokenization_and_data", "merge_pair",
             "merge_pair(ids: list[int], pair: tuple[int, int], new_id: int) -> list[int]",
             "scan left to right; after a merge skip both ids, so [5, 5, 5] with (5, 5) -> [new, 5]", merge_pair,
             (same_as_reference("a pair in the middle and at the end", _merge_by_str_replace, lambda: ([1, 2, 3, 1, 2], (1, 2), 9)),
              same_as_reference("overlapping occurrences", _merge_by_str_replace, lambda: ([5, 5, 5], (5, 5), 9)),
              same_as_reference("no occurrence", _merge_by_str_replace, lambda: ([1, 3, 2], (1, 2), 9)),
              same_as_reference("300 random ids", _merge_by_str_replace, lambda: (_random_ids(21, 300, 4), (2, 2), 4)))),
    Exercise("02.3", "Language-model windows", "02_tokenization_and_data", "make_batch",
             "make_batch(tokens: Tensor (N,), starts: list[int], block_size: int) -> (x, y), each (B, T)",
             "the target of position t is the NEXT token: y = tokens[s+1 : s+T+1]", make_batch,
             (same_as_reference("tokens 0..19, starts [0, 5, 12], T=4", make_batch, lambda: (torch.arange(20), [0, 5, 12], 4)),
              same_as_reference("a window that ends at the last token", make_batch, lambda: (torch.arange(10) * 3, [5], 4)),
              same_as_reference("random tokens, T=1", make_batch, lambda: (torch.tensor(_random_ids(22, 30, 50)), [0, 3, 28], 1)))),
    Exercise("03.1", "The causal mask", "03_attention", "causal_mask", "causal_mask(T: int) -> BoolTensor (T, T)",
             "True = may attend; query i sees keys 0..i, itself included (the lower triangle)", causal_mask,
             tuple(same_as_reference(f"T = {T}", causal_mask, (lambda T=T: (T,)), what="the mask") for T in (1, 2, 5))),
    Exercise("03.2", "Scaled dot-product attention", "03_attention", "attention",
             "attention(q, k, v, mask=None) -> Tensor (..., T, d_v)",
             "softmax(QKᵀ / √d_k) V with d_k = q.shape[-1]; masked scores -inf before the softmax; a fully masked "
             "row gives zeros", attention,
             (same_as_reference("q, k, v of shape (2, 3, 4, 8), no mask", attention,
                                lambda: (randn(30, 2, 3, 4, 8), randn(31, 2, 3, 4, 8), randn(32, 2, 3, 4, 8))),
              same_as_reference("d_k = 16, d_v = 3, 5 queries, 7 keys", attention,
                                lambda: (randn(33, 5, 16), randn(34, 7, 16), randn(35, 7, 3))),
              same_as_reference("a causal mask", attention,
                                lambda: (randn(36, 2, 4, 8), randn(37, 2, 4, 8), randn(38, 2, 4, 8), A.causal_mask(4))),
              same_as_reference("a mask with one fully masked row (expect zeros there, not NaN)", attention,
                                lambda: (randn(39, 4, 8), randn(40, 4, 8), randn(41, 4, 8), _mask_with_empty_row())))),
    Exercise("03.3", "Sinusoidal positions", "03_attention", "sinusoidal_pe", "sinusoidal_pe(max_len, d_model) -> Tensor",
             "PE(pos, 2i) = sin(pos / 10000^(2i/d)), PE(pos, 2i+1) = cos(same angle): even columns sine, odd cosine",
             sinusoidal_pe,
             (same_as_reference("max_len=4, d_model=6", sinusoidal_pe, lambda: (4, 6), atol=1e-5),
              same_as_reference("max_len=64, d_model=32", sinusoidal_pe, lambda: (64, 32), atol=1e-4))),
    Exercise("03.4", "Split into heads", "03_attention", "split_heads", "split_heads(x (B, T, C), n_heads) -> (B, H, T, C/H)",
             "reshape to (B, T, H, C/H) first, then swap T and H: a plain view to (B, H, T, C/H) mixes positions",
             split_heads,
             (same_as_reference("x of shape (2, 3, 8), 2 heads", split_heads, lambda: (randn(50, 2, 3, 8), 2)),
              same_as_reference("x of shape (1, 5, 12), 3 heads", split_heads, lambda: (randn(51, 1, 5, 12), 3)),
              same_as_reference("one head", split_heads, lambda: (randn(52, 2, 4, 6), 1)))),
    Exercise("04.1", "A momentum step", "04_adam_optimizer", "momentum_step",
             "momentum_step(theta, grad, velocity, lr, beta) -> (theta, velocity)",
             "b_t = μ b_{t−1} + g_t, then θ_t = θ_{t−1} − α b_t (section 4)", momentum_step,
             (same_as_reference("a first step (velocity 0)", momentum_step,
                                lambda: (randn(60, 5), randn(61, 5), torch.zeros(5), 0.1, 0.9)),
              same_as_reference("a later step", momentum_step, lambda: (randn(62, 3, 2), randn(63, 3, 2), randn(64, 3, 2), 0.02, 0.8)))),
    Exercise("04.2", "Adam's bias-corrected update", "04_adam_optimizer", "adam_step",
             "adam_step(theta, grad, m, v, t, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8) -> (theta, m, v)",
             "m̂ = m_t / (1 − β₁ᵗ), v̂ = v_t / (1 − β₂ᵗ), θ ← θ − α m̂ / (√v̂ + ε) with t counted from 1 (section 3)",
             adam_step,
             (_adam_first_step,
              same_as_reference("step t = 10 from a random state", adam_step, lambda: (*_adam_state(42, 7), 10, 0.01)),
              same_as_reference("step t = 3, β₂ = 0.99", adam_step, lambda: (*_adam_state(43, 4), 3, 0.1, 0.9, 0.99)))),
    Exercise("04.3", "Warmup then cosine", "04_adam_optimizer", "warmup_cosine",
             "warmup_cosine(step, max_lr, warmup_steps, total_steps, min_lr=0.0) -> float",
             "warmup lr = max_lr (s+1)/W (never 0); then min + ½(max − min)(1 + cos(π (s−W)/(T−W))); min_lr after T",
             warmup_cosine, (_schedule_test,)),
]
