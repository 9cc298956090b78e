"""E1 · Pooling at initialisation and after training (Ruderman Fig. 3)."""

from __future__ import annotations

import numpy as np

from defstab.experiments.aggregate import curve
from defstab.experiments.config import (
    POOLING_TYPES,
    ExperimentConfig,
    measure_settings,
    train_settings,
)
from defstab.experiments.figures import layer_curves
from defstab.experiments.findings import finding, spread
from defstab.experiments.registry import Experiment, register_experiment
from defstab.experiments.runs import RunSpec

POOLS = ("maxpool", "avgpool", "blurpool")
NON_POOLS = ("subsample", "strided", "strided_relu")


def plan(cfg: ExperimentConfig, archs: list[str] | None = None) -> list[RunSpec]:
    """Every downsampling type, measured at init and after training (E4 reuses them)."""
    s, data = cfg.settings(), cfg.data_spec()
    train = s["epochs"] > 0
    return [
        RunSpec(
            key=f"pool-{kind}/seed{seed}",
            condition=kind,
            seed=seed,
            model=f"vgg_cifar_{kind}",
            model_kwargs={"width": s["width"]},
            data=data.text,
            measure=measure_settings(data, s),
            train=train_settings(s, seed, s["epochs"], data.augment) if train else None,
            data_options={
                "train_images": s["train_images"],
                "test_images": s["test_images"],
                "per_class": s["per_class"],
            },
        )
        for kind in archs or cfg.archs or POOLING_TYPES
        for seed in range(s["seeds"])
    ]


def figure(summary, conditions, path, title):
    panels = [("at initialisation", "init", "sensitivity", None)]
    if any(r["phase"] == "trained" for r in summary):
        panels.append(("after training", "trained", "sensitivity", None))
    return layer_curves(summary, panels, conditions, path, title)


def findings(summary, conditions) -> list[dict]:
    pools = [c for c in conditions if c in POOLS]
    plain = [c for c in conditions if c in NON_POOLS]
    out = []
    if pools and plain:
        p = np.mean([curve(summary, c, "init", "sensitivity")[-1] for c in pools])
        q = np.mean([curve(summary, c, "init", "sensitivity")[-1] for c in plain])
        out.append(
            finding(
                "At init, networks with pooling are less sensitive to deformation.",
                f"last layer at init: pooling types {p:.3f} vs non-pooling {q:.3f}",
                bool(p < q),
            )
        )
    if any(curve(summary, c, "trained", "sensitivity") for c in conditions):
        a = spread(summary, conditions, "init", "sensitivity")
        b = spread(summary, conditions, "trained", "sensitivity")
        out.append(
            finding(
                "After training, the layer-wise patterns of all types are similar.",
                f"spread across types (mean over layers of the std of the means): "
                f"init {a:.3f}, trained {b:.3f}",
                bool(b < a),
            )
        )
        raised = []
        for c in pools:
            i, t = (
                curve(summary, c, "init", "sensitivity"),
                curve(summary, c, "trained", "sensitivity"),
            )
            raised += [f"{c}:{k}" for k, (u, v) in enumerate(zip(i, t, strict=True)) if k and v > u]
        out.append(
            finding(
                "Training raises the sensitivity of pooling networks in some layers.",
                f"{len(raised)} (network, layer) pairs rose: {', '.join(raised[:8])}"
                + (" …" if len(raised) > 8 else ""),
                bool(raised),
            )
        )
    return out


EXPERIMENT = register_experiment(
    Experiment(
        name="pooling",
        title="E1 · Pooling at initialisation and after training (Ruderman Fig. 3)",
        plan=plan,
        figure=figure,
        findings=findings,
        summary="sensitivity per layer of six downsampling types, at init and trained",
        order=1,
    )
)
