"""``defstab demo``: the study in small, on built-in data, with an HTML report."""

from __future__ import annotations

HELP = "run a small version of the study on built-in data"  # one line in `defstab --help`


def add_parser(sub):
    p = sub.add_parser("demo", help=HELP)
    p.add_argument("--out", default="defstab-demo", help="results folder (default defstab-demo)")
    p.add_argument("--quick-test", action="store_true", help="a tiny run for tests (seconds)")
    p.add_argument("--quiet", action="store_true")
    return p


def run(args) -> None:
    from defstab.cli.common import check_out_folder
    from defstab.experiments.demo import run_demo

    check_out_folder(args.out)
    run_demo(args.out, tiny=args.quick_test, quiet=args.quiet)
