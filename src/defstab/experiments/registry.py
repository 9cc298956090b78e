"""The experiment registry: one :class:`Experiment` record per experiment, like the model
registry. The CLI's choices, the runner and the report's order all read from here, so
adding an experiment is one file in ``experiments/catalog/``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from defstab.errors import unknown_name_message

_REGISTRY: dict[str, Experiment] = {}

#: how an experiment that trains nothing describes its networks (``Experiment.describe``)
UNTRAINED = "no training (measured at initialisation)"


@dataclass(frozen=True)
class Experiment:
    """One experiment of the study.

    Attributes:
        name: what the CLI calls it (``defstab experiment NAME``).
        title: the report's heading.
        plan: ExperimentConfig → list of :class:`~defstab.experiments.runs.RunSpec`.
        figure: (summary, conditions, path, title) → the written figure's path.
        findings: :class:`~defstab.experiments.findings.Evidence` → the paper's findings
            next to this run's numbers, each with an effect, an interval and a verdict.
        epochs_key: the preset key that ``--epochs`` overrides.
        needs_data: whether ``--data`` is required.
        summary: one line for ``--help``.
        order: place in the study (CLI listing and report); ties go by name.
        describe: settings → how its networks are trained, in words (for the caveats).
        title_init_only: the heading when nothing was trained (e.g. the demo's E1).
        findings_retired: why an experiment that measures states no finding (said in
            experiment.json, by the CLI and in the report).
        seed_plans: preset name → its :class:`~defstab.experiments.statistics.SeedPlan`,
            stated in the catalog file before any run.
        tables: the report's tables of this experiment's summary.csv: "sensitivity",
            "noise", "smoothness" (per layer) and "shifts" (translation measures). An
            experiment that reuses another's networks (their summary rows come along)
            shows only its own.
    """

    name: str
    title: str
    plan: Callable
    figure: Callable
    findings: Callable
    epochs_key: str = "epochs"
    needs_data: bool = True
    summary: str = ""
    order: int = 100
    describe: Callable | None = None
    title_init_only: str | None = None
    tables: tuple[str, ...] = ("sensitivity", "noise", "smoothness", "shifts")
    seed_plans: dict = field(default_factory=dict)
    findings_retired: str | None = None


def register_experiment(experiment: Experiment) -> Experiment:
    if experiment.name in _REGISTRY:
        raise ValueError(f"experiment {experiment.name!r} is already registered.")
    _REGISTRY[experiment.name] = experiment
    return experiment


def _load_catalog() -> None:
    import defstab.experiments.catalog  # noqa: F401  (registers the built-in experiments)


def list_experiments() -> list[str]:
    """Registered names, in the order of the study (and of the report)."""
    _load_catalog()
    return sorted(_REGISTRY, key=lambda n: (_REGISTRY[n].order, n))


def get_experiment(name: str) -> Experiment:
    _load_catalog()
    if name not in _REGISTRY:
        raise ValueError(unknown_name_message("experiment", name, list(_REGISTRY)))
    return _REGISTRY[name]
