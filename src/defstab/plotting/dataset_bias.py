"""The dataset-bias figure: where box centres fall and how large boxes are, in a data set
and in the same boxes placed uniformly."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from defstab.data.boxes import CENTRAL, Boxes, centre_histogram
from defstab.plotting.common import plt, save_figure


def bias_figure(data: Boxes, uniform: Boxes, path: Path, title: str, bins: int = 20) -> Path:
    """Row 1: 2-D histograms of box centres (fraction of boxes per cell, one colour scale),
    data | uniform placement, the central quarter outlined. Row 2: centre x and y
    distributions, and box size (area fraction, log scale) — the sizes are the same
    boxes in both, so only the positions differ."""
    hists = [centre_histogram(b, bins) for b in (data, uniform)]
    vmax = max(float(h.max()) for h in hists)
    fig, axes = plt.subplots(2, 2, figsize=(9.5, 8.4))
    for ax, h, name in zip(axes[0], hists, ("data", "uniform placement"), strict=True):
        im = ax.imshow(h, extent=(0, 1, 1, 0), vmin=0, vmax=vmax, cmap="magma")
        lo, hi = CENTRAL
        ax.plot([lo, hi, hi, lo, lo], [lo, lo, hi, hi, lo], color="w", lw=1, ls="--")
        ax.set_title(f"box centres: {name}", fontsize=10)
        ax.set_xlabel("centre x / image width")
        ax.set_ylabel("centre y / image height")
    fig.colorbar(im, ax=axes[0].tolist(), shrink=0.8, label="fraction of boxes per cell")
    edges = np.linspace(0, 1, bins + 1)
    ax = axes[1, 0]
    for b, name, color in ((data, "data", "C0"), (uniform, "uniform", "C1")):
        for axis, ls in ((0, "-"), (1, ":")):
            counts, _ = np.histogram(b.centres[:, axis], edges)
            label = f"{name}, centre {'xy'[axis]}"
            ax.stairs(counts / len(b), edges, color=color, ls=ls, label=label)
    ax.set_xlabel("centre / image side")
    ax.set_ylabel("fraction of boxes")
    ax.legend(fontsize=7)
    ax = axes[1, 1]
    sizes = data.sizes
    size_edges = np.logspace(np.log10(max(sizes.min(), 1e-6)), 0, bins + 1)
    counts, _ = np.histogram(sizes, size_edges)
    ax.stairs(counts / len(sizes), size_edges, color="C0", fill=True, alpha=0.6)
    ax.set_xscale("log")
    ax.axvline(float(np.median(sizes)), color="k", ls=":", lw=1, label="median")
    ax.set_xlabel("box area / image area (same in both)")
    ax.set_ylabel("fraction of boxes")
    ax.legend(fontsize=7)
    for ax in axes[1]:
        ax.grid(alpha=0.3)
    fig.suptitle(title, fontsize=10)
    return save_figure(fig, path)
