"""``defstab measure --shards N``: one measurement split over processes, and resumed.

Shard i of N is ``defstab measure … --shard i/N``: it measures its range of images and
writes ``OUT/shards/shard-i-of-N.pt`` (atomically, last). ``--shards N`` runs the shards
that are not there yet, ``--workers`` at a time, as processes of this same command
(on a GPU machine, worker k uses GPU k mod the GPU count), then merges every shard into
the usual outputs. A shard killed or lost is simply absent, so rerunning the same command
computes it alone; a Slurm array (``--shard $SLURM_ARRAY_TASK_ID/N``) or any other
scheduler can run the shards instead, and ``--shards N`` then only merges.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

#: Options that say where or how fast a shard runs, not what it measures.
NOT_SETTINGS = {"out", "quiet", "shard", "shards", "workers", "read_workers", "device",
                "ram_budget", "_run", "_argv", "command"}  # fmt: skip


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


def run_missing(args, out: Path, missing: list[int], count: int, device, warn) -> None:
    """Run shards ``missing`` of ``count`` as child processes, ``args.workers`` at a time
    (at most one per core, or per GPU); each gets this machine's cores / workers torch
    threads (and its own GPU on CUDA)."""
    import torch

    from defstab.progress import progress

    gpus = torch.cuda.device_count() if str(device).startswith("cuda") else 0
    # each child is a whole torch process: more of them than cores (or GPUs) only waits
    parallel = min(args.workers, len(missing), max(os.cpu_count() or 1, gpus))
    if parallel < min(args.workers, len(missing)):
        warn(f"--workers {args.workers}: running {parallel} shards at a time, one per core.")
    threads = max(1, torch.get_num_threads() // parallel)
    base = [sys.executable, "-m", "defstab", *args._argv]
    env = os.environ | {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    shard_file(out, 0, count).parent.mkdir(parents=True, exist_ok=True)
    queue, running, failures = list(missing), {}, {}
    bar = progress(total=len(missing), desc="shards", unit="shard", leave=True,
                   file=None) if not args.quiet else None  # fmt: skip
    try:
        while queue or running:
            while queue and len(running) < parallel:
                i = queue.pop(0)
                extra = ["--shard", f"{i}/{count}", "--quiet"]
                if gpus:
                    extra += ["--device", f"cuda:{len(running) % gpus}"]
                # its messages go to a log beside its shard (a pipe could fill and stall it)
                log = open(shard_file(out, i, count).with_suffix(".log"), "w")  # noqa: SIM115
                running[i] = (subprocess.Popen(base + extra, env=env, stdout=subprocess.DEVNULL,
                                               stderr=log), log)  # fmt: skip
            time.sleep(0.05)
            for i, (proc, log) in list(running.items()):
                if proc.poll() is None:
                    continue
                log.close()
                err = Path(log.name).read_text(errors="replace")
                del running[i]
                if proc.returncode != 0:
                    lines = [line for line in err.splitlines() if line.strip()]
                    failures[i] = lines[-1] if lines else f"exit status {proc.returncode}"
                if bar is not None:
                    bar.update(1)
    except BaseException:
        for proc, log in running.values():
            proc.kill()
            log.close()
        raise
    finally:
        if bar is not None:
            bar.close()
    if failures:
        i, why = next(iter(sorted(failures.items())))
        raise ValueError(
            f"{len(failures)} of {len(missing)} shards failed (shard {i}: {why}); the "
            "finished shards are kept: rerun the same command to compute only the others."
        )
