"""The two presets. ``paper``: the paper's settings. ``quick``: the same experiments scaled
to finish on a 2-core CPU in minutes, labelled as such in every output."""

from __future__ import annotations

PRESETS: dict[str, dict] = {
    "quick": {
        "seeds": 2,
        "width": 0.25,
        "images": 64,
        "train_images": 2000,
        "test_images": 500,
        "epochs": 3,
        "batch_size": 64,
        "lr": 0.05,
        "probe_images": 16,
        "per_class": 100,
        "synthetic_epochs": 3,
        "random_label_images": 1000,
        "random_label_epochs": 15,
        "sigmas": [0.0, 0.5, 1.0, 2.0],
        "strengths": [1.0, 2.0, 3.0, 4.0],
    },
    "paper": {
        "seeds": 5,
        "width": 1.0,
        "images": 128,
        "train_images": None,
        "test_images": None,
        "epochs": 30,
        "batch_size": 128,
        "lr": 0.05,
        "probe_images": 64,
        "per_class": 500,
        "synthetic_epochs": 10,
        "random_label_images": None,
        "random_label_epochs": 60,
        "sigmas": [0.0, 0.5, 1.0, 2.0],
        "strengths": [1.0, 2.0, 3.0, 4.0],
    },
}

#: What the paper preset costs, to set expectations (documented in the README).
PAPER_COST = (
    "paper preset on one modern GPU (estimate from FLOPs: CIFAR VGG 0.11 GFLOP/image "
    "forward): pooling/smoothness 6 architectures × 5 seeds × 30 epochs of CIFAR-10 ≈ "
    "1.5 GPU-hours; random-labels 5 × 5 × 60 epochs ≈ 2.5 GPU-hours (plus the same with real "
    "labels); synthetic 4 × 5 short runs ≈ 10 GPU-minutes; smooth-init is measurement only "
    "(minutes). On a 2-core CPU each CIFAR epoch of the full-width VGG takes about 15 minutes."
)


def preset(name: str) -> dict:
    if name not in PRESETS:
        raise ValueError(f"preset must be one of {sorted(PRESETS)}, got {name!r}.")
    return dict(PRESETS[name])
