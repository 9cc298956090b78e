"""Checks made once, at the public boundary (house rule 2).

Every helper raises ``ValueError`` with one sentence that names the argument and
what was wrong with it, so a user's mistake never surfaces as a traceback from
deep inside torch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch


def check_size(size: Sequence[int], name: str = "size") -> tuple[int, int]:
    """Return ``(H, W)`` from a 2-sequence of integers ≥ 2."""
    try:
        h, w = (int(s) for s in size)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a pair (H, W) of integers, got {size!r}.") from None
    if h < 2 or w < 2:
        raise ValueError(f"{name} must be at least 2×2 pixels, got ({h}, {w}).")
    return h, w


def check_grid(grid: int) -> int:
    """Return the control-grid side k, which must be an integer ≥ 2."""
    if isinstance(grid, bool) or not isinstance(grid, int | float) or int(grid) != grid:
        raise ValueError(f"grid must be an integer ≥ 2, got {grid!r}.")
    if grid < 2:
        raise ValueError(f"grid must be at least 2 (a 2×2 control grid), got {grid}.")
    return int(grid)


def check_nonnegative(value: float, name: str) -> float:
    """Return ``value`` as a float after checking it is finite and ≥ 0."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}.") from None
    if not math.isfinite(v) or v < 0:
        raise ValueError(f"{name} must be finite and non-negative, got {value!r}.")
    return v


def check_finite(t: torch.Tensor, name: str) -> None:
    """Raise if ``t`` holds NaN or infinity.

    A sum is finite whenever every element is (barring overflow), and costs a fraction of
    ``isfinite(t).all()`` on large batches; only a non-finite sum needs the exact check.
    """
    if not t.is_floating_point() or t.numel() == 0:
        return
    if bool(torch.isfinite(t.sum())):
        return
    if not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name} contains NaN or infinite values.")


def check_images(images: torch.Tensor, name: str = "images") -> torch.Tensor:
    """Check a float batch of shape (N, C, H, W) with finite values."""
    if not isinstance(images, torch.Tensor):
        raise ValueError(
            f"{name} must be a torch.Tensor of shape (N, C, H, W), got {type(images)}."
        )
    if images.ndim != 4:
        raise ValueError(f"{name} must have shape (N, C, H, W), got {tuple(images.shape)}.")
    if not images.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor, got dtype {images.dtype}.")
    if images.shape[0] == 0:
        raise ValueError(f"{name} is an empty batch (N = 0).")
    check_finite(images, name)
    return images
