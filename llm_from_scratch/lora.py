"""LoRA: low-rank adaptation of a pretrained model, written from scratch (Hu et al., 2021).

Fine-tuning changes a pretrained weight W₀ (out × in) into W₀ + ΔW. LoRA bets that the change
has low rank and learns it as a product of two thin matrices, keeping W₀ frozen:

    h = W₀ x + (α / r) · B A x,      A: (r × in),  B: (out × r),  r ≪ min(in, out)

- A starts random (Kaiming-uniform, as ``nn.Linear`` does) and B starts at **zero**, so
  ΔW = BA = 0: the adapted model computes exactly what the pretrained one did until it trains.
- α / r scales the update so that changing r does not change how large the first steps are.
- Trainable parameters per layer: r·(in + out) instead of in·out.
- After training, ``merge_lora`` folds the update into the weight, W = W₀ + (α/r) BA: the model
  is a plain model again, with no extra cost per token.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
import torch.nn as nn
import torch.nn.functional as F


class LoRALinear(nn.Module):
    """A frozen ``nn.Linear`` plus a trainable low-rank update.

    forward: x (..., in) -> base(x) + (alpha / r) · dropout(x) Aᵀ Bᵀ, shape (..., out)
    """

    def __init__(self, base: nn.Linear, r: int, alpha: float, dropout: float = 0.0):
        super().__init__()
        if not isinstance(base, nn.Linear):
            raise TypeError(f"LoRALinear wraps an nn.Linear, got {type(base).__name__}")
        if r < 1:
            raise ValueError(f"LoRA rank r must be >= 1, got {r}")
        self.base = base
        self.base.weight.requires_grad_(False)
        if self.base.bias is not None:
            self.base.bias.requires_grad_(False)
        self.r, self.alpha = r, alpha
        self.scaling = alpha / r
        w = base.weight
        self.lora_A = nn.Parameter(torch.empty(r, base.in_features, device=w.device, dtype=w.dtype))
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, r, device=w.device, dtype=w.dtype))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))  # nn.Linear's own initialisation
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    @property
    def in_features(self) -> int:
        return self.base.in_features

    @property
    def out_features(self) -> int:
        return self.base.out_features

    @property
    def weight(self) -> torch.Tensor:
        """The frozen W₀ (so code that reads ``.weight`` of a Linear still works)."""
        return self.base.weight

    @property
    def bias(self) -> torch.Tensor | None:
        return self.base.bias

    def delta_weight(self) -> torch.Tensor:
        """ΔW = (α / r) · B A, shape (out, in)."""
        return self.scaling * (self.lora_B @ self.lora_A)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Two thin matmuls (x Aᵀ is (..., r)) instead of forming ΔW: cheaper when r is small.
        return self.base(x) + self.scaling * F.linear(F.linear(self.dropout(x), self.lora_A), self.lora_B)

    def merged(self) -> nn.Linear:
        """A plain ``nn.Linear`` with W = W₀ + (α/r) BA and the same bias."""
        lin = nn.Linear(self.in_features, self.out_features, bias=self.base.bias is not None,
                        device=self.base.weight.device, dtype=self.base.weight.dtype)
        with torch.no_grad():
            lin.weight.copy_(self.base.weight + self.delta_weight())
            if self.base.bias is not None:
                lin.bias.copy_(self.base.bias)
        return lin

    def extra_repr(self) -> str:
        return f"in={self.in_features}, out={self.out_features}, r={self.r}, alpha={self.alpha}"


def _default_targets(model: nn.Module) -> list[str]:
    """Every ``nn.Linear`` inside the repeated transformer blocks.

    The blocks are the modules held in an ``nn.ModuleList`` (GPT's ``transformer.h``, BERT's
    encoder layers): their Linear layers are the attention (q/k/v, output projection) and MLP
    projections. The embeddings, the LM head and any task head are left alone.
    """
    names = []
    for list_name, mod in model.named_modules():
        if isinstance(mod, nn.ModuleList):
            for sub_name, sub in mod.named_modules():
                if isinstance(sub, nn.Linear) and sub_name:
                    names.append(f"{list_name}.{sub_name}" if list_name else sub_name)
    return sorted(set(names))


def _matches(name: str, patterns: Iterable[str]) -> bool:
    return any(name == p or name.endswith("." + p) for p in patterns)


def _set_submodule(model: nn.Module, name: str, new: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, new)


def apply_lora(model: nn.Module, r: int = 8, alpha: float = 16.0, target_modules: Iterable[str] | None = None,
               dropout: float = 0.0) -> nn.Module:
    """Freeze every parameter of ``model`` and wrap its target Linear layers in ``LoRALinear``.

    ``target_modules``: names or name endings (``["qkv", "out_proj"]`` matches
    ``transformer.h.0.attn.qkv`` ...); by default every Linear of the attention and MLP blocks.
    Afterwards only the ``lora_A`` / ``lora_B`` parameters have ``requires_grad``; a task head
    you add or want to train must be unfrozen after this call. Modifies ``model`` in place and
    returns it.
    """
    if any(isinstance(m, LoRALinear) for m in model.modules()):
        raise ValueError("this model already has LoRA layers; merge_lora(model) first, or start from the base model")
    if target_modules is None:
        targets = _default_targets(model)
        if not targets:
            raise ValueError("found no nn.Linear inside an nn.ModuleList of transformer blocks; "
                             "name the layers to adapt with target_modules=[...]")
    else:
        patterns = [target_modules] if isinstance(target_modules, str) else list(target_modules)
        linear_names = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]
        targets = [n for n in linear_names if _matches(n, patterns)]
        if not targets:
            raise ValueError(f"target_modules={patterns} matched no nn.Linear; the model's Linear layers are "
                             f"{linear_names[:12]}{' ...' if len(linear_names) > 12 else ''}")
    for p in model.parameters():
        p.requires_grad_(False)
    for name in targets:
        _set_submodule(model, name, LoRALinear(model.get_submodule(name), r, alpha, dropout))
    return model


def lora_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The LoRA A and B matrices of every ``LoRALinear`` in the model."""
    return [p for m in model.modules() if isinstance(m, LoRALinear) for p in (m.lora_A, m.lora_B)]


@torch.no_grad()
def merge_lora(model: nn.Module) -> nn.Module:
    """Replace each ``LoRALinear`` by a plain ``nn.Linear`` with W = W₀ + (α/r) BA, in place.

    The merged model computes the same function (up to float rounding) with no LoRA overhead.
    The merged weights keep the base layer's ``requires_grad`` (False after ``apply_lora``).
    """
    names = [n for n, m in model.named_modules() if isinstance(m, LoRALinear)]
    if not names:
        raise ValueError("this model has no LoRA layers to merge; call apply_lora(model, ...) first")
    for name in names:
        lora = model.get_submodule(name)
        lin = lora.merged()
        lin.weight.requires_grad_(lora.base.weight.requires_grad)
        if lin.bias is not None:
            lin.bias.requires_grad_(lora.base.bias.requires_grad)
        _set_submodule(model, name, lin)
    return model
