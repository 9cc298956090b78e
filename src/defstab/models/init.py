"""Initialisations: the paper's truncated normal, PyTorch's default, and smoothing."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

INITS = ("paper", "torch")


def fan_in(weight: torch.Tensor) -> int:
    return weight[0].numel()


def gaussian_kernel(sigma: float, radius: int, dtype=torch.float64) -> torch.Tensor:
    """(2r+1, 2r+1) normalised 2-D Gaussian of std ``sigma``."""
    x = torch.arange(-radius, radius + 1, dtype=dtype)
    g = torch.exp(-0.5 * (x / sigma) ** 2)
    g = g / g.sum()
    return torch.outer(g, g)


@torch.no_grad()
def smooth_filters(weight: torch.Tensor, sigma: float) -> torch.Tensor:
    """Convolve every spatial filter of a conv weight with a Gaussian of std ``sigma``.

    The filter is taken as zero outside its k×k support and the result is cropped back to
    k×k (a "same" convolution); a kernel radius of k − 1 covers every pair of taps, so
    the result is exact. σ = 0 returns ``weight`` unchanged.

    Args:
        weight: (C_out, C_in, k, k).
    """
    if sigma == 0:
        return weight
    co, ci, kh, kw = weight.shape
    r = max(kh, kw) - 1
    g = gaussian_kernel(sigma, r, torch.float64)[None, None]
    flat = weight.reshape(co * ci, 1, kh, kw).double()
    out = F.conv2d(F.pad(flat, (r, r, r, r)), g)  # (k + 2r) - 2r = k: already k×k
    return out.reshape_as(weight).to(weight.dtype)


@torch.no_grad()
def init_weights(
    model: nn.Module,
    init: str = "paper",
    smooth_sigma: float = 0.0,
    generator: torch.Generator | None = None,
) -> nn.Module:
    """Initialise every conv and linear layer in forward (module) order.

    ``"paper"``: weights from a normal of std 1/√fan_in truncated at ±2 std (as
    TensorFlow's ``truncated_normal``), biases zero. ``"torch"``: PyTorch's own default
    (kaiming-uniform with a = √5, uniform biases), drawn from ``generator``.
    Batch-norm layers keep weight 1 and bias 0. ``smooth_sigma`` > 0 then smooths every
    conv filter larger than 1×1 with a Gaussian (Ruderman §4.2).
    """
    if init not in INITS:
        raise ValueError(f"init must be one of {INITS}, got {init!r}.")
    for module in model.modules():
        if not isinstance(module, nn.Conv2d | nn.Linear):
            continue
        w = module.weight
        n = fan_in(w)
        if init == "paper":
            std = 1.0 / math.sqrt(n)
            nn.init.trunc_normal_(w, std=std, a=-2 * std, b=2 * std, generator=generator)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        else:
            nn.init.kaiming_uniform_(w, a=math.sqrt(5), generator=generator)
            if module.bias is not None:
                bound = 1.0 / math.sqrt(n)
                nn.init.uniform_(module.bias, -bound, bound, generator=generator)
        if smooth_sigma > 0 and isinstance(module, nn.Conv2d) and w.shape[-1] > 1:
            w.copy_(smooth_filters(w, smooth_sigma))
    return model
