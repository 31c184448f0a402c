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
