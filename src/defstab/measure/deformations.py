"""How a measurement deforms its images: a random TPS spec, or explicit parameters.

Passing explicit displacements or fields lets two models be measured on identical
deformations; a :class:`RandomTPS` is sampled from the generator, one per image.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from defstab._validate import check_finite, check_grid, check_nonnegative
from defstab.deform import apply_tps, sample_displacements, warp
from defstab.deform.warp import check_padding


@dataclass(frozen=True)
class RandomTPS:
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
        check_nonnegative(self.max_disp, "max_disp")
        check_padding(self.padding)

    @classmethod
    def paper(cls, image_size: int) -> RandomTPS:
        """The paper's settings: k = 3, C = 2 for CIFAR-sized images; k = 5, C = 10 above 64 px."""
        return cls(3, 2.0) if image_size <= 64 else cls(5, 10.0)


class ResolvedDeformation:
    """Per-image deformation parameters, ready to apply to any slice of the batch."""

    def __init__(self, kind: str, params: torch.Tensor, grid: int | None, padding: str):
        self.kind, self.params, self.grid, self.padding = kind, params, grid, padding

    def apply(self, images: torch.Tensor, rows: slice) -> torch.Tensor:
        p = self.params[rows] if self.params.shape[0] > 1 else self.params
        if self.kind == "displacements":
            return apply_tps(images, p.to(images.device, images.dtype), self.grid, self.padding)
        return warp(images, p.to(images.device, images.dtype), self.padding)

    def record(self) -> dict:
        return {"kind": self.kind, "grid": self.grid, "padding": self.padding}


def resolve_deformation(
    deformation, n: int, size: tuple[int, int], generator: torch.Generator | None
) -> ResolvedDeformation:
    """Turn a :class:`RandomTPS`, displacements (N, k·k, 2) or fields (N|1, H, W, 2) into
    per-image parameters."""
    if isinstance(deformation, RandomTPS):
        disp = sample_displacements(n, deformation.grid, deformation.max_disp, generator)
        return ResolvedDeformation("displacements", disp, deformation.grid, deformation.padding)
    if not isinstance(deformation, torch.Tensor):
        raise ValueError(
            "deformation must be a RandomTPS, displacements (N, k·k, 2) or fields "
            f"(N, H, W, 2), got {type(deformation).__name__}."
        )
    t = deformation
    check_finite(t, "deformation")
    if t.ndim == 3 and t.shape[-1] == 2:
        k = math.isqrt(t.shape[1])
        if k * k != t.shape[1] or k < 2:
            raise ValueError(f"displacements need k·k control points, got {t.shape[1]}.")
        if t.shape[0] != n:
            raise ValueError(f"displacements hold {t.shape[0]} deformations for {n} images.")
        return ResolvedDeformation("displacements", t.float(), k, "zeros")
    if t.ndim == 4 and t.shape[-1] == 2:
        if tuple(t.shape[1:3]) != tuple(size):
            raise ValueError(f"fields of size {tuple(t.shape[1:3])} do not match images {size}.")
        if t.shape[0] not in (1, n):
            raise ValueError(f"fields hold {t.shape[0]} deformations for {n} images.")
        return ResolvedDeformation("fields", t.float(), None, "zeros")
    raise ValueError(
        f"deformation tensor must be displacements (N, k·k, 2) or fields (N, H, W, 2), "
        f"got shape {tuple(t.shape)}."
    )
