"""ImageNet-P's measures over perturbation sequences made on the fly (Hendrycks &
Dietterich 2019) end to end: the function behind ``defstab perturb`` and
:func:`defstab.run` with a :class:`~defstab.requests.perturb.PerturbRequest`."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from defstab.pipeline.models import data_options
from defstab.pipeline.outcome import LOWER, Metric, Outcome, final_path, table_summary
from defstab.requests.perturb import PerturbRequest


@dataclass
class PerturbOutcome(Outcome):
    """``summary``: summary.csv's rows (one per perturbation, and the mean flip rate with
    a baseline); ``per_video``: per_video.csv's rows; ``settings``: per role ("model",
    "baseline") its settings and normalisation."""

    request: PerturbRequest
    summary: list[dict]
    per_video: list[dict]
    settings: dict
    normalizations: dict
    data_name: str
    skipped: int = 0
    out: Path | None = None
    written: list[str] = field(default_factory=list)

    def rows(self) -> list[dict]:
        return self.summary

    @property
    def metrics(self) -> list[Metric]:
        """Per perturbation: the flip probability (and the flip rate with a baseline)."""
        found = []
        for row in self.summary:
            name = row["perturbation"]
            if "fp" in row:
                found.append(Metric(f"fp_{name}", row["fp"], "fraction of frame pairs", LOWER,
                                    None, "flip probability"))  # fmt: skip
            if "fr" in row:
                found.append(Metric(f"fr_{name}", row["fr"], "× the baseline's FP", LOWER, None,
                                    "flip rate"))  # fmt: skip
        return found

    def summary_lines(self) -> list[str]:
        return table_summary(self.settings["model"], self.normalizations, self.summary,
                             self.out, self.written)  # fmt: skip


def run_perturb(request: PerturbRequest, *, model, data, out=None, device="auto",
                progress: bool = True, warn=None, given=None, record=None):  # fmt: skip
    """Measure ``model`` (and the request's baseline) on perturbation sequences of
    ``data``'s images; ``model`` and ``data`` as for
    :func:`~defstab.pipeline.measure.run_measure`. Returns a :class:`PerturbOutcome`."""
    from defstab.pipeline.checks import check_options
    from defstab.pipeline.folders import in_result_folder
    from defstab.pipeline.outcome import default_warn

    warn = warn or default_warn
    data = data_options(data)
    check_options("perturb", request, model, data, given)
    request.perturbation_list()
    request.baseline()
    return in_result_folder("perturb", out, lambda folder, final: _perturb(
        request, model, data, folder, final, device, progress, warn, record))  # fmt: skip


def _perturb(request, model, data, out, final, device, progress, warn, record):
    import torch

    from defstab.data.sources import load_data
    from defstab.data.spec import DataSpec
    from defstab.data.stream import DatasetImages, MappedImages
    from defstab.models.loading import native_input_size
    from defstab.pipeline.models import (
        choose_normalization,
        make_preprocess,
        model_options,
        resolve_model,
        use_class_scores,
    )
    from defstab.tap import pick_device
    from defstab.translate.protocols import resize
    from defstab.translate.sequences import NOISES, get_sequence_preset

    perturbations = request.perturbation_list()
    preset = get_sequence_preset(request.preset)
    baseline = request.baseline()
    device = pick_device(device) if isinstance(device, str) else device
    data_spec = DataSpec.parse(data.data)
    source_data = load_data(data_spec, data.split, image_size=None)
    if len(source_data.classes) < 2:
        raise ValueError("perturb compares top-1 classes; the data must be a classification set.")
    networks = {"model": resolve_model(model, in_channels=source_data.channels)}
    keys = {"model": (model_options(model).output_key if model_options(model) else None)}
    if baseline is not None:
        networks["baseline"] = resolve_model(baseline, in_channels=source_data.channels)
        keys["baseline"] = None
    gen = torch.Generator().manual_seed(request.seed)
    ids = source_data.draw(request.images, gen)
    ragged = source_data.paths is not None and preset.crop is not None
    if source_data.paths is not None and preset.source_size is not None:
        source_data.image_size = preset.source_size
        # the whole short-side-resized image is perturbed and cropped after, as the
        # authors' make_imagenet_p.py does: its aspect is kept
        source_data.keep_aspect = ragged
    images = DatasetImages(source_data, ids, workers=request.read_workers)
    channels, height, width = images.image_shape
    if width != height and not ragged:
        raise ValueError(
            f"perturb makes square frames and these images are {width}×{height} px (W×H); "
            "give them as folder:PATH (resized and centre-cropped)."
        )
    source = preset.source_size or width
    if width != source and not ragged:
        if source > 2 * width or width > 2 * source:
            warn(f"images of {width} px are resized ×{source / width:.2g} to {source} px for "
                 f"the {request.preset} preset.")  # fmt: skip
        images = MappedImages(images, lambda x: resize(x, source), (channels, source, source))
    side = preset.crop or source
    pres, settings_of, normalizations = {}, {}, {}
    for role, (net, settings) in networks.items():
        net = net.to(device).eval()
        name = settings["model"]
        native = native_input_size(net, str(name))
        if native is not None and native != side:
            warn(f"{name} takes {native}-px inputs; the {request.preset} frames are {side} px.")
        asked = data.normalize if role == "model" else None  # the baseline: its own
        chosen = choose_normalization(asked, settings, data_spec)
        pre = make_preprocess(chosen, channels, device)
        probe = torch.rand(2, channels, side, side, generator=torch.Generator().manual_seed(0))
        probe = probe.to(device)
        try:
            use_class_scores(net, pre(probe) if pre is not None else probe, keys[role], settings)
        except (RuntimeError, ValueError) as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise ValueError(
                f"the {role} {name} cannot take {channels}×{side}×{side} frames ({first})."
            ) from None
        networks[role] = (net, settings)
        pres[role] = pre
        normalizations[role] = chosen
        settings_of[role] = settings | {"normalize": chosen.name}
    per_video = _sequences(networks, pres, images, perturbations, preset, request, device,
                           progress)  # fmt: skip
    summary = _summary(per_video, perturbations, preset, request, networks, NOISES)
    rows = []
    for pert in perturbations:
        for i, item in enumerate(per_video[pert]["items"].tolist()):
            row = {"perturbation": pert, "image": int(ids[item])}
            for role in networks:
                prefix = "" if role == "model" else "baseline_"
                for key in ("fp", "t5d"):
                    row[prefix + key] = float(per_video[pert][role][key][i])
            rows.append(row)
    outcome = PerturbOutcome(
        request,
        summary,
        rows,
        settings_of,
        normalizations,
        source_data.name,
        out=final_path(final),
    )
    if out is not None:
        from defstab.pipeline.folders import request_record
        from defstab.pipeline.outcome import write_skipped

        outcome.skipped = write_skipped(images.skipped, ids, Path(out),
                                        request.images - len(images.skipped), warn,
                                        outcome.out)  # fmt: skip
        _write(outcome, Path(out), data_spec, preset, ragged,
               request_record("perturb", request, model, data, [], record))  # fmt: skip
    return outcome


def _summary(per_video, perturbations, preset, request, networks, noises) -> list[dict]:
    summary = []
    for pert in perturbations:
        row = {"perturbation": pert, "preset": request.preset, "difficulty": request.difficulty,
               "frames": preset.frames(pert), "videos": len(per_video[pert]["model"]["fp"]),
               "noise": pert in noises}  # fmt: skip
        for role in networks:
            for key in ("fp", "t5d"):
                row[key if role == "model" else f"baseline_{key}"] = float(
                    per_video[pert][role][key].mean()
                )
        if "baseline" in networks:
            from defstab.translate.flips import flip_rate

            row["fr"] = flip_rate(row["fp"], row["baseline_fp"])
            row["t5d_ratio"] = flip_rate(row["t5d"], row["baseline_t5d"])
        summary.append(row)
    if "baseline" in networks:
        rates = [r["fr"] for r in summary if math.isfinite(r["fr"])]
        summary.append({"perturbation": "mean", "preset": request.preset,
                        "difficulty": request.difficulty,
                        "fr": sum(rates) / len(rates) if rates else float("nan")})  # fmt: skip
    return summary


def _write(outcome: PerturbOutcome, out: Path, data_spec, preset, ragged, record) -> None:
    from defstab.io.atomic import write_json
    from defstab.io.provenance import versions
    from defstab.io.tables import write_csv
    from defstab.pipeline.models import weights_caveat
    from defstab.plotting.perturbation import flip_figure

    request, settings_of = outcome.request, outcome.settings
    write_csv(out / "summary.csv", outcome.summary)
    write_csv(out / "per_video.csv", outcome.per_video)
    caveat = weights_caveat(settings_of["model"])
    mark = " — RANDOM WEIGHTS" if caveat else ""
    title = f"{settings_of['model']['model']}: ImageNet-P measures ({request.preset}){mark}"
    flip_figure(outcome.summary, out / "flips.png", title)
    write_json(
        out / "config.json",
        {
            "command": "perturb",
            **settings_of["model"],
            "normalize_rule": outcome.normalizations["model"].reason,
            "baseline": settings_of.get("baseline"),
            "data": data_spec.record(),
            "images": request.images,
            "preset": preset.record(),
            "perturbations": request.perturbation_list(),
            "difficulty": request.difficulty,
            "centre": request.centre,
            "source_images": "short side resized to the preset's source size, aspect kept, "
            "perturbed whole, centre-cropped after"
            if ragged
            else "square",
            "seed": request.seed,
            "versions": versions(),
            "request": record,
        },
    )
    base_name = settings_of.get("baseline", {}).get("model")
    write_json(
        out / "section.json",
        {
            "section": "perturb",
            "title": f"Perturbation sequences: {settings_of['model']['model']} on "
            f"{outcome.data_name}",
            "caveats": [caveat] if caveat else [],
            "text": [
                f"Weights: {settings_of['model']['weights']}. {request.images} videos, one per "
                f"image; {request.preset} generation parameters, difficulty "
                f"{request.difficulty}; frames made on the fly (not the published H.264 "
                "videos); rotations and "
                + (
                    "scalings about (w/2 + ½, h/2 + ½), as the 2018 torchvision that made them."
                    if request.centre == "authors"
                    else "scalings about (w/2, h/2) (today's torchvision, not the published "
                    "videos' centre)."
                ),
                "FP: the fraction of compared frame pairs whose top-1 class differs, per video "
                "then over videos; T5D: ImageNet-P's top-5 distance; "
                + (
                    f"FR = FP / FP of the baseline {base_name} on the same sequences."
                    if base_name
                    else "no baseline was given, so no flip rate."
                )
                + f" Frames normalised with {outcome.normalizations['model'].describe()}.",
            ],
            "figures": ["flips.png"],
            "table_file": "summary.csv",
        },
    )
    outcome.written = ["summary.csv", "per_video.csv"] + (["skipped.csv"] if outcome.skipped
                                                         else []) + [
        "flips.png", "config.json", "section.json"]  # fmt: skip


def _sequences(networks, pres, images, perturbations, preset, request, device, progress) -> dict:
    """Per perturbation and network: per-video FP and T5D ((N,) each), chunk by chunk."""
    import torch

    from defstab.models.outputs import class_scores
    from defstab.tap import evaluation_mode, run_checked
    from defstab.translate.flips import sequence_measures
    from defstab.translate.sequences import NOISES, make_sequence

    noise_gen = torch.Generator().manual_seed(request.seed + 1)
    found = {p: {"items": [], **{r: {"fp": [], "t5d": []} for r in networks}}
             for p in perturbations}  # fmt: skip
    chunks = images.batches(None, 16)
    if progress:
        from defstab.progress import progress as bar

        chunks = bar(chunks, total=-(-len(images) // 16), desc="videos", unit="chunk",
                     leave=False)  # fmt: skip
    with torch.no_grad():
        for positions, x in chunks:
            for pert in perturbations:
                frames, _ = make_sequence(x, pert, preset, request.difficulty, noise_gen,
                                          centre=request.centre)  # fmt: skip
                n, f = frames.shape[:2]
                flat = frames.flatten(0, 1)
                found[pert]["items"].append(positions)
                for role, (net, _) in networks.items():
                    scores = []
                    with evaluation_mode(net):
                        for i in range(0, flat.shape[0], 128):
                            batch = flat[i : i + 128].to(device)
                            if pres[role] is not None:
                                batch = pres[role](batch)
                            scores.append(class_scores(run_checked(net, batch)).float().cpu())
                    logits = torch.cat(scores).view(n, f, -1)
                    step = 1 if pert in NOISES else request.difficulty
                    got = sequence_measures(logits, step, pert in NOISES)
                    for key in ("fp", "t5d"):
                        found[pert][role][key].append(got[key])
    for pert in perturbations:
        found[pert]["items"] = torch.cat(found[pert]["items"])
        for role in networks:
            for key in ("fp", "t5d"):
                found[pert][role][key] = torch.cat(found[pert][role][key])
    return found
