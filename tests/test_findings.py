"""Verdicts from statistics: the interval by hand and against scipy, the verdict rule, the
accuracy gate, per-seed pairing, and the demo's labels."""

import json
import math

import pytest

from defstab.experiments.findings import Evidence, finding, per_seed
from defstab.experiments.statistics import (
    VERDICTS,
    largest_of,
    seed_effect,
    t_quantile,
    verdict,
)


def test_t_quantiles_match_scipy():
    stats = pytest.importorskip("scipy.stats")
    for df in (1, 2, 3, 4, 7, 29, 200):
        for p in (0.975, 0.995, 1 - 0.025 / 12):
            assert t_quantile(p, df) == pytest.approx(stats.t.ppf(p, df), rel=1e-6)


def test_interval_by_hand():
    # per-seed effects 0.1, 0.3, 0.2: mean 0.2, sd 0.1, s.e. 0.1/√3, t_{0.975, 2} = 4.302653
    e = seed_effect([0.1, 0.3, 0.2])
    half = 4.302653 * 0.1 / math.sqrt(3)
    assert e.effect == pytest.approx(0.2)
    assert e.ci == pytest.approx((0.2 - half, 0.2 + half), rel=1e-5)
    assert e.n_seeds == 3 and e.ci[0] < e.effect < e.ci[1]
    assert verdict(e) == "inconclusive"  # 0.2 − 0.248 < 0: the interval includes 0
    assert verdict(seed_effect([0.21, 0.19, 0.2])) == "shows"
    assert verdict(seed_effect([-0.21, -0.19, -0.2])) == "does not show"
    # a tight interval inside the negligible band does not show the claimed effect
    tiny = seed_effect([0.001, -0.001, 0.0005, 0.0])
    assert verdict(tiny) == "inconclusive" and verdict(tiny, negligible=0.01) == "does not show"
    # one seed: no interval, no verdict; a missing seed (NaN) is left out
    assert verdict(seed_effect([5.0])) == "inconclusive"
    assert seed_effect([0.1, float("nan"), 0.3]).n_seeds == 2


def test_largest_of_is_bonferroni_corrected():
    stats = pytest.importorskip("scipy.stats")
    tests = {"a": [0.1, 0.2, 0.15], "b": [0.3, 0.5, 0.4], "c": [0.0, 0.1, -0.1]}
    name, e = largest_of(tests)
    assert name == "b"
    half = stats.t.ppf(1 - 0.025 / 3, 2) * stats.tstd(tests["b"]) / math.sqrt(3)
    assert e.ci == pytest.approx((0.4 - half, 0.4 + half), rel=1e-5)


def _evidence(values, acc):
    """Two conditions a, b, three seeds, one layer; b's value per seed given."""
    rows = []
    for seed, (va, vb) in enumerate(values):
        for cond, v in (("a", va), ("b", vb)):
            rows.append({"condition": cond, "seed": seed, "phase": "trained",
                         "metric": "m", "layer_index": 0, "layer": "x", "value": v})  # fmt: skip
    runs = [{"condition": c, "seed": s, "test_acc": acc} for c in "ab" for s in range(3)]
    return Evidence(rows, [], ["a", "b"], runs, {"min_test_acc": 0.7})


def test_effects_are_paired_within_seed_and_gated_by_accuracy():
    # seeds differ a lot from each other, but b − a is the same 0.1 within every seed:
    # the paired effect is tight, an unpaired comparison would see only noise
    ev = _evidence([(0.0, 0.1), (5.0, 5.1), (-3.0, -2.9)], acc=0.8)
    diffs = per_seed(ev, lambda s: ev.curve("b", "trained", "m", s)[0]
                     - ev.curve("a", "trained", "m", s)[0])  # fmt: skip
    assert diffs == pytest.approx([0.1, 0.1, 0.1])
    gate = ("test accuracy", ev.accuracy(["a", "b"]), 0.7)
    f = finding("b > a", "b − a per seed", "b − a", seed_effect(diffs + [0.12]), gate=gate)
    assert f["verdict"] == "shows" and f["gate"]["value"] == pytest.approx(0.8)
    assert f["ci"][0] <= f["effect"] <= f["ci"][1]
    json.dumps(f, allow_nan=False)  # strict JSON: no NaN, no infinity
    # the same numbers from networks that did not learn: inconclusive, and said why
    low = _evidence([(0.0, 0.1), (5.0, 5.1), (-3.0, -2.9)], acc=0.4)
    g = finding("b > a", "", "b − a", seed_effect(diffs + [0.12]),
                gate=("test accuracy", low.accuracy(["a", "b"]), 0.7))  # fmt: skip
    assert g["verdict"] == "inconclusive" and "did not learn" in g["observed"]
    one = finding("b > a", "", "b − a", seed_effect([0.1]))
    assert one["ci"] == [None, None] and one["verdict"] == "inconclusive"
    json.dumps(one, allow_nan=False)


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
