"""A modern decoder (Llama 3, Qwen3, SmolLM): GPT-2's block with RMSNorm, rotary positions (RoPE),
a SwiGLU feed-forward, grouped-query attention, no biases; Llama and Qwen3 weights in and out of
the Hugging Face format.

A Llama maps token ids idx (B, T) to next-token logits (B, T, V):

    x_0 = wte[idx]                                       token embeddings only: no position table
    x_l = x_{l-1} + Attn(RMSNorm_1(x_{l-1}))             RoPE rotates q and k inside attention
    x_l = x_l     + SwiGLU(RMSNorm_2(x_l))
    logits = RMSNorm_f(x_L) W_outᵀ                       W_out = wte when tie_embeddings

    RMSNorm(x)  = γ ⊙ x / √(mean(x²) + ε)               no mean subtracted, no β
    SwiGLU(x)   = W₂ (SiLU(W₁ x) ⊙ W₃ x),  SiLU(z) = z σ(z)     W₁, W₃: d -> F, W₂: F -> d
    RoPE: in each head, the pair (x_i, x_{i+D/2}) of a query or key at position m is rotated by the
          angle m·θ_i, θ_i = theta^(−2i/D), i = 0 .. D/2 − 1 (D = head_dim), so that
          q_mᵀ k_n depends on m − n only
    GQA:  H query heads share K key/value heads (K divides H); query head h reads kv head h // (H/K)
    Qwen3 (qk_norm): an RMSNorm over head_dim on every query and key head, before RoPE

Parameters, with V the vocabulary, L layers, d = n_embd, H = n_head, K = n_kv_head,
D = head_dim, F = intermediate_size (bias=False):

    N = V·d·(1 if tied else 2) + L·(2·d·H·D + 2·d·K·D + 3·d·F + 2·d [+ 2·D with qk_norm]) + d
    (per block: W_q d·HD, W_k and W_v d·KD each, W_o HD·d, SwiGLU 3·d·F, two RMSNorm γ; final γ d)

Module names: ``transformer.wte``, ``transformer.h[i].{attn_norm, attn, mlp_norm, mlp}``,
``transformer.norm_f``, ``lm_head`` (the GPT's layout); ``attn`` is the course's
``MultiHeadAttention`` (fused ``qkv`` = [W_q; W_k; W_v], ``out_proj``), ``mlp`` holds w1, w2, w3.
``Llama.from_hf`` / ``to_hf`` translate to and from ``LlamaForCausalLM`` / ``Qwen3ForCausalLM``.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from llm_from_scratch.attention import MultiHeadAttention
from llm_from_scratch.generate import generate
from llm_from_scratch.gpt import load_hf_checkpoint

__all__ = [
    "LlamaConfig",
    "RMSNorm",
    "rope_frequencies",
    "rotate_half",
    "apply_rope",
    "SwiGLU",
    "LlamaAttention",
    "LlamaBlock",
    "Llama",
    "llama_parameter_count",
    "kv_cache_bytes_per_token",
]


# --------------------------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------------------------
@dataclass
class LlamaConfig:
    """The shape of a Llama-style decoder. The defaults: GPT-2 small's size (12 layers, 768 wide,
    12 heads, 1024 positions, GPT-2's vocabulary) with grouped-query attention (4 kv heads) and a
    SwiGLU of 8/3·d = 2048, which has as many weights as GPT-2's 4·d GELU MLP."""

    vocab_size: int = 50257
    block_size: int = 1024  # the longest context generate() and the checks allow (RoPE has no table)
    n_layer: int = 12
    n_head: int = 12
    n_kv_head: int = 4  # key/value heads; must divide n_head (n_kv_head == n_head: plain multi-head)
    n_embd: int = 768
    head_dim: int | None = None  # None: n_embd // n_head (Qwen3 sets it apart)
    intermediate_size: int = 2048  # F, the SwiGLU's hidden width
    rope_theta: float = 10000.0  # RoPE's base: θ_i = rope_theta^(−2i/head_dim)
    rms_norm_eps: float = 1e-5
    qk_norm: bool = False  # Qwen3: RMSNorm on each query and key head
    tie_embeddings: bool = False  # share wte with the output layer (SmolLM2, Qwen3-0.6B do)
    bias: bool = False  # biases in every Linear (Llama and Qwen3 have none)

    def __post_init__(self) -> None:
        for name in ("vocab_size", "block_size", "n_layer", "n_head", "n_kv_head", "n_embd", "intermediate_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"LlamaConfig.{name} must be a positive integer, got {value!r}")
        if self.n_head % self.n_kv_head != 0:
            raise ValueError(f"LlamaConfig.n_kv_head ({self.n_kv_head}) must divide n_head ({self.n_head}): "
                             "each key/value head serves n_head / n_kv_head query heads")
        if self.head_dim is None:
            if self.n_embd % self.n_head != 0:
                raise ValueError(f"LlamaConfig.n_embd ({self.n_embd}) must be divisible by n_head ({self.n_head}), "
                                 "or set head_dim")
            self.head_dim = self.n_embd // self.n_head
        if isinstance(self.head_dim, bool) or not isinstance(self.head_dim, int) or self.head_dim < 2 \
                or self.head_dim % 2:
            raise ValueError(f"LlamaConfig.head_dim must be an even integer >= 2 (RoPE rotates pairs), "
                             f"got {self.head_dim!r}")
        if not self.rope_theta > 0 or not self.rms_norm_eps > 0:
            raise ValueError(f"LlamaConfig.rope_theta and rms_norm_eps must be > 0, "
                             f"got {self.rope_theta!r} and {self.rms_norm_eps!r}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping) -> LlamaConfig:
        """Inverse of ``to_dict``; unknown keys are an error (a HF config.json: use Llama.from_hf)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"LlamaConfig.from_dict: unknown keys {unknown}; the fields are {sorted(known)}. "
                             "(For a Hugging Face config.json use Llama.from_hf.)")
        return cls(**dict(d))


def llama_parameter_count(config: LlamaConfig) -> int:
    """N, the formula in the module docstring (a tied output layer counted once)."""
    c = config
    V, L, d, H, K, D, Fd = c.vocab_size, c.n_layer, c.n_embd, c.n_head, c.n_kv_head, c.head_dim, c.intermediate_size
    per_block = 2 * d * H * D + 2 * d * K * D + 3 * d * Fd + 2 * d + (2 * D if c.qk_norm else 0)
    if c.bias:  # qkv (H + 2K)·D, out_proj d, w1 and w3 F each, w2 d
        per_block += (H + 2 * K) * D + d + 2 * Fd + d
    return V * d * (1 if c.tie_embeddings else 2) + L * per_block + d


def kv_cache_bytes_per_token(n_layer: int, n_kv_head: int, head_dim: int, bytes_per_value: int = 2) -> int:
    """Memory the KV cache needs per token: 2 (k and v) · L · K · D values (fp16/bf16: 2 bytes each)."""
    return 2 * n_layer * n_kv_head * head_dim * bytes_per_value


# --------------------------------------------------------------------------------------------
# The three new pieces
# --------------------------------------------------------------------------------------------
class RMSNorm(nn.Module):
    """RMSNorm(x) = γ ⊙ x / √(mean(x²) + ε) over the last dim: (..., dim) -> (..., dim).

    LayerNorm without the mean and without β (Zhang & Sennrich, 2019): one statistic instead of
    two, and as stable in practice. Computed in float32 (a mean of squares overflows fp16 early),
    then cast back, as ``transformers`` does.
    """

    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))  # γ

    def extra_repr(self) -> str:
        return f"{self.weight.numel()}, eps={self.eps}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x32 = x.float()
        normed = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * normed.to(x.dtype)


def rope_frequencies(head_dim: int, theta: float, device=None) -> torch.Tensor:
    """θ_i = theta^(−2i/D) for i = 0 .. D/2 − 1, float32 (D/2,): fast rotations first, slow last."""
    return 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float, device=device) / head_dim))


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    """(x_1, x_2) -> (−x_2, x_1) for the two halves of the last dim: the 90° turn of every pair."""
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


def apply_rope(x: torch.Tensor, positions: torch.Tensor, theta: float) -> torch.Tensor:
    """Rotate queries or keys by their positions. x (B, H, T, D), positions (T,) or (B, T) -> (B, H, T, D).

    The rotate-half layout of ``transformers``: feature i is paired with feature i + D/2 and the pair
    turns by the angle m·θ_i (m the position):

        x'_i       = x_i cos(mθ_i) − x_{i+D/2} sin(mθ_i)
        x'_{i+D/2} = x_{i+D/2} cos(mθ_i) + x_i sin(mθ_i)        i.e. x' = x cos + rotate_half(x) sin

    (The RoFormer paper pairs neighbours (x_{2i}, x_{2i+1}) instead; permuting the features of W_q and
    W_k turns one layout into the other.) cos and sin are computed in float32.
    """
    if x.dim() != 4 or x.size(-1) % 2:
        raise ValueError(f"apply_rope needs x of shape (B, H, T, D) with an even D, got {tuple(x.shape)}")
    T = x.size(2)
    if positions.dim() not in (1, 2) or positions.size(-1) != T or (positions.dim() == 2 and positions.size(0) != x.size(0)):
        raise ValueError(f"positions must be (T,) or (B, T) with T={T}, B={x.size(0)}, got {tuple(positions.shape)}")
    angles = positions.float()[..., None] * rope_frequencies(x.size(-1), theta, x.device)  # (..., T, D/2)
    emb = torch.cat((angles, angles), dim=-1)  # (..., T, D): both halves of a pair share an angle
    cos, sin = emb.cos().to(x.dtype), emb.sin().to(x.dtype)
    if positions.dim() == 2:
        cos, sin = cos[:, None], sin[:, None]  # (B, 1, T, D): the same angles for every head
    return x * cos + rotate_half(x) * sin


class SwiGLU(nn.Module):
    """SwiGLU(x) = W₂ (SiLU(W₁ x) ⊙ W₃ x): (B, T, d) -> (B, T, F) -> (B, T, d)  (Shazeer, 2020).

    W₁ x through SiLU is a gate in (−0.28, ∞) that scales each feature of W₃ x, so the layer can
    switch features on and off per token. Three matrices instead of two: F = 8/3·d keeps the
    weight count of a 4·d MLP. (``transformers`` calls them gate_proj, up_proj, down_proj.)
    """

    def __init__(self, n_embd: int, hidden: int, bias: bool = False):
        super().__init__()
        self.w1 = nn.Linear(n_embd, hidden, bias=bias)  # gate
        self.w3 = nn.Linear(n_embd, hidden, bias=bias)  # up
        self.w2 = nn.Linear(hidden, n_embd, bias=bias)  # down

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


# --------------------------------------------------------------------------------------------
# Attention and the block
# --------------------------------------------------------------------------------------------
class LlamaAttention(MultiHeadAttention):
    """Causal grouped-query self-attention with RoPE (and Qwen3's q/k RMSNorm), on the course's
    ``MultiHeadAttention``: its fused ``qkv`` gives q (B, H, T, D) and k, v (B, K, T, D); here q and k
    are normalised (qk_norm) and rotated; ``attend`` appends k, v to the cache (which keeps K heads,
    not H), repeats them to H heads and runs causal attention.
    """

    def __init__(self, config: LlamaConfig):
        super().__init__(config.n_embd, config.n_head, dropout=0.0, bias=config.bias, causal=True,
                         n_kv_heads=config.n_kv_head, d_head=config.head_dim)
        self.rope_theta = config.rope_theta
        self.qk_norm = config.qk_norm
        if config.qk_norm:
            self.q_norm = RMSNorm(config.head_dim, config.rms_norm_eps)
            self.k_norm = RMSNorm(config.head_dim, config.rms_norm_eps)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None, past_kv=None, use_cache: bool = False,
                need_weights: bool | None = None, positions: torch.Tensor | None = None):
        """x (B, T, d) -> (B, T, d) (or (out, (k, v)) with use_cache). positions default to
        S_past .. S_past + T − 1, S_past the length of past_kv."""
        q, k, v = self.project(x)
        if self.qk_norm:
            q, k = self.q_norm(q), self.k_norm(k)
        if positions is None:
            offset = 0 if past_kv is None else past_kv[0].size(2)
            positions = torch.arange(offset, offset + x.size(1), device=x.device)
        q, k = apply_rope(q, positions, self.rope_theta), apply_rope(k, positions, self.rope_theta)
        return self.attend(q, k, v, mask, past_kv, use_cache, need_weights)


class LlamaBlock(nn.Module):
    """x + Attn(RMSNorm(x)), then x + SwiGLU(RMSNorm(x)): GPT-2's pre-norm block with the new parts."""

    def __init__(self, config: LlamaConfig):
        super().__init__()
        self.attn_norm = RMSNorm(config.n_embd, config.rms_norm_eps)
        self.attn = LlamaAttention(config)
        self.mlp_norm = RMSNorm(config.n_embd, config.rms_norm_eps)
        self.mlp = SwiGLU(config.n_embd, config.intermediate_size, bias=config.bias)

    def forward(self, x: torch.Tensor, positions: torch.Tensor | None = None, past_kv=None, use_cache: bool = False):
        """x (B, T, d) -> (B, T, d); with ``use_cache`` -> ((B, T, d), (k, v)), k and v (B, K, S, D)."""
        if use_cache:
            a, kv = self.attn(self.attn_norm(x), past_kv=past_kv, use_cache=True, positions=positions)
        else:
            a, kv = self.attn(self.attn_norm(x), positions=positions), None
        x = x + a
        x = x + self.mlp(self.mlp_norm(x))
        return (x, kv) if use_cache else x


class Llama(nn.Module):
    """A Llama-style decoder: idx (B, T) -> logits (B, T, vocab_size). See the module docstring."""

    def __init__(self, config: LlamaConfig):
        super().__init__()
        if not isinstance(config, LlamaConfig):
            raise TypeError(f"Llama needs a LlamaConfig, got {type(config).__name__}")
        self.config = config
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(config.vocab_size, config.n_embd),
            h=nn.ModuleList([LlamaBlock(config) for _ in range(config.n_layer)]),
            norm_f=RMSNorm(config.n_embd, config.rms_norm_eps),
        ))
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        if config.tie_embeddings:
            self.lm_head.weight = self.transformer.wte.weight
        self.apply(self._init_weights)
        # As GPT-2: the two projections that write into the residual stream start 1/√(2L) smaller.
        for name, p in self.named_parameters():
            if name.endswith("attn.out_proj.weight") or name.endswith("mlp.w2.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if getattr(module, "bias", None) is not None:
                nn.init.zeros_(module.bias)

    def num_parameters(self) -> int:
        """The number of parameters (a tied wte / lm_head counted once)."""
        return sum(p.numel() for p in self.parameters())

    def _check_idx(self, idx: torch.Tensor, offset: int = 0) -> None:
        if not isinstance(idx, torch.Tensor) or idx.dim() != 2:
            shape = tuple(idx.shape) if isinstance(idx, torch.Tensor) else type(idx).__name__
            raise ValueError(f"idx must be token ids of shape (batch, time), got {shape}; for one sequence use idx[None]")
        if idx.dtype not in (torch.long, torch.int32, torch.int64):
            raise ValueError(f"idx must hold integer token ids (torch.long), got {idx.dtype}")
        if offset + idx.size(1) > self.config.block_size:
            raise ValueError(f"sequence too long: {offset} cached + {idx.size(1)} new tokens exceed "
                             f"block_size={self.config.block_size}; crop the input to its last tokens")

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        """idx (B, T) -> (logits (B, T, V), loss): the mean next-token cross entropy over targets
        that are not -100 (the caller shifts: targets[t] = idx[t+1]), or None without targets."""
        self._check_idx(idx)
        x = self.transformer.wte(idx)
        positions = torch.arange(idx.size(1), device=idx.device)
        for block in self.transformer.h:
            x = block(x, positions)
        logits = self.lm_head(self.transformer.norm_f(x))
        loss = None
        if targets is not None:
            if targets.shape != idx.shape:
                raise ValueError(f"targets must have the shape of idx {tuple(idx.shape)}, got {tuple(targets.shape)}")
            loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)).float(), targets.reshape(-1), ignore_index=-100)
        return logits, loss

    def forward_cached(self, idx: torch.Tensor, cache: list | None = None):
        """idx (B, T_new) -> (logits (B, T_new, V), cache): one (k, v) per layer, each (B, K, S, D),
        K = n_kv_head. The new tokens take positions S_past .. S_past + T_new − 1."""
        offset = 0 if cache is None else cache[0][0].size(2)
        self._check_idx(idx, offset)
        x = self.transformer.wte(idx)
        positions = torch.arange(offset, offset + idx.size(1), device=idx.device)
        new_cache = []
        for i, block in enumerate(self.transformer.h):
            x, kv = block(x, positions, past_kv=None if cache is None else cache[i], use_cache=True)
            new_cache.append(kv)
        return self.lm_head(self.transformer.norm_f(x)), new_cache

    @torch.no_grad()
    def generate(self, idx: torch.Tensor, max_new_tokens: int, **kwargs) -> torch.Tensor:
        """``llm_from_scratch.generate.generate(self, idx, max_new_tokens, **kwargs)``."""
        return generate(self, idx, max_new_tokens, **kwargs)

    # ---- Hugging Face Llama / Qwen3 -----------------------------------------------------------
    @classmethod
    def from_hf(cls, hf_model, config: LlamaConfig | None = None) -> Llama:
        """A Llama with the weights of a ``LlamaForCausalLM`` or ``Qwen3ForCausalLM``.

        ``hf_model``: the ``transformers`` model, a ``save_pretrained`` folder, a state dict (then
        ``config`` is required) or a hub name (see ``from_pretrained``). The config comes from
        ``config`` or else from the checkpoint's. q_proj, k_proj, v_proj are stacked into the fused
        ``qkv``; a missing, unexpected or mis-shaped tensor is an error that names it.
        """
        state_dict, hf_config = load_hf_checkpoint(hf_model)
        if config is None:
            if hf_config is None:
                raise ValueError("a bare state dict has no config: pass config=LlamaConfig(...)")
            config = _config_from_hf(hf_config)
        model = cls(config)
        expected = _hf_shapes(config)
        sd = {k: v for k, v in state_dict.items() if not k.endswith("rotary_emb.inv_freq")}  # a buffer, recomputed
        if config.tie_embeddings and "lm_head.weight" in sd:
            if not torch.equal(sd["lm_head.weight"], sd.get("model.embed_tokens.weight", torch.empty(0))):
                raise ValueError("lm_head.weight differs from model.embed_tokens.weight but the config ties them "
                                 "(tie_word_embeddings); pass config with tie_embeddings=False")
            sd.pop("lm_head.weight")
        missing = [k for k in expected if k not in sd]
        unexpected = [k for k in sd if k not in expected]
        wrong = [f"{k} {tuple(sd[k].shape)} (expected {expected[k]})" for k in expected
                 if k in sd and tuple(sd[k].shape) != expected[k]]
        problems = ([f"missing: {_names(missing)}"] if missing else []) + \
                   ([f"not used by this model: {_names(unexpected)}"] if unexpected else []) + \
                   ([f"shape mismatch: {_names(wrong)}"] if wrong else [])
        if problems:
            raise ValueError("cannot load the checkpoint into this Llama: " + "; ".join(problems)
                             + ". Check that the config matches the checkpoint (layers, heads, sizes, vocabulary).")
        ours = model.state_dict()
        with torch.no_grad():
            for key, tensor in _ours_from_hf(sd, config).items():
                ours[key].copy_(tensor.to(ours[key].dtype))
        return model

    @classmethod
    def from_pretrained(cls, name: str) -> Llama:
        """A hub model (e.g. "HuggingFaceTB/SmolLM2-135M", "Qwen/Qwen3-0.6B") or a local
        ``save_pretrained`` folder, in float32. The tokenizer: ``transformers.AutoTokenizer.from_pretrained(name)``."""
        return cls.from_hf(name)

    def to_hf(self, directory) -> Path:
        """Save as a Hugging Face folder (config.json + model.safetensors) that
        ``transformers.AutoModelForCausalLM.from_pretrained(directory)`` opens: ``Qwen3ForCausalLM``
        when qk_norm, else ``LlamaForCausalLM``. Written to temporary names, then renamed."""
        from safetensors.torch import save_file

        c = self.config
        if c.qk_norm and c.bias:
            raise ValueError("Qwen3ForCausalLM has no MLP biases: a qk_norm model with bias=True cannot be exported")
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        tensors = {k: v.detach().cpu().contiguous().clone() for k, v in _hf_from_ours(self.state_dict(), c).items()}
        dtype = str(self.transformer.wte.weight.dtype).removeprefix("torch.")
        hf_config = {
            "architectures": ["Qwen3ForCausalLM" if c.qk_norm else "LlamaForCausalLM"],
            "model_type": "qwen3" if c.qk_norm else "llama",
            "vocab_size": c.vocab_size, "hidden_size": c.n_embd, "intermediate_size": c.intermediate_size,
            "num_hidden_layers": c.n_layer, "num_attention_heads": c.n_head, "num_key_value_heads": c.n_kv_head,
            "head_dim": c.head_dim, "max_position_embeddings": c.block_size, "rms_norm_eps": c.rms_norm_eps,
            "rope_theta": c.rope_theta, "rope_scaling": None,
            "rope_parameters": {"rope_type": "default", "rope_theta": c.rope_theta},
            "tie_word_embeddings": c.tie_embeddings, "attention_bias": c.bias, "hidden_act": "silu",
            "attention_dropout": 0.0, "initializer_range": 0.02, "torch_dtype": dtype,
        }
        if not c.qk_norm:
            hf_config["mlp_bias"] = c.bias
        weights_tmp, config_tmp = directory / "model.safetensors.tmp", directory / "config.json.tmp"
        save_file(tensors, str(weights_tmp), metadata={"format": "pt"})
        config_tmp.write_text(json.dumps(hf_config, indent=2) + "\n")
        weights_tmp.replace(directory / "model.safetensors")  # a rename: never a half-written file
        config_tmp.replace(directory / "config.json")
        return directory


# --------------------------------------------------------------------------------------------
# Hugging Face names and configs
# --------------------------------------------------------------------------------------------
def _names(items: list[str], limit: int = 8) -> str:
    return ", ".join(items[:limit]) + (f", ... ({len(items)} in all)" if len(items) > limit else "")


def _rope_settings(cfg: Mapping) -> float:
    """rope_theta from transformers 5's ``rope_parameters`` or the older ``rope_theta`` / ``rope_scaling``."""
    params = cfg.get("rope_parameters") or {}
    scaling = cfg.get("rope_scaling") or {}
    kind = params.get("rope_type") or scaling.get("rope_type") or scaling.get("type") or "default"
    if kind != "default":
        raise ValueError(f"rope scaling type {kind!r} (e.g. Llama 3.1's 'llama3') is not implemented here: "
                         "use a checkpoint without rope scaling (SmolLM2, Qwen3, Llama 3 8B)")
    return float(params.get("rope_theta", cfg.get("rope_theta", 10000.0)))


def _config_from_hf(cfg: Mapping) -> LlamaConfig:
    kind = cfg.get("model_type")
    if kind not in ("llama", "qwen3"):
        raise ValueError(f"config.json describes a {kind!r} model; Llama.from_hf reads 'llama' and 'qwen3'")
    if cfg.get("hidden_act", "silu") != "silu":
        raise ValueError(f"this Llama's SwiGLU uses SiLU; the checkpoint uses {cfg['hidden_act']!r}")
    if kind == "qwen3" and cfg.get("use_sliding_window"):
        raise ValueError("use_sliding_window=True (sliding-window attention) is not implemented here")
    bias = bool(cfg.get("attention_bias", False))
    if kind == "llama" and bool(cfg.get("mlp_bias", False)) != bias:
        raise ValueError("attention_bias and mlp_bias differ; this Llama has one bias switch for every Linear")
    if kind == "qwen3" and bias:
        raise ValueError("a Qwen3 with attention_bias=True (and no MLP bias) is not supported")
    n_head = cfg["num_attention_heads"]
    return LlamaConfig(
        vocab_size=cfg["vocab_size"], block_size=cfg.get("max_position_embeddings", 2048),
        n_layer=cfg["num_hidden_layers"], n_head=n_head, n_kv_head=cfg.get("num_key_value_heads") or n_head,
        n_embd=cfg["hidden_size"], head_dim=cfg.get("head_dim") or cfg["hidden_size"] // n_head,
        intermediate_size=cfg["intermediate_size"], rope_theta=_rope_settings(cfg),
        rms_norm_eps=float(cfg.get("rms_norm_eps", 1e-6)), qk_norm=kind == "qwen3",
        tie_embeddings=bool(cfg.get("tie_word_embeddings", False)), bias=bias)  # transformers' default


_HF_LAYER = re.compile(r"model\.layers\.(\d+)\.(.+)")


def _hf_shapes(c: LlamaConfig) -> dict[str, tuple[int, ...]]:
    """Every tensor name of the Hugging Face checkpoint of config c, with its shape."""
    d, q_out, kv_out = c.n_embd, c.n_head * c.head_dim, c.n_kv_head * c.head_dim
    shapes = {"model.embed_tokens.weight": (c.vocab_size, d), "model.norm.weight": (d,)}
    if not c.tie_embeddings:
        shapes["lm_head.weight"] = (c.vocab_size, d)
    for i in range(c.n_layer):
        p = f"model.layers.{i}."
        linears = {"self_attn.q_proj": (q_out, d), "self_attn.k_proj": (kv_out, d), "self_attn.v_proj": (kv_out, d),
                   "self_attn.o_proj": (d, q_out), "mlp.gate_proj": (c.intermediate_size, d),
                   "mlp.up_proj": (c.intermediate_size, d), "mlp.down_proj": (d, c.intermediate_size)}
        for name, shape in linears.items():
            shapes[p + name + ".weight"] = shape
            if c.bias:
                shapes[p + name + ".bias"] = shape[:1]
        shapes[p + "input_layernorm.weight"] = (d,)
        shapes[p + "post_attention_layernorm.weight"] = (d,)
        if c.qk_norm:
            shapes[p + "self_attn.q_norm.weight"] = (c.head_dim,)
            shapes[p + "self_attn.k_norm.weight"] = (c.head_dim,)
    return shapes


_RENAME = {"self_attn.o_proj": "attn.out_proj", "mlp.gate_proj": "mlp.w1", "mlp.up_proj": "mlp.w3",
           "mlp.down_proj": "mlp.w2", "input_layernorm": "attn_norm", "post_attention_layernorm": "mlp_norm",
           "self_attn.q_norm": "attn.q_norm", "self_attn.k_norm": "attn.k_norm"}


def _ours_from_hf(sd: Mapping, c: LlamaConfig) -> dict[str, torch.Tensor]:
    """HF tensors (names and shapes already checked) -> our state dict; q, k, v stacked into qkv."""
    out = {"transformer.wte.weight": sd["model.embed_tokens.weight"], "transformer.norm_f.weight": sd["model.norm.weight"]}
    if not c.tie_embeddings:
        out["lm_head.weight"] = sd["lm_head.weight"]
    for key, tensor in sd.items():
        m = _HF_LAYER.fullmatch(key)
        if m is None:
            continue
        layer, rest = m.groups()
        module, kind = rest.rsplit(".", 1)
        if module in _RENAME:
            out[f"transformer.h.{layer}.{_RENAME[module]}.{kind}"] = tensor
    for i in range(c.n_layer):
        p = f"model.layers.{i}.self_attn."
        for kind in ("weight", "bias") if c.bias else ("weight",):
            out[f"transformer.h.{i}.attn.qkv.{kind}"] = torch.cat(
                [sd[p + f"{n}_proj.{kind}"] for n in "qkv"], dim=0)  # rows [W_q; W_k; W_v]
    return out


def _hf_from_ours(ours: Mapping, c: LlamaConfig) -> dict[str, torch.Tensor]:
    """Our state dict -> HF tensor names (the inverse of ``_ours_from_hf``)."""
    back = {v: k for k, v in _RENAME.items()}
    out = {"model.embed_tokens.weight": ours["transformer.wte.weight"], "model.norm.weight": ours["transformer.norm_f.weight"]}
    if not c.tie_embeddings:
        out["lm_head.weight"] = ours["lm_head.weight"]
    sizes = [c.n_head * c.head_dim, c.n_kv_head * c.head_dim, c.n_kv_head * c.head_dim]
    for key, tensor in ours.items():
        m = re.fullmatch(r"transformer\.h\.(\d+)\.(.+)\.(weight|bias)", key)
        if m is None:
            continue
        layer, module, kind = m.groups()
        p = f"model.layers.{layer}."
        if module == "attn.qkv":
            for n, part in zip("qkv", tensor.split(sizes, dim=0)):
                out[p + f"self_attn.{n}_proj.{kind}"] = part
        else:
            out[p + f"{back[module]}.{kind}"] = tensor
    return out
