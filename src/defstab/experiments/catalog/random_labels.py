"""E5 · Random labels (Ruderman Fig. 6c and 7): each architecture trained on real and on
fixed random labels."""

from __future__ import annotations

from defstab.experiments.config import (
    PAPER_TYPES,
    ExperimentConfig,
    measure_settings,
    train_settings,
)
from defstab.experiments.figures import layer_curves
from defstab.experiments.findings import finding, spread
from defstab.experiments.registry import Experiment, register_experiment
from defstab.experiments.runs import RunSpec


def plan(cfg: ExperimentConfig) -> list[RunSpec]:
    s, data = cfg.settings(), cfg.data_spec()
    return [
        RunSpec(
            key=f"rl-{kind}-{labels.split()[0]}/seed{seed}",
            condition=f"{kind}|{labels}",
            seed=seed,
            model=f"vgg_cifar_{kind}",
            model_kwargs={"width": s["width"]},
            data=data.text,
            measure=measure_settings(data, s),
            # no augmentation: memorising random labels is the point
            train=train_settings(s, seed, s["random_label_epochs"], False),
            data_options={
                "train_images": s["random_label_images"],
                "test_images": s["test_images"],
                "per_class": s["per_class"],
                "random_labels": labels == "random labels",
            },
        )
        for kind in cfg.archs or PAPER_TYPES
        for labels in ("real labels", "random labels")
        for seed in range(s["seeds"])
    ]


def figure(summary, conditions, path, title):
    real = lambda c: c.endswith("real labels")  # noqa: E731
    rand = lambda c: c.endswith("random labels")  # noqa: E731
    return layer_curves(
        summary,
        [
            ("trained on real labels", "trained", "sensitivity", real),
            ("trained on random labels", "trained", "sensitivity", rand),
            ("smoothness, random labels", "trained", "smoothness", rand),
        ],
        conditions,
        path,
        title,
        label=lambda c: c.split("|")[0],
    )


def findings(summary, conditions) -> list[dict]:
    real = [c for c in conditions if c.endswith("real labels")]
    rand = [c for c in conditions if c.endswith("random labels")]
    a = spread(summary, real, "trained", "sensitivity")
    b = spread(summary, rand, "trained", "sensitivity")
    return [
        finding(
            "With random labels, the sensitivity pattern depends on the architecture "
            "(more than with real labels).",
            f"spread across architectures after training: real labels {a:.3f}, "
            f"random labels {b:.3f}",
            bool(b > a),
        )
    ]


EXPERIMENT = register_experiment(
    Experiment(
        name="random-labels",
        title="E5 · Random labels (Ruderman Fig. 6c and 7)",
        plan=plan,
        figure=figure,
        findings=findings,
        epochs_key="random_label_epochs",
        summary="each architecture trained on real and on random labels",
        order=5,
    )
)
