"""The registered networks: ``vgg_{cifar,imagenet}_{downsampling type}``."""

from __future__ import annotations

from defstab.models.downsample import DOWNSAMPLERS
from defstab.models.registry import register_model
from defstab.models.vgg import CIFAR_BLOCKS, IMAGENET_BLOCKS, build_vgg


def _make(family: str, downsample: str):
    blocks, classes, size = {
        "cifar": (CIFAR_BLOCKS, 10, 32),
        "imagenet": (IMAGENET_BLOCKS, 1000, 224),
    }[family]

    def factory(*, num_classes: int = classes, **kwargs):
        return build_vgg(blocks, downsample, num_classes=num_classes, input_size=size, **kwargs)

    factory.__name__ = f"vgg_{family}_{downsample}"
    factory.__doc__ = (
        f"Ruderman's {family} VGG ({' '.join(f'{n}x{c}' for n, c in blocks)}) with "
        f"{downsample} downsampling. Keywords: num_classes, in_channels, width, init, "
        "smooth_sigma, generator, seed."
    )
    return register_model(factory)


for _family in ("cifar", "imagenet"):
    for _kind in DOWNSAMPLERS:
        _make(_family, _kind)
