"""``defstab bench MODEL [MODEL ...]``: each model's stability card — every protocol of the
card on the same images, in one process — and the models compared on those images with
paired bootstrap intervals (``--list``: the card's protocols and their settings).

The options are generated from :class:`~defstab.requests.bench.BenchRequest` and the model
and data options (applied to each model); the run is
:func:`defstab.pipeline.bench.run_bench`.
"""

from __future__ import annotations

HELP = "a model's whole stability card in one run; models compared on the same images"


def add_parser(sub):
    from defstab.cli.scaling import add_scaling_args, add_shards_option
    from defstab.requests.bench import BenchRequest
    from defstab.requests.fields import add_options
    from defstab.requests.model import DataOptions, ModelOptions

    p = sub.add_parser("bench", help=HELP)
    add_options(p, ModelOptions, skip=("model", "run", "step"))
    add_options(p, DataOptions, skip=("data",))
    p.add_argument("--data", default="", help="the images (as every command's --data); a "
                   "card of smoothness alone needs none")  # fmt: skip
    add_options(p, BenchRequest)
    g = add_scaling_args(p, training=False, unit="shard")
    add_shards_option(g, "tps and diffeo: split the images over N shards (their units' "
                      "shards/), run on --executor, merged as 'defstab measure --shards N' "
                      "merges them (default 1)")  # fmt: skip
    p.add_argument("--device", default="auto")
    p.add_argument("--out", help="the bench folder (resumable: finished protocols are kept)")
    p.add_argument("--quiet", action="store_true")
    return p


def run(args) -> None:
    from defstab.cli.common import pipeline_kwargs, request_of
    from defstab.requests.bench import BenchRequest

    request = request_of(args, BenchRequest)
    if request.list:
        from defstab.pipeline.bench_list import list_lines

        print("\n".join(list_lines()))
        return
    if not args.out:
        raise ValueError("give --out FOLDER for the bench's results.")
    from defstab.cli.scaling import executor_config
    from defstab.pipeline.bench import run_bench

    kwargs = pipeline_kwargs(args)
    if not kwargs["data"].data:
        kwargs["data"] = None
    executor = executor_config(args) if args.shards > 1 else None
    outcome = run_bench(request, shards=args.shards, executor=executor, **kwargs)
    print("\n".join(outcome.summary_lines()))
