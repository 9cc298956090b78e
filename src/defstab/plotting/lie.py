"""The Lie derivative per layer and each module's contribution (Gruver et al. 2023)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from defstab.plotting.common import plt, save_figure
from defstab.plotting.sensitivity import short_layer_name

#: contributions below this fraction of a transform's largest are rounding, not drawn
NUMERICAL_ZERO = 1e-9
MARKERS = {"translate_x": "o", "translate_y": "s", "rotate": "^", "scale": "D"}


def plot_lie(result, path: str | Path, title: str | None = None) -> Path:
    """Top: ‖L_X r(x)‖ / ‖r(x)‖ per measured layer, a line per transform with a band of ±2
    standard errors over images. Below (when contributions were computed): each leaf
    module's mean contribution ‖J L_i‖² on a log scale, in forward order, and what
    operations outside modules add; the end-to-end ‖L_X softmax‖² in the legend."""
    with_units = result.contributions is not None and len(result.units) > 0
    leaves = [k for k, leaf in enumerate(result.leaf.tolist()) if leaf] if with_units else []
    width_left = max(4.5, 0.4 * len(result.layers) + 2)
    width_right = max(4.5, 0.16 * (len(leaves) + 1) + 2) if with_units else 0
    # one above the other: a ResNet has 20 measured layers and 60 leaves
    fig, axes = plt.subplots(
        2 if with_units else 1,
        1,
        figsize=(min(16.0, max(width_left, width_right)), 4.2 * (2 if with_units else 1)),
        squeeze=False,
    )
    ax = axes[0, 0]
    x = np.arange(len(result.layers))
    n = result.n_images
    for i, t in enumerate(result.transforms):
        values = result.relative[i].numpy()
        mean = np.nanmean(values, axis=1)
        sem = np.nanstd(values, axis=1, ddof=1) / np.sqrt(n) if n > 1 else np.zeros_like(mean)
        ax.plot(x, mean, marker=MARKERS.get(t, "o"), ms=4, color=f"C{i}", label=t)
        ax.fill_between(x, mean - 2 * sem, mean + 2 * sem, color=f"C{i}", alpha=0.2, lw=0)
    ax.set_xticks(
        x, [short_layer_name(name) for name in result.layers], rotation=60, ha="right", fontsize=7
    )
    ax.set_xlabel("layer (0 = input)")
    ax.set_ylabel("‖L_X r(x)‖ / ‖r(x)‖\n(0 = equivariant)")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    convention = result.meta.get("convention", "symmetric")
    ax.set_title(
        f"Lie derivative per layer ({convention} derivative), n = {n} (band: ±2 s.e.)",
        fontsize=9,
    )
    if with_units:
        ax = axes[1, 0]
        names = [
            f"{result.units[k].removeprefix('features.')} {result.unit_types[k]}" for k in leaves
        ] + ["(outside modules)"]
        xu = np.arange(len(names))
        for i, t in enumerate(result.transforms):
            leaf_values = result.contributions[i, leaves].mean(-1).numpy()
            values = np.append(leaf_values, float(result.unattributed[i].mean()))
            total = float(result.end_to_end_sq[i].mean())
            # zero in exact arithmetic (batch norm, pointwise linear maps) is rounding here:
            # left out rather than drawn as a cliff on the log scale
            zero = values <= NUMERICAL_ZERO * values.max()
            ax.plot(
                xu,
                np.where(zero, np.nan, values),
                marker=MARKERS.get(t, "o"),
                ms=3,
                lw=0.8,
                color=f"C{i}",
                label=f"{t} (end to end {total:.2g})",
            )
        ax.set_yscale("log")
        ax.set_xticks(xu, names, rotation=90, fontsize=6)
        ax.set_ylabel("contribution ‖J L_i‖²\n(mean over images)")
        ax.grid(alpha=0.3, which="both", lw=0.4)
        ax.legend(fontsize=7)
        ax.set_title(
            "each module's contribution (Gruver et al.'s layer-wise error; "
            f"< {NUMERICAL_ZERO:g} × the largest: not drawn)",
            fontsize=8,
        )
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return save_figure(fig, path)
