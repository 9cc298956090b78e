"""Experiments end to end on tiny configurations, resume, aggregation, report, demo."""

import json
import math
import re

import pytest

from defstab.experiments import ExperimentConfig, run_experiment
from defstab.experiments.aggregate import aggregate
from defstab.experiments.demo import TINY
from defstab.io.tables import read_csv
from defstab.plotting.report import write_report

TINY_TRAIN = dict(TINY) | {"epochs": 1, "train_images": None, "random_label_epochs": 1}


def tiny(name, out, **kw):
    return ExperimentConfig(
        name=name,
        out=out,
        data="synthetic:2",
        overrides=dict(TINY_TRAIN),
        archs=kw.pop("archs", ["maxpool", "subsample"]),
        **kw,
    )


def test_aggregate_by_hand():
    rows = [
        {
            "condition": "a",
            "phase": "init",
            "metric": "m",
            "layer_index": 0,
            "layer": "x",
            "value": v,
        }
        for v in (1.0, 2.0, 4.0)
    ]
    (s,) = aggregate(rows)
    mean = 7 / 3
    std = math.sqrt(((1 - mean) ** 2 + (2 - mean) ** 2 + (4 - mean) ** 2) / 2)
    assert s["mean"] == pytest.approx(mean) and s["std"] == pytest.approx(std)
    assert s["lo"] == pytest.approx(mean - 2 * std) and s["hi"] == pytest.approx(mean + 2 * std)
    assert s["n_seeds"] == 3
    (one,) = aggregate(rows[:1])
    assert one["std"] == 0.0


@pytest.mark.parametrize(
    "name", ["pooling", "smooth-init", "synthetic", "random-labels", "antialias"]
)
def test_each_experiment_end_to_end(tmp_path, name):
    archs = ["maxpool", "blurpool"] if name == "antialias" else ["maxpool", "subsample"]
    meta = run_experiment(tiny(name, tmp_path, archs=archs), quiet=True)
    folder = tmp_path / name
    summary = read_csv(folder / "summary.csv")
    results = read_csv(folder / "results.csv")
    assert (folder / meta["figure"]).stat().st_size > 5000
    assert meta["findings"] and all(
        {"paper", "observed", "shows"} <= set(f) for f in meta["findings"]
    )
    metrics = {r["metric"] for r in summary}
    assert {"sensitivity", "noise", "smoothness"} <= metrics
    if name == "antialias":
        assert {"embed:p_top1_change", "crop:mac", "crop:consistency"} <= metrics
    n_runs = len(meta["runs"])
    assert len({(r["condition"], r["seed"]) for r in results}) == n_runs
    phases = {r["phase"] for r in results}
    assert phases == ({"init"} if name == "smooth-init" else {"init", "trained"})
    assert "QUICK PRESET" in " ".join(meta["caveats"])


def test_resume_skips_finished_and_reruns_unfinished(tmp_path, monkeypatch):
    cfg = tiny("smooth-init", tmp_path)
    first = run_experiment(cfg, quiet=True)
    folders = sorted((tmp_path / "runs").iterdir())
    stamps = {f: (f / "result.json").stat().st_mtime_ns for f in folders}
    # an interrupted run: its result is missing (never half-written, see atomic writes)
    (folders[0] / "result.json").unlink()
    import defstab.measure as measure_mod

    calls = []
    real = measure_mod.measure_sensitivity

    def counting(*a, **k):
        calls.append(1)
        return real(*a, **k)

    monkeypatch.setattr(measure_mod, "measure_sensitivity", counting)
    second = run_experiment(cfg, quiet=True)
    assert len(calls) == 1  # only the unfinished run was measured again
    for f in folders[1:]:
        assert (f / "result.json").stat().st_mtime_ns == stamps[f]
    assert read_csv(tmp_path / "smooth-init" / "summary.csv")
    assert first["findings"][0]["observed"] == second["findings"][0]["observed"]


def test_smoothness_reuses_pooling_runs(tmp_path):
    run_experiment(tiny("pooling", tmp_path), quiet=True)
    n = len(list((tmp_path / "runs").iterdir()))
    meta = run_experiment(tiny("smoothness", tmp_path), quiet=True)
    assert len(list((tmp_path / "runs").iterdir())) == n  # nothing new trained
    assert "smoother" in meta["findings"][0]["paper"]


def test_report_contains_every_figure_and_table(tmp_path):
    for name in ("smooth-init", "synthetic"):
        run_experiment(tiny(name, tmp_path), quiet=True)
    html = write_report(tmp_path, tmp_path / "r.html").read_text()
    assert html.count("<img") == 2 and html.count("data:image/png;base64,") == 2
    assert "E2 · Smooth initialisation" in html and "E3 · Synthetic" in html
    assert html.count("sensitivity per layer (mean ± 2 std over seeds)") == 2
    assert "QUICK PRESET" in html and "font" in html
    assert not re.search(r"src=\"(?!data:)", html)  # self-contained


def test_report_errors(tmp_path):
    with pytest.raises(ValueError, match="no experiment results"):
        write_report(tmp_path, tmp_path / "r.html")
    with pytest.raises(FileNotFoundError):
        write_report(tmp_path / "nope", tmp_path / "r.html")


def test_experiment_needs_data(tmp_path):
    with pytest.raises(ValueError, match="needs --data"):
        run_experiment(ExperimentConfig(name="pooling", out=tmp_path), quiet=True)
    with pytest.raises(ValueError, match="preset"):
        run_experiment(ExperimentConfig(name="pooling", out=tmp_path, preset="huge", data="x"))


def test_demo_quick_test_via_cli(tmp_path, capsys):
    from defstab.cli.main import main

    assert main(["demo", "--quick-test", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "report:" in out and "[4/4]" in out
    html = (tmp_path / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 4  # deformations, E2, E1, E3
    meta = json.loads((tmp_path / "pooling" / "experiment.json").read_text())
    assert meta["caveats"][0].startswith("DEMO")
