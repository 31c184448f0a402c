"""A linear-chain conditional random field (CRF) for sequence labelling (chapter 10).

A softmax tagger picks each tag on its own; a CRF scores whole tag sequences, so it can learn that
"I-PER" follows "B-PER" and never "O". For emissions E (B, T, K) from an encoder and a tag
sequence y_1..y_n (n = the sequence's length):

    score(x, y) = start[y_1] + Σ_{t=1..n} E[t, y_t] + Σ_{t=2..n} trans[y_{t−1}, y_t] + end[y_n]
    P(y | x)    = exp(score(x, y)) / Z(x),      Z(x) = Σ_{y'} exp(score(x, y'))
    L_crf(θ)    = − Σ_i log P(y_i | x_i) = Σ_i (log Z(x_i) − score(x_i, y_i))

Z sums over K^n sequences, yet the forward algorithm computes it in O(n K²) with
α_1(j) = start[j] + E[1, j] and

    α_t(j) = logsumexp_i (α_{t−1}(i) + trans[i, j]) + E[t, j],     log Z = logsumexp_j (α_n(j) + end[j]).

Viterbi is the same recursion with max instead of logsumexp, plus back-pointers to read the best path.

``transitions[i, j]`` is the score of going from tag i to tag j, as in ``pytorch-crf``; batches are
batch-first (B, T, K) with a (B, T) mask that is True on real tokens and right-padded.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from llm_from_scratch.metrics import split_bio_tag

# The score given to a forbidden transition. Finite, so that the forward algorithm, the loss and its
# gradient never meet inf − inf = NaN (a gold path through a forbidden transition gets a huge but finite
# loss); large enough that exp(IMPOSSIBLE) is exactly 0 in float32. Viterbi uses −inf (max is safe with it).
IMPOSSIBLE = -1e4

REDUCTIONS = ("sum", "mean", "token_mean", "none")


# ---- the BIO scheme ---------------------------------------------------------------------------------------


def bio_allowed(tag_names: Sequence[str]) -> tuple[Tensor, Tensor]:
    """Which starts and transitions the BIO scheme allows: (allowed_start (K,), allowed_transitions (K, K)).

    I-X may only follow B-X or I-X: a sequence cannot start with I-X, and O -> I-X and
    B-Y/I-Y -> I-X (Y ≠ X) are forbidden. Everything else (any tag -> O or B-X, any end) is allowed.
    """
    parsed = [split_bio_tag(n) for n in tag_names]
    k = len(parsed)
    allowed_start = torch.tensor([prefix != "I" for prefix, _ in parsed])
    allowed = torch.ones(k, k, dtype=torch.bool)
    for j, (prefix_j, entity_j) in enumerate(parsed):
        if prefix_j == "I":
            for i, (prefix_i, entity_i) in enumerate(parsed):
                allowed[i, j] = prefix_i in ("B", "I") and entity_i == entity_j
    return allowed_start, allowed


def bio_violations(tag_sequence: Sequence[int | str], tag_names: Sequence[str]) -> int:
    """Count the invalid BIO transitions in one tag sequence (tag ids or tag names).

    A start with I-X counts as one violation, and so does every O -> I-X or B-Y/I-Y -> I-X with Y ≠ X.
    """
    names = list(tag_names)
    ids = []
    for tag in tag_sequence:
        if isinstance(tag, str):
            if tag not in names:
                raise ValueError(f"tag {tag!r} is not one of tag_names {names}")
            ids.append(names.index(tag))
        else:
            if not 0 <= int(tag) < len(names):
                raise ValueError(f"tag id {tag} is out of range for {len(names)} tag names")
            ids.append(int(tag))
    allowed_start, allowed = bio_allowed(names)
    if not ids:
        return 0
    count = int(not allowed_start[ids[0]])
    count += sum(int(not allowed[a, b]) for a, b in zip(ids, ids[1:]))
    return count


def check_right_padded(mask: Tensor) -> Tensor:
    """``mask`` (B, T) as booleans, after checking that it is a right-padding mask: each row is
    True for its first ``length ≥ 1`` tokens and False after. Accepts bool or 0/1 values.

    The CRF's recursions and last-token pooling both read position ``length − 1`` of each row, so a
    left-padded or holey mask would silently give wrong answers: it is an error instead.
    """
    if mask.dim() != 2:
        raise ValueError(f"mask must be (B, T), got shape {tuple(mask.shape)}")
    if mask.dtype != torch.bool:
        if not ((mask == 0) | (mask == 1)).all():
            raise ValueError("mask must be boolean (or 0/1): True on real tokens, False on padding")
        mask = mask.bool()
    if mask.shape[0] and not mask[:, 0].all():
        bad = (~mask[:, 0]).nonzero().flatten().tolist()
        raise ValueError(f"sequences {bad} start with padding (mask[:, 0] is False): every sequence needs "
                         "at least one token and the padding must be on the right")
    if (mask[:, 1:] & ~mask[:, :-1]).any():
        bad = (mask[:, 1:] & ~mask[:, :-1]).any(dim=1).nonzero().flatten().tolist()
        raise ValueError(f"the mask of sequences {bad} is not contiguous, i.e. not right-padded (a real token "
                         "after padding): it must be True for the first `length` tokens and False after")
    return mask


# ---- the CRF ---------------------------------------------------------------------------------------------


class CRF(nn.Module):
    """Linear-chain CRF over ``num_tags`` tags: start, end and transition scores, forward and Viterbi.

    Parameters (learned, initialised uniformly in [−0.1, 0.1] like ``pytorch-crf``):
        start_transitions (K,), end_transitions (K,), transitions (K, K) with [i, j] = score of i -> j.
    Buffers: boolean ``allowed_start``, ``allowed_end``, ``allowed_transitions``; a forbidden entry
    scores ``IMPOSSIBLE`` whatever its parameter holds (see ``apply_bio_constraints``).
    """

    def __init__(self, num_tags: int, batch_first: bool = True):
        super().__init__()
        if isinstance(num_tags, bool) or not isinstance(num_tags, int) or num_tags < 1:
            raise ValueError(f"num_tags must be a positive int, got {num_tags!r}")
        self.num_tags = num_tags
        self.batch_first = batch_first
        self.start_transitions = nn.Parameter(torch.empty(num_tags).uniform_(-0.1, 0.1))
        self.end_transitions = nn.Parameter(torch.empty(num_tags).uniform_(-0.1, 0.1))
        self.transitions = nn.Parameter(torch.empty(num_tags, num_tags).uniform_(-0.1, 0.1))
        self.register_buffer("allowed_start", torch.ones(num_tags, dtype=torch.bool))
        self.register_buffer("allowed_end", torch.ones(num_tags, dtype=torch.bool))
        self.register_buffer("allowed_transitions", torch.ones(num_tags, num_tags, dtype=torch.bool))

    def extra_repr(self) -> str:
        return f"num_tags={self.num_tags}, batch_first={self.batch_first}"

    # -- constraints --

    def set_constraints(self, allowed_start: Tensor | None = None, allowed_transitions: Tensor | None = None,
                        allowed_end: Tensor | None = None) -> CRF:
        """Forbid starts, transitions or ends (False = forbidden). Returns self."""
        k = self.num_tags
        for name, value, shape in (("allowed_start", allowed_start, (k,)), ("allowed_end", allowed_end, (k,)),
                                   ("allowed_transitions", allowed_transitions, (k, k))):
            if value is None:
                continue
            value = torch.as_tensor(value, dtype=torch.bool)
            if tuple(value.shape) != shape:
                raise ValueError(f"{name} must have shape {shape} for {k} tags, got {tuple(value.shape)}")
            getattr(self, name).copy_(value)
        return self

    def apply_bio_constraints(self, tag_names: Sequence[str]) -> CRF:
        """Forbid what the BIO scheme forbids: start -> I-X, O -> I-X, B-Y/I-Y -> I-X with Y ≠ X. Returns self."""
        if len(tag_names) != self.num_tags:
            raise ValueError(f"got {len(tag_names)} tag names for a CRF over {self.num_tags} tags")
        allowed_start, allowed_transitions = bio_allowed(tag_names)
        return self.set_constraints(allowed_start, allowed_transitions)

    @classmethod
    def with_bio_constraints(cls, tag_names: Sequence[str], batch_first: bool = True) -> CRF:
        """A CRF over ``tag_names`` whose impossible BIO transitions are forbidden."""
        return cls(len(tag_names), batch_first=batch_first).apply_bio_constraints(tag_names)

    def _scores(self, forbidden: float = IMPOSSIBLE) -> tuple[Tensor, Tensor, Tensor]:
        """(start, transitions, end) with the forbidden entries replaced by ``forbidden``."""
        def constrain(param: Tensor, allowed: Tensor) -> Tensor:
            # torch.where sends no gradient to a forbidden entry's parameter: it stays untrained.
            return torch.where(allowed, param, torch.full_like(param, forbidden))
        return (constrain(self.start_transitions, self.allowed_start),
                constrain(self.transitions, self.allowed_transitions),
                constrain(self.end_transitions, self.allowed_end))

    # -- input checks --

    def _prepare(self, emissions: Tensor, mask: Tensor | None, tags: Tensor | None = None):
        """Check the shapes and the mask; return batch-first emissions (B, T, K), mask (B, T) bool, tags (B, T)."""
        if not isinstance(emissions, Tensor) or emissions.dim() != 3:
            shape = tuple(emissions.shape) if isinstance(emissions, Tensor) else type(emissions).__name__
            raise ValueError(f"emissions must be a 3-D tensor (B, T, num_tags), got {shape}")
        if not emissions.is_floating_point():
            raise TypeError(f"emissions must be floating point, got {emissions.dtype}")
        if not self.batch_first:
            emissions = emissions.transpose(0, 1)
            mask = mask.transpose(0, 1) if mask is not None else None
            tags = tags.transpose(0, 1) if tags is not None else None
        b, t, k = emissions.shape
        if k != self.num_tags:
            raise ValueError(f"emissions have {k} scores per token but the CRF has {self.num_tags} tags")
        if t == 0:
            raise ValueError("emissions have no time steps (T = 0): every sequence needs at least one token")
        if mask is None:
            mask = torch.ones(b, t, dtype=torch.bool, device=emissions.device)
        else:
            if tuple(mask.shape) != (b, t):
                raise ValueError(f"mask must have shape (B, T) = {(b, t)} like the emissions, got {tuple(mask.shape)}")
            mask = check_right_padded(mask)
        if tags is not None:
            if tuple(tags.shape) != (b, t):
                raise ValueError(f"tags must have shape (B, T) = {(b, t)} like the emissions, got {tuple(tags.shape)}")
            if tags.is_floating_point():
                raise TypeError(f"tags must be integer tag ids, got {tags.dtype}")
            real = tags[mask]
            if real.numel() and (int(real.min()) < 0 or int(real.max()) >= k):
                raise ValueError(f"tags on real tokens must be in [0, {k}), got values in "
                                 f"[{int(real.min())}, {int(real.max())}]")
            # Padded positions may hold anything (e.g. -100); give them a valid id that is never used.
            tags = torch.where(mask, tags, torch.zeros_like(tags)).long()
        return emissions, mask, tags

    # -- the three computations --

    def log_partition(self, emissions: Tensor, mask: Tensor | None = None) -> Tensor:
        """log Z(x) by the forward algorithm in log space: (B, T, K) -> (B,)."""
        emissions, mask, _ = self._prepare(emissions, mask)
        start, trans, end = self._scores()
        alpha = start + emissions[:, 0]  # (B, K): α_1(j)
        for t in range(1, emissions.shape[1]):
            # (B, K_prev, 1) + (K_prev, K_next) + (B, 1, K_next), summed out over the previous tag
            nxt = torch.logsumexp(alpha.unsqueeze(2) + trans + emissions[:, t].unsqueeze(1), dim=1)
            alpha = torch.where(mask[:, t].unsqueeze(1), nxt, alpha)  # padded steps carry α unchanged
        return torch.logsumexp(alpha + end, dim=1)

    def score(self, emissions: Tensor, tags: Tensor, mask: Tensor | None = None) -> Tensor:
        """score(x, y) of the given tag sequences: (B, T, K), (B, T) -> (B,)."""
        emissions, mask, tags = self._prepare(emissions, mask, tags)
        start, trans, end = self._scores()
        emitted = emissions.gather(2, tags.unsqueeze(2)).squeeze(2)  # (B, T): E[t, y_t]
        moved = trans[tags[:, :-1], tags[:, 1:]]  # (B, T−1): trans[y_{t−1}, y_t]
        zero = emitted.new_zeros(())
        lengths = mask.sum(dim=1)
        last_tag = tags.gather(1, (lengths - 1).unsqueeze(1)).squeeze(1)
        return (start[tags[:, 0]]
                + torch.where(mask, emitted, zero).sum(dim=1)
                + torch.where(mask[:, 1:], moved, zero).sum(dim=1)
                + end[last_tag])

    def nll(self, emissions: Tensor, tags: Tensor, mask: Tensor | None = None, reduction: str = "sum") -> Tensor:
        """−log P(y | x) = log Z(x) − score(x, y), per sequence, then reduced.

        reduction: "sum" (pytorch-crf's default), "mean" (over sequences), "token_mean" (over real
        tokens) or "none" ((B,)). Equal to −``torchcrf.CRF(...)(emissions, tags, mask, reduction)``.
        """
        if reduction not in REDUCTIONS:
            raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
        per_sequence = self.log_partition(emissions, mask) - self.score(emissions, tags, mask)
        if reduction == "none":
            return per_sequence
        if reduction == "sum":
            return per_sequence.sum()
        if reduction == "mean":
            return per_sequence.mean()
        _, mask, _ = self._prepare(emissions, mask)
        return per_sequence.sum() / mask.sum()

    def forward(self, emissions: Tensor, tags: Tensor, mask: Tensor | None = None, reduction: str = "sum") -> Tensor:
        """The training loss: ``nll`` (note: pytorch-crf's forward returns the log-likelihood, i.e. −this)."""
        return self.nll(emissions, tags, mask, reduction)

    @torch.no_grad()
    def decode(self, emissions: Tensor, mask: Tensor | None = None) -> list[list[int]]:
        """The best tag sequence of each sequence by Viterbi: (B, T, K) -> B lists of their lengths."""
        emissions, mask, _ = self._prepare(emissions, mask)
        start, trans, end = self._scores(forbidden=float("-inf"))  # max never picks −inf if anything is allowed
        b, t_max, _ = emissions.shape
        best = start + emissions[:, 0]  # (B, K): best score of a path ending in each tag
        back_pointers = []
        for t in range(1, t_max):
            candidates = best.unsqueeze(2) + trans + emissions[:, t].unsqueeze(1)  # (B, K_prev, K_next)
            step_best, step_arg = candidates.max(dim=1)
            best = torch.where(mask[:, t].unsqueeze(1), step_best, best)
            back_pointers.append(step_arg)
        best_last = (best + end).argmax(dim=1)  # (B,)
        lengths = mask.sum(dim=1)
        # Walk back from each sequence's own last token; positions past a sequence's end are overwritten
        # by best_last at t = length − 1 before they are used.
        path = torch.zeros(b, t_max, dtype=torch.long, device=emissions.device)
        current = best_last
        for t in range(t_max - 1, -1, -1):
            current = torch.where(lengths - 1 == t, best_last, current)
            path[:, t] = current
            if t > 0:
                current = back_pointers[t - 1].gather(1, current.unsqueeze(1)).squeeze(1)
        return [row[:n].tolist() for row, n in zip(path.cpu(), lengths.cpu().tolist())]
