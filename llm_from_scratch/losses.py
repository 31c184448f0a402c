"""Task losses written from their formulas (chapters 07-09): cross entropy and mean squared error.

Classification (the documents' L_cls), for examples i with true class y_i and logits z_i:

    P(c | x_i; θ) = softmax(z_i)_c = exp(z_ic) / Σ_k exp(z_ik)
    L_cls(θ)      = − Σ_i log P(y_i | x_i; θ)        (reduction="sum"; "mean" divides by the count)

Written with one-hot y_i it is −Σ_i Σ_c y_ic log P(c | x_i), which is also the form for soft
targets (class probabilities) and label smoothing.

Regression (the documents' L_reg), for predictions f(x_i; θ) and targets y_i:

    L_reg(θ) = Σ_i (y_i − f(x_i; θ))²                  (reduction="sum"; "mean" divides by the count)

Both equal ``torch.nn.functional.cross_entropy`` / ``mse_loss`` (tests); the point of writing them out
is to see the log-sum-exp trick that keeps the cross entropy finite for logits of ±1e4, where the
naive ``log(softmax(z))`` gives log(0) = −inf.
"""

from __future__ import annotations

import torch
from torch import Tensor

IGNORE_INDEX = -100
REDUCTIONS = ("mean", "sum", "none")


def _check_reduction(reduction: str) -> None:
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")


def log_sum_exp(z: Tensor, dim: int = -1) -> Tensor:
    """log Σ_k exp(z_k) along ``dim``, computed as m + log Σ_k exp(z_k − m) with m = max_k z_k.

    Subtracting the max makes the largest exponent exp(0) = 1: nothing overflows (exp(1e4) = inf in
    any float format) and the sum is at least 1, so its log is finite. The result is the same
    number because log Σ exp(z − m) + m = log(e^{−m} Σ exp z) + m.
    """
    m = z.max(dim=dim, keepdim=True).values.detach()  # the gradient does not depend on the shift
    m = torch.where(torch.isfinite(m), m, torch.zeros_like(m))  # a row of all −inf stays −inf, not NaN
    return (m + torch.log(torch.exp(z - m).sum(dim=dim, keepdim=True))).squeeze(dim)


def log_softmax(z: Tensor, dim: int = -1) -> Tensor:
    """log P(c) = z_c − log Σ_k exp(z_k): the stable form of ``log(softmax(z))``.

    Computed as (z_c − m) − log Σ_k exp(z_k − m): subtracting m first keeps the small difference
    exact (for z ≈ 1e4 in float32, z_c − (m + log Σ ...) would lose three decimal digits).
    """
    m = z.max(dim=dim, keepdim=True).values.detach()
    m = torch.where(torch.isfinite(m), m, torch.zeros_like(m))
    shifted = z - m
    return shifted - torch.log(torch.exp(shifted).sum(dim=dim, keepdim=True))


def cross_entropy(
    logits: Tensor,
    targets: Tensor,
    reduction: str = "mean",
    ignore_index: int = IGNORE_INDEX,
    label_smoothing: float = 0.0,
) -> Tensor:
    """L_cls = −Σ_i log P(y_i | x_i): the cross entropy of the true classes under softmax(logits).

    Args:
        logits: (N, C) scores, or (C,) for one example. Classes are on the last axis; for a
            sequence model's (B, T, V) logits pass ``logits.view(-1, V)`` and ``targets.view(-1)``,
            exactly as with torch.
        targets: (N,) class indices in [0, C) (``ignore_index`` marks examples to skip), or (N, C)
            class probabilities (soft targets; each row sums to 1).
        reduction: "mean" (over the examples not ignored), "sum", or "none" (per example; 0 where ignored).
        ignore_index: target value to skip (default -100, torch's and transformers' convention).
        label_smoothing: ε in [0, 1): the target becomes (1 − ε)·one_hot(y) + ε/C (torch's definition).

    Returns: a scalar, or (N,) with reduction="none". Equal to ``F.cross_entropy`` with the same arguments.
    If every target is ignored, "mean" returns a zero attached to the graph (torch returns NaN).
    """
    _check_reduction(reduction)
    if not 0.0 <= label_smoothing < 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing!r}")
    if logits.dim() not in (1, 2):
        raise ValueError(f"logits must be (N, C) or (C,), got shape {tuple(logits.shape)}; "
                         "for (B, T, V) pass logits.view(-1, V) and targets.view(-1)")
    if not logits.is_floating_point():
        raise TypeError(f"logits must be floating point, got {logits.dtype}")
    num_classes = logits.shape[-1]
    log_p = log_softmax(logits, dim=-1)  # (N, C) or (C,)

    if targets.is_floating_point():  # soft targets: −Σ_c y_c log P(c)
        if targets.shape != logits.shape:
            raise ValueError(f"soft targets (class probabilities) must have the logits' shape "
                             f"{tuple(logits.shape)}, got {tuple(targets.shape)}")
        y = targets if label_smoothing == 0 else (1 - label_smoothing) * targets + label_smoothing / num_classes
        per_example = -(y * log_p).sum(dim=-1)
        if reduction == "none":
            return per_example
        return per_example.sum() if reduction == "sum" else per_example.sum() / max(per_example.numel(), 1)

    if targets.shape != logits.shape[:-1]:
        raise ValueError(f"class-index targets must have shape {tuple(logits.shape[:-1])} "
                         f"(logits {tuple(logits.shape)} without the class axis), got {tuple(targets.shape)}")
    keep = targets != ignore_index
    safe_targets = torch.where(keep, targets, torch.zeros_like(targets)).long()
    # The range check reads values back to Python: free on the CPU, a host synchronisation on a GPU
    # (there an out-of-range index still fails, as a device-side assert in gather).
    if targets.device.type == "cpu" and keep.any() and (
            int(targets[keep].min()) < 0 or int(targets[keep].max()) >= num_classes):
        raise ValueError(f"targets must be class indices in [0, {num_classes}) or ignore_index={ignore_index}; "
                         f"got values in [{int(targets[keep].min())}, {int(targets[keep].max())}]")
    nll = -log_p.gather(-1, safe_targets.unsqueeze(-1)).squeeze(-1)  # −log P(y_i | x_i)
    if label_smoothing > 0:
        # (1 − ε)·(−log P(y)) + ε·mean_c(−log P(c))
        nll = (1 - label_smoothing) * nll - label_smoothing * log_p.mean(dim=-1)
    nll = torch.where(keep, nll, torch.zeros_like(nll))
    if reduction == "none":
        return nll
    if reduction == "sum":
        return nll.sum()
    # nothing to learn from (every target ignored): a defined zero instead of 0/0, with no `if` on
    # the count (that would be a host synchronisation each step)
    return nll.sum() / keep.sum().clamp(min=1)


def mse_loss(pred: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    """L_reg = Σ_i (y_i − f(x_i))²; "mean" (torch's default) divides by the number of elements.

    ``pred`` and ``target`` must have the same shape: a (N, 1) prediction against an (N,) target
    would silently broadcast to (N, N) and compare every prediction with every target.
    """
    _check_reduction(reduction)
    if pred.shape != target.shape:
        raise ValueError(f"pred and target must have the same shape, got {tuple(pred.shape)} and "
                         f"{tuple(target.shape)}; e.g. squeeze a regression head's (N, 1) output to (N,)")
    if not pred.is_floating_point():
        raise TypeError(f"pred must be floating point, got {pred.dtype}")
    squared_error = (target.to(pred.dtype) - pred) ** 2
    if reduction == "none":
        return squared_error
    return squared_error.sum() if reduction == "sum" else squared_error.mean()
