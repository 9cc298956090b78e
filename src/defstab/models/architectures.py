"""The registry's networks as data, without torch: blocks, sizes, strides, and parameter and
FLOP counts in closed form.

``defstab models`` reads only this module, so listing the registry answers at once (torch
takes seconds to import); the tests check every number here against the built networks
(parameter count, a forward pass on the meta device, ``feature_info``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

CIFAR_BLOCKS: tuple[tuple[int, int], ...] = ((2, 32), (2, 64), (2, 128), (2, 256))
IMAGENET_BLOCKS: tuple[tuple[int, int], ...] = ((2, 64), (2, 128), (3, 256), (3, 512), (3, 512))

#: family -> (blocks, number of classes, native input size)
FAMILIES: dict[str, tuple[tuple[tuple[int, int], ...], int, int]] = {
    "cifar": (CIFAR_BLOCKS, 10, 32),
    "imagenet": (IMAGENET_BLOCKS, 1000, 224),
}

#: the registered downsampling types, in the order `defstab models` lists them
DOWNSAMPLING = ("subsample", "maxpool", "avgpool", "strided", "strided_relu", "blurpool",
                "maxblurpool", "aps")  # fmt: skip
#: blurpool / maxblurpool / aps take a binomial filter size as a suffix (Zhang 2019's 1…7
#: taps; APS's ``filt_size``)
MAX_FILTER = 7
SIZED_DOWNSAMPLING = re.compile(r"(maxblurpool|blurpool|aps)([1-9][0-9]*)")
#: how the 3×3 convolutions (and the blur filters) pad: zeros (the paper's), or circular
#: (wrap around: with APS downsampling, exactly invariant to circular shifts)
PADDINGS = ("zeros", "circular")


def is_downsampling_name(name: str) -> bool:
    return name in DOWNSAMPLING or SIZED_DOWNSAMPLING.fullmatch(name) is not None


def registered_names() -> list[str]:
    """``vgg_{family}_{type}`` for every family and registered downsampling type."""
    return [f"vgg_{family}_{kind}" for family in FAMILIES for kind in DOWNSAMPLING]


def parse_name(name: str) -> tuple[str, str] | None:
    """``"vgg_cifar_blurpool5"`` -> ``("cifar", "blurpool5")``; None for other names."""
    match = re.fullmatch(r"vgg_(\w+?)_(\w+)", name)
    if match is None or match.group(1) not in FAMILIES or not is_downsampling_name(match.group(2)):
        return None
    return match.group(1), match.group(2)


def scaled_blocks(blocks: Sequence[tuple[int, int]], width: float) -> list[tuple[int, int]]:
    """Multiply every block's channel count by ``width`` (at least 1 channel)."""
    if not width > 0:
        raise ValueError(f"width must be positive, got {width!r}.")
    return [(n, max(1, round(c * width))) for n, c in blocks]


def representation_points(blocks: Sequence[tuple[int, int]]) -> list[dict]:
    """timm-style ``{"module", "num_chs", "reduction"}`` per representation point, in
    forward order; reduction = cumulative stride (every downsampling layer halves)."""
    info, reduction = [], 1
    for b, (n_convs, channels) in enumerate(blocks, start=1):
        for i in range(1, n_convs + 1):
            info.append(
                {"module": f"features.conv{b}_{i}", "num_chs": channels, "reduction": reduction}
            )
        reduction *= 2
        info.append({"module": f"features.pool{b}", "num_chs": channels, "reduction": reduction})
    return info


def describe(name: str, width: float = 1.0, in_channels: int = 3) -> dict:
    """What ``defstab models`` prints for a registry name, computed from the architecture.

    Parameters: 3×3 convs without bias (9·c_in·c) and their batch-norm (2c); a ``strided``
    2×2 conv with bias (4c² + c), ``strided_relu``'s without bias plus batch-norm
    (4c² + 2c); the linear head. FLOPs per image (2 × multiply-adds) of the convs and the
    linear layer, as :func:`defstab.models.summary.count_flops` counts them.

    Returns:
        ``{"name", "input", "layers", "params", "flops", "strides"}``; ``strides`` the
        cumulative stride of every representation point (layer 0, the input, is 1).
    """
    parsed = parse_name(name)
    if parsed is None:
        raise ValueError(f"{name!r} is not a registry network.")
    family, kind = parsed
    blocks, classes, size = FAMILIES[family]
    blocks = scaled_blocks(blocks, width)
    params, flops, cin, side = 0, 0, in_channels, size
    for n_convs, c in blocks:
        for _ in range(n_convs):
            params += 9 * cin * c + 2 * c
            flops += 2 * side * side * c * 9 * cin
            cin = c
        side //= 2
        if kind in ("strided", "strided_relu"):
            params += 4 * c * c + (c if kind == "strided" else 2 * c)
            flops += 2 * side * side * c * 4 * c
    params += cin * classes + classes
    flops += 2 * cin * classes
    points = representation_points(blocks)
    return {
        "name": name,
        "input": (in_channels, size, size),
        "layers": len(points) + 1,
        "params": params,
        "flops": flops,
        "strides": [1] + [p["reduction"] for p in points],
    }
