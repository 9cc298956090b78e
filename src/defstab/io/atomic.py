"""Write files so that a reader never sees a half-written result.

Everything is written to a temporary file in the destination folder and renamed into
place; a rename within one file system is atomic, so an interrupted run leaves either
the old file or none, never a truncated one that looks complete.
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

#: What each refusal of the file system means for the user, by errno name.
_ADVICE = {
    "ENOSPC": "the disk is full",
    "EDQUOT": "the disk quota is used up",
    "EFBIG": "the file would be larger than this system allows (see ulimit -f)",
    "EROFS": "the file system is read-only",
    "EACCES": "there is no permission to write there",
    "EPERM": "there is no permission to write there",
    "ENOENT": "the folder was removed while the command ran",
    "ENOTDIR": "a part of the path is a file, not a folder",
}


class StorageError(OSError):
    """A write the file system refused, said in one sentence that names the path and the
    OS error. Nothing was replaced: the file that was there (an earlier checkpoint, a
    finished result) is intact, and rerunning the same command resumes."""

    def __init__(self, path, code: int | None, detail: str):
        super().__init__(code, detail)
        name = errno.errorcode.get(code, "") if code is not None else ""
        why = _ADVICE.get(name, detail)
        self.sentence = (
            f"could not write {path}: {why} ({detail}{', ' + name if name else ''}); "
            "what was written before is intact — free space or fix the folder, then rerun "
            "the same command to resume."
        )

    def __str__(self) -> str:
        return self.sentence


def storage_error(path, exc: BaseException, written: int | None = None) -> StorageError | None:
    """``exc`` as a :class:`StorageError` for ``path`` if it is a refusal of the file
    system: an ``OSError`` with an errno, a library's error that carries one in its
    message (safetensors says ``I/O error: File too large (os error 27)``), or one
    recognised by the file's ``written`` size and its folder (see
    :func:`_refused_by_size`); else None."""
    if isinstance(exc, StorageError):
        return exc
    if isinstance(exc, OSError) and exc.errno is not None:
        return StorageError(path, exc.errno, exc.strerror or os.strerror(exc.errno))
    found = re.search(r"os error (\d+)|code: (\d+)", str(exc))
    if found:
        code = int(found.group(1) or found.group(2))
        return StorageError(path, code, os.strerror(code))
    return _refused_by_size(path, exc, written)


#: what torch's zip writer says when the file system stops a write (it carries no errno)
_TORCH_WRITER = ("unexpected pos", "PytorchStreamWriter failed", "inline_container")


def _refused_by_size(path, exc: BaseException, written: int | None = None) -> StorageError | None:
    """A refusal that carries no errno, recognised by the file and its folder: no space
    left where it was being written, a size at the file-size limit (``ulimit -f``), or
    torch's zip writer stopping part-way (``RuntimeError: [enforce fail at
    inline_container.cc…] unexpected pos``)."""
    import errno as codes

    folder = Path(path).parent
    with contextlib.suppress(OSError):
        if shutil.disk_usage(folder).free < 1 << 20:
            return StorageError(path, codes.ENOSPC, os.strerror(codes.ENOSPC))
    limit = _file_size_limit()
    if written is not None and limit is not None and written >= limit:
        return StorageError(path, codes.EFBIG, os.strerror(codes.EFBIG))
    if isinstance(exc, RuntimeError) and any(m in str(exc) for m in _TORCH_WRITER):
        size = f" after {written:,} bytes" if written is not None else ""
        if limit is not None and written is not None and written >= limit - (1 << 16):
            return StorageError(path, codes.EFBIG, os.strerror(codes.EFBIG))
        return StorageError(path, None, f"the writer stopped{size}: the file system refused it")
    return None


def _file_size_limit() -> int | None:
    """The soft file-size limit of this process in bytes (None: unlimited)."""
    try:
        import resource

        soft = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    except (ImportError, OSError, ValueError):
        return None
    return None if soft == resource.RLIM_INFINITY else int(soft)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it to ``path`` on success.

    A write the file system refuses (disk full, file too large, read-only, removed folder)
    ends as one :class:`StorageError`; the temporary file is removed and ``path`` keeps
    what it held.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(
            prefix=f".{path.name}.", suffix=".tmp" + path.suffix, dir=path.parent
        )
        os.close(fd)
    except OSError as e:
        raise storage_error(path, e) from None
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        # mkstemp makes 0600 (and some writers recreate the file): results are for sharing
        os.chmod(tmp_path, 0o666 & ~_umask())
        os.replace(tmp_path, path)
    except Exception as e:
        written = None  # without an errno, the file's size and its folder may tell
        with contextlib.suppress(OSError):
            written = tmp_path.stat().st_size
        refused = storage_error(path, e, written)
        if refused is None:
            raise
        raise refused from None
    finally:
        with contextlib.suppress(OSError):
            tmp_path.unlink(missing_ok=True)


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
