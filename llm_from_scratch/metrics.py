"""Evaluation metrics, written from their definitions.

Classification (labels are integers ``0..C-1``):

- accuracy = (1/N) Σᵢ [ŷᵢ = yᵢ]
- confusion matrix M[t, p] = #{i : yᵢ = t, ŷᵢ = p}   (rows: truth, columns: prediction)
- per class c: precision_c = M[c,c] / Σ_t M[t,c],  recall_c = M[c,c] / Σ_p M[c,p],
  F1_c = 2 P_c R_c / (P_c + R_c)  (0 where undefined);  macro-F1 = (1/C) Σ_c F1_c

Regression:

- RMSE = sqrt((1/N) Σᵢ (yᵢ − ŷᵢ)²)   (in the unit of y: years for the year task)
- Pearson r = Σ (x − x̄)(y − ȳ) / sqrt(Σ (x − x̄)² · Σ (y − ȳ)²)

Sequence labeling, entity level (what ``seqeval`` and CoNLL's ``conlleval`` report): a tag
sequence in BIO is turned into spans ``(type, start, end)`` (end exclusive); a predicted span
counts as correct only if a gold span has the same type and the same boundaries.

- precision = |pred ∩ gold| / |pred|,  recall = |pred ∩ gold| / |gold|,  F1 = 2PR / (P + R)

Every function takes Python lists, NumPy arrays or torch tensors and returns Python numbers
(the confusion matrix is a ``torch.LongTensor``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch


def _as_list(x, name: str) -> list:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().reshape(-1).tolist()
    elif hasattr(x, "tolist"):  # numpy
        x = x.reshape(-1).tolist()
    else:
        x = list(x)
    return x


def _pair(y_true, y_pred) -> tuple[list, list]:
    t, p = _as_list(y_true, "y_true"), _as_list(y_pred, "y_pred")
    if len(t) != len(p):
        raise ValueError(f"y_true has {len(t)} items but y_pred has {len(p)}; "
                         "pass one prediction per example")
    if not t:
        raise ValueError("y_true and y_pred are empty; a metric needs at least one example")
    return t, p


# ----------------------------------------------------------------------------- classification

def accuracy(y_true, y_pred) -> float:
    """Fraction of predictions equal to the truth: (1/N) Σᵢ [ŷᵢ = yᵢ]."""
    t, p = _pair(y_true, y_pred)
    return sum(int(a == b) for a, b in zip(t, p)) / len(t)


def confusion_matrix(y_true, y_pred, num_classes: int | None = None) -> torch.Tensor:
    """(C, C) counts M[t, p] = number of examples of true class t predicted as p.

    ``num_classes`` defaults to 1 + the largest label seen; pass it so that a class that never
    occurs still gets its row and column.
    """
    t, p = _pair(y_true, y_pred)
    t, p = [int(v) for v in t], [int(v) for v in p]
    if min(t + p) < 0:
        raise ValueError("labels must be integers >= 0 (class indices)")
    seen = max(t + p) + 1
    C = seen if num_classes is None else num_classes
    if seen > C:
        raise ValueError(f"a label {seen - 1} is out of range for num_classes={C}")
    M = torch.zeros(C, C, dtype=torch.long)
    for a, b in zip(t, p):
        M[a, b] += 1
    return M


def _prf(correct: int, n_pred: int, n_gold: int) -> tuple[float, float, float]:
    p = correct / n_pred if n_pred else 0.0
    r = correct / n_gold if n_gold else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return p, r, f


def precision_recall_f1_per_class(y_true, y_pred, num_classes: int | None = None) -> dict[str, list[float]]:
    """Per-class precision TP/(TP+FP), recall TP/(TP+FN) and F1 = 2PR/(P+R) from the confusion matrix
    (0 where a ratio is 0/0)."""
    M = confusion_matrix(y_true, y_pred, num_classes)
    # class c: TP = M[c, c], predicted c = column sum, truly c = row sum
    scores = [_prf(int(M[c, c]), int(M[:, c].sum()), int(M[c, :].sum())) for c in range(M.shape[0])]
    return {"precision": [p for p, _, _ in scores], "recall": [r for _, r, _ in scores], "f1": [f for _, _, f in scores]}


def macro_f1(y_true, y_pred, num_classes: int | None = None) -> float:
    """Unweighted mean of the per-class F1 scores: every class counts the same, however rare.

    A majority-class predictor gets a high accuracy on an unbalanced test set but a low macro-F1.
    Classes are those in ``0..num_classes-1`` (default: every label seen in truth or prediction).
    """
    f1 = precision_recall_f1_per_class(y_true, y_pred, num_classes)["f1"]
    return sum(f1) / len(f1)


# ----------------------------------------------------------------------------- regression

def _floats(y_true, y_pred) -> tuple[list[float], list[float]]:
    t, p = _pair(y_true, y_pred)
    return [float(v) for v in t], [float(v) for v in p]


def rmse(y_true, y_pred) -> float:
    """Root mean squared error sqrt((1/N) Σ (yᵢ − ŷᵢ)²), in the unit of y."""
    t, p = _floats(y_true, y_pred)
    return math.sqrt(sum((a - b) ** 2 for a, b in zip(t, p)) / len(t))


def pearson_r(x, y) -> float:
    """Pearson correlation Σ(x−x̄)(y−ȳ) / sqrt(Σ(x−x̄)² Σ(y−ȳ)²), in [−1, 1].

    Undefined when either side is constant (a model that always predicts the mean): that
    raises, rather than returning a number that looks like a measurement.
    """
    a, b = _floats(x, y)
    n = len(a)
    if n < 2:
        raise ValueError("Pearson r needs at least two points")
    ma, mb = sum(a) / n, sum(b) / n
    da, db = [v - ma for v in a], [v - mb for v in b]
    saa, sbb = sum(v * v for v in da), sum(v * v for v in db)
    # Compare the values, not the sums of squares: the mean of n copies of 1599.38 is not exactly
    # 1599.38 in floating point, which would leave a tiny spread and a meaningless r.
    if min(a) == max(a) or min(b) == max(b) or saa == 0 or sbb == 0:
        raise ValueError("Pearson r is undefined when one of the inputs is constant "
                         "(e.g. a model that predicts the same value for every example)")
    r = sum(u * v for u, v in zip(da, db)) / math.sqrt(saa * sbb)
    return max(-1.0, min(1.0, r))


# ----------------------------------------------------------------------------- entities (BIO)

def split_bio_tag(tag: str) -> tuple[str, str | None]:
    """'B-PER' -> ('B', 'PER'), 'I-LOC' -> ('I', 'LOC'), 'O' -> ('O', None); anything else is an error."""
    if tag == "O":
        return "O", None
    prefix, sep, kind = tag.partition("-")
    if not sep or prefix not in ("B", "I") or not kind:
        raise ValueError(f"tag {tag!r} is not BIO: expected 'O', 'B-TYPE' or 'I-TYPE'")
    return prefix, kind


def bio_spans(tags: Sequence[str], strict: bool = False) -> list[tuple[str, int, int]]:
    """Entity spans ``(type, start, end)`` (end exclusive) of one BIO tag sequence.

    An entity starts at ``B-X`` and goes on over the ``I-X`` that follow it. What to do with an
    ``I-X`` that follows no ``B-X`` / ``I-X`` (e.g. ``O I-PER``, or ``B-LOC I-PER``) is a choice:

    - ``strict=False`` (CoNLL's ``conlleval`` and ``seqeval``'s default): it starts a new entity;
    - ``strict=True`` (``seqeval`` with ``mode='strict', scheme=IOB2``): it is no entity at all.

    >>> bio_spans(["B-PER", "I-PER", "O", "B-LOC"])
    [('PER', 0, 2), ('LOC', 3, 4)]
    >>> bio_spans(["O", "I-PER", "I-PER"]), bio_spans(["O", "I-PER", "I-PER"], strict=True)
    ([('PER', 1, 3)], [])
    """
    spans: list[tuple[str, int, int]] = []
    kind: str | None = None  # type of the entity being read, None outside one
    start = 0
    for i, tag in enumerate(tags):
        prefix, t = split_bio_tag(tag)
        continues = prefix == "I" and kind == t
        if kind is not None and not continues:
            spans.append((kind, start, i))
            kind = None
        if prefix == "B" or (prefix == "I" and not continues and not strict):
            kind, start = t, i
    if kind is not None:
        spans.append((kind, start, len(tags)))
    return spans


@dataclass(frozen=True)
class EntityScores:
    """Entity-level scores: micro-averaged over all entities, and per entity type."""

    precision: float
    recall: float
    f1: float
    n_pred: int
    n_gold: int
    n_correct: int
    per_type: dict[str, tuple[float, float, float, int]]  # type -> (P, R, F1, n_gold)


def entity_scores(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]], strict: bool = False) -> EntityScores:
    """Entity-level precision / recall / F1 over a list of sentences of BIO tags.

    A predicted entity is correct only if a gold entity has the same type, start and end.
    """
    if len(gold) != len(pred):
        raise ValueError(f"{len(gold)} gold sentences but {len(pred)} predicted ones")
    gold_set: set[tuple[int, str, int, int]] = set()
    pred_set: set[tuple[int, str, int, int]] = set()
    for s, (g, p) in enumerate(zip(gold, pred)):
        if len(g) != len(p):
            raise ValueError(f"sentence {s}: {len(g)} gold tags but {len(p)} predicted tags; "
                             "predict one tag per token")
        gold_set.update((s, *span) for span in bio_spans(g, strict))
        pred_set.update((s, *span) for span in bio_spans(p, strict))
    correct = gold_set & pred_set
    per_type = {}
    for t in sorted({x[1] for x in gold_set | pred_set}):
        c = sum(1 for x in correct if x[1] == t)
        ng = sum(1 for x in gold_set if x[1] == t)
        npred = sum(1 for x in pred_set if x[1] == t)
        per_type[t] = (*_prf(c, npred, ng), ng)
    p, r, f = _prf(len(correct), len(pred_set), len(gold_set))
    return EntityScores(p, r, f, len(pred_set), len(gold_set), len(correct), per_type)


# ----------------------------------------------------------------------------- text generation (chapter 13)

def edit_distance(a: Sequence, b: Sequence) -> int:
    """Levenshtein distance: the fewest insertions, deletions and substitutions turning ``a`` into ``b``
    (strings, or lists of words). d[i][j] = min(d[i-1][j] + 1, d[i][j-1] + 1, d[i-1][j-1] + [aᵢ ≠ bⱼ])."""
    # A common prefix and suffix cost nothing: strip them first (most spelling pairs are near-copies).
    n = 0
    while n < len(a) and n < len(b) and a[n] == b[n]:
        n += 1
    a, b = a[n:], b[n:]
    while a and b and a[-1] == b[-1]:
        a, b = a[:-1], b[:-1]
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def _texts(predictions, references) -> tuple[list[str], list[str]]:
    p, r = list(predictions), list(references)
    if len(p) != len(r):
        raise ValueError(f"{len(p)} predictions but {len(r)} references; pass one prediction per reference")
    if not r:
        raise ValueError("predictions and references are empty; a metric needs at least one example")
    return p, r


def character_error_rate(predictions: Sequence[str], references: Sequence[str]) -> float:
    """Corpus character error rate: CER = Σᵢ edit_distance(predᵢ, refᵢ) / Σᵢ len(refᵢ) (0 = perfect;
    can exceed 1 when predictions are much longer than the references)."""
    p, r = _texts(predictions, references)
    total = sum(len(x) for x in r)
    if total == 0:
        raise ValueError("the references hold no characters; CER divides by their length")
    return sum(edit_distance(a, b) for a, b in zip(p, r)) / total


def word_accuracy(predictions: Sequence[str], references: Sequence[str]) -> float:
    """Corpus word accuracy over whitespace-separated words:
    1 − Σᵢ edit_distance(words(predᵢ), words(refᵢ)) / Σᵢ max(|words(predᵢ)|, |words(refᵢ)|),
    in [0, 1] (the edit distance of two word lists never exceeds the longer one's length); 1 = every
    line's words right, in order. Lines that are both empty count for nothing."""
    p, r = _texts(predictions, references)
    pw, rw = [x.split() for x in p], [x.split() for x in r]
    total = sum(max(len(a), len(b)) for a, b in zip(pw, rw))
    if total == 0:
        raise ValueError("predictions and references hold no words")
    return 1.0 - sum(edit_distance(a, b) for a, b in zip(pw, rw)) / total
