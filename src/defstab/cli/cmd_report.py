"""``defstab report DIR``: one self-contained HTML file of every experiment under DIR."""

from __future__ import annotations

HELP = "write a self-contained HTML report of a results folder"  # one line in `defstab --help`


def add_parser(sub):
    p = sub.add_parser("report", help=HELP)
    p.add_argument(
        "folder",
        help="any defstab output folder (experiment, demo, train, measure, smoothness, "
        "translate), or a folder holding several",
    )
    p.add_argument("-o", "--output", "--out", dest="output", default="report.html")
    p.add_argument("--title", default="defstab report")
    return p


def run(args) -> None:
    from pathlib import Path

    from defstab.plotting.report import write_report

    output = Path(args.output)
    if output.is_dir():
        raise ValueError(f"-o {output} is a folder; give a file name such as report.html.")
    if output.suffix.lower() not in (".html", ".htm"):
        raise ValueError(f"-o {output} should end in .html (the report is one HTML file).")

    print(f"wrote {write_report(args.folder, args.output, args.title)}")
