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
    from defstab.cli.scaling import add_scaling_args, add_shards_option
    from defstab.requests.fields import add_options
    from defstab.requests.measure import MeasureRequest

    p = sub.add_parser("measure", help=HELP)
    add_model_args(p, scores=True)
    add_data_args(p)
    add_options(p, MeasureRequest)
    g = add_scaling_args(p, training=False, unit="shard")
    add_shards_option(g, "split the images over N shards (OUT/shards/), run the missing "
                      "ones, merge them; rerun the same command to resume (default 1: no "
                      "shards)")  # fmt: skip
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
    from defstab.cli.common import pipeline_kwargs, request_of
    from defstab.cli.scaling import executor_config
    from defstab.pipeline.measure import run_measure
    from defstab.pipeline.shards import parse_shard
    from defstab.requests.measure import MeasureRequest

    outcome = run_measure(
        request_of(args, MeasureRequest),
        shards=args.shards,
        shard=parse_shard(args.shard) if args.shard is not None else None,
        executor=executor_config(args) if args.shards > 1 else None,
        **pipeline_kwargs(args),
    )
    lines = outcome.summary_lines() if not args.quiet else getattr(outcome, "flip_lines", list)()
    if lines:
        print("\n".join(lines))
