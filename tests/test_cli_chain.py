"""A user's day through the real CLI, on real-format files: train → measure, smoothness and
translate --layers on its checkpoint → one report of the lot; and interruptions (SIGINT)
that resume to exactly what an uninterrupted run gives."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from defstab.cli.main import main
from defstab.io.tables import read_csv
from fixtures_formats import write_cifar_batches


def test_train_measure_translate_report_chain(tmp_path, capsys):
    data = f"cifar10:{tmp_path / 'cifar'}"
    write_cifar_batches(tmp_path / "cifar", n_per_batch=8)
    run = tmp_path / "results" / "train"
    train = ["train", "--model", "vgg_cifar_maxpool", "--width", "0.125", "--data", data,
             "--epochs", "1", "--batch-size", "20", "--quiet", "--out", str(run)]  # fmt: skip
    assert main(train) == 0
    common = ["--run", str(run), "--data", data]
    assert main(["measure", *common, "--images", "6", "--quiet",
                 "--out", str(tmp_path / "results" / "measure")]) == 0  # fmt: skip
    assert main(["smoothness", "--run", str(run),
                 "--out", str(tmp_path / "results" / "smoothness")]) == 0  # fmt: skip
    assert main(["translate", *common, "--images", "4", "--steps", "2", "--layers", "--quiet",
                 "--out", str(tmp_path / "results" / "translate")]) == 0  # fmt: skip
    # the untrained twin, to see the random-weights warning where a reader looks
    assert main(["measure", "--model", "vgg_cifar_maxpool", "--width", "0.125", "--data", data,
                 "--images", "6", "--quiet",
                 "--out", str(tmp_path / "results" / "random")]) == 0  # fmt: skip
    capsys.readouterr()
    report = tmp_path / "report.html"
    assert main(["report", str(tmp_path / "results"), "-o", str(report)]) == 0
    html = report.read_text()
    for title in ("Training: vgg_cifar_maxpool", "Sensitivity to TPS deformations (k = 3, C = 2)",
                  "Filter smoothness", "Translations: vgg_cifar_maxpool"):  # fmt: skip
        assert title in html
    assert html.count("RANDOM WEIGHTS") == 1  # the untrained measurement only
    assert html.count("data:image/png;base64,") >= 6
    # the measurement used the run's last checkpoint and its settings
    cfg = json.loads((tmp_path / "results" / "measure" / "config.json").read_text())
    last = sorted((run / "checkpoints").glob("*.safetensors"))[-1]
    assert cfg["checkpoint"] == str(last) and cfg["model_kwargs"]["width"] == 0.125
    assert cfg["normalize"] == "cifar10" and cfg["weights"].startswith("trained")
    layers = read_csv(tmp_path / "results" / "translate" / "layers.csv")
    assert {r["layer"] for r in layers} >= {"features.conv1_1", "features.pool4"}
    assert {r["stride_source"] for r in layers} == {"feature_info"}
    assert [r["stride"] for r in layers if r["layer"] == "features.pool4"][0] == "16"
    # checkpoints are files to share: they honour the umask like every other output
    mask = os.umask(0)
    os.umask(mask)
    assert last.stat().st_mode & 0o777 == 0o666 & ~mask
    # from Python, the same run loads with load_run
    from defstab.io.checkpoint import model_state, read_checkpoint
    from defstab.models import load_run

    model, info = load_run(run)
    state = model_state(read_checkpoint(last)[0])
    assert info["step"] == int(last.stem.split("_")[1]) and not model.training
    assert all((model.state_dict()[k] == v).all() for k, v in state.items())
    # replaying the saved deformations reproduces the measurement
    saved = tmp_path / "results" / "measure" / "deformations.pt"
    assert main(["measure", *common, "--images", "6", "--quiet", "--deformations", str(saved),
                 "--no-noise", "--out", str(tmp_path / "replay")]) == 0  # fmt: skip
    a = read_csv(tmp_path / "results" / "measure" / "sensitivity.csv")
    b = read_csv(tmp_path / "replay" / "sensitivity.csv")
    assert [r["mean"] for r in a] == [r["mean"] for r in b]


def test_upscaled_images_are_announced(tmp_path, capsys):
    from fixtures_formats import write_image_folder

    write_image_folder(tmp_path / "small", per_class=2, size=(8, 8))
    small = f"folder:{tmp_path / 'small'}"
    argv = ["measure", "--model", "vgg_cifar_maxpool", "--width", "0.125", "--images", "4",
            "--data", small, "--quiet", "--out", str(tmp_path / "m")]  # fmt: skip
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert "warning: images of 8×8 px are resized ×4 to 32 px" in err


def _cli(*argv, **kw):
    return subprocess.Popen(
        [sys.executable, "-m", "defstab.cli.main", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ | {"PYTHONUNBUFFERED": "1"},
        **kw,
    )


def _interrupt_when(proc, ready, timeout=120):
    """Send SIGINT as soon as ``ready()`` holds; returns whether it was interrupted."""
    t0 = time.time()
    while proc.poll() is None and time.time() - t0 < timeout:
        if ready():
            proc.send_signal(signal.SIGINT)
            proc.wait(60)
            return True
        time.sleep(0.05)
    proc.wait(60)
    return False


@pytest.mark.slow
def test_sigint_during_train_then_rerun_equals_uninterrupted(tmp_path):
    from defstab.io.checkpoint import read_checkpoint

    def argv(out):
        return ["train", "--model", "vgg_cifar_maxpool", "--width", "0.125", "--data",
                "synthetic", "--per-class", "20", "--epochs", "12", "--batch-size", "20",
                "--quiet", "--out", str(out)]  # fmt: skip

    full = _cli(*argv(tmp_path / "full"))
    assert full.wait(300) == 0
    part = _cli(*argv(tmp_path / "part"))
    ckpts = tmp_path / "part" / "checkpoints"
    assert _interrupt_when(part, lambda: len(list(ckpts.glob("step_*.safetensors"))) >= 6)
    assert part.returncode == 130 and "interrupted" in part.stderr.read()
    assert not (tmp_path / "part" / "train_summary.json").exists()  # not read as finished
    resumed = _cli(*argv(tmp_path / "part"))
    assert resumed.wait(300) == 0 and "resuming" in resumed.stderr.read()
    a = sorted((tmp_path / "full" / "checkpoints").glob("*.safetensors"))
    b = sorted(ckpts.glob("*.safetensors"))
    assert [p.name for p in a] == [p.name for p in b]
    sa, sb = read_checkpoint(a[-1])[0], read_checkpoint(b[-1])[0]
    assert all((sa[k] == sb[k]).all() for k in sa)
    assert read_csv(tmp_path / "full" / "history.csv") == read_csv(
        tmp_path / "part" / "history.csv"
    )


@pytest.mark.slow
def test_sigint_during_experiment_then_rerun_equals_uninterrupted(tmp_path):
    def argv(out):
        return ["experiment", "synthetic", "--seeds", "2", "--width", "0.125", "--epochs", "2",
                "--per-class", "20", "--images", "8", "--out", str(out)]  # fmt: skip

    full = _cli(*argv(tmp_path / "full"))
    assert full.wait(300) == 0
    part = _cli(*argv(tmp_path / "part"))
    done = tmp_path / "part" / "measurements"
    assert _interrupt_when(part, lambda: len(list(done.glob("*/result.json"))) >= 2)
    assert part.returncode == 130
    finished = len(list(done.glob("*/result.json")))
    assert not (tmp_path / "part" / "synthetic" / "experiment.json").exists()
    resumed = _cli(*argv(tmp_path / "part"))
    out, _ = resumed.communicate(timeout=300)
    assert resumed.returncode == 0
    assert f"{finished} of 8 runs were already finished" in out
    for name in ("results.csv", "summary.csv"):
        assert read_csv(tmp_path / "full" / "synthetic" / name) == read_csv(
            tmp_path / "part" / "synthetic" / name
        )
