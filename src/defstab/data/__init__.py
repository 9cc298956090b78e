"""Image data sets in their real formats, and synthetic tasks.

Names are imported on first use (PEP 562), so that ``defstab.data.spec`` (what every
``--data`` option parses) imports no torch.
"""

from __future__ import annotations

from defstab._lazy import lazy_attributes

_LAZY = {
    "ImageDataset": "sources",
    "load_data": "sources",
    "read_cifar10_batches": "sources",
    "read_idx": "sources",
    "read_image_folder": "sources",
    "read_tensor_file": "sources",
}

__all__ = sorted(_LAZY)


__getattr__ = lazy_attributes(__name__, _LAZY, globals())
