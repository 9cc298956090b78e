"""The scaling-out options every command that runs many parts has (``experiment``'s runs,
``measure --shards``' shards): the executor and its own options, and the
:class:`~defstab.experiments.ExecutorConfig` they make."""

from __future__ import annotations


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


def add_shards_option(group, help: str) -> None:
    """``--shards N`` (default 1: no shards) in the scaling-out ``group``."""
    group.add_argument("--shards", type=int, default=1, help=help)


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
