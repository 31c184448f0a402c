"""Shared fixtures. Keep this file small and generic: fixtures used by more than one test module."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def shakespeare():
    """The complete works (``list[Work]``), fetched into the data cache once per machine, then read from it."""
    from llm_from_scratch.data import load_shakespeare

    return load_shakespeare(progress=False)


@pytest.fixture(scope="session")
def shakespeare_splits(shakespeare):
    """``split_works(shakespeare)``: {"train", "validation", "test", "poems"} -> list[Work]."""
    from llm_from_scratch.data import split_works

    return split_works(shakespeare)


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Run each test with one intra-op thread, restored afterwards.

    The models in the tests are tiny: a second thread only adds synchronisation, and on a busy
    2-core runner torch's spinning thread pool made such tests 10-25x slower.
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
