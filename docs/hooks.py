"""MkDocs hooks: the command-line reference, generated from defstab's argparse parsers
(themselves generated from the requests' fields, as is the request table), and the
docstrings' Sphinx roles (``:class:`~defstab.x.Y```) turned into links."""

from __future__ import annotations

import re
import sys
from pathlib import Path

# the package's source, for a docs-only environment (the docs tools alone, no torch: see
# the docs' "Building the docs"); an installed defstab is used as it is
SRC = Path(__file__).resolve().parents[1] / "src"
if str(SRC) not in sys.path:
    sys.path.append(str(SRC))
# imported now: mkdocstrings takes its own `paths: [src]` off sys.path again after use
import defstab.cli.main  # noqa: E402, F401

MARK = "<!-- cli-reference -->"
REQUEST_MARK = "<!-- request-reference -->"
BENCH_MARK = "<!-- bench-protocols -->"
#: A Sphinx role as mkdocstrings renders it: the role's name, then the target in <code>.
ROLE = re.compile(r":(?:class|func|meth|mod|data|attr|exc):<code>(~?)([\w.\s]+)</code>")


def cli_reference() -> str:
    from defstab.cli.main import SUBCOMMANDS, build_parser

    parts = []
    for name in SUBCOMMANDS:
        parser = build_parser(name)
        sub = next(a for a in parser._actions if a.dest == "command").choices[name]
        sub.prog = f"defstab {name}"
        parts.append(f"## `defstab {name}`\n\n```text\n{sub.format_help().rstrip()}\n```\n")
    return "\n".join(parts)


def request_reference() -> str:
    """A table of each registered protocol's request fields, from their metadata (as the
    options are)."""
    from defstab.requests.fields import field_rows
    from defstab.requests.registry import PROTOCOLS

    parts = []
    for protocol in PROTOCOLS.values():
        lines = [
            f"**`{protocol.request.__name__}`** (`defstab {protocol.command}`; {protocol.paper})",
            "",
            "| field | option | type | default | choices | range | applies | meaning |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for row in field_rows(protocol.request, protocol.command):
            name = row["option"].removeprefix("--").replace("-", "_")
            cells = [f"`{name}`", f"`{row['option']}`", row["type"], row["default"],
                     row["choices"], row["range"], row["applies"],
                     row["help"].replace("|", "\\|")]  # fmt: skip
            lines.append("| " + " | ".join(cells) + " |")
        parts.append("\n".join(lines))
    return "\n\n".join(parts)


def bench_protocols() -> str:
    """The card's protocols, from the registry and the card's declaration (as
    ``defstab bench --list`` prints them)."""
    from defstab.pipeline.bench_list import list_rows

    lines = ["| protocol | command | paper | metrics | unit | more stable | quick | standard "
             "| paper settings |", "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for row in list_rows():
        cells = [f"`{row['protocol']}`", f"`defstab {row['command']}`", row["source"],
                 row["metrics"], row["unit"], row["direction"],
                 *(f"`{row[b]}`" for b in ("quick", "standard", "paper"))]  # fmt: skip
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines)


def on_page_markdown(markdown: str, page, config, files) -> str:
    if BENCH_MARK in markdown:
        markdown = markdown.replace(BENCH_MARK, bench_protocols())
    if MARK in markdown:
        markdown = markdown.replace(MARK, cli_reference())
    if REQUEST_MARK in markdown:
        markdown = markdown.replace(REQUEST_MARK, request_reference())
    return markdown


def _link(match: re.Match) -> str:
    short, target = match.group(1), re.sub(r"\s+", "", match.group(2))  # a wrapped name
    shown = target.rsplit(".", 1)[-1] if short else target
    # resolved by mkdocs-autorefs when the target is documented; plain code otherwise
    return f'<autoref identifier="{target}" optional><code>{shown}</code></autoref>'


def on_page_content(html: str, page, config, files) -> str:
    return ROLE.sub(_link, html)
