"""Verdicts from statistics: an effect per seed, a t interval over seeds, and a rule.

A finding's effect is computed *within* each seed (same seed ⇒ same initial weights
before any condition-specific change, same data order), signed so that the paper's claim
predicts a positive value, then summarised over seeds by its mean and a two-sided t
interval. The verdict:

* ``"shows"`` when the interval lies above 0;
* ``"does not show"`` when it lies below 0, or when it lies inside
  [−negligible, +negligible] (the effect is tightly estimated and too small to matter);
* ``"inconclusive"`` otherwise, with one seed, or when the networks behind a finding about
  trained networks did not reach the preset's accuracy.

Example:
    >>> e = seed_effect([0.30, 0.25, 0.35])
    >>> round(e.effect, 3), [round(v, 3) for v in e.ci], e.n_seeds
    (0.3, [0.176, 0.424], 3)
    >>> verdict(e)
    'shows'
    >>> verdict(seed_effect([0.1, -0.1, 0.05]))
    'inconclusive'
"""

from __future__ import annotations

import math
from dataclasses import dataclass

SHOWS, DOES_NOT_SHOW, INCONCLUSIVE = "shows", "does not show", "inconclusive"
VERDICTS = (SHOWS, DOES_NOT_SHOW, INCONCLUSIVE)


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the regularized incomplete beta function (modified Lentz)."""
    tiny, c, d = 1e-300, 1.0, 1.0 - (a + b) * x / (a + 1)
    d = 1 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        for num in (
            m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),
        ):
            d = 1 + num * d
            d = 1 / (d if abs(d) > tiny else tiny)
            c = 1 + num / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1) < 1e-15:
            break
    return h


def _beta_inc(a: float, b: float, x: float) -> float:
    """Regularized incomplete beta I_x(a, b)."""
    if x <= 0 or x >= 1:
        return float(x >= 1)
    front = math.exp(
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    if x < (a + 1) / (a + b + 2):
        return front * _betacf(a, b, x) / a
    return 1 - front * _betacf(b, a, 1 - x) / b


def t_cdf(t: float, df: float) -> float:
    """P(T ≤ t) for Student's t with ``df`` degrees of freedom."""
    tail = 0.5 * _beta_inc(df / 2, 0.5, df / (df + t * t))
    return 1 - tail if t > 0 else tail


def t_quantile(p: float, df: float) -> float:
    """The ``p`` quantile of Student's t (bisection on :func:`t_cdf`)."""
    if df <= 0:
        return math.inf
    lo, hi = -1e6, 1e6
    for _ in range(200):
        mid = (lo + hi) / 2
        if t_cdf(mid, df) < p:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


@dataclass(frozen=True)
class SeedEffect:
    """Mean over seeds of a per-seed effect, with its 95% t interval."""

    effect: float
    ci: tuple[float, float]
    n_seeds: int
    per_seed: tuple[float, ...]


def seed_effect(per_seed: list[float], alpha: float = 0.05) -> SeedEffect:
    """Mean and (1 − alpha) t interval (ddof = 1) of per-seed effects; with one seed the
    interval is unbounded (nothing can be concluded from one seed)."""
    values = [float(v) for v in per_seed if v == v]  # NaN: a seed without the data
    n = len(values)
    if n == 0:
        return SeedEffect(math.nan, (-math.inf, math.inf), 0, ())
    mean = sum(values) / n
    if n == 1:
        return SeedEffect(mean, (-math.inf, math.inf), 1, tuple(values))
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = t_quantile(1 - alpha / 2, n - 1) * sd / math.sqrt(n)
    return SeedEffect(mean, (mean - half, mean + half), n, tuple(values))


def verdict(e: SeedEffect, negligible: float = 0.0) -> str:
    """The rule of the module docstring; ``negligible`` ≥ 0 in the effect's units."""
    lo, hi = e.ci
    if e.n_seeds < 2 or not (math.isfinite(lo) and math.isfinite(hi)):
        return INCONCLUSIVE
    if lo > 0:
        return SHOWS
    if hi < 0 or (negligible > 0 and -negligible <= lo and hi <= negligible):
        return DOES_NOT_SHOW
    return INCONCLUSIVE


def largest_of(per_seed_by_test: dict[str, list[float]]) -> tuple[str, SeedEffect]:
    """The test with the largest mean effect, its interval Bonferroni-corrected for having
    picked it among ``len(per_seed_by_test)`` (each at 95/k%)."""
    k = max(1, len(per_seed_by_test))
    name = max(per_seed_by_test, key=lambda t: seed_effect(per_seed_by_test[t]).effect)
    return name, seed_effect(per_seed_by_test[name], alpha=0.05 / k)
