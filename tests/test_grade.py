"""``python -m llm_from_scratch grade`` on a folder of notebooks the test writes: a correct one, a wrong one,
one that errors, one that loops forever, one that defines nothing; the CSV rows and the exit codes."""

from __future__ import annotations

import csv
import sys

import nbformat
import pytest

from llm_from_scratch.__main__ import main
from llm_from_scratch.exercises import EXERCISES

CH01 = [e for e in EXERCISES if e.startswith("01.")]

CORRECT = """
import torch
def linear_forward(x, W, b):
    return x @ W.T + b
def mse_grad(w, X, y):
    return 2 / X.shape[0] * X.T @ (X @ w - y)
def conv2d_output_size(n, kernel_size, stride=1, padding=0):
    return (n + 2 * padding - kernel_size) // stride + 1
"""
WRONG = """
def linear_forward(x, W, b):
    return x @ W.T          # forgot the bias
def mse_grad(w, X, y):
    raise NotImplementedError
"""


def _notebook(path, *cells):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c) for c in cells]
    nbformat.write(nb, path)


def _read(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
def test_grade_a_folder_of_submissions(tmp_path, capsys):
    subs = tmp_path / "subs"
    subs.mkdir()
    _notebook(subs / "a_correct.ipynb", "print('hello')", CORRECT)
    _notebook(subs / "b_wrong.ipynb", WRONG)
    _notebook(subs / "c_errors.ipynb", "1 / 0", CORRECT.replace("return (n + 2", "return (n + 1"),
              "import nonexistent_module_xyz")
    _notebook(subs / "d_loops.ipynb", "def linear_forward(x, W, b):\n    return x @ W.T + b", "while True:\n    pass",
              CORRECT)
    _notebook(subs / "e_empty.ipynb")
    hidden = tmp_path / "hidden.py"
    hidden.write_text("import torch\n"
                      "def bias_broadcast(fn):\n"
                      "    '''a single input row'''\n"
                      "    assert fn(torch.ones(3), torch.eye(3), torch.ones(3)).tolist() == [2.0, 2.0, 2.0]\n"
                      "HIDDEN_TESTS = {'01.1': [bias_broadcast]}\n")
    out = tmp_path / "grades.csv"
    code = main(["grade", str(subs), "--chapters", "01", "--hidden", str(hidden), "--out", str(out), "--timeout", "6"])
    assert code == 0
    rows = _read(out)
    assert len(rows) == 5 * len(CH01)
    status = {(r["submission"].split("/")[-1][0], r["exercise"]): r["status"] for r in rows}
    assert all(status["a", e] == "passed" for e in CH01)
    assert (status["b", "01.1"], status["b", "01.2"], status["b", "01.3"]) == ("failed", "missing", "missing")
    assert (status["c", "01.1"], status["c", "01.2"], status["c", "01.3"]) == ("passed", "passed", "failed")
    assert (status["d", "01.1"], status["d", "01.2"]) == ("passed", "missing")  # stopped at the loop
    assert all(status["e", e] == "missing" for e in CH01)
    by = {(r["submission"].split("/")[-1][0], r["exercise"]): r for r in rows}
    assert by["a", "01.1"]["total"] == str(len(EXERCISES["01.1"].tests) + 1)  # public + hidden
    assert "hidden: a single input row" in by["b", "01.1"]["failed_tests"]
    assert "2 cell(s) raised" in by["c", "01.1"]["notebook"]
    assert "timed out after 6 s" in by["d", "01.1"]["notebook"]
    summary = capsys.readouterr().out
    assert "submission" in summary and "d_loops.ipynb" in summary and f"wrote {len(rows)} rows" in summary


@pytest.mark.slow
def test_a_function_that_never_returns_costs_only_its_own_exercise(tmp_path):
    """The tests of each exercise run in their own cell: a hanging function is interrupted at the limit and
    the next exercise is still graded; a function that kills the kernel leaves the earlier rows intact."""
    hangs = CORRECT.replace("return x @ W.T + b", "while True:\n        pass")
    kills = CORRECT.replace("return 2 / X.shape[0]", "import os; os._exit(1)\n    return 2 / X.shape[0]")
    _notebook(tmp_path / "a_hangs.ipynb", hangs)
    _notebook(tmp_path / "b_kills.ipynb", kills)
    out = tmp_path / "grades.csv"
    assert main(["grade", str(tmp_path), "--chapters", "01", "--out", str(out), "--timeout", "8"]) == 0
    by = {(r["submission"].split("/")[-1][0], r["exercise"]): r for r in _read(out)}
    assert [by["a", e]["status"] for e in CH01] == ["error", "passed", "passed"]
    assert "did not finish in 8 s" in by["a", "01.1"]["failed_tests"]
    assert "the tests of 01.1 timed out" in by["a", "01.2"]["notebook"]
    assert [by["b", e]["status"] for e in CH01] == ["passed", "error", "error"]
    assert by["b", "01.2"]["failed_tests"] == "the kernel died"
    assert by["b", "01.3"]["failed_tests"] == "not tested: the kernel died"


@pytest.mark.parametrize("argv, message", [
    (["grade", "no/such.ipynb"], "is not a notebook"),
    (["grade", "{nb}", "--chapters", "99"], "chapters with exercises are"),
    (["grade", "{nb}", "--hidden", "no/such.py"], "no such file"),
    (["grade", "{nb}", "--timeout", "0"], "--timeout must be"),
])
def test_bad_usage_is_one_line_and_exit_2(tmp_path, capsys, argv, message):
    _notebook(tmp_path / "x.ipynb", "pass")
    code = main([a.replace("{nb}", str(tmp_path / "x.ipynb")) for a in argv])
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1 and "Traceback" not in err


def test_missing_instructor_extra_says_what_to_install(tmp_path, capsys, monkeypatch):
    _notebook(tmp_path / "x.ipynb", "pass")
    monkeypatch.setitem(sys.modules, "nbclient", None)  # import nbclient now raises ImportError
    assert main(["grade", str(tmp_path / "x.ipynb")]) == 2
    assert "pip install 'llm_from_scratch[instructor]'" in capsys.readouterr().err
