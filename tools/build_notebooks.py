"""Regenerate the chapters: chapters/src/NN_topic.py (jupytext percent format) -> chapters/NN_topic.ipynb,
executed in place with the CI setting (LFS_SMOKE=1), so that the committed outputs are the ones
nbval compares against.

    python tools/build_notebooks.py                 # every chapter
    python tools/build_notebooks.py 03_attention    # one or more, by name (with or without .py)
    python tools/build_notebooks.py --no-execute    # convert only (outputs left empty)
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import jupytext
import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "chapters" / "src"
OUT = ROOT / "chapters"


def build(src: Path, execute: bool, timeout: int) -> float:
    nb = jupytext.read(src)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    nb.metadata.pop("jupytext", None)
    start = time.perf_counter()
    if execute:
        os.environ.setdefault("LFS_SMOKE", "1")
        client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                                resources={"metadata": {"path": str(OUT)}})
        client.execute()
    elapsed = time.perf_counter() - start
    for cell in nb.cells:
        # Timestamps and ids that change on every run would make every rebuild a diff.
        cell.metadata.pop("execution", None)
    nbformat.validate(nb)
    nbformat.write(nb, OUT / (src.stem + ".ipynb"))
    return elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", help="chapters to build (default: all)")
    parser.add_argument("--no-execute", action="store_true")
    parser.add_argument("--timeout", type=int, default=600, help="seconds per cell")
    args = parser.parse_args(argv)
    sources = sorted(SRC.glob("[0-9][0-9]_*.py"))
    if args.names:
        wanted = {n.removesuffix(".py").removesuffix(".ipynb") for n in args.names}
        sources = [s for s in sources if s.stem in wanted]
        missing = wanted - {s.stem for s in sources}
        if missing:
            print(f"no such chapter source in {SRC}: {sorted(missing)}", file=sys.stderr)
            return 2
    for src in sources:
        elapsed = build(src, execute=not args.no_execute, timeout=args.timeout)
        print(f"{src.stem}: {elapsed:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
