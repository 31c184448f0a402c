"""Run every CPU benchmark in turn (`make bench`); each prints its own table and ratio.

    python -m benchmarks.run_all              # all
    python -m benchmarks.run_all adam gpt     # some, by name (bench_<name>.py)

The GPU figures come from `benchmarks/gpu_mfu.py`, run on a GPU machine. Copy the numbers you
want to keep into benchmarks/RESULTS.md with the machine named.
"""

from __future__ import annotations

import importlib
import sys
import time

BENCHMARKS = ("tokenizer", "attention", "adam", "gpt", "train")


def main(argv: list[str] | None = None) -> int:
    names = (argv if argv is not None else sys.argv[1:]) or list(BENCHMARKS)
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        print(f"unknown benchmark(s) {unknown}; choose from {list(BENCHMARKS)}", file=sys.stderr)
        return 2
    for name in names:
        print(f"\n=== benchmarks/bench_{name}.py ===", flush=True)
        start = time.perf_counter()
        importlib.import_module(f"benchmarks.bench_{name}").main([])
        print(f"({time.perf_counter() - start:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
