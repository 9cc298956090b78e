"""Result folders that hold one complete result or none: staged, then swapped in.

A command that makes a result folder (``measure``, ``translate``, …) writes every file
into a staging folder beside ``--out`` (``.NAME.staging-PID``) and swaps it in only when
all are written, as git writes a ref: a run or rerun that fails half-way leaves the
previous complete result untouched (or nothing), never new tables beside old settings.
Resumable work keeps its resume files in the final folder, outside the swap
(``measure --shards`` keeps ``shards/``): they are carried into the new folder at the
swap.

A folder belongs to the command that made it (``config.json`` → ``command``): another
command is refused before any work, so ``measure --out <a perturb folder>`` cannot
silently replace perturb's settings.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path


def owner(folder: Path) -> str | None:
    """The command recorded in ``folder/config.json`` (None without a readable one)."""
    try:
        record = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    command = record.get("command") if isinstance(record, dict) else None
    return command if isinstance(command, str) else None


def check_owner(folder: Path, command: str, option: str = "--out") -> None:
    """One sentence when ``folder`` holds another command's result."""
    made_by = owner(folder)
    if made_by is not None and made_by != command:
        raise ValueError(
            f"{option} {folder} holds a result of 'defstab {made_by}'; give another folder for "
            f"the {command} result (a folder belongs to the command that made it)."
        )


def _staging_name(final: Path, pid: int) -> Path:
    return final.parent / f".{final.name}.staging-{pid}"


def _remove_stale_stagings(final: Path) -> None:
    """Staging folders of processes that no longer run (killed runs) are removed."""
    for path in final.parent.glob(f".{final.name}.staging-*"):
        try:
            pid = int(path.name.rsplit("-", 1)[1])
            os.kill(pid, 0)  # still running: leave it
        except (ValueError, ProcessLookupError):
            shutil.rmtree(path, ignore_errors=True)
        except PermissionError:
            pass


@contextlib.contextmanager
def staged_folder(final: str | os.PathLike, keep: tuple[str, ...] = ()) -> Iterator[Path]:
    """Yield an empty staging folder beside ``final``; on success swap it in as ``final``.

    ``keep``: entries of the previous ``final`` carried into the new one (resume files).
    On an exception the staging folder is removed and ``final`` is as it was.
    """
    final = Path(final)
    created = [p for p in final.parents if not p.exists()]  # removed again on a failure
    final.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_stagings(final)
    stage = _staging_name(final, os.getpid())
    shutil.rmtree(stage, ignore_errors=True)
    stage.mkdir()
    try:
        yield stage
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        for folder in created:  # innermost first: a failed run leaves no trace
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise
    _swap(stage, final, keep)


def _swap(stage: Path, final: Path, keep: tuple[str, ...]) -> None:
    if not final.exists():
        os.replace(stage, final)
        return
    for name in keep:  # resume files stay with the result folder
        if (final / name).exists() and not (stage / name).exists():
            os.replace(final / name, stage / name)
    previous = final.parent / f".{final.name}.previous-{os.getpid()}"
    shutil.rmtree(previous, ignore_errors=True)
    os.replace(final, previous)
    try:
        os.replace(stage, final)
    except OSError:
        os.replace(previous, final)  # put the old result back
        raise
    shutil.rmtree(previous, ignore_errors=True)
