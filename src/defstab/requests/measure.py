"""The request of the deformation-sensitivity protocol (``defstab measure``).

Ruderman et al. 2018's layer-wise sensitivity to random TPS deformations, or Petrini et
al. 2021's to random diffeomorphisms with R_f against noise of equal norm; optionally
the worst case and the smallest flipping C (an attack) and Gruver et al. 2023's Lie
derivative. The fields are the options of ``defstab measure``; the pipeline runs it
(:func:`defstab.run`).
"""

from __future__ import annotations

from dataclasses import dataclass

from defstab.requests.fields import SizedDefault, option
from defstab.requests.model import read_workers_option

LIE = "the Lie derivative"
WORST = "the worst case"


@dataclass
class MeasureRequest:
    """What ``defstab measure`` measures (every field is one of its options)."""

    layers: str | None = option(
        help="comma-separated module names (default: the paper's layers; else every conv and "
        "pooling module outside transformer blocks, and every transformer block)"
    )
    tokens: str = option(
        "all",
        choices=("all", "patches"),
        help="token outputs (N, T, D) of ViT blocks: compare the whole vector, class token "
        "included (all, default), or the patch tokens only (patches)",
    )
    images: int = option(
        128, help="number of images (default 128; e.g. 10000: the whole CIFAR-10 test set)"
    )
    normalizer: str = option(
        "auto",
        choices=("auto", "exact", "sampled"),
        help="the per-layer median over pairs of undeformed images: exact (all pairs; time N², "
        "memory N × layers), sampled (the N/2 disjoint pairs of a seeded random order, with a "
        "95% interval; linear time, flat memory), or auto (default: exact up to 4096 images)",
    )
    read_workers: int = read_workers_option()
    deformation: str = option(
        "tps",
        choices=("tps", "diffeo"),
        help="tps: Ruderman's random thin-plate splines (--grid, --max-disp); diffeo: Petrini "
        "et al.'s random diffeomorphisms (--temperature or --displacement, --cut)",
    )
    grid: int | None = option(help="k, the TPS control grid", sized=SizedDefault(3, 5))
    max_disp: float | None = option(
        help="C, the largest control-point displacement in pixels", sized=SizedDefault(2, 10)
    )
    temperature: float | None = option(help="diffeo: T")
    displacement: float | None = option(
        metavar="PX",
        help="diffeo: choose T so that the typical displacement is PX pixels (default 1, "
        "Petrini et al.'s per-layer setting)",
    )
    cut: int | None = option(help="diffeo: the cut-off c of the sine modes (default 3)")
    aggregate: str = option(
        "mean",
        choices=("mean", "median"),
        help="R_f over images: mean (Petrini et al.'s paper, always written) or median (also "
        "relative_stability_median: their results code's Σ_features median over images; keeps "
        "N × features squared differences in memory)",
    )
    lie_derivative: str | None = option(
        metavar="TRANSFORMS",
        group=LIE,
        help="also the Lie derivative of every measured layer (Gruver et al. 2023) under "
        "translate (x and y), translate_x, translate_y, rotate, scale, comma-separated: lie_* "
        "columns in sensitivity.csv, lie.csv (end to end), lie_layers.csv (per module), lie.png",
    )
    lie_images: int | None = option(
        metavar="K", group=LIE, help="the Lie derivative on the first K of the measured images "
        "(default: all)",
    )  # fmt: skip
    no_lie_contributions: bool = option(
        False,
        group=LIE,
        help="skip each module's contribution (one forward pass per module and transform)",
    )
    lie_derivative_convention: str = option(
        "symmetric",
        choices=("symmetric", "gruver"),
        group=LIE,
        help="the derivative of the bilinear warp at t = 0: symmetric (central differences, "
        "default) or gruver (their code's one-sided derivative through floor: compare with "
        "Gruver et al.'s tables; 19–50% apart end to end)",
    )
    seed: int = option(0, help="seed of image order, deformations, noise")
    distance: str = option(
        "cosine", choices=("cosine", "euclidean"), help="the distance between representations"
    )
    no_noise: bool = option(False, help="skip the noise control")
    deformations: str | None = option(
        metavar="FILE",
        help="replay the deformations.pt of an earlier measure (same data, --images and --seed: "
        "the file records its images, and another set is refused)",
    )
    force_replay: bool = option(
        False,
        help="with --deformations: deform these images even if the file was drawn for others",
    )
    worst_case: bool = option(
        False,
        group=WORST,
        help="also the worst TPS deformation of the same budget per image (projected gradient "
        "ascent): worst_mean/worst_std columns, worst_deformations.pt, worst_case.png",
    )
    attack_steps: int = option(10, group=WORST, help="gradient steps (default 10)")
    attack_restarts: int = option(0, group=WORST, help="extra random starts")
    attack_layer: str | None = option(
        group=WORST,
        help="layer whose distance the attack maximises (default: the last measured layer)",
    )
    attack_objective: str = option(
        "distance",
        choices=("distance", "loss"),
        group=WORST,
        help="distance at --attack-layer, or cross-entropy on the predicted class",
    )
    min_flip: bool = option(
        False,
        group=WORST,
        help="classifiers: per image the smallest C whose worst-case deformation changes the "
        "top-1 class (bisection): flip.csv, robustness.png",
    )
    flip_max: float | None = option(
        group=WORST, help="--min-flip search up to C (default 2×C)"
    )  # fmt: skip
    batch_size: int | None = option(help="images per chunk (default 64)")
    ram_budget: float = option(
        3.0,
        metavar="GIB",
        affects_result=False,
        help="RAM for the undeformed representations the exact median needs (default 3 GiB); "
        "the rest goes to a temporary file in TMPDIR",
    )

    @property
    def reads_class_scores(self) -> bool:
        """The worst case, the flips and the Lie derivative read the model's class scores."""
        return bool(self.worst_case or self.min_flip or self.lie_derivative)
