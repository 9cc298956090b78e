"""The protocols defstab runs, each a typed request and the function that runs it (as
timm registers architectures and lm-evaluation-harness registers tasks).

A :class:`Protocol` names its request class, its runner (``"module:function"``,
imported when run, so this registry imports no torch), the paper it comes from and the
command that runs it. :func:`defstab.run` looks a request up here by its type. The
other commands' protocols join the registry as they move onto the pipeline.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from defstab.requests.bench import BenchRequest
from defstab.requests.dataset_bias import DatasetBiasRequest
from defstab.requests.deform import DeformRequest
from defstab.requests.experiment import ExperimentRequest
from defstab.requests.measure import MeasureRequest
from defstab.requests.perturb import PerturbRequest
from defstab.requests.smoothness import SmoothnessRequest
from defstab.requests.spatial import SpatialRequest
from defstab.requests.train import TrainRequest
from defstab.requests.translate import TranslateRequest


@dataclass(frozen=True)
class Protocol:
    name: str
    request: type
    runner: str
    command: str
    paper: str
    measures: str

    def run_function(self):
        module, name = self.runner.split(":")
        return getattr(importlib.import_module(module), name)


PROTOCOLS: dict[str, Protocol] = {}


def register_protocol(protocol: Protocol) -> Protocol:
    """Add ``protocol`` (its name must be new)."""
    if protocol.name in PROTOCOLS:
        raise ValueError(f"a protocol named {protocol.name!r} is already registered.")
    PROTOCOLS[protocol.name] = protocol
    return protocol


def protocol_of(request) -> Protocol:
    """The protocol whose request ``request`` is; one sentence for anything else."""
    for protocol in PROTOCOLS.values():
        if isinstance(request, protocol.request):
            return protocol
    known = ", ".join(p.request.__name__ for p in PROTOCOLS.values())
    raise ValueError(f"{type(request).__name__} is not a protocol's request; give one of: {known}.")


register_protocol(
    Protocol(
        name="deformation-sensitivity",
        request=MeasureRequest,
        runner="defstab.pipeline.measure:run_measure",
        command="measure",
        paper="Ruderman et al. 2018; Petrini et al. 2021 (diffeo, R_f); Gruver et al. 2023 "
        "(Lie derivative)",
        measures="per-layer normalized distance under random TPS deformations or "
        "diffeomorphisms, R_f against noise, worst case, minimal flips, Lie derivative",
    )
)
register_protocol(
    Protocol(
        name="spatial-robustness",
        request=SpatialRequest,
        runner="defstab.pipeline.spatial:run_spatial",
        command="spatial",
        paper="Engstrom et al. 2019",
        measures="accuracy under random, worst-of-10 and grid rotations and translations",
    )
)
register_protocol(
    Protocol(
        name="filter-smoothness",
        request=SmoothnessRequest,
        runner="defstab.pipeline.smoothness:run_smoothness",
        command="smoothness",
        paper="Ruderman et al. 2018",
        measures="normalized total variation of every conv layer's filters",
    )
)
register_protocol(
    Protocol(
        name="translations",
        request=TranslateRequest,
        runner="defstab.pipeline.translate:run_translate",
        command="translate",
        paper="Azulay & Weiss 2019; Zhang 2019; Chaman & Dokmanić 2021; Michaeli et al. 2023",
        measures="P(top-1 change), mean absolute change, jaggedness and consistency under "
        "shifts; accuracy under the worst shift",
    )
)
register_protocol(
    Protocol(
        name="perturbation-sequences",
        request=PerturbRequest,
        runner="defstab.pipeline.perturb:run_perturb",
        command="perturb",
        paper="Hendrycks & Dietterich 2019 (ImageNet-P)",
        measures="flip probability, top-5 distance and flip rate over perturbation sequences",
    )
)
register_protocol(
    Protocol(
        name="training",
        request=TrainRequest,
        runner="defstab.pipeline.train:run_train",
        command="train",
        paper="Ruderman et al. 2018 (stability and smoothness over training)",
        measures="a trained network with checkpoints and a history of accuracy, stability "
        "and filter smoothness (its folder is --run for every measuring command)",
    )
)
register_protocol(
    Protocol(
        name="dataset-bias",
        request=DatasetBiasRequest,
        runner="defstab.pipeline.dataset_bias:run_dataset_bias",
        command="dataset-bias",
        paper="Azulay & Weiss 2019 (the photographer's bias)",
        measures="object position and size statistics of annotated boxes, beside uniform placement",
    )
)
register_protocol(
    Protocol(
        name="experiment",
        request=ExperimentRequest,
        runner="defstab.pipeline.experiment:run_experiment_request",
        command="experiment",
        paper="Ruderman et al. 2018 (E1–E5); Azulay & Weiss 2019 and after (antialias, "
        "augmentation, worst case)",
        measures="a paper experiment's networks, measurements and verdicts over seeds",
    )
)
register_protocol(
    Protocol(
        name="deformation-figure",
        request=DeformRequest,
        runner="defstab.pipeline.deform:run_deform",
        command="deform",
        paper="Ruderman et al. 2018 (Fig. 2); Petrini et al. 2021; Engstrom et al. 2019",
        measures="a figure of images deformed by random or saved TPS, diffeomorphisms or "
        "rotations + translations",
    )
)
register_protocol(
    Protocol(
        name="stability-card",
        request=BenchRequest,
        runner="defstab.pipeline.bench:run_bench",
        command="bench",
        paper="the protocols of the card (defstab bench --list)",
        measures="every protocol of the card on the same images, per model, and the models "
        "compared with paired bootstrap intervals and Holm",
    )
)
