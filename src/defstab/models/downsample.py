"""The 2× downsampling layers compared in the paper, plus blur-pool and max-blur-pool.

Every layer halves H and W (for even sizes). Each is one class; the VGG takes the
layer's *name* so that a new downsampling type is one line in ``DOWNSAMPLERS``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from defstab.models.architectures import MAX_FILTER, SIZED_DOWNSAMPLING, is_downsampling_name


class Subsample(nn.Module):
    """Keep the top-left pixel of each 2×2 block: (N, C, H, W) -> (N, C, ⌈H/2⌉, ⌈W/2⌉)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[..., ::2, ::2]


def binomial_taps(size: int) -> torch.Tensor:
    """Row ``size − 1`` of Pascal's triangle, normalised to sum 1: (size,) float64.

    >>> binomial_taps(4).tolist()
    [0.125, 0.375, 0.375, 0.125]
    """
    if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= MAX_FILTER:
        raise ValueError(f"blur filter size must be an integer in 1…{MAX_FILTER}, got {size!r}.")
    taps = torch.tensor([math.comb(size - 1, k) for k in range(size)], dtype=torch.float64)
    return taps / taps.sum()


class BlurPool(nn.Module):
    """Low-pass filter, then keep every second pixel (Zhang 2019, "antialiased CNNs").

    The filter is the separable binomial kernel of ``filter_size`` taps (3: [1, 2, 1] / 4
    per axis; Zhang's default in antialiased-cnns is 4: [1, 3, 3, 1] / 8), applied per
    channel after reflection padding of ⌊(f−1)/2⌋ pixels before and ⌈(f−1)/2⌉ after, as
    in Zhang's code, then stride 2 from the top-left pixel. Size 1 is plain subsampling.

    Shapes: (N, C, H, W) -> (N, C, ⌈H/2⌉, ⌈W/2⌉).
    """

    def __init__(self, channels: int, filter_size: int = 3) -> None:
        super().__init__()
        taps = binomial_taps(filter_size).float()
        self.channels = channels
        self.filter_size = filter_size
        self.padding = ((filter_size - 1) // 2, filter_size // 2)
        kernel = torch.outer(taps, taps).expand(channels, 1, filter_size, filter_size)
        self.register_buffer("kernel", kernel.clone(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.filter_size == 1:
            return x[..., ::2, ::2]
        before, after = self.padding
        x = F.pad(x, (before, after, before, after), mode="reflect")
        return F.conv2d(x, self.kernel.to(x.dtype), stride=2, groups=self.channels)

    def extra_repr(self) -> str:
        return f"channels={self.channels}, filter_size={self.filter_size}"


class MaxBlurPool(nn.Sequential):
    """Zhang 2019's antialiased max-pool: 2×2 max with stride 1, then :class:`BlurPool`
    (blur and subsample). Zhang's VGG uses 4 taps by default.

    Shapes: (N, C, H, W) -> (N, C, H/2, W/2) for even H, W.
    """

    def __init__(self, channels: int, filter_size: int = 4) -> None:
        super().__init__(nn.MaxPool2d(2, stride=1), BlurPool(channels, filter_size))


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
    "maxblurpool": MaxBlurPool,
}

#: ``blurpool`` and ``maxblurpool`` also take Zhang's filter size as a suffix:
#: ``blurpool1`` … ``blurpool7``, ``maxblurpool1`` … ``maxblurpool7``.
is_downsampler = is_downsampling_name


def make_downsampler(name: str, channels: int) -> nn.Module:
    """The downsampling layer called ``name`` for ``channels`` channels."""
    if name in DOWNSAMPLERS:
        return DOWNSAMPLERS[name](channels)
    sized = SIZED_DOWNSAMPLING.fullmatch(name)
    if sized is None:
        raise ValueError(
            f"downsample must be one of {sorted(DOWNSAMPLERS)} (blurpool and maxblurpool "
            f"take a filter size 1…{MAX_FILTER} as suffix, e.g. blurpool5), got {name!r}."
        )
    layer = MaxBlurPool if sized.group(1) else BlurPool
    return layer(channels, int(sized.group(2)))
