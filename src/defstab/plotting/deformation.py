"""The paper's Fig. 2 (Ruderman): control grid, dense field, deformed image."""

from __future__ import annotations

from pathlib import Path

import torch

from defstab.deform.tps import ThinPlateSpline
from defstab.plotting.common import plt, save_figure


def _show(ax, image: torch.Tensor, title: str) -> None:
    ax.imshow(image.permute(1, 2, 0).clamp(0, 1).cpu().numpy(), interpolation="nearest")
    ax.set_title(title, fontsize=9)
    ax.set_axis_off()


def deformation_figure(
    images: torch.Tensor,
    displacements: torch.Tensor,
    deformed: torch.Tensor,
    tps: ThinPlateSpline,
    path: str | Path,
    arrows_per_side: int = 16,
    names: list[str] | None = None,
) -> Path:
    """One row per image: original, control grid, dense field, deformed.

    Arrows follow the paper's Fig. 2: each starts where a value is read in the input
    (p + u(p)) and ends at the output pixel p that receives it.

    Args:
        images: (N, 3, H, W) in [0, 1].
        displacements: (N, k·k, 2) control displacements in pixels.
        deformed: (N, 3, H, W).
        tps: the spline that made the fields.
    """
    n = images.shape[0]
    h, w = tps.size
    field = tps.field(displacements.double()).float()
    cp = tps.control_points.float()
    step_y, step_x = max(1, h // arrows_per_side), max(1, w // arrows_per_side)
    ys = torch.arange(step_y // 2, h, step_y)
    xs = torch.arange(step_x // 2, w, step_x)
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    fig, axes = plt.subplots(n, 4, figsize=(11, 2.9 * n), squeeze=False)
    for i in range(n):
        label = f"{names[i]}: " if names else ""
        _show(axes[i, 0], images[i], f"{label}original")
        _show(axes[i, 1], images[i], f"{tps.grid}×{tps.grid} control points")
        src = cp + displacements[i].float()
        axes[i, 1].quiver(
            src[:, 0],
            src[:, 1],
            -displacements[i][:, 0],
            -displacements[i][:, 1],
            angles="xy",
            scale_units="xy",
            scale=1,
            color="yellow",
            width=0.012,
        )
        axes[i, 1].scatter(cp[:, 0], cp[:, 1], s=10, c="red", zorder=3)
        _show(axes[i, 2], images[i], "thin-plate-spline field")
        u = field[i, gy, gx]
        axes[i, 2].quiver(
            gx + u[..., 0],
            gy + u[..., 1],
            -u[..., 0],
            -u[..., 1],
            angles="xy",
            scale_units="xy",
            scale=1,
            color="cyan",
            width=0.006,
        )
        _show(axes[i, 3], deformed[i], "deformed (bilinear)")
        for ax in axes[i, 1:3]:
            ax.set_xlim(-0.5, w - 0.5)
            ax.set_ylim(h - 0.5, -0.5)
    fig.tight_layout()
    return save_figure(fig, path)


def field_figure(
    images: torch.Tensor,
    fields: torch.Tensor,
    deformed: torch.Tensor,
    path: str | Path,
    field_title: str,
    arrows_per_side: int = 16,
    names: list[str] | None = None,
    captions: list[str] | None = None,
) -> Path:
    """One row per image: original, the dense field, deformed (its title ends with the
    image's ``captions`` entry) — for deformations without
    control points (Petrini diffeomorphisms, rotations + translations).

    Args:
        images, deformed: (N, 3, H, W) in [0, 1].
        fields: (N, H, W, 2) output → input displacements in pixels: output pixel p reads
            the input at p + u(p); each arrow runs from p + u(p) to p, as in the TPS figure.
    """
    n, _, h, w = images.shape
    step_y, step_x = max(1, h // arrows_per_side), max(1, w // arrows_per_side)
    gy, gx = torch.meshgrid(
        torch.arange(step_y // 2, h, step_y), torch.arange(step_x // 2, w, step_x), indexing="ij"
    )
    fig, axes = plt.subplots(n, 3, figsize=(8.4, 2.9 * n), squeeze=False)
    for i in range(n):
        label = f"{names[i]}: " if names else ""
        _show(axes[i, 0], images[i], f"{label}original")
        _show(axes[i, 1], images[i], field_title)
        u = fields[i, gy, gx].float()
        axes[i, 1].quiver(gx + u[..., 0], gy + u[..., 1], -u[..., 0], -u[..., 1], angles="xy",
                          scale_units="xy", scale=1, color="cyan", width=0.006)  # fmt: skip
        axes[i, 1].set_xlim(-0.5, w - 0.5)
        axes[i, 1].set_ylim(h - 0.5, -0.5)
        caption = f": {captions[i]}" if captions else " (bilinear)"
        _show(axes[i, 2], deformed[i], f"deformed{caption}")
    fig.tight_layout()
    return save_figure(fig, path)
