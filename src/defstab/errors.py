"""Errors that the command line reports in one sentence (light: no torch import)."""


class FindingError(RuntimeError):
    """Computing a finding's effect failed for a seed that has its data: a coding error
    or a malformed result, never a reason to drop the seed quietly."""
