"""Translations · Does data augmentation buy shift invariance? (Azulay & Weiss 2019, §4)

Azulay & Weiss argue that augmentation cannot make a network invariant in general: with a
cumulative stride s, full invariance needs all s² sub-stride positions of every image, and
augmentation only covers the shifts it draws. This trains the same architectures with

* ``none``: no augmentation (no crop, no flip);
* ``crop4``: the standard random crop of the 4-px zero-padded image (shifts −4…+4 px on
  each axis) + horizontal flip — E1's training, so those networks are shared with E1;
* ``shift8``: the same crop of the 8-px padded image (shifts −8…+8 px, 17 positions per
  axis: every one of the 16 sub-stride phases of the last stage of the CIFAR VGG, whose
  cumulative stride is 16) + flip;

and measures each trained network with one-pixel steps of

* ``pad-shift``: the whole image moved −K…+K px with zero fill — the augmentation's own
  transformation, so each step is exactly inside or outside the range the network saw in
  training (both ends within ±r px, r = 0, 4, 8); P(top-1 change) and MAC per step and
  their means inside / outside;
* the ``embed`` and ``crop`` protocols (as in ``antialias``): frames no augmentation drew
  (objects resized on a canvas; smaller crops), reported whole;
* the per-layer stride analysis (invariance of the pooled representation to 1…steps px
  shifts, :func:`defstab.translate.layer_shift_analysis`).
"""

from __future__ import annotations

import numpy as np

from defstab.experiments.aggregate import select
from defstab.experiments.catalog import pooling
from defstab.experiments.catalog.antialias import SHIFT_CHANGE
from defstab.experiments.config import ExperimentConfig, image_size
from defstab.experiments.findings import Evidence, finding, per_seed
from defstab.experiments.index import SUMMARIES
from defstab.experiments.registry import Experiment, register_experiment
from defstab.experiments.runs import RunSpec
from defstab.experiments.statistics import SmallestEffect, seed_effect
from defstab.plotting.common import plt, save_figure

ARCHS = ["maxpool", "strided", "blurpool"]
#: name → (augment, max shift of the random crop in px); crop4 is E1's (and torchvision's)
AUGMENTATIONS = {"none": (False, 0), "crop4": (True, 4), "shift8": (True, 8)}
PROTOCOLS = ("embed", "crop")
#: P(top-1 change) below 1% of one-pixel steps counts as invariant (stated before any run)
NOT_INVARIANT = SmallestEffect(
    0.01,
    "fewer than one class change per hundred one-pixel steps counts as invariant; the "
    "same 0.01 as the antialias experiment's smallest difference",
)


def condition(arch: str, augmentation: str) -> str:
    return f"{arch}/{augmentation}"


def split(cond: str) -> tuple[str, str]:
    arch, aug = cond.split("/")
    return arch, aug


def train_range(augmentation: str) -> int:
    augment, shift = AUGMENTATIONS[augmentation]
    return shift if augment else 0


def plan(cfg: ExperimentConfig) -> list[RunSpec]:
    s = cfg.settings()
    size = image_size(cfg.data_spec())
    eval_shift = s.get("eval_shift", 12)
    runs = []
    for aug in s.get("augmentations", list(AUGMENTATIONS)):
        if aug not in AUGMENTATIONS:
            raise ValueError(f"unknown augmentation {aug!r}; choose from {list(AUGMENTATIONS)}.")
        augment, shift = AUGMENTATIONS[aug]
        for run in pooling.plan(cfg, archs=cfg.archs or ARCHS):
            arch = run.condition
            run.key = f"aug-{aug}-{arch}/seed{run.seed}"
            run.condition = condition(arch, aug)
            if run.train is not None:
                run.train = dict(run.train, augment=augment)
                if augment and shift != 4:  # 4 is TrainConfig's default: E1's networks
                    run.train["augment_shift"] = shift
            run.translate = {
                "protocols": list(PROTOCOLS),
                "steps": s.get("shift_steps", 4),
                "object_size": size * 3 // 4,
                "pad_shift": {"max_shift": eval_shift, "train_range": train_range(aug)},
                "layer_shifts": s.get("shift_steps", 4),
            }
            runs.append(run)
    return runs


def _order(conditions) -> tuple[list[str], list[str]]:
    archs = list(dict.fromkeys(split(c)[0] for c in conditions))
    augs = list(dict.fromkeys(split(c)[1] for c in conditions))
    return archs, augs


def figure(summary, conditions, path, title):
    """Row 1: P(top-1 change) of each one-pixel step of the pad-shift path, one panel per
    architecture, one line per augmentation (shaded: ±2 std over seeds; dotted: the range
    each augmentation draws). Row 2: per-layer invariance to 1…steps px shifts. Row 3:
    P(top-1 change) under the embed and crop protocols, and inside/outside means."""
    archs, augs = _order(conditions)
    fig, axes = plt.subplots(3, len(archs), figsize=(4.6 * len(archs), 10), squeeze=False)
    for j, arch in enumerate(archs):
        for k, aug in enumerate(augs):
            color = f"C{k}"
            for row, metric in ((0, "pad:p_top1_change"), (1, "layer:invariance")):
                rows = sorted(
                    select(summary, condition=condition(arch, aug), metric=metric),
                    key=lambda r: int(r["layer_index"]),
                )
                if not rows:
                    continue
                ax = axes[row, j]
                if row == 0:  # x: where the step starts (dx → dx + 1)
                    x = np.array([float(r["layer"].split("→")[0]) + 0.5 for r in rows])
                else:
                    x = np.array([int(r["layer_index"]) for r in rows])
                    ax.set_xticks(x, [r["layer"].split(".")[-1] for r in rows], rotation=60)
                mean = np.array([float(r["mean"]) for r in rows])
                lo = np.maximum([float(r["lo"]) for r in rows], 0.0)
                hi = np.array([float(r["hi"]) for r in rows])
                ax.plot(x, mean, "o-", ms=3, color=color, label=aug)
                ax.fill_between(x, lo, hi, color=color, alpha=0.15, lw=0)
                if row == 0 and train_range(aug) > 0:
                    for edge in (-train_range(aug), train_range(aug)):
                        ax.axvline(edge, ls=":", color=color, lw=1)
        axes[0, j].set_title(f"{arch}: pad-shift path", fontsize=10)
        axes[0, j].set_xlabel("shift at the step's midpoint (px)")
        axes[0, j].set_ylabel("P(top-1 change) per 1-px step")
        axes[1, j].set_title(f"{arch}: per-layer invariance (crop, 1…steps px)", fontsize=10)
        axes[1, j].set_ylabel("normalized cosine distance\n(pooled representation)")
        _bars(axes[2, j], summary, arch, augs)
        for ax in axes[:, j]:
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path)


def _bars(ax, summary, arch, augs):
    metrics = ["pad-inside:p_top1_change", "pad-outside:p_top1_change"] + [
        f"{p}:p_top1_change" for p in PROTOCOLS
    ]
    width = 0.8 / len(augs)
    for k, aug in enumerate(augs):
        means, errs = [], []
        for metric in metrics:
            rows = select(summary, condition=condition(arch, aug), metric=metric)
            means.append(float(rows[0]["mean"]) if rows else np.nan)
            errs.append(2 * float(rows[0]["std"]) if rows else 0.0)
        below = np.minimum(errs, np.nan_to_num(means))
        x = np.arange(len(metrics)) + (k - (len(augs) - 1) / 2) * width
        ax.bar(x, means, width, yerr=np.stack([below, errs]), color=f"C{k}", capsize=2, label=aug)
    labels = ["pad-shift\ninside", "pad-shift\noutside"] + list(PROTOCOLS)
    ax.set_xticks(range(len(metrics)), labels, fontsize=8)
    ax.set_ylabel("P(top-1 change)")
    ax.set_title(f"{arch}: inside / outside the trained range", fontsize=10)


def _steps(ev: Evidence, cond: str, seed: int, lo: int, hi: int) -> float:
    """Mean P(top-1 change) of the pad-shift steps whose both ends lie within ±hi px but
    not both within ±lo px (lo = −1: from the centre)."""
    values = ev.curve(cond, "trained", "pad:p_top1_change", seed)
    k = ev.settings.get("eval_shift", 12)
    shifts = np.arange(-k, k + 1)
    ends = np.maximum(np.abs(shifts[:-1]), np.abs(shifts[1:]))
    keep = (ends <= hi) & (ends > lo)
    if len(values) != len(ends) or not keep.any():
        raise ValueError("no such steps")
    return float(np.mean(np.asarray(values)[keep]))


def findings(ev: Evidence) -> list[dict]:
    archs, augs = _order(ev.conditions)
    out = []
    k = ev.settings.get("eval_shift", 12)

    def acc(aug_names):
        conds = [condition(a, g) for a in archs for g in aug_names]
        return {
            "test_accuracy": ev.accuracy(conds),
            "train_accuracy": ev.accuracy(conds, "train_acc"),
            "gate": ev.gate(),
        }

    def effect(fn, claim, aug_names):
        conds = [condition(a, g) for a in archs for g in aug_names]
        return seed_effect(per_seed(ev, fn, claim=claim, networks=conds, gate=ev.gate()))

    def means(aug, lo, hi):
        def mean(a):
            return np.nanmean([_steps_or_nan(ev, condition(a, aug), s, lo, hi) for s in ev.seeds()])

        return ", ".join(f"{a} {mean(a):.3f}" for a in archs)

    if "none" in augs and "crop4" in augs:
        claim = (
            "Augmentation makes one-pixel shifts inside the range it draws change the "
            "class less often (crop ±4 vs none)."
        )
        out.append(
            finding(
                claim,
                "per seed: P(top-1 change) of pad-shift steps within ±4 px, without "
                f"augmentation minus with crop ±4, mean over {', '.join(archs)}",
                f"within ±4 px: none ({means('none', -1, 4)}); crop4 ({means('crop4', -1, 4)})",
                effect(
                    lambda s: np.mean(
                        [
                            _steps(ev, condition(a, "none"), s, -1, 4)
                            - _steps(ev, condition(a, "crop4"), s, -1, 4)
                            for a in archs
                        ]
                    ),
                    claim,
                    ["none", "crop4"],
                ),
                delta=SHIFT_CHANGE,
                bounds=(-1.0, 1.0),  # a difference of probabilities
                **acc(["none", "crop4"]),
            )
        )
    for aug in (g for g in augs if train_range(g) > 0 and train_range(g) < k):
        r = train_range(aug)
        claim = (
            f"Augmentation does not carry beyond the shifts it draws: with {aug}, "
            f"one-pixel steps outside ±{r} px change the class more often than inside."
        )
        out.append(
            finding(
                claim,
                f"per seed: P(top-1 change) of pad-shift steps outside ±{r} px (up to ±{k}) "
                f"minus inside ±{r} px, mean over {', '.join(archs)}",
                f"{aug}: inside ({means(aug, -1, r)}); outside ({means(aug, r, k)})",
                effect(
                    lambda s, aug=aug, r=r: np.mean(
                        [
                            _steps(ev, condition(a, aug), s, r, k)
                            - _steps(ev, condition(a, aug), s, -1, r)
                            for a in archs
                        ]
                    ),
                    claim,
                    [aug],
                ),
                delta=SHIFT_CHANGE,
                bounds=(-1.0, 1.0),
                **acc([aug]),
            )
        )
    widest = max((g for g in augs if train_range(g) > 0), key=train_range, default=None)
    if widest is not None:
        r = train_range(widest)
        claim = (
            f"Even trained on every shift within ±{r} px ({widest}), a network is not "
            "invariant to one-pixel shifts of test images inside that range."
        )
        out.append(
            finding(
                claim,
                f"per seed: P(top-1 change) of pad-shift steps within ±{r} px, mean over "
                f"{', '.join(archs)}; below {NOT_INVARIANT.value} counts as invariant",
                f"{widest}, within ±{r} px: {means(widest, -1, r)}",
                effect(
                    lambda s: np.mean([_steps(ev, condition(a, widest), s, -1, r) for a in archs]),
                    claim,
                    [widest],
                ),
                delta=NOT_INVARIANT,
                # a probability is ≥ 0 by construction: "not invariant" needs it above δ
                against="delta",
                bounds=(0.0, 1.0),
                **acc([widest]),
            )
        )
    return out


def _steps_or_nan(ev, cond, seed, lo, hi) -> float:
    try:
        return _steps(ev, cond, seed, lo, hi)
    except ValueError:
        return float("nan")


def describe(settings: dict) -> str:
    n = settings["train_images"] or "all"
    return (
        f"{settings['epochs']} epochs on {n} training images, without augmentation, with "
        "crop ±4 + flip, and with shifts ±8 + flip"
    )


#: the same plan as E1, whose crop ±4 networks it shares (stated before any run)
SEED_PLANS = pooling.SEED_PLANS

EXPERIMENT = register_experiment(
    Experiment(
        name="augmentation",
        title="Translations · Does data augmentation buy shift invariance? (Azulay & Weiss)",
        plan=plan,
        figure=figure,
        findings=findings,
        summary=SUMMARIES["augmentation"],
        order=12,
        seed_plans=SEED_PLANS,
        describe=describe,
    )
)
