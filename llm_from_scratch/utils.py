"""Small helpers every chapter uses: seeding and the SMOKE (CI) setting."""

from __future__ import annotations

import os
import random

import numpy as np
import torch


def is_smoke() -> bool:
    """True under the CI setting (``LFS_SMOKE=1``): chapters shrink to run in seconds on 2 CPU cores."""
    return os.environ.get("LFS_SMOKE") == "1"


def seed_everything(seed: int = 0) -> torch.Generator:
    """Seed Python, NumPy and torch (CPU and every GPU); return a torch.Generator seeded the same.

    Returning a generator lets code that must not disturb the global RNG draw its own
    reproducible numbers.
    """
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device
    return torch.Generator().manual_seed(seed)
