"""``--config FILE.toml``: the same settings give byte-identical tables whether given as
options or as a file, options on the command line win over the file, and a wrong file
(an unknown key, a missing file, bad TOML, a flag that is not a boolean) is one sentence."""

from __future__ import annotations

import json

import pytest

from defstab.cli.main import main
from fixtures_formats import write_image_folder

OPTIONS = ["--model", "vgg_cifar_maxpool", "--width", "0.125", "--images", "4",
           "--no-noise", "--quiet", "--grid", "3", "--max-disp", "1.5"]  # fmt: skip
TOML = """
model = "vgg_cifar_maxpool"
width = 0.125
images = 4
no_noise = true
quiet = true
grid = 3
max_disp = 1.5
"""


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("config")
    return f"folder:{write_image_folder(root / 'imgs', per_class=2, size=(32, 32))}"


def test_a_file_gives_the_same_tables_as_the_options(data, tmp_path):
    by_options, by_file = tmp_path / "options", tmp_path / "file"
    assert main(["measure", *OPTIONS, "--data", data, "--out", str(by_options)]) == 0
    config = tmp_path / "measure.toml"
    config.write_text(TOML + f'data = "{data}"\nout = "{by_file}"\n')
    assert main(["measure", "--config", str(config)]) == 0
    for table in ("sensitivity.csv", "per_image.csv"):
        assert (by_file / table).read_bytes() == (by_options / table).read_bytes(), table
    assert json.loads((by_file / "config.json").read_text())["deformation"]["grid"] == 3


def test_the_command_line_wins_over_the_file(data, tmp_path):
    config = tmp_path / "measure.toml"
    config.write_text(TOML + f'data = "{data}"\n')
    out = tmp_path / "m"
    assert main(["measure", f"--config={config}", "--images", "6", "--out", str(out)]) == 0
    assert json.loads((out / "config.json").read_text())["images"] == 6
    # the file's options pass the same checks: one where it has no effect is refused
    config.write_text(TOML + f'data = "{data}"\ntemperature = 0.001\n')
    assert main(["measure", "--config", str(config), "--out", str(tmp_path / "n")]) == 2


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("imagez = 3\n", "unknown measure option 'imagez'. Did you mean 'images'"),
        ("no_noise = 1\n", "no_noise is a flag; give true or false"),
        ("images = [\n", "is not valid TOML"),
        ("[model]\nname = 'x'\n", "model takes a value, not a table"),
    ],
)
def test_a_wrong_file_is_one_sentence(tmp_path, capsys, text, message):
    config = tmp_path / "bad.toml"
    config.write_text(text)
    argv = ["measure", "--config", str(config), "--data", "cifar10:/nonexistent",
            "--out", str(tmp_path / "o")]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err
    assert not (tmp_path / "o").exists()


def test_a_missing_file_and_a_file_without_a_command(tmp_path, capsys):
    assert main(["measure", "--config", str(tmp_path / "none.toml")]) == 2
    assert "no such file" in capsys.readouterr().err
    assert main(["--config", str(tmp_path / "none.toml")]) == 2
    assert "goes after a command" in capsys.readouterr().err


def test_every_command_takes_a_config_file():
    from defstab.cli.main import SUBCOMMANDS, build_parser, command_parser

    for name in SUBCOMMANDS:
        options = {s for a in command_parser(build_parser(name), name)._actions
                   for s in a.option_strings}  # fmt: skip
        assert "--config" in options, name
