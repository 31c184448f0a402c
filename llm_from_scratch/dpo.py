"""Direct preference optimisation (DPO, Rafailov et al., 2023): learn from pairs (chosen, rejected).

The data: a prompt x with a preferred answer y_w ("chosen") and a worse one y_l ("rejected").

1. **Bradley–Terry.** Preferences come from a hidden reward r: P(y_w ≻ y_l | x) = σ(r(x, y_w) − r(x, y_l)).
2. **The KL-regularised objective** of RLHF: max_π E_{y∼π}[r(x, y)] − β KL(π(·|x) ‖ π_ref(·|x)).
   Its maximiser is π*(y|x) = π_ref(y|x) exp(r(x, y)/β) / Z(x).
3. Solve for the reward: r(x, y) = β log(π*(y|x)/π_ref(y|x)) + β log Z(x).
4. Put it in Bradley–Terry: Z(x) cancels in the difference, so the preference probability is a
   function of the policy alone, and maximising its likelihood is

       L_DPO = −(1/N) Σ log σ(β [(log π(y_w|x) − log π_ref(y_w|x)) − (log π(y_l|x) − log π_ref(y_l|x))]).

The implicit rewards are r_w = β (log π(y_w|x) − log π_ref(y_w|x)) and r_l likewise; with the
margin Δ = r_w/β − r_l/β, ∂L/∂Δ = −β σ(−βΔ)/N: pairs the policy already ranks right (large Δ)
stop pulling. The reference π_ref (the SFT model) is frozen; log π(y|x) is a sum over the answer
tokens only (:func:`sequence_logprobs`, with the labels of ``sft.encode_conversation``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from llm_from_scratch.losses import IGNORE_INDEX
from llm_from_scratch.sft import pad_batch

__all__ = ["sequence_logprobs", "dpo_loss", "dpo_batches", "dpo_loss_fn", "preference_metrics"]


def _logits(output) -> torch.Tensor:
    return output[0] if isinstance(output, (tuple, list)) else getattr(output, "logits", output)


def sequence_logprobs(model: nn.Module, input_ids: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """log π(y|x) per sequence: input_ids, labels (B, T) -> (B,).

    Σ_t log softmax(logits[t])[labels[t+1]] over the positions whose label is not IGNORE_INDEX
    (labels aligned with the inputs, as ``sft.encode_conversation`` makes them).
    """
    if input_ids.shape != labels.shape or input_ids.dim() != 2:
        raise ValueError(f"input_ids and labels must both be (B, T), got {tuple(input_ids.shape)} and "
                         f"{tuple(labels.shape)}")
    logits = _logits(model(input_ids))[:, :-1].float()  # (B, T-1, V): position t scores token t+1
    target = labels[:, 1:]
    keep = target != IGNORE_INDEX
    logp = torch.log_softmax(logits, dim=-1).gather(-1, target.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return (logp * keep).sum(dim=-1)


def dpo_loss(policy_chosen_logps: torch.Tensor, policy_rejected_logps: torch.Tensor,
             ref_chosen_logps: torch.Tensor, ref_rejected_logps: torch.Tensor,
             beta: float = 0.1) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(L_DPO, chosen_rewards, rejected_rewards); inputs (N,) log-probabilities of whole answers.

    chosen_rewards = β (log π(y_w|x) − log π_ref(y_w|x)), rejected_rewards likewise (N,), detached;
    loss = mean(−log σ(chosen_rewards − rejected_rewards)), computed as softplus(−βΔ) for stability.
    """
    if not beta > 0:
        raise ValueError(f"beta must be > 0 (the strength of the KL penalty), got {beta!r}")
    chosen_logratio = policy_chosen_logps - ref_chosen_logps
    rejected_logratio = policy_rejected_logps - ref_rejected_logps
    margin = chosen_logratio - rejected_logratio  # Δ
    loss = F.softplus(-beta * margin).mean()  # −log σ(βΔ) = log(1 + exp(−βΔ))
    return loss, (beta * chosen_logratio).detach(), (beta * rejected_logratio).detach()


def dpo_batches(pairs: Sequence[tuple], batch_size: int, pad_id: int, seed: int = 0) -> Callable[[int], tuple]:
    """``i -> (input_ids, labels)`` of 2B rows for ``train.train``: B chosen then B rejected.

    ``pairs``: (chosen (input_ids, labels), rejected (input_ids, labels)). Both halves are padded
    to one length so that the policy scores all 2B sequences in one forward pass.
    """
    from llm_from_scratch.train import shuffled_batches

    def collate(idx):
        rows = [pairs[i][0] for i in idx] + [pairs[i][1] for i in idx]
        return pad_batch(rows, pad_id)

    return shuffled_batches(len(pairs), batch_size, collate, seed=seed)


def dpo_loss_fn(reference: nn.Module, beta: float = 0.1) -> Callable[[nn.Module, tuple], torch.Tensor]:
    """``loss_fn(policy, batch)`` for ``train.train``: one DPO step against a frozen ``reference``.

    The batch is :func:`dpo_batches`'s. The reference is put in eval mode with gradients off; its
    log-probabilities are computed under ``no_grad``. The policy may carry LoRA adapters
    (``lora.apply_lora``): only they then train.
    """
    reference.eval()
    for p in reference.parameters():
        p.requires_grad_(False)

    def loss_fn(policy: nn.Module, batch: tuple) -> torch.Tensor:
        input_ids, labels = batch
        n = input_ids.size(0) // 2
        ref_device = next(reference.parameters()).device
        if ref_device != input_ids.device:
            reference.to(input_ids.device)
        logps = sequence_logprobs(policy, input_ids, labels)
        with torch.no_grad():
            ref = sequence_logprobs(reference, input_ids, labels)
        loss, _, _ = dpo_loss(logps[:n], logps[n:], ref[:n], ref[n:], beta)
        return loss

    return loss_fn


@torch.no_grad()
def preference_metrics(policy: nn.Module, reference: nn.Module | None, pairs: Sequence[tuple], pad_id: int,
                       beta: float = 0.1, batch_size: int = 32) -> dict[str, float]:
    """Held-out preference metrics.

    - ``accuracy``: how often log π(y_w|x) > log π(y_l|x) (the policy gives the chosen answer the
      higher log-probability);
    - with a reference: ``reward_accuracy`` (how often r_w > r_l), ``margin`` = mean(r_w − r_l),
      ``chosen_reward`` and ``rejected_reward`` (means), and ``loss`` (L_DPO).
    """
    was = policy.training
    policy.eval()
    pc, pr, rc, rr = [], [], [], []
    try:
        for s in range(0, len(pairs), batch_size):
            chunk = pairs[s:s + batch_size]
            ids, lab = pad_batch([p[0] for p in chunk] + [p[1] for p in chunk], pad_id)
            device = next(policy.parameters()).device
            ids, lab = ids.to(device), lab.to(device)
            lp = sequence_logprobs(policy, ids, lab).cpu()
            pc.append(lp[:len(chunk)])
            pr.append(lp[len(chunk):])
            if reference is not None:
                reference.eval()
                ref = sequence_logprobs(reference.to(device), ids, lab).cpu()
                rc.append(ref[:len(chunk)])
                rr.append(ref[len(chunk):])
    finally:
        policy.train(was)
    pc, pr = torch.cat(pc), torch.cat(pr)
    out = {"accuracy": (pc > pr).float().mean().item()}
    if reference is not None:
        loss, cw, rw = dpo_loss(pc, pr, torch.cat(rc), torch.cat(rr), beta)
        out.update(reward_accuracy=(cw > rw).float().mean().item(), margin=(cw - rw).mean().item(),
                   chosen_reward=cw.mean().item(), rejected_reward=rw.mean().item(), loss=loss.item())
    return out
