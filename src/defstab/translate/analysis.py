"""Run a protocol through a classifier: per-image, per-step tables and the summary."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from defstab.models.outputs import class_scores
from defstab.tap import evaluation_mode, model_device_dtype, run_checked
from defstab.translate import measures
from defstab.translate.protocols import (
    crop_path,
    embed_path,
    pad_shift_path,
    random_offset_pairs,
    scale_path,
    subpixel_path,
)

PROTOCOLS = ("embed", "inpaint", "crop", "scale", "subpixel", "pad-shift", "random-pairs")
#: protocols whose consecutive frames are one pixel (or one step) apart
PATH_PROTOCOLS = PROTOCOLS[:6]


@dataclass
class PathResult:
    """Outputs of a classifier along every image's path.

    Attributes:
        protocol: name of the protocol.
        probs: (N, S, K) softmax probabilities.
        labels: (N,) true classes (or None).
        geometry: (S, 2) positions/offsets/shifts, (S,) sizes, or (N, S, 2) offsets
            per image (random-pairs).
    """

    protocol: str
    probs: torch.Tensor
    labels: torch.Tensor | None
    geometry: torch.Tensor
    object_size: int | None = None

    def summary(self) -> dict:
        row = {"protocol": self.protocol}
        if self.object_size is not None:
            row["object_size"] = self.object_size
        if self.protocol not in PATH_PROTOCOLS:
            # two random offsets, not one step: only consistency (and accuracy) mean anything
            out = {"consistency": measures.consistency(self.probs), "images": self.n_images}
            if self.labels is not None:
                out["accuracy"] = float(
                    measures.accuracy_along_path(self.probs, self.labels).mean()
                )
            return row | out
        return row | measures.summarize(self.probs, self.labels)

    @property
    def n_images(self) -> int:
        return self.probs.shape[0]

    def per_step_rows(self, image_ids=None) -> list[dict]:
        t = self.probs.argmax(-1)
        rows = []
        n, s, _ = self.probs.shape
        for i in range(n):
            for k in range(s):
                g = (self.geometry[i, k] if self.geometry.ndim == 3 else self.geometry[k]).tolist()
                row = {
                    "protocol": self.protocol,
                    "image": int(image_ids[i]) if image_ids is not None else i,
                    "step": k,
                    "geometry": g if isinstance(g, float | int) else "x".join(map(str, g)),
                    "top1": int(t[i, k]),
                    "p_top1": float(self.probs[i, k, t[i, k]]),
                }
                if self.labels is not None:
                    y = int(self.labels[i])
                    row |= {
                        "label": y,
                        "p_true": float(self.probs[i, k, y]),
                        "correct": int(t[i, k] == y),
                        "in_top5": int(
                            y in self.probs[i, k].topk(min(5, self.probs.shape[-1])).indices
                        ),
                    }
                rows.append(row)
        return rows


@torch.no_grad()
def classify_frames(
    model: nn.Module,
    frames: torch.Tensor,
    preprocess=None,
    batch_size: int = 64,
    progress: bool = False,
) -> torch.Tensor:
    """Softmax outputs for frames (N, S, C, H, W) -> (N, S, K), eval mode, mode restored."""
    n, s = frames.shape[:2]
    flat = frames.reshape(n * s, *frames.shape[2:])
    device, _ = model_device_dtype(model)
    outs = []
    starts = range(0, flat.shape[0], batch_size)
    if progress:
        from defstab.progress import progress

        starts = progress(starts, desc="classifying frames", unit="batch", leave=False)
    with evaluation_mode(model):
        for i in starts:
            x = flat[i : i + batch_size].to(device)
            if preprocess is not None:
                x = preprocess(x)
            outs.append(class_scores(run_checked(model, x)).float().softmax(-1).cpu())
    return torch.cat(outs).reshape(n, s, -1)


def make_frames(
    protocol: str,
    images: torch.Tensor,
    steps: int,
    *,
    canvas: int,
    object_size: int | None = None,
    crop: int | None = None,
    direction: str = "horizontal",
    subpixel_step: float = 0.25,
    background: str = "black",
    fill=None,
    start=None,
    window: int = 32,
    per_batch: int | None = None,
    generator: torch.Generator | None = None,
):
    """Frames and geometry for ``protocol`` (see :mod:`defstab.translate.protocols`).

    ``background``/``fill`` apply to embed, ``start`` to embed and crop, ``window``,
    ``per_batch`` and ``generator`` to random-pairs (Zhang's two random offsets).
    """
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; choose from {', '.join(PROTOCOLS)}.")
    if protocol in ("embed", "inpaint"):
        return embed_path(
            images,
            object_size or canvas // 2,
            canvas,
            steps,
            direction,
            background="inpaint" if protocol == "inpaint" else background,
            start=start,
            fill=fill,
        )
    if protocol == "crop":
        return crop_path(images, crop or canvas, steps, direction, start=start)
    if protocol == "scale":
        return scale_path(images, canvas, object_size or canvas // 2, steps)
    if protocol == "pad-shift":
        return pad_shift_path(images, steps, direction)
    if protocol == "random-pairs":
        return random_offset_pairs(images, crop or canvas, window, generator, per_batch)
    return subpixel_path(images, subpixel_step, steps, direction)


def run_protocol(
    model,
    images,
    labels,
    protocol: str,
    steps: int,
    preprocess=None,
    progress: bool = False,
    **geometry,
):
    """Frames of ``protocol`` through ``model``; ``geometry`` as for :func:`make_frames`.

    The "mean" background defaults to the colour that ``preprocess`` maps to zero (its
    ``mean`` buffer), which is what Azulay & Weiss paste; black without one.
    """
    if geometry.get("background") == "mean" and geometry.get("fill") is None:
        geometry["fill"] = normalisation_mean(preprocess, images.shape[1])
    frames, geom = make_frames(protocol, images, steps, **geometry)
    probs = classify_frames(model, frames, preprocess, progress=progress)
    size = geometry.get("object_size") if protocol in ("embed", "inpaint", "scale") else None
    return PathResult(protocol, probs, labels, geom, size)


@torch.no_grad()
def worst_shift(
    model: nn.Module,
    images: torch.Tensor,
    crop: int,
    max_shift: int,
    preprocess=None,
    progress: bool = False,
) -> dict:
    """Every integer shift within ±``max_shift`` px of the centred crop, exhaustively: the
    fraction of images for which *some* shift changes the top-1 class (worst case), beside
    the fraction of single shifts that do (average case).

    Returns:
        ``{"protocol": "worst-shift", "max_shift", "crop", "images", "shifts",
        "fraction_flipped", "p_top1_change_per_shift", "flipped" ((N,) bool),
        "worst" ((N, 2) the shift (dx, dy) with the lowest probability of the unshifted
        top-1 class)}``.
    """
    from defstab.translate.protocols import all_shifts

    frames, shifts = all_shifts(images, crop, max_shift)
    probs = classify_frames(model, frames, preprocess, progress=progress)  # (N, S, K)
    centre = shifts.shape[0] // 2
    top = probs.argmax(-1)
    ref = top[:, centre]
    changed = top != ref[:, None]  # (N, S); the centre never changes
    kept = probs.gather(-1, ref.view(-1, 1, 1).expand(-1, probs.shape[1], 1)).squeeze(-1)
    return {
        "protocol": "worst-shift",
        "max_shift": max_shift,
        "crop": crop,
        "images": images.shape[0],
        "shifts": shifts.shape[0] - 1,
        "fraction_flipped": float(changed.any(1).float().mean()),
        "p_top1_change_per_shift": float(changed.sum(1).float().mean() / (shifts.shape[0] - 1)),
        "flipped": changed.any(1),
        "worst": shifts[kept.argmin(1)],
    }


def normalisation_mean(preprocess, channels: int) -> torch.Tensor:
    """(C,) the pixel colour ``preprocess`` maps to zero: its ``mean`` buffer, else 0."""
    mean = getattr(preprocess, "mean", None)
    if not isinstance(mean, torch.Tensor):
        return torch.zeros(channels)
    mean = mean.detach().flatten().cpu()
    return mean.expand(channels) if mean.numel() == 1 else mean
