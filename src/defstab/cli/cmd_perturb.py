"""``defstab perturb``: ImageNet-P's flip probability, top-5 distance and flip rate over
perturbation sequences made on the fly (Hendrycks & Dietterich 2019).

The options are generated from :class:`~defstab.requests.perturb.PerturbRequest` and the
model and data options; the run is :func:`defstab.pipeline.perturb.run_perturb`.
"""

from __future__ import annotations

HELP = "ImageNet-P flip probability/rate, top-5 distance over perturbation sequences"


def add_parser(sub):
    from defstab.cli.common import add_data_args, add_model_args
    from defstab.requests.fields import add_options
    from defstab.requests.perturb import PerturbRequest

    p = sub.add_parser("perturb", help=HELP)
    add_model_args(p, scores=True)
    add_data_args(p)
    add_options(p, PerturbRequest)
    p.add_argument("--device", default="auto")
    p.add_argument("--out", required=True)
    p.add_argument("--quiet", action="store_true")
    return p


def run(args) -> None:
    from defstab.cli.common import pipeline_kwargs, request_of
    from defstab.pipeline.perturb import run_perturb
    from defstab.requests.perturb import PerturbRequest

    outcome = run_perturb(request_of(args, PerturbRequest), **pipeline_kwargs(args))
    print("\n".join(outcome.summary_lines()))
