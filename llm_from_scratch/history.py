"""A run's history: one JSON record per evaluation in ``history.jsonl``, and the loss curves."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

__all__ = ["read_history", "plot_history"]


def read_history(out_dir: str | os.PathLike) -> list[dict]:
    """The records of ``out_dir/history.jsonl``."""
    path = Path(out_dir) / "history.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def plot_history(history: Sequence[dict], path: str | os.PathLike | None = None, title: str | None = None):
    """Train and validation loss against the step; saved to ``path`` if given. Returns the figure.

    Uses matplotlib's object API (no pyplot): safe in worker processes and without a display.
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 4))
    ax = fig.add_subplot()
    steps = [r["step"] for r in history]
    for key, label in (("train_loss", "train"), ("val_loss", "validation")):
        pts = [(s, r[key]) for s, r in zip(steps, history) if r.get(key) is not None]
        if pts:
            ax.plot(*zip(*pts), marker="o", markersize=3, label=label)
    ax.set_xlabel("step")
    ax.set_ylabel("loss (nats per token)")
    ax.set_title(title or "Loss: validation above train means overfitting")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=100)
    return fig
