"""Random labels (Zhang et al. 2016): uniform labels fixed by a seed, same every epoch."""

from __future__ import annotations

import torch

from defstab.data.sources import ImageDataset


def with_random_labels(data: ImageDataset, seed: int) -> ImageDataset:
    """A copy of ``data`` whose labels are i.i.d. uniform over its classes (seeded)."""
    gen = torch.Generator().manual_seed(seed)
    labels = torch.randint(len(data.classes), (len(data),), generator=gen)
    return ImageDataset(
        labels,
        data.classes,
        f"{data.name}+random-labels(seed={seed})",
        pixels=data.pixels,
        paths=data.paths,
        image_size=data.image_size,
    )
