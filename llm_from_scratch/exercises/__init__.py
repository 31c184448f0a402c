"""Exercises that check themselves.

In a chapter, the learner writes a function under a fixed name and runs ``check("03.2", attention)``:

    from llm_from_scratch.exercises import check

    def attention(q, k, v, mask=None):
        raise NotImplementedError     # the learner replaces this line
    check("03.2", attention)          # prints "not attempted yet", then one line per failed test

``check(exercise_id, fn) -> bool`` runs the public tests of ``EXERCISES[exercise_id]`` (an
``Exercise``: title, chapter, the name and signature the learner writes, ``reference`` = the package's
implementation, the tests) and returns True only when every test passes. It never raises on a wrong
answer; an unknown id prints one line listing the ids.

Adding an exercise (e.g. for chapter 13) is one entry: write its reference and tests in a spec module
of this package (``specs_13_15.py``, one per group of chapters; every ``specs_*.py`` is found by name)
and add ``Exercise(...)`` to that module's ``EXERCISES`` list. Then append the exercise cell to the chapter
source (a solution between ``### BEGIN SOLUTION`` / ``### END SOLUTION``, then ``check("13.1", name)``)
and give tests/test_exercises.py one plausible mistake for it in ``MISTAKES`` (its tests loop over the
registry and ask for one).
"""

from __future__ import annotations

import importlib
import pkgutil
import runpy
from pathlib import Path
from typing import Any

from llm_from_scratch.exercises.core import NOT_ATTEMPTED, Exercise, Mismatch, Outcome, run_tests

__all__ = ["EXERCISES", "Exercise", "Mismatch", "Outcome", "check", "run_tests", "load_hidden_tests",
           "grade_namespace", "NOT_ATTEMPTED"]

def _spec_modules() -> list[str]:
    """Every ``specs_*.py`` module of this package: a new one is picked up without being listed."""
    return sorted(m.name for m in pkgutil.iter_modules(__path__) if m.name.startswith("specs_"))


def _registry() -> dict[str, Exercise]:
    out: dict[str, Exercise] = {}
    for name in _spec_modules():
        module = importlib.import_module(f"llm_from_scratch.exercises.{name}")
        for ex in module.EXERCISES:
            if ex.id in out:
                raise RuntimeError(f"exercise id {ex.id} is defined twice (in {name})")
            out[ex.id] = ex
    return dict(sorted(out.items()))


EXERCISES: dict[str, Exercise] = _registry()


def check(exercise_id: str, fn: Any) -> bool:
    """Run the public tests of ``exercise_id`` against ``fn``; print what failed and why; True if all pass."""
    ex = EXERCISES.get(exercise_id)
    if ex is None:
        print(f"unknown exercise id {exercise_id!r}: the ids are {', '.join(EXERCISES)}")
        return False
    outcomes = run_tests(fn, ex.tests)
    if any(o.status == "not attempted" for o in outcomes):
        print(f"{ex.id} {ex.name}: {NOT_ATTEMPTED} (replace `raise NotImplementedError` with your code)")
        return False
    failed = [o for o in outcomes if o.status != "passed"]
    for o in failed:
        print(f"✗ {ex.id} [{o.test}] {o.message}. Hint: {ex.hint}")
    if failed:
        print(f"{ex.id} {ex.name}: {len(outcomes) - len(failed)} of {len(outcomes)} tests passed")
        return False
    print(f"✓ {ex.id} {ex.name}: all {len(outcomes)} test{'s' if len(outcomes) != 1 else ''} passed")
    return True


def load_hidden_tests(path: str | Path | None) -> dict[str, list]:
    """An instructor's grading tests: a Python file defining ``HIDDEN_TESTS = {"03.2": [test, ...]}``,
    each test a function ``test(fn)`` that raises AssertionError (or ``Mismatch``) when ``fn`` is wrong.
    See tools/example_hidden_tests.py."""
    if path is None:
        return {}
    namespace = runpy.run_path(str(path))
    hidden = namespace.get("HIDDEN_TESTS")
    if not isinstance(hidden, dict):
        raise ValueError(f"{path} must define HIDDEN_TESTS = {{exercise_id: [test, ...]}}")
    unknown = sorted(set(hidden) - set(EXERCISES))
    if unknown:
        raise ValueError(f"{path}: unknown exercise ids {unknown}; the ids are {', '.join(EXERCISES)}")
    return {k: list(v) for k, v in hidden.items()}


def grade_namespace(namespace: dict, ids: list[str], hidden_path: str | None = None) -> list[dict]:
    """One row per exercise: look up the learner's function by its registered name in ``namespace`` (an
    executed notebook's globals) and run the public tests, then the hidden ones. Used by ``grade``."""
    hidden = load_hidden_tests(hidden_path)
    rows = []
    for eid in ids:
        ex = EXERCISES[eid]
        fn = namespace.get(ex.name)
        if fn is None:
            rows.append({"exercise": eid, "name": ex.name, "status": "missing", "passed": 0,
                         "total": len(ex.tests) + len(hidden.get(eid, [])), "failed_tests": ""})
            continue
        outcomes = run_tests(fn, ex.tests, stop_when_not_attempted=False)
        outcomes += [Outcome("hidden: " + o.test, o.status, o.message)
                     for o in run_tests(fn, hidden.get(eid, []), stop_when_not_attempted=False)]
        n_pass = sum(o.status == "passed" for o in outcomes)
        if all(o.status == "not attempted" for o in outcomes):
            status = "missing"
        else:
            status = "passed" if n_pass == len(outcomes) else "failed"
        failed = "; ".join(f"{o.test}: {o.message}" for o in outcomes if o.status != "passed")
        rows.append({"exercise": eid, "name": ex.name, "status": status, "passed": n_pass, "total": len(outcomes),
                     "failed_tests": NOT_ATTEMPTED if status == "missing" else failed})
    return rows
