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
# # 14 · From GPT-2 to today's open models: RMSNorm, RoPE, SwiGLU, grouped-query attention
#
# The GPT of chapter 06 is GPT-2's design from 2019. The open models you will fine-tune today
# (Llama 3, Qwen3, SmolLM2, Mistral, Gemma) keep its skeleton, a stack of pre-norm blocks of
# attention and a feed-forward network, but change the same few parts: **RMSNorm** instead of
# LayerNorm, **rotary position embeddings** (RoPE) instead of a learned position table, a **SwiGLU**
# feed-forward network, **grouped-query attention** (GQA) with fewer key/value heads than query heads,
# no biases, and (Qwen3) an RMSNorm on every query and key. In this chapter you write each change
# from its formula, work it out by hand, see why it won, and check it against the course package
# (`llm_from_scratch.llama`) and against `transformers`' own module. Then you put the parts together,
# load Llama- and Qwen3-style weights with the same logits as `transformers`, and train a GPT and a
# Llama-style model of the same size side by side on the same Shakespeare tokens.
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/llm-from-scratch/llm-from-scratch/blob/main/chapters/14_modern_decoder.ipynb)

# %%
import sys
if "google.colab" in sys.modules:  # Colab: install the course package alone (Colab keeps its torch); a no-op elsewhere
    import subprocess
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                    "git+https://github.com/llm-from-scratch/llm-from-scratch"], check=True)
import math
import tempfile
import time

import matplotlib.pyplot as plt
import torch
import torch.nn as nn
import torch.nn.functional as F
from IPython.display import Markdown, display
from llm_from_scratch.utils import current_setting, seed_everything

SETTING = current_setting()  # "smoke" (CI), "book" (CPU) or "full" (GPU)
generator = seed_everything(0)  # assigned, so the cell prints no generator address
if SETTING == "smoke":
    torch.set_num_threads(1)  # CI-size models are tiny: a thread pool costs more than it saves

import transformers
from transformers.models.llama import modeling_llama as hf_llama
transformers.logging.set_verbosity_error()
transformers.logging.disable_progress_bar()
print("setting:", SETTING)

# %% [markdown]
# ## 1. What changed, in one table
#
# | part | GPT-2 (2019) | Llama 3 / Qwen3 (2024–25) |
# |---|---|---|
# | normalisation | LayerNorm: subtract the mean, divide by the standard deviation, $\gamma$ and $\beta$ | RMSNorm: divide by the root mean square, $\gamma$ only |
# | positions | a learned vector per position, added to the token embedding | RoPE: queries and keys rotated by an angle proportional to the position |
# | feed-forward | $W_2\,\mathrm{GELU}(W_1 x)$, width $4d$ | SwiGLU: $W_2(\mathrm{SiLU}(W_1 x) \odot W_3 x)$, width about $\tfrac83 d$ |
# | attention | $H$ query, key and value heads | $H$ query heads share $K < H$ key/value heads (GQA) |
# | biases | in every Linear and LayerNorm | none |
# | output layer | tied to the token embedding | tied (small models) or separate (large ones) |
# | Qwen3 only | | RMSNorm on each query and key head |
#
# The rest (pre-norm residual blocks, causal attention, next-token cross entropy, the KV cache) is
# what you built in chapters 03 and 06. We take the changes one at a time.

# %% [markdown]
# ## 2. RMSNorm
#
# LayerNorm (chapter 06) centres each token's $d$ features and scales them to unit variance:
# $\mathrm{LN}(x) = \gamma \odot (x - \mu)/\sqrt{\sigma^2 + \epsilon} + \beta$. RMSNorm (Zhang and
# Sennrich, 2019) keeps only the scaling, by the root mean square:
#
# $$\mathrm{RMSNorm}(x) = \gamma \odot \frac{x}{\sqrt{\frac1d \sum_{i=1}^{d} x_i^2 + \epsilon}}$$
#
# By hand, for $x = (1, 2, 3, 4)$ and $\gamma = 1$: $\frac14(1 + 4 + 9 + 16) = 7.5$,
# $\sqrt{7.5} = 2.7386$, so $\mathrm{RMSNorm}(x) = (0.3651, 0.7303, 1.0954, 1.4606)$. LayerNorm
# would first subtract the mean $2.5$, giving $(-1.3416, -0.4472, 0.4472, 1.3416)$.

# %%
# NBVAL_CHECK_OUTPUT
x = torch.tensor([1.0, 2.0, 3.0, 4.0])
rms = math.sqrt(sum(v * v for v in x.tolist()) / 4)
by_hand = [round(v / rms, 4) for v in x.tolist()]
print("root mean square:", round(rms, 4))
print("RMSNorm by hand :", by_hand)
print("LayerNorm       :", [round(v, 4) for v in F.layer_norm(x, (4,), eps=0.0).tolist()])

# %% [markdown]
# **Why it won.** It needs one statistic (the mean of squares) instead of two (a mean, then a
# variance around it), has no $\beta$, and in practice trains as stably as LayerNorm: what keeps a
# deep pre-norm stack healthy is the *rescaling*, not the centring. Every model since Llama uses it.
# It is computed in float32 even when the model runs in float16: a mean of squares of
# activations in the hundreds overflows fp16's range (65,504) quickly.
#
# This is `llm_from_scratch.llama.RMSNorm`, checked against the hand-worked numbers, against
# PyTorch's own `nn.RMSNorm` and against `transformers`' `LlamaRMSNorm` (with a random $\gamma$):

# %%
# NBVAL_CHECK_OUTPUT
from llm_from_scratch.llama import RMSNorm

norm = RMSNorm(4, eps=0.0)
print("package RMSNorm :", [round(v, 4) for v in norm(x).tolist()])
assert [round(v, 4) for v in norm(x).tolist()] == by_hand

xs = torch.randn(2, 5, 16, generator=torch.Generator().manual_seed(0)) * 3 + 1
ours = RMSNorm(16, eps=1e-5)
nn.init.uniform_(ours.weight, 0.5, 2.0)
torch_norm, hf_norm = nn.RMSNorm(16, eps=1e-5), hf_llama.LlamaRMSNorm(16, eps=1e-5)
torch_norm.weight.data.copy_(ours.weight.data)
hf_norm.weight.data.copy_(ours.weight.data)
print("== torch.nn.RMSNorm:", torch.allclose(ours(xs), torch_norm(xs), atol=1e-6))
print("== transformers LlamaRMSNorm:", torch.allclose(ours(xs), hf_norm(xs), atol=1e-6))
assert torch.allclose(ours(xs), torch_norm(xs), atol=1e-6) and torch.allclose(ours(xs), hf_norm(xs), atol=1e-6)

# %% [markdown]
# ## 3. Rotary position embeddings (RoPE)
#
# GPT-2 adds a learned vector $p_m$ to the token at position $m$. Attention then compares
# $(x_m + p_m)W_q$ with $(x_n + p_n)W_k$, and the absolute positions $m$ and $n$ leak into every
# score. What language mostly needs is the *offset* $m - n$ ("the word two tokens back").
# RoPE (Su et al., 2021) gets exactly that. It leaves the embeddings alone and instead **rotates**
# each query and key inside attention by an angle proportional to its position.
#
# Split a head's $D$ features into $D/2$ pairs. Pair $i$ turns by the angle $m\theta_i$ at position
# $m$, with a different speed per pair:
#
# $$\theta_i = \text{base}^{-2i/D}, \qquad
# \begin{pmatrix} x'_{a} \\ x'_{b} \end{pmatrix} =
# \begin{pmatrix} \cos m\theta_i & -\sin m\theta_i \\ \sin m\theta_i & \cos m\theta_i \end{pmatrix}
# \begin{pmatrix} x_{a} \\ x_{b} \end{pmatrix}$$
#
# (base = `rope_theta`: 10,000 in the paper, 500,000 in Llama 3.) A rotation by $m\theta$ followed by
# the dot product with a vector rotated by $n\theta$ is the dot product of the originals after a
# single rotation by $(m - n)\theta$, because $R_m^\top R_n = R_{n-m}$. So
#
# $$q_m'^{\top} k_n' = q_m^\top R_{n-m} k_n \quad\text{depends on } m \text{ and } n \text{ only through } m - n.$$
#
# **Which features form a pair.** The paper pairs neighbours $(x_{2i}, x_{2i+1})$ (the
# *interleaved* layout). `transformers`, and so this course, pairs feature $i$ with feature
# $i + D/2$ (the *rotate-half* layout): $x' = x\cos + \mathrm{rotate\_half}(x)\sin$ with
# $\mathrm{rotate\_half}(x_1, x_2) = (-x_2, x_1)$ for the two halves. Both are the same rotations
# applied to a permuted list of features (section 3.3).
#
# ### 3.1 By hand
# $D = 4$, base $= 100$: $\theta_0 = 100^{0} = 1$ and $\theta_1 = 100^{-2/4} = 0.1$. The vector
# $x = (1, 2, 3, 4)$ at position $m = 1$: the pair $(x_0, x_2) = (1, 3)$ turns by 1 radian, the pair
# $(x_1, x_3) = (2, 4)$ by 0.1 radian:
#
# $x'_0 = 1\cos 1 - 3\sin 1 = -1.9841$, $x'_2 = 3\cos 1 + 1\sin 1 = 2.4624$,
# $x'_1 = 2\cos 0.1 - 4\sin 0.1 = 1.5907$, $x'_3 = 4\cos 0.1 + 2\sin 0.1 = 4.1797$.

# %%
# NBVAL_CHECK_OUTPUT
from llm_from_scratch.llama import apply_rope

c1, s1, c01, s01 = math.cos(1), math.sin(1), math.cos(0.1), math.sin(0.1)
rope_by_hand = [1 * c1 - 3 * s1, 2 * c01 - 4 * s01, 3 * c1 + 1 * s1, 4 * c01 + 2 * s01]
x4 = torch.tensor([1.0, 2.0, 3.0, 4.0]).view(1, 1, 1, 4)  # (B, H, T, D)
rotated = apply_rope(x4, torch.tensor([1]), theta=100.0)
print("by hand   :", [round(v, 4) for v in rope_by_hand])
print("apply_rope:", [round(v, 4) for v in rotated.flatten().tolist()])
assert torch.allclose(rotated.flatten(), torch.tensor(rope_by_hand), atol=1e-6)
print("length kept:", round(x4.norm().item(), 4), "->", round(rotated.norm().item(), 4))

# %% [markdown]
# ### 3.2 The score depends only on the offset
# Take one random query and one random key ($D = 32$), place the query at every position $m$ and
# the key at every position $n$ from 0 to 63, and compute all $64 \times 64$ scores. If RoPE does
# what the formula says, every diagonal ($m - n$ fixed) holds a single value.

# %%
# NBVAL_CHECK_OUTPUT
g = torch.Generator().manual_seed(0)
q1, k1 = torch.randn(1, 1, 1, 32, generator=g), torch.randn(1, 1, 1, 32, generator=g)
pos = torch.arange(64)
q_all = apply_rope(q1.expand(1, 1, 64, 32), pos, 10000.0)[0, 0]  # (64, 32): the query at every position
k_all = apply_rope(k1.expand(1, 1, 64, 32), pos, 10000.0)[0, 0]
scores = q_all @ k_all.T  # scores[m, n] = q at m · k at n
spread = max((torch.diagonal(scores, -off).max() - torch.diagonal(scores, -off).min()).item() for off in range(64))
print("offset 3: scores at (3,0), (20,17), (63,60):",
      [round(scores[m, m - 3].item(), 3) for m in (3, 20, 63)])
print("largest spread along any diagonal < 1e-4:", spread < 1e-4)
print("but offsets 0 and 3 differ:", round(scores[10, 10].item(), 3), "vs", round(scores[13, 10].item(), 3))
assert spread < 1e-4

# %%
plt.figure(figsize=(4.2, 3.6))
plt.imshow(scores.numpy(), cmap="RdBu_r")
plt.colorbar(label="$q_m' \\cdot k_n'$")
plt.xlabel("key position n")
plt.ylabel("query position m")
plt.title("After RoPE every diagonal is one colour:\nthe score depends only on m − n")
plt.show()

# %% [markdown]
# ### 3.3 The interleaved layout is a permutation of rotate-half
# Meta's original Llama code treats each neighbouring pair as a complex number
# $x_{2i} + \mathrm{i}\,x_{2i+1}$ and multiplies it by $e^{\mathrm{i} m\theta_i}$, which is the same
# 2-D rotation. Reorder the features as (all even ones, then all odd ones) and neighbour pairs become
# $(i, i + D/2)$ pairs: rotate-half. That is why converting Meta's checkpoints to `transformers`
# permutes the rows of $W_q$ and $W_k$ once, and nothing else changes.

# %%
# NBVAL_CHECK_OUTPUT
def rope_interleaved(x, positions, theta):
    """The paper's layout with complex numbers: pairs (x_2i, x_2i+1) rotated by m·θ_i."""
    D = x.size(-1)
    freqs = 1.0 / (theta ** (torch.arange(0, D, 2).float() / D))
    turn = torch.polar(torch.ones(len(positions), D // 2), positions.float()[:, None] * freqs)  # e^{i m θ}
    xc = torch.view_as_complex(x.float().reshape(*x.shape[:-1], D // 2, 2))
    return torch.view_as_real(xc * turn).flatten(-2)


D = 8
perm = torch.cat([torch.arange(0, D, 2), torch.arange(1, D, 2)])  # (0, 2, 4, 6, 1, 3, 5, 7)
xq = torch.randn(1, 2, 5, D, generator=torch.Generator().manual_seed(1))
via_half = apply_rope(xq[..., perm], torch.arange(5), 10000.0)[..., torch.argsort(perm)]
print("permutation:", perm.tolist())
print("interleaved == permute, rotate-half, permute back:",
      torch.allclose(rope_interleaved(xq, torch.arange(5), 10000.0), via_half, atol=1e-6))
assert torch.allclose(rope_interleaved(xq, torch.arange(5), 10000.0), via_half, atol=1e-6)

# %% [markdown]
# **Why it won.** The attention score sees relative positions directly, with nothing to learn; there
# is no position table, so no parameters and no hard limit at `block_size` (the slow pairs, with
# wavelengths up to $2\pi \cdot \text{base}$ tokens, still tell far-apart tokens apart); and it
# touches only $q$ and $k$, so the values and the residual stream carry no position signal. Whether a
# model *works* beyond the lengths it was trained on is another matter: Llama 3.1 stretches the slow
# frequencies for that ("llama3" rope scaling, which the course package refuses rather than
# approximates).
#
# This is `llm_from_scratch.llama.apply_rope`, checked against `transformers`' rotary code
# (`LlamaRotaryEmbedding` for the angles, `apply_rotary_pos_emb` for the rotation), with per-row
# positions $(B, T)$ as a KV cache or left padding needs:

# %%
# NBVAL_CHECK_OUTPUT
rotary = hf_llama.LlamaRotaryEmbedding(transformers.LlamaConfig(hidden_size=64, num_attention_heads=4,
                                                                 rope_theta=500.0))
qh, kh = torch.randn(2, 4, 9, 16, generator=g), torch.randn(2, 4, 9, 16, generator=g)
positions = torch.stack([torch.arange(3, 12), torch.arange(40, 49)])  # (B, T)
cos, sin = rotary(qh, positions)
q_ref, k_ref = hf_llama.apply_rotary_pos_emb(qh, kh, cos, sin)
same = torch.allclose(apply_rope(qh, positions, 500.0), q_ref, atol=1e-6) and \
    torch.allclose(apply_rope(kh, positions, 500.0), k_ref, atol=1e-6)
print("apply_rope == transformers' apply_rotary_pos_emb:", same)
assert same

# %% [markdown]
# ## 4. SwiGLU
#
# GPT-2's feed-forward network is $W_2\,\mathrm{GELU}(W_1 x)$. A **gated linear unit** (GLU) computes
# two projections of $x$ and lets one gate the other, feature by feature. SwiGLU (Shazeer, 2020) uses
# SiLU, $\mathrm{SiLU}(z) = z\,\sigma(z)$, as the gate's activation:
#
# $$\mathrm{SwiGLU}(x) = W_2\big(\mathrm{SiLU}(W_1 x) \odot W_3 x\big), \qquad
# W_1, W_3 \in \mathbb{R}^{F \times d},\; W_2 \in \mathbb{R}^{d \times F}$$
#
# Three matrices instead of two: with $F = \tfrac83 d$ it has the $8d^2$ weights of a $4d$ MLP.
# (`transformers` calls them `gate_proj`, `up_proj`, `down_proj`.)
#
# By hand, $d = F = 2$, $x = (1, -1)$, $W_1 = I$, $W_3 = \begin{pmatrix}2 & 0\\ 1 & 1\end{pmatrix}$,
# $W_2 = \begin{pmatrix}1 & 1\\ 0 & 1\end{pmatrix}$: the gate is
# $\mathrm{SiLU}(1, -1) = (1\cdot\sigma(1), -1\cdot\sigma(-1)) = (0.7311, -0.2689)$, the up projection
# $W_3x = (2, 0)$, their product $(1.4621, 0)$, and $W_2$ of it is $(1.4621, 0)$. The second feature
# was switched off by the gate, whatever the up projection said.

# %%
# NBVAL_CHECK_OUTPUT
from llm_from_scratch.llama import SwiGLU

sig = lambda z: 1 / (1 + math.exp(-z))  # noqa: E731
gate = [1 * sig(1), -1 * sig(-1)]
up = [2.0, 0.0]  # W_3 x
h = [gate[0] * up[0], gate[1] * up[1]]  # the gate times the up projection
swiglu_by_hand = [h[0] + h[1], h[1] + 0.0]  # W_2 h with W_2 = [[1, 1], [0, 1]] (+ 0.0 turns -0.0 into 0.0)
mlp = SwiGLU(2, 2)
with torch.no_grad():
    mlp.w1.weight.copy_(torch.eye(2))
    mlp.w3.weight.copy_(torch.tensor([[2.0, 0.0], [1.0, 1.0]]))
    mlp.w2.weight.copy_(torch.tensor([[1.0, 1.0], [0.0, 1.0]]))
out = mlp(torch.tensor([1.0, -1.0]))
print("gate SiLU(W_1 x):", [round(v, 4) for v in gate])
print("by hand :", [round(v, 4) for v in swiglu_by_hand])
print("package :", [round(v, 4) for v in out.tolist()])
assert torch.allclose(out, torch.tensor(swiglu_by_hand), atol=1e-6)

# %%
z = torch.linspace(-5, 4, 200)
plt.figure(figsize=(5, 3))
plt.plot(z, F.relu(z), label="ReLU")
plt.plot(z, F.gelu(z, approximate="tanh"), label="GELU (GPT-2)")
plt.plot(z, F.silu(z), "--", label="SiLU = z σ(z) (the gate in SwiGLU)")
plt.xlabel("pre-activation z")
plt.ylabel("activation")
plt.legend()
plt.title("SiLU is a smooth ReLU that dips below zero:\nas a gate it can pass, damp or flip a feature")
plt.show()

# %% [markdown]
# **Why it won.** In Shazeer's comparisons at equal parameter count and compute, the GLU variants
# reached a lower loss than the plain ReLU and GELU networks, and SwiGLU was among the best. The
# usual reading: a product of two projections lets the network compute multiplicative interactions
# of features (one feature decides how much of another passes), which a single activation cannot.
# PaLM, Llama and nearly every model since use it.
#
# The package's `SwiGLU` against `transformers`' `LlamaMLP`, with the same random weights:

# %%
# NBVAL_CHECK_OUTPUT
swiglu = SwiGLU(16, 40)
hf_mlp = hf_llama.LlamaMLP(transformers.LlamaConfig(hidden_size=16, intermediate_size=40, num_attention_heads=2))
hf_mlp.gate_proj.weight.data.copy_(swiglu.w1.weight.data)
hf_mlp.up_proj.weight.data.copy_(swiglu.w3.weight.data)
hf_mlp.down_proj.weight.data.copy_(swiglu.w2.weight.data)
xm = torch.randn(2, 3, 16, generator=g)
print("SwiGLU == transformers LlamaMLP:", torch.allclose(swiglu(xm), hf_mlp(xm), atol=1e-6))
assert torch.allclose(swiglu(xm), hf_mlp(xm), atol=1e-6)

# %% [markdown]
# ## 5. Grouped-query attention and the KV cache
#
# When a model generates, it keeps the keys and values of every earlier token of every layer (the
# KV cache of chapter 06). For long contexts and large batches that cache, not the weights, fills the
# GPU. **Grouped-query attention** (Ainslie et al., 2023) keeps $H$ query heads but only $K$ key/value
# heads, $K$ dividing $H$; query head $h$ reads key/value head $\lfloor h / (H/K) \rfloor$. $K = H$ is
# ordinary multi-head attention, $K = 1$ is multi-query attention. The cache per token shrinks by
# $H/K$:
#
# $$\text{KV bytes per token} = 2 \cdot L \cdot K \cdot D \cdot \text{bytes per number}
# \quad (\text{2: a key and a value})$$
#
# The course's `MultiHeadAttention` (chapter 03) takes `n_kv_heads`; its `repeat_kv` shares each
# key/value head with its group of query heads just before attention, so the cache keeps $K$ heads.
# With $H = 4$ and $K = 2$, the four query heads read kv heads 0, 0, 1, 1:

# %%
# NBVAL_CHECK_OUTPUT
from llm_from_scratch.attention import repeat_kv

kv = torch.tensor([10.0, 20.0]).view(1, 2, 1, 1)  # (B, K=2, S=1, D=1): kv head 0 holds 10, head 1 holds 20
print("kv heads     :", kv.flatten().tolist())
print("after repeat :", repeat_kv(kv, 2).flatten().tolist())
assert torch.equal(repeat_kv(kv, 2), hf_llama.repeat_kv(kv, 2))  # transformers' helper agrees

# %% [markdown]
# The memory this saves, in fp16 (2 bytes a number), for one sequence of 8,192 tokens:

# %%
# NBVAL_CHECK_OUTPUT
from llm_from_scratch.llama import kv_cache_bytes_per_token

rows = [("GPT-2 small (MHA)", 12, 12, 12, 64), ("Llama-3-8B shape, if it were MHA", 32, 32, 32, 128),
        ("Llama-3-8B (GQA, 8 kv heads)", 32, 32, 8, 128), ("Qwen3-0.6B (GQA, 8 kv heads)", 28, 16, 8, 128),
        ("SmolLM2-135M (GQA, 3 kv heads)", 30, 9, 3, 64)]
print(f"{'model':34} {'L':>3} {'H':>3} {'K':>3} {'D':>4} {'KB/token':>9} {'GiB at 8192':>12}")
for name, L, H, K, Dh in rows:
    per_token = kv_cache_bytes_per_token(L, K, Dh)
    print(f"{name:34} {L:3d} {H:3d} {K:3d} {Dh:4d} {per_token / 1024:9.1f} {per_token * 8192 / 2**30:12.2f}")
assert kv_cache_bytes_per_token(32, 32, 128) == 4 * kv_cache_bytes_per_token(32, 8, 128)

# %% [markdown]
# Llama 3 8B needs 128 KB a token instead of 512 KB: four times as many tokens (or sequences) fit in
# the same GPU memory, and each decoding step reads a quarter of the bytes, which at long contexts is
# what limits its speed. The quality cost, measured by Ainslie et al., is small; $K = 1$ costs more. **Why it won**:
# long contexts and serving many users at once made the cache the bottleneck.
#
# The Llama attention of the package (`LlamaAttention`) is `MultiHeadAttention` with RoPE applied
# to $q$ and $k$ between its two steps (`project`, then `attend`). We check it three ways: against
# PyTorch's own `scaled_dot_product_attention(..., enable_gqa=True)`, the cache holds $K$ heads, and
# decoding token by token with the cache gives the logits of one pass over the whole sequence.

# %%
# NBVAL_CHECK_OUTPUT
from llm_from_scratch.llama import LlamaAttention, LlamaConfig

attn = LlamaAttention(LlamaConfig(n_embd=32, n_head=4, n_kv_head=2, block_size=32)).eval()
xa = torch.randn(2, 9, 32, generator=g)
q, k, v = attn.project(xa)  # q (B, 4, T, 8); k, v (B, 2, T, 8)
q, k = apply_rope(q, torch.arange(9), attn.rope_theta), apply_rope(k, torch.arange(9), attn.rope_theta)
y = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
torch_ref = attn.out_proj(y.transpose(1, 2).reshape(2, 9, 32))
print("q", tuple(q.shape), " k", tuple(k.shape), " v", tuple(v.shape))
print("== torch SDPA with enable_gqa:", torch.allclose(attn(xa), torch_ref, atol=1e-6))
out, cache = attn(xa[:, :5], use_cache=True)
steps = [out]
for t in range(5, 9):
    out, cache = attn(xa[:, t:t + 1], past_kv=cache, use_cache=True)
    steps.append(out)
print("cache k after 9 tokens:", tuple(cache[0].shape), "(B, K, S, D): 2 kv heads, not 4")
print("cached == one pass:", torch.allclose(torch.cat(steps, 1), attn(xa), atol=1e-5))
assert torch.allclose(attn(xa), torch_ref, atol=1e-6) and torch.allclose(torch.cat(steps, 1), attn(xa), atol=1e-5)

# %% [markdown]
# ### Qwen3's query/key norm
# Qwen3 (like OLMo 2 and Gemma 3) adds one more RMSNorm, over the $D$ features of each query head and
# each key head, before RoPE. A score $q^\top k$ grows with the lengths of $q$ and $k$; when those
# drift upwards in training, the softmax saturates and the loss spikes. Normalising them bounds the
# scores by the learned $\gamma$s. In the package it is `LlamaConfig(qk_norm=True)`: `LlamaAttention`
# then owns `q_norm` and `k_norm`, RMSNorms of size `head_dim`.

# %% [markdown]
# ## 6. The whole block, and the whole model
#
# $$x \leftarrow x + \mathrm{Attn}_{\text{RoPE, GQA}}\big(\mathrm{RMSNorm}_1(x)\big), \qquad
# x \leftarrow x + \mathrm{SwiGLU}\big(\mathrm{RMSNorm}_2(x)\big)$$
#
# and the model: token embeddings (no position table), $L$ blocks, a final RMSNorm, the output layer.
# Counting the weights of one block with $d$ = `n_embd`, $H$, $K$, $D$ = `head_dim`, $F$ =
# `intermediate_size` and no biases: $W_q$ and $W_o$ have $d \cdot HD$ each, $W_k$ and $W_v$
# $d \cdot KD$ each, the SwiGLU $3dF$, the two RMSNorms $2d$:
#
# $$N = V d\,(1 \text{ if tied, else } 2) + L\,\big(2dHD + 2dKD + 3dF + 2d\big) + d$$
#
# (Qwen3 adds $2D$ a block for the q/k norms.) The package's `llama_parameter_count` is this formula;
# we check it against the counted parameters and against the published sizes of real models, from the
# numbers in their `config.json` files.

# %%
# NBVAL_CHECK_OUTPUT
from llm_from_scratch.llama import Llama, LlamaBlock, llama_parameter_count

print(LlamaBlock(LlamaConfig(n_embd=64, n_head=4, n_kv_head=2, intermediate_size=192)))
small = LlamaConfig(vocab_size=1000, block_size=128, n_layer=3, n_head=4, n_kv_head=2, n_embd=64,
                    intermediate_size=192, qk_norm=True)
print("counted", sum(p.numel() for p in Llama(small).parameters()), " formula", llama_parameter_count(small))
assert sum(p.numel() for p in Llama(small).parameters()) == llama_parameter_count(small)

published = {  # (the size on the model card, the numbers of config.json)
    "Llama-3-8B": ("8.03B", LlamaConfig(vocab_size=128256, n_layer=32, n_head=32, n_kv_head=8, n_embd=4096,
                                      intermediate_size=14336)),
    "SmolLM2-135M": ("135M", LlamaConfig(vocab_size=49152, n_layer=30, n_head=9, n_kv_head=3, n_embd=576,
                                         intermediate_size=1536, tie_embeddings=True)),
    "Qwen3-0.6B": ("0.6B, 0.44B without embeddings", LlamaConfig(
        vocab_size=151936, n_layer=28, n_head=16, n_kv_head=8, n_embd=1024, head_dim=128,
        intermediate_size=3072, qk_norm=True, tie_embeddings=True)),
}
for name, (card, cfg) in published.items():
    n = llama_parameter_count(cfg)
    print(f"{name:13} formula {n:>13,}  (embeddings {cfg.vocab_size * cfg.n_embd:>11,})  card: {card}")
assert llama_parameter_count(published["Llama-3-8B"][1]) == 8_030_261_248

# %% [markdown]
# Now the whole model against `transformers`. We build two tiny random models with `transformers`
# (no download): a `LlamaForCausalLM` with grouped-query attention and a separate output layer, and a
# `Qwen3ForCausalLM` with q/k norms, a tied output layer and `head_dim` set apart from
# `n_embd / n_head`. `Llama.from_hf` maps their weights onto ours (it stacks `q_proj`, `k_proj`,
# `v_proj` into the fused `qkv`, renames the rest) and reads the config, RoPE base included.

# %%
# NBVAL_CHECK_OUTPUT
def randomized(model):
    with torch.no_grad():  # RMSNorm γ start at 1: random ones make a mapping mistake visible
        for name, p in model.named_parameters():
            if "norm" in name:
                p.uniform_(0.5, 1.5)
    return model.eval()


torch.manual_seed(0)
tiny_hf = {
    "Llama (GQA, untied)": randomized(transformers.LlamaForCausalLM(transformers.LlamaConfig(
        vocab_size=97, hidden_size=32, intermediate_size=56, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=64, rope_theta=500.0, tie_word_embeddings=False,
        bos_token_id=None, eos_token_id=None, pad_token_id=None))),
    "Qwen3 (q/k norm, tied)": randomized(transformers.Qwen3ForCausalLM(transformers.Qwen3Config(
        vocab_size=101, hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, head_dim=16, max_position_embeddings=64, rope_theta=1000.0,
        tie_word_embeddings=True, bos_token_id=None, eos_token_id=None, pad_token_id=None))),
}
ids = torch.randint(0, 97, (2, 12), generator=torch.Generator().manual_seed(0))
for name, hf_model in tiny_hf.items():
    ours = Llama.from_hf(hf_model).eval()
    with torch.no_grad():
        ref = hf_model(ids).logits
        greedy_ref = hf_model.generate(ids[:1, :4], attention_mask=torch.ones(1, 4, dtype=torch.long),
                                       max_new_tokens=16, min_new_tokens=16, do_sample=False, pad_token_id=0)
    same_logits = torch.allclose(ours(ids)[0], ref, atol=1e-5)
    same_greedy = torch.equal(ours.generate(ids[:1, :4], 16, temperature=0), greedy_ref)
    print(f"{name:24} kv heads {ours.config.n_kv_head}, head_dim {ours.config.head_dim}, "
          f"tied {ours.config.tie_embeddings}: logits equal {same_logits}, greedy tokens equal {same_greedy}")
    assert same_logits and same_greedy

# %% [markdown]
# And back: `to_hf(directory)` writes a folder `transformers` opens with `AutoModelForCausalLM`
# (a `Qwen3ForCausalLM` when `qk_norm`, else a `LlamaForCausalLM`).

# %%
# NBVAL_CHECK_OUTPUT
with tempfile.TemporaryDirectory() as folder:
    exported = Llama.from_hf(tiny_hf["Qwen3 (q/k norm, tied)"]).to_hf(folder)
    back = transformers.AutoModelForCausalLM.from_pretrained(exported).eval()
    with torch.no_grad():
        round_trip = torch.allclose(back(ids).logits, tiny_hf["Qwen3 (q/k norm, tied)"](ids).logits, atol=1e-5)
    print(sorted(p.name for p in exported.iterdir()), type(back).__name__, "logits equal:", round_trip)
assert round_trip

# %% [markdown]
# ## 7. GPT-2's block against the modern block, trained side by side
#
# Does the new recipe learn faster? We train the GPT of chapter 06 and a Llama-style model of the
# same size on the same Shakespeare characters: the same batches in the same order, the same
# optimizer (AdamW, warmup then cosine, gradient clipping), the same seed for both. The Llama-style
# model has $K = H/2$ key/value heads and a SwiGLU of width $F = 3d$, which gives it the $12d^2$
# weights per block of GPT-2's block; both tie the output layer. The GPT keeps its learned
# positions and biases (a few percent more parameters).

# %%
# NBVAL_IGNORE_OUTPUT
from llm_from_scratch.gpt import GPT, GPTConfig
from llm_from_scratch.optim import warmup_cosine
from llm_from_scratch.presets import get_preset, prepare_data
from llm_from_scratch.train import evaluate_lm, lm_batches

SIZES = {  # (layers, heads, width, context, batch, steps, peak lr)
    "smoke": (2, 4, 64, 64, 16, 60, 3e-3),
    "book": (4, 4, 128, 64, 24, 1200, 2e-3),
    "full": (6, 6, 384, 256, 32, 2000, 1e-3),  # fp32 on the GPU too: the comparison wants no GradScaler
}
n_layer, n_head, d, block, batch, steps, peak_lr = SIZES[SETTING]
device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
data = prepare_data(get_preset("tiny-char"), progress=False)  # characters; train plays / held-out plays
V = data.tokenizer.vocab_size
print(f"{V} characters; {data.train.numel():,} training and {data.val.numel():,} validation tokens")

gpt_cfg = GPTConfig(vocab_size=V, block_size=block, n_layer=n_layer, n_head=n_head, n_embd=d, dropout=0.0)
llama_cfg = LlamaConfig(vocab_size=V, block_size=block, n_layer=n_layer, n_head=n_head, n_kv_head=n_head // 2,
                        n_embd=d, intermediate_size=3 * d, tie_embeddings=True)
seed_everything(0)
models = {"GPT-2 style": GPT(gpt_cfg).to(device)}
seed_everything(0)
models["Llama style"] = Llama(llama_cfg).to(device)
for name, m in models.items():
    print(f"{name:12} {sum(p.numel() for p in m.parameters()):,} parameters")

# %%
# NBVAL_IGNORE_OUTPUT
batches = lm_batches(data.train, block_size=block, batch_size=batch, seed=0)
val_batches = [lm_batches(data.val, block_size=block, batch_size=batch, seed=1)(i) for i in range(8)]
eval_every = max(steps // 10, 10)
history = {name: {"step": [], "train": [], "val_step": [], "val": []} for name in models}
optimizers = {name: torch.optim.AdamW(m.parameters(), lr=peak_lr, betas=(0.9, 0.99), weight_decay=0.1)
              for name, m in models.items()}
seconds = dict.fromkeys(models, 0.0)
for step in range(steps):
    xb, yb = (t.to(device) for t in batches(step))
    lr = warmup_cosine(step, max_lr=peak_lr, warmup_steps=max(steps // 20, 1), total_steps=steps, min_lr=peak_lr / 10)
    for name, model in models.items():  # the two models alternate: the same batch, one after the other
        start = time.perf_counter()
        model.train()
        for group in optimizers[name].param_groups:
            group["lr"] = lr
        _, loss = model(xb, yb)
        optimizers[name].zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizers[name].step()
        seconds[name] += time.perf_counter() - start
        history[name]["step"].append(step)
        history[name]["train"].append(loss.item())
        if (step + 1) % eval_every == 0 or step == steps - 1:
            history[name]["val_step"].append(step)
            history[name]["val"].append(evaluate_lm(model, val_batches, device=device)["loss"])
final = {name: h["val"][-1] for name, h in history.items()}
for name in models:
    print(f"{name:12} validation loss {final[name]:.3f}  ({seconds[name]:.1f} s of training)")
assert all(math.isfinite(v) for v in final.values())
assert all(v < math.log(V) for v in final.values())  # both learned something: below the uniform guess

# %%
plt.figure(figsize=(6.5, 3.6))
for (name, h), colour in zip(history.items(), ("tab:blue", "tab:orange")):
    smooth = torch.tensor(h["train"]).unfold(0, min(20, steps // 3), 1).mean(1)
    plt.plot(range(len(smooth)), smooth, color=colour, alpha=0.5, label=f"{name}, training (moving average)")
    plt.plot(h["val_step"], h["val"], "o-", color=colour, label=f"{name}, held-out plays")
plt.xlabel("step")
plt.ylabel("cross entropy (nats per character)")
plt.legend(fontsize=8)
plt.title("Same data, same size, same optimizer:\nwhere does the modern block end up?")
plt.show()

# %%
# NBVAL_IGNORE_OUTPUT
better = min(final, key=final.get)
display(Markdown(
    f"In this run ({SETTING} setting, {steps} steps) the validation losses are {final['GPT-2 style']:.3f} (GPT-2 style) "
    f"and {final['Llama style']:.3f} (Llama style): the **{better}** model is ahead by "
    f"{abs(final['GPT-2 style'] - final['Llama style']):.3f} nats per character. Training took "
    f"{seconds['GPT-2 style']:.0f} s and {seconds['Llama style']:.0f} s."))

# %% [markdown]
# **What this comparison shows, and what it does not.** It is one seed, one small character-level
# model and one run length, so a gap of a few hundredths of a nat can come from the seed alone (try
# two more seeds before you believe it). The learning rate was tuned for neither model, and the order
# can change with the length of the run and the learning rate (the smoke setting's 60 steps show only
# the very start; the book setting's 1,200 steps say more). It says nothing about long contexts, where
# RoPE matters most, nor about memory at inference, where GQA matters most (section 5): these designs
# were chosen for large models trained on trillions of tokens, and their published advantages are
# measured at that scale. What it does show is that the modern block is a drop-in replacement: the
# same data, loop and loss work unchanged.

# %% [markdown]
# ## 8. A real open model (Colab)
#
# In the full setting (a GPU, and the Hugging Face hub within reach) we load a small real model,
# SmolLM2-135M (a Llama-style model: 30 layers, 9 query heads sharing 3 key/value heads, tied
# embeddings), into the course's `Llama` with `Llama.from_pretrained`, check its logits against
# `transformers`, and let it continue a prompt. Elsewhere the cell explains itself and does nothing.

# %%
# NBVAL_IGNORE_OUTPUT
REAL_MODEL = "HuggingFaceTB/SmolLM2-135M"  # or "Qwen/Qwen3-0.6B" (a Qwen3: q/k norms, head_dim 128)
if SETTING != "full":
    print(f"Skipped in the {SETTING} setting: loading {REAL_MODEL} needs the Hugging Face hub "
          "(run the chapter in Colab, or with LFS_SETTING=full).")
else:
    try:
        real = Llama.from_pretrained(REAL_MODEL).to(device).eval()
        tok = transformers.AutoTokenizer.from_pretrained(REAL_MODEL)
    except (FileNotFoundError, OSError) as err:
        real = None
        print(f"Skipped: {REAL_MODEL} could not be downloaded ({type(err).__name__}); is the hub reachable?")
    if real is not None:
        print(real.config)
        print(f"{real.num_parameters():,} parameters; formula {llama_parameter_count(real.config):,}")
        prompt = tok("To be, or not to be, that is", return_tensors="pt").input_ids.to(device)
        # float32 like ours (the hub stores bfloat16; recent transformers would keep that by default)
        ref_model = transformers.AutoModelForCausalLM.from_pretrained(REAL_MODEL).float().to(device).eval()
        with torch.no_grad():
            diff = (real(prompt)[0] - ref_model(prompt).logits).abs().max().item()
        print(f"largest logit difference to transformers: {diff:.2e}")
        assert diff < 5e-3  # the same weights in float32; only the order of the sums differs
        out = real.generate(prompt, 40, temperature=0.7, top_p=0.9, generator=torch.Generator(device).manual_seed(0))
        print(tok.decode(out[0].tolist()))

# %% [markdown]
# ## What to try
#
# 1. **Ablate one change at a time.** Train four models in section 7: GPT-2's block, then with
#    RMSNorm, then also with RoPE instead of learned positions, then also with SwiGLU. Which change
#    moves the validation loss most at this size? Run three seeds of each before you answer.
# 2. **Longer than trained.** Train both models with `block_size` 64, then evaluate them on windows
#    of 128 characters (the GPT needs a position table of 128: copy its first 64 rows twice). Which
#    one degrades more gracefully, and why can't either be trusted there?
# 3. **How far can $K$ go?** Train the Llama-style model with $K = H$, $H/2$ and $1$ key/value
#    heads (widen the SwiGLU to keep the parameter count). Plot the validation loss against the KV
#    cache bytes per token.
# 4. **A Qwen3 instead.** In section 8 set `REAL_MODEL = "Qwen/Qwen3-0.6B"`: the same code loads it.
#    Print its `head_dim` and `n_embd / n_head`: why can they differ?

# %% [markdown]
# ## Exercises
#
# Write each piece from this chapter, then run its cell: `check` compares it with `llama` and `attention`
# and prints one line per failed test, with a hint. A cell that still says `raise NotImplementedError`
# prints "not attempted yet". Solutions: `chapters/solutions/14_modern_decoder.ipynb`.

# %%
import torch
from llm_from_scratch.exercises import check

# %% [markdown]
# **14.1 RMSNorm.** $\mathrm{RMSNorm}(x) = \gamma \odot x / \sqrt{\mathrm{mean}(x^2) + \varepsilon}$ over the
# last dimension of x (..., d), with `weight` $= \gamma$ (d,), without `torch.nn.RMSNorm`. Compute the
# statistic in float32 (the squares of float16 values above 256 overflow), cast the normalised x back to
# x's dtype, then multiply by $\gamma$.

# %%
# NBVAL_CHECK_OUTPUT
def rms_norm(x, weight, eps=1e-6):
    ### BEGIN SOLUTION
    x32 = x.float()
    normed = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + eps)
    return weight * normed.to(x.dtype)
    ### END SOLUTION


check("14.1", rms_norm)

# %% [markdown]
# **14.2 Rotary position embeddings.** Rotate queries or keys x (B, H, T, D) by their positions (T,) or
# (B, T) in the rotate-half layout of section 3: feature $i$ pairs with feature $i + D/2$, the pair turns
# by the angle $m\theta_i$ with $\theta_i = \text{theta}^{-2i/D}$, so
# $x' = x \cos(m\theta) + \mathrm{rotate\_half}(x) \sin(m\theta)$ with
# $\mathrm{rotate\_half}(x_1, x_2) = (-x_2, x_1)$. Compute the angles in float32.

# %%
# NBVAL_CHECK_OUTPUT
def apply_rope(x, positions, theta=10000.0):
    ### BEGIN SOLUTION
    D = x.shape[-1]
    freqs = 1.0 / theta ** (torch.arange(0, D, 2, dtype=torch.float32) / D)  # θ_i, (D/2,)
    angles = positions.float()[..., None] * freqs  # (T, D/2) or (B, T, D/2)
    emb = torch.cat([angles, angles], dim=-1)  # features i and i + D/2 turn by the same angle
    cos, sin = emb.cos(), emb.sin()
    if positions.dim() == 2:
        cos, sin = cos[:, None], sin[:, None]  # (B, 1, T, D): every head alike
    rotated = torch.cat([-x[..., D // 2:], x[..., : D // 2]], dim=-1)  # rotate_half
    return x * cos + rotated * sin
    ### END SOLUTION


check("14.2", apply_rope)

# %% [markdown]
# **14.3 Sharing key/value heads.** Grouped-query attention has H query heads and K = H / n_rep key/value
# heads; query head $h$ reads key/value head $h \,/\!/\, n_{rep}$. Write `repeat_kv(x, n_rep)`:
# (B, K, S, D) -> (B, K·n_rep, S, D), each head repeated `n_rep` times in a row (k0 k0 k1 k1, not
# k0 k1 k0 k1), without `repeat_interleave`. With it, `F.scaled_dot_product_attention(q, repeat_kv(k, n_rep),
# repeat_kv(v, n_rep))` is grouped-query attention.

# %%
# NBVAL_CHECK_OUTPUT
def repeat_kv(x, n_rep):
    ### BEGIN SOLUTION
    B, K, S, D = x.shape
    return x[:, :, None].expand(B, K, n_rep, S, D).reshape(B, K * n_rep, S, D)  # a view, then one copy
    ### END SOLUTION


check("14.3", repeat_kv)
