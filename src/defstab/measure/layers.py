"""Which modules' outputs are measured: names, defaults, and helpful errors."""

from __future__ import annotations

from torch import nn

from defstab.models.downsample import BlurPool, MaxBlurPool, Subsample
from defstab.models.registry import unknown_name_message

INPUT = "input"

#: Module types taken as downsampling layers by the default layer choice.
DOWNSAMPLING_TYPES = (
    nn.MaxPool2d,
    nn.AvgPool2d,
    nn.AdaptiveAvgPool2d,
    Subsample,
    BlurPool,
    MaxBlurPool,
)


def default_layers(model: nn.Module) -> list[str]:
    """The paper's representation points if the model names them, else every conv and
    downsampling module (including strided convs) in module order."""
    points = getattr(model, "representation_points", None)
    if points:
        return list(points)
    names = [
        name
        for name, m in model.named_modules()
        if name and isinstance(m, (nn.Conv2d, *DOWNSAMPLING_TYPES))
    ]
    if not names:
        raise ValueError("the model has no conv or pooling module; pass layers=[...] explicitly.")
    return names


def resolve_layers(model: nn.Module, layers: list[str] | str | None) -> list[str]:
    """Validate requested layer names (``"input"`` = layer 0) and put them in module order.

    Returns:
        ``["input", name, ...]``: the input first, then the modules in the order
        ``named_modules()`` lists them (forward order for sequential models).
    """
    if layers is None:
        requested = default_layers(model)
    else:
        requested = (
            [s.strip() for s in layers.split(",")] if isinstance(layers, str) else list(layers)
        )
        requested = [name for name in requested if name]
        if not requested:
            raise ValueError("layers is empty.")
    modules = dict(model.named_modules())
    known = [n for n in modules if n]
    order = {name: i for i, name in enumerate(known)}
    for name in requested:
        if name != INPUT and name not in order:
            raise ValueError(unknown_name_message("layer", name, known))
    seen = dict.fromkeys(n for n in requested if n != INPUT)
    return [INPUT] + sorted(seen, key=order.__getitem__)
