"""A stability card's entries from each protocol's outcome: every headline number with its
unit and direction, and — where the number is a mean over images — the per-image values
it is the mean of, keyed by the data set's image index (what a paired comparison of two
models resamples).

An entry is a plain dict (it goes into ``bench.json`` and the card files as it is)::

    {"key": "tps:sensitivity@features.pool4", "protocol": "tps", "metric": "sensitivity",
     "layer": "features.pool4", "value": 0.41, "unit": "normalized distance",
     "direction": "lower", "images": [3, 17, …], "values": [0.38, 0.52, …]}

``images``/``values`` are None for a number that is not a mean over images (R_f, a ratio
of means; filter smoothness, of the weights alone). For every entry with values, their
mean is ``value`` (``tests/test_bench.py`` checks this against each protocol's tables).
"""

from __future__ import annotations

import math

from defstab.pipeline.outcome import HIGHER, LOWER


def entry(protocol: str, metric: str, value: float, unit: str, direction: str,
          layer: str | None = None, images=None, values=None) -> dict:  # fmt: skip
    """One card entry (``images``, ``values``: (N,) image indices and per-image values)."""
    key = f"{protocol}:{metric}" + (f"@{layer}" if layer else "")
    pairs = None
    if images is not None:
        ids = [int(i) for i in images]
        vals = [float(v) for v in values]
        pairs = [(i, v) for i, v in zip(ids, vals, strict=True) if math.isfinite(v)]
    return {
        "key": key,
        "protocol": protocol,
        "metric": metric,
        "layer": layer,
        "value": float(value),
        "unit": unit,
        "direction": direction,
        "images": [i for i, _ in pairs] if pairs is not None else None,
        "values": [v for _, v in pairs] if pairs is not None else None,
    }


def card_entries(name: str, outcome) -> list[dict]:
    """The card entries of card protocol ``name``'s outcome."""
    return _EXTRACT[name](name, outcome)


def _measure(name, outcome) -> list[dict]:
    result, ids = outcome.result, outcome.indices
    found = []
    r_f = result.relative_stability
    for j, layer in enumerate(result.layers):
        if layer == "input":
            continue
        found.append(entry(name, "sensitivity", float(result.mean[j]), "normalized distance",
                           LOWER, layer, ids, result.per_image[j].tolist()))  # fmt: skip
        if r_f is not None:
            found.append(entry(name, "r_f", float(r_f[j]), "ratio", LOWER, layer))
    lie = outcome.lie
    if lie is not None:
        for i, transform in enumerate(lie.transforms):
            values = lie.end_to_end_sq[i]
            found.append(entry(name, f"lie_{transform}", float(values.mean()), "per unit²",
                               LOWER, None, ids[: values.shape[0]], values.tolist()))  # fmt: skip
    return found


def _translate(name, outcome) -> list[dict]:
    from defstab.translate.analysis import PATH_PROTOCOLS

    found = []
    for res, extra in outcome.per_step:
        items = res.items if res.items is not None else range(res.n_images)
        ids = [int(outcome.ids[int(i)]) for i in items]
        size = f"_{extra['object_size']}px" if extra.get("object_size") else ""
        st = res.steps
        if res.protocol in PATH_PROTOCOLS:
            change = (st.top1[:, 1:] != st.top1[:, :-1]).double().mean(1)
            mac = (st.p_next - st.p_top1[:, :-1]).abs().double().mean(1)
            for metric, values, unit in (
                (f"p_top1_change_{res.protocol}{size}", change, "fraction of steps"),
                (f"mac_{res.protocol}{size}", mac, "probability"),
            ):
                found.append(entry(name, metric, float(values.mean()), unit, LOWER, None, ids,
                                   values.tolist()))  # fmt: skip
        else:
            t = st.top1
            s = t.shape[1]
            same = (t.unsqueeze(2) == t.unsqueeze(1)).double().sum((1, 2)) - s
            values = same / (s * (s - 1))
            found.append(entry(name, f"consistency_{res.protocol}{size}", float(values.mean()),
                               "fraction of pairs", HIGHER, None, ids,
                               values.tolist()))  # fmt: skip
    return found


def _perturb(name, outcome) -> list[dict]:
    found = []
    for row in outcome.summary:
        pert = row["perturbation"]
        if "fp" not in row or pert.startswith("mean"):
            continue
        videos = [v for v in outcome.per_video if v["perturbation"] == pert]
        found.append(entry(name, f"fp_{pert}", row["fp"], "fraction of frame pairs", LOWER,
                           None, [v["image"] for v in videos],
                           [v["fp"] for v in videos]))  # fmt: skip
    return found


SPATIAL = (("natural_accuracy", "natural"), ("random_accuracy", "random"),
           ("worst_of_k_accuracy", "worst_of_k"), ("grid_accuracy", "grid"))  # fmt: skip


def _spatial(name, outcome) -> list[dict]:
    rows = outcome.per_image
    images = [r["image"] for r in rows]
    return [
        entry(
            name,
            metric,
            sum(r[column] for r in rows) / len(rows),
            "fraction correct",
            HIGHER,
            None,
            images,
            [r[column] for r in rows],
        )  # fmt: skip
        for metric, column in SPATIAL
    ]


def _smoothness(name, outcome) -> list[dict]:
    return [entry(name, "normalized_tv", v, "normalized TV", LOWER, layer)
            for layer, v in outcome.values.items()]  # fmt: skip


_EXTRACT = {"tps": _measure, "diffeo": _measure, "translate": _translate,
            "perturb": _perturb, "spatial": _spatial, "smoothness": _smoothness}  # fmt: skip


def _natural(entries: list[dict]) -> dict | None:
    return next((e for e in entries if e["key"] == "spatial:natural_accuracy"), None)


def accuracy_of(entries: list[dict]) -> float | None:
    """The network's accuracy on the card's images (spatial's natural accuracy), or None."""
    found = _natural(entries)
    return found["value"] if found is not None else None


def accuracy_words(entries: list[dict]) -> str:
    """The accuracy in words ("accuracy 0.484 on 64 of the images"), or why there is none."""
    found = _natural(entries)
    if found is None:
        return "accuracy not measured (add spatial to --protocols)"
    return f"accuracy {found['value']:.3f} on {len(found['images'])} of the images"


def headline(entries: list[dict]) -> list[dict]:
    """The card's headline entries: each protocol's numbers at its last layer (per-layer
    metrics) and every metric that has no layer."""
    last = {}
    for e in entries:
        if e["layer"] is not None:
            last[(e["protocol"], e["metric"])] = e
    return [e for e in entries if e["layer"] is None or last[(e["protocol"], e["metric"])] is e]
