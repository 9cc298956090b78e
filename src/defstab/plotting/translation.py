"""Figures of the translation protocols (Azulay & Weiss Fig. 1 and the jaggedness plots)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from defstab.plotting.common import plt, save_figure

#: Paths drawn at most (the first images): a figure of 50,000 rows would be unreadable.
MAX_PATHS = 64


def path_figure(result, path: str | Path, title: str = "") -> Path:
    """Left: images × steps, light = correct, dark = wrong (their Fig. 1). Right: the
    probability of the true class along each path (or of the first frame's top-1).
    The first :data:`MAX_PATHS` images."""
    steps = result.steps
    n = min(steps.shape[0], MAX_PATHS)
    top = steps.top1[:n].numpy()
    if result.labels is not None:
        y = result.labels[:n].numpy()
        correct = top == y[:, None]
        p = steps.p_true[:n].numpy()
        right_label = "P(true class)"
    else:
        correct = top == top[:, :1]
        p = steps.p_first[:n].numpy()
        right_label = "P(first frame's top-1)"
    if steps.shape[0] > n:
        right_label += f" — first {n} of {steps.shape[0]} images"
    fig, axes = plt.subplots(1, 2, figsize=(11, 0.18 * n + 2.2))
    axes[0].imshow(correct, cmap="gray", vmin=-0.3, vmax=1, aspect="auto", interpolation="nearest")
    axes[0].set_xlabel(f"step ({result.protocol})")
    axes[0].set_ylabel("image")
    axes[0].set_title("top-1 correct (light) or wrong (dark)", fontsize=9)
    im = axes[1].imshow(p, cmap="viridis", vmin=0, vmax=1, aspect="auto", interpolation="nearest")
    axes[1].set_xlabel(f"step ({result.protocol})")
    axes[1].set_title(right_label, fontsize=9)
    fig.colorbar(im, ax=axes[1], fraction=0.04)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path)


def measures_vs_size(rows: list[dict], path: str | Path, title: str = "") -> Path:
    """P(top-1 change), MAC and jaggedness against object size, one line per protocol."""
    keys = [k for k in ("p_top1_change", "mac", "jaggedness") if any(k in r for r in rows)]
    fig, axes = plt.subplots(1, len(keys), figsize=(4 * len(keys), 3.2), squeeze=False)
    for ax, key in zip(axes[0], keys, strict=True):
        for proto in dict.fromkeys(r["protocol"] for r in rows):
            pts = sorted(
                (r["object_size"], r[key])
                for r in rows
                if r["protocol"] == proto and "object_size" in r and key in r
            )
            if pts:
                ax.plot(*zip(*pts, strict=True), "o-", label=proto)
        ax.set_xlabel("object size (px)")
        ax.set_title(key, fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path)


def layer_shift_figure(rows: list[dict], path: str | Path, title: str = "") -> Path:
    """Per layer: invariance and equivariance for shifts that are / are not multiples of
    the layer's cumulative stride."""
    layers = list(dict.fromkeys(r["layer"] for r in rows))
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
    x = np.arange(len(layers))
    for ax, key in zip(axes, ("invariance", "equivariance"), strict=True):
        for mult, style, lab in (
            (1, "o-", "shift a multiple of the stride"),
            (0, "s--", "other shifts"),
        ):
            vals = []
            for name in layers:
                v = [r[key] for r in rows if r["layer"] == name and r["multiple_of_stride"] == mult]
                v = [u for u in v if u == u]  # drop NaN (no overlap left at large shifts)
                vals.append(float(np.mean(v)) if v else np.nan)
            ax.plot(x, vals, style, label=lab)
        ax.set_xticks(
            x, [n.removeprefix("features.") for n in layers], rotation=60, ha="right", fontsize=7
        )
        # the measure as the panel's title: a long vertical label would run into the title
        ax.set_title(key, fontsize=9)
        ax.set_ylabel("normalized cosine distance")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path)


def worst_shift_figure(rows: list[dict], path: str | Path, title: str = "") -> Path:
    """Per worst-shift grid (Michaeli et al. 2023): the accuracy on the images as they
    are beside the accuracy under the worst shift of the grid (an image counts only if
    every shift of the grid keeps it right)."""
    x = np.arange(len(rows))
    fig, ax = plt.subplots(figsize=(max(4.0, 1.6 * len(rows) + 1.5), 3.2))
    clean = ax.bar(x - 0.2, [r["accuracy"] for r in rows], 0.4, label="unshifted", color="C0")
    worst = ax.bar(x + 0.2, [r["robust_accuracy"] for r in rows], 0.4, label="worst shift",
                   color="C3")  # fmt: skip
    for bars in (clean, worst):
        ax.bar_label(bars, labels=[f"{b.get_height():.3f}" for b in bars], fontsize=7)
    ax.set_xticks(x, [f"{r['protocol'].removeprefix('worst-')}\n({r['shifts']} shifts)"
                      for r in rows], fontsize=8)  # fmt: skip
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("accuracy (fraction correct)")
    ax.legend(fontsize=8)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return save_figure(fig, path)
