"""MkDocs hook: the command-line reference, generated from defstab's argparse parsers."""

from __future__ import annotations

MARK = "<!-- cli-reference -->"


def cli_reference() -> str:
    from defstab.cli.main import SUBCOMMANDS, build_parser

    parts = []
    for name in SUBCOMMANDS:
        parser = build_parser(name)
        sub = next(a for a in parser._actions if a.dest == "command").choices[name]
        sub.prog = f"defstab {name}"
        parts.append(f"## `defstab {name}`\n\n```text\n{sub.format_help().rstrip()}\n```\n")
    return "\n".join(parts)


def on_page_markdown(markdown: str, page, config, files) -> str:
    if MARK in markdown:
        return markdown.replace(MARK, cli_reference())
    return markdown
