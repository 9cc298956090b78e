"""The continuous transforms of the Lie derivative and their action on feature maps.

Gruver et al. 2023 (*The Lie Derivative for Measuring Learned Equivariance*, code
ngruver/lie-deriv ``lee/transforms.py``) warp an image by an affine matrix A_t on the
normalised coordinates p ∈ [−1, 1]² of ``F.affine_grid(..., align_corners=True)`` (pixel
centres at the corners: x_pix = (x + 1)/2 · (W − 1)) and sample it bilinearly, indices out
of range reflected, i ↦ (W − 1) − |(W − 1) − |i||::

    warp_t(y)(p) = y(A_t p)

    translate_x: A_t p = p + (t, 0)     (t = 1 ≙ (W − 1)/2 pixels; content moves left)
    translate_y: A_t p = p + (0, t)
    rotate:      A_t = [[cos t, sin t], [−sin t, cos t]]   (radians, about the centre)
    scale:       A_t = (1 − t) I

so d/dt A_t p at t = 0 is the generator field u(p): (1, 0), (0, 1), (y, −x), (−x, −y).

**The derivative at t = 0.** Bilinear interpolation is piecewise linear, so at t = 0 —
where every sample sits exactly on a pixel centre — its left and right derivatives differ
(backward vs forward pixel differences). Their code differentiates through ``floor``, so
which one it gets depends on how (x + 1)/2 · (W − 1) rounds. defstab takes the symmetric
derivative, the limit of central finite differences of the warp::

    d/dt warp_t(y) |₀ = u_x · (W − 1)/2 · ∂x y + u_y · (H − 1)/2 · ∂y y

with ∂ the central difference (y[i+1] − y[i−1]) / 2 on the reflected image (so 0 on the
border rows and columns, as their reflection makes it). :func:`warp` is the finite warp
itself (for finite differences and pictures); :func:`action_tangent` the derivative.

Shapes: feature maps (N, C, H, W); token sequences (N, T, D) whose last T − prefix tokens
are a square grid (a ViT) are acted on as (N, D, √, √) maps with the prefix tokens fixed,
as their code does; any other tensor (a vector of class scores) is acted on trivially.

Example:
    >>> import torch
    >>> ramp = torch.arange(5.0).expand(1, 1, 3, 5)   # value = x pixel index
    >>> action_tangent(ramp, "translate_x")[0, 0, 1]  # (W−1)/2 · ∂x = 2 · 1, 0 at the border
    tensor([0., 2., 2., 2., 0.])
"""

from __future__ import annotations

import math

import torch

#: The transforms, in the order their columns are written.
TRANSFORMS = ("translate_x", "translate_y", "rotate", "scale")
#: Names the command line accepts for several transforms at once.
ALIASES = {"translate": ("translate_x", "translate_y")}


def parse_transforms(spec: str | list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """``"translate,rotate"`` → ``("translate_x", "translate_y", "rotate")``, in the order of
    :data:`TRANSFORMS`; one sentence for an unknown name."""
    names = [s.strip() for s in spec.split(",")] if isinstance(spec, str) else list(spec)
    names = [n for n in names if n]
    if not names:
        raise ValueError("no transform named; choose from translate, rotate, scale.")
    chosen = set()
    for name in names:
        if name in ALIASES:
            chosen.update(ALIASES[name])
        elif name in TRANSFORMS:
            chosen.add(name)
        else:
            known = ", ".join([*ALIASES, *TRANSFORMS])
            raise ValueError(f"unknown transform {name!r}; choose from {known}.")
    return tuple(t for t in TRANSFORMS if t in chosen)


def affine_matrix(transform: str, t: float) -> torch.Tensor:
    """(2, 3) matrix A_t (float64) of ``transform`` at ``t``, as ``affine_grid`` takes it."""
    c, s = math.cos(t), math.sin(t)
    rows = {
        "translate_x": [[1, 0, t], [0, 1, 0]],
        "translate_y": [[1, 0, 0], [0, 1, t]],
        "rotate": [[c, s, 0], [-s, c, 0]],
        "scale": [[1 - t, 0, 0], [0, 1 - t, 0]],
    }
    if transform not in rows:
        raise ValueError(f"unknown transform {transform!r}; choose from {', '.join(TRANSFORMS)}.")
    return torch.tensor(rows[transform], dtype=torch.float64)


def generator_field(transform: str, height: int, width: int, *, dtype=torch.float32, device=None):
    """(2, H, W) generator field u(p) = d/dt A_t p at t = 0, in *pixels* per unit t:
    (x component, y component) at every pixel centre."""
    y, x = torch.meshgrid(
        torch.linspace(-1, 1, height, dtype=torch.float64),
        torch.linspace(-1, 1, width, dtype=torch.float64),
        indexing="ij",
    )
    one, zero = torch.ones_like(x), torch.zeros_like(x)
    u = {
        "translate_x": (one, zero),
        "translate_y": (zero, one),
        "rotate": (y, -x),
        "scale": (-x, -y),
    }
    if transform not in u:
        raise ValueError(f"unknown transform {transform!r}; choose from {', '.join(TRANSFORMS)}.")
    ux, uy = u[transform]
    field = torch.stack([ux * (width - 1) / 2, uy * (height - 1) / 2])
    return field.to(dtype=dtype, device=device)


def central_differences(y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(∂x y, ∂y y) of (…, H, W) maps: (y[i+1] − y[i−1]) / 2 with reflected indices; zero
    along a side of length 1."""

    def along(dim: int) -> torch.Tensor:
        n = y.shape[dim]
        if n < 2:
            return torch.zeros_like(y)
        index = torch.arange(n, device=y.device)
        ahead = _reflect(index + 1, n)
        behind = _reflect(index - 1, n)
        return (y.index_select(dim, ahead) - y.index_select(dim, behind)) / 2

    return along(-1), along(-2)


#: how the derivative at t = 0 is taken: "symmetric" (central differences, defstab's
#: default) or "gruver" (their bilinear sampling differentiated through ``floor``)
CONVENTIONS = ("symmetric", "gruver")


def check_convention(convention: str) -> str:
    if convention not in CONVENTIONS:
        raise ValueError(
            f"unknown Lie derivative convention {convention!r}; choose from "
            f"{', '.join(CONVENTIONS)}."
        )
    return convention


def floor_differences(y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(∂x y, ∂y y) of (…, H, W) maps as ngruver/lie-deriv's ``grid_sample`` gives them at
    t = 0: the sample positions ((g + 1)/2)·(W − 1) of ``F.affine_grid(align_corners=True)``
    in float32, floored, and the bilinear weights differentiated (the floor is not), indices
    reflected. Where rounding puts a position just below a pixel centre the difference is
    the backward one, else the forward one: one-sided, pixel by pixel."""
    import torch.nn.functional as F

    h, w = y.shape[-2:]
    eye = torch.tensor([[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]])  # float32, as their matrices
    grid = F.affine_grid(eye, [1, 1, h, w], align_corners=True)[0]  # (H, W, 2)
    px, py = (grid[..., 0] + 1) / 2 * (w - 1), (grid[..., 1] + 1) / 2 * (h - 1)
    x0, y0 = px.floor(), py.floor()
    wx = (px - x0).to(device=y.device, dtype=y.dtype)
    wy = (py - y0).to(device=y.device, dtype=y.dtype)
    xs = [_reflect(x0.long() + k, w).to(y.device) for k in (0, 1)]
    ys = [_reflect(y0.long() + k, h).to(y.device) for k in (0, 1)]
    flat = y.reshape(*y.shape[:-2], h * w)

    def at(j: int, i: int) -> torch.Tensor:  # (…, H, W) values at (ys[j], xs[i])
        return flat[..., (ys[j] * w + xs[i]).reshape(-1)].reshape(y.shape)

    v00, v01, v10, v11 = at(0, 0), at(0, 1), at(1, 0), at(1, 1)
    dx = (v01 - v00) * (1 - wy) + (v11 - v10) * wy
    dy = (v10 - v00) * (1 - wx) + (v11 - v01) * wx
    return dx, dy


def warp_tangent(y: torch.Tensor, transform: str, convention: str = "symmetric") -> torch.Tensor:
    """d/dt warp_t(y) at t = 0 of (…, H, W) maps: the symmetric derivative, or Gruver et
    al.'s one-sided one through ``floor`` (``convention="gruver"``)."""
    h, w = y.shape[-2:]
    field = generator_field(transform, h, w, dtype=y.dtype, device=y.device)
    differences = floor_differences if check_convention(convention) == "gruver" else None
    dx, dy = (differences or central_differences)(y)
    return field[0] * dx + field[1] * dy


def action_tangent(
    y: torch.Tensor, transform: str, prefix: int | None = None, convention: str = "symmetric"
) -> torch.Tensor:
    """The transform's infinitesimal action on a layer's output ``y`` (same shape):
    :func:`warp_tangent` for (N, C, H, W) maps; for (N, T, D) tokens when ``prefix`` is
    given and T − prefix is a square, the patch tokens' maps (prefix tokens: 0); else 0
    (the trivial action of a vector)."""
    if y.dim() == 4:
        return warp_tangent(y, transform, convention)
    if y.dim() == 3 and prefix is not None:
        side = math.isqrt(y.shape[1] - prefix)
        if side * side == y.shape[1] - prefix and side > 0:
            n, _, d = y.shape
            maps = y[:, prefix:].transpose(1, 2).reshape(n, d, side, side)
            tangent = warp_tangent(maps, transform, convention)
            tangent = tangent.reshape(n, d, side * side).transpose(1, 2)
            return torch.cat([torch.zeros_like(y[:, :prefix]), tangent], dim=1)
    return torch.zeros_like(y)


def warp(y: torch.Tensor, transform: str, t: float) -> torch.Tensor:
    """warp_t(y) for (N, C, H, W) maps: their grid (``affine_grid``'s with
    align_corners=True) and bilinear sampling with reflected indices."""
    n, c, h, w = y.shape
    theta = affine_matrix(transform, t)
    gy, gx = torch.meshgrid(
        torch.linspace(-1, 1, h, dtype=torch.float64),
        torch.linspace(-1, 1, w, dtype=torch.float64),
        indexing="ij",
    )  # affine_grid's base grid (align_corners=True), A_t applied to it
    base = torch.stack([gx, gy, torch.ones_like(gx)], dim=-1)
    grid = (base @ theta.T).to(dtype=y.dtype, device=y.device).expand(n, h, w, 2)
    px = (grid[..., 0] + 1) / 2 * (w - 1)  # (N, H, W) sample positions in pixels
    py = (grid[..., 1] + 1) / 2 * (h - 1)
    x0, y0 = px.floor(), py.floor()
    wx, wy = (px - x0).unsqueeze(1), (py - y0).unsqueeze(1)
    x0, y0 = x0.long(), y0.long()

    def at(yi, xi):  # (N, C, H, W) values at reflected integer positions
        flat = (_reflect(yi, h) * w + _reflect(xi, w)).reshape(n, 1, h * w).expand(n, c, h * w)
        return y.reshape(n, c, h * w).gather(2, flat).reshape(n, c, h, w)

    top = at(y0, x0) * (1 - wx) + at(y0, x0 + 1) * wx
    bottom = at(y0 + 1, x0) * (1 - wx) + at(y0 + 1, x0 + 1) * wx
    return top * (1 - wy) + bottom * wy


def _reflect(i: torch.Tensor, n: int) -> torch.Tensor:
    """Their index reflection i ↦ (n − 1) − |(n − 1) − |i|| (one bounce each side)."""
    if n == 1:
        return torch.zeros_like(i)
    last = n - 1
    return last - (last - i.abs()).abs()
