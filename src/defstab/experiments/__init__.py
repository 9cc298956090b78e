"""The papers' experiments as one call each, resumable, with figures.

Where things live: ``registry.py`` (the :class:`Experiment` record and the registry),
``catalog/`` (one file per experiment: its plan, figure and findings), ``runs.py``
(networks and measurements, keyed by what they compute), ``runner.py`` (runs a plan,
writes tables, figure and ``experiment.json``), ``executors.py`` (where the runs execute:
this process, local workers, Ray, Slurm), ``presets.py`` (quick and paper).
"""

from __future__ import annotations

from defstab._lazy import lazy_attributes

#: names imported on first use (PEP 562): the registry and the parsers need no torch
_LAZY = {
    "ExperimentConfig": "config",
    "ExecutorConfig": "executors",
    "RunsFailed": "executors",
    "Experiment": "registry",
    "get_experiment": "registry",
    "list_experiments": "registry",
    "register_experiment": "registry",
    "run_experiment": "runner",
}


_lazy = lazy_attributes(__name__, _LAZY, globals())


def __getattr__(name: str):
    # EXPERIMENTS was a hard-coded list before the registry; it now reads the registry.
    if name == "EXPERIMENTS":
        return _lazy("list_experiments")()
    return _lazy(name)


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
