"""Logs a person can read: when stderr is not a terminal, progress is a line per tenth of
the work with elapsed and remaining time, never carriage-return redraws."""

from __future__ import annotations

import io
import os
import subprocess
import sys

from defstab.progress import LogProgress, progress


def test_a_line_per_tenth_with_elapsed_and_left():
    log = io.StringIO()
    bar = progress(total=100, desc="training", unit="step", file=log, force="lines")
    assert isinstance(bar, LogProgress)
    for _ in range(100):
        bar.update(1)
        bar.set_postfix(loss="0.5")
    bar.close()
    lines = log.getvalue().splitlines()
    assert len(lines) == 10 and "\r" not in log.getvalue()
    assert lines[0].startswith("training: 10/100 steps (10%), 0:00:00 elapsed, ~0:00:00 left")
    assert lines[-1].startswith("training: 100/100 steps (100%)") and "left" not in lines[-1]
    assert all("(loss 0.5)" in line for line in lines)


def test_resumed_work_counts_from_where_it_was_and_inner_bars_stay_quiet():
    log = io.StringIO()
    for _ in progress(range(30), desc="inner", leave=False, file=log, force="lines"):
        pass
    assert log.getvalue() == ""  # chunks of one measurement: only on the clock
    bar = progress(total=10, initial=7, desc="runs", unit="run", file=log, force="lines")
    bar.update(3)
    bar.close()
    assert log.getvalue().splitlines() == ["runs: 10/10 runs (100%), 0:00:00 elapsed"]


def _train_stderr(tmp_path, **env):
    argv = ["train", "--model", "vgg_cifar_maxpool", "--width", "0.125", "--data", "synthetic",
            "--per-class", "8", "--epochs", "2", "--batch-size", "8",
            "--out", str(tmp_path)]  # fmt: skip
    code = f"import sys\nfrom defstab.cli.main import main\nsys.exit(main({argv!r}))"
    # bytes, not text: universal newlines would turn the redraws' \r into \n
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, env=os.environ | env)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stderr.decode()


def test_train_into_a_log_writes_lines_not_redraws(tmp_path):
    err = _train_stderr(tmp_path / "log", DEFSTAB_PROGRESS="")
    lines = [line for line in err.splitlines() if line.startswith("training:")]
    assert "\r" not in err and 1 <= len(lines) <= 11
    assert lines[-1].startswith("training: ") and "(100%)" in lines[-1]
    # forced bars (as on a terminal) redraw in place: the switch is what differs
    assert "\r" in _train_stderr(tmp_path / "bars", DEFSTAB_PROGRESS="bars")


def test_log_lines_give_the_rate_once_a_second_has_passed(monkeypatch):
    import io

    from defstab import progress as module

    clock = iter([0.0, 2.0, 4.0, 4.0])
    monkeypatch.setattr(module.time, "monotonic", lambda: next(clock))
    log = io.StringIO()
    bar = module.progress(total=100, desc="measuring", unit="img", file=log, force="lines")
    bar.update(50)
    bar.update(50)
    bar.close()
    lines = log.getvalue().splitlines()
    assert lines[0].endswith(", 25 imgs/s") and lines[1].endswith(", 25 imgs/s"), lines
