"""Scaling out: an experiment's runs in local worker processes, on a real local Ray
cluster and as submitit jobs give the serial run's numbers byte for byte; a failing run is
named while the others finish; a worker killed mid-run loses nothing on the rerun."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from defstab.cli.main import main
from defstab.experiments import ExecutorConfig, RunsFailed, run_experiment
from test_experiments import tiny

#: the CLI's scaled-down E1: two types, one seed, one epoch on 60 synthetic images
ARGV = ["experiment", "pooling", "--data", "synthetic:2", "--archs", "maxpool,subsample",
        "--seeds", "2", "--width", "0.125", "--images", "8", "--per-class", "6",
        "--epochs", "1", "--quiet"]  # fmt: skip


def worker_threads(workers: int) -> int:
    return max(1, (os.cpu_count() or 1) // workers)


def serial_summary(tmp_path, threads: int, argv=ARGV) -> bytes:
    """The same experiment in this process with the workers' torch thread count: CPU
    kernels split reductions by thread, so equal thread counts give equal bytes."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        assert main([*argv, "--out", str(tmp_path / "serial")]) == 0
    finally:
        torch.set_num_threads(before)
    return (tmp_path / "serial" / "pooling" / "summary.csv").read_bytes()


def test_local_workers_equal_serial_byte_for_byte(tmp_path):
    out = tmp_path / "par"
    assert main([*ARGV, "--executor", "local", "--workers", "2", "--out", str(out)]) == 0
    summary = (out / "pooling" / "summary.csv").read_bytes()
    assert summary == serial_summary(tmp_path, worker_threads(2))
    assert len(list((out / "measurements").iterdir())) == 4


def test_a_failing_run_is_named_and_the_others_finish(tmp_path):
    cfg = tiny("pooling", tmp_path, archs=["maxpool", "no_such_type"])
    cfg.executor = ExecutorConfig(workers=2)
    with pytest.raises(RunsFailed, match=r"1 of 2 runs failed \(pool-no_such_type/seed0: ") as e:
        run_experiment(cfg, quiet=True)
    assert list(e.value.failures) == ["pool-no_such_type/seed0"]
    done = [f.name for f in (tmp_path / "measurements").iterdir() if (f / "result.json").exists()]
    assert len(done) == 1 and done[0].startswith("pool-maxpool_seed0")


def _workers(pid: int) -> list[int]:
    """The pool's worker processes among ``pid``'s children (not its resource tracker)."""
    kids = Path(f"/proc/{pid}/task/{pid}/children")
    pids = [int(p) for p in kids.read_text().split()] if kids.exists() else []
    cmdline = {
        p: Path(f"/proc/{p}/cmdline").read_bytes() for p in pids if Path(f"/proc/{p}").exists()
    }
    return [p for p, c in cmdline.items() if b"resource_tracker" not in c]


def _training_now(out: Path) -> list[Path]:
    """Networks mid-training: checkpoints past step 0, no network.json yet."""
    if not (out / "networks").exists():
        return []
    return [
        d
        for d in (out / "networks").iterdir()
        if not (d / "network.json").exists() and len(list(d.glob("checkpoints/step_*"))) >= 3
    ]


def longer_runs(tmp_path, epochs: int):
    """(argv, the command line with 2 local workers, OUT) of runs that train long enough
    (``epochs`` on 200 images) to be caught mid-training."""
    argv = list(ARGV)
    argv[argv.index("--epochs") + 1] = str(epochs)
    argv[argv.index("--per-class") + 1] = "20"
    out = tmp_path / "par"
    cmd = [sys.executable, "-m", "defstab", *argv, "--executor", "local", "--workers", "2",
           "--out", str(out)]  # fmt: skip
    return argv, cmd, out


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs Linux /proc")
def test_killed_worker_loses_nothing_on_rerun(tmp_path):
    """SIGKILL one local worker while the runs train: the driver names the runs it lost and
    exits non-zero; the same command then computes only those, resuming their training
    from the last checkpoint, and the results equal an uninterrupted serial run's."""
    argv, cmd, out = longer_runs(tmp_path, epochs=12)
    driver = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    victim = None
    deadline = time.time() + 240
    while victim is None and time.time() < deadline and driver.poll() is None:
        workers = _workers(driver.pid)
        if _training_now(out) and len(workers) >= 2:
            victim = workers[-1]
            os.kill(victim, signal.SIGKILL)
        time.sleep(0.2)
    assert victim is not None, "no worker was caught mid-training"
    _, err = driver.communicate(timeout=300)
    assert driver.returncode == 2, err
    assert "runs failed" in err and "run the same command again" in err
    unfinished = _training_now(out)
    assert unfinished  # the kill left a network half-trained, with its checkpoints
    kept = {p: p.stat().st_mtime_ns for d in unfinished for p in d.glob("checkpoints/step_*")}
    finished = {p: p.stat().st_mtime_ns for p in (out / "measurements").glob("*/result.json")}
    assert main([*argv, "--executor", "local", "--workers", "2", "--out", str(out)]) == 0
    for path, stamp in {**finished, **kept}.items():  # read back or resumed from, not redone
        assert path.stat().st_mtime_ns == stamp, path
    summary = (out / "pooling" / "summary.csv").read_bytes()
    assert summary == serial_summary(tmp_path, worker_threads(2), argv)


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs Linux /proc")
def test_ctrl_c_stops_driver_and_workers(tmp_path):
    """Ctrl-C in a terminal reaches the driver and its workers (one process group): the
    command ends promptly with status 130 and leaves no worker behind."""
    _, cmd, out = longer_runs(tmp_path, epochs=30)
    driver = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.time() + 240
    while not _training_now(out) and time.time() < deadline and driver.poll() is None:
        time.sleep(0.2)
    workers = _workers(driver.pid)
    assert workers, "the workers never started"
    t0 = time.time()
    os.killpg(driver.pid, signal.SIGINT)
    _, err = driver.communicate(timeout=120)
    assert driver.returncode == 130 and "interrupted" in err
    assert time.time() - t0 < 60
    time.sleep(1)
    assert not [p for p in workers if Path(f"/proc/{p}").exists()]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_ray_cluster_equals_serial(tmp_path, monkeypatch):
    """A real local cluster: head on 127.0.0.1 started with `ray start`, as a user would."""
    pytest.importorskip("ray")
    ray_bin = shutil.which("ray") or str(Path(sys.executable).parent / "ray")
    port = _free_port()
    # a home of its own: a ~/.ray/auth_token left by an earlier private cluster would turn
    # on token authentication in `ray start` but not in the driver (Ray 2.60)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0")
    start = [ray_bin, "start", "--head", "--node-ip-address", "127.0.0.1", "--port",
             str(port), "--num-cpus", "2", "--include-dashboard", "false",
             "--disable-usage-stats"]  # fmt: skip
    subprocess.run(start, check=True, capture_output=True, env=env, timeout=180)
    try:
        out = tmp_path / "ray"
        argv = [*ARGV, "--executor", "ray", "--address", f"127.0.0.1:{port}", "--out", str(out)]
        assert main(argv) == 0
        summary = (out / "pooling" / "summary.csv").read_bytes()
    finally:
        subprocess.run([ray_bin, "stop", "--force"], capture_output=True, env=env, timeout=120)
    assert summary == serial_summary(tmp_path, 1)  # --cpus-per-run 1: one torch thread


def test_submitit_local_executor_equals_serial(tmp_path):
    pytest.importorskip("submitit")
    out = tmp_path / "slurm"
    argv = [*ARGV, "--executor", "slurm", "--slurm-cluster", "local", "--slurm-time", "10",
            "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    assert (out / "pooling" / "summary.csv").read_bytes() == serial_summary(tmp_path, 1)
    assert any((out / "slurm-logs").iterdir())  # submitit's own logs, beside the runs


def test_scaleout_mistakes_get_one_sentence(tmp_path, capsys, monkeypatch):
    base = [*ARGV, "--out", str(tmp_path / "o")]
    cases = [
        (["--executor", "local", "--address", "1.2.3.4:1"],
         "--address has no effect here: it applies with --executor ray"),
        (["--executor", "slurm", "--slurm-param", "novalue"], "KEY=VALUE"),
        (["--executor", "slurm", "--slurm-cluster", "local", "--slurm-param", "nonsense=3"],
         "submitit refused"),
        (["--archs", "maxpool,maxpooling"], "unknown downsampling type maxpooling"),
        (["--workers", "0"], "workers"),
    ]  # fmt: skip
    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed
    cases.append((["--executor", "ray"], "pip install 'defstab[ray]'"))
    for extra, message in cases:
        assert main([*base, *extra]) == 2, extra
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err, (extra, err)


def test_ray_at_a_closed_port_ends_in_one_sentence_within_the_timeout(tmp_path, capsys):
    pytest.importorskip("ray")
    port = _free_port()  # nothing listens there
    t0 = time.monotonic()
    argv = [*ARGV, "--executor", "ray", "--address", f"127.0.0.1:{port}",
            "--connect-timeout", "2", "--out", str(tmp_path / "o")]  # fmt: skip
    assert main(argv) == 2
    elapsed = time.monotonic() - t0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"no Ray cluster answers at 127.0.0.1:{port} after 2 s" in err[0]
    assert 2 <= elapsed < 20  # waited the timeout, not Ray's minutes of retries


@pytest.mark.slow
def test_ray_head_killed_mid_experiment_keeps_finished_runs_and_the_rerun_resumes(tmp_path):
    pytest.importorskip("ray")
    ray_bin = shutil.which("ray") or str(Path(sys.executable).parent / "ray")
    env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0", HOME=str(tmp_path / "home"))

    def start_head(port):
        start = [ray_bin, "start", "--head", "--node-ip-address", "127.0.0.1", "--port",
                 str(port), "--num-cpus", "1", "--include-dashboard", "false",
                 "--disable-usage-stats"]  # fmt: skip
        subprocess.run(start, check=True, capture_output=True, env=env, timeout=180)

    def stop_heads():
        subprocess.run([ray_bin, "stop", "--force"], capture_output=True, env=env, timeout=120)

    port, out = _free_port(), tmp_path / "ray"
    # runs long enough (a few seconds each, one at a time) for the cluster to go mid-way
    argv = [sys.executable, "-m", "defstab.cli.main", *ARGV, "--seeds", "3", "--per-class",
            "40", "--epochs", "3", "--executor",
            "ray", "--address", f"127.0.0.1:{port}", "--connect-timeout", "5",
            "--out", str(out)]  # fmt: skip
    start_head(port)
    try:
        driver = subprocess.Popen(argv, env=env, stderr=subprocess.PIPE, text=True)
        done = out / "measurements"
        deadline = time.time() + 240
        while not list(done.glob("*/result.json")) and time.time() < deadline:
            time.sleep(0.5)
        stop_heads()  # the cluster disappears mid-experiment
        t0 = time.time()
        _, err = driver.communicate(timeout=180)
        assert driver.returncode == 2 and time.time() - t0 < 60
        assert "stopped answering" in err and "rerun the same command" in err
        assert "Traceback" not in err
        kept = len(list(done.glob("*/result.json")))
        assert kept >= 1
        start_head(port)
        again = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600)
        assert again.returncode == 0, again.stderr[-2000:]
        assert (out / "pooling" / "experiment.json").is_file()
    finally:
        stop_heads()


def test_slurm_that_does_not_answer_ends_in_one_sentence(tmp_path, capsys, monkeypatch):
    """A fake Slurm on PATH: one whose controller hangs, then none at all."""
    pytest.importorskip("submitit")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool, body in (("sbatch", "exit 1"), ("squeue", "sleep 60")):
        (bin_dir / tool).write_text(f"#!/bin/sh\n{body}\n")
        (bin_dir / tool).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    argv = [*ARGV, "--executor", "slurm", "--connect-timeout", "1", "--out", str(tmp_path / "o")]
    t0 = time.monotonic()
    assert main(argv) == 2
    assert time.monotonic() - t0 < 15
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Slurm did not answer within 1 s" in err[0]
    monkeypatch.setenv("PATH", str(tmp_path / "nothing"))
    assert main(argv) == 2
    assert "needs Slurm's sbatch and squeue" in capsys.readouterr().err


def _measure_argv(folder, out):
    return ["measure", "--model", "vgg_cifar_maxpool", "--width", "0.25", "--data",
            f"folder:{folder}", "--images", "24", "--normalizer", "sampled", "--batch-size",
            "4", "--seed", "1", "--quiet", "--out", str(out)]  # fmt: skip


def _one_thread_measure(folder, out) -> bytes:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert main(_measure_argv(folder, out)) == 0
    finally:
        torch.set_num_threads(before)
    return (out / "per_image.csv").read_bytes()


@pytest.mark.parametrize("engine", ["slurm", "ray"])
def test_measure_shards_on_submitit_and_ray_equal_one_process(tmp_path, engine, monkeypatch):
    """measure --shards on the experiment's executors: each shard a submitit job (its
    local cluster) or a task of a private Ray cluster, one thread each; the merge equals
    a one-thread run in this process byte for byte."""
    from fixtures_formats import write_image_folder

    pytest.importorskip("submitit" if engine == "slurm" else "ray")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # no stale ~/.ray token
    folder = write_image_folder(tmp_path / "imgs", per_class=8, size=(32, 32))
    out = tmp_path / engine
    extra = (["--executor", "slurm", "--slurm-cluster", "local", "--slurm-time", "10"]
             if engine == "slurm" else ["--executor", "ray"])  # fmt: skip
    assert main([*_measure_argv(folder, out), "--shards", "3", *extra]) == 0
    assert sorted(p.name for p in (out / "shards").glob("*.pt")) == [
        f"shard-{i}-of-3.pt" for i in range(3)
    ]
    assert (out / "per_image.csv").read_bytes() == _one_thread_measure(folder, tmp_path / "one")
