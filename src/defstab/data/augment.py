"""Batched training augmentation, drawn from a generator (no Python loop over images)."""

from __future__ import annotations

import torch


def random_crop_flip(
    x: torch.Tensor, generator: torch.Generator, pad: int = 4, flip: bool = True
) -> torch.Tensor:
    """Zero-pad by ``pad``, crop back to H×W at a random offset, flip half horizontally.

    The content moves by a shift drawn uniformly from −pad … +pad pixels on each axis
    (independently), the gap filled with zeros: the same transformation as
    :func:`defstab.translate.protocols.pad_shift_path` at that shift.

    Args:
        x: (N, C, H, W).
    """
    n, c, h, w = x.shape
    if pad > 0:
        padded = torch.nn.functional.pad(x, (pad, pad, pad, pad))
        dy = torch.randint(0, 2 * pad + 1, (n,), generator=generator).to(x.device)
        dx = torch.randint(0, 2 * pad + 1, (n,), generator=generator).to(x.device)
        rows = (dy[:, None] + torch.arange(h, device=x.device))[:, None, :, None]
        cols = (dx[:, None] + torch.arange(w, device=x.device))[:, None, None, :]
        batch = torch.arange(n, device=x.device)[:, None, None, None]
        chan = torch.arange(c, device=x.device)[None, :, None, None]
        x = padded[batch, chan, rows, cols]
    if flip:
        mask = (torch.rand(n, generator=generator) < 0.5).to(x.device).view(n, 1, 1, 1)
        x = torch.where(mask, x.flip(-1), x)
    return x
