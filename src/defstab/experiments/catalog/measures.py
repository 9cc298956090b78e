"""Deformation measures · Do random TPS deformations (Ruderman et al. 2018), Petrini et
al.'s diffeomorphisms (2021) and the Lie derivative (Gruver et al. 2023) rank E1's
downsampling types alike, at initialisation and after training?

E1's networks (the same checkpoints: the network folder depends on the network alone) are
measured three ways on the same test images, at the same layers:

- ``sensitivity``: normalized cosine distance under the paper's random TPS deformation;
- ``diffeo``: the same distance under a Petrini diffeomorphism (cut-off 3, typical
  displacement 1 px, their per-layer setting), with its R_f (``diffeo_rf``);
- ``lie``: ‖L_X r(x)‖ / ‖r(x)‖, mean over translate x/y, rotate and scale (``lie:<t>``
  each, and ``lie_e2e:<t>``: ‖L_X softmax‖² at the output).

Each finding compares two measures at the last measured layer (the representation the
classifier reads). Stated before any run: per seed, the effect is the Pearson correlation,
across the downsampling types, of the two measures' logarithms (scale-free: a measure and
any power of it agree perfectly); the smallest effect of interest is a correlation of
0.3. The claim predicts a positive correlation; "shows" when the whole interval is above 0.
"""

from __future__ import annotations

import numpy as np

from defstab.deform import DeformationSpec
from defstab.experiments.catalog import pooling
from defstab.experiments.config import ExperimentConfig, image_size
from defstab.experiments.figures import layer_curves
from defstab.experiments.findings import Evidence, finding, per_seed
from defstab.experiments.registry import Experiment, register_experiment
from defstab.experiments.runs import RunSpec
from defstab.experiments.statistics import SmallestEffect, seed_effect

MEASURES = {
    "sensitivity": "TPS sensitivity (Ruderman)",
    "diffeo": "diffeomorphism sensitivity (Petrini)",
    "lie": "Lie derivative (Gruver)",
}
PAIRS = (("sensitivity", "diffeo"), ("sensitivity", "lie"), ("diffeo", "lie"))
LIE_TRANSFORMS = ["translate_x", "translate_y", "rotate", "scale"]
#: Petrini et al.'s per-layer setting: cut-off 3, typical displacement 1 px
DIFFEO_CUT, DIFFEO_DISPLACEMENT = 3, 1.0

AGREEMENT = SmallestEffect(
    0.3,
    "a correlation of 0.3 across the downsampling types: below it the two measures share "
    "less than a tenth of their variance across types",
)


def plan(cfg: ExperimentConfig) -> list[RunSpec]:
    size = image_size(cfg.data_spec())
    diffeo = DeformationSpec.diffeo(
        size, DIFFEO_CUT, displacement=DIFFEO_DISPLACEMENT
    ).record()  # fmt: skip
    runs = pooling.plan(cfg)
    for run in runs:
        run.key = run.key.replace("pool-", "measures-")
        run.measure["compare"] = {
            "diffeo": diffeo,
            "lie": LIE_TRANSFORMS,
            "lie_images": run.measure["images"],
        }
    return runs


def figure(summary, conditions, path, title):
    phases = ["init"] + (["trained"] if any(r["phase"] == "trained" for r in summary) else [])
    when = {"init": "at init", "trained": "trained"}
    panels = [(f"{MEASURES[m]}, {when[p]}", p, m, None) for p in phases for m in MEASURES]
    return layer_curves(summary, panels, conditions, path, title, columns=len(MEASURES))


def _last(ev: Evidence, cond: str, phase: str, metric: str, seed: int) -> float:
    return ev.curve(cond, phase, metric, seed)[-1]


def _correlation(x, y) -> float:
    x, y = np.log(np.asarray(x, float)), np.log(np.asarray(y, float))
    if np.std(x) == 0 or np.std(y) == 0:
        raise ValueError("a measure is the same for every downsampling type")
    return float(np.corrcoef(x, y)[0, 1])


def _order(ev: Evidence, phase: str, metric: str, conds: list[str]) -> str:
    """The types from least to most affected by ``metric`` (mean over seeds)."""
    means = {}
    for c in conds:
        values = [
            _last(ev, c, phase, metric, s) for s in ev.seeds() if ev.curve(c, phase, metric, s)
        ]
        if values:
            means[c] = float(np.mean(values))
    return " < ".join(f"{c} {means[c]:.3g}" for c in sorted(means, key=means.get))


def findings(ev: Evidence) -> list[dict]:
    conds = ev.conditions
    if len(conds) < 3:
        return []
    out = []
    phases = ["init"]
    if any(ev.curve(c, "trained", "sensitivity", s) for c in conds for s in ev.seeds()):
        phases.append("trained")
    for phase in phases:
        for a, b in PAIRS:

            def agree(seed, phase=phase, a=a, b=b):
                return _correlation(
                    [_last(ev, c, phase, a, seed) for c in conds],
                    [_last(ev, c, phase, b, seed) for c in conds],
                )

            when = "at initialisation" if phase == "init" else "after training"
            claim = f"{MEASURES[a]} and {MEASURES[b]} rank the downsampling types alike {when}."
            trained = phase == "trained"
            gate = ev.gate() if trained else None
            out.append(
                finding(
                    claim,
                    f"per seed: Pearson correlation across {', '.join(conds)} of log {a} and "
                    f"log {b} at the last measured layer ({phase})",
                    f"order by {a}: {_order(ev, phase, a, conds)}; by {b}: "
                    f"{_order(ev, phase, b, conds)}",
                    seed_effect(per_seed(ev, agree, claim=claim, networks=conds, gate=gate)),
                    delta=AGREEMENT,
                    test_accuracy=ev.accuracy(conds) if trained else None,
                    train_accuracy=ev.accuracy(conds, "train_acc") if trained else None,
                    gate=gate,
                )
            )
    return out


#: E1's networks: the same plan as E1 (stated before any run)
SEED_PLANS = pooling.SEED_PLANS

EXPERIMENT = register_experiment(
    Experiment(
        name="measures",
        title="Deformation measures · Do TPS, Petrini's diffeomorphisms and the Lie "
        "derivative rank the downsampling types alike?",
        plan=plan,
        figure=figure,
        findings=findings,
        summary="E1's networks under random TPS, Petrini diffeomorphisms and the Lie "
        "derivative, at init and trained: per-layer curves and agreement of the rankings",
        order=11,
        seed_plans=SEED_PLANS,
    )
)
