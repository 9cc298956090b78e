"""``defstab measure --shards N``: one measurement split over processes, and resumed.

Shard i of N is ``defstab measure … --shard i/N``: it measures its range of images and
writes ``OUT/shards/shard-i-of-N.pt`` (atomically, last). ``--shards N`` runs the shards
that are not there yet on the executor of ``--executor`` (as ``experiment`` runs its runs:
``--workers`` local processes, a Ray cluster, or Slurm jobs through submitit; on a GPU
machine, local shard i uses GPU i mod the GPU count), then merges every shard into the
usual outputs. A shard killed or lost is simply absent, so rerunning the same command
computes it alone; a Slurm array (``--shard $SLURM_ARRAY_TASK_ID/N``) or any other
scheduler can run the shards instead, and ``--shards N`` then only merges.
"""

from __future__ import annotations

import os
from functools import partial
from pathlib import Path

#: Options that say where or how fast a shard runs, not what it measures.
NOT_SETTINGS = {"out", "quiet", "shard", "shards", "read_workers", "device", "ram_budget",
                "_run", "_argv", "_final_out", "_given", "command", "executor", "workers",
                "address",
                "connect_timeout", "cpus_per_run", "gpus_per_run", "slurm_partition",
                "slurm_time", "slurm_cluster", "slurm_param", "lie_derivative", "lie_images",
                "lie_derivative_convention", "no_lie_contributions"}  # fmt: skip
#: options the merging run alone acts on (a shard measures no Lie derivative)
MERGE_ONLY = {"--lie-derivative": 1, "--lie-images": 1, "--no-lie-contributions": 0,
              "--lie-derivative-convention": 1}  # fmt: skip


def _without_merge_only(argv: list[str]) -> list[str]:
    """``argv`` without the :data:`MERGE_ONLY` options (``--opt VALUE`` or ``--opt=VALUE``)."""
    kept, skip = [], 0
    for arg in argv:
        if skip:
            skip -= 1
            continue
        name = arg.split("=", 1)[0]
        if name in MERGE_ONLY:
            skip = MERGE_ONLY[name] if "=" not in arg else 0
            continue
        kept.append(arg)
    return kept


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
    return out / "shards" / f"shard-{index}-of-{count}.pt"


def settings_of(args) -> dict:
    """What a shard measured, as the command line said it: shards of one measurement
    agree on it, and a shard of another is refused."""
    return {k: v for k, v in sorted(vars(args).items()) if k not in NOT_SETTINGS}


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
        theirs = parts.meta.get("settings")
        if theirs != settings:
            changed = sorted(k for k in set(theirs or {}) | set(settings)
                             if (theirs or {}).get(k) != settings.get(k))  # fmt: skip
            raise ValueError(
                f"{path} is a shard of another measurement (differs in "
                f"{', '.join('--' + k.replace('_', '-') for k in changed) or 'its format'}); "
                f"remove {out / 'shards'} or choose another --out."
            )
        found[i] = parts
    return found


def run_shard(argv: list[str], threads: int | None = None) -> str:
    """One shard where an executor runs it (this process, a local worker, a Ray task or
    a Slurm job): this very command with ``--shard I/N``. Module-level: picklable."""
    import contextlib
    import io

    from defstab.cli.main import main
    from defstab.experiments.executors import set_threads

    set_threads(threads)
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        status = main(argv)
    if status != 0:
        lines = [line for line in err.getvalue().splitlines() if line.strip()]
        raise RuntimeError(lines[-1] if lines else f"exit status {status}")
    return argv[-1]


def run_missing(args, out: Path, missing: list[int], count: int, device) -> None:
    """Run shards ``missing`` of ``count`` on the executor the options name: here one
    after another (``--workers 1``), in local worker processes (at most one per core, or
    per GPU: shard i then uses GPU i mod the GPU count), as Ray tasks or as Slurm jobs."""
    import torch

    from defstab.cli.cmd_experiment import executor_config
    from defstab.cli.common import warn
    from defstab.experiments.executors import run_tasks

    executor = executor_config(args)
    gpus = torch.cuda.device_count() if str(device).startswith("cuda") else 0
    if executor.kind == "local" and executor.workers > 1:
        # each worker is a whole torch process: more than cores (or GPUs) only waits
        parallel = min(executor.workers, len(missing), max(os.cpu_count() or 1, gpus))
        if parallel < min(executor.workers, len(missing)):
            warn(f"--workers {executor.workers}: {parallel} shards at a time, one per core.")
        executor.workers = parallel

    def argv(i: int) -> list[str]:
        extra = ["--device", f"cuda:{i % gpus}"] if gpus and executor.kind == "local" else []
        return [*_without_merge_only(args._argv), *extra, "--quiet", "--shard", f"{i}/{count}"]

    tasks = {f"shard {i}/{count}": partial(run_shard, argv(i)) for i in missing}
    if executor.in_process:
        for name, task in tasks.items():
            try:
                task()
            except RuntimeError as e:
                raise ValueError(
                    f"{name} failed ({e}); the finished shards are kept: rerun the same "
                    "command to compute only the others."
                ) from None
        return
    run_tasks(tasks, out, executor, count, progress=not args.quiet, label="shards", unit="shard")
