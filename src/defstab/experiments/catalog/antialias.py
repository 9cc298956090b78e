"""Translations · Does blur before subsampling restore shift stability? (Azulay & Weiss
2019; Zhang 2019). E1's networks (maxpool, strided, blurpool by default — the same trained
checkpoints, not retrained), measured under one-pixel translations."""

from __future__ import annotations

import numpy as np

from defstab.experiments.aggregate import select
from defstab.experiments.catalog import pooling
from defstab.experiments.config import ExperimentConfig, image_size
from defstab.experiments.figures import bar_measures
from defstab.experiments.findings import Evidence, finding, per_seed
from defstab.experiments.registry import Experiment, register_experiment
from defstab.experiments.runs import RunSpec
from defstab.experiments.statistics import SmallestEffect, seed_effect

ARCHS = ["maxpool", "strided", "blurpool"]
PROTOCOLS = ("embed", "crop")

#: a difference of P(top-1 change) per one-pixel step, stated before any run
SHIFT_CHANGE = SmallestEffect(
    0.01,
    "one class change per hundred one-pixel steps: a sixth of ImageNet CNNs' level under the "
    "crop protocol (≈ 0.06, Azulay & Weiss Table 1)",
)


def plan(cfg: ExperimentConfig) -> list[RunSpec]:
    s = cfg.settings()
    size = image_size(cfg.data_spec())
    runs = pooling.plan(cfg, archs=cfg.archs or ARCHS)
    for run in runs:
        run.key = run.key.replace("pool-", "aa-")
        run.translate = {
            "protocols": list(PROTOCOLS),
            "steps": s.get("shift_steps", 4),
            "object_size": size * 3 // 4,
        }
    return runs


def figure(summary, conditions, path, title):
    metrics = [f"{p}:{m}" for p in PROTOCOLS for m in ("p_top1_change", "mac", "consistency")]
    return bar_measures(summary, conditions, metrics, path, title)


def findings(ev: Evidence) -> list[dict]:
    out = []
    others = [c for c in ev.conditions if c != "blurpool"]
    if "blurpool" not in ev.conditions or not others:
        return out
    for proto in PROTOCOLS:
        metric = f"{proto}:p_top1_change"

        def lower(seed, metric=metric):
            p = {c: ev.curve(c, "trained", metric, seed)[0] for c in ev.conditions}
            return np.mean([p[c] for c in others]) - p["blurpool"]

        means = {
            c: float(r[0]["mean"])
            for c in ev.conditions
            if (r := select(ev.summary, condition=c, metric=metric))
        }
        claim = (
            "Blurring before subsampling (blurpool) lowers P(top-1 change) under "
            f"one-pixel shifts ({proto} protocol)."
        )
        out.append(
            finding(
                claim,
                f"per seed: P(top-1 change), mean over {', '.join(others)} minus blurpool",
                ", ".join(f"{c} {v:.3f}" for c, v in means.items()),
                seed_effect(
                    per_seed(ev, lower, claim=claim, networks=ev.conditions, gate=ev.gate())
                ),
                delta=SHIFT_CHANGE,
                test_accuracy=ev.accuracy(ev.conditions),
                train_accuracy=ev.accuracy(ev.conditions, "train_acc"),
                gate=ev.gate(),
            )
        )
    return out


EXPERIMENT = register_experiment(
    Experiment(
        name="antialias",
        title="Translations · Does blur before subsampling restore shift stability? "
        "(Azulay & Weiss; Zhang 2019)",
        plan=plan,
        figure=figure,
        findings=findings,
        tables=("shifts",),
        summary="E1's networks under one-pixel shifts: P(top-1 change), MAC, consistency",
        order=10,
    )
)
