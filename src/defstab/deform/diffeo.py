"""Petrini et al.'s random diffeomorphisms (NeurIPS 2021; pcsl-epfl/diffeomorphism).

Each of the two displacement components is a random sine series on the unit square,

    u(x̃, ỹ) = Σ_{i,j ≥ 1, i² + j² < (c + ½)²} C_ij sin(π i x̃) sin(π j ỹ),
    C_ij = ξ_ij / √(i² + j²),  ξ_ij ~ N(0, 1),

with pixel k at x̃ = k/(n − 1) (so the field vanishes on the border), scaled to pixels by
√T·n: dx = √T·W·u, dy = √T·H·v. The image is read at (x − dx, y − dy), bilinearly, with
coordinates clamped to the image (border padding): their ``remap``. Their sampler takes
square images only; here the x component scales with the width and the y component with
the height, which is theirs when H = W.

The temperature T sets the typical displacement δ = (n/2)·√(π T ln c) pixels
(``typical_displacement``; n = √(H·W) for non-square images), and
T ∈ [1/(π n² ln c), 4/(π³ c² ln c)] is their range: half a pixel at the centre to the
largest T without overhangs (``temperature_range``).

The coefficients (N, 2, c, c) are the deformation's parameters: saved and replayed like
TPS displacements.
"""

from __future__ import annotations

import math

import torch

from defstab._validate import check_images


def _check_cut(cut) -> int:
    if isinstance(cut, bool) or not isinstance(cut, int) or cut < 1:
        raise ValueError(f"the cut-off c must be an integer ≥ 1, got {cut!r}.")
    return cut


def _log_cut(cut: int) -> float:
    if _check_cut(cut) < 2:
        raise ValueError("the typical displacement needs a cut-off c ≥ 2 (ln 1 = 0).")
    return math.log(cut)


def temperature_range(n: float, cut: int) -> tuple[float, float]:
    """(T_min, T_max) = (1/(π n² ln c), 4/(π³ c² ln c)) for images of side n."""
    log = _log_cut(cut)
    return 1 / (math.pi * n**2 * log), 4 / (math.pi**3 * cut**2 * log)


def typical_displacement(temperature: float, cut: int, n: float) -> float:
    """δ = (n/2)·√(π T ln c) pixels."""
    return n * math.sqrt(math.pi * temperature * _log_cut(cut)) / 2


def typical_temperature(displacement: float, cut: int, n: float) -> float:
    """The T whose typical displacement is ``displacement`` px: 4δ²/(π n² ln c)."""
    return 4 * displacement**2 / (math.pi * n**2 * _log_cut(cut))


def mode_weights(cut: int) -> torch.Tensor:
    """(c, c) float64: 1/√(i² + j²) for the kept modes (i² + j² < (c + ½)²), else 0;
    [i − 1, j − 1] holds mode (i, j), i pairing with x."""
    k = torch.arange(1, _check_cut(cut) + 1, dtype=torch.float64)
    r = (k[:, None] ** 2 + k[None, :] ** 2).sqrt()
    return (r < cut + 0.5) / r


def sample_diffeo_coefficients(
    n: int, cut: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """(n, 2, c, c) float32 coefficients C_ij of u (index 0, x) and v (index 1, y), drawn on
    the CPU."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}.")
    xi = torch.randn((n, 2, cut, cut), generator=generator, dtype=torch.float64)
    return (xi * mode_weights(cut)).float()


def diffeo_field(coefficients: torch.Tensor, size: tuple[int, int], temperature: float):
    """The output → input fields (N, H, W, 2) in pixels (defstab's convention) of
    coefficients (N, 2, c, c): ``field[n, y, x] = (−dx, −dy)``."""
    if (
        coefficients.ndim != 4
        or coefficients.shape[1] != 2
        or (coefficients.shape[2] != coefficients.shape[3])
    ):
        raise ValueError(
            f"diffeo coefficients must be (N, 2, c, c), got {tuple(coefficients.shape)}."
        )
    if not temperature > 0 or not math.isfinite(temperature):
        raise ValueError(f"the temperature T must be positive, got {temperature!r}.")
    h, w = size
    c = coefficients.shape[-1]
    k = torch.arange(1, c + 1, dtype=torch.float64, device=coefficients.device)
    xs = torch.linspace(0, 1, w, dtype=torch.float64, device=coefficients.device)
    ys = torch.linspace(0, 1, h, dtype=torch.float64, device=coefficients.device)
    sx, sy = torch.sin(math.pi * xs[:, None] * k), torch.sin(math.pi * ys[:, None] * k)
    # their einsum 'ij,xi,yj->yx': i pairs with x, j with y
    uv = torch.einsum("ncij,xi,yj->nyxc", coefficients.double(), sx, sy)  # (N, H, W, 2)
    scale = math.sqrt(temperature) * torch.tensor([w, h], dtype=torch.float64,
                                                  device=coefficients.device)  # fmt: skip
    return -(uv * scale)


def apply_diffeo(
    images: torch.Tensor,
    coefficients: torch.Tensor,
    temperature: float,
    padding: str = "border",
    check: bool = True,
) -> torch.Tensor:
    """Deform each image (N, C, H, W) with its own coefficients (N, 2, c, c); ``check``
    as in :func:`~defstab.deform.warp`."""
    from defstab.deform.warp import warp

    if check:
        check_images(images)
    if coefficients.shape[0] != images.shape[0]:
        raise ValueError(
            f"diffeo coefficients hold {coefficients.shape[0]} deformations for "
            f"{images.shape[0]} images."
        )
    field = diffeo_field(coefficients, tuple(images.shape[-2:]), temperature)
    return warp(images, field.to(images.device, images.dtype), padding=padding, check=check)
