"""``defstab train``: train a model, recording stability and smoothness over training."""

from __future__ import annotations

import sys
from pathlib import Path

HELP = "train with checkpoints and a history of stability"  # one line in `defstab --help`


def add_parser(sub):
    from defstab.cli.common import add_model_args
    from defstab.train.precision import PRECISIONS

    p = sub.add_parser("train", help=HELP)
    add_model_args(p, checkpoint=False, scores=True)
    p.add_argument(
        "--data",
        required=True,
        help="cifar10:PATH, mnist:PATH, folder:PATH (with train/ and val/), "
        "a .pt/.npy file, or synthetic[:C] (the paper's deformation task)",
    )
    p.add_argument(
        "--templates",
        default=None,
        help="synthetic task templates: mnist:PATH (default: built-in font digits)",
    )
    p.add_argument("--per-class", type=int, default=500, help="synthetic: train images per class")
    p.add_argument("--regenerate", action="store_true", help="synthetic: new images every epoch")
    p.add_argument("--train-images", type=int, default=None, help="train on a seeded subset")
    p.add_argument("--test-images", type=int, default=None, help="evaluate on a seeded subset")
    p.add_argument(
        "--random-labels",
        action="store_true",
        help="replace train labels by uniform random labels fixed by --seed",
    )
    p.add_argument(
        "--download",
        metavar="ROOT",
        default=None,
        help="download CIFAR-10/MNIST into ROOT first (needs the internet)",
    )
    for name, typ in [
        ("epochs", int),
        ("batch-size", int),
        ("lr", float),
        ("weight-decay", float),
        ("momentum", float),
    ]:
        p.add_argument(f"--{name}", type=typ, default=None)
    p.add_argument("--schedule", choices=["cosine", "step"], default=None)
    p.add_argument("--no-augment", action="store_true", help="no random crop, no flip")
    p.add_argument(
        "--augment-shift",
        type=int,
        default=None,
        metavar="PX",
        help="random crop + flip with shifts of −PX…+PX pixels (zero padding; default 4, "
        "0 = flips only); turns augmentation on for data that defaults to none",
    )
    p.add_argument(
        "--target-train-acc",
        type=float,
        default=None,
        metavar="A",
        help="stop at the first epoch end whose training-set accuracy (eval mode) reaches A "
        "(e.g. 0.95 to memorise random labels); --epochs is then the cap",
    )
    p.add_argument("--smooth-sigma", type=float, default=0.0, help="registry models: smooth init")
    p.add_argument("--seed", type=int, default=0, help="data order, augmentation, probe (and init)")
    p.add_argument("--normalize", default=None, help="imagenet, cifar10, mnist or none")
    p.add_argument("--image-size", type=int, default=None)
    p.add_argument("--device", default="auto")
    p.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="auto",
        help="fp32, or bf16 autocast (CPUs with bf16 dot products, GPUs from Ampere on); "
        "auto (default) = bf16 where the device computes it, else fp32 (said on stderr). "
        "Recorded in config.json as the precision used",
    )
    p.add_argument(
        "--out", required=True, help="run folder (resumed if it holds this run's checkpoints)"
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="start over in a train folder that holds a run with other settings",
    )
    p.add_argument(
        "--init-from",
        metavar="RUN_OR_CHECKPOINT",
        default=None,
        help="start from these weights (a train folder's latest checkpoint, or a file), "
        "with a fresh schedule: how to train a finished network longer",
    )
    p.add_argument("--quiet", action="store_true")
    return p


def run(args) -> None:
    import torch

    from defstab.cli.common import (
        check_out_folder,
        check_scores_cover,
        model_kwargs,
        use_class_scores,
    )
    from defstab.data.labels import with_random_labels
    from defstab.data.normalize import default_normalization, make_normalize
    from defstab.data.spec import DataSpec
    from defstab.data.splits import train_test_splits
    from defstab.io.atomic import write_json
    from defstab.io.provenance import versions
    from defstab.models.loading import build_model, model_family
    from defstab.tap import pick_device
    from defstab.train import default_config, folder, train

    # everything a user can get wrong is checked before data is read or a step is taken
    out = check_out_folder(args.out)
    if not args.model:
        raise ValueError("give --model NAME (see 'defstab models').")
    if args.no_augment and args.augment_shift is not None:
        raise ValueError("--no-augment and --augment-shift contradict each other; give one.")
    data = DataSpec.parse(args.data)
    device = pick_device(args.device)
    family = model_family(args.model)
    if family != "registry" and args.smooth_sigma:
        raise ValueError(f"--smooth-sigma applies to registry models only, not to {args.model}.")
    if args.download:
        from defstab.data.download import download

        download(data.kind, args.download)
    train_data, test_data = train_test_splits(
        data, args.image_size, args.seed, args.templates, args.per_class, args.regenerate
    )
    first = train_data.for_epoch(0) if hasattr(train_data, "for_epoch") else train_data
    if args.train_images is not None:
        if hasattr(train_data, "for_epoch"):
            raise ValueError("--train-images does not apply to synthetic data; use --per-class.")
        if args.train_images > len(train_data):
            raise ValueError(
                f"--train-images {args.train_images} exceeds the {len(train_data)} training images."
            )
        idx = torch.randperm(len(train_data), generator=torch.Generator().manual_seed(args.seed))
        train_data = first = train_data.subset(idx[: args.train_images])
    if args.random_labels:
        if hasattr(train_data, "for_epoch"):
            raise ValueError("--random-labels applies to fixed data sets, not regenerated tasks.")
        train_data = first = with_random_labels(train_data, args.seed)
    # the init seed defaults to --seed; --init-seed sets it apart (data order stays --seed);
    # the classifier gets one output per class of the data unless --num-classes says
    # (a file model decides its own outputs: checked against the classes below)
    if family != "file":
        args.num_classes = args.num_classes or len(first.classes)
    kwargs = model_kwargs(args, first.channels, seed=args.seed)
    if family == "registry":
        kwargs["smooth_sigma"] = args.smooth_sigma
    model = build_model(args.model, pretrained=args.pretrained, **kwargs)
    if args.init_from:
        from defstab.io.checkpoint import load_checkpoint
        from defstab.models.loading import load_run

        source = Path(args.init_from)
        if source.is_dir():
            trained, _ = load_run(source)
            model.load_state_dict(trained.state_dict())
        else:
            load_checkpoint(model, source)
    cfg = default_config(
        data.kind,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        weight_decay=args.weight_decay,
        momentum=args.momentum,
        schedule=args.schedule,
        seed=args.seed,
        device=args.device,
        test_images=args.test_images,
        # asking for shifts asks for augmentation (synthetic and MNIST default to none)
        augment=False if args.no_augment else (True if args.augment_shift is not None else None),
        augment_shift=args.augment_shift,
        target_train_acc=args.target_train_acc,
        precision=args.precision,
    )
    # the precision used, not "auto", is what config.json records and a resume compares
    cfg, note = cfg.resolved(device)
    if note:
        print(f"defstab: {note}", file=sys.stderr)
    norm_name = args.normalize or default_normalization(family, data)
    normalize = make_normalize(norm_name, first.channels)
    output = {}  # where the class scores sit in the model's output
    probe = first.images(torch.arange(min(2, len(first))))
    outputs = use_class_scores(
        model, normalize(probe) if normalize else probe, args, output, finite=False
    )
    check_scores_cover(outputs, first, args.model)
    config = {
        "command": "train",
        "model": args.model,
        "model_kwargs": kwargs,
        "pretrained": args.pretrained,
        "init_from": args.init_from,
        "data": data.record(),
        "data_name": first.name,
        "train_images": len(first),
        # the images each evaluation reads (a seeded subset with --test-images)
        "test_images": min(cfg.test_images or len(test_data), len(test_data)),
        "test_set_images": len(test_data),
        "random_labels": args.random_labels,
        "templates": args.templates,
        "normalize": norm_name,
        **output,
        "train": cfg.to_dict(),
        "versions": versions(),
    }
    # under torchrun, several processes train one network; only rank 0 writes
    from defstab.train.distributed import from_environment

    ddp = from_environment(device)
    if ddp is not None:
        device = ddp.device
        config["distributed"] = {"processes": ddp.world, "backend": dist_backend()}
    if ddp is None or ddp.is_main:
        # same settings resume; other settings stop here, before config.json is touched
        state = folder.prepare(out, config, args.overwrite)
        if state == "resume":
            print(f"resuming the run in {out} (same settings)", file=sys.stderr)
        write_json(out / "config.json", config)
    if ddp is not None:
        ddp.barrier()
    if normalize is not None:
        normalize = normalize.to(device)
    result = train(
        model, train_data, test_data, cfg, out=out, preprocess=normalize, quiet=args.quiet
    )
    if ddp is not None:
        ddp.barrier()
        import torch.distributed as dist

        dist.destroy_process_group()
        if not ddp.is_main:
            return
    last = result.history[-1]
    _write_section(out, config, result)
    print(
        f"step {result.steps}: test accuracy {last['test_acc']:.3f}; "
        f"wrote {out}/history.csv and checkpoints/"
    )


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
                f"{result.steps}: test accuracy "
                f"{last['test_acc']:.3f}."
            ],
            "figures": ["history.png"],
            "table_file": "history.csv",
            "table_columns": ["step", "epoch", "train_loss", "train_acc", "test_acc"],
        },
    )


def dist_backend() -> str:
    import torch.distributed as dist

    return dist.get_backend()
