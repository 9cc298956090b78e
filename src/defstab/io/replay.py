"""Replay files: deformations saved with the images they belong to.

``measure`` writes ``deformations.pt`` (and ``worst_deformations.pt``) as a dict: the
parameters — displacements (N, k·k, 2) or fields (N, H, W, 2) — and a record of what they
were drawn for: the data, the image ids in order, the image size, the seed and the
deformation spec. Replaying them onto other images (another ``--seed``, other data) would
measure something else under the same name, so :func:`check_replay` refuses a mismatch in
one sentence unless the user forces it. Files are read with ``weights_only=True``.

Example:
    >>> import tempfile, torch
    >>> path = tempfile.mkdtemp() + "/d.pt"
    >>> record = {"data": {"kind": "cifar10"}, "images": [4, 2], "image_size": [32, 32]}
    >>> _ = save_replay(path, torch.zeros(2, 9, 2), record)
    >>> replay = read_replay(path)
    >>> check_replay(replay, record | {"images": [4, 2]}, force=False)
    []
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

#: What must agree for a replay to deform the same images, with how a mismatch reads.
CHECKED = {
    "data": "the data",
    "images": "the image ids",
    "image_size": "the image size",
}


@dataclass(frozen=True)
class Replay:
    """Saved deformation parameters and the record of what they were drawn for (None for
    a bare tensor written by an older defstab, which records nothing)."""

    params: torch.Tensor
    record: dict | None


def save_replay(path: str | Path, params: torch.Tensor, record: dict) -> Path:
    """Write ``{"params": params, "record": JSON text}`` atomically (weights-only loadable)."""
    from defstab.io.atomic import atomic_path, strict_json

    text = json.dumps(strict_json(record), sort_keys=True, allow_nan=False)
    with atomic_path(path) as tmp:
        torch.save({"params": params.detach().cpu(), "record": text}, tmp)
    return Path(path)


def read_replay(path: str | Path, what: str = "--deformations") -> Replay:
    """A replay file (or a bare tensor of parameters); one sentence for anything else."""
    from defstab.io.checkpoint import read_tensor

    obj = read_tensor(path, what)
    if isinstance(obj, torch.Tensor):
        return Replay(obj, None)
    if isinstance(obj, dict) and isinstance(obj.get("params"), torch.Tensor):
        try:
            record = json.loads(obj.get("record", "null"))
        except (TypeError, json.JSONDecodeError):
            raise ValueError(f"{what} {path} has an unreadable record of its images.") from None
        return Replay(obj["params"], record if isinstance(record, dict) else None)
    raise ValueError(
        f"{what} {path} holds neither deformations nor a measure's replay file (deformations.pt)."
    )


def check_replay(replay: Replay, now: dict, force: bool) -> list[str]:
    """Differences between the replay's record and this run's ``now`` (same keys as
    :data:`CHECKED`, plus ``seed``): an empty list when they agree.

    Raises:
        ValueError: they differ (or the file records nothing) and ``force`` is False.
    """
    if replay.record is None:
        problems = ["the file does not record which images it was drawn for"]
    else:
        problems = [
            f"{label} differ"
            for key, label in CHECKED.items()
            if replay.record.get(key) != now[key]
        ]
    if problems and not force:
        seed = (replay.record or {}).get("seed")
        hint = f" (it was written with --seed {seed})" if seed is not None else ""
        raise ValueError(
            f"--deformations does not belong to these images: {'; '.join(problems)}{hint}; "
            "rerun with the data, --images and --seed it was written with, or pass "
            "--force-replay to deform these images with it anyway."
        )
    return problems
