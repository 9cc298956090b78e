"""A training run at a glance: accuracy, mean sensitivity and mean smoothness per step."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from defstab.plotting.common import plt, save_figure


def history_figure(history: list[dict], path: str | Path, title: str) -> Path:
    """Three panels against images seen (log scale, as checkpoints are log-spaced):
    test accuracy, sensitivity averaged over layers 1…L, smoothness averaged over convs."""
    seen = np.array([max(float(r["images_seen"]), 1.0) for r in history])

    def mean_of(prefix: str) -> np.ndarray:
        keys = [k for k in history[0] if k.startswith(prefix) and k != "sens:input"]
        if not keys:
            return np.full(len(history), np.nan)
        return np.array([np.mean([float(r[k]) for k in keys]) for r in history])

    panels = [
        ("test accuracy", np.array([float(r["test_acc"]) for r in history])),
        ("sensitivity (mean over layers)", mean_of("sens:")),
        ("filter smoothness (mean over convs)", mean_of("smooth:")),
    ]
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.2))
    for ax, (label, y) in zip(axes, panels, strict=True):
        ax.plot(seen, y, "o-", ms=3)
        ax.set_xscale("log")
        ax.set_xlabel("images seen (step 0 plotted at 1)")
        ax.set_title(label, fontsize=9)
        ax.grid(alpha=0.3)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path)
