"""The GPT model (GPT-2's design, nanoGPT's layout), the documents' TransformerEncoder GPT, and
GPT-2 weights in and out of the Hugging Face format.

A GPT maps token ids idx (B, T) to next-token logits (B, T, V):

    x_0 = wte[idx] + wpe[0..T-1]                                   token + learned position embeddings
    x_l = x_{l-1} + Attn(LN_1(x_{l-1}))                            pre-LayerNorm, causal self-attention
    x_l = x_l     + MLP(LN_2(x_l)),  MLP(x) = W_2 GELU(W_1 x + b_1) + b_2   (W_1: d -> 4d, W_2: 4d -> d)
    logits = LN_f(x_L) wteᵀ                                         the output layer shares wte (tying)

    LayerNorm(x) = γ ⊙ (x − mean(x)) / sqrt(var(x) + ε) + β       over the d features of one token

Parameters, with V the vocabulary, T = block_size, L layers, d = n_embd (bias=True):

    N = V·d + T·d + L·(12·d² + 13·d) + 2·d
    (per block: qkv 3d²+3d, out_proj d²+d, c_fc 4d²+4d, c_proj 4d²+d, two LayerNorms 4d)

Module names follow nanoGPT and GPT-2 (``transformer.wte``, ``transformer.h[i].ln_1``, ...), so that
GPT-2 checkpoints map onto them one to one (``GPT.from_hf_gpt2`` / ``to_hf_gpt2``).
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from llm_from_scratch.attention import MultiHeadAttention, SinusoidalPositionalEncoding
from llm_from_scratch.generate import generate, sample_next_token, top_k_filter, top_p_filter  # noqa: F401

__all__ = [
    "GPTConfig",
    "MLP",
    "Block",
    "GPT",
    "DocumentsGPT",
    "TransformerEncoderGPT",
    "generate",
    "to_hf_gpt2",
    "gpt_parameter_count",
    "load_hf_checkpoint",
]


# --------------------------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------------------------
@dataclass
class GPTConfig:
    """The shape of a GPT. The defaults are GPT-2 small (124M parameters)."""

    vocab_size: int = 50257  # GPT-2's BPE: 50,000 merges + 256 bytes + <|endoftext|>
    block_size: int = 1024  # the longest context (number of learned positions)
    n_layer: int = 12
    n_head: int = 12
    n_embd: int = 768
    dropout: float = 0.0  # on embeddings, attention weights and both residual branches
    bias: bool = True  # biases in Linear layers and LayerNorms (GPT-2 has them)

    def __post_init__(self) -> None:
        for name in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"GPTConfig.{name} must be a positive integer, got {value!r}")
        if self.n_embd % self.n_head != 0:
            raise ValueError(f"GPTConfig.n_embd ({self.n_embd}) must be divisible by n_head ({self.n_head}): "
                             "each head gets n_embd / n_head features")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"GPTConfig.dropout must be in [0, 1), got {self.dropout!r}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping) -> GPTConfig:
        """Inverse of ``to_dict`` (e.g. a checkpoint's config.json); unknown keys are an error."""
        from llm_from_scratch.utils import config_from_dict

        return config_from_dict(cls, d)  # (for a Hugging Face GPT-2 config.json use GPT.from_hf_gpt2)


def gpt_parameter_count(vocab_size: int, block_size: int, n_layer: int, n_embd: int, bias: bool = True) -> int:
    """N(V, T, L, d), the formula in the module docstring (tied output layer: counted once)."""
    V, T, L, d = vocab_size, block_size, n_layer, n_embd
    per_block = 12 * d * d + (13 * d if bias else 2 * d)  # without bias only the LayerNorm γ remain
    return V * d + T * d + L * per_block + (2 * d if bias else d)


# --------------------------------------------------------------------------------------------
# The model
# --------------------------------------------------------------------------------------------
class MLP(nn.Module):
    """FFN(x) = W_2 GELU(W_1 x + b_1) + b_2: (B, T, d) -> (B, T, 4d) -> (B, T, d).

    GELU(x) = x Φ(x); GPT-2 uses its tanh approximation
    0.5 x (1 + tanh(√(2/π) (x + 0.044715 x³))), and so do we, to reproduce GPT-2's logits.
    """

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)  # W_1, b_1
        self.gelu = nn.GELU(approximate="tanh")
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)  # W_2, b_2
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.c_proj(self.gelu(self.c_fc(x))))


class Block(nn.Module):
    """One pre-LayerNorm Transformer block: x + Attn(LN_1(x)), then x + MLP(LN_2(x)).

    Normalising the input of each branch (not the sum, as the original Transformer did) leaves a
    clean residual path from the embeddings to the output, which keeps deep stacks trainable
    without a careful warmup.
    """

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.attn = MultiHeadAttention(config.n_embd, config.n_head, dropout=config.dropout,
                                       bias=config.bias, causal=True)
        self.resid_dropout = nn.Dropout(config.dropout)
        self.ln_2 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.mlp = MLP(config)

    def forward(self, x: torch.Tensor, past_kv=None, use_cache: bool = False):
        """x (B, T, d) -> (B, T, d); with ``use_cache`` -> ((B, T, d), (k, v)) (see MultiHeadAttention)."""
        if use_cache:
            a, kv = self.attn(self.ln_1(x), past_kv=past_kv, use_cache=True)
        else:
            a, kv = self.attn(self.ln_1(x)), None
        x = x + self.resid_dropout(a)
        x = x + self.mlp(self.ln_2(x))
        return (x, kv) if use_cache else x


class GPT(nn.Module):
    """GPT-2: idx (B, T) -> logits (B, T, vocab_size). See the module docstring for the equations."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        if not isinstance(config, GPTConfig):
            raise TypeError(f"GPT needs a GPTConfig, got {type(config).__name__}")
        self.config = config
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(config.vocab_size, config.n_embd),  # token embeddings (V, d)
            wpe=nn.Embedding(config.block_size, config.n_embd),  # learned positions (T, d)
            drop=nn.Dropout(config.dropout),
            h=nn.ModuleList([Block(config) for _ in range(config.n_layer)]),
            ln_f=nn.LayerNorm(config.n_embd, bias=config.bias),
        ))
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        # Weight tying (Press & Wolf, 2017): the output layer scores token i with the same vector that
        # embeds it. One (V, d) matrix instead of two: 38M fewer parameters in GPT-2 small.
        self.lm_head.weight = self.transformer.wte.weight
        self.apply(self._init_weights)
        # GPT-2's scaled init: each block adds two projections to the residual stream, so its
        # variance grows with depth; scaling those weights by 1/√(2·n_layer) keeps it about constant.
        for name, p in self.named_parameters():
            if name.endswith("attn.out_proj.weight") or name.endswith("mlp.c_proj.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def num_parameters(self, non_embedding: bool = False) -> int:
        """The number of parameters (the tied wte / lm_head counted once).

        ``non_embedding=True`` leaves out the position embeddings, as nanoGPT and the scaling-law
        papers do; the token embeddings stay because, tied, they are also the output layer.
        """
        n = sum(p.numel() for p in self.parameters())
        if non_embedding:
            n -= self.transformer.wpe.weight.numel()
        return n

    def _check_idx(self, idx: torch.Tensor, offset: int = 0) -> None:
        if not isinstance(idx, torch.Tensor) or idx.dim() != 2:
            shape = tuple(idx.shape) if isinstance(idx, torch.Tensor) else type(idx).__name__
            raise ValueError(f"idx must be token ids of shape (batch, time), got {shape}; "
                             "for one sequence use idx[None]")
        if idx.dtype not in (torch.long, torch.int32, torch.int64):
            raise ValueError(f"idx must hold integer token ids (torch.long), got {idx.dtype}")
        T = idx.size(1)
        if offset + T > self.config.block_size:
            where = f"{T} tokens" if offset == 0 else f"{T} new tokens after {offset} cached ones"
            raise ValueError(f"sequence too long: {where} exceed block_size={self.config.block_size} "
                             f"(the number of learned positions). Crop the input to its last "
                             f"{self.config.block_size - offset} tokens, e.g. idx[:, -block_size:].")

    def _embed(self, idx: torch.Tensor, offset: int = 0) -> torch.Tensor:
        pos = torch.arange(offset, offset + idx.size(1), device=idx.device)  # (T,)
        tok_emb = self.transformer.wte(idx)  # (B, T, d)
        pos_emb = self.transformer.wpe(pos)  # (T, d), broadcast over the batch
        return self.transformer.drop(tok_emb + pos_emb)

    def forward_hidden(self, idx: torch.Tensor) -> torch.Tensor:
        """idx (B, T) -> hidden states after the final LayerNorm (B, T, n_embd): what heads read."""
        self._check_idx(idx)
        x = self._embed(idx)
        for block in self.transformer.h:
            x = block(x)
        return self.transformer.ln_f(x)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None, last_only: bool = False):
        """idx (B, T) -> (logits (B, T, V), loss).

        loss is the mean next-token cross entropy −(1/N) Σ log softmax(logits)[target] over the
        positions whose target is not -100 (the caller shifts: targets[t] = idx[t+1]); None
        without targets. ``last_only=True`` (generation, no targets): the logits of the last position
        only, (B, 1, V), so the output layer's T·d·V multiply-adds shrink to d·V (as nanoGPT does).
        """
        h = self.forward_hidden(idx)
        if last_only:
            if targets is not None:
                raise ValueError("last_only=True is for generation: a loss needs the logits at every position")
            return self.lm_head(h[:, -1:, :]), None
        logits = self.lm_head(h)
        loss = None
        if targets is not None:
            if targets.shape != idx.shape:
                raise ValueError(f"targets must have the shape of idx {tuple(idx.shape)}, got {tuple(targets.shape)}")
            loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)).float(), targets.reshape(-1),
                                   ignore_index=-100)
        return logits, loss

    def forward_cached(self, idx: torch.Tensor, cache: list | None = None, last_only: bool = False):
        """Incremental forward for generation: idx (B, T_new) -> (logits (B, T_new, V), cache).

        ``cache`` is None (start: idx is the prompt) or what the previous call returned: a list with
        one (k, v) per layer, each (B, n_head, S_past, head_size). The new tokens take positions
        S_past .. S_past + T_new − 1 and attend to the cached keys as well as to each other.
        Gives the same logits as ``forward`` over the whole sequence.
        """
        offset = 0 if cache is None else cache[0][0].size(2)
        self._check_idx(idx, offset)
        x = self._embed(idx, offset)
        new_cache = []
        for i, block in enumerate(self.transformer.h):
            x, kv = block(x, past_kv=None if cache is None else cache[i], use_cache=True)
            new_cache.append(kv)
        h = self.transformer.ln_f(x)
        return self.lm_head(h[:, -1:, :] if last_only else h), new_cache

    @torch.no_grad()
    def generate(self, idx: torch.Tensor, max_new_tokens: int, **kwargs) -> torch.Tensor:
        """``llm_from_scratch.generate.generate(self, idx, max_new_tokens, **kwargs)``."""
        return generate(self, idx, max_new_tokens, **kwargs)

    # ---- Hugging Face GPT-2 ---------------------------------------------------------------
    @classmethod
    def from_hf_gpt2(cls, path_or_state_dict, config: GPTConfig | None = None) -> GPT:
        """A GPT with the weights of a Hugging Face GPT-2 checkpoint.

        ``path_or_state_dict``: a ``save_pretrained`` folder (config.json + model.safetensors),
        a .safetensors file, a state dict, a ``transformers.GPT2LMHeadModel`` / ``GPT2Model``, or a
        hub name such as "gpt2" (downloaded with huggingface_hub when it is not a local path).

        The config comes from ``config``, else from the checkpoint's config.json, else from the
        tensor shapes (with GPT-2's head size 64). Dropout is 0.0 unless ``config`` sets it (pass
        ``config=GPTConfig(..., dropout=0.1)`` to fine-tune with dropout).

        Conv1D weights (in, out) are transposed into Linear weights (out, in); the fused ``c_attn``
        maps onto ``attn.qkv`` (both are [W_q; W_k; W_v]); the ``attn.bias`` /
        ``attn.masked_bias`` mask buffers are ignored.
        A missing, unexpected or mis-shaped tensor is an error that names them.
        """
        state_dict, hf_config = load_hf_checkpoint(path_or_state_dict)
        sd = _strip_gpt2_prefix(state_dict)
        if config is None:
            config = _gpt_config_from_hf(hf_config) if hf_config is not None else _infer_gpt_config(sd)
        model = cls(config)
        ours = model.state_dict()
        mapped, unexpected = {}, []
        for key, tensor in sd.items():
            target, transpose = _hf_to_ours_key(key)
            if target is None:
                if not _is_ignored_hf_key(key):
                    unexpected.append(key)
                continue
            mapped[target] = (key, tensor.t() if transpose and tensor.dim() == 2 else tensor)
        if "lm_head.weight" in sd and "transformer.wte.weight" in mapped:
            if sd["lm_head.weight"].shape != mapped["transformer.wte.weight"][1].shape or not torch.equal(
                    sd["lm_head.weight"], mapped["transformer.wte.weight"][1]):
                raise ValueError("lm_head.weight differs from transformer.wte.weight: this GPT ties the "
                                 "output layer to the token embedding and cannot hold an untied lm_head")
        expected = [k for k in ours if k != "lm_head.weight"]  # tied: it *is* wte
        load_mapped_weights(model, ours, expected, mapped, unexpected, "GPT-2")
        return model

    def to_hf_gpt2(self, directory, eos_token_id: int | None = None) -> Path:
        """``to_hf_gpt2(self, directory)``: see that function."""
        return to_hf_gpt2(self, directory, eos_token_id=eos_token_id)


# --------------------------------------------------------------------------------------------
# Loading checkpoints (shared with ``llm_from_scratch.bert``)
# --------------------------------------------------------------------------------------------
def _read_weights_folder(folder: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    single = folder / "model.safetensors"
    index = folder / "model.safetensors.index.json"
    if single.is_file():
        return load_file(str(single))
    if index.is_file():  # a sharded checkpoint: {"weight_map": {tensor name: shard file}}
        shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        state = {}
        for shard in shards:
            state.update(load_file(str(folder / shard)))
        return state
    bin_file = folder / "pytorch_model.bin"
    if bin_file.is_file():
        # Older checkpoints are pickles: weights_only=True loads tensors and refuses code.
        return torch.load(str(bin_file), map_location="cpu", weights_only=True)
    raise FileNotFoundError(f"{folder} holds no model.safetensors, model.safetensors.index.json or "
                            "pytorch_model.bin; is it a Hugging Face save_pretrained folder?")


def load_hf_checkpoint(source) -> tuple[dict[str, torch.Tensor], dict | None]:
    """(state dict, config.json as a dict or None) from a folder, a file, a state dict, a
    ``transformers`` model, or a hub name (resolved with huggingface_hub only when ``source`` is
    not an existing local path)."""
    if isinstance(source, nn.Module):
        cfg = getattr(source, "config", None)
        return dict(source.state_dict()), (cfg.to_dict() if hasattr(cfg, "to_dict") else None)
    if isinstance(source, Mapping):
        bad = [k for k, v in source.items() if not isinstance(v, torch.Tensor)]
        if bad:
            raise TypeError(f"a state dict must map names to tensors; not tensors: {bad[:5]}")
        return dict(source), None
    if not isinstance(source, (str, os.PathLike)):
        raise TypeError(f"expected a path, a hub name, a state dict or a model, got {type(source).__name__}")
    path = Path(source).expanduser()
    if path.is_dir():
        cfg_file = path / "config.json"
        return _read_weights_folder(path), (json.loads(cfg_file.read_text()) if cfg_file.is_file() else None)
    if path.is_file():
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file
            state = load_file(str(path))
        else:
            state = torch.load(str(path), map_location="cpu", weights_only=True)
        cfg_file = path.parent / "config.json"
        return state, (json.loads(cfg_file.read_text()) if cfg_file.is_file() else None)
    name = str(source)
    if name.startswith((".", "/", "~")) or name.count("/") > 1 or os.sep in name.replace("/", "", 1):
        raise FileNotFoundError(f"no such checkpoint folder or file: {name}")
    try:
        from huggingface_hub import snapshot_download
        # Only the top-level config and weights: hub repos also hold TF, Flax and ONNX copies.
        folder = Path(snapshot_download(name, allow_patterns=["config.json", "model.safetensors",
                                                              "model.safetensors.index.json", "model-*.safetensors"]))
        if not any(folder.glob("model*.safetensors")):  # an old repo: a pickle, read with weights_only=True
            folder = Path(snapshot_download(name, allow_patterns=["config.json", "pytorch_model.bin"]))
    except Exception as err:  # no network, unknown repo, no huggingface_hub
        raise FileNotFoundError(f"{name!r} is not a local path, and downloading it from the Hugging Face hub "
                                f"failed ({type(err).__name__}: {err})") from err
    return _read_weights_folder(folder), json.loads((folder / "config.json").read_text())


def load_mapped_weights(model, ours, expected, mapped, unexpected, what: str) -> None:
    """Copy ``mapped`` {our key: (their key, tensor)} into ``model``, or raise naming every problem."""
    missing = [k for k in expected if k not in mapped]
    mismatched = [f"{their} {tuple(t.shape)} -> {key} {tuple(ours[key].shape)}"
                  for key, (their, t) in mapped.items() if key in ours and t.shape != ours[key].shape]
    unknown_targets = [their for key, (their, _) in mapped.items() if key not in ours]
    problems = []
    if missing:
        problems.append(f"missing from the checkpoint: {_names(missing)}")
    if unexpected or unknown_targets:
        problems.append(f"not used by this model: {_names(unexpected + unknown_targets)}")
    if mismatched:
        problems.append(f"shape mismatch (checkpoint -> ours): {_names(mismatched)}")
    if problems:
        raise ValueError(f"cannot load the {what} checkpoint into {type(model).__name__}: " + "; ".join(problems)
                         + ". Check that the config matches the checkpoint (layers, heads, sizes, vocabulary).")
    with torch.no_grad():
        for key, (_, tensor) in mapped.items():
            ours[key].copy_(tensor.to(ours[key].dtype))


def _names(items: list[str], limit: int = 12) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f", ... ({len(items)} in all)" if len(items) > limit else "")


# ---- GPT-2 key mapping ---------------------------------------------------------------------
_CONV1D = ("attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj")  # stored (in, out): transpose
_HF_BLOCK_RENAME = {"attn.c_attn": "attn.qkv", "attn.c_proj": "attn.out_proj"}


def _strip_gpt2_prefix(sd: Mapping) -> dict:
    # GPT2LMHeadModel names tensors "transformer.h.0...", GPT2Model (and the hub's "gpt2") "h.0...".
    return {k.removeprefix("transformer."): v for k, v in sd.items()}


def _hf_to_ours_key(key: str) -> tuple[str | None, bool]:
    """A GPT-2 tensor name (prefix stripped) -> (our state-dict key or None, transpose?)."""
    if key in ("wte.weight", "wpe.weight", "ln_f.weight", "ln_f.bias"):
        return "transformer." + key, False
    m = re.fullmatch(r"h\.(\d+)\.(ln_1|ln_2|attn\.c_attn|attn\.c_proj|mlp\.c_fc|mlp\.c_proj)\.(weight|bias)", key)
    if m is None:
        return None, False
    layer, module, kind = m.groups()
    return f"transformer.h.{layer}.{_HF_BLOCK_RENAME.get(module, module)}.{kind}", (module in _CONV1D and kind == "weight")


def _is_ignored_hf_key(key: str) -> bool:
    # The causal-mask buffers of old checkpoints, and the tied output layer (checked separately).
    return key == "lm_head.weight" or re.fullmatch(r"h\.\d+\.attn\.(bias|masked_bias)", key) is not None


def _gpt_config_from_hf(cfg: Mapping) -> GPTConfig:
    if cfg.get("model_type", "gpt2") != "gpt2":
        raise ValueError(f"config.json describes a {cfg.get('model_type')!r} model, not GPT-2")
    act = cfg.get("activation_function", "gelu_new")
    if act not in ("gelu_new", "gelu_pytorch_tanh", "gelu_fast"):
        raise ValueError(f"this GPT uses the tanh GELU (GPT-2's 'gelu_new'); the checkpoint uses {act!r}")
    n_embd = cfg["n_embd"]
    if cfg.get("n_inner") not in (None, 4 * n_embd):
        raise ValueError(f"this GPT's MLP is 4·n_embd = {4 * n_embd} wide; the checkpoint has n_inner={cfg['n_inner']}")
    if abs(cfg.get("layer_norm_epsilon", 1e-5) - 1e-5) > 1e-12:
        raise ValueError(f"this GPT's LayerNorm uses eps=1e-5; the checkpoint uses {cfg['layer_norm_epsilon']}")
    return GPTConfig(vocab_size=cfg["vocab_size"], block_size=cfg["n_positions"], n_layer=cfg["n_layer"],
                     n_head=cfg["n_head"], n_embd=n_embd, dropout=0.0, bias=True)


def _infer_gpt_config(sd: Mapping) -> GPTConfig:
    if "wte.weight" not in sd or "wpe.weight" not in sd:
        present = _names(sorted(sd))
        raise ValueError(f"cannot infer the GPT-2 config: the state dict has no wte.weight / wpe.weight "
                         f"(keys: {present}); pass config=GPTConfig(...)")
    vocab_size, n_embd = sd["wte.weight"].shape
    block_size = sd["wpe.weight"].shape[0]
    layers = {int(m.group(1)) for k in sd if (m := re.match(r"h\.(\d+)\.", k))}
    if n_embd % 64 != 0:
        raise ValueError(f"cannot infer n_head for n_embd={n_embd} (GPT-2 uses heads of 64); pass config=GPTConfig(...)")
    return GPTConfig(vocab_size=vocab_size, block_size=block_size, n_layer=len(layers),
                     n_head=n_embd // 64, n_embd=n_embd, dropout=0.0, bias=True)


def to_hf_gpt2(model: GPT, directory, eos_token_id: int | None = None) -> Path:
    """Save ``model`` as a Hugging Face GPT-2 folder (config.json + model.safetensors) that
    ``transformers.GPT2LMHeadModel.from_pretrained(directory)`` opens.

    Linear weights (out, in) are transposed into Conv1D's (in, out); a model built with bias=False
    gets zero biases (GPT-2 always has them; adding zero changes nothing). ``eos_token_id``
    defaults to 50256 (<|endoftext|>) when the vocabulary is GPT-2's, else None.
    """
    from safetensors.torch import save_file

    if not isinstance(model, GPT):
        raise TypeError(f"to_hf_gpt2 exports a llm_from_scratch.gpt.GPT, got {type(model).__name__}")
    c = model.config
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    ours = model.state_dict()
    out: dict[str, torch.Tensor] = {}

    def put(hf_key: str, our_key: str | None, transpose: bool = False, zeros_like: int | None = None) -> None:
        if our_key is not None and our_key in ours:
            t = ours[our_key].detach().cpu()
            t = t.t() if transpose else t
        else:  # bias=False: GPT-2's layout needs a bias; a zero one is the same function
            t = torch.zeros(zeros_like, dtype=ours["transformer.wte.weight"].dtype)
        out["transformer." + hf_key] = t.contiguous().clone()

    put("wte.weight", "transformer.wte.weight")
    put("wpe.weight", "transformer.wpe.weight")
    for i in range(c.n_layer):
        p = f"transformer.h.{i}."
        for hf, mine, width in (("ln_1", "ln_1", c.n_embd), ("ln_2", "ln_2", c.n_embd),
                                ("attn.c_attn", "attn.qkv", 3 * c.n_embd), ("attn.c_proj", "attn.out_proj", c.n_embd),
                                ("mlp.c_fc", "mlp.c_fc", 4 * c.n_embd), ("mlp.c_proj", "mlp.c_proj", c.n_embd)):
            put(f"h.{i}.{hf}.weight", p + mine + ".weight", transpose=hf not in ("ln_1", "ln_2"))
            put(f"h.{i}.{hf}.bias", p + mine + ".bias", zeros_like=width)
    put("ln_f.weight", "transformer.ln_f.weight")
    put("ln_f.bias", "transformer.ln_f.bias", zeros_like=c.n_embd)
    # lm_head.weight is not written: it is tied to wte (tie_word_embeddings), as save_pretrained does.
    save_file(out, str(directory / "model.safetensors"), metadata={"format": "pt"})

    if eos_token_id is None and c.vocab_size == 50257:
        eos_token_id = 50256
    hf_config = {
        "architectures": ["GPT2LMHeadModel"], "model_type": "gpt2",
        "vocab_size": c.vocab_size, "n_positions": c.block_size, "n_ctx": c.block_size,
        "n_embd": c.n_embd, "n_layer": c.n_layer, "n_head": c.n_head, "n_inner": None,
        "activation_function": "gelu_new", "layer_norm_epsilon": 1e-5, "initializer_range": 0.02,
        "resid_pdrop": c.dropout, "embd_pdrop": c.dropout, "attn_pdrop": c.dropout,
        "scale_attn_weights": True, "tie_word_embeddings": True,
        "bos_token_id": eos_token_id, "eos_token_id": eos_token_id,
        "torch_dtype": str(ours["transformer.wte.weight"].dtype).removeprefix("torch."),
    }
    (directory / "config.json").write_text(json.dumps(hf_config, indent=2) + "\n")
    return directory


# --------------------------------------------------------------------------------------------
# The documents' GPT: a teaching model built on nn.TransformerEncoder
# --------------------------------------------------------------------------------------------
class DocumentsGPT(nn.Module):
    """The GPT of the course documents: ``nn.TransformerEncoder`` with a causal mask.

        h_0 = Embedding(x) · √d_model + PE          sinusoidal positions (fixed, not learned)
        h_L = TransformerEncoder(h_0, causal mask)  post-LayerNorm layers: LN(x + Sublayer(x)), ReLU FFN
        logits = fc_out(h_L)                        a separate output layer (no weight tying)

    x (B, T) token ids -> logits (B, T, vocab_size); the documents' example is (64, 128) -> (64, 128, V).
    Kept to compare with ``GPT`` (GPT-2's design: pre-LN, learned positions, GELU, tied output,
    a final LayerNorm). It has no KV cache: generate it with ``use_cache=False``.
    """

    def __init__(self, vocab_size: int, d_model: int = 512, n_heads: int = 8, n_layers: int = 6,
                 d_ff: int = 2048, max_len: int = 512, dropout: float = 0.1):
        super().__init__()
        self.d_model, self.block_size = d_model, max_len
        self.embedding = nn.Embedding(vocab_size, d_model)
        self.pos_encoding = SinusoidalPositionalEncoding(d_model, max_len)
        self.dropout = nn.Dropout(dropout)
        layer = nn.TransformerEncoderLayer(d_model, n_heads, dim_feedforward=d_ff, dropout=dropout,
                                           batch_first=True)  # post-LN and ReLU: torch's defaults
        self.transformer = nn.TransformerEncoder(layer, num_layers=n_layers, enable_nested_tensor=False)
        self.fc_out = nn.Linear(d_model, vocab_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 2:
            raise ValueError(f"x must be token ids of shape (batch, time), got {tuple(x.shape)}")
        T = x.size(1)
        if T > self.block_size:
            raise ValueError(f"sequence too long: {T} tokens exceed max_len={self.block_size}; "
                             f"crop to x[:, -{self.block_size}:]")
        h = self.embedding(x) * math.sqrt(self.d_model)  # the scale keeps embeddings comparable to PE
        h = self.dropout(self.pos_encoding(h))
        # nn.Transformer's float mask: 0 where a query may look, -inf above the diagonal (the future).
        mask = nn.Transformer.generate_square_subsequent_mask(T, device=x.device, dtype=h.dtype)
        h = self.transformer(h, mask=mask, is_causal=True)
        return self.fc_out(h)


TransformerEncoderGPT = DocumentsGPT
