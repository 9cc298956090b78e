"""Package attributes imported on first use (PEP 562), so that importing a package's light
modules (the option parsers, the data specs, the architectures as data) imports no torch."""

from __future__ import annotations

import importlib
from collections.abc import Callable


def lazy_attributes(package: str, table: dict[str, str], namespace: dict) -> Callable:
    """A module ``__getattr__`` for ``package``: name → the submodule that defines it.

    Example (in ``defstab/train/__init__.py``)::

        __getattr__ = lazy_attributes(__name__, {"train": "engine"}, globals())
    """

    def __getattr__(name: str):
        if name not in table:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{table[name]}"), name)
        namespace[name] = value  # later lookups find it directly
        return value

    return __getattr__
