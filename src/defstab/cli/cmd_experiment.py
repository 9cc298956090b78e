"""``defstab experiment NAME``: one of the paper's experiments, resumable.

The options are generated from :class:`~defstab.requests.experiment.ExperimentRequest`
and the scaling-out options; the run is
:func:`defstab.pipeline.experiment.run_experiment_request`.
"""

from __future__ import annotations

# one line in `defstab --help`
HELP = "run one of the papers' experiments (E1–E5, antialias, worst-case, augmentation)"


def add_parser(sub):
    from defstab.cli.scaling import add_scaling_args
    from defstab.experiments.index import SUMMARIES  # the names without the experiments
    from defstab.requests.experiment import ExperimentRequest
    from defstab.requests.fields import add_options

    p = sub.add_parser(
        "experiment",
        help=HELP,
        description="Experiments: " + "; ".join(f"{n}: {s}" for n, s in SUMMARIES.items()),
    )
    add_options(p, ExperimentRequest)
    p.add_argument("--out", required=True, help="results folder (shared by all experiments)")
    p.add_argument("--quiet", action="store_true")
    add_scaling_args(p)
    return p


def run(args) -> None:
    from defstab.cli.common import pipeline_kwargs, request_of
    from defstab.cli.scaling import executor_config
    from defstab.pipeline.experiment import run_experiment_request
    from defstab.requests.experiment import ExperimentRequest

    kwargs = pipeline_kwargs(args, model=False, data=False, device=False, record=False)
    outcome = run_experiment_request(
        request_of(args, ExperimentRequest), executor=executor_config(args), **kwargs
    )
    print("\n".join(outcome.summary_lines()))
