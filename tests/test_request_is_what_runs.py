"""The request is what runs: replay files of another kind or size are refused (or read at
the size they were made for), a diffeomorphism beyond its range is refused, an experiment
whose --archs give it no finding is refused before training, image conversions are said,
and a failed download names the weights and the option that asked for them."""

from __future__ import annotations

import urllib.error

import numpy as np
import pytest
from PIL import Image

from defstab.cli.main import main
from fixtures_formats import write_image_folder

SMALL = ["--model", "vgg_cifar_maxpool", "--width", "0.125"]


@pytest.fixture(scope="module")
def measured(tmp_path_factory):
    """A folder of 32-px images and a TPS measurement of four of them (its replay file)."""
    root = tmp_path_factory.mktemp("request")
    data = write_image_folder(root / "imgs", per_class=2, size=(32, 32))
    out = root / "tps"
    argv = ["measure", *SMALL, "--data", f"folder:{data}", "--images", "4", "--no-noise",
            "--quiet", "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    return root, data, out / "deformations.pt"


def _last_line(capsys) -> str:
    return capsys.readouterr().err.strip().splitlines()[-1]


def test_measure_refuses_a_replay_of_another_kind(measured, tmp_path, capsys):
    root, data, tps = measured
    argv = ["measure", *SMALL, "--data", f"folder:{data}", "--images", "4", "--no-noise",
            "--deformation", "diffeo", "--deformations", str(tps),
            "--out", str(tmp_path / "m")]  # fmt: skip
    assert main(argv) == 2
    assert "holds tps deformations, not diffeo" in _last_line(capsys)
    assert not (tmp_path / "m").exists()


def test_a_diffeo_beyond_its_range_is_refused(measured, tmp_path, capsys):
    root, data, _ = measured
    argv = ["measure", *SMALL, "--data", f"folder:{data}", "--images", "4", "--no-noise",
            "--deformation", "diffeo", "--displacement", "20",
            "--out", str(tmp_path / "m")]  # fmt: skip
    assert main(argv) == 2
    line = _last_line(capsys)
    # T_max = 4 / (π³ c² ln c) = 0.0130 for c = 3; δ(T_max) on 32 px = 16·√(π T ln c) = 3.40
    assert "folds over itself" in line and "T = 0.013" in line and "3.40 px" in line, line
    argv[argv.index("20")] = "3.5"  # just beyond it
    assert main(argv) == 2 and "folds over itself" in _last_line(capsys)
    argv[argv.index("3.5")] = "3.3"  # just inside the range: measured
    assert main(argv) == 0


def test_deform_reads_a_replay_at_its_size_and_refuses_another_kind(measured, tmp_path, capsys):
    root, data, tps = measured
    images = sorted(str(p) for p in data.rglob("*.png"))
    chosen = _replayed_images(tps, data)
    out = tmp_path / "d.png"
    assert main(["deform", *chosen, "--displacements", str(tps), "-o", str(out)]) == 0
    assert "images read at 32 px" in capsys.readouterr().err and out.is_file()
    assert main(["deform", *chosen, "--displacements", str(tps), "--size", "64",
                 "-o", str(out)]) == 2  # fmt: skip
    assert "was drawn for 32×32-px images" in _last_line(capsys)
    assert main(["deform", *chosen, "--kind", "diffeo", "--displacements", str(tps),
                 "-o", str(out)]) == 2  # fmt: skip
    assert "holds tps deformations, not diffeo" in _last_line(capsys)
    assert len(images) == 6


def _replayed_images(tps, data) -> list[str]:
    """The image files the replay was drawn for, in its order."""
    import torch

    from defstab.data.sources import read_image_folder
    from defstab.io.replay import read_replay

    record = read_replay(tps).record
    paths = read_image_folder(data).paths
    assert isinstance(torch.tensor(record["images"]), torch.Tensor)
    return [str(paths[i]) for i in record["images"]]


def test_deform_reads_spatials_config_beside_its_csv(measured, tmp_path, capsys):
    root, data, _ = measured
    out = tmp_path / "s"
    argv = ["spatial", *SMALL, "--data", f"folder:{data}", "--images", "2", "--quiet",
            "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    capsys.readouterr()
    images = sorted(str(p) for p in data.rglob("*.png"))[:2]
    figure = tmp_path / "f.png"
    argv = ["deform", *images, "--kind", "spatial", "--transforms", str(out / "per_image.csv"),
            "-o", str(figure)]  # fmt: skip
    assert main(argv) == 0  # without --size: read at 32 px, as spatial measured them
    assert "images read at 32 px" in capsys.readouterr().err and figure.is_file()
    assert main([*argv, "--size", "224"]) == 2
    assert "worst transforms of 32-px images" in _last_line(capsys)


@pytest.mark.parametrize(("name", "archs"), [("antialias", "maxpool,avgpool"), ("pooling", "aps")])
def test_an_experiment_without_a_finding_is_refused_before_training(name, archs, tmp_path, capsys):
    argv = ["experiment", name, "--archs", archs, "--data", "cifar10:/nonexistent/cifar",
            "--out", str(tmp_path / "e")]  # fmt: skip
    assert main(argv) == 2
    assert f"experiment {name} states no finding with --archs {archs}" in _last_line(capsys)
    assert not (tmp_path / "e").exists()


def test_rgba_and_grey_images_are_said_once(tmp_path, capsys):
    import defstab.io.images as images

    images._SAID.clear()
    root = tmp_path / "imgs"
    rng = np.random.default_rng(0)
    for c in ("a", "b"):
        (root / c).mkdir(parents=True)
        for i in range(2):
            rgba = rng.integers(0, 256, (32, 32, 4), dtype=np.uint8)
            Image.fromarray(rgba, "RGBA").save(root / c / f"{i}.png")
            Image.fromarray(rgba[..., 0], "L").save(root / c / f"g{i}.png")
    argv = ["measure", *SMALL, "--data", f"folder:{root}", "--images", "4", "--no-noise",
            "--quiet", "--out", str(tmp_path / "m")]  # fmt: skip
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert err.count("images with an alpha channel") == 1 and "dropped" in err, err
    assert err.count("greyscale images") == 1


def test_a_failed_download_names_the_weights_and_the_option(measured, tmp_path, capsys,
                                                           monkeypatch):  # fmt: skip
    import torchvision.models._api as api

    def offline(*args, **kwargs):  # as urllib fails without a network, whatever the machine
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(api, "load_state_dict_from_url", offline)
    root, data, _ = measured
    argv = ["perturb", *SMALL, "--data", f"folder:{data}", "--images", "2", "--preset",
            "cifar-p", "--perturbations", "translate", "--baseline-model",
            "torchvision:alexnet", "--baseline-pretrained",
            "--out", str(tmp_path / "p")]  # fmt: skip
    assert main(argv) == 2
    line = _last_line(capsys)
    assert "published weights of torchvision:alexnet (asked for by --baseline-pretrained)" in line
    assert "name resolution" in line
