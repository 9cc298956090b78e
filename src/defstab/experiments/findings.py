"""Each experiment's published finding next to what this run shows, computed from the
summary (never tuned: a finding that does not show is reported as such)."""

from __future__ import annotations

import numpy as np

from defstab.experiments.aggregate import curve


def _finding(claim: str, observed: str, shows: bool | None) -> dict:
    return {"paper": claim, "observed": observed, "shows": shows}


def _mean_curve(summary, cond, phase, metric, skip_input=True) -> float:
    c = curve(summary, cond, phase, metric)
    c = c[1:] if skip_input and metric != "smoothness" else c
    return float(np.mean(c)) if c else float("nan")


def _spread(summary, conds, phase, metric) -> float:
    """Mean over layers of the std across conditions of the per-layer mean."""
    curves = [curve(summary, c, phase, metric)[1:] for c in conds]
    curves = [c for c in curves if c]
    if len(curves) < 2:
        return float("nan")
    return float(np.mean(np.std(np.array(curves), axis=0)))


def pooling(summary, conditions) -> list[dict]:
    pools = [c for c in conditions if c in ("maxpool", "avgpool", "blurpool")]
    plain = [c for c in conditions if c in ("subsample", "strided", "strided_relu")]
    out = []
    if pools and plain:
        p = np.mean([curve(summary, c, "init", "sensitivity")[-1] for c in pools])
        q = np.mean([curve(summary, c, "init", "sensitivity")[-1] for c in plain])
        out.append(
            _finding(
                "At init, networks with pooling are less sensitive to deformation.",
                f"last layer at init: pooling types {p:.3f} vs non-pooling {q:.3f}",
                bool(p < q),
            )
        )
    if any(curve(summary, c, "trained", "sensitivity") for c in conditions):
        a = _spread(summary, conditions, "init", "sensitivity")
        b = _spread(summary, conditions, "trained", "sensitivity")
        out.append(
            _finding(
                "After training, the layer-wise patterns of all types are similar.",
                f"spread across types (mean over layers of the std of the means): "
                f"init {a:.3f}, trained {b:.3f}",
                bool(b < a),
            )
        )
        raised = []
        for c in pools:
            i, t = (
                curve(summary, c, "init", "sensitivity"),
                curve(summary, c, "trained", "sensitivity"),
            )
            raised += [f"{c}:{k}" for k, (u, v) in enumerate(zip(i, t, strict=True)) if k and v > u]
        out.append(
            _finding(
                "Training raises the sensitivity of pooling networks in some layers.",
                f"{len(raised)} (network, layer) pairs rose: {', '.join(raised[:8])}"
                + (" …" if len(raised) > 8 else ""),
                bool(raised),
            )
        )
    return out


def smooth_init(summary, conditions) -> list[dict]:
    means = [_mean_curve(summary, c, "init", "sensitivity") for c in conditions]
    last = [curve(summary, c, "init", "sensitivity")[-1] for c in conditions]
    mono = all(a > b for a, b in zip(means, means[1:], strict=False))
    return [
        _finding(
            "Larger σ (smoother initial filters): lower sensitivity.",
            "mean over layers by σ: "
            + ", ".join(f"{c} {m:.3f}" for c, m in zip(conditions, means, strict=True))
            + "; last layer: "
            + ", ".join(f"{v:.3f}" for v in last),
            mono,
        )
    ]


def synthetic(summary, conditions) -> list[dict]:
    means = [_mean_curve(summary, c, "trained", "smoothness") for c in conditions]
    mono = all(a > b for a, b in zip(means, means[1:], strict=False))
    return [
        _finding(
            "Larger deformation strength C: smoother filters after training.",
            "mean normalized TV after training by C: "
            + ", ".join(f"{c} {m:.3f}" for c, m in zip(conditions, means, strict=True))
            + " (lower = smoother)",
            mono,
        )
    ]


def smoothness(summary, conditions) -> list[dict]:
    pairs = [
        (
            c,
            _mean_curve(summary, c, "init", "smoothness"),
            _mean_curve(summary, c, "trained", "smoothness"),
        )
        for c in conditions
    ]
    smoother = [c for c, i, t in pairs if t < i]
    a = np.std([i for _, i, _ in pairs])
    b = np.std([t for _, _, t in pairs])
    return [
        _finding(
            "Training makes filters smoother, for every architecture.",
            "mean normalized TV init → trained: "
            + ", ".join(f"{c} {i:.3f}→{t:.3f}" for c, i, t in pairs),
            len(smoother) == len(pairs),
        ),
        _finding(
            "Architectures converge to similar smoothness.",
            f"std across architectures of the mean TV: init {a:.3f}, trained {b:.3f}",
            None,
        ),
    ]


def random_labels(summary, conditions) -> list[dict]:
    real = [c for c in conditions if c.endswith("real labels")]
    rand = [c for c in conditions if c.endswith("random labels")]
    a = _spread(summary, real, "trained", "sensitivity")
    b = _spread(summary, rand, "trained", "sensitivity")
    return [
        _finding(
            "With random labels, the sensitivity pattern depends on the architecture "
            "(more than with real labels).",
            f"spread across architectures after training: real labels {a:.3f}, "
            f"random labels {b:.3f}",
            bool(b > a),
        )
    ]


def antialias(summary, conditions) -> list[dict]:
    from defstab.experiments.aggregate import select

    out = []
    for proto in ("embed", "crop"):
        vals = {
            c: float(r[0]["mean"])
            for c in conditions
            if (r := select(summary, condition=c, metric=f"{proto}:p_top1_change"))
        }
        if "blurpool" in vals and len(vals) > 1:
            others = [v for c, v in vals.items() if c != "blurpool"]
            out.append(
                _finding(
                    "Blurring before subsampling (blurpool) lowers P(top-1 change) under one-pixel "
                    f"shifts ({proto} protocol).",
                    ", ".join(f"{c} {v:.3f}" for c, v in vals.items()),
                    vals["blurpool"] < min(others),
                )
            )
    return out


FINDINGS = {
    "pooling": pooling,
    "smooth-init": smooth_init,
    "synthetic": synthetic,
    "smoothness": smoothness,
    "random-labels": random_labels,
    "antialias": antialias,
}
