"""Azulay & Weiss's protocols: a sequence of frames per image, one step apart.

Every protocol returns frames (N, S, C, H, W) and the geometry it used (object
positions and sizes per step), so tests can check that an object is where it is said to
be. Positions are the top-left pixel of the pasted object on the canvas, (x, y).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from defstab._validate import check_images
from defstab.deform import translation_field, warp

DIRECTIONS = {"horizontal": (1, 0), "vertical": (0, 1), "diagonal": (1, 1)}
#: black: zeros in pixel space; mean: a fill colour, the normalisation mean (zeros after
#: normalisation, as Azulay & Weiss's code pastes); inpaint: edge extension, blurred.
BACKGROUNDS = ("black", "mean", "inpaint")


def _check_steps(steps: int) -> int:
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be an integer ≥ 1, got {steps!r}.")
    return steps


def _direction(direction: str) -> tuple[int, int]:
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {sorted(DIRECTIONS)}, got {direction!r}.")
    return DIRECTIONS[direction]


def _check_background(background: str) -> None:
    if background not in BACKGROUNDS:
        raise ValueError(f"background must be one of {BACKGROUNDS}, got {background!r}.")


def paste(
    obj: torch.Tensor, canvas: int, top: int, left: int, background: str, fill=None
) -> torch.Tensor:
    """Put (N, C, s, s) objects at (top, left) of a canvas×canvas frame: black, filled
    with the colour ``fill`` (C,) for ``"mean"``, or inpainted."""
    if background == "inpaint":
        return inpaint_background(obj, canvas, top, left)
    s = obj.shape[-1]
    frame = obj.new_zeros(obj.shape[0], obj.shape[1], canvas, canvas)
    if background == "mean":
        frame += _fill_colour(fill, obj).view(1, -1, 1, 1)
    frame[..., top : top + s, left : left + s] = obj
    return frame


def _fill_colour(fill, obj: torch.Tensor) -> torch.Tensor:
    if fill is None:
        raise ValueError("the 'mean' background needs a fill colour (the normalisation mean).")
    colour = torch.as_tensor(fill, dtype=obj.dtype, device=obj.device).flatten()
    if colour.numel() == 1:
        colour = colour.expand(obj.shape[1])
    if colour.numel() != obj.shape[1]:
        raise ValueError(f"a fill colour of {colour.numel()} values for {obj.shape[1]} channels.")
    return colour


def resize(images: torch.Tensor, size: int) -> torch.Tensor:
    """Antialiased bilinear resize to size×size: (N, C, H, W) -> (N, C, size, size)."""
    return F.interpolate(
        images, size=(size, size), mode="bilinear", align_corners=False, antialias=True
    ).clamp(0, 1)


def inpaint_background(
    obj: torch.Tensor, canvas: int, top: int, left: int, blur_sigma: float = 6.0
) -> torch.Tensor:
    """Edge-extension inpainting: the canvas around the object is filled by repeating the
    object's border pixels outward, then blurred with a Gaussian (σ = ``blur_sigma`` px)
    so the fill is smooth; the object itself is pasted back sharp.

    Args:
        obj: (N, C, s, s).

    Returns:
        (N, C, canvas, canvas).
    """
    s = obj.shape[-1]
    pad = (left, canvas - left - s, top, canvas - top - s)
    filled = F.pad(obj, pad, mode="replicate")
    r = int(3 * blur_sigma)
    x = torch.arange(-r, r + 1, dtype=obj.dtype, device=obj.device)
    g = torch.exp(-0.5 * (x / blur_sigma) ** 2)
    g = (g / g.sum()).view(1, 1, 1, -1).expand(obj.shape[1], 1, 1, -1)
    blurred = F.conv2d(F.pad(filled, (r, r, 0, 0), mode="replicate"), g, groups=obj.shape[1])
    blurred = F.conv2d(
        F.pad(blurred, (0, 0, r, r), mode="replicate"), g.transpose(-1, -2), groups=obj.shape[1]
    )
    blurred[..., top : top + s, left : left + s] = obj
    return blurred


def embed_path(
    images: torch.Tensor,
    object_size: int,
    canvas: int,
    steps: int,
    direction: str = "horizontal",
    background: str = "black",
    start=None,
    fill=None,
):
    """Shrink each image to ``object_size`` and paste it on a canvas, moving one pixel per
    step along ``direction`` (Azulay's embedding protocol).

    Args:
        images: (N, C, H, W) in [0, 1].
        object_size: side of the shrunk image.
        canvas: side of the canvas (≥ object_size + steps along the path).
        steps: number of one-pixel moves (S = steps + 1 frames).
        background: "black", "mean" (the colour ``fill``, (C,)) or "inpaint" (see
            :func:`inpaint_background`).
        start: top-left (x, y) of the first frame; default centres the path.

    Returns:
        ``(frames (N, S, C, canvas, canvas), positions (S, 2) as (x, y))``.
    """
    check_images(images)
    steps = _check_steps(steps)
    dx, dy = _direction(direction)
    _check_background(background)
    span_x, span_y = object_size + dx * steps, object_size + dy * steps
    if object_size < 2 or canvas < max(span_x, span_y):
        raise ValueError(
            f"a canvas of {canvas} px is smaller than the object ({object_size} px) "
            f"plus its {steps}-step path."
        )
    if start is None:
        start = ((canvas - span_x) // 2, (canvas - span_y) // 2)
    x0, y0 = start
    if x0 < 0 or y0 < 0 or x0 + span_x > canvas or y0 + span_y > canvas:
        raise ValueError(f"the path from {start} leaves the {canvas} px canvas.")
    obj = resize(images, object_size)
    positions = torch.tensor([[x0 + k * dx, y0 + k * dy] for k in range(steps + 1)])
    frames = [paste(obj, canvas, y, x, background, fill) for x, y in positions.tolist()]
    return torch.stack(frames, dim=1), positions


def crop_path(
    images: torch.Tensor, crop: int, steps: int, direction: str = "horizontal", start=None
):
    """Crops of size ``crop`` at one-pixel offsets; every crop contains the image's central
    (crop − steps)-pixel region along the path (Azulay's crop protocol).

    Args:
        start: top-left (x, y) of the first crop; default centres the path.

    Returns:
        ``(frames (N, S, C, crop, crop), offsets (S, 2) top-left (x, y) of each crop)``.
    """
    check_images(images)
    steps = _check_steps(steps)
    dx, dy = _direction(direction)
    h, w = images.shape[-2:]
    need_w, need_h = crop + dx * steps, crop + dy * steps
    if crop < 2 or need_w > w or need_h > h:
        raise ValueError(
            f"images of {h}×{w} px are too small for {crop} px crops moved "
            f"{steps} steps {direction}."
        )
    x0, y0 = ((w - need_w) // 2, (h - need_h) // 2) if start is None else start
    if x0 < 0 or y0 < 0 or x0 + need_w > w or y0 + need_h > h:
        raise ValueError(f"the crop path from {start} leaves the {h}×{w} px image.")
    offsets = torch.tensor([[x0 + k * dx, y0 + k * dy] for k in range(steps + 1)])
    frames = [images[..., y : y + crop, x : x + crop] for x, y in offsets.tolist()]
    return torch.stack(frames, dim=1), offsets


def pad_shift_path(images: torch.Tensor, max_shift: int, direction: str = "horizontal"):
    """The whole image moved by −max_shift … +max_shift pixels, one pixel per step, the gap
    filled with zeros: training augmentation's own translation (a random crop of the
    zero-padded image), so a path step lies inside or outside the shifts a network saw in
    training exactly.

    Returns:
        ``(frames (N, 2·max_shift + 1, C, H, W), shifts (S, 2) (dx, dy) of each frame;
        positive = content moved right / down)``.
    """
    check_images(images)
    k = _check_steps(max_shift)
    dx, dy = _direction(direction)
    h, w = images.shape[-2:]
    if k >= min(h, w):
        raise ValueError(f"images of {h}×{w} px cannot be shifted by {k} px (nothing would stay).")
    padded = F.pad(images, (k, k, k, k))
    shifts = torch.tensor([[dx * j, dy * j] for j in range(-k, k + 1)])
    # content shifted by +d sits where the crop starts d pixels before the original
    frames = [padded[..., k - y : k - y + h, k - x : k - x + w] for x, y in shifts.tolist()]
    return torch.stack(frames, dim=1), shifts


def draw_offset_pairs(
    n: int, window: int, generator: torch.Generator | None = None, per_batch: int | None = None
) -> torch.Tensor:
    """(n, 2, 2) top-left (x, y) offsets of two crops per image, each uniform in
    0…window−1: one pair per image, or one per batch of ``per_batch`` images."""
    if per_batch is not None and per_batch < 1:
        raise ValueError(f"per_batch must be ≥ 1, got {per_batch}.")
    draws = n if per_batch is None else -(-n // per_batch)
    offsets = torch.randint(window, (draws, 2, 2), generator=generator)
    if per_batch is not None:
        offsets = offsets.repeat_interleave(per_batch, dim=0)[:n]
    return offsets


def random_offset_pairs(
    images: torch.Tensor,
    crop: int,
    window: int,
    generator: torch.Generator | None = None,
    per_batch: int | None = None,
    offsets: torch.Tensor | None = None,
):
    """Two crops of each image at independent random 2-D offsets (Zhang 2019's shift
    consistency): each offset's x and y uniform in 0…window−1.

    Zhang's code draws one pair of offsets per batch of ``per_batch`` images (256 by
    default there); ``per_batch=None`` draws a pair per image (the same expectation, less
    variance).

    Args:
        images: (N, C, H, W) with H, W ≥ crop + window − 1.
        offsets: (N, 2, 2) drawn before (:func:`draw_offset_pairs`); else drawn here.

    Returns:
        ``(frames (N, 2, C, crop, crop), offsets (N, 2, 2) top-left (x, y) of each crop)``.
    """
    check_images(images)
    n, _, h, w = images.shape
    if crop < 2 or window < 1 or crop + window - 1 > min(h, w):
        raise ValueError(
            f"images of {h}×{w} px are too small for {crop} px crops at offsets up to "
            f"{window - 1} px."
        )
    if offsets is None:
        offsets = draw_offset_pairs(n, window, generator, per_batch)
    span = torch.arange(crop)
    rows = (offsets[..., 1, None] + span).to(images.device)  # (N, 2, crop)
    cols = (offsets[..., 0, None] + span).to(images.device)
    batch = torch.arange(n, device=images.device).view(n, 1, 1, 1)
    # (N, 2, crop, crop, C) by advanced indexing, no loop over images
    frames = images.permute(0, 2, 3, 1)[batch, rows[..., :, None], cols[..., None, :]]
    return frames.permute(0, 1, 4, 2, 3).contiguous(), offsets


def all_shifts(images: torch.Tensor, crop: int, max_shift: int):
    """Crops of side ``crop`` at every integer shift (dx, dy) in [−k, k]² of the centred
    crop: the exhaustive search of a worst-case shift (Engstrom et al. 2019's grid).

    Args:
        images: (N, C, H, W) with H, W ≥ crop + 2k.

    Returns:
        ``(frames (N, (2k+1)², C, crop, crop), shifts ((2k+1)², 2) as (dx, dy))``; the
        unshifted crop is frame (2k+1)²//2.
    """
    check_images(images)
    if isinstance(max_shift, bool) or not isinstance(max_shift, int) or max_shift < 1:
        raise ValueError(f"max_shift must be an integer ≥ 1, got {max_shift!r}.")
    h, w = images.shape[-2:]
    if crop < 2 or crop + 2 * max_shift > min(h, w):
        raise ValueError(
            f"images of {h}×{w} px are too small for {crop} px crops shifted by up to "
            f"±{max_shift} px."
        )
    k = max_shift
    r = torch.arange(-k, k + 1)
    shifts = torch.stack(torch.meshgrid(r, r, indexing="xy"), -1).reshape(-1, 2)  # (S, (dx, dy))
    y0, x0 = (h - crop) // 2, (w - crop) // 2
    span = torch.arange(crop)
    rows = (y0 + shifts[:, 1, None] + span).to(images.device)  # (S, crop)
    cols = (x0 + shifts[:, 0, None] + span).to(images.device)
    frames = images.permute(0, 2, 3, 1)[:, rows[:, :, None], cols[:, None, :]]  # (N, S, c, c, C)
    return frames.permute(0, 1, 4, 2, 3).contiguous(), shifts


def scale_path(
    images: torch.Tensor, canvas: int, start_size: int, steps: int, background: str = "black"
):
    """The object grows by one pixel per step, centred on a fixed canvas (scale protocol).

    Returns:
        ``(frames (N, S, C, canvas, canvas), sizes (S,))``.
    """
    check_images(images)
    steps = _check_steps(steps)
    _check_background(background)
    if start_size < 2 or start_size + steps > canvas:
        raise ValueError(
            f"a canvas of {canvas} px is smaller than the largest object ({start_size + steps} px)."
        )
    sizes = torch.arange(start_size, start_size + steps + 1)
    tops = [(canvas - s) // 2 for s in sizes.tolist()]
    frames = [
        paste(resize(images, s), canvas, t, t, background)
        for s, t in zip(sizes.tolist(), tops, strict=True)
    ]
    return torch.stack(frames, dim=1), sizes


def subpixel_path(
    images: torch.Tensor,
    step: float,
    steps: int,
    direction: str = "horizontal",
    padding: str = "border",
):
    """Translations by multiples of a fractional ``step`` through the deformation engine.

    Returns:
        ``(frames (N, S, C, H, W), shifts (S, 2) in pixels, (x, y))``.
    """
    check_images(images)
    steps = _check_steps(steps)
    dx, dy = _direction(direction)
    shifts = torch.tensor(
        [[k * step * dx, k * step * dy] for k in range(steps + 1)], dtype=torch.float32
    )
    h, w = images.shape[-2:]
    fields = translation_field((h, w), shifts[:, 0], shifts[:, 1])  # (S, H, W, 2)
    n, s = images.shape[0], steps + 1
    rep = images.unsqueeze(1).expand(n, s, *images.shape[1:]).reshape(n * s, *images.shape[1:])
    out = warp(rep, fields.repeat(n, 1, 1, 1), padding=padding)
    return out.reshape(n, s, *images.shape[1:]), shifts


def centre_crop(images: torch.Tensor, side: int) -> torch.Tensor:
    """The centred side×side crop of (N, C, H, W) images (Resize + CenterCrop's second
    half); the images themselves when they are that size."""
    check_images(images)
    h, w = images.shape[-2:]
    if side > min(h, w) or side < 2:
        raise ValueError(f"a {side} px centre crop does not fit images of {h}×{w} px.")
    top, left = (h - side) // 2, (w - side) // 2
    return images[..., top : top + side, left : left + side]


def circular_path(images: torch.Tensor, steps: int, direction: str = "horizontal"):
    """The whole image rolled by 0, 1, …, ``steps`` pixels along ``direction``, content
    wrapping around (``torch.roll``): the shifts under which an APS network with circular
    padding is exactly invariant.

    Returns:
        ``(frames (N, steps + 1, C, H, W), shifts (S, 2) as (dx, dy))``.
    """
    from defstab.translate.shifts import circular_shift

    steps = _check_steps(steps)
    dx, dy = _direction(direction)
    shifts = torch.tensor([[k * dx, k * dy] for k in range(steps + 1)])
    return circular_shift(images, shifts), shifts


def fractional_path(
    images: torch.Tensor, steps: int, fraction: int = 2, direction: str = "horizontal"
):
    """The whole image shifted by 0, 1/m, 2/m, …, ``steps``/m pixels (m = ``fraction``;
    half-pixel steps for m = 2) by band-limited periodic interpolation, the way the
    alias-free work shifts by fractions (:func:`~defstab.translate.shifts.fourier_shift`);
    frame m is the circular shift by one whole pixel.

    Returns:
        ``(frames (N, steps + 1, C, H, W), shifts (S, 2) (dx, dy) in pixels, float)``.
    """
    from defstab.translate.shifts import fourier_shift

    steps = _check_steps(steps)
    dx, dy = _direction(direction)
    if isinstance(fraction, bool) or not isinstance(fraction, int) or fraction < 1:
        raise ValueError(f"the fraction m of a pixel must be an integer ≥ 1, got {fraction!r}.")
    shifts = torch.tensor(
        [[k * dx / fraction, k * dy / fraction] for k in range(steps + 1)], dtype=torch.float64
    )
    return fourier_shift(images, shifts), shifts


def circular_pairs(
    images: torch.Tensor,
    window: int,
    generator: torch.Generator | None = None,
    per_batch: int | None = None,
    offsets: torch.Tensor | None = None,
):
    """Two circular shifts of each image, each (dx, dy) uniform in
    −⌊window/2⌋ … ⌈window/2⌉ − 1 (Chaman & Dokmanić's consistency: ``randint(−32, 32)``
    is window 64, CIFAR's ``max_shift=3`` window 6).

    Args:
        offsets: (N, 2, 2) drawn before by :func:`draw_offset_pairs` (0…window−1); the
            shifts are those minus ⌊window/2⌋.

    Returns:
        ``(frames (N, 2, C, H, W), shifts (N, 2, 2) (dx, dy) of each frame)``.
    """
    check_images(images)
    if isinstance(window, bool) or not isinstance(window, int) or window < 1:
        raise ValueError(f"window must be an integer ≥ 1, got {window!r}.")
    if offsets is None:
        offsets = draw_offset_pairs(images.shape[0], window, generator, per_batch)
    shifts = offsets - window // 2
    frames = torch.stack([_roll_each(images, shifts[:, j]) for j in range(2)], dim=1)
    return frames, shifts


def _roll_each(images: torch.Tensor, shifts: torch.Tensor) -> torch.Tensor:
    """Image i rolled by its own shift (N, 2) (dx, dy): (N, C, H, W) -> (N, C, H, W), one
    gather (no loop over images)."""
    n, _, h, w = images.shape
    shifts = shifts.long().to(images.device)
    rows = (torch.arange(h, device=images.device) - shifts[:, 1, None]) % h  # (N, H)
    cols = (torch.arange(w, device=images.device) - shifts[:, 0, None]) % w  # (N, W)
    batch = torch.arange(n, device=images.device).view(n, 1, 1)
    out = images.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]]  # (N, H, W, C)
    return out.permute(0, 3, 1, 2).contiguous()
