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
# # 09 · Fine-tuning for regression: when was this written, and what MSE rewards
#
# Shakespeare's style changed over his twenty-five years of writing: the early plays rhyme more and
# run their sentences to the end of the line; the late ones break the verse mid-line and pile up
# clauses. Can a model read a passage and guess the **year** its play was written? By the end of this
# chapter you will be able to put a regression head on a pretrained GPT, write the squared-error loss
# from its formula, judge the result in the units that matter (RMSE in years, Pearson r), and explain
# the one thing mean squared error rewards above all: **predicting the mean**.
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/llm-from-scratch/llm-from-scratch/blob/main/chapters/09_finetune_regression.ipynb)

# %%
import sys
if "google.colab" in sys.modules:  # Colab: install the course package alone (Colab keeps its torch); a no-op elsewhere
    import subprocess
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                    "git+https://github.com/llm-from-scratch/llm-from-scratch"], check=True)
import copy
import statistics

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F

from llm_from_scratch import finetune as FT
from llm_from_scratch import metrics as M
from llm_from_scratch.data import load_shakespeare
from llm_from_scratch.losses import mse_loss
from llm_from_scratch.tasks import mean_label, year_task
from llm_from_scratch.utils import current_setting, seed_everything
SETTING = current_setting()  # "smoke" (CI), "book" (a CPU: the default) or "full" (a GPU)
generator = seed_everything(0)

# %% [markdown]
# ## 1. The task: a passage → the year of its play
#
# The same passages as chapter 08, labelled with the (approximate) year of composition of their play,
# from the Oxford chronology. The split is by play again: the test passages come from five plays the
# backbone never saw.

# %%
works = load_shakespeare(progress=False)
PASSAGE_CHARS = 256
task = year_task(works, passage_chars=PASSAGE_CHARS, max_per_work=8 if SETTING == "smoke" else None)
print(task)

# %%
# NBVAL_CHECK_OUTPUT
years = {part: sorted({(int(e.label), e.source) for e in getattr(task, part)}) for part in ("train", "test")}
print("training plays span", years["train"][0][0], "to", years["train"][-1][0], f"({len(years['train'])} plays)")
print("test plays:", ", ".join(f"{src} {y}" for y, src in years["test"]))

# %% [markdown]
# ## 2. The loss, and what it rewards
#
# For predictions $f(x_i;\theta)$ of targets $y_i$,
#
# $$L_{reg}(\theta) = \sum_i \big(y_i - f(x_i;\theta)\big)^2 .$$
#
# Suppose the model ignored its input and predicted one constant $c$ for everything. Then
# $L(c) = \sum_i (y_i - c)^2$, and $\frac{dL}{dc} = -2\sum_i (y_i - c) = 0$ gives
# $c = \frac{1}{n}\sum_i y_i$: **the best constant is the mean**. A model that has not learned anything
# useful about its input drifts there, and the mean is the baseline every regression must beat. Four
# plays by hand:

# %%
# NBVAL_CHECK_OUTPUT
y = torch.tensor([1590.0, 1595.0, 1600.0, 1611.0])
c = y.mean()
by_hand = sum((yi - c) ** 2 for yi in y)
print("mean:", c.item(), " L(mean) by hand:", by_hand.item())
print("losses.mse_loss(sum):", mse_loss(torch.full_like(y, c.item()), y, reduction="sum").item(),
      " torch:", F.mse_loss(torch.full_like(y, c.item()), y, reduction="sum").item())
assert torch.isclose(by_hand, mse_loss(torch.full_like(y, c.item()), y, reduction="sum"))
grid = torch.linspace(1585, 1615, 301)
L = torch.stack([mse_loss(torch.full_like(y, g.item()), y, reduction="sum") for g in grid])
print("the constant with the smallest loss on a grid:", round(grid[L.argmin()].item(), 1))
assert abs(grid[L.argmin()].item() - c.item()) <= 0.1

fig, ax = plt.subplots(figsize=(5, 3))
ax.plot(grid, L)
ax.axvline(c.item(), color="C1", ls="--", label="the mean")
ax.set_xlabel("constant prediction c")
ax.set_ylabel("L(c)")
ax.set_title("The squared error of a constant is smallest at the mean")
ax.legend()
plt.tight_layout()
plt.show()

# %% [markdown]
# ## 3. The baseline: predict the training mean
#
# **RMSE** $= \sqrt{\frac1n\sum_i (y_i - \hat y_i)^2}$ is in years, so it reads directly: "off by about
# so many years". **Pearson r** measures whether the predictions rise and fall with the truth; for a
# constant prediction it is undefined (0/0), which is honest: the baseline ranks nothing. By hand,
# for four plays and four guesses:

# %%
# NBVAL_CHECK_OUTPUT
truth4 = [1590.0, 1595.0, 1600.0, 1611.0]
guess4 = [1594.0, 1596.0, 1599.0, 1605.0]
rmse_by_hand = (sum((t - g) ** 2 for t, g in zip(truth4, guess4)) / 4) ** 0.5  # sqrt((16 + 1 + 1 + 36) / 4)
mt, mg = sum(truth4) / 4, sum(guess4) / 4
r_by_hand = (sum((t - mt) * (g - mg) for t, g in zip(truth4, guess4))
             / (sum((t - mt) ** 2 for t in truth4) * sum((g - mg) ** 2 for g in guess4)) ** 0.5)
print(f"RMSE by hand {rmse_by_hand:.4f}, metrics.rmse {M.rmse(truth4, guess4):.4f}")
print(f"Pearson r by hand {r_by_hand:.4f}, metrics.pearson_r {M.pearson_r(truth4, guess4):.4f}")
assert abs(rmse_by_hand - M.rmse(truth4, guess4)) < 1e-9 and abs(r_by_hand - M.pearson_r(truth4, guess4)) < 1e-9

# %%
mu = mean_label(task)
y_test = [e.label for e in task.test]
print("training mean:", round(mu, 2))
print("baseline RMSE on the test plays:", round(M.rmse(y_test, [mu] * len(y_test)), 3), "years")

# %%
# NBVAL_CHECK_OUTPUT
try:  # a constant prediction: Pearson r is 0/0
    M.pearson_r([1590.0, 1595.0, 1600.0], [1597.0, 1597.0, 1597.0])
except ValueError as e:
    print("Pearson r of a constant:", e)

# %% [markdown]
# The backbone is chapter 08's: chapter 07's model in `runs/shakespeare-char-cpu` (on a CPU without it,
# the chapter stops and says what to run; on a GPU it pretrains one first), or in the smoke setting a
# GPT pretrained here for a few seconds.

# %%
# NBVAL_IGNORE_OUTPUT
from llm_from_scratch.backbones import chapter_backbone

# chapter 07's checkpoint (book, full), or a 2-layer GPT pretrained here in seconds (smoke)
backbone, tokenizer, source = chapter_backbone(SETTING)
print("backbone:", source)

# %% [markdown]
# ## 4. The head: `llm_from_scratch.finetune.SequenceRegressor`
#
# The same backbone and pooling as chapter 08's runs (the mean over a GPT's real tokens), and a linear layer
# to **one** number. Years are around 1600 with a spread of about 6: a fresh head would start by
# predicting ~0, and the first gradients would be enormous. So the head predicts the **standardised**
# target $z = (y - \mu)/\sigma$ and outputs $\mu + \sigma z$. Its weights start at zero: at step 0 every
# prediction is the training mean, the baseline, and training moves away from it only where the data
# says so. (Minimising the squared error of $z$ minimises that of $y$: it is the same loss times $1/\sigma^2$.)

# %%
# NBVAL_CHECK_OUTPUT
ys = torch.tensor([float(e.label) for e in task.train])
sigma = ys.std().item()
ids, mask = FT.pad([tokenizer.encode("Now is the winter"), tokenizer.encode("O Romeo")], pad_value=0)
regressor = FT.SequenceRegressor(copy.deepcopy(backbone), target_mean=mu, target_std=sigma)
pred, loss = regressor(ids, mask, labels=torch.tensor([1590.0, 1610.0]))
assert torch.allclose(pred, torch.full((2,), mu))
print("every prediction at step 0 is the training mean:", torch.allclose(pred, torch.full((2,), mu)))
z_true = (torch.tensor([1590.0, 1610.0]) - mu) / sigma
print("its loss is the MSE of the standardised targets:", torch.isclose(loss, F.mse_loss(torch.zeros(2), z_true)).item())

# %% [markdown]
# ## 5. Fine-tuning
#
# We train the regressor fully and with LoRA on the training plays, then predict the test plays.
# (Scores vary by machine: nbval does not compare this cell; it checks the metrics are sane.)

# %%
# NBVAL_IGNORE_OUTPUT
config = dict(steps={"smoke": 30, "book": 1500, "full": 1500}[SETTING], batch_size=16 if SETTING == "smoke" else 32,
              max_len=PASSAGE_CHARS)
results = {m: FT.finetune_task(task, copy.deepcopy(backbone), tokenizer, FT.FinetuneConfig(method=m, **config))
           for m in ("full", "lora")}
base = results["full"].baseline
print(f"{'':>15} {'RMSE (years)':>13} {'Pearson r':>10}")
print(f"{'training mean':>15} {base['rmse']:>13.3f} {'—':>10}")
for m, r in results.items():
    print(f"{m:>15} {r.metrics['rmse']:>13.3f} {r.metrics['pearson_r']:>10.3f}")
for r in results.values():
    assert r.metrics["rmse"] > 0 and r.metrics["rmse"] < 100
    assert r.metrics["pearson_r"] != r.metrics["pearson_r"] or -1 <= r.metrics["pearson_r"] <= 1  # NaN if constant
from IPython.display import Markdown, display

best_method = min(results, key=lambda m: results[m].metrics["rmse"])
gain = base["rmse"] - results[best_method].metrics["rmse"]
display(Markdown(
    f"On the {len(y_test):,} test passages, predicting the training mean gives RMSE {base['rmse']:.3f} years; "
    f"**{best_method}** fine-tuning gives **{results[best_method].metrics['rmse']:.3f}** ({gain:+.3f} years "
    f"better) with Pearson r {results[best_method].metrics['pearson_r']:.3f}."))
if SETTING != "smoke":  # the payoff: reading the passage beats knowing only the mean
    assert gain > 0.1, gain

# %% [markdown]
# Do not expect much here. A passage of a few lines carries little evidence of its date, the labels
# are per play (every passage of *Othello* is "1603"), and there are only 27 training plays: a model
# can learn to recognise the training plays rather than the drift of a style, and on new plays fall
# back towards the mean. That is why each run keeps the weights that scored best on the validation
# plays (`keep_best`), and why the baseline is hard to beat by much.
#
# In the smoke setting the backbone has learned almost nothing and the table above shows only that
# the code runs; in the book setting the sentence under the table gives the gain over the mean.
#
# ## 6. Predictions against the truth
#
# Each dot is a test passage: its play's true year across, the model's guess up. A perfect model puts
# every dot on the diagonal. Look at the **vertical spread**: the guesses huddle around the training
# mean far more than the true years do. That is MSE's reward at work: when the input says little, the
# safest guess is the middle. The cell measures both spreads (standard deviations).

# %%
# NBVAL_IGNORE_OUTPUT
best = min(results.values(), key=lambda r: r.metrics["rmse"])
test_data = FT.encode_examples(task.test, tokenizer, "regression", min(PASSAGE_CHARS, backbone.config.block_size))
pred = FT.predict(best.model, test_data)
truth = test_data.labels
jitter = torch.empty(len(truth)).uniform_(-0.3, 0.3, generator=generator)
fig, ax = plt.subplots(figsize=(5, 4))
ax.scatter([t + j for t, j in zip(truth, jitter.tolist())], pred, s=10, alpha=0.5)
lo, hi = min(truth) - 2, max(truth) + 2
ax.plot([lo, hi], [lo, hi], "k--", lw=1, label="perfect")
ax.axhline(mu, color="C1", lw=1, label="training mean")
ax.set_xlabel("true year of the play")
ax.set_ylabel("predicted year")
ax.set_title(f"{best.method}: guesses huddle around the mean")
ax.legend()
plt.tight_layout()
plt.show()
spread_pred, spread_true = statistics.pstdev(pred), statistics.pstdev(truth)
display(Markdown(f"The predictions spread **{spread_pred:.2f} years** (standard deviation) against the "
                 f"truth's {spread_true:.2f}."))
assert spread_pred < 3 * spread_true + 1
if SETTING != "smoke":  # the predictions do spread: the model is not a constant
    assert spread_pred > 0.5, spread_pred

# %% [markdown]
# ## What to try
#
# 1. **The median instead of the mean.** Replace the squared error by the absolute error $|y - f(x)|$
#    (write it in the style of `losses.mse_loss`). Which constant minimises it? How do the predictions
#    spread now?
# 2. **Longer passages.** Raise `PASSAGE_CHARS` (and use a backbone with a longer context). Style shows
#    over many lines: does the RMSE drop?
# 3. **Classification in disguise.** Bin the years into early (< 1596), middle and late (> 1603) and
#    train chapter 08's classifier on the bins. Which gets the test plays' order right more often?

# %% [markdown]
# ## Exercises
#
# Write each function from this chapter, then run its cell: `check` compares it with the package and prints
# one line per failed test, with a hint. A cell that still says `raise NotImplementedError` prints
# "not attempted yet". Solutions: `chapters/solutions/09_finetune_regression.ipynb`.

# %%
import math

import torch
from llm_from_scratch.exercises import check

# %% [markdown]
# **09.1 Standardised regression targets.** The head learns best when its targets are near 0 with spread 1:
# $z = (y - \bar y)/s$, with $\bar y$ the mean and $s$ the sample standard deviation ($n - 1$, torch's
# `y.std()`, as in section 4). Return `(z, mean, std)` with mean and std as floats.

# %%
# NBVAL_CHECK_OUTPUT
def standardize_targets(y):
    ### BEGIN SOLUTION
    mean = y.mean().item()
    std = math.sqrt(((y - mean) ** 2).sum().item() / (len(y) - 1))
    return (y - mean) / std, mean, std
    ### END SOLUTION


check("09.1", standardize_targets)

# %% [markdown]
# **09.2 The error in years.** The model predicts standardised values `pred_z`. Undo the standardisation,
# $\hat y = z\,s + \bar y$, then return the RMSE $\sqrt{\frac1N \sum (y - \hat y)^2}$ in years (a float).

# %%
# NBVAL_CHECK_OUTPUT
def rmse_in_years(pred_z, y_true, mean, std):
    ### BEGIN SOLUTION
    pred = pred_z * std + mean
    return ((y_true - pred) ** 2).mean().sqrt().item()
    ### END SOLUTION


check("09.2", rmse_in_years)

# %% [markdown]
# **09.3 Pearson's correlation.** $r = \sum(x-\bar x)(y-\bar y) / \sqrt{\sum(x-\bar x)^2 \sum(y-\bar y)^2}$
# for two 1-D tensors, as a float: does the model at least put the plays in the right order?

# %%
# NBVAL_CHECK_OUTPUT
def pearson_r(x, y):
    ### BEGIN SOLUTION
    x, y = x.double() - x.double().mean(), y.double() - y.double().mean()
    return ((x * y).sum() / ((x**2).sum() * (y**2).sum()).sqrt()).item()
    ### END SOLUTION


check("09.3", pearson_r)
