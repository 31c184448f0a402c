"""Language-model windows: a token stream -> ``(x, y)`` pairs with ``y`` shifted by one.

A causal LM reads ``x = tokens[s : s+T]`` and at every position t predicts the next token, so its
targets are ``y = tokens[s+1 : s+T+1]``, i.e. ``y[t] == x[t+1]`` and ``y[T-1]`` is the token after
the window. One window of ``T`` tokens gives ``T`` training examples at once.

- Training draws windows at random offsets (``get_batch``, ``RandomWindowDataset``): every epoch
  sees fresh boundaries, and all randomness comes from an explicit ``torch.Generator`` (or seed),
  so that a resumed run can restore the generator state and draw exactly the batches it would
  have drawn.
- Evaluation covers the stream once (``StridedWindowDataset``): windows every ``stride`` tokens;
  targets already scored by an earlier window are set to ``IGNORE_INDEX`` (-100, the default
  ``ignore_index`` of ``F.cross_entropy``), so every target token is scored exactly once.
- Splits are by *work* (``encode_splits`` uses ``data.split_works``): no line of a validation
  play is ever in the training stream, so validation loss measures generalisation to unseen text.
- The training loop reads batches by index (``lm_batches``, ``shuffled_batches``): batch i is a pure
  function of (seed, i), so a resumed run or another process can jump straight to it.
- ``encode_works`` is the one place where texts become a token stream.
- ``to_hf_dataset`` is the same windowing as a ``datasets.Dataset`` (tokenize with ``.map``, then
  group into windows with ``.map(batched=True)``) for the larger pipelines.

Dataset classes live here, not in notebooks: ``DataLoader`` workers started with "spawn" (macOS,
Windows) must import the class, which they cannot do for one defined in a notebook.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol

import torch
from torch.utils.data import Dataset

from llm_from_scratch.losses import IGNORE_INDEX


class Encoder(Protocol):
    def encode(self, text: str) -> list[int]: ...


def as_token_tensor(tokens: Sequence[int] | torch.Tensor) -> torch.Tensor:
    """A 1-D ``torch.long`` tensor of token ids (no copy when it already is one)."""
    t = torch.as_tensor(tokens)
    if t.dim() != 1:
        raise ValueError(f"expected a 1-D stream of token ids, got shape {tuple(t.shape)}; flatten it "
                         f"or concatenate the documents first (see encode_works)")
    if t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
        raise TypeError(f"token ids must be integers, got dtype {t.dtype}")
    return t.long()


def _check_block(n_tokens: int, block_size: int) -> None:
    if not isinstance(block_size, int) or block_size < 1:
        raise ValueError(f"block_size must be a positive int, got {block_size!r}")
    if n_tokens < block_size + 1:
        raise ValueError(f"a window of block_size={block_size} needs block_size + 1 = {block_size + 1} tokens "
                         f"(x plus the one-token shift of y), but the stream has {n_tokens}; "
                         f"use a smaller block_size or more text")


def get_batch(tokens: torch.Tensor, batch_size: int, block_size: int, generator: torch.Generator,
              device: torch.device | str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``batch_size`` windows at uniformly random offsets ``s ~ U{0, ..., N - T - 1}``.

    Returns ``x, y`` of shape ``(batch_size, block_size)`` with ``y[b, t] == x[b, t + 1]`` and
    ``y[b, T-1] == tokens[s_b + T]``. The offsets come only from ``generator``: save
    ``generator.get_state()`` with a checkpoint and ``set_state`` it on resume to continue the exact
    sequence of batches.
    """
    tokens = as_token_tensor(tokens)
    _check_block(len(tokens), block_size)
    if not isinstance(generator, torch.Generator):
        raise TypeError("get_batch needs an explicit torch.Generator (e.g. torch.Generator().manual_seed(0)) "
                        "so that the batches can be reproduced and resumed")
    starts = torch.randint(0, len(tokens) - block_size, (batch_size,), generator=generator)
    idx = starts[:, None] + torch.arange(block_size + 1)  # (B, T+1): one gather for x and y together
    windows = tokens[idx]
    x, y = windows[:, :-1], windows[:, 1:]
    if device is not None:
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
    return x, y


# ----------------------------------------------------------------------------------------------
# Batches addressed by index (what train.train reads)


def batch_generator(seed: int, index: int) -> torch.Generator:
    """The generator of batch ``index``, seeded from (seed, index): batch i never depends on batch
    i-1, so a resumed run or another rank can jump straight to it."""
    return torch.Generator().manual_seed(seed * 1_000_003 + index)


def lm_batches(tokens: torch.Tensor, block_size: int, batch_size: int, seed: int = 0) -> Callable[[int], tuple]:
    """``i -> (x, y)``: ``batch_size`` windows of ``block_size`` tokens at random offsets
    (:func:`get_batch`), y = x shifted by one; x, y: (batch_size, block_size).

    The offsets of batch i come from a generator seeded with (seed, i), so batch i is the same in
    every process and after a resume.
    """
    tokens = as_token_tensor(tokens)
    get_batch(tokens, 1, block_size, torch.Generator())  # fail now, with get_batch's message, if too short

    def batch(index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return get_batch(tokens, batch_size, block_size, batch_generator(seed, index))

    return batch


def eval_batches(tokens: torch.Tensor, block_size: int, batch_size: int,
                 max_batches: int | None = None) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Batches of :class:`StridedWindowDataset` windows: every token of the validation stream is
    scored once. ``max_batches`` keeps that many batches, spread evenly over the stream (a cheap
    estimate for evaluations during training); None keeps all.
    """
    windows = StridedWindowDataset(tokens, block_size)
    groups = [list(range(i, min(i + batch_size, len(windows)))) for i in range(0, len(windows), batch_size)]
    if max_batches is not None and len(groups) > max_batches:
        keep = torch.linspace(0, len(groups) - 1, max_batches).round().long().tolist()
        groups = [groups[i] for i in keep]
    out = []
    for g in groups:
        xs, ys = zip(*(windows[i] for i in g))
        out.append((torch.stack(xs), torch.stack(ys)))
    return out


def shuffled_batches(n_examples: int, batch_size: int, collate: Callable[[list[int]], Any],
                     seed: int = 0, drop_last: bool = True) -> Callable[[int], Any]:
    """``i -> collate(example indices)``: epochs of a finite data set, shuffled per epoch, by index.

    Batch i lies in epoch e = i // batches_per_epoch; the epoch's order is a permutation drawn from
    a generator seeded with (seed, e). For fine-tuning on a labelled data set.
    """
    per_epoch = n_examples // batch_size if drop_last else math.ceil(n_examples / batch_size)
    if per_epoch < 1:
        raise ValueError(f"{n_examples} examples do not fill one batch of {batch_size}")
    cache: dict[int, torch.Tensor] = {}

    def batch(index: int):
        epoch, pos = divmod(index, per_epoch)
        if epoch not in cache:
            cache.clear()
            cache[epoch] = torch.randperm(n_examples, generator=batch_generator(seed, epoch))
        ids = cache[epoch][pos * batch_size:(pos + 1) * batch_size]
        return collate(ids.tolist())

    batch.batches_per_epoch = per_epoch
    return batch


class RandomWindowDataset(Dataset):
    """``num_samples`` windows at random offsets fixed by ``seed`` (a map-style dataset).

    The offsets are drawn once, in ``__init__``, from ``torch.Generator().manual_seed(seed)``; item
    ``i`` is always the same window, whatever the ``DataLoader`` shuffling or number of workers.
    Items are ``(x, y)``, each of shape ``(block_size,)``.
    """

    def __init__(self, tokens: Sequence[int] | torch.Tensor, block_size: int, num_samples: int, seed: int = 0):
        self.tokens = as_token_tensor(tokens)
        _check_block(len(self.tokens), block_size)
        if num_samples < 1:
            raise ValueError(f"num_samples must be at least 1, got {num_samples}")
        self.block_size = block_size
        gen = torch.Generator().manual_seed(seed)
        self.starts = torch.randint(0, len(self.tokens) - block_size, (num_samples,), generator=gen)

    def __len__(self) -> int:
        return len(self.starts)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        s = int(self.starts[i])
        window = self.tokens[s : s + self.block_size + 1]
        return window[:-1], window[1:]


class StridedWindowDataset(Dataset):
    """Windows that cover the stream for evaluation.

    Window ``k`` starts at ``k * stride`` (``stride`` defaults to ``block_size``: no overlap); when
    the last window would not reach the end of the stream, one more window ends exactly at the end.
    Each target position ``1..N-1`` is *scored* by exactly one window: in a window, targets already
    scored by the previous one are set to ``IGNORE_INDEX`` in ``y``. With ``stride < block_size``
    the overlap is context only: every scored token sees at least ``block_size - stride`` tokens of
    context (except in the first window), which lowers the loss towards the model's true one.

    Items are ``(x, y)`` of shape ``(block_size,)``; ``y[t] == x[t+1]`` wherever ``y[t]`` is not
    ``IGNORE_INDEX``.
    """

    def __init__(self, tokens: Sequence[int] | torch.Tensor, block_size: int, stride: int | None = None):
        self.tokens = as_token_tensor(tokens)
        _check_block(len(self.tokens), block_size)
        stride = block_size if stride is None else stride
        if not isinstance(stride, int) or not 1 <= stride <= block_size:
            raise ValueError(f"stride must be an int in [1, block_size={block_size}] (a larger stride would "
                             f"skip tokens), got {stride!r}")
        self.block_size, self.stride = block_size, stride
        last = len(self.tokens) - block_size - 1  # the last start with a full window
        starts = list(range(0, last + 1, stride))
        if starts[-1] != last:
            starts.append(last)
        self.starts = torch.tensor(starts)
        # first target (absolute position of tokens) each window scores: the end of the previous window
        ends = self.starts + block_size  # absolute position of the last target of each window
        self.first_scored = torch.cat([torch.tensor([1]), ends[:-1] + 1])

    def __len__(self) -> int:
        return len(self.starts)

    @property
    def num_scored(self) -> int:
        """Targets scored over all windows: ``N - 1``, every token after the first."""
        return len(self.tokens) - 1

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        s = int(self.starts[i])
        window = self.tokens[s : s + self.block_size + 1]
        x, y = window[:-1], window[1:].clone()
        # target y[t] is token s + 1 + t; it was scored before if s + 1 + t < first_scored[i]
        already = int(self.first_scored[i]) - (s + 1)
        if already > 0:
            y[:already] = IGNORE_INDEX
        return x, y


def encode_works(works: Iterable, tokenizer: Encoder, eos_id: int | None = None) -> torch.Tensor:
    """The one function that turns texts into a token stream: each text encoded, then concatenated
    into one 1-D ``torch.long`` tensor.

    ``works``: ``data.Work`` records (anything with ``.text``) or plain strings. With ``eos_id``,
    that id is appended after every text (as GPT-2 ends each document with ``<|endoftext|>``), so
    the model can learn where one text ends and the next, unrelated one starts. Texts are encoded
    separately, so no token spans two of them. A character the tokenizer cannot encode is an error
    that names it (never dropped). A tokenizer with ``encode_batch`` (both of the course's: a numpy
    lookup for characters, HF ``tokenizers`` for BPE) is used through it: the same ids, faster.
    """
    texts = [w if isinstance(w, str) else w.text for w in works]
    batch = getattr(tokenizer, "encode_batch", None)
    encoded = batch(texts) if batch is not None else [tokenizer.encode(t) for t in texts]
    ids: list[int] = []
    for piece in encoded:
        ids.extend(piece)
        if eos_id is not None:
            ids.append(int(eos_id))
    if not ids:
        raise ValueError("encode_works got no works (or only empty texts)")
    return torch.tensor(ids, dtype=torch.long)


def encode_splits(works: Iterable, tokenizer: Encoder, eos_id: int | None = None) -> dict[str, torch.Tensor]:
    """One token stream per split of ``data.split_works`` (``train``, ``validation``, ``test``,
    ``poems``): the split is by work, so no text of a validation play is in ``train``."""
    from llm_from_scratch.data import split_works

    return {name: encode_works(part, tokenizer, eos_id) for name, part in split_works(works).items() if part}


def to_hf_dataset(works: Iterable, tokenizer: Encoder, block_size: int, eos_id: int | None = None,
                  num_proc: int | None = None):
    """The windows as a ``datasets.Dataset`` with columns ``input_ids`` and ``labels`` (int lists of
    length ``block_size``), built the way HF's ``run_clm`` builds them:

    1. a dataset of texts (one row per work) -> ``.map(tokenize, batched=True)`` -> ``ids`` column;
    2. ``.map(group, batched=True)``: concatenate the ids of a batch of works, cut into consecutive
       windows of ``block_size + 1`` tokens that share their boundary token (window k covers
       ``[kT, kT + T]``), and drop the remainder.

    Unlike HF (where ``labels == input_ids`` and the model shifts inside its loss), ``labels`` here are
    already shifted, as everywhere in this course: ``labels[t] == input_ids[t + 1]``.
    """
    from datasets import Dataset

    if not isinstance(block_size, int) or block_size < 1:
        raise ValueError(f"block_size must be a positive int, got {block_size!r}")
    texts = [w if isinstance(w, str) else w.text for w in works]
    if not texts:
        raise ValueError("to_hf_dataset got no works")

    def tokenize(batch):
        out = []
        for text in batch["text"]:
            ids = list(tokenizer.encode(text))
            if eos_id is not None:
                ids.append(int(eos_id))
            out.append(ids)
        return {"ids": out}

    def group(batch):
        stream = [i for ids in batch["ids"] for i in ids]
        n = (len(stream) - 1) // block_size  # windows that fit, each needing block_size + 1 tokens
        starts = range(0, n * block_size, block_size)
        return {"input_ids": [stream[s : s + block_size] for s in starts],
                "labels": [stream[s + 1 : s + block_size + 1] for s in starts]}

    ds = Dataset.from_dict({"text": texts})
    ds = ds.map(tokenize, batched=True, remove_columns=["text"], num_proc=num_proc, desc="tokenize")
    ds = ds.map(group, batched=True, remove_columns=["ids"], num_proc=num_proc, desc=f"windows of {block_size}")
    if len(ds) == 0:
        raise ValueError(f"the texts are too short for one window of block_size={block_size}")
    return ds.with_format("torch")
