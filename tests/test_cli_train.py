"""defstab train from the command line, and the explicit download path (offline)."""

import json

from defstab.cli.main import main
from defstab.io.tables import read_csv


def test_train_cli_round_trip_and_resume(tmp_path, capsys):
    out = tmp_path / "run"
    argv = [
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
    ]
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


def test_train_cli_errors(tmp_path, capsys):
    assert (
        main(
            [
                "train",
                "--model",
                "vgg_cifar_maxpool",
                "--data",
                "synthetic:x",
                "--out",
                str(tmp_path / "o"),
            ]
        )
        == 2
    )
    assert "synthetic:C" in capsys.readouterr().err
    assert (
        main(
            [
                "train",
                "--model",
                "vgg_cifar_maxpool",
                "--data",
                "synthetic",
                "--lr",
                "-1",
                "--out",
                str(tmp_path / "o"),
            ]
        )
        == 2
    )
    assert "lr" in capsys.readouterr().err
