"""Which modules' outputs are measured: names, defaults, and helpful errors."""

from __future__ import annotations

from torch import nn

from defstab.errors import unknown_name_message
from defstab.models.downsample import BlurPool, MaxBlurPool, Subsample

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


def is_attention(module: nn.Module) -> bool:
    """torch's MultiheadAttention, or a class named like one (timm's ``Attention``,
    ``WindowAttention``, …)."""
    return isinstance(module, nn.MultiheadAttention) or type(module).__name__.endswith("Attention")


def transformer_blocks(model: nn.Module) -> list[str]:
    """The blocks of the model's main block list(s): the children of every ``ModuleList`` /
    ``Sequential`` whose children all contain an attention module, innermost lists only
    (timm ``blocks.N``, torchvision ``encoder.layers.encoder_layer_N``, Swin's
    ``layers.S.blocks.N``). Empty for a model without attention."""
    modules = dict(model.named_modules())
    attention = [name for name, m in modules.items() if name and is_attention(m)]
    if not attention:
        return []
    lists = {}
    for name, m in modules.items():
        if not isinstance(m, nn.ModuleList | nn.Sequential):
            continue
        children = [f"{name}.{k}" if name else k for k, _ in m.named_children()]
        if children and all(any(a.startswith(c + ".") for a in attention) for c in children):
            lists[name] = children
    # a list of stages that hold block lists is not itself the block list
    inner = [n for n in lists if not any(o != n and o.startswith(f"{n}.") for o in lists)]
    return [child for n in inner for child in lists[n]]


def default_layers(model: nn.Module) -> list[str]:
    """The paper's representation points if the model names them; else every conv and
    downsampling module (including strided convs) outside transformer blocks, plus the
    output of every transformer block (:func:`transformer_blocks`): a CNN gets its convs
    and pools, a ViT its patch embedding and every block, a hybrid both."""
    points = getattr(model, "representation_points", None)
    if points:
        return list(points)
    blocks = transformer_blocks(model)
    names = [
        name
        for name, m in model.named_modules()
        if name
        and isinstance(m, (nn.Conv2d, *DOWNSAMPLING_TYPES))
        and not any(name.startswith(f"{b}.") for b in blocks)
    ]
    names += blocks
    if not names:
        raise ValueError(
            "the model has no conv, pooling or transformer-block module; "
            "pass layers=[...] explicitly."
        )
    return names


def prefix_tokens(model: nn.Module) -> int:
    """How many tokens precede the patch tokens in a ViT's sequence (class, distillation,
    register tokens): timm's ``num_prefix_tokens``, else 1 for a ``class_token`` /
    ``cls_token`` parameter (torchvision, many others)."""
    count = getattr(model, "num_prefix_tokens", None)
    if isinstance(count, int):
        return count
    if any(isinstance(getattr(model, a, None), nn.Parameter) for a in ("class_token", "cls_token")):
        return 1 + isinstance(getattr(model, "dist_token", None), nn.Parameter)
    raise ValueError(
        "cannot tell how many class tokens the model puts before its patch tokens "
        "(no num_prefix_tokens, class_token or cls_token); measure tokens='all'."
    )


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
