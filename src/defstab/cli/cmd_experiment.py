"""``defstab experiment NAME``: one of the paper's experiments, resumable."""

from __future__ import annotations

from pathlib import Path

# one line in `defstab --help`
HELP = "run one of the papers' experiments (E1–E5, antialias, worst-case, augmentation)"


def add_parser(sub):
    from defstab.experiments.index import SUMMARIES  # the names without the experiments
    from defstab.train.precision import PRECISIONS

    names = list(SUMMARIES)
    p = sub.add_parser(
        "experiment",
        help=HELP,
        description="Experiments: " + "; ".join(f"{n}: {s}" for n, s in SUMMARIES.items()),
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
    p.add_argument(
        "--archs",
        default=None,
        metavar="A,B",
        help="downsampling types to compare (pooling, antialias, worst-case, augmentation; "
        "default: the preset's)",
    )
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
        "--precision",
        choices=PRECISIONS,
        default=None,
        help="training precision (default: the preset's; quick: auto = bf16 where the "
        "machine computes it, paper: fp32); part of each network's key",
    )
    p.add_argument(
        "--epochs-sweep",
        default=None,
        metavar="E1,E2,...",
        help="rerun the experiment for each training length (e.g. 10,30,90) and plot how "
        "each finding's effect and interval change (OUT/NAME-sweep/)",
    )
    p.add_argument("--out", required=True, help="results folder (shared by all experiments)")
    p.add_argument("--quiet", action="store_true")
    add_scaling_args(p)
    return p


def add_scaling_args(p, training: bool = True, unit: str = "run"):
    """The scaling-out options (--executor, --workers, Ray's and Slurm's): experiments run
    their runs with them, ``measure --shards`` its shards (``unit``)."""
    g = p.add_argument_group(
        "scaling out",
        f"where the {unit}s execute; the {unit} folders under --out are the contract, so the "
        "workers need a filesystem shared with this command",
    )
    g.add_argument(
        "--executor",
        choices=["local", "ray", "slurm"],
        default="local",
        help=f"local: --workers processes here (default 1: in this process); ray: tasks on a "
        f"Ray cluster (pip install 'defstab[ray]'); slurm: one submitit job per {unit} (pip "
        "install 'defstab[slurm]')",
    )
    g.add_argument("--workers", type=int, default=1, help="local worker processes (default 1)")
    g.add_argument(
        "--address", default=None, help="ray: HOST:PORT of a cluster started with 'ray start'"
    )
    g.add_argument(
        "--connect-timeout",
        type=float,
        default=30.0,
        metavar="S",
        help="ray: seconds to wait for the cluster at --address, at the start and whenever "
        "it stops answering; slurm: for the controller to answer (default 30)",
    )
    g.add_argument("--cpus-per-run", type=int, default=1, help="ray/slurm: CPUs (torch threads)")
    g.add_argument(
        "--gpus-per-run",
        "--slurm-gpus-per-task",
        dest="gpus_per_run",
        type=float,
        default=0,
        help="ray/slurm: GPUs per run (default 0)",
    )
    if training:
        g.add_argument(
            "--processes-per-run",
            type=int,
            default=0,
            help="DDP processes training each run's network (one GPU each; gloo on CPU); "
            "default: one per GPU of --gpus-per-run",
        )
    g.add_argument("--slurm-partition", default=None)
    g.add_argument("--slurm-time", type=int, default=240, help=f"slurm: minutes per {unit}")
    g.add_argument(
        "--slurm-cluster",
        choices=["slurm", "local", "debug"],
        default="slurm",
        help="submitit's cluster: slurm (sbatch), or local to try the same jobs on this machine",
    )
    g.add_argument(
        "--slurm-param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="any other submitit parameter, e.g. slurm_account=lab or mem_gb=32 (repeatable)",
    )
    return g


def executor_config(args):
    """The :class:`ExecutorConfig` of the scaling-out options."""
    import json

    from defstab.cli.common import warn
    from defstab.experiments import ExecutorConfig

    params = {}
    for item in args.slurm_param:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--slurm-param takes KEY=VALUE, got {item!r}.")
        try:
            params[key] = json.loads(value)  # numbers, booleans, lists as such
        except json.JSONDecodeError:
            params[key] = value
    if args.executor != "local" and args.workers != 1:
        warn(f"--workers applies to --executor local; {args.executor} runs as many runs at "
             "once as its CPUs (--cpus-per-run each) allow.")  # fmt: skip
    if args.executor != "slurm" and (params or args.slurm_partition):
        raise ValueError("--slurm-partition and --slurm-param apply to --executor slurm.")
    if args.executor != "ray" and args.address:
        raise ValueError("--address applies to --executor ray.")
    return ExecutorConfig(
        kind=args.executor,
        workers=args.workers,
        address=args.address,
        cpus_per_run=args.cpus_per_run,
        gpus_per_run=args.gpus_per_run,
        processes_per_run=getattr(args, "processes_per_run", 0),
        slurm_partition=args.slurm_partition,
        slurm_time_min=args.slurm_time,
        slurm_cluster=args.slurm_cluster,
        slurm_parameters=params,
        connect_timeout_s=args.connect_timeout,
    )


def run(args) -> None:
    from defstab.experiments import ExperimentConfig, get_experiment, run_experiment

    overrides = {
        "width": args.width,
        "epochs": args.epochs,
        "images": args.images,
        "train_images": args.train_images,
        "test_images": args.test_images,
        "per_class": args.per_class,
        "precision": args.precision,
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
        archs=args.archs.split(",") if args.archs else None,
        executor=executor_config(args),
    )
    from defstab.cli.common import check_out_folder

    # option ranges are checked once for every command (defstab.requests.ranges); this is
    # the experiment's own: the normalizer is a median over pairs of images
    check_out_folder(args.out)
    if args.images is not None and args.images < 2:
        raise ValueError(f"--images must be at least 2, got {args.images}.")
    if args.archs:
        from defstab.models.architectures import DOWNSAMPLING, is_downsampling_name

        bad = [a for a in args.archs.split(",") if not is_downsampling_name(a)]
        if bad:
            raise ValueError(
                f"--archs: unknown downsampling type {', '.join(bad)}; choose from "
                f"{', '.join(DOWNSAMPLING)}."
            )
    if args.archs:  # before any training: the chosen types must give a finding to state
        from defstab.experiments.feasibility import check_findings_possible

        check_findings_possible(get_experiment(args.name), cfg)
    if args.precision == "bf16" and cfg.executor.kind == "local":
        # the runs train here: say now, not once per failed run, when this machine lacks it
        from defstab.tap import pick_device
        from defstab.train.precision import resolve_precision

        resolve_precision("bf16", pick_device("auto"))
    if args.epochs_sweep:
        return _sweep(args, cfg, get_experiment(args.name).epochs_key)
    meta = run_experiment(cfg, quiet=args.quiet)
    print(meta["title"] + (" [quick preset]" if args.preset == "quick" else ""))
    if meta["resumed_runs"]:
        print(f"  ({meta['resumed_runs']} of {len(meta['runs'])} runs were already finished)")
    print_findings(meta)
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

    def number(v):
        return "—" if v is None else f"{v:+.4f}"

    for r in result["rows"]:
        print(
            f"  {key}={r[key]:<5} [{r['verdict']}] effect {number(r['effect'])} "
            f"CI [{number(r['ci_lo'])}, {number(r['ci_hi'])}] over {r['n_seeds']} seeds "
            f"(δ = {r['delta']:g})  {r['finding']}"
        )
    print(f"wrote {result['folder']}/ (sweep.csv, sweep.png)")


def print_findings(meta: dict) -> None:
    """The plan, then each finding: its verdict in words, the numbers, δ, the gate's effect
    and what would decide it."""
    from defstab.experiments.verdicts import finding_notes

    plan = meta.get("seed_plan")
    if plan:
        looks = ", ".join(str(n) for n in plan["looks"])
        print(
            f"  seed plan ({plan['preset']}): looks at {looks} seeds ({plan['correction']}); "
            f"{len(meta['seeds'])} seeds run"
            + (" — beyond the plan: the exploratory verdicts are not the preset's" if
               meta.get("beyond_plan") else "")
        )  # fmt: skip
    if meta.get("findings_retired"):
        print(f"  {meta['findings_retired']}")
    if meta["findings"]:
        m = meta["findings"][0]["multiplicity"]
        print(f"  Holm over {m['holm_family_size']} finding(s) (family: {m['holm_family']})")
    for f in meta["findings"]:
        acc = "".join(
            f"; {label} {f[key]:.3f}"
            for key, label in (("test_accuracy", "test acc."), ("train_accuracy", "train acc."))
            if f.get(key) is not None
        )
        print(f"  [{f['verdict_words']}] {f['paper']}\n      {f['observed']}{acc}")
        print(f"      δ = {f['smallest_effect']['value']:g}: {f['smallest_effect']['reason']}")
        for note in finding_notes(f):
            print(f"      {note}")
