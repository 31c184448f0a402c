"""LM windows: shapes, the one-token shift (checked against slices of the stream taken by hand),
coverage of the evaluation windows, determinism, DataLoader use, the split by work."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader

from llm_from_scratch.lm_data import (
    IGNORE_INDEX,
    RandomWindowDataset,
    StridedWindowDataset,
    encode_splits,
    encode_works,
    get_batch,
    to_hf_dataset,
)
from llm_from_scratch.tokenizer import BPETokenizer, CharTokenizer

# a stream whose values say where they are: tokens[i] == 1000 + i, so any window shows its offset
STREAM = torch.arange(1000, 1000 + 97)


def _offset_of(window: torch.Tensor) -> int:
    return int(window[0]) - 1000


def test_get_batch_shapes_and_shift():
    gen = torch.Generator().manual_seed(0)
    x, y = get_batch(STREAM, batch_size=64, block_size=8, generator=gen)
    assert x.shape == y.shape == (64, 8) and x.dtype == y.dtype == torch.long
    for xb, yb in zip(x, y):
        s = _offset_of(xb)
        assert 0 <= s <= len(STREAM) - 8 - 1
        assert torch.equal(xb, STREAM[s : s + 8]) and torch.equal(yb, STREAM[s + 1 : s + 9])
    assert torch.equal(y[:, :-1], x[:, 1:])
    # uniform offsets: with 64 draws over 89 possible starts, we see many distinct ones, and both ends are reachable
    starts = {_offset_of(xb) for xb in get_batch(STREAM, 5000, 8, torch.Generator().manual_seed(1))[0]}
    assert starts == set(range(len(STREAM) - 8))


def test_get_batch_is_deterministic_and_resumable():
    g1 = torch.Generator().manual_seed(123)
    first = [get_batch(STREAM, 4, 16, g1) for _ in range(3)]
    g2 = torch.Generator().manual_seed(123)
    get_batch(STREAM, 4, 16, g2)
    state = g2.get_state()  # a checkpoint after one batch
    g3 = torch.Generator()
    g3.set_state(state)  # resume in a "new process"
    resumed = [get_batch(STREAM, 4, 16, g3) for _ in range(2)]
    for (xa, ya), (xb, yb) in zip(first[1:], resumed):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    # and the global RNG is not involved
    torch.manual_seed(0)
    a = get_batch(STREAM, 4, 16, torch.Generator().manual_seed(5))[0]
    torch.manual_seed(99)
    b = get_batch(STREAM, 4, 16, torch.Generator().manual_seed(5))[0]
    assert torch.equal(a, b)


def test_get_batch_errors():
    with pytest.raises(ValueError, match="needs block_size \\+ 1 = 98 tokens"):
        get_batch(STREAM, 2, 97, torch.Generator())
    with pytest.raises(TypeError, match="explicit torch.Generator"):
        get_batch(STREAM, 2, 8, 0)
    with pytest.raises(ValueError, match="1-D"):
        get_batch(STREAM.view(1, -1), 2, 8, torch.Generator())
    with pytest.raises(TypeError, match="integers"):
        get_batch(STREAM.float(), 2, 8, torch.Generator())


def test_random_window_dataset_and_dataloader():
    ds = RandomWindowDataset(STREAM, block_size=10, num_samples=50, seed=7)
    again = RandomWindowDataset(STREAM.tolist(), block_size=10, num_samples=50, seed=7)
    other = RandomWindowDataset(STREAM, block_size=10, num_samples=50, seed=8)
    assert len(ds) == 50 and torch.equal(ds.starts, again.starts) and not torch.equal(ds.starts, other.starts)
    for i in range(len(ds)):
        x, y = ds[i]
        s = _offset_of(x)
        assert torch.equal(x, STREAM[s : s + 10]) and torch.equal(y, STREAM[s + 1 : s + 11])
    loader = DataLoader(ds, batch_size=16, shuffle=False, num_workers=0)
    batches = list(loader)
    assert [tuple(xb.shape) for xb, _ in batches] == [(16, 10)] * 3 + [(2, 10)]
    xs = torch.cat([xb for xb, _ in batches])
    assert torch.equal(xs, torch.stack([ds[i][0] for i in range(50)]))


@pytest.mark.parametrize("n,block,stride", [(97, 8, None), (97, 8, 3), (97, 8, 8), (9, 8, None), (50, 7, 1), (64, 9, 5)])
def test_strided_windows_score_every_target_once(n, block, stride):
    stream = torch.arange(1000, 1000 + n)
    ds = StridedWindowDataset(stream, block, stride)
    scored = torch.zeros(n, dtype=torch.long)  # scored[p]: times token p was a (non-ignored) target
    for i in range(len(ds)):
        x, y = ds[i]
        assert x.shape == y.shape == (block,)
        s = _offset_of(x)
        assert torch.equal(x, stream[s : s + block])
        keep = y != IGNORE_INDEX
        assert torch.equal(y[keep], stream[s + 1 : s + block + 1][keep])  # the shift, where scored
        assert keep[-1]  # the newest target of a window is always scored
        scored[s + 1 : s + block + 1] += keep.long()
    assert scored[0] == 0 and bool((scored[1:] == 1).all())  # brute force: each target exactly once
    assert ds.num_scored == n - 1 == int(scored.sum())
    step = block if stride is None else stride
    regular = ds.starts[:-1] if ds.starts[-1] % step else ds.starts  # all but a possible extra last window
    assert regular.tolist() == list(range(0, step * len(regular), step))


def test_strided_defaults_are_disjoint_windows():
    stream = torch.arange(1000, 1100)  # 100 tokens, windows of 8: starts 0, 8, ..., 88, then one ending at the end
    ds = StridedWindowDataset(stream, 8)
    assert ds.starts.tolist() == list(range(0, 89, 8)) + [91]
    assert all((ds[i][1] != IGNORE_INDEX).all() for i in range(len(ds) - 1))
    # window 88 scored targets 89..96; the extra window (targets 92..99) scores only 97, 98, 99
    x, y = ds[len(ds) - 1]
    assert y.tolist() == [IGNORE_INDEX] * 5 + [1097, 1098, 1099]
    with pytest.raises(ValueError, match="stride must be"):
        StridedWindowDataset(stream, 8, stride=9)


class _Work:
    def __init__(self, id, text):
        self.id, self.text = id, text


def test_encode_works_joins_with_eos():
    tok = CharTokenizer.fit("abcdef|")
    works = [_Work("x", "abc"), _Work("y", "de")]
    eos = tok.encode("|")[0]
    assert encode_works(works, tok).tolist() == tok.encode("abcde")
    assert encode_works(works, tok, eos_id=eos).tolist() == tok.encode("abc|de|")
    assert encode_works(["abc", "de"], tok).dtype == torch.long
    with pytest.raises(ValueError, match="no works"):
        encode_works([], tok)


@pytest.fixture(scope="module")
def corpus(shakespeare):
    """The corpus (tests/conftest.py): a missing corpus fails with its one-line error, it is not skipped."""
    return shakespeare


def test_split_by_work_keeps_validation_out_of_train(corpus):
    from llm_from_scratch.data import split_works

    tok = CharTokenizer.fit("".join(w.text for w in corpus))
    streams = encode_splits(corpus, tok)
    parts = split_works(corpus)
    assert set(streams) == {"train", "validation", "test", "poems"}
    for name, stream in streams.items():
        assert len(stream) == sum(len(w.text) for w in parts[name])  # one id per character
    train_text = tok.decode(streams["train"].tolist())
    train_ids = {w.id for w in parts["train"]}
    for w in parts["validation"] + parts["test"]:
        assert w.id not in train_ids
        # a long, distinctive passage from the middle of each held-out play is not in the training text
        middle = len(w.text) // 2
        assert w.text[middle : middle + 400] not in train_text
    assert parts["train"][0].text[1000:1400] in train_text  # ... while a training passage is


def test_hf_dataset_windows_match_the_stream():
    tok = BPETokenizer.train("the quick brown fox jumps over the lazy dog " * 20, 300, progress=False)
    texts = ["the quick brown fox " * 30, "jumps over the lazy dog " * 25]
    ds = to_hf_dataset(texts, tok, block_size=16, eos_id=tok.eos_id)
    stream = encode_works(texts, tok, eos_id=tok.eos_id)
    assert ds.column_names == ["input_ids", "labels"]
    assert len(ds) == (len(stream) - 1) // 16
    for k in range(len(ds)):
        row = ds[k]
        assert torch.equal(row["input_ids"], stream[16 * k : 16 * k + 16])
        assert torch.equal(row["labels"], stream[16 * k + 1 : 16 * k + 17])
    loader = DataLoader(ds, batch_size=4, num_workers=0)
    batch = next(iter(loader))
    assert batch["input_ids"].shape == batch["labels"].shape == (4, 16)
    with pytest.raises(ValueError, match="too short"):
        to_hf_dataset(["ab"], tok, block_size=16)
