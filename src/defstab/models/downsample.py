"""The 2× downsampling layers compared in the paper, plus blur-pool.

Every layer halves H and W (for even sizes). Each is one class; the VGG takes the
layer's *name* so that a new downsampling type is one line in ``DOWNSAMPLERS``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class Subsample(nn.Module):
    """Keep the top-left pixel of each 2×2 block: (N, C, H, W) -> (N, C, ⌈H/2⌉, ⌈W/2⌉)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[..., ::2, ::2]


class BlurPool(nn.Module):
    """Low-pass filter, then keep every second pixel (Zhang 2019, "antialiased CNNs").

    The filter is the 3×3 binomial kernel [1, 2, 1]ᵀ[1, 2, 1] / 16, applied per channel
    with reflection padding of 1 pixel, so the blurred map keeps its size and the
    subsampling keeps the top-left pixel of each 2×2 block, as ``Subsample`` does.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        taps = torch.tensor([1.0, 2.0, 1.0])
        kernel = torch.outer(taps, taps) / 16.0
        self.channels = channels
        self.register_buffer("kernel", kernel.expand(channels, 1, 3, 3).clone(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.pad(x, (1, 1, 1, 1), mode="reflect")
        return F.conv2d(x, self.kernel.to(x.dtype), stride=2, groups=self.channels)


def strided_conv(channels: int) -> nn.Module:
    """A learned 2×2 convolution with stride 2 (with bias)."""
    return nn.Conv2d(channels, channels, kernel_size=2, stride=2)


def strided_conv_relu(channels: int) -> nn.Module:
    """A 2×2 stride-2 convolution followed by batch-norm and ReLU."""
    return nn.Sequential(
        nn.Conv2d(channels, channels, kernel_size=2, stride=2, bias=False),
        nn.BatchNorm2d(channels),
        nn.ReLU(inplace=True),
    )


DOWNSAMPLERS = {
    "subsample": lambda c: Subsample(),
    "maxpool": lambda c: nn.MaxPool2d(2, 2),
    "avgpool": lambda c: nn.AvgPool2d(2, 2),
    "strided": strided_conv,
    "strided_relu": strided_conv_relu,
    "blurpool": BlurPool,
}
