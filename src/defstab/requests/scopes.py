"""Where each option has an effect: one declared table, checked once before any work.

An option given where it changes nothing is a mistake the user cannot see: the run
succeeds and measures something else (``translate --fraction 4`` without the fractional
protocol, ``deform --temperature 0.01`` drawing a TPS). So every option of every command
either applies everywhere or has a :class:`Scope` here: the words that say where it
applies, a test of the parsed arguments, and two argument fragments — one in which it
applies and one in which it does not — that the tests walk for every scoped option.

:func:`check_option_scopes` runs in :func:`defstab.cli.main.main` after parsing and before
the command, and in :func:`defstab.run` on a request's fields, so nothing is read, loaded or
written before the options hold. Importing
this module imports nothing heavy.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Scope:
    """An option applies ``words`` (e.g. "with --kind tps"), that is when ``applies(args)``.

    ``active`` and ``inert`` are argument fragments of the same command in which the
    option does, and does not, apply (the schema test gives the option in each).
    """

    words: str
    applies: Callable[[Any], bool]
    active: tuple[str, ...]
    inert: tuple[str, ...]


def _value_in(dest: str, values: tuple, active: tuple, inert: tuple) -> Scope:
    option = "--" + dest.replace("_", "-")
    return Scope(
        f"with {option} {' or '.join(map(str, values))}",
        lambda a: getattr(a, dest, None) in values,
        active,
        inert,
    )


def _given(option: str, active: tuple, inert: tuple = ()) -> Scope:
    dest = option.lstrip("-").replace("-", "_")
    return Scope(
        f"with {option}", lambda a: getattr(a, dest, None) not in (None, False), active, inert
    )


def _both(first: Scope, second: Scope) -> Scope:
    """Applies where both do (the fragments of ``first`` and ``second`` joined)."""
    return Scope(
        f"{first.words} and {second.words}",
        lambda a: first.applies(a) and second.applies(a),
        first.active + second.active,
        first.inert,
    )


def _without(scope: Scope, option: str, inert: tuple) -> Scope:
    """``scope`` unless ``option`` is given (which decides instead)."""
    dest = option.lstrip("-").replace("-", "_")
    return Scope(
        f"{scope.words}, without {option}",
        lambda a: scope.applies(a) and getattr(a, dest, None) in (None, False),
        scope.active,
        inert,
    )


def _data_kind(args) -> str:
    """The family of ``--data`` (``cifar10``, ``mnist``, ``folder``, ``synthetic``, a file)."""
    text = getattr(args, "data", None) or ""
    return (
        text.split(":", 1)[0] if ":" in text else ("synthetic" if text == "synthetic" else "file")
    )


# ----------------------------------------------------------------------------- the model
_STEP = _given("--run", ("--run", "RUN"))
_NOT_WITH_RUN = Scope(
    "without --run (a train folder brings its own model and weights)",
    lambda a: not getattr(a, "run", None),
    (),
    ("--run", "RUN"),
)
_MODEL_SCOPES = {
    "step": _STEP,
    **{
        dest: _NOT_WITH_RUN
        for dest in ("checkpoint", "pretrained", "width", "num_classes", "padding", "init_seed")
    },
}

# ----------------------------------------------------------------------------- executors
_SHARDED = Scope(
    "with --shards N above 1 (the shards' executor)",
    lambda a: (getattr(a, "shards", 1) or 1) > 1,
    ("--shards", "2"),
    (),
)


def _executor_scopes(within: Scope | None) -> dict[str, Scope]:
    """Ray's, Slurm's and the local executor's own options (``within``: where an executor
    runs at all, e.g. ``measure --shards N``)."""

    def on(*kinds: str) -> Scope:
        active = ("--executor", kinds[0])
        inert = ("--executor", next(k for k in ("local", "ray", "slurm") if k not in kinds))
        scope = _value_in("executor", kinds, active, inert)
        return _both(within, scope) if within is not None else scope

    scopes = {
        "workers": on("local"),
        "address": on("ray"),
        "connect_timeout": on("ray", "slurm"),
        "cpus_per_run": on("ray", "slurm"),
        "gpus_per_run": on("ray", "slurm"),
        **{
            d: on("slurm")
            for d in ("slurm_partition", "slurm_time", "slurm_cluster", "slurm_param")
        },
    }
    if within is not None:
        scopes["executor"] = within
    return scopes


# ----------------------------------------------------------------------------- measure
_TPS = _value_in("deformation", ("tps",), ("--deformation", "tps"), ("--deformation", "diffeo"))
_DIFFEO = _value_in("deformation", ("diffeo",), ("--deformation", "diffeo"), ())
_NO_REPLAY = ("--deformations", "FILE.pt")
_ATTACK = Scope(
    "with --worst-case or --min-flip",
    lambda a: bool(a.worst_case or a.min_flip),
    ("--worst-case",),
    (),
)
_SCORES = Scope(
    "with --worst-case, --min-flip or --lie-derivative (measure reads class scores only there)",
    lambda a: bool(a.worst_case or a.min_flip or a.lie_derivative),
    ("--worst-case",),
    (),
)
_MEASURE = {
    **_MODEL_SCOPES,
    "output_key": _SCORES,
    "grid": _without(_TPS, "--deformations", _NO_REPLAY),
    "max_disp": _without(_TPS, "--deformations", _NO_REPLAY),
    **{
        d: _without(_DIFFEO, "--deformations", ("--deformation", "diffeo") + _NO_REPLAY)
        for d in ("temperature", "displacement", "cut")
    },  # fmt: skip
    "lie_images": _given("--lie-derivative", ("--lie-derivative", "translate")),
    "no_lie_contributions": _given("--lie-derivative", ("--lie-derivative", "translate")),
    "lie_derivative_convention": _given("--lie-derivative", ("--lie-derivative", "translate")),
    "force_replay": _given("--deformations", _NO_REPLAY),
    **{d: _ATTACK for d in ("attack_steps", "attack_restarts", "attack_layer", "attack_objective")},
    "flip_max": _given("--min-flip", ("--min-flip",)),
    **_executor_scopes(_SHARDED),
}

# ----------------------------------------------------------------------------- translate


def _protocols(args) -> list[str]:
    if args.protocol is not None:
        return [p.strip() for p in args.protocol.split(",") if p.strip()]
    from defstab.translate.presets import get_preset

    return list(get_preset(args.preset).protocols)


def _robust(args) -> list[str]:
    if args.robust_grid is not None:
        return [g.strip() for g in args.robust_grid.split(",") if g.strip() not in ("", "none")]
    from defstab.translate.presets import get_preset

    return list(get_preset(args.preset).robust_grids)


def _protocol_in(*names: str) -> Scope:
    return Scope(
        f"to the {' or '.join(names)} protocol (--protocol)",
        lambda a: any(p in names for p in _protocols(a)),
        ("--protocol", names[0]),
        ("--protocol", "subpixel"),
    )


_ROBUST = Scope(
    "with the accuracy under the worst shift (--robust-grid, or the michaeli preset)",
    lambda a: bool(_robust(a)),
    ("--robust-grid", "integer"),
    ("--robust-grid", "none"),
)
_TRANSLATE = {
    **_MODEL_SCOPES,
    "fraction": _protocol_in("fractional"),
    "object_size": _protocol_in("embed", "inpaint", "scale"),
    "background": _protocol_in("embed"),
    "crop_size": _protocol_in("crop", "random-pairs"),
    "window": _protocol_in("random-pairs", "circular-pairs"),
    "pairs_per_batch": _protocol_in("random-pairs", "circular-pairs"),
    "robust_geometry": _ROBUST,
    "robust_radius": _ROBUST,
    "robust_up": Scope(
        "with the fraction grid of the worst shift (--robust-grid fraction)",
        lambda a: "fraction" in _robust(a),
        ("--robust-grid", "fraction"),
        ("--robust-grid", "integer"),
    ),
}

# ----------------------------------------------------------------------------- others
_BASELINE_MODEL = _given("--baseline-model", ("--baseline-model", "vgg_cifar_maxpool"))
_PERTURB = {
    **_MODEL_SCOPES,
    "centre": Scope(
        "to the rotate and scale perturbations (--perturbations)",
        lambda a: any(p.strip() in ("rotate", "scale") for p in a.perturbations.split(",")),
        ("--perturbations", "rotate"),
        ("--perturbations", "translate"),
    ),
    "baseline_checkpoint": _BASELINE_MODEL,
    "baseline_width": _BASELINE_MODEL,
    "baseline_pretrained": _BASELINE_MODEL,
}

_DEFORM_REPLAY = ("--displacements", "FILE.pt")
_DEFORM = {
    **{
        d: _without(
            _value_in("kind", ("tps",), ("--kind", "tps"), ("--kind", "diffeo")),
            "--displacements",
            _DEFORM_REPLAY,
        )
        for d in ("grid", "max_disp", "padding")
    },  # fmt: skip
    **{
        d: _without(
            _value_in("kind", ("diffeo",), ("--kind", "diffeo"), ("--kind", "tps")),
            "--displacements",
            ("--kind", "diffeo") + _DEFORM_REPLAY,
        )
        for d in ("temperature", "displacement", "cut")
    },  # fmt: skip
    "spatial_preset": _value_in("kind", ("spatial",), ("--kind", "spatial"), ("--kind", "tps")),
    "transforms": _value_in("kind", ("spatial",), ("--kind", "spatial"), ("--kind", "tps")),
    "displacements": _value_in("kind", ("tps", "diffeo"), ("--kind", "tps"), ("--kind", "spatial")),
    "seed": Scope(
        "to random deformations (not with --displacements or --transforms)",
        lambda a: not (a.displacements or a.transforms),
        (),
        _DEFORM_REPLAY,
    ),
}

_SYNTHETIC = Scope(
    "with --data synthetic[:C]",
    lambda a: _data_kind(a) == "synthetic",
    ("--data", "synthetic"),
    (),
)
_TRAIN = {
    "templates": _SYNTHETIC,
    "per_class": _SYNTHETIC,
    "regenerate": _SYNTHETIC,
    "download": Scope(
        "with --data cifar10:PATH or mnist:PATH",
        lambda a: _data_kind(a) in ("cifar10", "mnist"),
        (),
        ("--data", "synthetic"),
    ),
    "augment_shift": Scope(
        "without --no-augment", lambda a: not a.no_augment, (), ("--no-augment",)
    ),
}


def _experiment_in(*names: str) -> Scope:
    return Scope(
        f"to the experiment{'s' if len(names) > 1 else ''} {', '.join(names)}",
        lambda a: a.name in names,
        (names[0],),
        (next(n for n in ("smooth-init", "synthetic", "pooling") if n not in names),),
    )


#: the experiments that compare downsampling types (their networks are E1's plan)
ARCHS_EXPERIMENTS = ("pooling", "smoothness", "random-labels", "antialias", "augmentation",
                     "measures", "worst-case")  # fmt: skip
_EXPERIMENT = {
    "arch": _experiment_in("smooth-init"),
    "archs": _experiment_in(*ARCHS_EXPERIMENTS),
    "templates": _experiment_in("synthetic"),
    "data": _experiment_in(*(n for n in (*ARCHS_EXPERIMENTS, "smooth-init"))),
    "epochs_sweep": _experiment_in(*(n for n in (*ARCHS_EXPERIMENTS, "synthetic"))),
    **_executor_scopes(None),
}

_MODELS = {"image_size": _given("--strides", ("--strides",))}

#: command → option dest → where it applies; an option not named applies everywhere in
#: its command.
SCOPES: dict[str, dict[str, Scope]] = {
    "measure": _MEASURE,
    "translate": _TRANSLATE,
    "perturb": _PERTURB,
    "spatial": dict(_MODEL_SCOPES),
    "smoothness": dict(_MODEL_SCOPES),
    "deform": _DEFORM,
    "train": _TRAIN,
    "experiment": _EXPERIMENT,
    "models": _MODELS,
}


def check_option_scopes(command: str, args: Any, given: dict[str, str]) -> None:
    """One sentence for the first option given where it has no effect. ``args``: the parsed
    options or a request (anything with the options as attributes); ``given``: {field: the
    option as written} of those the user chose."""
    for dest, scope in SCOPES.get(command, {}).items():
        if dest in given and not scope.applies(args):
            raise ValueError(
                f"{given[dest]} has no effect here: it applies {scope.words}; drop it."
            )
