"""Chapter 12's tools for scaling up: activation memory, gradient checkpointing, FLOPs and MFU.

- :func:`saved_activation_bytes` measures what autograd keeps for backward;
  :func:`enable_gradient_checkpointing` trades that memory for one more forward pass per block.
- :func:`flops_per_token` counts the training FLOPs of a GPT per token (6N + 12·L·H·Q·T) and
  :func:`mfu` divides the achieved FLOP/s by the peak of the GPU the run is on
  (:data:`GPU_PEAK_FLOPS`, looked up by :func:`gpu_peak_flops`).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn as nn

from llm_from_scratch.distributed import transformer_blocks

__all__ = ["saved_activation_bytes", "enable_gradient_checkpointing", "flops_per_token", "mfu", "gpu_peak_flops",
           "GPU_PEAK_FLOPS", "H100_BF16_PEAK_FLOPS"]

# Dense (no sparsity) tensor-core peaks in FLOP/s, from the vendors' data sheets: bf16 where the GPU
# has it, fp16 on a T4 (no bf16 there). Matched against torch.cuda.get_device_name() in this order
# (the first name that is a substring wins, so "H100 PCIe" is tried before "H100").
GPU_PEAK_FLOPS: dict[str, float] = {
    "H100 PCIe": 756e12,
    "H100": 989e12,  # SXM
    "H200": 989e12,
    "A100": 312e12,
    "L4": 121e12,
    "A10G": 70e12,
    "T4": 65e12,  # fp16
}
H100_BF16_PEAK_FLOPS = GPU_PEAK_FLOPS["H100"]


def gpu_peak_flops(device_name: str | None = None) -> float:
    """The dense bf16 (T4: fp16) peak of a GPU, from :data:`GPU_PEAK_FLOPS`.

    ``device_name``: as ``torch.cuda.get_device_name()`` writes it ("NVIDIA H100 80GB HBM3"); None
    asks torch for the current GPU. A GPU that is not in the table is a ValueError naming the table.
    """
    if device_name is None:
        if not torch.cuda.is_available():
            raise ValueError("MFU needs a GPU's peak FLOP/s and no GPU is visible: pass peak_flops= explicitly")
        device_name = torch.cuda.get_device_name()
    for name, flops in GPU_PEAK_FLOPS.items():
        if name.lower() in device_name.lower():
            return flops
    raise ValueError(f"no peak FLOP/s known for {device_name!r} (known: {', '.join(GPU_PEAK_FLOPS)}); "
                     "pass peak_flops= explicitly")


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
        peak_flops = gpu_peak_flops() if torch.cuda.is_available() else H100_BF16_PEAK_FLOPS
    return tokens_per_s * flops_per_tok / peak_flops
