"""Per-channel mean/std normalisation applied after deforming, before the model.

Defaults: torchvision and timm models expect ImageNet statistics; registry models take
the statistics of the data set (CIFAR-10, MNIST, ImageNet for folders); tensor files get
none. ``--normalize NAME`` overrides this.
"""

from __future__ import annotations

import torch

STATS: dict[str, tuple[tuple[float, ...], tuple[float, ...]] | None] = {
    "imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "mnist": ((0.1307,), (0.3081,)),
    "none": None,
}


class Normalize(torch.nn.Module):
    """(x − mean) / std per channel: (N, C, H, W) → (N, C, H, W)."""

    def __init__(self, mean, std) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean.to(x)) / self.std.to(x)


def default_normalization(model_family: str, data) -> str:
    """Statistics a model expects: ImageNet's for torchvision/timm models, the data set's
    for registry models (``data``: a DATA string or :class:`~defstab.data.spec.DataSpec`)."""
    from defstab.data.spec import DataSpec

    if model_family in ("torchvision", "timm"):
        return "imagenet"
    return DataSpec.parse(data).normalization


def make_normalize(name, channels: int) -> Normalize | None:
    """The normalisation called ``name`` (a :data:`STATS` key), or given as
    ``{"mean": [...], "std": [...]}`` (a model's own statistics); None for "none"."""
    if isinstance(name, dict):
        mean, std = tuple(name["mean"]), tuple(name["std"])
        name = "the model's"
    elif name not in STATS:
        raise ValueError(f"--normalize must be one of {sorted(STATS)}, got {name!r}.")
    else:
        stats = STATS[name]
        if stats is None:
            return None
        mean, std = stats
    if len(mean) == 1 and channels > 1:
        mean, std = mean * channels, std * channels
    if len(mean) != channels:
        raise ValueError(
            f"{name} statistics are for {len(mean)} channels, the images have {channels}."
        )
    return Normalize(mean, std)
