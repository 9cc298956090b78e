"""Run a protocol through a classifier: per-image, per-step tables and the summary."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from defstab.models.outputs import class_scores
from defstab.tap import evaluation_mode, model_device_dtype, run_checked
from defstab.translate import measures
from defstab.translate.protocols import (
    centre_crop,
    circular_pairs,
    circular_path,
    crop_path,
    draw_offset_pairs,
    embed_path,
    fractional_path,
    pad_shift_path,
    random_offset_pairs,
    scale_path,
    subpixel_path,
)

#: protocols whose consecutive frames are one pixel (or one step) apart
PATH_PROTOCOLS = ("embed", "inpaint", "crop", "scale", "subpixel", "pad-shift", "circular",
                  "fractional")  # fmt: skip
#: protocols of two frames per image at random shifts: only consistency (and accuracy)
PAIR_PROTOCOLS = ("random-pairs", "circular-pairs")
PROTOCOLS = PATH_PROTOCOLS + PAIR_PROTOCOLS
#: protocols that shift the whole (centred canvas-px crop of the) image with wrap-around
WHOLE_IMAGE_PROTOCOLS = ("circular", "fractional", "circular-pairs")


@dataclass
class PathResult:
    """Outputs of a classifier along every image's path.

    Attributes:
        protocol: name of the protocol.
        steps: what the measures read of the (N, S, K) softmax probabilities, per image
            and step (:class:`~defstab.translate.measures.Steps`).
        labels: (N,) true classes (or None).
        geometry: (S, 2) positions/offsets/shifts, (S,) sizes, or (N, S, 2) offsets
            or shifts per image (random-pairs, circular-pairs).
        items: positions of the measured images in the input (all of them unless a
            stream skipped unreadable files).
    """

    protocol: str
    steps: measures.Steps
    labels: torch.Tensor | None
    geometry: torch.Tensor
    object_size: int | None = None
    items: torch.Tensor | None = None  # (N,) positions in the input of the images measured

    def summary(self) -> dict:
        row = {"protocol": self.protocol}
        if self.object_size is not None:
            row["object_size"] = self.object_size
        if self.protocol not in PATH_PROTOCOLS:
            # two random offsets, not one step: only consistency (and accuracy) mean anything
            out = {"consistency": measures.consistency(self.steps), "images": self.n_images}
            if self.labels is not None:
                out["accuracy"] = float(
                    measures.accuracy_along_path(self.steps, self.labels).mean()
                )
                out |= measures.consistency_by_correctness(self.steps, self.labels)
            return row | out
        return row | measures.summarize(self.steps, self.labels)

    @property
    def n_images(self) -> int:
        return self.steps.shape[0]

    def per_step_rows(self, image_ids=None) -> list[dict]:
        """One dict per (image, step); :meth:`iter_per_step` streams the same rows."""
        return list(self.iter_per_step(image_ids))

    def iter_per_step(self, image_ids=None, extra: dict | None = None):
        """Rows of per_step.csv one by one (a 50,000-image run has millions)."""
        st = self.steps
        n, s = st.shape
        items = self.items.tolist() if self.items is not None else list(range(n))
        ids = [int(image_ids[i]) for i in items] if image_ids is not None else items
        columns = {"top1": st.top1.tolist(), "p_top1": st.p_top1.tolist()}
        if self.labels is not None:
            labels = self.labels.tolist()
            columns |= {"p_true": st.p_true.tolist(), "in_top5": st.in_top5.tolist()}
        geometry = self.geometry.tolist()
        for i in range(n):
            for k in range(s):
                g = geometry[i][k] if self.geometry.ndim == 3 else geometry[k]
                top = columns["top1"][i][k]
                row = {
                    "protocol": self.protocol,
                    "image": int(ids[i]),
                    "step": k,
                    "geometry": g if isinstance(g, float | int) else "x".join(map(str, g)),
                    "top1": top,
                    "p_top1": columns["p_top1"][i][k],
                }
                if self.labels is not None:
                    y = labels[i]
                    row |= {
                        "label": y,
                        "p_true": columns["p_true"][i][k],
                        "correct": int(top == y),
                        "in_top5": int(columns["in_top5"][i][k]),
                    }
                yield row | (extra or {})


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
    fraction: int = 2,
    background: str = "black",
    fill=None,
    start=None,
    window: int = 32,
    per_batch: int | None = None,
    generator: torch.Generator | None = None,
    offsets: torch.Tensor | None = None,
):
    """Frames and geometry for ``protocol`` (see :mod:`defstab.translate.protocols`).

    ``background``/``fill`` apply to embed, ``start`` to embed and crop, ``window``,
    ``per_batch`` and ``generator`` to random-pairs (Zhang's two random offsets) and
    circular-pairs (Chaman & Dokmanić's two random circular shifts), or ``offsets``
    (N, 2, 2) drawn before (:func:`draw_offset_pairs`); ``fraction`` (m: steps of 1/m px)
    to fractional.
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
        return random_offset_pairs(images, crop or canvas, window, generator, per_batch, offsets)
    if protocol in WHOLE_IMAGE_PROTOCOLS:  # the centred canvas-px crop, wrapped around
        images = centre_crop(images, canvas)
    if protocol == "circular":
        return circular_path(images, steps, direction)
    if protocol == "fractional":
        return fractional_path(images, steps, fraction, direction)
    if protocol == "circular-pairs":
        return circular_pairs(images, window, generator, per_batch, offsets)
    return subpixel_path(images, subpixel_step, steps, direction)


#: Images whose frames are made and classified together: the frames of one chunk are in
#: memory at once, never those of the whole set.
CHUNK_IMAGES = 256


def run_protocol(
    model,
    images,
    labels,
    protocol: str,
    steps: int,
    preprocess=None,
    progress: bool = False,
    chunk_images: int = CHUNK_IMAGES,
    **geometry,
):
    """Frames of ``protocol`` through ``model``; ``geometry`` as for :func:`make_frames`.

    ``images``: (N, C, H, W), or a stream (:class:`~defstab.data.stream.DatasetImages`)
    read chunk by chunk. Frames are made and classified ``chunk_images`` images at a
    time and reduced to :class:`~defstab.translate.measures.Steps` at once, so memory
    does not grow with N beyond those (N, S) numbers. Random-pairs offsets are drawn for
    all N images first, so the chunking never changes them.

    The "mean" background defaults to the colour that ``preprocess`` maps to zero (its
    ``mean`` buffer), which is what Azulay & Weiss paste; black without one.
    """
    from defstab.data.stream import TensorImages

    source = images if hasattr(images, "batches") else TensorImages(images)
    n = len(source)
    if geometry.get("background") == "mean" and geometry.get("fill") is None:
        geometry["fill"] = normalisation_mean(preprocess, source.image_shape[0])
    if protocol in PAIR_PROTOCOLS:
        geometry["offsets"] = draw_offset_pairs(
            n, geometry.get("window", 32), geometry.pop("generator", None),
            geometry.pop("per_batch", None),
        )  # fmt: skip
    chunks = source.batches(None, chunk_images)
    if progress:
        from defstab.progress import progress as progress_bar

        chunks = progress_bar(chunks, total=-(-n // chunk_images), desc=f"{protocol} frames",
                              unit="chunk", leave=False)  # fmt: skip
    parts, geom, items = [], None, []
    for positions, x in chunks:
        items.append(positions)
        chunk_geometry = dict(geometry)
        if protocol in PAIR_PROTOCOLS:
            chunk_geometry["offsets"] = geometry["offsets"][positions]
        frames, geom_chunk = make_frames(protocol, x, steps, **chunk_geometry)
        probs = classify_frames(model, frames, preprocess)
        chunk_labels = labels[positions] if labels is not None else None
        parts.append(measures.Steps.from_probs(probs, chunk_labels))
        geom = geom_chunk if geom is None or geom_chunk.ndim < 3 else torch.cat([geom, geom_chunk])
    size = geometry.get("object_size") if protocol in ("embed", "inpaint", "scale") else None
    items = torch.cat(items)
    kept = labels[items] if labels is not None else None
    return PathResult(protocol, measures.Steps.cat(parts), kept, geom, size, items)


@torch.no_grad()
def worst_shift(
    model: nn.Module,
    images,
    crop: int,
    max_shift: int,
    preprocess=None,
    progress: bool = False,
    chunk_images: int = CHUNK_IMAGES,
) -> dict:
    """Every integer shift within ±``max_shift`` px of the centred crop, exhaustively: the
    fraction of images for which *some* shift changes the top-1 class (worst case), beside
    the fraction of single shifts that do (average case).

    Returns:
        ``{"protocol": "worst-shift", "max_shift", "crop", "images", "shifts",
        "fraction_flipped", "p_top1_change_per_shift", "flipped" ((N,) bool),
        "worst" ((N, 2) the shift (dx, dy) with the lowest probability of the unshifted
        top-1 class), "items" ((N,) positions of the images in the input)}``.
    """
    from defstab.data.stream import TensorImages
    from defstab.translate.protocols import all_shifts

    source = images if hasattr(images, "batches") else TensorImages(images)
    chunks = source.batches(None, chunk_images)
    if progress:
        from defstab.progress import progress as progress_bar

        chunks = progress_bar(chunks, total=-(-len(source) // chunk_images),
                              desc="worst shift", unit="chunk", leave=False)  # fmt: skip
    changed, kept, items = [], [], []
    for positions, x in chunks:  # the (b, S) frames of one chunk at a time
        frames, shifts = all_shifts(x, crop, max_shift)
        probs = classify_frames(model, frames, preprocess)  # (b, S, K)
        centre = shifts.shape[0] // 2
        top = probs.argmax(-1)
        ref = top[:, centre]
        changed.append(top != ref[:, None])  # (b, S); the centre never changes
        kept.append(probs.gather(-1, ref.view(-1, 1, 1).expand(-1, probs.shape[1], 1))[..., 0])
        items.append(positions)
    changed, kept = torch.cat(changed), torch.cat(kept)
    return {
        "protocol": "worst-shift",
        "max_shift": max_shift,
        "crop": crop,
        "images": changed.shape[0],
        "shifts": shifts.shape[0] - 1,
        "fraction_flipped": float(changed.any(1).float().mean()),
        "p_top1_change_per_shift": float(changed.sum(1).float().mean() / (shifts.shape[0] - 1)),
        "flipped": changed.any(1),
        "worst": shifts[kept.argmin(1)],
        "items": torch.cat(items),
    }


def normalisation_mean(preprocess, channels: int) -> torch.Tensor:
    """(C,) the pixel colour ``preprocess`` maps to zero: its ``mean`` buffer, else 0."""
    mean = getattr(preprocess, "mean", None)
    if not isinstance(mean, torch.Tensor):
        return torch.zeros(channels)
    mean = mean.detach().flatten().cpu()
    return mean.expand(channels) if mean.numel() == 1 else mean
