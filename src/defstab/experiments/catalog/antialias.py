"""Translations · Does blur before subsampling restore shift stability? (Azulay & Weiss
2019; Zhang 2019; Chaman & Dokmanić 2021). E1's networks (maxpool, strided, blurpool by
default — the same trained checkpoints, not retrained) and an APS network with circular
padding, measured under one-pixel translations: embedded, cropped and circular."""

from __future__ import annotations

import numpy as np

from defstab.experiments.aggregate import select
from defstab.experiments.catalog import pooling
from defstab.experiments.config import ExperimentConfig, image_size
from defstab.experiments.figures import bar_measures
from defstab.experiments.findings import Evidence, finding, per_seed
from defstab.experiments.index import SUMMARIES
from defstab.experiments.registry import Experiment, register_experiment
from defstab.experiments.runs import RunSpec
from defstab.experiments.statistics import SmallestEffect, seed_effect

ARCHS = ["maxpool", "strided", "blurpool", "aps"]
PROTOCOLS = ("embed", "crop", "circular")
#: APS is built with circular padding here: the network Chaman & Dokmanić prove exactly
#: invariant to circular shifts (with zero padding it is not)
APS = "aps"
APS_KWARGS = {"padding": "circular"}

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
        if run.condition == APS:
            run.model_kwargs |= APS_KWARGS
        run.translate = {
            "protocols": list(PROTOCOLS),
            "steps": s.get("shift_steps", 4),
            "object_size": size * 3 // 4,
        }
    return runs


def figure(summary, conditions, path, title):
    metrics = [f"{p}:{m}" for p in PROTOCOLS for m in ("p_top1_change", "mac", "consistency")]
    return bar_measures(summary, conditions, metrics, path, title, columns=3)  # a row a protocol


def _means(ev: Evidence, metric: str) -> dict[str, float]:
    return {
        c: float(r[0]["mean"])
        for c in ev.conditions
        if (r := select(ev.summary, condition=c, metric=metric))
    }


def findings(ev: Evidence) -> list[dict]:
    out = []
    others = [c for c in ev.conditions if c not in ("blurpool", APS)]
    if "blurpool" in ev.conditions and others:
        out += _blur_findings(ev, others)
    if APS in ev.conditions:
        out += _aps_findings(ev)
    return out


def _trained_value(ev: Evidence, cond: str, metric: str, seed: int) -> float:
    return ev.curve(cond, "trained", metric, seed)[0]


def _aps_findings(ev: Evidence) -> list[dict]:
    """APS (circular padding) under circular shifts against the other types, and under
    crop shifts against blurpool."""
    out = []
    rest = [c for c in ev.conditions if c != APS]
    metric = "circular:p_top1_change"
    if rest:

        def lower(seed):
            return np.mean([_trained_value(ev, c, metric, seed) for c in rest]) - _trained_value(
                ev, APS, metric, seed
            )

        claim = (
            "APS with circular padding is exactly invariant to circular shifts: its top-1 "
            "class changes less under one-pixel circular shifts than the other types' "
            "(Chaman & Dokmanić 2021)."
        )
        seen = [v[0] for s in ev.seeds() if (v := ev.curve(APS, "trained", metric, s))]
        worst = max(seen, default=float("nan"))
        out.append(_finding(ev, claim, lower, rest + [APS],
                            f"per seed: circular P(top-1 change), mean over {', '.join(rest)} "
                            "minus aps",
                            _observed(ev, metric) + f"; aps's largest over seeds {worst:.4f} "
                            "(exact invariance: 0)"))  # fmt: skip
    if "blurpool" in ev.conditions:
        metric = "crop:p_top1_change"

        def crop_lower(seed):
            return _trained_value(ev, "blurpool", metric, seed) - _trained_value(
                ev, APS, metric, seed
            )

        claim = (
            "Under crop shifts (new content at the border) APS is more stable than blurpool: "
            "its exact circular invariance carries over to realistic shifts (which Shifman & "
            "Weiss 2024 dispute)."
        )
        out.append(_finding(ev, claim, crop_lower, ["blurpool", APS],
                            "per seed: crop P(top-1 change), blurpool minus aps",
                            _observed(ev, metric)))  # fmt: skip
    return out


def _observed(ev: Evidence, metric: str) -> str:
    return ", ".join(f"{c} {v:.3f}" for c, v in _means(ev, metric).items())


def _finding(ev: Evidence, claim, effect, networks, definition, observed) -> dict:
    return finding(
        claim,
        definition,
        observed,
        seed_effect(per_seed(ev, effect, claim=claim, networks=networks, gate=ev.gate())),
        delta=SHIFT_CHANGE,
        bounds=(-1.0, 1.0),  # a difference of probabilities
        test_accuracy=ev.accuracy(networks),
        train_accuracy=ev.accuracy(networks, "train_acc"),
        gate=ev.gate(),
    )


def _blur_findings(ev: Evidence, others: list[str]) -> list[dict]:
    out = []
    for proto in ("embed", "crop"):
        metric = f"{proto}:p_top1_change"

        def lower(seed, metric=metric):
            p = {c: _trained_value(ev, c, metric, seed) for c in others + ["blurpool"]}
            return np.mean([p[c] for c in others]) - p["blurpool"]

        claim = (
            "Blurring before subsampling (blurpool) lowers P(top-1 change) under "
            f"one-pixel shifts ({proto} protocol)."
        )
        out.append(_finding(ev, claim, lower, others + ["blurpool"],
                            f"per seed: P(top-1 change), mean over {', '.join(others)} minus "
                            "blurpool", _observed(ev, metric)))  # fmt: skip
    return out


#: E1's networks and APS: the same plan as E1 (stated before any run)
SEED_PLANS = pooling.SEED_PLANS

EXPERIMENT = register_experiment(
    Experiment(
        name="antialias",
        title="Translations · Does blur before subsampling restore shift stability? "
        "(Azulay & Weiss; Zhang 2019; Chaman & Dokmanić 2021)",
        plan=plan,
        figure=figure,
        findings=findings,
        tables=("shifts",),
        summary=SUMMARIES["antialias"],
        order=10,
        seed_plans=SEED_PLANS,
    )
)
