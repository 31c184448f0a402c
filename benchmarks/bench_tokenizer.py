"""How fast is our pure-Python byte-level BPE? Ratios against HF ``tokenizers`` (Rust), measured in the same run.

    python benchmarks/bench_tokenizer.py                    # the whole corpus, 8192 tokens
    python benchmarks/bench_tokenizer.py --vocab-size 2048 --repeats 1

On the Shakespeare corpus (42 works, about 5 MB), with the same vocabulary size:
    train   BPETokenizer.train (ours: heap + incremental pair counts)  vs  BPETokenizer.train_fast
            (HF's BpeTrainer with the same pre-tokenizer and byte alphabet)
    encode  BPETokenizer.encode per work, cache emptied first (cold)   vs  tokenizers.Tokenizer built by
            to_hf() from the same vocab and merges, encode_batch_fast over the works (fresh, cold)
Both are checked to agree (same merges learned, same ids) before any number is reported.
Reported: median wall seconds and median CPU seconds (user + sys of this process, every thread:
HF uses several), and the ratios ours / HF. On a shared machine the CPU ratio is the steadier one.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

from llm_from_scratch.data import load_shakespeare
from llm_from_scratch.tokenizer import BPETokenizer


def _time(fn, repeats: int, setup=None) -> tuple[float, float, object]:
    """Median (wall seconds, CPU seconds) of ``fn(setup())`` over ``repeats`` runs; setup is not timed."""
    walls, cpus, result = [], [], None
    for _ in range(repeats):
        arg = setup() if setup is not None else None
        c0, w0 = time.process_time(), time.perf_counter()
        result = fn(arg)
        walls.append(time.perf_counter() - w0)
        cpus.append(time.process_time() - c0)
    return statistics.median(walls), statistics.median(cpus), result


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vocab-size", type=int, default=8192)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)

    texts = [w.text for w in load_shakespeare(progress=False)]
    n_bytes = sum(len(t.encode("utf-8")) for t in texts)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} logical CPUs, "
          f"Python {platform.python_version()}")
    print(f"corpus: {len(texts)} works, {n_bytes / 1e6:.2f} MB; vocab_size={args.vocab_size}; "
          f"median of {args.repeats}")

    results: dict[str, float] = {}
    w_ours, c_ours, ours = _time(lambda _: BPETokenizer.train(texts, args.vocab_size, progress=False), args.repeats)
    w_hf, c_hf, fast = _time(lambda _: BPETokenizer.train_fast(texts, args.vocab_size), args.repeats)
    same_merges = ours.merges == fast.merges
    print(f"train   ours {w_ours:7.2f} s wall {c_ours:7.2f} s CPU | tokenizers {w_hf:7.2f} s wall {c_hf:7.2f} s CPU"
          f" | ours/tokenizers wall {w_ours / w_hf:5.2f}x CPU {c_ours / c_hf:5.2f}x | same merges: {same_merges}")
    results.update(train_ours_s=w_ours, train_hf_s=w_hf, train_ratio_wall=w_ours / w_hf, train_ratio_cpu=c_ours / c_hf)

    def ours_cold():
        ours._cache.clear()
        return ours

    w_oe, c_oe, ids_ours = _time(lambda tok: [tok.encode(t) for t in texts], args.repeats, setup=ours_cold)
    hf_encode = lambda tok: [e.ids for e in getattr(tok, "encode_batch_fast", tok.encode_batch)(texts)]  # noqa: E731
    w_he, c_he, ids_hf = _time(hf_encode, args.repeats, setup=ours.to_hf)
    if ids_ours != ids_hf:
        raise AssertionError("ours and tokenizers disagree on the ids: the benchmark compares different things")
    n_tokens = sum(map(len, ids_ours))
    print(f"encode  ours {w_oe:7.2f} s wall {c_oe:7.2f} s CPU | tokenizers {w_he:7.2f} s wall {c_he:7.2f} s CPU"
          f" | ours/tokenizers wall {w_oe / w_he:5.2f}x CPU {c_oe / c_he:5.2f}x | {n_tokens:,} tokens, same ids: True")
    print(f"        ours {n_bytes / 1e6 / w_oe:.2f} MB/s, tokenizers {n_bytes / 1e6 / w_he:.2f} MB/s (wall)")
    results.update(encode_ours_s=w_oe, encode_hf_s=w_he, encode_ratio_wall=w_oe / w_he, encode_ratio_cpu=c_oe / c_he,
                   tokens=float(n_tokens))
    return results


if __name__ == "__main__":
    main()
