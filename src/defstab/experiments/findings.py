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

from defstab.experiments.statistics import (
    INCONCLUSIVE,
    MAX_SEEDS,
    FindingError,
    PerSeed,
    SeedEffect,
    SmallestEffect,
    seeds_needed,
    verdict,
)
from defstab.io.atomic import strict_json


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

    def run(self, condition: str, seed: int) -> dict | None:
        """The run of ``condition`` and ``seed`` (its accuracies), or None."""
        for r in self.runs:
            if r["condition"] == condition and int(r["seed"]) == int(seed):
                return r
        return None

    def gate(self, threshold_key: str = "min_test_acc", key: str = "test_acc") -> Gate:
        """The preset's accuracy gate (``settings[threshold_key]``) on ``key``."""
        what = {
            "test_acc": "test accuracy",
            "train_acc": "train accuracy",
            "train_fit": "training-set accuracy (eval mode)",
        }[key]
        return Gate(what, key, float(self.settings[threshold_key]))

    def accuracy(self, conditions, key: str = "test_acc") -> float | None:
        """Mean ``key`` over the runs of ``conditions`` (None if none was trained)."""
        values = [r[key] for r in self.runs if r["condition"] in conditions and key in r]
        return float(np.mean(values)) if values else None


@dataclass(frozen=True)
class Gate:
    """The accuracy every network behind a trained-network finding must reach.

    Attributes:
        what: in words, e.g. "test accuracy".
        key: the run field, ``test_acc`` or ``train_acc``.
        threshold: the preset's minimum.
    """

    what: str
    key: str
    threshold: float

    def reason(self, condition: str, seed: int, run: dict) -> str | None:
        """Why this network (its run record) cannot stand behind the finding (None if it
        can); a network trained to a target names the epoch cap it stopped at."""
        value = run.get(self.key)
        if value is None:
            return f"{condition} seed {seed}: {self.what} not measured"
        if value < self.threshold:
            capped = (
                f" (stopped at the {run['epoch_cap']}-epoch cap without reaching the "
                f"target {run['target_train_acc']:.2f})"
                if run.get("reached_target") is False
                else ""
            )
            return (
                f"{condition} seed {seed}: {self.what} {value:.4f} < {self.threshold:.2f}{capped}"
            )
        return None


def per_seed(
    ev: Evidence,
    effect_of_seed,
    *,
    claim: str,
    networks=(),
    gate: Gate | None = None,
) -> PerSeed:
    """``effect_of_seed(seed)`` for every seed whose networks are all there and, with a
    ``gate``, all reached it; the other seeds are listed as missing with the reason.

    Args:
        claim: the finding, named in the error if a seed's effect cannot be computed.
        networks: the conditions whose networks (one per seed) the effect reads.
        gate: applied to each of those networks, not to their mean.

    Raises:
        FindingError: ``effect_of_seed`` failed or returned a non-finite value for a
            seed whose networks are all there.
    """
    seeds, values, missing = [], [], []
    for seed in ev.seeds():
        reasons = []
        for cond in networks:
            run = ev.run(cond, seed)
            if run is None:
                reasons.append(f"{cond} seed {seed}: no run")
            elif gate is not None and (why := gate.reason(cond, seed, run)):
                reasons.append(why)
        if reasons:
            missing.append((seed, "; ".join(reasons)))
            continue
        try:
            value = float(effect_of_seed(seed))
        except Exception as e:  # noqa: BLE001 — re-raised with the finding and the seed
            raise FindingError(
                f"the finding {claim!r} could not be computed for seed {seed}: "
                f"{type(e).__name__}: {e}"
            ) from e
        if not math.isfinite(value):
            raise FindingError(f"the finding {claim!r} is {value} for seed {seed}.")
        seeds.append(seed)
        values.append(value)
    return PerSeed(tuple(seeds), tuple(values), tuple(missing))


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


def finding(
    claim: str,
    definition: str,
    observed: str,
    effect: SeedEffect,
    *,
    delta: SmallestEffect,
    test_accuracy: float | None = None,
    train_accuracy: float | None = None,
    gate: Gate | None = None,
) -> dict:
    """The finding record of ``experiment.json``.

    Args:
        claim: the paper's finding, in words.
        definition: how the effect is computed (shown in the report).
        observed: this run's numbers, in words.
        effect: the per-seed effect, signed so that the claim predicts > 0; seeds whose
            networks missed the gate are in ``effect.missing``.
        delta: the finding's smallest effect of interest, stated before any run.
        test_accuracy, train_accuracy: mean over the networks behind the finding.
        gate: the accuracy each of those networks had to reach (recorded).
    """
    v = verdict(effect, delta)
    lo, hi = effect.ci
    interval = f"{effect.level} [{lo:+.4f}, {hi:+.4f}]" if math.isfinite(lo) else "no interval"
    text = observed
    if effect.n_seeds:
        text += f"; effect {effect.effect:+.4f}, {interval} over {effect.n_seeds} seeds"
    text += f"; smallest effect of interest δ = {delta.value:g}"
    record = {
        "paper": claim,
        "definition": definition,
        "effect": strict_json(effect.effect),
        "ci": [strict_json(lo), strict_json(hi)],
        "ci_level": effect.level,
        "n_seeds": effect.n_seeds,
        "seeds": list(effect.seeds),
        "per_seed": [float(x) for x in effect.per_seed],
        "smallest_effect": delta.record(),
        "missing_seeds": [{"seed": s, "reason": r} for s, r in effect.missing],
    }
    if not math.isfinite(effect.effect):
        record["effect_reason"] = "no seed had the data (see missing_seeds)"
    if not math.isfinite(lo):
        record["ci_reason"] = "fewer than two seeds: no interval"
    if test_accuracy is not None:
        record["test_accuracy"] = test_accuracy
    if train_accuracy is not None:
        record["train_accuracy"] = train_accuracy
    if gate is not None:
        record["gate"] = {
            "what": gate.what,
            "threshold": gate.threshold,
            "applies_to": "each network",
        }
    if effect.missing:
        text += f"; {len(effect.missing)} seed(s) left out: " + "; ".join(
            r for _, r in effect.missing
        )
        if gate is not None and effect.n_seeds == 0:
            text += " — INCONCLUSIVE: no seed's networks learned enough to test the claim"
    if effect.n_seeds < 2:
        text += " — fewer than two seeds: no interval, so no verdict"
    record["observed"] = text
    record["verdict"] = v
    if v == INCONCLUSIVE:
        needed = seeds_needed(effect, delta)
        record["seeds_needed"] = needed
        record["seeds_needed_reason"] = (
            "fewer than two seeds: no standard deviation to plan from"
            if effect.n_seeds < 2
            else f"more than {MAX_SEEDS} seeds at the observed mean and spread"
            if needed is None
            else f"seeds whose interval would decide the verdict if the mean "
            f"({effect.effect:+.4f}) and the per-seed sd ({effect.sd:.4f}) stayed as observed"
        )
    return record
