"""The result folder of a protocol's run, the same from the command line and Python:
checked before any work, staged and swapped in whole (a failure leaves the previous
one), and recording the request that made it (``config.json`` → ``request``), which
``defstab rerun`` replays."""

from __future__ import annotations

import os
from collections.abc import Callable

from defstab.requests.fields import request_argv


def in_result_folder(command: str, out, work: Callable, keep: tuple[str, ...] = ()):
    """``work(folder, final)``'s outcome, written into a staging folder beside ``out``
    and swapped in as ``out`` when it returns (``keep``: resume files of the previous
    folder carried over). ``out`` None: ``work(None, None)``, nothing written. A folder
    holding another command's result is refused before any work."""
    if out is None:
        return work(None, None)
    from defstab.io.result_folder import check_owner, staged_folder
    from defstab.pipeline.outcome import check_out_folder

    final = check_out_folder(out)
    check_owner(final, command)
    with staged_folder(final, keep=keep) as stage:
        return work(stage, final)


def request_record(command: str, request, model, data, extra: list[str], record,
                   needs_model: bool = True) -> dict:  # fmt: skip
    """What a result folder records for ``defstab rerun``: the command line's own
    ``record``, or the command line that asks for ``request`` on ``model`` and ``data``
    (``extra``: further options, e.g. ``--shards 4``; ``needs_model``: False for a
    protocol without one). A model given as an object cannot be asked for on a command
    line: said instead."""
    import torch

    from defstab.pipeline.models import model_options

    if record is not None:
        return record
    options = model_options(model) if needs_model else None
    base = {"cwd": os.getcwd(), "threads": torch.get_num_threads()}
    if needs_model and options is None:
        return base | {"argv": None, "why": "the model was given as a Python object"}
    argv = [command, *(request_argv(options) if options is not None else [])]
    argv += request_argv(data) if data is not None else []
    return base | {"argv": argv + request_argv(request) + extra}
