"""A fine-tuning task's examples as token ids and padded batches (chapters 08-10).

- text -> ids (:func:`encode_text`; a pair of texts is joined by a newline), cut to ``max_len``;
- words -> ids and the position of the token that stands for each word (:func:`encode_words`:
  its last sub-token in a GPT, which has read the whole word, its first in a BERT);
- right padding (:func:`pad`) and the batches ``model(**batch)`` takes (:class:`EncodedExamples`).

A character the tokenizer cannot encode is an error that names it (:func:`safe_encode`), never dropped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

__all__ = ["safe_encode", "encode_text", "encode_words", "pad", "EncodedExamples", "encode_examples"]


def safe_encode(tokenizer, text: str) -> list[int]:
    """``tokenizer.encode(text)``, or a ValueError that names every character the tokenizer cannot
    encode and the fix (a character-level tokenizer knows only the characters it was fitted on)."""
    try:
        return list(tokenizer.encode(text))
    except ValueError:
        unknown = sorted({ch for ch in set(text) if not _encodes(tokenizer, ch)})
        if not unknown:
            raise
        raise ValueError(f"the tokenizer cannot encode {len(unknown)} character(s) of this text: "
                         f"{''.join(unknown)!r}; use a tokenizer fitted on text that holds them (or a BPE "
                         "backbone, which encodes any text), or remove them from the data") from None


def _encodes(tokenizer, ch: str) -> bool:
    try:
        tokenizer.encode(ch)
        return True
    except ValueError:
        return False


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
