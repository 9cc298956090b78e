"""E4 · Filter smoothness before and after training (Ruderman Fig. 6): the networks of
E1, another view (they are trained once and shared)."""

from __future__ import annotations

import numpy as np

from defstab.experiments.catalog import pooling
from defstab.experiments.figures import layer_curves
from defstab.experiments.findings import finding, mean_curve
from defstab.experiments.registry import Experiment, register_experiment


def figure(summary, conditions, path, title):
    return layer_curves(
        summary,
        [
            ("at initialisation", "init", "smoothness", None),
            ("after training", "trained", "smoothness", None),
        ],
        conditions,
        path,
        title,
    )


def findings(summary, conditions) -> list[dict]:
    pairs = [
        (
            c,
            mean_curve(summary, c, "init", "smoothness"),
            mean_curve(summary, c, "trained", "smoothness"),
        )
        for c in conditions
    ]
    smoother = [c for c, i, t in pairs if t < i]
    a = np.std([i for _, i, _ in pairs])
    b = np.std([t for _, _, t in pairs])
    return [
        finding(
            "Training makes filters smoother, for every architecture.",
            "mean normalized TV init → trained: "
            + ", ".join(f"{c} {i:.3f}→{t:.3f}" for c, i, t in pairs),
            len(smoother) == len(pairs),
        ),
        finding(
            "Architectures converge to similar smoothness.",
            f"std across architectures of the mean TV: init {a:.3f}, trained {b:.3f}",
            None,
        ),
    ]


EXPERIMENT = register_experiment(
    Experiment(
        name="smoothness",
        title="E4 · Filter smoothness before and after training (Ruderman Fig. 6)",
        plan=pooling.plan,
        figure=figure,
        findings=findings,
        summary="filter smoothness of E1's networks, at init and trained",
        order=4,
    )
)
