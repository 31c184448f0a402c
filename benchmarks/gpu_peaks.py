"""Peak dense tensor-core FLOP/s of the GPUs a learner meets, for the denominator of MFU.

    from benchmarks.gpu_peaks import gpu_peak
    gpu_peak("NVIDIA A100-SXM4-80GB")   # -> ("A100", 312e12, "bf16")

MFU = achieved FLOP/s / peak FLOP/s, so the peak must be that of the GPU the run used, in the
precision it trained in (bf16 where the card has it; fp16 on a T4). Figures are the vendors'
datasheet numbers *without* 2:4 sparsity (datasheets often print the sparse figure, twice as large):
    H100 SXM   989 TFLOP/s bf16   (NVIDIA H100 datasheet: 1,979 with sparsity)
    H100 PCIe  756 TFLOP/s bf16   (1,513 with sparsity)
    H200       989 TFLOP/s bf16   (NVIDIA H200 datasheet, SXM: 1,979 with sparsity)
    A100       312 TFLOP/s bf16   (NVIDIA A100 datasheet, SXM and PCIe alike)
    L4         121 TFLOP/s bf16   (NVIDIA L4 datasheet: 242 with sparsity)
    A10G        70 TFLOP/s bf16   (AWS's A10G datasheet: 140 with sparsity; the plain A10's 125 does not apply)
    T4          65 TFLOP/s fp16   (NVIDIA T4 datasheet, mixed precision; no bf16 tensor cores)
A GPU not in the table is not guessed: pass its peak yourself (gpu_mfu.py --peak-tflops).
"""

from __future__ import annotations

import re

# (label, words the device name must hold, words it must not hold, peak FLOP/s, precision)
GPU_PEAKS: list[tuple[str, tuple[str, ...], tuple[str, ...], float, str]] = [
    ("H100 PCIe", ("h100", "pcie"), (), 756e12, "bf16"),
    ("H100 SXM", ("h100",), ("pcie", "nvl"), 989e12, "bf16"),
    ("H200", ("h200",), ("nvl",), 989e12, "bf16"),
    ("A100", ("a100",), (), 312e12, "bf16"),
    ("L4", ("l4",), (), 121e12, "bf16"),
    ("A10G", ("a10g",), (), 70e12, "bf16"),
    ("T4", ("t4",), (), 65e12, "fp16"),
]


def gpu_peak(device_name: str) -> tuple[str, float, str] | None:
    """(label, peak FLOP/s, precision) for a CUDA device name, or None when the GPU is not in the table.

    The name is split into words ("NVIDIA A100-SXM4-80GB" -> nvidia, a100, sxm4, 80gb) so that an L40S
    is not taken for an L4, nor an H100 NVL for an H100 SXM.
    """
    words = set(re.split(r"[\s\-_/]+", device_name.lower()))
    for label, needed, excluded, peak, precision in GPU_PEAKS:
        if all(w in words for w in needed) and not any(w in words for w in excluded):
            return label, peak, precision
    return None
