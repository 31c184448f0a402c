"""Metrics against hand-worked cases, scikit-learn, scipy and seqeval."""

import math
import random

import numpy as np
import pytest
import torch
from scipy.stats import pearsonr
from seqeval.metrics import f1_score as seq_f1
from seqeval.metrics import precision_score as seq_p
from seqeval.metrics import recall_score as seq_r
from seqeval.metrics.sequence_labeling import get_entities
from seqeval.scheme import IOB2
from sklearn import metrics as skm

from llm_from_scratch import metrics as M


def test_classification_by_hand():
    y = [0, 0, 1, 1, 2]
    p = [0, 1, 1, 1, 0]
    assert M.accuracy(y, p) == 3 / 5
    assert M.confusion_matrix(y, p).tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 0]]
    # class 0: P=1/2 R=1/2 F=1/2; class 1: P=2/3 R=1 F=0.8; class 2: P=0 R=0 F=0
    assert M.macro_f1(y, p) == pytest.approx((0.5 + 0.8 + 0.0) / 3)


def test_confusion_matrix_keeps_unseen_class():
    assert M.confusion_matrix([0, 1], [0, 1], num_classes=3).tolist() == [[1, 0, 0], [0, 1, 0], [0, 0, 0]]
    with pytest.raises(ValueError, match="out of range"):
        M.confusion_matrix([0, 3], [0, 1], num_classes=3)


@pytest.mark.parametrize("seed", range(5))
def test_classification_matches_sklearn(seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, size=50)
    p = np.where(rng.random(50) < 0.6, y, rng.integers(0, 4, size=50))
    assert M.accuracy(y, p) == pytest.approx(skm.accuracy_score(y, p))
    assert M.confusion_matrix(torch.tensor(y), torch.tensor(p), 4).numpy().tolist() == \
        skm.confusion_matrix(y, p, labels=range(4)).tolist()
    assert M.macro_f1(y, p, 4) == pytest.approx(skm.f1_score(y, p, average="macro", labels=range(4), zero_division=0))


def test_regression_by_hand_and_against_scipy():
    assert M.rmse([1, 2, 3], [1, 2, 5]) == pytest.approx(math.sqrt(4 / 3))
    assert M.pearson_r([1, 2, 3], [2, 4, 6]) == pytest.approx(1.0)
    assert M.pearson_r([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=40)
    y = 0.5 * x + rng.normal(size=40)
    assert M.pearson_r(x, y) == pytest.approx(pearsonr(x, y)[0])
    assert M.rmse(x, y) == pytest.approx(math.sqrt(skm.mean_squared_error(x, y)))


def test_bad_inputs_are_explained():
    with pytest.raises(ValueError, match="2 items but y_pred has 3"):
        M.accuracy([0, 1], [0, 1, 1])
    with pytest.raises(ValueError, match="constant"):
        M.pearson_r([1, 2, 3], [5, 5, 5])
    with pytest.raises(ValueError, match="constant"):  # 1599.38 has no exact binary mean: still constant
        M.pearson_r([1590.0, 1600.0, 1612.0], [1599.38] * 3)
    with pytest.raises(ValueError, match="not BIO"):
        M.bio_spans(["B-PER", "X-LOC"])


def test_bio_spans_by_hand():
    tags = ["B-PER", "I-PER", "O", "B-LOC", "B-LOC", "I-LOC", "I-PER", "O", "I-PER"]
    assert M.bio_spans(tags) == [("PER", 0, 2), ("LOC", 3, 4), ("LOC", 4, 6), ("PER", 6, 7), ("PER", 8, 9)]
    assert M.bio_spans(tags, strict=True) == [("PER", 0, 2), ("LOC", 3, 4), ("LOC", 4, 6)]


def _random_tags(rng, n):
    return [rng.choice(["O", "O", "O", "B-PER", "I-PER", "B-LOC", "I-LOC"]) for _ in range(n)]


def test_bio_spans_match_seqeval():
    rng = random.Random(0)
    for _ in range(300):
        tags = _random_tags(rng, rng.randint(1, 12))
        ref = sorted((t, s, e + 1) for t, s, e in get_entities(tags))  # seqeval's end is inclusive
        assert sorted(M.bio_spans(tags)) == ref, tags


def test_entity_scores_match_seqeval():
    rng = random.Random(1)
    gold = [_random_tags(rng, rng.randint(1, 15)) for _ in range(60)]
    # predictions: gold with some tags changed, so that part of the entities match
    pred = [[t if rng.random() < 0.8 else rng.choice(["O", "B-PER", "I-LOC"]) for t in s] for s in gold]
    s = M.entity_scores(gold, pred)
    assert s.precision == pytest.approx(seq_p(gold, pred))
    assert s.recall == pytest.approx(seq_r(gold, pred))
    assert s.f1 == pytest.approx(seq_f1(gold, pred))
    st = M.entity_scores(gold, pred, strict=True)
    assert st.f1 == pytest.approx(seq_f1(gold, pred, mode="strict", scheme=IOB2))
    assert st.precision == pytest.approx(seq_p(gold, pred, mode="strict", scheme=IOB2))


def test_entity_scores_by_hand():
    gold = [["B-PER", "I-PER", "O", "B-LOC"]]
    pred = [["B-PER", "O", "O", "B-LOC"]]  # LOC right, PER cut short: 1 of 2 predicted, 1 of 2 gold
    s = M.entity_scores(gold, pred)
    assert (s.precision, s.recall, s.f1, s.n_correct) == (0.5, 0.5, 0.5, 1)
    assert s.per_type["LOC"][:3] == (1.0, 1.0, 1.0)
    assert s.per_type["PER"][:3] == (0.0, 0.0, 0.0)
    with pytest.raises(ValueError, match="one tag per token"):
        M.entity_scores([["O", "O"]], [["O"]])
