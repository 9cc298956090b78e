"""One model-output contract: dict, tuple, namedtuple and ``.logits`` models give the same
numbers as the same network returning a plain tensor, through every command that reads
class scores; what cannot be read is refused in one sentence."""

from __future__ import annotations

import json
from collections import namedtuple

import pytest
import torch

from defstab.cli.main import main
from defstab.io.tables import read_csv
from defstab.models.outputs import class_scores, output_contract
from fixtures_formats import write_image_folder, write_train_test_tree

MODELS = '''
import collections
import torch
from torch import nn

Out = collections.namedtuple("Out", "logits aux")


class HFOutput:
    """Like a Hugging Face ModelOutput that is not a mapping: scores in .logits."""

    def __init__(self, logits, hidden):
        self.logits, self.hidden = logits, hidden


class Net(nn.Module):
    def __init__(self, wrap):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(6, 6, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
        )
        self.fc = nn.Linear(6, 3)
        self.wrap = wrap

    def forward(self, x):
        fmap = self.features(x)
        logits = self.fc(fmap.flatten(1))
        return {
            "tensor": lambda: logits,
            "dict": lambda: {"feat": fmap, "logits": logits},
            "tuple": lambda: (logits, fmap),
            "namedtuple": lambda: Out(logits, fmap),
            "attribute": lambda: HFOutput(logits, fmap),
            "ambiguous": lambda: {"main": logits, "aux": logits * 2},
            "map": lambda: fmap,
        }[self.wrap]()


# one module-level factory per output kind (defstab loads FILE.py:NAME and calls it)
FACTORIES = {"tensor": "tensor", "as_dict": "dict", "as_tuple": "tuple",
             "as_namedtuple": "namedtuple", "as_attribute": "attribute",
             "ambiguous": "ambiguous", "feature_map": "map"}
for _name, _wrap in FACTORIES.items():
    globals()[_name] = lambda _wrap=_wrap: Net(_wrap)
'''

WRAPPED = ["as_dict", "as_tuple", "as_namedtuple", "as_attribute"]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("outputs")
    (root / "nets.py").write_text(MODELS)
    data = write_image_folder(root / "imgs", per_class=3, size=(32, 32))
    write_train_test_tree(root / "tree", per_class=2)
    return root, f"folder:{data}"


def _model(root, factory):
    return f"{root / 'nets.py'}:{factory}"


def _run(argv, capsys=None):
    code = main([str(a) for a in argv])
    return code


def _translate(root, data, factory, out, *extra):
    return [
        "translate", "--model", _model(root, factory), "--data", data, "--images", "4",
        "--steps", "2", "--image-size", "32", "--quiet", "--out", out, *extra,
    ]  # fmt: skip


def _numbers(path):
    """The numeric cells of a CSV, row by row (text cells such as the model name dropped)."""
    rows = [{k: _number(v) for k, v in r.items()} for r in read_csv(path)]
    rows = [{k: v for k, v in r.items() if v is not None} for r in rows]
    assert rows and all(rows), f"{path} has no numbers"
    return rows


def _number(text: str) -> float | str | None:
    """A cell as a number (NaN as the text "nan", so that equal tables compare equal)."""
    try:
        value = float(text)
    except ValueError:
        return None
    return "nan" if value != value else value


def test_contract_rules_on_plain_outputs():
    logits, fmap = torch.randn(2, 5), torch.randn(2, 3, 4, 4)
    assert class_scores(logits) is logits
    assert class_scores((logits, fmap)) is logits
    assert class_scores([logits]) is logits
    assert class_scores(namedtuple("O", "a b")(logits, fmap)) is logits
    assert class_scores({"feat": fmap, "logits": logits}) is logits
    assert class_scores({"feat": fmap, "scores": logits}) is logits  # the one (N, K) tensor
    assert class_scores({"x": fmap, "y": logits}, key="y") is logits
    assert class_scores((fmap, logits), key="1") is logits
    with pytest.raises(ValueError, match="--output-key KEY"):
        output_contract({"a": logits, "b": logits})
    with pytest.raises(ValueError, match="not an entry.*keys: \\['a'\\]"):
        output_contract({"a": logits}, key="b")
    with pytest.raises(ValueError, match="not an index"):
        output_contract((logits,), key="3")
    with pytest.raises(ValueError, match="must be \\(N, classes\\)"):
        class_scores(fmap)
    with pytest.raises(ValueError, match="drop --output-key"):
        output_contract(logits, key="logits")


@pytest.mark.parametrize("factory", WRAPPED)
def test_translate_every_protocol_reads_the_scores(setup, tmp_path, capsys, factory):
    root, data = setup
    protocols = "embed,inpaint,crop,scale,subpixel,pad-shift,random-pairs"
    extra = ["--protocol", protocols, "--object-size", "20", "--worst-shift", "2", "--window", "2"]
    assert _run(_translate(root, data, "tensor", tmp_path / "plain", *extra)) == 0
    capsys.readouterr()
    assert _run(_translate(root, data, factory, tmp_path / "wrapped", *extra)) == 0
    err = capsys.readouterr().err
    assert err.count("class scores are") == 1, err  # stated once
    assert _numbers(tmp_path / "wrapped" / "summary.csv") == _numbers(
        tmp_path / "plain" / "summary.csv"
    )
    config = json.loads((tmp_path / "wrapped" / "config.json").read_text())
    assert config["output"]["kind"] != "tensor" and config["output"]["classes"] == 3
    plain = json.loads((tmp_path / "plain" / "config.json").read_text())
    assert plain["output"]["kind"] == "tensor"


@pytest.mark.parametrize("factory", ["as_dict", "as_tuple"])
def test_measure_worst_case_and_min_flip_read_the_scores(setup, tmp_path, factory):
    root, data = setup
    for name, model in (("plain", "tensor"), ("wrapped", factory)):
        argv = [
            "measure", "--model", _model(root, model), "--data", data, "--images", "3",
            "--quiet", "--out", tmp_path / name, "--worst-case", "--attack-objective", "loss",
            "--attack-steps", "2", "--min-flip", "--flip-max", "2",
        ]  # fmt: skip
        assert _run(argv) == 0
    for table in ("per_image.csv", "flip.csv"):
        assert _numbers(tmp_path / "wrapped" / table) == _numbers(tmp_path / "plain" / table)


@pytest.mark.parametrize("factory", ["as_dict", "as_namedtuple", "as_attribute"])
def test_train_reads_the_scores_and_its_run_measures(setup, tmp_path, factory):
    root, data = setup
    histories = []
    for name, model in (("plain", "tensor"), ("wrapped", factory)):
        argv = [
            "train", "--model", _model(root, model), "--data", f"folder:{root / 'tree'}",
            "--epochs", "1",
            "--batch-size", "4", "--quiet", "--out", tmp_path / name, "--device", "cpu",
        ]  # fmt: skip
        assert _run(argv) == 0
        histories.append(_numbers(tmp_path / name / "history.csv"))
    assert histories[0] == histories[1]
    # the chain goes on: translate the trained run (its output contract applies again)
    argv = _translate(root, data, "tensor", tmp_path / "t")[:-1]
    argv = [a for a in argv if a not in ("--model", _model(root, "tensor"))]
    assert _run([*argv, tmp_path / "t", "--run", tmp_path / "wrapped"]) == 0


def test_ambiguous_outputs_need_and_honour_output_key(setup, tmp_path, capsys):
    root, data = setup
    assert _run(_translate(root, data, "ambiguous", tmp_path / "a")) == 2
    err = capsys.readouterr().err
    assert "--output-key KEY" in err and "Traceback" not in err
    assert not (tmp_path / "a" / "summary.csv").exists()
    assert _run(_translate(root, data, "ambiguous", tmp_path / "b", "--output-key", "main")) == 0
    assert _run(_translate(root, data, "tensor", tmp_path / "c")) == 0
    assert _numbers(tmp_path / "b" / "summary.csv") == _numbers(tmp_path / "c" / "summary.csv")
    assert _run(_translate(root, data, "feature_map", tmp_path / "d")) == 2
    assert "must be (N, classes)" in capsys.readouterr().err
    # plain measure does not read scores: --output-key there is refused, not ignored
    argv = ["measure", "--model", _model(root, "as_dict"), "--data", data, "--images", "2",
            "--quiet", "--out", tmp_path / "m", "--output-key", "logits"]  # fmt: skip
    assert _run(argv) == 2
    assert "drop it" in capsys.readouterr().err


# --- seeded random weights, every family -----------------------------------------------

SEEDED = [
    ("torchvision:resnet18", ["--image-size", "32"]),
    ("timm:resnet10t", ["--image-size", "32"]),
    ("file", []),
]


@pytest.mark.parametrize("spec,extra", SEEDED, ids=["torchvision", "timm", "file"])
def test_random_weights_are_seeded_for_every_family(setup, tmp_path, spec, extra):
    root, data = setup
    spec = _model(root, "tensor") if spec == "file" else spec
    means = {}
    for name, seed in (("a", None), ("b", None), ("c", "7")):
        argv = ["measure", "--model", spec, "--data", data, "--images", "3", "--quiet",
                "--no-noise", "--out", tmp_path / name, *extra]  # fmt: skip
        argv += ["--init-seed", seed] if seed else []
        assert _run(argv) == 0
        means[name] = [r["mean"] for r in read_csv(tmp_path / name / "sensitivity.csv")]
        config = json.loads((tmp_path / name / "config.json").read_text())
        assert config["model_kwargs"]["seed"] == (int(seed) if seed else 0)
    assert means["a"] == means["b"]  # the same command twice: the same numbers
    assert means["a"] != means["c"]  # another init seed: other weights


def test_seeded_construction_restores_the_callers_random_state():
    from defstab.models.loading import build_model

    torch.manual_seed(3)
    expected = torch.rand(4)
    torch.manual_seed(3)
    a = build_model("torchvision:resnet18", seed=5)
    after = torch.rand(4)
    b = build_model("torchvision:resnet18", seed=5)
    assert torch.equal(after, expected)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))


def test_num_classes_reaches_torchvision_and_timm_and_is_refused_for_files(setup):
    from defstab.models.loading import build_model

    root, _ = setup
    assert build_model("torchvision:resnet18", num_classes=10).fc.out_features == 10
    assert build_model("timm:resnet10t", num_classes=7).get_classifier().out_features == 7
    with pytest.raises(ValueError, match="decides its own outputs"):
        build_model(_model(root, "tensor"), num_classes=10)
    with pytest.raises(ValueError, match="registry models only"):
        build_model("torchvision:resnet18", width=0.5)
