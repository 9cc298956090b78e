"""Training with checkpoints and a history of stability and smoothness.

Names are imported on first use (PEP 562), so that ``defstab.train.precision`` (the
precision names every ``train`` and ``experiment`` parser lists) imports no torch.
"""

from __future__ import annotations

from defstab._lazy import lazy_attributes

_LAZY = {
    "TrainConfig": "config",
    "default_config": "config",
    "TrainResult": "engine",
    "evaluate": "engine",
    "train": "engine",
}

__all__ = sorted(_LAZY)


__getattr__ = lazy_attributes(__name__, _LAZY, globals())
