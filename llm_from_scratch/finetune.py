"""Fine-tuning a pretrained backbone: task heads, freezing, LoRA, and the ``finetune`` command.

A backbone maps token ids (B, T) to hidden states h (B, T, H): a GPT (``forward_hidden``, causal) or
a BERT (``BertModel``, bidirectional). A head turns h into what the task needs:

- ``SequenceClassifier``: pool h to one vector per text, then logits z = W h_pool + b (B, C);
  L_cls(θ) = −Σᵢ log P(yᵢ | xᵢ; θ) with P = softmax(z)                      (``losses.cross_entropy``)
- ``SequenceRegressor``: f(x) = w·h_pool + b, one number per text;
  L_reg(θ) = Σᵢ (yᵢ − f(xᵢ; θ))²                                            (``losses.mse_loss``)
  (trained on standardised targets (y − μ)/σ: the same minimiser, gradients of a sane size)
- ``TokenTagger``: one softmax over the tags at every word, independently;
  L = −Σᵢ Σₜ log P(yᵢₜ | xᵢ)
- ``CRFTagger``: the same emission scores fed to a linear-chain CRF (``llm_from_scratch.crf``), which
  scores whole tag sequences: L_crf(θ) = −Σᵢ log P(yᵢ | xᵢ; θ), P(y | x) = exp(score(x, y)) / Z(x).

Pooling (``pool_hidden``): a causal GPT's only position that has seen the whole text is its **last real
token** (with right padding, index = length − 1, never a pad); BERT sees both ways, so its **[CLS]**
(position 0) or the **mean** over real tokens work. For word-level tagging, a word is represented by
its last sub-token in a GPT (the first one has not seen the rest of the word) and its first in a BERT.

Which parameters train (``setup_method``):

=========  ====================================================  =====================================
method     trains                                                 cost
=========  ====================================================  =====================================
full       everything                                             all gradients and Adam states
frozen     the head only (the backbone is a fixed feature         cheapest; the features must already
           extractor)                                             carry the task
last-n     the head + the last n blocks (+ the final LayerNorm)   in between
lora       the head + low-rank updates of every attention and     r·(in+out) per layer (``lora.py``)
           MLP matrix
=========  ====================================================  =====================================

Command line (``python -m llm_from_scratch finetune``)::

    finetune --task genre|year|names|poems --checkpoint DIR --method full|frozen|last-n|lora --out DIR

prints the test metrics beside the baseline's and saves the fine-tuned model (LoRA merged) to DIR.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn as nn

from llm_from_scratch import metrics as M
from llm_from_scratch.crf import CRF, bio_violations, check_right_padded
from llm_from_scratch.lora import apply_lora
from llm_from_scratch.losses import cross_entropy, mse_loss

METHODS = ("full", "frozen", "last-n", "lora")
POOLINGS = ("last", "cls", "mean")


# ------------------------------------------------------------------------------------------------
# Freezing.
# ------------------------------------------------------------------------------------------------


def freeze(model: nn.Module) -> nn.Module:
    """Stop every parameter of ``model`` from training (``requires_grad = False``); returns it."""
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def unfreeze(model: nn.Module) -> nn.Module:
    """Let every parameter of ``model`` train again; returns it."""
    for p in model.parameters():
        p.requires_grad_(True)
    return model


def _final_norm(model: nn.Module) -> nn.Module | None:
    """The LayerNorm after the last block (GPT's ``transformer.ln_f``), if the model has one."""
    for name, m in model.named_modules():
        if name == "transformer.ln_f" or name.endswith(".transformer.ln_f"):
            return m
    return None


def unfreeze_last(model: nn.Module, n_layers: int) -> nn.Module:
    """Let the last ``n_layers`` transformer blocks train, and the final LayerNorm that follows them
    (GPT's ``ln_f``: it rescales what those blocks output). Other parameters are left as they are:
    call ``freeze`` first to train only those. ``n_layers=0`` unfreezes the final LayerNorm only."""
    from llm_from_scratch.train import transformer_blocks

    blocks = transformer_blocks(model)
    if not blocks:
        raise ValueError(f"{type(model).__name__} has no nn.ModuleList of transformer blocks to unfreeze")
    if isinstance(n_layers, bool) or not isinstance(n_layers, int) or not 0 <= n_layers <= len(blocks):
        raise ValueError(f"n_layers must be an integer in [0, {len(blocks)}] (the model has {len(blocks)} blocks), "
                         f"got {n_layers!r}")
    for block in blocks[len(blocks) - n_layers:]:
        unfreeze(block)
    norm = _final_norm(model)
    if norm is not None:
        unfreeze(norm)
    return model


def count_trainable_parameters(model: nn.Module) -> int:
    """Parameters that will train (``requires_grad``), each tensor counted once (tied weights share one)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)  # .parameters() yields a tied tensor once


def count_parameters(model: nn.Module) -> int:
    """All parameters, each tensor counted once."""
    return sum(p.numel() for p in model.parameters())


# ------------------------------------------------------------------------------------------------
# Backbones and pooling.
# ------------------------------------------------------------------------------------------------


def is_causal(backbone: nn.Module) -> bool:
    """A GPT (has ``forward_hidden``) reads left to right; a BERT reads both ways."""
    return hasattr(backbone, "forward_hidden")


def hidden_size(backbone: nn.Module) -> int:
    """H of the backbone's hidden states: ``config.n_embd`` (GPT) or ``config.hidden_size`` (BERT)."""
    cfg = getattr(backbone, "config", None)
    for name in ("n_embd", "hidden_size"):
        if cfg is not None and hasattr(cfg, name):
            return int(getattr(cfg, name))
    raise ValueError(f"cannot tell the hidden size of a {type(backbone).__name__}: it has no config.n_embd "
                     "(GPT) or config.hidden_size (BERT)")


def backbone_hidden(backbone: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                    token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
    """Hidden states (B, T, H) of a GPT or a BERT backbone.

    A GPT needs no attention mask with right padding: causal attention means a real token never
    looks right, at the pads. A BERT gets the mask so that no token attends to a pad.
    """
    if is_causal(backbone):
        return backbone.forward_hidden(input_ids)
    return backbone(input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)


def pool_hidden(hidden: torch.Tensor, attention_mask: torch.Tensor | None, pooling: str) -> torch.Tensor:
    """One vector per sequence from hidden states (B, T, H) -> (B, H).

    - "last": h at the last real token, index = Σₜ mask − 1 (right padding; a pad is never read)
    - "cls":  h at position 0 (BERT's [CLS])
    - "mean": Σₜ mask·h / Σₜ mask, the average over real tokens
    """
    if pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
    B, T, _ = hidden.shape
    if attention_mask is None:
        attention_mask = torch.ones(B, T, dtype=torch.bool, device=hidden.device)
    mask = check_right_padded(attention_mask)
    if pooling == "cls":
        return hidden[:, 0]
    if pooling == "last":
        last = mask.sum(dim=1) - 1  # (B,)
        return hidden[torch.arange(B, device=hidden.device), last]
    m = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * m).sum(dim=1) / m.sum(dim=1)


class _Head(nn.Module):
    """A backbone plus a dropout; the subclasses add the output layer."""

    def __init__(self, backbone: nn.Module, pooling: str | None = None, dropout: float = 0.0):
        super().__init__()
        self.backbone = backbone
        self.causal = is_causal(backbone)
        self.pooling = pooling or ("last" if self.causal else "cls")
        if self.pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {self.pooling!r}")
        if self.causal and self.pooling == "cls":
            raise ValueError("pooling='cls' on a GPT reads the first token, which has seen nothing of the text "
                             "after it; use 'last' (or 'mean')")
        self.hidden_size = hidden_size(backbone)
        self.dropout = nn.Dropout(dropout)

    def pooled(self, input_ids, attention_mask=None, token_type_ids=None) -> torch.Tensor:
        h = backbone_hidden(self.backbone, input_ids, attention_mask, token_type_ids)
        return self.dropout(pool_hidden(h, attention_mask, self.pooling))

    def head_parameters(self) -> list[nn.Parameter]:
        """The parameters that are not the backbone's (they always train)."""
        backbone_ids = {id(p) for p in self.backbone.parameters()}
        return [p for p in self.parameters() if id(p) not in backbone_ids]


class SequenceClassifier(_Head):
    """Backbone + pooling + a linear layer: input_ids (B, T) -> logits (B, num_classes).

    forward(input_ids, attention_mask=None, labels=None, token_type_ids=None) -> (logits, loss);
    loss = L_cls averaged over the batch, None without labels.
    """

    def __init__(self, backbone: nn.Module, num_classes: int, pooling: str | None = None, dropout: float = 0.0):
        super().__init__(backbone, pooling, dropout)
        if num_classes < 2:
            raise ValueError(f"a classifier needs num_classes >= 2, got {num_classes}")
        self.num_classes = num_classes
        self.head = nn.Linear(self.hidden_size, num_classes)
        nn.init.normal_(self.head.weight, std=0.02)
        nn.init.zeros_(self.head.bias)

    def forward(self, input_ids, attention_mask=None, labels=None, token_type_ids=None):
        logits = self.head(self.pooled(input_ids, attention_mask, token_type_ids))
        loss = cross_entropy(logits, labels) if labels is not None else None
        return logits, loss

    @torch.no_grad()
    def predict(self, input_ids, attention_mask=None, token_type_ids=None, **_) -> list[int]:
        return self(input_ids, attention_mask, token_type_ids=token_type_ids)[0].argmax(-1).tolist()


class SequenceRegressor(_Head):
    """Backbone + pooling + a linear layer to one number: input_ids (B, T) -> predictions (B,).

    The layer predicts the standardised target z = (y − target_mean) / target_std, and the output is
    target_mean + target_std · z: in years, say, while the loss sees numbers of order 1.
    forward(...) -> (predictions (B,), loss = L_reg on z averaged over the batch, or None).
    """

    def __init__(self, backbone: nn.Module, pooling: str | None = None, dropout: float = 0.0,
                 target_mean: float = 0.0, target_std: float = 1.0):
        super().__init__(backbone, pooling, dropout)
        if not target_std > 0:
            raise ValueError(f"target_std must be > 0, got {target_std}")
        self.head = nn.Linear(self.hidden_size, 1)
        # w = 0, b = 0: z = 0 at the start, every prediction is the training mean (the baseline), and
        # training can only move away from it where the data says so.
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)
        self.register_buffer("target_mean", torch.tensor(float(target_mean)))
        self.register_buffer("target_std", torch.tensor(float(target_std)))

    def forward(self, input_ids, attention_mask=None, labels=None, token_type_ids=None):
        z = self.head(self.pooled(input_ids, attention_mask, token_type_ids)).squeeze(-1)  # (B,)
        loss = None
        if labels is not None:
            loss = mse_loss(z, (labels.to(z.dtype) - self.target_mean) / self.target_std)
        return self.target_mean + self.target_std * z, loss

    @torch.no_grad()
    def predict(self, input_ids, attention_mask=None, token_type_ids=None, **_) -> list[float]:
        return self(input_ids, attention_mask, token_type_ids=token_type_ids)[0].tolist()


def gather_words(hidden: torch.Tensor, word_index: torch.Tensor) -> torch.Tensor:
    """Hidden states at the word positions: (B, T, H), (B, W) -> (B, W, H)."""
    return hidden.gather(1, word_index.unsqueeze(-1).expand(-1, -1, hidden.size(-1)))


class TokenTagger(_Head):
    """A softmax over the tags at every word, each word on its own: -> emissions (B, W, num_tags).

    forward(input_ids, attention_mask=None, labels=None, word_index=None, word_mask=None, ...)
    -> (emissions, loss). ``word_index`` (B, W) gives the token that represents each word (without
    it, every token is a word); ``labels`` (B, W) holds -100 where there is no word.
    """

    def __init__(self, backbone: nn.Module, num_tags: int, dropout: float = 0.0):
        super().__init__(backbone, pooling=None, dropout=dropout)
        self.num_tags = num_tags
        self.head = nn.Linear(self.hidden_size, num_tags)
        nn.init.normal_(self.head.weight, std=0.02)
        nn.init.zeros_(self.head.bias)

    def emissions(self, input_ids, attention_mask=None, word_index=None, word_mask=None, token_type_ids=None):
        """(emissions (B, W, K), mask (B, W) bool)."""
        h = backbone_hidden(self.backbone, input_ids, attention_mask, token_type_ids)
        if word_index is None:
            word_index = torch.arange(h.size(1), device=h.device).expand(h.size(0), -1)
            word_mask = attention_mask if attention_mask is not None else torch.ones_like(word_index)
        elif word_mask is None:
            word_mask = torch.ones_like(word_index)
        return self.head(self.dropout(gather_words(h, word_index))), word_mask.bool()

    def forward(self, input_ids, attention_mask=None, labels=None, word_index=None, word_mask=None,
                token_type_ids=None):
        e, mask = self.emissions(input_ids, attention_mask, word_index, word_mask, token_type_ids)
        loss = None
        if labels is not None:
            labels = torch.where(mask, labels, torch.full_like(labels, -100))
            loss = cross_entropy(e.reshape(-1, self.num_tags), labels.reshape(-1))
        return e, loss

    @torch.no_grad()
    def predict(self, input_ids, attention_mask=None, word_index=None, word_mask=None, token_type_ids=None,
                **_) -> list[list[int]]:
        e, mask = self.emissions(input_ids, attention_mask, word_index, word_mask, token_type_ids)
        best = e.argmax(-1)
        return [row[:n].tolist() for row, n in zip(best, mask.sum(1).tolist())]


class CRFTagger(TokenTagger):
    """The tagger's emission scores + a linear-chain CRF (BIO transitions forbidden where BIO forbids
    them): the loss is the CRF's −log P(y | x) averaged over sentences, prediction is Viterbi."""

    def __init__(self, backbone: nn.Module, tag_names: Sequence[str], dropout: float = 0.0,
                 bio_constraints: bool = True):
        super().__init__(backbone, len(tag_names), dropout)
        self.tag_names = tuple(tag_names)
        self.crf = CRF.with_bio_constraints(self.tag_names) if bio_constraints else CRF(len(tag_names))

    def forward(self, input_ids, attention_mask=None, labels=None, word_index=None, word_mask=None,
                token_type_ids=None):
        e, mask = self.emissions(input_ids, attention_mask, word_index, word_mask, token_type_ids)
        loss = self.crf.nll(e, labels, mask, reduction="mean") if labels is not None else None
        return e, loss

    @torch.no_grad()
    def predict(self, input_ids, attention_mask=None, word_index=None, word_mask=None, token_type_ids=None,
                **_) -> list[list[int]]:
        e, mask = self.emissions(input_ids, attention_mask, word_index, word_mask, token_type_ids)
        return self.crf.decode(e, mask)


def setup_method(model: nn.Module, method: str, n_layers: int = 1, lora_r: int = 8, lora_alpha: float = 16.0) -> nn.Module:
    """Choose what trains (see the module docstring's table), in place; returns the model.

    ``model``: a head (its ``backbone`` is adapted, the head always trains) or a bare GPT for
    language modelling (there "frozen" would train nothing and is an error).
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    backbone = getattr(model, "backbone", model)
    head_params = model.head_parameters() if isinstance(model, _Head) else []
    if method == "frozen" and not head_params:
        raise ValueError("method 'frozen' trains only a task head, and this model has none (language modelling): "
                         "use 'full', 'last-n' or 'lora'")
    if method == "full":
        unfreeze(model)
        return model
    freeze(backbone)
    if method == "last-n":
        unfreeze_last(backbone, n_layers)
    elif method == "lora":
        apply_lora(backbone, r=lora_r, alpha=lora_alpha)
    for p in head_params:
        p.requires_grad_(True)
    return model


# ------------------------------------------------------------------------------------------------
# Turning examples into batches.
# ------------------------------------------------------------------------------------------------


def safe_encode(tokenizer, text: str) -> list[int]:
    """``tokenizer.encode(text)``; a character the tokenizer cannot encode (a CharTokenizer fitted on
    other text) is dropped instead of failing the whole example."""
    try:
        return list(tokenizer.encode(text))
    except ValueError:
        out = []
        for ch in text:
            try:
                out += tokenizer.encode(ch)
            except ValueError:
                continue
        return out


def encode_text(tokenizer, text: str, text_pair: str | None = None, max_len: int | None = None) -> list[int]:
    """Token ids of a text (a pair is joined by a newline), cut to its first ``max_len`` tokens."""
    ids = safe_encode(tokenizer, text)
    if text_pair is not None:
        ids += safe_encode(tokenizer, "\n" + text_pair)
    if not ids:
        raise ValueError(f"the text {text[:40]!r} encodes to no tokens; drop it or use another tokenizer")
    return ids[:max_len] if max_len else ids


def encode_words(tokenizer, words: Sequence[str], max_len: int, word_position: str = "last") -> tuple[list[int], list[int]]:
    """Token ids of words joined by spaces, and the index of the token that stands for each word:
    its last token (``word_position="last"``, for a causal GPT) or its first ("first", for BERT).

    Words that do not fit in ``max_len`` tokens are left out: ``len(positions)`` says how many fit.
    """
    if word_position not in ("last", "first"):
        raise ValueError(f"word_position must be 'last' or 'first', got {word_position!r}")
    ids, positions = [], []
    for i, w in enumerate(words):
        piece = safe_encode(tokenizer, (" " if i else "") + w) or safe_encode(tokenizer, " ")
        if not piece or len(ids) + len(piece) > max_len:
            break
        positions.append(len(ids) + len(piece) - 1 if word_position == "last" else len(ids))
        ids += piece
    return ids, positions


def pad(seqs: Sequence[Sequence], pad_value, dtype=torch.long) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad lists to the longest: (values (B, L), mask (B, L) True on real entries)."""
    L = max(len(s) for s in seqs)
    values = torch.full((len(seqs), L), pad_value, dtype=dtype)
    mask = torch.zeros(len(seqs), L, dtype=torch.bool)
    for i, s in enumerate(seqs):
        values[i, :len(s)] = torch.tensor(list(s), dtype=dtype)
        mask[i, :len(s)] = True
    return values, mask


@dataclass
class EncodedExamples:
    """Examples encoded once: token ids, labels, and for tagging the word positions."""

    kind: str
    ids: list[list[int]]
    labels: list
    positions: list[list[int]] | None = None
    kept: list[int] | None = None  # tagging: indices of the examples kept (one with no word that fits is dropped)

    def __len__(self) -> int:
        return len(self.ids)

    def collate(self, indices: Sequence[int], pad_id: int = 0) -> dict[str, torch.Tensor]:
        """The batch of the examples at ``indices``: a dict for ``model(**batch)``."""
        input_ids, mask = pad([self.ids[i] for i in indices], pad_id)
        batch = {"input_ids": input_ids, "attention_mask": mask}
        if self.kind == "classification":
            batch["labels"] = torch.tensor([int(self.labels[i]) for i in indices], dtype=torch.long)
        elif self.kind == "regression":
            batch["labels"] = torch.tensor([float(self.labels[i]) for i in indices], dtype=torch.float32)
        elif self.kind == "tagging":
            batch["word_index"], batch["word_mask"] = pad([self.positions[i] for i in indices], 0)
            batch["labels"], _ = pad([self.labels[i] for i in indices], -100)
        return batch

    def batches(self, batch_size: int, pad_id: int = 0) -> list[dict[str, torch.Tensor]]:
        """All examples in order, in batches (for evaluation)."""
        return [self.collate(range(i, min(i + batch_size, len(self))), pad_id) for i in range(0, len(self), batch_size)]


def encode_examples(examples: Sequence, tokenizer, kind: str, max_len: int, label_names: Sequence[str] = (),
                    word_position: str = "last") -> EncodedExamples:
    """Encode ``tasks.TextExample`` (classification, regression) or ``tasks.TaggedExample`` (tagging)."""
    if kind in ("classification", "regression"):
        ids = [encode_text(tokenizer, e.text, e.text_pair, max_len) for e in examples]
        return EncodedExamples(kind, ids, [e.label for e in examples])
    if kind == "tagging":
        tag_id = {t: i for i, t in enumerate(label_names)}
        ids, labels, positions, kept = [], [], [], []
        for k, e in enumerate(examples):
            toks, pos = encode_words(tokenizer, e.tokens, max_len, word_position)
            if not pos:
                continue
            unknown = [t for t in e.tags[:len(pos)] if t not in tag_id]
            if unknown:
                raise ValueError(f"tags {sorted(set(unknown))} are not in label_names {list(label_names)}")
            ids.append(toks)
            positions.append(pos)
            labels.append([tag_id[t] for t in e.tags[:len(pos)]])
            kept.append(k)
        return EncodedExamples(kind, ids, labels, positions, kept)
    raise ValueError(f"cannot encode examples of kind {kind!r}: expected classification, regression or tagging")


# ------------------------------------------------------------------------------------------------
# Training and evaluation.
# ------------------------------------------------------------------------------------------------


@dataclass
class FinetuneConfig:
    """How to fine-tune. ``lr=None`` picks by method: 3e-4 for full / last-n, 2e-3 for frozen / lora
    (a fresh head or fresh LoRA matrices can move faster than pretrained weights should)."""

    method: str = "full"
    n_layers: int = 1  # for last-n
    lora_r: int = 8
    lora_alpha: float = 16.0
    steps: int = 300
    batch_size: int = 16
    lr: float | None = None
    warmup_steps: int = 20
    weight_decay: float = 0.01
    max_len: int = 128  # tokens per example (cut to the backbone's block size)
    dropout: float = 0.1
    seed: int = 0
    device: str | None = None
    progress: bool = False
    keep_best: bool = True  # evaluate on task.validation during training and keep the best weights
    evals: int = 5  # how many times (evenly spaced) to evaluate on validation when keep_best
    # Sequence heads (genre, year). None: "mean" on a GPT, "cls" on BERT. A character GPT's last state
    # mostly encodes the next character; the mean over the passage carried the genre and year signal
    # (benchmarks/RESULTS.md, "Fine-tuning"). "last" is the head classes' own default on a GPT.
    pooling: str | None = None

    def __post_init__(self):
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {self.method!r}")

    @property
    def learning_rate(self) -> float:
        if self.lr is not None:
            return self.lr
        return 2e-3 if self.method in ("frozen", "lora") else 3e-4


def _head_loss(model: nn.Module, batch: dict) -> torch.Tensor:
    return model(**batch)[1]


def fit(model: nn.Module, train_data: EncodedExamples, config: FinetuneConfig, pad_id: int = 0,
        loss_fn: Callable | None = None, eval_fn: Callable[[nn.Module], dict] | None = None):
    """Train ``model`` (whose trainable parameters ``setup_method`` chose) on ``train_data`` with the
    course's training loop (``train.train``: AdamW, warmup + cosine, clipping). ``eval_fn(model) -> dict``
    runs ``config.evals`` times, evenly spaced (and after the last step). Returns the TrainResult."""
    from llm_from_scratch.train import TrainConfig, shuffled_batches, train

    batch_size = min(config.batch_size, len(train_data))
    batches = shuffled_batches(len(train_data), batch_size, lambda idx: train_data.collate(idx, pad_id),
                               seed=config.seed)
    tc = TrainConfig(max_steps=config.steps, batch_size=batch_size, lr=config.learning_rate,
                     warmup_steps=min(config.warmup_steps, config.steps - 1), weight_decay=config.weight_decay,
                     eval_every=max(1, config.steps // max(1, config.evals)) if eval_fn else config.steps,
                     seed=config.seed, device=config.device, precision=None, progress=config.progress)
    if count_trainable_parameters(model) == 0:
        raise ValueError("the model has no trainable parameters: call setup_method(model, method) first")
    return train(model, batches, config=tc, loss_fn=loss_fn or _head_loss, eval_fn=eval_fn)


def selection_score(kind: str, metrics: dict) -> float:
    """The validation number to keep the best weights by (higher is better): macro-F1 for
    classification, −RMSE for regression, entity F1 for tagging."""
    return {"classification": lambda m: m["macro_f1"], "regression": lambda m: -m["rmse"],
            "tagging": lambda m: m["f1"]}[kind](metrics)


@torch.no_grad()
def predict(model: nn.Module, data: EncodedExamples, batch_size: int = 64, pad_id: int = 0) -> list:
    """The model's predictions for every example, in order (class ids, numbers or tag-id lists)."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    out = []
    for batch in data.batches(batch_size, pad_id):
        out += model.predict(**{k: v.to(device) for k, v in batch.items() if k != "labels"})
    model.train(was_training)
    return out


def classification_metrics(y_true, y_pred, num_classes: int) -> dict:
    return {"accuracy": M.accuracy(y_true, y_pred), "macro_f1": M.macro_f1(y_true, y_pred, num_classes)}


def regression_metrics(y_true, y_pred) -> dict:
    try:
        r = M.pearson_r(y_true, y_pred)
    except ValueError:  # constant predictions (the mean baseline): r is undefined
        r = float("nan")
    return {"rmse": M.rmse(y_true, y_pred), "pearson_r": r}


def tagging_metrics(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]], tag_names: Sequence[str]) -> dict:
    """Entity-level P/R/F1, plus how often ``pred`` breaks BIO: ``bio_violations`` counts the
    offending positions (an ``I-X`` after neither ``B-X`` nor ``I-X``), ``invalid_sequences`` the
    sentences with at least one."""
    s = M.entity_scores(gold, pred)
    per_sequence = [bio_violations(p, tag_names) for p in pred]
    return {"precision": s.precision, "recall": s.recall, "f1": s.f1,
            "bio_violations": sum(per_sequence), "invalid_sequences": sum(v > 0 for v in per_sequence)}


def task_metrics(task, data: EncodedExamples, predictions: list) -> dict:
    """The task's test metrics for ``predictions`` of the encoded examples ``data``."""
    if task.kind == "classification":
        return classification_metrics(data.labels, predictions, task.num_labels)
    if task.kind == "regression":
        return regression_metrics(data.labels, predictions)
    if task.kind == "tagging":
        names = task.label_names
        gold = [[names[i] for i in g] for g in data.labels]
        pred = [[names[i] for i in p] for p in predictions]
        return tagging_metrics(gold, pred, task.label_names)
    raise ValueError(f"no metrics for task kind {task.kind!r}")


def baseline_metrics(task, data: EncodedExamples | None = None) -> dict:
    """The baseline on the test split: majority class, training mean, or the gazetteer tagger."""
    from llm_from_scratch.tasks import GazetteerTagger, majority_class, mean_label

    if task.kind == "classification":
        y = [e.label for e in task.test] if data is None else data.labels
        return classification_metrics(y, [majority_class(task)] * len(y), task.num_labels)
    if task.kind == "regression":
        y = [e.label for e in task.test] if data is None else data.labels
        return regression_metrics(y, [mean_label(task)] * len(y))
    if task.kind == "tagging":
        gaz = GazetteerTagger(task.train)
        if data is None:
            gold = [list(e.tags) for e in task.test]
            pred = [gaz.tag(e.tokens) for e in task.test]
        else:  # the same (possibly truncated) words the model saw
            names = task.label_names
            gold = [[names[i] for i in g] for g in data.labels]
            pred = [gaz.tag(task.test[k].tokens[:len(g)]) for k, g in zip(data.kept, gold)]
        return tagging_metrics(gold, pred, task.label_names)
    raise ValueError(f"no baseline for task kind {task.kind!r}")


# ------------------------------------------------------------------------------------------------
# One call: a task, a backbone, a method -> metrics beside the baseline's.
# ------------------------------------------------------------------------------------------------


@dataclass
class FinetuneResult:
    task: str
    method: str
    metrics: dict
    baseline: dict
    trainable_parameters: int
    total_parameters: int
    seconds: float
    model: nn.Module = field(repr=False)
    history: list = field(default_factory=list, repr=False)

    def row(self) -> dict:
        """A flat dict for a results table."""
        return {"method": self.method, **self.metrics, "trainable": self.trainable_parameters,
                "seconds": round(self.seconds, 1)}


def sequence_pooling(backbone: nn.Module, config: FinetuneConfig) -> str:
    """The pooling ``build_model`` gives a sequence head: ``config.pooling``, else mean on a GPT, [CLS] on BERT."""
    return config.pooling or ("mean" if is_causal(backbone) else "cls")


def build_model(task, backbone: nn.Module, config: FinetuneConfig, crf: bool = True) -> nn.Module:
    """The head the task needs on ``backbone`` (tagging: a CRFTagger, or a softmax TokenTagger)."""
    if task.kind == "classification":
        return SequenceClassifier(backbone, task.num_labels, pooling=sequence_pooling(backbone, config),
                                  dropout=config.dropout)
    if task.kind == "regression":
        ys = torch.tensor([float(e.label) for e in task.train])
        std = float(ys.std()) if len(ys) > 1 and float(ys.std()) > 0 else 1.0
        return SequenceRegressor(backbone, pooling=sequence_pooling(backbone, config), dropout=config.dropout,
                                 target_mean=float(ys.mean()), target_std=std)
    if task.kind == "tagging":
        if crf:
            return CRFTagger(backbone, task.label_names, dropout=config.dropout)
        return TokenTagger(backbone, task.num_labels, dropout=config.dropout)
    raise ValueError(f"build_model: no head for task kind {task.kind!r} (poems: fine-tune the GPT itself)")


def block_size_of(backbone: nn.Module) -> int:
    cfg = backbone.config
    return int(getattr(cfg, "block_size", None) or getattr(cfg, "max_position_embeddings"))


def finetune_task(task, backbone: nn.Module, tokenizer, config: FinetuneConfig, crf: bool = True,
                  pad_id: int = 0) -> FinetuneResult:
    """Put the task's head on ``backbone`` (changed in place: pass a copy to keep the original), set up
    ``config.method``, train on ``task.train`` and evaluate on ``task.test`` beside the baseline."""
    if task.kind == "language_modeling":
        return adapt_lm(task, backbone, tokenizer, config)
    max_len = min(config.max_len, block_size_of(backbone))
    word_position = "last" if is_causal(backbone) else "first"
    train_data = encode_examples(task.train, tokenizer, task.kind, max_len, task.label_names, word_position)
    test_data = encode_examples(task.test, tokenizer, task.kind, max_len, task.label_names, word_position)
    model = setup_method(build_model(task, backbone, config, crf), config.method, config.n_layers,
                         config.lora_r, config.lora_alpha)
    eval_fn, best = None, {"score": -math.inf, "state": None}
    if config.keep_best and task.validation:
        # Fine-tuning data is small and a few hundred steps can overfit the training plays: evaluate on
        # the validation plays as we go and keep the weights that did best there (early stopping).
        val_data = encode_examples(task.validation, tokenizer, task.kind, max_len, task.label_names, word_position)

        def eval_fn(m: nn.Module) -> dict:
            scores = task_metrics(task, val_data, predict(m, val_data, pad_id=pad_id))
            score = selection_score(task.kind, scores)
            if score > best["score"]:
                best.update(score=score, state={k: v.detach().clone() for k, v in m.state_dict().items()})
            return scores

    t0 = time.perf_counter()
    result = fit(model, train_data, config, pad_id, eval_fn=eval_fn)
    if best["state"] is not None:
        model.load_state_dict(best["state"])
    seconds = time.perf_counter() - t0
    preds = predict(model, test_data, pad_id=pad_id)
    return FinetuneResult(task.name, config.method, task_metrics(task, test_data, preds),
                          baseline_metrics(task, test_data), count_trainable_parameters(model),
                          count_parameters(model), seconds, model, result.history)


# ------------------------------------------------------------------------------------------------
# Domain adaptation: a GPT pretrained on the plays, fine-tuned on the Sonnets.
# ------------------------------------------------------------------------------------------------


def lm_token_stream(examples: Sequence, tokenizer, separator: str = "\n\n") -> torch.Tensor:
    """The texts of ``examples`` joined by ``separator``, encoded: a 1-D LongTensor."""
    return torch.tensor(safe_encode(tokenizer, separator.join(e.text for e in examples)), dtype=torch.long)


@torch.no_grad()
def perplexity(model: nn.Module, tokens: torch.Tensor, block_size: int | None = None, batch_size: int = 16) -> float:
    """exp(mean next-token NLL) of a GPT over a token stream, in non-overlapping windows."""
    from llm_from_scratch.train import eval_batches, evaluate_lm

    block_size = block_size or model.config.block_size
    block_size = min(block_size, tokens.numel() - 1)
    device = next(model.parameters()).device
    return evaluate_lm(model, eval_batches(tokens, block_size, batch_size), device=device)["perplexity"]


def adapt_lm(task, gpt: nn.Module, tokenizer, config: FinetuneConfig) -> FinetuneResult:
    """Fine-tune a GPT language model on ``task.train`` (the poems); perplexity on ``task.test``
    before (the baseline) and after."""
    from llm_from_scratch.train import TrainConfig, lm_batches, train

    block = min(config.max_len, gpt.config.block_size)
    train_tokens = lm_token_stream(task.train, tokenizer)
    test_tokens = lm_token_stream(task.test, tokenizer)
    before = perplexity(gpt, test_tokens, block)
    setup_method(gpt, config.method, config.n_layers, config.lora_r, config.lora_alpha)
    tc = TrainConfig(max_steps=config.steps, batch_size=config.batch_size, lr=config.learning_rate,
                     warmup_steps=min(config.warmup_steps, config.steps - 1), weight_decay=config.weight_decay,
                     eval_every=config.steps, seed=config.seed, device=config.device, progress=config.progress)
    t0 = time.perf_counter()
    result = train(gpt, lm_batches(train_tokens, block, config.batch_size, seed=config.seed), config=tc)
    seconds = time.perf_counter() - t0
    after = perplexity(gpt, test_tokens, block)
    return FinetuneResult(task.name, config.method, {"perplexity": after}, {"perplexity": before},
                          count_trainable_parameters(gpt), count_parameters(gpt), seconds, gpt, result.history)


# ------------------------------------------------------------------------------------------------
# Backbones: a checkpoint of `pretrain`, or a small GPT pretrained here (CI).
# ------------------------------------------------------------------------------------------------


def encode_chars(tokenizer, text: str) -> torch.Tensor:
    """``torch.tensor(tokenizer.encode(text))`` for a CharTokenizer, vectorised (a table lookup on the
    code points: ~50x faster on the 3.5 M characters of the training plays)."""
    import numpy as np

    codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
    table = np.full(int(codes.max()) + 1, -1, dtype=np.int64)
    for ch, i in tokenizer.stoi.items():
        if ord(ch) < len(table):
            table[ord(ch)] = i
    ids = table[codes]
    if (ids < 0).any():
        return torch.tensor(tokenizer.encode(text), dtype=torch.long)  # raises the tokenizer's own error
    return torch.from_numpy(ids)


def pretrain_small_gpt(works=None, steps: int = 150, n_layer: int = 2, n_head: int = 4, n_embd: int = 64,
                       block_size: int = 128, batch_size: int = 16, lr: float = 3e-3, seed: int = 0,
                       progress: bool = False):
    """A character-level GPT pretrained for ``steps`` steps on the *training* plays only: a
    stand-in backbone (seconds on a CPU) when chapter 07's checkpoint is not there. Returns
    (GPT, CharTokenizer, final training loss)."""
    from llm_from_scratch.data import corpus_text, load_shakespeare, split_works
    from llm_from_scratch.gpt import GPT, GPTConfig
    from llm_from_scratch.tokenizer import CharTokenizer
    from llm_from_scratch.train import TrainConfig, lm_batches, train
    from llm_from_scratch.utils import seed_everything

    plays = split_works(load_shakespeare(progress=False) if works is None else works)["train"]
    text = corpus_text(plays)
    tok = CharTokenizer.fit(text)
    seed_everything(seed)
    gpt = GPT(GPTConfig(vocab_size=tok.vocab_size, block_size=block_size, n_layer=n_layer, n_head=n_head,
                        n_embd=n_embd, dropout=0.0))
    tokens = encode_chars(tok, text)
    tc = TrainConfig(max_steps=steps, batch_size=batch_size, lr=lr, warmup_steps=min(20, steps - 1),
                     eval_every=steps, seed=seed, progress=progress, weight_decay=0.1)
    result = train(gpt, lm_batches(tokens, block_size, batch_size, seed=seed), config=tc)
    return gpt, tok, result.last.get("train_loss")


def course_backbone(smoke: bool, checkpoint: str | Path | None = None, works=None, progress: bool = False):
    """The pretrained GPT the fine-tuning chapters start from: (GPT, tokenizer, where it came from).

    - ``smoke`` (CI): a 2-layer character GPT pretrained for 60 steps here (seconds; it has learned
      little, which is fine: CI checks that the pipeline runs);
    - otherwise chapter 07's checkpoint ``checkpoint`` (default ``runs/shakespeare-char-cpu``, looked
      up from the repository root) if it exists, else a 6-layer character GPT with a 256-character
      context pretrained here for 3000 steps on the training plays (minutes on a GPU).
    """
    if smoke:
        gpt, tok, _ = pretrain_small_gpt(works, steps=60, n_layer=2, n_head=4, n_embd=64, block_size=64,
                                         batch_size=16, lr=3e-3, progress=progress)
        return gpt, tok, "a 2-layer character GPT pretrained for 60 steps (CI size)"
    root = Path(__file__).resolve().parents[1]
    path = Path(checkpoint) if checkpoint is not None else root / "runs" / "shakespeare-char-cpu"
    if (path / "config.json").exists():
        from llm_from_scratch.train import load_gpt_checkpoint

        gpt, tok, _ = load_gpt_checkpoint(path)
        return gpt.train(), tok, f"chapter 07's checkpoint {path.name}"
    gpt, tok, _ = pretrain_small_gpt(works, steps=3000, n_layer=6, n_head=6, n_embd=384, block_size=256,
                                     batch_size=64, lr=1e-3, progress=progress)
    return gpt, tok, "a 6-layer character GPT pretrained for 3000 steps (no checkpoint found)"


# ------------------------------------------------------------------------------------------------
# The command line.
# ------------------------------------------------------------------------------------------------


def add_finetune_parser(subparsers) -> argparse.ArgumentParser:
    """Add ``finetune`` to the ``python -m llm_from_scratch`` subcommands."""
    p = subparsers.add_parser(
        "finetune", help="fine-tune a pretrained GPT on a Shakespeare task and compare with the baseline",
        description="Fine-tune a pretrained GPT checkpoint on a task made from the Shakespeare corpus "
                    "(genre: classification, year: regression, names: CRF tagging, poems: language "
                    "modelling on the Sonnets) and print the test metrics beside the baseline's.")
    p.add_argument("--task", required=True, choices=["genre", "year", "names", "poems"])
    p.add_argument("--checkpoint", required=True, help="checkpoint directory written by `pretrain`")
    p.add_argument("--method", default="full", choices=list(METHODS))
    p.add_argument("--out", required=True, help="directory for the fine-tuned model and metrics.json")
    p.add_argument("--n-layers", type=int, default=1, help="blocks to train with --method last-n")
    p.add_argument("--lora-r", type=int, default=8)
    p.add_argument("--lora-alpha", type=float, default=16.0)
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--lr", type=float, default=None, help="default: by method (see FinetuneConfig)")
    p.add_argument("--max-len", type=int, default=256, help="tokens per example (at most the block size)")
    p.add_argument("--max-per-work", type=int, default=None,
                   help="examples per play at most (a quick run); default: all")
    p.add_argument("--softmax", action="store_true", help="names: a softmax tagger instead of the CRF")
    p.add_argument("--device", default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=main_finetune)
    return p


def _fmt(v) -> str:
    if isinstance(v, float):
        return "—" if math.isnan(v) else f"{v:.4f}"
    return str(v)


def format_comparison(result: FinetuneResult) -> str:
    """The test metrics beside the baseline's, as a small table."""
    baseline_name = {"genre": "majority class", "year": "training mean", "names": "gazetteer",
                     "poems": "before fine-tuning"}.get(result.task, "baseline")
    lines = [f"task {result.task}, method {result.method}: {result.trainable_parameters:,} of "
             f"{result.total_parameters:,} parameters trained, {result.seconds:.1f} s",
             f"{'metric':<16}{baseline_name:>20}{'fine-tuned':>14}"]
    for k, v in result.metrics.items():
        lines.append(f"{k:<16}{_fmt(result.baseline.get(k, float('nan'))):>20}{_fmt(v):>14}")
    return "\n".join(lines)


def main_finetune(args: argparse.Namespace) -> int:
    """The body of ``python -m llm_from_scratch finetune``."""
    from llm_from_scratch import checkpoint as ckpt
    from llm_from_scratch.lora import LoRALinear, merge_lora
    from llm_from_scratch.tasks import load_task

    from llm_from_scratch.train import load_gpt_checkpoint

    gpt, tokenizer, _ = load_gpt_checkpoint(args.checkpoint, device="cpu")
    gpt.train()
    kwargs = {} if args.task == "poems" else {"max_per_work": args.max_per_work}
    task = load_task(args.task, **kwargs)
    config = FinetuneConfig(method=args.method, n_layers=args.n_layers, lora_r=args.lora_r, lora_alpha=args.lora_alpha,
                            steps=args.steps, batch_size=args.batch_size, lr=args.lr, max_len=args.max_len,
                            seed=args.seed, device=args.device, progress=not args.no_progress)
    result = finetune_task(task, gpt, tokenizer, config, crf=not args.softmax)
    print(format_comparison(result))
    model = result.model
    if any(isinstance(m, LoRALinear) for m in model.modules()):
        merge_lora(model)  # save a plain model: W = W0 + (alpha/r) BA
    out = Path(args.out)
    summary = {"task": task.name, "method": config.method, "metrics": result.metrics, "baseline": result.baseline,
               "trainable_parameters": result.trainable_parameters, "seconds": result.seconds,
               "finetune": asdict(config), "checkpoint": str(args.checkpoint)}
    ckpt.save_checkpoint(out, weights=model.cpu(), tokenizer=tokenizer, state={"step": config.steps},
                         config={"model": gpt.config.to_dict(), "tokenizer": ckpt.load_config(args.checkpoint).get("tokenizer"),
                                 "finetune": json.loads(json.dumps(summary, default=str))})
    (out / "metrics.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    print(f"saved the fine-tuned model and metrics.json to {out}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m llm_from_scratch.finetune ...``: the same command without the package's CLI."""
    parser = argparse.ArgumentParser(prog="python -m llm_from_scratch.finetune")
    sub = parser.add_subparsers(dest="command", required=True)
    add_finetune_parser(sub)
    args = parser.parse_args(["finetune", *(argv if argv is not None else __import__("sys").argv[1:])])
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
