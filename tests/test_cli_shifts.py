"""The shift-invariance protocols through the real CLI: train an APS network with circular
padding, measure its checkpoint under circular, fractional and crop shifts and the worst
shift on three grids, report it; and the mistakes a user makes, one sentence each."""

from __future__ import annotations

import json
import math

import pytest

from defstab.cli.main import main
from defstab.io.tables import read_csv


def test_train_aps_circular_then_translate_its_run_then_report(tmp_path, tiny_cifar, capsys):
    run = tmp_path / "results" / "train"
    assert main(["train", "--model", "vgg_cifar_aps", "--padding", "circular",
                 "--width", "0.125", "--data", tiny_cifar, "--epochs", "1", "--batch-size", "20",
                 "--quiet", "--out", str(run)]) == 0  # fmt: skip
    out = tmp_path / "results" / "translate"
    assert main(["translate", "--run", str(run), "--data", tiny_cifar, "--images", "8",
                 "--protocol", "circular,fractional,circular-pairs,crop", "--steps", "3",
                 "--fraction", "2", "--robust-grid", "integer,half,fraction",
                 "--robust-radius", "6", "--quiet", "--out", str(out)]) == 0  # fmt: skip
    rows = {r["protocol"]: r for r in read_csv(out / "summary.csv")}
    # the trained checkpoint was rebuilt with circular padding: exactly invariant to rolls
    assert json.loads((out / "config.json").read_text())["model_kwargs"]["padding"] == "circular"
    for proto in ("circular", "circular-pairs"):
        assert float(rows[proto]["consistency"]) == 1.0
    assert float(rows["worst-integer-shift"]["robust_accuracy"]) == float(
        rows["worst-integer-shift"]["accuracy"]
    )
    assert rows["worst-integer-shift"]["shifts"] == "25"  # rolls 1…5 on both axes
    assert rows["worst-fraction-shift"]["shifts"] == "13"
    for proto in ("circular", "fractional", "crop", "circular-pairs"):  # split by correctness
        r = rows[proto]
        n_right, n_wrong = int(r["images_correct"]), int(r["images_incorrect"])
        assert n_right + n_wrong == 8
        assert float(r["first_frame_accuracy"]) == n_right / 8
        if n_right and n_wrong:  # the split averages back to the whole
            whole = (n_right * float(r["consistency_correct"])
                     + n_wrong * float(r["consistency_incorrect"])) / 8  # fmt: skip
            assert whole == pytest.approx(float(r["consistency"]), abs=1e-6)
    section = json.loads((out / "section.json").read_text())
    assert "worst_shift_accuracy.png" in section["figures"]
    assert (out / "worst_shift_accuracy.png").stat().st_size > 0
    per_image = read_csv(out / "worst_shift_accuracy.csv")
    assert len(per_image) == 24 and {r["grid"] for r in per_image} == {"integer", "half",
                                                                        "fraction"}  # fmt: skip
    assert all(r["robust"] == "0" for r in per_image if r["correct"] == "0")
    for grid in ("integer", "half", "fraction"):
        mine = [r for r in per_image if r["grid"] == grid]
        summary = rows[f"worst-{grid}-shift"]
        assert sum(int(r["correct"]) for r in mine) / 8 == float(summary["accuracy"])
        assert sum(int(r["robust"]) for r in mine) / 8 == float(summary["robust_accuracy"])
    steps = read_csv(out / "per_step.csv")
    assert {r["geometry"] for r in steps if r["protocol"] == "fractional"} == {
        "0.0x0.0", "0.5x0.0", "1.0x0.0", "1.5x0.0"}  # fmt: skip
    text = " ".join(json.loads((out / "section.json").read_text())["text"])
    assert "worst integer shift" in text and "band-limited" in text
    assert f"over the {rows['circular']['images_correct']} whose first frame is" in text
    capsys.readouterr()
    assert main(["report", str(tmp_path / "results"), "-o", str(tmp_path / "r.html")]) == 0
    html = (tmp_path / "r.html").read_text()
    assert "consistency_correct" in html and "worst-half-shift" in html


def test_presets_of_the_shift_papers(tmp_path, tiny_cifar, capsys):
    out = tmp_path / "aps"
    assert main(["translate", "--model", "vgg_cifar_aps", "--padding", "circular",
                 "--width", "0.125", "--data", tiny_cifar, "--images", "6", "--preset", "aps-cifar",
                 "--quiet", "--out", str(out)]) == 0  # fmt: skip
    (row,) = read_csv(out / "summary.csv")
    assert row["protocol"] == "circular-pairs" and float(row["consistency"]) == 1.0
    pairs = read_csv(out / "per_step.csv")
    shifts = [int(v) for r in pairs for v in r["geometry"].split("x")]
    assert min(shifts) >= -3 and max(shifts) <= 2  # [−3, 2] as their max_shift=3
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["protocol"]["window"] == 6
    out = tmp_path / "michaeli"
    assert main(["translate", "--model", "vgg_cifar_maxpool", "--width", "0.125",
                 "--data", tiny_cifar, "--images", "4", "--preset", "michaeli",
                 "--image-size", "32", "--source-size", "32", "--robust-radius", "4",
                 "--quiet", "--out", str(out)]) == 0  # fmt: skip
    rows = read_csv(out / "summary.csv")
    assert [r["protocol"] for r in rows] == [
        "worst-integer-shift", "worst-half-shift", "worst-fraction-shift"]  # fmt: skip
    assert not (out / "per_step.csv").exists()
    assert all(float(r["robust_accuracy"]) <= float(r["accuracy"]) for r in rows)
    assert "not comparable" in capsys.readouterr().err


def _status(argv) -> int:
    """main's exit status, argparse's own errors (SystemExit) included."""
    try:
        return main(argv)
    except SystemExit as e:
        return e.code


@pytest.mark.parametrize(
    "extra,message",
    [
        (["--robust-grid", "diagonal"], "--robust-grid takes integer, half, fraction, full"),
        (["--robust-grid", "integer", "--robust-radius", "40"], "wrap 32×32 px images"),
        (
            ["--robust-grid", "integer", "--robust-geometry", "crop", "--robust-radius", "4"],
            "need images of 40 px; pass --source-size 40",
        ),
        (["--protocol", "fractional", "--fraction", "0"], "--fraction must be at least 1"),
        (["--robust-grid", "fraction", "--robust-up", "1"], "--robust-up must be at least 2"),
        (["--padding", "mirror"], "invalid choice: 'mirror'"),
    ],
)
def test_shift_mistakes_are_one_sentence_and_exit_2(tmp_path, tiny_cifar, capsys, extra, message):
    argv = ["translate", "--model", "vgg_cifar_aps", "--width", "0.125", "--data", tiny_cifar,
            "--images", "4", "--quiet", "--out", str(tmp_path / "o"), *extra]  # fmt: skip
    assert _status(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert len([line for line in err.splitlines() if line.strip()]) <= 2
    assert not (tmp_path / "o" / "summary.csv").exists()


def test_padding_needs_no_run_and_circular_works_on_torchvision(tmp_path, tiny_cifar, capsys):
    run = tmp_path / "train"
    assert main(["train", "--model", "vgg_cifar_aps", "--width", "0.125", "--data", tiny_cifar,
                 "--epochs", "1", "--batch-size", "20", "--quiet",
                 "--out", str(run)]) == 0  # fmt: skip
    assert _status(["translate", "--run", str(run), "--padding", "circular", "--data", tiny_cifar,
                    "--out", str(tmp_path / "t")]) == 2  # fmt: skip
    assert "--padding has no effect here: it applies without --run" in capsys.readouterr().err
    out = tmp_path / "tv"
    assert main(["translate", "--model", "torchvision:resnet18", "--num-classes", "10",
                 "--padding", "circular", "--data", tiny_cifar, "--images", "2",
                 "--image-size", "32", "--protocol", "circular", "--steps", "1", "--quiet",
                 "--out", str(out)]) == 0  # fmt: skip
    (row,) = read_csv(out / "summary.csv")
    assert not math.isnan(float(row["consistency"]))
