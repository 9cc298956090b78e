"""The translation protocols end to end (Azulay & Weiss 2019 and the presets of the
papers after it): the function behind ``defstab translate`` and :func:`defstab.run`
with a :class:`~defstab.requests.translate.TranslateRequest`."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from defstab.pipeline.models import data_options
from defstab.pipeline.outcome import (
    HIGHER,
    LOWER,
    Metric,
    Outcome,
    final_path,
    table_summary,
)
from defstab.requests.model import DataOptions
from defstab.requests.translate import TranslateRequest

#: summary columns that are headline metrics: (unit, which way is more stable)
HEADLINES = {
    "p_top1_change": ("fraction of steps", LOWER),
    "mac": ("probability", LOWER),
    "consistency": ("fraction of pairs", HIGHER),
    "robust_accuracy": ("fraction correct", HIGHER),
}


@dataclass
class TranslateOutcome(Outcome):
    """``summary``: summary.csv's rows (one per protocol, object size and worst-shift
    grid); ``per_step``: each protocol's result with its (N, S) numbers; ``figures``: the
    figures written."""

    request: TranslateRequest
    summary: list[dict]
    per_step: list[tuple[Any, dict]]
    model_settings: dict
    normalization: Any
    data_name: str
    out: Path | None = None
    written: list[str] = field(default_factory=list)
    ids: Any = None  # (N,) the data set's indices of the images, in the order measured

    def rows(self) -> list[dict]:
        return self.summary

    @property
    def metrics(self) -> list[Metric]:
        """Per summary row, its headline numbers (P(top-1 change), MAC, consistency, the
        accuracy under the worst shift), named by protocol."""
        found = []
        for row in self.summary:
            protocol = row.get("protocol", "worst-shift")
            size = f"_{row['object_size']}px" if row.get("object_size") else ""
            for key, (unit, direction) in HEADLINES.items():
                if isinstance(row.get(key), float):
                    found.append(Metric(f"{key}_{protocol}{size}", row[key], unit, direction))
        return found

    def summary_lines(self) -> list[str]:
        return table_summary(self.model_settings, {"": self.normalization}, self.summary,
                             self.out, self.written)  # fmt: skip


def run_translate(request: TranslateRequest, *, model, data, out=None, device="auto",
                  progress: bool = True, warn=None, given=None, record=None):  # fmt: skip
    """Run the translation protocols of ``request`` on ``model`` and ``data`` (as for
    :func:`~defstab.pipeline.measure.run_measure`). Returns a :class:`TranslateOutcome`."""
    from defstab.pipeline.checks import check_options
    from defstab.pipeline.folders import in_result_folder
    from defstab.pipeline.outcome import default_warn

    warn = warn or default_warn
    data = data_options(data)
    check_options("translate", request, model, data, given)
    request.object_sizes(), request.robust_grids()
    return in_result_folder("translate", out, lambda folder, final: _translate(
        request, model, data, folder, final, device, progress, warn, record))  # fmt: skip


def _preset(request: TranslateRequest, data: DataOptions):
    """(the preset with the request's overrides, the names of those given, protocols)."""
    from defstab.translate import PROTOCOLS
    from defstab.translate.presets import get_preset

    overrides = {
        "direction": request.direction,
        "steps": request.steps,
        "canvas": data.image_size,
        "source_size": request.source_size,
        "crop": request.crop_size,
        "object_sizes": request.object_sizes(),
        "background": request.background,
        "window": request.window,
        "pairs_per_batch": request.pairs_per_batch,
        "fraction": request.fraction,
        "robust_grids": request.robust_grids(),
        "robust_geometry": request.robust_geometry,
        "robust_radius": request.robust_radius,
        "robust_up": request.robust_up,
    }
    given = sorted(k for k, v in overrides.items() if v is not None)
    preset = get_preset(request.preset).with_overrides(**overrides)
    protocols = (
        [p.strip() for p in request.protocol.split(",") if p.strip()]
        if request.protocol is not None
        else list(preset.protocols)
    )
    bad = [p for p in protocols if p not in PROTOCOLS]
    if bad or not (protocols or preset.robust_grids):
        raise ValueError(
            f"unknown protocol {bad or request.protocol!r}; choose from {', '.join(PROTOCOLS)}."
        )
    return preset, given, protocols


def _translate(request, model, data, out, final, device, progress, warn, record):
    import torch

    from defstab.data.sources import load_data
    from defstab.data.spec import DataSpec
    from defstab.data.stream import DatasetImages, MappedImages
    from defstab.models.loading import native_input_size
    from defstab.pipeline.models import (
        check_scores_cover,
        choose_normalization,
        make_preprocess,
        model_options,
        resolve_model,
        use_class_scores,
    )
    from defstab.tap import pick_device
    from defstab.translate.protocols import resize

    preset, given, protocols = _preset(request, data)
    device = pick_device(device) if isinstance(device, str) else device
    data_spec = DataSpec.parse(data.data)
    source_data = load_data(data_spec, data.split, image_size=None)
    net, settings = resolve_model(model, in_channels=source_data.channels)
    net = net.to(device)
    model_name = settings["model"]
    native = native_input_size(net, str(model_name))
    preset = preset.resolved(native or 32)
    canvas, steps, crop, source = preset.canvas, preset.steps, preset.crop, preset.source_size
    if request.preset != "defstab":
        if given:
            warn(
                f"{', '.join(given)} given: the geometry is no longer the {request.preset} "
                "preset's, so the results are not comparable with the paper's tables."
            )
        if native is not None and native != canvas:
            warn(
                f"the {request.preset} preset is defined for {canvas}-px inputs; "
                f"{model_name} takes {native} px."
            )
    if crop < 2:
        raise ValueError(f"--steps {steps} leaves no crop of a {source} px image; use fewer.")
    if crop > source:
        raise ValueError(
            f"crops of {crop} px do not fit images of {source} px; choose --crop-size or "
            "fewer --steps."
        )
    if not all(2 <= s <= canvas for s in preset.object_sizes):
        raise ValueError(
            f"--object-size must lie in 2…{canvas} px (the canvas), got "
            f"{list(preset.object_sizes)}."
        )
    if source_data.paths is not None:
        source_data.image_size = source  # crops come from images of this size
    gen = torch.Generator().manual_seed(request.seed)
    # read chunk by chunk as the protocols run: a whole data set is never in memory
    # (`sample` would draw the same indices from the generator)
    ids = source_data.draw(request.images, gen)
    labels = source_data.labels[ids]
    images = DatasetImages(source_data, ids, workers=request.read_workers)
    channels, height, width = images.image_shape
    if width != height:  # resizing would stretch them: never silently
        raise ValueError(
            f"translate moves square crops and canvases, and these images are "
            f"{width}×{height} px (W×H); crop them to squares first, or "
            "give them as a folder:PATH (resized and centre-cropped, as --image-size says)."
        )
    if width != source:
        if source > 2 * width or width > 2 * source:
            warn(
                f"images of {width} px are resized ×{source / width:.2g} to "
                f"{source} px; pass --source-size (or --image-size) to choose it."
            )
        images = MappedImages(images, lambda x: resize(x, source), (channels, source, source))
    elif source_data.paths is not None:
        from defstab.pipeline.measure_outputs import warn_if_resized

        warn_if_resized(source_data, source, warn)
    normalization = choose_normalization(data.normalize, settings, data_spec)
    pre = make_preprocess(normalization, channels, device)
    _, first = next(images.batches(None, 2))
    probe = resize(first, canvas).to(device)  # shaped like every frame to come
    options = model_options(model)
    output_key = options.output_key if options is not None else None
    scores = use_class_scores(net, pre(probe) if pre is not None else probe, output_key, settings)
    has_labels = len(source_data.classes) > 1
    if has_labels:  # the true class's probability and correctness read its score
        check_scores_cover(scores, source_data, model_name)
    outcome = TranslateOutcome(request, [], [], settings, normalization, source_data.name,
                               final_path(final), ids=ids)  # fmt: skip
    work = _Work(net, images, labels if has_labels else None, ids, pre, gen, progress,
                 Path(out) if out is not None else None, preset, protocols)  # fmt: skip
    _protocols(outcome, work)
    if out is not None:
        from defstab.pipeline.folders import request_record
        from defstab.pipeline.outcome import write_skipped

        skipped = write_skipped(images.skipped, ids, Path(out),
                                request.images - len(images.skipped), warn,
                                outcome.out)  # fmt: skip
        _write(outcome, work, data_spec, given, skipped, warn,
               request_record("translate", request, model, data, [], record))  # fmt: skip
    return outcome


@dataclass
class _Work:
    """What the protocols run on (one run's model, images and settings)."""

    model: Any
    images: Any
    labels: Any
    ids: Any
    preprocess: Any
    generator: Any
    progress: bool
    out: Path | None
    preset: Any
    protocols: list[str]
    figures: list[str] = field(default_factory=list)
    tables: list[str] = field(default_factory=list)


def _protocols(outcome: TranslateOutcome, work: _Work) -> None:
    """Every protocol, object size and worst-shift grid of the run: the summary rows,
    the per-step results, and the tables and figures of the folder (when there is one)."""
    from defstab.io.tables import write_csv
    from defstab.pipeline.models import weights_caveat
    from defstab.plotting.translation import path_figure
    from defstab.translate import run_protocol
    from defstab.translate.analysis import PATH_PROTOCOLS

    request, settings, preset = outcome.request, outcome.model_settings, work.preset
    mark = " — RANDOM WEIGHTS" if weights_caveat(settings) else ""
    name_of = settings["model"]
    for proto in work.protocols:
        sized = proto in ("embed", "inpaint", "scale")
        for size in preset.object_sizes if sized else [None]:
            geometry = preset.geometry(proto, size)
            res = run_protocol(work.model, work.images, work.labels, proto, preset.steps,
                               work.preprocess, progress=work.progress,
                               generator=work.generator, **geometry)  # fmt: skip
            extra = {"background": geometry["background"]} if "background" in geometry else {}
            outcome.summary.append({"preset": request.preset} | res.summary() | extra
                                   | {"weights": settings["weights"]})  # fmt: skip
            outcome.per_step.append((res, {"object_size": size}))  # (N, S), written below
            name = f"path_{proto}" + (f"_{size}" if size else "") + ".png"
            if proto in PATH_PROTOCOLS and work.out is not None:
                path_figure(res, work.out / name,
                            f"{name_of}: {proto}" + (f", object {size} px" if size else "")
                            + mark)  # fmt: skip
                work.figures.append(name)
    robust_rows = []
    for grid in preset.robust_grids:
        found = worst_shift_accuracy(work, grid)
        outcome.summary.append({"preset": request.preset} | found["row"]
                               | {"weights": settings["weights"]})  # fmt: skip
        robust_rows += found["per_image"]
    if robust_rows and work.out is not None:
        for row in robust_rows:
            row["image"] = int(work.ids[row["image"]])
        write_csv(work.out / "worst_shift_accuracy.csv", robust_rows)
        work.tables.append("worst_shift_accuracy.csv")
    if request.worst_shift is not None:
        from defstab.translate.analysis import worst_shift

        side = min(preset.crop, preset.source_size - 2 * request.worst_shift)
        found = worst_shift(work.model, work.images, side, request.worst_shift,
                            work.preprocess, progress=work.progress)  # fmt: skip
        outcome.summary.append(
            {"preset": request.preset}
            | {k: v for k, v in found.items() if k not in ("flipped", "worst", "items")}
            | {"weights": settings["weights"]}
        )
        if work.out is not None:
            write_csv(work.out / "worst_shift.csv", [
                {"image": int(work.ids[item]), "flipped": int(found["flipped"][i]),
                 "worst_dx": int(found["worst"][i, 0]), "worst_dy": int(found["worst"][i, 1])}
                for i, item in enumerate(found["items"].tolist())
            ])  # fmt: skip
            work.tables.append("worst_shift.csv")


def _write(outcome: TranslateOutcome, work: _Work, data_spec, given, skipped, warn,
           record) -> None:  # fmt: skip
    import torch

    from defstab.io.atomic import write_json
    from defstab.io.provenance import versions
    from defstab.io.tables import write_csv
    from defstab.pipeline.models import weights_caveat
    from defstab.plotting.translation import layer_shift_figure, measures_vs_size
    from defstab.translate import layer_shift_analysis
    from defstab.translate.presets import describe, reference_note

    out, request, settings, preset = work.out, outcome.request, outcome.model_settings, work.preset
    caveat = weights_caveat(settings)
    mark = " — RANDOM WEIGHTS" if caveat else ""
    name_of = settings["model"]
    write_csv(out / "summary.csv", outcome.summary)
    if outcome.per_step:
        write_per_step(out / "per_step.csv", outcome.per_step, work.ids)
    robust = [r for r in outcome.summary if "robust_accuracy" in r]
    if robust:
        from defstab.plotting.translation import worst_shift_figure

        worst_shift_figure(robust, out / "worst_shift_accuracy.png",
                           f"{name_of}: accuracy under the worst shift{mark}")  # fmt: skip
        work.figures.append("worst_shift_accuracy.png")
    sized = any(p in ("embed", "inpaint", "scale") for p in work.protocols)
    if len(preset.object_sizes) > 1 and sized:
        measures_vs_size(outcome.summary, out / "measures_vs_size.png",
                         f"{name_of}: measures vs object size{mark}")  # fmt: skip
        work.figures.append("measures_vs_size.png")
    if request.layers:
        # a representation analysis with its own exact median: its images in memory
        held = torch.cat([x for _, x in work.images.batches(None, 256)])
        rows = layer_shift_analysis(work.model, held, preset.crop, preset.steps,
                                    preprocess=work.preprocess)  # fmt: skip
        inferred = [r["layer"] for r in rows if r["stride_source"] == "inferred"]
        if inferred:
            from defstab.models.strides import STRIDES_INFERRED

            warn(STRIDES_INFERRED.format(layers=", ".join(dict.fromkeys(inferred))))
        write_csv(out / "layers.csv", rows)
        layer_shift_figure(rows, out / "layers.png",
                           f"{name_of}: shifts vs cumulative stride{mark}")  # fmt: skip
        work.figures.append("layers.png")
        work.tables.append("layers.csv")
    protocols = work.protocols
    write_json(
        out / "config.json",
        {
            "command": "translate",
            **settings,
            "data": data_spec.record(),
            "images": request.images,
            "preset": request.preset,
            "protocol": preset.record()
            | {
                "protocols": protocols,
                "overridden": given,
                "description": describe(preset, protocols),
            },  # fmt: skip
            "canvas": preset.canvas,
            "steps": preset.steps,
            "protocols": protocols,
            "object_sizes": list(preset.object_sizes),
            "normalize": outcome.normalization.name,
            "normalize_rule": outcome.normalization.reason,
            "seed": request.seed,
            "versions": versions(),
            "request": record,
        },
    )
    write_json(
        out / "section.json",
        {
            "section": "translate",
            "title": f"Translations: {name_of} on {outcome.data_name}",
            "caveats": [caveat] if caveat else [],
            "text": [
                f"Weights: {settings['weights']}. {request.images} images; preset "
                f"{request.preset} ({preset.paper}): {describe(preset, protocols)}. Images "
                f"normalised with {outcome.normalization.describe()}.",
                reference_note(request.preset, given),
                *consistency_lines(outcome.summary),
            ],
            "figures": work.figures,
            "table_file": "summary.csv",
        },
    )
    written = ["summary.csv"] + (["per_step.csv"] if outcome.per_step else [])
    written += ["skipped.csv"] if skipped else []
    order = ("worst_shift_accuracy.csv", "worst_shift.csv", "layers.csv")
    written += [t for t in order if t in work.tables]
    outcome.written = [*written, *work.figures, "config.json", "section.json"]


def consistency_lines(summary: list[dict]) -> list[str]:
    """One sentence per protocol row with labels: consistency over images whose first
    frame is right and over those it is wrong, beside accuracy (a network that is always
    right is consistent whatever shifts do to it)."""
    lines = []
    for row in summary:
        if "consistency_correct" not in row:
            continue
        right = (
            f"{row['consistency_correct']:.3f} over the {row['images_correct']} whose first "
            "frame is classified correctly"
            if row["images_correct"]
            else "no image's first frame is classified correctly"
        )
        wrong = (
            f"{row['consistency_incorrect']:.3f} over the {row['images_incorrect']} misclassified"
            if row["images_incorrect"]
            else "none is misclassified"
        )
        lines.append(
            f"{row['protocol']}: consistency {row['consistency']:.3f} over all images; "
            f"{right}, {wrong} (first-frame accuracy {row['first_frame_accuracy']:.3f})."
        )
    return lines


def worst_shift_accuracy(work: _Work, grid: str) -> dict:
    """One grid of the accuracy under the worst shift: its summary row and per-image rows
    (``image`` holds positions in ``ids``)."""
    from defstab.data.stream import MappedImages
    from defstab.translate.protocols import centre_crop
    from defstab.translate.robust import shift_robust_accuracy

    if work.labels is None:
        raise ValueError("the accuracy under the worst shift needs labelled images.")
    preset = work.preset
    geometry, radius, canvas = preset.robust_geometry, preset.robust_radius, preset.canvas
    side = canvas if geometry == "circular" else canvas + 2 * radius
    if side > preset.source_size:
        raise ValueError(
            f"crops of {canvas} px shifted by up to ±{radius} px need images of "
            f"{side} px; pass --source-size {side} or a smaller --robust-radius."
        )
    channels = work.images.image_shape[0]
    cropped = MappedImages(work.images, lambda x: centre_crop(x, side), (channels, side, side))
    found = shift_robust_accuracy(
        work.model, cropped, work.labels, grid, geometry=geometry, radius=radius,
        max_up=preset.robust_up, crop=canvas if geometry == "crop" else None,
        preprocess=work.preprocess, progress=work.progress,
    )  # fmt: skip
    keys = ("geometry", "radius", "max_up", "shifts", "images", "accuracy", "robust_accuracy")
    row = {"protocol": f"worst-{grid}-shift"} | {k: found[k] for k in keys}
    per_image = []
    for i, item in enumerate(found["items"].tolist()):
        dx, dy = found["first_failure"][i].tolist()
        per_image.append({
            "image": item, "grid": grid, "geometry": geometry,
            "correct": int(found["correct"][i]), "robust": int(found["robust"][i]),
            "first_failure_dx": "" if dx != dx else dx, "first_failure_dy": "" if dy != dy else dy,
        })  # fmt: skip
    return {"row": row, "per_image": per_image}


def write_per_step(path, results, ids) -> None:
    """per_step.csv from every protocol's (N, S) steps, streamed row by row (a
    50,000-image run has millions of rows; they are never all Python objects at once)."""
    import itertools

    from defstab.io.tables import write_csv_rows

    rows = itertools.chain.from_iterable(res.iter_per_step(ids, extra) for res, extra in results)
    first = next(rows)
    columns = list(first)
    write_csv_rows(path, columns, ([r[c] for c in columns] for r in itertools.chain([first], rows)))
