"""The smaller seams: what a command says it wrote is what it wrote, a step-0 checkpoint
is called untrained, train's config tells one number of test images, help texts name only
options that exist."""

from __future__ import annotations

import json
import re

import pytest

from defstab.cli.main import main
from fixtures_formats import write_train_test_tree

MODEL = ["--model", "vgg_cifar_maxpool", "--width", "0.125"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("seams")
    write_train_test_tree(root / "tree", per_class=3)
    run = root / "run"
    argv = ["train", *MODEL, "--data", f"folder:{root / 'tree'}", "--epochs", "1",
            "--batch-size", "4", "--test-images", "4", "--quiet", "--out", str(run)]  # fmt: skip
    assert main(argv) == 0
    return root, run


def _wrote(stdout: str, folder) -> list[str]:
    line = next(x for x in stdout.splitlines() if x.startswith(f"wrote {folder}"))
    return line.split(": ", 1)[1].split(", ")


def test_train_config_tells_one_number_of_test_images(trained):
    _, run = trained
    config = json.loads((run / "config.json").read_text())
    assert config["test_images"] == config["train"]["test_images"] == 4
    assert config["test_set_images"] == 9  # 3 classes × 3 images


def test_step_zero_is_called_untrained(trained, capsys):
    root, run = trained
    data = f"folder:{root / 'tree' / 'test'}"
    out = root / "step0"
    argv = ["measure", "--run", str(run), "--step", "0", "--data", data, "--images", "3",
            "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    assert "AT INITIALISATION" in capsys.readouterr().out
    config = json.loads((out / "config.json").read_text())
    assert config["weights"].startswith("at initialisation")
    section = json.loads((out / "section.json").read_text())
    assert any("AT INITIALISATION" in c for c in section["caveats"])


def test_measure_names_every_file_it_wrote(trained, capsys):
    root, _ = trained
    out = root / "m"
    argv = ["measure", *MODEL, "--data", f"folder:{root / 'tree' / 'test'}", "--images", "3",
            "--min-flip", "--attack-steps", "1", "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    named = _wrote(capsys.readouterr().out, out)
    assert {"deformations.pt", "flip.csv", "robustness.png"} <= set(named)
    assert sorted(named) == sorted(p.name for p in out.iterdir())


def test_translate_zhang_names_only_what_it_wrote(trained, capsys):
    root, _ = trained
    out = root / "z"
    argv = ["translate", *MODEL, "--data", f"folder:{root / 'tree' / 'test'}", "--images", "3",
            "--preset", "zhang", "--image-size", "32", "--source-size", "40", "--window", "4",
            "--crop-size", "32",
            "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    named = _wrote(capsys.readouterr().out, out)
    assert "figures" not in " ".join(named)
    assert sorted(named) == sorted(p.name for p in out.iterdir())


def test_train_help_names_no_run_option(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    assert not re.search(r"--run\b", capsys.readouterr().out)
