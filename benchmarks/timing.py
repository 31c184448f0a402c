"""The one timing routine every benchmark uses, so that both sides of a comparison are treated alike.

    from benchmarks.timing import compare, machine
    stats = compare({"ours": f, "reference": g}, warmup=2, repeats=7)
    stats["ours"].wall.median, stats["ours"].wall.iqr, stats["ours"].cpu.median

What "alike" means here:
- every function gets the same number of warm-up calls (not timed) and of timed calls;
- the calls are interleaved, and the order alternates from one round to the next
  (A B, B A, A B, ...), so a burst of load on a shared machine, or a cache warmed by the
  previous call, favours neither side;
- every side is summarised by the same statistic: the median, with the interquartile range
  (IQR = 75th - 25th percentile) as its spread, in wall seconds and in CPU seconds of this
  process (user + sys over all threads: steadier than the wall clock on a busy machine, since
  waiting for a core is not counted).
On a GPU, pass ``sync=torch.cuda.synchronize`` so that each call is timed to its end.
"""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import time
from dataclasses import dataclass, field
from typing import Callable


@dataclass
class Summary:
    """Median and interquartile range of a list of seconds."""

    samples: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def q1(self) -> float:
        return _quantile(self.samples, 0.25)

    @property
    def q3(self) -> float:
        return _quantile(self.samples, 0.75)

    @property
    def iqr(self) -> float:
        return self.q3 - self.q1


def _quantile(xs: list[float], q: float) -> float:
    """Linear-interpolation quantile (numpy's default), written out so this module needs nothing."""
    s = sorted(xs)
    pos = (len(s) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


@dataclass
class Timing:
    """Wall and CPU seconds of each timed call of one function, and the last value it returned."""

    wall: Summary = field(default_factory=Summary)
    cpu: Summary = field(default_factory=Summary)
    result: object = None


def compare(fns: dict[str, Callable[[], object]], *, warmup: int, repeats: int,
            sync: Callable[[], None] | None = None, setup: dict[str, Callable[[], None]] | None = None
            ) -> dict[str, Timing]:
    """Time each function ``repeats`` times after ``warmup`` untimed calls, interleaved, order alternating.

    setup[name], if given, runs (untimed) before every call of fns[name] (e.g. emptying a cache).
    Returns {name: Timing}; Timing.result is what the last call returned (for "the same" checks).
    """
    names = list(fns)
    out = {name: Timing() for name in names}
    for round_ in range(warmup + repeats):
        order = names if round_ % 2 == 0 else names[::-1]
        for name in order:
            if setup and name in setup:
                setup[name]()
            if sync:
                sync()
            w, c = time.perf_counter(), time.process_time()
            result = fns[name]()
            if sync:
                sync()
            wall, cpu = time.perf_counter() - w, time.process_time() - c
            out[name].result = result
            if round_ >= warmup:
                out[name].wall.samples.append(wall)
                out[name].cpu.samples.append(cpu)
    return out


def cpu_model() -> str:
    """The CPU's model name as ``lscpu`` gives it (``platform.processor()`` is often empty on Linux)."""
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        for line in text.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    return platform.processor() or platform.machine()


def machine(device: str = "cpu") -> str:
    """One line naming the machine: CPU model, cores, load, Python, torch and its threads, the GPU if used."""
    import torch

    gpu = f", GPU {torch.cuda.get_device_name()}" if device.startswith("cuda") else ""
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (f"{cpu_model()}, {os.cpu_count()} cores (load average {load:.1f} at start), "
            f"Python {platform.python_version()}, torch {torch.__version__} on {torch.get_num_threads()} "
            f"threads{gpu}")


def row(name: str, t: Timing, per_call: float = 1.0, unit: str = "ms") -> str:
    """A printable line: median and IQR of the wall and CPU time of one side."""
    scale = {"ms": 1e3, "s": 1.0}[unit]
    return (f"  {name:24s} wall {t.wall.median * scale / per_call:9.2f} {unit} (IQR {t.wall.iqr * scale / per_call:7.2f})"
            f"   CPU {t.cpu.median * scale / per_call:9.2f} {unit} (IQR {t.cpu.iqr * scale / per_call:7.2f})"
            f"   n={len(t.wall.samples)}")
