"""The papers' experiments as one call each, resumable, with figures.

Where things live: ``registry.py`` (the :class:`Experiment` record and the registry),
``catalog/`` (one file per experiment: its plan, figure and findings), ``runs.py``
(networks and measurements, keyed by what they compute), ``runner.py`` (runs a plan,
writes tables, figure and ``experiment.json``), ``executors.py`` (where the runs execute:
this process, local workers, Ray, Slurm), ``presets.py`` (quick and paper).
"""

from defstab.experiments.config import ExperimentConfig
from defstab.experiments.executors import ExecutorConfig, RunsFailed
from defstab.experiments.registry import (
    Experiment,
    get_experiment,
    list_experiments,
    register_experiment,
)
from defstab.experiments.runner import run_experiment


def __getattr__(name: str):
    # EXPERIMENTS was a hard-coded list before the registry; it now reads the registry.
    if name == "EXPERIMENTS":
        return list_experiments()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "EXPERIMENTS",
    "ExecutorConfig",
    "Experiment",
    "ExperimentConfig",
    "RunsFailed",
    "get_experiment",
    "list_experiments",
    "register_experiment",
    "run_experiment",
]
