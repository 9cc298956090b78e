"""The request of the rotation-and-translation accuracy protocol (``defstab spatial``):
Engstrom et al. 2019's natural, random, worst-of-10 and exhaustive-grid accuracy."""

from __future__ import annotations

from dataclasses import dataclass

from defstab.requests.fields import option


@dataclass
class SpatialRequest:
    """What ``defstab spatial`` measures (every field is one of its options)."""

    images: int = option(64, help="number of images (default 64)")
    preset: str | None = option(
        choices=("engstrom-cifar", "engstrom-imagenet"),
        help="engstrom-cifar (±30°, ±3 px, 16-px zero padding, rotate then translate; their "
        "TensorFlow code) or engstrom-imagenet (±30°, ±3/28 of the side: 24 px at 224, one "
        "resampling; their PyTorch code); default: cifar up to 64 px, imagenet above",
    )
    seed: int = option(0, help="images drawn and random transforms")
