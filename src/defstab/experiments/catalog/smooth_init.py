"""E2 · Smooth initialisation (Ruderman Fig. 4): sensitivity at init for several σ of
Gaussian filter smoothing. Measurement only."""

from __future__ import annotations

from defstab.experiments.aggregate import curve
from defstab.experiments.config import ExperimentConfig, measure_settings
from defstab.experiments.figures import layer_curves, shades
from defstab.experiments.findings import finding, mean_curve, monotone_decreasing
from defstab.experiments.registry import Experiment, register_experiment
from defstab.experiments.runs import RunSpec


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


def findings(summary, conditions) -> list[dict]:
    means = [mean_curve(summary, c, "init", "sensitivity") for c in conditions]
    last = [curve(summary, c, "init", "sensitivity")[-1] for c in conditions]
    return [
        finding(
            "Larger σ (smoother initial filters): lower sensitivity.",
            "mean over layers by σ: "
            + ", ".join(f"{c} {m:.3f}" for c, m in zip(conditions, means, strict=True))
            + "; last layer: "
            + ", ".join(f"{v:.3f}" for v in last),
            monotone_decreasing(means),
        )
    ]


EXPERIMENT = register_experiment(
    Experiment(
        name="smooth-init",
        title="E2 · Smooth initialisation (Ruderman Fig. 4)",
        plan=plan,
        figure=figure,
        findings=findings,
        summary="sensitivity at init for Gaussian-smoothed filters (σ sweep)",
        order=2,
    )
)
