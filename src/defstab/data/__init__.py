"""Image data sets in their real formats, and synthetic tasks.

Names are imported on first use (PEP 562), so that ``defstab.data.spec`` (what every
``--data`` option parses) imports no torch.
"""

from __future__ import annotations

import importlib

_LAZY = {
    "ImageDataset": "sources",
    "load_data": "sources",
    "read_cifar10_batches": "sources",
    "read_idx": "sources",
    "read_image_folder": "sources",
    "read_tensor_file": "sources",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'defstab.data' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"defstab.data.{_LAZY[name]}"), name)
    globals()[name] = value
    return value
