"""The request of ``defstab bench``: a model's whole stability card — every protocol of the
card on the same images, in one process — and models compared on those images.

The card's protocols and their settings per budget are declared here (importable without
torch): :data:`CARD` names each with the registry protocol that runs it, what it reports
and its settings per budget (:func:`card_requests`). Every protocol reads a prefix of one
seeded draw of images (``randperm(len(data))[:n]``), so the protocols of a card and the
models of a comparison measure the same source images, and the same deformations, shifts
and frames (each protocol draws them from the same seed).
"""

from __future__ import annotations

from dataclasses import dataclass

from defstab.requests.fields import option
from defstab.requests.measure import MeasureRequest
from defstab.requests.model import read_workers_option
from defstab.requests.perturb import PerturbRequest
from defstab.requests.smoothness import SmoothnessRequest
from defstab.requests.spatial import SpatialRequest
from defstab.requests.translate import TranslateRequest

BUDGETS = ("quick", "standard", "paper")
#: images of the card per budget (paper: the whole split, at most this many)
BUDGET_IMAGES = {"quick": 512, "standard": 2048, "paper": 10_000}
#: the costlier protocols read the first of the card's images: at most this many
BUDGET_CAPS = {
    "quick": {"lie": 64, "perturb": 128, "spatial": 64},
    "standard": {"lie": 256, "perturb": 512, "spatial": 256},
    "paper": {},
}
LIE_TRANSFORMS = "translate,rotate"


@dataclass(frozen=True)
class CardProtocol:
    """One protocol of the card: ``protocol``: its name in the registry
    (:data:`defstab.requests.registry.PROTOCOLS`); ``metrics``: what the card reports of
    it, with its unit and which way is more stable; ``needs_data``: False for a protocol
    of the weights alone."""

    name: str
    protocol: str
    metrics: str
    unit: str
    direction: str
    needs_data: bool = True


CARD = {
    p.name: p
    for p in (
        CardProtocol("tps", "deformation-sensitivity",
                     "per-layer sensitivity to random TPS deformations, R_f against noise of "
                     "equal norm, Lie derivatives (translate, rotate) of the class scores",
                     "normalized distance; ratio; per unit²", "lower"),
        CardProtocol("diffeo", "deformation-sensitivity",
                     "per-layer sensitivity to random diffeomorphisms (Petrini et al.), R_f",
                     "normalized distance; ratio", "lower"),
        CardProtocol("translate", "translations",
                     "P(top-1 change) and mean absolute change over one-pixel shifts",
                     "fraction of steps; probability", "lower"),
        CardProtocol("perturb", "perturbation-sequences",
                     "flip probability over perturbation sequences (ImageNet-P / CIFAR-P)",
                     "fraction of frame pairs", "lower"),
        CardProtocol("spatial", "spatial-robustness",
                     "accuracy: natural, random, worst of 10 and grid rotations+translations",
                     "fraction correct", "higher"),
        CardProtocol("smoothness", "filter-smoothness",
                     "normalized total variation of each conv layer's filters",
                     "normalized TV", "lower", needs_data=False),
    )
}  # fmt: skip


def parse_protocols(text: str) -> tuple[str, ...]:
    """``"all"`` or a comma-separated list of the card's protocols, in the card's order;
    one sentence for an unknown name."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names or names == ["all"]:
        return tuple(CARD)
    bad = [n for n in names if n not in CARD]
    if bad:
        raise ValueError(
            f"unknown protocol {bad[0]!r} for --protocols; choose from all, {', '.join(CARD)}."
        )
    return tuple(n for n in CARD if n in names)


def card_images(budget: str, images: int | None, available: int | None) -> int:
    """The card's image count: ``images`` if given, else the budget's, at most the split's."""
    n = images if images is not None else BUDGET_IMAGES[budget]
    return n if images is not None or available is None else min(n, available)


def card_requests(budget: str, images: int, seed: int, side: int, protocols) -> dict:
    """{card protocol: its request} for ``budget`` on ``images`` images of ``side`` px.

    quick and standard: each command's defaults on the card's images (the costlier ones on
    the first of them, :data:`BUDGET_CAPS`); paper: the literature's settings at every
    image (the TPS grid and budget by size, the translation and perturbation presets for
    the image size, Engstrom et al.'s grid). Each protocol's numbers equal its own command's
    with the same request (``defstab bench --list`` shows them as options)."""
    caps = BUDGET_CAPS[budget]

    def capped(name: str) -> int:
        return min(images, caps.get(name, images))

    small = side <= 64
    made = {
        "tps": MeasureRequest(
            images=images, seed=seed, lie_derivative=LIE_TRANSFORMS, lie_images=capped("lie")
        ),  # fmt: skip
        "diffeo": MeasureRequest(images=images, seed=seed, deformation="diffeo"),
        "translate": TranslateRequest(
            images=images, seed=seed, preset="defstab" if small or budget != "paper" else "azulay"
        ),  # fmt: skip
        "perturb": PerturbRequest(
            images=capped("perturb"), seed=seed, preset="cifar-p" if small else "imagenet-p"
        ),  # fmt: skip
        "spatial": SpatialRequest(images=capped("spatial"), seed=seed),
        "smoothness": SmoothnessRequest(),
    }
    return {name: made[name] for name in protocols}


@dataclass
class BenchRequest:
    """What ``defstab bench`` measures and compares (every field is one of its options)."""

    models: tuple[str, ...] = option(
        (),
        positional=True,
        nargs="*",
        metavar="MODEL",
        help="models: registry names, torchvision:NAME, timm:NAME, file.py:factory or "
        "'defstab train' folders, each with its own model options after @ "
        "(vgg_cifar_maxpool@width=0.25,padding=circular); two or more are compared on the "
        "same images",
    )
    protocols: str = option(
        "all", help=f"all, or comma-separated protocols of the card: {', '.join(CARD)}"
    )
    budget: str = option(
        "quick",
        choices=BUDGETS,
        help="quick (512 images; the costlier protocols on the first 64–128), standard "
        "(2048; 256–512) or paper (each protocol's literature settings on the whole split, "
        "at most 10,000)",
    )
    images: int | None = option(help="the card's images (default: the budget's)")
    seed: int = option(0, help="the images drawn, deformations, noise, shifts and frames")
    read_workers: int = read_workers_option()
    rank_by: str | None = option(
        metavar="METRIC",
        help="the leaderboard's order: a metric key of the card, e.g. "
        "tps:sensitivity@LAYER or spatial:grid_accuracy (default: TPS sensitivity at the "
        "last layer)",
    )
    delta: str | None = option(
        metavar="METRIC=VALUE,…",
        help="smallest effects of interest, in the metrics' units, stated before the run; "
        "'at least δ' is said only for these (otherwise the comparison says the direction)",
    )
    resamples: int = option(2000, help="bootstrap resamples over images (default 2000)")
    list: bool = option(False, help="print every protocol of the card with its settings")
