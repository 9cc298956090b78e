"""Verdicts from statistics: the interval by hand and against scipy, the verdict rule, the
accuracy gate, per-seed pairing, and the demo's labels."""

import json
import math

import numpy as np
import pytest

from defstab.errors import FindingError
from defstab.experiments.findings import AT_INIT, Evidence, finding, per_seed
from defstab.experiments.statistics import (
    MAX_SEEDS,
    VERDICTS,
    SeedPlan,
    SmallestEffect,
    holm,
    largest_of,
    p_above,
    p_below,
    seed_effect,
    seeds_needed,
    t_quantile,
)
from defstab.experiments.verdicts import decide


def decided(record, n=None):
    """One finding alone, decided at one planned look of its seeds."""
    n = n or max(1, record["_claim"].effect.n_seeds)
    return decide([[record]], [n], SeedPlan((n,), "test"), family="test")[0][0]


DELTA = SmallestEffect(0.01, "test")


def _at_init(values, delta=DELTA, **kw):
    return finding("x", "", "x", seed_effect(values), delta=delta, gate=None, no_gate=AT_INIT, **kw)


def test_t_quantiles_match_scipy():
    stats = pytest.importorskip("scipy.stats")
    for df in (1, 2, 3, 4, 7, 29, 200):
        for p in (0.975, 0.995, 1 - 0.025 / 12):
            assert t_quantile(p, df) == pytest.approx(stats.t.ppf(p, df), rel=1e-6)


def test_interval_by_hand():
    # per-seed effects 0.1, 0.3, 0.2: mean 0.2, sd 0.1, s.e. 0.1/√3, t_{0.975, 2} = 4.302653
    e = seed_effect([0.1, 0.3, 0.2])
    half = 4.302653 * 0.1 / math.sqrt(3)
    assert e.effect == pytest.approx(0.2) and e.sd == pytest.approx(0.1)
    assert e.ci == pytest.approx((0.2 - half, 0.2 + half), rel=1e-5)
    assert e.n_seeds == 3 and e.ci[0] < e.effect < e.ci[1]


@pytest.mark.parametrize(
    "values, expected",
    [
        ([0.21, 0.19, 0.2], "shows"),  # lo > 0, hi ≥ δ
        ([0.004, 0.005, 0.006], "does not show"),  # wholly inside (0, δ): too small
        ([0.001, -0.001, 0.0005, 0.0], "does not show"),  # inside ±δ around 0
        ([-0.21, -0.19, -0.2], "does not show"),  # reversed
        ([0.1, -0.1, 0.05], "inconclusive"),  # straddles 0 and δ
        ([0.009, 0.011, 0.010], "shows"),  # straddles δ, lo > 0: larger than 0, maybe ≥ δ
        ([-0.001, 0.003, 0.001], "does not show"),  # straddles 0, hi < δ
        ([0.02, 0.02, 0.02], "shows"),  # zero variance above δ
        ([0.005, 0.005], "does not show"),  # zero variance below δ
        ([0.01, 0.01], "shows"),  # zero variance exactly at δ: hi = δ is not < δ
        ([5.0], "inconclusive"),  # one seed: no interval
        ([], "inconclusive"),
    ],
)
def test_verdict_rule_at_every_boundary(values, expected):
    assert decided(_at_init(values))["verdict"] == expected


def test_verdict_rule_against_scipy_intervals():
    """The rule applied to scipy's t interval, on random per-seed effects."""
    import numpy as np

    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(0)
    for _ in range(200):
        n = int(rng.integers(2, 8))
        v = rng.normal(rng.normal(0, 0.02), rng.uniform(0, 0.02), n)
        lo, hi = stats.t.interval(0.95, n - 1, loc=v.mean(), scale=stats.sem(v))
        want = "does not show" if hi < 0.01 else "shows" if lo > 0 else "inconclusive"
        assert decided(_at_init(list(v)))["verdict"] == want


def test_smallest_effect_must_be_positive():
    for bad in (0.0, -0.1, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="smallest effect"):
            SmallestEffect(bad, "x")


def test_nan_effects_are_refused_not_dropped():
    with pytest.raises(ValueError, match="not finite"):
        seed_effect([0.1, float("nan"), 0.3])


def test_seeds_needed_is_the_first_n_whose_interval_decides():
    stats = pytest.importorskip("scipy.stats")
    for values in ([0.03, -0.01, 0.02], [0.02, 0.0, 0.03], [0.004, 0.02, -0.01], [0.3, -0.1]):
        e = seed_effect(values)
        assert decided(_at_init(values))["verdict"] == "inconclusive"
        n = seeds_needed(e, DELTA)
        room = e.effect if e.effect >= DELTA.value else DELTA.value - e.effect

        def half(m, sd=e.sd):
            return stats.t.ppf(0.975, m - 1) * sd / math.sqrt(m)

        assert n is not None and half(n) < room and (n == 2 or half(n - 1) >= room)
        # a sample of n seeds with this mean and sd gets a verdict
        z = (stats.norm.ppf((np.arange(n) + 0.5) / n)) if n > 2 else np.array([-1.0, 1.0])
        sample = e.effect + e.sd * (z - z.mean()) / z.std(ddof=1)
        assert decided(_at_init(list(sample)))["verdict"] != "inconclusive"
    # too noisy to decide within the cap; one seed: nothing to plan from
    assert seeds_needed(seed_effect([1.0, -1.0]), DELTA) is None
    assert seeds_needed(seed_effect([0.1]), DELTA) is None


def test_largest_of_is_bonferroni_corrected():
    stats = pytest.importorskip("scipy.stats")
    tests = {"a": [0.1, 0.2, 0.15], "b": [0.3, 0.5, 0.4], "c": [0.0, 0.1, -0.1]}
    name, e = largest_of(tests)
    assert name == "b"
    half = stats.t.ppf(1 - 0.025 / 3, 2) * stats.tstd(tests["b"]) / math.sqrt(3)
    assert e.ci == pytest.approx((0.4 - half, 0.4 + half), rel=1e-5)
    assert e.level == "Bonferroni over 3 layers: 98.3% per layer, 95% family-wise"
    assert e.alpha == pytest.approx(0.05 / 3)


def _evidence(values, acc):
    """Two conditions a, b, three seeds, one layer; b's value per seed given."""
    rows = []
    for seed, (va, vb) in enumerate(values):
        for cond, v in (("a", va), ("b", vb)):
            rows.append({"condition": cond, "seed": seed, "phase": "trained",
                         "metric": "m", "layer_index": 0, "layer": "x", "value": v})  # fmt: skip
    accs = acc if isinstance(acc, dict) else {}
    runs = [
        {"condition": c, "seed": s, "test_acc": accs.get((c, s), acc if accs == {} else 0.9)}
        for c in "ab"
        for s in range(len(values))
    ]
    return Evidence(rows, [], ["a", "b"], runs, {"min_test_acc": 0.7})


def _b_minus_a(ev):
    return lambda s: ev.curve("b", "trained", "m", s)[0] - ev.curve("a", "trained", "m", s)[0]


def test_effects_are_paired_within_seed_and_gated_per_network():
    # seeds differ a lot from each other, but b − a is the same 0.1 within every seed:
    # the paired effect is tight, an unpaired comparison would see only noise
    values = [(0.0, 0.1), (5.0, 5.1), (-3.0, -2.9), (1.0, 1.12)]
    ev = _evidence(values, acc=0.8)
    ps = per_seed(ev, _b_minus_a(ev), claim="b > a", networks=["a", "b"], gate=ev.gate())
    assert ps.values == pytest.approx([0.1, 0.1, 0.1, 0.12]) and ps.missing == ()
    f = decided(
        finding("b > a", "b − a per seed", "b − a", seed_effect(ps), delta=DELTA, gate=ev.gate())
    )
    assert f["verdict"] == "shows" and f["gate"]["threshold"] == 0.7
    assert f["smallest_effect"] == {"value": 0.01, "reason": "test"}
    assert f["ci"][0] <= f["effect"] <= f["ci"][1] and f["ci_level"] == "95% t interval"
    json.dumps(f, allow_nan=False)  # strict JSON: no NaN, no infinity
    # one network of seed 1 below the gate, though the mean accuracy is fine: seed 1 is
    # left out and named; the verdict uses the seeds that remain
    low = _evidence(values, acc={("b", 1): 0.69})
    assert low.accuracy(["a", "b"]) > 0.7
    ps = per_seed(low, _b_minus_a(low), claim="b > a", networks=["a", "b"], gate=low.gate())
    assert ps.seeds == (0, 2, 3) and ps.missing == ((1, "b seed 1: test accuracy 0.6900 < 0.70"),)
    g = decided(finding("b > a", "", "b − a", seed_effect(ps), delta=DELTA, gate=low.gate()), 4)
    assert g["n_seeds"] == 3 and g["missing_seeds"] == [
        {"seed": 1, "reason": "b seed 1: test accuracy 0.6900 < 0.70"}
    ]
    assert "b seed 1: test accuracy 0.6900" in g["observed"]
    # every network below the gate: no seed, inconclusive, and said why
    none = _evidence(values, acc=0.4)
    ps = per_seed(none, _b_minus_a(none), claim="b > a", networks=["a", "b"], gate=none.gate())
    h = decided(finding("b > a", "", "b − a", seed_effect(ps), delta=DELTA, gate=none.gate()), 4)
    assert h["verdict"] == "inconclusive" and h["n_seeds"] == 0 and len(h["missing_seeds"]) == 4
    assert "did not learn" not in h["observed"] and "no seed's networks" in h["observed"]
    json.dumps(h, allow_nan=False)
    one = decided(finding("b > a", "", "b − a", seed_effect([0.1]), delta=DELTA, gate=None,
                          no_gate=AT_INIT))  # fmt: skip
    assert one["ci"] == [None, None] and one["verdict"] == "inconclusive"
    assert one["seeds_needed"] is None and "fewer than two" in one["seeds_needed_reason"]
    json.dumps(one, allow_nan=False)


def test_a_failing_effect_stops_with_the_finding_and_the_seed():
    ev = _evidence([(0.0, 0.1), (5.0, 5.1), (-3.0, -2.9)], acc=0.8)

    def broken(seed):
        return ev.curve("b", "trained", "m", seed)[3]  # no layer 3: a coding error

    with pytest.raises(FindingError, match=r"'b > a' could not be computed for seed 0: Index"):
        per_seed(ev, broken, claim="b > a", networks=["a", "b"])
    with pytest.raises(FindingError, match="is nan for seed 0"):
        per_seed(ev, lambda s: float("nan"), claim="b > a")


def test_inconclusive_findings_say_how_many_seeds_a_new_plan_would_need():
    f = decided(_at_init([0.1, -0.1, 0.05], SmallestEffect(0.05, "r")))
    assert f["verdict"] == "inconclusive" and f["seeds_needed"] == 40
    assert f["next_look"] is None and "plan is exhausted" in f["next_look_reason"]
    assert "stayed as observed" in f["seeds_needed_reason"]
    assert "seeds_needed" not in decided(_at_init([1, 1.1]))


def test_a_finding_must_name_its_gate_or_why_it_has_none():
    e = seed_effect([0.1, 0.2])
    with pytest.raises(FindingError, match="must name its accuracy gate"):
        finding("x", "", "x", e, delta=DELTA, gate=None)
    ev = _evidence([(0.0, 0.1)], acc=0.8)
    with pytest.raises(FindingError, match="must name its accuracy gate"):
        finding("x", "", "x", e, delta=DELTA, gate=ev.gate(), no_gate=AT_INIT)


def test_one_sided_p_values_match_scipy():
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(1)
    for _ in range(50):
        v = rng.normal(0.02, 0.03, int(rng.integers(2, 9)))
        e = seed_effect(list(v))
        for null in (0.0, 0.01):
            up = stats.ttest_1samp(v, null, alternative="greater").pvalue
            down = stats.ttest_1samp(v, null, alternative="less").pvalue
            assert p_above(e, null) == pytest.approx(up, rel=1e-6, abs=1e-12)
            assert p_below(e, null) == pytest.approx(down, rel=1e-6, abs=1e-12)
    # p < α ⇔ the (1 − 2α) interval's end lies beyond the value
    e = seed_effect([0.1, 0.3, 0.2])
    assert (p_above(e, 0.0) < 0.025) == (e.ci[0] > 0) and (p_below(e, 0.5) < 0.025) == (
        e.ci[1] < 0.5
    )
    assert p_above(seed_effect([0.1]), 0.0) == 1.0 and p_below(seed_effect([0.2, 0.2]), 0.2) == 1


def test_holm_rejects_what_the_step_down_procedure_rejects():
    """Holm's adjusted p < α exactly for the hypotheses the textbook step-down rejects:
    sorted, reject while p_(i) < α / (m − i), stop at the first that is not."""
    rng = np.random.default_rng(2)
    for _ in range(300):
        m = int(rng.integers(1, 8))
        p = list(rng.uniform(0, 0.06, m) ** rng.uniform(0.5, 2))
        rejected = set()
        for i, j in enumerate(sorted(range(m), key=lambda k: p[k])):
            if p[j] >= 0.025 / (m - i):
                break
            rejected.add(j)
        assert {j for j, a in enumerate(holm(p)) if a < 0.025} == rejected
    assert holm([0.01]) == [0.01] and holm([0.6, 0.6]) == [1.0, 1.0]


def test_seeds_needed_at_a_corrected_level_and_at_its_cap():
    stats = pytest.importorskip("scipy.stats")
    e = seed_effect([0.03, -0.01, 0.02])  # mean 0.0133, sd 0.0208
    for alpha in (0.05 / 12, 0.05 / 24):
        n = seeds_needed(e, DELTA, alpha=alpha)

        def half(m, a=alpha):
            return stats.t.ppf(1 - a / 2, m - 1) * e.sd / math.sqrt(m)

        assert half(n) < e.effect <= half(n - 1)
    assert seeds_needed(e, DELTA, alpha=0.05 / 24) > seeds_needed(e, DELTA)
    # against δ: the room is effect − δ, so it takes more seeds than against 0
    tight = seed_effect([0.035, 0.015, 0.025])  # sd 0.01: 3 seeds against 0, 5 against δ
    assert seeds_needed(tight, DELTA, against="delta") > seeds_needed(tight, DELTA)
    assert seeds_needed(e, DELTA, against="delta") is None  # room 0.0033 at sd 0.021: > 50
    # the cap: the first n is returned when it equals the cap, None one below it
    n = seeds_needed(e, DELTA, alpha=0.05 / 12)
    assert seeds_needed(e, DELTA, alpha=0.05 / 12, cap=n) == n
    assert seeds_needed(e, DELTA, alpha=0.05 / 12, cap=n - 1) is None
    # exactly at δ, tested against δ: no number of seeds decides it
    assert seeds_needed(seed_effect([0.01, 0.01]), DELTA, against="delta") is None
    assert MAX_SEEDS == 50


def test_bounded_effects_get_bounded_intervals():
    rec = _at_init([0.99, 0.2, 0.98], bounds=(-1.0, 1.0))
    f = decided(rec)
    assert f["ci"][1] == 1.0 and f["ci"][0] > -1.0
    raw = seed_effect([0.99, 0.2, 0.98])
    assert raw.ci[1] > 1.0  # without the bounds the t interval leaves the range
    # no interval (fewer than two seeds) is not made one by the bounds
    for values in ([], [0.5]):
        f = decided(_at_init(values, bounds=(-1.0, 1.0)))
        assert f["ci"] == [None, None] and "fewer than two seeds" in f["ci_reason"]


def test_against_delta_needs_the_interval_above_delta():
    # tight around 1.5δ: lo > δ, "shows" either way; tight around 0.9·…1.1·δ: lo > 0 only
    assert decided(_at_init([0.015, 0.0151, 0.0149], against="delta"))["verdict"] == "shows"
    near = [0.0098, 0.0102, 0.0101, 0.0099]
    assert decided(_at_init(near))["verdict_words"] == (
        "shows: direction; an effect below δ is not excluded"
    )
    assert decided(_at_init(near, against="delta"))["verdict"] == "inconclusive"


def test_demo_labels_tell_the_truth(tmp_path):
    from defstab.cli.main import main

    assert main(["demo", "--quick-test", "--quiet", "--out", str(tmp_path)]) == 0
    e1 = json.loads((tmp_path / "pooling" / "experiment.json").read_text())
    e3 = json.loads((tmp_path / "synthetic" / "experiment.json").read_text())
    # E1 in the demo is measured at init only: no "after training" in its heading
    assert "after training" not in e1["title"] and "initialisation" in e1["title"]
    assert not any(r.get("test_acc") for r in e1["runs"])
    # the caveats state the demo's real width and training, not the quick preset's
    from defstab.experiments.demo import TINY

    assert e1["caveats"][0].startswith("DEMO SETTING")
    assert f"width ×{TINY['width']}" in e1["caveats"][0]
    assert "no training" in e1["caveats"][0]
    assert f"{TINY['synthetic_epochs']} epochs on {10 * TINY['per_class']}" in e3["caveats"][0]
    assert all(f["verdict"] in VERDICTS for f in e3["findings"])
    html = (tmp_path / "report.html").read_text()
    assert "QUICK PRESET" not in html and "cannot decide the claim" in html
