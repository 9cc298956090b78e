"""``defstab dataset-bias``: where a data set's objects are and how large (Azulay & Weiss's
photographer's bias), beside the same boxes placed uniformly.

The options are generated from :class:`~defstab.requests.dataset_bias.DatasetBiasRequest`;
the run is :func:`defstab.pipeline.dataset_bias.run_dataset_bias`.
"""

from __future__ import annotations

HELP = "object position and size statistics from VOC/ILSVRC XML or COCO JSON boxes"


def add_parser(sub):
    from defstab.requests.dataset_bias import DatasetBiasRequest
    from defstab.requests.fields import add_options

    p = sub.add_parser("dataset-bias", help=HELP)
    add_options(p, DatasetBiasRequest)
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--quiet", action="store_true")
    return p


def run(args) -> None:
    from defstab.cli.common import pipeline_kwargs, request_of
    from defstab.pipeline.dataset_bias import run_dataset_bias
    from defstab.requests.dataset_bias import DatasetBiasRequest

    outcome = run_dataset_bias(
        request_of(args, DatasetBiasRequest),
        **pipeline_kwargs(args, model=False, data=False, device=False),
    )
    if not args.quiet:
        print("\n".join(outcome.summary_lines()))
