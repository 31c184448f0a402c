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
# # 13 · The encoder–decoder Transformer: cross-attention, teacher forcing, beam search
#
# The course has built an encoder (BERT, chapter 05) and a decoder (GPT, chapter 06). The original
# Transformer has both: an **encoder** reads a source sentence, a **decoder** writes a target sentence
# and, at every step, looks back at the source through **cross-attention**. By the end of this chapter
# you will be able to compute cross-attention by hand, draw the three masks of an encoder–decoder,
# train one with **teacher forcing**, decode with **greedy search** and **beam search**, and explain why
# a model that trains well can still drift when it reads its own outputs (**exposure bias**). The task
# needs no download: Shakespeare's First Folio of 1623 spells "Haue you had quiet Guard?", a modern
# edition "Have you had quiet guard?". The model learns to modernise the spelling, line by line.
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/llm-from-scratch/llm-from-scratch/blob/main/chapters/13_encoder_decoder.ipynb)

# %%
import sys
if "google.colab" in sys.modules:  # Colab: install the course package alone (Colab keeps its torch); a no-op elsewhere
    import subprocess
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                    "git+https://github.com/llm-from-scratch/llm-from-scratch"], check=True)
import math
import random
import time

import matplotlib.pyplot as plt
import torch
from IPython.display import Markdown, display

from llm_from_scratch import metrics as M
from llm_from_scratch.attention import MultiHeadAttention
from llm_from_scratch.seq2seq import EncoderDecoder, Seq2SeqConfig, beam_search, greedy_decode
from llm_from_scratch.spelling import CharVocab, WordTable, alignment_report, letters_only, word_for_word, words_only
from llm_from_scratch.tasks import spelling_pairs
from llm_from_scratch.utils import current_setting, seed_everything

SETTING = current_setting()  # "smoke" (CI, under a minute), "book" (CPU, under 20 min), "full" (GPU)
SMOKE = SETTING == "smoke"  # the CI setting
generator = seed_everything(0)
device = "cuda" if torch.cuda.is_available() else "cpu"
print("setting:", SETTING, "| device:", device)

# %% [markdown]
# ## 1. The task: First Folio spelling → modern spelling
#
# The corpus holds 35 plays twice. A **pair** is one Folio line and the modern line that says the same
# thing. The two texts also differ in speaker labels, stage directions and line breaks, so pairs must be
# found: `llm_from_scratch.spelling` keeps the spoken lines, gives each line a spelling-blind **key**
# (lower case, letters only, u=v, i=j=y, no "e", no doubled letters), lines up equal keys in order with
# `difflib` (like `diff` on two files), and pairs the lines left between two such anchors when their keys
# are at least 80% similar. A line that finds no partner is dropped and counted, never guessed. The split
# is the course's split by play: the test plays were never seen in training.

# %%
# NBVAL_CHECK_OUTPUT
train_pairs = spelling_pairs("train")
val_pairs = spelling_pairs("validation")
test_pairs = spelling_pairs("test")
print(f"pairs: train {len(train_pairs):,} | validation {len(val_pairs):,} | test {len(test_pairs):,}")
print(f"{'test play':<24} {'Folio lines':>11} {'aligned':>8} {'dropped':>8} {'share':>6}")
for r in alignment_report("test"):
    print(f"{r['work']:<24} {r['folio_lines']:>11,} {r['aligned']:>8,} {r['dropped']:>8,} {r['share']:>6.0%}")
assert {p["work"] for p in train_pairs}.isdisjoint({p["work"] for p in test_pairs})
for p in random.Random(0).sample(test_pairs, 5):
    print(f"  {p['folio']!r:<48} -> {p['modern']!r}")

# %% [markdown]
# ## 2. Scoring: character error rate and word accuracy
#
# The **edit distance** (Levenshtein) between two strings is the fewest insertions, deletions and
# substitutions that turn one into the other:
#
# $$d_{i,j} = \min\big(d_{i-1,j} + 1,\; d_{i,j-1} + 1,\; d_{i-1,j-1} + [a_i \ne b_j]\big), \qquad
# \text{CER} = \frac{\sum_n d(\hat y_n, y_n)}{\sum_n |y_n|}.$$
#
# Word accuracy uses the same distance over lists of words:
# $1 - \sum_n d(\text{words}(\hat y_n), \text{words}(y_n)) / \sum_n \max(|\text{words}(\hat y_n)|, |\text{words}(y_n)|)$.
# The modern editor also changes punctuation and line breaks, which no model can guess from the Folio, so
# we report each score twice: **raw**, and **letters-only** (punctuation and spaces removed, case kept;
# for words: punctuation removed).

# %%
# NBVAL_CHECK_OUTPUT
pred, ref = "Haue you had", "Have you had"
by_hand = 1 / len(ref)  # one substitution, u -> v, over 12 reference characters
print(f"edit distance {M.edit_distance(pred, ref)}, CER = 1/{len(ref)} = {by_hand:.4f}")
print(f"word accuracy = 1 - 1/3 = {1 - 1/3:.4f}  (one of three words wrong)")
assert M.character_error_rate([pred], [ref]) == by_hand
assert abs(M.word_accuracy([pred], [ref]) - (1 - 1 / 3)) < 1e-12
print("letters-only:", repr(letters_only("Nay, answer me: stand, and unfold yourself.")),
      "| words:", repr(words_only("Nay, answer me: stand, and unfold yourself.")))

# %% [markdown]
# ## 3. Two baselines
#
# **Copy**: predict the Folio line unchanged. **Word table**: in the training pairs, line up the words of
# each pair and keep, for every Folio word, its most frequent modern form ("haue" → "have", "vs" → "us");
# unknown words are copied. A model is worth training only if it beats both.

# %%
MAX_CHARS = 76  # lines longer than this (a few percent) are left out of training and evaluation
def short(pairs):
    return [p for p in pairs if len(p["folio"]) <= MAX_CHARS and len(p["modern"]) <= MAX_CHARS]

train_set, val_set = short(train_pairs), short(val_pairs)
eval_set = short(test_pairs)
if SMOKE:  # a sample of the test lines keeps CI under a minute
    eval_set = random.Random(0).sample(eval_set, 150)
sources = [p["folio"] for p in eval_set]
references = [p["modern"] for p in eval_set]
table = WordTable.fit(train_set)

def scores(predictions, refs=references):
    """CER and word accuracy, raw and letters-only."""
    L = [letters_only(x) for x in predictions], [letters_only(x) for x in refs]
    W = [words_only(x) for x in predictions], [words_only(x) for x in refs]
    return {"CER raw": M.character_error_rate(predictions, refs), "CER letters": M.character_error_rate(*L),
            "word acc raw": M.word_accuracy(predictions, refs), "word acc letters": M.word_accuracy(*W)}

results = {"copy": scores(sources), "word table": scores(table.predict(sources))}
def show(results):
    head = "| | " + " | ".join(next(iter(results.values()))) + " |\n|---|" + "---|" * 4 + "\n"
    return head + "\n".join(f"| {k} | " + " | ".join(f"{v:.2%}" for v in r.values()) + " |" for k, r in results.items())
display(Markdown(f"Test lines scored: {len(eval_set):,} (of {len(test_pairs):,} pairs; longer than "
                 f"{MAX_CHARS} characters left out). Word table: {len(table):,} Folio words.\n\n" + show(results)))
assert results["word table"]["CER letters"] < results["copy"]["CER letters"]

# %% [markdown]
# ## 4. Cross-attention, by hand
#
# Self-attention takes queries, keys and values from one sequence. **Cross-attention** takes the
# queries from the decoder's states $X$ (one per target position) and the keys and values from the
# encoder's output $M$ (one per source position), the **memory**:
#
# $$\text{CrossAttn}(X, M) = \text{softmax}\!\left(\frac{(X W_Q)(M W_K)^\top}{\sqrt{d}} + \text{mask}\right)(M W_V)\, W_O .$$
#
# So each target position gets a weighted average of the source positions, the weights saying where it
# "looks". Take a three-word source, *I haue seene*, and a two-word target, *have seen*, with 2-d
# vectors chosen by hand and $W_Q = W_K = W_V = W_O = I$ (one head, $d = 2$):

# %%
# NBVAL_CHECK_OUTPUT
src_words, tgt_words = ["I", "haue", "seene"], ["have", "seen"]
Mem = torch.tensor([[1.0, 0.0], [0.0, 2.0], [-2.0, 0.0]])  # encoder output, one row per source word
X = torch.tensor([[0.0, 2.0], [-2.0, 0.0]])  # decoder states, one row per target position
S_ = X @ Mem.T / math.sqrt(2)  # (2 targets, 3 sources)
A = S_.softmax(dim=-1)
out_by_hand = A @ Mem
print("scores / sqrt(d):\n", S_.numpy().round(3))
print("weights (rows sum to 1):\n", A.numpy().round(3))
for t, w in zip(tgt_words, A):
    print(f"target {t!r:>7} looks at source {src_words[int(w.argmax())]!r} (weight {w.max():.3f})")

# %% [markdown]
# This is `MultiHeadAttention(cross=True)` of `llm_from_scratch.attention`: queries from `x`, keys and
# values from `context`. Set its projections to the identity and it gives the same numbers:

# %%
# NBVAL_CHECK_OUTPUT
cross = MultiHeadAttention(2, 1, cross=True)
with torch.no_grad():
    cross.q_proj.weight.copy_(torch.eye(2)); cross.q_proj.bias.zero_()
    cross.kv_proj.weight.copy_(torch.cat([torch.eye(2), torch.eye(2)])); cross.kv_proj.bias.zero_()
    cross.out_proj.weight.copy_(torch.eye(2)); cross.out_proj.bias.zero_()
    out_pkg = cross(X[None], context=Mem[None], need_weights=True)[0]
print(out_pkg.numpy().round(4))
assert torch.allclose(out_pkg, out_by_hand, atol=1e-6)
assert torch.allclose(cross.last_attn_weights[0, 0], A, atol=1e-6)

# %% [markdown]
# ## 5. The three masks of an encoder–decoder
#
# Sentences in a batch have different lengths, so they are padded, and padding must never be attended
# to. An encoder–decoder needs three masks (True = may attend):
#
# 1. **source padding** in the encoder's self-attention: every source position sees every *real* source position;
# 2. **target causal** (and target padding) in the decoder's self-attention: position $t$ sees targets $0..t$ only,
#    because at decoding time the later ones do not exist yet;
# 3. **memory padding** in cross-attention: every target position sees every *real* source position.
#
# Here for a source of 5 real tokens padded to 7 and a target of 4 real tokens padded to 6:

# %%
S_len, T_len, s_real, t_real = 7, 6, 5, 4
src_keep = torch.arange(S_len) < s_real
tgt_keep = torch.arange(T_len) < t_real
masks = {"1. encoder self-attention\n(source padding)": src_keep[None, :].expand(S_len, S_len),
         "2. decoder self-attention\n(causal + target padding)": torch.ones(T_len, T_len).tril().bool() & tgt_keep[None, :],
         "3. cross-attention\n(memory padding)": src_keep[None, :].expand(T_len, S_len)}
fig, axes = plt.subplots(1, 3, figsize=(11, 3.6))
for ax, (name, m) in zip(axes, masks.items()):
    ax.imshow(m.float(), cmap="Greens", vmin=0, vmax=1.3)
    ax.set_title(name, fontsize=9)
    ax.set_xlabel("key position (what is looked at)")
    ax.set_ylabel("query position")
fig.suptitle("Green = may attend: padding columns are never green; the decoder never sees its future")
plt.tight_layout(); plt.show()

# %% [markdown]
# ## 6. The model, and teacher forcing
#
# `llm_from_scratch.seq2seq.EncoderDecoder` is the Transformer of Vaswani et al. in its pre-LayerNorm
# form: encoder blocks (self-attention with the source padding mask, FFN), decoder blocks (causal
# self-attention, cross-attention over the encoder output, FFN). It equals `torch.nn.Transformer(norm_first=True)`
# with the same weights (`tests/test_seq2seq.py`). We work on **characters**, with one table for both sides
# and shared embeddings, since most characters are copied.
#
# **Teacher forcing**: in training the decoder reads the *true* previous characters, `[BOS] H a u e` →
# predicts `H a u e [EOS]` at once, one cross-entropy over all positions (like the GPT, one pass per line):
#
# $$\mathcal{L} = -\frac{1}{T}\sum_{t=1}^{T} \log p_\theta(y_t \mid y_{<t}, x).$$

# %% [markdown]
# **Clean training pairs.** The line alignment of section 1 pairs lines whose keys are at least 80% alike.
# Some such pairs still do not say the same words: a prose line the modern editor broke at another word,
# a speaker prefix the Folio left in the line, a word the editor added. A model trained on them learns
# that a target may drop the source's first word or invent a new last one, and it does so on test lines
# too. So the model trains only on the pairs that match **word for word** (`spelling.word_for_word`:
# equally many words, and each word's key lines up with one word's key). The price: a true respelling
# that changes the number of words ("my selfe" → "myself") is left out too, so the model seldom sees one.
# The test pairs are all kept: the scores are on every test line, the shifted ones too.

# %%
model_train = [p for p in train_set if word_for_word(p)]
dropped = [p for p in train_set if not word_for_word(p)]
print(f"training pairs word for word: {len(model_train):,} of {len(train_set):,} ({len(model_train) / len(train_set):.1%}); "
      f"{len(dropped):,} left out, for example:")
for p in random.Random(1).sample(dropped, 3):
    print(f"  {p['folio']!r:<52} | {p['modern']!r}")

# %%
vocab = CharVocab([p["folio"] + p["modern"] for p in model_train])
if SETTING == "smoke":
    cfg = dict(n_layer=1, n_head=2, n_embd=32, steps=40, batch=32, lr=3e-3)
elif SETTING == "book":
    cfg = dict(n_layer=2, n_head=4, n_embd=128, steps=6000, batch=64, lr=2e-3)
else:
    cfg = dict(n_layer=4, n_head=8, n_embd=256, steps=6000, batch=128, lr=1e-3)
config = Seq2SeqConfig(src_vocab_size=len(vocab), tgt_vocab_size=len(vocab), block_size=MAX_CHARS + 2,
                       n_layer=cfg["n_layer"], n_head=cfg["n_head"], n_embd=cfg["n_embd"],
                       shared_embeddings=True, pad_id=CharVocab.PAD)
torch.manual_seed(0)
model = EncoderDecoder(config).to(device)
print(f"vocabulary {len(vocab)} characters (with PAD, BOS, EOS, UNK); model {model.num_parameters():,} parameters")

def make_batch(pairs):
    src, src_mask = vocab.batch([p["folio"] for p in pairs])
    tgt_in, tgt_mask = vocab.batch([p["modern"] for p in pairs], bos=True)  # [BOS] y1 .. yn
    tgt_out, _ = vocab.batch([p["modern"] for p in pairs], eos=True)  # y1 .. yn [EOS]
    tgt_out = tgt_out.masked_fill(~tgt_mask, -100)  # padding is not scored
    return [t.to(device) for t in (src, src_mask, tgt_in, tgt_mask, tgt_out)]

src, src_mask, tgt_in, tgt_mask, tgt_out = make_batch(model_train[:2])
print("source ids :", src[0].tolist()[:12], "...")
print("decoder in :", tgt_in[0].tolist()[:12], "...  (starts with BOS = 1)")
print("targets    :", tgt_out[0].tolist()[:12], "...  (shifted by one, ends with EOS = 2)")

# %%
opt = torch.optim.AdamW(model.parameters(), lr=cfg["lr"], weight_decay=0.01)
warmup = max(1, cfg["steps"] // 20)
sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min((s + 1) / warmup, 0.5 * (1 + math.cos(math.pi * min(s / cfg["steps"], 1.0)))))
rng = random.Random(0)
losses, start, cpu_start = [], time.perf_counter(), time.process_time()
model.train()
for step in range(cfg["steps"]):
    src, src_mask, tgt_in, tgt_mask, tgt_out = make_batch(rng.sample(model_train, cfg["batch"]))
    _, loss = model(src, tgt_in, src_mask, tgt_mask, targets=tgt_out)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step(); sched.step()
    losses.append(loss.item())
    if step % max(1, cfg["steps"] // 10) == 0 or step == cfg["steps"] - 1:
        print(f"step {step:5d}  loss {loss.item():.3f}  ({time.perf_counter() - start:.0f} s)")
train_wall, train_cpu = time.perf_counter() - start, time.process_time() - cpu_start
print(f"trained {cfg['steps']} steps in {train_wall:.0f} s wall, {train_cpu:.0f} s CPU, {torch.get_num_threads()} torch thread(s)")
model.eval()
first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
assert math.isfinite(last) and last < first < math.log(len(vocab)) + 1
plt.figure(figsize=(6, 3))
plt.plot(losses)
plt.xlabel("step"); plt.ylabel("cross-entropy (nats per character)")
plt.title("Training loss with teacher forcing: it falls fast, most characters are copies")
plt.show()

# %% [markdown]
# ## 7. Teacher forcing vs free running: exposure bias
#
# At decoding time there is no teacher: the decoder reads **its own** previous outputs (free running).
# A mistake the model never made in training (it always read correct prefixes) puts it in a state it has
# never seen, and one error can lead to the next. This mismatch is **exposure bias**. We measure it: the
# share of wrong characters of the teacher-forced predictions (each position given the true prefix) against
# the character error rate of free-running greedy decoding on the same lines. The two averages count
# slightly different things (wrong positions, edit distance) and a well-trained model makes few first
# mistakes, so we also look at the single line where free running goes furthest from the reference. We
# probe on test lines that match word for word: on a shifted line the true prefix holds words the source
# does not have, and teacher forcing would measure the shift, not the model.

# %%
def translate(lines, beam=None, batch_size=256):
    """Decode lines in batches of similar length; a modern line is at most 10 characters longer than
    its source (the usual MT cap on the output length), which stops a rare runaway repetition early."""
    order = sorted(range(len(lines)), key=lambda i: len(lines[i]))
    outs = [None] * len(lines)
    for k in range(0, len(order), batch_size):
        idx = order[k:k + batch_size]
        s, m = vocab.batch([lines[i] for i in idx])
        s, m = s.to(device), m.to(device)
        n = min(s.shape[1] + 10, MAX_CHARS + 1)
        if beam is None:
            ids = greedy_decode(model, s, n, CharVocab.BOS, CharVocab.EOS, src_mask=m)
        else:
            ids = beam_search(model, s, beam, n, CharVocab.BOS, CharVocab.EOS, src_mask=m)
        for i, r in zip(idx, ids.tolist()):
            outs[i] = vocab.decode(r)
    return outs

probe = [p for p in eval_set if word_for_word(p)][:100]  # lines whose true prefix spells the source's words
with torch.no_grad():
    src, src_mask, tgt_in, tgt_mask, tgt_out = make_batch(probe)
    logits, _ = model(src, tgt_in, src_mask, tgt_mask)
real = tgt_out != -100
teacher_error = ((logits.argmax(-1) != tgt_out) & real).sum().item() / real.sum().item()
free = translate([p["folio"] for p in probe])
free_cer = M.character_error_rate(free, [p["modern"] for p in probe])
display(Markdown(f"On {len(probe)} test lines: **{teacher_error:.2%}** of characters are wrong with teacher forcing, "
                 f"the free-running character error rate is **{free_cer:.2%}**: on average free running is "
                 f"**{'worse' if free_cer > teacher_error else 'not worse'}** on these lines ({SETTING} setting)."))
assert 0 <= teacher_error <= 1 and math.isfinite(free_cer)
if not SMOKE:
    assert teacher_error < free_cer  # the errors of free running compound
# the line where free running goes furthest from the reference
worst = max(range(len(probe)), key=lambda i: M.edit_distance(free[i], probe[i]["modern"]))
forced = vocab.decode(logits[worst].argmax(-1).tolist())
print("Folio        :", probe[worst]["folio"])
print("modern       :", probe[worst]["modern"])
print("teacher-forced:", forced, " (each character given the true prefix)")
print("free running :", free[worst])
print(f"edit distance to the modern line: teacher-forced {M.edit_distance(forced, probe[worst]['modern'])}, "
      f"free running {M.edit_distance(free[worst], probe[worst]['modern'])}")

# %% [markdown]
# ## 8. Greedy search vs beam search
#
# **Greedy** decoding takes the most likely character at each step. **Beam search** keeps the $k$ best
# prefixes; a hypothesis that ends with EOS is scored by its summed log-probability divided by
# $\text{length}^{\alpha}$ (the length penalty, $\alpha = 1$ here), so that long lines are not punished
# for having more terms. Both decoders cache the encoder output, the cross-attention keys and values
# (projected once) and the decoder's own keys and values (`tests/test_seq2seq.py` checks cached =
# uncached, and beam size 1 = greedy).

# %%
few = [p for p in eval_set if len(p["folio"]) < 40][:4]
greedy_out = translate([p["folio"] for p in few])
beam_out = translate([p["folio"] for p in few], beam=4)
for p, g, b in zip(few, greedy_out, beam_out):
    print(f"Folio : {p['folio']}\nmodern: {p['modern']}\ngreedy: {g}\nbeam 4: {b}\n")
assert len(greedy_out) == len(beam_out) == len(few)

# %% [markdown]
# ## 9. The model against the baselines, on the test plays

# %%
start = time.perf_counter()
model_out = translate(sources)
results["model (greedy)"] = scores(model_out)
display(Markdown(f"{len(sources):,} test lines decoded in {time.perf_counter() - start:.0f} s ({SETTING} setting).\n\n"
                 + show(results)))
for name, r in results.items():
    print(name, {k: round(v, 4) for k, v in r.items()})
assert all(math.isfinite(v) for r in results.values() for v in r.values())
beats = {b: results["model (greedy)"]["CER letters"] < results[b]["CER letters"] for b in ("copy", "word table")}
display(Markdown(f"Letters-only CER: the model beats copying: **{beats['copy']}**; beats the word table: "
                 f"**{beats['word table']}** ({SETTING} setting)."))
if not SMOKE:  # the book and full settings train long enough to beat both baselines
    assert beats["copy"] and beats["word table"], results

# %% [markdown]
# ## 10. What cross-attention learned
#
# For one line, the weights of the last decoder block's cross-attention (averaged over heads): each row is
# a target character, each column a source character. Spelling is mostly a copy, so the map is a
# **diagonal**, with a small jump where the two spellings differ in length.

# %%
line = min((p for p in eval_set if 20 <= len(p["folio"]) <= 40), key=lambda p: -abs(len(p["folio"]) - len(p["modern"])))
s, m = vocab.batch([line["folio"]])
out_ids = greedy_decode(model, s.to(device), MAX_CHARS + 1, CharVocab.BOS, CharVocab.EOS, src_mask=m.to(device))
tgt = torch.cat([torch.tensor([[CharVocab.BOS]]), out_ids.cpu()], 1)
last_cross = model.decoder[-1].cross_attn
last_cross.need_weights = True
with torch.no_grad():
    model(s.to(device), tgt.to(device), m.to(device))
last_cross.need_weights = False
W = last_cross.last_attn_weights[0].mean(0).cpu()  # (T, S)
out_text = vocab.decode(out_ids[0].tolist())
n = len(out_text) + 1  # the characters and EOS
assert W.shape == (tgt.shape[1], s.shape[1]) and torch.allclose(W.sum(-1), torch.ones(W.shape[0]), atol=1e-5)
plt.figure(figsize=(7, 6))
plt.imshow(W[:n], cmap="viridis", aspect="auto")
plt.xticks(range(len(line["folio"])), list(line["folio"]), fontsize=7)
plt.yticks(range(n), list(out_text) + ["EOS"], fontsize=7)
plt.xlabel("source (Folio) character"); plt.ylabel("target character being predicted")
plt.title("Cross-attention: where each output character looks (a diagonal with jumps)")
plt.show()
print("Folio :", line["folio"]); print("model :", out_text); print("modern:", line["modern"])

# %% [markdown]
# ## 11. Where encoder–decoder models sit today
#
# - **T5** (Raffel et al., 2020) casts every text task as text-to-text ("translate English to German: …")
#   with an encoder–decoder; Flan-T5 is still a strong, cheap model for fixed-format tasks.
# - **BART** (Lewis et al., 2020) pretrains an encoder–decoder by corrupting text and asking the decoder to
#   restore it; it is a standard model for summarisation.
# - **Whisper** (Radford et al., 2022) is an encoder–decoder for speech: the encoder reads a spectrogram, the
#   decoder writes the transcript, cross-attending to the audio. Machine translation systems (e.g. NLLB)
#   are encoder–decoders too.
# - **Decoder-only** models (GPT, Llama, Qwen) dominate general-purpose LLMs: one stack, one objective
#   (next token), the source is simply the start of the sequence, and the same cache serves prompt and output.
#   An encoder–decoder pays off when the input is long or of another kind (audio, images) and the output
#   short: the encoder reads the input once, bidirectionally, and the decoder stays small.

# %% [markdown]
# ## What to try
#
# - Decode with beam sizes 1, 2, 4, 8 and length penalties 0, 0.6, 1.0: does the letters-only CER move?
# - Give the model *letters-only* targets (drop punctuation from both sides): how much of the raw error was
#   punctuation the Folio cannot tell?
# - Replace shared embeddings with separate ones, or sinusoidal with learned positions (`Seq2SeqConfig`).
# - Train on word-table outputs as the source (the model only has to fix what the table gets wrong).

# %% [markdown]
# ## Exercises
#
# Write each piece from this chapter, then run its cell: `check` compares it with `attention`, `metrics` and
# `seq2seq` and prints one line per failed test, with a hint. A cell that still says `raise NotImplementedError`
# prints "not attempted yet". Solutions: `chapters/solutions/13_encoder_decoder.ipynb`.

# %%
import math

import torch
from llm_from_scratch.exercises import check

# %% [markdown]
# **13.1 Cross-attention with a source padding mask.** One head, with $W_Q = W_K = W_V = W_O = I$ as in
# section 4: the queries are the decoder states `x` (B, T, d), the keys and values the encoder output
# `memory` (B, S, d). `src_mask` (B, S) is True on real source tokens; a padded source position must get
# weight 0 from every target position. Return `(out, weights)`: the weights (B, T, S) of
# $\mathrm{softmax}(X M^\top/\sqrt{d} + \text{mask})$ and out $=$ weights $\cdot M$ (B, T, d).

# %%
# NBVAL_CHECK_OUTPUT
def cross_attention(x, memory, src_mask=None):
    ### BEGIN SOLUTION
    scores = x @ memory.transpose(-2, -1) / math.sqrt(x.shape[-1])  # (B, T, S)
    if src_mask is not None:
        scores = scores.masked_fill(~src_mask[:, None, :], float("-inf"))  # padded keys: columns, for every query
    weights = torch.softmax(scores, dim=-1)
    return weights @ memory, weights
    ### END SOLUTION


check("13.1", cross_attention)

# %% [markdown]
# **13.2 The character error rate.** Write the edit distance (the table $d_{i,j}$ of section 2, filled row
# by row) and return the corpus rate $\text{CER} = \sum_n d(\hat y_n, y_n) / \sum_n |y_n|$ for two lists of
# strings: the total of the distances over the total length of the references, not a mean of the lines' rates.

# %%
# NBVAL_CHECK_OUTPUT
def character_error_rate(predictions, references):
    ### BEGIN SOLUTION
    def edit_distance(a, b):
        prev = list(range(len(b) + 1))  # d[0][j] = j: j insertions turn "" into b[:j]
        for i, ca in enumerate(a, 1):
            cur = [i]  # d[i][0] = i deletions
            for j, cb in enumerate(b, 1):
                cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
            prev = cur
        return prev[-1]

    total = sum(edit_distance(p, r) for p, r in zip(predictions, references))
    return total / sum(len(r) for r in references)
    ### END SOLUTION


check("13.2", character_error_rate)

# %% [markdown]
# **13.3 One step of beam search.** `scores` (K,) holds the summed log-probabilities of the K live prefixes
# ($-\infty$ for an empty beam), `logp` (K, V) the log-probabilities of every next token after each prefix.
# Extending prefix $k$ by token $v$ scores `scores[k] + logp[k, v]`; keep the `beam_size` best of all
# $K \cdot V$ extensions, best first. Return `(new_scores, beam, token)`, three tensors of shape (beam_size,):
# the scores, which prefix each came from, and which token it added.

# %%
# NBVAL_CHECK_OUTPUT
def beam_step(scores, logp, beam_size):
    ### BEGIN SOLUTION
    K, V = logp.shape
    candidates = (scores[:, None] + logp).reshape(K * V)  # every prefix extended by every token
    new_scores, flat = candidates.topk(beam_size)  # the best of all K·V at once
    return new_scores, flat // V, flat % V
    ### END SOLUTION


check("13.3", beam_step)
