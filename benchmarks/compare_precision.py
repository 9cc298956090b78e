"""Test accuracy of the same networks trained in two precisions: paired differences over
(model, seed), their mean with a 95% t interval, and the seed-to-seed spread of each.

Reads ``OUT/networks/*/network.json`` of two experiment folders (e.g. E1 quick run with
``--precision bf16`` and with ``--precision fp32``), pairs networks whose specs differ in
nothing but the precision, and prints one line per pair and the summary that decides
whether the lower precision learns as well ("within seed noise": the interval inside ± the
pooled seed-to-seed standard deviation of the reference precision).

Run: python benchmarks/compare_precision.py OUT_BF16 OUT_FP32
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
from collections import defaultdict
from pathlib import Path

from defstab.experiments.statistics import seed_effect


def networks(out: Path) -> dict[str, tuple[str, float]]:
    """{spec without precision (as JSON): (precision, test accuracy)} of a folder."""
    found = {}
    for path in sorted(out.glob("networks/*/network.json")):
        record = json.loads(path.read_text())
        spec = record["spec"]
        precision = spec["train"].pop("precision")
        found[json.dumps(spec, sort_keys=True)] = (precision, float(record["test_acc"]))
    if not found:
        raise SystemExit(f"{out} holds no trained networks (networks/*/network.json).")
    return found


def pooled_sd(accuracy: dict[str, list[float]]) -> float:
    """Seed-to-seed standard deviation, pooled over models (each with ≥ 2 seeds)."""
    variances = [statistics.variance(v) for v in accuracy.values() if len(v) > 1]
    return math.sqrt(sum(variances) / len(variances)) if variances else math.nan


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("low", type=Path, help="experiment folder trained in the lower precision")
    ap.add_argument("reference", type=Path, help="the same experiment in the reference one")
    args = ap.parse_args()
    low, ref = networks(args.low), networks(args.reference)
    pairs = sorted(set(low) & set(ref))
    if len(pairs) < 2:
        raise SystemExit(f"only {len(pairs)} network(s) appear in both folders; need 2.")
    by_model = {"low": defaultdict(list), "ref": defaultdict(list)}
    diffs = []
    for key in pairs:
        spec = json.loads(key)
        (p_low, a_low), (p_ref, a_ref) = low[key], ref[key]
        by_model["low"][spec["model"]].append(a_low)
        by_model["ref"][spec["model"]].append(a_ref)
        diffs.append(a_low - a_ref)
        print(f"{spec['model']:24s} seed {spec['seed']}: {p_low} {a_low:.4f}  {p_ref} {a_ref:.4f}")
    e = seed_effect(diffs)
    sd_ref, sd_low = pooled_sd(by_model["ref"]), pooled_sd(by_model["low"])
    inside = -sd_ref <= e.ci[0] and e.ci[1] <= sd_ref
    print(
        f"{p_low} − {p_ref}: {e.effect:+.4f}, {e.level} [{e.ci[0]:+.4f}, {e.ci[1]:+.4f}] over "
        f"{e.n_seeds} pairs; seed sd {p_ref} {sd_ref:.4f}, {p_low} {sd_low:.4f}; interval "
        f"{'inside' if inside else 'not inside'} ± the {p_ref} seed sd"
    )


if __name__ == "__main__":
    main()
