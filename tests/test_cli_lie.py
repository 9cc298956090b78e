"""The Lie derivative through the real CLI: train, measure the run with --lie-derivative,
check the tables against the Python API on the images the command drew, report it; and the
mistakes a user makes, one sentence each."""

from __future__ import annotations

import json

import pytest
import torch

from defstab.cli.main import main
from defstab.io.tables import read_csv


def test_train_then_measure_lie_derivative_then_report(tmp_path, tiny_cifar, capsys):
    from defstab.data.normalize import make_normalize
    from defstab.data.sources import load_data
    from defstab.data.spec import DataSpec
    from defstab.measure.lie import lie_derivatives
    from defstab.models.loading import load_run

    run = tmp_path / "results" / "train"
    assert main(["train", "--model", "vgg_cifar_blurpool", "--width", "0.125", "--data",
                 tiny_cifar, "--epochs", "1", "--batch-size", "20", "--quiet",
                 "--out", str(run)]) == 0  # fmt: skip
    out = tmp_path / "results" / "measure"
    assert main(["measure", "--run", str(run), "--data", tiny_cifar, "--images", "6",
                 "--lie-derivative", "translate,rotate", "--lie-images", "4",
                 "--out", str(out)]) == 0  # fmt: skip
    printed = capsys.readouterr().out
    assert "end to end, rotate" in printed and "translate_y" in printed
    rows = read_csv(out / "sensitivity.csv")
    transforms = ("translate_x", "translate_y", "rotate")
    for t in transforms:
        assert float(rows[0][f"lie_{t}"]) < 1e-5  # the input: normalising commutes
        assert rows[0][f"lie_{t}_contribution"] == ""  # the input is no module
        assert all(float(r[f"lie_{t}"]) > 0 for r in rows[1:])
    assert "lie_scale" not in rows[0]
    # the same numbers from the Python API on the first 4 images the command drew
    model, _ = load_run(run)
    items = [int(r["image"]) for r in read_csv(out / "per_image.csv") if r["layer"] == "input"]
    data = load_data(DataSpec.parse(tiny_cifar), "test")
    config = json.loads((out / "config.json").read_text())
    normalize = make_normalize(config["normalize"], 3)
    expect = lie_derivatives(model, data.images(items[:4]), transforms, [r["layer"] for r in
                             rows[1:]], preprocess=normalize)  # fmt: skip
    columns = expect.layer_columns()
    for r in rows:
        for t in transforms:
            assert float(r[f"lie_{t}"]) == pytest.approx(columns[r["layer"]][f"lie_{t}"], rel=1e-5)
    ends = {r["transform"]: r for r in read_csv(out / "lie.csv")}
    assert set(ends) == set(transforms) and ends["rotate"]["n_images"] == "4"
    for row in expect.end_to_end_rows():
        got = ends[row["transform"]]
        assert float(got["end_to_end_sq_mean"]) == pytest.approx(row["end_to_end_sq_mean"], 1e-4)
        assert float(got["end_to_end_abs_mean"]) == pytest.approx(row["end_to_end_abs_mean"], 1e-4)
    units = read_csv(out / "lie_layers.csv")
    for t in transforms:
        mine = [u for u in units if u["transform"] == t]
        leaf_sum = sum(float(u["contribution_mean"]) for u in mine if u["leaf"] == "True")
        assert leaf_sum == pytest.approx(float(ends[t]["leaf_contributions_sum"]), rel=1e-6)
        bn = [float(u["contribution_mean"]) for u in mine if u["type"] == "BatchNorm2d"]
        assert bn and max(bn) < 1e-9 * leaf_sum  # pointwise affine: exactly equivariant
        pool = next(u for u in mine if u["module"] == "features.pool1")
        layer = next(r for r in rows if r["layer"] == "features.pool1")
        assert float(layer[f"lie_{t}_contribution"]) == pytest.approx(
            float(pool["contribution_mean"]), rel=1e-6
        )
    assert (out / "lie.png").stat().st_size > 10_000
    config_lie = config["lie_derivative"]
    assert config_lie["transforms"] == list(transforms) and config_lie["images"] == 4
    section = json.loads((out / "section.json").read_text())
    assert "lie.png" in section["figures"]
    assert any("Gruver" in t for t in section["text"])
    report = tmp_path / "report.html"
    assert main(["report", str(tmp_path / "results"), "--out", str(report)]) == 0
    html = report.read_text()
    assert "Lie derivative (Gruver et al. 2023)" in html


def test_lie_derivative_beside_shards_and_without_contributions(tmp_path, tiny_cifar, capsys):
    out = tmp_path / "m"
    assert main(["measure", "--model", "vgg_cifar_maxpool", "--width", "0.125", "--data",
                 tiny_cifar, "--images", "8", "--shards", "2", "--batch-size", "4",
                 "--lie-derivative", "scale", "--no-lie-contributions", "--quiet",
                 "--out", str(out)]) == 0  # fmt: skip
    rows = read_csv(out / "sensitivity.csv")
    assert "lie_scale" in rows[0] and "lie_scale_contribution" not in rows[0]
    assert not (out / "lie_layers.csv").exists()
    assert read_csv(out / "lie.csv")[0]["n_images"] == "8"
    capsys.readouterr()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--lie-derivative", "shear"], "unknown transform 'shear'; choose from translate"),
        (["--lie-derivative", "rotate", "--lie-images", "9"], "--lie-images must be between 1"),
        (
            ["--lie-images", "2"],
            "--lie-images has no effect here: it applies with --lie-derivative",
        ),
        (["--lie-derivative", "rotate", "--shard", "0/2"], "drop it from --shard runs"),
    ],
)
def test_lie_mistakes_are_one_sentence(tmp_path, tiny_cifar, capsys, extra, message):
    code = main(["measure", "--model", "vgg_cifar_maxpool", "--width", "0.125", "--data",
                 tiny_cifar, "--images", "8", "--out", str(tmp_path / "m"), *extra])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err
    assert not (tmp_path / "m" / "sensitivity.csv").exists()


def test_a_model_without_forward_derivatives_is_one_sentence(tmp_path, capsys):
    """An operator without a forward-mode formula: one sentence naming the need."""
    from defstab.measure.lie import lie_derivatives

    class NoForward(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, g):
            return g * 2

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 2, 3)
            self.head = torch.nn.Linear(2, 3)

        def forward(self, x):
            return self.head(NoForward.apply(self.conv(x)).mean((2, 3)))

    net = Net()
    with pytest.raises(ValueError, match="needs forward-mode derivatives"):
        lie_derivatives(net, torch.rand(2, 3, 8, 8), "rotate", ["conv"])
    # the failed pass left no hook behind, and attention's fused kernels are back on
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in net.modules())
    assert torch.backends.mha.get_fastpath_enabled()


def test_an_unreadable_image_is_left_out_not_counted_as_zero(tmp_path, capsys):
    from fixtures_formats import write_image_folder

    root = write_image_folder(tmp_path / "imgs", classes=("a", "b"), per_class=3, size=(32, 32))
    (root / "a" / "001.png").write_bytes(b"not a png")
    out = tmp_path / "m"
    assert main(["measure", "--model", "vgg_cifar_maxpool", "--width", "0.125", "--data",
                 f"folder:{root}", "--images", "6", "--lie-derivative", "rotate", "--quiet",
                 "--out", str(out)]) == 0  # fmt: skip
    assert len(read_csv(out / "skipped.csv")) == 1
    (row,) = read_csv(out / "lie.csv")
    assert row["n_images"] == "5"
    per_layer = read_csv(out / "sensitivity.csv")
    assert all(float(r["lie_rotate"]) > 0 for r in per_layer[1:])
    capsys.readouterr()
