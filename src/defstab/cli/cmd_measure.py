"""``defstab measure``: layer-wise sensitivity of a model to random deformations.

The options are generated from :class:`~defstab.requests.measure.MeasureRequest` and the
model and data options; the run is :func:`defstab.pipeline.measure.run_measure`, the
function Python calls too. This module only parses and prints.
"""

from __future__ import annotations

#: one line in `defstab --help`
HELP = "sensitivity of every layer to random TPS deformations or diffeomorphisms"


def add_parser(sub):
    from defstab.cli.common import add_data_args, add_model_args
    from defstab.cli.scaling import add_scaling_args
    from defstab.requests.fields import add_options
    from defstab.requests.measure import MeasureRequest

    p = sub.add_parser("measure", help=HELP)
    add_model_args(p, scores=True)
    add_data_args(p)
    add_options(p, MeasureRequest)
    g = add_scaling_args(p, training=False, unit="shard")
    g.add_argument(
        "--shards",
        type=int,
        default=1,
        help="split the images over N shards (OUT/shards/), run the missing ones, merge them; "
        "rerun the same command to resume (default 1: no shards)",
    )
    g.add_argument(
        "--shard",
        metavar="I/N",
        default=None,
        help="measure only shard I of N and write OUT/shards/shard-I-of-N.pt (e.g. one task of "
        "a Slurm array); a later run with --shards N merges",
    )
    p.add_argument("--device", default="auto")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--quiet", action="store_true")
    return p


def run(args) -> None:
    from defstab.cli.common import model_options, warn
    from defstab.cli.main import request_record
    from defstab.cli.scaling import executor_config
    from defstab.pipeline.measure import run_measure
    from defstab.pipeline.shards import parse_shard
    from defstab.requests.fields import from_namespace
    from defstab.requests.measure import MeasureRequest
    from defstab.requests.model import DataOptions

    shard = parse_shard(args.shard) if args.shard is not None else None
    outcome = run_measure(
        from_namespace(MeasureRequest, args),
        model=model_options(args),
        data=from_namespace(DataOptions, args),
        out=args.out,
        shards=args.shards,
        shard=shard,
        executor=executor_config(args) if args.shards > 1 else None,
        device=args.device,
        progress=not args.quiet,
        warn=warn,
        given=args._given,
        record=request_record(args._argv),
    )
    lines = outcome.summary_lines() if not args.quiet else getattr(outcome, "flip_lines", list)()
    if lines:
        print("\n".join(lines))
