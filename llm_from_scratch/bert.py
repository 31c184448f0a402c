"""BERT: a bidirectional Transformer encoder (Devlin et al., 2018), and its masked-LM head.

input_ids (B, T) -> sequence_output (B, T, H):

    x_0 = LN(word[ids] + pos[0..T-1] + type[token_type_ids])     three embeddings summed, then LayerNorm
    x_l = LN_1(x_{l-1} + Attn(x_{l-1}, padding mask))             post-LayerNorm blocks: the residual
    x_l = LN_2(x_l     + W_2 GELU(W_1 x_l + b_1) + b_2)           sum is normalised (the original Transformer)

Attention is bidirectional (no causal mask): every token sees every real token, left and right. The
padding mask (``attention_mask``, 1 = real token, 0 = padding) hides the padded keys; padded query
positions still get an output, which the caller ignores. GELU is the exact x·Φ(x).

The masked-LM head predicts the original token at each position:

    logits = decoder(LN(GELU(dense(x_L)))),  decoder.weight = word embeddings (tied), plus a bias (V,)

``from_hf_bert`` loads Hugging Face BERT checkpoints (``bert-base-uncased`` and the like); BERT's
separate query/key/value Linears are concatenated into ``MultiHeadAttention.qkv``.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn

from llm_from_scratch.attention import MultiHeadAttention
from llm_from_scratch.gpt import load_hf_checkpoint, load_mapped_weights

__all__ = ["BertConfig", "BertEmbeddings", "BertLayer", "BertModel", "BertForMaskedLM"]


@dataclass
class BertConfig:
    """The shape of a BERT; the defaults are bert-base-uncased (110M parameters). Field names
    are those of ``transformers.BertConfig``, so a config.json maps onto them directly."""

    vocab_size: int = 30522
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    layer_norm_eps: float = 1e-12
    pad_token_id: int = 0
    initializer_range: float = 0.02

    def __post_init__(self) -> None:
        for name in ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                     "intermediate_size", "max_position_embeddings", "type_vocab_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"BertConfig.{name} must be a positive integer, got {value!r}")
        if self.hidden_size % self.num_attention_heads != 0:
            raise ValueError(f"BertConfig.hidden_size ({self.hidden_size}) must be divisible by "
                             f"num_attention_heads ({self.num_attention_heads})")
        for name in ("hidden_dropout_prob", "attention_probs_dropout_prob"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"BertConfig.{name} must be in [0, 1), got {getattr(self, name)!r}")
        if self.pad_token_id is not None and not 0 <= self.pad_token_id < self.vocab_size:
            raise ValueError(f"BertConfig.pad_token_id={self.pad_token_id} is outside the vocabulary "
                             f"(0..{self.vocab_size - 1})")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping, strict: bool = True) -> BertConfig:
        """Inverse of ``to_dict``. ``strict=False`` ignores unknown keys (e.g. a transformers config.json)."""
        from llm_from_scratch.utils import config_from_dict

        return config_from_dict(cls, d, strict=strict)


class BertEmbeddings(nn.Module):
    """LN(word[ids] + pos[0..T-1] + type[token_type_ids]), then dropout: (B, T) -> (B, T, H)."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.word_embeddings = nn.Embedding(config.vocab_size, config.hidden_size, padding_idx=config.pad_token_id)
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, config.hidden_size)
        self.ln = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor) -> torch.Tensor:
        pos = torch.arange(input_ids.size(1), device=input_ids.device)
        x = self.word_embeddings(input_ids) + self.position_embeddings(pos) + self.token_type_embeddings(token_type_ids)
        return self.dropout(self.ln(x))


class BertLayer(nn.Module):
    """Post-LayerNorm encoder block: x = LN_1(x + Attn(x)); x = LN_2(x + FFN(x)), FFN with exact GELU."""

    def __init__(self, config: BertConfig):
        super().__init__()
        H = config.hidden_size
        self.attn = MultiHeadAttention(H, config.num_attention_heads, dropout=config.attention_probs_dropout_prob,
                                       bias=True, causal=False)
        self.ln_1 = nn.LayerNorm(H, eps=config.layer_norm_eps)
        self.mlp = nn.Sequential()  # named parts, so that the state dict reads mlp.c_fc / mlp.c_proj
        self.mlp.add_module("c_fc", nn.Linear(H, config.intermediate_size))
        self.mlp.add_module("gelu", nn.GELU())  # exact: x Φ(x)
        self.mlp.add_module("c_proj", nn.Linear(config.intermediate_size, H))
        self.ln_2 = nn.LayerNorm(H, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, x: torch.Tensor, key_padding_mask: torch.Tensor | None = None) -> torch.Tensor:
        x = self.ln_1(x + self.dropout(self.attn(x, mask=key_padding_mask)))
        return self.ln_2(x + self.dropout(self.mlp(x)))


def _init_bert_weights(module: nn.Module, std: float) -> None:
    if isinstance(module, nn.Linear):
        nn.init.normal_(module.weight, mean=0.0, std=std)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.Embedding):
        nn.init.normal_(module.weight, mean=0.0, std=std)
        if module.padding_idx is not None:
            with torch.no_grad():
                module.weight[module.padding_idx].zero_()
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


class BertModel(nn.Module):
    """The encoder: forward(input_ids (B, T), attention_mask (B, T) = None, token_type_ids (B, T) = None)
    -> sequence_output (B, T, hidden_size), the last layer's hidden states.

    attention_mask: 1 (or True) for real tokens, 0 for padding; None means no padding.
    token_type_ids: the segment (0 = sentence A, 1 = sentence B); None means all 0.
    With ``add_pooling_layer`` (the default), ``pool(sequence_output)`` = tanh(W h_[CLS] + b), (B, H):
    BERT's sentence vector, trained by next-sentence prediction.
    """

    def __init__(self, config: BertConfig, add_pooling_layer: bool = True):
        super().__init__()
        if not isinstance(config, BertConfig):
            raise TypeError(f"BertModel needs a BertConfig, got {type(config).__name__}")
        self.config = config
        self.embeddings = BertEmbeddings(config)
        self.layers = nn.ModuleList([BertLayer(config) for _ in range(config.num_hidden_layers)])
        self.pooler = nn.Linear(config.hidden_size, config.hidden_size) if add_pooling_layer else None
        self.apply(lambda m: _init_bert_weights(m, config.initializer_range))

    def _check_inputs(self, input_ids, attention_mask, token_type_ids):
        if not isinstance(input_ids, torch.Tensor) or input_ids.dim() != 2:
            shape = tuple(input_ids.shape) if isinstance(input_ids, torch.Tensor) else type(input_ids).__name__
            raise ValueError(f"input_ids must be token ids of shape (batch, time), got {shape}")
        if input_ids.size(1) > self.config.max_position_embeddings:
            raise ValueError(f"sequence too long: {input_ids.size(1)} tokens exceed max_position_embeddings="
                             f"{self.config.max_position_embeddings}; truncate the input")
        for name, t in (("attention_mask", attention_mask), ("token_type_ids", token_type_ids)):
            if t is not None and t.shape != input_ids.shape:
                raise ValueError(f"{name} must have the shape of input_ids {tuple(input_ids.shape)}, got {tuple(t.shape)}")

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        self._check_inputs(input_ids, attention_mask, token_type_ids)
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        key_padding_mask = None if attention_mask is None else attention_mask.bool()  # (B, T): True = real
        x = self.embeddings(input_ids, token_type_ids)
        for layer in self.layers:
            x = layer(x, key_padding_mask)
        return x

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def pool(self, sequence_output: torch.Tensor) -> torch.Tensor:
        """tanh(W h_[CLS] + b): (B, T, H) -> (B, H)."""
        if self.pooler is None:
            raise RuntimeError("this BertModel was built with add_pooling_layer=False; use sequence_output[:, 0]")
        return torch.tanh(self.pooler(sequence_output[:, 0]))

    @classmethod
    def from_hf_bert(cls, path_or_state_dict, config: BertConfig | None = None) -> BertModel:
        """A BertModel with the weights of a Hugging Face BERT checkpoint (folder, file, state dict,
        ``transformers`` model, or hub name such as "bert-base-uncased"). Head weights (``cls.*``)
        are ignored; a checkpoint without a pooler leaves ``pooler`` at its initialisation (warned)."""
        return _from_hf_bert(cls, path_or_state_dict, config)


class BertForMaskedLM(nn.Module):
    """BERT + the masked-LM head: forward(input_ids, attention_mask=None, token_type_ids=None)
    -> logits (B, T, vocab_size). ``decoder.weight`` is the word-embedding matrix (tied)."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.config = config
        self.bert = BertModel(config, add_pooling_layer=False)
        self.transform = nn.Linear(config.hidden_size, config.hidden_size)
        self.transform_act = nn.GELU()
        self.transform_ln = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.decoder = nn.Linear(config.hidden_size, config.vocab_size)
        _init_bert_weights(self.transform, config.initializer_range)
        nn.init.zeros_(self.decoder.bias)
        self.decoder.weight = self.bert.embeddings.word_embeddings.weight  # tied, as in BERT

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())  # tied weights counted once

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        h = self.bert(input_ids, attention_mask, token_type_ids)
        return self.decoder(self.transform_ln(self.transform_act(self.transform(h))))

    @classmethod
    def from_hf_bert(cls, path_or_state_dict, config: BertConfig | None = None) -> BertForMaskedLM:
        """A BertForMaskedLM with the weights of a Hugging Face ``BertForMaskedLM`` or
        ``BertForPreTraining`` checkpoint (``bert-base-uncased``); the next-sentence head and the
        pooler are ignored."""
        return _from_hf_bert(cls, path_or_state_dict, config)


# --------------------------------------------------------------------------------------------
# Hugging Face BERT checkpoints
# --------------------------------------------------------------------------------------------
def _bert_config_from_hf(cfg: Mapping) -> BertConfig:
    if cfg.get("model_type", "bert") != "bert":
        raise ValueError(f"config.json describes a {cfg.get('model_type')!r} model, not BERT")
    if cfg.get("hidden_act", "gelu") != "gelu":
        raise ValueError(f"this BERT uses the exact GELU; the checkpoint uses {cfg['hidden_act']!r}")
    if cfg.get("position_embedding_type", "absolute") != "absolute":
        raise ValueError(f"this BERT uses absolute positions; the checkpoint uses {cfg['position_embedding_type']!r}")
    cfg = dict(cfg)
    if cfg.get("pad_token_id") is None:
        cfg["pad_token_id"] = 0
    return BertConfig.from_dict(cfg, strict=False)


def _infer_bert_config(sd: Mapping) -> BertConfig:
    try:
        vocab_size, hidden = sd["embeddings.word_embeddings.weight"].shape
        max_pos = sd["embeddings.position_embeddings.weight"].shape[0]
        type_vocab = sd["embeddings.token_type_embeddings.weight"].shape[0]
        inter = sd["encoder.layer.0.intermediate.dense.weight"].shape[0]
    except KeyError as err:
        raise ValueError(f"cannot infer the BERT config from the state dict (no {err.args[0]}); "
                         "pass config=BertConfig(...)") from None
    layers = {int(m.group(1)) for k in sd if (m := re.match(r"encoder\.layer\.(\d+)\.", k))}
    if hidden % 64 != 0:
        raise ValueError(f"cannot infer the number of heads for hidden_size={hidden} (BERT uses heads of 64); "
                         "pass config=BertConfig(...)")
    return BertConfig(vocab_size=vocab_size, hidden_size=hidden, num_hidden_layers=len(layers),
                      num_attention_heads=hidden // 64, intermediate_size=inter, max_position_embeddings=max_pos,
                      type_vocab_size=type_vocab)


_LAYER_RENAME = {
    "attention.output.dense": "attn.out_proj",
    "attention.output.LayerNorm": "ln_1",
    "intermediate.dense": "mlp.c_fc",
    "output.dense": "mlp.c_proj",
    "output.LayerNorm": "ln_2",
}
_HEAD_RENAME = {"cls.predictions.transform.dense": "transform", "cls.predictions.transform.LayerNorm": "transform_ln"}


def _normalise_bert_keys(sd: Mapping) -> dict:
    """Strip the "bert." prefix and rename TF-era LayerNorm gamma/beta to weight/bias."""
    out = {}
    for k, v in sd.items():
        k = k.removeprefix("bert.")
        k = re.sub(r"LayerNorm\.gamma$", "LayerNorm.weight", k)
        k = re.sub(r"LayerNorm\.beta$", "LayerNorm.bias", k)
        out[k] = v
    return out


def _from_hf_bert(cls, source, config: BertConfig | None):
    state_dict, hf_config = load_hf_checkpoint(source)
    sd = _normalise_bert_keys(state_dict)
    if config is None:
        config = _bert_config_from_hf(hf_config) if hf_config is not None else _infer_bert_config(sd)
    model = cls(config)
    is_mlm = cls is BertForMaskedLM
    base = "bert." if is_mlm else ""
    ours = model.state_dict()
    mapped, unexpected, qkv_parts = {}, [], {}
    for key, t in sd.items():
        if key == "embeddings.position_ids" or key.startswith("cls.seq_relationship."):
            continue  # a buffer of old checkpoints; the next-sentence head
        if m := re.fullmatch(r"embeddings\.(word_embeddings|position_embeddings|token_type_embeddings)\.weight", key):
            mapped[f"{base}embeddings.{m.group(1)}.weight"] = (key, t)
        elif m := re.fullmatch(r"embeddings\.LayerNorm\.(weight|bias)", key):
            mapped[f"{base}embeddings.ln.{m.group(1)}"] = (key, t)
        elif m := re.fullmatch(r"encoder\.layer\.(\d+)\.attention\.self\.(query|key|value)\.(weight|bias)", key):
            qkv_parts.setdefault((m.group(1), m.group(3)), {})[m.group(2)] = (key, t)
        elif m := re.fullmatch(r"encoder\.layer\.(\d+)\.(.+)\.(weight|bias)", key):
            layer, module, kind = m.groups()
            if module in _LAYER_RENAME:
                mapped[f"{base}layers.{layer}.{_LAYER_RENAME[module]}.{kind}"] = (key, t)
            else:
                unexpected.append(key)
        elif m := re.fullmatch(r"pooler\.dense\.(weight|bias)", key):
            if not is_mlm and model.pooler is not None:
                mapped[f"pooler.{m.group(1)}"] = (key, t)
        elif key.startswith("cls."):
            if not is_mlm:
                continue  # a BertModel takes the encoder of a checkpoint with a head
            if m := re.fullmatch(r"(cls\.predictions\.transform\.(?:dense|LayerNorm))\.(weight|bias)", key):
                mapped[f"{_HEAD_RENAME[m.group(1)]}.{m.group(2)}"] = (key, t)
            elif key == "cls.predictions.bias":
                mapped["decoder.bias"] = (key, t)
            elif key == "cls.predictions.decoder.bias":
                mapped.setdefault("decoder.bias", (key, t))  # the same tensor as cls.predictions.bias
            elif key == "cls.predictions.decoder.weight":
                word = sd.get("embeddings.word_embeddings.weight")
                if word is not None and (word.shape != t.shape or not torch.equal(word, t)):
                    raise ValueError("cls.predictions.decoder.weight differs from the word embeddings: this "
                                     "BertForMaskedLM ties them and cannot hold an untied decoder")
            else:
                unexpected.append(key)
        else:
            unexpected.append(key)
    # BERT's separate query / key / value Linears are the row blocks of our fused qkv: [W_q; W_k; W_v].
    for (layer, kind), parts in qkv_parts.items():
        if set(parts) != {"query", "key", "value"}:
            absent = sorted({"query", "key", "value"} - set(parts))
            raise ValueError(f"cannot load the BERT checkpoint: layer {layer} has no attention.self."
                             f"{{{','.join(absent)}}}.{kind} (needed to build attn.qkv.{kind})")
        names = "+".join(parts[p][0] for p in ("query", "key", "value"))
        mapped[f"{base}layers.{layer}.attn.qkv.{kind}"] = (names, torch.cat([parts[p][1] for p in ("query", "key", "value")]))
    expected = [k for k in ours if k != "decoder.weight"]  # tied to the word embeddings
    if not is_mlm and model.pooler is not None and "pooler.weight" not in mapped:
        warnings.warn("the checkpoint has no pooler (pooler.dense.*): BertModel.pooler keeps its random "
                      "initialisation; train it or use sequence_output[:, 0]", stacklevel=3)
        expected = [k for k in expected if not k.startswith("pooler.")]
    load_mapped_weights(model, ours, expected, mapped, unexpected, "BERT")
    return model
