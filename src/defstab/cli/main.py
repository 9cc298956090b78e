"""Entry point: ``defstab SUBCOMMAND ...``.

Each subcommand lives in its own module with ``add_parser(subparsers)`` and ``run(args)``.
User errors (bad values, missing files) end in one sentence on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from defstab import __version__
from defstab.cli.ranges import check_option_ranges
from defstab.errors import FindingError

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
    "models",
    "train",
    "experiment",
    "dataset-bias",
    "report",
]


class _Parser(argparse.ArgumentParser):
    """Argument errors in one line (argparse's default repeats the whole usage first)."""

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
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in SUBCOMMANDS:
        module = importlib.import_module(f"defstab.cli.cmd_{name.replace('-', '_')}")
        if command is None or name == command:
            p = module.add_parser(sub)
            p.set_defaults(_run=module.run)
        else:
            sub.add_parser(name, help=module.HELP)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(chosen_command(argv) or "")
    args = parser.parse_args(argv)
    try:
        check_option_ranges(args)  # one table for every command (defstab.cli.ranges)
        args._argv = argv  # a command that runs parts of itself in child processes
        args._run(args)
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
