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
# # 06 · Building a GPT, block by block
#
# A GPT reads a sequence of token ids and, at every position, scores every token of the vocabulary
# as the next one. In this chapter you build one from its parts (embeddings, positions, masked
# self-attention, the feed-forward network, residual connections and LayerNorm), printing the shape
# of the tensor after every step; then you see what GPT-2 changed in that recipe and why, count the
# parameters with a formula, turn scores into text with temperature, top-k and nucleus sampling, and
# make generation several times faster with a KV cache. Every piece is checked against the course
# package (`llm_from_scratch.gpt`, `llm_from_scratch.generate`) and against PyTorch.
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/llm-from-scratch/llm-from-scratch/blob/main/chapters/06_gpt_build.ipynb)

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
if SETTING != "full":
    torch.set_num_threads(1)  # CPU-size models are small: a thread pool costs more than it saves

# %% [markdown]
# ## 1. What a GPT computes
#
# Given tokens $x_1, \dots, x_T$, a GPT outputs for every position $t$ a vector of $V$ scores
# (logits) whose softmax is its guess of $P(x_{t+1} \mid x_1, \dots, x_t)$. One forward pass
# therefore makes $T$ predictions at once, and each may only look at its own past: that is what the
# *causal mask* enforces. The pipeline, with $B$ sequences of $T$ tokens and model width $d$:
#
# | step | operation | shape |
# |---|---|---|
# | token ids | | $(B, T)$ |
# | token embedding | look up a row of a $(V, d)$ table | $(B, T, d)$ |
# | + positions | add a vector that says *where* each token is | $(B, T, d)$ |
# | $L$ blocks | masked self-attention and a feed-forward network, each with a residual and a LayerNorm | $(B, T, d)$ |
# | output layer | a linear map to $V$ scores | $(B, T, V)$ |
#
# We start with the GPT of the **course documents** (the source texts this course was written
# from; the package calls their model `DocumentsGPT`), built on PyTorch's `nn.TransformerEncoder`,
# at a size small enough to print: a vocabulary of $V = 12$ tokens, width $d = 8$, 2 heads,
# $B = 2$ sequences of $T = 5$ tokens.

# %%
# NBVAL_CHECK_OUTPUT
V, d, n_heads, d_ff, T, B = 12, 8, 2, 32, 5, 2
x = torch.randint(0, V, (B, T), generator=torch.Generator().manual_seed(0))
print("token ids x:", tuple(x.shape))
print(x)

# %% [markdown]
# ## 2. The documents' GPT, one step at a time
#
# **Token embedding.** Row $i$ of a learned table $E \in \mathbb{R}^{V \times d}$ represents token
# $i$. The documents multiply it by $\sqrt{d}$ (as the original Transformer does) so that the
# embeddings are not drowned by the position signal added next.

# %%
# NBVAL_CHECK_OUTPUT
from llm_from_scratch.gpt import DocumentsGPT

seed_everything(0)
doc_gpt = DocumentsGPT(vocab_size=V, d_model=d, n_heads=n_heads, n_layers=2, d_ff=d_ff, max_len=16).eval()
h = doc_gpt.embedding(x) * math.sqrt(d)
print("embedding · √d:", tuple(h.shape))

# %% [markdown]
# **Positional encoding.** Attention treats its input as a set: shuffle the tokens and each output
# moves with its token, unchanged. To know the order, every position gets a fixed vector
# (chapter 03):
#
# $$PE(pos, 2i) = \sin\!\left(\frac{pos}{10000^{2i/d}}\right), \qquad PE(pos, 2i+1) = \cos\!\left(\frac{pos}{10000^{2i/d}}\right)$$

# %%
# NBVAL_CHECK_OUTPUT
pe = doc_gpt.pos_encoding.encoding(T)  # (T, d)
print("PE[1, :2] =", [round(v, 4) for v in pe[1, :2].tolist()], " by hand:", [round(math.sin(1), 4), round(math.cos(1), 4)])
h = doc_gpt.pos_encoding(h)
print("+ positions:", tuple(h.shape))

# %% [markdown]
# **Masked self-attention.** Each position mixes in information from the positions it may see. The
# causal mask allows position $t$ to see positions $\le t$ only; PyTorch's `nn.TransformerEncoder`
# takes it as a float matrix added to the scores ($0$ = may look, $-\infty$ = may not):

# %%
# NBVAL_CHECK_OUTPUT
mask = nn.Transformer.generate_square_subsequent_mask(T)
print(mask)

# %% [markdown]
# $$\mathrm{MultiHead}(X) = \mathrm{Concat}(\mathrm{head}_1, \dots, \mathrm{head}_h) W^O, \qquad
# \mathrm{head}_i = \mathrm{softmax}\!\left(\frac{X W_i^Q (X W_i^K)^\top}{\sqrt{d/h}} + M\right) X W_i^V$$
#
# The first layer's attention is PyTorch's `nn.MultiheadAttention`; it computes the same function as
# the course's `MultiHeadAttention` of chapter 03 once the weights are copied (both keep
# $[W^Q; W^K; W^V]$ in one matrix).

# %%
# NBVAL_CHECK_OUTPUT
from llm_from_scratch.attention import MultiHeadAttention

layer = doc_gpt.transformer.layers[0]
attn_out = layer.self_attn(h, h, h, attn_mask=mask, need_weights=False)[0]
print("masked self-attention:", tuple(attn_out.shape))

ours = MultiHeadAttention(d, n_heads, causal=True).eval()
with torch.no_grad():
    ours.qkv.weight.copy_(layer.self_attn.in_proj_weight)
    ours.qkv.bias.copy_(layer.self_attn.in_proj_bias)
    ours.out_proj.load_state_dict(layer.self_attn.out_proj.state_dict())
print("equal to llm_from_scratch.attention.MultiHeadAttention:", torch.allclose(ours(h), attn_out, atol=1e-6))

# %% [markdown]
# **Residual connection and LayerNorm.** The attention output is *added* to its input (the
# residual: a block only has to learn a correction, and gradients flow straight through the sum),
# and the sum is normalised, feature-wise, for each token:
#
# $$\mathrm{LayerNorm}(z) = \gamma \odot \frac{z - \mu}{\sqrt{\sigma^2 + \epsilon}} + \beta, \qquad
# \mu = \frac{1}{d}\sum_j z_j, \quad \sigma^2 = \frac{1}{d}\sum_j (z_j - \mu)^2$$
#
# By hand on one vector first (with $\gamma = 1, \beta = 0$ as at initialisation):

# %%
# NBVAL_CHECK_OUTPUT
z = torch.tensor([1.0, 2.0, 3.0, 6.0])
mu = z.mean()  # 3
var = ((z - mu) ** 2).mean()  # (4 + 1 + 0 + 9) / 4 = 3.5
by_hand = (z - mu) / torch.sqrt(var + 1e-5)
print("mean", mu.item(), " variance", var.item())
print("by hand     :", [round(v, 4) for v in by_hand.tolist()])
print("F.layer_norm:", [round(v, 4) for v in F.layer_norm(z, (4,)).tolist()])
assert torch.allclose(by_hand, F.layer_norm(z, (4,)), atol=1e-6)

# %%
# NBVAL_CHECK_OUTPUT
h = layer.norm1(h + attn_out)  # post-LN: normalise the sum, as in "Attention Is All You Need"
print("LayerNorm(x + attention):", tuple(h.shape))

# %% [markdown]
# **The feed-forward network.** Each position, on its own, goes through two linear maps with a
# nonlinearity between them, widening to $d_{ff}$ (here $4d = 32$) and back:
#
# $$\mathrm{FFN}(x) = W_2\, \mathrm{act}(W_1 x + b_1) + b_2$$
#
# The documents' model uses $\mathrm{act} = \mathrm{ReLU}$ (PyTorch's default); GPT-2 uses GELU.
# Attention moves information *between* positions; the FFN processes it *within* a position, and
# holds most of the parameters.

# %%
# NBVAL_CHECK_OUTPUT
hidden = F.relu(layer.linear1(h))
print("W1 x + b1, ReLU:", tuple(hidden.shape))
ffn_out = layer.linear2(hidden)
print("W2 (...) + b2  :", tuple(ffn_out.shape))
h = layer.norm2(h + ffn_out)
print("LayerNorm(x + FFN(x)):", tuple(h.shape))

# %% [markdown]
# That was one block. The second block repeats it with its own weights; then the output layer maps
# each position's $d$ features to $V$ scores.

# %%
# NBVAL_CHECK_OUTPUT
layer2 = doc_gpt.transformer.layers[1]
h = layer2.norm1(h + layer2.self_attn(h, h, h, attn_mask=mask, need_weights=False)[0])
h = layer2.norm2(h + layer2.linear2(F.relu(layer2.linear1(h))))
print("block 2:", tuple(h.shape))
logits = doc_gpt.fc_out(h)
print("logits:", tuple(logits.shape))

# %% [markdown]
# This is `llm_from_scratch.gpt.DocumentsGPT`: its `forward` does exactly these steps.

# %%
# NBVAL_CHECK_OUTPUT
with torch.no_grad():
    print("step by step == DocumentsGPT(x):", torch.allclose(logits, doc_gpt(x), atol=1e-5))
assert torch.allclose(logits, doc_gpt(x), atol=1e-5)

# %% [markdown]
# ## 3. The documents' example: (64, 128) → (64, 128, vocab)
#
# The documents feed a batch of 64 sequences of 128 tokens. Whatever the width, the output has one
# score per vocabulary entry at every position. (The smoke setting builds a narrower model; the book
# and full settings build the documents' own size, $d = 768$, 12 heads, 12 layers, and the book
# setting runs a batch of 8 sequences through it instead of 64 to stay quick on a CPU.)

# %%
vocab_size = 1000
if SETTING == "smoke":
    big = DocumentsGPT(vocab_size, d_model=64, n_heads=4, n_layers=2, d_ff=256, max_len=128)
else:
    big = DocumentsGPT(vocab_size, d_model=768, n_heads=12, n_layers=12, d_ff=3072, max_len=128)
batch = torch.randint(0, vocab_size, (8 if SETTING == "book" else 64, 128))
with torch.no_grad():
    out = big.eval()(batch)
print(tuple(batch.shape), "->", tuple(out.shape))

# %% [markdown]
# ## 4. GPT-2's design: what changed, and why
#
# The documents' model is the 2017 Transformer encoder with a causal mask. GPT-2 (2019), which
# `llm_from_scratch.gpt.GPT` reproduces weight for weight, changes six things:
#
# | | documents' GPT | GPT-2 | why |
# |---|---|---|---|
# | LayerNorm | after the residual sum (post-LN): $\mathrm{LN}(x + f(x))$ | before the branch (pre-LN): $x + f(\mathrm{LN}(x))$ | pre-LN keeps an untouched residual path from input to output; deep stacks train without a long warmup |
# | final LayerNorm | none | `ln_f` before the output layer | with pre-LN the residual stream is never normalised otherwise |
# | positions | fixed sinusoids, embedding scaled by $\sqrt d$ | a learned $(T, d)$ table `wpe` | learned positions fit the data; but they cannot go past `block_size` |
# | activation | ReLU | GELU, $x\,\Phi(x)$ (tanh approximation) | smooth, no dead units |
# | output layer | separate $(d, V)$ matrix + bias | tied to the token embedding | the same vector reads and writes a token; $V \cdot d$ fewer parameters |
# | initialisation | PyTorch's defaults | $\mathcal N(0, 0.02)$, residual projections $\times 1/\sqrt{2L}$ | each block adds two branches to the residual stream; scaling keeps its variance flat with depth |
#
# Its block, in the module layout of nanoGPT and of GPT-2's checkpoints:

# %%
# NBVAL_CHECK_OUTPUT
from llm_from_scratch.gpt import GPT, GPTConfig

config = GPTConfig(vocab_size=V, block_size=16, n_layer=2, n_head=n_heads, n_embd=d)
gpt = GPT(config).eval()
print(gpt.transformer.h[0])

# %% [markdown]
# The same walk through the shapes, with GPT-2's pieces (pre-LN: each branch reads a normalised
# copy, and the sum is left alone):

# %%
# NBVAL_CHECK_OUTPUT
blk = gpt.transformer.h[0]
pos = torch.arange(T)
h = gpt.transformer.wte(x) + gpt.transformer.wpe(pos)
print("wte[x] + wpe[0..T-1]:", tuple(h.shape))
h = h + blk.attn(blk.ln_1(h))
print("x + Attn(LN_1(x))   :", tuple(h.shape))
ffn = blk.mlp.c_proj(F.gelu(blk.mlp.c_fc(blk.ln_2(h)), approximate="tanh"))  # W2 GELU(W1 x + b1) + b2
print("FFN hidden width    :", blk.mlp.c_fc.out_features)
h = h + ffn
print("x + FFN(LN_2(x))    :", tuple(h.shape))
for later in gpt.transformer.h[1:]:
    h = later(h)
h = gpt.transformer.ln_f(h)
logits = h @ gpt.transformer.wte.weight.T  # the tied output layer: scores = h · E^T
print("ln_f, then h Eᵀ     :", tuple(logits.shape))
with torch.no_grad():
    assert torch.allclose(logits, gpt(x)[0], atol=1e-5)
    assert torch.allclose(blk.mlp(torch.ones(1, 1, d)), blk.mlp.c_proj(F.gelu(blk.mlp.c_fc(torch.ones(1, 1, d)), approximate="tanh")))
print("equal to llm_from_scratch.gpt.GPT(x):", True)

# %% [markdown]
# ## 5. Counting parameters
#
# Every parameter of GPT-2's layout, with $V$ the vocabulary, $T$ = `block_size`, $L$ layers and
# width $d$:
#
# | part | parameters |
# |---|---|
# | token embedding `wte` (also the output layer) | $V d$ |
# | position embedding `wpe` | $T d$ |
# | per block: `qkv` $3d^2 + 3d$, `out_proj` $d^2 + d$, `c_fc` $4d^2 + 4d$, `c_proj` $4d^2 + d$, two LayerNorms $4d$ | $12 d^2 + 13 d$ |
# | final LayerNorm | $2d$ |
#
# $$N(V, T, L, d) = V d + T d + L\,(12 d^2 + 13 d) + 2d$$
#
# For large models the $12 L d^2$ term dominates: doubling the width quadruples the block
# parameters. Checked against the counted parameters of real models:

# %%
# NBVAL_CHECK_OUTPUT
from llm_from_scratch.gpt import gpt_parameter_count


def n_params(V, T, L, d):
    return V * d + T * d + L * (12 * d * d + 13 * d) + 2 * d


for cfg in (config, GPTConfig(vocab_size=65, block_size=256, n_layer=6, n_head=6, n_embd=384)):
    counted = GPT(cfg).num_parameters()
    formula = n_params(cfg.vocab_size, cfg.block_size, cfg.n_layer, cfg.n_embd)
    print(f"V={cfg.vocab_size:>5} T={cfg.block_size:>4} L={cfg.n_layer:>2} d={cfg.n_embd:>3}: "
          f"formula {formula:>10,}  counted {counted:>10,}")
    assert formula == counted == gpt_parameter_count(cfg.vocab_size, cfg.block_size, cfg.n_layer, cfg.n_embd)
print(f"GPT-2 small (V=50257, T=1024, L=12, d=768): {n_params(50257, 1024, 12, 768):,}")

# %% [markdown]
# The documents' model has no tied output layer ($dV + V$ more), sinusoidal positions (no
# parameters) and a $d_{ff}$-wide FFN: per block $4d^2 + 4d$ (attention) $+ 2 d\, d_{ff} + d_{ff} + d$
# (FFN) $+ 4d$ (LayerNorms).

# %%
# NBVAL_CHECK_OUTPUT
def n_params_documents(V, L, d, d_ff):
    return V * d + L * (4 * d * d + 4 * d + 2 * d * d_ff + d_ff + d + 4 * d) + d * V + V


counted = sum(p.numel() for p in doc_gpt.parameters())
print("documents' GPT: formula", n_params_documents(V, 2, d, d_ff), " counted", counted)
assert n_params_documents(V, 2, d, d_ff) == counted

# %% [markdown]
# ## 6. From scores to text: temperature, top-k, top-p
#
# Generation repeats one step: run the model, take the logits $z$ of the last position, choose a
# token, append it. *Greedy* decoding takes $\arg\max_i z_i$: safe, and often repetitive. Sampling
# draws from
#
# $$p_i = \frac{e^{z_i / \tau}}{\sum_j e^{z_j / \tau}}$$
#
# where the temperature $\tau$ sharpens ($\tau < 1$) or flattens ($\tau > 1$) the distribution.
# Two filters cut off the unlikely tail before sampling:
# **top-k** keeps the $k$ highest scores; **top-p** (nucleus) keeps the smallest set of most likely
# tokens whose probabilities add up to at least $p$, so it keeps few tokens when the model is sure
# and many when it is not. Worked on five scores:

# %%
# NBVAL_CHECK_OUTPUT
z = torch.tensor([2.0, 1.0, 0.5, 0.0, -1.0])
for tau in (0.5, 1.0, 2.0):
    print(f"tau={tau}:", [round(p, 3) for p in F.softmax(z / tau, dim=-1).tolist()])

# %%
fig, axes = plt.subplots(1, 3, figsize=(11, 2.8), sharey=True)
for ax, tau in zip(axes, (0.5, 1.0, 2.0)):
    ax.bar(range(5), F.softmax(z / tau, dim=-1).numpy())
    ax.set_title(f"temperature {tau}")
    ax.set_xlabel("token")
axes[0].set_ylabel("probability")
fig.suptitle("Lower temperature piles the probability onto the best token")
plt.tight_layout()
plt.show()

# %% [markdown]
# By hand at $\tau = 1$: the probabilities are 0.563, 0.207, 0.126, 0.076, 0.028 (rounded to three
# places; the cell below prints them too). Top-$k$ with $k = 2$ keeps tokens 0 and 1. Top-$p$ with
# $p = 0.8$: the sorted running sums are 0.563, 0.770, 0.896; the first two reach only 0.770, so the
# third is needed, and tokens 0, 1, 2 stay; sampling then draws from their probabilities
# renormalised, $0.563 / 0.896 = 0.628$ and so on. `llm_from_scratch.generate` does the same:

# %%
# NBVAL_CHECK_OUTPUT
from llm_from_scratch.generate import sample_next_token, top_k_filter, top_p_filter

p = F.softmax(z, dim=-1)
print("p:", [round(v, 3) for v in p.tolist()], " running sums:", [round(v, 3) for v in p.cumsum(0).tolist()])
print("top-k (k=2) keeps:", torch.isfinite(top_k_filter(z, 2)).nonzero().flatten().tolist())
print("top-p (p=0.8) keeps:", torch.isfinite(top_p_filter(z, 0.8)).nonzero().flatten().tolist())
assert torch.isfinite(top_k_filter(z, 2)).tolist() == [True, True, False, False, False]
assert torch.isfinite(top_p_filter(z, 0.8)).tolist() == [True, True, True, False, False]
g = torch.Generator().manual_seed(0)
draws = sample_next_token(z.expand(20000, 5), temperature=1.0, top_p=0.8, generator=g)
freq = torch.bincount(draws, minlength=5) / 20000
renormalised = torch.cat([p[:3] / p[:3].sum(), torch.zeros(2)])
print("nucleus renormalised:", [round(v, 3) for v in renormalised.tolist()])
print("20,000 draws with top-p 0.8 match it:", torch.allclose(freq, renormalised, atol=0.015))
assert torch.allclose(freq, renormalised, atol=0.015)

# %% [markdown]
# Move the sliders to see the distribution that sampling draws from (a static figure is above; the
# sliders need a live kernel).

# %%
# NBVAL_IGNORE_OUTPUT
import ipywidgets as widgets


def show_distribution(temperature=1.0, top_k=5, top_p=1.0):
    scores = z / max(temperature, 1e-3)
    scores = top_p_filter(top_k_filter(scores, top_k), top_p)
    plt.figure(figsize=(5, 2.5))
    plt.bar(range(5), F.softmax(scores, dim=-1).numpy())
    plt.ylim(0, 1)
    plt.title(f"T={temperature:.2f}, top-k={top_k}, top-p={top_p:.2f}: what sampling draws from")
    plt.show()


widgets.interact(show_distribution, temperature=(0.05, 3.0, 0.05), top_k=(1, 5), top_p=(0.05, 1.0, 0.05));

# %% [markdown]
# To see the settings on real text, we train a small character-level GPT (4 layers, width 128) on
# the training plays, then generate from it: seconds in the smoke setting, a few minutes in the book
# setting. (Pretraining done properly, with a schedule, validation and checkpoints, is chapter 07.)

# %%
import re

from llm_from_scratch.data import load_shakespeare, split_works
from llm_from_scratch.lm_data import get_batch
from llm_from_scratch.tokenizer import CharTokenizer

train_plays = split_works(load_shakespeare(progress=False))["train"]
text = "".join(w.text for w in train_plays)
tokenizer = CharTokenizer.fit(text)  # chapter 02's character tokenizer: the sorted set of characters
encode = lambda s: torch.tensor(tokenizer.encode(s))  # noqa: E731
CHAR_RUN = {"smoke": dict(chars=200_000, steps=80), "book": dict(chars=len(text), steps=2000),
            "full": dict(chars=len(text), steps=3000)}[SETTING]
data = encode(text[:CHAR_RUN["chars"]])
print(tokenizer.vocab_size, "characters in the vocabulary;", f"{len(data):,}", "characters of text to train on")

# %%
# NBVAL_IGNORE_OUTPUT
from tqdm.auto import tqdm

seed_everything(0)
char_gpt = GPT(GPTConfig(vocab_size=tokenizer.vocab_size, block_size=64, n_layer=4, n_head=4, n_embd=128))
optimizer = torch.optim.AdamW(char_gpt.parameters(), lr=2e-3)
losses, batch_rng = [], torch.Generator().manual_seed(0)
for step in tqdm(range(CHAR_RUN["steps"]), desc="char GPT"):
    xb, yb = get_batch(data, 24, 64, batch_rng)  # chapter 02: 24 random windows, y = x shifted by one
    _, loss = char_gpt(xb, yb)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    losses.append(loss.item())
print(f"loss {losses[0]:.2f} -> {sum(losses[-20:]) / 20:.2f} (mean of the last 20 steps)")
assert sum(losses[-20:]) / 20 < losses[0] - 1.0

# %% [markdown]
# Greedy decoding always takes the single most likely next character, so it soon repeats a common
# phrase; a high temperature lets unlikely characters through; top-p keeps sampling but trims the
# nonsense tail. The cell counts how much of each text is made of words that occur in the plays,
# and whether it writes speaker names in capitals on their own line, as the plays do.

# %%
# NBVAL_IGNORE_OUTPUT
from IPython.display import Markdown, display

from llm_from_scratch.gpt import generate

known_words = set(re.findall(r"[a-z]+", text.lower()))
speaker_line = re.compile(r"^[A-Z]{3,}\b.*\.$", re.MULTILINE)  # "COUNTESS." on a line of its own
start = encode("\n")[None]
report = []
for name, kwargs in [("greedy", dict(temperature=0)), ("T=1.5", dict(temperature=1.5)),
                     ("T=0.8, top-p 0.9", dict(temperature=0.8, top_p=0.9))]:
    out = tokenizer.decode(generate(char_gpt, start, 500, generator=torch.Generator().manual_seed(0), **kwargs)[0].tolist())
    words = re.findall(r"[a-z]+", out.lower())
    real = sum(w in known_words for w in words) / max(len(words), 1)
    report.append((name, real, len(speaker_line.findall(out)), out.count("\n")))
    print(f"--- {name}\n{out}")
display(Markdown("\n".join(f"- **{n}**: {r:.0%} of the words are words of the plays; {s} speaker-name lines, "
                            f"{b} line breaks" for n, r, s, b in report)))
if SETTING != "smoke":  # the payoff: sampled text has learned the plays' structure
    name, real, speakers, breaks = report[2]
    assert real > 0.6 and speakers >= 1 and breaks >= 3, report

# %% [markdown]
# ## 7. The KV cache
#
# Generating $n$ tokens naively runs the model over the whole sequence at every step: step $t$
# processes $t$ positions, $\sum_{t=1}^{n} t \approx n^2/2$ in all. But with a causal mask nothing
# about position $s$ changes once it is computed: its keys and values in every layer are final. A
# **KV cache** keeps them, so each step feeds only the newest token: its query attends to the cached
# keys, and its own key and value are appended. $n$ positions in all, at the price of memory,
# $2 \cdot L \cdot B \cdot S \cdot d$ numbers for $S$ cached positions.
#
# In the course GPT, `forward_cached(idx, cache)` returns the logits and the cache: per layer a
# pair $(k, v)$ of shape $(B, \text{heads}, S, d/\text{heads})$.

# %%
# NBVAL_CHECK_OUTPUT
prompt = encode("To be, or")[None]
logits_first, cache = char_gpt.eval().forward_cached(prompt)
print("after the prompt: layers", len(cache), " k", tuple(cache[0][0].shape), " v", tuple(cache[0][1].shape))
next_id = logits_first[:, -1].argmax(-1, keepdim=True)
logits_step, cache = char_gpt.forward_cached(next_id, cache)
print("after one token : k", tuple(cache[0][0].shape), " new logits", tuple(logits_step.shape))
with torch.no_grad():
    full = char_gpt(torch.cat([prompt, next_id], dim=1))[0][:, -1]
print("cached logits == recomputing everything:", torch.allclose(logits_step[:, -1], full, atol=1e-5))

# %% [markdown]
# `generate(..., use_cache=True)` (the default) uses it; the tokens are identical to the uncached
# path, and the time falls. Measured on a wider model (random weights: only the speed matters here):

# %%
# NBVAL_IGNORE_OUTPUT
from llm_from_scratch.device import select_device

device = select_device()  # the full-size run wants a GPU; CI runs the small one on the CPU
seed_everything(0)
if SETTING != "full":
    bench_cfg, n_new = GPTConfig(vocab_size=256, block_size=256, n_layer=4, n_head=4, n_embd=128), 100
else:
    bench_cfg, n_new = GPTConfig(vocab_size=50257, block_size=1024, n_layer=12, n_head=12, n_embd=768), 500
bench_model = GPT(bench_cfg).to(device).eval()
bench_prompt = torch.randint(0, bench_cfg.vocab_size, (1, 8), device=device)
# CPU time is steadier than the wall clock on a shared CPU; a GPU works asynchronously, so time the wall.
clock = time.perf_counter if device.type == "cuda" else time.process_time
timings = {}
for use_cache in (True, False):
    generate(bench_model, bench_prompt, 5, temperature=0, use_cache=use_cache)  # warm-up
    start_time = clock()
    tokens = generate(bench_model, bench_prompt, n_new, temperature=0, use_cache=use_cache).tolist()
    timings[use_cache] = (clock() - start_time, tokens)  # .tolist() waited for the GPU to finish
print(f"{n_new} tokens on {device.type}: with cache {timings[True][0]:.2f} s, without {timings[False][0]:.2f} s, "
      f"speed-up {timings[False][0] / timings[True][0]:.1f}x")
assert timings[True][1] == timings[False][1]  # exactly the same tokens
assert timings[True][0] < timings[False][0]

# %%
n = torch.arange(1, 1025)
plt.figure(figsize=(5, 3))
plt.plot(n, n * (n + 1) / 2, label="no cache: 1 + 2 + … + n")
plt.plot(n, n, label="KV cache: n")
plt.xlabel("tokens generated n")
plt.ylabel("positions run through the model")
plt.yscale("log")
plt.legend()
plt.title("The cache turns quadratic work into linear work")
plt.show()

# %% [markdown]
# One limit remains: learned positions exist only up to `block_size`. Without a cache, generation
# simply crops the context to its last `block_size` tokens. A cache cannot slide that way (the
# positions are baked into the cached keys and values), so once it is full, `generate` falls back to
# recomputing the last `block_size` tokens at each step, which gives exactly the uncached tokens.

# %% [markdown]
# ## What to try
#
# 1. Switch the documents' model to pre-LN (`nn.TransformerEncoderLayer(..., norm_first=True)`) and
#    add a final LayerNorm; train both versions of a 12-layer model on the training plays with the
#    same learning rate and no warmup. Which one diverges?
# 2. Untie GPT-2's output layer (`gpt.lm_head.weight = nn.Parameter(gpt.lm_head.weight.clone())`):
#    how many parameters does that add at $V = 50257$, $d = 768$, and what fraction of GPT-2 small
#    is it?
# 3. Measure the KV-cache speed-up for 50, 200 and 800 new tokens. Does it grow like $n$, as the
#    plot suggests? Where does the time go when $n$ is small?

# %% [markdown]
# ## Exercises
#
# Write each function from this chapter's formulas, then run its cell: `check` compares it with the package
# (`gpt`, `generate`, `attention`) and prints one line per failed test, with a hint. A cell that still says
# `raise NotImplementedError` prints "not attempted yet". Solutions: `chapters/solutions/06_gpt_build.ipynb`.

# %%
import math

import torch
from llm_from_scratch.exercises import check

# %% [markdown]
# **06.1 GPT's parameter count.** For vocabulary $V$, context $T$, $L$ blocks and width $d$ (with biases,
# output layer tied to the token embedding): count the embeddings, then per block the attention
# ($4d^2 + 4d$), the MLP ($8d^2 + 5d$) and two LayerNorms ($4d$), then the final LayerNorm ($2d$).
# GPT-2 small gives 124,439,808.

# %%
# NBVAL_CHECK_OUTPUT
def gpt_param_count(V, T, L, d):
    ### BEGIN SOLUTION
    per_block = (4 * d * d + 4 * d) + (8 * d * d + 5 * d) + 4 * d
    return V * d + T * d + L * per_block + 2 * d
    ### END SOLUTION


check("06.1", gpt_param_count)

# %% [markdown]
# **06.2 Nucleus (top-p) filtering.** Keep the smallest set of most likely tokens whose probabilities sum to
# at least $p$, and set the other logits to $-\infty$ (in the original order). Sort the probabilities;
# a token stays when the mass ranked *above* it is still below $p$, so the token that crosses $p$ stays and
# the most likely one always does. logits (..., V) -> (..., V).

# %%
# NBVAL_CHECK_OUTPUT
def top_p_filter(logits, p):
    ### BEGIN SOLUTION
    probs, order = torch.softmax(logits, dim=-1).sort(dim=-1, descending=True)
    mass_above = probs.cumsum(dim=-1) - probs
    remove_sorted = mass_above >= p
    remove = torch.zeros_like(remove_sorted).scatter(-1, order, remove_sorted)
    return logits.masked_fill(remove, float("-inf"))
    ### END SOLUTION


check("06.2", top_p_filter)

# %% [markdown]
# **06.3 One step with a KV cache.** During generation only the newest position is computed: q, k_new,
# v_new have shape (B, H, 1, d). `cache` is None at the first step, else the tuple (K, V) of earlier keys and
# values, (B, H, S, d). Append the new key and value along the time axis (dim 2), attend the new query to
# all S + 1 keys (no mask needed: they are all in its past), and return `(out, (K, V))`.

# %%
# NBVAL_CHECK_OUTPUT
def kv_cache_step(q, k_new, v_new, cache=None):
    ### BEGIN SOLUTION
    if cache is not None:
        k_new = torch.cat([cache[0], k_new], dim=2)
        v_new = torch.cat([cache[1], v_new], dim=2)
    weights = torch.softmax(q @ k_new.transpose(-2, -1) / math.sqrt(q.shape[-1]), dim=-1)
    return weights @ v_new, (k_new, v_new)
    ### END SOLUTION


check("06.3", kv_cache_step)
