"""The paper's figures: a metric against layer index, one line per condition, bands of
±2 std over seeds, panels side by side (init | trained)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from defstab.experiments.aggregate import select
from defstab.metrics.smoothness import EXPECTED_AT_INIT
from defstab.plotting.common import plt, save_figure
from defstab.plotting.sensitivity import short_layer_name

LOWER_BOUND = 0.0  # every plotted metric is ≥ 0
INIT_SMOOTHNESS = EXPECTED_AT_INIT["paper"][0]  # analytic; the paper estimated ≈ 1.87
YLABELS = {
    "sensitivity": "normalized cosine distance",
    "noise": "normalized distance (noise)",
    "worst": "normalized cosine distance\n(worst case)",
    "smoothness": "normalized total variation\n(lower = smoother)",
    "diffeo": "normalized cosine distance\n(Petrini diffeomorphism)",
    "lie": "‖L_X r(x)‖ / ‖r(x)‖\n(mean over transforms)",
}


def layer_curves(
    summary,
    panels,
    conditions,
    path: Path,
    suptitle: str,
    colors=None,
    label=lambda c: c,
    columns: int | None = None,
) -> Path:
    """``panels``: list of (title, phase, metric, condition filter or None), ``columns`` a
    row (default: all in one row)."""
    columns = columns or len(panels)
    rows = -(-len(panels) // columns)
    fig, axes = plt.subplots(
        rows,
        columns,
        figsize=(5.2 * columns, 3.8 * rows),
        squeeze=False,
        sharey=len({p[2] for p in panels}) == 1,
    )
    for ax in axes.flat[len(panels) :]:
        ax.set_visible(False)
    # one colour per label in every panel (E5 plots each architecture in three panels)
    slot = {name: i for i, name in enumerate(dict.fromkeys(label(c) for c in conditions))}
    for ax, (title, phase, metric, keep) in zip(axes.flat, panels, strict=False):
        names = None
        for j, cond in enumerate(conditions):
            if keep is not None and not keep(cond):
                continue
            rows = sorted(
                select(summary, condition=cond, phase=phase, metric=metric),
                key=lambda r: int(r["layer_index"]),
            )
            if not rows:
                continue
            x = np.array([int(r["layer_index"]) for r in rows])
            mean = np.array([float(r["mean"]) for r in rows])
            # mean ± 2 std as the paper draws it, but never below the metric's floor (0:
            # distances and total variations are non-negative)
            lo = np.maximum(np.array([float(r["lo"]) for r in rows]), LOWER_BOUND)
            hi = np.array([float(r["hi"]) for r in rows])
            color = colors[j] if colors else f"C{slot[label(cond)]}"
            ax.plot(x, mean, "o-", ms=3, color=color, label=label(cond))
            ax.fill_between(x, lo, hi, color=color, alpha=0.18, lw=0)
            names = [short_layer_name(r["layer"]) for r in rows]
        if metric == "smoothness":
            ax.axhline(
                INIT_SMOOTHNESS, ls=":", color="k", lw=1, label="init, truncated normal (1.857)"
            )
        if names:
            ax.set_xticks(
                range(len(names)) if metric != "smoothness" else x,
                names,
                rotation=60,
                ha="right",
                fontsize=7,
            )
        ax.set_title(title, fontsize=10)
        ax.set_ylabel(YLABELS[metric])
        ax.set_xlabel("layer (0 = input)" if metric != "smoothness" else "conv layer")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(suptitle, fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path)


def shades(n: int, cmap: str = "viridis_r") -> list:
    """n colours from light to dark (darker = stronger, as the paper's Fig. 4)."""
    cm = plt.get_cmap(cmap)
    return [cm(0.15 + 0.8 * i / max(1, n - 1)) for i in range(n)]


def bar_measures(
    summary, conditions, metrics, path: Path, suptitle: str, columns: int | None = None
) -> Path:
    """Grouped bars: one panel per metric, one bar per condition, error bars ±2 std;
    ``columns`` panels a row (default: all in one row)."""
    columns = columns or len(metrics)
    rows = -(-len(metrics) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(3.4 * columns, 3.2 * rows), squeeze=False)
    for ax in axes.flat[len(metrics) :]:
        ax.set_visible(False)
    for ax, metric in zip(axes.flat, metrics, strict=False):
        means, errs = [], []
        for cond in conditions:
            rows = select(summary, condition=cond, metric=metric)
            means.append(float(rows[0]["mean"]) if rows else np.nan)
            errs.append(2 * float(rows[0]["std"]) if rows else 0.0)
        means, errs = np.array(means), np.array(errs)
        below = np.minimum(errs, np.nan_to_num(means - LOWER_BOUND))  # bars stop at 0
        ax.bar(
            range(len(conditions)),
            means,
            yerr=np.stack([below, errs]),
            color=[f"C{i}" for i in range(len(conditions))],
            capsize=3,
        )
        ax.set_xticks(range(len(conditions)), conditions, rotation=30, ha="right", fontsize=8)
        ax.set_title(metric.replace(":", ": "), fontsize=9)
        ax.grid(alpha=0.3, axis="y")
    fig.suptitle(suptitle, fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path)
