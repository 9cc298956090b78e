"""Shared figure helpers."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from defstab.io.atomic import atomic_path  # noqa: E402

FIGURE_SUFFIXES = (".png", ".svg", ".pdf")


def check_figure_path(path: str | Path) -> Path:
    path = Path(path)
    if path.suffix.lower() not in FIGURE_SUFFIXES:
        raise ValueError(f"figure file must end in one of {FIGURE_SUFFIXES}, got {path.name!r}.")
    return path


def save_figure(fig, path: str | Path, dpi: int = 150) -> Path:
    """Save atomically (format from the extension) and close the figure."""
    path = check_figure_path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format=path.suffix[1:].lower())
    plt.close(fig)
    return path
