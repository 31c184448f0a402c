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
# # 12 · Scaling up: mixed precision, compile, flash attention, memory, many GPUs, MFU
#
# Chapter 07's loop trains a small GPT on a CPU. This chapter is about what changes when the model
# and the hardware grow. You will see why fp16 overflows and underflows and how a `GradScaler`
# fixes it, why bf16 needs no scaler, what `torch.compile` and flash attention buy, where the
# memory of training goes and how gradient checkpointing trades compute for it, how DDP and FSDP
# spread a run over several processes with `torchrun` (and run a 2-process job right here on the
# CPU), and how to judge a run's speed with MFU, the fraction of the hardware's peak FLOP/s that
# the model actually uses. Everything shown is `llm_from_scratch.train`.
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/llm-from-scratch/llm-from-scratch/blob/main/chapters/12_scaling_up.ipynb)

# %%
import os, sys
if "google.colab" in sys.modules:  # Colab: install the course package alone (Colab keeps its torch); a no-op elsewhere
    import subprocess
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                    "git+https://github.com/llm-from-scratch/llm-from-scratch"], check=True)
import math
import subprocess
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import torch
import torch.nn as nn
import torch.nn.functional as F
from llm_from_scratch.utils import current_setting, seed_everything
SETTING = current_setting()  # "smoke" (CI), "book" (a CPU: the default) or "full" (a GPU)
seed_everything(0)
torch.set_num_threads(1)  # the models here are small: one thread is fastest

# %% [markdown]
# ## 1. fp16: a narrow range
#
# A float stores a sign, an exponent and a mantissa. fp32 has 8 exponent bits and 23 mantissa
# bits; **fp16** has 5 and 10; **bf16** has 8 and 7. Fewer exponent bits mean a narrower range:
# fp16's largest number is $(2 - 2^{-10}) \cdot 2^{15} = 65504$, and anything below about
# $6 \cdot 10^{-8}$ (its smallest subnormal, $2^{-24}$) becomes 0.

# %%
# NBVAL_CHECK_OUTPUT
for dtype in (torch.float32, torch.float16, torch.bfloat16):
    info = torch.finfo(dtype)
    print(f"{str(dtype):>15}: max {info.max:.4g}, smallest normal {info.tiny:.3g}, "
          f"machine epsilon {info.eps:.3g}")
assert torch.finfo(torch.float16).max == (2 - 2 ** -10) * 2 ** 15 == 65504
print("70000 in fp16:", torch.tensor(70000.0).half().item())  # overflow
print("1e-8 in fp16: ", torch.tensor(1e-8).half().item(), "  in bf16:", f"{torch.tensor(1e-8).bfloat16().item():.3g}")
print("1 + 1e-3 in bf16:", torch.tensor(1 + 1e-3).bfloat16().item(), "  in fp16:", round(torch.tensor(1 + 1e-3).half().item(), 6))

# %% [markdown]
# Gradients of a large model are often tiny: $10^{-8}$ is a normal value for one weight's
# gradient. In fp16 it **underflows** to zero and that weight never learns. bf16 keeps fp32's range
# (it rounds $1.001$ to $1$ — only about 3 significant digits — but it never turns a gradient into
# 0), which is why bf16 needs no rescue.
#
# ## 2. The GradScaler
#
# The rescue for fp16: multiply the loss by a large factor $S$ before `backward()`. Every gradient
# is then $S$ times larger, safely inside fp16's range. Before the update, divide them by $S$ again
# (in fp32). If any gradient overflowed to `inf`, skip this step and halve $S$; after 2000 good
# steps in a row, double it. By hand with $S = 2^{16}$:

# %%
# NBVAL_CHECK_OUTPUT
S = 2.0 ** 16
g = 1e-8
print("g in fp16:", torch.tensor(g).half().item())
scaled = torch.tensor(g * S).half()
print("S*g in fp16:", f"{scaled.item():.4g}", " -> unscaled in fp32:", f"{scaled.float().item() / S:.4g}")
assert torch.tensor(g).half().item() == 0 and abs(scaled.float().item() / S - g) / g < 1e-3

# %% [markdown]
# `torch.amp.GradScaler` does this bookkeeping. Two steps: one with a finite gradient (applied),
# one with an overflow (skipped, and the scale halved).

# %%
# NBVAL_CHECK_OUTPUT
w = nn.Parameter(torch.ones(2))
opt = torch.optim.SGD([w], lr=0.1)
scaler = torch.amp.GradScaler("cpu", init_scale=2.0 ** 16)
for step, grad in enumerate([torch.tensor([1.0, 1.0]), torch.tensor([float("inf"), 1.0])]):
    opt.zero_grad()
    (scaler.scale(w * grad).sum()).backward()  # d/dw of S * sum(w * grad) = S * grad
    before = w.detach().clone()
    scaler.step(opt)  # unscales, checks for inf/NaN, steps only if all finite
    scaler.update()
    print(f"step {step}: weights changed: {not torch.equal(before, w.detach())}, scale now {scaler.get_scale():.0f}")
assert scaler.get_scale() == 2.0 ** 15

# %% [markdown]
# The loop picks the format by the GPU's **compute capability** (`device.precision_for_capability`):
# bf16 on Ampere and newer (≥ 8.0), fp16 + `GradScaler` below (a T4 is 7.5), fp32 on a CPU.
# We judge by capability, not `torch.cuda.is_bf16_supported()`, which says True on a T4, where
# bf16 is emulated and slow. In both cases the *weights* stay in fp32; only the matrix products
# inside `torch.autocast` run in 16 bits.

# %%
# NBVAL_CHECK_OUTPUT
from llm_from_scratch.device import Precision, precision_for_capability

for gpu, cap in [("T4", (7, 5)), ("V100", (7, 0)), ("A100", (8, 0)), ("L4", (8, 9)), ("H100", (9, 0))]:
    p = precision_for_capability(cap)
    print(f"{gpu:>5} {cap}: {p}{' + GradScaler' if Precision(p).needs_grad_scaler else ''}")
assert precision_for_capability((7, 5)) == "fp16" and precision_for_capability((8, 0)) == "bf16"
assert precision_for_capability(None) == "fp32"

# %% [markdown]
# ## 3. `torch.compile`
#
# In eager mode every operation is its own kernel: LayerNorm reads the activations from memory and
# writes its output back, GELU reads them again, the residual add again. Between the big matrix
# products a transformer is **memory-bound**: the GPU waits for memory, not arithmetic.
# `torch.compile(model)` traces the Python once into a graph and generates fused kernels (Triton on
# GPUs, C++ on CPUs) that do several of these operations per trip to memory. The loop turns it on
# with `TrainConfig(compile=True)` or `--compile`; the first step then takes a minute to compile,
# and if compilation fails the loop warns and trains eager. (On a laptop CPU with a small model it
# rarely pays, so it is off by default in the loop.)
#
# **What changed from PyTorch 1.x.** PyTorch 1.x ran eagerly, one Python call and one kernel per
# operation, with a dynamic graph rebuilt on every call; the way to a static graph was
# `torch.jit.trace` (which records one path and silently ignores Python control flow) or
# `torch.jit.script` (a subset of Python to rewrite your model in). PyTorch 2 keeps eager mode as the
# default and adds `torch.compile`: TorchDynamo reads the Python bytecode as it runs, captures the
# tensor operations into graphs, and at anything it cannot capture (a data-dependent `if`, a print)
# makes a **graph break**: that piece runs in Python and capture resumes after it. So compile accepts
# any model and optimises what it can; guards recompile when shapes or types change. TorchInductor
# then writes the fused kernels. **`torch.export`** is the strict sibling: it must capture the whole
# program as one graph, with no breaks and no Python left, for deployment without Python (a server
# runtime, a phone, AOTInductor). `F.scaled_dot_product_attention` (section 4) is the other PyTorch 2
# addition this course relies on.
#
# The book and full settings compile a small function and a small GPT on this machine and check
# them against eager mode (compiling takes seconds to a minute on a CPU, with a C++ compiler); the
# smoke setting (CI) skips it to stay under a minute.

# %%
# NBVAL_IGNORE_OUTPUT
import time

from IPython.display import Markdown, display

from llm_from_scratch.gpt import GPT, GPTConfig

if SETTING != "smoke":
    f = lambda x: F.gelu(x * 2 + 1).sum()  # noqa: E731
    compiled_f = torch.compile(f)
    x = torch.randn(1000)
    assert torch.allclose(compiled_f(x), f(x), rtol=1e-4)
    torch.manual_seed(0)
    small_gpt = GPT(GPTConfig(vocab_size=256, block_size=64, n_layer=2, n_head=4, n_embd=64)).eval()
    compiled_gpt = torch.compile(small_gpt)
    idx = torch.randint(0, 256, (4, 64))
    start = time.perf_counter()
    with torch.no_grad():
        logits_compiled = compiled_gpt(idx)[0]  # the first call compiles
    compile_s = time.perf_counter() - start
    with torch.no_grad():
        logits_eager = small_gpt(idx)[0]
    assert torch.allclose(logits_compiled, logits_eager, atol=1e-4)
    display(Markdown(f"Compiled and eager agree (a function, and a 2-layer GPT's logits); the first call "
                     f"of the compiled GPT took **{compile_s:.1f} s**, almost all of it compiling."))
else:
    print("smoke setting: torch.compile skipped (it takes seconds to a minute); the book setting runs it")

# %% [markdown]
# `torch.export` on a small block: one graph, every operation listed, and the same output.

# %%
# NBVAL_IGNORE_OUTPUT
block = nn.Sequential(nn.Linear(4, 8), nn.GELU(), nn.Linear(8, 4)).eval()
example = torch.randn(2, 4)
exported = torch.export.export(block, (example,))
print([node.target for node in exported.graph.nodes if node.op == "call_function"])
assert torch.allclose(exported.module()(example), block(example))

# %% [markdown]
# ## 4. Flash attention through SDPA
#
# Attention computes $\mathrm{softmax}(QK^\top/\sqrt{d_k} + M)\,V$ with the causal mask $M$. Written
# out, it materialises the $T \times T$ score matrix for every head: for GPT-2 small at $T=1024$,
# a batch of 16 and 12 heads, that is $16 \cdot 12 \cdot 1024^2$ numbers per layer (the cell below
# works out the bytes in bf16), written and read several times. **Flash attention** computes the same result tile by tile,
# keeping the running softmax statistics on chip, so the $T\times T$ matrix never reaches memory:
# $O(T)$ memory instead of $O(T^2)$, and several times faster. PyTorch exposes it as
# `F.scaled_dot_product_attention`, which picks flash attention when the GPU and dtype allow (our
# `attention.MultiHeadAttention` calls it; on the H100 the profiler shows cuDNN's
# `..._sdpa_sm90_flash_fprop...` kernels). It is the same function as the formula:

# %%
# NBVAL_CHECK_OUTPUT
B, H, Tq, D = 2, 3, 8, 4
q, k, v = (torch.randn(B, H, Tq, D) for _ in range(3))
mask = torch.triu(torch.full((Tq, Tq), float("-inf")), diagonal=1)  # -inf above the diagonal
explicit = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(D) + mask, dim=-1) @ v
fused = F.scaled_dot_product_attention(q, k, v, is_causal=True)
print("SDPA equals the formula:", torch.allclose(explicit, fused, atol=1e-5))
print("the score matrices one layer of GPT-2 small would write (B=16, T=1024):",
      f"{16 * 12 * 1024 ** 2 * 2 / 1e6:.0f} MB in bf16")
assert torch.allclose(explicit, fused, atol=1e-5)

# %% [markdown]
# ## 5. Where the memory of training goes, and gradient checkpointing
#
# Training holds four things: the weights (4 bytes per parameter in fp32), their gradients (4),
# Adam's two moments (8), and the **activations** that backward needs: every intermediate tensor
# of the forward pass that a gradient formula uses (the input of each Linear, the output of each
# softmax, ...). The first three grow with the model; activations grow with the model *and* with
# batch × sequence length, and usually dominate.
#
# We can measure activations exactly on any device: `train.saved_activation_bytes` counts the
# tensors autograd saves for backward (with `torch.autograd.graph.saved_tensors_hooks`).
# **Gradient checkpointing** (`train.enable_gradient_checkpointing`, `TrainConfig(grad_checkpointing=True)`)
# keeps only each block's input and recomputes the rest of the block during backward: about one
# extra forward pass of compute for a large cut in memory.

# %%
from llm_from_scratch.gpt import GPT, GPTConfig
from llm_from_scratch.scaling import enable_gradient_checkpointing, saved_activation_bytes

cfg = GPTConfig(vocab_size=256, block_size=128, n_layer=4, n_head=4, n_embd=128)
idx = torch.randint(0, 256, (8, 128), generator=torch.Generator().manual_seed(0))
rows = []
for n_layer in (1, 2, 4):
    c = GPTConfig(**{**cfg.to_dict(), "n_layer": n_layer})
    torch.manual_seed(0)
    plain = GPT(c)
    torch.manual_seed(0)
    ckpt = GPT(c)
    enable_gradient_checkpointing(ckpt)
    full = saved_activation_bytes(lambda: plain(idx, targets=idx)[1], plain)
    kept = saved_activation_bytes(lambda: ckpt(idx, targets=idx)[1], ckpt)
    rows.append((n_layer, full, kept))
    print(f"{n_layer} layers: activations {full / 2**20:6.2f} MiB, with checkpointing {kept / 2**20:5.2f} MiB")
assert rows[-1][2] < rows[-1][1] / 2
per_layer = (rows[2][1] - rows[1][1]) / 2
print(f"each extra layer adds {per_layer / 2**20:.2f} MiB of activations without checkpointing, "
      f"{(rows[2][2] - rows[1][2]) / 2 / 2**20:.2f} MiB with it")

# %%
plt.figure(figsize=(5, 3))
plt.plot([r[0] for r in rows], [r[1] / 2**20 for r in rows], "o-", label="plain")
plt.plot([r[0] for r in rows], [r[2] / 2**20 for r in rows], "o-", label="gradient checkpointing")
plt.xlabel("layers"); plt.ylabel("activation memory (MiB)"); plt.legend()
plt.title("Checkpointing keeps one tensor per block: memory grows far slower with depth")
plt.show()

# %% [markdown]
# The gradients are the same (checkpointing only changes *when* activations are computed):

# %%
# NBVAL_CHECK_OUTPUT
plain(idx, targets=idx)[1].backward()
ckpt(idx, targets=idx)[1].backward()
assert all(torch.allclose(a.grad, b.grad, atol=1e-6) for a, b in zip(plain.parameters(), ckpt.parameters()))
print("same gradients with and without checkpointing")

# %% [markdown]
# ## 6. Many processes: DDP and FSDP with `torchrun`
#
# **DDP** (distributed data parallel): every process (one per GPU) holds a full copy of the model
# and trains on its own share of each global batch; during backward the gradients are averaged
# across processes (all-reduce, NCCL on GPUs, gloo on CPUs), so every copy takes the same step.
# `torchrun` starts the processes and tells each its `RANK` and `WORLD_SIZE`; the loop notices and
# wraps the model. Only rank 0 prints, writes the history and saves checkpoints.
#
# ```bash
# torchrun --standalone --nproc_per_node 8 -m llm_from_scratch pretrain --preset gpt2-124m
# torchrun --standalone --nproc_per_node 8 -m llm_from_scratch pretrain --preset gpt2-124m --fsdp
# ```
#
# The global batch is sharded by index: on rank $r$ of $W$, micro-step $m$ of step $s$ (with $K$
# micro-steps) reads batch number $(sK + m)W + r$. So 2 processes with one micro-step each read
# exactly the batches that 1 process with 2 micro-steps reads, and reach the same weights
# (`tests/test_distributed.py` checks it to $10^{-5}$):

# %%
# NBVAL_CHECK_OUTPUT
from llm_from_scratch.distributed import micro_batch_index
from llm_from_scratch.history import read_history


def batch_index(step, micro, rank, world, accum):  # the formula above
    return (step * accum + micro) * world + rank


# The loop calls micro_batch_index with the step's first index, s·K·W: the same numbers.
for world, accum in [(2, 1), (1, 2), (2, 2)]:
    for s in range(3):
        for m in range(accum):
            for r in range(world):
                assert micro_batch_index(s * accum * world, m, r, world) == batch_index(s, m, r, world, accum)
print("2 processes, 1 micro-step:", [[batch_index(s, 0, r, 2, 1) for r in range(2)] for s in range(3)])
print("1 process, 2 micro-steps: ", [[batch_index(s, m, 0, 1, 2) for m in range(2)] for s in range(3)])

# %% [markdown]
# **FSDP** (fully sharded data parallel, `torch.distributed.fsdp.fully_shard`, `--fsdp`) goes
# further: each of $W$ processes keeps only $1/W$ of the weights, gradients and Adam moments, and
# gathers a block's full weights just before that block runs. Memory per GPU falls by about $W$ for
# those three, at the price of more communication: the way to train a model that does not fit on
# one GPU. The loop shards each transformer block, then the root, and gathers a full state dict on
# rank 0 for the checkpoint.
#
# A real 2-process run, on this CPU, with gloo: `torchrun` launching `pretrain` on a tiny preset.

# %%
# NBVAL_IGNORE_OUTPUT
from llm_from_scratch.data import load_shakespeare

work_dir = Path(tempfile.mkdtemp(prefix="lfs12-"))
text_file = work_dir / "hamlet.txt"
text_file.write_text(next(w for w in load_shakespeare(progress=False) if w.id == "hamlet").text[:60_000])
cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
       "-m", "llm_from_scratch", "pretrain", "--preset", "tiny-char", "--text", str(text_file),
       "--out", str(work_dir / "ddp"), "--max-steps", "10", "--eval-every", "5", "--no-progress"]
print(" ".join(["torchrun"] + cmd[3:]).replace(str(work_dir), "WORK"))
proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
print(proc.stdout.replace(str(work_dir), "WORK"))
assert proc.returncode == 0, proc.stderr[-2000:]

# %%
history = read_history(work_dir / "ddp")
print("files:", sorted(p.name for p in (work_dir / "ddp").iterdir()))
print("history steps (written once, by rank 0):", [r["step"] for r in history])
print("tokens seen at the end:", history[-1]["tokens_seen"], "= 10 steps x 2 ranks x 8 sequences x 32 tokens")
assert history[-1]["tokens_seen"] == 10 * 2 * 8 * 32

# %% [markdown]
# ## 7. MFU: how much of the hardware the model uses
#
# A training step of a transformer does, per token, about
#
# $$\text{FLOPs per token} \approx 6N + 12\,L\,H\,Q\,T,$$
#
# with $N$ the number of parameters (without the position embeddings, which do no matrix
# product), $L$ layers, $H$ heads of size $Q$, and context length $T$. The $6N$: each weight does
# one multiply-add (2 FLOPs) per token in the forward pass and two in the backward pass (one for
# the input's gradient, one for the weight's). The second term is attention's $QK^\top$ and $AV$
# products, which have no weights. **Model FLOPs utilisation** is then
#
# $$\text{MFU} = \frac{\text{tokens/s} \times \text{FLOPs per token}}{\text{peak FLOP/s of the hardware}}.$$
#
# Worked example, GPT-2 small (vocabulary padded to 50304, $d = 768$, $L = H = 12$, $Q = 64$,
# $T = 1024$) on an H100 (989 TFLOP/s dense bf16):

# %%
# NBVAL_CHECK_OUTPUT
from llm_from_scratch.gpt import gpt_parameter_count
from llm_from_scratch.scaling import H100_BF16_PEAK_FLOPS, flops_per_token, mfu

V, T, L, H, d = 50304, 1024, 12, 12, 768
N = gpt_parameter_count(V, T, L, d) - T * d  # without the position embeddings
six_n = 6 * N
attention = 12 * L * H * (d // H) * T
print(f"N = {N:,}   6N = {six_n / 1e6:.1f} MFLOP   12·L·H·Q·T = {attention / 1e6:.1f} MFLOP   "
      f"total = {(six_n + attention) / 1e6:.1f} MFLOP per token")
assert flops_per_token(N, L, H, d // H, T) == six_n + attention
for tokens_per_s in (100_000, 478_413):
    print(f"{tokens_per_s:>7,} tokens/s -> {tokens_per_s * (six_n + attention) / 1e12:6.1f} TFLOP/s -> "
          f"MFU {mfu(tokens_per_s, six_n + attention, H100_BF16_PEAK_FLOPS):.1%}")
assert round(mfu(478_413, six_n + attention, H100_BF16_PEAK_FLOPS), 3) == 0.414

# %% [markdown]
# **Measured** (`benchmarks/gpu_mfu.py`, `benchmarks/RESULTS.md`, section "GPU: `gpt2-124m`"): on one
# NVIDIA H100 80GB HBM3 with this course's `train()` (bf16 autocast, `torch.compile`, fused AdamW,
# flash attention through SDPA, 8 micro-batches of 64 × 1024 tokens per step), GPT-2 small trained
# at **478,413 tokens/s, 41.4% MFU** (40.4% with micro-batches of 32, the `gpt2-124m` preset's
# default).
#
# How to read it:
#
# - **30–50%** is typical for a model this size; 60% and more needs very large matrices. The peak
#   assumes every cycle is a tensor-core matrix product; LayerNorm, GELU, softmax and the optimizer
#   are not, and they are limited by memory bandwidth.
# - **Small $d$ hurts**: at $d = 768$ the matrix products are short, and the memory-bound work
#   between them weighs more. For GPT-2 small the biggest item is the 50304-way softmax of the
#   output layer, computed for every token.
# - **Low MFU with a small batch** means overheads dominate (kernel launches, the optimizer step,
#   reading the loss): raise the micro-batch until memory is nearly full, and accumulate.
# - MFU counts only the model's *useful* FLOPs: gradient checkpointing's recomputation is not
#   counted (that would be "hardware FLOPs utilisation"), so checkpointing lowers MFU even though
#   it lets a bigger batch fit.

# %% [markdown]
# ## What to try
#
# 1. Train chapter 07's model with `TrainConfig(precision="fp16")` on a CPU and on a T4 (Colab):
#    watch `scaler.get_scale()` fall at the start as the GradScaler finds a scale that does not
#    overflow. Then try `precision="bf16"`.
# 2. Measure `saved_activation_bytes` as a function of the sequence length $T$ (64, 128, 256) with
#    and without checkpointing. Which part grows like $T^2$ when attention is computed explicitly,
#    and why does SDPA remove it?
# 3. On a GPU, run `python benchmarks/gpu_mfu.py --batch 4,8,16` and plot MFU against the batch
#    size; then add `--no-compile` and see what `torch.compile` was worth.

# %% [markdown]
# ## Exercises
#
# Write each piece from this chapter, then run its cell: `check` compares it with `llm_from_scratch.train`
# and prints one line per failed test, with a hint. A cell that still says `raise NotImplementedError` prints
# "not attempted yet". Solutions: `chapters/solutions/12_scaling_up.ipynb`.

# %%
import torch
from llm_from_scratch.exercises import check

# %% [markdown]
# **12.1 Model FLOPs utilisation.** Training costs about $6N + 12\,L H Q T$ FLOPs per token ($N$ parameters:
# 2 FLOPs forward and 4 backward each; attention's two products in $L$ layers of $H$ heads of size $Q$ over
# $T$ positions). MFU = tokens/s × FLOPs per token / the hardware's peak FLOP/s. Return a float.

# %%
# NBVAL_CHECK_OUTPUT
def mfu(tokens_per_s, n_params, n_layer, n_head, head_dim, seq_len, peak_flops):
    ### BEGIN SOLUTION
    flops_per_token = 6 * n_params + 12 * n_layer * n_head * head_dim * seq_len
    return tokens_per_s * flops_per_token / peak_flops
    ### END SOLUTION


check("12.1", mfu)

# %% [markdown]
# **12.2 A gradient-scaler step.** fp16 gradients were computed on loss × `scale`. Unscale them (g / scale).
# If any is inf or NaN, skip the step: return `(None, scale * backoff_factor, 0)`. Otherwise count a good
# step, `growth_tracker + 1`; when that reaches `growth_interval`, multiply the scale by `growth_factor` and
# reset the tracker to 0. Return `(unscaled grads, scale, growth_tracker)` (`torch.amp.GradScaler`'s rule).

# %%
# NBVAL_CHECK_OUTPUT
def scaler_step(grads, scale, growth_tracker, growth_factor=2.0, backoff_factor=0.5, growth_interval=2000):
    ### BEGIN SOLUTION
    unscaled = [g / scale for g in grads]
    if any(not torch.isfinite(g).all() for g in unscaled):
        return None, scale * backoff_factor, 0
    growth_tracker += 1
    if growth_tracker == growth_interval:
        return unscaled, scale * growth_factor, 0
    return unscaled, scale, growth_tracker
    ### END SOLUTION


check("12.2", scaler_step)

# %% [markdown]
# **12.3 Which micro-batch each rank reads.** With $W$ ranks and gradient accumulation, rank $r$ at micro-step
# $m$ of a step whose first micro-batch is `first_index` reads micro-batch `first_index + m·W + r`: the ranks
# interleave, so $W$ ranks with one micro-step each read exactly what one rank with $W$ micro-steps reads,
# and a run gives the same model on 1 or $W$ GPUs. Return that index.

# %%
# NBVAL_CHECK_OUTPUT
def micro_batch_index(first_index, micro, rank, world_size):
    ### BEGIN SOLUTION
    return first_index + micro * world_size + rank
    ### END SOLUTION


check("12.3", micro_batch_index)
