"""``defstab train``: train a model, recording stability and smoothness over training.

The options are generated from :class:`~defstab.requests.train.TrainRequest` and the
model and data options; the run is :func:`defstab.pipeline.train.run_train`.
"""

from __future__ import annotations

HELP = "train with checkpoints and a history of stability"  # one line in `defstab --help`


def add_parser(sub):
    from defstab.cli.common import add_model_args
    from defstab.requests.fields import add_options
    from defstab.requests.model import DataOptions
    from defstab.requests.train import DATA_HELP, TrainRequest

    p = sub.add_parser("train", help=HELP)
    add_model_args(p, checkpoint=False, scores=True)
    add_options(p, DataOptions, skip=("split",), help_for=DATA_HELP)
    add_options(p, TrainRequest)
    p.add_argument("--device", default="auto")
    p.add_argument(
        "--out", required=True, help="run folder (resumed if it holds this run's checkpoints)"
    )
    p.add_argument("--quiet", action="store_true")
    return p


def run(args) -> None:
    from defstab.cli.common import pipeline_kwargs, request_of
    from defstab.pipeline.train import run_train
    from defstab.requests.train import TrainRequest

    outcome = run_train(request_of(args, TrainRequest), **pipeline_kwargs(args, record=False))
    if outcome.main_process:
        print("\n".join(outcome.summary_lines()))
