"""The option checks every protocol makes before any work, the same from both doors:
each chosen option where it has an effect (:mod:`defstab.requests.scopes`) and every
value in its range (:mod:`defstab.requests.ranges`)."""

from __future__ import annotations

from dataclasses import asdict
from types import SimpleNamespace

from defstab.requests.fields import given_fields


def chosen_fields(request, model, data) -> dict[str, str]:
    """{field: option} of the fields a Python caller changed from their defaults (the
    command line passes what its user wrote instead)."""
    from defstab.pipeline.models import model_options

    options = model_options(model)
    chosen = given_fields(request) | (given_fields(data) if data is not None else {})
    return chosen | (given_fields(options) if options is not None else {})


def check_options(command: str, request, model, data, given: dict[str, str] | None,
                  **extra) -> dict[str, str]:  # fmt: skip
    """Check ``request``, the model options and ``data`` (and ``extra`` settings such as
    ``shards=``) as ``defstab COMMAND`` checks its options; returns ``given`` (the
    fields changed from their defaults when None)."""
    from defstab.pipeline.models import model_options
    from defstab.requests.ranges import check_option_ranges
    from defstab.requests.scopes import check_option_scopes

    options = model_options(model)
    view = SimpleNamespace(
        **(asdict(options) if options is not None else {}),
        **(asdict(data) if data is not None else {}),
        **asdict(request),
        **extra,
    )
    if given is None:
        given = chosen_fields(request, model, data)
    check_option_scopes(command, view, given)
    check_option_ranges(view)
    return given
