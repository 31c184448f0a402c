"""How fast is our pure-Python byte-level BPE? Ratios against HF ``tokenizers`` (Rust), measured in the same run.

    python benchmarks/bench_tokenizer.py                          # the whole corpus, 8192 tokens
    python benchmarks/bench_tokenizer.py --works 6 --vocab-size 2048 --repeats 3

On the Shakespeare corpus (the first ``--works`` works, or all 42), with the same vocabulary size:
    train   BPETokenizer.train (ours: heap + incremental pair counts)  vs  BPETokenizer.train_fast
            (HF's BpeTrainer with the same pre-tokenizer and byte alphabet)
    encode  BPETokenizer.encode per work, on a fresh tokenizer (empty cache)  vs  a fresh
            tokenizers.Tokenizer built by to_hf() from the same vocab and merges, encode_batch over the works
Timing: benchmarks/timing.py (same warm-up and repeats for both, interleaved in alternating order,
median and IQR of wall and CPU seconds; CPU = user + sys of this process over all threads, HF uses several).
Asserted before any number is printed: both trainers learn the same merges, and both encoders give
the same ids on every work.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.timing import compare, machine, row  # noqa: E402
from llm_from_scratch.data import load_shakespeare  # noqa: E402
from llm_from_scratch.tokenizer import BPETokenizer  # noqa: E402


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--works", type=int, default=0, help="use the first N works (0: all)")
    parser.add_argument("--vocab-size", type=int, default=8192)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args(argv)

    works = load_shakespeare(progress=False)
    texts = [w.text for w in (works[:args.works] if args.works else works)]
    n_bytes = sum(len(t.encode("utf-8")) for t in texts)
    print(f"machine: {machine()}")
    print(f"corpus: {len(texts)} works, {n_bytes / 1e6:.2f} MB; vocab_size={args.vocab_size}; "
          f"{args.warmup} warm-up + {args.repeats} timed runs each, interleaved")

    train = compare({
        "ours (train)": lambda: BPETokenizer.train(texts, args.vocab_size, progress=False),
        "tokenizers (train_fast)": lambda: BPETokenizer.train_fast(texts, args.vocab_size),
    }, warmup=args.warmup, repeats=args.repeats)
    ours, fast = train["ours (train)"].result, train["tokenizers (train_fast)"].result
    assert ours.merges == fast.merges, "train and train_fast learned different merges"
    print(f"\ntrain a {args.vocab_size}-token BPE: both learn the same {len(ours.merges):,} merges (asserted)")
    for name, t in train.items():
        print(row(name, t, unit="s"))

    # A fresh tokenizer per call, for both: ours starts with an empty pre-token cache, HF's with its own.
    def ours_encode():
        tok = BPETokenizer(ours.vocab, ours.merges, ours.special_tokens)
        return [tok.encode(t) for t in texts]

    def hf_encode():
        tok = ours.to_hf()
        return [e.ids for e in getattr(tok, "encode_batch_fast", tok.encode_batch)(texts)]

    encode = compare({"ours (encode)": ours_encode, "tokenizers (encode)": hf_encode},
                     warmup=args.warmup, repeats=args.repeats)
    ids_ours, ids_hf = encode["ours (encode)"].result, encode["tokenizers (encode)"].result
    assert ids_ours == ids_hf, "ours and tokenizers disagree on the ids"
    n_tokens = sum(map(len, ids_ours))
    print(f"\nencode the {len(texts)} works, cold caches: {n_tokens:,} tokens, the same ids (asserted)")
    for name, t in encode.items():
        print(row(name, t, unit="s"))

    def ratios(d, a, b):
        return d[a].wall.median / d[b].wall.median, d[a].cpu.median / d[b].cpu.median

    tw, tc = ratios(train, "ours (train)", "tokenizers (train_fast)")
    ew, ec = ratios(encode, "ours (encode)", "tokenizers (encode)")
    print(f"\nours / tokenizers (time, above 1: ours slower): train {tw:.2f}x wall {tc:.2f}x CPU; "
          f"encode {ew:.2f}x wall {ec:.2f}x CPU")
    results = {
        "works": len(texts), "mb": n_bytes / 1e6, "vocab_size": args.vocab_size, "merges": len(ours.merges),
        "tokens": n_tokens, "repeats": args.repeats, "warmup": args.warmup,
    }
    for key, t in (("train_ours", train["ours (train)"]), ("train_hf", train["tokenizers (train_fast)"]),
                   ("encode_ours", encode["ours (encode)"]), ("encode_hf", encode["tokenizers (encode)"])):
        for side in ("wall", "cpu"):
            results[f"{key}_{side}_median"] = getattr(t, side).median
            results[f"{key}_{side}_iqr"] = getattr(t, side).iqr
    results.update({
        "train_ratio_wall": tw, "train_ratio_cpu": tc, "encode_ratio_wall": ew, "encode_ratio_cpu": ec,
    })
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return results


def markdown(r: dict) -> str:
    """The RESULTS.md table for one run's results."""
    def cell(k):
        return (f"{r[k + '_wall_median']:.2f} s wall (IQR {r[k + '_wall_iqr']:.2f}), "
                f"{r[k + '_cpu_median']:.2f} s CPU")
    return "\n".join([
        "| | ours (pure Python) | HF `tokenizers` (Rust) | ours / tokenizers (time) |",
        "|---|---|---|---|",
        f"| train {r['vocab_size']}-token BPE (`train` vs `train_fast`), {r['merges']:,} merges, the same (asserted) "
        f"| {cell('train_ours')} | {cell('train_hf')} | {r['train_ratio_wall']:.2f}x wall, {r['train_ratio_cpu']:.2f}x CPU |",
        f"| encode {r['works']} works, cold caches ({r['tokens']:,} tokens), the same ids (asserted) "
        f"| {cell('encode_ours')} | {cell('encode_hf')} | {r['encode_ratio_wall']:.2f}x wall, {r['encode_ratio_cpu']:.2f}x CPU |",
    ])


if __name__ == "__main__":
    main()
