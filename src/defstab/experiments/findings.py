"""Helpers for stating a published finding next to what a run shows, computed from the
summary (never tuned: a finding that does not show is reported as such). Each
experiment's own findings live with it in ``experiments/catalog/``."""

from __future__ import annotations

import numpy as np

from defstab.experiments.aggregate import curve


def finding(claim: str, observed: str, shows: bool | None) -> dict:
    """``shows``: True, False, or None when the numbers speak for themselves."""
    return {"paper": claim, "observed": observed, "shows": shows}


def mean_curve(summary, cond, phase, metric, skip_input=True) -> float:
    """Mean over layers of a condition's curve (the input layer left out)."""
    c = curve(summary, cond, phase, metric)
    c = c[1:] if skip_input and metric != "smoothness" else c
    return float(np.mean(c)) if c else float("nan")


def spread(summary, conds, phase, metric) -> float:
    """Mean over layers of the std across conditions of the per-layer mean."""
    curves = [curve(summary, c, phase, metric)[1:] for c in conds]
    curves = [c for c in curves if c]
    if len(curves) < 2:
        return float("nan")
    return float(np.mean(np.std(np.array(curves), axis=0)))


def monotone_decreasing(values) -> bool:
    return all(a > b for a, b in zip(values, values[1:], strict=False))
