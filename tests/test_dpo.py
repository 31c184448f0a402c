"""DPO: sequence log-probabilities, the loss against a hand value and its gradient, limits, a short run."""

import copy
import math

import pytest
import torch

from llm_from_scratch.dpo import dpo_batches, dpo_loss, dpo_loss_fn, preference_metrics, sequence_logprobs
from llm_from_scratch.gpt import GPT, GPTConfig
from llm_from_scratch.losses import IGNORE_INDEX


def _model(seed=0, vocab=13):
    torch.manual_seed(seed)
    return GPT(GPTConfig(vocab_size=vocab, block_size=16, n_layer=1, n_head=2, n_embd=16))


def test_sequence_logprobs_equals_brute_force_chain_rule():
    model = _model().eval()
    ids = torch.tensor([[1, 4, 2, 7, 3, 0], [5, 5, 6, 1, 2, 9]])
    labels = ids.clone()
    labels[0, :3] = IGNORE_INDEX  # prompt
    labels[1, :2] = IGNORE_INDEX
    labels[1, 5] = IGNORE_INDEX  # padding
    got = sequence_logprobs(model, ids, labels)
    assert got.shape == (2,)
    for b in range(2):
        total = 0.0
        for t in range(1, ids.size(1)):
            if labels[b, t] == IGNORE_INDEX:
                continue
            # log p(token t | tokens < t), by running the model on the prefix alone
            logits = model(ids[b:b + 1, :t])[0][0, -1]
            total += torch.log_softmax(logits, -1)[ids[b, t]].item()
        assert math.isclose(got[b].item(), total, abs_tol=1e-4)


def test_dpo_loss_equals_a_hand_computed_value():
    pc, pr = torch.tensor([-1.0, -4.0]), torch.tensor([-3.0, -2.0])
    rc, rr = torch.tensor([-2.0, -3.0]), torch.tensor([-2.0, -2.5])
    beta = 0.5
    # pair 1: Δ = (-1+2) - (-3+2) = 2;  pair 2: Δ = (-4+3) - (-2+2.5) = -1.5
    hand = (-math.log(1 / (1 + math.exp(-1.0))) - math.log(1 / (1 + math.exp(0.75)))) / 2
    loss, cw, rw = dpo_loss(pc, pr, rc, rr, beta)
    assert math.isclose(loss.item(), hand, rel_tol=1e-6)
    assert torch.allclose(cw, torch.tensor([0.5, -0.5])) and torch.allclose(rw, torch.tensor([-0.5, 0.25]))


def test_dpo_gradient_matches_the_closed_form():
    beta, N = 0.3, 4
    torch.manual_seed(1)
    pc = torch.randn(N, requires_grad=True)
    pr, rc, rr = torch.randn(N), torch.randn(N), torch.randn(N)
    loss, _, _ = dpo_loss(pc, pr, rc, rr, beta)
    loss.backward()
    delta = (pc - rc) - (pr - rr)
    # ∂L/∂Δ = −β σ(−βΔ)/N and ∂Δ/∂ log π(y_w|x) = 1
    closed = -beta * torch.sigmoid(-beta * delta.detach()) / N
    assert torch.allclose(pc.grad, closed, atol=1e-7)


def test_dpo_limits():
    torch.manual_seed(2)
    pc, pr, rc, rr = torch.randn(5), torch.randn(5), torch.randn(5), torch.randn(5)
    # identical policy and reference: Δ = 0, loss = log 2, rewards 0
    loss, cw, rw = dpo_loss(pc, pr, pc, pr, 0.1)
    assert math.isclose(loss.item(), math.log(2), rel_tol=1e-6) and not cw.any() and not rw.any()
    # β -> 0: the loss tends to log 2 and (loss − log 2)/β to −mean(Δ)/2
    beta = 1e-4
    loss, _, _ = dpo_loss(pc, pr, rc, rr, beta)
    delta = ((pc - rc) - (pr - rr)).mean().item()
    assert math.isclose((loss.item() - math.log(2)) / beta, -delta / 2, rel_tol=1e-2, abs_tol=1e-3)
    with pytest.raises(ValueError, match="beta"):
        dpo_loss(pc, pr, rc, rr, 0.0)


def _pairs():
    # prompt 1 2 3, chosen answer 4 5 6, rejected 7 8 9 (labels on the answer only)
    pairs = []
    for p in ([1, 2, 3], [2, 3, 1], [3, 1, 2], [1, 1, 2]):
        c, r = torch.tensor(p + [4, 5, 6]), torch.tensor(p + [7, 8])
        cl, rl = c.clone(), r.clone()
        cl[:3] = IGNORE_INDEX
        rl[:3] = IGNORE_INDEX
        pairs.append(((c, cl), (r, rl)))
    return pairs


def test_dpo_through_the_training_loop_lowers_the_loss_and_keeps_the_reference():
    from llm_from_scratch.train import TrainConfig, train

    policy = _model(3)
    reference = copy.deepcopy(policy)
    ref_state = {k: v.clone() for k, v in reference.state_dict().items()}
    pairs = _pairs()
    batches = dpo_batches(pairs, batch_size=2, pad_id=0)
    x, y = batches(0)
    assert x.shape[0] == 4 and x.shape == y.shape
    before = preference_metrics(policy, reference, pairs, pad_id=0, beta=0.5)
    assert math.isclose(before["loss"], math.log(2), rel_tol=1e-5) and before["margin"] == 0
    train(policy, batches, config=TrainConfig(max_steps=20, lr=1e-2, warmup_steps=0, eval_every=20,
                                              progress=False, device="cpu"), loss_fn=dpo_loss_fn(reference, 0.5))
    after = preference_metrics(policy, reference, pairs, pad_id=0, beta=0.5)
    assert after["loss"] < before["loss"] - 0.1 and after["margin"] > 0 and after["reward_accuracy"] == 1.0
    assert all(torch.equal(v, ref_state[k]) for k, v in reference.state_dict().items())
    assert not any(p.requires_grad for p in reference.parameters())


def test_dpo_with_lora_trains_only_the_adapters():
    from llm_from_scratch.lora import apply_lora, lora_parameters
    from llm_from_scratch.train import TrainConfig, train

    policy = _model(4)
    reference = copy.deepcopy(policy)
    apply_lora(policy, r=4, alpha=8)
    frozen = {n: p.detach().clone() for n, p in policy.named_parameters() if not p.requires_grad}
    before = preference_metrics(policy, reference, _pairs(), pad_id=0, beta=0.5)["loss"]
    train(policy, dpo_batches(_pairs(), 2, 0), config=TrainConfig(max_steps=20, lr=1e-2, warmup_steps=0,
                                                                    eval_every=20, progress=False, device="cpu"),
          loss_fn=dpo_loss_fn(reference, 0.5))
    after = preference_metrics(policy, reference, _pairs(), pad_id=0, beta=0.5)["loss"]
    assert after < before and lora_parameters(policy)
    assert all(torch.equal(p, frozen[n]) for n, p in policy.named_parameters() if n in frozen)
