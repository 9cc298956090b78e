"""Accuracy under rotations and translations (Engstrom et al. 2019) end to end: the
function behind ``defstab spatial`` and :func:`defstab.run` with a
:class:`~defstab.requests.spatial.SpatialRequest`."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from defstab.pipeline.models import data_options
from defstab.pipeline.outcome import HIGHER, Metric, Outcome, final_path, table_summary
from defstab.requests.spatial import SpatialRequest


@dataclass
class SpatialOutcome(Outcome):
    """``summary``: summary.csv's row; ``per_image``: per_image.csv's rows; ``request``,
    ``model_settings``, ``normalization``: what produced them; ``out``: the folder."""

    request: SpatialRequest
    summary: dict
    per_image: list[dict]
    model_settings: dict
    normalization: Any
    data_name: str
    out: Path | None = None
    written: list[str] = field(default_factory=list)

    def rows(self) -> list[dict]:
        return [self.summary]

    @property
    def metrics(self) -> list[Metric]:
        """The four accuracies (fractions of the images classified correctly)."""
        tries = next(k for k in self.summary if k.startswith("worst_of_"))
        return [
            Metric(name, float(self.summary[key]), "fraction correct", HIGHER, None, words)
            for name, key, words in (
                ("natural_accuracy", "natural", "the images as they are"),
                ("random_accuracy", "random", "one random rotation and translation each"),
                ("worst_of_k_accuracy", tries, f"the worst of {tries.split('_')[-1]} draws"),
                ("grid_accuracy", "grid", "the worst of the whole grid"),
            )
        ]

    def summary_lines(self) -> list[str]:
        return table_summary(self.model_settings, {"": self.normalization}, [self.summary],
                             self.out, self.written)  # fmt: skip


def run_spatial(request: SpatialRequest, *, model, data, out=None, device="auto",
                progress: bool = True, warn=None, given=None, record=None):  # fmt: skip
    """Measure ``model``'s accuracy on ``data`` under Engstrom et al.'s rotations and
    translations as ``request`` says; ``model`` and ``data`` as for
    :func:`~defstab.pipeline.measure.run_measure`. Returns a :class:`SpatialOutcome`."""
    from defstab.pipeline.checks import check_options
    from defstab.pipeline.folders import in_result_folder

    data = data_options(data)
    check_options("spatial", request, model, data, given)
    return in_result_folder(
        "spatial",
        out,
        lambda folder, final: _spatial(
            request, model, data, folder, final, device, record
        ),  # fmt: skip
    )


def _spatial(request, model, data, out, final, device, record):
    import torch

    from defstab.data.sources import load_data
    from defstab.data.spec import DataSpec
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
    from defstab.translate.spatial import get_spatial_preset, spatial_accuracy

    device = pick_device(device) if isinstance(device, str) else device
    data_spec = DataSpec.parse(data.data)
    source = load_data(data_spec, data.split, image_size=data.image_size)
    if len(source.classes) < 2:
        raise ValueError("spatial measures accuracy; the data must be a classification set.")
    net, settings = resolve_model(model, in_channels=source.channels)
    net = net.to(device).eval()
    size = data.image_size or native_input_size(net, str(settings["model"]))
    if source.paths is not None and source.image_size is None:
        source.image_size = size
    gen = torch.Generator().manual_seed(request.seed)
    ids = source.draw(request.images, gen)
    images, labels = source.images(ids), source.labels[ids]
    side = images.shape[-1]
    if images.shape[-2] != side:
        raise ValueError(
            f"spatial transforms take square images; these are {side}×{images.shape[-2]} px "
            "(W×H): give them as folder:PATH (resized and centre-cropped)."
        )
    preset = get_spatial_preset(request.preset or ("engstrom-cifar" if side <= 64 else
                                                   "engstrom-imagenet"))  # fmt: skip
    normalization = choose_normalization(data.normalize, settings, data_spec)
    pre = make_preprocess(normalization, images.shape[1], device)
    probe = images[:2].to(device)
    options = model_options(model)
    output_key = options.output_key if options is not None else None
    scores = use_class_scores(net, pre(probe) if pre is not None else probe, output_key, settings)
    check_scores_cover(scores, source, settings["model"])
    found = spatial_accuracy(net, images, labels, preset, gen, pre)
    summary = {
        "preset": preset.name,
        "images": len(ids),
        "natural": found["natural"],
        "random": found["random"],
        f"worst_of_{preset.tries}": found["worst_of_k"],
        "grid": found["grid"],
        "transforms": found["transforms"],
        "weights": settings["weights"],
    }
    per_image = [
        {
            "image": int(ids[i]),
            "label": int(labels[i]),
            "natural": int(found["correct_natural"][i]),
            "random": int(found["correct_random"][i]),
            "worst_of_k": int(found["correct_worst_of_k"][i]),
            "grid": int(found["correct_grid"][i]),
            "worst_angle": float(found["worst"][i, 0]),
            "worst_dx": float(found["worst"][i, 1]),
            "worst_dy": float(found["worst"][i, 2]),
        }
        for i in range(len(ids))
    ]
    outcome = SpatialOutcome(request, summary, per_image, settings, normalization, source.name,
                             final_path(final))  # fmt: skip
    if out is not None:
        from defstab.pipeline.folders import request_record

        _write(outcome, Path(out), data, data_spec, preset, side, found, str(device),
               request_record("spatial", request, model, data, [], record))  # fmt: skip
    return outcome


def _write(outcome, out, data, data_spec, preset, side, found, device, record) -> None:
    from defstab.io.atomic import write_json
    from defstab.io.provenance import versions
    from defstab.io.tables import write_csv
    from defstab.pipeline.models import weights_caveat

    settings, request = outcome.model_settings, outcome.request
    write_csv(out / "summary.csv", [outcome.summary])
    write_csv(out / "per_image.csv", outcome.per_image)
    write_json(
        out / "config.json",
        {"command": "spatial", **settings, "data": data_spec.record(), "images": request.images,
         "image_size": side, "normalize": outcome.normalization.name,
         "normalize_rule": outcome.normalization.reason, "preset": preset.record(),
         "seed": request.seed, "device": device, "versions": versions(),
         "request": record},
    )  # fmt: skip
    caveat = weights_caveat(settings)
    write_json(
        out / "section.json",
        {
            "section": "spatial",
            "title": f"Rotations and translations: {settings['model']} on {outcome.data_name}",
            "caveats": [caveat] if caveat else [],
            "text": [
                f"Weights: {settings['weights']}. {outcome.summary['images']} images; preset "
                f"{preset.name}: rotations within ±{preset.rotation:g}°, translations within "
                f"±{preset.max_shift(side):g} px; worst of {preset.tries} random draws (by "
                f"cross-entropy) and of the {found['transforms']}-transform grid "
                f"(Engstrom et al. 2019). Images normalised with "
                f"{outcome.normalization.describe()}.",
            ],
            "figures": ["spatial.png"],
            "table_file": "summary.csv",
        },
    )
    from defstab.plotting.perturbation import spatial_figure

    mark = " — RANDOM WEIGHTS" if caveat else ""
    spatial_figure(outcome.summary, preset.tries, out / "spatial.png",
                   f"{settings['model']}: {preset.name}{mark}")  # fmt: skip
    outcome.written = ["summary.csv", "per_image.csv", "spatial.png", "config.json",
                       "section.json"]  # fmt: skip
