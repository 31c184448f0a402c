"""``python -m llm_from_scratch grade SUBMISSIONS... [--chapters 03,04] [--hidden PATH] [--out grades.csv]
[--timeout S]``: grade learners' chapter notebooks.

Each submitted notebook runs in a fresh Jupyter kernel (the ``[instructor]`` extra: nbclient, ipykernel),
top to bottom, with at most S seconds for the whole notebook (cells that raise do not stop it; a cell still
running at the limit is interrupted and the rest skipped). Then, in the same kernel, one more cell per
exercise (at most S seconds each, after a minute for the imports) looks
up the exercise's function by its registered name (``EXERCISES[id].name``) and runs the public tests and,
with ``--hidden``, the instructor's own tests (a Python file defining ``HIDDEN_TESTS = {"03.2": [test, ...]}``;
see tools/example_hidden_tests.py; keep the real one private: everything in the package is readable by
learners). A function whose tests do not finish in S seconds is interrupted: that exercise is an error,
and the next exercise is still tested.

Which exercises: ``--chapters 03,04``, else the chapter named by the notebook's file name ("03_attention.ipynb",
"alice_03_attention.ipynb" -> 03), else all of them. The kernel runs with ``LFS_SETTING=smoke`` unless the variable is set: a chapter's
training cells then take seconds, not minutes.

Output: one CSV row per submission and exercise (status passed / failed / missing / error, tests passed,
which tests failed and why, and what happened to the notebook), and a summary table on the terminal.
Exit 0 when grading completed, whatever the scores; 2 on bad usage (one line, no traceback).

This runs the submitted code with your permissions: grade untrusted submissions inside a container.
"""

from __future__ import annotations

import csv
import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path

FIELDS = ["submission", "exercise", "name", "status", "passed", "total", "failed_tests", "notebook"]
IMPORT_ALLOWANCE_S = 60  # the testing cell may first import torch and the package: slow on a busy machine
INSTALL_HINT = "grade needs a notebook executor and kernel: pip install 'llm_from_scratch[instructor]'"


class GradeUsageError(Exception):
    """A bad command line or input: reported in one line, exit code 2."""


def add_parser(sub) -> None:
    p = sub.add_parser("grade", help="grade submitted chapter notebooks (instructors)",
                       description="Execute each submitted notebook in a fresh kernel and run the exercises' "
                                   "tests on the functions it defines. Runs submitted code: use a container "
                                   "for untrusted submissions.")
    p.add_argument("submissions", nargs="+", help="notebooks (.ipynb), or folders of them")
    p.add_argument("--chapters", help="comma-separated chapter numbers, e.g. 03,04 (default: from each file name)")
    p.add_argument("--hidden", help="a Python file defining HIDDEN_TESTS (keep it private)")
    p.add_argument("--out", default="grades.csv", help="the CSV to write (default grades.csv)")
    p.add_argument("--timeout", type=float, default=600.0,
                   help="seconds for running each notebook (default 600), and again for each exercise's tests")
    p.set_defaults(func=cmd_grade)


def cmd_grade(args) -> int:
    try:
        return grade(args.submissions, chapters=args.chapters, hidden=args.hidden, out=args.out, timeout=args.timeout)
    except GradeUsageError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


def _notebooks(submissions: list[str]) -> list[Path]:
    found = []
    for s in submissions:
        p = Path(s)
        if p.is_dir():
            found += sorted(p.glob("*.ipynb"))
        elif p.is_file() and p.suffix == ".ipynb":
            found.append(p)
        else:
            raise GradeUsageError(f"{s} is not a notebook (.ipynb) or a folder: give the submitted notebooks")
    if not found:
        raise GradeUsageError(f"no .ipynb files in {', '.join(submissions)}")
    return found


def _exercise_ids(path: Path, chapters: list[str] | None) -> list[str]:
    from llm_from_scratch.exercises import EXERCISES

    if chapters is None:
        m = re.search(r"(?<!\d)(\d\d)_", path.name)  # "03_attention.ipynb", "alice_03_attention.ipynb"
        chapters = [m.group(1)] if m and any(e.startswith(m.group(1) + ".") for e in EXERCISES) else None
    return [e for e in EXERCISES if chapters is None or e[:2] in chapters]


def grade(submissions: list[str], *, chapters: str | None = None, hidden: str | None = None,
          out: str = "grades.csv", timeout: float = 600.0) -> int:
    from llm_from_scratch.exercises import EXERCISES, load_hidden_tests

    try:
        import nbclient  # noqa: F401
        import nbformat  # noqa: F401
        import ipykernel  # noqa: F401
    except ImportError:
        raise GradeUsageError(INSTALL_HINT) from None
    if not timeout > 0:
        raise GradeUsageError(f"--timeout must be a positive number of seconds, got {timeout}")
    wanted = None
    if chapters is not None:
        wanted = [c.strip().zfill(2) for c in chapters.split(",") if c.strip()]
        have = sorted({e[:2] for e in EXERCISES})
        unknown = [c for c in wanted if c not in have]
        if unknown or not wanted:
            raise GradeUsageError(f"--chapters {chapters!r}: chapters with exercises are {','.join(have)}")
    if hidden is not None:
        if not Path(hidden).is_file():
            raise GradeUsageError(f"--hidden {hidden}: no such file")
        try:
            load_hidden_tests(hidden)
        except Exception as e:  # noqa: BLE001 - any problem of the instructor's file, in one line
            raise GradeUsageError(f"--hidden {hidden}: {type(e).__name__}: {e}") from None
        hidden = str(Path(hidden).resolve())
    notebooks = _notebooks(submissions)

    rows = []
    for nb_path in notebooks:
        ids = _exercise_ids(nb_path, wanted)
        print(f"grading {nb_path} ({len(ids)} exercises) ...", flush=True)
        rows += grade_notebook(nb_path, ids, hidden, timeout)
    out_path = Path(out)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(out_path.name + ".tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, out_path)  # never a half-written CSV
    _print_summary(rows)
    print(f"wrote {len(rows)} rows to {out_path}")
    return 0


def _print_summary(rows: list[dict]) -> None:
    by_sub: dict[str, list[dict]] = {}
    for r in rows:
        by_sub.setdefault(r["submission"], []).append(r)
    width = max(len(s) for s in by_sub)
    print(f"\n{'submission':<{width}}  passed  failed  missing  error  notebook")
    for sub, rs in by_sub.items():
        n = {k: sum(r["status"] == k for r in rs) for k in ("passed", "failed", "missing", "error")}
        print(f"{sub:<{width}}  {n['passed']:>6}  {n['failed']:>6}  {n['missing']:>7}  {n['error']:>5}  {rs[0]['notebook']}")


def _rows(path: Path, ids: list[str], status: str, note: str, why: str = "") -> list[dict]:
    from llm_from_scratch.exercises import EXERCISES

    return [{"submission": str(path), "exercise": e, "name": EXERCISES[e].name, "status": status, "passed": 0,
             "total": len(EXERCISES[e].tests), "failed_tests": why, "notebook": note} for e in ids]


def grade_notebook(path: Path, ids: list[str], hidden: str | None, timeout: float) -> list[dict]:
    """Execute one notebook in a fresh kernel, then test its functions in that kernel. Never raises."""
    with tempfile.TemporaryDirectory(prefix="lfs-grade-") as tmp:
        return _run_and_test(path, ids, hidden, timeout, Path(tmp))


def _run_and_test(path: Path, ids: list[str], hidden: str | None, timeout: float, report_dir: Path) -> list[dict]:
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellTimeoutError, DeadKernelError
    from nbclient.util import run_sync

    try:
        nb = nbformat.read(path, as_version=4)
    except Exception as e:  # noqa: BLE001 - an unreadable file still gets its rows
        return _rows(path, ids, "error", f"unreadable: {type(e).__name__}", str(e)[:200])
    code = [c for c in nb.cells if c.cell_type == "code"]
    for c in code:
        c.outputs = []
    # One testing cell per exercise, so that a function that never returns costs its own exercise only:
    # at the limit the kernel is interrupted and the next exercise is tested. Each report goes to a file,
    # not to the cell's output: after an interrupted cell the kernel's output messages can arrive out of
    # order, a file cannot.
    setup = nbformat.v4.new_code_cell(
        "import json as _lfs_json, os as _lfs_os\n"
        "from llm_from_scratch.exercises import grade_namespace as lfs_grade_namespace\n")
    testing = {}
    for i, eid in enumerate(ids):
        # the report is complete or absent: a test that kills the kernel leaves no empty file behind
        testing[eid] = nbformat.v4.new_code_cell(
            f"_lfs_rows = lfs_grade_namespace(globals(), {[eid]!r}, {hidden!r})\n"
            f"with open({str(report_dir / f'{i}.tmp')!r}, 'w') as _lfs_f:\n"
            f"    _lfs_json.dump(_lfs_rows, _lfs_f)\n"
            f"_lfs_os.replace({str(report_dir / f'{i}.tmp')!r}, {str(report_dir / f'{i}.json')!r})\n")
    nb.cells += [setup, *testing.values()]
    client = NotebookClient(nb, timeout=int(timeout), kernel_name="python3", allow_errors=True,
                            interrupt_on_timeout=False, shutdown_kernel="immediate",
                            resources={"metadata": {"path": str(path.parent.resolve())}})
    env_before = os.environ.get("LFS_SETTING")
    os.environ.setdefault("LFS_SETTING", "smoke")  # the kernel inherits it
    notes, errors, timed_out, finished, stopped = [], 0, set(), set(), ""
    current = None  # the exercise whose tests are running: if the kernel dies, it says why
    try:
        with client.setup_kernel():
            deadline = time.monotonic() + timeout
            for cell in code:
                left = deadline - time.monotonic()
                if left <= 0:
                    notes.append(f"timed out after {timeout:g} s")
                    break
                client.timeout = max(1, int(left))
                try:
                    client.execute_cell(cell, nb.cells.index(cell))
                except CellTimeoutError:
                    notes.append(f"timed out after {timeout:g} s")
                    run_sync(client.km.interrupt_kernel)()  # stop the loop; the kernel lives on
                    break
                errors += any(o.get("output_type") == "error" for o in cell.outputs)
            if errors:
                notes.append(f"{errors} cell(s) raised")
            client.timeout = IMPORT_ALLOWANCE_S
            try:
                client.execute_cell(setup, nb.cells.index(setup))
            except CellTimeoutError:
                note = "; ".join(notes + ["its tests timed out"])
                return _rows(path, ids, "error", note, f"the tests did not start in {client.timeout} s")
            client.timeout = max(1, int(timeout))
            for current, cell in testing.items():
                try:
                    client.execute_cell(cell, nb.cells.index(cell))
                except CellTimeoutError:
                    timed_out.add(current)
                    run_sync(client.km.interrupt_kernel)()  # the next exercise's tests still run
                finished.add(current)
    except DeadKernelError:
        notes.append("the kernel died")
        stopped = "the kernel died"
    except Exception as e:  # noqa: BLE001 - a broken kernel or notebook still gets its rows
        notes.append(type(e).__name__)
        stopped = str(e)[:200]
    finally:
        if env_before is None:
            os.environ.pop("LFS_SETTING", None)
    if timed_out:
        notes.append(f"the tests of {', '.join(sorted(timed_out))} timed out")
    note = "; ".join(notes) or "ran"
    rows = []
    for i, (eid, cell) in enumerate(testing.items()):
        report = report_dir / f"{i}.json"
        if eid in timed_out:  # checked first: an interrupted cell may have left half a report
            rows += _rows(path, [eid], "error", note, f"its tests did not finish in {client.timeout} s")
        elif report.exists():
            rows += [{"submission": str(path), **r, "notebook": note} for r in json.loads(report.read_text())]
        elif stopped and eid not in finished:  # the exercise it stopped in says why; the later ones were not run
            rows += _rows(path, [eid], "error", note, stopped if current in (None, eid) else f"not tested: {stopped}")
        else:
            errs = [o for o in setup.outputs + cell.outputs if o.get("output_type") == "error"]
            why = f"{errs[0]['ename']}: {errs[0]['evalue']}" if errs else "no report"
            rows += _rows(path, [eid], "error", note, f"grading failed: {why}"[:300])
    return rows
