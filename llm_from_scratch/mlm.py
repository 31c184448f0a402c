"""Masked language modelling (BERT): which tokens to hide, and the loss on them (chapter 05).

BERT learns by filling in blanks. For every sequence it selects about 15% of the tokens; the model
must predict the original token at each selected position from the rest of the sequence.
Of the selected tokens

- 80% are replaced by ``[MASK]``,
- 10% by a random token of the vocabulary,
- 10% are left unchanged,

so that the model cannot learn "only predict where I see [MASK]" (at fine-tuning time there is no
[MASK]), and must keep a useful representation of every input token.

The objective, with m_i = 1 where token i was selected:

    L_MLM(θ) = − Σ_i m_i log P(w_i | w_∖m; θ)  /  Σ_i m_i

i.e. the cross entropy of the original tokens, averaged over the selected positions only.
Labels use the convention of ``torch.nn.functional.cross_entropy`` and ``transformers``:
the original token id where selected, ``-100`` (``IGNORE_INDEX``) everywhere else.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor

from llm_from_scratch.losses import IGNORE_INDEX, cross_entropy

# The split of the selected tokens: [MASK] / random token / unchanged (BERT, Devlin et al. 2019).
MASK_FRACTION = 0.8
RANDOM_FRACTION = 0.1


def _check_token_id(name: str, token_id: int, vocab_size: int) -> None:
    if isinstance(token_id, bool) or not isinstance(token_id, int):
        raise TypeError(f"{name} must be an int, got {type(token_id).__name__} ({token_id!r})")
    if not 0 <= token_id < vocab_size:
        raise ValueError(f"{name}={token_id} is outside the vocabulary [0, {vocab_size}); "
                         f"pass the id your tokenizer gives that token (e.g. tokenizer.mask_token_id)")


def replacement_candidates(vocab_size: int, excluded: Iterable[int], device=None) -> Tensor:
    """The token ids a "random token" replacement may draw: the vocabulary minus ``excluded``.

    Returns a sorted 1-D long tensor. Raises if nothing is left to draw from.
    """
    allowed = torch.ones(vocab_size, dtype=torch.bool, device=device)
    excluded = list(excluded)
    if excluded:
        allowed[torch.tensor(excluded, dtype=torch.long, device=device)] = False
    candidates = allowed.nonzero().squeeze(1)
    if candidates.numel() == 0:
        raise ValueError(f"every id of the vocabulary (size {vocab_size}) is special, padding or [MASK]: "
                         "there is no ordinary token to use as a random replacement")
    return candidates


def mask_tokens(
    input_ids: Tensor,
    *,
    vocab_size: int,
    mask_token_id: int,
    special_token_ids: Iterable[int] = (),
    pad_token_id: int | None = None,
    mlm_probability: float = 0.15,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor]:
    """BERT's masking: return ``(inputs, labels)`` for masked language modelling.

    Each token that is neither special nor padding is selected independently with probability
    ``mlm_probability``; a selected token becomes ``mask_token_id`` with probability 0.8, a random
    ordinary token with probability 0.1 (never a special token, padding or [MASK]; it may happen to
    equal the original, as in BERT), and stays unchanged with probability 0.1.

    Args:
        input_ids: integer tensor of any shape, e.g. (B, T); not modified.
        vocab_size: V; every id must lie in [0, V).
        mask_token_id: the id of ``[MASK]``.
        special_token_ids: ids never selected and never drawn as replacements ([CLS], [SEP], ...).
        pad_token_id: the padding id, treated like a special token.
        mlm_probability: the selection rate, in (0, 1); BERT uses 0.15.
        generator: a ``torch.Generator`` on ``input_ids``' device, for reproducible masks.

    Returns:
        inputs: same shape and dtype as ``input_ids``, with the selected tokens replaced.
        labels: same shape and dtype; the original id where selected, ``-100`` elsewhere.
    """
    if not isinstance(input_ids, Tensor):
        raise TypeError(f"input_ids must be a torch.Tensor of token ids, got {type(input_ids).__name__}")
    if input_ids.is_floating_point() or input_ids.is_complex() or input_ids.dtype == torch.bool:
        raise TypeError(f"input_ids must hold integer token ids, got dtype {input_ids.dtype}")
    if isinstance(vocab_size, bool) or not isinstance(vocab_size, int) or vocab_size < 2:
        raise ValueError(f"vocab_size must be an int >= 2, got {vocab_size!r}")
    if not isinstance(mlm_probability, (int, float)) or not 0.0 < mlm_probability < 1.0:
        raise ValueError(f"mlm_probability must lie strictly between 0 and 1 (BERT uses 0.15), "
                         f"got {mlm_probability!r}")
    _check_token_id("mask_token_id", mask_token_id, vocab_size)
    special = [int(i) for i in special_token_ids]
    for i in special:
        _check_token_id("a special token id", i, vocab_size)
    if pad_token_id is not None:
        _check_token_id("pad_token_id", pad_token_id, vocab_size)
    if input_ids.numel() and (int(input_ids.min()) < 0 or int(input_ids.max()) >= vocab_size):
        raise ValueError(f"input_ids hold ids in [{int(input_ids.min())}, {int(input_ids.max())}], "
                         f"outside the vocabulary [0, {vocab_size}): is vocab_size right?")

    device = input_ids.device
    if generator is not None and generator.device.type != device.type:
        raise ValueError(f"the generator lives on {generator.device} but input_ids on {device}: "
                         f"create it with torch.Generator(device={str(device)!r})")
    # Never select: special tokens and padding. [MASK] in the input is treated as special too.
    never = special + [mask_token_id] + ([pad_token_id] if pad_token_id is not None else [])
    never_t = torch.tensor(never, dtype=input_ids.dtype, device=device)
    can_select = ~torch.isin(input_ids, never_t)

    # Three independent draws per token, in a fixed order so that a seeded generator
    # gives the same masks every time: select?  which of the three actions?  which random token?
    selected = (torch.rand(input_ids.shape, generator=generator, device=device) < mlm_probability) & can_select
    action = torch.rand(input_ids.shape, generator=generator, device=device)
    candidates = replacement_candidates(vocab_size, never, device=device)
    random_pick = torch.randint(len(candidates), input_ids.shape, generator=generator, device=device)

    to_mask = selected & (action < MASK_FRACTION)
    to_random = selected & (action >= MASK_FRACTION) & (action < MASK_FRACTION + RANDOM_FRACTION)
    # the remaining selected tokens (action >= 0.9) keep their id but still carry a label

    inputs = input_ids.clone()
    inputs[to_mask] = mask_token_id
    inputs[to_random] = candidates[random_pick[to_random]].to(input_ids.dtype)
    labels = torch.where(selected, input_ids, torch.full_like(input_ids, IGNORE_INDEX))
    return inputs, labels


def mlm_loss(logits: Tensor, labels: Tensor) -> Tensor:
    """L_MLM = −(1/Σ m_i) Σ_i m_i log P(w_i | w_∖m): mean cross entropy over the masked positions.

    Args:
        logits: (..., V) unnormalised scores, e.g. (B, T, V).
        labels: (...) the original token id at masked positions, ``-100`` elsewhere (``mask_tokens``).

    Returns:
        A scalar. Equal to ``F.cross_entropy(logits.view(-1, V), labels.view(-1), ignore_index=-100)``
        whenever at least one position is masked.

    A batch with no masked position (possible for short sequences at 15%) has nothing to predict:
    there torch's cross entropy returns 0/0 = NaN, which would poison the weights. We return a zero
    that is still attached to the graph (``logits.sum() * 0``), so ``loss.backward()`` works and
    gives zero gradients: the step simply learns nothing from that batch.
    """
    if not isinstance(logits, Tensor) or not isinstance(labels, Tensor):
        raise TypeError("mlm_loss expects two tensors: logits (..., V) and labels (...)")
    if logits.dim() < 1 or logits.shape[:-1] != labels.shape:
        raise ValueError(f"logits must be labels' shape plus a vocabulary axis: got logits {tuple(logits.shape)} "
                         f"and labels {tuple(labels.shape)} (expected logits {tuple(labels.shape)} + (V,))")
    if labels.is_floating_point():
        raise TypeError(f"labels must hold integer token ids (and -100), got dtype {labels.dtype}")
    vocab_size = logits.shape[-1]
    masked = labels != IGNORE_INDEX  # m_i
    targets = labels[masked].long()
    if targets.numel() and (int(targets.min()) < 0 or int(targets.max()) >= vocab_size):
        raise ValueError(f"labels hold ids outside [0, {vocab_size}) (other than -100): "
                         "do the labels come from the same vocabulary as the logits?")
    if targets.numel() == 0:
        return logits.sum() * 0.0  # defined zero, with a graph (see the docstring)

    # Only the masked rows matter: select them before the softmax over V (for BERT, ~15% of the work),
    # in float32 so that a bf16/fp16 model gets an accurate loss. cross_entropy shifts each row by its
    # max before exponentiating (log Σ exp z = m + log Σ exp(z − m)): no overflow for huge logits.
    return cross_entropy(logits[masked].float(), targets)
