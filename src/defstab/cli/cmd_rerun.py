"""``defstab rerun FOLDER [--out NEW]``: replay the request a result folder records.

measure, translate, perturb, spatial, smoothness and dataset-bias record in their
``config.json`` the command line that made the folder (a ``--config`` file's options
expanded, ``--out`` left out), the working folder it ran in and the thread count. Rerun
runs it again from that folder into ``--out`` (default: FOLDER itself, replaced whole when
the run completes), so relative paths mean what they meant; at the same thread count it
gives the same tables, byte for byte.
"""

from __future__ import annotations

HELP = "replay the request a result folder records (same tables, same thread count)"


def add_parser(sub):
    p = sub.add_parser("rerun", help=HELP, description=__doc__.split("\n\n")[1])
    p.add_argument("folder", help="a result folder of measure, translate, perturb, spatial, …")
    p.add_argument("--out", default=None, help="where the rerun writes (default: FOLDER)")
    return p


def recorded_request(folder) -> dict:
    """The folder's recorded request, or one sentence saying why there is none."""
    import json
    from pathlib import Path

    config = Path(folder) / "config.json"
    if not Path(folder).is_dir():
        raise ValueError(f"{folder} is not a folder; give a result folder of a defstab command.")
    try:
        record = json.loads(config.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"{folder} holds no config.json: it is not a defstab result.") from None
    except ValueError:
        raise ValueError(f"{config} is not valid JSON; rerun cannot read its request.") from None
    request = record.get("request") if isinstance(record, dict) else None
    if isinstance(request, dict) and request.get("why"):
        raise ValueError(
            f"{folder} cannot be replayed from the command line: {request['why']}; run it "
            "again from Python."
        )
    if not isinstance(request, dict) or not request.get("argv"):
        command = record.get("command", "?") if isinstance(record, dict) else "?"
        raise ValueError(
            f"{folder} records no request ('defstab {command}' folders made before this "
            "version, and train and experiment folders, which resume instead); run its "
            "command again."
        )
    return request


def run(args) -> int:
    """The replayed command's exit status (its own error, if any, is already said)."""
    import os
    from pathlib import Path

    import torch

    from defstab.cli.common import warn
    from defstab.cli.main import main

    request = recorded_request(args.folder)
    out = Path(args.out or args.folder).resolve()
    threads = request.get("threads")
    if threads and torch.get_num_threads() != threads:
        warn(
            f"{args.folder} was made with {threads} threads and this process has "
            f"{torch.get_num_threads()}: floating-point sums may round differently."
        )
    here = os.getcwd()
    try:
        os.chdir(request["cwd"])  # relative paths mean what they meant then
    except OSError:
        raise ValueError(
            f"the folder {args.folder} was made in, {request['cwd']}, is gone; its relative "
            "paths cannot be resolved."
        ) from None
    try:
        return main([*request["argv"], "--out", str(out)])
    finally:
        os.chdir(here)
