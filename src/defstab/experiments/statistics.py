"""The statistics behind verdicts: an effect per seed, a t interval over seeds, one-sided
p-values, Holm's adjustment, seed plans.

A finding's effect is computed *within* each seed (same seed ⇒ same initial weights
before any condition-specific change, same data order), signed so that the paper's claim
predicts a positive value, then summarised over seeds by its mean and a t interval
[lo, hi]. Each finding states, before any run, its smallest effect of interest δ > 0 in
the effect's units (:class:`SmallestEffect`), and each preset its seeds
(:class:`SeedPlan`). The rule, one-sided at 2.5% for each kind of error:

* ``"does not show"`` when hi < δ: the effect, if there is one, is too small to matter
  or reversed (the test of H0: effect ≥ δ);
* ``"shows"`` when lo > 0 — or lo > δ for a finding whose effect is ≥ 0 by construction
  (``against="delta"``), where "larger than 0" would be free (the test of H0: effect ≤ 0,
  or ≤ δ);
* ``"inconclusive"`` otherwise, and with fewer than two seeds (no interval).

The levels are corrected for everything that could make "shows" come easier: the layer a
finding picks among k (Bonferroni, :func:`largest_of`), the looks of a group-sequential
plan (Bonferroni over looks), and the experiment's several findings (Holm). The rule
itself is applied in one place, :func:`defstab.experiments.verdicts.decide`.

Example:
    >>> delta = SmallestEffect(0.05, "a twentieth of the scale")
    >>> e = seed_effect([0.30, 0.25, 0.35])
    >>> round(e.effect, 3), [round(v, 3) for v in e.ci], e.n_seeds
    (0.3, [0.176, 0.424], 3)
    >>> p_above(e, 0.0) < 0.025  # "shows": the 95% interval's lower end is above 0
    True
    >>> p_below(seed_effect([0.004, 0.005, 0.006]), delta.value) < 0.025  # below δ
    True
    >>> seeds_needed(seed_effect([0.1, -0.1, 0.05]), delta)  # at this mean and spread
    40
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from itertools import pairwise

from defstab.errors import FindingError  # noqa: F401  (re-exported)

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


@lru_cache(maxsize=4096)
def t_quantile(p: float, df: float) -> float:
    """The ``p`` quantile of Student's t (bisection on :func:`t_cdf`; cached: the same few
    levels are asked for again and again)."""
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
class SmallestEffect:
    """A finding's smallest effect of interest δ > 0, in the effect's units, with the
    sentence that justifies it. Stated in the catalog before any run; never tuned."""

    value: float
    reason: str

    def __post_init__(self):
        if not (self.value > 0 and math.isfinite(self.value)):
            raise ValueError(f"the smallest effect of interest must be > 0, got {self.value}.")

    def record(self) -> dict:
        return {"value": self.value, "reason": self.reason}


@dataclass(frozen=True)
class SeedEffect:
    """Mean over seeds of a per-seed effect, with its t interval.

    Attributes:
        effect: mean of ``per_seed``.
        ci: (lo, hi); infinite with fewer than two seeds.
        n_seeds: seeds that entered the mean.
        per_seed: their effects, in ``seeds`` order.
        sd: standard deviation over seeds (ddof = 1; NaN with fewer than two).
        level: the interval in words, e.g. "95% t interval" or the Bonferroni wording.
        seeds: the seeds behind ``per_seed`` (empty when given as a bare list).
        missing: (seed, reason) for each seed left out, e.g. a network below its gate.
        alpha: 1 − the interval's two-sided level.
        tests: how many tests this one was picked among (the largest of k layers: k); the
            looks and the experiment's other findings are corrected for on top.
    """

    effect: float
    ci: tuple[float, float]
    n_seeds: int
    per_seed: tuple[float, ...]
    sd: float = math.nan
    level: str = "95% t interval"
    seeds: tuple[int, ...] = ()
    missing: tuple[tuple[int, str], ...] = ()
    alpha: float = 0.05
    tests: int = 1


@dataclass(frozen=True)
class PerSeed:
    """Per-seed effects of one finding, and the seeds that legitimately lack one."""

    seeds: tuple[int, ...]
    values: tuple[float, ...]
    missing: tuple[tuple[int, str], ...] = ()


def seed_effect(
    per_seed, alpha: float = 0.05, level: str | None = None, tests: int = 1
) -> SeedEffect:
    """Mean and (1 − alpha) t interval (ddof = 1) of per-seed effects.

    Args:
        per_seed: a :class:`PerSeed` or a list of floats. NaN is refused: a seed without
            data must be listed as missing with its reason, never dropped silently.
        alpha: 1 − the interval's level.
        level: the interval in words (default: "95% t interval" for alpha = 0.05).
        tests: how many tests this effect was picked among (recorded, see SeedEffect).
    """
    if isinstance(per_seed, PerSeed):
        seeds, values, missing = per_seed.seeds, per_seed.values, per_seed.missing
    else:
        seeds, values, missing = (), tuple(float(v) for v in per_seed), ()
    values = tuple(float(v) for v in values)
    if any(not math.isfinite(v) for v in values):
        raise ValueError(f"a per-seed effect is not finite ({values}); name missing seeds instead.")
    level = level or f"{100 * (1 - alpha):.3g}% t interval"
    n = len(values)
    common = {
        "seeds": tuple(seeds),
        "missing": tuple(missing),
        "level": level,
        "alpha": alpha,
        "tests": int(tests),
    }
    if n == 0:
        return SeedEffect(math.nan, (-math.inf, math.inf), 0, (), **common)
    mean = sum(values) / n
    if n == 1:
        return SeedEffect(mean, (-math.inf, math.inf), 1, values, **common)
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = t_quantile(1 - alpha / 2, n - 1) * sd / math.sqrt(n)
    return SeedEffect(mean, (mean - half, mean + half), n, values, sd, **common)


#: what "shows" must exceed: 0, or δ for an effect that is ≥ 0 by construction
AGAINST = ("zero", "delta")


def null_value(delta: SmallestEffect, against: str) -> float:
    """What "shows" must exceed: 0, or δ (``against="delta"``)."""
    if against not in AGAINST:
        raise ValueError(f"against must be one of {AGAINST}, got {against!r}.")
    return delta.value if against == "delta" else 0.0


def _t_statistic(e: SeedEffect, value: float) -> float:
    """(mean − value) / standard error; ±inf for zero spread (the sign of mean − value)."""
    diff = e.effect - value
    if e.sd == 0:
        return math.copysign(math.inf, diff) if diff != 0 else 0.0
    return diff / (e.sd / math.sqrt(e.n_seeds))


def p_above(e: SeedEffect, value: float) -> float:
    """One-sided p of H0: effect ≤ ``value`` (small: the effect is larger); 1 with fewer
    than two seeds. p < α ⇔ the (1 − 2α) t interval's lower end lies above ``value``."""
    if e.n_seeds < 2:
        return 1.0
    t = _t_statistic(e, value)
    if math.isinf(t):
        return 0.0 if t > 0 else 1.0
    if t == 0 and e.sd == 0:
        return 1.0
    return 1.0 - t_cdf(t, e.n_seeds - 1)


def p_below(e: SeedEffect, value: float) -> float:
    """One-sided p of H0: effect ≥ ``value`` (small: the effect is smaller)."""
    if e.n_seeds < 2:
        return 1.0
    t = _t_statistic(e, value)
    if math.isinf(t):
        return 0.0 if t < 0 else 1.0
    if t == 0 and e.sd == 0:
        return 1.0
    return t_cdf(t, e.n_seeds - 1)


def holm(p_values: list[float]) -> list[float]:
    """Holm's step-down adjusted p-values (family-wise error ≤ α when rejecting those < α).

    >>> tuple(round(p, 3) for p in holm([0.01, 0.04, 0.03]))
    (0.03, 0.06, 0.06)
    """
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted, running = [0.0] * m, 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


#: seeds_needed looks no further than this
MAX_SEEDS = 50


@dataclass(frozen=True)
class SeedPlan:
    """How many seeds a preset runs, fixed in its catalog file before any run.

    Either a fixed number of seeds (``looks=(n,)``) or group-sequential looks fixed in
    advance (``looks=(3, 5)``: the verdicts are computed at 3 seeds and, only for what is
    still undecided, again at 5). Each look is tested at ``0.025 / len(looks)`` one-sided
    (Bonferroni over looks), so whichever look decides, a finding with no effect "shows"
    at most 2.5% of the time, and one whose effect is δ "does not show" at most 2.5%.

    Attributes:
        looks: seed counts, strictly increasing (a look of one seed decides nothing: the
            demo's test mode).
        reason: why these counts (cost, the spread seen in earlier runs of other code).
    """

    looks: tuple[int, ...]
    reason: str

    def __post_init__(self):
        looks = tuple(int(n) for n in self.looks)
        if not looks or looks[0] < 1 or any(b <= a for a, b in pairwise(looks)):
            raise ValueError(
                f"a seed plan's looks must be strictly increasing positive seed counts, got "
                f"{looks}."
            )
        object.__setattr__(self, "looks", looks)

    @property
    def seeds(self) -> int:
        """The most seeds the plan runs (its last look)."""
        return self.looks[-1]

    def next_look(self, n_seeds: int) -> int | None:
        """The first planned look with more than ``n_seeds`` seeds (None: plan exhausted)."""
        return next((n for n in self.looks if n > n_seeds), None)

    def record(self) -> dict:
        return {
            "looks": list(self.looks),
            "per_look_alpha": 0.025 / len(self.looks),
            "correction": "Bonferroni over looks" if len(self.looks) > 1 else "fixed n",
            "reason": self.reason,
        }


def seeds_needed(
    e: SeedEffect,
    delta: SmallestEffect,
    cap: int = MAX_SEEDS,
    alpha: float | None = None,
    against: str = "zero",
) -> int | None:
    """The smallest number of seeds whose interval would decide the verdict if the mean
    and the per-seed standard deviation stayed as observed; None beyond ``cap`` or
    without a standard deviation (fewer than two seeds). A planning aid for a *new* plan,
    stated before its runs: never a licence to add seeds to a finished one.

    The deciding boundary: at or above δ, "shows" needs lo > 0 (lo > δ with
    ``against="delta"``), so the half-width must fall below effect − that value; below δ,
    "does not show" needs hi < δ, so it must fall below δ − effect. The interval's
    two-sided level is 1 − ``alpha`` (default ``e``'s own, corrections included).
    """
    if e.n_seeds < 2 or not math.isfinite(e.sd):
        return None
    alpha = e.alpha if alpha is None else alpha
    room = (
        e.effect - null_value(delta, against) if e.effect >= delta.value else delta.value - e.effect
    )
    if room <= 0:  # exactly at δ against δ: no number of seeds decides it
        return None
    for n in range(2, cap + 1):
        if t_quantile(1 - alpha / 2, n - 1) * e.sd / math.sqrt(n) < room:
            return n
    return None


def largest_of(per_seed_by_test: dict[str, PerSeed | list[float]]) -> tuple[str, SeedEffect]:
    """The test with the largest mean effect, its interval Bonferroni-corrected for having
    picked it among ``k = len(per_seed_by_test)`` (each at 1 − 0.05/k)."""
    k = max(1, len(per_seed_by_test))
    name = max(per_seed_by_test, key=lambda t: seed_effect(per_seed_by_test[t]).effect)
    return name, seed_effect(
        per_seed_by_test[name], alpha=0.05 / k, level=bonferroni_level(k), tests=k
    )


def bonferroni_level(k: int, what: str = "layers") -> str:
    """How a Bonferroni-corrected interval is labelled."""
    if k <= 1:
        return "95% t interval"
    return (
        f"Bonferroni over {k} {what}: {100 * (1 - 0.05 / k):.3g}% per {what[:-1]}, 95% family-wise"
    )
