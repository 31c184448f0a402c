"""Small helpers every chapter uses: seeding and the setting a chapter runs in.

The setting (``LFS_SETTING``) sizes every chapter:

- ``smoke``: CI and ``make test``; each chapter runs in under a minute on 2 CPU cores.
- ``book``:  the default on a CPU; sized so that each chapter's result shows (about 10 minutes a
  chapter on 2 cores, up to 20 for the long fine-tuning ones). The committed notebooks carry it.
- ``full``:  the default on a GPU (Colab's T4 included): the full-size models and data.

``LFS_SMOKE=1`` is an older alias of ``LFS_SETTING=smoke``.
"""

from __future__ import annotations

import os
import random

import numpy as np
import torch

SETTINGS = ("smoke", "book", "full")


def current_setting(environ=None) -> str:
    """The setting a chapter runs in: ``"smoke"``, ``"book"`` or ``"full"``.

    ``LFS_SETTING`` wins; ``LFS_SMOKE=1`` means ``smoke``. With neither set: ``full`` where a CUDA
    GPU is present, else ``book``. An unknown value, or ``LFS_SMOKE=1`` next to an ``LFS_SETTING``
    other than smoke, is a ``ValueError`` with a one-line message.
    """
    env = os.environ if environ is None else environ
    setting = env.get("LFS_SETTING", "").strip().lower()
    smoke_alias = env.get("LFS_SMOKE", "").strip()
    if smoke_alias not in ("", "0", "1"):
        raise ValueError(f"LFS_SMOKE={smoke_alias!r} is not understood: set LFS_SMOKE=1 or unset it")
    if setting:
        if setting not in SETTINGS:
            raise ValueError(f"LFS_SETTING={setting!r} is not a setting: use one of {', '.join(SETTINGS)}")
        if smoke_alias == "1" and setting != "smoke":
            raise ValueError(
                f"LFS_SMOKE=1 says smoke but LFS_SETTING={setting!r}: unset LFS_SMOKE or make them agree"
            )
        return setting
    if smoke_alias == "1":
        return "smoke"
    return "full" if torch.cuda.is_available() else "book"


def seed_everything(seed: int = 0) -> torch.Generator:
    """Seed Python, NumPy and torch (CPU and every GPU); return a torch.Generator seeded the same.

    Returning a generator lets code that must not disturb the global RNG draw its own
    reproducible numbers.
    """
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device
    return torch.Generator().manual_seed(seed)


def config_from_dict(cls, d, strict: bool = True):
    """A config dataclass from a dict (a checkpoint's config.json): the one ``from_dict`` of the package.

    Unknown keys are a ValueError that lists the fields (``strict=False`` ignores them, e.g. for a
    transformers config.json)."""
    from dataclasses import fields

    known = {f.name for f in fields(cls)}
    unknown = sorted(set(d) - known)
    if unknown and strict:
        raise ValueError(f"{cls.__name__}.from_dict: unknown keys {unknown}; the fields are {sorted(known)}")
    return cls(**{k: v for k, v in dict(d).items() if k in known})
