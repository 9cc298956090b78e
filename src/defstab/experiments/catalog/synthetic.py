"""E3 · Synthetic deformation tasks (Ruderman Fig. 5): train on tasks of strength C,
then look at filter smoothness and sensitivity."""

from __future__ import annotations

from defstab.data.spec import DataSpec
from defstab.experiments.config import ExperimentConfig, measure_settings, train_settings
from defstab.experiments.figures import layer_curves, shades
from defstab.experiments.findings import finding, mean_curve, monotone_decreasing
from defstab.experiments.registry import Experiment, register_experiment
from defstab.experiments.runs import RunSpec


def plan(cfg: ExperimentConfig) -> list[RunSpec]:
    s = cfg.settings()
    runs = []
    for c in s["strengths"]:
        data = DataSpec.parse(f"synthetic:{c:g}")
        for seed in range(s["seeds"]):
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


def findings(summary, conditions) -> list[dict]:
    means = [mean_curve(summary, c, "trained", "smoothness") for c in conditions]
    return [
        finding(
            "Larger deformation strength C: smoother filters after training.",
            "mean normalized TV after training by C: "
            + ", ".join(f"{c} {m:.3f}" for c, m in zip(conditions, means, strict=True))
            + " (lower = smoother)",
            monotone_decreasing(means),
        )
    ]


EXPERIMENT = register_experiment(
    Experiment(
        name="synthetic",
        title="E3 · Synthetic deformation tasks (Ruderman Fig. 5)",
        plan=plan,
        figure=figure,
        findings=findings,
        epochs_key="synthetic_epochs",
        needs_data=False,
        summary="train on synthetic tasks of deformation strength C; filter smoothness",
        order=3,
    )
)
