"""Accuracy under rotations and translations as Engstrom et al. 2019 measure it
("Exploring the landscape of spatial robustness"; MadryLab/spatial-pytorch and
adversarial_spatial): natural, under one random transform, under the worst of k random
transforms, and under the worst of an exhaustive grid.

Two presets, from their code (SPEC §8.6):

* ``engstrom-imagenet`` (PyTorch): rotations within ±30°, translations within ±3/28 of
  the image (24 px at 224); one bilinear ``grid_sample`` (zero padding, the output mesh
  linspace(−1, 1) mapped by [[cos r, −sin r, 2t_x], [sin r, cos r, 2t_y]]), clamped to
  [0, 1]; worst-of-10 keeps the clean image as a candidate (their ``use_best``);
* ``engstrom-cifar`` (TensorFlow): ±30°, ±3 px; the image zero-padded by 16 px, rotated,
  then translated (two bilinear resamplings), centre-cropped back; worst-of-10 without the
  clean image.

Both grids: 31 angles (2° apart) × 5 × 5 translations = 775 transforms, in product order
(angle outer, then t_x, then t_y). A transform is (angle in degrees, t_x px, t_y px);
positive t moves the content right / down; the angle enters their matrix as written (the
ranges are symmetric, so its sense does not change a result). Images must be square, as
their code assumes.
The worst of k keeps, per image, the candidate with the largest cross-entropy; the grid
counts an image correct only when every transform leaves it correct.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

from defstab._validate import check_images


@dataclass(frozen=True)
class SpatialPreset:
    """Ranges, grid and resampling of one of Engstrom et al.'s evaluations.

    Attributes:
        rotation: the largest angle, degrees.
        translation: the largest shift in pixels, or None for ``translation_fraction``
            of the image side.
        grid: (angles, x shifts, y shifts) of the exhaustive grid.
        tries: random draws of the worst-of-k.
        pad: zero padding before the transform, cropped after (TensorFlow's 16 px).
        two_step: rotate, then translate, as two resamplings (TensorFlow) instead of one.
        clean_candidate: the untransformed image competes in the worst-of-k (PyTorch).
    """

    name: str
    rotation: float = 30.0
    translation: float | None = None
    translation_fraction: float = 3 / 28
    grid: tuple[int, int, int] = (31, 5, 5)
    tries: int = 10
    pad: int = 0
    two_step: bool = False
    clean_candidate: bool = True

    def max_shift(self, size: int) -> float:
        return (
            self.translation if self.translation is not None else self.translation_fraction * size
        )

    def record(self) -> dict:
        return asdict(self)


SPATIAL_PRESETS = {
    "engstrom-imagenet": SpatialPreset("engstrom-imagenet"),
    "engstrom-cifar": SpatialPreset(
        "engstrom-cifar", translation=3.0, pad=16, two_step=True, clean_candidate=False
    ),  # fmt: skip
}


def get_spatial_preset(name: str) -> SpatialPreset:
    if name not in SPATIAL_PRESETS:
        raise ValueError(
            f"unknown spatial preset {name!r}; choose from {', '.join(SPATIAL_PRESETS)}."
        )
    return SPATIAL_PRESETS[name]


def spatial_grid(preset: SpatialPreset, size: int) -> torch.Tensor:
    """(S, 3) (angle°, t_x px, t_y px) of the exhaustive grid, angle outer."""
    n_rot, n_x, n_y = preset.grid
    if min(n_rot, n_x, n_y) < 1:
        raise ValueError(f"a spatial grid needs at least one value per axis, got {preset.grid}.")
    limit = preset.max_shift(size)
    angles, xs, ys = (
        _symmetric(preset.rotation, n_rot),
        _symmetric(limit, n_x),
        _symmetric(limit, n_y),
    )
    return torch.cartesian_prod(angles, xs, ys)


def _symmetric(limit: float, count: int) -> torch.Tensor:
    """``count`` values evenly from −limit to limit (just 0 for one)."""
    if count == 1:
        return torch.zeros(1, dtype=torch.float64)
    return torch.linspace(-limit, limit, count, dtype=torch.float64)


def random_transforms(
    n: int, k: int, preset: SpatialPreset, size: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """(n, k, 3) transforms, each coordinate uniform within the preset's ranges."""
    u = torch.rand((n, k, 3), generator=generator, dtype=torch.float64) * 2 - 1
    scale = torch.tensor([preset.rotation, preset.max_shift(size), preset.max_shift(size)],
                         dtype=torch.float64)  # fmt: skip
    return u * scale


def _theta(angles_deg: torch.Tensor, tx: torch.Tensor, ty: torch.Tensor, size: int):
    """(M, 2, 3) output → input maps on align_corners=True coordinates: their
    [[cos r, −sin r, 2t_x], [sin r, cos r, 2t_y]] with t a fraction of the side, the
    content moving by +t px (so the input is read at −t)."""
    r = angles_deg * (math.pi / 180)
    scale = 2 / (size - 1)  # pixels to [−1, 1] with align_corners=True
    cos, sin = torch.cos(r), torch.sin(r)
    return torch.stack(
        [torch.stack([cos, -sin, -tx * scale], -1), torch.stack([sin, cos, -ty * scale], -1)],
        dim=-2,
    )


def transform_fields(transforms: torch.Tensor, preset: SpatialPreset, size: int) -> torch.Tensor:
    """(N, 3) transforms (angle °, dx, dy) -> (N, size, size, 2) output → input
    displacements in pixels (output pixel p reads the input at p + u(p)), as
    :func:`apply_transforms` resamples: rotation about the centre c, then the shift —
    q = c + R(p − c) − t in one step, q = c + R(p − t − c) in TensorFlow's two."""
    t = transforms.double()
    r = t[:, 0] * (math.pi / 180)
    cos, sin = torch.cos(r)[:, None, None], torch.sin(r)[:, None, None]
    ys, xs = torch.meshgrid(torch.arange(size, dtype=torch.float64),
                            torch.arange(size, dtype=torch.float64), indexing="ij")  # fmt: skip
    c = (size - 1) / 2
    dx, dy = t[:, 1, None, None], t[:, 2, None, None]
    if preset.two_step:
        px, py = xs - dx - c, ys - dy - c
        qx, qy = c + cos * px - sin * py, c + sin * px + cos * py
    else:
        px, py = xs - c, ys - c
        qx, qy = c + cos * px - sin * py - dx, c + sin * px + cos * py - dy
    return torch.stack([qx - xs, qy - ys], dim=-1)


def _resample(images: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    grid = F.affine_grid(theta.to(images.dtype), list(images.shape), align_corners=True)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=True)


def apply_transforms(images: torch.Tensor, transforms: torch.Tensor, preset: SpatialPreset):
    """Every image under each of its transforms: (N, C, H, W), (N, S, 3) or (S, 3) ->
    (N, S, C, H, W), clamped to [0, 1]."""
    check_images(images)
    n, c, h, w = images.shape
    if h != w:
        raise ValueError(
            f"spatial transforms take square images (as Engstrom et al.'s code); got {w}×{h} px."
        )
    if transforms.ndim == 2:
        transforms = transforms.unsqueeze(0).expand(n, -1, -1)
    s = transforms.shape[1]
    flat = transforms.reshape(n * s, 3).to(images.device)
    x = images.unsqueeze(1).expand(n, s, c, h, w).reshape(n * s, c, h, w)
    p = preset.pad
    if p:
        x = F.pad(x, (p, p, p, p))
    side = x.shape[-1]
    zero = torch.zeros_like(flat[:, 0])
    if preset.two_step:
        x = _resample(x, _theta(flat[:, 0], zero, zero, side))
        x = _resample(x, _theta(zero, flat[:, 1], flat[:, 2], side))
    else:
        x = _resample(x, _theta(flat[:, 0], flat[:, 1], flat[:, 2], side))
    if p:
        x = x[..., p : p + h, p : p + w]
    return x.clamp(0, 1).reshape(n, s, c, h, w)


@torch.no_grad()
def _scores(model, frames: torch.Tensor, preprocess, batch_size: int = 256) -> torch.Tensor:
    """(M, C, H, W) -> (M, K) class scores, float32 on the CPU."""
    from defstab.models.outputs import class_scores
    from defstab.tap import model_device_dtype, run_checked

    device, _ = model_device_dtype(model)
    out = []
    for i in range(0, frames.shape[0], batch_size):
        x = frames[i : i + batch_size].to(device)
        out.append(
            class_scores(run_checked(model, preprocess(x) if preprocess else x)).float().cpu()
        )
    return torch.cat(out)


def _losses(scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """(b, m, K) scores, (b,) labels -> (b, m) cross-entropies."""
    b, m = scores.shape[:2]
    return F.cross_entropy(
        scores.flatten(0, 1), labels.repeat_interleave(m), reduction="none"
    ).view(b, m)


@torch.no_grad()
def spatial_accuracy(
    model,
    images: torch.Tensor,
    labels: torch.Tensor,
    preset: SpatialPreset,
    generator: torch.Generator | None = None,
    preprocess=None,
    chunk_images: int = 32,
) -> dict:
    """Accuracy natural, under one random transform, the worst of ``preset.tries`` random
    ones and the worst of the grid, batched over images and transforms.

    Args:
        images: (N, C, S, S) in [0, 1]; labels: (N,).

    Returns:
        ``{"natural", "random", "worst_of_k", "grid"}`` accuracies, ``"transforms"`` (the
        grid's size), and per image (N,) ``"correct_natural"``, ``"correct_random"``,
        ``"correct_worst_of_k"``, ``"correct_grid"`` and ``"worst"`` (N, 3): the grid
        transform with the largest cross-entropy.
    """
    from defstab.tap import evaluation_mode

    check_images(images)
    n, size = images.shape[0], images.shape[-1]
    grid = spatial_grid(preset, size)
    # all random draws first, so that chunking never changes them
    draws = random_transforms(n, 1 + preset.tries, preset, size, generator)
    out = {k: [] for k in ("natural", "random", "worst_of_k", "grid", "worst")}
    with evaluation_mode(model):
        for start in range(0, n, chunk_images):
            x, y = images[start : start + chunk_images], labels[start : start + chunk_images]
            b = x.shape[0]
            clean = _scores(model, x, preprocess)
            out["natural"].append(clean.argmax(-1) == y)
            moved = apply_transforms(x, draws[start : start + b], preset).flatten(0, 1)
            rand = _scores(model, moved, preprocess).view(b, 1 + preset.tries, -1)
            out["random"].append(rand[:, 0].argmax(-1) == y)
            candidates = rand[:, 1:]
            if preset.clean_candidate:
                candidates = torch.cat([clean[:, None], candidates], dim=1)
            pick = _losses(candidates, y).argmax(1)
            chosen = candidates[torch.arange(b), pick]
            out["worst_of_k"].append(chosen.argmax(-1) == y)
            right = torch.ones(b, dtype=torch.bool)
            worst_loss = torch.full((b,), -math.inf)
            worst = torch.zeros(b, 3, dtype=torch.float64)
            for g0 in range(0, grid.shape[0], 200):  # chunks of 200 transforms, as theirs
                part = grid[g0 : g0 + 200]
                scores = _scores(model, apply_transforms(x, part, preset).flatten(0, 1),
                                 preprocess).view(b, part.shape[0], -1)  # fmt: skip
                right &= (scores.argmax(-1) == y[:, None]).all(1)
                best, at = _losses(scores, y).max(1)
                better = best > worst_loss
                worst_loss = torch.where(better, best, worst_loss)
                worst[better] = part[at[better]]
            out["grid"].append(right)
            out["worst"].append(worst)
    per = {k: torch.cat(v) for k, v in out.items()}
    return {
        "natural": float(per["natural"].float().mean()),
        "random": float(per["random"].float().mean()),
        "worst_of_k": float(per["worst_of_k"].float().mean()),
        "grid": float(per["grid"].float().mean()),
        "transforms": grid.shape[0],
        "correct_natural": per["natural"],
        "correct_random": per["random"],
        "correct_worst_of_k": per["worst_of_k"],
        "correct_grid": per["grid"],
        "worst": per["worst"],
    }
