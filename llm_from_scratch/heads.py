"""Task heads on a pretrained backbone, and pooling (chapters 08-10).

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
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn

from llm_from_scratch.crf import CRF, check_right_padded
from llm_from_scratch.losses import cross_entropy, mse_loss

__all__ = ["POOLINGS", "is_causal", "hidden_size", "backbone_hidden", "pool_hidden", "default_pooling", "TaskHead",
           "SequenceClassifier", "SequenceRegressor", "gather_words", "TokenTagger", "CRFTagger"]

POOLINGS = ("last", "cls", "mean")


def default_pooling(backbone: nn.Module, pipeline: bool = False) -> str:
    """The pooling used when none is given; both defaults live here.

    - a head built by hand (``pipeline=False``): "last" on a GPT (its only position that has seen the
      whole text), "cls" on BERT;
    - the fine-tuning pipeline (``finetune.build_model``, ``pipeline=True``): "mean" on a GPT, "cls" on
      BERT. A character GPT's last state mostly encodes the next character; the mean over the passage
      carried the genre and year signal (benchmarks/RESULTS.md, "Fine-tuning").
    """
    if not is_causal(backbone):
        return "cls"
    return "mean" if pipeline else "last"


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
    # The check reads the mask on the host: free on a CPU, but on a GPU a synchronisation at every
    # forward. There the mask is trusted (the course's batches are right-padded by encoding.pad).
    mask = check_right_padded(attention_mask) if attention_mask.device.type == "cpu" else attention_mask.bool()
    if pooling == "cls":
        return hidden[:, 0]
    if pooling == "last":
        last = mask.sum(dim=1) - 1  # (B,)
        return hidden[torch.arange(B, device=hidden.device), last]
    m = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * m).sum(dim=1) / m.sum(dim=1)


class TaskHead(nn.Module):
    """A backbone plus a dropout; the subclasses add the output layer."""

    def __init__(self, backbone: nn.Module, pooling: str | None = None, dropout: float = 0.0):
        super().__init__()
        self.backbone = backbone
        self.causal = is_causal(backbone)
        self.pooling = pooling or default_pooling(backbone)
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


class SequenceClassifier(TaskHead):
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


class SequenceRegressor(TaskHead):
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


class TokenTagger(TaskHead):
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

