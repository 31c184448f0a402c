"""Pick the device and the mixed-precision mode from the hardware.

Rules (chapter 00 and 12 explain them):

- device: ``cuda`` if available, else ``mps``, else ``cpu``; an explicit choice wins.
- precision on CUDA: bf16 autocast when the compute capability is >= 8.0 (Ampere and newer);
  fp16 autocast with a ``GradScaler`` below that (Colab's T4 is 7.5). We judge by capability,
  not ``torch.cuda.is_bf16_supported()``, which answers True on a T4 where bf16 is emulated and slow.
- precision on the CPU and MPS: fp32 unless asked.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

PRECISIONS = ("fp32", "bf16", "fp16")


def select_device(requested: str | None = None) -> torch.device:
    """Return ``torch.device(requested)`` or the best available: cuda -> mps -> cpu."""
    if requested not in (None, "", "auto"):
        dev = torch.device(requested)
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError(f"device {requested!r} was asked for, but this machine has no CUDA GPU; "
                               "use --device cpu (or leave it out to pick automatically)")
        if dev.type == "mps" and not torch.backends.mps.is_available():
            raise RuntimeError(f"device {requested!r} was asked for, but MPS is not available here; "
                               "use --device cpu (or leave it out to pick automatically)")
        return dev
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def precision_for_capability(capability: tuple[int, int] | None) -> str:
    """The autocast precision for a CUDA compute capability ``(major, minor)``; None means no CUDA GPU.

    >>> precision_for_capability((7, 5)), precision_for_capability((8, 0)), precision_for_capability(None)
    ('fp16', 'bf16', 'fp32')
    """
    if capability is None:
        return "fp32"
    return "bf16" if tuple(capability) >= (8, 0) else "fp16"


def select_precision(device: torch.device | str, requested: str | None = None) -> str:
    """``requested`` if given (one of fp32 / bf16 / fp16), else the rule above for ``device``."""
    device = torch.device(device)
    if requested not in (None, "", "auto"):
        if requested not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS} or 'auto', got {requested!r}")
        return requested
    if device.type != "cuda":
        return "fp32"
    return precision_for_capability(torch.cuda.get_device_capability(device))


@dataclass(frozen=True)
class Precision:
    """What a precision name means for a training step."""

    name: str

    def __post_init__(self):
        if self.name not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.name!r}")

    @property
    def autocast_dtype(self) -> torch.dtype | None:
        return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[self.name]

    @property
    def needs_grad_scaler(self) -> bool:
        # fp16 has 5 exponent bits: small gradients underflow to zero unless the loss is scaled up.
        return self.name == "fp16"
