"""A model that gives NaN scores, or whose forward raises, ends every command that runs it
in one sentence naming the model (and the image or the input shape), with nothing written
that looks like a result."""

from __future__ import annotations

import pytest

from defstab.cli.main import main
from fixtures_formats import write_image_folder

MODELS = """
import torch
from torch import nn


class Net(nn.Module):
    def __init__(self, fault):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.fc = nn.Linear(4, 3)
        self.fault = fault

    def forward(self, x):
        # a ViT's patch embedding given another input size does exactly this
        assert self.fault != "assert" or x.shape[-1] == 224, (
            f"Input image size ({x.shape[-2]}*{x.shape[-1]}) doesn't match model (224*224)."
        )
        logits = self.fc(self.conv(x).mean(dim=(2, 3)))
        if self.fault == "nan":
            logits = logits.clone()
            logits[1:, 0] = float("nan")  # every image but the first
        if self.fault == "inf":
            logits = logits * float("inf")
        return logits


def nan_scores():
    return Net("nan")


def inf_scores():
    return Net("inf")


def asserting():
    return Net("assert")
"""


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("faults")
    (root / "nets.py").write_text(MODELS)
    data = write_image_folder(root / "imgs", per_class=3, size=(32, 32))
    return root, f"folder:{data}"


def _commands(model, data, out):
    common = ["--model", model, "--data", data, "--out", str(out), "--quiet"]
    return {
        "translate": ["translate", *common, "--images", "4", "--steps", "2", "--image-size", "32"],
        "perturb": [
            "perturb",
            *common,
            "--images",
            "2",
            "--preset",
            "cifar-p",
            "--perturbations",
            "translate,gaussian_noise",
        ],  # fmt: skip
        "spatial": ["spatial", *common, "--images", "4", "--image-size", "32"],
        "measure": [
            "measure",
            *common,
            "--images",
            "4",
            "--image-size",
            "32",
            "--worst-case",
            "--attack-steps",
            "1",
            "--no-noise",
        ],  # fmt: skip
    }


@pytest.mark.parametrize("command", ["translate", "perturb", "spatial", "measure"])
@pytest.mark.parametrize(("factory", "what"), [("nan_scores", "NaN"), ("inf_scores", "infinite")])
def test_non_finite_scores_are_one_sentence(setup, tmp_path, capsys, command, factory, what):
    root, data = setup
    out = tmp_path / "out"
    argv = _commands(f"{root / 'nets.py'}:{factory}", data, out)[command]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert f"gives {what} class scores for image" in err, err
    assert "nets.py:" + factory in err and "Traceback" not in err
    assert not (out / "config.json").exists()  # no folder claims a result


@pytest.mark.parametrize("command", ["translate", "perturb", "spatial", "measure"])
def test_an_exception_of_the_models_forward_is_one_sentence(setup, tmp_path, capsys, command):
    root, data = setup
    out = tmp_path / "out"
    argv = _commands(f"{root / 'nets.py'}:asserting", data, out)[command]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "nets.py:asserting cannot run on inputs of shape" in err, err
    assert "raised AssertionError: Input image size (32*32)" in err
    assert not (out / "config.json").exists()


def test_measure_without_class_scores_names_the_failing_model_too(setup, tmp_path, capsys):
    root, data = setup
    argv = ["measure", "--model", f"{root / 'nets.py'}:asserting", "--data", data,
            "--images", "4", "--image-size", "32", "--out", str(tmp_path / "o"),
            "--quiet"]  # fmt: skip
    assert main(argv) == 2
    assert "raised AssertionError" in capsys.readouterr().err
