"""The ImageNet-P figure: flip probability and top-5 distance per perturbation, beside the
baseline network's when one was measured, and the flip rate."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from defstab.plotting.common import plt, save_figure


def flip_figure(rows: list[dict], path: str | Path, title: str = "") -> Path:
    """Bars per perturbation: FP and T5D of the model (and the baseline), and FR."""
    rows = [r for r in rows if r["perturbation"] != "mean"]
    names = [r["perturbation"] for r in rows]
    has_base = all("baseline_fp" in r for r in rows)
    panels = [("fp", "flip probability (FP)"), ("t5d", "top-5 distance (T5D)")]
    panels += [("fr", "flip rate FR = FP / baseline FP")] if has_base else []
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.4), squeeze=False)
    x = np.arange(len(names))
    for ax, (key, label) in zip(axes[0], panels, strict=True):
        if key == "fr":
            ax.bar(x, [r["fr"] for r in rows], color="tab:purple")
            ax.axhline(1.0, color="gray", lw=0.8, ls="--")
        else:
            width = 0.38 if has_base else 0.7
            ax.bar(x - (width / 2 if has_base else 0), [r[key] for r in rows], width,
                   label="model")  # fmt: skip
            if has_base:
                ax.bar(x + width / 2, [r[f"baseline_{key}"] for r in rows], width,
                       label="baseline", color="tab:gray")  # fmt: skip
                ax.legend(fontsize=8)
        ax.set_xticks(x, names, rotation=30, ha="right", fontsize=8)
        ax.set_title(label, fontsize=9)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path)


def spatial_figure(summary: dict, tries: int, path: str | Path, title: str = "") -> Path:
    """Bars: accuracy on the images as they are, under one random rotation + translation,
    under the worst of ``tries`` random ones and under the worst of the whole grid
    (Engstrom et al. 2019's four columns)."""
    keys = [("natural", "natural"), ("random", "random"),
            (f"worst_of_{tries}", f"worst of {tries}"), ("grid", "grid")]  # fmt: skip
    fig, ax = plt.subplots(figsize=(4.6, 3.2))
    values = [float(summary[k]) for k, _ in keys]
    bars = ax.bar(range(len(keys)), values, color=["C0", "C1", "C3", "C4"])
    ax.bar_label(bars, labels=[f"{v:.3f}" for v in values], fontsize=8)
    ax.set_xticks(range(len(keys)), [label for _, label in keys], fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("accuracy (fraction correct)")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return save_figure(fig, path)
