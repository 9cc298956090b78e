"""CLI round trips: measure and smoothness on files written to a temporary folder."""

import json

import pytest
import torch

from defstab.cli.main import main
from defstab.io.checkpoint import save_checkpoint
from defstab.io.tables import read_csv
from defstab.models import create_model
from fixtures_formats import write_image_folder


def measure_argv(folder, out, *extra, model="vgg_cifar_maxpool"):
    """A small `defstab measure` command line; later flags override earlier ones."""
    return [
        "measure",
        "--model",
        model,
        "--width",
        "0.25",
        "--data",
        f"folder:{folder}",
        "--images",
        "4",
        "--out",
        str(out),
        "--quiet",
        *extra,
    ]


@pytest.fixture
def folder(tmp_path):
    return write_image_folder(tmp_path / "imgs", per_class=3, size=(32, 32))


def test_measure_round_trip(tmp_path, folder, capsys):
    out = tmp_path / "run"
    argv = [
        "measure",
        "--model",
        "vgg_cifar_maxpool",
        "--width",
        "0.25",
        "--data",
        f"folder:{folder}",
        "--images",
        "8",
        "--seed",
        "1",
        "--out",
        str(out),
        "--quiet",
    ]
    assert main(argv) == 0
    rows = read_csv(out / "sensitivity.csv")
    assert [r["layer_index"] for r in rows] == [str(i) for i in range(13)]
    assert {"layer", "mean", "std", "n_images", "noise_mean", "relative_stability"} <= set(rows[0])
    assert all(r["n_images"] == "8" for r in rows)
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["seed"] == 1 and cfg["deformation"]["grid"] == 3 and "torch" in cfg["versions"]
    assert (out / "sensitivity.png").stat().st_size > 1000
    assert len(read_csv(out / "per_image.csv")) == 13 * 8
    # same command, same numbers
    assert main(argv[:-3] + ["--out", str(tmp_path / "run2"), "--quiet"]) == 0
    assert read_csv(tmp_path / "run2" / "sensitivity.csv") == rows


def test_measure_with_checkpoint_and_layers(tmp_path, folder):
    model = create_model("vgg_cifar_strided", width=0.25, seed=9)
    save_checkpoint(model, tmp_path / "w.safetensors", {"note": "test"})
    out = tmp_path / "run"
    argv = measure_argv(
        folder,
        out,
        "--checkpoint",
        str(tmp_path / "w.safetensors"),
        "--layers",
        "features.pool2,features.conv1_1",
        "--distance",
        "euclidean",
        "--no-noise",
        model="vgg_cifar_strided",
    )
    assert main(argv) == 0
    rows = read_csv(out / "sensitivity.csv")
    assert [r["layer"] for r in rows] == ["input", "features.conv1_1", "features.pool2"]
    assert "noise_mean" not in rows[0]
    # the checkpoint's weights were measured: the numbers equal the Python API's on the
    # saved model (seed 9), and differ from the CLI's own init (--init-seed 0)
    from defstab.data.normalize import make_normalize
    from defstab.data.sources import load_data
    from defstab.deform import DeformationSpec
    from defstab.measure import measure_sensitivity

    gen = torch.Generator().manual_seed(0)
    images, _, _ = load_data(f"folder:{folder}", image_size=32).sample(4, gen)
    expected = measure_sensitivity(
        model,
        images,
        DeformationSpec.paper(32),
        layers=["features.conv1_1", "features.pool2"],
        distance="euclidean",
        generator=gen,
        noise_control=False,
        preprocess=make_normalize("imagenet", 3),  # the CLI's default for folder data
    )
    measured = [float(r["mean"]) for r in rows]
    assert measured == pytest.approx(expected.mean.tolist(), rel=1e-5)
    no_ckpt = [a for a in argv if a not in ("--checkpoint", str(tmp_path / "w.safetensors"))]
    assert main(no_ckpt + ["--out", str(tmp_path / "init")]) == 0
    init = [float(r["mean"]) for r in read_csv(tmp_path / "init" / "sensitivity.csv")]
    assert init[2] != pytest.approx(measured[2], rel=1e-3)


def test_checkpoint_mismatch_names_keys(tmp_path, folder, capsys):
    save_checkpoint(create_model("vgg_cifar_maxpool", width=0.25), tmp_path / "w.safetensors")
    argv = measure_argv(
        folder,
        tmp_path / "o",
        "--checkpoint",
        str(tmp_path / "w.safetensors"),
        model="vgg_cifar_strided",
    )
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2 and "missing keys" in err and "features.pool1.weight" in err
    assert not (tmp_path / "o" / "sensitivity.csv").exists()


def test_torch_checkpoint_weights_only(tmp_path):
    from defstab.io.checkpoint import load_checkpoint

    model = create_model("vgg_cifar_maxpool", width=0.25, seed=2)
    torch.save({"state_dict": model.state_dict(), "epoch": 3}, tmp_path / "w.pt")
    fresh = create_model("vgg_cifar_maxpool", width=0.25, seed=3)
    meta = load_checkpoint(fresh, tmp_path / "w.pt")
    assert meta == {"epoch": 3}
    assert torch.equal(fresh.head.weight, model.head.weight)


@pytest.mark.parametrize(
    "extra,match",
    [
        (["--layers", "features.conv9"], "unknown layer"),
        (["--model", "vgg_cifar_maxpol"], "Did you mean"),
        (["--images", "1"], "at least 2"),
        (["--images", "1000"], "only 9"),
        (["--normalize", "bogus"], "--normalize"),
        (["--model", "torchvision:resnet1800"], "unknown torchvision model"),
        (["--checkpoint", "/nonexistent.safetensors"], "not found"),
    ],
)
def test_measure_errors(tmp_path, folder, capsys, extra, match):
    assert main(measure_argv(folder, tmp_path / "o", *extra)) == 2
    err = capsys.readouterr().err
    assert match in err and "Traceback" not in err


def test_measure_user_model_file(tmp_path, folder):
    f = tmp_path / "mine.py"
    f.write_text(
        "import torch.nn as nn\n"
        "def make():\n    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.MaxPool2d(2))\n"
    )
    out = tmp_path / "o"
    assert (
        main(
            [
                "measure",
                "--model",
                f"{f}:make",
                "--data",
                f"folder:{folder}",
                "--images",
                "4",
                "--image-size",
                "32",
                "--out",
                str(out),
                "--quiet",
            ]
        )
        == 0
    )
    assert [r["layer"] for r in read_csv(out / "sensitivity.csv")] == ["input", "0", "2"]


def test_smoothness_command(tmp_path, capsys):
    out = tmp_path / "s"
    assert (
        main(["smoothness", "--model", "vgg_cifar_avgpool", "--width", "0.25", "--out", str(out)])
        == 0
    )
    rows = read_csv(out / "smoothness.csv")
    assert len(rows) == 8 and all(1.6 < float(r["smoothness"]) < 2.1 for r in rows)
    assert (out / "smoothness.png").exists()


def test_pretrained_is_explicit_and_asks_torchvision_for_weights(monkeypatch):
    import torchvision.models as tvm

    from defstab.models.loading import build_model

    calls = []
    monkeypatch.setattr(
        tvm,
        "get_model",
        lambda name, weights=None: calls.append((name, weights)) or torch.nn.Identity(),
    )
    build_model("torchvision:resnet18")
    build_model("torchvision:resnet18", pretrained=True)
    assert calls == [("resnet18", None), ("resnet18", "DEFAULT")]
    with pytest.raises(ValueError, match="no published weights"):
        build_model("vgg_cifar_maxpool", pretrained=True)


def _table(text: str, header: str) -> list[str]:
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.lstrip().startswith(header))
    table = [lines[start]]
    for line in lines[start + 1 :]:
        if not line.strip() or line.startswith(("wrote", "R_f", "RANDOM")):
            break
        table.append(line)
    return table


def test_cli_tables_align_for_long_layer_names(tmp_path, capsys):
    """Every row of the printed tables has the same width, whatever the names' lengths
    (resnet18's go up to 'layer4.1.downsample.0'; the transformer's blocks are longer)."""
    assert (
        main(["smoothness", "--model", "torchvision:resnet18", "--out", str(tmp_path / "s")]) == 0
    )
    table = _table(capsys.readouterr().out, "layer")
    assert len(table) > 15 and len({len(row.split()[0]) for row in table}) > 1
    assert len({len(row) for row in table}) == 1, table
    data = tmp_path / "x.pt"
    torch.save(torch.rand(3, 3, 32, 32), data)
    model = tmp_path / "net.py"
    model.write_text(
        "import torch.nn as nn\n"
        "def net():\n"
        "    m = nn.Sequential()\n"
        "    m.add_module('a_rather_long_module_name_for_a_conv_layer', nn.Conv2d(3, 4, 3))\n"
        "    m.add_module('r', nn.ReLU())\n"
        "    return m\n"
    )
    assert main(["measure", "--model", f"{model}:net", "--data", str(data), "--images", "3",
                 "--out", str(tmp_path / "m2"), "--no-noise"]) == 0  # fmt: skip
    table = _table(capsys.readouterr().out, "layer")
    assert len(table) == 3 and "a_rather_long_module_name" in table[2]
    assert len({len(row) for row in table}) == 1, table


def test_measure_sampled_streams_a_folder_and_names_what_it_skipped(tmp_path, capsys):
    """A user's folder with one corrupt file, the sampled normalizer and a reader process:
    the run finishes, skips the file by name, and then reports."""
    folder = write_image_folder(tmp_path / "imgs", per_class=5, size=(32, 32))
    broken = folder / "cat" / "000.png"  # the very first file: every reader skips it
    broken.write_bytes(b"\x89PNG truncated")
    out = tmp_path / "run"
    argv = measure_argv(folder, out, "--images", "14", "--normalizer", "sampled",
                        "--read-workers", "1", "--seed", "3")  # fmt: skip
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert "1 unreadable image(s) skipped" in err and str(broken) in err
    skipped = read_csv(out / "skipped.csv")
    assert [r["path"] for r in skipped] == [str(broken)]
    rows = read_csv(out / "sensitivity.csv")
    assert all(r["n_images"] == "13" for r in rows)
    # 7 pairs of 14 images, less the one that lost its image
    assert all(r["normalizer_pairs"] == "6" for r in rows)
    assert all(float(r["normalizer_low"]) <= float(r["normalizer"]) <= float(r["normalizer_high"])
               for r in rows)  # fmt: skip
    per_image = read_csv(out / "per_image.csv")
    assert len(per_image) == 13 * 13
    assert int(skipped[0]["image"]) not in {int(r["image"]) for r in per_image}
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["normalizer"] == "sampled" and cfg["skipped"][0]["path"] == str(broken)
    section = json.loads((out / "section.json").read_text())
    assert "6 disjoint pairs" in section["text"][0]
    # the chain goes on: a report from the run
    assert main(["report", str(out), "-o", str(tmp_path / "report.html")]) == 0
    assert "sampled" in (tmp_path / "report.html").read_text()
    # the exact normalizer on the same images: same deformations, other median
    assert main(measure_argv(folder, tmp_path / "exact", "--images", "14", "--seed", "3",
                             "--normalizer", "exact")) == 0  # fmt: skip
    exact = read_csv(tmp_path / "exact" / "sensitivity.csv")
    assert exact[0]["normalizer_low"] == "" and exact[0]["normalizer_pairs"] == str(13 * 12 // 2)


def test_measure_shards_merge_resume_and_refuse_other_settings(tmp_path, capsys):
    """--shards through the CLI: child processes write shards, the merge equals one
    process byte for byte; a lost shard is recomputed alone; a shard of other settings,
    and more shards than pairs, are one sentence."""
    folder = write_image_folder(tmp_path / "imgs", per_class=10, size=(32, 32))
    args = ["--images", "30", "--normalizer", "sampled", "--batch-size", "6", "--seed", "2"]
    assert main(measure_argv(folder, tmp_path / "one", *args)) == 0
    # --workers 1: each child has this process's threads (equal bits need equal threads)
    sharded = measure_argv(folder, tmp_path / "sh", *args, "--shards", "3", "--workers", "1")
    assert main(sharded) == 0
    shards = tmp_path / "sh" / "shards"
    assert sorted(p.name for p in shards.glob("*.pt")) == [f"shard-{i}-of-3.pt" for i in range(3)]
    same = (tmp_path / "one" / "per_image.csv").read_bytes()
    assert (tmp_path / "sh" / "per_image.csv").read_bytes() == same
    one, merged = (read_csv(tmp_path / d / "sensitivity.csv") for d in ("one", "sh"))
    assert [r["normalizer"] for r in merged] == [r["normalizer"] for r in one]
    # a lost shard: only it runs again
    kept = {i: (shards / f"shard-{i}-of-3.pt").stat().st_mtime_ns for i in (0, 2)}
    (shards / "shard-1-of-3.pt").unlink()
    assert main(sharded[:-1] + ["2"]) == 0  # two workers: one thread each
    assert {i: (shards / f"shard-{i}-of-3.pt").stat().st_mtime_ns for i in (0, 2)} == kept
    assert (shards / "shard-1-of-3.pt").exists()
    values = [float(r["value"]) for r in read_csv(tmp_path / "sh" / "per_image.csv")]
    expected = [float(r["value"]) for r in read_csv(tmp_path / "one" / "per_image.csv")]
    assert values == pytest.approx(expected, rel=1e-5)
    capsys.readouterr()
    # shards of another seed in that folder: refused, nothing mixed
    other = measure_argv(folder, tmp_path / "sh", *args, "--shards", "3", "--seed", "5")
    assert main(other) == 2
    err = capsys.readouterr().err
    assert "is a shard of another measurement (differs in --seed)" in err, err
    assert main(measure_argv(folder, tmp_path / "x", *args, "--shards", "16")) == 2
    assert "more than the 15 pairs" in capsys.readouterr().err
