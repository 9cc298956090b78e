"""The registered networks: ``vgg_{cifar,imagenet}_{downsampling type}``.

Blur-pool variants with another filter size (Zhang 2019's 1…7 taps) are resolved by name,
not listed: ``vgg_cifar_blurpool5``, ``vgg_imagenet_maxblurpool3``.
"""

from __future__ import annotations

from defstab.models.architectures import DOWNSAMPLING, FAMILIES, parse_name
from defstab.models.registry import register_model, register_resolver
from defstab.models.vgg import build_vgg


def _factory(family: str, downsample: str):
    blocks, classes, size = FAMILIES[family]

    def factory(*, num_classes: int = classes, **kwargs):
        return build_vgg(blocks, downsample, num_classes=num_classes, input_size=size, **kwargs)

    factory.__name__ = f"vgg_{family}_{downsample}"
    factory.__doc__ = (
        f"Ruderman's {family} VGG ({' '.join(f'{n}x{c}' for n, c in blocks)}) with "
        f"{downsample} downsampling. Keywords: num_classes, in_channels, width, init, "
        "smooth_sigma, padding (zeros or circular), generator, seed."
    )
    return factory


def _sized_variant(name: str):
    """``vgg_cifar_blurpool5`` and the like: a factory, or None for other names."""
    parsed = parse_name(name)
    return None if parsed is None else _factory(*parsed)


for _family in FAMILIES:
    for _kind in DOWNSAMPLING:
        register_model(_factory(_family, _kind))
register_resolver(_sized_variant)
