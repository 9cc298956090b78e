"""Random thin-plate-spline deformations, split into sampling and applying.

Sampling always happens on the CPU from a ``torch.Generator`` so that one seed gives the
same deformations on any device; the displacements can be saved and replayed with
:func:`apply_tps`.
"""

from __future__ import annotations

from functools import lru_cache

import torch

from defstab._validate import check_grid, check_images, check_nonnegative
from defstab.deform.tps import ThinPlateSpline
from defstab.deform.warp import check_padding, sample


@lru_cache(maxsize=32)
def get_tps(size: tuple[int, int], grid: int) -> ThinPlateSpline:
    """A shared :class:`ThinPlateSpline` per (size, grid): its operator is built once."""
    return ThinPlateSpline(size, grid)


def sample_displacements(
    n: int, grid: int, max_disp: float, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Random control displacements, each coordinate uniform in [−max_disp, max_disp].

    Args:
        n: number of deformations.
        grid: control points per side, k.
        max_disp: C, the largest displacement per coordinate, in pixels.
        generator: CPU ``torch.Generator`` for reproducibility.

    Returns:
        (n, k·k, 2) float32 displacements in pixels, (x, y) order, on the CPU.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> d = sample_displacements(8, 3, 2.0, generator=g)
        >>> d.shape, bool(d.abs().max() <= 2.0)
        (torch.Size([8, 9, 2]), True)
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}.")
    k = check_grid(grid)
    c = check_nonnegative(max_disp, "max_disp")
    u = torch.rand((n, k * k, 2), generator=generator, dtype=torch.float32)
    return (2.0 * u - 1.0) * c


def apply_tps(
    images: torch.Tensor,
    displacements: torch.Tensor,
    grid: int,
    padding: str = "zeros",
    chunk_size: int | None = None,
    check: bool = True,
) -> torch.Tensor:
    """Deform each image with its own control displacements.

    Args:
        images: (N, C, H, W).
        displacements: (N, k·k, 2) in pixels, (x, y).
        grid: k.
        padding: see :func:`defstab.deform.warp`.
        chunk_size: images per step (default: the whole batch, fastest on CPU); set it
            to bound the memory of the sampling grid on very large batches.
        check: validate the inputs (finite, shapes) on the host; ``False`` for inputs
            already validated, in a loop that must not wait for the device (a value check
            reads the device).

    Returns:
        (N, C, H, W) deformed images (differentiable in images and displacements).
    """
    if check:
        check_images(images)
    check_padding(padding)
    tps = get_tps(tuple(images.shape[-2:]), check_grid(grid))
    if not isinstance(displacements, torch.Tensor) or displacements.shape[:1] != images.shape[:1]:
        got = displacements.shape[0] if isinstance(displacements, torch.Tensor) else "no"
        raise ValueError(f"displacements hold {got} deformations for {images.shape[0]} images.")
    disp = displacements.to(device=images.device, dtype=images.dtype)
    tps._check_displacements(disp, check)
    identity = ~disp.detach().reshape(disp.shape[0], -1).any(dim=1)
    if check and not bool(identity.any()):  # the usual case: one check, not one per chunk
        identity = None
    chunk_size = chunk_size or images.shape[0]
    outs = []
    for i in range(0, images.shape[0], chunk_size):
        sl = slice(i, i + chunk_size)
        keep = None if identity is None else identity[sl]
        outs.append(sample(images[sl], tps._apply_block(disp[sl], True), padding, keep, check))
    return outs[0] if len(outs) == 1 else torch.cat(outs)


def random_tps(
    images: torch.Tensor,
    grid: int = 3,
    max_disp: float = 2.0,
    generator: torch.Generator | None = None,
    padding: str = "zeros",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Deform a batch with one random TPS deformation per image (Ruderman §2.1).

    Returns:
        ``(deformed, displacements)``: (N, C, H, W) images and the (N, k·k, 2)
        displacements used, so the same deformations can be replayed with
        :func:`apply_tps`.
    """
    disp = sample_displacements(images.shape[0], grid, max_disp, generator)
    return apply_tps(images, disp, grid, padding), disp
