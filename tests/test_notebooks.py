"""The shipped notebooks are the executed form of their sources in chapters/src/ and follow the
course's conventions. (nbval, in `make test`, then re-runs each one in the smoke setting with
`--nbval-lax` and compares the outputs of the cells marked `# NBVAL_CHECK_OUTPUT`.)"""

from __future__ import annotations

from pathlib import Path

import jupytext
import nbformat
import pytest

from llm_from_scratch.exercises.notebook import exercise_section_start

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted((ROOT / "chapters" / "src").glob("[0-9][0-9]_*.py"))
CHECK = "# NBVAL_CHECK_OUTPUT"
MIN_CHECKED_CELLS = 5


def _cells(nb):
    return [(c.cell_type, c.source.strip()) for c in nb.cells]


def test_every_chapter_of_the_course_map_has_a_source():
    numbers = {p.name[:2] for p in SOURCES}
    assert numbers == {f"{i:02d}" for i in range(len(numbers))}, f"chapters present: {sorted(numbers)}"


@pytest.mark.parametrize("src", SOURCES, ids=lambda p: p.stem)
def test_notebook_is_built_from_its_source(src: Path):
    ipynb = src.parents[1] / (src.stem + ".ipynb")
    assert ipynb.exists(), f"{ipynb.name} is missing: run `NB={src.stem} make book`"
    built = nbformat.read(ipynb, as_version=4)
    assert _cells(built) == _cells(_build_notebooks_tool().read_source(src)), (
        f"{ipynb.name} is stale: its cells differ from {src.relative_to(ROOT)}; run `NB={src.stem} make book`")
    assert [c.id for c in built.cells] == [f"cell-{i:03d}" for i in range(len(built.cells))], (
        f"{ipynb.name} was not written by tools/build_notebooks.py (random cell ids); run `NB={src.stem} make book`")
    meta = built.metadata.get("llm_from_scratch", {})
    assert set(meta) >= {"setting", "version", "machine", "seconds"} and meta["setting"] == "book", (
        f"{ipynb.name} lacks the build record metadata['llm_from_scratch']; run `NB={src.stem} make book`")


@pytest.mark.parametrize("src", SOURCES, ids=lambda p: p.stem)
def test_notebook_is_executed_without_errors(src: Path):
    nb = nbformat.read(src.parents[1] / (src.stem + ".ipynb"), as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code" and c.source.strip()]
    assert code and all(c.execution_count is not None for c in code), "unexecuted cells: nbval would compare nothing"
    errors = [o for c in code for o in c.outputs if o.output_type == "error"]
    assert not errors, f"committed with an error output: {errors[0].get('ename')}"


@pytest.mark.parametrize("src", SOURCES, ids=lambda p: p.stem)
def test_chapter_follows_the_conventions(src: Path):
    nb = jupytext.read(src)
    first, second = nb.cells[0], nb.cells[1]
    assert first.cell_type == "markdown" and first.source.lstrip().startswith("#"), "cell 1: the title"
    assert "colab.research.google.com" in first.source and src.stem in first.source, "cell 1: the Colab badge"
    assert second.cell_type == "code" and "google.colab" in second.source, "cell 2: the Colab setup"
    assert "SETTING = current_setting()" in second.source, "cell 2: the setting (SETTING = current_setting())"
    assert 'environ.get("LFS_SMOKE")' not in src.read_text(), "the setting is read with current_setting(), not LFS_SMOKE"
    assert "seed" in second.source, "cell 2: seeds"
    before_exercises = nb.cells[: exercise_section_start(nb) or len(nb.cells)]
    assert any(c.cell_type == "markdown" and "What to try" in c.source for c in before_exercises[-3:]), \
        "a chapter ends with 'What to try' (then its exercises)"


def _build_notebooks_tool():
    import importlib.util

    spec = importlib.util.spec_from_file_location("build_notebooks", ROOT / "tools" / "build_notebooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("src", SOURCES, ids=lambda p: p.stem)
def test_chapter_has_enough_checked_cells(src: Path):
    # --nbval-lax compares only these cells, so they are what CI checks of a chapter's text.
    checked = [c for c in jupytext.read(src).cells
               if c.cell_type == "code" and c.source.lstrip().startswith(CHECK)]
    assert len(checked) >= MIN_CHECKED_CELLS, (
        f"{src.name}: {len(checked)} cells start with {CHECK!r}; mark at least {MIN_CHECKED_CELLS} cells that "
        "state a fixed fact (the same in every setting)")
    both = [c.source.splitlines()[0] for c in checked if "NBVAL_IGNORE_OUTPUT" in c.source]
    assert not both, f"{src.name}: a cell is marked both checked and ignored"


def test_colab_links_come_from_pyproject():
    tool = _build_notebooks_tool()
    url = tool.repository_url()
    assert url.startswith("https://github.com/")
    for src in SOURCES:
        nb = tool.read_source(src)
        owner_repo = url.removeprefix("https://github.com/")
        assert f"https://colab.research.google.com/github/{owner_repo}/blob/main/chapters/{src.stem}.ipynb" \
            in nb.cells[0].source, f"{src.stem}: the badge"
        assert f"git+{url}" in nb.cells[1].source, f"{src.stem}: the setup cell"
    # And it is written, not copied: another address in pyproject.toml changes every link.
    nb = tool.with_colab_links(tool.read_source(SOURCES[0]), SOURCES[0].stem, url="https://github.com/someone/fork")
    assert "github/someone/fork/blob/main/chapters/" in nb.cells[0].source
    assert "git+https://github.com/someone/fork" in nb.cells[1].source and url not in nb.cells[1].source


def test_smoke_build_never_writes_over_the_committed_outputs(capsys):
    # The committed notebooks carry the book setting; a smoke (or full) build is a check that goes
    # to a scratch folder.
    tool = _build_notebooks_tool()
    for setting in ("smoke", "full"):
        with pytest.raises(SystemExit) as exc:
            tool.main(["--setting", setting, "--out-dir", str(ROOT / "chapters"), "00_setup"])
        assert exc.value.code == 2
        assert "scratch" in capsys.readouterr().err


def test_build_defaults_book_in_place_and_smoke_to_scratch(monkeypatch, tmp_path):
    tool = _build_notebooks_tool()
    written = []
    solutions = []
    monkeypatch.setattr(tool, "build", lambda src, execute, timeout, setting, out_dir, **kw: (
        (solutions if kw.get("solutions") else written).append((src.stem, setting, out_dir)) or 0.0))
    zh = []
    monkeypatch.setattr(tool, "write_zh", lambda stem, out_dir: zh.append((stem, out_dir)))
    assert tool.main(["--setting", "smoke", "00_setup"]) == 0
    assert tool.main(["--setting", "book", "00_setup"]) == 0
    monkeypatch.setenv("LFS_SETTING", "smoke")
    monkeypatch.delenv("LFS_SMOKE", raising=False)
    assert tool.main(["00_setup"]) == 0  # the setting comes from the environment
    assert written == [("00_setup", "smoke", (ROOT / "build" / "smoke").resolve()),
                       ("00_setup", "book", (ROOT / "chapters").resolve()),
                       ("00_setup", "smoke", (ROOT / "build" / "smoke").resolve())]
    # beside each chapter, its solutions notebook: always the smoke setting, in solutions/ of the same folder
    assert solutions == [("00_setup", "smoke", (ROOT / "build" / "smoke" / "solutions").resolve()),
                         ("00_setup", "smoke", (ROOT / "chapters" / "solutions").resolve()),
                         ("00_setup", "smoke", (ROOT / "build" / "smoke" / "solutions").resolve())]
    # and its Chinese twin, from the notebooks just written to the same folder
    assert zh == [(w[0], w[2]) for w in written]
    written.clear()
    assert tool.main(["--setting", "book", "08_finetune_classification", "07_pretraining", "00_setup"]) == 0
    assert [w[0] for w in written] == ["07_pretraining", "00_setup", "08_finetune_classification"]  # 07 first


def test_build_writes_into_out_dir_with_stable_ids(tmp_path):
    tool = _build_notebooks_tool()
    assert tool.main(["--setting", "full", "--no-execute", "--out-dir", str(tmp_path), "00_setup"]) == 0
    nb = nbformat.read(tmp_path / "00_setup.ipynb", as_version=4)
    assert _cells(nb) == _cells(tool.read_source(ROOT / "chapters" / "src" / "00_setup.py"))
    assert [c.id for c in nb.cells] == [f"cell-{i:03d}" for i in range(len(nb.cells))]  # stable ids: no diff


# Exercises: chapters/solutions/NN_topic.ipynb, built from the same source (nbval re-runs them in `make test`).
WITH_EXERCISES = [s for s in SOURCES if exercise_section_start(jupytext.read(s)) is not None]


def test_chapters_01_to_15_have_exercises():
    assert {s.name[:2] for s in WITH_EXERCISES} >= {f"{i:02d}" for i in range(1, 16)}


@pytest.mark.parametrize("src", WITH_EXERCISES, ids=lambda p: p.stem)
def test_solutions_notebook_is_built_and_executed(src: Path):
    ipynb = src.parents[1] / "solutions" / (src.stem + ".ipynb")
    assert ipynb.exists(), f"{ipynb.name} is missing: run `NB={src.stem} make book`"
    built = nbformat.read(ipynb, as_version=4)
    assert _cells(built) == _cells(_build_notebooks_tool().read_source(src, solutions=True)), (
        f"solutions/{ipynb.name} is stale: run `NB={src.stem} make book`")
    code = [c for c in built.cells if c.cell_type == "code" and c.source.strip()]
    assert all(c.execution_count is not None for c in code), "unexecuted cells"
    assert not [o for c in code for o in c.outputs if o.output_type == "error"]
    assert "not attempted" not in str([c.outputs for c in code]), "a solution still raises NotImplementedError"
