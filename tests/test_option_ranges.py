"""One table of option ranges: every numeric option of every command is in it, and an
out-of-range value is refused before any work with the same sentence in every command."""

from __future__ import annotations

import argparse
import math

import pytest

from defstab.cli.main import SUBCOMMANDS, build_parser, main
from defstab.requests.ranges import RANGES, check_option_ranges
from defstab.requests.scopes import SCOPES


def _subparser(command: str) -> argparse.ArgumentParser:
    parser = build_parser(command)
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices[command]


def _numeric_options(command: str) -> list[argparse.Action]:
    return [a for a in _subparser(command)._actions if a.option_strings and a.type in (int, float)]


def _minimal_argv(command: str) -> list[str]:
    """The command with a placeholder for everything it requires (parsing must pass)."""
    argv = [command]
    for a in _subparser(command)._actions:
        value = str(a.choices[0]) if a.choices else "x"
        if not a.option_strings and a.nargs not in ("?", "*"):
            argv.append(value)
        elif a.required:
            argv += [a.option_strings[0], value]
    return argv


def _out_of_range(dest: str, kind) -> list[str]:
    allowed = RANGES[dest]
    bad = []
    if allowed.low is not None:
        bad.append(allowed.low if allowed.low_open else allowed.low - 1)
    if allowed.high is not None:
        bad.append(allowed.high if allowed.high_open else allowed.high + 1)
    texts = [str(kind(v)) for v in bad]
    return texts + (["nan", "inf"] if kind is float else [])


CASES = [
    (command, action.option_strings[0], action.dest, action.type, text)
    for command in SUBCOMMANDS
    for action in _numeric_options(command)
    for text in _out_of_range(action.dest, action.type)
]


def test_every_numeric_option_has_a_range_and_every_range_an_option():
    dests = {a.dest for c in SUBCOMMANDS for a in _numeric_options(c)}
    assert dests == set(RANGES)


@pytest.mark.parametrize("command,option,dest,kind,text", CASES)
def test_out_of_range_is_refused_the_same_way_everywhere(capsys, command, option, dest, kind, text):
    # in a context where the option has an effect (defstab.requests.scopes), so that the range
    # is what refuses it
    scope = SCOPES.get(command, {}).get(dest)
    context = list(scope.active) if scope else []
    argv = _minimal_argv(command)
    if command == "experiment" and context and not context[0].startswith("-"):
        argv[1], context = context[0], context[1:]  # the experiment's name
    assert main([*argv, *context, option, text]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    expected = (
        f"defstab {command}: error: {option} must be {RANGES[dest].describe()}, got {kind(text)}."
    )
    assert err == [expected]


def test_boundaries_and_huge_values():
    ok = argparse.Namespace(width=1e-9, momentum=0.0, target_train_acc=1.0, grid=2, seed=0)
    check_option_ranges(ok)  # every value on its boundary passes
    for name, value in [("momentum", 1.0), ("target_train_acc", 0.0), ("width", -0.0),
                        ("seed", 2**63), ("images", 10**400), ("max_disp", math.nan)]:  # fmt: skip
        with pytest.raises(ValueError, match=f"--{name.replace('_', '-')} must be"):
            check_option_ranges(argparse.Namespace(**{name: value}))
