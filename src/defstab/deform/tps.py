"""Exact thin-plate-spline interpolation of control-point displacements.

The control points sit on a fixed k×k grid, so the dense field is a *linear*
function of the k²×2 control displacements (Duchon 1977). We build that linear
operator once per (size, grid, device, dtype) and apply it with one matrix product.
"""

from __future__ import annotations

import torch

from defstab._validate import check_finite, check_grid, check_size


def tps_kernel(r2: torch.Tensor) -> torch.Tensor:
    """φ(r) = r² log r, written in terms of r² (φ = ½ r² log r²), with φ(0) = 0."""
    return 0.5 * r2 * torch.log(r2.clamp_min(torch.finfo(r2.dtype).tiny))


def grid_control_points(size: tuple[int, int], grid: int) -> torch.Tensor:
    """Control points of a k×k grid spanning the pixel centres, outermost on the border.

    Returns:
        (k·k, 2) float64 tensor of pixel coordinates in (x, y) order, row-major
        (y varies slowest).
    """
    h, w = size
    ys = torch.linspace(0, h - 1, grid, dtype=torch.float64)
    xs = torch.linspace(0, w - 1, grid, dtype=torch.float64)
    yy, xx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([xx.reshape(-1), yy.reshape(-1)], dim=1)


def pixel_coordinates(size: tuple[int, int], dtype=torch.float64, device=None) -> torch.Tensor:
    """(H, W, 2) tensor whose entry [y, x] is (x, y)."""
    h, w = size
    ys = torch.arange(h, dtype=dtype, device=device)
    xs = torch.arange(w, dtype=dtype, device=device)
    yy, xx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([xx, yy], dim=-1)


def tps_operator(size: tuple[int, int], control_points: torch.Tensor) -> torch.Tensor:
    """The (H·W, n) matrix M with field = M @ displacements, computed in float64.

    Solves the TPS system [[K, P], [Pᵀ, 0]] [w; a] = [v; 0] with K_ij = φ(|c_i − c_j|) and
    P = [1, x, y], then evaluates u(p) = Σ w_i φ(|p − c_i|) + a0 + a1 x + a2 y at every pixel.
    """
    c = control_points.to(torch.float64)
    n = c.shape[0]
    # Centre and scale the coordinates so the solve is well conditioned at 224×224; the
    # spline is invariant to this affine change of frame (the polynomial part absorbs it).
    centre = c.mean(0)
    scale = (c - centre).abs().max().clamp_min(1.0)
    cs = (c - centre) / scale
    kernel = tps_kernel(torch.cdist(cs, cs).square())
    poly = torch.cat([torch.ones(n, 1, dtype=torch.float64), cs], dim=1)
    system = torch.zeros(n + 3, n + 3, dtype=torch.float64)
    system[:n, :n] = kernel
    system[:n, n:] = poly
    system[n:, :n] = poly.T
    # Columns of the inverse that multiply the displacements (the right-hand side is [v; 0]).
    coeffs = torch.linalg.solve(system, torch.eye(n + 3, n, dtype=torch.float64))
    p = (pixel_coordinates(size).reshape(-1, 2) - centre) / scale
    basis = torch.cat(
        [
            tps_kernel(torch.cdist(p, cs).square()),
            torch.ones(p.shape[0], 1, dtype=torch.float64),
            p,
        ],
        dim=1,
    )
    return basis @ coeffs


class ThinPlateSpline:
    """Dense displacement fields from control-point displacements on a fixed k×k grid.

    Args:
        size: image size ``(H, W)`` in pixels.
        grid: control points per side, k ≥ 2 (CIFAR: 3, ImageNet: 5).

    Attributes:
        control_points: (k·k, 2) tensor of pixel coordinates (x, y), row-major.

    Example:
        >>> import torch
        >>> tps = ThinPlateSpline((32, 32), grid=3)
        >>> tps.control_points[:3].tolist()
        [[0.0, 0.0], [15.5, 0.0], [31.0, 0.0]]
        >>> tps.field(torch.zeros(4, 9, 2)).shape
        torch.Size([4, 32, 32, 2])
    """

    def __init__(self, size: tuple[int, int], grid: int = 3) -> None:
        self.size = check_size(size)
        self.grid = check_grid(grid)
        self.control_points = grid_control_points(self.size, self.grid)
        self._operator64 = tps_operator(self.size, self.control_points)
        self._operators: dict[tuple, torch.Tensor | tuple[torch.Tensor, ...]] = {}

    @property
    def num_points(self) -> int:
        return self.grid * self.grid

    def operator(self, device=None, dtype=torch.float32) -> torch.Tensor:
        """The (H·W, k·k) interpolation matrix M (field = M @ displacements)."""
        return self._cached("operator", device, dtype, lambda: self._operator64)

    def _block_operator(self, device, dtype, normalized: bool) -> torch.Tensor:
        """A with ``field.view(N, -1) = [D, 1] @ A`` for D = displacements as (N, 2·k·k).

        A's first 2·k·k rows are block diagonal in the coordinate, so one GEMM writes the
        field directly in the (N, H, W, 2) layout that grid_sample reads (a batched
        (H·W, k·k) @ (k·k, 2) product is several times slower on CPU); its last row is the
        constant term, multiplied by a column of ones, so the GEMM writes its output once
        instead of copying a broadcast bias into it first (a third of the work at 32 px).
        With ``normalized=True`` A also folds in grid_sample's [-1, 1] scaling and the
        identity grid, so the GEMM's output is the sampling grid itself.
        """
        h, w = self.size

        def build():
            op = self._operator64
            hw, n = op.shape
            scale = torch.tensor(
                [2.0 / (w - 1), 2.0 / (h - 1)] if normalized else [1.0, 1.0], dtype=torch.float64
            )
            a = torch.zeros(2 * n + 1, hw, 2, dtype=torch.float64)
            for c in range(2):
                a[c * n : (c + 1) * n, :, c] = op.T * scale[c]
            if normalized:
                a[2 * n] = pixel_coordinates(self.size).reshape(hw, 2) * scale - 1.0
            return a.reshape(2 * n + 1, hw * 2)

        return self._cached(("block", normalized), device, dtype, build)

    def _cached(self, name, device, dtype, build):
        key = (name, torch.device(device or "cpu"), dtype)
        if key not in self._operators:
            built = build()
            if isinstance(built, tuple):
                self._operators[key] = tuple(t.to(device=key[1], dtype=dtype) for t in built)
            else:
                self._operators[key] = built.to(device=key[1], dtype=dtype)
        return self._operators[key]

    def _check_displacements(self, d: torch.Tensor, values: bool = True) -> None:
        if not isinstance(d, torch.Tensor) or d.ndim != 3 or d.shape[1:] != (self.num_points, 2):
            shape = tuple(d.shape) if isinstance(d, torch.Tensor) else type(d)
            raise ValueError(
                f"displacements must have shape (N, {self.num_points}, 2) for a "
                f"{self.grid}×{self.grid} grid, got {shape}."
            )
        if not d.is_floating_point():
            raise ValueError(f"displacements must be floating point, got dtype {d.dtype}.")
        if values:  # reads the device
            check_finite(d, "displacements")

    def _apply_block(self, d: torch.Tensor, normalized: bool) -> torch.Tensor:
        a = self._block_operator(d.device, d.dtype, normalized)
        flat = torch.cat(  # (N, [x..., y..., 1])
            [d.transpose(1, 2).reshape(d.shape[0], 2 * self.num_points), d.new_ones(len(d), 1)],
            dim=1,
        )
        h, w = self.size
        return torch.mm(flat, a).view(d.shape[0], h, w, 2)

    def field(self, displacements: torch.Tensor) -> torch.Tensor:
        """Interpolate control displacements to a dense field.

        Args:
            displacements: (N, k·k, 2) displacements in pixels, (x, y) order.

        Returns:
            (N, H, W, 2) displacement field in pixels, (x, y) order; differentiable with
            respect to ``displacements``.
        """
        self._check_displacements(displacements)
        return self._apply_block(displacements, normalized=False)

    def sampling_grid(self, displacements: torch.Tensor) -> torch.Tensor:
        """grid_sample's grid (align_corners=True) for these displacements: (N, H, W, 2)."""
        self._check_displacements(displacements)
        return self._apply_block(displacements, normalized=True)

    def __repr__(self) -> str:
        return f"ThinPlateSpline(size={self.size}, grid={self.grid})"
