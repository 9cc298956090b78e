"""The figures of ``defstab bench``: one stability card per model (per-layer sensitivity
beside the headline fractions) and one joint figure of the models compared."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from defstab.plotting.common import plt, save_figure
from defstab.plotting.sensitivity import short_layer_name

#: units drawn on the card's [0, 1] panel
FRACTIONS = ("fraction of steps", "probability", "fraction of pairs", "fraction of frame pairs",
             "fraction correct")  # fmt: skip


def _per_layer(ax, card: list[dict], protocol: str, label: str, style: str, color) -> list:
    rows = [e for e in card if e["protocol"] == protocol and e["metric"] == "sensitivity"]
    if rows:
        ax.plot(range(len(rows)), [e["value"] for e in rows], style, color=color, label=label)
    return [short_layer_name(e["layer"]) for e in rows]


def _layer_axis(ax, names: list[str]) -> None:
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels(names, rotation=60, ha="right", fontsize=7)
    ax.set_ylabel("normalized distance")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)


def card_figure(label: str, card: list[dict], path: str | Path, subtitle: str = "") -> Path:
    """Left: sensitivity per layer to TPS deformations and diffeomorphisms; right: every
    headline fraction of the card on one [0, 1] axis, marked with which way is more
    stable."""
    from defstab.pipeline.bench_card import headline

    fig, (left, right) = plt.subplots(1, 2, figsize=(10.5, 3.8),
                                      gridspec_kw={"width_ratios": [1.3, 1]})  # fmt: skip
    names = _per_layer(left, card, "tps", "TPS", "o-", "C0")
    names = _per_layer(left, card, "diffeo", "diffeo", "s--", "C1") or names
    if names:
        _layer_axis(left, names)
        left.legend(fontsize=8)
        left.set_title("sensitivity per layer (lower: more stable)", fontsize=9)
    else:
        left.axis("off")
    shown = [e for e in headline(card) if e["unit"] in FRACTIONS]
    y = np.arange(len(shown))
    right.scatter([e["value"] for e in shown], y, color="C2", zorder=3)
    right.set_yticks(y)
    right.set_yticklabels([f"{e['key']} {'↓' if e['direction'] == 'lower' else '↑'}"
                           for e in shown], fontsize=7)  # fmt: skip
    for e, k in zip(shown, y, strict=True):
        right.annotate(f"{e['value']:.3g}", (e["value"], k), xytext=(5, 0),
                       textcoords="offset points", va="center", fontsize=7)  # fmt: skip
    right.set_xlim(0, 1)
    right.invert_yaxis()
    right.grid(alpha=0.3)
    right.set_title("fractions (↓ lower / ↑ higher is more stable)", fontsize=9)
    fig.suptitle(f"Stability card: {label}" + (f" — {subtitle}" if subtitle else ""), fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path)


def comparison_figure(cards: dict[str, list[dict]], comparisons: list[dict],
                      path: str | Path) -> Path:  # fmt: skip
    """Left: every model's TPS sensitivity per layer; right: the paired differences of
    the first model against each other (95% bootstrap intervals), one row per headline
    metric with an interval, in that metric's unit."""
    from defstab.pipeline.bench_card import headline

    labels = list(cards)
    fig, (left, right) = plt.subplots(1, 2, figsize=(12.5, 4.4),
                                      gridspec_kw={"width_ratios": [1, 1.2]})  # fmt: skip
    names = []
    for k, label in enumerate(labels):
        names = _per_layer(left, cards[label], "tps", label, "o-", f"C{k}") or names
    if names:
        _layer_axis(left, names)
        left.legend(fontsize=8)
        left.set_title("TPS sensitivity per layer", fontsize=9)
    keys = [e["key"] for e in headline(cards[labels[0]])]
    rows = [r for r in comparisons if r["a"] == labels[0] and r["key"] in keys
            and r["ci_low"] is not None]  # fmt: skip
    others = list(dict.fromkeys(r["b"] for r in rows))
    order = list(dict.fromkeys(r["key"] for r in rows))
    for j, other in enumerate(others):
        mine = [r for r in rows if r["b"] == other]
        y = np.array([order.index(r["key"]) for r in mine]) + 0.15 * j
        # rows differ in unit and scale (a Lie derivative per unit², a fraction): each row
        # is drawn over its own largest |end| of interval, the numbers are written beside
        scale = np.array([max(abs(r["ci_low"]), abs(r["ci_high"]), abs(r["effect"])) or 1.0
                          for r in mine])  # fmt: skip
        effect = np.array([r["effect"] for r in mine]) / scale
        err = np.array([[r["effect"] - r["ci_low"] for r in mine],
                        [r["ci_high"] - r["effect"] for r in mine]]) / scale  # fmt: skip
        right.errorbar(effect, y, xerr=err, fmt="o", color=f"C{labels.index(other)}",
                       capsize=2, label=f"{labels[0]} − {other}")  # fmt: skip
        for r, k in zip(mine, y, strict=True):  # the numbers: rows differ in unit and scale
            right.annotate(f"{r['effect']:+.3g} [{r['ci_low']:+.3g}, {r['ci_high']:+.3g}]",
                           (1.01, k), xycoords=("axes fraction", "data"), va="center",
                           fontsize=6, color=f"C{labels.index(other)}")  # fmt: skip
    right.axvline(0, color="k", lw=0.8)
    right.set_xlim(-1.1, 1.1)
    right.set_xticks([-1, 0, 1], ["−", "0", "+"])
    right.set_yticks(range(len(order)))
    arrows = {r["key"]: "↓" if r["direction"] == "lower" else "↑" for r in rows}
    right.set_yticklabels([f"{k} {arrows[k]}" for k in order], fontsize=7)
    right.invert_yaxis()
    right.grid(alpha=0.3)
    right.set_xlabel(
        "paired difference A − B with its 95% bootstrap interval, each row over its own "
        "scale (the numbers at the right; ↓/↑: lower/higher is more stable)",
        fontsize=8,
    )
    if others:
        right.legend(fontsize=7, loc="lower left")
    fig.suptitle("Models compared on the same images", fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path)
