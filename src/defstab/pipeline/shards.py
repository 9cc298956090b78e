"""One measurement split over shards, resumed: shard i of N measures its range of images
and writes ``OUT/shards/shard-i-of-N.pt`` (atomically, last); the run that asks for N
shards runs the missing ones — in this process, in local worker processes, as Ray tasks
or as Slurm jobs (the executors of :mod:`defstab.experiments.executors`) — and merges
them. A worker gets the request itself (plain dataclasses as dicts), not a command line.
A shard killed or lost is simply absent, so the same run again computes it alone; a
Slurm array or any other scheduler can run ``defstab measure … --shard I/N`` instead.
"""

from __future__ import annotations

import os
from dataclasses import asdict
from pathlib import Path

from defstab.requests.fields import flag_of, options_of


def parse_shard(text: str) -> tuple[int, int]:
    """``"I/N"`` -> (I, N), 0 ≤ I < N."""
    try:
        index, count = (int(v) for v in text.split("/"))
    except ValueError:
        raise ValueError(f"--shard takes I/N (e.g. 0/4), got {text!r}.") from None
    if count < 1 or not 0 <= index < count:
        raise ValueError(f"--shard {text}: shard {index} of {count} does not exist (0 ≤ I < N).")
    return index, count


def shard_file(out: Path, index: int, count: int) -> Path:
    return Path(out) / "shards" / f"shard-{index}-of-{count}.pt"


#: request fields the merging run alone acts on (a shard measures no Lie derivative)
MERGE_ONLY = ("lie_derivative", "lie_images", "no_lie_contributions", "lie_derivative_convention")


def without_merge_only(request):
    """``request`` with the :data:`MERGE_ONLY` fields at their defaults: what a shard's
    worker is given."""
    from dataclasses import fields, replace

    return replace(request, **{f.name: f.default for f in fields(request) if f.name in MERGE_ONLY})


def shard_settings(request, model, data) -> dict:
    """What a shard measures, keyed by option, with the model as asked for (``model``:
    options, a name or a module) and the data: shards of one measurement agree on it, and
    a shard of another is refused. Settings of where or how fast it runs are left out."""
    settings = {
        flag_of(f, opt): getattr(request, f.name)
        for f, opt in options_of(type(request))
        if opt.affects_result and f.name not in MERGE_ONLY
    }
    from defstab.pipeline.models import model_options

    options = model_options(model)
    settings["model"] = (
        {k: v for k, v in asdict(options).items() if k != "pretrained_option"}
        if options is not None
        else {"object": type(model).__name__}
    )
    settings["data"] = asdict(data)
    return settings


def load_shards(out: Path, count: int, settings: dict, warn) -> dict:
    """{index: parts} of the shards already in ``out`` for these settings. A shard file
    that cannot be read is set aside (recomputed); one of other settings is refused."""
    from defstab.measure.shards import MeasurementParts

    found = {}
    for i in range(count):
        path = shard_file(out, i, count)
        if not path.exists():
            continue
        try:
            parts = MeasurementParts.load(path)
        except ValueError as e:
            warn(f"{e} It is computed again.")
            path.unlink()
            continue
        theirs = parts.meta.get("settings") or {}
        if theirs != settings:
            changed = sorted(k for k in set(theirs) | set(settings)
                             if theirs.get(k) != settings.get(k))  # fmt: skip
            named = [k if k.startswith("--") else f"the {k}" for k in changed]
            raise ValueError(
                f"{path} is a shard of another measurement (differs in "
                f"{', '.join(named) or 'its format'}); remove {Path(out) / 'shards'} or "
                "choose another --out."
            )
        found[i] = parts
    return found


def run_shard_task(payload: dict, threads: int | None = None) -> str:
    """One shard where an executor runs it (this process, a local worker, a Ray task or a
    Slurm job). ``payload``: the requests as dicts, the folder, the shard and the device.
    Module-level: picklable."""
    from defstab.experiments.executors import set_threads
    from defstab.pipeline.measure import run_measure
    from defstab.requests.measure import MeasureRequest
    from defstab.requests.model import DataOptions, ModelOptions

    set_threads(threads)
    run_measure(
        MeasureRequest(**payload["request"]),
        model=ModelOptions(**payload["model"]),
        data=DataOptions(**payload["data"]),
        out=payload["out"],
        shard=tuple(payload["shard"]),
        device=payload["device"],
        progress=False,
    )
    return f"shard {payload['shard'][0]}/{payload['shard'][1]}"


def run_missing(payload: dict, out: Path, missing: list[int], count: int, executor, device,
                progress: bool, warn) -> None:  # fmt: skip
    """Run shards ``missing`` of ``count`` on ``executor`` (None: here, one after another;
    local workers: at most one per core, or per GPU — shard i then uses GPU i mod the GPU
    count; Ray tasks; Slurm jobs). ``payload``: :func:`run_shard_task`'s, without the
    shard."""
    from functools import partial

    import torch

    from defstab.experiments.executors import run_tasks

    gpus = torch.cuda.device_count() if str(device).startswith("cuda") else 0
    local = executor is None or executor.kind == "local"
    if executor is not None and local and executor.workers > 1:
        # each worker is a whole torch process: more than cores (or GPUs) only waits
        parallel = min(executor.workers, len(missing), max(os.cpu_count() or 1, gpus))
        if parallel < min(executor.workers, len(missing)):
            warn(f"--workers {executor.workers}: {parallel} shards at a time, one per core.")
        executor.workers = parallel

    def task(i: int):
        on = f"cuda:{i % gpus}" if gpus and local else str(device)
        return partial(run_shard_task, payload | {"shard": [i, count], "device": on})

    tasks = {f"shard {i}/{count}": task(i) for i in missing}
    if executor is None or executor.in_process:
        for name, one in tasks.items():
            try:
                one()
            except (ValueError, RuntimeError) as e:
                raise ValueError(
                    f"{name} failed ({' '.join(str(e).split())}); the finished shards are "
                    "kept: rerun the same command to compute only the others."
                ) from None
        return
    run_tasks(tasks, out, executor, count, progress=progress, label="shards", unit="shard")
