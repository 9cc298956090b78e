"""The paper's VGG-like networks (Ruderman §2.2, App. A.1), architecture as data.

A network is a list of blocks ``(n_convs, channels)``; each conv is 3×3 → batch-norm →
ReLU, each block ends in a 2× downsampling layer chosen by name, and a global average
pool and one linear layer make the classifier. The modules are named after the paper's
representation points (``conv1_1``, ``conv1_2``, ``pool1``, …) and
``representation_points`` lists them in forward order, so layer i of a measurement is
layer i of the paper's figures (layer 0 is the input).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from defstab.models.architectures import (  # noqa: F401  (block tables re-exported)
    CIFAR_BLOCKS,
    IMAGENET_BLOCKS,
    PADDINGS,
    representation_points,
    scaled_blocks,
)
from defstab.models.downsample import make_downsampler
from defstab.models.init import init_weights


class ConvBNReLU(nn.Sequential):
    """3×3 convolution (padding 1 of zeros or wrapped, no bias: batch-norm follows) →
    batch-norm → ReLU."""

    def __init__(self, cin: int, cout: int, padding: str = "zeros") -> None:
        super().__init__(
            nn.Conv2d(cin, cout, 3, padding=1, bias=False, padding_mode=padding),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
        )


class VGG(nn.Module):
    """VGG-like network with a chosen downsampling layer.

    Args:
        blocks: ``(n_convs, channels)`` per block (already scaled by width).
        downsample: a key of ``DOWNSAMPLERS``, or ``blurpoolF`` / ``maxblurpoolF`` with
            a filter size F in 1…7.
        num_classes: outputs of the linear layer.
        in_channels: 3 for RGB, 1 for MNIST.
        input_size: the native input size, used by ``defstab models`` and tests.
        padding: "zeros" (the paper's) or "circular": how every conv and blur filter
            pads. Circular padding with ``aps`` downsampling makes the network exactly
            invariant to circular shifts of its input.

    Shapes:
        input (N, in_channels, H, W) → logits (N, num_classes).
    """

    def __init__(
        self,
        blocks: Sequence[tuple[int, int]],
        downsample: str,
        num_classes: int = 10,
        in_channels: int = 3,
        input_size: int = 32,
        padding: str = "zeros",
    ) -> None:
        super().__init__()
        if num_classes < 1 or in_channels < 1:
            raise ValueError("num_classes and in_channels must be positive.")
        if padding not in PADDINGS:
            raise ValueError(f"padding must be one of {', '.join(PADDINGS)}, got {padding!r}.")
        self.padding = padding
        self.blocks = [tuple(b) for b in blocks]
        self.downsample = downsample
        self.input_size = input_size
        self.in_channels = in_channels
        features: dict[str, nn.Module] = {}
        cin = in_channels
        for b, (n_convs, cout) in enumerate(self.blocks, start=1):
            for i in range(1, n_convs + 1):
                features[f"conv{b}_{i}"] = ConvBNReLU(cin, cout, padding)
                cin = cout
            features[f"pool{b}"] = make_downsampler(downsample, cout, padding)
        self.features = nn.Sequential()
        for name, module in features.items():
            self.features.add_module(name, module)
        self.head = nn.Linear(cin, num_classes)
        self.num_features = cin

    @property
    def representation_points(self) -> list[str]:
        """Module names whose outputs are the paper's layers 1…L (layer 0 = input)."""
        return [f"features.{name}" for name, _ in self.features.named_children()]

    @property
    def feature_info(self) -> list[dict]:
        """timm-style description of every representation point, in forward order:
        ``{"module", "num_chs", "reduction"}`` (reduction = cumulative stride; every
        downsampling layer halves the resolution)."""
        return representation_points(self.blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        return self.head(x.mean(dim=(2, 3)))


def build_vgg(
    blocks: Sequence[tuple[int, int]],
    downsample: str,
    *,
    num_classes: int,
    input_size: int,
    in_channels: int = 3,
    width: float = 1.0,
    init: str = "paper",
    smooth_sigma: float = 0.0,
    padding: str = "zeros",
    generator: torch.Generator | None = None,
    seed: int | None = None,
) -> VGG:
    """Build and initialise a VGG (see :func:`defstab.models.init.init_weights`)."""
    if smooth_sigma < 0:
        raise ValueError(f"smooth_sigma must be ≥ 0, got {smooth_sigma!r}.")
    if generator is None and seed is not None:
        generator = torch.Generator().manual_seed(seed)
    model = VGG(
        scaled_blocks(blocks, width), downsample, num_classes, in_channels, input_size, padding
    )
    return init_weights(model, init=init, smooth_sigma=smooth_sigma, generator=generator)
