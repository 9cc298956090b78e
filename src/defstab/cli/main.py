"""Entry point: ``defstab SUBCOMMAND ...``.

Each subcommand lives in its own module with ``add_parser(subparsers)`` and ``run(args)``.
User errors (bad values, missing files) end in one sentence on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from defstab import __version__

# Each command's module is imported when the parser is built (its add_parser defines the
# options); the heavy work a command does is imported inside its run().
SUBCOMMANDS = [
    "demo",
    "deform",
    "measure",
    "smoothness",
    "translate",
    "models",
    "train",
    "experiment",
    "report",
]


class _Parser(argparse.ArgumentParser):
    """Argument errors in one line (argparse's default repeats the whole usage first)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="defstab",
        description="Measure how stable a CNN's representations are to deformations and shifts.",
    )
    parser.add_argument("--version", action="version", version=f"defstab {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in SUBCOMMANDS:
        module = importlib.import_module(f"defstab.cli.cmd_{name.replace('-', '_')}")
        p = module.add_parser(sub)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        args._run(args)
    except (ValueError, OSError, FloatingPointError) as e:
        # user mistakes and file problems: one sentence, no traceback
        message = " ".join(str(e).split()) or type(e).__name__
        if isinstance(e, OSError) and e.filename and str(e.filename) not in message:
            message = f"{e.strerror or message}: {e.filename}"
        print(f"defstab {args.command}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"defstab {args.command}: interrupted; finished results were kept.", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
