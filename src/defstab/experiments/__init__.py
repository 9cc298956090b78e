"""The paper's experiments (SPEC §5) as one call each, resumable, with figures."""

from defstab.experiments.definitions import ExperimentConfig
from defstab.experiments.runner import run_experiment

EXPERIMENTS = ["pooling", "smooth-init", "synthetic", "smoothness", "random-labels", "antialias"]

__all__ = ["EXPERIMENTS", "ExperimentConfig", "run_experiment"]
