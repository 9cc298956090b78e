"""Training precision is a recorded, keyed, selectable setting: fp32, bf16 autocast where
the hardware computes it, or auto; bf16 without support is one sentence and exit 2."""

import json

import pytest
import torch

from defstab.cli.main import main
from defstab.experiments import ExperimentConfig, get_experiment
from defstab.io.tables import read_csv
from defstab.train import TrainConfig, train
from defstab.train.precision import bf16_supported, resolve_precision
from test_cli_train import train_argv
from test_train import tiny_setup

CPU = torch.device("cpu")
needs_bf16 = pytest.mark.skipif(not bf16_supported(CPU), reason="this CPU has no bf16 dot products")


@pytest.fixture
def no_bf16(monkeypatch):
    """This machine's CPU counted as one without bf16."""
    monkeypatch.setenv("DEFSTAB_CPU_BF16", "0")


def test_resolution_rules(no_bf16):
    assert resolve_precision("fp32", CPU) == ("fp32", None)
    precision, note = resolve_precision("auto", CPU)
    assert precision == "fp32" and "no bf16" in note and "fp32" in note
    with pytest.raises(ValueError, match="bf16 was asked for"):
        resolve_precision("bf16", CPU)
    with pytest.raises(ValueError, match="precision must be one of"):
        TrainConfig(precision="fp16")


def test_bf16_without_support_is_one_sentence_and_exit_2(tmp_path, no_bf16, capsys):
    assert main(train_argv(tmp_path / "run", "--precision", "bf16")) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no bf16 dot products" in err[0]
    assert not (tmp_path / "run" / "config.json").exists()  # nothing half-written


def test_auto_falls_back_says_so_and_records_what_was_used(tmp_path, no_bf16, capsys):
    assert main(train_argv(tmp_path / "run")) == 0
    assert "training runs in fp32" in capsys.readouterr().err
    cfg = json.loads((tmp_path / "run" / "config.json").read_text())
    assert cfg["train"]["precision"] == "fp32"


@needs_bf16
def test_auto_records_bf16_and_a_resume_in_fp32_is_refused(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(train_argv(out)) == 0
    assert json.loads((out / "config.json").read_text())["train"]["precision"] == "bf16"
    assert main(train_argv(out, "--precision", "fp32")) == 2
    assert "train.precision: bf16 → fp32" in capsys.readouterr().err


def _run(precision, tmp_path=None, **kw):
    model, tr, te, cfg = tiny_setup()
    cfg.precision = precision
    return train(model, tr, te, cfg, out=tmp_path, quiet=True, **kw)


@needs_bf16
def test_same_seed_same_precision_same_run_and_bf16_differs_from_fp32():
    a, b, c = _run("bf16"), _run("bf16"), _run("fp32")
    for (k, x), y in zip(a.model.state_dict().items(), b.model.state_dict().values(), strict=True):
        assert torch.equal(x, y), k
    # autocast really ran: bf16 rounding moves the weights away from fp32's
    w_bf16, w_fp32 = a.model.features.conv1_1[0].weight, c.model.features.conv1_1[0].weight
    assert not torch.equal(w_bf16, w_fp32)
    assert a.history[-1]["train_loss"] < 0.7 * a.history[1]["train_loss"]  # and it learns
    # the model comes back in the layout it came in (measurements read it as NCHW)
    assert all(p.is_contiguous() for p in a.model.parameters())


@needs_bf16
def test_bf16_resume_equals_uninterrupted(tmp_path):
    full = _run("bf16", tmp_path / "full")
    _run("bf16", tmp_path / "part", stop_after_step=9)
    resumed = _run("bf16", tmp_path / "part")
    for (k, a), b in zip(
        full.model.state_dict().items(), resumed.model.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b), k
    assert read_csv(tmp_path / "full" / "history.csv") == read_csv(
        tmp_path / "part" / "history.csv"
    )


def test_precision_is_part_of_every_network_key(tmp_path):
    def networks(precision):
        cfg = ExperimentConfig(name="pooling", out=tmp_path, data="synthetic:1", seeds=2,
                               overrides={"precision": precision})  # fmt: skip
        runs = get_experiment("pooling").plan(cfg)
        return {s.network().folder(tmp_path) for s in runs if s.train is not None}

    fp32, bf16 = networks("fp32"), networks("bf16")
    assert fp32 and len(fp32) == len(bf16) and not fp32 & bf16
    assert networks("fp32") == fp32  # and the key is stable


def _experiment(out, *extra):
    return ["experiment", "synthetic", "--seeds", "1", "--width", "0.125", "--epochs", "1",
            "--per-class", "10", "--images", "4", "--quiet", "--out", str(out), *extra]  # fmt: skip


def test_experiment_records_the_precision_of_its_networks(tmp_path):
    assert main(_experiment(tmp_path, "--precision", "fp32")) == 0
    configs = [json.loads(p.read_text()) for p in (tmp_path / "networks").glob("*/network.json")]
    assert configs and all(c["spec"]["train"]["precision"] == "fp32" for c in configs)


def test_experiment_in_bf16_without_support_stops_before_any_run(tmp_path, no_bf16, capsys):
    assert main(_experiment(tmp_path, "--precision", "bf16")) == 2
    assert "no bf16 dot products" in capsys.readouterr().err
    assert not (tmp_path / "measurements").exists() and not (tmp_path / "synthetic").exists()


def test_the_caveat_names_the_precision_and_nothing_for_untrained_runs():
    from defstab.experiments.runner import training_in_words

    trained = get_experiment("pooling")
    settings = {"epochs": 8, "train_images": None, "precision": "bf16"}
    assert training_in_words(trained, settings) == "8 epochs on all training images, in bf16"
    assert "bf16" not in training_in_words(get_experiment("smooth-init"), settings)
    assert "bf16" not in training_in_words(trained, settings | {"epochs": 0})
