"""Translation protocols as their authors ran them, and defstab's own default.

A :class:`TranslationPreset` fixes every geometric choice a published number depends on:
the size the images are resized to, the crop and canvas sizes, the number and direction
of the one-pixel steps, where the path starts, the object sizes and the background.
:meth:`TranslationPreset.geometry` turns it into the exact arguments of each protocol,
and :meth:`TranslationPreset.record` into what ``config.json`` keeps.

Facts taken from the authors' public code (see SPEC §7 and the README table):

* ``azulay`` — Azulay & Weiss 2019 (CNN-Failures, ``CheckTranslationInvariance.py``):
  crop protocol on images resized to 234 px, 224-px crops at diagonal offsets
  0…8 (8 one-pixel steps); "black" protocol on a 224-px canvas with objects of
  ⌊224/s⌋ px, s ∈ {1.3, 1.6, 1.9} → 172, 140, 117 px, first position
  ⌊(224 − size − 1)/2⌋ − 4 on both axes, 8 diagonal steps, and a canvas of zeros *after*
  normalisation (the mean colour), i.e. ``background="mean"``.
* ``zhang`` — Zhang 2019 (antialiased-cnns, ``validate_shift``): images resized (short
  side) and centre-cropped to 256 px, two 224-px crops at independent random offsets in
  0…31 on each axis, consistency = how often their top-1 classes agree.
* ``aps`` / ``aps-cifar`` — Chaman & Dokmanić 2021 (truly_shift_invariant_cnns,
  ``main.py:validate`` and ``train_validate_circular.py``): two independent circular
  shifts per image, each uniform in [−32, 31] px on 224-px centre crops of 256-px images
  (ImageNet) or in [−3, 2] px on 32-px images (CIFAR-10); consistency = how often the
  two top-1 classes agree. Their code draws one pair per batch; defstab one per image
  (the same expectation) unless ``--pairs-per-batch`` says otherwise.
* ``michaeli`` — Michaeli et al. 2023 (alias_free_convnets, ``shift_eval.py``): accuracy
  under the worst circular shift on the integer grid (rolls 1…31 on both axes), the
  half-pixel grid and the fractional grid (1/3 and 1/4 px), 224-px centre crops of
  256-px images.
* ``defstab`` — the default: one centred path of ``canvas // 8`` horizontal steps on the
  model's native canvas, crops of ``canvas − steps`` px, objects of half the canvas on
  black. Not comparable with either paper's tables; good for any input size.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

AZULAY_OBJECT_SIZES = tuple(int(224 / s) for s in (1.3, 1.6, 1.9))  # (172, 140, 117)


@dataclass(frozen=True)
class TranslationPreset:
    """Every geometric choice of a translation protocol (pixels; None: from the canvas).

    Attributes:
        name, paper: the preset and the publication whose numbers it reproduces.
        protocols: protocols run by default.
        direction: "horizontal", "vertical" or "diagonal".
        steps: one-pixel steps per path (None: canvas // 8).
        canvas: frame size of the embed/inpaint/scale protocols (None: the model's).
        source_size: side the images are resized to before cropping (None: the canvas).
        crop: crop side (None: source_size − steps).
        object_sizes: embedded object sides (None: half the canvas).
        background: "black", "mean" or "inpaint" for the embed protocol.
        start: "centred" (the path centred on the canvas / image) or "azulay" (their
            first position ⌊(free − 1)/2⌋ − 4 on both axes).
        window: random-pairs: offsets 0…window−1 on each axis.
        pairs_per_batch: random-pairs: one pair of offsets per this many images
            (None: one per image).
        fraction: fractional: steps of 1/fraction px.
        robust_grids: grids of the accuracy under the worst shift (Michaeli et al.):
            "integer", "half", "fraction", "full"; empty: none.
        robust_geometry: "circular" or "crop" (see :mod:`defstab.translate.robust`).
        robust_radius: the grids' R (circular: rolls 1…R−1; crop: −R … R − 1).
        robust_up: the fraction grid's largest denominator.
    """

    name: str
    paper: str
    protocols: tuple[str, ...]
    direction: str = "horizontal"
    steps: int | None = None
    canvas: int | None = None
    source_size: int | None = None
    crop: int | None = None
    object_sizes: tuple[int, ...] | None = None
    background: str = "black"
    start: str = "centred"
    window: int = 32
    pairs_per_batch: int | None = None
    fraction: int = 2
    robust_grids: tuple[str, ...] = ()
    robust_geometry: str = "circular"
    robust_radius: int = 32
    robust_up: int = 4

    def with_overrides(self, **options) -> TranslationPreset:
        """The preset with the options a user gave (None values leave it unchanged)."""
        given = {k: v for k, v in options.items() if v is not None}
        for key in ("object_sizes", "robust_grids"):
            if key in given:
                given[key] = tuple(given[key])
        return replace(self, **given)

    def resolved(self, native_canvas: int) -> TranslationPreset:
        """Fill every None from ``native_canvas`` (the model's input size)."""
        canvas = self.canvas or native_canvas
        steps = self.steps or max(1, canvas // 8)
        source = self.source_size or canvas
        crop = self.crop or source - steps
        sizes = self.object_sizes or (canvas // 2,)
        return replace(
            self, canvas=canvas, steps=steps, source_size=source, crop=crop, object_sizes=sizes
        )

    def start_of(self, free: int) -> int | None:
        """First position on an axis with ``free`` pixels of room (None: centred)."""
        if self.start == "centred":
            return None
        return (free - 1) // 2 - 4

    def geometry(self, protocol: str, object_size: int | None = None) -> dict:
        """Keyword arguments of :func:`defstab.translate.make_frames` for ``protocol``
        (call on a :meth:`resolved` preset)."""
        geo: dict = {"canvas": self.canvas, "direction": self.direction}
        if protocol in ("embed", "inpaint"):
            geo["object_size"] = object_size
            geo["background"] = "inpaint" if protocol == "inpaint" else self.background
            first = self.start_of(self.canvas - object_size)
            geo["start"] = None if first is None else (first, first)
        elif protocol == "scale":
            geo["object_size"] = object_size
        elif protocol == "crop":
            geo["crop"] = self.crop
            first = self.start_of(self.source_size - self.crop)
            geo["start"] = None if first is None else (first, first)
        elif protocol == "random-pairs":
            geo |= {"crop": self.crop, "window": self.window, "per_batch": self.pairs_per_batch}
        elif protocol == "circular-pairs":
            geo |= {"window": self.window, "per_batch": self.pairs_per_batch}
        elif protocol == "fractional":
            geo["fraction"] = self.fraction
        return geo

    def record(self) -> dict:
        return asdict(self)


PRESETS = {
    "defstab": TranslationPreset(
        name="defstab",
        paper="defstab default (not comparable with the papers' tables)",
        protocols=("embed",),
    ),
    "azulay": TranslationPreset(
        name="azulay",
        paper="Azulay & Weiss 2019, JMLR (code: AzulEye/CNN-Failures)",
        protocols=("crop", "embed"),
        direction="diagonal",
        steps=8,
        canvas=224,
        source_size=234,
        crop=224,
        object_sizes=AZULAY_OBJECT_SIZES,
        background="mean",
        start="azulay",
    ),
    "zhang": TranslationPreset(
        name="zhang",
        paper="Zhang 2019, ICML (code: adobe/antialiased-cnns, validate_shift)",
        protocols=("random-pairs",),
        canvas=224,
        source_size=256,
        crop=224,
        window=32,
    ),
    "aps": TranslationPreset(
        name="aps",
        paper="Chaman & Dokmanić 2021, CVPR (code: achaman2/truly_shift_invariant_cnns, "
        "main.py validate)",
        protocols=("circular-pairs",),
        canvas=224,
        source_size=256,
        window=64,
    ),
    "aps-cifar": TranslationPreset(
        name="aps-cifar",
        paper="Chaman & Dokmanić 2021, CVPR (code: achaman2/truly_shift_invariant_cnns, "
        "train_validate_circular.py evaluate_circular)",
        protocols=("circular-pairs",),
        canvas=32,
        source_size=32,
        window=6,
    ),
    "michaeli": TranslationPreset(
        name="michaeli",
        paper="Michaeli, Michaeli & Soudry 2023, CVPR (code: hmichaeli/alias_free_convnets, "
        "shift_eval.py)",
        protocols=(),
        canvas=224,
        source_size=256,
        robust_grids=("integer", "half", "fraction"),
    ),
}


def get_preset(name: str) -> TranslationPreset:
    if name not in PRESETS:
        raise ValueError(f"unknown translation preset {name!r}; choose from {', '.join(PRESETS)}.")
    return PRESETS[name]


def describe(preset: TranslationPreset, protocols) -> str:
    """One line with the full geometry of a resolved preset, for reports."""
    parts = []
    for proto in protocols:
        if proto in ("embed", "inpaint"):
            background = "inpainted" if proto == "inpaint" else preset.background
            parts.append(
                f"{proto}: objects of {'/'.join(map(str, preset.object_sizes))} px on a "
                f"{preset.canvas}-px {background} canvas, {preset.steps} one-pixel "
                f"{preset.direction} steps from the {preset.start} start"
            )
        elif proto == "crop":
            parts.append(
                f"crop: {preset.crop}-px crops of {preset.source_size}-px images, "
                f"{preset.steps} one-pixel {preset.direction} steps from the {preset.start} start"
            )
        elif proto == "random-pairs":
            per = (
                f"one pair per {preset.pairs_per_batch} images"
                if preset.pairs_per_batch
                else "one pair per image"
            )
            parts.append(
                f"random-pairs: two {preset.crop}-px crops of {preset.source_size}-px images "
                f"at independent offsets in 0…{preset.window - 1} px on each axis ({per})"
            )
        elif proto == "pad-shift":
            parts.append(
                f"pad-shift: the whole {preset.source_size}-px image moved "
                f"−{preset.steps}…+{preset.steps} px {preset.direction}, zero fill"
            )
        elif proto == "scale":
            parts.append(
                f"scale: objects growing 1 px per step from "
                f"{'/'.join(map(str, preset.object_sizes))} px, {preset.steps} steps"
            )
        elif proto == "circular":
            parts.append(
                f"circular: the {preset.canvas}-px image rolled 0…{preset.steps} px "
                f"{preset.direction}, content wrapping around"
            )
        elif proto == "fractional":
            parts.append(
                f"fractional: the {preset.canvas}-px image shifted by k/{preset.fraction} px, "
                f"k = 0…{preset.steps}, {preset.direction}, band-limited (periodic sinc)"
            )
        elif proto == "circular-pairs":
            low, high = -(preset.window // 2), preset.window - preset.window // 2 - 1
            parts.append(
                f"circular-pairs: two circular shifts of the {preset.canvas}-px image, each "
                f"uniform in [{low}, {high}] px on both axes"
            )
        else:
            parts.append(f"{proto}: {preset.steps} steps of 0.25 px, {preset.direction}")
    for grid in preset.robust_grids:
        parts.append(
            f"worst {grid} shift ({preset.robust_geometry}, radius {preset.robust_radius}"
            + (f", fractions up to 1/{preset.robust_up}" if grid == "fraction" else "")
            + ")"
        )
    return "; ".join(parts)


#: Published values, quoted only beside the preset whose geometry they were measured with.
REFERENCES = {
    "azulay": (
        "Reference (Azulay & Weiss 2019, ImageNet-pretrained VGG16/ResNet50/DenseNet): "
        "P(top-1 change) crop ≈ 0.06 (VGG16 0.062, ResNet50 0.061, DenseNet121 0.068), "
        "black canvas ≈ 0.18–0.20; MAC crop ≈ 0.04, black canvas ≈ 0.06–0.09."
    ),
    "zhang": (
        "Compare consistency with Zhang 2019's ImageNet tables (there in %, "
        "ImageNet-pretrained networks with and without blur-pool)."
    ),
    "aps": (
        "Reference (Chaman & Dokmanić 2021): APS networks with circular padding are 100% "
        "consistent under circular shifts, by construction."
    ),
    "aps-cifar": (
        "Reference (Chaman & Dokmanić 2021): APS networks with circular padding are 100% "
        "consistent under circular shifts, by construction."
    ),
    "michaeli": (
        "Reference (Michaeli et al. 2023, ImageNet, accuracy: test / worst integer / "
        "half-pixel / fractional shift): ConvNeXt-T 82.12 / 76.63 / 73.65 / 77.82; APS "
        "82.11 / 82.11 / 79.68 / 76.31; alias-free 81.04 on all four."
    ),
}


def reference_note(preset: str, overridden) -> str:
    """The paper's values for a paper preset run unchanged, else why none is quoted."""
    if preset in REFERENCES and not overridden:
        return REFERENCES[preset]
    if preset in REFERENCES:
        return (
            f"No published values are quoted: the {preset} preset was changed "
            f"({', '.join(overridden)})."
        )
    return (
        "No published values are quoted: defstab's default geometry differs from the "
        "papers'; use a paper's preset (--preset azulay, zhang, aps, aps-cifar or michaeli) "
        "to compare with it."
    )
