"""Write files so that a reader never sees a half-written result.

Everything is written to a temporary file in the destination folder and renamed into
place; a rename within one file system is atomic, so an interrupted run leaves either
the old file or none, never a truncated one that looks complete.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it to ``path`` on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{path.name}.", suffix=".tmp" + path.suffix, dir=path.parent
    )
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        # mkstemp makes 0600 (and some writers recreate the file): results are for sharing
        os.chmod(tmp_path, 0o666 & ~_umask())
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text(path: str | os.PathLike, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def strict_json(data: Any) -> Any:
    """``data`` with every non-finite float (NaN, ±inf) replaced by None, so that the JSON
    is standard (Python's ``json`` would write ``NaN``/``Infinity``, which strict parsers
    reject). Writers that know *why* a value is missing record the reason beside it."""
    if isinstance(data, float):
        return data if math.isfinite(data) else None
    if isinstance(data, dict):
        return {k: strict_json(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [strict_json(v) for v in data]
    if hasattr(data, "item") and getattr(data, "ndim", None) == 0:  # numpy / torch scalars
        return strict_json(data.item())
    return data


def write_json(path: str | os.PathLike, data: Any) -> Path:
    """Standard JSON (no NaN/Infinity: see :func:`strict_json`), written atomically."""
    text = json.dumps(strict_json(data), indent=2, sort_keys=False, default=str, allow_nan=False)
    return write_text(path, text + "\n")
