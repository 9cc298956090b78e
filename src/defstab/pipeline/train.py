"""Training end to end: the function behind ``defstab train`` and :func:`defstab.run`
with a :class:`~defstab.requests.train.TrainRequest`. The folder is the run's: same
settings resume from the last checkpoint, other settings are refused (or started over
with ``overwrite``)."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from defstab.pipeline.models import data_options
from defstab.pipeline.outcome import HIGHER, Metric, Outcome
from defstab.requests.model import DataOptions, ModelOptions
from defstab.requests.train import TrainRequest


@dataclass
class TrainOutcome(Outcome):
    """``result``: the :class:`~defstab.train.TrainResult` (its history per evaluation);
    ``config``: the folder's ``config.json``; ``out``: the train folder (``--run`` for
    every measuring command). ``rank``: this process's rank under torchrun (0 alone)."""

    request: TrainRequest
    result: Any
    config: dict
    out: Path
    main_process: bool = True

    def rows(self) -> list[dict]:
        return list(self.result.history)

    @property
    def metrics(self) -> list[Metric]:
        last = self.result.history[-1]
        return [Metric("test_accuracy", float(last["test_acc"]), "fraction correct", HIGHER,
                       None, f"at step {self.result.steps}")]  # fmt: skip

    def summary_lines(self) -> list[str]:
        last = self.result.history[-1]
        return [f"step {self.result.steps}: test accuracy {last['test_acc']:.3f}; "
                f"wrote {self.out}/history.csv and checkpoints/"]  # fmt: skip


def run_train(request: TrainRequest, *, model, data, out, device="auto", progress: bool = True,
              warn=None, given=None, record=None):  # fmt: skip
    """Train ``model`` (:class:`~defstab.requests.model.ModelOptions` or a model name: the
    folder records it, so that it can be resumed and measured) on ``data`` into the train
    folder ``out``. Returns a :class:`TrainOutcome`."""
    from defstab.pipeline.checks import check_options
    from defstab.pipeline.models import model_options
    from defstab.pipeline.outcome import check_out_folder, default_warn

    warn = warn or default_warn
    options = model_options(model)
    if options is None:
        raise ValueError(
            "train records its model by name, so that its folder resumes and can be measured "
            "(--run); give a model name or ModelOptions, not a module."
        )
    data = data_options(data)
    check_options("train", request, options, data, given)
    folder = check_out_folder(out)
    if not options.model:
        raise ValueError("give --model NAME (see 'defstab models').")
    if request.no_augment and request.augment_shift is not None:
        raise ValueError("--no-augment and --augment-shift contradict each other; give one.")
    return _train(request, options, data, folder, device, progress, warn)


def _train(request: TrainRequest, options: ModelOptions, data: DataOptions, out: Path, device,
           progress, warn) -> TrainOutcome:  # fmt: skip
    import torch

    from defstab.data.labels import with_random_labels
    from defstab.data.normalize import default_normalization, make_normalize
    from defstab.data.spec import DataSpec
    from defstab.data.splits import train_test_splits
    from defstab.io.atomic import write_json
    from defstab.io.provenance import versions
    from defstab.models.loading import build_model, model_family
    from defstab.pipeline.models import check_scores_cover, model_kwargs, use_class_scores
    from defstab.tap import pick_device
    from defstab.train import default_config, train
    from defstab.train import folder as run_folder

    spec = DataSpec.parse(data.data)
    device_name = device if isinstance(device, str) else str(device)
    device = pick_device(device) if isinstance(device, str) else device
    family = model_family(options.model)
    if family != "registry" and request.smooth_sigma:
        raise ValueError(f"--smooth-sigma applies to registry models only, not to {options.model}.")
    if request.download:
        from defstab.data.download import download

        download(spec.kind, request.download)
    train_data, test_data = train_test_splits(spec, data.image_size, request.seed,
                                              request.templates, request.per_class,
                                              request.regenerate)  # fmt: skip
    first = train_data.for_epoch(0) if hasattr(train_data, "for_epoch") else train_data
    if request.train_images is not None:
        if hasattr(train_data, "for_epoch"):
            raise ValueError("--train-images does not apply to synthetic data; use --per-class.")
        if request.train_images > len(train_data):
            raise ValueError(
                f"--train-images {request.train_images} exceeds the {len(train_data)} "
                "training images."
            )
        order = torch.Generator().manual_seed(request.seed)
        idx = torch.randperm(len(train_data), generator=order)
        train_data = first = train_data.subset(idx[: request.train_images])
    if request.random_labels:
        if hasattr(train_data, "for_epoch"):
            raise ValueError("--random-labels applies to fixed data sets, not regenerated tasks.")
        train_data = first = with_random_labels(train_data, request.seed)
    # the init seed defaults to --seed; --init-seed sets it apart (data order stays --seed);
    # the classifier gets one output per class of the data unless --num-classes says
    # (a file model decides its own outputs: checked against the classes below)
    if family != "file":
        from dataclasses import replace

        options = replace(options, num_classes=options.num_classes or len(first.classes))
    kwargs = model_kwargs(options, first.channels, seed=request.seed)
    if family == "registry":
        kwargs["smooth_sigma"] = request.smooth_sigma
    model = build_model(options.model, pretrained=options.pretrained, **kwargs)
    if request.init_from:
        _init_from(model, request.init_from)
    cfg = default_config(
        spec.kind,
        epochs=request.epochs,
        batch_size=request.batch_size,
        lr=request.lr,
        weight_decay=request.weight_decay,
        momentum=request.momentum,
        schedule=request.schedule,
        seed=request.seed,
        device=device_name,
        test_images=request.test_images,
        # asking for shifts asks for augmentation (synthetic and MNIST default to none)
        augment=False
        if request.no_augment
        else (True if request.augment_shift is not None else None),
        augment_shift=request.augment_shift,
        target_train_acc=request.target_train_acc,
        precision=request.precision,
    )
    # the precision used, not "auto", is what config.json records and a resume compares
    cfg, note = cfg.resolved(device)
    if note:
        print(f"defstab: {note}", file=sys.stderr)
    norm_name = data.normalize or default_normalization(family, spec)
    normalize = make_normalize(norm_name, first.channels)
    output = {}  # where the class scores sit in the model's output
    probe = first.images(torch.arange(min(2, len(first))))
    outputs = use_class_scores(model, normalize(probe) if normalize else probe,
                               options.output_key, output, finite=False)  # fmt: skip
    check_scores_cover(outputs, first, options.model)
    config = {
        "command": "train",
        "model": options.model,
        "model_kwargs": kwargs,
        "pretrained": options.pretrained,
        "init_from": request.init_from,
        "data": spec.record(),
        "data_name": first.name,
        "train_images": len(first),
        # the images each evaluation reads (a seeded subset with --test-images)
        "test_images": min(cfg.test_images or len(test_data), len(test_data)),
        "test_set_images": len(test_data),
        "random_labels": request.random_labels,
        "templates": request.templates,
        "normalize": norm_name,
        **output,
        "train": cfg.to_dict(),
        "versions": versions(),
    }
    # under torchrun, several processes train one network; only rank 0 writes
    from defstab.train.distributed import from_environment

    ddp = from_environment(device)
    if ddp is not None:
        import torch.distributed as dist

        device = ddp.device
        config["distributed"] = {"processes": ddp.world, "backend": dist.get_backend()}
    if ddp is None or ddp.is_main:
        # same settings resume; other settings stop here, before config.json is touched
        state = run_folder.prepare(out, config, request.overwrite)
        if state == "resume":
            print(f"resuming the run in {out} (same settings)", file=sys.stderr)
        write_json(out / "config.json", config)
    if ddp is not None:
        ddp.barrier()
    if normalize is not None:
        normalize = normalize.to(device)
    result = train(model, train_data, test_data, cfg, out=out, preprocess=normalize,
                   quiet=not progress)  # fmt: skip
    main_process = True
    if ddp is not None:
        import torch.distributed as dist

        ddp.barrier()
        dist.destroy_process_group()
        main_process = ddp.is_main
    if main_process:
        _write_section(out, config, result)
    return TrainOutcome(request, result, config, out, main_process)


def _init_from(model, source) -> None:
    """Load the weights to start from: a train folder's latest checkpoint, or a file."""
    from defstab.io.checkpoint import load_checkpoint
    from defstab.models.loading import load_run

    source = Path(source)
    if source.is_dir():
        trained, _ = load_run(source)
        model.load_state_dict(trained.state_dict())
    else:
        load_checkpoint(model, source)


def _write_section(out: Path, config: dict, result) -> None:
    """The run's page in ``defstab report``: the history figure and the last checkpoint."""
    from defstab.io.atomic import write_json
    from defstab.plotting.training import history_figure

    title = f"Training: {config['model']} on {config['data_name']}"
    history_figure(result.history, out / "history.png", title)
    last = result.history[-1]
    write_json(
        out / "section.json",
        {
            "section": "train",
            "title": title,
            "text": [
                f"{config['train_images']} training images, {config['train']['epochs']} epochs, "
                f"seed {config['train']['seed']}, {config['train']['precision']}; step "
                f"{result.steps}: test accuracy {last['test_acc']:.3f}."
            ],
            "figures": ["history.png"],
            "table_file": "history.csv",
            "table_columns": ["step", "epoch", "train_loss", "train_acc", "test_acc"],
        },
    )
