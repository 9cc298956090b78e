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

This experiment makes no verdict (its findings were retired): whether two measures "rank
the types alike" is a claim about architectures, and E1 has four types. A correlation over
4 points exceeds 0.3 by chance with probability 0.35 for unrelated measures, re-measuring
the same 4 types under more seeds does not add architectures, and a negative control that
is not a deformation at all (the matched Gaussian noise) "agreed" with all three measures
as strongly (+0.98 to +0.99 at init) in the review of the retired findings. A verdict needs
architectures as the unit (at least 12 distinct networks) and a rank correlation with its
permutation null over them: see ``FINDINGS_RETIRED``.
"""

from __future__ import annotations

from defstab.deform import DeformationSpec
from defstab.experiments.catalog import pooling
from defstab.experiments.config import ExperimentConfig, image_size
from defstab.experiments.figures import layer_curves
from defstab.experiments.findings import Evidence
from defstab.experiments.index import SUMMARIES
from defstab.experiments.registry import Experiment, register_experiment
from defstab.experiments.runs import RunSpec

MEASURES = {
    "sensitivity": "TPS sensitivity (Ruderman)",
    "diffeo": "diffeomorphism sensitivity (Petrini)",
    "lie": "Lie derivative (Gruver)",
}
LIE_TRANSFORMS = ["translate_x", "translate_y", "rotate", "scale"]
#: Petrini et al.'s per-layer setting: cut-off 3, typical displacement 1 px
DIFFEO_CUT, DIFFEO_DISPLACEMENT = 3, 1.0

#: why the experiment states no finding (experiment.json, the CLI and the report say it)
FINDINGS_RETIRED = (
    "no verdict: the measures are compared across E1's four downsampling types, too few "
    "architectures for a correlation to mean anything (with 4 points, unrelated measures "
    "exceed r = 0.3 with probability 0.35, and the matched-noise control agreed as strongly "
    "as the deformations); the per-layer curves and tables are reported as measurements"
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


def findings(ev: Evidence) -> list[dict]:
    """None: see FINDINGS_RETIRED."""
    return []


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
        findings_retired=FINDINGS_RETIRED,
        summary=SUMMARIES["measures"],
        order=11,
        seed_plans=SEED_PLANS,
    )
)
