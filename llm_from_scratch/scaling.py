"""Chapter 12's tools for scaling up: activation memory, gradient checkpointing, FLOPs and MFU.

- :func:`saved_activation_bytes` measures what autograd keeps for backward;
  :func:`enable_gradient_checkpointing` trades that memory for one more forward pass per block.
- :func:`flops_per_token` counts the training FLOPs of a GPT per token (6N + 12·L·H·Q·T) and
  :func:`mfu` divides the achieved FLOP/s by the peak of the GPU the run is on
  (:data:`GPU_PEAK_FLOPS`, looked up by :func:`gpu_peak_flops`).
"""

from __future__ import annotations

from collections.abc import Callable

import re

import torch
import torch.nn as nn

from llm_from_scratch.distributed import transformer_blocks

__all__ = ["saved_activation_bytes", "enable_gradient_checkpointing", "flops_per_token", "mfu", "gpu_peak_flops",
           "GPU_PEAK_FLOPS", "GPU_PEAKS", "gpu_peak", "H100_BF16_PEAK_FLOPS"]

# Dense (no 2:4 sparsity) tensor-core peaks in FLOP/s, from the vendors' data sheets (which often print
# the sparse figure, twice as large): bf16 where the GPU has it, fp16 on a T4 (no bf16 tensor cores).
#   H100 SXM 989, H100 PCIe 756, H200 989 (SXM), A100 312 (SXM and PCIe), L4 121, A10G 70 (AWS's sheet;
#   the plain A10's 125 does not apply), T4 65 fp16 TFLOP/s.
# Each row: (label, words the device name must hold, words it must not hold, peak FLOP/s, precision).
# Matching whole words of torch.cuda.get_device_name() keeps an L40S from passing for an L4, and an
# H100 NVL for an H100 SXM. A GPU not in the table is not guessed.
GPU_PEAKS: list[tuple[str, tuple[str, ...], tuple[str, ...], float, str]] = [
    ("H100 PCIe", ("h100", "pcie"), (), 756e12, "bf16"),
    ("H100 SXM", ("h100",), ("pcie", "nvl"), 989e12, "bf16"),
    ("H200", ("h200",), ("nvl",), 989e12, "bf16"),
    ("A100", ("a100",), (), 312e12, "bf16"),
    ("L4", ("l4",), (), 121e12, "bf16"),
    ("A10G", ("a10g",), (), 70e12, "bf16"),
    ("T4", ("t4",), (), 65e12, "fp16"),
]
GPU_PEAK_FLOPS: dict[str, float] = {label: peak for label, _, _, peak, _ in GPU_PEAKS}
H100_BF16_PEAK_FLOPS = GPU_PEAK_FLOPS["H100 SXM"]


def gpu_peak(device_name: str) -> tuple[str, float, str] | None:
    """(label, dense peak FLOP/s, precision) for a CUDA device name, or None when it is not in the table.

    The name is split into words ("NVIDIA A100-SXM4-80GB" -> nvidia, a100, sxm4, 80gb).
    """
    words = set(re.split(r"[\s\-_/]+", device_name.lower()))
    for label, needed, excluded, peak, precision in GPU_PEAKS:
        if all(w in words for w in needed) and not any(w in words for w in excluded):
            return label, peak, precision
    return None


def gpu_peak_flops(device_name: str | None = None) -> float:
    """The dense bf16 (T4: fp16) peak of a GPU, from :data:`GPU_PEAKS`.

    ``device_name``: as ``torch.cuda.get_device_name()`` writes it ("NVIDIA H100 80GB HBM3"); None
    asks torch for the current GPU. A GPU that is not in the table is a ValueError naming the table.
    """
    if device_name is None:
        if not torch.cuda.is_available():
            raise ValueError("MFU needs a GPU's peak FLOP/s and no GPU is visible: pass peak_flops= explicitly")
        device_name = torch.cuda.get_device_name()
    found = gpu_peak(device_name)
    if found is None:
        raise ValueError(f"no peak FLOP/s known for {device_name!r} (known: {', '.join(GPU_PEAK_FLOPS)}); "
                         "pass peak_flops= explicitly")
    return found[1]


def saved_activation_bytes(fn: Callable[[], torch.Tensor], model: nn.Module | None = None) -> int:
    """Bytes of the tensors autograd keeps for the backward pass while ``fn()`` runs its forward.

    Counted with ``torch.autograd.graph.saved_tensors_hooks`` (each saved tensor once, by storage),
    so it works the same on every device. With ``model``, tensors that are its parameters (saved,
    e.g., by a Linear to compute the gradient of its input) are left out: what remains is the
    activation memory of training.
    """
    params = set()
    if model is not None:
        params = {(p.device.type, p.untyped_storage().data_ptr()) for p in model.parameters()}
    seen: dict[tuple, int] = {}

    def pack(t: torch.Tensor):
        key = (t.device.type, t.untyped_storage().data_ptr())
        if key not in params:
            seen[key] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn()
    return sum(seen.values())


def enable_gradient_checkpointing(model: nn.Module) -> int:
    """Recompute each block's activations during backward instead of keeping them.

    The forward of every repeated block (see ``transformer_blocks``) runs under ``torch.utils.checkpoint``:
    only the block's input is saved; backward runs the block's forward again to get the rest.
    Activation memory drops from O(L · per-block) to O(L · block input + one block), for about one
    extra forward pass of compute. Parameter names are unchanged (the forward is wrapped in place).
    Returns the number of blocks wrapped.
    """
    from torch.utils.checkpoint import checkpoint

    blocks = transformer_blocks(model)
    for block in blocks:
        original = block.forward

        def forward(x, *args, _original=original, **kwargs):
            if args or kwargs or not torch.is_grad_enabled():  # e.g. generation with a KV cache
                return _original(x, *args, **kwargs)
            return checkpoint(_original, x, use_reentrant=False)

        block.forward = forward
    return len(blocks)


# ----------------------------------------------------------------------------------------------
# MFU


def flops_per_token(n_params: int, n_layer: int, n_head: int, head_dim: int, seq_len: int) -> int:
    """Training FLOPs per token ≈ 6N + 12·L·H·Q·T (PaLM, appendix B; nanoGPT's estimate_mfu).

    6N: each parameter does one multiply-add (2 FLOPs) per token forward and twice that backward.
    12·L·H·Q·T: attention's QKᵀ and AV products, 2·2·T·Q per head per layer forward, ×3 with
    backward. N is the parameter count without position embeddings (they do no matmul).
    """
    return 6 * n_params + 12 * n_layer * n_head * head_dim * seq_len



def mfu(tokens_per_s: float, flops_per_tok: float, peak_flops: float | None = None) -> float:
    """Model FLOPs utilisation: achieved FLOP/s (tokens/s × FLOPs per token) / the hardware's peak.

    ``peak_flops`` None: the peak of the GPU this process runs on (:func:`gpu_peak_flops`); with no GPU
    visible (a worked example on a laptop), the H100 SXM's, the reference chapter 12 quotes."""
    if peak_flops is None:
        peak_flops = gpu_peak_flops()  # the GPU this process runs on; with none, a ValueError
    return tokens_per_s * flops_per_tok / peak_flops
