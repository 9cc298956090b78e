"""Request fields that carry their own option: one source for the command line, the
Python API, config files and the docs.

A request is a plain dataclass; each field is made with :func:`option`, whose metadata
(:class:`Option`) says how the field is spelled on the command line, what it means, its
choices and — where the literature's settings differ between CIFAR-size and
ImageNet-size images — its default per image size (:class:`SizedDefault`). The
command line's parser is generated from the fields (:func:`add_options`), the parsed
arguments become the request again (:func:`from_namespace`), and a request becomes the
command line that asks for it (:func:`request_argv`), which is what a result folder
records and ``defstab rerun`` replays. Importing this module imports nothing heavy.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class SizedDefault:
    """A default that depends on the image side (px): ``small`` up to ``threshold``
    (CIFAR- and MNIST-size), ``large`` above (ImageNet-size), as the presets of the
    papers set them."""

    small: Any
    large: Any
    threshold: int = 64

    def at(self, side: int) -> Any:
        return self.small if side <= self.threshold else self.large

    def describe(self) -> str:
        return f"{self.small:g} for images ≤ {self.threshold} px, else {self.large:g}"


@dataclass(frozen=True)
class Option:
    """How a request field appears as an option.

    Its long option is ``--`` + the field name with ``-`` for ``_``; ``choices``,
    ``metavar``: as in argparse;
    ``sized``: the default per image size when the field's own default is None;
    ``group``: the heading of ``--help`` it is listed under; ``required``: the command
    line must give it; ``affects_result``: False for settings of how fast or where a run
    goes (worker processes, memory), which shards of one measurement may differ in;
    ``positional``: given without a flag (``defstab experiment NAME``); ``nargs``: "+"
    for a positional list (``defstab deform IMAGE …``: a tuple field).
    """

    help: str
    choices: tuple[Any, ...] | None = None
    metavar: str | None = None
    sized: SizedDefault | None = None
    group: str | None = None
    required: bool = False
    affects_result: bool = True
    positional: bool = False
    nargs: str | None = None


def option(default: Any = None, help: str = "", **kwargs) -> Any:
    """A request field with its :class:`Option` (keyword arguments as there)."""
    return field(default=default, metadata={"option": Option(help=help, **kwargs)})


def _display_type(cls, f) -> str:
    kind = value_type(cls, f)
    return "flag" if kind is bool else getattr(kind, "__name__", str(kind))


def options_of(cls) -> list[tuple[dataclasses.Field, Option]]:
    """(field, its Option) of every optional field of the request class ``cls``, in order."""
    return [(f, f.metadata["option"]) for f in dataclasses.fields(cls) if "option" in f.metadata]


def flag_of(f: dataclasses.Field, opt: Option) -> str:
    """The field's long option (``opt`` kept for a spelling of its own, should one come)."""
    return "--" + f.name.replace("_", "-")


def value_type(cls, f: dataclasses.Field) -> type:
    """The field's value type: ``int | None`` → int (annotations are strings under
    ``from __future__ import annotations``, so they are resolved here)."""
    hint = typing.get_type_hints(cls)[f.name]
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
    return hint


def help_text(f: dataclasses.Field, opt: Option) -> str:
    """The field's help, with its size-dependent default said from the metadata."""
    if opt.sized is not None:
        return f"{opt.help} (default {opt.sized.describe()})"
    return opt.help


def add_options(parser, cls, skip: tuple[str, ...] = (), help_for: dict | None = None) -> None:
    """Add an argparse option per field of ``cls`` to ``parser`` (an ArgumentParser or an
    argument group; grouped fields go to a group of that name, made once). ``skip``:
    fields the command does not have; ``help_for``: {field: the command's own help}."""
    groups: dict[str, Any] = {}
    for f, opt in options_of(cls):
        if f.name in skip:
            continue
        target = parser
        if opt.group is not None:
            if opt.group not in groups:
                groups[opt.group] = parser.add_argument_group(opt.group)
            target = groups[opt.group]
        kind = value_type(cls, f)
        shown = (help_for or {}).get(f.name) or help_text(f, opt)
        if opt.positional:
            extra = {"nargs": opt.nargs, "metavar": opt.metavar} if opt.nargs else {}
            if opt.nargs == "*":  # none may be given (argparse requires it without a default)
                extra["default"] = list(f.default)
            target.add_argument(f.name, choices=opt.choices, help=shown.replace("%", "%%"),
                                **extra)  # fmt: skip
            continue
        names = [flag_of(f, opt)]
        kwargs: dict[str, Any] = {"dest": f.name, "help": shown.replace("%", "%%")}
        if kind is bool:
            kwargs["action"] = "store_true"
        else:
            kwargs["default"] = f.default
            kwargs["type"] = kind
            if opt.required:
                kwargs["required"] = True
            if opt.choices is not None:
                kwargs["choices"] = list(opt.choices)
            if opt.metavar is not None:
                kwargs["metavar"] = opt.metavar
        target.add_argument(*names, **kwargs)


def from_namespace(cls, namespace, **extra):
    """The request ``cls`` of parsed arguments (any object with the fields as
    attributes; a field it lacks — an option the command does not have — keeps its
    default); ``extra`` sets fields that are not options."""
    values = {f.name: getattr(namespace, f.name, f.default) for f, _ in options_of(cls)}
    for f, opt in options_of(cls):
        if opt.nargs and isinstance(values[f.name], list):
            values[f.name] = tuple(values[f.name])  # argparse's list, as the field's tuple
    return cls(**values, **extra)


def given_fields(request) -> dict[str, str]:
    """{field: its option} of the fields of ``request`` that differ from their default:
    what a Python caller chose, as the command line's given options are what its user
    wrote (so both doors check the same options against their scopes)."""
    return {
        f.name: flag_of(f, opt)
        for f, opt in options_of(type(request))
        if getattr(request, f.name) != f.default
    }


def request_argv(request) -> list[str]:
    """The command-line options that ask for ``request`` (fields at their default are
    left out): what a result folder made from Python records, so that ``defstab rerun``
    replays it."""
    argv: list[str] = []
    positional = {f.name for f, opt in options_of(type(request)) if opt.positional}
    for name in positional:
        value = getattr(request, name)
        argv += [str(v) for v in value] if isinstance(value, tuple | list) else [str(value)]
    for name, flag in given_fields(request).items():
        value = getattr(request, name)
        if name in positional:
            continue
        if value is True:
            argv.append(flag)
        elif value is not False:
            argv += [flag, format(value, "g") if isinstance(value, float) else str(value)]
    return argv


def field_rows(cls, command: str | None = None) -> list[dict[str, str]]:
    """One row per option of ``cls``: option, type, default, choices, its range and
    where it applies (from the tables the checks use: :mod:`defstab.requests.ranges`,
    :mod:`defstab.requests.scopes`, for ``command``), and its help — the docs' reference
    tables are made from these."""
    from defstab.requests.ranges import RANGES
    from defstab.requests.scopes import SCOPES

    scopes = SCOPES.get(command or "", {})
    rows = []
    for f, opt in options_of(cls):
        if value_type(cls, f) is bool:
            default = "off"
        elif opt.sized is not None:
            default = opt.sized.describe()
        else:
            default = "—" if f.default in (None, "", ()) else str(f.default)
        rows.append(
            {
                "option": f.name if opt.positional else flag_of(f, opt),
                "type": _display_type(cls, f),
                "default": default,
                "choices": ", ".join(map(str, opt.choices)) if opt.choices else "",
                "range": RANGES[f.name].describe() if f.name in RANGES else "",
                "applies": scopes[f.name].words if f.name in scopes else "always",
                "help": opt.help,
            }
        )
    return rows
