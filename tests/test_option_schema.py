"""Every option given where it has no effect is refused, in one sentence, before any work.

The walk covers every scoped option of every command (``defstab.requests.scopes.SCOPES``):
given in its ``inert`` context, ``defstab`` exits 2 naming the option (the data and model
named do not exist, so a refusal that came after loading would name them instead); in its
``active`` context the scope check lets it through.
"""

from __future__ import annotations

import argparse

import pytest

from defstab.cli.main import build_parser, command_parser, given_options, main
from defstab.requests.scopes import SCOPES, check_option_scopes

NO_DATA = "cifar10:/nonexistent/cifar"
#: the fewest arguments each command needs (nothing they name exists)
BASE = {
    "measure": ["--model", "vgg_cifar_maxpool", "--data", NO_DATA],
    "translate": ["--model", "vgg_cifar_maxpool", "--data", NO_DATA],
    "perturb": ["--model", "vgg_cifar_maxpool", "--data", NO_DATA],
    "spatial": ["--model", "vgg_cifar_maxpool", "--data", NO_DATA],
    "smoothness": ["--model", "vgg_cifar_maxpool"],
    "deform": ["/nonexistent/image.png"],
    "train": ["--model", "vgg_cifar_maxpool", "--data", NO_DATA],
    "experiment": [],
    "models": [],
}


def _value(action: argparse.Action) -> list[str]:
    if action.nargs == 0:
        return []
    if action.choices:
        return [str(next(iter(action.choices)))]
    if action.type is int:
        return ["3"]
    if action.type is float:
        return ["0.5"]
    return ["x"]


def _argv(command: str, fragment: tuple, option: str, action, out) -> list[str]:
    argv = [command]
    if command == "experiment":  # the experiment's name first
        named = fragment and not fragment[0].startswith("-")
        argv.append(fragment[0] if named else "pooling")
        fragment = fragment[1:] if named else fragment
    argv += BASE[command] + list(fragment) + [option, *_value(action)]
    if any(a.dest == "out" for a in command_parser(build_parser(command), command)._actions):
        argv += ["--out", str(out)]
    return argv


CASES = [(command, dest) for command, scopes in SCOPES.items() for dest in scopes]


@pytest.mark.parametrize(("command", "dest"), CASES, ids=[f"{c}-{d}" for c, d in CASES])
def test_an_option_where_it_has_no_effect_is_refused(command, dest, tmp_path, capsys):
    parser = build_parser(command)
    sub = command_parser(parser, command)
    action = next(a for a in sub._actions if a.dest == dest)
    option = action.option_strings[-1]
    scope = SCOPES[command][dest]
    out = tmp_path / "out"

    argv = _argv(command, scope.inert, option, action, out)
    assert main(argv) == 2, argv
    err = capsys.readouterr().err
    assert f"{option} has no effect here" in err and err.count("\n") == 1, err
    assert not out.exists()  # refused before anything was written

    # where it applies, the scope check lets it through
    argv = _argv(command, scope.active, option, action, out)
    args = parser.parse_args(argv)
    check_option_scopes(command, args, given_options(sub, argv))


def test_every_scope_names_an_option_of_its_command():
    for command, scopes in SCOPES.items():
        dests = {a.dest for a in command_parser(build_parser(command), command)._actions}
        assert set(scopes) <= dests, (command, set(scopes) - dests)


def test_options_left_at_their_defaults_are_not_refused():
    """A default is not a choice the user made: only options written are checked."""
    argv = ["deform", "--kind", "spatial", "/nonexistent/image.png"]  # --grid defaults to 5
    parser = build_parser("deform")
    sub = command_parser(parser, "deform")
    check_option_scopes("deform", parser.parse_args(argv), given_options(sub, argv))
    assert given_options(sub, argv) == {"kind": "--kind"}


@pytest.mark.parametrize(
    "argv",
    [
        ["measure", "--lie-deriv", "translate"],  # --lie-derivative, abbreviated
        ["translate", "--robust-rad", "8"],
        ["train", "--epoch", "3"],
    ],
)
def test_abbreviated_options_are_refused(argv, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv + ["--model", "m", "--data", NO_DATA, "--out", "/nonexistent/out"])
    assert exit_.value.code == 2
    assert "unrecognized arguments" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "option"),
    [  # the issue's own examples
        (["translate", "--protocol", "circular", "--robust-radius", "8"], "--robust-radius"),
        (["translate", "--protocol", "embed", "--fraction", "4"], "--fraction"),
        (["deform", "--temperature", "0.01", "a.png"], "--temperature"),
        (["deform", "--kind", "spatial", "--displacements", "d.pt", "a.png"], "--displacements"),
        (["deform", "--transforms", "per_image.csv", "a.png"], "--transforms"),
        (["perturb", "--baseline-run", "R", "--baseline-width", "0.5"], "--baseline-width"),
    ],
)
def test_the_reported_cases(argv, option, tmp_path, capsys):
    extra = [] if argv[0] == "deform" else ["--model", "m", "--data", NO_DATA,
                                            "--out", str(tmp_path / "o")]  # fmt: skip
    assert main(argv + extra) == 2
    assert f"{option} has no effect here" in capsys.readouterr().err
