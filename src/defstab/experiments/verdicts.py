"""An experiment's verdicts under its seed plan: every planned look, Bonferroni over looks,
Holm over the experiment's findings, and the gate's effect beside each gated verdict.

The procedure, fixed before any run (:class:`~defstab.experiments.statistics.SeedPlan`):

1. at each planned look (the first n seeds), each finding's effect gets a t interval at
   two-sided level 1 − 0.05 / (K · k) — K looks, k tests the finding picked its effect
   among — cut to the effect's range, and two one-sided p-values, each multiplied by K · k:
   "shows" (H0: effect ≤ 0, or ≤ δ for an effect ≥ 0 by construction) and "does not show"
   (H0: effect ≥ δ);
2. a finding's p-value at a look is the smallest over the looks so far (valid whichever
   look the experiment stops at: the Bonferroni bound over all K planned looks);
3. Holm's step-down over the experiment's findings (its family) at one-sided 2.5%, for
   each of the two kinds of claim; "does not show" when its adjusted p < 2.5%, else
   "shows" when its adjusted p < 2.5%, else "inconclusive";
4. the experiment stops at the first look where every finding is decided; a finding is
   reported at the look that decided it (a later look, run for the others, is recorded
   but changes nothing), an undecided one at the last planned look reached. Seeds beyond
   the plan (``--seeds`` not a planned look) give an *exploratory* verdict, recorded apart
   and never printed as the preset's.

Under a true effect of 0 a finding says "shows" at most 2.5% of the time, and one whose
effect is δ says "does not show" at most 2.5%, whatever the other findings are
(``tests/test_seed_plans.py`` checks both by simulation through this code).

Example (one finding, one look of 3 seeds):
    >>> from defstab.experiments.findings import finding
    >>> from defstab.experiments.statistics import SeedPlan, SmallestEffect, seed_effect
    >>> d = SmallestEffect(0.05, "r")
    >>> rec = finding("c", "", "x", seed_effect([0.3, 0.25, 0.35]), delta=d, gate=None,
    ...               no_gate="at init")
    >>> [f["verdict"] for f in decide([[rec]], [3], SeedPlan((3,), "fixed"), family="e")[0]]
    ['shows']
"""

from __future__ import annotations

import math

from defstab.experiments.statistics import (
    DOES_NOT_SHOW,
    INCONCLUSIVE,
    MAX_SEEDS,
    SHOWS,
    SeedPlan,
    bonferroni_level,
    holm,
    null_value,
    p_above,
    p_below,
    seed_effect,
    seeds_needed,
)
from defstab.io.atomic import strict_json

#: one-sided error rate of each kind of verdict, for the experiment's family of findings
ALPHA = 0.025
AT_LEAST_DELTA = "at least δ"
DIRECTION = "direction; an effect below δ is not excluded"
EXPLORATORY = "beyond the plan: exploratory"


def look_level(k: int, looks: int) -> str:
    """The interval's level in words for k tests and K looks."""
    if k <= 1 and looks <= 1:
        return "95% t interval"
    parts = [f"{k} layers"] if k > 1 else []
    parts += [f"{looks} looks"] if looks > 1 else []
    if k > 1 and looks <= 1:
        return bonferroni_level(k)
    return f"{100 * (1 - 0.05 / (k * looks)):.3g}% t interval (Bonferroni over {' × '.join(parts)})"


def _at_look(claim, n_looks: int) -> dict:
    """One finding at one look: its corrected interval and one-sided p-values."""
    e, k = claim.effect, max(1, claim.effect.tests)
    factor = n_looks * k
    values = [float(v) for v in e.per_seed]
    wide = seed_effect(values, alpha=0.05 / factor)
    lo, hi = wide.ci
    low, high = claim.bounds
    if math.isfinite(lo) and math.isfinite(hi):  # no interval (< 2 seeds) stays none
        lo, hi = max(lo, low), min(hi, high)  # the true effect lies in its range
    null = null_value(claim.delta, claim.against)
    return {
        "n_seeds": e.n_seeds,
        "effect": e.effect,
        "ci": (lo, hi),
        "ci_level": look_level(k, n_looks),
        "p_shows": min(1.0, factor * p_above(e, null)),
        "p_does_not_show": min(1.0, factor * p_below(e, claim.delta.value)),
    }


def _holm_verdicts(p_shows: list[float], p_dns: list[float]) -> list[tuple[str, float, float]]:
    adj_s, adj_d = holm(p_shows), holm(p_dns)
    out = []
    for s, d in zip(adj_s, adj_d, strict=True):
        v = DOES_NOT_SHOW if d < ALPHA else SHOWS if s < ALPHA else INCONCLUSIVE
        out.append((v, s, d))
    return out


def _sequential(per_look: list[list[dict]]) -> list[list[tuple[str, float, float]]]:
    """Holm verdicts at each planned look on each finding's smallest p so far; a finding
    decided at a look keeps that verdict and its p-values (its part of the procedure
    stopped there), whatever later looks, run for the others, would say."""
    best_s = [1.0] * len(per_look[0]) if per_look else []
    best_d = list(best_s)
    frozen: dict[int, tuple[str, float, float]] = {}
    out = []
    for stats in per_look:
        for j, x in enumerate(stats):
            if j not in frozen:
                best_s[j] = min(best_s[j], x["p_shows"])
                best_d[j] = min(best_d[j], x["p_does_not_show"])
        verdicts = _holm_verdicts(best_s, best_d)
        verdicts = [frozen.get(j, v) for j, v in enumerate(verdicts)]
        for j, v in enumerate(verdicts):
            if v[0] != INCONCLUSIVE:
                frozen.setdefault(j, v)
        out.append(verdicts)
    return out


def _number(v: float) -> str:
    return f"{v:+.4f}" if math.isfinite(v) else "—"


def decide(
    records_by_look: list[list[dict]],
    seeds_by_look: list[int],
    plan: SeedPlan,
    *,
    family: str,
    ungated_by_look: list[list[dict]] | None = None,
) -> tuple[list[dict], list[dict]]:
    """The verdicts of an experiment's findings under ``plan``.

    Args:
        records_by_look: per look (in order), the experiment's finding records as
            :func:`defstab.experiments.findings.finding` returns them, computed from the
            first ``seeds_by_look[i]`` seeds.
        seeds_by_look: the seeds each look read; planned looks are those in
            ``plan.looks``, any other (beyond the plan) is exploratory.
        plan: the preset's seed plan.
        family: what Holm's family is called in the output (e.g. "pooling, quick preset").
        ungated_by_look: the same records computed with every gate off, for the
            sensitivity analysis beside each gated verdict.

    Returns:
        (findings, looks): each finding's record at the look that decided it (else the
        last planned look reached), complete with interval, p-values, verdict, its
        strength and every look; and one summary per look.
    """
    if not records_by_look:
        return [], []
    claims = [r["paper"] for r in records_by_look[-1]]
    if len(set(claims)) != len(claims):
        raise ValueError(f"two findings of {family} make the same claim.")
    K = len(plan.looks)
    planned = [i for i, n in enumerate(seeds_by_look) if n in plan.looks]
    stats = [[_at_look(r["_claim"], K) for r in recs] for recs in records_by_look]
    sequential = _sequential([stats[i] for i in planned])
    ungated = None
    if ungated_by_look is not None:
        u_stats = [[_at_look(r["_claim"], K) for r in recs] for recs in ungated_by_look]
        ungated = (u_stats, _sequential([u_stats[i] for i in planned]))
    m = len(claims)
    out = []
    for j in range(m):
        # a finding is reported at the first planned look that decided it (where the
        # procedure stopped for it), else at the last planned look reached
        decided_at = next(
            (i for k, i in enumerate(planned) if sequential[k][j][0] != INCONCLUSIVE), None
        )
        report = (
            decided_at
            if decided_at is not None
            else planned[-1]
            if planned
            else len(records_by_look) - 1
        )
        rec = records_by_look[report][j]
        claim = rec["_claim"]
        st = stats[report][j]
        f = {k: v for k, v in rec.items() if k != "_claim"}
        e = claim.effect
        lo, hi = st["ci"]
        f |= {
            "effect": strict_json(e.effect),
            "ci": [strict_json(lo), strict_json(hi)],
            "ci_level": st["ci_level"],
            "n_seeds": e.n_seeds,
            "seeds": list(e.seeds),
            "per_seed": [float(x) for x in e.per_seed],
            "missing_seeds": [{"seed": s, "reason": r} for s, r in e.missing],
            "multiplicity": {
                "tests_within_finding": max(1, e.tests),
                "looks": K,
                "holm_family": family,
                "holm_family_size": m,
            },
        }
        if not math.isfinite(e.effect):
            f["effect_reason"] = "no seed had the data (see missing_seeds)"
        if not math.isfinite(lo) or not math.isfinite(hi):
            f["ci_reason"] = "fewer than two seeds: no interval"
        interval = f"{st['ci_level']} [{_number(lo)}, {_number(hi)}]"
        text = f["observed"]
        if e.n_seeds:
            text += f"; effect {e.effect:+.4f}, {interval} over {e.n_seeds} seeds"
        text += f"; smallest effect of interest δ = {claim.delta.value:g}"
        if e.n_seeds < 2:
            text += " — fewer than two seeds: no interval, so no verdict"
        f["observed"] = text
        if planned:
            v, p_s, p_d = sequential[-1][j]
            f["verdict"] = v
            f["decided_at_seeds"] = seeds_by_look[decided_at] if decided_at is not None else None
            # the p-values the verdict rests on: smallest over the looks up to the deciding one
            upto = planned[: planned.index(decided_at) + 1] if decided_at is not None else planned
            f["p_shows"] = min(stats[i][j]["p_shows"] for i in upto)
            f["p_does_not_show"] = min(stats[i][j]["p_does_not_show"] for i in upto)
            f["holm_p_shows"], f["holm_p_does_not_show"] = p_s, p_d
        else:
            f["verdict"] = INCONCLUSIVE
            f["verdict_reason"] = (
                f"no planned look reached: {seeds_by_look[-1]} seeds run, the plan's first "
                f"look is at {plan.looks[0]}"
            )
        f["strength"] = _strength(f["verdict"], lo, claim)
        f["verdict_words"] = f["verdict"] + (f": {f['strength']}" if f["strength"] else "")
        f["looks"] = [
            {
                "n_seeds": seeds_by_look[i],
                "planned": i in planned,
                "effect": strict_json(stats[i][j]["effect"]),
                "ci": [strict_json(x) for x in stats[i][j]["ci"]],
                "verdict": sequential[planned.index(i)][j][0] if i in planned else None,
            }
            for i in range(len(records_by_look))
        ]
        if f["verdict"] == INCONCLUSIVE:
            _next_look(f, plan, seeds_by_look, planned, e, claim, m)
        if len(records_by_look) - 1 not in planned:
            x = stats[-1][j]
            alone = _holm_verdicts(
                [s["p_shows"] for s in stats[-1]], [s["p_does_not_show"] for s in stats[-1]]
            )[j][0]
            f["exploratory"] = {
                "n_seeds": seeds_by_look[-1],
                "note": EXPLORATORY + " (not the preset's verdict)",
                "effect": strict_json(x["effect"]),
                "ci": [strict_json(c) for c in x["ci"]],
                "verdict": alone,
            }
        if ungated is not None and "gate" in f:
            f["without_gate"] = _without_gate(ungated, planned, report, j, f)
        out.append(f)
    looks = [
        {
            "n_seeds": seeds_by_look[i],
            "planned": i in planned,
            "verdicts": {
                claims[j]: (sequential[planned.index(i)][j][0] if i in planned else None)
                for j in range(m)
            },
        }
        for i in range(len(records_by_look))
    ]
    return out, looks


def _strength(verdict: str, lo: float, claim) -> str | None:
    if verdict != SHOWS:
        return None
    return AT_LEAST_DELTA if lo > claim.delta.value else DIRECTION


def _next_look(f, plan, seeds_by_look, planned, e, claim, m) -> None:
    """What would decide an inconclusive finding: the plan's next look, or, the plan
    exhausted, how many seeds a new fixed plan would need (a planning aid)."""
    last = seeds_by_look[planned[-1]] if planned else 0
    nxt = plan.next_look(last)
    f["next_look"] = nxt
    if nxt is not None:
        f["next_look_reason"] = f"the plan's next look is at {nxt} seeds"
        return
    f["next_look_reason"] = f"the plan is exhausted (looks at {', '.join(map(str, plan.looks))})"
    alpha = 0.05 / (max(1, e.tests) * m)
    needed = seeds_needed(e, claim.delta, alpha=alpha, against=claim.against)
    f["seeds_needed"] = needed
    f["seeds_needed_reason"] = (
        "fewer than two seeds: no standard deviation to plan from"
        if e.n_seeds < 2
        else f"more than {MAX_SEEDS} seeds at the observed mean and spread"
        if needed is None
        else f"seeds a new fixed plan would need if the mean ({e.effect:+.4f}) and the per-seed "
        f"sd ({e.sd:.4f}) stayed as observed (Bonferroni over the {m} findings"
        + (f" and {e.tests} layers" if e.tests > 1 else "")
        + "); to be stated before its runs"
    )


def _without_gate(ungated, planned, report, j, f) -> dict:
    u_stats, u_seq = ungated
    st = u_stats[report][j]
    verdict = u_seq[-1][j][0] if planned else INCONCLUSIVE
    return {
        "effect": strict_json(st["effect"]),
        "ci": [strict_json(x) for x in st["ci"]],
        "n_seeds": st["n_seeds"],
        "verdict": verdict,
        "removed_by_gate": [m["reason"] for m in f["missing_seeds"]],
        "changes_verdict": verdict != f["verdict"],
    }


def evaluate(findings_fn, ev, plan: SeedPlan, *, family: str) -> tuple[list[dict], list[dict]]:
    """:func:`decide` on an experiment's evidence: its findings (``findings_fn``, the
    catalog's) at every planned look within the seeds run, and at the seeds run when that
    is not a planned look (exploratory), each also with the gates off."""
    n = len(ev.seeds())
    looks = [k for k in plan.looks if k <= n] + ([n] if n not in plan.looks else [])
    views = [ev.first_seeds(k) for k in looks]
    return decide(
        [findings_fn(v) for v in views],
        looks,
        plan,
        family=family,
        ungated_by_look=[findings_fn(v.ungated()) for v in views],
    )


def all_decided(findings: list[dict]) -> bool:
    """Whether every finding has its verdict (the experiment stops at this look)."""
    return all(f["verdict"] in (SHOWS, DOES_NOT_SHOW) for f in findings)


def finding_notes(f: dict) -> list[str]:
    """What a reader needs beside a finding's verdict, one sentence each: why there is no
    verdict, the verdict without the gate, the exploratory verdict, what would decide it."""
    notes = [f"no accuracy gate: {f['no_gate']}"] if f.get("no_gate") else []
    notes += [f["verdict_reason"]] if f.get("verdict_reason") else []
    gate = f.get("without_gate")
    if gate and gate.get("removed_by_gate"):
        effect = "—" if gate["effect"] is None else f"{gate['effect']:+.4f}"
        notes.append(
            f"without the gate: {gate['verdict']} over {gate['n_seeds']} seeds, effect {effect} "
            f"(the gate removed {len(gate['removed_by_gate'])} seed(s), named above)"
        )
    if f.get("exploratory"):
        x = f["exploratory"]
        notes.append(f"{x['note']}: {x['verdict']} over {x['n_seeds']} seeds")
    if f.get("verdict") == INCONCLUSIVE and f.get("next_look_reason"):
        line = f"undecided: {f['next_look_reason']}"
        if f.get("seeds_needed_reason"):
            needed = f.get("seeds_needed") or "—"
            line += f"; a new plan: {needed} seeds ({f['seeds_needed_reason']})"
        notes.append(line)
    return notes
