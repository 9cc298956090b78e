"""Every command, fed the mistakes users make: exit status 2, one short sentence on stderr,
no traceback, and no output that looks complete."""

import numpy as np
import pytest
import torch

from defstab.cli.main import main
from defstab.io.checkpoint import save_checkpoint
from defstab.models import create_model
from fixtures_formats import write_image_folder

#: Files whose presence would make a failed run look finished.
RESULT_FILES = (
    "config.json",
    "sensitivity.csv",
    "smoothness.csv",
    "summary.csv",
    "section.json",
    "experiment.json",
    "report.html",
)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("inputs")
    write_image_folder(root / "imgs", per_class=3, size=(32, 32))
    np.save(root / "nhwc.npy", np.zeros((4, 32, 32, 3), dtype=np.uint8))
    np.save(root / "tiny.npy", np.zeros((4, 3, 5, 5), dtype=np.uint8))
    (root / "a_file").write_text("x")
    (root / "corrupt.safetensors").write_bytes(b"not a checkpoint")
    save_checkpoint(create_model("vgg_cifar_strided", width=0.25), root / "strided.safetensors")
    torch.save(torch.zeros(5, 7), root / "bad_deformations.pt")
    (root / "not_a_run").mkdir()
    (root / "not_a_run" / "notes.txt").write_text("mine")
    return root


def measure(root, *extra, out="out"):
    return [
        "measure", "--model", "vgg_cifar_maxpool", "--width", "0.25",
        "--data", f"folder:{root / 'imgs'}", "--images", "4", "--quiet",
        "--out", str(root / out), *extra,
    ]  # fmt: skip


def train(root, *extra, out="train_out"):
    return [
        "train", "--model", "vgg_cifar_maxpool", "--width", "0.125", "--data", "synthetic",
        "--per-class", "5", "--epochs", "1", "--quiet", "--out", str(root / out), *extra,
    ]  # fmt: skip


def translate(root, *extra):
    return [
        "translate", "--model", "vgg_cifar_maxpool", "--width", "0.25",
        "--data", f"folder:{root / 'imgs'}", "--images", "4", "--quiet",
        "--out", str(root / "tr_out"), *extra,
    ]  # fmt: skip


CASES = {
    # measure
    "measure --out is a file": (lambda r: measure(r, out="a_file"), "is a file"),
    "measure one image": (lambda r: measure(r, "--images", "1"), "at least 2"),
    "measure unknown normalizer": (lambda r: measure(r, "--normalizer", "median"), "invalid"),
    "measure sampled normalizer on 3 images": (
        lambda r: measure(r, "--images", "3", "--normalizer", "sampled"),
        "at least 4 images",
    ),
    "measure negative read workers": (lambda r: measure(r, "--read-workers", "-1"), "at least 0"),
    "measure more images than exist": (lambda r: measure(r, "--images", "500"), "only"),
    "measure unknown layer": (lambda r: measure(r, "--layers", "features.conv9"), "unknown layer"),
    "measure model typo": (
        lambda r: measure(r, "--model", "vgg_cifar_maxpol"),
        "Did you mean 'vgg_cifar_maxpool'",
    ),
    "measure unknown data kind": (lambda r: measure(r, "--data", "imagenet:/x"), "cannot tell"),
    "measure missing folder": (lambda r: measure(r, "--data", "folder:/nonexistent"), "not found"),
    "measure missing checkpoint": (
        lambda r: measure(r, "--checkpoint", str(r / "nope.safetensors")),
        "not found",
    ),
    "measure corrupt checkpoint": (
        lambda r: measure(r, "--checkpoint", str(r / "corrupt.safetensors")),
        "cannot read checkpoint",
    ),
    "measure checkpoint of another model": (
        lambda r: measure(r, "--checkpoint", str(r / "strided.safetensors")),
        "does not fit",
    ),
    "measure (N, H, W, C) array": (
        lambda r: measure(r, "--data", str(r / "nhwc.npy")),
        "looks like (N, H, W, C)",
    ),
    "measure images too small for the model": (
        lambda r: measure(r, "--data", str(r / "tiny.npy")),
        "cannot run on inputs of shape (3, 5, 5)",
    ),
    "measure grid of 1": (lambda r: measure(r, "--grid", "1"), "--grid must be at least 2"),
    "measure negative displacement": (lambda r: measure(r, "--max-disp", "-1"), "--max-disp"),
    "measure GPU that is not there": (lambda r: measure(r, "--device", "cuda"), "no GPU"),
    "measure unknown device": (lambda r: measure(r, "--device", "tpu9"), "unknown device"),
    "measure batch size 0": (lambda r: measure(r, "--batch-size", "0"), "--batch-size"),
    "measure bad deformations file": (
        lambda r: measure(r, "--deformations", str(r / "bad_deformations.pt")),
        "--deformations",
    ),
    "measure --run missing": (
        lambda r: [
            "measure",
            "--run",
            str(r / "nope"),
            "--data",
            f"folder:{r / 'imgs'}",
            "--out",
            str(r / "out"),
        ],  # fmt: skip
        "train folder not found",
    ),
    "measure --run of a folder that is not a run": (
        lambda r: [
            "measure",
            "--run",
            str(r / "not_a_run"),
            "--data",
            f"folder:{r / 'imgs'}",
            "--out",
            str(r / "out"),
        ],  # fmt: skip
        "is neither a 'defstab train' folder (no config.json) nor an experiment's network",
    ),
    "measure --step without --run": (
        lambda r: measure(r, "--step", "3"),
        "--step has no effect here: it applies with --run",
    ),
    "measure no model": (
        lambda r: ["measure", "--data", f"folder:{r / 'imgs'}", "--out", str(r / "out")],
        "give --model",
    ),
    "measure unknown option": (lambda r: measure(r, "--imagez", "3"), "unrecognized"),
    # smoothness
    "smoothness --out is a file": (
        lambda r: ["smoothness", "--model", "vgg_cifar_maxpool", "--out", str(r / "a_file")],
        "is a file",
    ),
    "smoothness of a filter too wide for the network's maps": (
        lambda r: ["smoothness", "--model", "vgg_cifar_maxblurpool7", "--out", str(r / "sm7")],
        "cannot run on its native 32×32 px",
    ),
    "smoothness --width 0": (
        lambda r: [
            "smoothness",
            "--model",
            "vgg_cifar_maxpool",
            "--width",
            "0",
            "--out",
            str(r / "sm0"),
        ],  # fmt: skip
        "--width must be positive",
    ),
    "smoothness checkpoint of another model": (
        lambda r: [
            "smoothness",
            "--model",
            "vgg_cifar_maxpool",
            "--width",
            "0.25",
            "--checkpoint",
            str(r / "strided.safetensors"),
            "--out",
            str(r / "sm"),
        ],  # fmt: skip
        "does not fit",
    ),
    "smoothness unknown torchvision model": (
        lambda r: ["smoothness", "--model", "torchvision:resnet1800", "--out", str(r / "sm")],
        "unknown torchvision model",
    ),
    # translate
    "translate unknown protocol": (lambda r: translate(r, "--protocol", "wobble"), "protocol"),
    "translate zero steps": (lambda r: translate(r, "--steps", "0"), "--steps"),
    "translate fewer scores than classes": (
        lambda r: translate(r, "--num-classes", "1"),
        "gives 1 class scores but",
    ),
    "translate steps beyond the canvas": (lambda r: translate(r, "--steps", "40"), "no crop"),
    "translate object size not a number": (
        lambda r: translate(r, "--object-size", "big"),
        "--object-size",
    ),
    "translate object larger than the canvas": (
        lambda r: translate(r, "--object-size", "400"),
        "--object-size",
    ),
    "translate --out is a file": (
        lambda r: translate(r)[:-1] + [str(r / "a_file")],
        "is a file",
    ),
    # train
    "train --out is a file": (lambda r: train(r, out="a_file"), "is a file"),
    "train zero epochs": (lambda r: train(r, "--epochs", "0"), "--epochs"),
    "train bad synthetic strength": (lambda r: train(r, "--data", "synthetic:x"), "synthetic:C"),
    "train negative learning rate": (lambda r: train(r, "--lr", "-1"), "lr"),
    "train --width on a torchvision model": (
        lambda r: train(r, "--model", "torchvision:resnet18"),
        "registry models only",
    ),
    "train --overwrite of a folder that is not a run": (
        lambda r: train(r, "--overwrite", out="not_a_run"),
        "only clears",
    ),
    "train --init-from missing": (
        lambda r: train(r, "--init-from", str(r / "nope.safetensors")),
        "not found",
    ),
    # experiment, demo, report, deform
    "experiment unknown name": (
        lambda r: ["experiment", "poling", "--out", str(r / "ex")],
        "invalid choice",
    ),
    "experiment without data": (
        lambda r: ["experiment", "pooling", "--out", str(r / "ex")],
        "needs --data",
    ),
    "experiment zero seeds": (
        lambda r: ["experiment", "synthetic", "--seeds", "0", "--out", str(r / "ex")],
        "--seeds",
    ),
    "experiment --out is a file": (
        lambda r: ["experiment", "synthetic", "--out", str(r / "a_file")],
        "is a file",
    ),
    "demo --out is a file": (lambda r: ["demo", "--out", str(r / "a_file")], "is a file"),
    "report -o is a folder": (
        lambda r: ["report", str(r), "-o", str(r / "not_a_run")],
        "is a folder",
    ),
    "report of a folder without results": (
        lambda r: ["report", str(r / "not_a_run"), "-o", str(r / "r.html")],
        "no defstab results",
    ),
    "report of a missing folder": (
        lambda r: ["report", str(r / "nope"), "-o", str(r / "r.html")],
        "not found",
    ),
    "deform missing image": (
        lambda r: ["deform", str(r / "nope.png"), "-o", str(r / "d.png")],
        "not found",
    ),
    "deform figure with a bad suffix": (
        lambda r: ["deform", str(r / "a_file"), "-o", str(r / "d.txt")],
        "figure file",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_mistake_ends_in_one_sentence(case, inputs, capsys):
    make_argv, expected = CASES[case]
    argv = make_argv(inputs)
    try:
        status = main(argv)
    except SystemExit as e:  # argparse's own errors
        status = e.code
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert status == 2, err
    assert "Traceback" not in err
    assert len(lines) == 1 and len(lines[0]) < 400, err
    assert expected in err, err
    for name in ("out", "sm", "tr_out", "train_out", "ex"):
        folder = inputs / name
        assert not any((folder / f).exists() for f in RESULT_FILES), (name, list(folder.iterdir()))


def test_there_are_at_least_thirty_cases_over_every_command():
    commands = {CASES[c][0](__import__("pathlib").Path("/r"))[0] for c in CASES}
    assert len(CASES) >= 30
    assert commands == {"measure", "smoothness", "translate", "train", "experiment", "demo",
                        "report", "deform"}  # fmt: skip


def test_train_folder_is_safe_to_rerun(tmp_path, capsys):
    """Same settings resume; other settings stop before touching the folder's config."""
    argv = train(tmp_path, out="run")
    assert main(argv) == 0
    config = (tmp_path / "run" / "config.json").read_text()
    history = (tmp_path / "run" / "history.csv").read_text()
    assert main(argv) == 0
    assert "resuming the run" in capsys.readouterr().err
    assert (tmp_path / "run" / "history.csv").read_text() == history
    for extra, named in (
        (["--epochs", "2"], "train.epochs: 1 → 2"),
        (["--model", "vgg_cifar_avgpool"], "model: vgg_cifar_maxpool → vgg_cifar_avgpool"),
    ):
        assert main(argv[:-2] + extra + argv[-2:]) == 2
        err = capsys.readouterr().err
        assert named in err and "--overwrite" in err and "Traceback" not in err
        assert (tmp_path / "run" / "config.json").read_text() == config  # never overwritten
    # training longer is explicit: a new folder from the finished weights
    longer = train(tmp_path, "--epochs", "2", "--init-from", str(tmp_path / "run"), out="more")
    assert main(longer) == 0
    # or start over in place
    assert main(argv[:-2] + ["--epochs", "2", "--overwrite"] + argv[-2:]) == 0
    assert '"epochs": 2' in (tmp_path / "run" / "config.json").read_text()
