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
# # 15 · Instruction tuning: chat templates, loss masking, SFT and DPO
#
# A pretrained GPT continues text; an assistant answers. By the end of this chapter you will be able to
# turn one into the other: write conversations in a **chat template** with special tokens, build the
# labels so that the model learns only the assistant's words (**loss masking**), run **supervised
# fine-tuning** (SFT) through the course's training loop, and then improve the model from pairs of a
# better and a worse answer with **direct preference optimisation** (DPO), whose loss you will derive
# from the Bradley–Terry model and check by hand. The questions come from the corpus and have exact
# answers, so every step is measured: exact match, format, preference accuracy.
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/llm-from-scratch/llm-from-scratch/blob/main/chapters/15_instruction_tuning.ipynb)

# %%
import sys
IN_COLAB = "google.colab" in sys.modules
if IN_COLAB:  # Colab: install the course package alone (Colab keeps its torch); a no-op elsewhere
    import subprocess
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                    "git+https://github.com/llm-from-scratch/llm-from-scratch"], check=True)
import copy
import dataclasses
import math
from collections import Counter
from pathlib import Path

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from IPython.display import Markdown, display

import llm_from_scratch
from llm_from_scratch import dpo as D
from llm_from_scratch import instruct_data as I
from llm_from_scratch import sft as S
from llm_from_scratch.data import load_shakespeare
from llm_from_scratch.generate import generate
from llm_from_scratch.gpt import GPT, GPTConfig
from llm_from_scratch.losses import IGNORE_INDEX
from llm_from_scratch.presets import get_preset, prepare_data
from llm_from_scratch.train import TrainConfig, eval_batches, evaluate_lm, lm_batches, load_gpt_checkpoint, train
from llm_from_scratch.utils import current_setting, seed_everything

SETTING = current_setting()  # "smoke" (CI), "book" (a CPU, the default) or "full" (a GPU)
SMOKE = SETTING == "smoke"
torch.set_num_threads(min(2, torch.get_num_threads()))
generator = seed_everything(0)
print("setting:", SETTING)

# %% [markdown]
# ## 1. A base model, and why it does not answer
#
# We start from a small GPT pretrained on the training plays: the preset `shakespeare-bpe-cpu`
# (2,000 BPE tokens, 4 layers, 128 dimensions; about 10 minutes on two CPU cores in the book setting).
# If `python -m llm_from_scratch pretrain --preset shakespeare-bpe-cpu` has already written
# `runs/shakespeare-bpe-cpu`, that checkpoint is used; otherwise the cell pretrains it here. In the
# smoke setting (CI) a 2-layer model trains for a few seconds: it learns little, and CI only checks
# that every step runs.

# %%
# NBVAL_IGNORE_OUTPUT
preset = get_preset("shakespeare-bpe-cpu")
if SMOKE:
    preset = dataclasses.replace(preset, model=dict(preset.model, n_layer=2, n_head=2, n_embd=64))
    preset = preset.with_overrides(max_steps=40, warmup_steps=5, eval_every=40)
checkpoint = Path(llm_from_scratch.__file__).resolve().parents[1] / "runs" / preset.name
if not SMOKE and (checkpoint / "config.json").exists():
    base, base_tokenizer, _ = load_gpt_checkpoint(checkpoint)
    data = prepare_data(preset, progress=False, tokenizer=base_tokenizer)
    source = f"the checkpoint {checkpoint.name}"
else:
    data = prepare_data(preset, progress=False)
    base_tokenizer = data.tokenizer
    base = GPT(GPTConfig(vocab_size=preset.vocab_size(base_tokenizer.vocab_size), **preset.model))
    train(base, lm_batches(data.train, preset.model["block_size"], preset.train.batch_size),
          config=dataclasses.replace(preset.train, progress=False))
    source = f"pretrained here for {preset.train.max_steps} steps"
base.eval()
val_loss = evaluate_lm(base, eval_batches(data.val, base.config.block_size, 32, max_batches=20))["loss"]
print(f"base model ({source}): {base.num_parameters():,} parameters, vocabulary {base.config.vocab_size} rows "
      f"for {base_tokenizer.vocab_size} tokens; validation loss {val_loss:.3f} nats/token")
assert math.isfinite(val_loss)

# %% [markdown]
# The tasks of this chapter are questions with one right answer. Here is one, given to the base model
# as plain text. A base model was trained to continue text, so it continues: more lines of a play, not
# an answer.

# %%
# NBVAL_IGNORE_OUTPUT
works = load_shakespeare(progress=False)
per_task = 3 if SMOKE else 20
examples = I.build_examples(works, per_task=per_task, seed=0)
question = examples["test"][0]
print(question.prompt)
ids = torch.tensor([base_tokenizer.encode(question.prompt + "\n", allowed_special="none")])
out = generate(base, ids, max_new_tokens=24, temperature=0)
print("\n--- the base model continues:\n" + base_tokenizer.decode(out[0, ids.size(1):].tolist()))
print("--- the right answer:", question.answer)

# %% [markdown]
# ## 2. The chat template and its special tokens
#
# An assistant is trained on conversations written in a fixed **template**. Ours uses four special
# tokens: `<|system|>`, `<|user|>` and `<|assistant|>` open a turn, and `<|end|>` closes it:
#
# ```
# <|user|>
# Who speaks the second line?<|end|>
# <|assistant|>
# Constable<|end|>
# ```
#
# They are **special tokens**: each is one id, appended after the existing vocabulary (every existing id
# stays what it was), and no merge of the byte-level BPE can produce them. Message contents are encoded
# with special tokens disallowed, so a user who types `<|end|>` gets seven characters of text, not a
# control token. To answer, the model is given the conversation so far plus `<|assistant|>\n` (the
# *generation prompt*) and writes until it produces `<|end|>`.
#
# The model needs an embedding row for each new token. We set each new row to the **mean** of the
# existing rows: with tied input and output embeddings, its logit is then the mean of the other logits,
# so the new tokens start no likelier than an average token and the base model's text is unchanged. The
# preset padded the vocabulary to a multiple of 64 (2,000 tokens in 2,048 rows), so the new tokens take
# padding rows and the model does not grow.

# %%
tokenizer = S.add_chat_tokens(base_tokenizer)
print("new tokens:", {t: tokenizer.vocab[t] for t in S.CHAT_TOKENS})
rows_before = base.config.vocab_size
S.resize_token_embeddings(base, tokenizer.vocab_size, base_tokenizer.vocab_size, pad_vocab_to=preset.pad_vocab_to)
print(f"embedding rows: {rows_before} -> {base.config.vocab_size}; output layer still tied:",
      base.lm_head.weight is base.transformer.wte.weight)
assert all(tokenizer.vocab[t] == i for t, i in base_tokenizer.vocab.items())
assert tokenizer.encode("say <|end|>", allowed_special="none") == base_tokenizer.encode("say <|end|>", allowed_special="none")
assert base.config.vocab_size % preset.pad_vocab_to == 0

# %% [markdown]
# The template is plain text around each message. At answer time the conversation ends with the
# assistant's opening marker (`add_generation_prompt=True`), so the model's next tokens are its answer:

# %%
# NBVAL_CHECK_OUTPUT
asked = [{"role": "user", "content": "Who speaks the second line?"}]
answered = asked + [{"role": "assistant", "content": "Roderigo"}]
print(repr(S.format_chat(answered)))
print(repr(S.format_chat(asked, add_generation_prompt=True)))
assert S.format_chat(answered).startswith(S.format_chat(asked, add_generation_prompt=True))

# %% [markdown]
# ## 3. What the model sees: tokens and labels
#
# `encode_conversation` returns two sequences of the same length: the token ids, and the **labels**.
# A label equals the token on the assistant's answer and its `<|end|>`, and is `-100`
# (`losses.IGNORE_INDEX`) everywhere else, so the user's words, the system prompt and the template's
# markers add nothing to the loss: the model learns to *answer*, not to write questions. Masked
# positions are marked `·` below.

# %%
short = I.InstructExample("second_speaker", "-", "Iago: I am not what I am.\nRoderigo: What a full fortune!"
                          "\n\nWho speaks the second line?", "Roderigo", "Iago")
input_ids, labels = S.encode_conversation(tokenizer, short.messages())
print(S.format_chat(short.messages()))
for t, (i, lab) in enumerate(zip(input_ids.tolist(), labels.tolist())):
    if t < 4 or lab != IGNORE_INDEX or t >= len(input_ids) - 8:
        print(f"{t:3d}  {i:5d}  {tokenizer.decode([i])!r:18}  {'·' if lab == IGNORE_INDEX else lab}")
    elif t == 4:
        print("  ... (the rest of the question, all masked)")
learned = tokenizer.decode(labels[labels != IGNORE_INDEX].tolist())
print("the labels spell:", repr(learned))
assert learned == "Roderigo<|end|>"

# %% [markdown]
# ## 4. The SFT loss: L_cls on the answer tokens only
#
# A language model's logits at position $t$ score the token at $t + 1$. So the loss shifts the labels
# by one (as `transformers` does) and averages the cross entropy over the positions whose label is kept:
#
# $$L_{SFT}(\theta) = -\frac{1}{|A|} \sum_{t \in A} \log P(x_{t+1} \mid x_{\le t}; \theta), \qquad A = \{t : \text{label}_{t+1} \ne -100\}$$
#
# It is chapter 08's classification loss $L_{cls}$, one example per answer token. By hand, with the
# base model, then the package's `sft.sft_loss` and torch's `F.cross_entropy`:

# %%
with torch.no_grad():
    logits = base(input_ids[None])[0][0]                       # (T, V)
    logp = torch.log_softmax(logits, dim=-1)
    A = [t for t in range(len(input_ids) - 1) if labels[t + 1] != IGNORE_INDEX]
    by_hand = -sum(logp[t, input_ids[t + 1]] for t in A) / len(A)
    package = S.sft_loss(base, (input_ids[None], labels[None]))
    torch_ce = F.cross_entropy(logits[:-1], labels[1:], ignore_index=-100)
print(f"answer positions A = {A}")
print(f"L_SFT by hand {by_hand.item():.4f}, sft.sft_loss {package.item():.4f}, torch {torch_ce.item():.4f}")
assert torch.allclose(by_hand, package, atol=1e-5) and torch.allclose(package, torch_ce, atol=1e-5)

# %% [markdown]
# ## 5. The tasks and the baselines
#
# Three tasks from the plays (`llm_from_scratch.instruct_data`): *who speaks the second line* of a
# four-line passage, *how many lines* a named speaker says in it (both can be read from the prompt), and
# *which of two plays* a line is from (which needs knowledge a small model mostly lacks). The split is
# by work (`data.split_works`): the test questions come from plays the model has never seen.
#
# The **prior baseline** reads no prompt: it answers with the most frequent answer for the task and
# play (the play's most frequent speaker, the most frequent count). Then the base model, prompted with
# the template.

# %%
# NBVAL_IGNORE_OUTPUT
print({split: len(v) for split, v in examples.items()},
      dict(Counter(e.task for e in examples["train"])))
for task in I.TASKS:
    e = next(x for x in examples["test"] if x.task == task)
    print(f"--- {task}\n{e.prompt}\n  answer: {e.answer}   (a plausible wrong one: {e.rejected})")

# %%
test = examples["test"]
results = {"prior": I.score([(p, True) for p in I.prior_predictions(test)], test)}
base_outputs = I.generate_answers(base, tokenizer, test)
results["base + template"] = I.score(base_outputs, test)
print("the base model, prompted with the template, writes:", repr(base_outputs[0][0]))
for name, r in results.items():
    print(f"{name:>16}: exact match {r['exact_match']:.3f}  format {r['format']:.3f}")
assert results["prior"]["format"] == 1.0 and 0 <= results["base + template"]["exact_match"] <= 1

# %% [markdown]
# ## 6. Supervised fine-tuning through the course's training loop
#
# SFT is the pretraining loop of chapter 07 with another batch and another loss: `train.train` takes
# `loss_fn=sft.sft_loss`, and `sft.sft_batches` gives it shuffled, right-padded conversations (padding:
# label −100). Conversations too long for the context are dropped *with a warning*, never cut inside an
# answer. `lora.apply_lora(model)` before training would train adapters only; this model is small, so
# we train every weight.
#
# **A shortcut to close first.** Every training passage comes from a training play, and each play has its
# few main speakers. A small model fine-tuned on these passages learns a shortcut: answer "who speaks the
# second line?" with a name it has *memorised* from the training plays, instead of reading the name off
# the prompt. On the test plays, whose names it has never seen, the shortcut fails. So we add to the
# training conversations a copy of every passage question with its speakers renamed at random
# (`instruct_data.with_random_speakers`: each speaker of a passage gets another name of the training plays,
# the same name on each of its lines). In the copies, memorised names are no help and only copying from the
# prompt answers the question. This is *data augmentation*: a change to the training data that keeps the
# answer right but removes the shortcut. The test questions keep their real names.

# %%
# NBVAL_IGNORE_OUTPUT
block = base.config.block_size
train_names = sorted({n for e in examples["train"] if e.task == "second_speaker" for n in (e.answer, e.rejected)})
renamed = I.with_random_speakers(examples["train"], train_names, seed=0)
print("a renamed copy:\n" + renamed[0].prompt, "\n  answer:", renamed[0].answer)
train_examples = examples["train"] + renamed
train_data = [x for x in I.encode_examples(tokenizer, train_examples) if len(x[0]) <= block]
val_data = [x for x in I.encode_examples(tokenizer, examples["validation"]) if len(x[0]) <= block]
print(f"{len(train_data)} of {len(train_examples)} training conversations ({len(renamed)} renamed copies) "
      f"fit in {block} tokens")
pad_id = tokenizer.eos_id
val_batches = [S.pad_batch(val_data[i:i + 32], pad_id) for i in range(0, len(val_data), 32)]


@torch.no_grad()
def sft_eval(model):
    model.eval()
    loss = sum(S.sft_loss(model, b).item() for b in val_batches) / len(val_batches)
    model.train()
    return {"loss": loss}


sft_model = copy.deepcopy(base)
sft_steps = 30 if SMOKE else 1600
sft_config = TrainConfig(max_steps=sft_steps, batch_size=16, lr=1e-3, min_lr=1e-4, warmup_steps=min(50, sft_steps // 5),
                         eval_every=max(sft_steps // 8, 1), eval_at_start=True, weight_decay=0.0,
                         betas=(0.9, 0.99), progress=False, device="cpu" if not torch.cuda.is_available() else None)
sft_run = train(sft_model, S.sft_batches(train_data, 16, pad_id), config=sft_config, loss_fn=S.sft_loss,
                eval_fn=sft_eval)
sft_model.eval()
steps = [r["step"] for r in sft_run.history]
plt.figure(figsize=(6, 3.5))
plt.plot(steps[1:], [r["train_loss"] for r in sft_run.history[1:]], label="train")
plt.plot(steps, [r["val_loss"] for r in sft_run.history], label="validation plays")
plt.xlabel("SFT step"); plt.ylabel("L_SFT (nats per answer token)")
plt.title("SFT: the loss on answer tokens falls"); plt.legend(); plt.show()
first, last = sft_run.history[0]["val_loss"], sft_run.history[-1]["val_loss"]
display(Markdown(f"SFT took the validation loss on answer tokens from **{first:.3f}** to **{last:.3f}** nats."))
assert last < first

# %%
sft_outputs = I.generate_answers(sft_model, tokenizer, test)
results["SFT"] = I.score(sft_outputs, test)
for e, (text, ended) in list(zip(test, sft_outputs))[:3]:
    print(f"{e.task:>15}: model {text!r} (ended: {ended}), right {e.answer!r}")
for name, r in results.items():
    print(f"{name:>16}: exact match {r['exact_match']:.3f}  format {r['format']:.3f}  " +
          "  ".join(f"{t} {r.get('exact_match/' + t, 0):.2f}" for t in I.TASKS))
display(Markdown(f"After SFT the model answers **{results['SFT']['exact_match']:.1%}** of the test questions "
                 f"exactly (prior {results['prior']['exact_match']:.1%}, base model with the template "
                 f"{results['base + template']['exact_match']:.1%}), and ends **{results['SFT']['format']:.1%}** "
                 "of its answers with `<|end|>`."))
if not SMOKE:  # the payoff of SFT: above the prompted base model and above the prior, which reads no prompt
    assert results["SFT"]["exact_match"] > max(results["prior"]["exact_match"], results["base + template"]["exact_match"])
    assert results["SFT"]["format"] > results["base + template"]["format"]
beats_prior = results["SFT"]["exact_match"] > results["prior"]["exact_match"]
display(Markdown(f"Does SFT beat the prior baseline, which reads no prompt? **{'yes' if beats_prior else 'no'}** "
                 f"({results['SFT']['exact_match']:.1%} against {results['prior']['exact_match']:.1%}; "
                 f"{SETTING} setting). Per task: " + ", ".join(
                     f"{t} {results['SFT'].get('exact_match/' + t, 0):.0%} vs {results['prior'].get('exact_match/' + t, 0):.0%}"
                     for t in I.TASKS) + "."))

# %% [markdown]
# ## 7. Preferences, and the DPO loss derived
#
# SFT imitates one right answer. Often we can only say which of two answers is **better**: a prompt
# $x$, a chosen answer $y_w$ and a rejected one $y_l$. Ours: the right answer against a plausible wrong
# one (another speaker of the same passage, another count, the other play).
#
# **Step 1, Bradley–Terry.** Assume a hidden reward $r(x, y)$ and that people prefer $y_w$ with
# probability $P(y_w \succ y_l \mid x) = \sigma(r(x, y_w) - r(x, y_l))$, with $\sigma(z) = 1/(1+e^{-z})$.
#
# **Step 2, the KL-regularised objective** of RLHF: find a policy $\pi$ with high reward that stays close
# to the reference $\pi_{ref}$ (the SFT model):
# $\max_\pi \; \mathbb{E}_{y \sim \pi(\cdot|x)}[r(x, y)] - \beta\, \mathrm{KL}(\pi(\cdot|x) \,\|\, \pi_{ref}(\cdot|x))$.
# Writing the KL as $\mathbb{E}_{y\sim\pi}[\log \pi(y|x) - \log \pi_{ref}(y|x)]$, the objective equals
# $-\beta\,\mathrm{KL}(\pi \,\|\, \pi^*) + \beta \log Z(x)$ with
#
# $$\pi^*(y \mid x) = \frac{1}{Z(x)}\, \pi_{ref}(y \mid x)\, e^{r(x, y)/\beta}, \qquad Z(x) = \sum_y \pi_{ref}(y \mid x)\, e^{r(x, y)/\beta},$$
#
# so it is maximised by $\pi = \pi^*$ (a KL is zero only between equal distributions).
#
# **Step 3, solve for the reward.** Take logs: $r(x, y) = \beta \log \frac{\pi^*(y|x)}{\pi_{ref}(y|x)} + \beta \log Z(x)$.
#
# **Step 4, put it into Bradley–Terry.** $Z(x)$ is the same for both answers and cancels in the
# difference, so the preference probability depends on the policy alone; maximising its likelihood over
# the pairs gives
#
# $$L_{DPO} = -\frac{1}{N}\sum \log \sigma\Big(\beta\Big[\big(\log \pi(y_w|x) - \log \pi_{ref}(y_w|x)\big) - \big(\log \pi(y_l|x) - \log \pi_{ref}(y_l|x)\big)\Big]\Big).$$
#
# No reward model, no sampling: only log-probabilities of given answers (`dpo.sequence_logprobs`: the sum
# over the answer tokens, the same labels as SFT). $r_w = \beta(\log\pi(y_w|x) - \log\pi_{ref}(y_w|x))$ is the
# **implicit reward** of the chosen answer, $r_l$ that of the rejected one; their difference is the
# **reward margin**. With $\Delta = (r_w - r_l)/\beta$, $\partial L/\partial \Delta = -\beta\,\sigma(-\beta\Delta)/N$:
# pairs the policy already ranks well stop pulling.
#
# By hand on two pairs, $\beta = 0.1$:

# %%
# NBVAL_CHECK_OUTPUT
beta = 0.1
pol_w, pol_l = torch.tensor([-2.0, -6.0]), torch.tensor([-5.0, -4.0])   # log π(y_w|x), log π(y_l|x)
ref_w, ref_l = torch.tensor([-3.0, -5.0]), torch.tensor([-4.0, -4.5])   # log π_ref(y_w|x), log π_ref(y_l|x)
rows = []
for k in range(2):
    r_w, r_l = beta * (pol_w[k] - ref_w[k]).item(), beta * (pol_l[k] - ref_l[k]).item()
    loss_k = -math.log(1 / (1 + math.exp(-(r_w - r_l))))
    rows.append(loss_k)
    print(f"pair {k + 1}: r_w = {r_w:+.2f}, r_l = {r_l:+.2f}, margin {r_w - r_l:+.2f}, -log σ(margin) = {loss_k:.4f}")
by_hand = sum(rows) / 2
loss, chosen_r, rejected_r = D.dpo_loss(pol_w, pol_l, ref_w, ref_l, beta)
print(f"L_DPO by hand {by_hand:.4f}; dpo.dpo_loss {loss.item():.4f}")
assert math.isclose(by_hand, loss.item(), rel_tol=1e-6)
assert torch.allclose(chosen_r, beta * (pol_w - ref_w)) and torch.allclose(rejected_r, beta * (pol_l - ref_l))

# %% [markdown]
# ## 8. DPO on top of SFT
#
# The reference is a frozen copy of the SFT model; the policy starts equal to it (so the loss starts at
# $\log 2$ and the margins at 0). `dpo.dpo_loss_fn(reference, beta)` is the `loss_fn` of the same
# training loop; each batch holds B chosen and B rejected conversations. During training we measure, on
# the validation plays' pairs, the **preference accuracy** (how often the policy gives the chosen answer
# the higher log-probability) and the reward margin.

# %%
# NBVAL_IGNORE_OUTPUT
train_pairs = [p for p in I.encode_pairs(tokenizer, examples["train"]) if max(len(p[0][0]), len(p[1][0])) <= block]
val_pairs = [p for p in I.encode_pairs(tokenizer, examples["validation"]) if max(len(p[0][0]), len(p[1][0])) <= block]
test_pairs = [p for p in I.encode_pairs(tokenizer, test) if max(len(p[0][0]), len(p[1][0])) <= block]
reference = copy.deepcopy(sft_model).eval()
policy = copy.deepcopy(sft_model)
dpo_beta = 0.5
dpo_steps = 20 if SMOKE else 200


def dpo_eval(model):
    return D.preference_metrics(model, reference, val_pairs, pad_id, beta=dpo_beta)


dpo_config = dataclasses.replace(sft_config, max_steps=dpo_steps, batch_size=8, lr=2e-4, min_lr=2e-5,
                                 warmup_steps=min(20, dpo_steps // 5), eval_every=max(dpo_steps // 10, 1))
dpo_run = train(policy, D.dpo_batches(train_pairs, 8, pad_id), config=dpo_config,
                loss_fn=D.dpo_loss_fn(reference, dpo_beta), eval_fn=dpo_eval)
policy.eval()
h = dpo_run.history
fig, ax = plt.subplots(1, 2, figsize=(10, 3.5))
ax[0].plot([r["step"] for r in h], [r["val_accuracy"] for r in h], marker="o")
ax[0].set_xlabel("DPO step"); ax[0].set_ylabel("preference accuracy")
ax[0].set_title("held-out pairs: chosen gets the higher log-probability")
ax[1].plot([r["step"] for r in h], [r["val_chosen_reward"] for r in h], label="chosen r_w")
ax[1].plot([r["step"] for r in h], [r["val_rejected_reward"] for r in h], label="rejected r_l")
ax[1].plot([r["step"] for r in h], [r["val_margin"] for r in h], label="margin r_w − r_l")
ax[1].set_xlabel("DPO step"); ax[1].set_ylabel("implicit reward (nats × β)")
ax[1].set_title("held-out pairs: implicit rewards r_w, r_l and the margin"); ax[1].legend()
plt.tight_layout(); plt.show()
assert h[0]["step"] == 0 and math.isclose(h[0]["val_loss"], math.log(2), rel_tol=1e-4)  # policy = reference
assert all(math.isfinite(r["train_loss"]) for r in h[1:])

# %%
pref = {"SFT": D.preference_metrics(sft_model, None, test_pairs, pad_id),
        "DPO": D.preference_metrics(policy, reference, test_pairs, pad_id, beta=dpo_beta)}
dpo_outputs = I.generate_answers(policy, tokenizer, test)
results["DPO"] = I.score(dpo_outputs, test)
for name, r in results.items():
    print(f"{name:>16}: exact match {r['exact_match']:.3f}  format {r['format']:.3f}  " +
          "  ".join(f"{t} {r.get('exact_match/' + t, 0):.2f}" for t in I.TASKS))
print({k: {m: round(v, 3) for m, v in d.items()} for k, d in pref.items()})
display(Markdown(
    f"On the test plays' pairs, the SFT model prefers the chosen answer in **{pref['SFT']['accuracy']:.1%}** of "
    f"pairs, the DPO model in **{pref['DPO']['accuracy']:.1%}** (mean reward margin "
    f"{pref['DPO']['margin']:+.3f}). Exact match: SFT {results['SFT']['exact_match']:.1%}, "
    f"DPO {results['DPO']['exact_match']:.1%}."))
if not SMOKE:  # on its own training pairs DPO must move past the reference (loss log 2 at step 0)
    assert sum(r["train_loss"] for r in h[-5:]) / 5 < math.log(2)
    assert pref["DPO"]["accuracy"] > pref["SFT"]["accuracy"]  # and rank the held-out pairs better than SFT did
raised = pref["DPO"]["accuracy"] > pref["SFT"]["accuracy"]
display(Markdown(f"Did DPO raise the held-out preference accuracy over SFT? **{'yes' if raised else 'no'}** "
                 f"({pref['SFT']['accuracy']:.1%} → {pref['DPO']['accuracy']:.1%}; {SETTING} setting)."))

# %% [markdown]
# ## 9. Where RLHF with PPO and GRPO fit
#
# **PPO** (Ouyang et al., 2022, InstructGPT): first train a separate *reward model* on the preference pairs
# (the Bradley–Terry likelihood of step 1, with $r$ a network); then let the policy *generate* answers,
# score them with the reward model, and update the policy with proximal policy optimisation, a
# policy-gradient method that clips each update and estimates advantages with a learned value network,
# while a KL penalty to the SFT model (step 2's objective) keeps it from drifting into text that fools the
# reward model. Four models in memory (policy, reference, reward, value) and sampling in the loop: powerful,
# and much harder to tune than DPO, which optimises the same objective in closed form from fixed pairs.
#
# **GRPO** (Shao et al., 2024, DeepSeekMath) drops the value network: for each prompt it samples a group
# of answers, scores each (often with a *verifiable* reward: is the maths answer right, does the code
# pass its tests), and uses each answer's reward minus the group's mean, divided by the group's standard
# deviation, as its advantage, in a PPO-style clipped update with a KL penalty. Our tasks have exact
# answers, so they would suit GRPO: the reward is exact match.

# %% [markdown]
# ## 10. The full setting: a real instruction model with LoRA (Colab, T4)
#
# With a GPU and the internet, the same functions fine-tune a real small model: its own chat template is
# applied by `apply_chat_template` (`sft.encode_hf_conversation` masks it with the same rule), LoRA
# adapters train in fp16, and the course's loop runs the steps. Offline (CI, the book setting) this cell
# is skipped.

# %%
# NBVAL_IGNORE_OUTPUT
if SETTING == "full" and torch.cuda.is_available() and IN_COLAB:
    from datasets import load_dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from llm_from_scratch.lora import apply_lora

    name = "HuggingFaceTB/SmolLM2-135M-Instruct"
    hf_tok = AutoTokenizer.from_pretrained(name)
    hf_model = AutoModelForCausalLM.from_pretrained(name, torch_dtype=torch.float32)
    apply_lora(hf_model, r=16, alpha=32, target_modules=["q_proj", "v_proj"])
    rows = load_dataset("HuggingFaceH4/no_robots", split="train[:2000]")
    convs = [S.encode_hf_conversation(hf_tok, r["messages"], end_token="<|im_end|>") for r in rows
             if all(m["role"] in S.ROLES for m in r["messages"])]
    convs = [c for c in convs if len(c[0]) <= 512]
    torch.cuda.reset_peak_memory_stats()
    run = train(hf_model, S.sft_batches(convs, 8, hf_tok.pad_token_id or 0),
                config=TrainConfig(max_steps=300, batch_size=8, lr=2e-4, warmup_steps=20, eval_every=100,
                                   precision="fp16", progress=True), loss_fn=S.sft_loss)
    print(f"SFT loss {run.history[-1]['train_loss']:.3f}; peak GPU memory "
          f"{torch.cuda.max_memory_allocated() / 2**30:.2f} GiB")
else:
    print("skipped: the full setting needs Colab (a GPU and the internet); the setting here is", SETTING)

# %% [markdown]
# ## What to try
#
# - Train SFT on the labels of *every* token (no masking) and compare exact match and format: the model
#   also learns to write questions.
# - Raise and lower β: a small β lets the policy drift far from the SFT model (watch exact match), a large
#   one keeps it close (watch the preference accuracy).
# - Apply LoRA (`lora.apply_lora`) to the SFT and the DPO runs and compare with full fine-tuning.
# - Look at the `which_play` answers: can SFT teach knowledge the base model never saw?

# %% [markdown]
# ## Exercises
#
# Write each piece from this chapter, then run its cell: `check` compares it with `sft` and `dpo` and prints
# one line per failed test, with a hint. A cell that still says `raise NotImplementedError` prints
# "not attempted yet". Solutions: `chapters/solutions/15_instruction_tuning.ipynb`.

# %%
import torch
import torch.nn.functional as F
from llm_from_scratch.exercises import check

# %% [markdown]
# **15.1 The chat template and the SFT labels.** Encode a conversation (a list of `{"role", "content"}`
# dicts) in the template of section 2 and build its labels (section 3). Each turn is five pieces, each
# encoded on its own: the role's marker token (`tokenizer.vocab["<|user|>"]`, ...), a newline, the content
# (`tokenizer.encode(content, allowed_special="none")`: a typed `<|end|>` stays text), the `<|end|>` token, a
# newline. The labels equal the ids on an assistant's content and its `<|end|>` and are -100 everywhere
# else. Return `(input_ids, labels)`, two 1-D LongTensors. (`check` passes a small tokenizer with the chat
# tokens.)

# %%
# NBVAL_CHECK_OUTPUT
def encode_conversation(tokenizer, messages):
    ### BEGIN SOLUTION
    newline = tokenizer.encode("\n", allowed_special="none")
    end = [tokenizer.vocab["<|end|>"]]
    ids, labels = [], []
    for m in messages:
        marker = [tokenizer.vocab[f"<|{m['role']}|>"]]
        content = tokenizer.encode(m["content"], allowed_special="none")
        learn = m["role"] == "assistant"
        for piece, learned in [(marker, False), (newline, False), (content, learn), (end, learn), (newline, False)]:
            ids += piece
            labels += piece if learned else [-100] * len(piece)
    return torch.tensor(ids), torch.tensor(labels)
    ### END SOLUTION


check("15.1", encode_conversation)

# %% [markdown]
# **15.2 The log-probability of an answer.** DPO compares whole answers: $\log \pi(y \mid x)$ is the sum of
# the log-probabilities of the answer's tokens. Given logits (B, T, V) and aligned labels (B, T) (-100 off
# the answer), return (B,): $\sum_t \log\mathrm{softmax}(\text{logits}_t)[\text{labels}_{t+1}]$ over the $t$
# whose label $t + 1$ is kept (the logits at position $t$ score the token at $t + 1$).

# %%
# NBVAL_CHECK_OUTPUT
def sequence_logprobs(logits, labels):
    ### BEGIN SOLUTION
    logp = torch.log_softmax(logits[:, :-1].float(), dim=-1)  # position t scores token t + 1
    target = labels[:, 1:]
    keep = target != -100
    picked = logp.gather(-1, target.clamp(min=0)[..., None])[..., 0]  # clamp: -100 is no index
    return (picked * keep).sum(-1)
    ### END SOLUTION


check("15.2", sequence_logprobs)

# %% [markdown]
# **15.3 The DPO loss and its rewards.** From the four (N,) log-probabilities of section 7, return
# `(loss, chosen_rewards, rejected_rewards)` with $r_w = \beta(\log\pi(y_w|x) - \log\pi_{ref}(y_w|x))$,
# $r_l$ likewise, and $L = \mathrm{mean}(-\log\sigma(r_w - r_l))$. Compute $-\log\sigma(z)$ as
# $\mathrm{softplus}(-z)$: for a margin of hundreds of nats, $\sigma(z)$ rounds to 0 and its log is $-\infty$.

# %%
# NBVAL_CHECK_OUTPUT
def dpo_loss(policy_chosen_logps, policy_rejected_logps, ref_chosen_logps, ref_rejected_logps, beta=0.1):
    ### BEGIN SOLUTION
    chosen_rewards = beta * (policy_chosen_logps - ref_chosen_logps)
    rejected_rewards = beta * (policy_rejected_logps - ref_rejected_logps)
    loss = F.softplus(rejected_rewards - chosen_rewards).mean()  # −log σ(r_w − r_l)
    return loss, chosen_rewards.detach(), rejected_rewards.detach()
    ### END SOLUTION


check("15.3", dpo_loss)
