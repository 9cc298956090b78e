"""What every protocol's outcome shares: summary metrics with their unit and direction,
warnings, and the result folder's checks. Importing this module imports nothing heavy."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

LOWER = "lower"  # a lower value is more stable
HIGHER = "higher"


class DefstabWarning(UserWarning):
    """A warning of a run that goes on (unreadable images skipped, inferred strides, …)."""


def default_warn(message: str) -> None:
    """How the Python API says a warning (the command line prints it on stderr)."""
    warnings.warn(message, DefstabWarning, stacklevel=3)


@dataclass(frozen=True)
class Metric:
    """One summary number of an outcome.

    ``unit``: what it is counted in ("" for a ratio); ``direction``: "lower" or
    "higher" — which way is more stable; ``layer``: the layer it belongs to, if any.
    """

    name: str
    value: float
    unit: str
    direction: str
    layer: str | None = None
    description: str = ""


def check_out_folder(path, option: str = "--out") -> Path:
    """The output folder, checked before any work: it may exist (as a folder) or not."""
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise ValueError(f"{option} {out} is a file; give a folder for the results.")
    parent = next((p for p in [out, *out.parents] if p.exists()), None)
    if parent is not None and not parent.is_dir():
        raise ValueError(f"{option} {out} lies inside the file {parent}.")
    return out


def write_skipped(skipped: list[dict], indices, out: Path, measured: int, warn,
                  shown: Path | None = None) -> int:  # fmt: skip
    """skipped.csv (data index, path, reason) of the unreadable images and one warning;
    an earlier run's list is removed when none was skipped. Returns the count."""
    from defstab.io.tables import write_csv

    if not skipped:
        (out / "skipped.csv").unlink(missing_ok=True)
        return 0
    rows = [{"image": int(indices[s["item"]]), "path": s["path"], "reason": s["reason"]}
            for s in skipped]  # fmt: skip
    write_csv(out / "skipped.csv", rows)
    first = rows[0]
    warn(
        f"{len(rows)} unreadable image(s) skipped, e.g. {first['path']} ({first['reason']}); "
        f"all are listed in {(shown or out) / 'skipped.csv'}; {measured} images were measured."
    )
    return len(rows)


class Outcome:
    """What every protocol's outcome offers: ``rows()`` (its main table, one dict per row),
    ``to_frame()`` (the same as a pandas DataFrame), ``metrics`` (its headline numbers as
    :class:`Metric`) and ``summary_lines()`` (what the command line prints)."""

    def rows(self) -> list[dict]:
        raise NotImplementedError

    def to_frame(self):
        """:meth:`rows` as a pandas DataFrame (``pip install 'defstab[pandas]'``)."""
        try:
            import pandas as pd
        except ImportError:
            raise ImportError(
                "to_frame() needs pandas: pip install 'defstab[pandas]' (or use rows())."
            ) from None
        return pd.DataFrame(self.rows())


def row_line(row: dict) -> str:
    """A table row in one printed line: ``key=value`` pairs, floats to 4 digits."""
    return "  ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items())


def table_summary(settings: dict, normalizations: dict, rows: list[dict], out, written) -> list:
    """What a protocol with a summary table prints: the untrained-weights caveat, the
    normalisation of each network (``{"": chosen}`` for one network, else by role), one
    line per row, and what was written (when ``out`` is a folder)."""
    from defstab.pipeline.models import weights_caveat

    caveat = weights_caveat(settings)
    lines = [caveat] if caveat else []
    for role, chosen in normalizations.items():
        lines.append(f"normalisation{f' of the {role}' if role else ''}: {chosen.describe()}")
    lines += [row_line(row) for row in rows]
    if out is not None:
        lines.append(f"wrote {out}/: {', '.join(written)}")
    return lines


def final_path(final) -> Path | None:
    """The folder a run's files end in, or None when nothing is written."""
    return Path(final) if final is not None else None
