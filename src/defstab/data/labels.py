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


def with_shuffled_pixels(data: ImageDataset, seed: int) -> ImageDataset:
    """A copy of ``data`` whose images have their pixel positions shuffled, each image by
    its own seeded permutation (all channels of a pixel move together), labels kept: the
    input distribution P(X) is destroyed, each image's colour histogram is not (the
    "shuffled pixels" control of Zhang et al. 2016).

    Args:
        data: images held in memory (``data.pixels``, (N, C, H, W)).
    """
    if data.pixels is None:
        raise ValueError("shuffling pixels needs images in memory (decode them first).")
    n, c, h, w = data.pixels.shape
    gen = torch.Generator().manual_seed(seed)
    order = torch.rand(n, h * w, generator=gen).argsort(dim=1)  # (N, H·W)
    flat = data.pixels.reshape(n, c, h * w)
    shuffled = flat.gather(2, order[:, None, :].expand(n, c, h * w)).reshape(n, c, h, w)
    return ImageDataset(
        data.labels,
        data.classes,
        f"{data.name}+shuffled-pixels(seed={seed})",
        pixels=shuffled,
        image_size=data.image_size,
    )
