"""Parameter and FLOP counts, from a forward pass on the meta device (no memory, no math)."""

from __future__ import annotations

from torch import nn


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def count_flops(model: nn.Module, input_shape: tuple[int, int, int]) -> int:
    """FLOPs per image of the conv and linear layers (2 × multiply-adds).

    Batch-norm, activations and pooling are left out, as is customary; they are a
    fraction of a percent of a VGG's total.

    Args:
        input_shape: (C, H, W).
    """
    from defstab.tap import meta_forward

    total = 0

    def hook(module, inputs, output):
        nonlocal total
        if isinstance(module, nn.Conv2d):
            k = module.kernel_size[0] * module.kernel_size[1] * module.in_channels // module.groups
            total += 2 * output.numel() * k
        elif isinstance(module, nn.Linear):
            total += 2 * output.numel() * module.in_features

    handles = [
        m.register_forward_hook(hook)
        for m in model.modules()
        if isinstance(m, nn.Conv2d | nn.Linear)
    ]
    try:
        meta_forward(model, input_shape)
    finally:
        for h in handles:
            h.remove()
    return total
