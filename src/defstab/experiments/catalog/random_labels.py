"""E5 · Random labels and random images (Ruderman Fig. 6c and 7, §5): each architecture
trained on real labels, on fixed random labels (P(Y|X) destroyed), and on images whose
pixels are shuffled (P(X) destroyed, labels kept)."""

from __future__ import annotations

from defstab.experiments.catalog.pooling import SPREAD_CHANGE
from defstab.experiments.config import ExperimentConfig, measure_settings, train_settings
from defstab.experiments.figures import layer_curves
from defstab.experiments.findings import Evidence, finding, per_seed, spread
from defstab.experiments.index import SUMMARIES
from defstab.experiments.registry import Experiment, register_experiment
from defstab.experiments.runs import RunSpec
from defstab.experiments.statistics import SeedPlan, seed_effect

REAL, RANDOM_LABELS, RANDOM_IMAGES = "real labels", "random labels", "random images"
VARIANTS = (REAL, RANDOM_LABELS, RANDOM_IMAGES)


def plan(cfg: ExperimentConfig) -> list[RunSpec]:
    s, data = cfg.settings(), cfg.data_spec()
    return [
        RunSpec(
            key=f"rl-{kind}-{variant.replace(' ', '-')}/seed{seed}",
            condition=f"{kind}|{variant}",
            seed=seed,
            model=f"vgg_cifar_{kind}",
            model_kwargs={"width": s["width"]},
            data=data.text,
            measure=measure_settings(data, s),
            # no augmentation: memorising random labels (or shuffled images) is the point;
            # every variant trains until it fits its training set (or the epoch cap)
            train=train_settings(s, seed, s["random_label_epochs"], False)
            | {"target_train_acc": s["min_train_acc_random_labels"]},
            data_options={
                "train_images": s["random_label_images"],
                "test_images": s["test_images"],
                "per_class": s["per_class"],
                "random_labels": variant == RANDOM_LABELS,
                "random_images": variant == RANDOM_IMAGES,
            },
        )
        for kind in cfg.archs or s["pooling_types"]
        for variant in VARIANTS
        for seed in range(s["seeds"])
    ]


def _of(variant: str):
    return lambda c: c.endswith(variant)


def figure(summary, conditions, path, title):
    return layer_curves(
        summary,
        [
            ("trained on real labels", "trained", "sensitivity", _of(REAL)),
            ("trained on random labels", "trained", "sensitivity", _of(RANDOM_LABELS)),
            ("trained on shuffled-pixel images", "trained", "sensitivity", _of(RANDOM_IMAGES)),
            ("smoothness, random labels", "trained", "smoothness", _of(RANDOM_LABELS)),
        ],
        conditions,
        path,
        title,
        label=lambda c: c.split("|")[0],
    )


def findings(ev: Evidence) -> list[dict]:
    groups = {v: [c for c in ev.conditions if c.endswith(v)] for v in VARIANTS}
    gate = ev.gate("min_train_acc_random_labels", "train_fit")
    out = []
    for variant, what in ((RANDOM_LABELS, "random labels"), (RANDOM_IMAGES, "shuffled pixels")):
        if not groups[variant] or not groups[REAL]:
            continue

        def more_spread(seed, variant=variant):
            def curves(group):
                return [ev.curve(c, "trained", "sensitivity", seed) for c in groups[group]]

            return spread(curves(variant)) - spread(curves(REAL))

        behind = groups[variant] + groups[REAL]
        claim = (
            f"With {what}, the sensitivity pattern depends on the architecture "
            "(more than with real labels)."
        )
        out.append(
            finding(
                claim,
                "per seed: spread across architectures after training (mean over layers of "
                f"the std across types) with {what} minus with real labels; every network "
                "must fit its training set (train accuracy gate)",
                f"spread with {what} minus spread with real labels",
                seed_effect(per_seed(ev, more_spread, claim=claim, networks=behind, gate=gate)),
                delta=SPREAD_CHANGE,
                test_accuracy=ev.accuracy(behind),
                train_accuracy=ev.accuracy(behind, "train_fit"),  # what the gate reads
                gate=gate,
            )
        )
    return out


def describe(s: dict) -> str:
    n = s["random_label_images"] or "all"
    return (
        f"trained until {s['min_train_acc_random_labels']:.0%} training-set accuracy (at most "
        f"{s['random_label_epochs']} epochs) on {n} training images, no augmentation"
    )


# Seed plans, stated before any run of this code. quick: looks at 3 and 5 seeds (60 runs at
# the second look, about an hour on 2 cores); paper: the paper's 5 seeds, one look.
SEED_PLANS = {
    "quick": SeedPlan(
        (3, 5), "two looks: 3 and 5 seeds; 5 × 12 networks is the quick preset's CPU budget"
    ),
    "paper": SeedPlan((5,), "the paper's 5 seeds, one look"),
}

EXPERIMENT = register_experiment(
    Experiment(
        name="random-labels",
        title="E5 · Random labels and random images (Ruderman Fig. 6c and 7)",
        plan=plan,
        figure=figure,
        findings=findings,
        epochs_key="random_label_epochs",
        summary=SUMMARIES["random-labels"],
        order=5,
        seed_plans=SEED_PLANS,
        describe=describe,
    )
)
