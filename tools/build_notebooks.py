"""Regenerate the chapters: chapters/src/NN_topic.py (jupytext percent format) -> chapters/NN_topic.ipynb,
executed in place with the CI setting (LFS_SMOKE=1), so that the committed outputs are the ones
nbval compares against.

    python tools/build_notebooks.py                 # every chapter
    python tools/build_notebooks.py 03_attention    # one or more, by name (with or without .py)
    python tools/build_notebooks.py --no-execute    # convert only (outputs left empty)
    python tools/build_notebooks.py --full 08_finetune_classification --out-dir runs/full
        # the full setting (LFS_SMOKE unset: full-size models and data; a GPU, or a long CPU run),
        # written to runs/full/ so that the committed SMOKE outputs stay as they are
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
from tqdm.auto import tqdm

from llm_from_scratch.exercises.notebook import to_chapter, to_solutions

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "chapters" / "src"
OUT = ROOT / "chapters"


def build(src: Path, execute: bool, timeout: int, full: bool = False, out_dir: Path = OUT,
          solutions: bool = False) -> float | None:
    nb = jupytext.read(src)
    # Exercises: the chapter gets stubs in place of the solution blocks; the solutions notebook keeps them,
    # with only the setup cell and the exercise section (None: the chapter has no exercises).
    nb = to_solutions(nb, src.stem) if solutions else to_chapter(nb)
    if nb is None:
        return None
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    nb.metadata.pop("jupytext", None)
    start = time.perf_counter()
    if execute:
        if full:
            os.environ.pop("LFS_SMOKE", None)
        else:
            os.environ.setdefault("LFS_SMOKE", "1")
        # A full-setting chapter trains for many minutes: show which cell is running.
        cells = tqdm(total=len(nb.cells), desc=src.stem, unit="cell", leave=False)
        client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                                resources={"metadata": {"path": str(OUT)}},
                                on_cell_executed=lambda cell, cell_index, execute_reply: cells.update(
                                    cell_index + 1 - cells.n))
        try:
            client.execute()
        finally:
            cells.close()
    elapsed = time.perf_counter() - start
    for i, cell in enumerate(nb.cells):
        # Timestamps and random ids that change on every run would make every rebuild a diff.
        cell.metadata.pop("execution", None)
        cell.id = f"cell-{i:03d}"
    nbformat.validate(nb)
    out_dir.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, out_dir / (src.stem + ".ipynb"))
    return elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", help="chapters to build (default: all)")
    parser.add_argument("--no-execute", action="store_true")
    parser.add_argument("--timeout", type=int, default=600, help="seconds per cell")
    parser.add_argument("--full", action="store_true",
                        help="run the full setting (LFS_SMOKE unset) instead of the CI one; needs --out-dir")
    parser.add_argument("--out-dir", type=Path, default=None,
                        help="where to write the executed notebooks (default: chapters/)")
    args = parser.parse_args(argv)
    out_dir = (args.out_dir if args.out_dir is not None else OUT).resolve()
    if args.full and out_dir == OUT.resolve():
        parser.error("--full writes full-setting outputs; give --out-dir (e.g. runs/full) so that the "
                     "committed chapters/ keep the CI outputs nbval compares against")
    sources = sorted(SRC.glob("[0-9][0-9]_*.py"))
    if args.names:
        wanted = {n.removesuffix(".py").removesuffix(".ipynb") for n in args.names}
        sources = [s for s in sources if s.stem in wanted]
        missing = wanted - {s.stem for s in sources}
        if missing:
            print(f"no such chapter source in {SRC}: {sorted(missing)}", file=sys.stderr)
            return 2
    for src in sources:
        elapsed = build(src, execute=not args.no_execute, timeout=args.timeout, full=args.full, out_dir=out_dir)
        print(f"{src.stem}: {elapsed:.1f} s")
        if not args.full:  # chapters/solutions/NN_topic.ipynb, from the same source
            elapsed = build(src, execute=not args.no_execute, timeout=args.timeout, out_dir=out_dir / "solutions",
                            solutions=True)
            if elapsed is not None:
                print(f"solutions/{src.stem}: {elapsed:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
