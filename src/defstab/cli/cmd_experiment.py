"""``defstab experiment NAME``: one of the paper's experiments, resumable."""

from __future__ import annotations

from pathlib import Path

HELP = "run one of the papers' experiments (E1–E5, antialias)"  # one line in `defstab --help`


def add_parser(sub):
    from defstab.experiments.registry import get_experiment, list_experiments

    names = list_experiments()
    p = sub.add_parser(
        "experiment",
        help=HELP,
        description="Experiments: " + "; ".join(f"{n}: {get_experiment(n).summary}" for n in names),
    )
    p.add_argument("name", choices=names)
    p.add_argument("--preset", default="quick", choices=["quick", "paper"])
    p.add_argument(
        "--data",
        default=None,
        help="cifar10:PATH for pooling, smoothness, random-labels, smooth-init",
    )
    p.add_argument("--templates", default=None, help="synthetic: mnist:PATH (default: font digits)")
    p.add_argument("--seeds", type=int, default=None)
    p.add_argument("--arch", default="maxpool", help="smooth-init: downsampling type")
    for name, typ in [
        ("width", float),
        ("epochs", int),
        ("images", int),
        ("train-images", int),
        ("test-images", int),
        ("per-class", int),
    ]:
        p.add_argument(f"--{name}", type=typ, default=None, help="override the preset")
    p.add_argument(
        "--epochs-sweep",
        default=None,
        metavar="E1,E2,...",
        help="rerun the experiment for each training length (e.g. 10,30,90) and plot how "
        "each finding's effect and interval change (OUT/NAME-sweep/)",
    )
    p.add_argument("--out", required=True, help="results folder (shared by all experiments)")
    p.add_argument("--quiet", action="store_true")
    return p


def run(args) -> None:
    from defstab.experiments import ExperimentConfig, get_experiment, run_experiment

    overrides = {
        "width": args.width,
        "epochs": args.epochs,
        "images": args.images,
        "train_images": args.train_images,
        "test_images": args.test_images,
        "per_class": args.per_class,
    }
    epochs_key = get_experiment(args.name).epochs_key
    if epochs_key != "epochs" and args.epochs is not None:
        overrides[epochs_key] = args.epochs
    cfg = ExperimentConfig(
        name=args.name,
        out=Path(args.out),
        preset=args.preset,
        data=args.data,
        templates=args.templates,
        seeds=args.seeds,
        arch=args.arch,
        overrides=overrides,
    )
    from defstab.cli.common import check_out_folder, check_positive

    check_out_folder(args.out)
    check_positive(args.seeds, "--seeds")
    if args.width is not None and not args.width > 0:
        raise ValueError(f"--width must be positive, got {args.width}.")
    for option in ("epochs", "images", "train_images", "test_images", "per_class"):
        value = getattr(args, option)
        if value is not None and value < (2 if option == "images" else 0):
            raise ValueError(f"--{option.replace('_', '-')} cannot be {value}.")
    if args.epochs_sweep:
        return _sweep(args, cfg, get_experiment(args.name).epochs_key)
    meta = run_experiment(cfg, quiet=args.quiet)
    print(meta["title"] + (" [quick preset]" if args.preset == "quick" else ""))
    if meta["resumed_runs"]:
        print(f"  ({meta['resumed_runs']} of {len(meta['runs'])} runs were already finished)")
    for f in meta["findings"]:
        acc = "".join(
            f"; {label} {f[key]:.3f}"
            for key, label in (("test_accuracy", "test acc."), ("train_accuracy", "train acc."))
            if f.get(key) is not None
        )
        print(f"  [{f['verdict']}] {f['paper']}\n      {f['observed']}{acc}")
    print(f"wrote {Path(args.out) / args.name}/ (summary.csv, results.csv, {meta['figure']})")


def _sweep(args, cfg, key: str) -> None:
    from defstab.experiments.sweep import run_sweep

    try:
        values = [int(v) for v in args.epochs_sweep.split(",") if v.strip()]
    except ValueError:
        raise ValueError(
            f"--epochs-sweep takes epochs like 10,30,90; got {args.epochs_sweep!r}."
        ) from None
    if not values or min(values) < 1:
        raise ValueError(f"--epochs-sweep takes positive epochs, got {args.epochs_sweep!r}.")
    if args.name == "smooth-init":
        raise ValueError("smooth-init trains nothing; --epochs-sweep does not apply.")
    result = run_sweep(cfg, key, values, quiet=args.quiet, label="epochs")
    for r in result["rows"]:
        print(
            f"  {key}={r[key]:<5} [{r['verdict']}] effect {r['effect']:+.4f} "
            f"CI [{r['ci_lo'] if r['ci_lo'] is None else round(r['ci_lo'], 4)}, "
            f"{r['ci_hi'] if r['ci_hi'] is None else round(r['ci_hi'], 4)}]  {r['finding']}"
        )
    print(f"wrote {result['folder']}/ (sweep.csv, sweep.png)")
