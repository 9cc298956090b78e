"""Models compared on the same images: per card metric the paired difference with a
seeded bootstrap interval over images, Holm's step-down over the card's metrics, the
experiments' verdict words, and a leaderboard.

The procedure, fixed before any run (``defstab bench`` states it in its output):

1. for two models A and B and a metric with per-image values, the images both measured
   (the same source images: each protocol reads one seeded draw) give the per-image
   differences d_i = a_i − b_i; the effect is their mean (= A's value − B's value);
2. B bootstrap resamples of the images (a generator seeded with the request's seed) give
   the percentile interval at 95% and two one-sided p-values ((count + 1) / (B + 1)) for
   "A is more stable" and "B is more stable". B is ``resamples``, raised to
   ⌈10 m / 2.5%⌉ for a family of m metrics: a bootstrap p-value is never below
   1 / (B + 1), so with fewer resamples Holm over m metrics could never reach 2.5%;
3. Holm's step-down over the pair's family — every metric of the card with per-image
   values — at one-sided 2.5% for each direction (as the experiments decide);
4. words: "A more stable" / "B more stable" when Holm's adjusted p is below 2.5%, else
   "no difference shown"; with a smallest effect of interest δ the user stated for the
   metric (``--delta``), "at least δ" when the one-sided test of an effect ≤ δ in that
   direction rejects after Holm, "within ±δ" when both one-sided tests of |effect| ≥ δ
   reject (TOST), else the direction only ("direction; an effect below δ is not
   excluded"). Metrics that are not means over images (R_f, filter smoothness) get their
   difference and no interval.
"""

from __future__ import annotations

import math

from defstab.experiments.statistics import holm
from defstab.experiments.verdicts import ALPHA, AT_LEAST_DELTA, DIRECTION

LEVEL = 0.95
WITHIN = "within ±δ"
NO_DIFFERENCE = "no difference shown"


def parse_deltas(text: str | None) -> dict[str, float]:
    """``"tps:sensitivity@pool4=0.05,spatial:grid_accuracy=0.02"`` → {key: δ}; a key may
    name a metric without its layer (``tps:sensitivity``: every layer). One sentence for a
    malformed item or a δ that is not positive."""
    found: dict[str, float] = {}
    for item in (text or "").split(","):
        if not item.strip():
            continue
        key, sep, value = item.rpartition("=")
        try:
            delta = float(value)
        except ValueError:
            delta = math.nan
        if not sep or not key.strip() or not math.isfinite(delta) or delta <= 0:
            raise ValueError(
                f"--delta takes METRIC=VALUE items with a positive VALUE (e.g. "
                f"tps:sensitivity=0.05), got {item.strip()!r}."
            )
        found[key.strip()] = delta
    return found


def delta_for(key: str, deltas: dict[str, float]) -> float | None:
    """The δ stated for metric ``key`` (its own, else its metric's without the layer)."""
    return deltas.get(key, deltas.get(key.split("@")[0]))


def _p_value(count, resamples: int):
    return (count + 1) / (resamples + 1)


def resamples_for(asked: int, family: int) -> int:
    """The resamples of a pair: at least ``asked``, and enough that the smallest
    bootstrap p-value, 1 / (B + 1), times the family's m stays a tenth of 2.5%."""
    return max(asked, math.ceil(10 * family / ALPHA))


def paired_bootstrap(a: dict, b: dict, resamples: int, seed: int) -> dict | None:
    """The paired difference of card entries ``a`` and ``b`` (same key, two models) over
    the images both have: effect, 95% percentile interval, the one-sided p-values and the
    bootstrap draws' tail counts for a δ. None when fewer than 2 images are shared."""
    import torch

    bvalues = dict(zip(b["images"], b["values"], strict=True))
    shared = [(v, bvalues[i]) for i, v in zip(a["images"], a["values"], strict=True)
              if i in bvalues]  # fmt: skip
    if len(shared) < 2:
        return None
    d = torch.tensor([x - y for x, y in shared], dtype=torch.float64)
    gen = torch.Generator().manual_seed(seed)
    per_chunk = max(1, 2**22 // len(d))  # resamples at a time: ≤ 4M indices in memory
    draws = torch.cat([
        d[torch.randint(len(d), (min(per_chunk, resamples - k), len(d)), generator=gen)].mean(1)
        for k in range(0, resamples, per_chunk)
    ])  # fmt: skip
    lo, hi = torch.quantile(draws, torch.tensor([(1 - LEVEL) / 2, (1 + LEVEL) / 2],
                                                dtype=torch.float64)).tolist()  # fmt: skip
    return {
        "effect": float(d.mean()),
        "ci": [lo, hi],
        "images": len(d),
        "p_positive": _p_value(int((draws <= 0).sum()), resamples),  # H0: effect ≤ 0
        "p_negative": _p_value(int((draws >= 0).sum()), resamples),  # H0: effect ≥ 0
        "draws": draws,
    }


def compare_pair(label_a: str, card_a: list[dict], label_b: str, card_b: list[dict],
                 resamples: int, seed: int, deltas: dict[str, float]) -> list[dict]:  # fmt: skip
    """One row per metric both cards have: A − B, its interval, Holm-adjusted p-values
    over the pair's family and the verdict words (see the module's procedure)."""
    of_b = {e["key"]: e for e in card_b}
    family = sum(1 for a in card_a if a["images"] is not None
                 and (of_b.get(a["key"]) or {}).get("images") is not None)  # fmt: skip
    resamples = resamples_for(resamples, family)
    rows, tested = [], []
    for a in card_a:
        b = of_b.get(a["key"])
        if b is None:
            continue
        row = {"a": label_a, "b": label_b, "key": a["key"], "unit": a["unit"],
               "direction": a["direction"], "value_a": a["value"], "value_b": b["value"],
               "effect": a["value"] - b["value"], "ci_low": None, "ci_high": None,
               "images": None, "resamples": None, "p_holm": None,
               "delta": delta_for(a["key"], deltas),
               "verdict": "no interval (not a mean over images)"}  # fmt: skip
        found = None
        if a["images"] is not None and b["images"] is not None:
            found = paired_bootstrap(a, b, resamples, seed)
        if found is not None:
            row |= {"effect": found["effect"], "ci_low": found["ci"][0],
                    "ci_high": found["ci"][1], "images": found["images"],
                    "resamples": resamples}  # fmt: skip
            tested.append((row, found))
        rows.append(row)
    _decide(tested, label_a, label_b, resamples)
    return rows


def _decide(tested: list[tuple[dict, dict]], label_a: str, label_b: str, resamples: int):
    """Holm over the family ``tested`` for each direction; the verdict words per row."""
    if not tested:
        return
    # "A more stable": effect < 0 for a lower-is-stable metric, > 0 for higher
    p_a = [f["p_negative"] if r["direction"] == "lower" else f["p_positive"] for r, f in tested]
    p_b = [f["p_positive"] if r["direction"] == "lower" else f["p_negative"] for r, f in tested]
    adj_a, adj_b = holm(p_a), holm(p_b)
    at_least, within = [], []
    for row, found in tested:
        delta = row["delta"]
        draws = found["draws"]
        if delta is None:
            at_least.append(1.0)
            within.append(1.0)
            continue
        stable_sign = -1 if row["direction"] == "lower" else 1
        toward = stable_sign if found["effect"] * stable_sign > 0 else -stable_sign
        # H0: the effect in the observed direction is at most δ
        at_least.append(_p_value(int((draws * toward <= delta).sum()), resamples))
        within.append(max(_p_value(int((draws >= delta).sum()), resamples),
                          _p_value(int((draws <= -delta).sum()), resamples)))  # fmt: skip
    adj_least, adj_within = holm(at_least), holm(within)
    for k, (row, _) in enumerate(tested):
        p = min(adj_a[k], adj_b[k])
        row["p_holm"] = p
        if p < ALPHA:
            winner = label_a if adj_a[k] < adj_b[k] else label_b
            words = f"{winner} more stable"
            if row["delta"] is not None:
                words += f" ({AT_LEAST_DELTA})" if adj_least[k] < ALPHA else f" ({DIRECTION})"
        elif row["delta"] is not None and adj_within[k] < ALPHA:
            words = WITHIN
        else:
            words = NO_DIFFERENCE
        row["verdict"] = words


def leaderboard(cards: dict[str, list[dict]], rank_by: str) -> list[dict]:
    """One row per model, sorted by metric ``rank_by`` (most stable first), with its
    value and the model's accuracy on the card's images; one sentence when no card has
    the metric."""
    from defstab.pipeline.bench_card import accuracy_of

    rows = []
    direction = None
    for label, card in cards.items():
        found = next((e for e in card if e["key"] == rank_by), None)
        if found is None:
            continue
        direction = found["direction"]
        rows.append({"model": label, "metric": rank_by, "value": found["value"],
                     "unit": found["unit"], "direction": found["direction"],
                     "accuracy": accuracy_of(card)})  # fmt: skip
    if not rows:
        keys = sorted({e["key"] for card in cards.values() for e in card})
        from defstab.errors import unknown_name_message

        raise ValueError(unknown_name_message("--rank-by metric", rank_by, keys))
    rows.sort(key=lambda r: r["value"], reverse=direction == "higher")
    for rank, row in enumerate(rows, 1):
        row["rank"] = rank
    return rows


def default_rank_key(card: list[dict]) -> str:
    """TPS (else diffeo) sensitivity at the last layer, else the card's first metric."""
    for protocol in ("tps", "diffeo"):
        keys = [e["key"] for e in card if e["protocol"] == protocol and e["metric"] ==
                "sensitivity"]  # fmt: skip
        if keys:
            return keys[-1]
    return card[0]["key"]
