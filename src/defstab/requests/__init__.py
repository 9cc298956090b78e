"""Typed requests: what each protocol measures, as plain dataclasses importable without
torch, whose fields carry their option (:mod:`defstab.requests.fields`). The command
line is generated from them and :func:`defstab.run` runs them."""

from defstab.requests.bench import BenchRequest
from defstab.requests.dataset_bias import DatasetBiasRequest
from defstab.requests.deform import DeformRequest
from defstab.requests.experiment import ExperimentRequest
from defstab.requests.measure import MeasureRequest
from defstab.requests.model import DataOptions, ModelOptions
from defstab.requests.perturb import PerturbRequest
from defstab.requests.smoothness import SmoothnessRequest
from defstab.requests.spatial import SpatialRequest
from defstab.requests.train import TrainRequest
from defstab.requests.translate import TranslateRequest

__all__ = [
    "BenchRequest",
    "DataOptions",
    "DatasetBiasRequest",
    "DeformRequest",
    "ExperimentRequest",
    "MeasureRequest",
    "ModelOptions",
    "PerturbRequest",
    "SmoothnessRequest",
    "SpatialRequest",
    "TrainRequest",
    "TranslateRequest",
]
