"""The experiments' names and one-line summaries, in the order of the study.

Read by ``defstab experiment --help`` and the docs build without importing the
experiments (their catalog imports torch); each catalog file takes its summary from here,
and a test checks that the registry lists the same names in the same order.
"""

from __future__ import annotations

#: name → one line for ``--help``, in the order of the study (and of the report)
SUMMARIES: dict[str, str] = {
    "pooling": "sensitivity per layer of six downsampling types, at init and trained",
    "smooth-init": "sensitivity at init for Gaussian-smoothed filters (σ sweep)",
    "synthetic": "train on synthetic tasks of deformation strength C; filter smoothness",
    "smoothness": "filter smoothness of E1's networks, at init and trained",
    "random-labels": "each architecture trained on real labels, random labels, shuffled pixels",
    "antialias": (
        "E1's networks and APS (circular padding) under one-pixel "
        "embedded, cropped and circular shifts: P(top-1 change), MAC, consistency"
    ),
    "measures": (
        "E1's networks under random TPS, Petrini diffeomorphisms and "
        "the Lie derivative, at init and trained: per-layer curves (no verdict)"
    ),
    "worst-case": "E1's networks under worst-case TPS deformations (PGD) beside random ones",
    "augmentation": (
        "no augmentation / crop ±4 / shifts ±8: one-pixel shifts "
        "inside and outside the trained range"
    ),
}
