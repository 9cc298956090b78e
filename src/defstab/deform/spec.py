"""One random-deformation setting, parsed and validated once, recorded whole.

A :class:`DeformationSpec` is what travels from the CLI, an experiment preset or the
training probe down to the measurement: the number of control points per side k, the
largest displacement C, and the padding. It samples its own displacements (on the CPU,
from a generator) and records itself, ``max_disp`` included, for result files.

Example:
    >>> spec = DeformationSpec.for_images(32)        # the paper's CIFAR setting
    >>> spec
    DeformationSpec(grid=3, max_disp=2.0, padding='zeros')
    >>> DeformationSpec.for_images(224, max_disp=5)  # ImageNet grid, another C
    DeformationSpec(grid=5, max_disp=5.0, padding='zeros')
    >>> d = spec.sample(4, torch.Generator().manual_seed(0))
    >>> tuple(d.shape), bool(d.abs().max() <= 2)
    ((4, 9, 2), True)
    >>> DeformationSpec.from_record(spec.record()) == spec
    True
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from defstab._validate import check_grid, check_nonnegative
from defstab.deform.sampling import apply_tps, sample_displacements
from defstab.deform.warp import check_padding

#: Images up to this side use the paper's CIFAR setting, larger ones its ImageNet setting.
SMALL_IMAGE_MAX = 64


@dataclass(frozen=True)
class DeformationSpec:
    """One random thin-plate-spline deformation per image (Ruderman §2.1).

    Args:
        grid: control points per side, k (CIFAR 3, ImageNet 5).
        max_disp: C, each displacement coordinate uniform in [−C, C] pixels (CIFAR 2,
            ImageNet 10).
        padding: value outside the image, see :func:`defstab.deform.warp`.
    """

    grid: int = 3
    max_disp: float = 2.0
    padding: str = "zeros"

    def __post_init__(self) -> None:
        check_grid(self.grid)
        object.__setattr__(self, "max_disp", float(check_nonnegative(self.max_disp, "max_disp")))
        check_padding(self.padding)

    @classmethod
    def paper(cls, image_size: int) -> DeformationSpec:
        """The paper's settings: k = 3, C = 2 up to 64 px; k = 5, C = 10 above."""
        return cls(3, 2.0) if image_size <= SMALL_IMAGE_MAX else cls(5, 10.0)

    @classmethod
    def for_images(
        cls,
        image_size: int,
        grid: int | None = None,
        max_disp: float | None = None,
        padding: str = "zeros",
    ) -> DeformationSpec:
        """The paper's setting for ``image_size``, with any of k and C overridden."""
        paper = cls.paper(image_size)
        return cls(
            paper.grid if grid is None else grid,
            paper.max_disp if max_disp is None else max_disp,
            padding,
        )

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """(n, k·k, 2) control displacements in pixels, drawn on the CPU."""
        return sample_displacements(n, self.grid, self.max_disp, generator)

    def apply(self, images: torch.Tensor, displacements: torch.Tensor) -> torch.Tensor:
        """Deform (N, C, H, W) ``images`` with (N, k·k, 2) ``displacements``."""
        return apply_tps(images, displacements, self.grid, self.padding)

    def record(self) -> dict:
        """Everything needed to rebuild the spec (``kind`` names the family)."""
        return {
            "kind": "random_tps",
            "grid": self.grid,
            "max_disp": self.max_disp,
            "padding": self.padding,
        }

    @classmethod
    def from_record(cls, record: dict) -> DeformationSpec:
        return cls(int(record["grid"]), float(record["max_disp"]), record.get("padding", "zeros"))
