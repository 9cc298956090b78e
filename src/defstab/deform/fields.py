"""Dense displacement fields of global transformations (Ruderman App. A.2).

Each function returns a field for :func:`defstab.deform.warp` in the same convention as
the thin-plate spline: pixels, (x, y) order, and *output → input*: the value of output
pixel p is read at p + u(p). The arguments describe how the *image content* moves
(``translation_field(size, dx=1)`` moves the content one pixel to the right, so
u = −1 everywhere). Geometric transforms act about ``center``, by default the image
centre ((W − 1)/2, (H − 1)/2).
"""

from __future__ import annotations

import math

import torch

from defstab._validate import check_finite, check_size
from defstab.deform.tps import pixel_coordinates


def _as_batch(value, name: str) -> torch.Tensor:
    t = torch.as_tensor(value, dtype=torch.float64).reshape(-1)
    check_finite(t, name)
    return t


def affine_field(
    size: tuple[int, int], matrix: torch.Tensor, center: tuple[float, float] | None = None
) -> torch.Tensor:
    """Field of the content transform q ↦ A (q − c) + t + c.

    Args:
        size: (H, W).
        matrix: (2, 3) or (N, 2, 3) matrices [A | t] in pixel units, (x, y) order.
        center: the fixed point c of A, default the image centre.

    Returns:
        (N, H, W, 2) float32 field (N = 1 for a single matrix).
    """
    h, w = check_size(size)
    m = torch.as_tensor(matrix, dtype=torch.float64)
    if m.ndim == 2:
        m = m.unsqueeze(0)
    if m.ndim != 3 or m.shape[1:] != (2, 3):
        raise ValueError(f"matrix must have shape (2, 3) or (N, 2, 3), got {tuple(m.shape)}.")
    check_finite(m, "matrix")
    lin, shift = m[:, :, :2], m[:, :, 2]
    if bool((torch.linalg.det(lin).abs() < 1e-12).any()):
        raise ValueError("matrix has a singular 2×2 part: the transform cannot be inverted.")
    c = torch.tensor(
        center if center is not None else ((w - 1) / 2, (h - 1) / 2), dtype=torch.float64
    )
    p = pixel_coordinates((h, w)).reshape(1, -1, 2)  # (1, HW, 2)
    # Output p reads the input at T⁻¹(p) = A⁻¹ (p − c − t) + c.
    rel = p - c - shift[:, None, :]
    src = torch.einsum("nij,npj->npi", torch.linalg.inv(lin), rel) + c
    return (src - p).reshape(-1, h, w, 2).float()


def translation_field(size: tuple[int, int], dx=0.0, dy=0.0) -> torch.Tensor:
    """Move the content by (dx, dy) pixels (any real values; scalars or (N,) tensors).

    Returns:
        (N, H, W, 2) float32 field, constant −(dx, dy).
    """
    h, w = check_size(size)
    dx, dy = torch.broadcast_tensors(_as_batch(dx, "dx"), _as_batch(dy, "dy"))
    shift = -torch.stack([dx, dy], dim=-1).float()  # (N, 2)
    return shift[:, None, None, :].expand(-1, h, w, 2).contiguous()


def rotation_field(size, degrees, center=None) -> torch.Tensor:
    """Rotate the content by ``degrees`` (counter-clockwise on screen, y pointing down)."""
    a = _as_batch(degrees, "degrees") * math.pi / 180
    cos, sin = torch.cos(a), torch.sin(a)
    zero = torch.zeros_like(a)
    # On screen (y down) a counter-clockwise turn is [[cos, sin], [-sin, cos]].
    m = torch.stack([torch.stack([cos, sin, zero], -1), torch.stack([-sin, cos, zero], -1)], 1)
    return affine_field(size, m, center)


def scaling_field(size, scale, center=None) -> torch.Tensor:
    """Scale the content by ``scale`` (> 0) about ``center``; 2 doubles its size."""
    s = _as_batch(scale, "scale")
    if bool((s <= 0).any()):
        raise ValueError(f"scale must be positive, got {s.tolist()}.")
    zero = torch.zeros_like(s)
    m = torch.stack([torch.stack([s, zero, zero], -1), torch.stack([zero, s, zero], -1)], 1)
    return affine_field(size, m, center)


def shear_field(size, shear_x=0.0, shear_y=0.0, center=None) -> torch.Tensor:
    """Shear the content: x ↦ x + shear_x·y and y ↦ y + shear_y·x (about ``center``)."""
    sx, sy = torch.broadcast_tensors(_as_batch(shear_x, "shear_x"), _as_batch(shear_y, "shear_y"))
    one, zero = torch.ones_like(sx), torch.zeros_like(sx)
    m = torch.stack([torch.stack([one, sx, zero], -1), torch.stack([sy, one, zero], -1)], 1)
    return affine_field(size, m, center)
