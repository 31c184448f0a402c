"""Chapter 13 experiment (issue 13): which change to the training recipe lets the model beat the word table.

Trains the chapter's character-level ``EncoderDecoder`` (2 + 2 blocks, AdamW 2e-3, warm-up and cosine
decay, batches of 64 random line pairs) on the training plays, decodes the 11,434 test lines greedily,
and prints the model's and the word table's CER (raw and letters-only) on them. One change at a time:

    python -m benchmarks.spelling_recipe --steps 2000                     # the earlier chapter: all pairs
    python -m benchmarks.spelling_recipe --steps 2000 --tokens 4096       # batches of similar lengths
    python -m benchmarks.spelling_recipe --steps 2000 --clean             # word-for-word pairs only
    python -m benchmarks.spelling_recipe --steps 2000 --clean --n-embd 192 --n-head 6
    python -m benchmarks.spelling_recipe --steps 2000 --clean --synth 32  # + 32 made-up lines of table words
    python -m benchmarks.spelling_recipe --steps 3000 --clean --tokens 4096
    python -m benchmarks.spelling_recipe --steps 4000 --clean
    python -m benchmarks.spelling_recipe --steps 4000 --clean --join 0.25  # + a quarter of lines joined in twos

``--clean`` keeps the pairs that ``spelling.word_for_word`` accepts (the chapter's choice). ``--tokens N``
cuts batches of similar-length lines up to N padded characters instead of 64 random lines. ``--synth K``
adds K lines per batch made of random entries of the word table ("haue vs beene" -> "have us been").
``--join P`` joins each line, with probability P, to a second random pair (when both stay within 76
characters): long lines are rare in the plays, and the model lost to the table on them.
Each run writes its test outputs to ``--out`` (a JSON list, one string per test line).
"""
from __future__ import annotations

import argparse
import json
import math
import random
import time
from pathlib import Path

import torch

from llm_from_scratch import metrics as M
from llm_from_scratch.seq2seq import EncoderDecoder, Seq2SeqConfig, greedy_decode
from llm_from_scratch.spelling import CharVocab, WordTable, letters_only, word_for_word
from llm_from_scratch.tasks import spelling_pairs

MAX = 76  # the chapter's longest line


def length_batches(train, rng, tokens, batch):
    """Shuffle, sort chunks of 50 batches by length, cut batches of at most ``tokens`` padded characters."""
    idx = list(range(len(train)))
    while True:
        rng.shuffle(idx)
        out = []
        for k in range(0, len(idx), batch * 50):
            part = sorted(idx[k:k + batch * 50], key=lambda i: len(train[i]["folio"]) + len(train[i]["modern"]))
            cur, longest = [], 0
            for i in part:
                n = max(len(train[i]["folio"]), len(train[i]["modern"])) + 1
                if cur and max(longest, n) * (len(cur) + 1) > tokens:
                    out.append(cur)
                    cur, longest = [], 0
                cur.append(i)
                longest = max(longest, n)
            if cur:
                out.append(cur)
        rng.shuffle(out)
        yield from out


def synthetic_line(entries, rng):
    """Random word-table entries joined into a Folio line and its modern line, 20-70 characters."""
    words, target = [], rng.randint(20, 60)
    while sum(len(f) + 1 for f, _ in words) < target or sum(len(m) + 1 for _, m in words) < target:
        words.append(entries[rng.randrange(len(entries))])
    while words and (sum(len(f) + 1 for f, _ in words) > 70 or sum(len(m) + 1 for _, m in words) > 70):
        words.pop()
    return " ".join(f for f, _ in words), " ".join(m for _, m in words)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--tokens", type=int, default=0, help="padded characters per length-sorted batch (0: random batches)")
    ap.add_argument("--n-embd", type=int, default=128)
    ap.add_argument("--n-head", type=int, default=4)
    ap.add_argument("--clean", action="store_true", help="train on the word-for-word pairs only")
    ap.add_argument("--synth", type=int, default=0, help="made-up lines of word-table entries added per batch")
    ap.add_argument("--join", type=float, default=0.0,
                    help="share of a batch's lines joined with a second random pair into one longer line")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=Path("runs/spelling_recipe/outputs.json"))
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)

    def short(ps):
        return [p for p in ps if len(p["folio"]) <= MAX and len(p["modern"]) <= MAX]

    train, test = short(spelling_pairs("train")), short(spelling_pairs("test"))
    table = WordTable.fit(train)
    if a.clean:
        n_all = len(train)
        train = [p for p in train if word_for_word(p)]
        print(f"word-for-word training pairs: {len(train):,} of {n_all:,} ({len(train) / n_all:.1%})", flush=True)
    vocab = CharVocab([p["folio"] + p["modern"] for p in train])
    cfg = Seq2SeqConfig(src_vocab_size=len(vocab), tgt_vocab_size=len(vocab), block_size=MAX + 2, n_layer=2,
                        n_head=a.n_head, n_embd=a.n_embd, shared_embeddings=True, pad_id=CharVocab.PAD)
    model = EncoderDecoder(cfg)
    print(f"{model.num_parameters():,} parameters, {torch.get_num_threads()} torch thread(s)", flush=True)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.01)
    warm = max(1, a.steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warm, 0.5 * (1 + math.cos(math.pi * min(s / a.steps, 1.0)))))
    rng = random.Random(0)
    batches = length_batches(train, rng, a.tokens, a.batch) if a.tokens else None
    entries = sorted(table.table.items())
    start, seen = time.perf_counter(), 0
    model.train()
    for step in range(a.steps):
        b = next(batches) if batches else rng.sample(range(len(train)), a.batch)
        seen += len(b)
        src = [train[i]["folio"] for i in b]
        tgt = [train[i]["modern"] for i in b]
        for k in range(len(b)):
            if a.join and rng.random() < a.join:  # long lines are rare: make some from two short ones
                j = rng.randrange(len(train))
                f, m = src[k] + " " + train[j]["folio"], tgt[k] + " " + train[j]["modern"]
                if len(f) <= MAX and len(m) <= MAX:
                    src[k], tgt[k] = f, m
        for _ in range(a.synth):
            f, m = synthetic_line(entries, rng)
            src.append(f)
            tgt.append(m)
        s, sm = vocab.batch(src)
        ti, tm = vocab.batch(tgt, bos=True)
        to, _ = vocab.batch(tgt, eos=True)
        _, loss = model(s, ti, sm, tm, targets=to.masked_fill(~tm, -100))
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        if step % 250 == 0:
            print(f"step {step:5d} loss {loss.item():.3f} ({time.perf_counter() - start:.0f} s)", flush=True)
    train_s = time.perf_counter() - start
    print(f"trained {a.steps} steps, {seen:,} lines ({seen / len(train):.2f} epochs) in {train_s:.0f} s", flush=True)

    model.eval()
    sources, refs = [p["folio"] for p in test], [p["modern"] for p in test]
    order = sorted(range(len(sources)), key=lambda i: len(sources[i]))
    outs: list[str] = [""] * len(sources)
    with torch.no_grad():
        for k in range(0, len(order), 256):
            ii = order[k:k + 256]
            s, m = vocab.batch([sources[i] for i in ii])
            ids = greedy_decode(model, s, min(s.shape[1] + 10, MAX + 1), CharVocab.BOS, CharVocab.EOS, src_mask=m)
            for i, r in zip(ii, ids.tolist()):
                outs[i] = vocab.decode(r)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(outs))

    def cer(pred):
        return (M.character_error_rate(pred, refs),
                M.character_error_rate([letters_only(x) for x in pred], [letters_only(x) for x in refs]))

    (mr, ml), (tr, tl) = cer(outs), cer(table.predict(sources))
    print(f"test lines {len(refs):,}: model CER raw {mr:.2%} letters {ml:.2%} | word table raw {tr:.2%} letters {tl:.2%}"
          f" | model beats the table (letters): {ml < tl}")


if __name__ == "__main__":
    main()
