"""Planted effects: every finding of every registered experiment, computed by the catalog's
own code from result rows shaped like real runs, on per-seed effects we choose, and decided
by the verdict code the runner uses (one planned look of 5 seeds, Holm over the
experiment's findings).

For each finding a planter writes rows whose within-seed effect is exactly the planted
value, and puts large decoys where a wrong sign, condition, phase or layer range would
read them. Five scenarios per finding, scaled by the finding's own δ:

* clearly positive → "shows: at least δ";
* reversed → "does not show";
* a null within ±δ/2 → "does not show";
* noise around 0 → "inconclusive";
* tightly around δ → "shows" in direction only, or, for an effect ≥ 0 by construction
  (tested against δ), "inconclusive".

The gates: each network's accuracies differ by key and by seed, one seed sits exactly at
the threshold and one just below, so a gate that reads the wrong key, threshold or
comparison — or a finding that loses its gate — fails :func:`test_every_gate_reads_its_key`.

An experiment whose findings lack a planter fails :func:`test_every_finding_has_a_planter`.
"""

from __future__ import annotations

import pytest

from defstab.experiments.findings import Evidence
from defstab.experiments.presets import PRESETS
from defstab.experiments.registry import get_experiment, list_experiments
from defstab.experiments.statistics import SeedPlan
from defstab.experiments.verdicts import evaluate

SEEDS = range(5)
SCENARIOS = {
    "positive": ([3.0, 3.2, 2.8, 3.1, 2.9], "shows: at least δ"),
    "reversed": ([-3.0, -3.2, -2.8, -3.1, -2.9], "does not show"),
    "null": ([0.1, -0.1, 0.05, -0.05, 0.0], "does not show"),
    "noisy": ([2.0, -2.0, 1.5, -1.5, 0.0], "inconclusive"),
    "at delta": (
        [1.0, 1.1, 0.9, 1.05, 0.95],
        "shows: direction; an effect below δ is not excluded",
    ),
}
#: findings whose effect is ≥ 0 by construction: "shows" needs the interval above δ
AGAINST_DELTA = {("worst-case", 0), ("worst-case", 1), ("augmentation", 3)}
PLAN = SeedPlan((len(SEEDS),), "planted: one look of every seed")
DECOY = 100.0  # where a wrong layer range or condition would look
SETTINGS = PRESETS["quick"]
KINDS = SETTINGS["pooling_types"]  # maxpool, avgpool (pooling); subsample, strided
SIGN = {k: (1 if i % 2 == 0 else -1) for i, k in enumerate(KINDS)}  # + − + −: std = a


class Plant:
    """Result rows and run records, as the runner hands them to an experiment."""

    def __init__(self, conditions):
        self.conditions = list(conditions)
        self.rows = []

    def curve(self, cond, phase, metric, seed, values):
        for i, v in enumerate(values):
            self.rows.append({"condition": cond, "seed": seed, "phase": phase,
                              "metric": metric, "layer_index": i, "layer": f"l{i}",
                              "value": float(v)})  # fmt: skip

    def evidence(self, low_seed=None, accuracy=None) -> Evidence:
        """Every network learned (well above every gate), except all of ``low_seed``;
        ``accuracy(condition, seed)`` → the run's accuracy fields, if given."""
        runs = [
            {"condition": c, "seed": s}
            | (
                accuracy(c, s)
                if accuracy
                else {"test_acc": 0.96, "train_acc": 1.0, "train_fit": 1.0}
                | ({"test_acc": 0.10, "train_acc": 0.1, "train_fit": 0.1} if s == low_seed else {})
            )
            for c in self.conditions
            for s in SEEDS
        ]
        return Evidence(self.rows, [], self.conditions, runs, dict(SETTINGS))


# --------------------------------------------------------------------------- E1 · pooling
POOLS, PLAIN = KINDS[:2], KINDS[2:]
L = 13  # input, 8 conv, 4 downsampling


def _two_phases(metric, init, trained):
    """E1's types measured at init and trained; init/trained: (kind, seed) → curve."""
    p = Plant(KINDS)
    for k in KINDS:
        for s in SEEDS:
            p.curve(k, "init", metric, s, init(k, s))
            p.curve(k, "trained", metric, s, trained(k, s))
    return p


def _pooling(init, trained):
    return _two_phases("sensitivity", init, trained)


def pooling_gap(e):
    def init(k, s):
        return [0.0] + [0.5] * (L - 2) + [0.5 + (e[s] if k in PLAIN else 0.0)]

    # decoys: the gap reversed one layer earlier at init, and at the last layer trained
    def decoy(k, s):
        c = init(k, s)
        c[-2] += DECOY if k in POOLS else 0.0
        return c

    return _pooling(decoy, lambda k, s: [0.0] + [0.5] * (L - 2) + [0.5 + DECOY * (k in POOLS)])


def pooling_converge(e):
    # std across types of 0.5 + SIGN·a is a: spread at init 0.2 + e, after training 0.2;
    # the input layer (excluded) differs wildly after training
    return _pooling(
        lambda k, s: [0.0] + [0.5 + SIGN[k] * (0.2 + e[s])] * (L - 1),
        lambda k, s: [SIGN[k] * DECOY] + [0.5 + SIGN[k] * 0.2] * (L - 1),
    )


def pooling_raise(e):
    # pooling types rise by e at every layer but the input (which rises by DECOY, excluded);
    # the non-pooling types fall by DECOY (not part of the finding)
    def trained(k, s):
        if k in POOLS:
            return [DECOY] + [0.5 + e[s]] * (L - 1)
        return [0.0] + [0.5 - DECOY] * (L - 1)

    return _pooling(lambda k, s: [0.0] + [0.5] * (L - 1), trained)


# ----------------------------------------------------------------------- E2 · smooth-init
def smooth_init(e):
    sigmas = [f"σ={v:g}" for v in SETTINGS["sigmas"]]
    p = Plant(sigmas)
    for c in sigmas:
        for s in SEEDS:
            # smallest σ above the largest by e (layers 1…L); its input layer is a decoy;
            # the middle σ carry a reversed decoy (only the two ends are compared)
            bump = e[s] if c == sigmas[0] else (-DECOY if c in sigmas[1:-1] else 0.0)
            first = DECOY if c == sigmas[0] else 0.0
            p.curve(c, "init", "sensitivity", s, [first] + [0.5 + bump] * (L - 1))
    return p


# ------------------------------------------------------------------------- E3 · synthetic
CONV = 8
STRENGTHS = [f"C={v:g}" for v in SETTINGS["strengths"]]


def _synthetic(lo_curve):
    p = Plant(STRENGTHS)
    for c in STRENGTHS:
        for s in SEEDS:
            curve = lo_curve(s) if c == STRENGTHS[0] else [1.5] * CONV
            if c in STRENGTHS[1:-1]:
                curve = [1.5 + DECOY] * CONV  # middle strengths are not compared
            p.curve(c, "trained", "smoothness", s, curve)
            p.curve(c, "init", "smoothness", s, [1.5 - DECOY] * CONV)  # not after training
    return p


def synthetic_deeper(e):
    return _synthetic(lambda s: [1.5 - DECOY] + [1.5 + e[s]] * (CONV - 1))


def synthetic_first(e):
    return _synthetic(lambda s: [1.5 + e[s]] + [1.5 - DECOY] * (CONV - 1))


# ------------------------------------------------------------------------ E4 · smoothness
def _smoothness(init, trained):
    return _two_phases("smoothness", init, trained)


def smoothness_smoother(e):
    # every conv layer counts (no input layer in smoothness curves): the whole drop sits in
    # the first one, so the mean over layers is e only if that layer is included
    return _smoothness(
        lambda k, s: [1.86] * CONV, lambda k, s: [1.86 - CONV * e[s]] + [1.86] * (CONV - 1)
    )


def smoothness_agree(e):
    from defstab.experiments.catalog.smoothness import AGREE_WITHIN

    # std across types of the trained mean TV is AGREE_WITHIN − e; at init types differ
    # wildly (only the trained agreement is claimed)
    return _smoothness(
        lambda k, s: [1.86 + SIGN[k] * DECOY] * CONV,
        lambda k, s: [1.5 + SIGN[k] * (AGREE_WITHIN - e[s])] * CONV,
    )


# ---------------------------------------------------------------------- E5 · random labels
VARIANTS = ("real labels", "random labels", "random images")


def _random_labels(spread_of):
    conds = [f"{k}|{v}" for k in KINDS for v in VARIANTS]
    p = Plant(conds)
    for k in KINDS:
        for v in VARIANTS:
            for s in SEEDS:
                a = spread_of(v, s)
                p.curve(f"{k}|{v}", "trained", "sensitivity", s,
                        [SIGN[k] * DECOY] + [0.5 + SIGN[k] * a] * (L - 1))  # fmt: skip
                p.curve(f"{k}|{v}", "init", "sensitivity", s, [0.5 + SIGN[k] * DECOY] * L)
    return p


def random_labels(e):
    return _random_labels(lambda v, s: 0.2 + (e[s] if v == "random labels" else 0.0))


def random_images(e):
    return _random_labels(lambda v, s: 0.2 + (e[s] if v == "random images" else 0.0))


# ------------------------------------------------------------------------- antialias
AA = ["maxpool", "strided", "blurpool", "aps"]
AA_PROTOCOLS = ("embed", "crop", "circular")


def _shift_plant(values):
    """Every type × protocol × phase at 0.2 (P(top-1 change)), then ``values``:
    {(condition, phase, protocol): seed -> value} over it."""
    p = Plant(AA)
    for c in AA:
        for s in SEEDS:
            for phase in ("init", "trained"):
                for proto in AA_PROTOCOLS:
                    v = values.get((c, phase, proto), lambda s: 0.2)(s)
                    p.curve(c, phase, f"{proto}:p_top1_change", s, [v])
    return p


def _antialias(proto, e):
    other = {"embed": "crop", "crop": "embed"}[proto]
    return _shift_plant({
        ("blurpool", "trained", proto): lambda s: 0.2 - e[s],
        ("blurpool", "trained", other): lambda s: 0.2 + DECOY,
        ("blurpool", "init", proto): lambda s: 0.2 + DECOY,
        ("aps", "trained", proto): lambda s: 0.2 + DECOY,  # aps is not among the others
    })  # fmt: skip


def _aps_circular(e):
    return _shift_plant({
        ("aps", "trained", "circular"): lambda s: 0.2 - e[s],
        ("aps", "trained", "crop"): lambda s: 0.2 + DECOY,
        ("aps", "init", "circular"): lambda s: 0.2 + DECOY,
    })  # fmt: skip


def _aps_crop(e):
    return _shift_plant({
        ("aps", "trained", "crop"): lambda s: 0.2 - e[s],
        ("maxpool", "trained", "crop"): lambda s: 0.2 + DECOY,  # only blurpool is compared
        ("aps", "trained", "circular"): lambda s: 0.2 + DECOY,
        ("aps", "init", "crop"): lambda s: 0.2 + DECOY,
    })  # fmt: skip


# ------------------------------------------------------------------------- worst case
def _worst(phase, e):
    p = Plant(KINDS)
    for k in KINDS:
        for s in SEEDS:
            for ph in ("init", "trained"):
                # worst = random × (1 + e) at the last layer of the planted phase only;
                # earlier layers carry a decoy
                excess = e[s] if ph == phase else DECOY
                p.curve(k, ph, "sensitivity", s, [0.0] + [0.5] * (L - 3) + [0.25, 0.5])
                p.curve(k, ph, "worst", s, [0.0] + [0.5 * (1 + DECOY)] * (L - 2)
                        + [0.5 * (1 + excess)])  # fmt: skip
    return p


def worst_gap(e):
    p = Plant(KINDS)
    for k in KINDS:
        for s in SEEDS:
            for ph in ("init", "trained"):
                gap = (e[s] if ph == "init" else DECOY) if k in PLAIN else 0.0
                p.curve(k, ph, "sensitivity", s, [0.0] + [0.5] * (L - 2) + [0.5 + DECOY])
                p.curve(k, ph, "worst", s, [0.0] + [0.9] * (L - 2) + [0.9 + gap])
    return p


# ------------------------------------------------------------------------- augmentation
AUG_ARCHS, AUGS, K = ["maxpool", "strided", "blurpool"], ["none", "crop4", "shift8"], 12
# the pad-shift path: steps dx → dx + 1 for dx = −K … K − 1; a step's reach is its larger |end|
REACH = [max(abs(dx), abs(dx + 1)) for dx in range(-K, K)]


def _augmentation(per_step):
    """per_step(aug, seed, reach) → P(top-1 change) of that step."""
    conds = [f"{a}/{g}" for g in AUGS for a in AUG_ARCHS]
    p = Plant(conds)
    for g in AUGS:
        for a in AUG_ARCHS:
            for s in SEEDS:
                p.curve(f"{a}/{g}", "trained", "pad:p_top1_change", s,
                        [per_step(g, s, r) for r in REACH])  # fmt: skip
    return p


def augmentation_none_vs_crop(e):
    def step(g, s, r):
        if r > 4:
            return DECOY if g == "none" else 0.1
        return 0.1 + (e[s] if g == "none" else 0.0) + (DECOY if g == "shift8" else 0.0)

    return _augmentation(step)


def augmentation_outside(aug, r_train):
    def plant(e):
        def step(g, s, r):
            if g != aug:
                return DECOY * (r > 4)
            return 0.1 + (e[s] if r > r_train else 0.0)

        return _augmentation(step)

    return plant


def augmentation_not_invariant(e):
    def step(g, s, r):
        if g != "shift8":
            return DECOY
        return e[s] if r <= 8 else DECOY

    return _augmentation(step)


# the findings of each experiment, in the order the experiment returns them
PLANTERS = {
    "pooling": [pooling_gap, pooling_converge, pooling_raise],
    "smooth-init": [smooth_init],
    "synthetic": [synthetic_deeper, synthetic_first],
    "smoothness": [smoothness_smoother, smoothness_agree],
    "random-labels": [random_labels, random_images],
    "antialias": [
        lambda e: _antialias("embed", e),
        lambda e: _antialias("crop", e),
        _aps_circular,
        _aps_crop,
    ],
    "worst-case": [lambda e: _worst("init", e), lambda e: _worst("trained", e), worst_gap],
    "measures": [],  # retired: no finding (test_measures_states_why_it_has_no_finding)
    "augmentation": [
        augmentation_none_vs_crop,
        augmentation_outside("crop4", 4),
        augmentation_outside("shift8", 8),
        augmentation_not_invariant,
    ],
}
CASES = [(name, i) for name, planters in PLANTERS.items() for i in range(len(planters))]


def _findings(name, i, effects, low_seed=None, accuracy=None):
    ev = PLANTERS[name][i](effects).evidence(low_seed, accuracy)
    found, _ = evaluate(get_experiment(name).findings, ev, PLAN, family=name)
    return found


def test_every_finding_has_a_planter():
    assert sorted(PLANTERS) == sorted(list_experiments())
    for name, planters in PLANTERS.items():
        for i in range(len(planters)):
            found = _findings(name, i, [0.0] * len(SEEDS))
            assert len(found) == len(planters), f"{name}: {len(found)} findings"


@pytest.mark.parametrize("scenario", list(SCENARIOS))
@pytest.mark.parametrize("name, index", CASES)
def test_planted_effect_gives_its_verdict(name, index, scenario):
    probe = _findings(name, index, [0.0] * len(SEEDS))[index]
    delta = probe["smallest_effect"]["value"]
    scale, expected = SCENARIOS[scenario]
    planted = [delta * v for v in scale]
    f = _findings(name, index, planted)[index]
    assert f["per_seed"] == pytest.approx(planted, abs=1e-9), f["paper"]
    assert f["n_seeds"] == len(SEEDS) and f["missing_seeds"] == []
    if scenario == "at delta" and (name, index) in AGAINST_DELTA:
        expected = "inconclusive"  # lo > 0 is free here: the claim is an excess over δ
    assert f["tested_against"] == ("δ" if (name, index) in AGAINST_DELTA else "0")
    assert f["verdict_words"] == expected, (f["paper"], f["observed"])
    if f["verdict"] == "inconclusive":  # one look: the plan is exhausted
        assert f["next_look"] is None and "exhausted" in f["next_look_reason"]
        assert f["seeds_needed"] is None or f["seeds_needed"] > len(SEEDS)


@pytest.mark.parametrize("name, index", CASES)
def test_a_seed_whose_networks_missed_the_gate_is_named(name, index):
    planted = [0.0, *[d * 3 for d in SCENARIOS["positive"][0][1:]]]
    f = _findings(name, index, planted, low_seed=0)[index]
    if "gate" not in f:  # a finding about networks at init: accuracy does not apply
        assert f["n_seeds"] == len(SEEDS)
        return
    assert [m["seed"] for m in f["missing_seeds"]] == [0]
    assert f["seeds"] == [1, 2, 3, 4] and f["n_seeds"] == 4
    assert "seed 0" in f["missing_seeds"][0]["reason"] and "seed(s) left out" in f["observed"]


# which accuracy each finding's gate must read, and the preset threshold it must apply;
# None: a finding about networks at initialisation, which must say why it has no gate
TEST_ACC = ("test_acc", "min_test_acc")
EXPECTED_GATES = {
    "pooling": [None, TEST_ACC, TEST_ACC],
    "smooth-init": [None],
    "synthetic": [("test_acc", "min_test_acc_synthetic")] * 2,
    "smoothness": [TEST_ACC, TEST_ACC],
    "random-labels": [("train_fit", "min_train_acc_random_labels")] * 2,
    "antialias": [TEST_ACC] * 4,
    "worst-case": [None, TEST_ACC, None],
    "measures": [],
    "augmentation": [TEST_ACC] * 4,
}
ACCURACY_KEYS = ("test_acc", "train_acc", "train_fit")


def _accuracies(key, threshold):
    """Seed 0 exactly at the threshold (passes: a network at the minimum reached it);
    seed 1 just below (left out); seed 2 just above on ``key`` and 0 on every other key
    (a gate reading another key would drop it, and one with a higher threshold, from
    another preset key, too); seeds 3, 4 well above."""

    def accuracy(cond, seed):
        right = {0: threshold, 1: threshold - 1e-4, 2: threshold + 0.01}.get(seed, 1.0)
        other = 0.0 if seed == 2 else 1.0
        return {k: (right if k == key else other) for k in ACCURACY_KEYS}

    return accuracy


def test_the_gate_table_covers_every_finding():
    assert sorted(EXPECTED_GATES) == sorted(PLANTERS)
    assert all(len(EXPECTED_GATES[n]) == len(PLANTERS[n]) for n in PLANTERS)
    # the three thresholds differ, so reading the wrong one is seen
    assert len({SETTINGS[t] for t in ("min_test_acc", "min_test_acc_synthetic",
                                      "min_train_acc_random_labels")}) == 3  # fmt: skip


@pytest.mark.parametrize("name, index", CASES)
def test_every_gate_reads_its_key(name, index):
    expected = EXPECTED_GATES[name][index]
    delta = _findings(name, index, [0.0] * len(SEEDS))[index]["smallest_effect"]["value"]
    planted = [delta * v for v in SCENARIOS["positive"][0]]
    if expected is None:
        f = _findings(name, index, planted, accuracy=lambda c, s: dict.fromkeys(ACCURACY_KEYS, 0))[
            index
        ]
        assert "gate" not in f and f["no_gate"], f["paper"]
        assert f["n_seeds"] == len(SEEDS) and f["missing_seeds"] == []
        return
    key, threshold_key = expected
    threshold = SETTINGS[threshold_key]
    f = _findings(name, index, planted, accuracy=_accuracies(key, threshold))[index]
    assert f["gate"]["key"] == key and f["gate"]["threshold"] == threshold, f["paper"]
    assert [m["seed"] for m in f["missing_seeds"]] == [1], (f["paper"], f["missing_seeds"])
    assert f["seeds"] == [0, 2, 3, 4]
    # the sensitivity analysis: the same finding on every seed, and what the gate removed
    ungated = f["without_gate"]
    assert ungated["n_seeds"] == len(SEEDS) and "seed 1" in ungated["removed_by_gate"][0]
    assert ungated["verdict"] == "shows"


def test_measures_states_why_it_has_no_finding():
    from defstab.experiments.catalog.measures import FINDINGS_RETIRED

    experiment = get_experiment("measures")
    assert experiment.findings_retired == FINDINGS_RETIRED and "no verdict" in FINDINGS_RETIRED


def test_synthetic_per_layer_table_by_hand():
    """E3's per-layer table: layer i's effect is planted as (i + 1)·δ/2 plus noise that
    differs by seed; each row must be that layer's mean and its t interval, Bonferroni over
    the CONV − 1 deeper layers, against scipy."""
    stats = pytest.importorskip("scipy.stats")
    import numpy as np

    noise = [0.01, -0.02, 0.015, 0.0, -0.005]
    delta = 0.035
    per_layer = [[(i + 1) * delta / 2 + noise[s] * (i + 1) for s in SEEDS] for i in range(CONV)]
    p = Plant(STRENGTHS)
    for c in STRENGTHS:
        for s in SEEDS:
            if c == STRENGTHS[0]:
                curve = [1.5 + per_layer[i][s] for i in range(CONV)]
            else:
                curve = [1.5 + (DECOY if c in STRENGTHS[1:-1] else 0.0)] * CONV
            p.curve(c, "trained", "smoothness", s, curve)
    found, _ = evaluate(get_experiment("synthetic").findings, p.evidence(), PLAN, family="t")
    table = found[0]["per_layer"]
    assert [row["conv layer"] for row in table] == list(range(1, CONV + 1))
    k = CONV - 1
    for row, values in zip(table, per_layer, strict=True):
        v = np.array(values)
        lo, hi = stats.t.interval(1 - 0.05 / k, len(v) - 1, loc=v.mean(), scale=stats.sem(v))
        assert row["effect"] == pytest.approx(v.mean(), abs=1e-12)
        assert row["ci"] == pytest.approx([lo, hi], rel=1e-6)
        assert row["ci_level"].startswith(f"Bonferroni over {k} layers")
    above = sum(
        stats.t.interval(1 - 0.05 / k, 4, loc=np.mean(v), scale=stats.sem(v))[0] > 0
        for v in per_layer[1:]
    )
    assert f"{above} of {k} layers have an interval above 0" in found[0]["observed"]


def test_augmentation_steps_inside_and_outside_by_hand():
    """The pad-shift path's steps dx → dx + 1 (dx = −12 … 11), each with its own value:
    'within ±4 px' is exactly the steps with both ends in [−4, 4] (dx = −4 … 3), 'outside
    ±4' the others, listed here by hand."""
    from defstab.experiments.catalog.augmentation import _steps

    values = [float(10 * i + 1) for i in range(2 * K)]  # step index i ↔ dx = i − 12
    p = Plant(["maxpool/crop4"])
    p.curve("maxpool/crop4", "trained", "pad:p_top1_change", 0, values)
    ev = p.evidence()

    def mean_of(dxs):
        return sum(values[dx + K] for dx in dxs) / len(dxs)

    inside4 = [-4, -3, -2, -1, 0, 1, 2, 3]
    outside4 = [dx for dx in range(-K, K) if dx not in inside4]
    assert _steps(ev, "maxpool/crop4", 0, -1, 4) == pytest.approx(mean_of(inside4))
    assert _steps(ev, "maxpool/crop4", 0, 4, K) == pytest.approx(mean_of(outside4))
    inside8 = list(range(-8, 8))
    assert _steps(ev, "maxpool/crop4", 0, -1, 8) == pytest.approx(mean_of(inside8))
    # the two steps at the centre (−1 → 0 and 0 → 1) are the only ones within ±1
    assert _steps(ev, "maxpool/crop4", 0, -1, 1) == pytest.approx(mean_of([-1, 0]))
