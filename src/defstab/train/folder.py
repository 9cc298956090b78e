"""A train folder's contract: same settings resume, other settings stop with the
difference named, ``--overwrite`` starts over, and nothing else is ever deleted.

A folder holds ``config.json`` (the settings that define the run), ``checkpoints/``,
``history.csv`` and, once finished, ``train_summary.json``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from defstab.io.atomic import strict_json

#: Settings that may change between a run and its resumption (where it runs, not what).
NOT_DEFINING = {"versions", "data_name", "device", "amp", "command", "distributed", "output"}
RUN_FILES = ("checkpoints", "history.csv", "train_summary.json", "config.json")


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if k in NOT_DEFINING:
            continue
        if isinstance(v, dict):
            out |= _flatten(v, f"{prefix}{k}.")
        else:
            out[f"{prefix}{k}"] = v
    return out


def differences(old: dict, new: dict) -> list[str]:
    """``"key: old → new"`` for every defining setting that differs."""
    # the new settings as config.json would hold them (write_json: NaN → null)
    as_written = json.dumps(strict_json(new), default=str, allow_nan=False)
    a, b = _flatten(old), _flatten(json.loads(as_written))
    return [
        f"{k}: {a.get(k, '(unset)')} → {b.get(k, '(unset)')}"
        for k in sorted(set(a) | set(b))
        if a.get(k) != b.get(k)
    ]


def has_checkpoints(out: Path) -> bool:
    return any((out / "checkpoints").glob("step_*.safetensors"))


def prepare(out: Path, config: dict, overwrite: bool) -> str:
    """Check ``out`` against ``config`` before any training; returns "new" or "resume".

    Raises:
        ValueError: the folder holds a run with other settings (named), or files that
            are not a train run's.
    """
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file; give a folder for the run.")
    cfg_path = out / "config.json"
    old = None
    if cfg_path.is_file():
        try:
            old = json.loads(cfg_path.read_text())
        except json.JSONDecodeError:
            old = None
    started = has_checkpoints(out)
    if overwrite:
        if out.is_dir() and any(out.iterdir()) and (old or {}).get("command") != "train":
            raise ValueError(
                f"--overwrite only clears 'defstab train' folders; {out} is not one "
                "(no train config.json). Choose another --out."
            )
        for name in RUN_FILES:
            target = out / name
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
        return "new"
    if not started:
        return "new"
    if old is None or old.get("command") != "train":
        raise ValueError(
            f"{out} holds checkpoints but no readable train config.json; choose another --out."
        )
    diff = differences(old, config)
    if diff:
        hint = (
            " To train a finished network longer, start a new folder from its weights with "
            f"--init-from {out}."
            if any(d.startswith("train.epochs") for d in diff)
            else ""
        )
        raise ValueError(
            f"{out} holds a run with other settings ({'; '.join(diff[:4])}"
            + (" …" if len(diff) > 4 else "")
            + "); rerun with the same settings to resume, pass --overwrite to start over, "
            "or choose another --out." + hint
        )
    return "resume"
