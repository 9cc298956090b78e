"""What the commands share: the model and data options (generated from the requests'
fields), and the parsed arguments turned into a request and the pipeline's keyword
arguments. Resolution and checks live in the pipeline (:mod:`defstab.pipeline`), the
same for Python. Importing this module imports no torch.
"""

from __future__ import annotations

import sys

from defstab.pipeline.outcome import check_out_folder  # noqa: F401  (re-exported)


def add_model_args(p, checkpoint: bool = True, scores: bool = False) -> None:
    """The model options, generated from :class:`~defstab.requests.model.ModelOptions`;
    without ``checkpoint`` no --checkpoint/--run/--step (``train`` makes its own
    weights); ``scores``: the command reads class scores (``--output-key``)."""
    from defstab.requests.fields import add_options
    from defstab.requests.model import CHECKPOINT_FIELDS, ModelOptions

    skip = (() if checkpoint else CHECKPOINT_FIELDS) + (() if scores else ("output_key",))
    add_options(p, ModelOptions, skip=skip)


def model_options(args):
    """The :class:`~defstab.requests.model.ModelOptions` of parsed arguments."""
    from defstab.requests.fields import from_namespace
    from defstab.requests.model import ModelOptions

    options = from_namespace(ModelOptions, args)
    options.pretrained_option = getattr(args, "_pretrained_option", "--pretrained")
    return options


def add_data_args(p) -> None:
    """The data options, generated from :class:`~defstab.requests.model.DataOptions`."""
    from defstab.requests.fields import add_options
    from defstab.requests.model import DataOptions

    add_options(p, DataOptions)


def warn(message: str) -> None:
    """A warning on stderr: the command goes on."""
    print(f"defstab: warning: {message}", file=sys.stderr)


def warn_inferred_strides(layers) -> None:
    """Say which layers' strides could only be inferred (input width / map width)."""
    from defstab.models.strides import STRIDES_INFERRED

    layers = list(dict.fromkeys(layers))
    if layers:
        warn(STRIDES_INFERRED.format(layers=", ".join(layers)))


def request_of(args, cls):
    """The request ``cls`` of the parsed arguments (its fields are the command's options)."""
    from defstab.requests.fields import from_namespace

    return from_namespace(cls, args)


def pipeline_kwargs(args, model: bool = True, data: bool = True, device: bool = True,
                    record: bool = True) -> dict:  # fmt: skip
    """The pipeline's keyword arguments from the parsed arguments: the model and data
    options, ``--out``, ``--device``, progress unless ``--quiet``, warnings on stderr, the
    options the user wrote (checked against where they apply) and the command line a
    result folder records for ``defstab rerun``."""
    from defstab.requests.model import DataOptions

    kwargs = {"out": args.out, "warn": warn, "given": args._given}
    if model:
        kwargs["model"] = model_options(args)
    if data:
        kwargs["data"] = request_of(args, DataOptions)
    if device:
        kwargs["device"] = args.device
    if hasattr(args, "quiet"):
        kwargs["progress"] = not args.quiet
    if record:
        from defstab.cli.main import request_record

        kwargs["record"] = request_record(args._argv)
    return kwargs
