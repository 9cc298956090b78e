"""defstab train from the command line, and the explicit download path (offline)."""

import json

import pytest
import torch

from defstab.cli.main import main
from defstab.io.tables import read_csv


def train_argv(out, *extra):
    return [
        "train",
        "--model",
        "vgg_cifar_avgpool",
        "--width",
        "0.125",
        "--data",
        "synthetic:2",
        "--per-class",
        "20",
        "--epochs",
        "1",
        "--batch-size",
        "40",
        "--seed",
        "3",
        "--out",
        str(out),
        "--quiet",
        *extra,
    ]


def test_train_cli_round_trip_and_resume(tmp_path, capsys):
    out = tmp_path / "run"
    argv = train_argv(out)
    assert main(argv) == 0
    cfg = json.loads((out / "config.json").read_text())
    assert (
        cfg["train"]["seed"] == 3
        and cfg["train"]["augment"] is False
        and cfg["train_images"] == 200
    )
    rows = read_csv(out / "history.csv")
    assert rows[-1]["step"] == "5"
    assert main(argv) == 0  # finished run: resumes at the end, trains nothing more
    assert read_csv(out / "history.csv") == rows


def test_init_seed_sets_the_initialisation_apart_from_the_data_seed(tmp_path):
    from defstab.io.checkpoint import read_checkpoint
    from defstab.models import create_model

    assert main(train_argv(tmp_path / "a", "--init-seed", "7")) == 0
    cfg = json.loads((tmp_path / "a" / "config.json").read_text())
    assert cfg["model_kwargs"]["seed"] == 7 and cfg["train"]["seed"] == 3
    state, _ = read_checkpoint(tmp_path / "a" / "checkpoints" / "step_00000000.safetensors")
    for seed, same in ((7, True), (3, False)):
        ref = create_model("vgg_cifar_avgpool", width=0.125, in_channels=1, seed=seed)
        w = ref.state_dict()["features.conv1_1.0.weight"]
        assert torch.equal(state["model.features.conv1_1.0.weight"], w) is same


def test_download_is_explicit_and_calls_torchvision(tmp_path, monkeypatch):
    import torchvision.datasets as tvd

    from defstab.data.download import download

    calls = []

    class Fake:
        def __init__(self, root, train, download):
            calls.append((root, train, download))

    monkeypatch.setattr(tvd, "CIFAR10", Fake)
    download("cifar10", tmp_path)
    assert calls == [(str(tmp_path), True, True), (str(tmp_path), False, True)]


def test_a_failed_download_leaves_no_folders_behind(tmp_path, monkeypatch):
    import torchvision.datasets as tvd

    from defstab.data.download import download

    def offline(root, train, download):
        raise RuntimeError("no internet")

    monkeypatch.setattr(tvd, "MNIST", offline)
    with pytest.raises(RuntimeError, match="no internet"):
        download("mnist", tmp_path / "new" / "root")
    with pytest.raises(ValueError, match="only cifar10 and mnist"):
        download("folder", tmp_path / "other")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "data,extra,message",
    [
        ("synthetic:x", [], "synthetic:C"),
        ("synthetic", ["--lr", "-1"], "lr"),
        ("imagenet:/x", [], "cannot tell what data"),
        ("synthetic", ["--model", "torchvision:resnet18", "--width", "0.5"], "registry models"),
    ],
)
def test_train_cli_errors(tmp_path, capsys, data, extra, message):
    argv = ["train", "--model", "vgg_cifar_maxpool", "--data", data, "--out", str(tmp_path)]
    assert main(argv + extra) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_train_then_measure_its_checkpoint(tmp_path):
    """The chain a user runs: train, then measure the last checkpoint from the CLI."""
    from defstab.data.splits import train_test_splits
    from defstab.deform import DeformationSpec
    from defstab.io.checkpoint import load_checkpoint
    from defstab.measure import measure_sensitivity
    from defstab.models import create_model

    assert main(train_argv(tmp_path / "run")) == 0
    last = sorted((tmp_path / "run" / "checkpoints").glob("*.safetensors"))[-1]
    _, test = train_test_splits("synthetic:2", seed=3, per_class=20)
    x = test.images(range(len(test)))
    torch.save({"images": x, "labels": test.labels}, tmp_path / "probe.pt")
    argv = ["measure", "--model", "vgg_cifar_avgpool", "--width", "0.125", "--checkpoint",
            str(last), "--data", str(tmp_path / "probe.pt"), "--images", "6", "--no-noise",
            "--out", str(tmp_path / "m"), "--quiet"]  # fmt: skip
    assert main(argv) == 0
    model = create_model("vgg_cifar_avgpool", width=0.125, in_channels=1)
    load_checkpoint(model, last)
    gen = torch.Generator().manual_seed(0)
    idx = torch.randperm(len(x), generator=gen)[:6]
    expected = measure_sensitivity(
        model, x[idx], DeformationSpec.paper(28), generator=gen, noise_control=False
    )
    measured = [float(r["mean"]) for r in read_csv(tmp_path / "m" / "sensitivity.csv")]
    assert measured == pytest.approx(expected.mean.tolist(), rel=1e-5)


def test_train_to_a_target_through_the_cli(tmp_path, capsys):
    import json

    from defstab.cli.main import main

    argv = ["train", "--model", "vgg_cifar_maxpool", "--width", "0.125", "--data",
            "synthetic:2", "--batch-size", "64", "--quiet", "--epochs", "30"]  # fmt: skip
    assert main([*argv, "--target-train-acc", "0.5", "--out", str(tmp_path / "t")]) == 0
    summary = json.loads((tmp_path / "t" / "train_summary.json").read_text())
    assert summary["reached_target"] and summary["epochs_trained"] < summary["epoch_cap"] == 30
    assert main([*argv, "--target-train-acc", "1.5", "--out", str(tmp_path / "u")]) == 2
    assert "--target-train-acc" in capsys.readouterr().err
