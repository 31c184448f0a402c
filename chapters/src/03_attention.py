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
# # 03 · Attention: queries, keys, values, masks, heads and positions
#
# Attention is the one operation that lets a token in a Transformer look at the other tokens.
# By the end of this chapter you will be able to compute scaled dot-product attention by hand on a
# six-word sentence, say why the scores are divided by $\sqrt{d_k}$ (and show what goes wrong
# without it), build the padding and causal masks that GPT and BERT need, split attention into
# heads, read an attention heatmap of a trained model, and give a model a sense of word order with
# sinusoidal or learned positions. Every piece is then checked against the course package
# (`llm_from_scratch.attention`) and against PyTorch's own kernels.
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/llm-from-scratch/llm-from-scratch/blob/main/chapters/03_attention.ipynb)

# %%
import sys
if "google.colab" in sys.modules:  # Colab: install the course package alone (Colab keeps its torch); a no-op elsewhere
    import subprocess
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                    "git+https://github.com/llm-from-scratch/llm-from-scratch"], check=True)
import math
import time

import matplotlib.pyplot as plt
import torch
import torch.nn as nn
import torch.nn.functional as F
from llm_from_scratch.utils import current_setting, seed_everything
SETTING = current_setting()  # "smoke" (CI), "book" (a CPU: the default) or "full" (a GPU)
seed_everything(0)


def show(M, rows=None, cols=None, digits=3):
    """Print a small matrix with row and column labels, rounded so that it is the same everywhere."""
    M = torch.as_tensor(M, dtype=torch.float64)
    rows = rows or [str(i) for i in range(M.shape[0])]
    cols = cols or [str(j) for j in range(M.shape[1])]
    width = max(7, digits + 4, *(len(c) + 1 for c in cols))
    print(" " * 6 + "".join(f"{c:>{width}}" for c in cols))
    for name, row in zip(rows, M):
        cells = "".join(f"{'-inf' if v == -math.inf else f'{round(v, digits) + 0.0:.{digits}f}':>{width}}"
                        for v in row.tolist())  # + 0.0 turns -0.0 into 0.0
        print(f"{name:>6}" + cells)


# %% [markdown]
# ## 1. The idea: every token asks, every token answers
#
# In "the cat sat on the mat", what *sat* means depends on *cat*: the word needs information from
# other positions. Attention gives each token three vectors, all linear maps of its embedding
# $x$:
#
# - a **query** $q = x W^Q$: what am I looking for?
# - a **key** $k = x W^K$: what do I contain, as seen by someone searching?
# - a **value** $v = x W^V$: what do I hand over if I am chosen?
#
# Token $t$ scores every token $s$ by the dot product $q_t \cdot k_s$, turns the scores into
# weights with a softmax (positive, summing to one), and takes the weighted average of the values.
# For all tokens at once, with $Q, K, V$ stacking the vectors as rows:
#
# $$\mathrm{Attention}(Q, K, V) = \mathrm{softmax}\!\left(\frac{Q K^\top}{\sqrt{d_k}}\right) V$$
#
# The softmax runs along each row, and $d_k$ is the length of a query (and key) vector.
# We compute it by hand on a sentence of six words with embeddings of size $d = 4$ and small
# integer weights, so that every number up to the softmax is exact.

# %%
# NBVAL_CHECK_OUTPUT
words = ["the", "cat", "sat", "on", "the", "mat"]
vocab = {w: i for i, w in enumerate(dict.fromkeys(words))}  # the, cat, sat, on, mat
g = torch.Generator().manual_seed(3)
embedding = torch.randint(-1, 2, (len(vocab), 4), generator=g).float()  # one row per word type
X = embedding[[vocab[w] for w in words]]  # (T=6, d=4): the two "the" share a row
W_q, W_k, W_v = (torch.randint(-1, 2, (4, 4), generator=g).float() for _ in range(3))
print("X (one row per token):")
show(X, words, digits=0)

# %%
# NBVAL_CHECK_OUTPUT
Q, K, V = X @ W_q, X @ W_k, X @ W_v  # (6, 4) each: exact integers
print("Q = X W_q"); show(Q, words, digits=0)
print("K = X W_k"); show(K, words, digits=0)
print("V = X W_v"); show(V, words, digits=0)

# %% [markdown]
# **Scores.** Row $t$, column $s$ of $QK^\top$ is $q_t \cdot k_s$: how well token $s$'s key matches
# token $t$'s query. With $d_k = 4$ we divide by $\sqrt{4} = 2$, so the scores are exact halves.

# %%
# NBVAL_CHECK_OUTPUT
d_k = Q.shape[-1]
scores = Q @ K.T / math.sqrt(d_k)  # (6, 6)
show(scores, words, words, digits=1)

# %% [markdown]
# **Weights.** A softmax along each row: $A_{ts} = e^{S_{ts}} / \sum_{s'} e^{S_{ts'}}$. Every row
# is now a probability distribution over the tokens that row $t$ reads from. Check one entry by
# hand: the first row.

# %%
# NBVAL_CHECK_OUTPUT
A = torch.softmax(scores, dim=-1)
show(A, words, words)
row = scores[0]
by_hand = [math.exp(s) / sum(math.exp(x) for x in row.tolist()) for s in row.tolist()]
print("row 'the', by hand:", [round(w, 3) for w in by_hand])
print("rows sum to one:", torch.allclose(A.sum(-1), torch.ones(6)))

# %% [markdown]
# **Output.** Each token's new vector is the weighted average of the values, $\mathrm{out}_t = \sum_s A_{ts} v_s$.
# Note that the two "the" rows are identical everywhere: they have the same embedding, so the
# same query, so the same weights. Attention alone does not know *where* a word is; section 7
# fixes that.

# %%
# NBVAL_CHECK_OUTPUT
out = A @ V
show(out, words, digits=3)
print("the two 'the' tokens get the same output:", torch.equal(out[0], out[4]))

# %% [markdown]
# This is `llm_from_scratch.attention.scaled_dot_product_attention`: it returns the output and
# the weights, and agrees with PyTorch's `F.scaled_dot_product_attention`.

# %%
# NBVAL_CHECK_OUTPUT
from llm_from_scratch.attention import scaled_dot_product_attention

pkg_out, pkg_weights = scaled_dot_product_attention(Q, K, V)
print("package == by hand:", torch.allclose(pkg_out, out, atol=1e-6), torch.allclose(pkg_weights, A, atol=1e-6))
print("package == torch SDPA:", torch.allclose(pkg_out, F.scaled_dot_product_attention(Q, K, V), atol=1e-5))
assert torch.allclose(pkg_out, F.scaled_dot_product_attention(Q, K, V), atol=1e-5)

# %%
fig, ax = plt.subplots(figsize=(4.2, 3.6))
im = ax.imshow(A, cmap="viridis", vmin=0, vmax=1)
ax.set_xticks(range(6), words); ax.set_yticks(range(6), words)
ax.set_xlabel("key (read from)"); ax.set_ylabel("query (reader)")
ax.set_title("Each row sums to 1: who each word reads from\n(random weights: no meaning yet)")
fig.colorbar(im, ax=ax)
plt.show()

# %% [markdown]
# ## 2. Why divide by $\sqrt{d_k}$?
#
# If the components of $q$ and $k$ are independent with mean 0 and variance 1, then
# $q \cdot k = \sum_{i=1}^{d_k} q_i k_i$ is a sum of $d_k$ terms of variance 1: its variance is
# $d_k$ and its typical size $\sqrt{d_k}$. Wide heads give large scores, and a softmax of large
# scores **saturates**: nearly all the weight goes to the largest score, a one-hot vector.
# A saturated softmax has a vanishing gradient (its Jacobian is $\mathrm{diag}(p) - pp^\top$,
# which is 0 when $p$ is one-hot), so the model stops learning where to look. Dividing by
# $\sqrt{d_k}$ brings the variance back to 1 whatever the width.
#
# We measure it: for random queries and 16 random keys, how large is the biggest weight, how
# spread out is the distribution (its entropy; the maximum is $\ln 16 \approx 2.77$), and how
# large is the softmax's Jacobian?

# %%
# NBVAL_CHECK_OUTPUT
n_keys, n_samples = 16, 500
dims = [2, 8, 32, 128, 512, 2048]
stats = {"unscaled": [], "scaled": []}
g = torch.Generator().manual_seed(0)
for d in dims:
    q = torch.randn(n_samples, 1, d, generator=g)
    k = torch.randn(n_samples, n_keys, d, generator=g)
    dots = (q @ k.transpose(-2, -1)).squeeze(1)  # (n_samples, 16)
    for name, s in (("unscaled", dots), ("scaled", dots / math.sqrt(d))):
        p = torch.softmax(s, dim=-1)
        entropy = -(p * p.clamp_min(1e-30).log()).sum(-1)
        jacobian = torch.diag_embed(p) - p[:, :, None] * p[:, None, :]
        stats[name].append((dots.var().item(), p.max(-1).values.mean().item(), entropy.mean().item(),
                            jacobian.norm(dim=(-2, -1)).mean().item()))
print(f"{'d_k':>5} {'var(q.k)':>9} | {'max weight':>10} {'entropy':>8} {'|J|':>6} (unscaled) | "
      f"{'max weight':>10} {'entropy':>8} {'|J|':>6} (scaled)")
for d, u, s in zip(dims, stats["unscaled"], stats["scaled"]):
    print(f"{d:>5} {round(u[0]):>9} | {u[1]:>10.2f} {u[2]:>8.2f} {u[3]:>6.2f}            | "
          f"{s[1]:>10.2f} {s[2]:>8.2f} {s[3]:>6.2f}")
assert stats["unscaled"][-1][1] > 0.9 and stats["scaled"][-1][1] < 0.5  # saturated vs not

# %%
fig, axes = plt.subplots(1, 3, figsize=(12, 3.3))
for i, (ax, label) in enumerate(zip(axes, ["mean max weight", "mean entropy (nats)", "softmax Jacobian norm"])):
    for name, style in (("unscaled", "o-"), ("scaled", "s-")):
        ax.plot(dims, [row[i + 1] for row in stats[name]], style, label=f"{name}: q·k" + (" / √d_k" if name == "scaled" else ""))
    ax.set_xscale("log", base=2); ax.set_xlabel("d_k"); ax.set_ylabel(label)
axes[1].axhline(math.log(n_keys), color="gray", ls=":", label="uniform (ln 16)")
axes[0].legend(); axes[1].legend(fontsize=8)
fig.suptitle("Without 1/√d_k the softmax saturates as d_k grows: one key takes all the weight and the gradient vanishes")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## 3. Masks: who may look at whom
#
# A mask says which (query, key) pairs are allowed. We follow PyTorch's convention: a boolean
# mask is **True where attention is allowed**. A disallowed score is set to $-\infty$ before the
# softmax, so its weight is exactly $e^{-\infty} = 0$:
#
# $$A = \mathrm{softmax}\!\left(\frac{QK^\top}{\sqrt{d_k}} + M\right),\qquad M_{ts} = \begin{cases}0 & \text{allowed}\\ -\infty & \text{masked}\end{cases}$$
#
# Two masks matter in this course:
#
# - **Padding.** Sentences in a batch have different lengths; the short ones are padded to the
#   longest. No token should read from a pad. This is a *key-padding* mask of shape (B, S):
#   True for a real token.
# - **Causal.** A GPT predicts the next token, so position $t$ may only read positions $\le t$,
#   or it would see the answer. This is the lower triangle of a $T \times T$ matrix.
#
# BERT uses padding only (it reads the whole sentence both ways); GPT uses causal (and padding
# when batching prompts of different lengths).

# %%
# NBVAL_CHECK_OUTPUT
from llm_from_scratch.attention import causal_mask

batch = [["the", "cat", "sat", "on", "the", "mat"], ["dogs", "bark"]]
T = max(len(s) for s in batch)
real = torch.tensor([[i < len(s) for i in range(T)] for s in batch])  # (B, S) key padding
print("key-padding mask (B, S):\n", real.int())
padding = real[1][None, :].expand(T, T)  # sentence 2 as a (T, S) matrix: the same for every query
causal = causal_mask(T)
both = padding & causal
for name, m in (("padding (sentence 2)", padding), ("causal", causal), ("both", both)):
    print(f"{name}:\n{m.int()}")

# %%
fig, axes = plt.subplots(1, 3, figsize=(10, 3.3))
labels = ["dogs", "bark", "pad", "pad", "pad", "pad"]
for ax, (name, m) in zip(axes, (("padding", padding), ("causal", causal), ("padding & causal", both))):
    ax.imshow(m, cmap="Greens", vmin=0, vmax=1.4)
    ax.set_xticks(range(T), labels, rotation=45); ax.set_yticks(range(T), labels)
    ax.set_title(name)
axes[0].set_ylabel("query"); axes[1].set_xlabel("key")
fig.suptitle("Green = may attend: pads are never read; under the causal mask no one reads the future")
fig.tight_layout()
plt.show()

# %% [markdown]
# The causal mask on our sentence: the scores above the diagonal become $-\infty$ and their
# weights 0. "the" (first) can only read itself; "mat" reads everything.

# %%
# NBVAL_CHECK_OUTPUT
masked_scores = scores.masked_fill(~causal_mask(6), -math.inf)
show(masked_scores, words, words, digits=1)
A_causal = torch.softmax(masked_scores, dim=-1)
show(A_causal, words, words)
pkg_out, pkg_w = scaled_dot_product_attention(Q, K, V, mask=causal_mask(6))
print("package == by hand:", torch.allclose(pkg_w, A_causal, atol=1e-6))
print("package == torch (is_causal=True):",
      torch.allclose(pkg_out, F.scaled_dot_product_attention(Q, K, V, is_causal=True), atol=1e-5))

# %% [markdown]
# **A row with nothing to attend to.** With *left* padding (common when generating from prompts
# of different lengths) and a causal mask, the first pad query may read only keys at or before
# it, and those are all pads: its whole row is masked. A naive softmax of a row of $-\infty$ is
# $0/0$ = NaN, and one NaN spreads through everything downstream. The package defines the output
# of such a row as zeros (its result is thrown away anyway: it belongs to a pad).

# %%
# NBVAL_CHECK_OUTPUT
left_padded = torch.tensor([False, False, True, True, True, True])  # 2 pads, then 4 tokens
mask = causal_mask(6) & left_padded[None, :]
print(mask.int())
naive = torch.softmax(scores.masked_fill(~mask, -math.inf), dim=-1)
print("naive softmax, first row:", naive[0].tolist())
_, safe = scaled_dot_product_attention(Q, K, V, mask=mask)
print("package, first row:      ", safe[0].tolist())

# %% [markdown]
# ## 4. Multi-head attention
#
# One softmax per query can only put its weight in one "place" at a time. A model usually
# needs several kinds of lookup at once (the previous word, the subject of the verb, the matching
# bracket), so it runs $h$ attentions in parallel, each on its own projection of size
# $d_{\text{head}} = d_{\text{model}} / h$, and mixes their outputs with one more matrix:
#
# $$\mathrm{MultiHead}(Q, K, V) = \mathrm{Concat}(\mathrm{head}_1, \ldots, \mathrm{head}_h)\, W^O,
# \qquad \mathrm{head}_i = \mathrm{Attention}(Q W_i^Q, K W_i^K, V W_i^V)$$
#
# The cost is the same as one big head: the $h$ projections of size $d_{\text{model}} \times d_{\text{head}}$
# are the columns of one $d_{\text{model}} \times d_{\text{model}}$ matrix. In code, we project once and
# *reshape*: (B, T, $d_{\text{model}}$) → (B, T, h, $d_{\text{head}}$) → (B, h, T, $d_{\text{head}}$), so
# that the heads become a batch dimension. `llm_from_scratch.attention.MultiHeadAttention` goes
# one step further and computes $Q$, $K$ and $V$ in one matmul: its `qkv` Linear holds
# $[W^Q; W^K; W^V]$ stacked, with the heads contiguous inside each block.

# %%
# NBVAL_CHECK_OUTPUT
from llm_from_scratch.attention import MultiHeadAttention

torch.manual_seed(0)
d_model, n_heads = 8, 2
mha = MultiHeadAttention(d_model, n_heads).eval()
x = torch.randn(1, 6, d_model)  # (B, T, d_model): a batch of one 6-token sentence
print(mha)
print("qkv.weight:", tuple(mha.qkv.weight.shape), " out_proj.weight:", tuple(mha.out_proj.weight.shape))

# By hand: project, split into heads, attend per head, concatenate, mix.
q, k, v = mha.qkv(x).split(d_model, dim=-1)  # each (1, 6, 8)
split = lambda t: t.view(1, 6, n_heads, d_model // n_heads).transpose(1, 2)  # (1, 2 heads, 6, 4)
q, k, v = split(q), split(k), split(v)
print("per-head q:", tuple(q.shape))
heads = [scaled_dot_product_attention(q[:, i], k[:, i], v[:, i])[0] for i in range(n_heads)]  # each (1, 6, 4)
by_hand = mha.out_proj(torch.cat(heads, dim=-1))  # Concat(head_1, head_2) W^O
print("MultiHeadAttention == by hand:", torch.allclose(mha(x), by_hand, atol=1e-6))

# %% [markdown]
# This is also exactly PyTorch's `nn.MultiheadAttention` given the same weights (its
# `in_proj_weight` has our `qkv` layout). The package has two paths to the same result: the
# **fast path** calls `F.scaled_dot_product_attention`, which on a GPU runs the flash-attention
# kernel and never stores the $T \times T$ weight matrix; the **explicit path**
# (`need_weights=True`) runs our own formula and keeps the weights, (B, h, T, S), in
# `mha.last_attn_weights`, for plots like the next section's.

# %%
# NBVAL_CHECK_OUTPUT
torch_mha = nn.MultiheadAttention(d_model, n_heads, batch_first=True).eval()
with torch.no_grad():
    torch_mha.in_proj_weight.copy_(mha.qkv.weight); torch_mha.in_proj_bias.copy_(mha.qkv.bias)
    torch_mha.out_proj.weight.copy_(mha.out_proj.weight); torch_mha.out_proj.bias.copy_(mha.out_proj.bias)
fast = mha(x)
explicit = mha(x, need_weights=True)
reference, ref_weights = torch_mha(x, x, x, average_attn_weights=False)
print("fast == explicit:", torch.allclose(fast, explicit, atol=1e-6))
print("package == torch nn.MultiheadAttention:", torch.allclose(fast, reference, atol=1e-5))
print("weights kept:", tuple(mha.last_attn_weights.shape), torch.allclose(mha.last_attn_weights, ref_weights, atol=1e-6))
assert torch.allclose(fast, explicit, atol=1e-6) and torch.allclose(fast, reference, atol=1e-5)

# %% [markdown]
# ## 5. Looking inside a trained model: attention heatmaps
#
# Random weights attend at random. To see a pattern we train a tiny attention-only model on a
# task where the right place to look is known. Each sequence is $L$ random tokens followed by
# the same $L$ tokens again; the model predicts the next token. In the second half the answer is
# always the token $L - 1$ positions back, so a well-trained model should contain a head that
# looks exactly there: a diagonal stripe in its heatmap. (Two layers, two heads each, causal
# masks, learned positions: all from the package.)

# %%
from llm_from_scratch.attention import LearnedPositionalEmbedding


class TinyAttentionModel(nn.Module):
    """Token + position embeddings, then layers of x = x + MultiHeadAttention(x), then a linear readout."""

    def __init__(self, vocab_size, max_len, d_model, n_heads, n_layers):
        super().__init__()
        self.tokens = nn.Embedding(vocab_size, d_model)
        self.positions = LearnedPositionalEmbedding(max_len, d_model)
        self.layers = nn.ModuleList(MultiHeadAttention(d_model, n_heads, causal=True) for _ in range(n_layers))
        self.norm = nn.LayerNorm(d_model)
        self.readout = nn.Linear(d_model, vocab_size)

    def forward(self, idx, need_weights=False):
        x = self.positions(self.tokens(idx))
        for layer in self.layers:
            x = x + layer(x, need_weights=need_weights)
        return self.readout(self.norm(x))


V_toy, L = 16, 8
steps, batch_size = {"smoke": (120, 32), "book": (1000, 64), "full": (1000, 64)}[SETTING]
torch.manual_seed(0)
toy = TinyAttentionModel(V_toy, 2 * L, d_model=32, n_heads=2, n_layers=2)
optimizer = torch.optim.AdamW(toy.parameters(), lr=3e-3)
g = torch.Generator().manual_seed(0)


def repeated_batch(n):
    half = torch.randint(0, V_toy, (n, L), generator=g)
    return torch.cat([half, half], dim=1)  # (n, 2L)


losses = []
threads = torch.get_num_threads()
torch.set_num_threads(1)  # matrices this small: a second thread costs more in synchronisation than it saves
for step in range(steps):
    seq = repeated_batch(batch_size)
    logits = toy(seq[:, :-1])
    # only the second half is predictable: score the model there
    loss = F.cross_entropy(logits[:, L - 1:].reshape(-1, V_toy), seq[:, L:].reshape(-1))
    optimizer.zero_grad(); loss.backward(); optimizer.step()
    losses.append(loss.item())
torch.set_num_threads(threads)
print(f"{steps} steps of {batch_size} sequences")

# %%
# NBVAL_IGNORE_OUTPUT
print(f"loss on the repeated half: {losses[0]:.3f} (chance: ln {V_toy} = {math.log(V_toy):.3f}) -> {losses[-1]:.4f}")
assert losses[-1] < 0.2 * losses[0]

# %%
toy.eval()
sample = repeated_batch(1)
with torch.no_grad():
    toy(sample[:, :-1], need_weights=True)
maps = torch.stack([layer.last_attn_weights[0] for layer in toy.layers])  # (layers, heads, T, T)
# For each head: the mean weight that second-half queries put on the key L-1 positions back.
T_toy = 2 * L - 1
q_pos = torch.arange(L - 1, T_toy)
look_back = maps[:, :, q_pos, q_pos - (L - 1)].mean(-1)  # (layers, heads)
best_layer, best_head = divmod(int(look_back.argmax()), look_back.shape[1])
print("a head puts most of its weight L-1 positions back:", look_back.max().item() > 0.5)
assert look_back.max().item() > 0.5
print("shapes:", tuple(maps.shape))


def plot_head(layer, head, ax=None):
    ax = ax or plt.subplots(figsize=(4, 3.6))[1]
    ax.imshow(maps[layer, head], cmap="viridis", vmin=0, vmax=1)
    ax.set_title(f"layer {layer}, head {head}", fontsize=9)
    ax.set_xlabel("key"); ax.set_ylabel("query")
    return ax


fig, axes = plt.subplots(2, 2, figsize=(7.5, 7))
for layer in range(2):
    for head in range(2):
        plot_head(layer, head, axes[layer, head])
fig.suptitle("Look for the stripe L-1 below the diagonal in the second half:\na head that copies the token after the earlier occurrence")
fig.tight_layout()
plt.show()

# %% [markdown]
# Pick a layer and a head (interactive in Jupyter and Colab; the static figure above is the same
# data).

# %%
# NBVAL_IGNORE_OUTPUT
import ipywidgets as widgets

widgets.interact(lambda layer, head: (plot_head(layer, head), plt.show()),
                 layer=widgets.Dropdown(options=list(range(len(toy.layers))), value=best_layer, description="layer"),
                 head=widgets.Dropdown(options=list(range(2)), value=best_head, description="head"));

# %% [markdown]
# ## 6. The package's attention, checked and timed
#
# `llm_from_scratch.attention.scaled_dot_product_attention` equals PyTorch's fused kernel on a
# realistic shape with a causal mask. The fused kernel never writes the $T \times T$ matrix to
# memory: on a GPU, flash attention computes the softmax block by block in fast on-chip memory,
# which saves memory that grows as $T^2$ and is several times faster at long $T$. (On a CPU and at
# the small smoke sizes the two are close and the ratio is noisy.) That is why
# `MultiHeadAttention` uses the fused kernel unless you ask for the weights.

# %%
torch.manual_seed(0)
B, H, T, dh = {"smoke": (2, 4, 128, 32), "book": (4, 8, 512, 64), "full": (8, 12, 1024, 64)}[SETTING]
q, k, v = (torch.randn(B, H, T, dh) for _ in range(3))
ours, _ = scaled_dot_product_attention(q, k, v, is_causal=True)
theirs = F.scaled_dot_product_attention(q, k, v, is_causal=True)
print("shape:", tuple(ours.shape), " equal to torch SDPA (atol 1e-5):", torch.allclose(ours, theirs, atol=1e-5))
assert torch.allclose(ours, theirs, atol=1e-5)

# %%
# NBVAL_IGNORE_OUTPUT
def best_time(fn, repeats=5):
    times = []
    for _ in range(repeats):
        start = time.perf_counter(); fn(); times.append(time.perf_counter() - start)
    return min(times)


t_ours = best_time(lambda: scaled_dot_product_attention(q, k, v, is_causal=True))
t_torch = best_time(lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True))
print(f"explicit (ours): {t_ours * 1e3:.2f} ms   fused (torch): {t_torch * 1e3:.2f} ms   ratio {t_ours / t_torch:.2f}")

# %% [markdown]
# ## 7. Positions
#
# Attention treats its input as a *set*: permute the tokens and the outputs are permuted the same
# way, nothing else changes. That is why the two "the" in section 1 got the same output, and why
# "dog bites man" and "man bites dog" would look alike. We check it on the multi-head layer.

# %%
# NBVAL_CHECK_OUTPUT
perm = torch.tensor([5, 2, 0, 4, 1, 3])
print("MHA(x[perm]) == MHA(x)[perm]:", torch.allclose(mha(x[:, perm]), mha(x)[:, perm], atol=1e-6))

# %% [markdown]
# The fix is to add to each token's embedding a vector that depends on its position. The original
# Transformer uses fixed sinusoids of geometrically spaced wavelengths:
#
# $$PE_{(pos,\,2i)} = \sin\!\left(\frac{pos}{10000^{2i/d}}\right), \qquad PE_{(pos,\,2i+1)} = \cos\!\left(\frac{pos}{10000^{2i/d}}\right)$$
#
# By hand with $d = 4$: position 1, $i = 0$: $\sin(1) = 0.8415$ and $\cos(1) = 0.5403$; position
# 2, $i = 1$: the angle is $2 / 10000^{2/4} = 2/100 = 0.02$, so $\sin(0.02) = 0.0200$ and
# $\cos(0.02) = 0.9998$.

# %%
# NBVAL_CHECK_OUTPUT
from llm_from_scratch.attention import SinusoidalPositionalEncoding, sinusoidal_positional_encoding

pe4 = sinusoidal_positional_encoding(max_len=3, d_model=4)
show(pe4, ["pos 0", "pos 1", "pos 2"], ["2i=0", "2i+1=1", "2i=2", "2i+1=3"], digits=4)
assert abs(pe4[1, 0] - math.sin(1)) < 1e-6 and abs(pe4[2, 2] - math.sin(0.02)) < 1e-6
assert abs(pe4[1, 1] - math.cos(1)) < 1e-6 and abs(pe4[2, 3] - math.cos(0.02)) < 1e-6

# %% [markdown]
# Each pair of columns $(2i, 2i+1)$ is a point going round a circle, fast for small $i$, slowly
# for large $i$: together the columns write the position like the hands of a clock. Moving $k$
# positions rotates every pair by a fixed angle, so $PE_{pos} \cdot PE_{pos+k}$ depends on $k$ only,
# not on $pos$: relative offsets are easy to read off with a dot product.

# %%
# NBVAL_CHECK_OUTPUT
pe = sinusoidal_positional_encoding(max_len=100, d_model=64)
similarity = pe @ pe.T  # (100, 100)
print("PE(p)·PE(p+5) is the same for every p:", torch.allclose(similarity.diagonal(5), similarity[0, 5].expand(95), atol=1e-4))

fig, axes = plt.subplots(1, 3, figsize=(13, 3.5))
im = axes[0].imshow(pe.T, aspect="auto", cmap="RdBu", vmin=-1, vmax=1)
axes[0].set_xlabel("position"); axes[0].set_ylabel("dimension")
axes[0].set_title("PE table: fast waves in the first dimensions,\nslow ones in the last")
for j in (0, 8, 16, 32):
    axes[1].plot(pe[:, j], label=f"dim {j}")
axes[1].set_xlabel("position"); axes[1].legend(fontsize=8)
axes[1].set_title("Each dimension is a sinusoid;\nwavelength grows with the dimension")
axes[2].imshow(similarity, cmap="viridis")
axes[2].set_xlabel("position"); axes[2].set_ylabel("position")
axes[2].set_title("PE(p)·PE(q) depends only on |p - q|:\nconstant along each diagonal")
fig.tight_layout()
plt.show()

# %% [markdown]
# Added to the embeddings, the encodings break the symmetry: the two "the" tokens now differ.
# `SinusoidalPositionalEncoding` adds the table (a buffer, never trained, not saved in a
# checkpoint) to a batch (B, T, d).

# %%
# NBVAL_CHECK_OUTPUT
positional = SinusoidalPositionalEncoding(d_model=4, max_len=64)
X_pos = positional(X[None])[0]  # (6, 4)
print("positions added == X + PE[:6]:", torch.allclose(X_pos, X + sinusoidal_positional_encoding(64, 4)[:6]))
out_pos, _ = scaled_dot_product_attention(X_pos @ W_q, X_pos @ W_k, X_pos @ W_v)
print("the two 'the' tokens still identical?", torch.allclose(out_pos[0], out_pos[4]))

# %% [markdown]
# **Learned positions** (GPT-2, BERT) are simpler: one trainable vector per position, an
# `nn.Embedding(max_len, d_model)`. They can fit whatever the data wants, but the table has
# `max_len` rows: a position past the last row has no vector at all, so the model has a hard context
# limit. (A position inside the table that no training sequence reached does have a vector, its
# random initial one, which means nothing to the layers above.) The package says so clearly when
# you go past `max_len`.

# %%
# NBVAL_CHECK_OUTPUT
learned = LearnedPositionalEmbedding(max_len=8, d_model=4)
print("x + E[:6]:", torch.allclose(learned(X[None])[0], X + learned.weight[:6]))
try:
    learned(torch.zeros(1, 10, 4))
except ValueError as error:
    print("ValueError:", error)

# %% [markdown]
# ## What to try
#
# 1. **Temperature.** Replace $1/\sqrt{d_k}$ by $c/\sqrt{d_k}$ for $c \in \{0.1, 1, 10\}$ in
#    section 2 (the `scale=` argument of `scaled_dot_product_attention`) and watch the entropy:
#    small $c$ spreads the weight uniformly, large $c$ saturates it.
# 2. **One head or many.** Train the toy model of section 5 with `n_heads=1` and with `n_layers=1`.
#    Does it still learn the copy task? Does the stripe move to another layer? Then vary $L$
#    per batch: a fixed offset no longer works, and the model must find the earlier occurrence of
#    the current token by content (an *induction head*, which needs two layers).
# 3. **No positions.** Remove `self.positions` from `TinyAttentionModel`. Can the model still
#    tell the first half from the second? Then swap in `SinusoidalPositionalEncoding` for the
#    learned one and compare how fast the loss falls.

# %% [markdown]
# ## Exercises
#
# Write each function from this chapter's formulas, then run its cell: `check` compares it with
# `llm_from_scratch.attention` on random shapes and edge cases and prints one line per failed test, with a
# hint. A cell that still says `raise NotImplementedError` prints "not attempted yet". Solutions:
# `chapters/solutions/03_attention.ipynb`.

# %%
import math

import torch
from llm_from_scratch.exercises import check

# %% [markdown]
# **03.1 The causal mask.** A bool tensor of shape (T, T), True where query $i$ may attend to key $j$:
# $j \le i$ (itself included).

# %%
# NBVAL_CHECK_OUTPUT
def causal_mask(T):
    ### BEGIN SOLUTION
    return torch.ones(T, T, dtype=torch.bool).tril()
    ### END SOLUTION


check("03.1", causal_mask)

# %% [markdown]
# **03.2 Scaled dot-product attention.** $\mathrm{Attention}(Q, K, V) = \mathrm{softmax}(QK^\top/\sqrt{d_k})\,V$
# for q (..., T, d_k), k (..., S, d_k), v (..., S, d_v) and an optional bool mask (T, S), True = may
# attend. Masked scores become $-\infty$ before the softmax. A query that may attend to no key must give a
# row of zeros (the softmax of a row of $-\infty$ is NaN: handle it).

# %%
# NBVAL_CHECK_OUTPUT
def attention(q, k, v, mask=None):
    ### BEGIN SOLUTION
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])  # (..., T, S)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    weights = torch.nan_to_num(weights, nan=0.0)  # a fully masked row: 0/0 -> zeros
    return weights @ v
    ### END SOLUTION


check("03.2", attention)

# %% [markdown]
# **03.3 Sinusoidal positions.** The table of shape (max_len, d_model) with
# $PE(pos, 2i) = \sin(pos / 10000^{2i/d})$ and $PE(pos, 2i+1) = \cos(pos / 10000^{2i/d})$ (d even).

# %%
# NBVAL_CHECK_OUTPUT
def sinusoidal_pe(max_len, d_model):
    ### BEGIN SOLUTION
    pos = torch.arange(max_len, dtype=torch.float64)[:, None]
    two_i = torch.arange(0, d_model, 2, dtype=torch.float64)
    angle = pos / 10000 ** (two_i / d_model)
    pe = torch.zeros(max_len, d_model, dtype=torch.float64)
    pe[:, 0::2] = torch.sin(angle)
    pe[:, 1::2] = torch.cos(angle)
    return pe.float()
    ### END SOLUTION


check("03.3", sinusoidal_pe)

# %% [markdown]
# **03.4 Split into heads.** Multi-head attention cuts the C features of every position into H heads of
# C/H features: (B, T, C) -> (B, H, T, C/H), head $h$ holding features $h\,C/H, \dots, (h+1)\,C/H - 1$.
# (A single `view` to (B, H, T, C/H) is a classic mistake: it mixes positions.)

# %%
# NBVAL_CHECK_OUTPUT
def split_heads(x, n_heads):
    ### BEGIN SOLUTION
    B, T, C = x.shape
    return x.view(B, T, n_heads, C // n_heads).transpose(1, 2)
    ### END SOLUTION


check("03.4", split_heads)
