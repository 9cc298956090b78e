"""``defstab rerun FOLDER``: the request a result folder records, replayed from another
working folder, gives each command's main table byte for byte (same thread count)."""

from __future__ import annotations

import json

import pytest

from defstab.cli.main import main
from fixtures_formats import write_image_folder

MODEL = ["--model", "vgg_cifar_maxpool", "--width", "0.125"]
DATA = ["--data", "folder:imgs"]  # relative: the rerun must resolve it where it was made
COMMANDS = {
    "measure": (["measure", *MODEL, *DATA, "--images", "4", "--quiet"], "sensitivity.csv"),
    "translate": (["translate", *MODEL, *DATA, "--images", "3", "--steps", "2", "--quiet"],
                  "summary.csv"),
    "perturb": (["perturb", *MODEL, *DATA, "--images", "2", "--preset", "cifar-p",
                 "--perturbations", "translate,gaussian_noise", "--quiet"], "summary.csv"),
    "spatial": (["spatial", *MODEL, *DATA, "--images", "3", "--quiet"], "summary.csv"),
    "smoothness": (["smoothness", *MODEL], "smoothness.csv"),
}  # fmt: skip


@pytest.fixture
def made(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_image_folder(tmp_path / "imgs", per_class=2, size=(32, 32))
    return tmp_path


@pytest.mark.parametrize("command", COMMANDS)
def test_a_rerun_gives_the_same_main_table(made, tmp_path_factory, monkeypatch, command):
    argv, table = COMMANDS[command]
    assert main([*argv, "--out", "first"]) == 0
    request = json.loads((made / "first" / "config.json").read_text())["request"]
    assert request["argv"] == argv and request["cwd"] == str(made)
    monkeypatch.chdir(tmp_path_factory.mktemp("elsewhere"))
    again = made / "again"
    assert main(["rerun", str(made / "first"), "--out", str(again)]) == 0
    assert (again / table).read_bytes() == (made / "first" / table).read_bytes()
    # and into the folder itself: replaced whole, the same table
    before = (made / "first" / table).read_bytes()
    assert main(["rerun", str(made / "first")]) == 0
    assert (made / "first" / table).read_bytes() == before


def test_a_config_files_run_is_replayed_with_its_options(made):
    (made / "m.toml").write_text('model = "vgg_cifar_maxpool"\nwidth = 0.125\n'
                                 'data = "folder:imgs"\nimages = 4\nno_noise = true\n')  # fmt: skip
    assert main(["measure", "--config", "m.toml", "--quiet", "--out", "m"]) == 0
    argv = json.loads((made / "m" / "config.json").read_text())["request"]["argv"]
    assert "--config" not in argv and "--no-noise" in argv  # the file's options, expanded
    (made / "m.toml").unlink()  # the replay needs the recorded options, not the file
    assert main(["rerun", "m", "--out", "m2"]) == 0
    assert (made / "m2" / "sensitivity.csv").read_bytes() == (
        made / "m" / "sensitivity.csv"
    ).read_bytes()


def test_what_cannot_be_replayed_is_one_sentence(made, capsys):
    assert main(["rerun", "imgs"]) == 2
    assert "holds no config.json" in capsys.readouterr().err
    (made / "old").mkdir()
    (made / "old" / "config.json").write_text('{"command": "measure"}')
    assert main(["rerun", "old"]) == 2
    assert "records no request" in capsys.readouterr().err
    assert main(["rerun", "nowhere"]) == 2
    assert "is not a folder" in capsys.readouterr().err
