"""benchmarks/timing.py, the one timing routine of every benchmark: both sides treated alike.

No speed is checked here (that is the benchmarks' job, never a unit test's): only the bookkeeping:
the order of the calls, the warm-up left out, and the statistics against numpy."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.timing import Summary, compare


def test_calls_interleave_in_alternating_order_with_the_same_warmup_and_repeats():
    calls = []
    fns = {name: (lambda name=name: calls.append(name) or name) for name in ("a", "b", "c")}
    setups = []
    out = compare(fns, warmup=2, repeats=3, setup={"b": lambda: setups.append("b")})
    # rounds alternate: a b c, c b a, a b c, ... (2 warm-up rounds, then 3 timed)
    assert calls == ["a", "b", "c", "c", "b", "a", "a", "b", "c", "c", "b", "a", "a", "b", "c"]
    assert setups == ["b"] * 5  # before every call of b, warm-up included
    for name, t in out.items():
        assert len(t.wall.samples) == len(t.cpu.samples) == 3  # the warm-up calls are not counted
        assert t.result == name  # the last value returned, for the "same result" checks


@pytest.mark.parametrize("samples", [[3.0], [5.0, 1.0], [0.3, 0.1, 0.2, 0.9], [4, 8, 15, 16, 23, 42, 7]])
def test_median_and_iqr_equal_numpy(samples):
    s = Summary(list(samples))
    assert s.median == pytest.approx(np.median(samples))
    q1, q3 = np.percentile(samples, [25, 75])  # numpy's default: linear interpolation
    assert (s.q1, s.q3) == (pytest.approx(q1), pytest.approx(q3))
    assert s.iqr == pytest.approx(q3 - q1)


def test_iqr_by_hand():
    # 1, 2, 3, 4, 5: the quartiles sit at positions 1 and 3 of the sorted list: 2 and 4
    assert Summary([5, 1, 4, 2, 3]).iqr == 2


@pytest.mark.parametrize("name, label, tflops", [
    ("NVIDIA H100 80GB HBM3", "H100 SXM", 989), ("NVIDIA H100 PCIe", "H100 PCIe", 756),
    ("NVIDIA H200", "H200", 989), ("NVIDIA A100-SXM4-80GB", "A100", 312), ("NVIDIA A100-PCIE-40GB", "A100", 312),
    ("NVIDIA L4", "L4", 121), ("NVIDIA A10G", "A10G", 70), ("Tesla T4", "T4", 65),
])
def test_gpu_peak_by_device_name(name, label, tflops):
    # the device names torch.cuda.get_device_name() reports, and the datasheets' dense peaks
    from llm_from_scratch.scaling import gpu_peak

    got = gpu_peak(name)
    assert got is not None and got[0] == label and got[1] == tflops * 1e12
    assert got[2] == ("fp16" if label == "T4" else "bf16")  # a T4 has no bf16 tensor cores


@pytest.mark.parametrize("name", ["NVIDIA L40S", "NVIDIA H100 NVL", "NVIDIA GeForce RTX 4090", "NVIDIA A10"])
def test_gpu_peak_does_not_guess(name):
    from llm_from_scratch.scaling import gpu_peak

    assert gpu_peak(name) is None  # not in the table: the caller must give the peak
