"""``defstab smoothness``: normalized total variation of every conv layer's filters.

The options are generated from :class:`~defstab.requests.smoothness.SmoothnessRequest`
and the model options; the run is :func:`defstab.pipeline.smoothness.run_smoothness`.
"""

from __future__ import annotations

HELP = "filter smoothness (normalized TV) per conv layer"  # one line in `defstab --help`


def add_parser(sub):
    from defstab.cli.common import add_model_args
    from defstab.requests.fields import add_options
    from defstab.requests.smoothness import SmoothnessRequest

    p = sub.add_parser("smoothness", help=HELP)
    add_model_args(p)
    add_options(p, SmoothnessRequest)
    p.add_argument("--out", required=True, help="output folder")
    return p


def run(args) -> None:
    from defstab.cli.common import pipeline_kwargs, request_of
    from defstab.pipeline.smoothness import run_smoothness
    from defstab.requests.smoothness import SmoothnessRequest

    outcome = run_smoothness(
        request_of(args, SmoothnessRequest), **pipeline_kwargs(args, data=False, device=False)
    )
    print("\n".join(outcome.summary_lines()))
