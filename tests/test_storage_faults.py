"""Storage faults are one sentence and lose nothing: with a file-size limit (``ulimit -f``;
Python ignores SIGXFSZ, so writes fail with EFBIG), train, measure's spill and experiment
end with one line naming the path and the OS error, exit status 2, keep what they had
finished, and the same command completes once the limit is gone."""

from __future__ import annotations

import subprocess
import sys

import pytest

from fixtures_formats import write_image_folder

LIMITED = """
import resource, sys
resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}))
from defstab.cli.main import main
sys.exit(main({argv!r}))
"""


def _run(argv, cwd, limit=-1):
    """The CLI in a child process whose files may not exceed ``limit`` bytes (-1: none)."""
    code = LIMITED.format(limit=limit, argv=[str(a) for a in argv])
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=cwd)


def _one_sentence(result, path_part: str):
    assert result.returncode == 2, result.stderr[-2000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert path_part in lines[0] and "EFBIG" in lines[0] and "rerun" in lines[0]


def test_train_on_a_full_disk_keeps_its_checkpoints_and_resumes(tmp_path):
    argv = ["train", "--model", "vgg_cifar_maxpool", "--width", "0.25", "--data", "synthetic",
            "--per-class", "4", "--epochs", "1", "--quiet", "--out", "run"]  # fmt: skip
    # 60 kB: config.json fits, a checkpoint (≈ 0.5 MB with its optimizer state) does not
    failed = _run(argv, tmp_path, limit=60_000)
    _one_sentence(failed, "run/checkpoints/step_")
    assert not list((tmp_path / "run" / "checkpoints").glob("*.tmp*"))  # no half-written file
    assert not list((tmp_path / "run" / "checkpoints").glob(".*"))
    again = _run(argv, tmp_path)
    assert again.returncode == 0, again.stderr[-2000:]
    assert (tmp_path / "run" / "train_summary.json").is_file()


def test_measure_spill_on_a_full_disk(tmp_path):
    data = write_image_folder(tmp_path / "imgs", per_class=2, size=(32, 32))
    argv = ["measure", "--model", "vgg_cifar_maxpool", "--width", "0.125", "--data",
            f"folder:{data}", "--images", "4", "--no-noise", "--ram-budget", "0", "--quiet",
            "--out", "m"]  # fmt: skip
    failed = _run(argv, tmp_path, limit=20_000)  # the spilled layers exceed 20 kB
    _one_sentence(failed, "spill file of measure")
    assert not (tmp_path / "m" / "sensitivity.csv").exists()
    assert _run(argv, tmp_path).returncode == 0
    assert (tmp_path / "m" / "sensitivity.csv").is_file()


@pytest.mark.slow
def test_experiment_on_a_full_disk_resumes(tmp_path):
    argv = ["experiment", "synthetic", "--seeds", "1", "--width", "0.125", "--epochs", "1",
            "--per-class", "10", "--images", "8", "--quiet", "--out", "exp"]  # fmt: skip
    failed = _run(argv, tmp_path, limit=100_000)
    _one_sentence(failed, "exp/networks/")
    again = _run(argv, tmp_path)
    assert again.returncode == 0, again.stderr[-2000:]
    assert (tmp_path / "exp" / "synthetic" / "experiment.json").is_file()
