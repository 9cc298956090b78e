"""Accuracy under the worst shift (Michaeli et al., "Alias-free ConvNets", CVPR 2023):
the fraction of images classified correctly unshifted *and* under every shift of a grid.

Two geometries:

* ``circular`` — the whole image shifted with wrap-around (:func:`~defstab.translate.
  shifts.shift_images`: exact rolls for whole pixels, band-limited for fractions), the
  grids of :func:`~defstab.translate.shifts.shift_grid`, as ``shift_eval.py`` does;
* ``crop`` — a ``crop``-px window of a larger image moved within ±R px of the centre
  (``evaluate_adversarial_crop_shift_metrics``: offsets 1…2R of a (crop + 2R)-px image,
  i.e. content moved by −R … R − 1 px, the centred crop the reference); half-pixel and
  fractional shifts move the larger image band-limited before the centre crop.
"""

from __future__ import annotations

import torch
from torch import nn

from defstab.models.outputs import class_scores
from defstab.tap import evaluation_mode, model_device_dtype, run_checked
from defstab.translate.shifts import GRIDS, fourier_shift, shift_grid, shift_images

GEOMETRIES = ("circular", "crop")
#: floats of frames in memory at once (≈ 64 MB; fractional shifts' spectra twice that):
#: chunks of images × shifts are sized by it
FRAME_BUDGET = 2**24


def crop_grid(grid: str, radius: int, max_up: int = 4) -> torch.Tensor:
    """(S, 2) content shifts (dx, dy) of the crop geometry: integer = Michaeli et al.'s
    crop offsets {1…2R}², i.e. shifts R − o ∈ {−R … R − 1}² (the unshifted one
    included, as theirs); half = those minus ½ on both axes; fraction as the circular
    grid (shifts −k/u); full = integer then half."""
    if grid not in GRIDS:
        raise ValueError(f"grid must be one of {', '.join(GRIDS)}, got {grid!r}.")
    if grid == "fraction":
        return shift_grid("fraction", max_up=max_up)
    r = torch.arange(radius - 1, -radius - 1, -1, dtype=torch.float64)  # o = 1…2R
    integer = torch.cartesian_prod(r, r).flip(-1)
    return {"integer": integer, "half": integer - 0.5,
            "full": torch.cat([integer, integer - 0.5])}[grid]  # fmt: skip


def grid_shifts(grid: str, geometry: str, radius: int, max_up: int) -> torch.Tensor:
    if geometry not in GEOMETRIES:
        raise ValueError(f"geometry must be one of {', '.join(GEOMETRIES)}, got {geometry!r}.")
    if isinstance(radius, bool) or not isinstance(radius, int) or radius < 1:
        raise ValueError(f"the shift radius must be an integer ≥ 1, got {radius!r}.")
    if geometry == "circular":
        return shift_grid(grid, max_shift=radius, max_up=max_up)
    return crop_grid(grid, radius, max_up)


def shifted_frames(images: torch.Tensor, shifts: torch.Tensor, geometry: str, crop: int):
    """(N, C, H, W) -> (N, S, C, h, w): circular shifts of the images, or the centred
    ``crop``-px window of the shifted images (crop geometry)."""
    if geometry == "circular":
        return shift_images(images, shifts)
    h, w = images.shape[-2:]
    top, left = (h - crop) // 2, (w - crop) // 2
    whole = torch.equal(shifts, shifts.round())
    if whole:  # crops at other offsets: exact, nothing resampled
        s = shifts.round().long()
        rows = (top - s[:, 1, None] + torch.arange(crop)).to(images.device)  # (S, crop)
        cols = (left - s[:, 0, None] + torch.arange(crop)).to(images.device)
        frames = images.permute(0, 2, 3, 1)[:, rows[:, :, None], cols[:, None, :]]
        return frames.permute(0, 1, 4, 2, 3).contiguous()
    moved = fourier_shift(images, shifts)  # (N, S, C, H, W), periodic over the larger image
    return moved[..., top : top + crop, left : left + crop].contiguous()


@torch.no_grad()
def _predict(model, frames, preprocess, device, batch_size=256) -> torch.Tensor:
    """(n, C, h, w) -> (n,) top-1 classes."""
    out = []
    for i in range(0, frames.shape[0], batch_size):
        x = frames[i : i + batch_size].to(device)
        if preprocess is not None:
            x = preprocess(x)
        out.append(class_scores(run_checked(model, x)).argmax(-1).cpu())
    return torch.cat(out)


@torch.no_grad()
def shift_robust_accuracy(
    model: nn.Module,
    images,
    labels: torch.Tensor,
    grid: str = "integer",
    *,
    geometry: str = "circular",
    radius: int = 32,
    max_up: int = 4,
    crop: int | None = None,
    preprocess=None,
    progress: bool = False,
    chunk_images: int = 256,
) -> dict:
    """Accuracy under the worst shift of ``grid`` (Michaeli et al.'s shift-robust score).

    Args:
        images: (N, C, H, W) in [0, 1], or a stream (:class:`~defstab.data.stream.
            DatasetImages`); for the crop geometry, H and W ≥ ``crop`` + 2·``radius``.
        labels: (N,) true classes.
        grid: "integer", "half", "fraction" (1/u of a pixel for u up to ``max_up``) or
            "full" (integer and half).
        radius: circular: the integer grid's R (rolls 1…R−1; their default 32);
            crop: shifts −R … R − 1.

    Returns:
        ``{"grid", "geometry", "radius", "max_up", "shifts", "images", "accuracy" (clean),
        "robust_accuracy", "robust" ((N,) bool), "first_failure" ((N, 2) the first shift
        of the grid's order that misclassifies, NaN where none does), "items"}``.
    """
    from defstab.data.stream import TensorImages

    shifts = grid_shifts(grid, geometry, radius, max_up)
    source = images if hasattr(images, "batches") else TensorImages(images)
    channels, h, w = source.image_shape
    if geometry == "circular":
        if radius > min(h, w):
            raise ValueError(
                f"circular shifts up to {radius - 1} px wrap {h}×{w} px images more than "
                f"once; choose a radius ≤ {min(h, w)}."
            )
        crop = None
    else:
        crop = crop or min(h, w) - 2 * radius
        if crop < 2 or crop + 2 * radius > min(h, w):
            raise ValueError(
                f"crops of {crop} px shifted by up to ±{radius} px need images of at least "
                f"{crop + 2 * radius} px; these are {h}×{w}."
            )
    device, _ = model_device_dtype(model)
    side = crop or h
    per_chunk = max(1, FRAME_BUDGET // max(1, chunk_images * channels * side * side))
    chunks = source.batches(None, chunk_images)
    if progress:
        from defstab.progress import progress as progress_bar

        chunks = progress_bar(chunks, total=-(-len(source) // chunk_images),
                              desc=f"worst {grid} shift", unit="chunk", leave=False)  # fmt: skip
    robust, clean, failure, items = [], [], [], []
    with evaluation_mode(model):
        for positions, x in chunks:
            y = labels[positions]
            reference = (
                x if crop is None else shifted_frames(x, torch.zeros(1, 2), "crop", crop)[:, 0]
            )
            ok = _predict(model, reference, preprocess, device) == y  # (b,)
            first = torch.full((x.shape[0], 2), float("nan"), dtype=torch.float64)
            alive = ok.clone()
            for start in range(0, shifts.shape[0], per_chunk):
                part = shifts[start : start + per_chunk]
                frames = shifted_frames(x, part, geometry, crop)  # (b, s, C, h, w)
                b, s = frames.shape[:2]
                right = (_predict(model, frames.flatten(0, 1), preprocess, device).view(b, s)
                         == y[:, None])  # fmt: skip
                wrong = ~right
                # the first misclassifying shift of the grid's order, for images still robust
                newly = alive & wrong.any(1)
                first[newly] = part[wrong[newly].float().argmax(1)].double()
                alive &= right.all(1)
            robust.append(alive)
            clean.append(ok)
            failure.append(first)
            items.append(positions)
    robust, clean = torch.cat(robust), torch.cat(clean)
    return {
        "grid": grid,
        "geometry": geometry,
        "radius": radius,
        "max_up": max_up,
        "shifts": shifts.shape[0],
        "images": robust.shape[0],
        "accuracy": float(clean.float().mean()),
        "robust_accuracy": float(robust.float().mean()),
        "correct": clean,
        "robust": robust,
        "first_failure": torch.cat(failure),
        "items": torch.cat(items),
    }
