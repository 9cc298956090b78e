"""torchrun: one network trained by two processes (gloo, CPU) equals one process with the
same global batch, and resumes from its checkpoints; only rank 0 writes."""

import json
import subprocess
import sys

import pytest

from defstab.cli.main import main
from defstab.io.checkpoint import read_checkpoint
from fixtures_formats import write_cifar_batches

#: a network without BatchNorm: on CPU, PyTorch has no SyncBatchNorm, so BN statistics
#: would be per process (a documented difference); everything else must match
NET = """
import torch
from torch import nn

def factory():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Linear(8, 10))
"""
#: float32 summation order differs (two half-batch gradients summed by all-reduce instead
#: of one full-batch sum); after 8 SGD steps that moves weights by ~1e-8 (observed 7e-9)
ATOL = 1e-5


def last_weights(run):
    files = sorted((run / "checkpoints").glob("step_*.safetensors"))
    state, meta = read_checkpoint(files[-1])
    return {k: v for k, v in state.items() if k.startswith("model.")}, meta["step"]


def torchrun(argv, tmp_path):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
           "--standalone", "-m", "defstab", *argv]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    return done


@pytest.mark.slow
def test_two_processes_equal_one_and_resume(tmp_path):
    (tmp_path / "net.py").write_text(NET)
    write_cifar_batches(tmp_path / "cifar", n_per_batch=16)
    common = [
        "train",
        "--model",
        f"{tmp_path / 'net.py'}:factory",
        "--data",
        f"cifar10:{tmp_path / 'cifar'}",
        "--epochs",
        "2",
        "--batch-size",
        "20",
        "--precision",
        "fp32",
        "--quiet",
    ]  # fmt: skip  (ATOL is fp32's rounding)
    assert main([*common, "--out", str(tmp_path / "one")]) == 0
    done = torchrun([*common, "--out", str(tmp_path / "two")], tmp_path)
    assert done.stdout.count("test accuracy") == 1  # rank 0 alone reports
    one, step_one = last_weights(tmp_path / "one")
    two, step_two = last_weights(tmp_path / "two")
    assert step_one == step_two == 8 and one.keys() == two.keys()
    for k in one:
        assert (one[k] - two[k]).abs().max() <= ATOL, k
    config = json.loads((tmp_path / "two" / "config.json").read_text())
    assert config["distributed"] == {"processes": 2, "backend": "gloo"}
    # an interruption after step 4: the later checkpoints and the summary are gone
    run = tmp_path / "two"
    for f in (run / "checkpoints").glob("step_*.safetensors"):
        if int(f.stem.split("_")[1]) > 4:
            f.unlink()
    (run / "train_summary.json").unlink()
    torchrun([*common, "--out", str(run)], tmp_path)
    resumed, step = last_weights(run)
    assert step == 8
    for k in one:
        assert (one[k] - resumed[k]).abs().max() <= ATOL, k


@pytest.mark.slow
def test_experiment_runs_train_with_several_processes(tmp_path):
    """--processes-per-run 2: each run's network is trained by 2 DDP processes started by
    torch's elastic launcher (what --gpus-per-run N does with N GPUs); the same train()
    as torchrun, whose numbers the test above checks. Rank 0 alone writes."""
    argv = ["experiment", "pooling", "--data", "synthetic:2", "--archs", "maxpool",
            "--seeds", "1", "--width", "0.125", "--images", "8", "--per-class", "6",
            "--epochs", "2", "--processes-per-run", "2", "--quiet",
            "--out", str(tmp_path)]  # fmt: skip
    assert main(argv) == 0  # (each process warns that BatchNorm is per process on CPU)
    (network,) = [json.loads(p.read_text()) for p in tmp_path.glob("networks/*/network.json")]
    assert network["train_processes"] == 2 and network["steps"] == 2
    (folder,) = list(tmp_path.glob("networks/*"))
    rows = (folder / "history.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in rows[1:]] == ["0", "1", "2"]  # every checkpoint, once
    init, _ = read_checkpoint(folder / "checkpoints" / "step_00000000.safetensors")
    last, _ = read_checkpoint(folder / "checkpoints" / "step_00000002.safetensors")
    assert any((init[k] - last[k]).abs().max() > 0 for k in init if k.startswith("model."))
    summary = (tmp_path / "pooling" / "summary.csv").read_text()
    assert "trained,sensitivity" in summary
