"""CLI round trips for the small commands, and error handling (one sentence, exit 2)."""

import numpy as np
import pytest
from PIL import Image

from defstab.cli.main import main


def write_png(path, size=(40, 48), seed=0):
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 255, (*size, 3), dtype=np.uint8)).save(path)
    return path


def test_deform_writes_figure(tmp_path, capsys):
    a = write_png(tmp_path / "a.png")
    b = write_png(tmp_path / "b.png", seed=1)
    out = tmp_path / "fig.svg"
    assert (
        main(
            [
                "deform",
                str(a),
                str(b),
                "--grid",
                "3",
                "--max-disp",
                "4",
                "--size",
                "32",
                "-o",
                str(out),
            ]
        )
        == 0
    )
    assert out.read_text().startswith("<?xml")
    assert not list(tmp_path.glob(".*tmp*"))  # no temporary file left behind


@pytest.mark.parametrize(
    "argv,match",
    [
        (["deform", "missing.png"], "not found"),
        (["deform", "{a}", "--grid", "1"], "grid"),
        (["deform", "{a}", "--max-disp", "-2"], "--max-disp"),
        (["deform", "{a}", "-o", "fig.bmp"], "figure file"),
        (["deform", "{bad}"], "cannot read"),
        (["models", "nothing*"], "no registered model"),
    ],
)
def test_cli_errors_are_one_sentence(tmp_path, capsys, argv, match):
    a = write_png(tmp_path / "a.png")
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    argv = [s.format(a=a, bad=bad) for s in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert match in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_models_lists_registry(capsys):
    assert main(["models", "vgg_cifar_*", "--width", "0.25"]) == 0
    out = capsys.readouterr().out
    assert "vgg_cifar_blurpool" in out and "vgg_imagenet" not in out


def test_atomic_write_is_readable_by_others(tmp_path):
    import os
    import stat

    from defstab.io.atomic import write_text

    p = write_text(tmp_path / "a.txt", "x")
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(p.stat().st_mode) == 0o666 & ~mask
