# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 04 · Optimizers: from SGD to Adam and AdamW, schedules, and choosing a learning rate
#
# Every model in this course is trained by the same few lines: compute the loss, call
# `backward()`, and let an optimizer move the parameters. This chapter opens that last step.
# By the end you will be able to write Adam's five update equations, compute them by hand for a
# few steps and check them against PyTorch, say what bias correction fixes (and see it on a plot),
# explain why SGD zig-zags down a narrow valley while momentum and Adam do not, tell Adam's L2
# penalty from AdamW's decoupled weight decay, shape the learning rate over a run with warmup and
# cosine decay, and pick a learning rate with a range test instead of by folklore. Everything is
# checked against the course package (`llm_from_scratch.optim`) and against `torch.optim`.
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/llm-from-scratch/llm-from-scratch/blob/main/chapters/04_adam_optimizer.ipynb)

# %%
import sys
if "google.colab" in sys.modules:  # Colab: install the course package alone (Colab keeps its torch); a no-op elsewhere
    import subprocess
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                    "git+https://github.com/llm-from-scratch/llm-from-scratch"], check=True)
import inspect
import math

import matplotlib.pyplot as plt
import torch
import torch.nn as nn
import torch.nn.functional as F
from llm_from_scratch.utils import current_setting, seed_everything
SETTING = current_setting()  # "smoke" (CI), "book" (a CPU: the default) or "full" (a GPU)
seed_everything(0)
torch.set_num_threads(1)  # every model here is tiny: a second CPU thread costs more in synchronisation than it saves

# %% [markdown]
# ## 1. Why not plain gradient descent?
#
# Gradient descent moves every parameter against its gradient by the same learning rate $\alpha$:
#
# $$\theta_t = \theta_{t-1} - \alpha\, g_t, \qquad g_t = \nabla_\theta L(\theta_{t-1}).$$
#
# Two things go wrong in a network with millions of parameters:
#
# * **One step size for every direction.** The loss is steep along some directions and flat along
#   others. A learning rate small enough not to overshoot in the steep directions crawls along the
#   flat ones. (For a quadratic with curvatures $\lambda_{\max} \ge \dots \ge \lambda_{\min}$,
#   SGD diverges unless $\alpha < 2/\lambda_{\max}$, and then the flat direction shrinks only by a
#   factor $1 - \alpha\lambda_{\min}$ per step.)
# * **Noisy gradients.** A mini-batch gradient points roughly, not exactly, downhill; single steps
#   jitter.
#
# *Momentum* answers the noise: keep a running average of past gradients and step along it, so
# consistent directions add up and jitter cancels. *Adam* (Kingma & Ba, 2015) adds the answer to
# the first problem: divide each coordinate's step by a running estimate of that coordinate's
# gradient size, so every parameter moves at roughly $\alpha$ per step whatever the scale of its
# gradient. Adam (in its AdamW form) is how GPT-2, GPT-3, BERT and LLaMA were all trained.

# %% [markdown]
# ## 2. Adam's equations, one at a time, by hand
#
# We follow one scalar parameter through three steps. It starts at $\theta_0 = 1$ and receives
# the gradients $g_1 = 4,\ g_2 = -2,\ g_3 = 1$ (made up, so that each equation can be computed on
# its own). The hyper-parameters are PyTorch's defaults, with a large step size so the moves are
# visible: $\alpha = 0.1$, $\beta_1 = 0.9$, $\beta_2 = 0.999$, $\varepsilon = 10^{-8}$. Both running
# averages start at zero: $m_0 = v_0 = 0$.

# %%
theta0, grads = 1.0, [4.0, -2.0, 1.0]
alpha, beta1, beta2, eps = 0.1, 0.9, 0.999, 1e-8

# %% [markdown]
# **First moment** (momentum): an exponential moving average of the gradient,
#
# $$m_t = \beta_1 m_{t-1} + (1 - \beta_1)\, g_t .$$
#
# By hand: $m_1 = 0.9\cdot 0 + 0.1\cdot 4 = 0.4$, $m_2 = 0.36 - 0.2 = 0.16$, $m_3 = 0.144 + 0.1 = 0.244$.

# %%
# NBVAL_CHECK_OUTPUT
m = [0.0]
for g in grads:
    m.append(beta1 * m[-1] + (1 - beta1) * g)
print("m_t:", [round(x, 6) for x in m[1:]])
assert [round(x, 6) for x in m[1:]] == [0.4, 0.16, 0.244]

# %% [markdown]
# **Second moment**: an exponential moving average of the *squared* gradient, a running estimate
# of the gradient's size for this coordinate,
#
# $$v_t = \beta_2 v_{t-1} + (1 - \beta_2)\, g_t^2 .$$
#
# By hand: $v_1 = 0.001\cdot 16 = 0.016$, $v_2 = 0.999\cdot0.016 + 0.001\cdot 4 = 0.019984$,
# $v_3 = 0.999\cdot 0.019984 + 0.001\cdot 1 = 0.020964016$.

# %%
# NBVAL_CHECK_OUTPUT
v = [0.0]
for g in grads:
    v.append(beta2 * v[-1] + (1 - beta2) * g**2)
print("v_t:", [round(x, 9) for x in v[1:]])
assert [round(x, 9) for x in v[1:]] == [0.016, 0.019984, 0.020964016]

# %% [markdown]
# Both averages are far too small: $m_1 = 0.4$ while the only gradient seen was $4$, and
# $v_1 = 0.016$ while $g_1^2 = 16$. Starting from zero pulls them toward zero; after $t$ steps of a
# constant gradient $g$, $m_t = (1 - \beta_1^t)\, g$. **Bias correction** divides that factor out:
#
# $$\hat m_t = \frac{m_t}{1 - \beta_1^t}, \qquad \hat v_t = \frac{v_t}{1 - \beta_2^t}.$$
#
# By hand: $\hat m_1 = 0.4/0.1 = 4 = g_1$ and $\hat v_1 = 0.016/0.001 = 16 = g_1^2$: after one
# step the corrected averages are exactly the one gradient seen.

# %%
# NBVAL_CHECK_OUTPUT
m_hat = [m[t] / (1 - beta1**t) for t in (1, 2, 3)]
v_hat = [v[t] / (1 - beta2**t) for t in (1, 2, 3)]
print("m̂_t:", [round(x, 4) for x in m_hat])
print("v̂_t:", [round(x, 4) for x in v_hat])
assert math.isclose(m_hat[0], 4.0) and math.isclose(v_hat[0], 16.0)

# %% [markdown]
# **The update** divides the (corrected) mean gradient by its (corrected) root mean square:
#
# $$\theta_t = \theta_{t-1} - \alpha\, \frac{\hat m_t}{\sqrt{\hat v_t} + \varepsilon}.$$
#
# The ratio $\hat m_t / \sqrt{\hat v_t}$ has no units: it is about $\pm 1$ when the gradients
# agree and smaller when they flip sign. So $\alpha$ is (roughly) the largest distance a parameter
# moves in one step, whatever the scale of its gradient. At step 1 it is exactly
# $g_1/|g_1| = 1$: $\theta_1 = 1 - 0.1\cdot 4/4 = 0.9$. $\varepsilon$ only matters when
# $\sqrt{\hat v_t}$ is near zero, where it stops the division from exploding.

# %%
# NBVAL_CHECK_OUTPUT
theta = [theta0]
for t in range(3):
    theta.append(theta[-1] - alpha * m_hat[t] / (math.sqrt(v_hat[t]) + eps))
print("θ_t:", [round(x, 6) for x in theta])
assert math.isclose(theta[1], 0.9, rel_tol=1e-9)

# %% [markdown]
# ### This is `llm_from_scratch.optim.Adam`
#
# The package's `Adam` is a `torch.optim.Optimizer` written from these equations. We hand it the
# same three gradients (setting `.grad` ourselves instead of calling `backward()`), and do the same
# with PyTorch's `torch.optim.Adam`: all three agree to rounding error.

# %%
# NBVAL_CHECK_OUTPUT
from llm_from_scratch.optim import Adam, AdamW


def run_with_gradients(make_optimizer, grads, theta0=1.0):
    """θ after each step when the optimizer is fed the given gradients."""
    p = torch.tensor([theta0], dtype=torch.float64, requires_grad=True)
    opt = make_optimizer([p])
    out = []
    for g in grads:
        p.grad = torch.tensor([g], dtype=torch.float64)
        opt.step()
        out.append(p.item())
    return out


hp = dict(lr=alpha, betas=(beta1, beta2), eps=eps)
ours_ref = run_with_gradients(lambda ps: Adam(ps, foreach=False, **hp), grads)   # the readable loop
ours_vec = run_with_gradients(lambda ps: Adam(ps, **hp), grads)                  # vectorized (default)
theirs = run_with_gradients(lambda ps: torch.optim.Adam(ps, **hp), grads)
print("by hand        :", [round(x, 6) for x in theta[1:]])
print("ours (loop)    :", [round(x, 6) for x in ours_ref])
print("ours (foreach) :", [round(x, 6) for x in ours_vec])
print("torch.optim    :", [round(x, 6) for x in theirs])
for a, b, c, d in zip(theta[1:], ours_ref, ours_vec, theirs):
    assert abs(a - b) < 1e-12 and abs(a - c) < 1e-12 and abs(a - d) < 1e-12

# %% [markdown]
# Here is the package's per-parameter step: the equations above, line for line. (The default,
# `foreach=True`, does the same arithmetic with `torch._foreach_*` on whole lists of tensors at
# once; on parameters of GPT-2 small's shapes it runs as fast as PyTorch's own AdamW, see
# `benchmarks/RESULTS.md`, "Adam/AdamW step".)

# %%
print(inspect.getsource(Adam._step_reference))

# %% [markdown]
# ## 3. Bias correction, seen
#
# Feed a constant gradient $g = 1$. The true average is 1 from the first step on, but
# $m_t = 1 - \beta_1^t$ approaches it with a time constant of $1/(1-\beta_1) = 10$ steps (65% of
# the way after 10 steps, 95% after about 30), and $v_t = 1 - \beta_2^t$ with one of 1000 steps. Without correction the first update would be
# $m_1/\sqrt{v_1} = 0.1/\sqrt{0.001} \approx 3.2$ times too large: a random jolt right at the start
# of training, when the network is most fragile. The corrected $\hat m_t$ and $\hat v_t$ are 1 from
# step one.

# %%
# NBVAL_CHECK_OUTPUT
steps = torch.arange(1, 201, dtype=torch.float64)
g = 1.0
m_t = (1 - beta1**steps) * g          # closed form of the recursion for a constant gradient
v_t = (1 - beta2**steps) * g**2
m_hat_t = m_t / (1 - beta1**steps)
v_hat_t = v_t / (1 - beta2**steps)

fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
axes[0].plot(steps, m_t, label=r"$m_t$ (raw)")
axes[0].plot(steps, m_hat_t, "--", label=r"$\hat m_t$ (corrected)")
axes[0].set_title(r"First moment: raw $m_t = 1 - 0.9^t$ needs ~30 steps to reach 95% of $g$; $\hat m_t$ is right at once",
                  fontsize=9)
axes[0].set_ylabel("first moment (the gradient is g = 1)")
axes[1].plot(steps, v_t, label=r"$v_t$ (raw)")
axes[1].plot(steps, v_hat_t, "--", label=r"$\hat v_t$ (corrected)")
axes[1].plot(steps, m_t / v_t.sqrt(), ":", label=r"$m_t/\sqrt{v_t}$ (uncorrected step)")
axes[1].set_title(r"Second moment: $v_t$ is still far below 1 after 200 steps")
axes[1].set_ylabel(r"second moment ($g^2 = 1$) and the step")
for ax in axes:
    ax.set_xlabel("step t")
    ax.legend()
plt.tight_layout()
plt.show()
print("step 1: m =", round(m_t[0].item(), 4), " m̂ =", round(m_hat_t[0].item(), 4),
      " uncorrected step m/√v =", round((m_t[0] / v_t[0].sqrt()).item(), 4))

# %% [markdown]
# ## 4. SGD, momentum and Adam on a narrow valley
#
# A 2-D loss we can draw: an elongated bowl, 50 times more curved along $y$ than along $x$,
#
# $$L(x, y) = \tfrac12\,(x^2 + 50\,y^2),$$
#
# with its minimum at the origin. We start all three optimizers at $(-4, 0.6)$ and take 50 steps:
#
# * **SGD** ($\alpha = 0.036$): stability in the steep $y$ direction caps $\alpha < 2/50 = 0.04$;
#   at that rate $x$ only shrinks by a factor $1 - 0.036 = 0.964$ per step, while $y$ flips sign
#   every step.
# * **SGD with momentum** ($\alpha = 0.02$, $\mu = 0.8$): $b_t = \mu b_{t-1} + g_t$,
#   $\theta_t = \theta_{t-1} - \alpha b_t$. The $y$ oscillations cancel in the average, the steady
#   $x$ gradient accumulates.
# * **Adam** ($\alpha = 0.3$): divides by each coordinate's own gradient scale, so both coordinates
#   start moving at about $\alpha$ per step: it heads diagonally, not down the steepest slope.

# %%
# NBVAL_CHECK_OUTPUT
def valley(p):
    return 0.5 * (p[0] ** 2 + 50 * p[1] ** 2)


def trajectory(make_optimizer, n_steps=50, start=(-4.0, 0.6)):
    p = torch.tensor(start, dtype=torch.float64, requires_grad=True)
    opt = make_optimizer([p])
    path = [p.detach().clone()]
    for _ in range(n_steps):
        opt.zero_grad()
        valley(p).backward()
        opt.step()
        path.append(p.detach().clone())
    return torch.stack(path)


paths = {
    "SGD (α=0.036)": trajectory(lambda ps: torch.optim.SGD(ps, lr=0.036)),
    "momentum (α=0.02, μ=0.8)": trajectory(lambda ps: torch.optim.SGD(ps, lr=0.02, momentum=0.8)),
    "Adam (α=0.3)": trajectory(lambda ps: Adam(ps, lr=0.3)),
}

xs, ys = torch.meshgrid(torch.linspace(-4.5, 1.5, 200), torch.linspace(-0.8, 0.8, 200), indexing="xy")
plt.figure(figsize=(9, 4.5))
plt.contour(xs, ys, valley(torch.stack([xs, ys])), levels=[0.05, 0.2, 0.5, 1, 2, 4, 8, 12, 17], cmap="Greys")
for (name, path), style in zip(paths.items(), ["o-", "s-", "^-"]):
    plt.plot(path[:, 0], path[:, 1], style, ms=3, lw=1, label=name)
plt.plot(0, 0, "k*", ms=12)
plt.title("SGD zig-zags and crawls; momentum runs along the valley; Adam cuts the corner, then jitters")
plt.xlabel("x (flat direction)")
plt.ylabel("y (steep direction)")
plt.legend()
plt.show()
for name, path in paths.items():
    print(f"{name:26s} loss after 10 steps: {valley(path[10]).item():8.4f}   after 50: {valley(path[50]).item():.4f}")

# %% [markdown]
# Read the plot and the numbers: SGD's path bounces between the valley walls and crawls along the
# floor, its learning rate held down by the steep direction. Momentum damps the bounce and builds
# up speed along $x$. Adam starts diagonally (equal steps in $x$ and $y$) and is by far the closest
# after 10 steps; but with a constant $\alpha$ it then keeps jittering around the minimum at a
# scale set by $\alpha$ instead of settling. That is why the learning rate is decayed towards the
# end of training (section 6).
#
# Adam's per-coordinate scaling helps most when the steep and flat directions line up with the
# parameters themselves, as here; rotate the valley by 45° and the advantage shrinks (try it,
# below).

# %% [markdown]
# ## 5. Weight decay: Adam + L2 versus AdamW
#
# Weight decay pulls weights toward zero so that the network prefers small weights unless the data
# insists. For SGD there are two equivalent ways to write it: add $\tfrac{\lambda}{2}\lVert\theta\rVert^2$
# to the loss (the *L2 penalty*, whose gradient is $\lambda\theta$), or shrink the weights directly,
# $\theta \leftarrow \theta(1 - \alpha\lambda)$. **For Adam they are not equivalent** (Loshchilov &
# Hutter, 2019):
#
# * **Adam + L2**: $g_t \leftarrow g_t + \lambda\theta_{t-1}$, then the Adam update. The decay term
#   passes through the division by $\sqrt{\hat v_t}$, so a weight whose gradients are large is
#   barely decayed, and a weight whose gradients are tiny is decayed hard.
# * **AdamW** (decoupled): $\theta_{t-1} \leftarrow \theta_{t-1}(1 - \alpha\lambda)$, then the plain
#   Adam update. Every weight shrinks by the same factor per step.
#
# A toy problem shows the difference. Two weights start at 1. Neither matters to the loss: their
# gradients just oscillate around zero ($g = \pm s$, alternating sign), with $s = 10$ for a "busy"
# weight and $s = 0.01$ for a "quiet" one. Only the weight decay should move them.

# %%
# NBVAL_CHECK_OUTPUT
def decay_run(optimizer_class, n_steps=500, lr=0.01, weight_decay=0.1):
    scales = torch.tensor([10.0, 0.01], dtype=torch.float64)  # busy weight, quiet weight
    w = torch.ones(2, dtype=torch.float64, requires_grad=True)
    opt = optimizer_class([w], lr=lr, weight_decay=weight_decay)
    history = [w.detach().clone()]
    for t in range(n_steps):
        w.grad = scales * (-1.0) ** t      # zero-mean gradient: the loss does not care about w
        opt.step()
        history.append(w.detach().clone())
    return torch.stack(history)


l2_hist, adamw_hist = decay_run(Adam), decay_run(AdamW)
plt.figure(figsize=(8, 4))
plt.plot(l2_hist[:, 0], label="Adam + L2, busy weight (|g| = 10)")
plt.plot(l2_hist[:, 1], label="Adam + L2, quiet weight (|g| = 0.01)")
plt.plot(adamw_hist[:, 0], "--", lw=2.5, label="AdamW, busy weight")
plt.plot(adamw_hist[:, 1], ":", lw=2.5, label="AdamW, quiet weight")
plt.plot((1 - 0.01 * 0.1) ** torch.arange(501.0), "k", lw=0.8, label=r"$(1-\alpha\lambda)^t$")
plt.title("AdamW decays both weights alike; Adam + L2 spares the busy one and crushes the quiet one")
plt.xlabel("step")
plt.ylabel("weight")
plt.legend(fontsize=8)
plt.show()
print("after 500 steps  Adam + L2:", [round(x, 3) for x in l2_hist[-1].tolist()],
      "  AdamW:", [round(x, 3) for x in adamw_hist[-1].tolist()],
      "  (1-αλ)^500 =", round((1 - 0.01 * 0.1) ** 500, 3))

# %% [markdown]
# With AdamW both weights follow $(1-\alpha\lambda)^t$ (plus a wiggle of size about $\alpha$ from the
# oscillating gradient): how much a weight decays no longer depends on how large its gradients
# happen to be. That is the form every modern LLM uses, with $\lambda \approx 0.1$ on the weight
# matrices and usually no decay on biases, LayerNorm gains and (sometimes) embeddings, done with
# parameter groups:
#
# ```python
# decay    = [p for n, p in model.named_parameters() if p.dim() >= 2]
# no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
# opt = AdamW([{"params": decay, "weight_decay": 0.1},
#              {"params": no_decay, "weight_decay": 0.0}], lr=6e-4, betas=(0.9, 0.95))
# ```
#
# In the package, `Adam(weight_decay=λ)` is the L2 form and `AdamW(weight_decay=λ)` the decoupled
# one, exactly as in `torch.optim`. The tests (`tests/test_optim.py`) check that both follow
# `torch.optim.Adam` / `torch.optim.AdamW` over 200 steps with several parameter groups to
# $10^{-9}$ in float64. Here is the same check on this toy run:

# %%
# NBVAL_CHECK_OUTPUT
for ours_cls, torch_cls, hist in [(Adam, torch.optim.Adam, l2_hist), (AdamW, torch.optim.AdamW, adamw_hist)]:
    reference = decay_run(torch_cls)
    print(f"{ours_cls.__name__:6s} vs torch.optim.{torch_cls.__name__}: "
          f"max |difference| < 1e-12: {(hist - reference).abs().max().item() < 1e-12}")
    assert torch.allclose(hist, reference, rtol=0, atol=1e-12)

# %% [markdown]
# ## 6. Learning-rate schedules
#
# A constant learning rate is a compromise: large enough to make progress early, it is too large
# to settle into a minimum late (the jitter in section 4). And at the very start, when Adam's
# $\hat v_t$ is estimated from a handful of gradients and the network's activations are still
# settling, a full-size step can throw training off. So large models use a **schedule**:
#
# * **Linear warmup** over the first $W$ steps: $\alpha_s = \alpha_{\max}\,\frac{s+1}{W}$.
# * Then a **decay** to $\alpha_{\min}$ at step $T$:
#   * cosine (GPT-2/3, LLaMA, nanoGPT):
#     $\alpha_s = \alpha_{\min} + \tfrac12(\alpha_{\max} - \alpha_{\min})\bigl(1 + \cos\bigl(\pi\frac{s - W}{T - W}\bigr)\bigr)$
#   * linear (BERT): $\alpha_s = \alpha_{\max} - (\alpha_{\max} - \alpha_{\min})\frac{s - W}{T - W}$
#   * exponential: $\alpha_s = \max(\alpha_{\min},\ \alpha_{\max}\,\gamma^{\,s - W})$
#
# In the package each is a pure function of the step, so a schedule is easy to plot, to test and to
# resume (no hidden state). By hand, with $\alpha_{\max} = 6\cdot10^{-4}$, $\alpha_{\min} = 6\cdot10^{-5}$,
# $W = 100$, $T = 1000$: step 0 gets $6\cdot10^{-6}$; step 550 (half-way through the decay) gets
# the average $3.3\cdot10^{-4}$; step 1000 gets $\alpha_{\min}$.

# %%
# NBVAL_CHECK_OUTPUT
from llm_from_scratch.optim import exponential_decay, lambda_lr, linear_decay, set_lr, warmup_cosine

kw = dict(max_lr=6e-4, warmup_steps=100, min_lr=6e-5)
T = 1000
assert math.isclose(warmup_cosine(0, total_steps=T, **kw), 6e-4 * 1 / 100)
assert math.isclose(warmup_cosine(99, total_steps=T, **kw), 6e-4)
assert math.isclose(warmup_cosine(550, total_steps=T, **kw), (6e-4 + 6e-5) / 2)
assert math.isclose(warmup_cosine(T, total_steps=T, **kw), 6e-5)

s_axis = list(range(0, 1201))
curves = {
    "warmup_cosine": [warmup_cosine(s, total_steps=T, **kw) for s in s_axis],
    "linear_decay": [linear_decay(s, total_steps=T, **kw) for s in s_axis],
    "exponential_decay (γ=0.997)": [exponential_decay(s, gamma=0.997, **kw) for s in s_axis],
}
plt.figure(figsize=(8, 3.8))
for name, lrs in curves.items():
    plt.plot(s_axis, lrs, label=name)
plt.axvline(100, color="grey", lw=0.8, ls=":")
plt.axvline(T, color="grey", lw=0.8, ls=":")
plt.title("All three warm up for 100 steps; cosine stays high longest, then lands softly at min_lr")
plt.xlabel("step")
plt.ylabel("learning rate")
plt.legend()
plt.show()
for s in (0, 50, 99, 100, 550, 1000, 1200):
    print(f"step {s:4d}: " + "  ".join(f"{name.split()[0]} {lrs[s]:.3e}" for name, lrs in curves.items()))

# %% [markdown]
# A training loop applies a schedule by writing the learning rate into the optimizer before each
# step, `set_lr(optimizer, warmup_cosine(step, ...))` (this is what chapter 07's loop does), or
# by wrapping it as PyTorch's `LambdaLR` scheduler with `lambda_lr`. Both give the same rates:

# %%
# NBVAL_CHECK_OUTPUT
p_a, p_b = torch.zeros(3, requires_grad=True), torch.zeros(3, requires_grad=True)
opt_a, opt_b = AdamW([p_a], lr=6e-4), AdamW([p_b], lr=6e-4)
scheduler = lambda_lr(opt_b, warmup_cosine, total_steps=T, **kw)
same = True
for step in range(T + 1):
    set_lr(opt_a, warmup_cosine(step, total_steps=T, **kw))       # way 1: write the lr, then step
    same &= math.isclose(opt_a.param_groups[0]["lr"], opt_b.param_groups[0]["lr"], rel_tol=1e-12)
    for p, opt in ((p_a, opt_a), (p_b, opt_b)):
        p.grad = torch.ones(3)
        opt.step()
    scheduler.step()                                               # way 2: LambdaLR moves on after the step
print("set_lr and LambdaLR agree at every step:", same)
assert same

# %% [markdown]
# ## 7. How do I choose a learning rate?
#
# The short answer:
#
# 1. **Start from what worked for models like yours.** With AdamW, $\beta = (0.9, 0.95)$ and
#    warmup + cosine: about $6\cdot10^{-4}$ for GPT-2 small (124M), smaller for larger models
#    (GPT-3 used $3\cdot10^{-4}$ at 350M and $6\cdot10^{-5}$ at 175B); $1\text{–}5\cdot10^{-5}$
#    to fine-tune a pretrained model; around $10^{-3}$ for the tiny models of this course.
# 2. **Measure it with a learning-rate range test** (Smith, 2017): train for a few hundred steps
#    while raising the learning rate geometrically from tiny to huge, and record the loss. The
#    loss first does nothing (rate too small), then falls (good range), then explodes (too large).
#    Pick a rate about 10× below the one where the loss was lowest: the minimum sits at the edge
#    of instability.
# 3. **Check** with a short run at that rate, and one at half and at twice it.
#
# Here is the test on a small MLP classifying handwritten digits (scikit-learn's 8×8 digits,
# offline). Training losses vary from machine to machine in the last digits, so the cell checks
# the *shape* of the curve instead of printing it.

# %%
from sklearn.datasets import load_digits

digits = load_digits()
X = torch.tensor(digits.data, dtype=torch.float32) / 16.0
Y = torch.tensor(digits.target)


def make_mlp():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))


def lr_range_test(min_lr=1e-5, max_lr=10.0, n_steps={"smoke": 100, "book": 300, "full": 300}[SETTING], batch_size=64, smooth=0.9):
    """Raise the lr geometrically from min_lr to max_lr, one batch per step; return (lrs, smoothed losses)."""
    model = make_mlp()
    opt = AdamW(model.parameters(), lr=min_lr, weight_decay=0.0)
    gen = torch.Generator().manual_seed(0)
    lrs, losses, avg = [], [], None
    for step in range(n_steps):
        lr = min_lr * (max_lr / min_lr) ** (step / (n_steps - 1))
        set_lr(opt, lr)
        idx = torch.randint(0, len(X), (batch_size,), generator=gen)
        loss = F.cross_entropy(model(X[idx]), Y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        avg = loss.item() if avg is None else smooth * avg + (1 - smooth) * loss.item()
        lrs.append(lr)
        losses.append(avg)
        if not math.isfinite(avg) or avg > 4 * min(losses):
            break  # diverged: no need to go on
    return lrs, losses


# %%
# NBVAL_IGNORE_OUTPUT
lrs, losses = lr_range_test()
best = min(range(len(losses)), key=losses.__getitem__)
suggested = lrs[best] / 10
plt.figure(figsize=(7, 3.8))
plt.semilogx(lrs, losses)
plt.axvline(lrs[best], color="red", ls=":", label=f"lowest loss at lr = {lrs[best]:.1e}")
plt.axvline(suggested, color="green", ls="--", label=f"suggested lr = {suggested:.1e}")
plt.title("Range test: flat while the lr is too small, falls, then blows up; pick ~10× below the dip")
plt.xlabel("learning rate (log scale)")
plt.ylabel("smoothed training loss")
plt.legend()
plt.show()
print(f"lowest smoothed loss {losses[best]:.3f} at lr {lrs[best]:.2e}; suggested lr {suggested:.2e}")
# The shape the test relies on: flat start near ln(10) (chance), a real dip, then a blow-up.
assert abs(losses[0] - math.log(10)) < 0.3
assert losses[best] < 0.6 * losses[0]
assert 1e-4 < lrs[best] < 5.0
assert losses[-1] > 2 * losses[best]

# %% [markdown]
# And the check of step 3: a short run at the suggested rate, at a rate 100× smaller and at one
# 30× larger (near the top of the range test).

# %%
# NBVAL_IGNORE_OUTPUT
def final_loss(lr, n_steps={"smoke": 150, "book": 400, "full": 400}[SETTING], batch_size=64):
    model = make_mlp()
    opt = AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    gen = torch.Generator().manual_seed(1)
    for _ in range(n_steps):
        idx = torch.randint(0, len(X), (batch_size,), generator=gen)
        loss = F.cross_entropy(model(X[idx]), Y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        return F.cross_entropy(model(X), Y).item()


results = {lr: final_loss(lr) for lr in (suggested / 100, suggested, suggested * 30)}
for lr, loss in results.items():
    print(f"lr {lr:.1e}: full-data loss after training {loss:.3f}")
too_small, good, too_large = results.values()
assert good < too_small and good < too_large

# %% [markdown]
# ## What to try
#
# 1. **Rotate the valley.** Replace `valley` with $L = \tfrac12 (u^2 + 20 w^2)$ for
#    $u = (x + y)/\sqrt2$, $w = (x - y)/\sqrt2$. Does Adam still beat momentum? Why does its
#    per-coordinate scaling help less when the steep direction is not a coordinate axis?
# 2. **Turn off bias correction.** Copy `Adam._step_reference` into a subclass that uses `m` and
#    `v` instead of `m_hat` and `v_hat`, and run the range test with it. Which learning rates
#    blow up now that did not before? (Hint: section 3's first step is 3× too large.)
# 3. **Weight decay on a real model.** Train the digits MLP with `AdamW(weight_decay=0.1)` and
#    with `Adam(weight_decay=0.1)` at the suggested rate, and compare the norms of the two weight
#    matrices and the accuracy on held-out digits.

# %% [markdown]
# ## Exercises
#
# Write each update from this chapter's equations, then run its cell: `check` runs the exercise's tests and
# prints one line per failed test, with a hint. A cell that still says `raise NotImplementedError` prints
# "not attempted yet". Solutions: `chapters/solutions/04_adam_optimizer.ipynb`.

# %%
import math

import torch
from llm_from_scratch.exercises import check

# %% [markdown]
# **04.1 A momentum step.** PyTorch's SGD with momentum: $b_t = \mu b_{t-1} + g_t$, then
# $\theta_t = \theta_{t-1} - \alpha b_t$. Return `(theta, velocity)` after one step (new tensors).

# %%
# NBVAL_CHECK_OUTPUT
def momentum_step(theta, grad, velocity, lr, beta):
    ### BEGIN SOLUTION
    velocity = beta * velocity + grad
    return theta - lr * velocity, velocity
    ### END SOLUTION


check("04.1", momentum_step)

# %% [markdown]
# **04.2 Adam's bias-corrected update.** One step $t$ (counted from 1):
# $m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t$, $v_t = \beta_2 v_{t-1} + (1-\beta_2) g_t^2$,
# $\hat m_t = m_t / (1-\beta_1^t)$, $\hat v_t = v_t / (1-\beta_2^t)$,
# $\theta_t = \theta_{t-1} - \alpha\, \hat m_t / (\sqrt{\hat v_t} + \epsilon)$. Return `(theta, m, v)`.
# The first step is where a missing bias correction shows most.

# %%
# NBVAL_CHECK_OUTPUT
def adam_step(theta, grad, m, v, t, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8):
    ### BEGIN SOLUTION
    m = beta1 * m + (1 - beta1) * grad
    v = beta2 * v + (1 - beta2) * grad**2
    m_hat = m / (1 - beta1**t)
    v_hat = v / (1 - beta2**t)
    return theta - lr * m_hat / (v_hat.sqrt() + eps), m, v
    ### END SOLUTION


check("04.2", adam_step)

# %% [markdown]
# **04.3 Warmup then cosine.** With $W$ warmup steps and $T$ total steps: $\mathrm{lr}(s) = \mathrm{max}\,(s+1)/W$
# for $s < W$; then $\mathrm{min} + \tfrac12(\mathrm{max} - \mathrm{min})(1 + \cos(\pi (s - W)/(T - W)))$ up to
# $s = T$; `min_lr` after $T$. Return a float.

# %%
# NBVAL_CHECK_OUTPUT
def warmup_cosine(step, max_lr, warmup_steps, total_steps, min_lr=0.0):
    ### BEGIN SOLUTION
    if step < warmup_steps:
        return max_lr * (step + 1) / warmup_steps
    if step > total_steps:
        return min_lr
    progress = (step - warmup_steps) / (total_steps - warmup_steps)
    return min_lr + 0.5 * (max_lr - min_lr) * (1 + math.cos(math.pi * progress))
    ### END SOLUTION


check("04.3", warmup_cosine)
