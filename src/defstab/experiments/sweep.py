"""Sweep one setting of an experiment (e.g. E3's training length) and see how each
finding's effect and interval move: does the trend appear, grow or vanish?

Each value runs the whole experiment into ``OUT/<name>-<label><value>/`` (networks and
measurements are shared through ``OUT/networks`` and ``OUT/measurements`` as usual), then
``OUT/<name>-sweep/`` gets ``sweep.csv`` (value, finding, effect, interval, verdict,
accuracy), a figure of effect ± interval against the value, and a report section.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from defstab.experiments.config import ExperimentConfig
from defstab.experiments.runner import run_experiment
from defstab.io.atomic import write_json
from defstab.io.tables import write_csv
from defstab.plotting.common import plt, save_figure


def run_sweep(
    cfg: ExperimentConfig, key: str, values: list, quiet: bool = False, label: str | None = None
) -> dict:
    """Run ``cfg`` once per value of the preset key ``key`` (folders named with ``label``,
    default the key); returns the sweep's rows and folder."""
    if not values:
        raise ValueError("a sweep needs at least one value.")
    rows = []
    for value in values:
        one = dataclasses.replace(
            cfg,
            overrides=cfg.overrides | {key: value},
            folder_name=f"{cfg.name}-{label or key}{value}",
        )
        meta = run_experiment(one, quiet=quiet)
        for f in meta["findings"]:
            rows.append(
                {
                    key: value,
                    "finding": f["paper"],
                    "effect": f["effect"],
                    "ci_lo": f["ci"][0],
                    "ci_hi": f["ci"][1],
                    "ci_level": f.get("ci_level"),
                    "n_seeds": f["n_seeds"],
                    "missing_seeds": len(f.get("missing_seeds", [])),
                    "delta": f["smallest_effect"]["value"],
                    "verdict": f["verdict"],
                    "test_accuracy": f.get("test_accuracy"),
                }
            )
    folder = Path(cfg.out) / f"{cfg.name}-sweep"
    write_csv(folder / "sweep.csv", rows)
    figure = _figure(rows, key, folder / "sweep.png", f"{cfg.name}: findings against {key}")
    write_json(
        folder / "section.json",
        {
            "section": cfg.name,
            "title": f"{cfg.name}: sweep of {key} ({', '.join(map(str, values))})",
            "text": [
                "Each point is a finding's effect (mean over seeds of the per-seed effect) with "
                f"its interval, for one value of {key}; the whole experiment reruns per "
                "value. Positive = the paper's direction; dashed: the finding's smallest effect "
                "of interest δ. A value whose seeds all missed the accuracy gate has no point."
            ],
            "figures": [figure.name],
            "table_file": "sweep.csv",
        },
    )
    return {"rows": rows, "folder": folder}


def _figure(rows, key, path, title):
    findings = list(dict.fromkeys(r["finding"] for r in rows))
    fig, axes = plt.subplots(1, len(findings), figsize=(4.6 * len(findings), 3.4), squeeze=False)
    for ax, name in zip(axes[0], findings, strict=True):
        sel = [r for r in rows if r["finding"] == name]
        x = np.array([float(r[key]) for r in sel])
        y = np.array([np.nan if r["effect"] is None else r["effect"] for r in sel])
        lo = np.array([np.nan if r["ci_lo"] is None else r["ci_lo"] for r in sel])
        hi = np.array([np.nan if r["ci_hi"] is None else r["ci_hi"] for r in sel])
        if np.isfinite(y).any():
            ax.errorbar(x, y, yerr=np.stack([y - lo, hi - y]), fmt="o-", capsize=3)
        else:
            ax.text(0.5, 0.5, "no seed passed the gate", transform=ax.transAxes, ha="center")
        ax.axhline(0, color="k", lw=0.8)
        ax.axhline(sel[0]["delta"], color="k", lw=0.8, ls="--")
        ax.set_xscale("log")
        ax.set_xlim(min(x) / 1.5, max(x) * 1.5)
        ax.set_xlabel(key)
        ax.set_ylabel("effect (interval over seeds)")
        ax.set_title(name, fontsize=8, wrap=True)
        ax.grid(alpha=0.3)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path)
