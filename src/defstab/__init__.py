"""defstab: layer-wise deformation and translation stability of convolutional networks.

The names below are imported on first use (PEP 562), so ``import defstab`` — and the
command line's ``--version`` and ``--help`` — do not pay for importing torch.
"""

from __future__ import annotations

import importlib

__version__ = "0.2.0"

_LAZY = {
    "create_model": "defstab.models",
    "list_models": "defstab.models",
    "register_model": "defstab.models",
    "filter_smoothness": "defstab.metrics",
    "normalized_total_variation": "defstab.metrics",
    "deform": "defstab.deform",
    "run": "defstab.pipeline",
    "MeasureRequest": "defstab.requests",
    "ModelOptions": "defstab.requests",
    "DataOptions": "defstab.requests",
    "SpatialRequest": "defstab.requests",
    "SmoothnessRequest": "defstab.requests",
    "PerturbRequest": "defstab.requests",
    "TranslateRequest": "defstab.requests",
    "TrainRequest": "defstab.requests",
    "DatasetBiasRequest": "defstab.requests",
    "ExperimentRequest": "defstab.requests",
    "DeformRequest": "defstab.requests",
}

__all__ = ["__version__", *sorted(_LAZY)]


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'defstab' has no attribute {name!r}")
    module = importlib.import_module(_LAZY[name])
    value = module if _LAZY[name].endswith(name) else getattr(module, name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
