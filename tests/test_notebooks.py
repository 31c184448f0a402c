"""The shipped notebooks are the executed form of their sources in chapters/src/ and follow the
course's conventions. (nbval, in `make test`, then re-runs each one and compares the outputs.)"""

from __future__ import annotations

from pathlib import Path

import jupytext
import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted((ROOT / "chapters" / "src").glob("[0-9][0-9]_*.py"))


def _cells(nb):
    return [(c.cell_type, c.source.strip()) for c in nb.cells]


def test_every_chapter_of_the_course_map_has_a_source():
    numbers = {p.name[:2] for p in SOURCES}
    assert {f"{i:02d}" for i in range(13)} <= numbers <= {f"{i:02d}" for i in range(16)}, f"chapters present: {sorted(numbers)}"


@pytest.mark.parametrize("src", SOURCES, ids=lambda p: p.stem)
def test_notebook_is_built_from_its_source(src: Path):
    ipynb = src.parents[1] / (src.stem + ".ipynb")
    assert ipynb.exists(), f"{ipynb.name} is missing: run `NB={src.stem} make notebooks`"
    built = nbformat.read(ipynb, as_version=4)
    assert _cells(built) == _cells(jupytext.read(src)), (
        f"{ipynb.name} is stale: its cells differ from {src.relative_to(ROOT)}; run `NB={src.stem} make notebooks`")
    assert [c.id for c in built.cells] == [f"cell-{i:03d}" for i in range(len(built.cells))], (
        f"{ipynb.name} was not written by tools/build_notebooks.py (random cell ids); run `NB={src.stem} make notebooks`")


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
    assert 'os.environ.get("LFS_SMOKE") == "1"' in second.source or "current_setting()" in second.source, \
        "cell 2: the setting"
    assert "seed" in second.source, "cell 2: seeds"
    assert any(c.cell_type == "markdown" and "What to try" in c.source for c in nb.cells[-3:]), \
        "a chapter ends with 'What to try'"


def _build_notebooks_tool():
    import importlib.util

    spec = importlib.util.spec_from_file_location("build_notebooks", ROOT / "tools" / "build_notebooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_full_setting_build_refuses_to_overwrite_the_committed_outputs(capsys):
    # The full setting's outputs (minutes of training, machine-dependent scores) must never replace
    # the CI outputs that nbval compares against.
    tool = _build_notebooks_tool()
    with pytest.raises(SystemExit) as exc:
        tool.main(["--full", "00_setup"])
    assert exc.value.code == 2
    assert "--out-dir" in capsys.readouterr().err


def test_full_setting_build_writes_into_out_dir_with_stable_ids(tmp_path):
    tool = _build_notebooks_tool()
    assert tool.main(["--full", "--no-execute", "--out-dir", str(tmp_path), "00_setup"]) == 0
    nb = nbformat.read(tmp_path / "00_setup.ipynb", as_version=4)
    assert _cells(nb) == _cells(jupytext.read(ROOT / "chapters" / "src" / "00_setup.py"))
    assert [c.id for c in nb.cells] == [f"cell-{i:03d}" for i in range(len(nb.cells))]  # stable ids: no diff
