"""The CRF against brute-force enumeration of every tag sequence and against pytorch-crf."""

import itertools
import math

import pytest
import torch
from torchcrf import CRF as ReferenceCRF

from llm_from_scratch.crf import CRF, bio_allowed, bio_violations

pytestmark = pytest.mark.filterwarnings("ignore:where received a uint8:UserWarning")  # inside pytorch-crf

BIO_TAGS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]


def _random_crf(k, seed=0, dtype=torch.float32):
    torch.manual_seed(seed)
    crf = CRF(k).to(dtype)
    with torch.no_grad():  # larger than the default init, so that transitions matter
        for p in crf.parameters():
            p.normal_(0, 1)
    return crf


def _lengths_to_mask(lengths, t):
    return torch.arange(t).unsqueeze(0) < torch.tensor(lengths).unsqueeze(1)


def _brute_force_score(crf, emissions_row, path):
    """score(x, y) by the definition, with Python loops over one sequence."""
    s = crf.start_transitions[path[0]].item() + emissions_row[0, path[0]].item()
    for t in range(1, len(path)):
        s += crf.transitions[path[t - 1], path[t]].item() + emissions_row[t, path[t]].item()
    return s + crf.end_transitions[path[-1]].item()


@pytest.mark.parametrize("seed", range(3))
def test_log_partition_score_and_viterbi_equal_brute_force(seed):
    k, t = 3, 4
    lengths = [4, 1, 3, 2]
    crf = _random_crf(k, seed, torch.float64)
    emissions = torch.randn(len(lengths), t, k, dtype=torch.float64)
    mask = _lengths_to_mask(lengths, t)
    log_z = crf.log_partition(emissions, mask)
    decoded = crf.decode(emissions, mask)
    tags = torch.randint(0, k, (len(lengths), t))
    scores = crf.score(emissions, tags, mask)
    nll = crf.nll(emissions, tags, mask, reduction="none")
    for b, n in enumerate(lengths):
        paths = list(itertools.product(range(k), repeat=n))  # all K^n tag sequences
        all_scores = [_brute_force_score(crf, emissions[b], p) for p in paths]
        expected_log_z = max(all_scores) + math.log(sum(math.exp(s - max(all_scores)) for s in all_scores))
        assert log_z[b].item() == pytest.approx(expected_log_z, abs=1e-10)
        assert decoded[b] == list(paths[max(range(len(paths)), key=all_scores.__getitem__)])
        assert len(decoded[b]) == n
        expected_score = _brute_force_score(crf, emissions[b], tags[b, :n].tolist())
        assert scores[b].item() == pytest.approx(expected_score, abs=1e-10)
        # the loss is -log p(y|x) = log Z - score(x, y), both by enumeration
        assert nll[b].item() == pytest.approx(expected_log_z - expected_score, abs=1e-10)


def _reference_from(crf):
    ref = ReferenceCRF(crf.num_tags, batch_first=True).to(crf.transitions.dtype)
    with torch.no_grad():
        ref.start_transitions.copy_(crf.start_transitions)
        ref.end_transitions.copy_(crf.end_transitions)
        ref.transitions.copy_(crf.transitions)
    return ref


@pytest.mark.parametrize("seed", range(3))
def test_equals_pytorch_crf_with_variable_lengths(seed):
    k, t = 5, 12
    crf = _random_crf(k, seed)
    ref = _reference_from(crf)
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, t + 1, (8,), generator=g).tolist()
    lengths[0] = t
    emissions = torch.randn(8, t, k, generator=g, requires_grad=True)
    tags = torch.randint(0, k, (8, t), generator=g)
    mask = _lengths_to_mask(lengths, t)
    ours = crf.nll(emissions, tags, mask, reduction="none")
    theirs = ref(emissions, tags, mask, reduction="none")
    torch.testing.assert_close(ours, -theirs, rtol=1e-5, atol=1e-4)
    for reduction in ("sum", "mean", "token_mean"):
        torch.testing.assert_close(crf.nll(emissions, tags, mask, reduction), -ref(emissions, tags, mask, reduction),
                                   rtol=1e-5, atol=1e-4)
    # the same gradients with respect to the emissions and every parameter
    g_ours = torch.autograd.grad(ours.sum(), [emissions, crf.transitions, crf.start_transitions, crf.end_transitions])
    g_ref = torch.autograd.grad(-theirs.sum(), [emissions, ref.transitions, ref.start_transitions, ref.end_transitions])
    for a, b in zip(g_ours, g_ref):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    assert crf.decode(emissions, mask) == ref.decode(emissions, mask)
    assert crf.decode(emissions) == ref.decode(emissions)


def test_batch_first_false_matches():
    crf = _random_crf(4)
    emissions = torch.randn(3, 6, 4)
    tags = torch.randint(0, 4, (3, 6))
    mask = _lengths_to_mask([6, 2, 4], 6)
    time_first = CRF(4, batch_first=False)
    time_first.load_state_dict(crf.state_dict())
    torch.testing.assert_close(time_first.nll(emissions.transpose(0, 1), tags.T, mask.T, "none"),
                               crf.nll(emissions, tags, mask, "none"))
    assert time_first.decode(emissions.transpose(0, 1), mask.T) == crf.decode(emissions, mask)


def test_padding_tags_may_hold_anything():
    crf = _random_crf(3)
    emissions = torch.randn(2, 5, 3)
    mask = _lengths_to_mask([5, 3], 5)
    tags = torch.randint(0, 3, (2, 5))
    padded = tags.clone()
    padded[1, 3:] = -100
    torch.testing.assert_close(crf.nll(emissions, padded, mask, "none"), crf.nll(emissions, tags, mask, "none"))


def test_gradcheck_float64():
    crf = _random_crf(3, 0, torch.float64)
    emissions = torch.randn(2, 4, 3, dtype=torch.float64, requires_grad=True)
    tags = torch.tensor([[0, 2, 1, 1], [1, 0, 0, 0]])
    mask = _lengths_to_mask([4, 2], 4)

    assert torch.autograd.gradcheck(lambda e: crf.nll(e, tags, mask, "none"), (emissions,))
    # and with respect to the transition scores, through a functional call
    params = {n: p.detach().clone().requires_grad_() for n, p in crf.named_parameters()}
    names = list(params)

    def by_params(*values):
        return torch.func.functional_call(crf, dict(zip(names, values)), (emissions.detach(), tags, mask, "none"))

    assert torch.autograd.gradcheck(by_params, tuple(params.values()))


# ---- BIO constraints --------------------------------------------------------------------------------------


def _valid_bio(names):
    """Independent statement of BIO validity on tag names."""
    if names and names[0].startswith("I-"):
        return False
    for a, b in zip(names, names[1:]):
        if b.startswith("I-") and a[2:] != b[2:]:
            return False
    return True


def test_bio_allowed_and_violations_on_hand_examples():
    start, trans = bio_allowed(BIO_TAGS)
    assert start.tolist() == [True, True, False, True, False]
    assert trans[0, 2].item() is False and trans[1, 2].item() is True and trans[3, 2].item() is False
    assert trans[2, 2].item() is True and trans[4, 2].item() is False and trans[2, 0].item() is True
    assert bio_violations(["B-PER", "I-PER", "O", "B-LOC", "I-LOC"], BIO_TAGS) == 0
    assert bio_violations(["I-PER", "I-PER", "O", "I-LOC", "B-PER", "I-LOC"], BIO_TAGS) == 3
    assert bio_violations([2, 2, 0, 4], BIO_TAGS) == 2
    assert bio_violations([], BIO_TAGS) == 0
    for seq in itertools.product(BIO_TAGS, repeat=3):
        assert (bio_violations(list(seq), BIO_TAGS) == 0) == _valid_bio(list(seq))
    with pytest.raises(ValueError, match="BIO"):
        bio_violations(["O"], ["O", "PER"])
    with pytest.raises(ValueError, match="not one of"):
        bio_violations(["B-ORG"], BIO_TAGS)


def test_constrained_decode_is_always_valid_and_is_the_best_valid_path():
    torch.manual_seed(0)
    crf = CRF.with_bio_constraints(BIO_TAGS)
    with torch.no_grad():
        crf.transitions.normal_(0, 2)
        crf.start_transitions.normal_(0, 2)
        crf.transitions[:, 2] += 5.0  # make the forbidden transitions tempting
        crf.transitions[:, 4] += 5.0
    emissions = torch.randn(64, 10, 5) * 3
    emissions[..., [2, 4]] += 3.0
    lengths = torch.randint(1, 11, (64,)).tolist()
    mask = _lengths_to_mask(lengths, 10)
    paths = crf.decode(emissions, mask)
    unconstrained = CRF(5)
    unconstrained.load_state_dict({k: v for k, v in crf.state_dict().items() if not k.startswith("allowed")},
                                  strict=False)
    assert sum(bio_violations(p, BIO_TAGS) for p in unconstrained.decode(emissions, mask)) > 0  # the test bites
    for path, n in zip(paths, lengths):
        assert len(path) == n and bio_violations(path, BIO_TAGS) == 0
    # brute force on short sequences: the constrained path is the best among the valid ones
    for b in range(8):
        n = min(lengths[b], 4)
        e = emissions[b:b + 1, :n]
        valid = [p for p in itertools.product(range(5), repeat=n) if bio_violations(p, BIO_TAGS) == 0]
        best = max(valid, key=lambda p: _brute_force_score(unconstrained, e[0], p))
        assert crf.decode(e)[0] == list(best)


def test_constrained_loss_is_finite_and_puts_no_mass_on_invalid_paths():
    crf = CRF.with_bio_constraints(BIO_TAGS)
    emissions = torch.randn(2, 3, 5, requires_grad=True)
    valid = torch.tensor([[1, 2, 0], [3, 4, 4]])
    invalid = torch.tensor([[0, 2, 0], [2, 4, 4]])
    nll_valid = crf.nll(emissions, valid, reduction="none")
    nll_invalid = crf.nll(emissions, invalid, reduction="none")
    assert torch.isfinite(nll_valid).all() and torch.isfinite(nll_invalid).all()
    assert (nll_invalid > 1000).all()
    # Z sums over valid paths only (brute force with the unconstrained scores)
    scores = [[_brute_force_score(crf, emissions[b].detach(), p) for p in itertools.product(range(5), repeat=3)
               if bio_violations(p, BIO_TAGS) == 0] for b in range(2)]
    expected = torch.tensor([torch.logsumexp(torch.tensor(s), 0).item() for s in scores])
    torch.testing.assert_close(crf.log_partition(emissions.detach()), expected)
    (nll_valid.sum() + nll_invalid.sum()).backward()
    assert torch.isfinite(emissions.grad).all() and torch.isfinite(crf.transitions.grad).all()
    assert crf.transitions.grad[0, 2] == 0  # a forbidden entry's parameter receives no gradient


# ---- bad input --------------------------------------------------------------------------------------------


def test_bad_input_gets_clear_errors():
    crf = CRF(3)
    e = torch.randn(2, 4, 3)
    tags = torch.zeros(2, 4, dtype=torch.long)
    with pytest.raises(ValueError, match="start with padding"):
        crf.nll(e, tags, torch.tensor([[1, 1, 1, 1], [0, 1, 1, 1]]))
    with pytest.raises(ValueError, match="not contiguous"):
        crf.decode(e, torch.tensor([[1, 1, 1, 1], [1, 0, 1, 0]]).bool())
    with pytest.raises(ValueError, match="mask must have shape"):
        crf.log_partition(e, torch.ones(2, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="3-D"):
        crf.log_partition(torch.randn(4, 3))
    with pytest.raises(ValueError, match="3 tags"):
        crf.log_partition(torch.randn(2, 4, 5))
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        crf.nll(e, torch.full((2, 4), 3))
    with pytest.raises(ValueError, match="tags must have shape"):
        crf.nll(e, torch.zeros(2, 5, dtype=torch.long))
    with pytest.raises(ValueError, match="boolean"):
        crf.nll(e, tags, torch.full((2, 4), 2))
    with pytest.raises(ValueError, match="reduction"):
        crf.nll(e, tags, reduction="avg")
    with pytest.raises(ValueError, match="tag names"):
        crf.apply_bio_constraints(BIO_TAGS)


def test_check_right_padded_is_shared_by_the_crf_and_pooling():
    from llm_from_scratch.crf import check_right_padded

    assert check_right_padded(torch.tensor([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0]])).tolist() == [
        [True, True, False], [True, False, False]]
    with pytest.raises(ValueError, match="sequences \\[1\\] is not contiguous"):
        check_right_padded(torch.tensor([[1, 1, 1], [1, 0, 1]]))
    with pytest.raises(ValueError, match="\\(B, T\\)"):
        check_right_padded(torch.ones(3, dtype=torch.bool))
