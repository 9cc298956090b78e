"""``--config FILE.toml`` on every command: the options of a run written down once.

The keys are the long option names with ``_`` for ``-`` (``model = "vgg_cifar_maxpool"``,
``no_noise = true``, ``images = 64``). The file's settings become options placed right
after the command's name, so whatever the command line gives after them wins, every value
goes through the same parsing, ranges and option scopes as a typed one, and the same
settings give the same run (byte-identical tables) whichever way they are given. An
unknown key is refused naming the key. Positional arguments (deform's images, the
experiment's name, report's folder) stay on the command line. Importing this module
imports nothing heavy.

Example (``measure.toml``)::

    model = "vgg_cifar_maxpool"
    width = 0.25
    data = "cifar10:~/data/cifar-10-batches-py"
    images = 256
    no_noise = true
    out = "results/measure"
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

OPTION = "--config"


def config_path(argv: list[str]) -> tuple[str | None, list[str]]:
    """(the FILE of ``--config FILE`` or ``--config=FILE``, ``argv`` without it)."""
    rest, path, i = [], None, 0
    while i < len(argv):
        token = argv[i]
        if token == OPTION:
            if i + 1 >= len(argv):
                raise ValueError(f"{OPTION} needs a FILE.toml.")
            path, i = argv[i + 1], i + 2
            continue
        if token.startswith(OPTION + "="):
            path = token.split("=", 1)[1]
        else:
            rest.append(token)
        i += 1
    return path, rest


def read_config(path: str) -> dict:
    """The TOML file's table, or one sentence."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib

    file = Path(path).expanduser()
    try:
        with file.open("rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise ValueError(f"{OPTION} {path}: no such file.") from None
    except IsADirectoryError:
        raise ValueError(f"{OPTION} {path} is a folder; give a .toml file.") from None
    except tomllib.TOMLDecodeError as e:
        raise ValueError(f"{OPTION} {path} is not valid TOML ({e}).") from None
    return data


def config_tokens(parser: argparse.ArgumentParser, settings: dict, path: str) -> list[str]:
    """The options ``settings`` stand for, as command-line tokens of ``parser``."""
    options = {
        a.dest: a for a in parser._actions if a.option_strings and a.dest not in ("help", "config")
    }
    tokens = []
    for key, value in settings.items():
        action = options.get(key)
        if action is None:
            from defstab.errors import unknown_name_message

            what = f"{parser.prog.split()[-1]} option"
            raise ValueError(
                f"{OPTION} {path}: {unknown_name_message(what, key, sorted(options))} "
                "(keys are the long option names with _ for -)"
            )
        option = max(action.option_strings, key=len)
        if action.nargs == 0:  # a flag: true gives it, false leaves it out
            if not isinstance(value, bool):
                raise ValueError(f"{OPTION} {path}: {key} is a flag; give true or false.")
            tokens += [option] if value else []
        elif isinstance(action, argparse._AppendAction):
            for item in value if isinstance(value, list) else [value]:
                tokens += [option, _text(item)]
        elif isinstance(value, dict):
            raise ValueError(f"{OPTION} {path}: {key} takes a value, not a table.")
        else:
            tokens += [option, _text(value)]
    return tokens


def _text(value) -> str:
    """A TOML value as the command line writes it (lists as comma-separated items)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(_text(v) for v in value)
    return str(value)


def with_config(argv: list[str], command: str | None, parser_of) -> list[str]:
    """``argv`` with the ``--config`` file's options placed right after the command's
    name (so the command line's own options, later, win). ``parser_of(command)`` is the
    command's parser."""
    path, rest = config_path(argv)
    if path is None:
        return argv
    if command is None:
        raise ValueError(f"{OPTION} goes after a command, e.g. defstab measure {OPTION} FILE.")
    parser = parser_of(command)
    settings = read_config(path)
    models = model_tokens(parser, settings, path, rest[rest.index(command) + 1 :])
    tokens = models + config_tokens(parser, settings, path)
    at = rest.index(command) + 1
    return rest[:at] + tokens + rest[at:]


def model_tokens(parser, settings: dict, path: str, given: list[str]) -> list[str]:
    """``defstab bench``'s ``models`` key (taken out of ``settings``): a list of model
    names or tables of model options, as MODEL arguments::

        models = ["res/train", {model = "vgg_cifar_blurpool", width = 0.25}]

    One sentence when the command line names models too, or for an item of another kind."""
    positional = {a.dest for a in parser._actions if not a.option_strings}
    if "models" not in positional or "models" not in settings:
        return []
    items = settings.pop("models")
    if parser.parse_known_args(given)[0].models:
        raise ValueError(
            f"{OPTION} {path} names the models; give them there or on the command line, not both."
        )
    tokens = []
    for item in items if isinstance(items, list) else [items]:
        if isinstance(item, str):
            tokens.append(item)
            continue
        name = item.get("model") or item.get("run") if isinstance(item, dict) else None
        if not isinstance(name, str):
            raise ValueError(
                f"{OPTION} {path}: each of models is a name or a table with model (or run) "
                f'and model options, e.g. {{model = "vgg_cifar_maxpool", width = 0.25}}.'
            )
        own = [f"{k}={_text(v)}" for k, v in item.items() if k not in ("model", "run")]
        tokens.append(name + ("@" + ",".join(own) if own else ""))
    return tokens
