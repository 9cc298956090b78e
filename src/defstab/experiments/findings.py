"""A published finding next to what a run shows: the evidence an experiment hands its
findings, per-seed curves, the accuracy gate, and the finding record.

Every finding is an effect computed within each seed (:func:`per_seed`); findings about
trained networks name the accuracy gate each network behind them must pass, the others
say why none applies. :func:`finding` writes what was observed; the interval and the
verdict, which depend on the seed plan and on the experiment's other findings, are added by
:func:`defstab.experiments.verdicts.decide`. Nothing here is tuned: a finding that does
not show is reported as such.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field, replace

import numpy as np

from defstab.experiments.statistics import (
    AGAINST,
    FindingError,
    PerSeed,
    SeedEffect,
    SmallestEffect,
)


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
    #: a copy for the sensitivity analysis: every gate lets every network through
    gates_off: bool = False
    _cache: dict | None = field(default=None, repr=False, compare=False)

    def seeds(self) -> list[int]:
        return sorted({int(r["seed"]) for r in self.rows})

    def first_seeds(self, n: int) -> Evidence:
        """The evidence of the first ``n`` seeds alone (a look of a seed plan)."""
        from defstab.experiments.aggregate import aggregate

        keep = set(self.seeds()[:n])
        rows = [r for r in self.rows if int(r["seed"]) in keep]
        runs = [r for r in self.runs if int(r["seed"]) in keep]
        return replace(self, rows=rows, summary=aggregate(rows), runs=runs, _cache=None)

    def ungated(self) -> Evidence:
        """The same evidence with the gates off: the verdict the gate changed, if any."""
        return replace(self, gates_off=True)

    def curve(self, cond: str, phase: str, metric: str, seed: int) -> list[float]:
        """One seed's values by layer index."""
        return self._curves()[(cond, phase, metric)].get(seed, [])

    def _curves(self):
        if self._cache is None:
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
        return Gate(what, key, float(self.settings[threshold_key]), off=self.gates_off)

    def accuracy(self, conditions, key: str = "test_acc") -> float | None:
        """Mean ``key`` over the runs of ``conditions`` (None if none was trained)."""
        values = [r[key] for r in self.runs if r["condition"] in conditions and key in r]
        return float(np.mean(values)) if values else None


@dataclass(frozen=True)
class Gate:
    """The accuracy every network behind a trained-network finding must reach.

    Attributes:
        what: in words, e.g. "test accuracy".
        key: the run field, ``test_acc``, ``train_acc`` or ``train_fit``.
        threshold: the preset's minimum; a network passes at or above it.
        off: lets every network through (the sensitivity analysis, :meth:`Evidence.ungated`).
    """

    what: str
    key: str
    threshold: float
    off: bool = False

    def reason(self, condition: str, seed: int, run: dict) -> str | None:
        """Why this network (its run record) cannot stand behind the finding (None if it
        can); a network trained to a target names the epoch cap it stopped at."""
        if self.off:
            return None
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


#: why a finding about untrained networks has no accuracy gate
AT_INIT = "networks at initialisation: nothing was trained, so no accuracy applies"


@dataclass(frozen=True)
class Claim:
    """What :func:`defstab.experiments.verdicts.decide` tests for one finding.

    Attributes:
        effect: the per-seed effect at this look.
        delta: the smallest effect of interest.
        against: "zero" (shows: lo > 0) or "delta" (shows: lo > δ, for an effect that is
            ≥ 0 by construction, where lo > 0 would be nearly free).
        bounds: where the effect can lie by its definition (the interval is cut to them:
            a probability difference in [−1, 1], a ratio − 1 ≥ −1, …).
    """

    effect: SeedEffect
    delta: SmallestEffect
    against: str = "zero"
    bounds: tuple[float, float] = (-math.inf, math.inf)


def finding(
    claim: str,
    definition: str,
    observed: str,
    effect: SeedEffect,
    *,
    delta: SmallestEffect,
    gate: Gate | None,
    no_gate: str | None = None,
    against: str = "zero",
    bounds: tuple[float, float] = (-math.inf, math.inf),
    test_accuracy: float | None = None,
    train_accuracy: float | None = None,
) -> dict:
    """The finding record of ``experiment.json``, before its verdict.

    Args:
        claim: the paper's finding, in words.
        definition: how the effect is computed (shown in the report).
        observed: this run's numbers, in words.
        effect: the per-seed effect, signed so that the claim predicts > 0; seeds whose
            networks missed the gate are in ``effect.missing``.
        delta: the finding's smallest effect of interest, stated before any run.
        gate: the accuracy each network behind the finding had to reach; None only with
            ``no_gate``, the reason no gate applies (e.g. "networks at initialisation").
        against: what "shows" must exceed (:class:`Claim`).
        bounds: the effect's range by definition (:class:`Claim`).
        test_accuracy, train_accuracy: mean over the networks behind the finding.

    Raises:
        FindingError: neither a gate nor the reason for none; an unknown ``against``.
    """
    if (gate is None) == (not no_gate):
        raise FindingError(
            f"the finding {claim!r} must name its accuracy gate or, with gate=None, the "
            "reason none applies (no_gate=...)."
        )
    if against not in AGAINST:
        raise FindingError(f"the finding {claim!r}: against must be one of {AGAINST}.")
    text = observed
    if effect.missing:
        text += f"; {len(effect.missing)} seed(s) left out: " + "; ".join(
            r for _, r in effect.missing
        )
        if gate is not None and effect.n_seeds == 0:
            text += " — INCONCLUSIVE: no seed's networks learned enough to test the claim"
    record = {
        "paper": claim,
        "definition": definition,
        "observed": text,
        "smallest_effect": delta.record(),
        "tested_against": "δ" if against == "delta" else "0",
    }
    if test_accuracy is not None:
        record["test_accuracy"] = test_accuracy
    if train_accuracy is not None:
        record["train_accuracy"] = train_accuracy
    if gate is not None:
        record["gate"] = {
            "what": gate.what,
            "key": gate.key,
            "threshold": gate.threshold,
            "applies_to": "each network",
        }
    else:
        record["no_gate"] = no_gate
    record["_claim"] = Claim(effect, delta, against, tuple(bounds))
    return record
