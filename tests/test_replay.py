"""Never change the request silently: replay files belong to their images, and translate
refuses images it would have to stretch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from defstab.cli.main import main
from defstab.io.tables import read_csv
from fixtures_formats import write_image_folder


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return write_image_folder(
        tmp_path_factory.mktemp("replay") / "imgs", per_class=3, size=(32, 32)
    )


def _measure(data, out, *extra):
    argv = ["measure", "--model", "vgg_cifar_maxpool", "--width", "0.125", "--data",
            f"folder:{data}", "--images", "4", "--no-noise", "--quiet",
            "--out", str(out)]  # fmt: skip
    return main([*argv, *extra])


def _means(out):
    return [float(r["mean"]) for r in read_csv(out / "sensitivity.csv")]


def test_replay_on_its_own_images_gives_the_same_numbers(data, tmp_path):
    assert _measure(data, tmp_path / "a", "--seed", "3") == 0
    saved = tmp_path / "a" / "deformations.pt"
    stored = torch.load(saved, weights_only=True)
    assert set(stored) == {"params", "record"} and '"seed": 3' in stored["record"]
    assert _measure(data, tmp_path / "b", "--seed", "3", "--deformations", str(saved)) == 0
    assert _means(tmp_path / "b") == _means(tmp_path / "a")


def test_replay_onto_other_images_is_refused_unless_forced(data, tmp_path, capsys):
    assert _measure(data, tmp_path / "a", "--seed", "3") == 0
    saved = str(tmp_path / "a" / "deformations.pt")
    capsys.readouterr()
    assert _measure(data, tmp_path / "b", "--seed", "4", "--deformations", saved) == 2
    err = capsys.readouterr().err
    assert "image ids differ" in err and "--seed 3" in err and "--force-replay" in err
    assert not (tmp_path / "b" / "sensitivity.csv").exists()
    forced = ["--seed", "4", "--deformations", saved, "--force-replay"]
    assert _measure(data, tmp_path / "c", *forced) == 0
    assert "replayed anyway" in capsys.readouterr().err
    # a bare tensor (an older defstab's file) records nothing: the same rule
    bare = tmp_path / "bare.pt"
    torch.save(torch.load(saved, weights_only=True)["params"], bare)
    assert _measure(data, tmp_path / "d", "--seed", "3", "--deformations", str(bare)) == 2
    assert "does not record which images" in capsys.readouterr().err
    assert _measure(data, tmp_path / "e", "--force-replay") == 2
    assert (
        "--force-replay has no effect here: it applies with --deformations"
        in capsys.readouterr().err
    )


def test_translate_refuses_non_square_images_and_measure_keeps_them(tmp_path, capsys):
    images = np.random.default_rng(0).random((4, 3, 24, 40)).astype(np.float32)
    np.save(tmp_path / "wide.npy", images)
    common = ["--model", "vgg_cifar_maxpool", "--width", "0.125", "--data",
              str(tmp_path / "wide.npy"), "--images", "3", "--quiet"]  # fmt: skip
    assert main(["translate", *common, "--out", str(tmp_path / "t")]) == 2
    err = capsys.readouterr().err
    assert "40×24 px" in err and "Traceback" not in err
    assert main(["measure", *common, "--out", str(tmp_path / "m")]) == 0
    record = torch.load(tmp_path / "m" / "deformations.pt", weights_only=True)["record"]
    assert '"image_size": [24, 40]' in record  # kept as they are, not stretched
