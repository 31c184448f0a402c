"""Regenerate the chapters: chapters/src/NN_topic.py (jupytext percent format) -> NN_topic.ipynb,
executed in one setting (``LFS_SETTING``: smoke, book or full; see llm_from_scratch.utils).

    python tools/build_notebooks.py --setting book                    # every chapter, in place (= make book)
    python tools/build_notebooks.py --setting book 07_pretraining     # one or more, by name
    python tools/build_notebooks.py --setting smoke 03_attention      # a check: written to build/smoke/
    python tools/build_notebooks.py --setting full --out-dir runs/full 08_finetune_classification
    python tools/build_notebooks.py --no-execute --out-dir /tmp/nb    # convert only (outputs left empty)

The committed notebooks in chapters/ carry the **book** setting's outputs: only ``--setting book``
writes there by default. A smoke or full build goes to a scratch folder (``build/<setting>/``, or
``--out-dir``) and never over the committed outputs. Each executed notebook records under
``metadata["llm_from_scratch"]`` its setting, the package version, the machine and the seconds it took.

After each chapter, its Simplified Chinese twin (and its solutions notebook's) is written to
``<out-dir>/zh/`` from the notebook just built and the translations in chapters/src/zh/
(tools/zh_edition.py): the same code and outputs, not executed a second time.

Every chapter's Colab badge (cell 1) and setup cell (cell 2) are written from the repository address
in pyproject.toml's ``[project.urls]`` (``Repository``), the one place it is defined.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import sys
import time
import tomllib
from pathlib import Path

import jupytext
import nbformat

from llm_from_scratch.exercises.notebook import to_chapter, to_solutions

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "chapters" / "src"
OUT = ROOT / "chapters"
SETTINGS = ("smoke", "book", "full")
# The build's order: chapter 07 first, since 08-10 start from the checkpoint it writes.
FIRST = ("07_pretraining",)

_BADGE = re.compile(r"https://colab\.research\.google\.com/github/[^)\s]*")
_INSTALL = re.compile(r"git\+https://github\.com/[^\"'\s]*")


def repository_url(pyproject: Path = ROOT / "pyproject.toml") -> str:
    """The repository's address, from pyproject.toml's ``[project.urls] Repository``."""
    url = tomllib.loads(pyproject.read_text())["project"]["urls"]["Repository"].rstrip("/")
    if not url.startswith("https://github.com/"):
        raise ValueError(f"[project.urls] Repository must be a https://github.com/ address, got {url!r}")
    return url


def with_colab_links(nb, stem: str, url: str | None = None):
    """Write the Colab badge (cell 1) and the setup cell's install line (cell 2) from ``url``."""
    url = url or repository_url()
    owner_repo = url.removeprefix("https://github.com/")
    badge = f"https://colab.research.google.com/github/{owner_repo}/blob/main/chapters/{stem}.ipynb"
    nb.cells[0].source = _BADGE.sub(badge, nb.cells[0].source)
    nb.cells[1].source = _INSTALL.sub(f"git+{url}", nb.cells[1].source)
    return nb


def read_source(src: Path, solutions: bool = False):
    """The notebook a source turns into, before execution (the cells the committed .ipynb must have).

    Exercises: the chapter gets stubs in place of its ``### BEGIN SOLUTION`` blocks; the solutions
    notebook (``solutions=True``) keeps them, with only the setup cell and the exercise section (None:
    the chapter has no exercises).
    """
    nb = jupytext.read(src)
    nb = to_solutions(nb, src.stem) if solutions else to_chapter(nb)
    if nb is None:
        return None
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    nb.metadata.pop("jupytext", None)
    return with_colab_links(nb, src.stem)


def machine() -> str:
    """A one-line description of this machine (CPU cores, the GPU if any)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count()
    desc = f"{platform.system()} {platform.machine()}, {cores} CPU cores"
    try:
        import torch

        if torch.cuda.is_available():
            desc += f", {torch.cuda.get_device_name(0)}"
    except ImportError:
        pass
    return desc


def package_version() -> str:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]


def build(src: Path, execute: bool, timeout: int, setting: str = "book", out_dir: Path = OUT,
          solutions: bool = False) -> float | None:
    """Execute one chapter (or its solutions notebook) and write it to ``out_dir``; its seconds, or None
    for a solutions notebook of a chapter without exercises."""
    nb = read_source(src, solutions)
    if nb is None:
        return None
    start = time.perf_counter()
    if execute:
        from nbclient import NotebookClient
        from tqdm.auto import tqdm

        # The kernel inherits the setting; LFS_SMOKE is its older alias and must not contradict it.
        os.environ["LFS_SETTING"] = setting
        os.environ.pop("LFS_SMOKE", None)
        # A book-setting chapter trains for minutes: show which cell is running.
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
    if execute:
        nb.metadata["llm_from_scratch"] = {"setting": setting, "version": package_version(),
                                           "machine": machine(), "seconds": round(elapsed, 1)}
    for i, cell in enumerate(nb.cells):
        # Timestamps and random ids that change on every run would make every rebuild a diff.
        cell.metadata.pop("execution", None)
        cell.id = f"cell-{i:03d}"
    nbformat.validate(nb)
    out_dir.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, out_dir / (src.stem + ".ipynb"))
    return elapsed


def write_zh(stem: str, out_dir: Path) -> None:
    """The Chinese twins (``<out_dir>/zh/``) of the chapter and solutions notebook just written to
    ``out_dir``: their markdown and comments from chapters/src/zh/, their code and outputs unchanged
    (tools/zh_edition.py). A missing translation is reported, not fatal: tests/test_zh_edition.py fails on it."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("zh_edition", Path(__file__).with_name("zh_edition.py"))
    zh = importlib.util.module_from_spec(spec)
    sys.modules["zh_edition"] = zh  # its dataclass looks its module up there
    spec.loader.exec_module(zh)
    try:
        for path in zh.build_zh(stem, chapters=out_dir):
            print(f"zh/{path.relative_to(out_dir / 'zh')} -> {_shown(path)}")
    except zh.MissingTranslation as e:
        print(f"zh/{stem}: not written, {e} (python tools/zh_edition.py skeleton {stem}, then translate)",
              file=sys.stderr)


def _shown(path: Path) -> Path:
    return path.relative_to(ROOT) if path.is_relative_to(ROOT) else path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", help="chapters to build (default: all)")
    parser.add_argument("--setting", choices=SETTINGS, default=None,
                        help="default: LFS_SETTING / LFS_SMOKE (llm_from_scratch.utils.current_setting)")
    parser.add_argument("--no-execute", action="store_true")
    parser.add_argument("--timeout", type=int, default=1200, help="seconds per cell")
    parser.add_argument("--out-dir", type=Path, default=None,
                        help="where to write the notebooks (default: chapters/ for book, build/<setting>/ else)")
    args = parser.parse_args(argv)
    setting = args.setting
    if setting is None:
        from llm_from_scratch.utils import current_setting

        try:
            setting = current_setting()
        except ValueError as e:
            parser.error(str(e))
    default_out = OUT if setting == "book" else ROOT / "build" / setting
    out_dir = (args.out_dir if args.out_dir is not None else default_out).resolve()
    if out_dir == OUT.resolve() and setting != "book" and not args.no_execute:
        parser.error(f"chapters/ keeps the book setting's outputs; a {setting} build goes to a scratch "
                     f"folder (leave out --out-dir for build/{setting}/)")
    sources = sorted(SRC.glob("[0-9][0-9]_*.py"), key=lambda s: (s.stem not in FIRST, s.stem))
    if args.names:
        wanted = {Path(n).name.removesuffix(".py").removesuffix(".ipynb") for n in args.names}
        sources = [s for s in sources if s.stem in wanted]
        missing = wanted - {s.stem for s in sources}
        if missing:
            print(f"no such chapter source in {SRC}: {sorted(missing)}", file=sys.stderr)
            return 2
    for src in sources:
        elapsed = build(src, execute=not args.no_execute, timeout=args.timeout, setting=setting, out_dir=out_dir)
        print(f"{src.stem}: {elapsed:.1f} s ({setting}) -> {_shown(out_dir / (src.stem + '.ipynb'))}")
        if setting != "full":
            # solutions/NN_topic.ipynb, from the same source: seconds long, so always the smoke outputs
            # (nbval checks them in CI)
            sol = build(src, execute=not args.no_execute, timeout=args.timeout, setting="smoke",
                        out_dir=out_dir / "solutions", solutions=True)
            if sol is not None:
                print(f"solutions/{src.stem}: {sol:.1f} s (smoke) -> {_shown(out_dir / 'solutions' / (src.stem + '.ipynb'))}")
        if not args.no_execute:
            write_zh(src.stem, out_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
