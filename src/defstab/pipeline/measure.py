"""The deformation-sensitivity protocol end to end: checks, model, images,
deformations, streaming, shards, the Lie derivative and the attacks, and the result
folder — the one function behind ``defstab measure`` and :func:`defstab.run`.

Every check that needs no data or model comes first, so a mistake is one sentence
before anything is read, computed or written.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from defstab.pipeline.models import data_options
from defstab.requests.fields import options_of
from defstab.requests.measure import MeasureRequest
from defstab.requests.model import DataOptions

#: where a measurement's shards live (resume files, outside the result's staging)
SHARDS = "shards"


@dataclass
class Execution:
    """Where and how a measurement runs (not what it measures): see :func:`run_measure`."""

    count: int
    shard: tuple[int, int] | None
    executor: object
    resume: bool
    device: object
    progress: bool
    warn: Callable[[str], None]
    record: dict | None
    given: dict[str, str]


def run_measure(
    request: MeasureRequest,
    *,
    model,
    data: DataOptions | str,
    out: str | os.PathLike | None = None,
    shards: int = 1,
    shard: tuple[int, int] | None = None,
    executor=None,
    resume: bool = True,
    device="auto",
    progress: bool = True,
    warn=None,
    given: dict[str, str] | None = None,
    record: dict | None = None,
):
    """Measure ``model`` on ``data`` as ``request`` says; returns a
    :class:`~defstab.pipeline.measure_outputs.MeasureOutcome`.

    Args:
        model: :class:`~defstab.requests.model.ModelOptions`, a model name (as
            ``--model``), or an ``nn.Module`` used as it is.
        data: :class:`~defstab.requests.model.DataOptions` or a data string (``--data``).
        out: the result folder, written whole or not at all (a staging folder swapped in);
            None: nothing is written (the outcome holds the numbers).
        shards: split the images over this many shards (``out/shards/``), run the missing
            ones on ``executor`` and merge them; ``resume=False`` computes every shard again.
        shard: (i, n): measure only shard i of n and write its file (a Slurm array task).
        executor: an :class:`~defstab.experiments.ExecutorConfig` for the shards (None:
            one after another in this process).
        warn: called with each warning's sentence (default: :func:`warnings.warn`).
        given: {field: option} the caller chose (the command line's; default: the
            fields that differ from their default), checked against where they apply.
        record: the request a result folder records for ``defstab rerun`` (the command
            line's; default: the command line that asks for this request).
    """
    from defstab.pipeline.outcome import default_warn

    warn = warn or default_warn
    data = data_options(data)
    if shard is not None and shards not in (1, shard[1]):
        raise ValueError(f"--shard {shard[0]}/{shard[1]} and --shards {shards} disagree; give one.")
    count = shard[1] if shard is not None else shards
    given = check_request(request, model, data, count, executor, given, shard is not None)
    how = Execution(count, shard, executor, resume, device, progress, warn, record, given)
    if out is None and (count > 1 or shard is not None):
        raise ValueError("shards are files in the result folder; give out=FOLDER.")
    if shard is not None:  # one shard: its file in the folder, and nothing else
        from defstab.io.result_folder import check_owner
        from defstab.pipeline.outcome import check_out_folder

        final = check_out_folder(out)
        check_owner(final, "measure")
        return _measure(request, model, data, final, final, how)
    from defstab.pipeline.folders import in_result_folder

    return in_result_folder(
        "measure",
        out,
        lambda folder, final: _measure(request, model, data, folder, final, how),
        keep=(SHARDS,),
    )


def check_request(request: MeasureRequest, model, data: DataOptions, shards: int, executor,
                  given: dict[str, str] | None, one_shard: bool = False) -> dict:  # fmt: skip
    """Every check that needs no data and no model: each option where it applies and in
    its range (the same tables as the command line's), and the measurement's own
    conditions. One sentence for the first that fails. Returns ``given``: the options
    chosen (the fields changed from their defaults when None)."""
    from defstab.measure.normalizers import check_normalizer
    from defstab.pipeline.checks import check_options

    executed = {"shards": shards, "executor": executor.kind if executor else "local",
                "workers": executor.workers if executor else 1}  # fmt: skip
    given = check_options("measure", request, model, data, given, **executed)
    check_normalizer(request.normalizer)
    if request.images < 2:
        raise ValueError(f"--images must be at least 2, got {request.images}.")
    check_lie_options(request, one_shard)
    if request.aggregate == "median" and (shards > 1 or request.no_noise):
        raise ValueError(
            "--aggregate median needs every image in one process and the noise control; "
            "drop --shards/--shard/--no-noise."
        )
    if shards > 1:
        if request.normalizer == "exact":
            raise ValueError(
                "--shards needs the sampled normalizer (the exact median needs every image in "
                "one process); drop --normalizer exact."
            )
        if shards > request.images // 2:
            raise ValueError(
                f"--shards {shards} is more than the {request.images // 2} pairs of "
                f"{request.images} images; use fewer shards."
            )
        if request.min_flip:
            raise ValueError("--min-flip is not sharded; run it without --shards.")
        check_shard_chunks(shards, request.images, request.batch_size)
    if request.force_replay and request.deformations is None:
        raise ValueError("--force-replay goes with --deformations FILE; give the file.")
    sized = ("grid", "max_disp", "temperature", "displacement", "cut")
    if request.deformations is not None and any(getattr(request, k) is not None for k in sized):
        raise ValueError(
            "--deformations replays saved deformations; drop --grid/--max-disp/--temperature/"
            "--displacement/--cut."
        )
    if request.worst_case and request.deformations is not None:
        raise ValueError("--worst-case attacks within the random budget; drop --deformations.")
    check_deformation_options(request)
    if not data.data:
        raise ValueError("give the data (--data, or data= in Python).")
    return given


def check_shard_chunks(shards: int, images: int, batch_size: int | None) -> None:
    """Shards split the chunks of ``batch_size`` images (at most 64 when not given), so
    there must be a chunk per shard: said before any model is loaded, with the fix."""
    chunk = batch_size or 64
    chunks = math.ceil(images / chunk)
    if shards > chunks:
        most = max(1, images // shards)
        raise ValueError(
            f"--shards {shards} needs {shards} chunks of images, and {images} images make "
            f"{chunks} chunk(s) of {'--batch-size ' if batch_size else 'up to '}{chunk}; give "
            f"--batch-size {most} or fewer (or at most {chunks} shard(s))."
        )


def check_lie_options(request: MeasureRequest, one_shard: bool = False) -> tuple[str, ...]:
    """The Lie derivative's transforms (empty without it); one sentence for an unknown
    name, a count beyond the images, or a run of one shard (the merging run computes it)."""
    from defstab.measure.lie_actions import parse_transforms

    if request.lie_derivative is None:
        if request.lie_images is not None or request.no_lie_contributions:
            raise ValueError(
                "--lie-images and --no-lie-contributions go with --lie-derivative TRANSFORMS."
            )
        return ()
    transforms = parse_transforms(request.lie_derivative)
    if one_shard:
        raise ValueError(
            "--lie-derivative runs where the shards are merged; drop it from --shard runs "
            "and give it to the --shards run."
        )
    if request.lie_images is not None and not 1 <= request.lie_images <= request.images:
        raise ValueError(
            f"--lie-images must be between 1 and --images ({request.images}), got "
            f"{request.lie_images}."
        )
    return transforms


def check_deformation_options(request: MeasureRequest) -> None:
    """One sentence for options of the other deformation family, or a search that works
    on TPS only."""
    diffeo_only = [("--temperature", request.temperature),
                   ("--displacement", request.displacement), ("--cut", request.cut)]  # fmt: skip
    if request.deformation == "tps":
        given = [name for name, v in diffeo_only if v is not None]
        if given:
            raise ValueError(f"{', '.join(given)} apply to --deformation diffeo; add it.")
        return
    given = [name for name, v in (("--grid", request.grid), ("--max-disp", request.max_disp))
             if v is not None]  # fmt: skip
    if given:
        raise ValueError(f"{', '.join(given)} apply to TPS deformations, not to diffeo.")
    if request.temperature is not None and request.displacement is not None:
        raise ValueError("give --temperature or --displacement, not both (each sets T).")
    if request.worst_case or request.min_flip:
        raise ValueError(
            "--worst-case and --min-flip search TPS deformations; use them without "
            "--deformation diffeo."
        )


def sized_default(name: str, side: int):
    """The default of request field ``name`` for images of ``side`` px (its metadata)."""
    (opt,) = [o for f, o in options_of(MeasureRequest) if f.name == name]
    return opt.sized.at(side)


def _measure(request, model, data, out, final, how: Execution):
    """The measurement once the request holds; ``out``: where files go (the staging
    folder), ``final``: the folder they become (shards live there; messages name it)."""
    import torch

    from defstab.data.sources import load_data
    from defstab.data.spec import DataSpec
    from defstab.data.stream import DatasetImages
    from defstab.measure import measure_sensitivity
    from defstab.measure.normalizers import resolve_normalizer
    from defstab.models.loading import native_input_size
    from defstab.pipeline import measure_outputs as outputs
    from defstab.pipeline import shards as sharding
    from defstab.pipeline.models import (
        choose_normalization,
        make_preprocess,
        model_options,
        resolve_model,
        use_class_scores,
    )
    from defstab.tap import pick_device

    count, shard, executor, warn, progress = (
        how.count, how.shard, how.executor, how.warn, how.progress)  # fmt: skip
    normalizer = resolve_normalizer("sampled" if count > 1 else request.normalizer, request.images)
    lie_transforms = check_lie_options(request)
    replay = outputs.read_deformations(request.deformations) if request.deformations else None
    device = pick_device(how.device) if isinstance(how.device, str) else how.device
    data_spec = DataSpec.parse(data.data)
    data_probe = load_data(data_spec, data.split, image_size=data.image_size)
    net, model_settings = resolve_model(model, in_channels=data_probe.channels)
    size = data.image_size or native_input_size(net, str(model_settings["model"]))
    if data_probe.paths is not None and data_probe.image_size is None:
        data_probe.image_size = size
    gen = torch.Generator().manual_seed(request.seed)
    # the images are read chunk by chunk while measured (a whole data set never is in
    # memory at once); `sample` would draw the same indices from the generator
    indices = data_probe.draw(request.images, gen)
    drawn = gen.get_state()  # every shard measured here starts where a fresh process would
    labels = data_probe.labels[indices]
    source = DatasetImages(data_probe, indices, workers=request.read_workers)
    outputs.warn_if_resized(data_probe, size, warn)
    h = source.image_shape[-1]
    drawn_for = {  # what the deformations are drawn for, recorded beside them
        "data": outputs.data_identity(data_spec),
        "images": [int(i) for i in indices],
        "image_size": [int(source.image_shape[-2]), int(h)],
        "seed": request.seed,
    }
    deformation = _deformation(request, replay, source, drawn_for, how.given, warn)
    worst_case = None
    if request.worst_case:
        from defstab.measure.worst_case import WorstCaseTPS

        worst_case = WorstCaseTPS.like(
            deformation,
            steps=request.attack_steps,
            restarts=request.attack_restarts,
            layer=request.attack_layer,
            objective=request.attack_objective,
        )
    normalization = choose_normalization(data.normalize, model_settings, data_spec)
    preprocess = make_preprocess(normalization, source.image_shape[0], device)
    net = net.to(device)
    options = model_options(model)
    output_key = options.output_key if options is not None else None
    if request.reads_class_scores:
        probe = data_probe.images(indices[:2]).to(device)
        use_class_scores(net, preprocess(probe) if preprocess else probe, output_key,
                         model_settings)  # fmt: skip
    elif output_key is not None:
        raise ValueError(
            "--output-key names the class scores, which measure reads only with "
            "--worst-case, --min-flip or --lie-derivative; drop it."
        )

    def measure(part=None):
        gen.set_state(drawn)
        return measure_sensitivity(
            net,
            source,
            deformation,
            layers=request.layers,
            distance=request.distance,
            generator=gen,
            noise_control=not request.no_noise,
            preprocess=preprocess,
            batch_size=request.batch_size,
            store_bytes=int(request.ram_budget * 2**30),
            progress=progress,
            tokens=request.tokens,
            worst_case=worst_case,
            normalizer=normalizer,
            shard=part,
            aggregate=request.aggregate,
        )

    settings = sharding.shard_settings(request, model, data)
    if shard is not None:
        parts = measure(shard)
        parts.meta["settings"] = settings
        path = parts.save(sharding.shard_file(final, *shard))
        return outputs.ShardOutcome(path, parts.positions)
    if count > 1:
        if options is None and executor is not None and not executor.in_process:
            raise ValueError(
                "a model given as a Python object is measured in this process; give it by "
                "name (ModelOptions) to run shards in worker processes."
            )
        if not how.resume:
            for i in range(count):
                sharding.shard_file(final, i, count).unlink(missing_ok=True)
        found = sharding.load_shards(final, count, settings, warn)
        missing = [i for i in range(count) if i not in found]
        if missing:
            if found and progress:
                print(f"{len(found)} of {count} shards are done; running the other {len(missing)}")
            if options is None:  # an object: here, one shard after another
                for i in missing:
                    parts = measure((i, count))
                    parts.meta["settings"] = settings
                    parts.save(sharding.shard_file(final, i, count))
            else:
                payload = {"request": asdict(sharding.without_merge_only(request)),
                           "model": asdict(options), "data": asdict(data),
                           "out": str(final)}  # fmt: skip
                sharding.run_missing(payload, final, missing, count, executor, device,
                                     progress, warn)  # fmt: skip
            found = sharding.load_shards(final, count, settings, warn)
        from defstab.measure.shards import merge_shards

        result = merge_shards([found[i] for i in range(count)])
        result.meta.pop("settings", None)
    else:
        result = measure()
    lie = None
    if lie_transforms:
        from defstab.measure.lie import lie_derivatives

        lie = lie_derivatives(
            net,
            DatasetImages(
                data_probe,
                indices[: request.lie_images or len(indices)],
                workers=request.read_workers,
            ),  # fmt: skip
            lie_transforms,
            layers=result.layers[1:],
            preprocess=preprocess,
            contributions=not request.no_lie_contributions,
            batch_size=request.batch_size,
            progress=progress,
            convention=request.lie_derivative_convention,
        )
    flip = None
    if request.min_flip:
        images = data_probe.images(indices)  # the attack needs them all at once
        flip = outputs.minimal_flips(request, net, images, preprocess, deformation)
    outcome = outputs.MeasureOutcome(
        request=request,
        result=result,
        model_settings=model_settings,
        data=data,
        data_spec=data_spec,
        data_name=data_probe.name,
        indices=indices,
        labels=labels,
        image_size=h,
        normalization=normalization,
        device=str(device),
        lie=lie,
        flip=flip,
        worst_case=worst_case,
        drawn_for=drawn_for,
        out=final,
    )
    for layer, note in result.meta["tuple_outputs"].items():
        warn(f"layer {layer} returns a tuple; its {note} is measured.")
    inferred = [n for n, s in result.meta["stride_sources"].items() if s == "inferred"]
    if inferred:
        from defstab.models.strides import STRIDES_INFERRED

        warn(STRIDES_INFERRED.format(layers=", ".join(dict.fromkeys(inferred))))
    if out is not None:
        from defstab.pipeline.folders import request_record

        shards_argv = ["--shards", str(count)] if count > 1 else []
        outputs.write_outputs(outcome, Path(out), data_probe, warn, request_record(
            "measure", request, model, data, shards_argv, how.record))  # fmt: skip
    return outcome


def _deformation(request, replay, source, drawn_for, given, warn):
    """The deformations to draw (a spec), or to replay (saved parameters)."""
    from defstab.deform import DeformationSpec

    side = int(source.image_shape[-1])
    if replay is None:
        if request.deformation == "diffeo":
            displacement = request.displacement
            if request.temperature is None and displacement is None:
                displacement = 1.0
            return DeformationSpec.diffeo(
                tuple(source.image_shape[-2:]), request.cut or 3, request.temperature,
                displacement,
            )  # fmt: skip
        grid = request.grid if request.grid is not None else sized_default("grid", side)
        max_disp = request.max_disp
        if max_disp is None:
            max_disp = sized_default("max_disp", side)
        return DeformationSpec.for_images(side, grid, float(max_disp))
    from defstab.io.replay import check_replay

    saved = (replay.record or {}).get("deformation") or {}
    holds = "diffeo" if saved.get("kind") == "diffeo" else "tps"  # TPS: "random_tps"
    if "deformation" in given and request.deformation != holds:
        raise ValueError(
            f"--deformations {request.deformations} holds {holds} deformations, not "
            f"{request.deformation}; drop --deformation (the file says what it holds) or "
            f"give a file of {request.deformation} deformations."
        )
    deformation = replay.params
    if saved.get("kind") == "diffeo":  # coefficients, not TPS displacements
        from defstab.measure.deformations import diffeo_replay

        deformation = diffeo_replay(
            DeformationSpec.from_record(saved), replay.params, tuple(source.image_shape[-2:])
        )
    if replay.params.shape[0] != request.images:
        raise ValueError(
            f"--deformations holds {replay.params.shape[0]} deformations; pass --images "
            f"{replay.params.shape[0]} (and the --seed it was saved with) to replay them."
        )
    forced = check_replay(replay, drawn_for, force=request.force_replay)
    if forced:
        warn(f"--force-replay: {'; '.join(forced)}; the deformations are replayed anyway.")
    return deformation
