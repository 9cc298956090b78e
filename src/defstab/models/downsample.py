"""The 2× downsampling layers compared in the paper, plus blur-pool, max-blur-pool and
adaptive polyphase sampling (APS).

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

    def __init__(self, channels: int, filter_size: int = 3, pad_mode: str = "reflect") -> None:
        super().__init__()
        self.channels = channels
        self.filter_size = filter_size
        self.pad_mode = pad_mode
        self.register_buffer("kernel", binomial_kernel(channels, filter_size), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.filter_size == 1:
            return x[..., ::2, ::2]
        return F.conv2d(
            pad_for_filter(x, self.filter_size, self.pad_mode),
            self.kernel.to(x.dtype),
            stride=2,
            groups=self.channels,
        )

    def extra_repr(self) -> str:
        return f"channels={self.channels}, filter_size={self.filter_size}, pad={self.pad_mode}"


def binomial_kernel(channels: int, filter_size: int) -> torch.Tensor:
    """(channels, 1, f, f) depthwise binomial blur, each channel's taps summing to 1."""
    taps = binomial_taps(filter_size).float()
    return torch.outer(taps, taps).expand(channels, 1, filter_size, filter_size).clone()


def pad_for_filter(x: torch.Tensor, filter_size: int, mode: str) -> torch.Tensor:
    """Pad (N, C, H, W) by ⌊(f−1)/2⌋ before and ⌈(f−1)/2⌉ after on both axes, so that an
    f-tap filter of stride 1 keeps the size (Zhang's and Chaman's split)."""
    before, after = (filter_size - 1) // 2, filter_size // 2
    return F.pad(x, (before, after, before, after), mode=mode)


#: APS's order of the four polyphase components of a 2× downsampling: (row, column)
#: parities p0 = (even, even), p1 = (odd, even), p2 = (even, odd), p3 = (odd, odd)
POLYPHASE_ORDER = ((0, 0), (1, 0), (0, 1), (1, 1))


def _norm_l2(c):
    return c.norm(dim=-1)


APS_CRITERIA = {
    # the component with the largest norm (Chaman & Dokmanić's default: l2), the largest
    # signed value, or the smallest norm; (N, 4, C·h·w) -> (N, 4) scores, argmax wins
    "l2": _norm_l2,
    "l1": lambda c: c.abs().sum(-1),
    "l_infty": lambda c: c.abs().amax(-1),
    "non_abs_max": lambda c: c.amax(-1),
    "l2_min": lambda c: -_norm_l2(c),
    "l1_min": lambda c: -c.abs().sum(-1),
}


def polyphase_components(x: torch.Tensor) -> torch.Tensor:
    """The four polyphase components of a 2× downsampling, in :data:`POLYPHASE_ORDER`:
    (N, C, H, W) -> (N, 4, C, ⌈H/2⌉, ⌈W/2⌉). An odd side first gets one wrapped row or
    column appended at the bottom or right (APS's ``aps_pad``), so all four are the same
    size and a circular shift of ``x`` permutes them."""
    if x.shape[-2] % 2:
        x = torch.cat([x, x[..., :1, :]], dim=-2)
    if x.shape[-1] % 2:
        x = torch.cat([x, x[..., :1]], dim=-1)
    return torch.stack([x[..., r::2, c::2] for r, c in POLYPHASE_ORDER], dim=1)


class APSPool(nn.Module):
    """Adaptive polyphase sampling (Chaman & Dokmanić 2021): keep, per image, the
    polyphase component with the largest norm over all channels, so that a circular shift
    of the input gives a circular shift of the output — and, with circular padding
    everywhere and a global pool at the end, a network exactly invariant to circular
    shifts. Ties go to the first component in :data:`POLYPHASE_ORDER`.

    ``filter_size`` > 1 first blurs with the f×f binomial filter, circularly padded
    (APS's ``ApsPool(filt_size=f)``); 1 is APS alone.

    Shapes: (N, C, H, W) -> (N, C, ⌈H/2⌉, ⌈W/2⌉). :attr:`last_index` keeps the (N,)
    components chosen in the last call (for a shortcut that must reuse them).
    """

    def __init__(self, channels: int, filter_size: int = 1, criterion: str = "l2") -> None:
        super().__init__()
        if criterion not in APS_CRITERIA:
            raise ValueError(
                f"APS criterion must be one of {sorted(APS_CRITERIA)}, got {criterion!r}."
            )
        self.channels = channels
        self.filter_size = filter_size
        self.criterion = criterion
        self.register_buffer("kernel", binomial_kernel(channels, filter_size), persistent=False)
        self.last_index: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.filter_size > 1:
            x = pad_for_filter(x, self.filter_size, "circular")
            x = F.conv2d(x, self.kernel.to(x.dtype), groups=self.channels)
        comps = polyphase_components(x)  # (N, 4, C, h, w)
        index = APS_CRITERIA[self.criterion](comps.flatten(2).float()).argmax(1)  # (N,)
        self.last_index = index
        return select_component(comps, index)

    def extra_repr(self) -> str:
        return (
            f"channels={self.channels}, filter_size={self.filter_size}, criterion={self.criterion}"
        )


def select_component(comps: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """(N, 4, C, h, w) components, (N,) choices -> (N, C, h, w), gathered (no loop)."""
    return comps[torch.arange(comps.shape[0], device=comps.device), index]


class MaxBlurPool(nn.Sequential):
    """Zhang 2019's antialiased max-pool: 2×2 max with stride 1, then :class:`BlurPool`
    (blur and subsample). Zhang's VGG uses 4 taps by default. With ``pad_mode="circular"``
    the max first wraps one row and column (so it keeps the size) and the blur pads
    circularly.

    Shapes: (N, C, H, W) -> (N, C, H/2, W/2) for even H, W.
    """

    def __init__(self, channels: int, filter_size: int = 4, pad_mode: str = "reflect") -> None:
        layers = [CircularPad((0, 1, 0, 1))] if pad_mode == "circular" else []
        super().__init__(
            *layers, nn.MaxPool2d(2, stride=1), BlurPool(channels, filter_size, pad_mode)
        )


class CircularPad(nn.Module):
    """Wrap-around padding by ``(left, right, top, bottom)`` pixels."""

    def __init__(self, pad: tuple[int, int, int, int]) -> None:
        super().__init__()
        self.pad = pad

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pad(x, self.pad, mode="circular")


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
    "aps": APSPool,
}
#: the layers with a filter size, and their defaults (``blurpool`` = ``blurpool3``, …)
_FILTERED = {"blurpool": (BlurPool, 3), "maxblurpool": (MaxBlurPool, 4), "aps": (APSPool, 1)}

#: ``blurpool``, ``maxblurpool`` and ``aps`` also take a filter size as a suffix:
#: ``blurpool1`` … ``blurpool7``, ``maxblurpool1`` … ``maxblurpool7``, ``aps1`` … ``aps7``.
is_downsampler = is_downsampling_name


def make_downsampler(name: str, channels: int, padding: str = "zeros") -> nn.Module:
    """The downsampling layer called ``name`` for ``channels`` channels; with
    ``padding="circular"`` the blur filters pad circularly (APS always does)."""
    sized = SIZED_DOWNSAMPLING.fullmatch(name)
    if name not in DOWNSAMPLERS and sized is None:
        raise ValueError(
            f"downsample must be one of {sorted(DOWNSAMPLERS)} (blurpool, maxblurpool and aps "
            f"take a filter size 1…{MAX_FILTER} as suffix, e.g. blurpool5), got {name!r}."
        )
    kind, size = (sized.group(1), int(sized.group(2))) if sized else (name, None)
    if kind not in _FILTERED:
        return DOWNSAMPLERS[kind](channels)
    layer, default = _FILTERED[kind]
    if size is not None:
        binomial_taps(size)  # one sentence for a size out of range
    if kind == "aps":
        return APSPool(channels, size or default)
    return layer(channels, size or default, "circular" if padding == "circular" else "reflect")
