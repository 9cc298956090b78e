"""E2 · Smooth initialisation (Ruderman Fig. 4): sensitivity at init for several σ of
Gaussian filter smoothing. Measurement only."""

from __future__ import annotations

import numpy as np

from defstab.experiments.catalog.pooling import SENSITIVITY_GAP
from defstab.experiments.config import ExperimentConfig, measure_settings
from defstab.experiments.figures import layer_curves, shades
from defstab.experiments.findings import AT_INIT, Evidence, finding, layer_mean, per_seed
from defstab.experiments.index import SUMMARIES
from defstab.experiments.registry import UNTRAINED, Experiment, register_experiment
from defstab.experiments.runs import RunSpec
from defstab.experiments.statistics import SeedPlan, seed_effect


def plan(cfg: ExperimentConfig) -> list[RunSpec]:
    s, data = cfg.settings(), cfg.data_spec()
    return [
        RunSpec(
            key=f"smooth-{cfg.arch}-s{sigma:g}/seed{seed}",
            condition=f"σ={sigma:g}",
            seed=seed,
            model=f"vgg_cifar_{cfg.arch}",
            model_kwargs={"width": s["width"], "smooth_sigma": sigma},
            data=data.text,
            measure=measure_settings(data, s),
            data_options={
                "test_images": s["test_images"],
                "train_images": 0,
                "per_class": s["per_class"],
            },
        )
        for sigma in s["sigmas"]
        for seed in range(s["seeds"])
    ]


def figure(summary, conditions, path, title):
    return layer_curves(
        summary,
        [("at initialisation (darker = smoother)", "init", "sensitivity", None)],
        conditions,
        path,
        title,
        colors=shades(len(conditions)),
    )


def findings(ev: Evidence) -> list[dict]:
    lo, hi = ev.conditions[0], ev.conditions[-1]

    def drop(seed):
        return layer_mean(ev.curve(lo, "init", "sensitivity", seed)) - layer_mean(
            ev.curve(hi, "init", "sensitivity", seed)
        )

    means = [
        np.mean([layer_mean(ev.curve(c, "init", "sensitivity", s)) for s in ev.seeds()])
        for c in ev.conditions
    ]
    claim = "Larger σ (smoother initial filters): lower sensitivity."
    return [
        finding(
            claim,
            f"per seed: sensitivity at init, mean over layers 1…L, at {lo} minus at {hi} "
            "(same seed: the same filters before smoothing)",
            "mean over layers by σ: "
            + ", ".join(f"{c} {m:.3f}" for c, m in zip(ev.conditions, means, strict=True)),
            seed_effect(per_seed(ev, drop, claim=claim, networks=[lo, hi])),
            delta=SENSITIVITY_GAP,
            gate=None,
            no_gate=AT_INIT,
        )
    ]


# Seed plans, stated before any run of this code: measurement only, so cheap; one look.
SEED_PLANS = {
    "quick": SeedPlan((3,), "3 seeds, one look (measurement at init only)"),
    "paper": SeedPlan((5,), "the paper's 5 seeds, one look"),
}

EXPERIMENT = register_experiment(
    Experiment(
        name="smooth-init",
        title="E2 · Smooth initialisation (Ruderman Fig. 4)",
        plan=plan,
        figure=figure,
        findings=findings,
        summary=SUMMARIES["smooth-init"],
        describe=lambda s: UNTRAINED,
        order=2,
        seed_plans=SEED_PLANS,
    )
)
