"""The stride arithmetic of Azulay & Weiss (2019, §3), per representation point.

A layer whose cumulative stride is s samples the input on a grid s pixels apart: a shift
of the input by k pixels can move its feature map exactly only when s divides k. So for
that layer to be invariant to every translation, the network must have seen all s² shifted
copies of each image that fall between grid points (s sub-stride positions per axis) —
which augmentation only covers for the shifts it draws.

:func:`registry_strides` reads the registry networks as data (no torch import, so
``defstab models --strides`` answers at once); :func:`model_strides` measures any model
with one probe forward pass.
"""

from __future__ import annotations

from defstab.models.architectures import FAMILIES, parse_name, representation_points, scaled_blocks

#: Said by every command whose strides of some layers had to be inferred.
STRIDES_INFERRED = (
    "no module of the network tells the strides of {layers} (it cannot run at another "
    "input size, or the map does not follow a grid), so they are inferred as input width / "
    "map width: approximate where padding rounds the map size."
)


def stride_row(
    layer: str, channels: int | None, size: int | None, stride: int | None, source: str
) -> dict:
    """``{"layer", "channels", "size", "stride", "shifted_copies", "source"}``; a layer
    that is not a feature map (a vector) has no stride and no copies (None)."""
    return {
        "layer": layer,
        "channels": channels,
        "size": size,
        "stride": stride,
        "shifted_copies": stride * stride if stride else None,
        "source": source,
    }


def registry_strides(name: str, width: float = 1.0, in_channels: int = 3) -> list[dict]:
    """One :func:`stride_row` per representation point of a registry network, the input
    first (stride 1), from the architecture alone."""
    parsed = parse_name(name)
    if parsed is None:
        raise ValueError(f"{name!r} is not a registry network.")
    blocks, _, size = FAMILIES[parsed[0]]
    rows = [stride_row("input", in_channels, size, 1, "architecture")]
    for point in representation_points(scaled_blocks(blocks, width)):
        s = point["reduction"]
        rows.append(stride_row(point["module"], point["num_chs"], size // s, s, "architecture"))
    return rows


def model_strides(model, size: int, in_channels: int = 3, layers=None) -> list[dict]:
    """:func:`stride_row` per layer of any model (default layers as ``defstab measure``
    picks them), from one forward pass of a zero image of ``size`` pixels: the stride is
    the model's ``feature_info`` where it declares the layer, else the network's own size
    arithmetic (:func:`defstab.tap.grid_strides`), the same at any ``size``; a global
    pooling's is that of the map it pools (``source`` says which; see
    :func:`defstab.tap.cumulative_strides`)."""
    import torch

    from defstab.measure.layers import resolve_layers
    from defstab.tap import cumulative_strides, layer_info, model_device_dtype

    names = resolve_layers(model, layers)[1:]
    device, dtype = model_device_dtype(model)
    probe = torch.zeros(1, in_channels, size, size, device=device, dtype=dtype)
    rows = [stride_row("input", in_channels, size, 1, "input")]
    infos = layer_info(model, names, probe)
    for (name, info), stride in zip(infos.items(), cumulative_strides(infos).values(), strict=True):
        side = None  # the map's width: (C, H, W) or channels-last (H, W, C); tokens have none
        if len(info.shape) == 3 and info.channels is not None:
            side = info.shape[-1] if info.shape[0] == info.channels else info.shape[1]
        source = "global pool: the map it pools" if info.source == "global pool" else info.source
        rows.append(stride_row(name, info.channels, side, stride, source))
    return rows
