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
# # 07 · Pretraining: the training loop, piece by piece
#
# Chapter 06 built a GPT; here you teach it Shakespeare. You will write down what the model is
# trained to minimise (next-token cross entropy) and the two numbers we report (perplexity and
# accuracy), then assemble the training loop one idea at a time (batches by index, warmup and a
# cosine schedule, gradient accumulation, gradient clipping, mixed precision, `torch.compile`),
# each with the reason it exists. You will write the training loop yourself in about thirty lines,
# check that it computes exactly what the package's `train()` computes, then train a small GPT on the complete works, read its
# training and validation curves, compare samples before and after, and resume a run from a
# checkpoint so that it ends exactly where an uninterrupted run would. Everything here is
# `llm_from_scratch.train`, the loop that the command line (`python -m llm_from_scratch pretrain`)
# and multi-GPU runs use too.
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/llm-from-scratch/llm-from-scratch/blob/main/chapters/07_pretraining.ipynb)

# %%
import sys
if "google.colab" in sys.modules:  # Colab: install the course package alone (Colab keeps its torch); a no-op elsewhere
    import subprocess
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                    "git+https://github.com/llm-from-scratch/llm-from-scratch"], check=True)
import dataclasses
import math
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import torch
import torch.nn as nn
import torch.nn.functional as F
from llm_from_scratch.utils import current_setting, seed_everything
SETTING = current_setting()  # "smoke" (CI), "book" (a CPU: the default) or "full" (a GPU)
seed_everything(0)
torch.set_num_threads(1)  # a model this small runs fastest on one thread (more only add synchronisation)

# %% [markdown]
# ## 1. What pretraining minimises
#
# A GPT reads tokens $x_1, \dots, x_t$ and outputs a score (logit) $z_{t,v}$ for every token $v$ of
# the vocabulary as the next one. Softmax turns the scores into probabilities,
# $p(v \mid x_{\le t}) = e^{z_{t,v}} / \sum_{u} e^{z_{t,u}}$, and pretraining minimises the
# **cross entropy of next-token prediction**, the mean negative log-probability of the token that
# actually came next:
#
# $$\mathcal{L}(\theta) = -\frac{1}{N}\sum_{t=1}^{N} \log p_\theta(x_{t+1} \mid x_{\le t}).$$
#
# Two numbers make that loss easier to read:
#
# - **perplexity** $= \exp(\mathcal{L})$: the model is as unsure as if it chose uniformly among
#   that many tokens. A model that knows nothing over $V$ tokens has $\mathcal{L} = \log V$ and
#   perplexity $V$.
# - **accuracy**: how often the most probable token is the right one.
#
# A worked example: a vocabulary of 4 tokens, 3 positions.

# %%
# NBVAL_CHECK_OUTPUT
logits = torch.tensor([[2.0, 1.0, 0.0, -1.0],
                       [0.0, 0.0, 3.0, 0.0],
                       [1.0, 2.0, 1.0, 1.0]])
targets = torch.tensor([0, 2, 0])  # the tokens that actually came next
probs = logits.softmax(dim=-1)
p_target = probs[torch.arange(3), targets]
print("p(target) per position:", [round(p, 4) for p in p_target.tolist()])
nll = -torch.log(p_target)
print("-log p(target):         ", [round(v, 4) for v in nll.tolist()])
loss = nll.mean()
print("mean NLL =", round(loss.item(), 4), " perplexity = exp(NLL) =", round(math.exp(loss.item()), 4))
accuracy = (logits.argmax(-1) == targets).float().mean()
print("argmax:", logits.argmax(-1).tolist(), "targets:", targets.tolist(), " accuracy =", round(accuracy.item(), 4))
assert torch.allclose(loss, F.cross_entropy(logits, targets))  # torch's cross entropy is the same number

# %% [markdown]
# The package computes these over whole validation sets, every token weighted equally:
# this is `llm_from_scratch.train.evaluate_lm`. A stand-in "model" that always returns the logits
# above must get exactly the numbers we computed by hand.

# %%
# NBVAL_CHECK_OUTPUT
from llm_from_scratch.train import evaluate_lm


class FixedLogits(nn.Module):
    """Returns the worked example's logits whatever the input: (B=1, T=3, V=4)."""

    def forward(self, idx, targets=None):
        return logits[None], None


metrics = evaluate_lm(FixedLogits(), [(torch.zeros(1, 3, dtype=torch.long), targets[None])])
print({k: round(v, 4) for k, v in metrics.items()})
assert math.isclose(metrics["loss"], loss.item(), rel_tol=1e-6)
assert math.isclose(metrics["perplexity"], math.exp(loss.item()), rel_tol=1e-6)
assert math.isclose(metrics["accuracy"], accuracy.item(), rel_tol=1e-6)

# %% [markdown]
# ## 2. The data: Shakespeare, split by play
#
# The course's corpus is the complete works. We train on 27 plays and validate on 5 others that
# the model never sees (`data.split_works`), so the validation loss measures how well it predicts
# *new* Shakespeare, not how well it remembers; 5 more plays (the test plays) stay unseen until the
# end. The setting picks the preset: the smoke setting (CI) trains a tiny character-level GPT for
# 100 steps; the book setting (a CPU) trains `shakespeare-char-cpu`, the 0.8M-parameter character
# model of `make demo`, for its 2000 steps (a few minutes) and saves it in
# `runs/shakespeare-char-cpu`, where chapters 08–10 find it; the full setting (a GPU) trains
# `shakespeare-bpe-small` (BPE tokens, 11M parameters). `presets.prepare_data` loads the text,
# builds the tokenizer and encodes both splits.

# %%
from llm_from_scratch.presets import get_preset, prepare_data

preset = get_preset({"smoke": "tiny-char", "book": "shakespeare-char-cpu", "full": "shakespeare-bpe-small"}[SETTING])
if SETTING == "smoke":  # a little wider than tiny-char's default, still seconds on a CPU
    preset = dataclasses.replace(preset, model={**preset.model, "n_embd": 64, "block_size": 64})
data = prepare_data(preset, progress=False)
print(preset.name, "| tokenizer:", data.tokenizer_info["type"], "| vocabulary:", data.tokenizer.vocab_size)
print(f"training tokens: {data.train.numel():,}   validation tokens: {data.val.numel():,}")

# %% [markdown]
# ## 3. Batches by index
#
# A training step needs a batch of windows: $x$ = a block of $T$ tokens at a random offset, and
# $y$ = the same block shifted by one, so that position $t$ of $y$ is the token after position $t$
# of $x$. We address batches by their **index**: batch $i$ is drawn from a random generator seeded
# with $(\text{seed}, i)$ and nothing else. Batch 1234 is then the same batch whether we got there
# by training 1234 steps, by resuming a checkpoint at step 1000, or on the second of two GPUs.
# That one decision is what makes resuming and multi-GPU training exact.

# %%
from llm_from_scratch.lm_data import lm_batches

T = preset.model["block_size"]
batches = lm_batches(data.train, block_size=T, batch_size=preset.train.batch_size, seed=0)
x, y = batches(0)
print("x:", tuple(x.shape), " y:", tuple(y.shape))
print("x[0] =", repr(data.tokenizer.decode(x[0, :40].tolist())))
print("y[0] =", repr(data.tokenizer.decode(y[0, :40].tolist())))
assert torch.equal(y[:, :-1], x[:, 1:])  # y is x shifted by one
assert torch.equal(batches(0)[0], x)  # a pure function of the index

# %% [markdown]
# ## 4. The pieces of one step, and why each is there
#
# ### Warmup, then a cosine
# Adam divides each gradient by a running estimate of its size, $\sqrt{\hat v_t}$. In the first
# steps that estimate rests on a handful of gradients and is noisy, so a full-size step can throw
# the weights somewhere bad. **Warmup** raises the learning rate linearly over the first $W$ steps;
# then a **cosine** lowers it smoothly to $\alpha_{\min}$ at step $S$, so that the end of training
# takes small, careful steps:
#
# $$\alpha(s) = \begin{cases} \alpha_{\max}\,\frac{s+1}{W} & s < W \\[2pt]
# \alpha_{\min} + \tfrac12(\alpha_{\max}-\alpha_{\min})\bigl(1+\cos\bigl(\pi\frac{s-W}{S-W}\bigr)\bigr) & W \le s \le S \end{cases}$$

# %%
# NBVAL_CHECK_OUTPUT
from llm_from_scratch.optim import warmup_cosine
from llm_from_scratch.train import TrainConfig, learning_rate

demo = TrainConfig(max_steps=1000, lr=1e-3, min_lr=1e-4, warmup_steps=100)
steps = list(range(1000))
lrs = [learning_rate(s, demo) for s in steps]
by_hand = 1e-4 + 0.5 * (1e-3 - 1e-4) * (1 + math.cos(math.pi * (550 - 100) / (1000 - 100)))
print("lr(0) =", lrs[0], " lr(99) =", lrs[99], " lr(550) =", round(lrs[550], 8), " lr(999) =", round(lrs[999], 8))
assert math.isclose(lrs[550], by_hand) and math.isclose(lrs[99], 1e-3)
assert lrs == [warmup_cosine(s, max_lr=1e-3, warmup_steps=100, total_steps=1000, min_lr=1e-4) for s in steps]
plt.figure(figsize=(6, 3))
plt.plot(steps, lrs)
plt.xlabel("step"); plt.ylabel("learning rate")
plt.title("Warmup to the peak over 100 steps, then a cosine down to a tenth")
plt.show()

# %% [markdown]
# ### Gradient accumulation
# A batch of $B$ sequences may not fit in memory. The gradient of the mean loss over a batch is the
# mean of the gradients of its parts, so $K$ micro-batches of $B/K$, each loss divided by $K$ and
# `backward()` called on each (gradients **add up** in `.grad`), give exactly the gradient of the
# whole batch: $\nabla \frac{1}{K}\sum_k \mathcal{L}_k = \frac1K \sum_k \nabla \mathcal{L}_k$.

# %%
# NBVAL_IGNORE_OUTPUT
from llm_from_scratch.gpt import GPT, GPTConfig

tiny = GPT(GPTConfig(vocab_size=data.tokenizer.vocab_size, block_size=T, n_layer=1, n_head=2, n_embd=16))
xb, yb = lm_batches(data.train, T, 8, seed=1)(0)
tiny(xb, targets=yb)[1].backward()  # the whole batch of 8
whole = [p.grad.clone() for p in tiny.parameters()]
tiny.zero_grad()
for part in range(2):  # 2 micro-batches of 4, each loss divided by 2
    (tiny(xb[4 * part:4 * part + 4], targets=yb[4 * part:4 * part + 4])[1] / 2).backward()
print("largest difference between the two gradients:",
      f"{max((a - p.grad).abs().max().item() for a, p in zip(whole, tiny.parameters())):.1e}")
assert all(torch.allclose(a, p.grad, atol=1e-6) for a, p in zip(whole, tiny.parameters()))

# %% [markdown]
# ### Gradient clipping
# Now and then one batch produces a huge gradient (a rare token, an unlucky window). Clipping caps
# the **global** norm of the gradient, all parameters together: if $\lVert g\rVert > c$, then
# $g \leftarrow g \cdot c / \lVert g \rVert$. The direction is kept; only the step length is bounded.
# By hand: $g = (3, 4)$ has norm 5; clipped to $c = 1$ it becomes $(0.6, 0.8)$.

# %%
# NBVAL_CHECK_OUTPUT
w = nn.Parameter(torch.zeros(2))
w.grad = torch.tensor([3.0, 4.0])
norm = torch.nn.utils.clip_grad_norm_([w], max_norm=1.0)
print("norm before:", norm.item(), " gradient after:", [round(v, 4) for v in w.grad.tolist()])
assert torch.allclose(w.grad, torch.tensor([0.6, 0.8]))

# %% [markdown]
# ### Mixed precision and `torch.compile`
# On a GPU, matrix products in 16-bit run on tensor cores, many times faster than in fp32, and
# 16-bit activations take half the memory. So the forward pass runs under `torch.autocast` while
# the weights and Adam's moments stay in fp32. Which 16-bit format depends on the hardware:
# **bf16** (compute capability ≥ 8.0: A100, H100) has fp32's exponent range and needs nothing else;
# **fp16** (a T4 in Colab) overflows above 65504 and flushes tiny gradients to zero, so the loss is
# multiplied by a large factor before `backward()` (a `GradScaler`) and the gradients divided back
# before the update. On a CPU we stay in fp32. Chapter 12 takes these apart.
#
# `torch.compile` traces the model once and fuses the small elementwise operations between the
# matrix products (LayerNorm, GELU, residual adds) into a few kernels, which saves memory traffic
# on a GPU. Compiling costs a minute, so it is opt-in (`compile=True`, `--compile`); if it fails,
# the loop warns and runs eager.

# %%
from llm_from_scratch.device import precision_for_capability, select_device, select_precision

for name, capability in [("T4", (7, 5)), ("A100", (8, 0)), ("H100", (9, 0)), ("CPU", None)]:
    print(f"{name:>5}: {precision_for_capability(capability)}")
device = select_device()
print("here:", device, "->", select_precision(device))

# %% [markdown]
# ## 5. The loop, by hand
#
# Here is the whole of pretraining in one function: for each step, set the learning rate from the
# schedule, take batch number `step`, run the model forward to get the loss, backpropagate, clip the
# gradient's norm, take an AdamW step (weight decay on the weight matrices only: decaying biases and
# LayerNorm gains toward zero only hurts), and now and then measure the loss on the validation plays.

# %%
from llm_from_scratch.gpt import GPT, GPTConfig
from llm_from_scratch.lm_data import eval_batches
from llm_from_scratch.train import TrainConfig, evaluate_lm, learning_rate


def pretrain_by_hand(model: nn.Module, batches, config: TrainConfig, val=None, eval_every: int = 10):
    """The pretraining loop: returns the training loss of every step and (step, validation loss) pairs."""
    seed_everything(config.seed)  # the dropout masks: train() seeds the same way
    matrices = [p for p in model.parameters() if p.dim() >= 2]
    vectors = [p for p in model.parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW([{"params": matrices, "weight_decay": config.weight_decay},
                                   {"params": vectors, "weight_decay": 0.0}],
                                  lr=config.lr, betas=config.betas, eps=config.eps, foreach=True)
    losses, evals = [], []
    model.train()
    for step in range(config.max_steps):
        lr = learning_rate(step, config)  # warmup, then the cosine
        for group in optimizer.param_groups:
            group["lr"] = lr
        x, y = batches(step)  # batch number `step`: a pure function of the index
        _, loss = model(x, targets=y)  # forward: mean next-token cross entropy
        loss.backward()  # backward: the gradients land in p.grad
        if config.grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()  # the AdamW update
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())
        if val is not None and (step + 1) % eval_every == 0:
            evals.append((step + 1, evaluate_lm(model, val)["loss"]))
    return losses, evals


# %% [markdown]
# Run it for 30 steps, then run the package's `train()` on a copy of the same initial model with the
# same configuration. (`eval_every=1` makes `train()` record every step's loss.) The two must agree
# to the last bit: same batches, same schedule, same arithmetic.

# %%
# NBVAL_CHECK_OUTPUT
from llm_from_scratch.train import train

config = GPTConfig(vocab_size=preset.vocab_size(data.tokenizer.vocab_size), **preset.model)
check = dataclasses.replace(preset.train, max_steps=30, warmup_steps=10, device="cpu", progress=False)
torch.manual_seed(0)
by_hand_model = GPT(config)
package_model = GPT(config)
package_model.load_state_dict(by_hand_model.state_dict())
small_val = eval_batches(data.val, T, 8, max_batches=2)
hand_losses, hand_evals = pretrain_by_hand(by_hand_model, batches, check, val=small_val, eval_every=10)
package = train(package_model, batches, config=dataclasses.replace(check, eval_every=1))
package_losses = [r["train_loss"] for r in package.history]
print(f"{len(hand_losses)} steps; the losses by hand and by train() are identical:", hand_losses == package_losses)
print("validation evaluations by hand, at steps:", [step for step, _ in hand_evals])
print("final weights identical:", all(torch.equal(a, b) for a, b in
                                      zip(by_hand_model.state_dict().values(), package_model.state_dict().values())))
assert hand_losses == package_losses
assert all(torch.equal(a, b) for a, b in zip(by_hand_model.state_dict().values(), package_model.state_dict().values()))

# %% [markdown]
# So `train()` is this loop. What it adds is everything a long run needs around it: checkpoints
# written so that a crash never leaves a half-written file, and an exact resume (section 8);
# mixed precision with a gradient scaler on a GPU; gradient accumulation (several micro-batches per
# step); stopping with a clear message when the loss becomes NaN; `torch.compile`; and the same loop
# across several GPUs (DDP or FSDP, chapter 12). From here on we use it.

# %% [markdown]
# ## 6. Train
#
# `train(model, batches, config=..., val_batches=..., out_dir=...)` runs the loop: for each step it
# sets the learning rate, accumulates `grad_accum` micro-batches under autocast, stops if the loss
# is NaN or infinite (naming the step and the last good checkpoint), clips, steps AdamW (decay on
# weight matrices only), and every `eval_every` steps evaluates, appends a record to
# `history.jsonl`, redraws `loss.png` and writes a checkpoint. First, a sample from the untrained
# model: every token about equally likely.

# %%
from llm_from_scratch.cli import sample_text

torch.manual_seed(0)
model = GPT(config)
print(f"{model.num_parameters():,} parameters")

# %%
# NBVAL_IGNORE_OUTPUT
before = sample_text(model, data.tokenizer, "\n", max_new_tokens=120, temperature=1.0, seed=0)
print(repr(before))
assert len(data.tokenizer.encode(before)) == 121 or preset.tokenizer == "bpe"

# %%
# NBVAL_IGNORE_OUTPUT
import llm_from_scratch
from llm_from_scratch.history import read_history

runs = Path(tempfile.mkdtemp(prefix="lfs07-"))
# The book setting keeps its run where chapters 08-10 look for it (the repository's runs/ folder).
RUN_DIR = (Path(llm_from_scratch.__file__).resolve().parents[1] / "runs" / preset.name if SETTING == "book"
           else runs / "straight")
train_config = dataclasses.replace(preset.train, max_steps=100 if SETTING == "smoke" else preset.train.max_steps,
                                   eval_every=25 if SETTING == "smoke" else preset.train.eval_every, eval_at_start=True)
val = eval_batches(data.val, T, train_config.batch_size, max_batches=preset.eval_batches)
run_info = {"model": config.to_dict(), "tokenizer": data.tokenizer_info}
result = train(model, batches, config=train_config, val_batches=val, out_dir=RUN_DIR,
               run_info=run_info, tokenizer=data.tokenizer)
first, last = result.history[0], result.history[-1]
print(f"step {last['step']}: train {last['train_loss']:.3f}, validation {last['val_loss']:.3f} "
      f"(it started at {first['val_loss']:.3f} ≈ log V = {math.log(config.vocab_size):.3f})")
assert last["val_loss"] < first["val_loss"] - 0.5

# %% [markdown]
# The files of the run: the weights (safetensors), the training state (optimizer moments, RNG
# states, the step and the position in the data), the configuration, the tokenizer, the history
# and the plot.

# %%
# NBVAL_CHECK_OUTPUT
print(sorted(p.name for p in RUN_DIR.iterdir()))
print("history keys:", sorted(read_history(RUN_DIR)[-1]))

# %%
from IPython.display import display
from llm_from_scratch.history import plot_history

display(plot_history(result.history, title="Train and validation loss fall together: no overfitting yet"))

# %% [markdown]
# Both curves fall together: the model is learning Shakespeare in general, not the training
# plays by heart. When the validation curve flattens while the training curve keeps falling, the
# model has started to memorise, and more steps no longer help. (`train_loss` is the mean loss of
# the steps since the previous evaluation; `val_loss` is measured on held-out plays.)
#
# ## 7. Perplexity and accuracy of the trained model
#
# Perplexity $e^{\mathcal{L}}$ reads as "the model is as unsure as if it chose uniformly among this
# many tokens": a uniform guess over the vocabulary has perplexity $V$. The final score is measured
# on the **test plays**, which neither training nor the choice of settings has seen.

# %%
# NBVAL_IGNORE_OUTPUT
from IPython.display import Markdown, display

from llm_from_scratch.data import load_shakespeare, split_works
from llm_from_scratch.presets import encode_texts

test_tokens = encode_texts(data.tokenizer, [w.text for w in split_works(load_shakespeare(progress=False))["test"]])
m_val = evaluate_lm(model, eval_batches(data.val, T, 32, max_batches=20))
m_test = evaluate_lm(model, eval_batches(test_tokens, T, 32, max_batches=40))
unit = "char" if preset.tokenizer == "char" else "token"
display(Markdown(
    f"After {last['step']:,} steps ({SETTING} setting, preset `{preset.name}`): on the **test plays** the loss is "
    f"**{m_test['loss']:.3f} nats/{unit}**, a perplexity of **{m_test['perplexity']:.2f}** (a uniform guess: "
    f"{config.vocab_size}) and next-{unit} accuracy {m_test['accuracy']:.1%}, over {m_test['tokens']:,} {unit}s; "
    f"on the validation plays {m_val['loss']:.3f} nats/{unit}."))
assert math.isclose(m_test["perplexity"], math.exp(m_test["loss"]))
assert m_test["perplexity"] < config.vocab_size / 2  # far better than guessing uniformly
if SETTING == "book":  # the make-demo level: below 1.9 nats per character on unseen plays
    assert m_val["loss"] < 1.9 and m_test["loss"] < 1.95, (m_val, m_test)

# %% [markdown]
# Samples after training:

# %%
# NBVAL_IGNORE_OUTPUT
after = sample_text(model, data.tokenizer, "\n", max_new_tokens=200 if SETTING == "smoke" else 500, temperature=0.8, seed=0)
print(after)

# %% [markdown]
# ## 8. Resuming from a checkpoint, exactly
#
# A long run will be interrupted. The checkpoint holds everything the next step depends on: the
# weights, Adam's moments, the learning-rate schedule's position (the step), every random
# generator (dropout) and the position in the data (the next batch index). So training half the
# steps, stopping, and resuming must give **the same weights** as training straight through. Below,
# a 100-step run goes straight through; a second run with the same schedule (`lr_decay_steps`) stops
# halfway, and a fresh model resumes it from the checkpoint.

# %%
# NBVAL_IGNORE_OUTPUT
short = dataclasses.replace(train_config, max_steps=100, eval_every=50, eval_at_start=False, progress=False)
small_val = eval_batches(data.val, T, 8, max_batches=2)
torch.manual_seed(0)
straight = GPT(config)
train(straight, batches, config=short, val_batches=small_val, out_dir=runs / "short", run_info=run_info,
      tokenizer=data.tokenizer)
half = dataclasses.replace(short, max_steps=50, lr_decay_steps=100)
torch.manual_seed(0)
train(GPT(config), batches, config=half, val_batches=small_val, out_dir=runs / "resumed", run_info=run_info,
      tokenizer=data.tokenizer)
torch.manual_seed(123)  # a different initialisation: the checkpoint must overwrite all of it
resumed = GPT(config)
train(resumed, batches, config=short, val_batches=small_val, out_dir=runs / "resumed", resume=True,
      run_info=run_info, tokenizer=data.tokenizer)

# %%
# NBVAL_CHECK_OUTPUT
same = all(torch.equal(a, b) for a, b in zip(straight.state_dict().values(), resumed.state_dict().values()))
print("resumed weights == straight-through weights:", same)
assert same

# %% [markdown]
# The checkpoint is also what the command line reads:
#
# ```bash
# python -m llm_from_scratch pretrain --preset shakespeare-char-cpu --overwrite   # minutes on 2 CPU cores
# python -m llm_from_scratch pretrain --preset shakespeare-char-cpu --resume --extend-to 3000
# python -m llm_from_scratch sample --checkpoint runs/shakespeare-char-cpu --prompt "ROMEO:"
# python -m llm_from_scratch eval --checkpoint runs/shakespeare-char-cpu
# ```
#
# and it refuses what it should not load: a checkpoint of another model size or vocabulary (the
# message names the field that differs), a truncated or corrupt file, or a state file that would
# run code when unpickled (`torch.load(weights_only=True)`); a process killed in the middle of a
# save leaves the previous checkpoint intact (`llm_from_scratch.checkpoint` explains how).

# %%
from llm_from_scratch.checkpoint import CheckpointError

bigger = {**config.to_dict(), "n_embd": config.n_embd * 2}
try:
    train(GPT(GPTConfig(**bigger)), batches, config=train_config, out_dir=runs / "short", resume=True,
          run_info={"model": bigger, "tokenizer": data.tokenizer_info})
except CheckpointError as e:
    print("refused:", str(e).replace(str(runs), "RUNS"))

# %% [markdown]
# ## What to try
#
# 1. Train without warmup (`warmup_steps=0`) and with a 10× higher learning rate. Does the loss
#    spike early? Does gradient clipping (`grad_clip=1.0` vs `None`) save the run?
# 2. Halve `batch_size` and set `grad_accum=2`: the curves should match the original run (the same
#    data per step), at lower memory and a little more time.
# 3. Run `python -m llm_from_scratch pretrain --preset shakespeare-char-cpu` (minutes on a
#    laptop) and watch the validation loss fall below 1.9 nats per character; then sample from it
#    with different temperatures (`--temperature 0.5`, `1.2`) and see what changes.

# %% [markdown]
# ## Exercises
#
# Write each piece of the training loop from this chapter, then run its cell: `check` runs the exercise's
# tests and prints one line per failed test, with a hint. A cell that still says `raise NotImplementedError`
# prints "not attempted yet". Solutions: `chapters/solutions/07_pretraining.ipynb`.

# %%
import math

import torch
import torch.nn.functional as F
from llm_from_scratch.exercises import check

# %% [markdown]
# **07.1 Perplexity and accuracy from logits.** From logits (B, T, V) and targets (B, T), return
# `(perplexity, accuracy)` as floats: perplexity $= \exp(\text{mean NLL})$ over all $B \cdot T$ tokens (the
# exponential of the mean, not the mean of exponentials), accuracy = the fraction where argmax = target.

# %%
# NBVAL_CHECK_OUTPUT
def perplexity_and_accuracy(logits, targets):
    ### BEGIN SOLUTION
    nll = F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1))
    return math.exp(nll.item()), (logits.argmax(-1) == targets).float().mean().item()
    ### END SOLUTION


check("07.1", perplexity_and_accuracy)

# %% [markdown]
# **07.2 Gradient accumulation.** Given a model, a loss function and K micro-batches `(x, y)` of equal size:
# zero the gradients, then backpropagate `loss_fn(model(x), y) / K` for each. The gradients then equal those
# of the mean loss over the whole batch. Return the mean of the K losses as a float.

# %%
# NBVAL_CHECK_OUTPUT
def accumulate_gradients(model, loss_fn, micro_batches):
    ### BEGIN SOLUTION
    model.zero_grad()
    K, total = len(micro_batches), 0.0
    for x, y in micro_batches:
        loss = loss_fn(model(x), y) / K
        loss.backward()
        total += loss.item()
    return total
    ### END SOLUTION


check("07.2", accumulate_gradients)

# %% [markdown]
# **07.3 Gradient clipping by the global norm.** One norm over all the gradients together,
# $n = \sqrt{\sum_p \sum g_p^2}$; if $n$ > `max_norm`, multiply every gradient (in place) by
# `max_norm / (n + 1e-6)`. Return $n$ (before clipping) as a float.

# %%
# NBVAL_CHECK_OUTPUT
def clip_grad_norm(parameters, max_norm):
    ### BEGIN SOLUTION
    grads = [p.grad for p in parameters if p.grad is not None]
    norm = math.sqrt(sum((g**2).sum().item() for g in grads))
    if norm > max_norm:
        for g in grads:
            g.mul_(max_norm / (norm + 1e-6))
    return norm
    ### END SOLUTION


check("07.3", clip_grad_norm)
