"""Arguments shared by the commands that take a model or data, and their resolution.

Every check a command can make before its expensive work lives here, so that a mistake
ends in one sentence before anything is computed or written.
"""

from __future__ import annotations

import sys
from pathlib import Path

# the weights' words and caveat, re-exported for the commands (the module imports no torch)
from defstab.pipeline.models import (  # noqa: E402, F401
    RANDOM_WEIGHTS,
    check_scores_cover,
    is_random,
    weights_caveat,
)
from defstab.pipeline.outcome import check_out_folder  # noqa: E402, F401


def pick_device(name: str):
    """:func:`defstab.tap.pick_device`, imported when called: this module (every command's
    options) imports no torch, so ``defstab --help`` and the docs build need none."""
    from defstab.tap import pick_device as pick

    return pick(name)


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


def use_class_scores(model, probe, args, settings: dict, finite: bool = True) -> int:
    """:func:`defstab.pipeline.models.use_class_scores` with the command's --output-key."""
    from defstab.pipeline.models import use_class_scores as use

    return use(model, probe, getattr(args, "output_key", None), settings, finite)


def add_data_args(p) -> None:
    """The data options, generated from :class:`~defstab.requests.model.DataOptions`."""
    from defstab.requests.fields import add_options
    from defstab.requests.model import DataOptions

    add_options(p, DataOptions)


def add_read_workers(p) -> None:
    """--read-workers: the images of a data set are read chunk by chunk as they are
    measured; this many processes read (and decode) image files ahead of the model."""
    p.add_argument(
        "--read-workers",
        type=int,
        default=0,
        help="processes reading image files (folder data) while the model runs; default 0: "
        "read in this process",
    )


def report_skipped(
    skipped: list[dict], indices, out: Path, measured: int, shown: Path | None = None
) -> int:
    """:func:`defstab.pipeline.outcome.write_skipped`, warning on stderr."""
    from defstab.pipeline.outcome import write_skipped

    return write_skipped(skipped, indices, out, measured, warn, shown)


def warn(message: str) -> None:
    """A warning on stderr: the command goes on."""
    print(f"defstab: warning: {message}", file=sys.stderr)


def warn_inferred_strides(layers) -> None:
    """Say which layers' strides could only be inferred (input width / map width)."""
    from defstab.models.strides import STRIDES_INFERRED

    layers = list(dict.fromkeys(layers))
    if layers:
        warn(STRIDES_INFERRED.format(layers=", ".join(layers)))


def resolve_model(args, in_channels: int | None = None):
    """(model, settings) of the model options (:func:`defstab.pipeline.models.resolve_model`)."""
    from defstab.pipeline.models import resolve_model as resolve

    return resolve(model_options(args), in_channels)


def model_kwargs(args, in_channels: int | None = None, seed: int | None = None) -> dict:
    """:func:`defstab.pipeline.models.model_kwargs` of the model options."""
    from defstab.pipeline.models import model_kwargs as kwargs

    return kwargs(model_options(args), in_channels, seed)


def pick_normalization(given, settings: dict, data_spec, channels: int, device):
    """``(name, module or None)``: the normalisation of the one rule
    (:func:`defstab.pipeline.models.choose_normalization`), on ``device``."""
    from defstab.pipeline.models import choose_normalization, make_preprocess

    chosen = choose_normalization(given, settings, data_spec)
    return chosen.name, make_preprocess(chosen, channels, device)
