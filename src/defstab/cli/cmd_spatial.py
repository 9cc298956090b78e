"""``defstab spatial``: accuracy under rotations and translations (Engstrom et al. 2019):
natural, random, worst of 10 and the exhaustive 775-transform grid.

The options are generated from :class:`~defstab.requests.spatial.SpatialRequest` and the
model and data options; the run is :func:`defstab.pipeline.spatial.run_spatial`.
"""

from __future__ import annotations

HELP = "accuracy under random, worst-of-10 and grid rotations + translations (Engstrom)"


def add_parser(sub):
    from defstab.cli.common import add_data_args, add_model_args
    from defstab.requests.fields import add_options
    from defstab.requests.spatial import SpatialRequest

    p = sub.add_parser("spatial", help=HELP)
    add_model_args(p, scores=True)
    add_data_args(p)
    add_options(p, SpatialRequest)
    p.add_argument("--device", default="auto")
    p.add_argument("--out", required=True)
    p.add_argument("--quiet", action="store_true")
    return p


def run(args) -> None:
    from defstab.cli.common import pipeline_kwargs, request_of
    from defstab.pipeline.spatial import run_spatial
    from defstab.requests.spatial import SpatialRequest

    outcome = run_spatial(request_of(args, SpatialRequest), **pipeline_kwargs(args))
    print("\n".join(outcome.summary_lines()))
