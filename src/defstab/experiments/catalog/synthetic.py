"""E3 · Synthetic deformation tasks (Ruderman Fig. 5): train on tasks of strength C,
then look at filter smoothness and sensitivity."""

from __future__ import annotations

import numpy as np

from defstab.data.spec import DataSpec
from defstab.experiments.catalog.smoothness import TV_CHANGE
from defstab.experiments.config import ExperimentConfig, measure_settings, train_settings
from defstab.experiments.figures import layer_curves, shades
from defstab.experiments.findings import Evidence, finding, per_seed
from defstab.experiments.index import SUMMARIES
from defstab.experiments.registry import Experiment, register_experiment
from defstab.experiments.runs import RunSpec
from defstab.experiments.statistics import SeedPlan, bonferroni_level, seed_effect
from defstab.io.atomic import strict_json


def plan(cfg: ExperimentConfig) -> list[RunSpec]:
    s = cfg.settings()
    seeds = cfg.seeds if cfg.seeds is not None else s.get("synthetic_seeds", s["seeds"])
    runs = []
    for c in s["strengths"]:
        data = DataSpec.parse(f"synthetic:{c:g}")
        for seed in range(seeds):
            runs.append(
                RunSpec(
                    key=f"synth-C{c:g}/seed{seed}",
                    condition=f"C={c:g}",
                    seed=seed,
                    model="vgg_cifar_maxpool",
                    model_kwargs={"width": s["width"]},
                    data=data.text,
                    measure=measure_settings(data, s),
                    train=train_settings(s, seed, s["synthetic_epochs"], data.augment),
                    data_options={"per_class": s["per_class"], "templates": cfg.templates},
                )
            )
    return runs


def figure(summary, conditions, path, title):
    return layer_curves(
        summary,
        [
            ("filter smoothness after training", "trained", "smoothness", None),
            ("sensitivity after training", "trained", "sensitivity", None),
        ],
        conditions,
        path,
        title,
        colors=shades(len(conditions), "magma_r"),
    )


def findings(ev: Evidence) -> list[dict]:
    lo, hi = ev.conditions[0], ev.conditions[-1]
    gate = ev.gate("min_test_acc_synthetic")
    acc = {"test_accuracy": ev.accuracy(ev.conditions),
           "train_accuracy": ev.accuracy(ev.conditions, "train_acc"), "gate": gate}  # fmt: skip
    deeper_claim = (
        "Larger deformation strength C: smoother filters after training (conv layers 2…L)."
    )
    first_claim = "Larger deformation strength C: smoother filters after training (conv layer 1)."

    def tv(c, seed):
        return ev.curve(c, "trained", "smoothness", seed)

    def effect(fn, claim):
        return per_seed(ev, fn, claim=claim, networks=[lo, hi], gate=gate)

    n_layers = len(tv(lo, ev.seeds()[0]))
    # per-layer intervals, Bonferroni-corrected for the n_layers − 1 layers counted
    k = max(1, n_layers - 1)
    level = bonferroni_level(k)
    per_layer = [
        (
            i,
            seed_effect(
                effect(lambda seed, i=i: tv(lo, seed)[i] - tv(hi, seed)[i], deeper_claim),
                alpha=0.05 / k,
                level=level,
            ),
        )
        for i in range(n_layers)
    ]
    table = [
        {
            "conv layer": i + 1,
            "effect": strict_json(e.effect),
            "ci": [strict_json(e.ci[0]), strict_json(e.ci[1])],
            "ci_level": e.level,
        }
        | ({} if e.n_seeds >= 2 else {"ci_reason": "fewer than two seeds: no interval"})
        for i, e in per_layer
    ]
    rest = seed_effect(
        effect(lambda s: np.mean(tv(lo, s)[1:]) - np.mean(tv(hi, s)[1:]), deeper_claim)
    )
    first = seed_effect(effect(lambda s: tv(lo, s)[0] - tv(hi, s)[0], first_claim))
    means = [np.mean([np.mean(tv(c, s)[1:]) for s in ev.seeds()]) for c in ev.conditions]
    above = sum(e.ci[0] > 0 for _, e in per_layer[1:])
    deeper = finding(
        deeper_claim,
        f"per seed: normalized TV after training, mean over conv layers 2…L, at {lo} minus at "
        f"{hi} (same seed: same init); positive = smoother at larger C",
        "mean TV (layers 2…L) by C: "
        + ", ".join(f"{c} {m:.3f}" for c, m in zip(ev.conditions, means, strict=True))
        + f"; {above} of {n_layers - 1} layers have an interval above 0 ({level})",
        rest,
        delta=TV_CHANGE,
        **acc,
    )
    deeper["per_layer"] = table
    return [
        deeper,
        finding(
            first_claim,
            f"per seed: normalized TV of conv layer 1 after training at {lo} minus at {hi} "
            "(reported apart: few filters, large seed-to-seed noise)",
            "layer 1 alone",
            first,
            delta=TV_CHANGE,
            **acc,
        ),
    ]


def describe(s: dict) -> str:
    return (
        f"{s['synthetic_epochs']} epochs on {10 * s['per_class']} generated images per strength C"
    )


# Seed plans, stated before any run of this code: the presets' synthetic_seeds, one look.
SEED_PLANS = {
    "quick": SeedPlan((4,), "4 seeds, one look (16 short runs)"),
    "paper": SeedPlan((5,), "the paper's 5 seeds, one look"),
}

EXPERIMENT = register_experiment(
    Experiment(
        name="synthetic",
        title="E3 · Synthetic deformation tasks (Ruderman Fig. 5)",
        plan=plan,
        figure=figure,
        findings=findings,
        epochs_key="synthetic_epochs",
        needs_data=False,
        describe=describe,
        summary=SUMMARIES["synthetic"],
        order=3,
        seed_plans=SEED_PLANS,
    )
)
