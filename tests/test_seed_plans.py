"""Seed plans: the group-sequential procedure's error rates by simulation through defstab's
own verdict code, the looks it records, and seeds beyond the plan.

Each simulated experiment draws per-seed effects, and runs the procedure as the runner
does: a look at each planned seed count in turn, stopping at the first where every finding
is decided. The rates are compared with the nominal one-sided 2.5% with a margin of three
Monte Carlo standard errors.
"""

import math

import numpy as np
import pytest

from defstab.experiments.findings import AT_INIT, finding
from defstab.experiments.registry import get_experiment, list_experiments
from defstab.experiments.statistics import SeedPlan, SmallestEffect, seed_effect
from defstab.experiments.verdicts import EXPLORATORY, all_decided, decide

DELTA = SmallestEffect(0.05, "simulation")
PLAN = SeedPlan((3, 5), "simulation: the quick presets' plan")
SIMS = 20000
#: nominal rate + three Monte Carlo standard errors
BOUND = 0.025 + 3 * math.sqrt(0.025 * 0.975 / SIMS)


def _records(values, n):
    return [
        finding(
            f"claim {i}", "", "", seed_effect(list(v[:n])), delta=DELTA, gate=None, no_gate=AT_INIT
        )  # fmt: skip
        for i, v in enumerate(values)
    ]


def run_plan(values, plan=PLAN):
    """The runner's loop on per-seed effects ``values`` (findings × plan.seeds)."""
    by_look, seeds = [], []
    for n in plan.looks:
        by_look.append(_records(values, n))
        seeds.append(n)
        found, looks = decide(by_look, seeds, plan, family="simulation")
        if all_decided(found):
            break
    return found, looks


def rate(effect, sd, verdict, findings=1, seed=0):
    """How often at least one of ``findings`` findings gets ``verdict``."""
    rng = np.random.default_rng(seed)
    hits = 0
    for _ in range(SIMS):
        found, _ = run_plan(rng.normal(effect, sd, (findings, PLAN.seeds)))
        hits += any(f["verdict"] == verdict for f in found)
    return hits / SIMS


@pytest.mark.parametrize("sd", [2 * DELTA.value, 4 * DELTA.value])
def test_no_effect_shows_at_most_nominally_whatever_look_decides(sd):
    # the review's setting: per-seed sd 2–4× δ, where looking twice without correction
    # said "shows" 5–8.5% of the time
    assert rate(0.0, sd, "shows") <= BOUND


def test_an_effect_of_delta_does_not_show_at_most_nominally():
    assert rate(DELTA.value, DELTA.value, "does not show") <= BOUND


def test_three_null_findings_show_at_most_nominally_together():
    """Holm over the family: the chance that any of three null findings shows."""
    assert rate(0.0, 2 * DELTA.value, "shows", findings=3, seed=1) <= BOUND


def test_a_real_effect_still_shows():
    """Not a procedure that never decides: 3δ at a per-seed sd of δ shows nearly always."""
    assert rate(3 * DELTA.value, DELTA.value, "shows", seed=2) > 0.9


def test_looks_are_recorded_and_a_decided_experiment_stops():
    clear = np.array([[0.30, 0.31, 0.29, 0.30, 0.30]])
    found, looks = run_plan(clear)
    assert [lk["n_seeds"] for lk in looks] == [3] and found[0]["verdict"] == "shows"
    noisy = np.array([[0.30, -0.2, 0.1, 0.25, 0.2]])
    found, looks = run_plan(noisy)
    assert [lk["n_seeds"] for lk in looks] == [3, 5] and all(lk["planned"] for lk in looks)
    f = found[0]
    assert [lk["n_seeds"] for lk in f["looks"]] == [3, 5] and f["n_seeds"] == 5
    # Bonferroni over 2 looks: each interval at 97.5%
    assert f["ci_level"] == "97.5% t interval (Bonferroni over 2 looks)"
    wide = seed_effect(list(noisy[0]), alpha=0.025)
    assert f["ci"] == pytest.approx(list(wide.ci))
    assert f["verdict"] == "inconclusive" and f["next_look"] is None


def test_an_inconclusive_first_look_names_the_next():
    found, _ = decide([_records(np.array([[0.3, -0.2, 0.1]]), 3)], [3], PLAN, family="x")
    assert found[0]["next_look"] == 5 and "next look is at 5" in found[0]["next_look_reason"]


def test_seeds_beyond_the_plan_are_exploratory_and_never_the_verdict():
    values = np.array([[0.30, -0.2, 0.1, 0.3, 0.3, 0.31, 0.29, 0.3]])
    by_look = [_records(values, n) for n in (3, 5, 8)]
    found, looks = decide(by_look, [3, 5, 8], PLAN, family="x")
    f = found[0]
    assert [lk["planned"] for lk in looks] == [True, True, False]
    assert f["n_seeds"] == 5  # the preset's verdict is the last planned look's
    assert f["exploratory"]["n_seeds"] == 8 and EXPLORATORY in f["exploratory"]["note"]
    # fewer seeds than the first look: no verdict, and said why
    found, _ = decide([_records(values, 2)], [2], PLAN, family="x")
    assert found[0]["verdict"] == "inconclusive" and "no planned look" in found[0]["verdict_reason"]


def test_every_experiment_states_a_plan_for_every_preset():
    for name in list_experiments():
        plans = get_experiment(name).seed_plans
        assert set(plans) == {"quick", "paper"}, name
        assert all(p.reason and p.looks[0] >= 2 for p in plans.values()), name


def test_a_plan_refuses_impossible_looks():
    for bad in ((), (3, 3), (5, 3), (0, 2)):
        with pytest.raises(ValueError, match="strictly increasing"):
            SeedPlan(bad, "x")
    assert PLAN.next_look(3) == 5 and PLAN.next_look(5) is None and PLAN.seeds == 5
    assert PLAN.record()["per_look_alpha"] == 0.0125


def test_a_finding_decided_at_a_look_stays_decided_and_is_reported_there():
    """The second look runs for the undecided finding B; A, decided at 3 seeds, keeps its
    verdict and its 3-seed numbers even though its later seeds regress."""
    values = np.array([[0.30, 0.31, 0.29, -0.5, -0.4], [0.30, -0.2, 0.1, 0.25, 0.2]])
    found, looks = run_plan(values)
    a, b = found
    assert [lk["n_seeds"] for lk in looks] == [3, 5]
    assert a["verdict"] == "shows" and a["decided_at_seeds"] == 3 and a["n_seeds"] == 3
    assert a["effect"] == pytest.approx(0.30) and a["looks"][1]["effect"] == pytest.approx(
        0.0, abs=1e-12
    )
    assert b["n_seeds"] == 5 and b["decided_at_seeds"] is None


def test_the_cli_follows_the_plan_and_labels_seeds_beyond_it(tmp_path, capsys):
    """Through the real entry point: a tiny E1 (one epoch: its networks miss the gate) runs
    look by look under the quick plan, records each look, and a later --seeds 4 on the same
    folder (not a planned look) reuses the runs and prints exploratory verdicts apart."""
    import json

    from defstab.cli.main import main

    argv = ["experiment", "pooling", "--data", "synthetic:2", "--archs", "maxpool,subsample",
            "--epochs", "1", "--width", "0.125", "--images", "8", "--per-class", "6",
            "--quiet", "--out", str(tmp_path)]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "seed plan (quick): looks at 3, 5 seeds (Bonferroni over looks)" in out
    meta = json.loads((tmp_path / "pooling" / "experiment.json").read_text())
    seen = [lk["n_seeds"] for lk in meta["looks"]]
    assert seen in ([3], [3, 5]) and meta["seeds"] == list(range(seen[-1]))
    found = meta["findings"]
    decided = all(f["verdict"] != "inconclusive" for f in found)
    assert (seen == [3]) == decided  # it stops at the first look that decides everything
    assert found[0]["looks"][0]["ci"][0] is not None and not meta["beyond_plan"]
    assert all(f["verdict_words"] in out for f in found) and "Holm over 3 finding(s)" in out
    # the trained findings' networks (one epoch) miss the gate: named, and shown ungated
    trained = [f for f in found if "gate" in f]
    assert trained and all(f["missing_seeds"] and "without_gate" in f for f in trained)
    assert "without the gate:" in out
    assert "no accuracy gate: networks at initialisation" in out  # the init finding says why
    assert main([*argv, "--seeds", "4"]) == 0
    out = capsys.readouterr().out
    meta = json.loads((tmp_path / "pooling" / "experiment.json").read_text())
    assert meta["beyond_plan"] and [lk["n_seeds"] for lk in meta["looks"]] == [3, 4]
    f = meta["findings"][0]
    assert f["exploratory"]["n_seeds"] == 4 and max(lk["n_seeds"] for lk in f["looks"]) == 4
    assert "beyond the plan: the exploratory verdicts are not the preset's" in out
    assert "beyond the plan: exploratory (not the preset's verdict)" in out


def test_a_decided_finding_is_not_flipped_by_a_later_look():
    """Holm's ranking moves when another finding's p-value falls: A "shows" at 3 seeds
    (tightly at 0.041, below δ = 0.05 but not yet provably), B is undecided. At 5 seeds B
    does not show, which moves A down Holm's order: recomputed, A would now "not show" too
    (its adjusted p falls from 0.035 to 0.017). A was decided at 3 seeds and stays so."""
    m = 0.05 - 7.5 * 0.002 / math.sqrt(3)  # t = −7.5 against δ at 3 seeds, sd 0.002
    a = [m - 0.002, m, m + 0.002, m, m]
    b = [-0.1, 0.0, -0.05, -0.1, -0.05]
    found, looks = run_plan(np.array([a, b]))
    assert [lk["n_seeds"] for lk in looks] == [3, 5]
    assert found[1]["verdict"] == "does not show"
    assert found[0]["verdict"] == "shows" and found[0]["decided_at_seeds"] == 3
    assert [lk["verdict"] for lk in found[0]["looks"]] == ["shows", "shows"]
    # its recorded p-value is the one it was decided on: 3 seeds, t = −7.5, × 2 looks
    stats = pytest.importorskip("scipy.stats")
    assert found[0]["p_does_not_show"] == pytest.approx(2 * stats.t.cdf(-7.5, 2), rel=1e-6)
