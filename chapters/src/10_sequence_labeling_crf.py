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
# # 10 · Sequence labelling: a softmax tagger, a CRF, the forward algorithm and Viterbi
#
# Some tasks want a label for every word: which words of this speech name a **person**, which a
# **place**? By the end of this chapter you will be able to tag words with BIO labels on top of a
# pretrained GPT, score the result the way CoNLL does (whole entities, not single words), and explain
# why a tagger that picks each tag on its own produces sequences that cannot exist (an `I-PER` right
# after an `O`), while a **conditional random field** (CRF), which scores whole tag sequences, cannot.
# You will compute the CRF's normaliser with the **forward algorithm** by hand on three words, check it
# against brute force, decode with **Viterbi**, and look at the transitions a CRF learns.
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/llm-from-scratch/llm-from-scratch/blob/main/chapters/10_sequence_labeling_crf.ipynb)

# %%
import sys
if "google.colab" in sys.modules:  # Colab: install the course package alone (Colab keeps its torch); a no-op elsewhere
    import subprocess
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                    "git+https://github.com/llm-from-scratch/llm-from-scratch"], check=True)
import copy
import itertools
from collections import Counter

import matplotlib.pyplot as plt
import torch

from llm_from_scratch import finetune as FT
from llm_from_scratch import metrics as M
from llm_from_scratch.crf import CRF, IMPOSSIBLE, bio_allowed, bio_violations
from llm_from_scratch.data import load_shakespeare
from llm_from_scratch.tasks import TAG_NAMES, GazetteerTagger, names_task, parse_play, play_persons
from llm_from_scratch.utils import current_setting, seed_everything
SETTING = current_setting()  # "smoke" (CI), "book" (a CPU: the default) or "full" (a GPU)
generator = seed_everything(0)

# %% [markdown]
# ## 1. The task: names and places in the dialogue
#
# **BIO** tags mark entities word by word: `B-PER` begins a person's name, `I-PER` continues it, `O` is
# outside any entity (likewise `B-LOC` / `I-LOC` for places). The labels come from each play's own
# lists: its **persons** (the *Dramatis Personae* at the top: "Iago, his Ancient.") and the **places**
# of the scene headings ("SCENE I. Venice. A street."). Speaker labels and stage directions are removed:
# only what the characters *say* is tagged. Silver labels, made by rules you can read in
# `llm_from_scratch/tasks.py`, and good enough to learn from.

# %%
works = load_shakespeare(progress=False)
othello = next(w for w in works if w.id == "othello")
print("persons of Othello (from its list):", sorted(play_persons(parse_play(othello))))
task = names_task(works, max_words=24, max_per_work=12 if SETTING == "smoke" else None)
print(task)
spans = Counter(k for e in task.train for k, _, _ in M.bio_spans(e.tags))
print("entities in train:", dict(spans))
# a short test sentence with as many entities as possible, to look at in section 9
example = min(task.test, key=lambda e: (-min(len(M.bio_spans(e.tags)), 2), len(e.tokens)))
print(" ".join(f"{w}/{t}" if t != "O" else w for w, t in zip(example.tokens, example.tags)))

# %% [markdown]
# ## 2. Scoring entities, and the baseline
#
# CoNLL scores **entities**: a predicted entity counts only if its type *and both boundaries* match a
# gold one. Precision = correct / predicted, recall = correct / gold, F1 = their harmonic mean. By hand:
# gold has *Brabantio* (PER) and *Venice* (LOC); the prediction finds *Venice* but calls *Signior
# Brabantio* one person, which does not match *Brabantio*:

# %%
# NBVAL_CHECK_OUTPUT
gold = [["O", "Signior", "Brabantio", "of", "Venice"]]
gold_tags = [["O", "O", "B-PER", "O", "B-LOC"]]
pred_tags = [["O", "B-PER", "I-PER", "O", "B-LOC"]]
print("gold spans:", M.bio_spans(gold_tags[0]), " predicted:", M.bio_spans(pred_tags[0]))
s = M.entity_scores(gold_tags, pred_tags)
print(f"P = {s.n_correct}/{s.n_pred} = {s.precision}, R = {s.n_correct}/{s.n_gold} = {s.recall}, F1 = {s.f1}")
assert (s.precision, s.recall, s.f1) == (0.5, 0.5, 0.5)

# %% [markdown]
# The **baseline** is a gazetteer: every entity string seen in the *training* plays, with its type,
# matched longest-first in a new sentence. It knows *Rome* and *England*, which every play mentions,
# but it has never met *Iago*: the test plays' own characters are exactly what it misses. A model has
# to learn what a name *looks like* in context to beat it.

# %%
gazetteer = GazetteerTagger(task.train)
gaz_pred = [gazetteer.tag(e.tokens) for e in task.test]
g = M.entity_scores([list(e.tags) for e in task.test], gaz_pred)
print(f"gazetteer on the test plays: P {g.precision:.3f}  R {g.recall:.3f}  F1 {g.f1:.3f}")
print("per type (P, R, F1, gold count):", {k: tuple(round(x, 3) for x in v) for k, v in g.per_type.items()})

# %% [markdown]
# ## 3. A softmax tagger picks each tag alone
#
# A **token tagger** puts a linear layer on every word's hidden state and takes a softmax over the five
# tags, independently per word: $P(y_t \mid x) = \text{softmax}(W h_t + b)_{y_t}$, trained with
# $-\sum_t \log P(y_t \mid x)$. Nothing stops it from choosing `O` for one word and `I-PER` for the next,
# a sequence that BIO cannot produce.
#
# ## 4. A CRF scores the whole sequence
#
# A linear-chain CRF adds a transition score $T_{ij}$ for tag $i$ followed by tag $j$ (plus start and end
# scores) to the per-word **emission** scores $E_{t,j}$ from the same linear layer:
#
# $$\text{score}(x, y) = s_{y_1} + \sum_{t=1}^{n} E_{t, y_t} + \sum_{t=2}^{n} T_{y_{t-1}, y_t} + e_{y_n},
# \qquad P(y \mid x) = \frac{\exp \text{score}(x, y)}{Z(x)}, \qquad Z(x) = \sum_{y'} \exp \text{score}(x, y')$$
#
# and trains on $L_{crf}(\theta) = -\sum_i \log P(y_i \mid x_i; \theta) = \sum_i \big(\log Z(x_i) - \text{score}(x_i, y_i)\big)$.
#
# $Z$ sums over $K^n$ sequences: 5 tags and 30 words make $10^{21}$. The **forward algorithm** sums them
# in $O(nK^2)$: $\alpha_t(j)$ = log of the summed exp-scores of all prefixes that end in tag $j$ at word $t$,
#
# $$\alpha_1(j) = s_j + E_{1,j}, \qquad \alpha_t(j) = \log\sum_i \exp\big(\alpha_{t-1}(i) + T_{ij}\big) + E_{t,j},
# \qquad \log Z = \log\sum_j \exp\big(\alpha_n(j) + e_j\big).$$
#
# By hand, on three words and three tags (O, B-PER, I-PER), with numbers small enough to follow:

# %%
# NBVAL_CHECK_OUTPUT
tags3 = ["O", "B-PER", "I-PER"]
E = torch.tensor([[1.0, 0.5, 0.0],     # word 1: "good"
                  [0.0, 2.0, 0.5],     # word 2: "Iago"
                  [1.5, 0.0, 0.5]])    # word 3: "!"
start = torch.tensor([0.5, 0.0, -1.0])
end = torch.tensor([0.0, 0.0, 0.5])
T = torch.tensor([[0.5, 0.0, -2.0],    # from O:     O->I-PER is unlikely
                  [0.0, -1.0, 1.0],    # from B-PER: B-PER->I-PER is likely
                  [0.0, 0.0, 0.5]])    # from I-PER
alpha = start + E[0]
print("alpha_1 =", [round(a, 4) for a in alpha.tolist()])
for t in (1, 2):
    alpha = torch.logsumexp(alpha[:, None] + T, dim=0) + E[t]
    print(f"alpha_{t + 1} =", [round(a, 4) for a in alpha.tolist()])
log_Z = torch.logsumexp(alpha + end, dim=0)
print("log Z (forward algorithm):", round(log_Z.item(), 4))

# %% [markdown]
# Brute force: write out all $3^3 = 27$ sequences, score each, sum. And the package's `CRF` with the same
# numbers in its parameters:

# %%
# NBVAL_CHECK_OUTPUT
def score(seq):
    s = start[seq[0]] + end[seq[-1]] + sum(E[t, y] for t, y in enumerate(seq))
    return s + sum(T[a, b] for a, b in zip(seq, seq[1:]))

all_seqs = list(itertools.product(range(3), repeat=3))
log_Z_brute = torch.logsumexp(torch.stack([score(s) for s in all_seqs]), dim=0)
crf = CRF(3)
with torch.no_grad():
    crf.start_transitions.copy_(start)
    crf.end_transitions.copy_(end)
    crf.transitions.copy_(T)
log_Z_crf = crf.log_partition(E[None])[0]
print(f"brute force over {len(all_seqs)} sequences: {log_Z_brute.item():.4f}   CRF.log_partition: {log_Z_crf.item():.4f}")
assert torch.allclose(log_Z, log_Z_brute) and torch.allclose(log_Z, log_Z_crf)

# %% [markdown]
# The training loss of one sentence is $L_{crf} = \log Z(x) - \text{score}(x, y)$ for its gold tags
# $y$. Say the gold tags of "good Iago !" are O, B-PER, O: its score by hand from the tables above,
# the loss, the same by brute force ($-\log$ of the gold sequence's share of all 27 exp-scores), and
# the package's `CRF.nll` (what `CRFTagger` trains with):

# %%
# NBVAL_CHECK_OUTPUT
gold_seq = (0, 1, 0)  # O, B-PER, O
score_gold = start[0] + E[0, 0] + T[0, 1] + E[1, 1] + T[1, 0] + E[2, 0] + end[0]  # s + E + T + E + T + E + e
L_crf = log_Z - score_gold
probs = torch.softmax(torch.stack([score(s) for s in all_seqs]), dim=0)
L_brute = -torch.log(probs[all_seqs.index(gold_seq)])
L_package = crf.nll(E[None], torch.tensor([gold_seq]))
print(f"score(gold) by hand {score_gold.item():.4f}  (the score function: {score(gold_seq).item():.4f})")
print(f"L_crf = log Z - score(gold) = {log_Z.item():.4f} - {score_gold.item():.4f} = {L_crf.item():.4f}")
print(f"brute force -log P(gold): {L_brute.item():.4f}   CRF.nll: {L_package.item():.4f}")
assert torch.allclose(L_crf, L_brute, atol=1e-5) and torch.allclose(L_crf, L_package, atol=1e-5)

# %% [markdown]
# ## 5. Viterbi: the best sequence
#
# Decoding wants $\arg\max_y \text{score}(x, y)$: the same recursion with **max** in place of log-sum-exp,
# plus a back-pointer per word and tag to read the winning path backwards. On our three words:

# %%
# NBVAL_CHECK_OUTPUT
best, back = start + E[0], []
for t in (1, 2):
    cand = best[:, None] + T            # (previous tag, next tag)
    back.append(cand.argmax(dim=0))
    best = cand.max(dim=0).values + E[t]
path = [int((best + end).argmax())]
for bp in reversed(back):
    path.insert(0, int(bp[path[0]]))
print("Viterbi by hand:", [tags3[i] for i in path], " score", round(score(path).item(), 4))
brute_best = max(all_seqs, key=lambda s: score(s).item())
print("brute force:    ", [tags3[i] for i in brute_best])
print("CRF.decode:     ", [tags3[i] for i in crf.decode(E[None])[0]])
assert list(brute_best) == path == crf.decode(E[None])[0]

# %% [markdown]
# ## 6. Forbidding what BIO forbids
#
# The CRF can do more than *prefer* valid transitions: `CRF.with_bio_constraints` fixes the forbidden
# ones (start → I-X, O → I-X, B-Y/I-Y → I-X with Y ≠ X) at a score of −10⁴, so no decoded path ever uses
# them. Allowed transitions for our five tags (rows: from, columns: to):

# %%
# NBVAL_CHECK_OUTPUT
allowed_start, allowed = bio_allowed(TAG_NAMES)
print(f"{'':>6}" + "".join(f"{t:>7}" for t in TAG_NAMES))
for i, t in enumerate(TAG_NAMES):
    print(f"{t:>6}" + "".join(f"{'yes' if a else '-':>7}" for a in allowed[i].tolist()))
print("may start with:", [t for t, a in zip(TAG_NAMES, allowed_start.tolist()) if a])

# %% [markdown]
# ## 7. Training both taggers
#
# Both sit on the same pretrained GPT (chapter 08's backbone). Words are joined by spaces and encoded;
# a word is represented by the hidden state of its **last** character, the first position that has seen
# the whole word (the GPT is causal). `finetune.TokenTagger` is the softmax tagger, `finetune.CRFTagger`
# the CRF; both are trained fully with the course's training loop. Scores vary by machine: nbval checks
# properties instead.

# %%
# NBVAL_IGNORE_OUTPUT
from llm_from_scratch.backbones import chapter_backbone

# chapter 07's checkpoint (book, full), or a 2-layer GPT pretrained here in seconds (smoke)
backbone, tokenizer, source = chapter_backbone(SETTING)
print("backbone:", source)
config = FT.FinetuneConfig(method="full", steps={"smoke": 30, "book": 1500, "full": 1500}[SETTING],
                           batch_size=16 if SETTING == "smoke" else 32, max_len=backbone.config.block_size)
softmax_run = FT.finetune_task(task, copy.deepcopy(backbone), tokenizer, config, crf=False)
crf_run = FT.finetune_task(task, copy.deepcopy(backbone), tokenizer, config, crf=True)
print(f"{'':>10} {'P':>6} {'R':>6} {'F1':>6} {'invalid sentences':>18} {'(positions)':>12}")
base = crf_run.baseline
print(f"{'gazetteer':>10} {base['precision']:>6.3f} {base['recall']:>6.3f} {base['f1']:>6.3f} {base['invalid_sequences']:>18} {base['bio_violations']:>12}")
for name, r in (("softmax", softmax_run), ("CRF", crf_run)):
    m = r.metrics
    print(f"{name:>10} {m['precision']:>6.3f} {m['recall']:>6.3f} {m['f1']:>6.3f} {m['invalid_sequences']:>18} {m['bio_violations']:>12}")
assert crf_run.metrics["invalid_sequences"] == 0  # a constrained CRF never decodes an invalid sequence
for r in (softmax_run, crf_run):
    assert all(0 <= r.metrics[k] <= 1 for k in ("precision", "recall", "f1"))
from IPython.display import Markdown, display

display(Markdown(
    f"On the test plays: gazetteer F1 {base['f1']:.3f}; softmax tagger F1 **{softmax_run.metrics['f1']:.3f}** "
    f"with {softmax_run.metrics['invalid_sequences']} invalid BIO sentences; CRF tagger F1 "
    f"**{crf_run.metrics['f1']:.3f}** with {crf_run.metrics['invalid_sequences']} (by construction)."))
if SETTING != "smoke":  # the payoff: both taggers beat the gazetteer on plays they have never seen
    assert crf_run.metrics["f1"] > base["f1"] + 0.1 and softmax_run.metrics["f1"] > base["f1"], (crf_run.metrics, base)

# %% [markdown]
# In the smoke setting the backbone has barely trained: the CRF answers `O` almost everywhere and the
# softmax tagger guesses names nearly at random. In the book setting (chapter 07's backbone, all the
# training sentences) the taggers are scored on the words that fit the backbone's 64-character
# context (the gazetteer on the same words), and the sentence under the table compares them. The
# taggers can find names they never saw in training, which the gazetteer cannot; the CRF's guarantee
# of valid sequences matters most where the per-word evidence is weak (a small backbone, little data).
#
# **Invalid BIO sequences.** The last two columns count the test sentences in which a tagger wrote
# `I-X` without a `B-X` or `I-X` before it, and the words where it did (`crf.bio_violations`, the
# complement of the transitions `bio_allowed` permits). The softmax tagger can do it whenever one word's best tag disagrees with its
# neighbour's; the constrained CRF has 0 by construction. (`metrics.entity_scores` follows CoNLL and
# reads such an orphan `I-X` as the start of an entity, so it is not simply lost, but the sequence is
# still one that no annotator could have written.)
#
# ## 8. What the CRF learned: its transition matrix
#
# Row = the previous tag, column = the next one. Look for the bright `B-PER → I-PER` cell (first names
# are followed by surnames) and the forbidden cells, pinned far below everything else.

# %%
# NBVAL_IGNORE_OUTPUT
learned = crf_run.model.crf
trans = torch.where(learned.allowed_transitions, learned.transitions, torch.tensor(IMPOSSIBLE))
shown = trans.detach().clamp(min=-3.0)  # forbidden = IMPOSSIBLE (-10^4): shown at -3, the bottom of the scale
fig, ax = plt.subplots(figsize=(4.6, 3.8))
im = ax.imshow(shown, cmap="viridis")
ax.set_xticks(range(5), TAG_NAMES, rotation=45)
ax.set_yticks(range(5), TAG_NAMES)
ax.set_xlabel("next tag")
ax.set_ylabel("previous tag")
ax.set_title("Learned transitions: forbidden ones are dark")
fig.colorbar(im)
plt.tight_layout()
plt.show()
assert (trans[~allowed] <= -1e3).all() and (trans[allowed] > -1e3).all()

# %% [markdown]
# ## 9. One sentence, both taggers
#
# A test sentence with the gold tags and each tagger's (the CRF's is its Viterbi path):

# %%
# NBVAL_IGNORE_OUTPUT
enc = FT.encode_examples([example], tokenizer, "tagging", backbone.config.block_size, TAG_NAMES)
n = len(enc.positions[0])
soft = [TAG_NAMES[i] for i in FT.predict(softmax_run.model, enc)[0]]
vit = [TAG_NAMES[i] for i in FT.predict(crf_run.model, enc)[0]]
print(f"{'word':>14} {'gold':>7} {'softmax':>8} {'CRF':>7}")
for w, gt, st, ct in zip(example.tokens[:n], example.tags[:n], soft, vit):
    print(f"{w:>14} {gt:>7} {st:>8} {ct:>7}")
assert bio_violations(vit, TAG_NAMES) == 0

# %% [markdown]
# ## What to try
#
# 1. **Unconstrained CRF.** Build `FT.CRFTagger(backbone, TAG_NAMES, bio_constraints=False)` and train it.
#    Does it learn to avoid `O → I-PER` from the data alone? How many invalid sequences does it decode?
# 2. **First or last character?** Encode with `word_position="first"` (what BERT would use). A causal
#    model's first character has not seen the rest of the word: how much F1 does that cost?
# 3. **CoNLL-2003 in Colab.** `tasks.load_hub_task("conll2003")` gives the same schema with PER, ORG,
#    LOC and MISC; train the CRF tagger on it with a BERT backbone (chapter 08, section 10).

# %% [markdown]
# ## Exercises
#
# Write the CRF's three computations for one sentence, then run each cell: `check` compares them with
# `llm_from_scratch.crf.CRF` and prints one line per failed test, with a hint. A cell that still says
# `raise NotImplementedError` prints "not attempted yet". Solutions:
# `chapters/solutions/10_sequence_labeling_crf.ipynb`.
#
# For one sentence: emissions $E$ (T, K); `start` (K,); `trans` (K, K), `trans[i, j]` the score of moving
# from tag $i$ to tag $j$; `end` (K,). The score of tags $y$ is
# $\mathrm{start}[y_0] + \sum_t E[t, y_t] + \sum_{t \ge 1} \mathrm{trans}[y_{t-1}, y_t] + \mathrm{end}[y_{T-1}]$.

# %%
import torch
from llm_from_scratch.exercises import check

# %% [markdown]
# **10.1 The score of a tag sequence.** Return score(x, y) as a 0-d tensor for `tags`, a list of T ints.

# %%
# NBVAL_CHECK_OUTPUT
def sequence_score(emissions, tags, start, trans, end):
    ### BEGIN SOLUTION
    s = start[tags[0]] + emissions[0, tags[0]]
    for t in range(1, len(tags)):
        s = s + trans[tags[t - 1], tags[t]] + emissions[t, tags[t]]
    return s + end[tags[-1]]
    ### END SOLUTION


check("10.1", sequence_score)

# %% [markdown]
# **10.2 The forward algorithm.** $\log Z = \log \sum_y \exp \mathrm{score}(x, y)$ in $O(TK^2)$:
# $\alpha_0 = \mathrm{start} + E[0]$; $\alpha_t(j) = \mathrm{logsumexp}_i(\alpha_{t-1}(i) + \mathrm{trans}[i, j]) + E[t, j]$;
# $\log Z = \mathrm{logsumexp}(\alpha_{T-1} + \mathrm{end})$. Return a 0-d tensor.

# %%
# NBVAL_CHECK_OUTPUT
def log_partition(emissions, start, trans, end):
    ### BEGIN SOLUTION
    alpha = start + emissions[0]  # (K,)
    for t in range(1, emissions.shape[0]):
        alpha = torch.logsumexp(alpha[:, None] + trans, dim=0) + emissions[t]
    return torch.logsumexp(alpha + end, dim=0)
    ### END SOLUTION


check("10.2", log_partition)

# %% [markdown]
# **10.3 Viterbi with the backtrace.** The same recursion with max instead of logsumexp,
# $\delta_t(j) = \max_i(\delta_{t-1}(i) + \mathrm{trans}[i, j]) + E[t, j]$, remembering the best $i$ for every
# $(t, j)$. Start the backtrace from $\arg\max(\delta_{T-1} + \mathrm{end})$ (the end scores count) and
# return the best tags as a list of T ints.

# %%
# NBVAL_CHECK_OUTPUT
def viterbi(emissions, start, trans, end):
    ### BEGIN SOLUTION
    delta, back = start + emissions[0], []
    for t in range(1, emissions.shape[0]):
        best, arg = (delta[:, None] + trans).max(dim=0)
        delta = best + emissions[t]
        back.append(arg)
    tag = int((delta + end).argmax())
    path = [tag]
    for arg in reversed(back):
        tag = int(arg[tag])
        path.append(tag)
    return path[::-1]
    ### END SOLUTION


check("10.3", viterbi)
