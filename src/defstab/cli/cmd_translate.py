"""``defstab translate``: translation/scale stability of a classifier (Azulay & Weiss).

The options are generated from :class:`~defstab.requests.translate.TranslateRequest` and
the model and data options; the run is :func:`defstab.pipeline.translate.run_translate`.
"""

from __future__ import annotations

HELP = "P(top-1 change), MAC, jaggedness under 1-px shifts"  # one line in `defstab --help`


def add_parser(sub):
    from defstab.cli.common import add_data_args, add_model_args
    from defstab.requests.fields import add_options
    from defstab.requests.translate import TranslateRequest

    p = sub.add_parser("translate", help=HELP)
    add_model_args(p, scores=True)
    add_data_args(p)
    add_options(p, TranslateRequest)
    p.add_argument("--device", default="auto")
    p.add_argument("--out", required=True)
    p.add_argument("--quiet", action="store_true")
    return p


def run(args) -> None:
    from defstab.cli.common import pipeline_kwargs, request_of
    from defstab.pipeline.translate import run_translate
    from defstab.requests.translate import TranslateRequest

    outcome = run_translate(request_of(args, TranslateRequest), **pipeline_kwargs(args))
    print("\n".join(outcome.summary_lines()))
