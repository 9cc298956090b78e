"""Worst case · How unstable can each layer be within the random deformations' budget?

E1's networks (the same checkpoints, not retrained) measured with random TPS deformations
and with the worst TPS deformation of the same budget per image (projected gradient ascent
on the distance at the last layer; :mod:`defstab.measure.worst_case`), at init and after
training. Ruderman et al. name worst-case deformations as future work; this asks whether
their pooling finding holds in the worst case too.
"""

from __future__ import annotations

import math

import numpy as np

from defstab.experiments.catalog import pooling
from defstab.experiments.config import ExperimentConfig
from defstab.experiments.figures import layer_curves
from defstab.experiments.findings import AT_INIT, Evidence, finding, per_seed
from defstab.experiments.index import SUMMARIES
from defstab.experiments.registry import Experiment, register_experiment
from defstab.experiments.runs import WORST, RunSpec
from defstab.experiments.statistics import SmallestEffect, seed_effect

#: worst / random − 1 is ≥ 0 by construction (the attack keeps the best point it visits,
#: and starts from none), so the claim is that the excess is material: stated before any run
WORST_EXCESS = SmallestEffect(
    0.25,
    "the attack's result is ≥ the random deformation's by construction, so only an excess "
    "of at least a quarter of the random sensitivity counts as the worst case being a "
    "different regime from the random one",
)


def plan(cfg: ExperimentConfig) -> list[RunSpec]:
    s = cfg.settings()
    runs = pooling.plan(cfg)  # the same networks as E1: trained once, shared
    for run in runs:
        run.key = run.key.replace("pool-", "wc-")
        run.measure = run.measure | {
            "worst_case": {"steps": s.get("attack_steps", 10), "restarts": 0}
        }
    return runs


def figure(summary, conditions, path, title):
    panels = [
        ("random, at init", "init", "sensitivity", None),
        ("worst case, at init", "init", WORST, None),
    ]
    if any(r["phase"] == "trained" for r in summary):
        panels += [
            ("random, after training", "trained", "sensitivity", None),
            ("worst case, after training", "trained", WORST, None),
        ]
    return layer_curves(summary, panels, conditions, path, title)


def findings(ev: Evidence) -> list[dict]:
    out = []
    conds = ev.conditions
    for phase in ("init", "trained"):
        have = [c for c in conds if any(ev.curve(c, phase, WORST, s) for s in ev.seeds())]
        if not have:
            continue

        def ratio(seed, phase=phase, have=have):
            return (
                np.mean(
                    [
                        ev.curve(c, phase, WORST, seed)[-1]
                        / ev.curve(c, phase, "sensitivity", seed)[-1]
                        for c in have
                    ]
                )
                - 1.0
            )

        trained = phase == "trained"
        gate = ev.gate() if trained else None
        claim = (
            f"{'After training' if trained else 'At init'}, the worst deformation of the "
            f"same budget moves the last layer at least {WORST_EXCESS.value:.0%} more than a "
            "random one."
        )
        out.append(
            finding(
                claim,
                "per seed: last-layer worst-case / random sensitivity − 1, mean over "
                f"types ({', '.join(have)}); ≥ 0 by construction, so δ states how much "
                "larger counts",
                f"relative excess of the worst case, last layer, {phase}",
                seed_effect(per_seed(ev, ratio, claim=claim, networks=have, gate=gate)),
                delta=WORST_EXCESS,
                # ≥ 0 by construction: "shows" needs the whole interval above δ
                against="delta",
                bounds=(-1.0, math.inf),  # a ratio of distances, minus 1
                gate=gate,
                no_gate=None if trained else AT_INIT,
                **(
                    {
                        "test_accuracy": ev.accuracy(have),
                        "train_accuracy": ev.accuracy(have, "train_acc"),
                    }
                    if trained
                    else {}
                ),
            )
        )
    pools = [c for c in conds if c in pooling.POOLS]
    plain = [c for c in conds if c in pooling.NON_POOLS]
    if pools and plain:

        def gap(seed):
            last = {c: ev.curve(c, "init", WORST, seed)[-1] for c in pools + plain}
            return np.mean([last[c] for c in plain]) - np.mean([last[c] for c in pools])

        claim = "At init, networks with pooling are less sensitive in the worst case too."
        out.append(
            finding(
                claim,
                "per seed: last-layer worst-case sensitivity at init, mean over non-pooling "
                f"types ({', '.join(plain)}) minus mean over pooling types ({', '.join(pools)})",
                "non-pooling minus pooling, worst case, last layer at init",
                seed_effect(per_seed(ev, gap, claim=claim, networks=pools + plain)),
                delta=pooling.SENSITIVITY_GAP,
                gate=None,
                no_gate=AT_INIT,
            )
        )
    return out


#: E1's networks: the same plan as E1 (stated before any run)
SEED_PLANS = pooling.SEED_PLANS

EXPERIMENT = register_experiment(
    Experiment(
        name="worst-case",
        title="Worst case · Random vs worst-case TPS deformations of the same budget, "
        "per downsampling type",
        plan=plan,
        figure=figure,
        findings=findings,
        summary=SUMMARIES["worst-case"],
        order=11,
        seed_plans=SEED_PLANS,
    )
)
