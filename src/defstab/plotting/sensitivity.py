"""Normalized distance against layer index (the paper's Fig. 3 and 4), and smoothness."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from defstab.plotting.common import plt, save_figure


def short_layer_name(name: str) -> str:
    """ "features.conv1_2" -> "conv1_2"; the conv inside a conv block ("….0") likewise."""
    return name.removeprefix("features.").removesuffix(".0")


def plot_sensitivity(result, path: str | Path, title: str | None = None) -> Path:
    """One measurement: mean over images with a band of ±2 standard errors, and the noise
    control as a dashed line."""
    x = np.arange(len(result.layers))
    fig, ax = plt.subplots(figsize=(max(5.0, 0.42 * len(x) + 2), 3.6))
    mean = result.mean.numpy()
    sem = result.std.numpy() / np.sqrt(result.n_images)
    random_label = (
        "random deformation" if getattr(result, "worst_mean", None) is not None else "deformation"
    )
    ax.plot(x, mean, "o-", color="C0", label=random_label)
    ax.fill_between(x, mean - 2 * sem, mean + 2 * sem, color="C0", alpha=0.25, lw=0)
    if getattr(result, "worst_mean", None) is not None:
        worst = result.worst_mean.numpy()
        worst_sem = result.worst_std.numpy() / np.sqrt(result.n_images)
        ax.plot(x, worst, "^-", color="C1", label="worst-case deformation (same budget)")
        ax.fill_between(
            x, worst - 2 * worst_sem, worst + 2 * worst_sem, color="C1", alpha=0.2, lw=0
        )
    if result.noise_mean is not None:
        ax.plot(
            x,
            result.noise_mean.numpy(),
            "s--",
            color="C3",
            ms=4,
            label="noise of equal norm (control)",
        )
    ax.set_xticks(
        x, [short_layer_name(n) for n in result.layers], rotation=60, ha="right", fontsize=7
    )
    ax.set_xlabel("layer (0 = input)")
    ax.set_ylabel(f"normalized {result.meta.get('distance', 'cosine')} distance")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title or f"sensitivity, n = {result.n_images} images (band: ±2 s.e.)", fontsize=9)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_smoothness(
    values: dict[str, float],
    path: str | Path,
    reference: float | None = None,
    title: str | None = None,
) -> Path:
    """Normalized total variation per conv layer, with the expected level at init dotted
    (``reference``, where the init is known)."""
    names = list(values)
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(max(4.5, 0.45 * len(x) + 2), 3.4))
    ax.plot(x, list(values.values()), "o-")
    if reference is not None:
        ax.axhline(reference, ls=":", color="k", label=f"expected at init ≈ {reference:.3f}")
        ax.legend(fontsize=8)
    ax.set_xticks(x, [short_layer_name(n) for n in names], rotation=60, ha="right", fontsize=7)
    ax.set_ylabel("normalized total variation\n(lower = smoother)")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.set_title(title or "filter smoothness per conv layer", fontsize=9)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_robustness(flip, path: str | Path, title: str | None = None) -> Path:
    """Fraction of images whose top-1 class survives every deformation of strength ≤ C
    (as far as the attack finds), against C; the median minimal flipping C dotted."""
    import torch

    c = torch.linspace(0, flip.max_disp, 200, dtype=torch.float64)
    fig, ax = plt.subplots(figsize=(5.0, 3.4))
    ax.plot(c.numpy(), flip.survival(c).numpy(), color="C1")
    median = flip.summary()["strength_median"]
    if np.isfinite(median):
        ax.axvline(median, ls=":", color="k", label=f"median minimal C = {median:.2f} px")
        ax.legend(fontsize=8)
    ax.set_xlabel("deformation strength C (px)")
    ax.set_ylabel("fraction of predictions that survive")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.set_title(title or f"robustness to worst-case TPS deformations (n = {len(flip.strength)})",
                 fontsize=9)  # fmt: skip
    fig.tight_layout()
    return save_figure(fig, path)
