"""E4 · Filter smoothness before and after training (Ruderman Fig. 6): the networks of
E1, another view (they are trained once and shared)."""

from __future__ import annotations

import math

import numpy as np

from defstab.experiments.catalog import pooling
from defstab.experiments.figures import layer_curves
from defstab.experiments.findings import Evidence, finding, layer_mean, per_seed
from defstab.experiments.index import SUMMARIES
from defstab.experiments.registry import Experiment, register_experiment
from defstab.experiments.statistics import SmallestEffect, seed_effect

# Smallest effects of interest, stated before any run (never tuned after one).
#: a change of normalized total variation (TV), in TV units
TV_CHANGE = SmallestEffect(
    0.035,
    "the largest std of one layer's TV over re-draws of the initialisation (0.035 in the "
    "first layer; 0.012 in larger ones; Ruderman footnote 1): a smaller change is within "
    "what a different random init gives",
)
#: types agree when the std across types of their trained TV is below AGREE_WITHIN
AGREE_WITHIN = 0.05
AGREEMENT_MARGIN = SmallestEffect(
    0.012,
    "the smallest std of one layer's TV over re-draws of the initialisation (Ruderman "
    "footnote 1): agreement within 0.05 TV must hold by more than init-to-init noise",
)


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

    def agreement(seed):
        return AGREE_WITHIN - np.std([mean_tv(c, "trained", seed) for c in conds])

    pairs = [
        (c, *(np.mean([mean_tv(c, p, s) for s in seeds]) for p in ("init", "trained")))
        for c in conds
    ]
    gate = ev.gate()
    smoother_claim = "Training makes filters smoother, for every architecture."
    agree_claim = "Architectures converge to similar smoothness."
    return [
        finding(
            smoother_claim,
            "per seed: normalized TV of the 3×3 conv filters, mean over layers and types, "
            "at init minus after training (positive: smoother after training)",
            "mean TV init → trained: " + ", ".join(f"{c} {i:.3f}→{t:.3f}" for c, i, t in pairs),
            seed_effect(per_seed(ev, smoother, claim=smoother_claim, networks=conds, gate=gate)),
            delta=TV_CHANGE,
            test_accuracy=ev.accuracy(conds),
            train_accuracy=ev.accuracy(conds, "train_acc"),
            gate=gate,
        ),
        finding(
            agree_claim,
            f"per seed: {AGREE_WITHIN} minus the std across types of the mean TV after "
            f"training (positive: types agree within {AGREE_WITHIN} TV)",
            f"{AGREE_WITHIN} minus the std across types after training",
            seed_effect(per_seed(ev, agreement, claim=agree_claim, networks=conds, gate=gate)),
            delta=AGREEMENT_MARGIN,
            bounds=(-math.inf, AGREE_WITHIN),  # AGREE_WITHIN − a standard deviation
            test_accuracy=ev.accuracy(conds),
            train_accuracy=ev.accuracy(conds, "train_acc"),
            gate=gate,
        ),
    ]


#: E1's networks: the same plan as E1 (stated before any run)
SEED_PLANS = pooling.SEED_PLANS

EXPERIMENT = register_experiment(
    Experiment(
        name="smoothness",
        title="E4 · Filter smoothness before and after training (Ruderman Fig. 6)",
        plan=pooling.plan,
        figure=figure,
        findings=findings,
        tables=("smoothness",),
        summary=SUMMARIES["smoothness"],
        order=4,
        seed_plans=SEED_PLANS,
    )
)
