"""Adam, AdamW and learning-rate schedules, written from their update equations (chapter 04).

Adam keeps two running averages per parameter, of the gradient and of its square, and
divides one by the square root of the other, so every coordinate takes a step of about
``lr`` whatever the scale of its gradient. For a parameter θ with gradient g_t at step t:

    m_t = β₁ m_{t-1} + (1 - β₁) g_t            first moment (momentum)
    v_t = β₂ v_{t-1} + (1 - β₂) g_t²           second moment (per-coordinate scale)
    m̂_t = m_t / (1 - β₁ᵗ)                      bias correction: m_0 = v_0 = 0 pulls early
    v̂_t = v_t / (1 - β₂ᵗ)                      averages toward zero; this undoes it
    θ_t = θ_{t-1} - α m̂_t / (√v̂_t + ε)

Weight decay comes in two forms:

- ``Adam(weight_decay=λ)``: the L2 form, g_t ← g_t + λ θ_{t-1}. The decay goes through
  the division by √v̂_t, so parameters with large gradients are barely decayed.
- ``AdamW(weight_decay=λ)``: decoupled (Loshchilov & Hutter), θ ← θ (1 - α λ) before the
  Adam update; every parameter shrinks by the same factor.

Both are ``torch.optim.Optimizer`` subclasses with torch's constructor arguments, parameter
groups and ``state_dict``/``load_state_dict``. The state holds only tensors and numbers, so a
checkpoint saved with ``torch.save(optimizer.state_dict())`` loads back with
``torch.load(..., weights_only=True)``. ``foreach=False`` runs :meth:`Adam._step_reference`,
a plain loop over the parameters that reads like the equations; the default runs
:meth:`Adam._step_foreach`, the same arithmetic on whole lists of tensors with
``torch._foreach_*`` (one kernel launch per operation instead of one per parameter).

The schedules at the bottom are pure functions ``step -> lr``; :func:`set_lr` writes one into
an optimizer and :func:`lambda_lr` wraps one as a ``torch.optim.lr_scheduler.LambdaLR``.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable
from numbers import Integral, Real
from typing import Any

import torch

__all__ = [
    "Adam",
    "AdamW",
    "warmup_cosine",
    "linear_decay",
    "exponential_decay",
    "set_lr",
    "lambda_lr",
]


def _check_hyperparameters(lr: Any, betas: Any, eps: Any, weight_decay: Any, where: str = "") -> None:
    """Raise a ValueError that names the bad hyper-parameter, its value and the valid range."""
    def is_number(x: Any) -> bool:
        return isinstance(x, Real) and not isinstance(x, bool)

    if not is_number(lr) or not lr >= 0.0:  # `not >=` also catches NaN
        raise ValueError(f"Invalid learning rate{where}: lr={lr!r}; it must be a number >= 0 (typical: 1e-4 to 1e-3).")
    if not isinstance(betas, (tuple, list)) or len(betas) != 2:
        raise ValueError(f"Invalid betas{where}: betas={betas!r}; give a pair (beta1, beta2), e.g. (0.9, 0.999).")
    for i, beta in enumerate(betas):
        if not is_number(beta) or not 0.0 <= beta < 1.0:
            raise ValueError(
                f"Invalid beta{i + 1}{where}: betas[{i}]={beta!r}; it must lie in [0, 1) "
                f"(beta=1 would never forget, and the bias correction 1 - beta^t would divide by zero)."
            )
    if not is_number(eps) or not eps >= 0.0:
        raise ValueError(f"Invalid epsilon{where}: eps={eps!r}; it must be a number >= 0 (typical: 1e-8).")
    if not is_number(weight_decay) or not weight_decay >= 0.0:
        raise ValueError(
            f"Invalid weight_decay{where}: weight_decay={weight_decay!r}; it must be a number >= 0 (0 turns it off)."
        )


class Adam(torch.optim.Optimizer):
    """Adam (Kingma & Ba, 2015) with L2 weight decay ``g ← g + λθ``; see the module docstring.

    Args:
        params: an iterable of tensors or of parameter-group dicts (each may override any
            hyper-parameter below, as in torch).
        lr: the step size α.
        betas: (β₁, β₂), decay rates of the first and second moment averages, each in [0, 1).
        eps: ε, added to √v̂_t so that coordinates with a near-zero gradient do not blow up.
        weight_decay: λ (L2 form here; decoupled in :class:`AdamW`).
        foreach: True (default) for the vectorized step over whole lists of tensors,
            False for the per-parameter reference loop. Both compute the same update.

    State per parameter (created on its first gradient): ``step`` (an int t),
    ``exp_avg`` (m_t) and ``exp_avg_sq`` (v_t), tensors of the parameter's shape.
    """

    decoupled_weight_decay: bool = False

    def __init__(
        self,
        params: Iterable[torch.Tensor] | Iterable[dict[str, Any]],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        *,
        foreach: bool = True,
    ) -> None:
        _check_hyperparameters(lr, betas, eps, weight_decay)
        defaults = dict(
            lr=lr,
            betas=tuple(betas),
            eps=eps,
            weight_decay=weight_decay,
            foreach=foreach,
            # Stored in every group (as torch does) so a state_dict says which rule it used.
            decoupled_weight_decay=self.decoupled_weight_decay,
        )
        super().__init__(params, defaults)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        # Validate what the group overrides here, so a bad per-group lr fails at construction
        # with the group named, not as a NaN a thousand steps later.
        merged = {**self.defaults, **param_group}
        where = f" in parameter group {len(self.param_groups)}"
        _check_hyperparameters(merged["lr"], merged["betas"], merged["eps"], merged["weight_decay"], where)
        super().add_param_group(param_group)

    # ------------------------------------------------------------------ state
    def _params_with_grad(self, group: dict[str, Any]) -> list[torch.Tensor]:
        """The group's parameters that have a gradient this step, their state created on first use."""
        params = []
        for p in group["params"]:
            if p.grad is None:
                continue  # frozen or unused this step: no update, no state
            if p.grad.is_sparse:
                raise RuntimeError("Adam does not support sparse gradients; use torch.optim.SparseAdam instead.")
            if p.is_complex():
                raise RuntimeError(
                    "This Adam handles real parameters only; view a complex parameter as real "
                    "(torch.view_as_real) or use torch.optim.Adam."
                )
            if group.get("amsgrad", False) or group.get("maximize", False):
                raise ValueError(
                    "amsgrad and maximize are not implemented here (a parameter group loaded from "
                    "torch.optim.Adam asks for them); set them to False or use torch.optim.Adam."
                )
            state = self.state[p]
            if len(state) == 0:
                state["step"] = 0
                # m_0 = v_0 = 0: the source of the bias that m̂ and v̂ correct.
                state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            elif torch.is_tensor(state["step"]):
                # A state_dict from torch.optim.Adam keeps the step as a tensor; we keep an int.
                state["step"] = int(state["step"].item())
            params.append(p)
        return params

    @torch.no_grad()
    def step(self, closure: Callable[[], torch.Tensor] | None = None) -> torch.Tensor | None:
        """One Adam update of every parameter that has a gradient. Returns closure() if given."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            params = self._params_with_grad(group)
            if not params:
                continue
            foreach = group.get("foreach")
            if foreach is None or foreach:  # None: a group loaded from torch, whose default is foreach
                self._step_foreach(group, params)
            else:
                self._step_reference(group, params)
        return loss

    # ---------------------------------------------------- the update, readable
    def _step_reference(self, group: dict[str, Any], params: list[torch.Tensor]) -> None:
        """The update equations, one parameter at a time (the version chapter 04 reads)."""
        lr, (beta1, beta2), eps, wd = group["lr"], group["betas"], group["eps"], group["weight_decay"]
        decoupled = group.get("decoupled_weight_decay", self.decoupled_weight_decay)
        for p in params:
            state = self.state[p]
            state["step"] += 1
            t = state["step"]
            g = p.grad
            m, v = state["exp_avg"], state["exp_avg_sq"]
            if wd != 0:
                if decoupled:
                    p.mul_(1 - lr * wd)  # AdamW: θ ← θ(1 - αλ), outside the adaptive scaling
                else:
                    g = g + wd * p  # Adam + L2: the decay rides in the gradient (new tensor: p.grad untouched)
            m.mul_(beta1).add_(g, alpha=1 - beta1)  # m_t = β₁ m_{t-1} + (1 - β₁) g_t
            v.mul_(beta2).addcmul_(g, g, value=1 - beta2)  # v_t = β₂ v_{t-1} + (1 - β₂) g_t²
            m_hat = m / (1 - beta1**t)  # m̂_t = m_t / (1 - β₁ᵗ)
            v_hat = v / (1 - beta2**t)  # v̂_t = v_t / (1 - β₂ᵗ)
            p.addcdiv_(m_hat, v_hat.sqrt().add_(eps), value=-lr)  # θ_t = θ_{t-1} - α m̂_t / (√v̂_t + ε)

    # ---------------------------------------------------- the update, vectorized
    def _step_foreach(self, group: dict[str, Any], params: list[torch.Tensor]) -> None:
        """The same update on lists of tensors: each line is one ``torch._foreach_*`` call.

        Algebra that saves passes over memory: m_t = β₁ m + (1 - β₁) g is ``lerp(m, g, 1 - β₁)``,
        and the bias corrections fold into scalars, α m̂/(√v̂ + ε) = (α/(1-β₁ᵗ)) m / (√v/√(1-β₂ᵗ) + ε).
        ``_foreach_*`` ops need one device and dtype per list, so the group is split by those.
        """
        lr, (beta1, beta2), eps, wd = group["lr"], group["betas"], group["eps"], group["weight_decay"]
        decoupled = group.get("decoupled_weight_decay", self.decoupled_weight_decay)
        buckets: dict[tuple[torch.device, torch.dtype], list[torch.Tensor]] = defaultdict(list)
        for p in params:
            buckets[(p.device, p.dtype)].append(p)
        for ps in buckets.values():
            states = [self.state[p] for p in ps]
            grads = [p.grad for p in ps]
            ms = [s["exp_avg"] for s in states]
            vs = [s["exp_avg_sq"] for s in states]
            for s in states:
                s["step"] += 1
            steps = [s["step"] for s in states]

            if wd != 0:
                if decoupled:
                    torch._foreach_mul_(ps, 1 - lr * wd)
                else:
                    grads = torch._foreach_add(grads, ps, alpha=wd)  # new tensors: p.grad untouched
            torch._foreach_lerp_(ms, grads, 1 - beta1)
            torch._foreach_mul_(vs, beta2)
            torch._foreach_addcmul_(vs, grads, grads, 1 - beta2)

            # Parameters of one group usually share t (unless some had no grad on some steps):
            # then the corrections are one scalar, else one per tensor.
            if all(t == steps[0] for t in steps):
                step_size: float | list[float] = -lr / (1 - beta1 ** steps[0])
                bias2_sqrt: float | list[float] = math.sqrt(1 - beta2 ** steps[0])
            else:
                step_size = [-lr / (1 - beta1**t) for t in steps]
                bias2_sqrt = [math.sqrt(1 - beta2**t) for t in steps]
            denom = torch._foreach_sqrt(vs)
            torch._foreach_div_(denom, bias2_sqrt)
            torch._foreach_add_(denom, eps)
            if isinstance(step_size, list):
                torch._foreach_addcdiv_(ps, ms, denom, step_size)
            else:
                torch._foreach_addcdiv_(ps, ms, denom, value=step_size)


class AdamW(Adam):
    """AdamW (Loshchilov & Hutter, 2019): Adam with decoupled weight decay θ ← θ(1 - αλ).

    Same arguments as :class:`Adam`; ``weight_decay`` defaults to 0.01 as in ``torch.optim.AdamW``.
    """

    decoupled_weight_decay = True

    def __init__(
        self,
        params: Iterable[torch.Tensor] | Iterable[dict[str, Any]],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        *,
        foreach: bool = True,
    ) -> None:
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, foreach=foreach)


# ====================================================================== schedules
def _check_schedule(step: Any, max_lr: Any, min_lr: Any, warmup_steps: Any) -> None:
    if isinstance(step, bool) or not isinstance(step, Integral) or step < 0:
        raise ValueError(f"step must be an int >= 0 (the number of optimizer steps taken so far); got {step!r}.")
    if isinstance(warmup_steps, bool) or not isinstance(warmup_steps, Integral) or warmup_steps < 0:
        raise ValueError(f"warmup_steps must be an int >= 0; got {warmup_steps!r}.")
    if not (isinstance(max_lr, Real) and isinstance(min_lr, Real)) or not 0.0 <= min_lr <= max_lr:
        raise ValueError(f"need 0 <= min_lr <= max_lr; got min_lr={min_lr!r}, max_lr={max_lr!r}.")


def _warmup(step: int, max_lr: float, warmup_steps: int) -> float:
    """Linear warmup lr = max_lr (step + 1) / warmup_steps: never 0, reaches max_lr at step warmup_steps - 1."""
    return max_lr * (step + 1) / warmup_steps


def _check_total_steps(total_steps, warmup_steps) -> None:
    if isinstance(total_steps, bool) or not isinstance(total_steps, Integral) or total_steps <= warmup_steps:
        raise ValueError(
            f"total_steps must be an int > warmup_steps; got total_steps={total_steps!r}, warmup_steps={warmup_steps!r}."
        )


def warmup_cosine(step: int, *, max_lr: float, warmup_steps: int, total_steps: int, min_lr: float = 0.0) -> float:
    """Linear warmup, then a half cosine from ``max_lr`` down to ``min_lr`` (GPT-2/3, nanoGPT).

    With W = warmup_steps and T = total_steps:

        lr(s) = max_lr (s + 1) / W                                        for s < W
        lr(s) = min_lr + ½ (max_lr - min_lr) (1 + cos(π (s - W) / (T - W)))   for W ≤ s ≤ T
        lr(s) = min_lr                                                    for s > T

    So lr(W) = max_lr, lr((W + T)/2) = (max_lr + min_lr)/2 and lr(T) = min_lr. The warmup
    starts at max_lr/W rather than 0 so that step 0 is not wasted.

    Args:
        step: optimizer steps taken so far (0 for the first step).
        max_lr: the peak learning rate, reached at the end of warmup.
        warmup_steps: W >= 0 (0: start at max_lr).
        total_steps: T > W, the step at which the cosine reaches min_lr.
        min_lr: the floor (often max_lr / 10).
    """
    _check_schedule(step, max_lr, min_lr, warmup_steps)
    _check_total_steps(total_steps, warmup_steps)
    if step < warmup_steps:
        return _warmup(step, max_lr, warmup_steps)
    if step > total_steps:
        return min_lr
    progress = (step - warmup_steps) / (total_steps - warmup_steps)  # 0 → 1
    return min_lr + 0.5 * (max_lr - min_lr) * (1.0 + math.cos(math.pi * progress))


def linear_decay(step: int, *, max_lr: float, total_steps: int, warmup_steps: int = 0, min_lr: float = 0.0) -> float:
    """Linear warmup, then a straight line from ``max_lr`` down to ``min_lr`` (BERT's schedule).

        lr(s) = max_lr (s + 1) / W                                for s < W
        lr(s) = max_lr - (max_lr - min_lr) (s - W) / (T - W)     for W ≤ s ≤ T
        lr(s) = min_lr                                            for s > T

    Args: as :func:`warmup_cosine` (``total_steps`` T > W is where the line reaches ``min_lr``).
    """
    _check_schedule(step, max_lr, min_lr, warmup_steps)
    _check_total_steps(total_steps, warmup_steps)
    if step < warmup_steps:
        return _warmup(step, max_lr, warmup_steps)
    if step > total_steps:
        return min_lr
    progress = (step - warmup_steps) / (total_steps - warmup_steps)
    return max_lr - (max_lr - min_lr) * progress


def exponential_decay(step: int, *, max_lr: float, gamma: float, warmup_steps: int = 0, min_lr: float = 0.0) -> float:
    """Linear warmup, then multiply by ``gamma`` every step, never below ``min_lr``.

        lr(s) = max_lr (s + 1) / W                       for s < W
        lr(s) = max(min_lr, max_lr γ^(s - W))            for s ≥ W

    Args:
        step, max_lr, warmup_steps, min_lr: as :func:`warmup_cosine`.
        gamma: the factor per step, in (0, 1] (e.g. 0.999: the lr halves every ~693 steps).
    """
    _check_schedule(step, max_lr, min_lr, warmup_steps)
    if not isinstance(gamma, Real) or not 0.0 < gamma <= 1.0:
        raise ValueError(f"gamma must lie in (0, 1] (the factor the lr is multiplied by each step); got {gamma!r}.")
    if step < warmup_steps:
        return _warmup(step, max_lr, warmup_steps)
    return max(min_lr, max_lr * gamma ** (step - warmup_steps))


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> float:
    """Set every parameter group's learning rate to ``lr`` (call before ``optimizer.step()``).

    The training loop's use: ``set_lr(opt, warmup_cosine(step, ...)); opt.step()``.
    Groups whose dict has an ``lr_scale`` entry get ``lr * lr_scale`` (e.g. a smaller rate for
    a pretrained backbone than for a new head). Returns ``lr``.
    """
    if not isinstance(lr, Real) or not lr >= 0.0:
        raise ValueError(f"lr must be a number >= 0; got {lr!r}.")
    for group in optimizer.param_groups:
        group["lr"] = lr * group.get("lr_scale", 1.0)
    return lr


def lambda_lr(
    optimizer: torch.optim.Optimizer, schedule: Callable[..., float], **schedule_kwargs: Any
) -> torch.optim.lr_scheduler.LambdaLR:
    """Wrap a schedule as torch's ``LambdaLR``: after ``n`` calls of ``scheduler.step()`` a group
    whose initial lr is ``max_lr`` has lr = ``schedule(n, **schedule_kwargs)``.

    LambdaLR multiplies each group's initial lr by a factor, so the factor is
    ``schedule(n) / max_lr``; groups with other initial lrs keep their ratio to max_lr.
    Example: ``lambda_lr(opt, warmup_cosine, max_lr=6e-4, warmup_steps=100, total_steps=5000)``.
    """
    max_lr = schedule_kwargs.get("max_lr")
    if not isinstance(max_lr, Real) or not max_lr > 0:
        raise ValueError(f"lambda_lr needs max_lr > 0 among the schedule's keyword arguments; got {max_lr!r}.")
    schedule(0, **schedule_kwargs)  # fail now, with the schedule's own message, on bad arguments

    def factor(step: int) -> float:
        return schedule(step, **schedule_kwargs) / max_lr

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
