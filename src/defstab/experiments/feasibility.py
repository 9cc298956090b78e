"""Whether an experiment can state any finding with the chosen networks, before training.

``experiment antialias --archs aps`` used to train for minutes and end with ``findings:
[]``: its findings compare APS against the other types, and blurpool against the rest.
:func:`count_findings` runs the experiment's own findings code on stand-in evidence —
every condition of the plan, three seeds, every curve present and every network above
every gate — so the answer comes from the same code that will judge the real runs, not
from a second list of which types each finding needs.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, replace

from defstab.experiments.findings import Evidence

#: enough layers for every finding's layer range (E1's VGG has 13 representation points)
LAYERS = 13
SEEDS = 3


@dataclass
class _StandIn(Evidence):
    """Evidence in which every asked-for curve exists (deterministic, distinct values)."""

    def curve(self, cond: str, phase: str, metric: str, seed: int) -> list[float]:
        key = zlib.crc32(f"{cond}|{phase}|{metric}|{seed}".encode())
        return [0.3 + ((key >> i) % 97) / 200 for i in range(LAYERS)]


def count_findings(experiment, cfg) -> int | None:
    """How many findings ``experiment`` would state for ``cfg``'s plan (None when its
    findings code cannot say on stand-in evidence: then nothing is refused)."""
    specs = experiment.plan(replace(cfg, seeds=SEEDS))
    conditions = list(dict.fromkeys(spec.condition for spec in specs))
    runs = [
        {"condition": c, "seed": s, "test_acc": 0.99, "train_acc": 1.0, "train_fit": 1.0}
        for c in conditions
        for s in range(SEEDS)
    ]
    rows = [
        {
            "condition": c,
            "seed": s,
            "phase": "init",
            "metric": "sensitivity",
            "layer_index": 0,
            "layer": "input",
            "value": 0.0,
        }
        for c in conditions
        for s in range(SEEDS)
    ]  # fmt: skip  (seeds() reads the rows)
    evidence = _StandIn(rows, [], conditions, runs, cfg.settings())
    try:
        return len(experiment.findings(evidence))
    except Exception:  # a finding that needs more than stand-in curves: let the runs decide
        return None


def check_findings_possible(experiment, cfg) -> None:
    """One sentence, before any training, when ``cfg``'s networks give ``experiment`` no
    finding to state (experiments whose findings are retired say so themselves)."""
    if experiment.findings_retired or cfg.archs is None:
        return
    if count_findings(experiment, cfg) != 0:
        return
    preset = replace(cfg, archs=None)
    default = list(dict.fromkeys(s.condition for s in experiment.plan(replace(preset, seeds=1))))
    n = count_findings(experiment, preset)
    raise ValueError(
        f"experiment {cfg.name} states no finding with --archs {','.join(cfg.archs)}: its "
        f"findings compare other downsampling types (the preset's {', '.join(default)} give "
        f"{n if n is not None else 'its'} findings); add the types they compare, or drop "
        "--archs."
    )
