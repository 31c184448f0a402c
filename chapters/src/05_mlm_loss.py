# %% [markdown]
# # 05 · Masked language modelling: BERT's fill-in-the-blank objective
#
# A GPT reads left to right and learns by predicting the next token. BERT reads the whole sentence
# at once, so it cannot learn that way: it would simply copy the answer from its input. Instead it
# hides some words and learns to fill them in. In this chapter you will mask a real Shakespeare
# sentence with BERT's rule (15% of the tokens; of those 80% `[MASK]`, 10% a random word, 10% left
# alone), measure that rule on a million tokens, compute the masked-language-model loss by hand and
# check it against `torch.nn.functional.cross_entropy`, meet BERT's `[CLS]` vector and pooler, and
# train a tiny BERT on chapter 02's BPE tokens until it fills blanks better than word frequencies can.
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/llm-from-scratch/llm-from-scratch/blob/main/chapters/05_mlm_loss.ipynb)

# %%
import sys
if "google.colab" in sys.modules:  # Colab: install the course package alone (Colab keeps its torch); a no-op elsewhere
    import subprocess
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                    "git+https://github.com/llm-from-scratch/llm-from-scratch"], check=True)
import math

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F

from llm_from_scratch.utils import current_setting, seed_everything
SETTING = current_setting()  # "smoke" (CI), "book" (a CPU: the default) or "full" (a GPU)
generator = seed_everything(0)

# %% [markdown]
# ## Why hide words?
#
# Chapters 06–07 train a GPT with a *causal* mask: position $t$ sees only positions $\le t$, so
# "predict token $t+1$" is a fair question at every position. Tasks such as classifying a passage
# or tagging the names in it (chapters 08–10) are better served by a representation of each word
# that has seen **both** sides of it. A bidirectional encoder gives that, but then "predict token
# $i$" is no question at all: token $i$ is in the input.
#
# BERT's answer (Devlin et al., 2019) is the *cloze test*: hide a few tokens, and ask the model to
# predict them from everything else. That is the **masked language model** (MLM).
#
# ## A vocabulary to mask with
#
# BERT uses WordPiece subwords; we use chapter 02's byte-level BPE, trained here on the training
# plays, with five special tokens after the learned ones (the last five ids, as GPT-2 puts its
# `<|endoftext|>` last): `[PAD]` fills short sequences, `[CLS]` opens a sequence and
# `[SEP]` closes it, `[MASK]` hides a token, and `[UNK]` stands for anything outside the vocabulary.
# A byte-level BPE can spell any text from its 256 byte tokens, so `[UNK]` never appears (the cell
# checks it); a word-level vocabulary would turn every rare word into `[UNK]` and ask the model to
# predict that.

# %%
from IPython.display import Markdown, display

from llm_from_scratch.data import load_shakespeare, split_works
from llm_from_scratch.tokenizer import BPETokenizer

splits = split_works(load_shakespeare(progress=False))
works = splits["train"]  # the plays pretraining may see
works = works[:4] if SETTING == "smoke" else works
SPECIALS = ["[PAD]", "[CLS]", "[SEP]", "[MASK]", "[UNK]"]
VOCAB_SIZE = {"smoke": 1000, "book": 2000, "full": 8000}[SETTING]
tok = BPETokenizer.train_fast("".join(w.text for w in works), VOCAB_SIZE, special_tokens=SPECIALS)
PAD, CLS, SEP, MASK, UNK = (tok.token_to_id(t) for t in SPECIALS)
itos = [tok.id_to_token(i) for i in range(tok.vocab_size)]  # byte-level spelling: "Ġbe" is " be"
hf_tok = tok.to_hf()  # the same tokenizer in Rust (chapter 02): fast on a whole play


def encode(text: str) -> list[int]:
    return tok.encode(text, allowed_special="none")


def encode_plays(plays) -> torch.Tensor:
    return torch.tensor([i for w in plays for i in hf_tok.encode(w.text).ids])


stream = encode_plays(works)
held_out = encode_plays(splits["validation"])  # plays the model never trains on
unk_share = (stream == UNK).float().mean().item()
print(f"{len(works)} plays, {len(stream):,} tokens, vocabulary of {len(itos)} "
      f"({len(itos) - 5} BPE tokens + 5 specials); held-out validation plays: {len(held_out):,} tokens")
display(Markdown(f"Share of the text that became `[UNK]`: **{unk_share:.1%}**."))
assert unk_share == 0 and (PAD, CLS, SEP, MASK, UNK) == tuple(range(len(itos) - 5, len(itos)))

# %%
sentence = "To be, or not to be, that is the question"
ids = torch.tensor([[CLS] + encode(sentence) + [SEP]])
print(ids.tolist())
print([itos[i] for i in ids[0]])

# %% [markdown]
# ## BERT's masking rule
#
# Every token that is not special is **selected** independently with probability $p = 0.15$:
# $m_i \sim \mathrm{Bernoulli}(p)$. A selected token is then
#
# $$
# \tilde w_i = \begin{cases}
#   \texttt{[MASK]} & \text{with probability } 0.8\\
#   \text{a random ordinary token} & \text{with probability } 0.1\\
#   w_i \text{ (unchanged)} & \text{with probability } 0.1
# \end{cases}
# $$
#
# and the model must predict the original $w_i$ at every selected position, whatever it was replaced by.
# Why not always `[MASK]`? Because `[MASK]` never appears when the model is fine-tuned or used: a model
# trained only on `[MASK]` positions could keep useless representations of the words it can see.
# The random 10% teaches it not to trust any input token blindly; the unchanged 10% ties the
# prediction to the word that is actually there.
#
# Special tokens and padding are never selected (there is nothing to learn from predicting `[CLS]`),
# and the random replacement never draws one. The **labels** hold the original token at selected
# positions and $-100$ elsewhere, the value `F.cross_entropy` skips (`ignore_index=-100`).
#
# Each call draws a new mask, so the same sentence is masked differently every time it is seen
# (RoBERTa's *dynamic masking*). Four draws of our sentence, with a seeded generator:

# %%
from llm_from_scratch.mlm import mask_tokens, mlm_loss

MASK_ARGS = dict(vocab_size=len(itos), mask_token_id=MASK, special_token_ids=(CLS, SEP, UNK), pad_token_id=PAD)
generator = torch.Generator().manual_seed(0)
for draw in range(4):
    inputs, labels = mask_tokens(ids, **MASK_ARGS, generator=generator)
    shown = [itos[t] if lab == -100 else f"{itos[t]}<-{itos[lab]}" for t, lab in zip(inputs[0].tolist(), labels[0].tolist())]
    print(f"draw {draw}: " + " ".join(shown))
print("labels of the last draw:", labels[0].tolist())

# %% [markdown]
# `new<-old` marks a selected token: `[MASK]<-x` was hidden, `y<-x` (y ≠ x) was swapped for a random
# token, and `x<-x` was selected but left alone. With a dozen ordinary tokens, 15% selects about two
# per draw; `[CLS]` and `[SEP]` are never selected. The same rule on the ids 5…24 of a toy 100-token
# vocabulary whose last five ids are the specials, as in ours (95 = `[PAD]`, 96 = `[CLS]`,
# 97 = `[SEP]`, 98 = `[MASK]`, 99 = `[UNK]`), a draw you can check by hand against the labels:

# %%
# NBVAL_CHECK_OUTPUT
T_PAD, T_CLS, T_SEP, T_MASK, T_UNK = range(95, 100)  # the toy vocabulary's special ids
toy = torch.cat([torch.tensor([T_CLS]), torch.arange(5, 25), torch.tensor([T_SEP])])[None]
toy_inputs, toy_labels = mask_tokens(toy, vocab_size=100, mask_token_id=T_MASK, special_token_ids=(T_CLS, T_SEP, T_UNK),
                                     pad_token_id=T_PAD, generator=torch.Generator().manual_seed(0))
print("input :", toy[0].tolist())
print("masked:", toy_inputs[0].tolist())
print("labels:", toy_labels[0].tolist())
chosen = toy_labels[0] != -100
assert torch.equal(toy_labels[0][chosen], toy[0][chosen]) and torch.equal(toy_inputs[0][~chosen], toy[0][~chosen])
#
# ## The 80/10/10 rule, measured
#
# One sentence is too small to see the rates. Masking a million tokens of the corpus shows them;
# a selected token whose random replacement happens to be the original word is counted as unchanged.

# %%
many = stream.repeat(math.ceil(1_000_000 / len(stream)))[:1_000_000]
inputs, labels = mask_tokens(many, **MASK_ARGS, generator=torch.Generator().manual_seed(1))
eligible = ~torch.isin(many, torch.tensor([PAD, CLS, SEP, UNK]))
selected = labels != -100
n_selected = int(selected.sum())
measured = {
    "selected / eligible": n_selected / int(eligible.sum()),
    "[MASK] / selected": int((selected & (inputs == MASK)).sum()) / n_selected,
    "random / selected": int((selected & (inputs != MASK) & (inputs != many)).sum()) / n_selected,
    "unchanged / selected": int((selected & (inputs == many)).sum()) / n_selected,
}
expected = {"selected / eligible": 0.15, "[MASK] / selected": 0.8, "random / selected": 0.1, "unchanged / selected": 0.1}
for name, value in measured.items():
    print(f"{name:22s} measured {value:.3f}   expected {expected[name]:.3f}")
    assert abs(value - expected[name]) < 0.005  # within half a percentage point
assert (labels[~eligible] == -100).all(), "a special token was selected"
assert not torch.isin(inputs[selected & (inputs != MASK)], torch.tensor([PAD, CLS, SEP, UNK])).any(), \
    "a random replacement drew a special token"
print("specials never selected, random replacements never special: True")

fig, ax = plt.subplots(figsize=(7, 3))
x = torch.arange(len(measured))
ax.bar(x - 0.2, list(expected.values()), width=0.4, label="BERT's rule")
ax.bar(x + 0.2, list(measured.values()), width=0.4, label="measured on 10⁶ tokens")
ax.set_xticks(x.tolist(), list(measured))
ax.set_ylabel("fraction")
ax.set_title("Measured rates match 15% selection and the 80/10/10 split")
ax.legend()
plt.show()

# %% [markdown]
# ## The MLM loss
#
# With $m_i = 1$ at the selected positions and $w_{\setminus m}$ the corrupted input, the model's
# softmax gives $P(w_i \mid w_{\setminus m}; \theta)$ at every position, and only the selected ones
# count:
#
# $$
# \mathcal{L}_{\text{MLM}}(\theta) = -\frac{1}{\sum_i m_i} \sum_i m_i \log P(w_i \mid w_{\setminus m}; \theta),
# \qquad
# \log P(w \mid \cdot) = z_w - \log \sum_{v} e^{z_v}.
# $$
#
# It is the cross entropy of the original tokens, averaged over the masked positions. (BERT's paper
# states the objective in words, "the final hidden vectors corresponding to the mask tokens are fed
# into an output softmax over the vocabulary", with a cross-entropy loss, and writes no formula;
# the formula above is what implementations compute, a mean so that the loss does not grow with the
# number of masked tokens in a batch.)
# Unlike a GPT, where every position is a target, BERT learns from only 15% of its positions per pass.
#
# By hand, on a vocabulary of 4 words and a sequence of 4 positions of which 2 are masked:

# %%
# NBVAL_CHECK_OUTPUT
tiny_vocab = ["the", "cat", "sat", "mat"]
logits = torch.tensor([[[2.0, 0.5, 0.0, 0.0],    # position 0: not masked
                        [0.0, 1.0, 0.0, 1.0],    # position 1: masked, the original was "cat"
                        [0.0, 0.0, 3.0, 0.0],    # position 2: not masked
                        [1.0, 0.0, 0.0, 2.0]]])  # position 3: masked, the original was "mat"
tiny_labels = torch.tensor([[-100, 1, -100, 3]])

# position 1: log P(cat) = 1 - log(e^0 + e^1 + e^0 + e^1) = 1 - log(2 + 2e)
log_p_cat = 1 - math.log(2 + 2 * math.e)
# position 3: log P(mat) = 2 - log(e^1 + e^0 + e^0 + e^2)
log_p_mat = 2 - math.log(math.e + 2 + math.e ** 2)
by_hand = -(log_p_cat + log_p_mat) / 2
print(f"P(cat) = {math.exp(log_p_cat):.4f}   P(mat) = {math.exp(log_p_mat):.4f}")
print(f"by hand:          {by_hand:.4f}")
print(f"mlm_loss:         {mlm_loss(logits, tiny_labels).item():.4f}")
print(f"F.cross_entropy:  {F.cross_entropy(logits.view(-1, 4), tiny_labels.view(-1), ignore_index=-100).item():.4f}")
assert abs(mlm_loss(logits, tiny_labels).item() - by_hand) < 1e-6

# %% [markdown]
# Positions 0 and 2 carry confident predictions, but they are not masked, so they add nothing.
#
# **A batch with nothing masked.** With short sequences and $p = 0.15$ it happens. Then
# $\sum_i m_i = 0$ and the mean is $0/0$: torch's cross entropy returns NaN, and one NaN
# gradient ruins every weight. `mlm_loss` returns a zero that is still part of the graph, so
# `backward()` works and the step learns nothing from that batch.

# %%
# NBVAL_CHECK_OUTPUT
nothing = torch.full((1, 4), -100)
print("F.cross_entropy:", F.cross_entropy(logits.view(-1, 4), nothing.view(-1)).item())
z = logits.clone().requires_grad_()
loss = mlm_loss(z, nothing)
loss.backward()
print("mlm_loss:", loss.item(), "  gradient all zero:", bool((z.grad == 0).all()))

# %% [markdown]
# This is `llm_from_scratch.mlm`: `mask_tokens` and `mlm_loss` are the functions used above. On random
# logits and masks drawn by `mask_tokens`, `mlm_loss` equals torch's cross entropy, value and gradient:

# %%
# NBVAL_CHECK_OUTPUT
batch = torch.stack([many[i * 64:(i + 1) * 64] for i in range(16)])
_, labels = mask_tokens(batch, **MASK_ARGS, generator=torch.Generator().manual_seed(2))
z = torch.randn(16, 64, len(itos), requires_grad=True)
loss_ours = mlm_loss(z, labels)
loss_ref = F.cross_entropy(z.view(-1, len(itos)), labels.view(-1), ignore_index=-100)
grad_ours, = torch.autograd.grad(loss_ours, z)
grad_ref, = torch.autograd.grad(loss_ref, z)
torch.testing.assert_close(loss_ours, loss_ref)
torch.testing.assert_close(grad_ours, grad_ref)
print("mlm_loss == F.cross_entropy(ignore_index=-100), and so are the gradients:", True)

# %% [markdown]
# ## A tiny BERT learns to fill in blanks
#
# The encoder is `llm_from_scratch.bert.BertForMaskedLM` (its layers are chapter 03's attention;
# chapter 08 fine-tunes it): token, position and segment embeddings, post-LayerNorm Transformer blocks
# without a causal mask, and an output layer tied to the word embeddings that gives logits of shape
# $(B, T, V)$. Each training step cuts random windows from the text, wraps them in `[CLS] … [SEP]`,
# draws a fresh mask and takes one AdamW step on $\mathcal{L}_{\text{MLM}}$.
#
# Two reference levels help read the loss. A model that knows nothing predicts uniformly:
# $\log V$. A model that ignores the context and predicts each word by its frequency reaches the
# **unigram entropy** $H = -\sum_w p(w)\log p(w)$. Getting below $H$ means using the context.

# %%
from llm_from_scratch.bert import BertConfig, BertForMaskedLM
from llm_from_scratch.device import select_device

device = select_device()
SIZES = {  # the model and the run, by setting
    "smoke": dict(seq_len=32, batch=32, steps=100, lr=3e-3, hidden=64, layers=2, heads=2, dropout=0.0),
    "book": dict(seq_len=64, batch=32, steps=1500, lr=1e-3, hidden=128, layers=2, heads=4, dropout=0.0),
    "full": dict(seq_len=128, batch=64, steps=3000, lr=1e-3, hidden=256, layers=4, heads=4, dropout=0.1),
}[SETTING]
SEQ_LEN, BATCH, STEPS = SIZES["seq_len"], SIZES["batch"], SIZES["steps"]
config = BertConfig(vocab_size=len(itos), hidden_size=SIZES["hidden"], num_hidden_layers=SIZES["layers"],
                    num_attention_heads=SIZES["heads"], intermediate_size=4 * SIZES["hidden"],
                    max_position_embeddings=SEQ_LEN, hidden_dropout_prob=SIZES["dropout"],
                    attention_probs_dropout_prob=SIZES["dropout"], pad_token_id=PAD)
seed_everything(0)
model = BertForMaskedLM(config).to(device)
print(config)
print(f"{model.num_parameters():,} parameters")

counts = torch.bincount(stream, minlength=len(itos)).float()
counts[[PAD, CLS, SEP, MASK, UNK]] = 0  # specials are never targets
p = counts[counts > 0] / counts.sum()
unigram_entropy = -(p * p.log()).sum().item()
print(f"log V = {math.log(len(itos)):.3f}   unigram entropy H = {unigram_entropy:.3f}")

# %%
# NBVAL_IGNORE_OUTPUT
from tqdm.auto import tqdm


def random_windows(generator: torch.Generator) -> torch.Tensor:
    """BATCH windows of the text, each [CLS] + SEQ_LEN - 2 words + [SEP]: (BATCH, SEQ_LEN)."""
    starts = torch.randint(0, len(stream) - SEQ_LEN, (BATCH,), generator=generator)
    body = torch.stack([stream[s:s + SEQ_LEN - 2] for s in starts.tolist()])
    return torch.cat([torch.full((BATCH, 1), CLS), body, torch.full((BATCH, 1), SEP)], dim=1)


optimizer = torch.optim.AdamW(model.parameters(), lr=SIZES["lr"], weight_decay=0.01)
data_gen = torch.Generator().manual_seed(0)
losses = []
model.train()
for step in tqdm(range(STEPS), desc="MLM training"):
    inputs, labels = mask_tokens(random_windows(data_gen), **MASK_ARGS, generator=data_gen)
    logits = model(inputs.to(device))
    loss = mlm_loss(logits, labels.to(device))
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    losses.append(loss.item())

first, last = sum(losses[:10]) / 10, sum(losses[-10:]) / 10
print(f"masked-token loss: first 10 steps {first:.3f}, last 10 steps {last:.3f}")
assert last < first, "the masked-token loss did not fall"

# %%
# NBVAL_IGNORE_OUTPUT
fig, ax = plt.subplots(figsize=(7, 3.5))
ax.plot(losses, label="masked-token loss (per batch)")
ax.axhline(math.log(len(itos)), color="gray", ls="--", label="log V: uniform guess")
ax.axhline(unigram_entropy, color="red", ls=":", label="H: word frequencies only")
ax.set_xlabel("step")
ax.set_ylabel("L_MLM (nats)")
ax.set_title("The loss drops to the unigram line first; going below it means using context")
ax.legend()
plt.show()

# %% [markdown]
# ## Does it use the context? Top-5 on held-out plays
#
# The loss mixes easy and hard positions. A plainer test: mask tokens of the **validation plays**,
# which the model never saw, and count how often the original token is among the model's five most
# probable. The baseline that ignores context always answers the five most frequent training tokens
# (its **unigram top-5**). The model wins only if the words around a blank tell it something.

# %%
# NBVAL_IGNORE_OUTPUT
@torch.no_grad()
def top5_vs_unigram(tokens: torch.Tensor, n_windows: int = 200) -> tuple[float, float, int]:
    """(model top-5 accuracy, unigram top-5 accuracy, masked positions) over windows of ``tokens``."""
    model.eval()
    gen = torch.Generator().manual_seed(123)
    unigram_top5 = counts.topk(5).indices.to(device)
    hits_model = hits_unigram = total = 0
    for start in range(0, n_windows, BATCH):
        starts = torch.randint(0, len(tokens) - SEQ_LEN, (min(BATCH, n_windows - start),), generator=gen)
        body = torch.stack([tokens[i:i + SEQ_LEN - 2] for i in starts.tolist()])
        windows = torch.cat([torch.full((len(body), 1), CLS), body, torch.full((len(body), 1), SEP)], dim=1)
        inputs, labels = mask_tokens(windows, **MASK_ARGS, generator=gen)
        labels = labels.to(device)
        top5 = model(inputs.to(device)).topk(5, dim=-1).indices  # (B, T, 5)
        chosen = labels != -100
        gold = labels[chosen]
        hits_model += (top5[chosen] == gold[:, None]).any(-1).sum().item()
        hits_unigram += (unigram_top5[None] == gold[:, None]).any(-1).sum().item()
        total += int(chosen.sum())
    return hits_model / total, hits_unigram / total, total


acc_model, acc_unigram, n_masked = top5_vs_unigram(held_out, n_windows=64 if SETTING == "smoke" else 1000)
display(Markdown(
    f"On {n_masked:,} masked tokens of the held-out plays, the true token is among the model's top 5 "
    f"**{acc_model:.1%}** of the time, and among the five most frequent tokens **{acc_unigram:.1%}** "
    f"of the time. The final training loss is {last:.2f} nats against the unigram entropy "
    f"{unigram_entropy:.2f}."))
assert 0 <= acc_unigram <= 1 and 0 <= acc_model <= 1
if SETTING != "smoke":  # the payoff: the context helps (smoke trains too briefly to show it)
    assert acc_model > acc_unigram + 0.05, (acc_model, acc_unigram)
    assert last < unigram_entropy

# %% [markdown]
# A few fill-ins: a held-out line with one token hidden, the truth, and the model's three best guesses.

# %%
# NBVAL_IGNORE_OUTPUT
lines = [l for w in splits["validation"] for l in w.text.splitlines() if len(l.split()) >= 6][:400:80]
model.eval()
for line in lines[:5]:
    line_ids = encode(line.strip())[:SEQ_LEN - 2]
    words = [i for i, t in enumerate(line_ids) if itos[t].startswith("Ġ") and len(itos[t]) > 3]
    if not words:
        continue
    at = words[len(words) // 2]
    query = torch.tensor([[CLS] + line_ids[:at] + [MASK] + line_ids[at + 1:] + [SEP]])
    with torch.no_grad():
        guesses = model(query.to(device))[0, at + 1].topk(3).indices.tolist()
    shown = tok.decode(line_ids[:at]) + " ____" + tok.decode(line_ids[at + 1:])
    print(f"{shown}\n    truth: {tok.decode([line_ids[at]])!r:14} model: {[tok.decode([g]) for g in guesses]}")

# %% [markdown]
# And the sentence we masked at the start:

# %%
# NBVAL_IGNORE_OUTPUT
model.eval()
query = torch.tensor([[CLS] + encode("To be, or not to") + [MASK] + encode(", that is the question") + [SEP]])
with torch.no_grad():
    probs = model(query.to(device))[0, (query[0] == MASK).nonzero().item()].softmax(-1)
top = probs.topk(5)
print("To be, or not to [MASK], that is the question")
for p_word, i in zip(top.values.tolist(), top.indices.tolist()):
    print(f"  {tok.decode([i])!r:>10}  {p_word:.3f}")

# %% [markdown]
# ## BERT's `[CLS]` vector and its pooler
#
# Every sequence starts with `[CLS]`. Its output vector $h_{[\mathrm{CLS}]}$, at position 0, has
# attended to every token of the sequence (there is no causal mask), so it can stand for the whole
# sequence. BERT adds a **pooler**, one dense layer with a tanh,
#
# $$\mathrm{pooled} = \tanh(W\, h_{[\mathrm{CLS}]} + b), \qquad W \in \mathbb{R}^{H \times H},$$
#
# trained in the original BERT by a second pretraining task (next-sentence prediction: does sentence
# B follow sentence A?). A sentence classifier puts its head on the pooled vector (chapter 08 does
# this for BERT; a GPT, which has no `[CLS]` that sees everything, uses its last token or the mean
# instead). `BertModel.pool` is the formula, checked here on a tiny encoder with a padded batch:

# %%
# NBVAL_CHECK_OUTPUT
from llm_from_scratch.bert import BertModel

small = BertConfig(vocab_size=50, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                   intermediate_size=16, max_position_embeddings=16, pad_token_id=0)
torch.manual_seed(0)
encoder = BertModel(small).eval()
pad, cls, sep = 0, 1, 2  # a toy vocabulary of 50 ids, with its own special ids
x = torch.tensor([[cls, 7, 8, 9, sep], [cls, 10, 11, sep, pad]])
with torch.no_grad():
    h = encoder(x, attention_mask=(x != pad).long())
    pooled = encoder.pool(h)
    by_hand = torch.tanh(h[:, 0] @ encoder.pooler.weight.T + encoder.pooler.bias)
print("sequence output:", tuple(h.shape), "| [CLS] vectors h[:, 0]:", tuple(h[:, 0].shape),
      "| pooled:", tuple(pooled.shape))
print("pool == tanh(W h_CLS + b):", torch.allclose(pooled, by_hand, atol=1e-6))
assert torch.allclose(pooled, by_hand, atol=1e-6)

# %% [markdown]
# ## What to try
#
# 1. **Only `[MASK]`, never random or unchanged.** `mask_tokens` takes the split from
#    `llm_from_scratch.mlm.MASK_FRACTION` and `RANDOM_FRACTION`; set them to 1.0 and 0.0, train, and
#    measure the loss at *unmasked* positions (label every position): does the model still predict
#    the words it can see?
# 2. **Mask more.** Wettig et al. (2023), "Should You Mask 15% in Masked Language Modeling?", find
#    that 40% works as well or better for large models. Train with `mlm_probability=0.4` for the same
#    number of steps and compare the curves (at equal steps, a higher rate gives more targets per batch
#    but less context per target).
# 3. **Whole words, or spans.** With subword tokenizers BERT later masked all pieces of a word together,
#    and SpanBERT masks contiguous spans. Write a selection that masks runs of 3 tokens at a time and
#    see how much harder the task gets (the loss at equal steps).

# %% [markdown]
# ## Exercises
#
# Write each function from this chapter's rules, then run its cell: `check` compares it with
# `llm_from_scratch.mlm` and prints one line per failed test, with a hint. A cell that still says
# `raise NotImplementedError` prints "not attempted yet". Solutions: `chapters/solutions/05_mlm_loss.ipynb`.

# %%
import torch
import torch.nn.functional as F
from llm_from_scratch.exercises import check

# %% [markdown]
# **05.1 BERT's 80/10/10 masking.** Select each token with probability 0.15 (never a special token nor
# `[MASK]` itself); a selected token becomes `[MASK]` with probability 0.8, a random ordinary token with
# probability 0.1, and stays as it is with probability 0.1. Labels: the original id at every selected
# position, -100 elsewhere. So that the check can compare draw by draw, draw from `generator` in this
# order, each of the input's shape: (1) `torch.rand` for "selected" (< 0.15); (2) `torch.rand` for the action
# (< 0.8 mask, < 0.9 random, else keep); (3) `torch.randint(len(candidates))`, where `candidates` is the sorted
# ids of the vocabulary without the special ids and `mask_token_id`; the random token is `candidates[r]`.

# %%
# NBVAL_CHECK_OUTPUT
def mask_tokens(input_ids, vocab_size, mask_token_id, special_ids, generator):
    ### BEGIN SOLUTION
    never = torch.tensor(list(special_ids) + [mask_token_id])
    selected = (torch.rand(input_ids.shape, generator=generator) < 0.15) & ~torch.isin(input_ids, never)
    action = torch.rand(input_ids.shape, generator=generator)
    candidates = torch.tensor([i for i in range(vocab_size) if i not in set(never.tolist())])
    pick = torch.randint(len(candidates), input_ids.shape, generator=generator)
    inputs = input_ids.clone()
    inputs[selected & (action < 0.8)] = mask_token_id
    to_random = selected & (action >= 0.8) & (action < 0.9)
    inputs[to_random] = candidates[pick[to_random]]
    labels = torch.where(selected, input_ids, torch.full_like(input_ids, -100))
    return inputs, labels
    ### END SOLUTION


check("05.1", mask_tokens)

# %% [markdown]
# **05.2 The MLM loss.** $L = -\frac{1}{|M|}\sum_{i \in M} \log P(w_i \mid \dots)$ over the masked positions
# $M$ only (label $\ne -100$), from logits (B, T, V). Write the log-softmax yourself (`torch.logsumexp` is
# allowed), not with `F.cross_entropy`.

# %%
# NBVAL_CHECK_OUTPUT
def mlm_loss(logits, labels):
    ### BEGIN SOLUTION
    keep = labels != -100
    z = logits[keep]  # (|M|, V)
    log_probs = z - torch.logsumexp(z, dim=-1, keepdim=True)
    return -log_probs.gather(1, labels[keep].unsqueeze(1)).mean()
    ### END SOLUTION


check("05.2", mlm_loss)

# %% [markdown]
# **05.3 Accuracy at the masked positions.** The fraction of labelled positions (label $\ne -100$) where the
# most likely token is the label, as a float.

# %%
# NBVAL_CHECK_OUTPUT
def masked_accuracy(logits, labels):
    ### BEGIN SOLUTION
    keep = labels != -100
    return (logits.argmax(-1)[keep] == labels[keep]).float().mean().item()
    ### END SOLUTION


check("05.3", masked_accuracy)
