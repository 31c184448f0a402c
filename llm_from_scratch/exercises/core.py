"""The machinery of the exercises: an ``Exercise`` (what the learner writes, the package's reference, the
public tests), a ``Mismatch`` raised by a test that fails, and ``run_tests``, which runs tests against a
learner's function and never raises.

A test is a plain function ``test(fn) -> None`` that calls the learner's ``fn`` on chosen inputs, compares
with the reference and raises ``Mismatch("what was expected, what came back, on which input")`` (or an
``AssertionError``) when they differ. Its docstring's first line is its name in the reports.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

import torch

NOT_ATTEMPTED = "not attempted yet"


class Mismatch(AssertionError):
    """A learner's answer differs from the reference: the message says expected, got, and on which input."""


@dataclass(frozen=True)
class Exercise:
    """One exercise.

    id: "CC.N" (chapter, number); title: one line; chapter: "CC_topic"; name: the function (or class)
    the learner defines; signature: how it is called, e.g. "attention(q, k, v, mask=None) -> Tensor";
    hint: where the formula is (printed with every failed test); reference: the package's
    implementation with the learner's signature; tests: the public tests; kind: "function" or "class".
    """

    id: str
    title: str
    chapter: str
    name: str
    signature: str
    hint: str
    reference: Callable
    tests: tuple[Callable[[Any], None], ...] = field(default_factory=tuple)
    kind: str = "function"


@dataclass
class Outcome:
    """The result of one test: status is "passed", "failed", "not attempted" or "error"."""

    test: str
    status: str
    message: str = ""


def test_name(test: Callable) -> str:
    doc = (test.__doc__ or "").strip()
    return doc.splitlines()[0] if doc else test.__name__


def run_tests(fn: Any, tests, *, stop_when_not_attempted: bool = True) -> list[Outcome]:
    """Run each test against ``fn``; never raises (a learner's exception is a failed test)."""
    outcomes = []
    for test in tests:
        name = test_name(test)
        try:
            test(fn)
        except NotImplementedError:
            outcomes.append(Outcome(name, "not attempted", NOT_ATTEMPTED))
            if stop_when_not_attempted:
                break
        except AssertionError as e:  # Mismatch, or a plain assert in an instructor's hidden test
            outcomes.append(Outcome(name, "failed", str(e) or "assertion failed"))
        except Exception as e:  # noqa: BLE001 - any error of the learner's code is a failed test
            outcomes.append(Outcome(name, "failed", f"raised {type(e).__name__}: {_short(str(e))}"))
        else:
            outcomes.append(Outcome(name, "passed"))
    return outcomes


def _short(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


# ---------------------------------------------------------------------------------------------
# Helpers the specs use to compare and to describe inputs.


def describe(x: Any) -> str:
    """A short description of an input: a tensor's shape and dtype, or the value of a small object."""
    if isinstance(x, torch.Tensor):
        if x.numel() <= 8 and not x.is_floating_point():
            return f"tensor({x.tolist()})"
        return f"tensor of shape {tuple(x.shape)} ({str(x.dtype).removeprefix('torch.')})"
    return _short(repr(x), 80)


def expect_close(got: Any, want: Any, on: str, *, atol: float = 1e-5, rtol: float = 1e-4, what: str = "") -> None:
    """Raise Mismatch unless ``got`` equals ``want`` (tensors: same shape, allclose; numbers: isclose)."""
    label = f"{what} " if what else ""
    on = f"on {on}: " if on else ""
    if isinstance(want, torch.Tensor):
        if not isinstance(got, torch.Tensor):
            raise Mismatch(f"{on}expected {label}a tensor of shape {tuple(want.shape)}, got {type(got).__name__}")
        if tuple(got.shape) != tuple(want.shape):
            raise Mismatch(f"{on}expected {label}shape {tuple(want.shape)}, got shape {tuple(got.shape)}")
        if want.dtype == torch.bool or not want.is_floating_point():
            if not torch.equal(got.to(want.dtype), want):
                bad = (got.to(want.dtype) != want).nonzero()[0].tolist()
                raise Mismatch(f"{on}{label}differs at index {bad}: expected "
                               f"{want[tuple(bad)].item()}, got {got[tuple(bad)].item()}")
            return
        g, w = got.detach().to(torch.float64), want.detach().to(torch.float64)
        same_inf = torch.isinf(w) & (g == w)
        ok = same_inf | torch.isclose(g, w, atol=atol, rtol=rtol)
        if not bool(ok.all()):
            bad = (~ok).nonzero()[0].tolist()
            raise Mismatch(f"{on}{label}differs at index {bad}: expected {w[tuple(bad)].item():.6g}, "
                           f"got {g[tuple(bad)].item():.6g}")
        return
    if isinstance(want, (list, tuple)) and not isinstance(want, str):
        if isinstance(got, torch.Tensor):
            got = got.tolist()
        if not isinstance(got, (list, tuple)) or len(got) != len(want):
            raise Mismatch(f"{on}expected {label}{describe(want)}, got {describe(got)}")
        for i, (a, b) in enumerate(zip(got, want)):
            expect_close(a, b, on.removeprefix("on ").removesuffix(": "), atol=atol, rtol=rtol,
                         what=f"{what} (item {i} of {len(want)})".strip())
        return
    if isinstance(want, dict):
        if not isinstance(got, dict):
            raise Mismatch(f"{on}expected {label}a dict, got {type(got).__name__}")
        for key in list(want) + [k for k in got if k not in want]:
            if got.get(key) != want.get(key):
                raise Mismatch(f"{on}{label}differ at key {key!r}: expected {want.get(key)}, got {got.get(key)}")
        return
    if isinstance(got, torch.Tensor) and got.numel() == 1:
        got = got.item()
    if isinstance(want, (int, float)) and not isinstance(want, bool):
        if not isinstance(got, (int, float)) or isinstance(got, bool) or not math.isclose(
                got, want, rel_tol=rtol, abs_tol=atol):
            raise Mismatch(f"{on}expected {label}{want:.6g}, got {describe(got)}")
        return
    if got != want:
        raise Mismatch(f"{on}expected {label}{describe(want)}, got {describe(got)}")


def generator(seed: int) -> torch.Generator:
    """The CPU generator the tests draw their inputs from (fixed seeds: the same inputs every run)."""
    return torch.Generator().manual_seed(seed)


def randn(seed: int, *shape: int) -> torch.Tensor:
    return torch.randn(*shape, generator=generator(seed))


def _clone(x: Any) -> Any:
    if isinstance(x, torch.Tensor):
        return x.clone()
    if isinstance(x, list):
        return [_clone(v) for v in x]
    if isinstance(x, tuple):
        return tuple(_clone(v) for v in x)
    return x


def same_as_reference(doc: str, reference: Callable, make_args: Callable[[], tuple], *, atol: float = 1e-5,
                      rtol: float = 1e-4, what: str = "the result", kwargs: dict | None = None) -> Callable:
    """A test: ``fn(*args)`` must equal ``reference(*args)`` on the inputs ``make_args()`` builds
    (each side gets its own copy, so an in-place change cannot leak into the other)."""
    kwargs = kwargs or {}

    def test(fn):
        args = make_args()
        want = reference(*_clone(args), **kwargs)
        got = fn(*_clone(args), **kwargs)
        expect_close(got, want, "", atol=atol, rtol=rtol, what=what)  # the test's name says what the input was

    test.__doc__ = doc
    return test
