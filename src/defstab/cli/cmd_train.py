"""``defstab train``: train a model, recording stability and smoothness over training."""

from __future__ import annotations

from pathlib import Path


def add_parser(sub):
    from defstab.cli.common import add_model_args

    p = sub.add_parser("train", help="train with checkpoints and a history of stability")
    add_model_args(p, checkpoint=False)
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
    p.add_argument("--no-augment", action="store_true")
    p.add_argument("--smooth-sigma", type=float, default=0.0, help="registry models: smooth init")
    p.add_argument("--seed", type=int, default=0, help="data order, augmentation, probe (and init)")
    p.add_argument("--normalize", default=None, help="imagenet, cifar10, mnist or none")
    p.add_argument("--image-size", type=int, default=None)
    p.add_argument("--device", default="auto")
    p.add_argument("--out", required=True, help="run folder (resumed if it has checkpoints)")
    p.add_argument("--quiet", action="store_true")
    return p


def run(args) -> None:
    import torch

    from defstab.data.labels import with_random_labels
    from defstab.data.normalize import default_normalization, make_normalize
    from defstab.data.spec import DataSpec
    from defstab.data.splits import train_test_splits
    from defstab.io.atomic import write_json
    from defstab.io.provenance import versions
    from defstab.models.loading import build_model, model_family
    from defstab.train import default_config, train

    data = DataSpec.parse(args.data)
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
    family = model_family(args.model)
    kwargs = {}
    # the init seed defaults to --seed; --init-seed sets it apart (data order stays --seed)
    init_seed = args.seed if args.init_seed is None else args.init_seed
    if family == "registry":
        kwargs = {
            "width": args.width,
            "seed": init_seed,
            "in_channels": first.channels,
            "num_classes": args.num_classes or len(first.classes),
            "smooth_sigma": args.smooth_sigma,
        }
    elif args.init_seed is not None:
        raise ValueError("--init-seed applies to registry models only.")
    model = build_model(args.model, pretrained=args.pretrained, **kwargs)
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
        augment=False if args.no_augment else None,
    )
    norm_name = args.normalize or default_normalization(family, data)
    normalize = make_normalize(norm_name, first.channels)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_json(
        out / "config.json",
        {
            "command": "train",
            "model": args.model,
            "model_kwargs": kwargs,
            "data": data.record(),
            "data_name": first.name,
            "train_images": len(first),
            "test_images": len(test_data),
            "random_labels": args.random_labels,
            "templates": args.templates,
            "normalize": norm_name,
            "train": cfg.to_dict(),
            "versions": versions(),
        },
    )
    from defstab.tap import pick_device

    if normalize is not None:
        normalize = normalize.to(pick_device(cfg.device))
    result = train(
        model, train_data, test_data, cfg, out=out, preprocess=normalize, quiet=args.quiet
    )
    last = result.history[-1]
    print(
        f"step {result.steps}: test accuracy {last['test_acc']:.3f}; "
        f"wrote {out}/history.csv and checkpoints/"
    )
