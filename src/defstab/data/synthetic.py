"""Synthetic deformation tasks (Ruderman §4.3): each class is one template image, and
its examples are random TPS deformations of strength C of that template."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from defstab._validate import check_nonnegative
from defstab.data.sources import ImageDataset
from defstab.deform import random_tps


@dataclass
class SyntheticTask:
    """A deformation task over fixed templates.

    Args:
        templates: (K, C, H, W) in [0, 1], one per class.
        strength: C, the largest control displacement in pixels.
        grid: control points per side (default 3).
        seed: base seed; the train and test sets use independent streams.
        name: for reports (e.g. "synthetic(font, C=2)").

    Example:
        >>> from defstab.data.templates import font_digit_templates
        >>> task = SyntheticTask(font_digit_templates(), strength=2.0, seed=0)
        >>> task.split("train", per_class=5).pixels.shape
        torch.Size([50, 1, 28, 28])
    """

    templates: torch.Tensor
    strength: float
    grid: int = 3
    seed: int = 0
    name: str = "synthetic"

    def __post_init__(self) -> None:
        check_nonnegative(self.strength, "strength")
        if self.templates.ndim != 4:
            raise ValueError(f"templates must be (K, C, H, W), got {tuple(self.templates.shape)}.")

    @property
    def num_classes(self) -> int:
        return self.templates.shape[0]

    def generate(self, per_class: int, stream: int) -> ImageDataset:
        """``per_class`` deformed copies of every template from random stream ``stream``."""
        if per_class < 1:
            raise ValueError(f"per_class must be positive, got {per_class}.")
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + stream)
        k = self.num_classes
        labels = torch.arange(k).repeat_interleave(per_class)
        base = self.templates[labels]
        images, _ = random_tps(base, self.grid, self.strength, gen)
        pixels = (images.clamp(0, 1) * 255).round().to(torch.uint8)
        return ImageDataset(
            labels, [str(i) for i in range(k)], f"{self.name}(C={self.strength:g})", pixels=pixels
        )

    def split(self, split: str, per_class: int, epoch: int = 0) -> ImageDataset:
        """The train set (stream 2·epoch + 1 when regenerated per epoch) or the test set."""
        if split == "test":
            return self.generate(per_class, stream=0)
        return self.generate(per_class, stream=2 * epoch + 1)


def synthetic_task(
    strength: float, seed: int = 0, templates: str | None = None, grid: int = 3
) -> SyntheticTask:
    """Build a task; ``templates`` is ``None`` (font digits) or ``mnist:PATH``."""
    from defstab.data.templates import font_digit_templates, mnist_templates

    if templates is None:
        return SyntheticTask(font_digit_templates(), strength, grid, seed, "synthetic-font")
    from defstab.data.sources import load_data
    from defstab.data.spec import DataSpec

    try:
        spec = DataSpec.parse(templates)
    except ValueError:
        spec = None
    if spec is None or spec.kind != "mnist":
        raise ValueError(f"templates must be mnist:PATH, got {templates!r}.")
    return SyntheticTask(
        mnist_templates(load_data(spec, "test"), seed), strength, grid, seed, "synthetic-mnist"
    )
