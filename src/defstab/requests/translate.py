"""The request of the translation protocols (``defstab translate``): Azulay & Weiss
2019's P(top-1 change), mean absolute change and jaggedness under one-pixel shifts, the
presets of Zhang 2019, Chaman & Dokmanić 2021 and Michaeli et al. 2023, and the worst
shift."""

from __future__ import annotations

from dataclasses import dataclass

from defstab.requests.fields import option
from defstab.requests.model import read_workers_option

PRESETS = ("defstab", "azulay", "zhang", "aps", "aps-cifar", "michaeli")
WORST = "the accuracy under the worst shift (Michaeli et al. 2023)"


@dataclass
class TranslateRequest:
    """What ``defstab translate`` measures (every field is one of its options)."""

    images: int = option(64, help="number of images (default 64)")
    read_workers: int = read_workers_option()
    preset: str = option(
        "defstab",
        choices=PRESETS,
        help="the geometry a paper used: azulay (224-px crops of 234-px images and a 224-px "
        "mean-colour canvas, 8 diagonal steps, objects 172/140/117 px), zhang (two random "
        "offsets in a 32×32 window, 224-px crops of 256-px images), aps / aps-cifar (two "
        "random circular shifts in [−32, 31] px of 224-px crops, or [−3, 2] px of 32-px "
        "images), michaeli (accuracy under the worst integer, half-pixel and fractional "
        "circular shift), or defstab's default (one centred horizontal path on the model's "
        "canvas); options below override it",
    )
    protocol: str | None = option(
        help="comma-separated: embed, inpaint, crop, scale, subpixel, pad-shift (the whole "
        "image moved −STEPS…+STEPS px, zero fill: training augmentation's shift), "
        "random-pairs, circular (rolled 0…STEPS px, wrapping), fractional (shifted by "
        "k/FRACTION px, band-limited), circular-pairs (two random circular shifts) "
        "(default: the preset's)",
    )
    fraction: int | None = option(
        metavar="M", help="fractional: steps of 1/M px (default 2: half a pixel)"
    )
    steps: int | None = option(help="one-pixel steps (defstab default: canvas/8)")
    object_size: str | None = option(
        help="embed/inpaint/scale: object side in px, or a comma-separated sweep (defstab "
        "default: half the canvas)",
    )
    direction: str | None = option(
        choices=("horizontal", "vertical", "diagonal"), help="the direction of the path"
    )
    background: str | None = option(
        choices=("black", "mean"),
        help="embed canvas: black pixels, or the normalisation mean (zeros after "
        "normalisation, as Azulay & Weiss's code pastes)",
    )
    crop_size: int | None = option(help="crop/random-pairs: crop side")
    source_size: int | None = option(
        help="side the images are resized to before cropping (default: the canvas)"
    )
    window: int | None = option(help="random-pairs: offsets 0…window−1 (Zhang: 32)")
    pairs_per_batch: int | None = option(
        help="random-pairs: one pair of offsets per this many images, as Zhang's code draws "
        "per batch (default: one pair per image)",
    )
    worst_shift: int | None = option(
        metavar="K",
        help="also every integer shift within ±K px (exhaustive): the fraction of images that "
        "some shift flips, beside the average per shift",
    )
    robust_grid: str | None = option(
        metavar="GRIDS",
        group=WORST,
        help="accuracy under the worst shift (Michaeli et al. 2023): comma-separated grids "
        "integer (rolls 1…R−1 on both axes), half (those minus ½ px), fraction (k/u px, u up "
        "to --robust-up), full (integer and half); 'none' for none",
    )
    robust_geometry: str | None = option(
        choices=("circular", "crop"),
        group=WORST,
        help="worst shift: the whole image wrapped around (default), or a canvas-px crop "
        "moved within ±R px of a larger image",
    )
    robust_radius: int | None = option(
        metavar="R",
        group=WORST,
        help="worst shift: the grids' R (default 32, the authors'; at most the image size)",
    )
    robust_up: int | None = option(
        metavar="U",
        group=WORST,
        help="worst shift: the fraction grid's largest denominator (default 4: 1/3 and 1/4 px)",
    )
    layers: bool = option(
        False, help="also the per-layer shift analysis (strides, invariance, equivariance)"
    )
    seed: int = option(0, help="images drawn and random offsets")

    def object_sizes(self) -> list[int] | None:
        """``object_size`` as pixel sizes (None: the preset's)."""
        if not self.object_size:
            return None
        try:
            return [int(s) for s in self.object_size.split(",")]
        except ValueError:
            raise ValueError(
                f"--object-size takes pixel sizes like 56,112; got {self.object_size!r}."
            ) from None

    def robust_grids(self) -> tuple[str, ...] | None:
        """``robust_grid``: None (the preset's), () for 'none', else the grids named."""
        text = self.robust_grid
        if text is None:
            return None
        grids = [g.strip() for g in text.split(",") if g.strip()]
        if grids == ["none"]:
            return ()
        known = ("integer", "half", "fraction", "full")
        bad = [g for g in grids if g not in known]
        if bad or not grids:
            raise ValueError(
                f"--robust-grid takes {', '.join(known)} (comma-separated) or none; got {text!r}."
            )
        return tuple(grids)
