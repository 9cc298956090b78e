"""Errors that the command line reports in one sentence (light: no torch import)."""

from __future__ import annotations

import difflib


class FindingError(RuntimeError):
    """Computing a finding's effect failed for a seed that has its data: a coding error
    or a malformed result, never a reason to drop the seed quietly."""


def unknown_name_message(kind: str, name: str, known: list[str]) -> str:
    """One short sentence: the close matches if any, else the first few known names."""
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
    if close:
        return f"unknown {kind} {name!r}. Did you mean {', '.join(repr(c) for c in close)}?"
    return f"unknown {kind} {name!r}. Known: {', '.join(known[:10])}" + (
        f" … ({len(known)} in all)" if len(known) > 10 else ""
    )
