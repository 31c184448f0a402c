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
# # 08 · Fine-tuning for classification: a head, frozen layers and LoRA
#
# Pretraining taught a GPT to continue Shakespeare. Here we reuse what it learned for a different job:
# reading a passage it has never seen and saying whether it comes from a **comedy, a history or a
# tragedy**. By the end of this chapter you will be able to put a classification head on a pretrained
# backbone, pick the one hidden state a causal model should classify from (and not a padding token),
# write the classification loss from its formula, and choose what to train: the head alone (frozen),
# the last blocks, everything, or low-rank LoRA updates. You will compare the four in one table and read
# a confusion matrix. A last section runs the same code on `bert-base-uncased` and SST-2 in Colab.
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/llm-from-scratch/llm-from-scratch/blob/main/chapters/08_finetune_classification.ipynb)

# %%
import sys
if "google.colab" in sys.modules:  # Colab: install the course package alone (Colab keeps its torch); a no-op elsewhere
    import subprocess
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                    "git+https://github.com/llm-from-scratch/llm-from-scratch"], check=True)
import copy
from collections import Counter

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F

from llm_from_scratch import finetune as FT
from llm_from_scratch import metrics as M
from llm_from_scratch.data import load_shakespeare
from llm_from_scratch.losses import cross_entropy
from llm_from_scratch.tasks import genre_task, majority_class
from llm_from_scratch.utils import current_setting, seed_everything
SETTING = current_setting()  # "smoke" (CI), "book" (a CPU: the default) or "full" (a GPU)
generator = seed_everything(0)

# %% [markdown]
# ## 1. The task: which kind of play is this passage from?
#
# We cut every play into passages of a few hundred characters (speaker names kept, stage directions
# dropped) and label each with the genre of its play. The split is the course's one split **by play**:
# the passages of `test` come from five plays (*Henry V*, *Much Ado About Nothing*, *Othello*, *Titus
# Andronicus*, *The Winter's Tale*) that the backbone never saw during pretraining. So a model cannot
# win by remembering lines; it has to recognise how comedies, histories and tragedies *sound*.

# %%
works = load_shakespeare(progress=False)
PASSAGE_CHARS = 256
task = genre_task(works, passage_chars=PASSAGE_CHARS, max_per_work=8 if SETTING == "smoke" else None)
print(task)
for part in ("train", "test"):
    counts = Counter(task.label_names[e.label] for e in getattr(task, part))
    print(f"{part:>5}:", dict(sorted(counts.items())))
example = task.test[3]
print(f"\na test passage from {example.source} ({task.label_names[example.label]}):\n{example.text[:200]}")

# %% [markdown]
# ## 2. The baseline to beat
#
# A classifier that always answers the most frequent training class needs no model at all. Its
# **accuracy** is the share of that class in the test set; its **macro-F1**, the mean over classes of
# F1_c = 2·P_c·R_c / (P_c + R_c), is low, because two of the three classes get F1 = 0. Macro-F1 is the
# number that a model which ignores the rare classes cannot fake.

# %%
majority = majority_class(task)
y_test = [e.label for e in task.test]
baseline = {"accuracy": M.accuracy(y_test, [majority] * len(y_test)),
            "macro_f1": M.macro_f1(y_test, [majority] * len(y_test), num_classes=3)}
print("majority class:", task.label_names[majority])
print({k: round(v, 4) for k, v in baseline.items()})

# %% [markdown]
# ## 3. The backbone
#
# We start from the character GPT that chapter 07 trained in the book setting and saved in
# `runs/shakespeare-char-cpu` (`make demo` writes the same model). On a CPU without it, the chapter
# stops and says what to run: pretraining a larger backbone here would take hours. On a GPU (Colab)
# without it, the chapter first pretrains a 6-layer character GPT on the training plays, with a
# progress bar. In the smoke setting (CI) a 2-layer GPT pretrained for a few seconds stands in: it
# has learned little, and CI only checks that every step below runs.

# %%
# NBVAL_IGNORE_OUTPUT
from llm_from_scratch.backbones import chapter_backbone

# chapter 07's checkpoint (book, full), or a 2-layer GPT pretrained here in seconds (smoke)
backbone, tokenizer, source = chapter_backbone(SETTING)
print(source)
print(f"{backbone.num_parameters():,} parameters; context {backbone.config.block_size} tokens; "
      f"vocabulary {tokenizer.vocab_size}")
assert backbone.config.block_size >= 32

# %% [markdown]
# ## 4. Which hidden state to classify from
#
# The backbone turns ids (B, T) into hidden states h (B, T, H). A classifier needs **one** vector per
# passage. A GPT is causal: position t has seen tokens 0..t and nothing after. Only the **last real
# token** has read the whole passage, so that is the one to pool.
#
# Passages have different lengths, so a batch is **right-padded** to the longest, with an attention
# mask that is 1 on real tokens. "The last position" of a short passage is then a pad, which has read
# pads. The right index is $\text{len}_i - 1 = \sum_t \text{mask}_{it} - 1$. (A BERT reads both ways, so
# its first token, [CLS], or the mean over real tokens work as well.)
#
# Two passages of 5 and 8 characters, padded to 8:

# %%
# NBVAL_CHECK_OUTPUT
ids_a = tokenizer.encode("Away!")
ids_b = tokenizer.encode("O Romeo.")
input_ids, mask = FT.pad([ids_a, ids_b], pad_value=0)
print("attention mask:\n", mask.int())
last = mask.sum(dim=1) - 1
print("index of the last real token:", last.tolist())
backbone.eval()
with torch.no_grad():
    h = backbone.forward_hidden(input_ids)                       # (2, 8, H)
    pooled = FT.pool_hidden(h, mask, "last")                     # (2, H)
    alone = backbone.forward_hidden(torch.tensor([ids_a]))[0, -1]  # passage a, no padding at all
print("h: (2, 8, H) ->", "pooled: (2, H);", "shapes agree:", h.shape[:2] == (2, 8) and pooled.shape == (2, h.shape[-1]))
print("pooled[0] equals the unpadded passage's last state:", torch.allclose(pooled[0], alone, atol=1e-5))
print("...and differs from what sits at position 7 (a pad):", not torch.allclose(pooled[0], h[0, 7], atol=1e-3))

# %% [markdown]
# ## 5. The classification loss, by hand
#
# A linear head maps the pooled vector to one score per class, $z_i = W h_i + b$, and softmax turns the
# scores into probabilities $P(c \mid x_i) = e^{z_{ic}} / \sum_k e^{z_{ik}}$. Training minimises
#
# $$L_{cls}(\theta) = -\sum_i \log P(y_i \mid x_i; \theta)$$
#
# (we average over the batch instead of summing: the same minimiser, a learning rate that does not
# depend on the batch size). Two passages, three classes:

# %%
# NBVAL_CHECK_OUTPUT
z = torch.tensor([[2.0, 0.5, -1.0],    # passage 1: true class 0 (comedy)
                  [0.1, 0.2, 1.5]])    # passage 2: true class 2 (tragedy)
y = torch.tensor([0, 2])
p = torch.exp(z) / torch.exp(z).sum(dim=1, keepdim=True)
print("P(c | x):", [[round(v, 4) for v in row] for row in p.tolist()])
by_hand = -(torch.log(p[0, 0]) + torch.log(p[1, 2])) / 2
print("L_cls by hand:", round(by_hand.item(), 4))
print("losses.cross_entropy:", round(cross_entropy(z, y).item(), 4), " torch:", round(F.cross_entropy(z, y).item(), 4))
assert torch.allclose(by_hand, cross_entropy(z, y)) and torch.allclose(by_hand, F.cross_entropy(z, y))

# %% [markdown]
# ## 6. This is `llm_from_scratch.finetune.SequenceClassifier`
#
# The head we just described, on any GPT or BERT backbone: backbone → pool (last real token for a GPT)
# → dropout → linear → logits, and `losses.cross_entropy` when labels are given.

# %%
# NBVAL_CHECK_OUTPUT
clf = FT.SequenceClassifier(copy.deepcopy(backbone), num_classes=3).eval()
labels = torch.tensor([0, 2])
logits, loss = clf(input_ids, mask, labels=labels)
with torch.no_grad():
    manual = clf.head(FT.pool_hidden(clf.backbone.forward_hidden(input_ids), mask, "last"))
print("logits:", tuple(logits.shape))
print("head(pool(h)) equals the classifier's logits:", torch.allclose(logits, manual, atol=1e-6))
print("its loss is L_cls of its logits:", torch.allclose(loss, cross_entropy(logits, labels)))

# %% [markdown]
# ### One fine-tuning step, by hand
#
# Everything a fine-tuning step does, written out: freeze the backbone (the **frozen** method: only
# the head's $W$ and $b$ train), give AdamW only the trainable parameters (weight decay on $W$, not
# on $b$), then for each batch: read the hidden states, **pool** them (the mean over each passage's
# real tokens, which `finetune_task` uses on a GPT, section 8), apply dropout and the **head**, take
# $L_{cls}$, backpropagate, clip, and step. We run it for five steps next to the package's loop
# (`finetune.fit`, which `finetune_task` calls) on a copy of the same model, with the same batches,
# the same learning-rate schedule and the same seed; both must end with the same weights.

# %%
# NBVAL_CHECK_OUTPUT
from llm_from_scratch.train import TrainConfig, learning_rate, shuffled_batches
from llm_from_scratch.utils import seed_everything

ft_config = FT.FinetuneConfig(method="frozen", steps=5, batch_size=8, max_len=PASSAGE_CHARS, device="cpu")
max_len = min(PASSAGE_CHARS, backbone.config.block_size)
train_data = FT.encode_examples(task.train, tokenizer, "classification", max_len)
batches = shuffled_batches(len(train_data), ft_config.batch_size, train_data.collate, seed=ft_config.seed)
# The schedule finetune.fit uses: AdamW, linear warmup, then a cosine.
schedule = TrainConfig(max_steps=ft_config.steps, batch_size=ft_config.batch_size, lr=ft_config.learning_rate,
                       warmup_steps=min(ft_config.warmup_steps, ft_config.steps - 1),
                       weight_decay=ft_config.weight_decay, seed=ft_config.seed)

torch.manual_seed(0)
by_hand = FT.SequenceClassifier(copy.deepcopy(backbone), num_classes=3, pooling="mean", dropout=ft_config.dropout)
package_model = copy.deepcopy(by_hand)  # the same initial head

FT.freeze(by_hand.backbone)  # frozen: the backbone's weights get no gradient
seed_everything(ft_config.seed)  # the dropout masks: the package's loop seeds the same way
optimizer = torch.optim.AdamW([{"params": [by_hand.head.weight], "weight_decay": schedule.weight_decay},
                               {"params": [by_hand.head.bias], "weight_decay": 0.0}],
                              lr=schedule.lr, betas=schedule.betas, eps=schedule.eps, foreach=True)
by_hand.train()
hand_losses = []
for step in range(ft_config.steps):
    for group in optimizer.param_groups:
        group["lr"] = learning_rate(step, schedule)
    batch = batches(step)
    h = by_hand.backbone.forward_hidden(batch["input_ids"])  # (B, T, H)
    pooled = FT.pool_hidden(h, batch["attention_mask"], "mean")  # (B, H): mean over real tokens
    logits = by_hand.head(by_hand.dropout(pooled))  # (B, 3)
    loss = cross_entropy(logits, batch["labels"])  # L_cls, averaged over the batch
    loss.backward()
    torch.nn.utils.clip_grad_norm_(by_hand.parameters(), schedule.grad_clip)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    hand_losses.append(loss.item())

package_run = FT.fit(FT.setup_method(package_model, "frozen"), train_data, ft_config)
same_loss = package_run.history[-1]["train_loss"] == sum(hand_losses) / len(hand_losses)
same_weights = all(torch.equal(a, b) for a, b in zip(by_hand.state_dict().values(), package_model.state_dict().values()))
print(f"{ft_config.steps} steps: mean loss by hand == finetune.fit's: {same_loss}; all weights identical: {same_weights}")
H = by_hand.hidden_size
print("trainable parameters: 3·H + 3 by hand:", FT.count_trainable_parameters(by_hand) == 3 * H + 3,
      "| the same in the package's model:", FT.count_trainable_parameters(package_model) == 3 * H + 3)
assert same_loss and same_weights

# %% [markdown]
# ## 7. What to train: four choices, and a fifth
#
# | method | trains | why |
# |---|---|---|
# | frozen | the head only | the backbone is a fixed feature extractor: cheapest, works if the features already carry the task |
# | last-n | the head + the last n blocks (+ the final LayerNorm) | the top layers are the most task-specific; the bottom ones stay general |
# | full | everything | the most capacity; also the most memory (gradients and two Adam moments for every weight) |
# | LoRA | the head + a low-rank update of every attention and MLP matrix | nearly full quality at a fraction of the trainable parameters |
# | gradual unfreezing | the head first, then one more block from the top in each phase | the fresh head settles before it can send large, random gradients into pretrained layers |
#
# **LoRA** (Hu et al., 2021) keeps each pretrained matrix $W_0$ (out × in) frozen and learns its change as
# a product of two thin matrices:
#
# $$h = W_0 x + \frac{\alpha}{r} B A x, \qquad A \in \mathbb{R}^{r \times \text{in}},\; B \in \mathbb{R}^{\text{out} \times r}$$
#
# $B$ starts at zero, so the adapted model starts out computing exactly what the pretrained one did;
# each layer trains $r(\text{in} + \text{out})$ numbers instead of $\text{in} \cdot \text{out}$. The
# trainable parameters of each choice, for this backbone:

# %%
counts = {}
for method in FT.METHODS:
    model = FT.setup_method(FT.SequenceClassifier(copy.deepcopy(backbone), 3), method, n_layers=1, lora_r=8)
    counts[method] = FT.count_trainable_parameters(model)
total = FT.count_parameters(FT.SequenceClassifier(copy.deepcopy(backbone), 3))
for method, n in counts.items():
    print(f"{method:>7}: {n:>9,} trainable ({100 * n / total:5.1f}% of {total:,})")
assert counts["frozen"] < counts["lora"] < counts["last-n"] < counts["full"] == total

# %% [markdown]
# **Gradual unfreezing** (Howard and Ruder's ULMFiT, 2018) is a schedule over the others: phase 0
# trains the head alone (frozen), phase 1 also the top block, phase 2 the top two, and so on,
# typically one epoch per phase, until everything trains. A randomly initialised head sends large,
# meaningless gradients at first; by the time the lower layers unfreeze, the head has settled and
# their general features are disturbed less. With the package it is `freeze`, then
# `unfreeze_last(backbone, k)` at the start of phase k (and a new optimizer over the parameters that
# now train). What trains in each phase, for this backbone:

# %%
phase_model = FT.SequenceClassifier(copy.deepcopy(backbone), 3)
n_blocks = len(phase_model.backbone.transformer.h)
for phase in range(n_blocks + 1):
    FT.freeze(phase_model.backbone)
    if phase > 0:
        FT.unfreeze_last(phase_model.backbone, phase)
    print(f"phase {phase}: the head + the top {phase} of {n_blocks} blocks -> "
          f"{FT.count_trainable_parameters(phase_model):,} trainable parameters")

# %% [markdown]
# After training, LoRA's update folds back into the weight, $W = W_0 + \frac{\alpha}{r}BA$
# (`lora.merge_lora`), and the model is a plain model again with nothing extra to compute. The merged
# model gives the same outputs (here after giving B random values, as training would):

# %%
# NBVAL_CHECK_OUTPUT
from llm_from_scratch.lora import LoRALinear, apply_lora, merge_lora

lora_model = FT.SequenceClassifier(copy.deepcopy(backbone), 3).eval()
with torch.no_grad():
    h_before = lora_model.backbone.forward_hidden(input_ids)
apply_lora(lora_model.backbone, r=4, alpha=8)
with torch.no_grad():
    start_same = torch.equal(lora_model.backbone.forward_hidden(input_ids), h_before)
    for m in lora_model.modules():
        if isinstance(m, LoRALinear):
            m.lora_B.normal_(0, 0.02)
    before_merge = lora_model(input_ids, mask)[0]
    merge_lora(lora_model)
    after_merge = lora_model(input_ids, mask)[0]
print("B = 0: LoRA leaves the backbone's output unchanged:", start_same)
print("merged equals unmerged:", torch.allclose(before_merge, after_merge, atol=1e-5))
print("LoRA layers left after merging:", sum(isinstance(m, LoRALinear) for m in lora_model.modules()))

# %% [markdown]
# ## 8. Fine-tuning, four ways
#
# `finetune.finetune_task` puts the head on a copy of the backbone, sets up the method, trains with the
# course's training loop (`train.train`: AdamW, warmup + cosine, gradient clipping) and evaluates on the
# test plays. Fresh parameters (the head, LoRA's matrices) take a larger learning rate (2e-3) than
# pretrained ones (3e-4). One change from section 6: `finetune_task` pools a GPT by the **mean** over the
# passage's real tokens (`FinetuneConfig.pooling`, "mean" by default on a GPT). A character GPT's last
# state is mostly about the next character, while the mean keeps something of every character of
# the passage (exercise 3 of "What to try" compares the two).
# Times and scores vary by machine, so nbval does not compare this cell.
#
# Two constant answers frame the table. The **majority class** is the class most frequent in the
# *training* passages: the best a model-free classifier can know in advance. The **best constant in
# hindsight** is the single class that would score best on the *test* passages, a choice made by
# looking at the test labels; it is a stricter line to beat, and no real classifier could pick it.

# %%
# NBVAL_IGNORE_OUTPUT
config = dict(steps={"smoke": 30, "book": 1500, "full": 1500}[SETTING], batch_size=16 if SETTING == "smoke" else 32,
              max_len=PASSAGE_CHARS, n_layers=1)
results = {}
for method in FT.METHODS:
    results[method] = FT.finetune_task(task, copy.deepcopy(backbone), tokenizer, FT.FinetuneConfig(method=method, **config))
print(f"{'method':>8} {'accuracy':>9} {'macro-F1':>9} {'trainable':>10} {'time':>7}")
print(f"{'baseline':>8} {baseline['accuracy']:>9.3f} {baseline['macro_f1']:>9.3f} {0:>10,} {'-':>7}")
for method, r in results.items():
    print(f"{method:>8} {r.metrics['accuracy']:>9.3f} {r.metrics['macro_f1']:>9.3f} "
          f"{r.trainable_parameters:>10,} {r.seconds:>6.1f}s")
for r in results.values():
    assert 0 <= r.metrics["accuracy"] <= 1 and 0 <= r.metrics["macro_f1"] <= 1
    assert r.baseline == baseline  # the hand-computed baseline of section 2 is the package's
from IPython.display import Markdown, display

constant = {c: {"accuracy": M.accuracy(y_test, [c] * len(y_test)),
                "macro_f1": M.macro_f1(y_test, [c] * len(y_test), num_classes=3)} for c in range(3)}
hindsight = max(constant, key=lambda c: constant[c]["macro_f1"])
best_method = max(results, key=lambda m: results[m].metrics["macro_f1"])
margin = results[best_method].metrics["macro_f1"] - constant[hindsight]["macro_f1"]
display(Markdown(
    f"On the {len(y_test):,} test passages: the majority class of the training plays "
    f"({task.label_names[majority]}) scores accuracy {baseline['accuracy']:.3f}, macro-F1 {baseline['macro_f1']:.3f}; "
    f"the best constant in hindsight ({task.label_names[hindsight]}) {constant[hindsight]['accuracy']:.3f} / "
    f"{constant[hindsight]['macro_f1']:.3f}. The best method, **{best_method}**, reaches "
    f"accuracy **{results[best_method].metrics['accuracy']:.3f}** and macro-F1 "
    f"**{results[best_method].metrics['macro_f1']:.3f}**, {margin:+.3f} macro-F1 over the best constant."))
if SETTING != "smoke":  # the payoff: fine-tuning beats every constant answer by a clear margin
    assert margin > 0.1, margin

# %% [markdown]
# In the smoke setting the backbone has barely trained, so the table only shows that every method
# runs. In the book setting the backbone is chapter 07's model, and the sentence under the table
# gives the margin over the best constant answer.
#
# ## 9. Where the mistakes are: the confusion matrix
#
# Row t, column p counts the test passages of true genre t that the model called p. The diagonal is
# what it got right; a bright off-diagonal cell is a pair of genres it confuses (histories and
# tragedies share kings, battles and deaths).

# %%
# NBVAL_IGNORE_OUTPUT
best = max(results.values(), key=lambda r: r.metrics["macro_f1"])
test_data = FT.encode_examples(task.test, tokenizer, "classification", min(PASSAGE_CHARS, backbone.config.block_size))
predictions = FT.predict(best.model, test_data)
cm = M.confusion_matrix(test_data.labels, predictions, num_classes=3)
assert cm.sum().item() == len(task.test)
fig, ax = plt.subplots(figsize=(4.2, 3.6))
ax.imshow(cm, cmap="Blues")
for t in range(3):
    for p_ in range(3):
        ax.text(p_, t, int(cm[t, p_]), ha="center", va="center")
ax.set_xticks(range(3), task.label_names)
ax.set_yticks(range(3), task.label_names)
ax.set_xlabel("predicted")
ax.set_ylabel("true")
ax.set_title(f"{best.method}: the diagonal is right, off-diagonal = confusions")
plt.tight_layout()
plt.show()
used = sorted(set(predictions))
print("classes the model predicts:", [task.label_names[c] for c in used])
if SETTING != "smoke":  # not a constant classifier
    assert len(used) >= 2

# %% [markdown]
# ## 10. The same code on BERT: `bert-base-uncased` on SST-2 (Colab)
#
# The heads take any backbone that maps ids to hidden states. With `BertModel.from_hf_bert` (chapter 05)
# and the hub's SST-2 (movie-review sentiment, `tasks.load_hub_task("sst2")`), the documents' BERT
# example is a few lines: [CLS] pooling (chapter 05), full fine-tuning at 2e-5 for 2,000 steps of 32.
# It downloads 440 MB and wants a GPU, so it runs only in Colab (set `RUN_BERT = True` elsewhere to
# run it anyway); it then prints its own accuracy beside the baseline's. It was not run for the
# outputs in this notebook, so no accuracy is quoted here.
#
# **Choosing a pretrained model.** Here the choice was made for us; in practice weigh five things.
# The *task*: an encoder (BERT-like, reads both ways) for classifying and tagging, a decoder
# (GPT-like) for generating. The *size*: the largest model that fits your memory and time for
# fine-tuning (full fine-tuning with AdamW needs about 16 bytes per parameter in fp32; LoRA much
# less). The *licence*: whether you may use it for your purpose. The *tokenizer*: trained on text
# like yours (a model whose tokenizer splits your domain's words into many pieces sees less of each
# passage). The *context length*: at least your inputs' length. Then tune the learning rate on the
# validation set, starting from the small rates fine-tuning needs (2e-5 to 5e-5 for full
# fine-tuning of BERT; larger for fresh heads and LoRA), as chapter 04's range test shows.

# %%
RUN_BERT = "google.colab" in sys.modules and SETTING != "smoke"
if RUN_BERT:
    from transformers import AutoTokenizer

    from llm_from_scratch.bert import BertModel
    from llm_from_scratch.hub_data import load_hub_task

    hf_tok = AutoTokenizer.from_pretrained("bert-base-uncased")
    sst2 = load_hub_task("sst2")

    class HFTokenizer:  # our encode() interface on the HF tokenizer: [CLS] text [SEP]
        def encode(self, text):
            return hf_tok(text, truncation=True, max_length=128)["input_ids"]

    bert_cfg = FT.FinetuneConfig(method="full", steps=2000, batch_size=32, lr=2e-5, max_len=128, warmup_steps=100)
    bert_result = FT.finetune_task(sst2, BertModel.from_hf_bert("bert-base-uncased"), HFTokenizer(), bert_cfg,
                                   pad_id=hf_tok.pad_token_id)
    print(FT.format_comparison(bert_result))
else:
    print("BERT example skipped (runs in Colab; set RUN_BERT = True to run it here)")

# %% [markdown]
# ## 11. No head at all: adapting the language model to the Sonnets
#
# The documents' "fine-tune GPT on a custom dataset" needs no new head: keep training the language
# model itself, with the same next-token loss, on the new text. Our GPT was pretrained on the plays;
# the Sonnets are verse of another kind (fourteen lines, a fixed rhyme scheme, "thee" and "thy"
# everywhere). `tasks.poems_task` keeps every tenth sonnet aside; **perplexity** $= \exp(\text{mean
# NLL})$ on those, before and after fine-tuning on the others, says how much the model adapted.
# (`frozen` makes no sense here, there is no head to train; LoRA works as before.)

# %%
# NBVAL_IGNORE_OUTPUT
from llm_from_scratch.tasks import poems_task

poems = poems_task(works)
print(poems)
adapted = FT.finetune_task(poems, copy.deepcopy(backbone), tokenizer,
                           FT.FinetuneConfig(method="lora", steps=20 if SETTING == "smoke" else 500, batch_size=16,
                                             max_len=backbone.config.block_size))
drop = 1 - adapted.metrics["perplexity"] / adapted.baseline["perplexity"]
display(Markdown(f"Perplexity on the held-out sonnets: **{adapted.baseline['perplexity']:.2f}** before, "
                 f"**{adapted.metrics['perplexity']:.2f}** after ({drop:.0%} lower), after training "
                 f"{adapted.trainable_parameters:,} LoRA parameters on {len(poems.train)} sonnets."))
assert adapted.metrics["perplexity"] < adapted.baseline["perplexity"]

# %% [markdown]
# ## What to try
#
# 1. **Rank and α.** Rerun LoRA with `lora_r` = 1, 4, 16 and 64. How does the accuracy move with the
#    number of trainable parameters? Where does it stop paying?
# 2. **How many layers?** Compare `last-n` with `n_layers` = 1, 2, and all of them (it is then `full`
#    without the embeddings). Which layers carry genre?
# 3. **Pooling.** Rerun section 8 with `FinetuneConfig(pooling="last")`: the last token is the only state
#    that read the whole passage, the mean mixes states that read 1, 2, ... tokens. Which scores better
#    on a character model, and why?
# 4. **From the command line.** `python -m llm_from_scratch finetune --task genre --checkpoint
#    runs/shakespeare-char-cpu --method lora --out runs/genre-lora` does sections 8 and 9 in one go (and
#    `--task poems` section 11), printing the test metrics beside the baseline's.

# %% [markdown]
# ## Exercises
#
# Write each piece from this chapter, then run its cell: `check` compares it with `finetune` and `lora` and
# prints one line per failed test, with a hint. A cell that still says `raise NotImplementedError` prints
# "not attempted yet". Solutions: `chapters/solutions/08_finetune_classification.ipynb`.

# %%
import math

import torch
import torch.nn as nn
from llm_from_scratch.exercises import check

# %% [markdown]
# **08.1 Last-token pooling with right padding.** hidden (B, T, H) and attention_mask (B, T), 1 on real
# tokens then 0 on padding. A causal model's summary of a sequence is the state of its last *real* token,
# at index $\sum_t \mathrm{mask}_t - 1$ (not $T - 1$). Return (B, H).

# %%
# NBVAL_CHECK_OUTPUT
def last_token_pool(hidden, attention_mask):
    ### BEGIN SOLUTION
    last = attention_mask.sum(dim=1) - 1
    return hidden[torch.arange(hidden.shape[0]), last]
    ### END SOLUTION


check("08.1", last_token_pool)

# %% [markdown]
# **08.2 A LoRA linear layer.** A class: `LoRALinear(base, r, alpha)` wraps an `nn.Linear`, freezes its
# weight and bias, and adds two trainable parameters, `lora_A` of shape (r, in) (random, e.g.
# `nn.init.kaiming_uniform_(A, a=math.sqrt(5))`) and `lora_B` of shape (out, r) (zeros, so the layer starts
# as `base`). `forward(x) = base(x) + (alpha / r) · x Aᵀ Bᵀ`.

# %%
# NBVAL_CHECK_OUTPUT
class LoRALinear(nn.Module):
    def __init__(self, base, r, alpha):
        super().__init__()
        ### BEGIN SOLUTION
        self.base, self.scaling = base, alpha / r
        for p in base.parameters():
            p.requires_grad_(False)
        self.lora_A = nn.Parameter(torch.empty(r, base.in_features))
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, r))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
        ### END SOLUTION

    def forward(self, x):
        ### BEGIN SOLUTION
        return self.base(x) + self.scaling * (x @ self.lora_A.T @ self.lora_B.T)
        ### END SOLUTION


check("08.2", LoRALinear)

# %% [markdown]
# **08.3 Mean pooling over real tokens.** $\sum_t m_t h_t / \sum_t m_t$: padding enters neither the sum nor
# the count. (B, T, H), (B, T) -> (B, H).

# %%
# NBVAL_CHECK_OUTPUT
def mean_pool(hidden, attention_mask):
    ### BEGIN SOLUTION
    m = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * m).sum(dim=1) / m.sum(dim=1)
    ### END SOLUTION


check("08.3", mean_pool)
