"""Cross entropy and MSE from their formulas, checked against torch.nn.functional and by hand."""

import math

import pytest
import torch
import torch.nn.functional as F

from llm_from_scratch.losses import cross_entropy, log_sum_exp, mse_loss


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("n,c", [(1, 2), (7, 5), (64, 100)])
def test_cross_entropy_equals_torch(n, c, reduction):
    torch.manual_seed(n * c)
    logits = (3 * torch.randn(n, c, dtype=torch.float64)).requires_grad_()
    targets = torch.randint(0, c, (n,))
    ours = cross_entropy(logits, targets, reduction=reduction)
    ref = F.cross_entropy(logits, targets, reduction=reduction)
    torch.testing.assert_close(ours, ref, rtol=1e-12, atol=1e-12)
    g1, = torch.autograd.grad(ours.sum(), logits)
    g2, = torch.autograd.grad(ref.sum(), logits)
    torch.testing.assert_close(g1, g2, rtol=1e-12, atol=1e-12)


def test_cross_entropy_by_hand():
    # Two examples, three classes: −[log softmax(1,2,3)_2 + log softmax(0,0,0)_0] / 2
    logits = torch.tensor([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    targets = torch.tensor([2, 0])
    first = -(3 - math.log(math.e + math.e ** 2 + math.e ** 3))
    second = math.log(3)
    assert cross_entropy(logits, targets).item() == pytest.approx((first + second) / 2, rel=1e-6)
    assert cross_entropy(logits, targets, reduction="sum").item() == pytest.approx(first + second, rel=1e-6)


def test_cross_entropy_single_example_and_ignore_index():
    torch.manual_seed(0)
    logits = torch.randn(10, 4)
    targets = torch.tensor([0, 1, -100, 3, 2, -100, 1, 0, 3, 2])
    for reduction in ("mean", "sum", "none"):
        torch.testing.assert_close(cross_entropy(logits, targets, reduction=reduction),
                                   F.cross_entropy(logits, targets, reduction=reduction))
    torch.testing.assert_close(cross_entropy(logits[0], targets[0]), F.cross_entropy(logits[0], targets[0]))
    # every target ignored: torch gives NaN, we give a zero that can be backpropagated
    x = torch.randn(3, 4, requires_grad=True)
    loss = cross_entropy(x, torch.full((3,), -100))
    assert loss.item() == 0.0
    loss.backward()
    assert torch.equal(x.grad, torch.zeros_like(x))


@pytest.mark.parametrize("eps", [0.1, 0.3])
def test_label_smoothing_and_soft_targets_equal_torch(eps):
    torch.manual_seed(1)
    logits = torch.randn(12, 6, dtype=torch.float64)
    targets = torch.randint(0, 6, (12,))
    targets[3] = -100
    for reduction in ("mean", "sum", "none"):
        torch.testing.assert_close(cross_entropy(logits, targets, reduction, label_smoothing=eps),
                                   F.cross_entropy(logits, targets, reduction=reduction, label_smoothing=eps))
    probs = torch.softmax(torch.randn(12, 6, dtype=torch.float64), dim=-1)
    for smoothing in (0.0, eps):
        for reduction in ("mean", "sum", "none"):
            torch.testing.assert_close(cross_entropy(logits, probs, reduction, label_smoothing=smoothing),
                                       F.cross_entropy(logits, probs, reduction=reduction, label_smoothing=smoothing))


def test_cross_entropy_stable_for_logits_of_1e4():
    logits = torch.tensor([[1e4, -1e4, 0.0], [-1e4, 1e4, 1e4], [-1e4, -1e4, -1e4]], requires_grad=True)
    targets = torch.tensor([1, 2, 0])
    ours = cross_entropy(logits, targets, reduction="none")
    ref = F.cross_entropy(logits, targets, reduction="none")
    assert torch.isfinite(ref).all() and torch.isfinite(ours).all()
    torch.testing.assert_close(ours, ref)
    # the naive formula overflows: exp(1e4) = inf, log(inf/inf) = NaN
    naive = -torch.log(torch.exp(logits) / torch.exp(logits).sum(-1, keepdim=True))
    assert not torch.isfinite(naive.gather(1, targets[:, None])).all()
    ours.sum().backward()
    assert torch.isfinite(logits.grad).all()


def test_log_sum_exp_equals_torch_and_handles_minus_inf():
    z = torch.randn(5, 9) * 50
    torch.testing.assert_close(log_sum_exp(z), torch.logsumexp(z, dim=-1))
    torch.testing.assert_close(log_sum_exp(z, dim=0), torch.logsumexp(z, dim=0))
    row = torch.tensor([[-math.inf, -math.inf], [0.0, -math.inf]])
    torch.testing.assert_close(log_sum_exp(row), torch.logsumexp(row, dim=-1))


def test_cross_entropy_errors():
    with pytest.raises(ValueError, match="shape"):
        cross_entropy(torch.randn(4, 3), torch.zeros(5, dtype=torch.long))
    with pytest.raises(ValueError, match="view"):
        cross_entropy(torch.randn(2, 4, 3), torch.zeros(2, 4, dtype=torch.long))
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        cross_entropy(torch.randn(4, 3), torch.tensor([0, 1, 2, 3]))
    with pytest.raises(ValueError, match="reduction"):
        cross_entropy(torch.randn(4, 3), torch.zeros(4, dtype=torch.long), reduction="avg")
    with pytest.raises(ValueError, match="soft targets"):
        cross_entropy(torch.randn(4, 3), torch.rand(4, 2))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_mse_equals_torch(reduction):
    torch.manual_seed(0)
    pred = torch.randn(32, 3, dtype=torch.float64, requires_grad=True)
    target = torch.randn(32, 3, dtype=torch.float64)
    ours = mse_loss(pred, target, reduction)
    ref = F.mse_loss(pred, target, reduction=reduction)
    torch.testing.assert_close(ours, ref, rtol=1e-12, atol=1e-12)
    g1, = torch.autograd.grad(ours.sum(), pred)
    g2, = torch.autograd.grad(ref.sum(), pred)
    torch.testing.assert_close(g1, g2)


def test_mse_by_hand_and_errors():
    # (1 − 0)² + (2 − 4)² = 5; mean 2.5
    assert mse_loss(torch.tensor([0.0, 4.0]), torch.tensor([1.0, 2.0]), "sum").item() == 5.0
    assert mse_loss(torch.tensor([0.0, 4.0]), torch.tensor([1.0, 2.0])).item() == 2.5
    with pytest.raises(ValueError, match="same shape"):
        mse_loss(torch.randn(4, 1), torch.randn(4))
    with pytest.raises(ValueError, match="reduction"):
        mse_loss(torch.randn(4), torch.randn(4), reduction="total")
