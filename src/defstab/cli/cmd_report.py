"""``defstab report DIR``: one self-contained HTML file of every experiment under DIR."""

from __future__ import annotations


def add_parser(sub):
    p = sub.add_parser("report", help="write a self-contained HTML report of a results folder")
    p.add_argument("folder", help="results folder (the --out of experiment/demo)")
    p.add_argument("-o", "--output", default="report.html")
    p.add_argument("--title", default="defstab report")
    return p


def run(args) -> None:
    from defstab.plotting.report import write_report

    print(f"wrote {write_report(args.folder, args.output, args.title)}")
