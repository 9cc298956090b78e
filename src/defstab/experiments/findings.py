"""A published finding next to what a run shows: the evidence an experiment hands its
findings, per-seed curves, the accuracy gate, and the finding record.

Every finding is an effect computed within each seed and summarised over seeds with an
interval (:mod:`defstab.experiments.statistics`); findings about trained networks carry
the accuracy their networks reached and are "inconclusive" below the preset's threshold.
Nothing here is tuned: a finding that does not show is reported as such.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from defstab.experiments.statistics import INCONCLUSIVE, SeedEffect, verdict


@dataclass
class Evidence:
    """What an experiment's findings are computed from.

    Attributes:
        rows: tidy results, one per (condition, seed, phase, metric, layer).
        summary: mean ± 2 std over seeds (what the figures plot).
        conditions: in plan order.
        runs: one dict per run: condition, seed, test_acc, train_acc (trained runs).
        settings: the preset's settings (thresholds included).
    """

    rows: list[dict]
    summary: list[dict]
    conditions: list[str]
    runs: list[dict]
    settings: dict

    def seeds(self) -> list[int]:
        return sorted({int(r["seed"]) for r in self.rows})

    def curve(self, cond: str, phase: str, metric: str, seed: int) -> list[float]:
        """One seed's values by layer index."""
        return self._curves()[(cond, phase, metric)].get(seed, [])

    def _curves(self):
        if not hasattr(self, "_cache"):
            acc = defaultdict(lambda: defaultdict(list))
            for r in self.rows:
                acc[(r["condition"], r["phase"], r["metric"])][int(r["seed"])].append(
                    (int(r["layer_index"]), float(r["value"]))
                )
            self._cache = defaultdict(
                dict,
                {
                    key: {s: [v for _, v in sorted(vals)] for s, vals in by_seed.items()}
                    for key, by_seed in acc.items()
                },
            )
        return self._cache

    def accuracy(self, conditions, key: str = "test_acc") -> float | None:
        """Mean ``key`` over the runs of ``conditions`` (None if none was trained)."""
        values = [r[key] for r in self.runs if r["condition"] in conditions and key in r]
        return float(np.mean(values)) if values else None


def per_seed(ev: Evidence, effect_of_seed) -> list[float]:
    """``effect_of_seed(seed)`` for every seed (NaN where a seed lacks data)."""
    out = []
    for seed in ev.seeds():
        try:
            out.append(float(effect_of_seed(seed)))
        except (ValueError, IndexError, ZeroDivisionError):
            out.append(math.nan)
    return out


def layer_mean(values: list[float], skip_input: bool = True) -> float:
    v = values[1:] if skip_input else values
    if not v:
        raise ValueError("no layers")
    return float(np.mean(v))


def spread(curves: list[list[float]]) -> float:
    """Mean over layers 1…L of the std across conditions (how different the patterns are)."""
    if len(curves) < 2 or not all(curves):
        raise ValueError("need two curves")
    return float(np.mean(np.std(np.array([c[1:] for c in curves]), axis=0)))


def _bound(v: float) -> float | None:
    return float(v) if math.isfinite(v) else None


def finding(
    claim: str,
    definition: str,
    observed: str,
    effect: SeedEffect,
    *,
    negligible: float = 0.0,
    test_accuracy: float | None = None,
    train_accuracy: float | None = None,
    gate: tuple[str, float | None, float] | None = None,
) -> dict:
    """The finding record of ``experiment.json``.

    Args:
        claim: the paper's finding, in words.
        definition: how the effect is computed (shown in the report).
        observed: this run's numbers, in words.
        effect: the per-seed effect, signed so that the claim predicts > 0.
        negligible: an effect whose whole interval lies within ±negligible does not show.
        gate: (what, value, threshold) — e.g. ("test accuracy", 0.62, 0.70): below the
            threshold the networks did not learn enough, and the verdict is inconclusive.
    """
    v = verdict(effect, negligible)
    record = {
        "paper": claim,
        "definition": definition,
        "observed": observed
        + f"; effect {effect.effect:+.4f}, 95% CI [{effect.ci[0]:+.4f}, {effect.ci[1]:+.4f}] "
        f"over {effect.n_seeds} seeds",
        "effect": _bound(effect.effect),
        "ci": [_bound(effect.ci[0]), _bound(effect.ci[1])],
        "n_seeds": effect.n_seeds,
        "per_seed": [float(x) for x in effect.per_seed],
    }
    if test_accuracy is not None:
        record["test_accuracy"] = test_accuracy
    if train_accuracy is not None:
        record["train_accuracy"] = train_accuracy
    if gate is not None:
        what, value, threshold = gate
        record["gate"] = {"what": what, "value": value, "threshold": threshold}
        if value is None or value < threshold:
            shown = "not measured" if value is None else f"{value:.3f}"
            record["observed"] += (
                f" — INCONCLUSIVE: {what} {shown} is below the preset's {threshold:.2f}, "
                "so these networks did not learn enough to test the claim"
            )
            v = INCONCLUSIVE
    if effect.n_seeds < 2:
        record["observed"] += " — one seed: no interval, so no verdict"
    record["verdict"] = v
    return record
