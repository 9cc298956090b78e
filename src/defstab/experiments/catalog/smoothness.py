"""E4 · Filter smoothness before and after training (Ruderman Fig. 6): the networks of
E1, another view (they are trained once and shared)."""

from __future__ import annotations

import numpy as np

from defstab.experiments.catalog import pooling
from defstab.experiments.figures import layer_curves
from defstab.experiments.findings import Evidence, finding, layer_mean, per_seed
from defstab.experiments.registry import Experiment, register_experiment
from defstab.experiments.statistics import seed_effect


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


def findings(ev: Evidence) -> list[dict]:
    conds = ev.conditions
    seeds = ev.seeds()

    def mean_tv(c, phase, seed):
        return layer_mean(ev.curve(c, phase, "smoothness", seed), skip_input=False)

    def smoother(seed):
        return np.mean([mean_tv(c, "init", seed) - mean_tv(c, "trained", seed) for c in conds])

    pairs = [
        (c, *(np.mean([mean_tv(c, p, s) for s in seeds]) for p in ("init", "trained")))
        for c in conds
    ]
    gate = ("test accuracy", ev.accuracy(conds), ev.settings["min_test_acc"])
    return [
        finding(
            "Training makes filters smoother, for every architecture.",
            "per seed: normalized TV of the 3×3 conv filters, mean over layers and types, "
            "at init minus after training (positive: smoother after training)",
            "mean TV init → trained: " + ", ".join(f"{c} {i:.3f}→{t:.3f}" for c, i, t in pairs),
            seed_effect(per_seed(ev, smoother)),
            test_accuracy=ev.accuracy(conds),
            train_accuracy=ev.accuracy(conds, "train_acc"),
            gate=gate,
        ),
        finding(
            "Architectures converge to similar smoothness.",
            "per seed: 0.05 minus the std across types of the mean TV after training "
            "(positive: types agree within 0.05 TV)",
            "std across types after training",
            seed_effect(
                per_seed(ev, lambda s: 0.05 - np.std([mean_tv(c, "trained", s) for c in conds]))
            ),
            test_accuracy=ev.accuracy(conds),
            gate=gate,
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
