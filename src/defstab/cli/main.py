"""Entry point: ``defstab SUBCOMMAND ...``.

Each subcommand lives in its own module with ``add_parser(subparsers)`` and ``run(args)``.
User errors (bad values, missing files) end in one sentence on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from defstab import __version__
from defstab.cli.config_file import with_config
from defstab.errors import FindingError
from defstab.requests.ranges import check_option_ranges
from defstab.requests.scopes import check_option_scopes

# Startup cost: the command modules import nothing heavy at module level (their HELP line
# is all `defstab --help` needs); only the chosen command's add_parser runs (it may import
# what its options need), and the heavy work is imported inside its run(). So
# `defstab --version` and `defstab --help` never import torch.
SUBCOMMANDS = [
    "demo",
    "deform",
    "measure",
    "smoothness",
    "translate",
    "perturb",
    "spatial",
    "bench",
    "models",
    "train",
    "experiment",
    "dataset-bias",
    "report",
    "rerun",
]


class _Parser(argparse.ArgumentParser):
    """Argument errors in one line (argparse's default repeats the whole usage first), and
    no abbreviated options: ``--lie-deriv`` is refused rather than read as
    ``--lie-derivative`` (so every option is seen under its own name, by the option
    scopes and by the shards' argument filter alike)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def chosen_command(argv: list[str]) -> str | None:
    """The subcommand named in ``argv`` (the first word that is one), or None."""
    return next((a for a in argv if a in SUBCOMMANDS), None)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser; only ``command``'s options are defined (all of them with None = every
    command, as the tests and docs use)."""
    parser = _Parser(
        prog="defstab",
        description="Measure how stable a CNN's representations are to deformations and shifts.",
    )
    parser.add_argument("--version", action="version", version=f"defstab {__version__}")
    sub = parser.add_subparsers(
        dest="command", metavar="COMMAND", required=True, parser_class=_Parser
    )
    for name in SUBCOMMANDS:
        module = importlib.import_module(f"defstab.cli.cmd_{name.replace('-', '_')}")
        if command is None or name == command:
            p = module.add_parser(sub)
            p.set_defaults(_run=module.run)
            p.add_argument(
                "--config",
                metavar="FILE.toml",
                help="options from a TOML file: the long option names with _ for - as keys "
                '(model = "vgg_cifar_maxpool", no_noise = true); options given here win',
            )
        else:
            sub.add_parser(name, help=module.HELP)
    return parser


def run_in_result_folder(args) -> int | None:
    """Run the command; a folder of another command's result is refused first. (Each
    result folder is staged and swapped in whole by the pipeline, defstab.pipeline.folders,
    the same from Python.)"""
    out = getattr(args, "out", None)
    if out is None or args.command in ("experiment", "demo", "rerun"):  # many results, or
        return args._run(args)  # a replay (its own command checks its folder)
    from defstab.io.result_folder import check_owner
    from defstab.pipeline.outcome import check_out_folder

    check_owner(check_out_folder(out), args.command)
    return args._run(args)


def request_record(argv: list[str]) -> dict:
    """The request a result folder records: the command line (a ``--config`` file's
    options expanded), ``--out`` left out, the working folder and the thread count — what
    ``defstab rerun FOLDER`` replays."""
    import os

    kept, skip = [], False
    for token in argv:
        if skip:
            skip = False
        elif token == "--out":
            skip = True
        elif not token.startswith("--out="):
            kept.append(token)
    torch = sys.modules.get("torch")
    return {
        "argv": kept,
        "cwd": os.getcwd(),
        "threads": torch.get_num_threads() if torch is not None else None,
    }


def given_options(parser: argparse.ArgumentParser, argv: list[str]) -> dict[str, str]:
    """{dest: the option as written} of the options ``argv`` gives explicitly to the
    command's ``parser`` (abbreviations are refused by the parser, so names are exact)."""
    spelled = {s: a.dest for a in parser._actions for s in a.option_strings}
    given = {}
    for token in argv:
        name = token.split("=", 1)[0] if token.startswith("--") else token
        if name in spelled:
            given.setdefault(spelled[name], name)
    return given


def command_parser(parser: argparse.ArgumentParser, name: str) -> argparse.ArgumentParser:
    """The parser of subcommand ``name`` inside ``parser``."""
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices[name]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    command = chosen_command(argv)
    try:  # --config FILE.toml: its options first, the command line's after them (they win)
        argv = with_config(argv, command, lambda c: command_parser(build_parser(c), c))
    except ValueError as e:
        print(f"defstab {command or ''}: error: {' '.join(str(e).split())}".replace("  ", " "),
              file=sys.stderr)  # fmt: skip
        return 2
    parser = build_parser(command or "")
    args = parser.parse_args(argv)
    try:
        # before anything is read or loaded: every option where it has an effect
        # (defstab.requests.scopes) and in its range (defstab.requests.ranges), one table each
        given = given_options(command_parser(parser, args.command), argv)
        check_option_scopes(args.command, args, given)
        args._given = given  # what the user wrote, beside what the defaults filled in
        check_option_ranges(args)
        args._argv = argv  # a command that runs parts of itself in child processes
        status = run_in_result_folder(args)
    except (ValueError, OSError, FloatingPointError) as e:
        # user mistakes and file problems: one sentence, no traceback
        message = " ".join(str(e).split()) or type(e).__name__
        if isinstance(e, OSError) and e.filename and str(e.filename) not in message:
            message = f"{e.strerror or message}: {e.filename}"
        print(f"defstab {args.command}: error: {message}", file=sys.stderr)
        return 2
    except FindingError as e:
        # not the user's mistake: a finding's code failed on results that are all there
        print(f"defstab {args.command}: error: {' '.join(str(e).split())}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"defstab {args.command}: interrupted; finished results were kept.", file=sys.stderr)
        return 130
    return status if isinstance(status, int) else 0  # rerun: the replayed command's


if __name__ == "__main__":
    sys.exit(main())
