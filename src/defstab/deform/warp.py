"""Resample images at displaced coordinates (bilinear)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from defstab._validate import check_finite, check_images

PADDINGS = ("zeros", "border", "reflection")


def pixel_to_normalized(coords: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Map (x, y) pixel coordinates to grid_sample's [-1, 1] frame (align_corners=True)."""
    h, w = size
    scale = coords.new_tensor([2.0 / (w - 1), 2.0 / (h - 1)])
    return coords * scale - 1.0


def warp(
    images: torch.Tensor, field: torch.Tensor, padding: str = "zeros", check: bool = True
) -> torch.Tensor:
    """Deform images: output pixel p takes the input value at p + field(p), bilinearly.

    Args:
        images: (N, C, H, W) float images.
        field: (N, H, W, 2), (1, H, W, 2) or (H, W, 2) displacement in pixels, (x, y)
            order. A field without a batch dimension, or with batch size 1, is applied to
            every image.
        padding: value read outside the image: ``"zeros"``, ``"border"`` (nearest edge
            pixel) or ``"reflection"`` (mirrored about the border pixel centres).
        check: validate the inputs (finite, shapes) on the host; ``False`` for inputs
            already validated, in a loop that must not wait for the device (a value check
            reads the device).

    Returns:
        (N, C, H, W) deformed images; differentiable in ``images`` and ``field``. An
        image whose field is identically zero is returned bit-exactly.

    Example:
        >>> import torch
        >>> x = torch.arange(16.0).reshape(1, 1, 4, 4)
        >>> warp(x, torch.zeros(4, 4, 2)).equal(x)
        True
    """
    if check:
        check_images(images)
    check_padding(padding)
    n, _, h, w = images.shape
    if not isinstance(field, torch.Tensor) or field.ndim not in (3, 4) or field.shape[-1] != 2:
        shape = tuple(field.shape) if isinstance(field, torch.Tensor) else type(field)
        raise ValueError(f"field must have shape (N, H, W, 2) or (H, W, 2), got {shape}.")
    if field.shape[-3:-1] != (h, w):
        raise ValueError(
            f"field size {tuple(field.shape[-3:-1])} does not match the image size {(h, w)}."
        )
    if field.ndim == 4 and field.shape[0] not in (1, n):
        raise ValueError(f"field has batch size {field.shape[0]} but images have {n}.")
    if check:
        check_finite(field, "field")
    field = field.to(images.dtype)
    if field.ndim == 3:
        field = field.unsqueeze(0)
    identity = ~field.detach().reshape(field.shape[0], -1).any(dim=1)
    scale = field.new_tensor([2.0 / (w - 1), 2.0 / (h - 1)])
    grid = torch.addcmul(identity_grid((h, w), images.device, images.dtype), field, scale)
    return sample(images, grid.expand(n, h, w, 2), padding, identity.expand(n), look=check)


def check_padding(padding: str) -> None:
    if padding not in PADDINGS:
        raise ValueError(f"padding must be one of {PADDINGS}, got {padding!r}.")


def identity_grid(size: tuple[int, int], device, dtype) -> torch.Tensor:
    """(H, W, 2) grid of the pixel centres in grid_sample's [-1, 1] frame."""
    h, w = size
    ys = torch.arange(h, device=device, dtype=dtype)
    xs = torch.arange(w, device=device, dtype=dtype)
    return pixel_to_normalized(torch.stack(torch.meshgrid(xs, ys, indexing="xy"), dim=-1), size)


def sample(
    images: torch.Tensor,
    grid: torch.Tensor,
    padding: str,
    identity: torch.Tensor | None,
    look: bool = True,
) -> torch.Tensor:
    """grid_sample on a normalized grid; images flagged in ``identity`` (N,) are copied
    (None: no image is). ``look``: skip the copy when no image is flagged (reads the
    flags on the host); ``False`` copies through the flagged ones without looking.

    grid_sample's round trip through the [-1, 1] frame is off by ~1e-7 at integer
    positions; an image whose field is identically zero must come back bit-exact (zero
    deformation => zero sensitivity), so those are copied through.
    """
    out = F.grid_sample(images, grid, mode="bilinear", padding_mode=padding, align_corners=True)
    if identity is not None and (not look or bool(identity.any())):
        out = torch.where(identity.view(-1, 1, 1, 1), images, out)
    return out
