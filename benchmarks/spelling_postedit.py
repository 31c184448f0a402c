"""Chapter 13 experiment (issue 13): the encoder-decoder as a *post-editor* of the word table.

The source is the word table's output instead of the Folio line. For training, the table is cross-fitted
(5 folds by play: each training play is put through a table fitted on the other plays), so that the
model sees the errors a table makes on unseen words; at test time the table of all training plays is
used. Same model and recipe as the chapter's book setting (2+2 blocks, 128 wide, batch 64, AdamW 2e-3,
warm-up and cosine), one torch thread.

    OMP_NUM_THREADS=1 python -m benchmarks.spelling_postedit 2000 table   # the post-editor
    OMP_NUM_THREADS=1 python -m benchmarks.spelling_postedit 2000 folio   # the chapter's model, from the Folio line
    python -m benchmarks.spelling_postedit 0 oov                           # the table's errors on unknown words
"""
import math, random, re, sys, time
import torch
from llm_from_scratch import metrics as M
from llm_from_scratch.seq2seq import EncoderDecoder, Seq2SeqConfig, greedy_decode
from llm_from_scratch.spelling import CharVocab, WordTable, letters_only
from llm_from_scratch.tasks import spelling_pairs
from llm_from_scratch.utils import seed_everything
torch.set_num_threads(1)
steps, mode = int(sys.argv[1]), sys.argv[2]
n_embd = int(sys.argv[3]) if len(sys.argv) > 3 else 128
seed_everything(0)
MAX = 76
short = lambda ps: [p for p in ps if len(p["folio"]) <= MAX and len(p["modern"]) <= MAX]
train, test = short(spelling_pairs("train")), short(spelling_pairs("test"))
table = WordTable.fit(train)
if mode == "oov":  # where the table's letters-only errors are: lines with a word it has never seen
    WORD = re.compile(r"[A-Za-z']+")
    def known(w): return w in table.table or w.lower() in table.table
    words = [w for p in test for w in WORD.findall(p["folio"])]
    refs = [p["modern"] for p in test]
    base = table.predict([p["folio"] for p in test])
    oracle = [r if any(not known(w) for w in WORD.findall(p["folio"])) else b for p, b, r in zip(test, base, refs)]
    L = lambda xs: [letters_only(x) for x in xs]  # noqa: E731
    print(f"Folio words of the test lines unknown to the table: {sum(not known(w) for w in words) / len(words):.2%}")
    print(f"table letters-only CER {M.character_error_rate(L(base), L(refs)):.4f}; with every line that holds an "
          f"unknown word corrected: {M.character_error_rate(L(oracle), L(refs)):.4f}")
    sys.exit(0)
works = sorted({p["work"] for p in train})
folds = [works[i::5] for i in range(5)]
src_of = {}
if mode == "table":
    for f in folds:
        t = WordTable.fit([p for p in train if p["work"] not in f])
        for i, p in enumerate(train):
            if p["work"] in f:
                src_of[i] = t(p["folio"])
    train_src = [src_of[i] for i in range(len(train))]
    test_src = table.predict([p["folio"] for p in test])
else:
    train_src = [p["folio"] for p in train]
    test_src = [p["folio"] for p in test]
refs = [p["modern"] for p in test]
def cer_l(pred): return M.character_error_rate([letters_only(x) for x in pred], [letters_only(x) for x in refs])
print("input as is: CER raw %.4f letters %.4f" % (M.character_error_rate(test_src, refs), cer_l(test_src)))
vocab = CharVocab([s + p["modern"] for s, p in zip(train_src, train)])
cfg = Seq2SeqConfig(src_vocab_size=len(vocab), tgt_vocab_size=len(vocab), block_size=MAX + 12, n_layer=2, n_head=4,
                    n_embd=n_embd, shared_embeddings=True, pad_id=CharVocab.PAD)
torch.manual_seed(0)
model = EncoderDecoder(cfg)
opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.01)
warm = max(1, steps // 20)
sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min((s + 1) / warm, 0.5 * (1 + math.cos(math.pi * min(s / steps, 1.0)))))
rng = random.Random(0)
idx = list(range(len(train)))
t0 = time.perf_counter()
for step in range(steps):
    b = rng.sample(idx, 64)
    s, sm = vocab.batch([train_src[i] for i in b])
    ti, tm = vocab.batch([train[i]["modern"] for i in b], bos=True)
    to, _ = vocab.batch([train[i]["modern"] for i in b], eos=True)
    to = to.masked_fill(~tm, -100)
    _, loss = model(s, ti, sm, tm, targets=to)
    opt.zero_grad(); loss.backward(); torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0); opt.step(); sched.step()
    if step % 250 == 0: print(step, round(loss.item(), 3), round(time.perf_counter() - t0), flush=True)
model.eval()
order = sorted(range(len(test_src)), key=lambda i: len(test_src[i]))
out = [None] * len(test_src)
with torch.no_grad():
    for k in range(0, len(order), 256):
        ii = order[k:k + 256]
        s, m = vocab.batch([test_src[i] for i in ii])
        ids = greedy_decode(model, s, min(s.shape[1] + 10, MAX + 11), CharVocab.BOS, CharVocab.EOS, src_mask=m)
        for i, r in zip(ii, ids.tolist()): out[i] = vocab.decode(r)
print(f"{mode} steps={steps} train {time.perf_counter()-t0:.0f}s: model CER raw %.4f letters %.4f" % (M.character_error_rate(out, refs), cer_l(out)))
print("table CER raw %.4f letters %.4f" % (M.character_error_rate(table.predict([p['folio'] for p in test]), refs), cer_l(table.predict([p['folio'] for p in test]))))
