"""Mean ± 2 std over seeds, per condition, phase, metric and layer (as the paper plots)."""

from __future__ import annotations

import math
from collections import defaultdict

KEYS = ("condition", "phase", "metric", "layer_index", "layer")


def aggregate(rows: list[dict]) -> list[dict]:
    """Summary rows: mean, std (ddof = 1; 0 for one seed), n_seeds, lo = mean − 2 std,
    hi = mean + 2 std. Order: first appearance of each group."""
    groups: dict[tuple, list[float]] = defaultdict(list)
    for r in rows:
        groups[tuple(r[k] for k in KEYS)].append(float(r["value"]))
    out = []
    for key, values in groups.items():
        n = len(values)
        mean = sum(values) / n
        std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
        out.append(
            dict(zip(KEYS, key, strict=True))
            | {"mean": mean, "std": std, "n_seeds": n, "lo": mean - 2 * std, "hi": mean + 2 * std}
        )
    return out


def select(summary: list[dict], **where) -> list[dict]:
    return [r for r in summary if all(str(r[k]) == str(v) for k, v in where.items())]
