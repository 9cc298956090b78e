"""How a measurement deforms its images: a :class:`~defstab.deform.DeformationSpec` (a
random TPS or a Petrini diffeomorphism), or explicit parameters.

Passing explicit displacements or fields lets two models be measured on identical
deformations; a spec is sampled from the generator, one deformation per image.
"""

from __future__ import annotations

import math

import torch

from defstab._validate import check_finite
from defstab.deform import DeformationSpec, apply_tps, warp


class ResolvedDeformation:
    """Per-image deformation parameters, ready to apply to any slice of the batch."""

    def __init__(
        self,
        kind: str,
        params: torch.Tensor,
        grid: int | None,
        padding: str,
        spec: DeformationSpec | None = None,
        size: tuple[int, int] | None = None,
    ):
        self.kind, self.params, self.grid, self.padding = kind, params, grid, padding
        self.spec = spec  # the random spec the params were drawn from, if any
        self.size = size  # the images' (H, W), for the diffeo's typical displacement

    def to(self, device) -> ResolvedDeformation:
        """The same deformations with their parameters on ``device`` (copied once, so that
        applying them to a chunk there copies nothing)."""
        return ResolvedDeformation(
            self.kind, self.params.to(device), self.grid, self.padding, self.spec, self.size
        )

    def apply(self, images: torch.Tensor, rows: slice | torch.Tensor) -> torch.Tensor:
        """Deform ``images`` (b, C, H, W) with the parameters at ``rows``. Nothing is
        validated here (the images and parameters were, once, before the chunks), so that
        the measurement's loop never waits for the device."""
        p = self.params[rows] if self.params.shape[0] > 1 else self.params
        if self.kind == "diffeo":
            return self.spec.apply(images, p.to(images.device), check=False)
        p = p.to(images.device, images.dtype)
        if self.kind == "displacements":
            return apply_tps(images, p, self.grid, self.padding, check=False)
        return warp(images, p, self.padding, check=False)

    def record(self) -> dict:
        """The spec whole when the params were sampled from one (a diffeo's with its
        typical displacement in pixels); else what is known."""
        if self.spec is not None:
            record = self.spec.record()
            if self.kind == "diffeo" and self.size is not None:
                record["typical_displacement_px"] = self.spec.typical_displacement(self.size)
            return record
        return {"kind": self.kind, "grid": self.grid, "max_disp": None, "padding": self.padding}


def diffeo_replay(spec: DeformationSpec, coefficients: torch.Tensor, size) -> ResolvedDeformation:
    """Saved diffeo coefficients (N, 2, c, c) of ``spec``, ready to measure with again."""
    if coefficients.ndim != 4 or tuple(coefficients.shape[1:]) != (2, spec.cut, spec.cut):
        raise ValueError(
            f"diffeo coefficients for c = {spec.cut} must be (N, 2, {spec.cut}, {spec.cut}), "
            f"got {tuple(coefficients.shape)}."
        )
    return ResolvedDeformation("diffeo", coefficients.float(), None, spec.padding, spec, size)


def resolve_deformation(
    deformation, n: int, size: tuple[int, int], generator: torch.Generator | None
) -> ResolvedDeformation:
    """Turn a :class:`DeformationSpec`, displacements (N, k·k, 2) or fields (N|1, H, W, 2)
    into per-image parameters (a :class:`ResolvedDeformation` passes through)."""
    if isinstance(deformation, ResolvedDeformation):
        if deformation.params.shape[0] != n:
            raise ValueError(
                f"the deformation holds {deformation.params.shape[0]} deformations for {n} images."
            )
        return deformation
    if isinstance(deformation, DeformationSpec) and deformation.kind == "diffeo":
        coeffs = deformation.sample(n, generator)
        return ResolvedDeformation("diffeo", coeffs, None, deformation.padding, deformation, size)
    if isinstance(deformation, DeformationSpec):
        disp = deformation.sample(n, generator)
        return ResolvedDeformation(
            "displacements", disp, deformation.grid, deformation.padding, deformation
        )
    if not isinstance(deformation, torch.Tensor):
        raise ValueError(
            "deformation must be a DeformationSpec, displacements (N, k·k, 2) or fields "
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
