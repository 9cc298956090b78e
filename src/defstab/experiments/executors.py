"""Where an experiment's runs execute: here, one after another (the default); in local
worker processes; on a Ray cluster; or as Slurm jobs through submitit.

The contract is the run folder, not a message: a worker gets one run's settings (a
:class:`~defstab.experiments.runs.RunSpec` as a dict), computes it with
:func:`~defstab.experiments.runs.execute` — which trains or loads its network under
``OUT/networks/`` and writes ``OUT/measurements/<key>/result.json`` atomically and last —
and the driver, once every run has ended, reads the results back from those folders. So on
a filesystem the workers share, resume works as it does serially: a killed worker or
driver loses at most the unfinished runs, and the same command runs only those again,
each resuming from its last checkpoint. No scheduler or socket of defstab's own: the
engines are the standard library's process pool, Ray and submitit.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path

from defstab.experiments.runs import DataCache, RunSpec, execute, is_finished

EXECUTORS = ("local", "ray", "slurm")
POLL_SECONDS = 0.5


@dataclass
class ExecutorConfig:
    """How to run an experiment's runs.

    Attributes:
        kind: "local" (``workers`` processes on this machine; 1 = in this process),
            "ray" (tasks on the Ray cluster at ``address``; a private local one without it)
            or "slurm" (one submitit job per run).
        workers: local processes; each gets ``cores // workers`` torch threads.
        address: an existing Ray cluster, ``HOST:PORT`` (started with ``ray start``).
        cpus_per_run, gpus_per_run: what one Ray task or Slurm job asks for (torch threads
            = cpus_per_run).
        processes_per_run: DDP processes that train each run's network (one GPU each on
            GPUs, gloo on CPU); 0 = one per GPU of ``gpus_per_run`` (at least 1).
        slurm_partition, slurm_time_min: Slurm partition and time limit per run.
        slurm_cluster: submitit's cluster: "slurm" (sbatch), "local" or "debug" (the same
            jobs run on this machine, to try the flow without a cluster).
        slurm_parameters: any other submitit parameter (``update_parameters``), e.g.
            ``{"slurm_account": "lab", "mem_gb": 32}``.
        connect_timeout_s: how long to wait for a Ray cluster at ``address`` to answer, at
            the start and whenever it stops answering mid-experiment; then one sentence.
    """

    kind: str = "local"
    workers: int = 1
    address: str | None = None
    cpus_per_run: int = 1
    gpus_per_run: float = 0
    processes_per_run: int = 0
    slurm_partition: str | None = None
    slurm_time_min: int = 240
    slurm_cluster: str = "slurm"
    slurm_parameters: dict = field(default_factory=dict)
    connect_timeout_s: float = 30.0

    def __post_init__(self) -> None:
        if self.kind not in EXECUTORS:
            raise ValueError(f"executor must be one of {', '.join(EXECUTORS)}, got {self.kind!r}.")
        if self.workers < 1 or self.cpus_per_run < 1 or self.gpus_per_run < 0:
            raise ValueError("workers and cpus per run must be ≥ 1, GPUs per run ≥ 0.")
        if self.processes_per_run < 0:
            raise ValueError(f"processes per run must be ≥ 0, got {self.processes_per_run}.")
        if not self.connect_timeout_s > 0:
            raise ValueError(f"the connect timeout must be > 0 s, got {self.connect_timeout_s}.")
        if self.slurm_time_min < 1:
            raise ValueError(f"the Slurm time limit must be ≥ 1 minute, got {self.slurm_time_min}.")

    @property
    def train_processes(self) -> int:
        """How many processes train one network."""
        return self.processes_per_run or max(1, int(self.gpus_per_run))

    @property
    def in_process(self) -> bool:
        return self.kind == "local" and self.workers == 1


class RunsFailed(ValueError):
    """Some runs raised; the others finished and their results are kept."""

    def __init__(self, failures: dict[str, str], total: int, unit: str = "run"):
        self.failures = failures
        listed = "; ".join(f"{key}: {error}" for key, error in failures.items())
        super().__init__(
            f"{len(failures)} of {total} {unit}s failed ({listed}); the finished {unit}s are "
            "kept — run the same command again to retry only the failed ones."
        )


# ---- the worker side: one run, in whatever process the engine gives it -----------------

_CACHE: DataCache | None = None  # one per worker process: data decoded once, reused


def set_threads(threads: int | None) -> None:
    if threads:
        import torch

        torch.set_num_threads(max(1, int(threads)))


def run_one(record: dict, out: str, threads: int | None = None, processes: int = 1) -> str:
    """Compute one run (train or load its network, measure) into ``out``; returns its key.
    Module-level so that process pools, Ray and submitit can pickle it by reference."""
    global _CACHE
    set_threads(threads)
    if _CACHE is None:
        _CACHE = DataCache()
    spec = RunSpec(**record)
    execute(spec, Path(out), _CACHE, quiet=True, processes=processes)
    return spec.key


def _call(task, threads: int):
    """Run one task (a picklable callable taking ``threads``) in a Ray worker."""
    return task(threads=threads)


def _one_line(error: BaseException) -> str:
    """The last line of an error (engines wrap the worker's traceback in theirs)."""
    text = str(error).strip() or type(error).__name__
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else type(error).__name__


# ---- the driver side -------------------------------------------------------------------


def run_all(
    plan: list[RunSpec],
    out: Path,
    executor: ExecutorConfig | None = None,
    progress: bool = True,
    label: str | None = None,
) -> list[dict]:
    """Every run of ``plan`` finished (unfinished ones computed by ``executor``); returns
    their results in plan order, read from their folders.

    Raises:
        RunsFailed: after every other run ended, naming the runs that raised.
    """
    out = Path(out)
    executor = executor or ExecutorConfig()
    cache = DataCache()
    if executor.in_process:
        return _serial(plan, out, cache, progress, label, executor.train_processes)
    todo = [spec for spec in plan if not is_finished(spec, out)]
    n = executor.train_processes
    tasks = {s.key: partial(run_one, asdict(s), str(out), processes=n) for s in todo}
    run_tasks(tasks, out, executor, len(plan), progress, label)
    # every run is finished: execute() reads each result back from its folder
    return [execute(spec, out, cache, quiet=True) for spec in plan]


def run_tasks(
    tasks: dict,
    out: Path,
    executor: ExecutorConfig,
    total: int,
    progress=True,
    label=None,
    unit: str = "run",
) -> None:
    """Run ``tasks`` {key: picklable callable taking ``threads=``} on ``executor`` (local
    processes, Ray or Slurm; its logs under ``out``) until every one ended; ``total``
    counts the finished ones too, for the progress.

    Raises:
        RunsFailed: after every other task ended, naming the tasks that raised.
    """
    if not tasks:
        return
    launch = {"local": _local, "ray": _ray, "slurm": _slurm}[executor.kind]
    bar = _Progress(total, total - len(tasks), progress, label)
    failures = launch(tasks, out, executor, bar)
    if failures:
        raise RunsFailed(failures, total, unit)


def _serial(plan, out, cache, progress, label, processes) -> list[dict]:
    """In this process, one run after another: a run's error is the command's error."""
    runs = plan
    if progress:
        from defstab.progress import progress

        runs = progress(plan, desc=label or "runs", unit="run")
    results = []
    for spec in runs:
        if progress:
            runs.set_postfix_str(spec.key)
        results.append(execute(spec, out, cache, quiet=True, processes=processes))
    return results


class _Progress:
    """One bar: runs done, with running and queued counts beside it."""

    def __init__(self, total: int, done: int, show: bool, label: str | None = None):
        self.bar = None
        if show:
            from defstab.progress import progress

            self.bar = progress(total=total, initial=done, desc=label or "runs", unit="run")
        self.done = done

    def update(self, done: int, running: int, queued: int, failed: int) -> None:
        if self.bar is None:
            return
        self.bar.update(done - self.done)
        self.done = done
        text = f"running {running}, queued {queued}" + (f", failed {failed}" if failed else "")
        self.bar.set_postfix_str(text)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _watch(
    handles: dict, is_done, count_running, result_of, progress: _Progress, cancel=None, alive=None
) -> dict:
    """Poll ``handles`` {key: handle} until all ended; returns {key: error line}.

    ``count_running(pending handles)`` says how many of them run now (the rest wait);
    on Ctrl-C, ``cancel(handle)`` stops each unfinished one (so that a rerun never has two
    jobs working on one run folder) before the interruption propagates. ``alive()``, if
    given, is called every poll and raises when the cluster is gone (finished runs are
    already in their folders)."""
    failures: dict[str, str] = {}
    pending = dict(handles)
    base = progress.done
    try:
        while pending:
            if alive is not None:
                alive(len(handles) - len(pending) - len(failures))
            for key in [k for k, h in pending.items() if is_done(h)]:
                try:
                    result_of(pending.pop(key))
                except Exception as e:  # noqa: BLE001 — reported per run, the rest go on
                    failures[key] = _one_line(e)
            running = count_running(list(pending.values()))
            ended = len(handles) - len(pending)
            progress.update(
                base + ended - len(failures), running, len(pending) - running, len(failures)
            )
            if pending:
                time.sleep(POLL_SECONDS)
    except KeyboardInterrupt:
        if cancel is not None:
            for handle in pending.values():
                cancel(handle)
        raise
    finally:
        progress.close()
    return failures


def _local(tasks, out, executor: ExecutorConfig, progress) -> dict[str, str]:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    threads = max(1, (os.cpu_count() or 1) // executor.workers)
    # spawn, not fork: a forked copy of a process that already ran torch can deadlock
    context = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(executor.workers, mp_context=context)
    try:
        futures = {key: pool.submit(task, threads=threads) for key, task in tasks.items()}
        return _watch(
            futures,
            lambda f: f.done(),
            lambda fs: sum(f.running() for f in fs),
            lambda f: f.result(),
            progress,
            cancel=lambda f: f.cancel(),
        )
    except KeyboardInterrupt:
        # the workers got the same Ctrl-C; do not wait for queued runs to start
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    finally:
        pool.shutdown(wait=True)


def _ray(tasks, out, executor: ExecutorConfig, progress) -> dict[str, str]:
    try:
        import ray
    except ImportError:
        raise ValueError(
            "--executor ray needs Ray: pip install 'defstab[ray]' (or pip install ray)."
        ) from None
    started_here = not ray.is_initialized()
    watchdog = None
    if started_here and executor.address:
        watchdog = _Reachable(executor.address, executor.connect_timeout_s, len(tasks))
        watchdog.wait_until_open()
        # Ray ends a driver whose cluster is gone after this long: let the watchdog speak first
        reconnect = str(int(max(60, 2 * executor.connect_timeout_s)))
        os.environ.setdefault("RAY_gcs_rpc_server_reconnect_timeout_s", reconnect)
    if started_here:
        try:
            ray.init(
                address=executor.address,
                num_cpus=None if executor.address else os.cpu_count(),
                include_dashboard=False,
                log_to_driver=False,
                logging_level=logging.WARNING,  # not Ray's connection chatter in the log
            )
        except ConnectionError as e:
            raise ValueError(
                f"no Ray cluster answers at {executor.address} ({_one_line(e)}); start one "
                "with 'ray start --head' or leave out --address for a private local one (a "
                "cluster with token authentication, which 'ray start' turns on when "
                "~/.ray/auth_token exists, also needs RAY_AUTH_MODE=token here)."
            ) from None
    try:
        remote = ray.remote(
            num_cpus=executor.cpus_per_run, num_gpus=executor.gpus_per_run, max_retries=2
        )(_call)
        refs = {key: remote.remote(task, executor.cpus_per_run) for key, task in tasks.items()}

        def is_done(ref):
            ready, _ = ray.wait([ref], timeout=0)
            return bool(ready)

        # Ray does not say which queued task runs: at most as many as the CPUs allow
        capacity = max(1, int(ray.cluster_resources().get("CPU", 1) // executor.cpus_per_run))
        return _watch(
            refs,
            is_done,
            lambda rs: min(capacity, len(rs)),
            ray.get,
            progress,
            cancel=lambda ref: ray.cancel(ref, force=True),
            alive=watchdog.check if watchdog is not None else None,
        )
    except ClusterGone:
        started_here = False  # a shutdown would wait for the lost cluster: the exit ends it
        raise
    finally:
        if started_here:
            ray.shutdown()


def _slurm_answers(timeout: float) -> None:
    """Ask Slurm for this user's queue before submitting: a machine without Slurm, or a
    controller that does not answer, ends in one sentence after at most ``timeout``
    seconds (sbatch itself would retry for minutes)."""
    import shutil
    import subprocess

    missing = [tool for tool in ("sbatch", "squeue") if shutil.which(tool) is None]
    if missing:
        raise ValueError(
            f"--executor slurm needs Slurm's {' and '.join(missing)} on this machine's PATH; "
            "run on a login node of the cluster, or try the flow here with "
            "--slurm-cluster local."
        )
    try:
        answer = subprocess.run(
            ["squeue", "--me", "--noheader"], capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        raise ValueError(
            f"Slurm did not answer within {timeout:g} s (squeue --me); check that the "
            "controller (slurmctld) is up and reachable from here, or give a longer "
            "--connect-timeout."
        ) from None
    if answer.returncode != 0:
        first = (answer.stderr.strip().splitlines() or ["no message"])[0]
        raise ValueError(f"Slurm refused to answer (squeue --me: {first}).")


class ClusterGone(ValueError):
    """The Ray cluster stopped answering; finished runs are kept, a rerun resumes."""


class _Reachable:
    """Whether the Ray head at ``HOST:PORT`` accepts connections: waited for at the start
    (a mistyped port ends in one sentence after ``timeout`` seconds, instead of Ray's
    minutes of retries), and checked while the runs go on."""

    def __init__(self, address: str, timeout: float, total: int):
        self.address, self.timeout, self.total = address, timeout, total
        target = address.removeprefix("ray://")
        host, _, port = target.rpartition(":")
        self.host, self.port = (host or "127.0.0.1"), (int(port) if port.isdigit() else None)
        self.down_since = None
        self.last_probe = 0.0

    def _open(self, timeout: float) -> str | None:
        """None if a connection opens, else why not."""
        import socket

        if self.port is None:
            return None  # no port to probe: Ray's own resolution decides
        try:
            with socket.create_connection((self.host, self.port), timeout=max(0.1, timeout)):
                return None
        except OSError as e:
            return e.strerror or type(e).__name__

    def wait_until_open(self) -> None:
        deadline = time.monotonic() + self.timeout
        while (why := self._open(min(5.0, self.timeout))) is not None:
            if time.monotonic() >= deadline:
                raise ValueError(
                    f"no Ray cluster answers at {self.address} after {self.timeout:g} s "
                    f"({why}); check the address and that 'ray start --head --port "
                    f"{self.port}' runs there, or give a longer --connect-timeout."
                )
            time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))

    def check(self, finished: int) -> None:
        now = time.monotonic()
        if now - self.last_probe < 2.0:  # a cheap probe, not every poll
            return
        self.last_probe = now
        why = self._open(min(5.0, self.timeout))
        if why is None:
            self.down_since = None
            return
        self.down_since = self.down_since or now
        if now - self.down_since >= self.timeout:
            raise ClusterGone(
                f"the Ray cluster at {self.address} stopped answering ({why}) for "
                f"{self.timeout:g} s: {finished} of {self.total} runs had finished and are "
                "kept; restart the cluster and rerun the same command to resume."
            )


def _slurm(tasks, out, executor: ExecutorConfig, progress) -> dict[str, str]:
    try:
        import submitit
    except ImportError:
        raise ValueError(
            "--executor slurm needs submitit: pip install 'defstab[slurm]' (or pip install "
            "submitit)."
        ) from None
    if executor.slurm_cluster == "slurm":
        _slurm_answers(executor.connect_timeout_s)
    logs = Path(out) / "slurm-logs"
    pool = submitit.AutoExecutor(folder=logs, cluster=executor.slurm_cluster)
    params = {
        "timeout_min": executor.slurm_time_min,
        "cpus_per_task": executor.cpus_per_run,
        "name": "defstab",
    }
    if executor.slurm_cluster == "slurm":
        if executor.slurm_partition:
            params["slurm_partition"] = executor.slurm_partition
        if executor.gpus_per_run:
            params["slurm_gpus_per_task"] = int(executor.gpus_per_run)
    try:
        pool.update_parameters(**params, **executor.slurm_parameters)
    except (TypeError, ValueError, NameError) as e:  # submitit names a bad key with NameError
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ValueError(f"submitit refused the Slurm parameters ({first})") from None
    jobs = {key: pool.submit(task, threads=executor.cpus_per_run) for key, task in tasks.items()}
    return _watch(
        jobs,
        lambda j: j.done(),
        lambda js: sum(j.state.upper() == "RUNNING" for j in js),
        lambda j: j.result(),
        progress,
        cancel=lambda j: j.cancel(check=False),
    )
