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
# # 00 · Setup: your machine, its device, and the precision it trains in
#
# Before we build anything, we check the tools. By the end of this chapter you will know which
# Python and PyTorch you are running, which device your tensors live on (an NVIDIA GPU through CUDA,
# an Apple GPU through MPS, or the CPU), which floating-point precision your hardware trains in best
# (fp32, fp16 with a gradient scaler, or bf16), and why we decide that from the GPU's *compute
# capability* rather than by asking PyTorch. You will also know the three ways to run the course:
# JupyterLab on your machine, Google Colab, and the automated checks (CI).
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/llm-from-scratch/llm-from-scratch/blob/main/chapters/00_setup.ipynb)

# %%
import sys
if "google.colab" in sys.modules:  # Colab: install the course package alone (Colab keeps its torch); a no-op elsewhere
    import subprocess
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                    "git+https://github.com/llm-from-scratch/llm-from-scratch"], check=True)
import platform

import torch
from llm_from_scratch.utils import current_setting, seed_everything
SETTING = current_setting()  # "smoke" (CI), "book" (a CPU: the default) or "full" (a GPU)
generator = seed_everything(0)  # seeds Python, NumPy and torch; returns a torch.Generator

# %% [markdown]
# ## 1. What you are running
#
# The course needs Python ≥ 3.10 and PyTorch ≥ 2.2. The versions differ from machine to machine, so
# this cell's output is not compared by the automated checks (`# NBVAL_IGNORE_OUTPUT`); it asserts
# what must hold instead.

# %%
# NBVAL_IGNORE_OUTPUT
print("python  ", platform.python_version(), f"({platform.system()} {platform.machine()})")
print("torch   ", torch.__version__)
print("CUDA    ", torch.version.cuda or "none (a CPU build)")
print("CPU threads torch uses:", torch.get_num_threads())
assert sys.version_info >= (3, 10), "the course needs Python 3.10 or newer"
assert tuple(int(p) for p in torch.__version__.split("+")[0].split(".")[:2]) >= (2, 2), "the course needs torch >= 2.2"

# %% [markdown]
# ## 2. The device
#
# A tensor lives on one device, and an operation runs where its inputs live. PyTorch names three kinds
# we care about:
#
# - `cuda`: an NVIDIA GPU (Colab's T4, an A100, an H100...). Fastest by far for training.
# - `mps`: the GPU of an Apple-silicon Mac (Metal Performance Shaders).
# - `cpu`: always there. Every chapter runs on it in the book setting (section 5).
#
# The rule the course uses everywhere is *the best one available, unless you say otherwise*:
# cuda → mps → cpu. That is `llm_from_scratch.device.select_device`.

# %%
# NBVAL_IGNORE_OUTPUT
from llm_from_scratch.device import select_device

device = select_device()
print("this machine trains on:", device)
assert device.type in {"cuda", "mps", "cpu"}
assert device.type == ("cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu")

# %% [markdown]
# Moving a tensor is `.to(device)`; results come back with `.cpu()`. The numbers do not change, only
# where they are stored and computed:

# %%
# NBVAL_CHECK_OUTPUT
x = torch.arange(6, dtype=torch.float32).reshape(2, 3)
y = (x.to(device) * 2).sum(dim=1).cpu()
print(y, y.device)

# %% [markdown]
# Asking for a device the machine does not have is an error that says what to do, not a crash deep
# inside a training run:

# %%
if not torch.cuda.is_available():
    try:
        select_device("cuda")
    except RuntimeError as err:
        print("RuntimeError:", err)
else:
    print("this machine has a CUDA GPU: select_device('cuda') works")

# %% [markdown]
# ## 3. Floating-point formats: fp32, fp16, bf16
#
# A floating-point number stores a sign bit $s$, an exponent $e$ and a mantissa (fraction) $m$:
#
# $$x = (-1)^s \times 2^{\,e - \text{bias}} \times (1.m)_2 .$$
#
# The exponent bits decide the **range** (how large and how small a number can be), the mantissa bits
# decide the **precision** (how many significant digits).
#
# | format | bits | exponent | mantissa | used for |
# |---|---|---|---|---|
# | fp32 | 32 | 8 | 23 | the default; master weights |
# | fp16 | 16 | 5 | 10 | mixed precision on older GPUs (T4, V100) |
# | bf16 | 16 | 8 | 7 | mixed precision on Ampere and newer (A100, H100) |
#
# bf16 ("brain float") keeps fp32's 8 exponent bits, so it has fp32's range with fewer digits. fp16 has
# more digits but a tiny range. `torch.finfo` tells us the consequences:

# %%
# NBVAL_CHECK_OUTPUT
print(f"{'format':6} {'bits':>4} {'smallest normal':>16} {'largest':>12} {'eps (1 -> next)':>16}")
for name, dtype in [("fp32", torch.float32), ("fp16", torch.float16), ("bf16", torch.bfloat16)]:
    info = torch.finfo(dtype)
    print(f"{name:6} {info.bits:>4} {info.tiny:>16.3g} {info.max:>12.3g} {info.eps:>16.3g}")

# %% [markdown]
# A worked example. Gradients of a large model are often tiny, say $10^{-8}$. In fp16 that is below
# even the smallest *subnormal* number ($2^{-24} \approx 6\times10^{-8}$), so it becomes exactly 0 and
# the weight never learns. bf16 keeps it. This is why fp16 training multiplies the loss by a large
# factor (a *gradient scaler*, e.g. $2^{16}$) before the backward pass and divides the gradients back
# afterwards; bf16 needs no scaler.

# %%
# NBVAL_CHECK_OUTPUT
grad = torch.tensor(1e-8)
print(f"fp16: {grad.to(torch.float16).item():.4g}")
print(f"bf16: {grad.to(torch.bfloat16).item():.4g}")
scale = 2.0 ** 16
print(f"fp16, scaled by 2^16 then unscaled in fp32: {(grad * scale).to(torch.float16).float().item() / scale:.4g}")

# %% [markdown]
# The price of bf16 is precision: with 7 mantissa bits, $1 + 2^{-8}$ is not representable and rounds
# back to 1. That is why the *weights* stay in fp32 and only the matrix multiplications run in 16 bits
# (**mixed** precision, `torch.autocast`).

# %%
# NBVAL_CHECK_OUTPUT
one_plus = torch.tensor(1 + 2 ** -8)
print("fp32:", one_plus.item(), " fp16:", one_plus.to(torch.float16).item(), " bf16:", one_plus.to(torch.bfloat16).item())

# %% [markdown]
# ## 4. Which precision? Judge by compute capability, not by `is_bf16_supported()`
#
# NVIDIA numbers each GPU generation with a *compute capability* `(major, minor)`. Fast bf16 matrix
# units (tensor cores) arrived with Ampere, capability **8.0**:
#
# | GPU | capability | train in |
# |---|---|---|
# | V100 (Volta) | 7.0 | fp16 + gradient scaler |
# | T4 (Turing, Colab's free GPU) | 7.5 | fp16 + gradient scaler |
# | A100 (Ampere) | 8.0 | bf16 |
# | L4 / RTX 4090 (Ada) | 8.9 | bf16 |
# | H100 (Hopper) | 9.0 | bf16 |
#
# Why not simply ask `torch.cuda.is_bf16_supported()`? Because on a T4 it answers **True**: PyTorch can
# *emulate* bf16 there, and by default (`including_emulation=True`) it counts that as support: bf16 code runs, just
# several times slower than fp16, and a course that trusted the answer would be slow on exactly the
# GPU most learners have. The question we care about is "is bf16 *fast* here?", and the capability
# answers it. The rule, written out by hand:

# %%
# NBVAL_CHECK_OUTPUT
def precision_by_hand(capability):
    """fp32 without a GPU; bf16 from Ampere (8.0) on; fp16 (with a gradient scaler) before."""
    if capability is None:
        return "fp32"
    major, minor = capability
    return "bf16" if major >= 8 else "fp16"

for capability in [(7, 5), (8, 0), (9, 0), None]:
    print(f"{str(capability):8} -> {precision_by_hand(capability)}")

# %% [markdown]
# This is `llm_from_scratch.device.precision_for_capability`. We check that it agrees with the rule by
# hand on every capability NVIDIA has shipped or could ship (3.0 to 12.9) and on "no GPU":

# %%
# NBVAL_CHECK_OUTPUT
from llm_from_scratch.device import Precision, precision_for_capability, select_precision

grid = [(major, minor) for major in range(3, 13) for minor in range(10)] + [None]
assert all(precision_for_capability(c) == precision_by_hand(c) for c in grid)
print(f"{'capability':>10}  precision  autocast dtype   grad scaler")
for capability in [(7, 5), (8, 0), (9, 0), None]:
    p = Precision(precision_for_capability(capability))
    print(f"{str(capability):>10}  {p.name:9}  {str(p.autocast_dtype):15}  {p.needs_grad_scaler}")

# %% [markdown]
# On this machine. `select_precision(device)` reads the capability of your GPU (fp32 on the CPU and MPS
# unless you ask for more); the output depends on the hardware, so the cell asserts the rule instead:

# %%
# NBVAL_IGNORE_OUTPUT
precision = Precision(select_precision(device))
capability = torch.cuda.get_device_capability(device) if device.type == "cuda" else None
print("device:", device, "| capability:", capability, "| precision:", precision.name,
      "| gradient scaler:", precision.needs_grad_scaler)
if device.type == "cuda":
    print("torch.cuda.is_bf16_supported() says:", torch.cuda.is_bf16_supported(), "(not what we go by)")
assert precision.name == precision_for_capability(capability)

# %% [markdown]
# `torch.autocast` is how a chosen precision is used: inside the context, matrix multiplications run in
# the 16-bit type while the tensors you keep (the weights) stay fp32. It works on the CPU too:

# %%
# NBVAL_CHECK_OUTPUT
a = torch.randn(4, 4)
with torch.autocast("cpu", dtype=torch.bfloat16):
    product = a @ a
print("weights:", a.dtype, "| matmul under autocast:", product.dtype)

# %% [markdown]
# ## 5. How to run the course
#
# **On your machine (JupyterLab).** You need Python 3.10 or newer and `make`:
#
# ```bash
# make lab      # creates .venv, installs the course (CPU torch if you have none), opens JupyterLab on chapters/
# make demo     # the course's main job from the command line
# ```
#
# Without `make` (Windows): `python -m venv .venv`, activate it, `pip install -e ".[lab]"`, then
# `jupyter lab chapters`.
#
# **In Google Colab.** Click the "Open in Colab" badge at the top of any chapter. The second cell sees
# `google.colab` and pip-installs the course package; Colab's own torch is kept. Choose
# *Runtime → Change runtime type → T4 GPU* for the full-size runs: on a T4 this chapter answers fp16
# with a gradient scaler.
#
# **The automated checks (CI).** `make test` runs the unit tests (`pytest tests`) and then every
# notebook under [nbval](https://github.com/computationalmodelling/nbval) with `--nbval-lax`: it
# re-executes the notebook and compares the output of each cell that starts with
# `# NBVAL_CHECK_OUTPUT` with the output stored in the notebook. Those cells state fixed facts (a
# hand-worked example, a shape, an equality check) that print the same on every machine and in every
# setting; every other cell asserts what must hold instead (a loss below its baseline, a finite value).
#
# **Settings.** The environment variable `LFS_SETTING` sizes every chapter, and each chapter reads it
# once in its second cell (`SETTING = current_setting()`):
#
# | setting | where | what it is for |
# |---|---|---|
# | `smoke` | `make test` (CI) | tiny models and data: each chapter in under a minute on 2 CPU cores; checks that every cell runs |
# | `book` | the default on a CPU | sized so that each chapter's result shows: about 10 minutes a chapter on 2 CPU cores (up to 20 for fine-tuning). The notebooks in the repository carry its outputs (`make book`) |
# | `full` | the default on a GPU (Colab's T4 included) | the full-size models and data, about 15 minutes a chapter on a T4 |
#
# `LFS_SMOKE=1` is an older name for `LFS_SETTING=smoke`.

# %%
# NBVAL_IGNORE_OUTPUT
from llm_from_scratch.data import data_cache_dir
from llm_from_scratch.utils import SETTINGS

print("setting:", SETTING)
print("downloads are cached in:", data_cache_dir())
assert SETTING in SETTINGS

# %% [markdown]
# ## What to try
#
# 1. In Colab, switch the runtime to a T4 GPU and run this notebook again: note the capability (7.5),
#    the precision (fp16 with a scaler), and what `torch.cuda.is_bf16_supported()` answers.
# 2. Time a 2048×2048 matrix multiplication in fp32 and under `torch.autocast` with bf16 and with fp16,
#    on the CPU and (if you have one) on a GPU. Which is fastest where?
# 3. Find the smallest positive power of two that fp16 can store (`torch.tensor(2.0 ** -k, dtype=torch.float16)`
#    for growing `k`) and compare it with `torch.finfo(torch.float16).tiny`. What are the numbers in between?
