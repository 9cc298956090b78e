"""Training with checkpoints and a history of stability and smoothness.

Names are imported on first use (PEP 562), so that ``defstab.train.precision`` (the
precision names every ``train`` and ``experiment`` parser lists) imports no torch.
"""

from __future__ import annotations

import importlib

_LAZY = {
    "TrainConfig": "config",
    "default_config": "config",
    "TrainResult": "engine",
    "evaluate": "engine",
    "train": "engine",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'defstab.train' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"defstab.train.{_LAZY[name]}"), name)
    globals()[name] = value
    return value
