"""Filter smoothness as normalized total variation (Ruderman §4.1)."""

from __future__ import annotations

import torch
from torch import nn

#: E[TV/‖W‖₁] of a 3×3 filter whose taps are i.i.d.: 12 E|a − b| / (9 E|a|) (12 neighbour
#: differences, 9 taps), per init scheme; tested against numerical integration
EXPECTED_AT_INIT = {
    # normal truncated at ±2σ (the paper's init; the paper estimated ≈ 1.87 by resampling)
    "paper": (1.857, "the paper's truncated-normal init"),
    # uniform (PyTorch's default Kaiming-uniform): E|a − b| = 2/3, E|a| = 1/2 → 16/9
    "torch": (16 / 9, "PyTorch's default (Kaiming-uniform) init"),
}


def normalized_total_variation(weight: torch.Tensor) -> float:
    """TV(W) / ‖W‖₁ over the spatial axes of a conv weight; 0 for spatially constant filters.

    TV(W) = Σ_{i,j} ‖W[i,j] − W[i+1,j]‖₁ + ‖W[i,j] − W[i,j+1]‖₁, the norms summing over
    all input and output channels.

    Args:
        weight: (C_out, C_in, kH, kW), PyTorch's layout (spatial axes last).

    Example:
        >>> normalized_total_variation(torch.ones(4, 3, 3, 3))
        0.0
    """
    if not isinstance(weight, torch.Tensor) or weight.ndim != 4:
        shape = tuple(weight.shape) if isinstance(weight, torch.Tensor) else type(weight)
        raise ValueError(f"weight must have shape (C_out, C_in, kH, kW), got {shape}.")
    w = weight.detach().double()
    l1 = w.abs().sum()
    if l1 == 0:
        raise ValueError("weight is all zeros: normalized total variation is undefined.")
    tv = (w[..., 1:, :] - w[..., :-1, :]).abs().sum() + (w[..., :, 1:] - w[..., :, :-1]).abs().sum()
    return float(tv / l1)


def filter_smoothness(model: nn.Module, min_kernel: int = 2) -> dict[str, float]:
    """Normalized total variation of every conv layer, in module (forward) order.

    Args:
        model: any module; every ``nn.Conv2d`` whose kernel is at least ``min_kernel``
            on both sides is measured (1×1 convs have no spatial variation).

    Returns:
        ``{module name: smoothness}``.
    """
    out = {}
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d) and min(module.kernel_size) >= min_kernel:
            out[name] = normalized_total_variation(module.weight)
    if not out:
        raise ValueError(
            f"the model has no conv layer with a kernel of at least {min_kernel}×{min_kernel}."
        )
    return out
