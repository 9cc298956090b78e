"""Run a protocol through a classifier: per-image, per-step tables and the summary."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from defstab.tap import evaluation_mode, model_device_dtype, run_checked
from defstab.translate import measures
from defstab.translate.protocols import crop_path, embed_path, scale_path, subpixel_path

PROTOCOLS = ("embed", "inpaint", "crop", "scale", "subpixel")


@dataclass
class PathResult:
    """Outputs of a classifier along every image's path.

    Attributes:
        protocol: name of the protocol.
        probs: (N, S, K) softmax probabilities.
        labels: (N,) true classes (or None).
        geometry: (S, 2) positions/offsets/shifts, or (S,) sizes.
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
        return row | measures.summarize(self.probs, self.labels)

    def per_step_rows(self, image_ids=None) -> list[dict]:
        t = self.probs.argmax(-1)
        rows = []
        n, s, _ = self.probs.shape
        for i in range(n):
            for k in range(s):
                g = self.geometry[k].tolist()
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
        from tqdm.auto import tqdm

        starts = tqdm(starts, desc="classifying frames", unit="batch", leave=False)
    with evaluation_mode(model):
        for i in starts:
            x = flat[i : i + batch_size].to(device)
            if preprocess is not None:
                x = preprocess(x)
            outs.append(run_checked(model, x).float().softmax(-1).cpu())
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
):
    """Frames and geometry for ``protocol`` (see :mod:`defstab.translate.protocols`)."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; choose from {', '.join(PROTOCOLS)}.")
    if protocol in ("embed", "inpaint"):
        return embed_path(
            images,
            object_size or canvas // 2,
            canvas,
            steps,
            direction,
            background="black" if protocol == "embed" else "inpaint",
        )
    if protocol == "crop":
        return crop_path(images, crop or canvas, steps, direction)
    if protocol == "scale":
        return scale_path(images, canvas, object_size or canvas // 2, steps)
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
    frames, geom = make_frames(protocol, images, steps, **geometry)
    probs = classify_frames(model, frames, preprocess, progress=progress)
    size = geometry.get("object_size") if protocol in ("embed", "inpaint", "scale") else None
    return PathResult(protocol, probs, labels, geom, size)
