"""llm_from_scratch.optim against torch.optim: Adam/AdamW trajectories, state_dict resume, schedules."""

from __future__ import annotations

import copy
import io
import math

import pytest
import torch

from llm_from_scratch.optim import (
    Adam,
    AdamW,
    exponential_decay,
    lambda_lr,
    linear_decay,
    set_lr,
    warmup_cosine,
)





PAIRS = [(Adam, torch.optim.Adam), (AdamW, torch.optim.AdamW)]
PAIR_IDS = ["Adam", "AdamW"]


# ----------------------------------------------------------------------------- helpers
def make_model_params(dtype: torch.dtype, seed: int = 0) -> list[torch.Tensor]:
    """A 2-layer MLP's parameters (w1, b1, w2, b2) as leaf tensors."""
    g = torch.Generator().manual_seed(seed)
    shapes = [(16, 8), (16,), (4, 16), (4,)]
    return [(torch.randn(s, generator=g, dtype=dtype) * 0.5).requires_grad_() for s in shapes]


def make_data(dtype: torch.dtype, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(32, 8, generator=g, dtype=dtype), torch.randn(32, 4, generator=g, dtype=dtype)


def mlp_loss(params: list[torch.Tensor], x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    w1, b1, w2, b2 = params
    return ((torch.tanh(x @ w1.T + b1) @ w2.T + b2 - y) ** 2).mean()


def groups_of(params: list[torch.Tensor]) -> list[dict]:
    """Three groups with different lr, weight decay, betas and eps (the last group uses the defaults)."""
    w1, b1, w2, b2 = params
    return [
        {"params": [w1], "lr": 1e-2, "weight_decay": 0.1},
        {"params": [b1, b2], "lr": 3e-3, "weight_decay": 0.0, "betas": (0.8, 0.99)},
        {"params": [w2], "eps": 1e-6},
    ]


def train(opt_cls, params, steps: int, x, y, **kwargs) -> list[torch.Tensor]:
    """Run `steps` optimizer steps on the MLP loss; return the loss after each step."""
    opt = opt_cls(groups_of(params), lr=5e-3, weight_decay=0.05, **kwargs)
    for _ in range(steps):
        opt.zero_grad()
        mlp_loss(params, x, y).backward()
        opt.step()
    return opt


def clone_params(params: list[torch.Tensor]) -> list[torch.Tensor]:
    return [p.detach().clone().requires_grad_() for p in params]


# ----------------------------------------------------------------------------- trajectories
@pytest.mark.parametrize("ours, theirs", PAIRS, ids=PAIR_IDS)
@pytest.mark.parametrize("foreach", [True, False], ids=["foreach", "reference"])
def test_follows_torch_200_steps_float64(ours, theirs, foreach):
    x, y = make_data(torch.float64)
    p_ours = make_model_params(torch.float64)
    p_torch = clone_params(p_ours)
    train(ours, p_ours, 200, x, y, foreach=foreach)
    train(theirs, p_torch, 200, x, y, foreach=False)
    for a, b in zip(p_ours, p_torch):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-9)
    # The run did something: the parameters moved far more than the tolerance.
    start = make_model_params(torch.float64)
    assert max((a - s).abs().max().item() for a, s in zip(p_ours, start)) > 0.1


@pytest.mark.parametrize("ours, theirs", PAIRS, ids=PAIR_IDS)
@pytest.mark.parametrize("foreach", [True, False], ids=["foreach", "reference"])
def test_follows_torch_float32(ours, theirs, foreach):
    # In float32 one-ulp differences in the order of operations grow along a trajectory,
    # so: tight after 3 steps, loose (1e-4 relative to the parameter scale) after 200.
    x, y = make_data(torch.float32)
    for steps, tol in [(3, 1e-6), (200, 1e-4)]:
        p_ours = make_model_params(torch.float32)
        p_torch = clone_params(p_ours)
        train(ours, p_ours, steps, x, y, foreach=foreach)
        train(theirs, p_torch, steps, x, y, foreach=True)
        for a, b in zip(p_ours, p_torch):
            scale = b.abs().max().item()
            assert (a - b).abs().max().item() <= tol * scale, (steps, (a - b).abs().max().item())


@pytest.mark.parametrize("ours, theirs", PAIRS, ids=PAIR_IDS)
def test_random_gradients_float64_mixed_shapes(ours, theirs):
    # Gradients that do not depend on the parameters: the update rule alone is compared,
    # over every element of tensors of mixed shapes, including a 0-d one.
    g = torch.Generator().manual_seed(3)
    shapes = [(), (7,), (3, 5), (2, 3, 4)]
    p_ours = [torch.randn(s, generator=g, dtype=torch.float64, requires_grad=True) for s in shapes]
    p_torch = clone_params(p_ours)
    o1 = ours(p_ours, lr=0.1, betas=(0.5, 0.9), eps=1e-3, weight_decay=0.3)
    o2 = theirs(p_torch, lr=0.1, betas=(0.5, 0.9), eps=1e-3, weight_decay=0.3)
    for _ in range(50):
        for a, b in zip(p_ours, p_torch):
            grad = torch.randn(a.shape, generator=g, dtype=torch.float64) * 10
            a.grad, b.grad = grad.clone(), grad.clone()
        o1.step()
        o2.step()
    for a, b in zip(p_ours, p_torch):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)


def test_hand_worked_first_step():
    # Step 1 on a scalar: m̂_1 = g and v̂_1 = g², so θ_1 = θ_0 - α g/(|g| + ε) ≈ θ_0 - α sign(g),
    # whatever the size of g. AdamW first shrinks θ_0 by (1 - αλ); Adam adds λθ_0 to g.
    for foreach in (True, False):
        theta = torch.tensor([2.0], dtype=torch.float64, requires_grad=True)
        theta.grad = torch.tensor([-300.0], dtype=torch.float64)
        Adam([theta], lr=0.1, eps=0.0, foreach=foreach).step()
        assert theta.item() == pytest.approx(2.0 + 0.1, abs=1e-15)

        theta = torch.tensor([2.0], dtype=torch.float64, requires_grad=True)
        theta.grad = torch.tensor([0.5], dtype=torch.float64)
        AdamW([theta], lr=0.1, eps=0.0, weight_decay=0.5, foreach=foreach).step()
        assert theta.item() == pytest.approx(2.0 * (1 - 0.1 * 0.5) - 0.1, abs=1e-15)

        # Adam + L2: g = 0.5 + 0.5·2 = 1.5 → still a step of exactly α in the sign of g.
        theta = torch.tensor([2.0], dtype=torch.float64, requires_grad=True)
        theta.grad = torch.tensor([0.5], dtype=torch.float64)
        Adam([theta], lr=0.1, eps=0.0, weight_decay=0.5, foreach=foreach).step()
        assert theta.item() == pytest.approx(2.0 - 0.1, abs=1e-15)
        assert theta.grad.item() == 0.5  # the L2 term is not written into .grad


@pytest.mark.parametrize("ours, theirs", PAIRS, ids=PAIR_IDS)
def test_grad_none_is_skipped(ours, theirs):
    g = torch.Generator().manual_seed(5)
    p_ours = [torch.randn(4, 3, generator=g, dtype=torch.float64, requires_grad=True) for _ in range(3)]
    p_torch = clone_params(p_ours)
    frozen_start = p_ours[1].detach().clone()
    o1 = ours(p_ours, lr=0.05, weight_decay=0.1)
    o2 = theirs(p_torch, lr=0.05, weight_decay=0.1)
    for step in range(20):
        for i, (a, b) in enumerate(zip(p_ours, p_torch)):
            # p[1] never has a grad; p[2] only on even steps, so its step count lags the others'.
            if i == 1 or (i == 2 and step % 2):
                a.grad = b.grad = None
            else:
                grad = torch.randn(a.shape, generator=g, dtype=torch.float64)
                a.grad, b.grad = grad.clone(), grad.clone()
        o1.step()
        o2.step()
    assert torch.equal(p_ours[1].detach(), frozen_start)  # not even weight-decayed
    assert p_ours[1] not in o1.state
    assert o1.state[p_ours[0]]["step"] == 20 and o1.state[p_ours[2]]["step"] == 10
    for a, b in zip(p_ours, p_torch):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)


def test_foreach_and_reference_agree_with_mixed_dtypes():
    # One group holding float32 and float64 tensors: foreach splits it by dtype.
    g = torch.Generator().manual_seed(7)
    dtypes = [torch.float32, torch.float64, torch.float32]
    pa = [torch.randn(5, generator=g, dtype=d, requires_grad=True) for d in dtypes]
    pb = clone_params(pa)
    oa, ob = AdamW(pa, lr=0.01, foreach=True), AdamW(pb, lr=0.01, foreach=False)
    for _ in range(10):
        for a, b in zip(pa, pb):
            grad = torch.randn(5, generator=g, dtype=a.dtype)
            a.grad, b.grad = grad.clone(), grad.clone()
        oa.step()
        ob.step()
    for a, b in zip(pa, pb):
        assert a.dtype == b.dtype
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)


def test_closure_returns_loss():
    x, y = make_data(torch.float64)
    params = make_model_params(torch.float64)
    opt = Adam(params, lr=1e-2)

    def closure():
        opt.zero_grad()
        loss = mlp_loss(params, x, y)
        loss.backward()
        return loss

    first = opt.step(closure).item()
    for _ in range(30):
        last = opt.step(closure).item()
    assert last < first


# ----------------------------------------------------------------------------- checkpoints
@pytest.mark.parametrize("opt_cls", [Adam, AdamW], ids=PAIR_IDS)
def test_state_dict_roundtrip_weights_only_resumes_identically(opt_cls):
    x, y = make_data(torch.float64)
    params = make_model_params(torch.float64)
    opt = opt_cls(groups_of(params), lr=5e-3, weight_decay=0.05)

    def run(p, o, n):
        for _ in range(n):
            o.zero_grad()
            mlp_loss(p, x, y).backward()
            o.step()

    run(params, opt, 10)
    buf = io.BytesIO()
    torch.save({"params": [p.detach() for p in params], "optimizer": opt.state_dict()}, buf)
    buf.seek(0)
    ckpt = torch.load(buf, weights_only=True)  # only tensors and numbers in the state

    resumed = [p.clone().requires_grad_() for p in ckpt["params"]]
    opt2 = opt_cls(groups_of(resumed), lr=5e-3, weight_decay=0.05)
    opt2.load_state_dict(ckpt["optimizer"])
    assert opt2.state[resumed[0]]["step"] == 10
    run(params, opt, 15)
    run(resumed, opt2, 15)
    for a, b in zip(params, resumed):
        assert torch.equal(a, b)  # bit for bit: nothing was lost in the checkpoint

    # A fresh optimizer (state lost) follows a different path: the test above could fail.
    lost = [p.clone().requires_grad_() for p in ckpt["params"]]
    run(lost, opt_cls(groups_of(lost), lr=5e-3, weight_decay=0.05), 15)
    assert not torch.equal(lost[0], params[0])


@pytest.mark.parametrize("ours, theirs", PAIRS, ids=PAIR_IDS)
def test_state_dict_interchanges_with_torch(ours, theirs):
    # torch.optim's state_dict loads into ours and ours into torch's: both continue the same path.
    x, y = make_data(torch.float64)
    params = make_model_params(torch.float64)
    torch_opt = train(theirs, params, 5, x, y)
    mine = clone_params(params)
    my_opt = ours(groups_of(mine), lr=5e-3, weight_decay=0.05)
    # deepcopy: load_state_dict keeps the very state tensors when dtype and device already match,
    # and the two optimizers must not share their moments.
    my_opt.load_state_dict(copy.deepcopy(torch_opt.state_dict()))
    for p, o in [(params, torch_opt), (mine, my_opt)]:
        for _ in range(5):
            o.zero_grad()
            mlp_loss(p, x, y).backward()
            o.step()
    for a, b in zip(params, mine):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)

    back = clone_params(mine)
    torch_back = theirs(groups_of(back), lr=5e-3, weight_decay=0.05)
    torch_back.load_state_dict(copy.deepcopy(my_opt.state_dict()))
    for p, o in [(mine, my_opt), (back, torch_back)]:
        for _ in range(5):
            o.zero_grad()
            mlp_loss(p, x, y).backward()
            o.step()
    for a, b in zip(mine, back):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)


# ----------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"lr": -1e-3}, "learning rate"),
        ({"lr": float("nan")}, "learning rate"),
        ({"betas": (1.0, 0.999)}, "beta1"),
        ({"betas": (0.9, -0.1)}, "beta2"),
        ({"betas": (0.9,)}, "betas"),
        ({"eps": -1e-8}, "epsilon"),
        ({"weight_decay": -0.1}, "weight_decay"),
    ],
)
@pytest.mark.parametrize("opt_cls", [Adam, AdamW], ids=PAIR_IDS)
def test_bad_hyperparameters_raise(opt_cls, kwargs, match):
    p = torch.zeros(3, requires_grad=True)
    with pytest.raises(ValueError, match=match):
        opt_cls([p], **kwargs)


def test_bad_group_hyperparameter_names_the_group():
    a, b = torch.zeros(2, requires_grad=True), torch.zeros(2, requires_grad=True)
    with pytest.raises(ValueError, match="parameter group 1"):
        AdamW([{"params": [a]}, {"params": [b], "lr": -1.0}])


def test_sparse_grad_raises():
    p = torch.zeros(3, requires_grad=True)
    p.grad = torch.zeros(3).to_sparse()
    with pytest.raises(RuntimeError, match="sparse"):
        Adam([p]).step()


# ----------------------------------------------------------------------------- schedules
def test_warmup_cosine_hand_values():
    kw = dict(max_lr=1.0, warmup_steps=10, total_steps=110, min_lr=0.1)
    assert warmup_cosine(0, **kw) == pytest.approx(0.1)  # (0 + 1)/10
    assert warmup_cosine(4, **kw) == pytest.approx(0.5)  # (4 + 1)/10
    assert warmup_cosine(9, **kw) == pytest.approx(1.0)  # last warmup step reaches the peak
    assert warmup_cosine(10, **kw) == pytest.approx(1.0)  # cos(0) = 1
    assert warmup_cosine(60, **kw) == pytest.approx(0.55)  # halfway: (max + min)/2
    assert warmup_cosine(35, **kw) == pytest.approx(0.1 + 0.45 * (1 + math.sqrt(0.5)))  # a quarter: cos(π/4)
    assert warmup_cosine(110, **kw) == pytest.approx(0.1)
    assert warmup_cosine(10_000, **kw) == 0.1
    assert warmup_cosine(0, max_lr=1.0, warmup_steps=0, total_steps=4) == 1.0  # no warmup


def test_linear_and_exponential_hand_values():
    kw = dict(max_lr=2.0, warmup_steps=4, total_steps=14, min_lr=0.0)
    assert [linear_decay(s, **kw) for s in (0, 3, 4, 9, 14, 20)] == pytest.approx([0.5, 2.0, 2.0, 1.0, 0.0, 0.0])
    assert exponential_decay(0, max_lr=1.0, gamma=0.5, warmup_steps=2) == pytest.approx(0.5)
    assert exponential_decay(2, max_lr=1.0, gamma=0.5, warmup_steps=2) == pytest.approx(1.0)
    assert exponential_decay(5, max_lr=1.0, gamma=0.5, warmup_steps=2) == pytest.approx(0.125)
    assert exponential_decay(50, max_lr=1.0, gamma=0.5, min_lr=0.01) == 0.01


def _torch_schedule(make_scheduler, max_lr: float, n: int) -> list[float]:
    """The lr torch's scheduler gives at steps 0..n-1."""
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=max_lr)
    sched = make_scheduler(opt)
    lrs = []
    for _ in range(n):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return lrs


def test_schedules_match_torch_schedulers():
    W, T, max_lr, min_lr = 5, 45, 3e-4, 3e-5
    # Warmup = LinearLR from 1/W to 1 over W - 1 steps.
    warm = _torch_schedule(lambda o: torch.optim.lr_scheduler.LinearLR(o, 1 / W, 1.0, total_iters=W - 1), max_lr, W)
    ours = [warmup_cosine(s, max_lr=max_lr, warmup_steps=W, total_steps=T, min_lr=min_lr) for s in range(W)]
    assert ours == pytest.approx(warm, rel=1e-9)
    # Cosine part = CosineAnnealingLR(T_max = T - W, eta_min = min_lr), shifted by W.
    cos = _torch_schedule(lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T - W, min_lr), max_lr, T - W + 1)
    ours = [warmup_cosine(s, max_lr=max_lr, warmup_steps=W, total_steps=T, min_lr=min_lr) for s in range(W, T + 1)]
    assert ours == pytest.approx(cos, rel=1e-9)
    # Linear decay = LinearLR(1 → min/max over T - W steps).
    lin = _torch_schedule(
        lambda o: torch.optim.lr_scheduler.LinearLR(o, 1.0, min_lr / max_lr, total_iters=T - W), max_lr, T - W + 5
    )
    ours = [linear_decay(s, max_lr=max_lr, warmup_steps=W, total_steps=T, min_lr=min_lr) for s in range(W, T + 5)]
    assert ours == pytest.approx(lin, rel=1e-9)
    # Exponential decay = ExponentialLR(gamma).
    ex = _torch_schedule(lambda o: torch.optim.lr_scheduler.ExponentialLR(o, 0.97), max_lr, 60)
    ours = [exponential_decay(s, max_lr=max_lr, gamma=0.97) for s in range(60)]
    assert ours == pytest.approx(ex, rel=1e-9)


def test_set_lr_and_lambda_lr_drive_an_optimizer():
    kw = dict(max_lr=1e-3, warmup_steps=3, total_steps=12, min_lr=1e-4)
    a, b = torch.zeros(2, requires_grad=True), torch.zeros(2, requires_grad=True)
    opt = AdamW([{"params": [a]}, {"params": [b], "lr_scale": 0.1}], lr=kw["max_lr"])
    for step in range(15):
        assert set_lr(opt, warmup_cosine(step, **kw)) == warmup_cosine(step, **kw)
        assert opt.param_groups[0]["lr"] == warmup_cosine(step, **kw)
        assert opt.param_groups[1]["lr"] == pytest.approx(0.1 * warmup_cosine(step, **kw))

    opt = AdamW([a], lr=kw["max_lr"])
    sched = lambda_lr(opt, warmup_cosine, **kw)
    for step in range(15):
        assert opt.param_groups[0]["lr"] == pytest.approx(warmup_cosine(step, **kw), rel=1e-12)
        a.grad = torch.ones(2)
        opt.step()
        sched.step()


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: warmup_cosine(-1, max_lr=1.0, warmup_steps=2, total_steps=5), "step"),
        (lambda: warmup_cosine(0, max_lr=1.0, warmup_steps=5, total_steps=5), "total_steps"),
        (lambda: warmup_cosine(0, max_lr=1.0, warmup_steps=2, total_steps=5, min_lr=2.0), "min_lr"),
        (lambda: linear_decay(1.5, max_lr=1.0, total_steps=5), "step"),
        (lambda: exponential_decay(0, max_lr=1.0, gamma=1.5), "gamma"),
        (lambda: set_lr(torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1), -1.0), "lr"),
    ],
)
def test_bad_schedule_arguments_raise(call, match):
    with pytest.raises(ValueError, match=match):
        call()
