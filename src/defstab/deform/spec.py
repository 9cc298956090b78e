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
    >>> DeformationSpec(kind="diffeo", temperature=1e-3, cut=3)  # Petrini et al.'s
    DeformationSpec(kind='diffeo', temperature=0.001, cut=3, padding='border')
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from defstab._validate import check_grid, check_nonnegative
from defstab.deform.sampling import apply_tps, sample_displacements
from defstab.deform.warp import check_padding

#: Images up to this side use the paper's CIFAR setting, larger ones its ImageNet setting.
SMALL_IMAGE_MAX = 64


#: the deformation families: Ruderman's random thin-plate splines, Petrini's diffeomorphisms
KINDS = ("tps", "diffeo")


@dataclass(frozen=True, repr=False)
class DeformationSpec:
    """One random deformation per image: a thin-plate spline (Ruderman §2.1, the
    default) or Petrini et al.'s diffeomorphism (``kind="diffeo"``,
    :mod:`defstab.deform.diffeo`).

    Args:
        grid: TPS: control points per side, k (CIFAR 3, ImageNet 5).
        max_disp: TPS: C, each displacement coordinate uniform in [−C, C] pixels (CIFAR 2,
            ImageNet 10).
        padding: value outside the image, see :func:`defstab.deform.warp` (default
            zeros for TPS, border for diffeo: their coordinates are clamped).
        kind: "tps" or "diffeo".
        temperature: diffeo: T (> 0).
        cut: diffeo: the cut-off c (≥ 1) of the sine modes.
    """

    grid: int = 3
    max_disp: float = 2.0
    padding: str | None = None
    kind: str = "tps"
    temperature: float | None = None
    cut: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(
                f"deformation kind must be one of {', '.join(KINDS)}, got {self.kind!r}."
            )
        if self.padding is None:
            object.__setattr__(self, "padding", "border" if self.kind == "diffeo" else "zeros")
        check_padding(self.padding)
        if self.kind == "tps":
            check_grid(self.grid)
            object.__setattr__(
                self, "max_disp", float(check_nonnegative(self.max_disp, "max_disp"))
            )
            return
        t = self.temperature
        if (
            isinstance(t, bool)
            or not isinstance(t, int | float)
            or not (math.isfinite(t) and t > 0)
        ):
            raise ValueError(f"the temperature T must be a positive number, got {t!r}.")
        object.__setattr__(self, "temperature", float(t))
        if isinstance(self.cut, bool) or not isinstance(self.cut, int) or self.cut < 1:
            raise ValueError(f"the cut-off c must be an integer ≥ 1, got {self.cut!r}.")

    def __repr__(self) -> str:
        if self.kind == "diffeo":
            return (
                f"DeformationSpec(kind='diffeo', temperature={self.temperature!r}, "
                f"cut={self.cut!r}, padding={self.padding!r})"
            )
        return (
            f"DeformationSpec(grid={self.grid!r}, max_disp={self.max_disp!r}, "
            f"padding={self.padding!r})"
        )

    @classmethod
    def diffeo(
        cls,
        image_size: tuple[int, int] | int,
        cut: int = 3,
        temperature: float | None = None,
        displacement: float | None = None,
    ) -> DeformationSpec:
        """Petrini's diffeomorphism with T given, or chosen so that the typical
        displacement is ``displacement`` px on images of ``image_size``."""
        from defstab.deform.diffeo import typical_temperature

        if (temperature is None) == (displacement is None):
            raise ValueError("give the diffeo a temperature T or a typical displacement, not both.")
        if displacement is not None:
            if not displacement > 0:
                raise ValueError(
                    f"the typical displacement must be positive, got {displacement!r}."
                )
            temperature = typical_temperature(displacement, cut, side_of(image_size))
        check_diffeo_range(temperature, cut, side_of(image_size))
        return cls(kind="diffeo", temperature=temperature, cut=cut)

    def typical_displacement(self, image_size: tuple[int, int] | int) -> float | None:
        """Diffeo: δ in pixels on images of ``image_size`` (None for TPS or c = 1)."""
        from defstab.deform.diffeo import typical_displacement

        if self.kind != "diffeo" or self.cut < 2:
            return None
        return typical_displacement(self.temperature, self.cut, side_of(image_size))

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
        """TPS: (n, k·k, 2) control displacements in pixels; diffeo: (n, 2, c, c) sine
        coefficients. Drawn on the CPU."""
        if self.kind == "diffeo":
            from defstab.deform.diffeo import sample_diffeo_coefficients

            return sample_diffeo_coefficients(n, self.cut, generator)
        return sample_displacements(n, self.grid, self.max_disp, generator)

    def apply(self, images: torch.Tensor, params: torch.Tensor, check: bool = True) -> torch.Tensor:
        """Deform (N, C, H, W) ``images`` with the parameters :meth:`sample` drew (``check``:
        validate them first, as :func:`~defstab.deform.warp` does)."""
        if self.kind == "diffeo":
            from defstab.deform.diffeo import apply_diffeo

            return apply_diffeo(images, params, self.temperature, self.padding, check)
        return apply_tps(images, params, self.grid, self.padding, check=check)

    def record(self) -> dict:
        """Everything needed to rebuild the spec (``kind`` names the family)."""
        if self.kind == "diffeo":
            return {"kind": "diffeo", "temperature": self.temperature, "cut": self.cut,
                    "padding": self.padding}  # fmt: skip
        return {
            "kind": "random_tps",
            "grid": self.grid,
            "max_disp": self.max_disp,
            "padding": self.padding,
        }

    @classmethod
    def from_record(cls, record: dict) -> DeformationSpec:
        if record.get("kind") == "diffeo":
            return cls(kind="diffeo", temperature=float(record["temperature"]),
                       cut=int(record["cut"]), padding=record.get("padding", "border"))  # fmt: skip
        return cls(int(record["grid"]), float(record["max_disp"]), record.get("padding", "zeros"))


def side_of(image_size: tuple[int, int] | int) -> float:
    """n of Petrini's formulas: the side of a square image, √(H·W) otherwise."""
    if isinstance(image_size, int):
        return float(image_size)
    h, w = image_size
    return math.sqrt(h * w)


def check_diffeo_range(temperature: float, cut: int, side: int) -> None:
    """One sentence when T is above Petrini et al.'s range for images of ``side`` px
    (:func:`defstab.deform.diffeo.temperature_range`): above T_max the warp folds over
    itself, so it is no longer a diffeomorphism. Below T_min (half a pixel at the centre)
    it is merely small, and allowed."""
    from defstab.deform.diffeo import temperature_range, typical_displacement

    if cut < 2 or not math.isfinite(temperature):
        return  # c = 1 has no range (ln c = 0); a non-finite T is refused by the field
    _, highest = temperature_range(side, cut)
    if temperature > highest * (1 + 1e-9):
        most = typical_displacement(highest, cut, side)
        raise ValueError(
            f"a diffeomorphism of T = {temperature:.3g} (c = {cut}) on {side:g}-px images folds "
            f"over itself: the range stops at T = {highest:.3g}, a typical displacement of "
            f"{most:.2f} px; give a smaller --temperature or --displacement."
        )
