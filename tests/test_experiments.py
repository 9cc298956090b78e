"""Experiments end to end on tiny configurations, resume, aggregation, report, demo."""

import json
import math
import re

import pytest
import torch

from defstab.experiments import ExperimentConfig, run_experiment
from defstab.experiments.aggregate import aggregate
from defstab.experiments.demo import TINY
from defstab.experiments.registry import get_experiment
from defstab.io.tables import read_csv
from defstab.plotting.report import write_report

TINY_TRAIN = dict(TINY) | {"epochs": 1, "train_images": None, "random_label_epochs": 1}


def _refuse(constant):
    raise ValueError(f"not standard JSON: {constant}")


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
    "name",
    [
        "pooling",
        "smooth-init",
        "synthetic",
        "random-labels",
        "antialias",
        "worst-case",
        "augmentation",
        "measures",
    ],
)
def test_each_experiment_end_to_end(tmp_path, name):
    archs = ["maxpool", "blurpool"] if name in ("antialias", "augmentation") else None
    archs = archs + ["aps"] if name == "antialias" else archs or ["maxpool", "subsample"]
    archs = archs + ["blurpool"] if name == "measures" else archs  # a ranking needs three
    meta = run_experiment(tiny(name, tmp_path, archs=archs), quiet=True)
    folder = tmp_path / name
    summary = read_csv(folder / "summary.csv")
    results = read_csv(folder / "results.csv")
    assert (folder / meta["figure"]).stat().st_size > 5000
    keys = {"paper", "observed", "definition", "verdict", "effect", "ci", "n_seeds"}
    assert (meta["findings"] or name == "measures") and all(
        keys <= set(f) for f in meta["findings"]
    )
    # one seed: fewer than the plan's first look, so beyond the plan, and every look named
    assert meta["beyond_plan"] and [lk["n_seeds"] for lk in meta["looks"]] == [1]
    assert meta["seed_plan"]["looks"] == list(get_experiment(name).seed_plans["quick"].looks)
    # one seed (TINY): no interval, so nothing can be concluded
    assert {f["verdict"] for f in meta["findings"]} == (
        {"inconclusive"} if meta["findings"] else set()
    )
    # every seed is either used or named with the reason (1-epoch networks miss the gate)
    assert all(f["n_seeds"] + len(f["missing_seeds"]) == 1 for f in meta["findings"])
    trained_findings = [f for f in meta["findings"] if "gate" in f]
    assert all("test_accuracy" in f or "train_accuracy" in f for f in trained_findings)
    assert all(f["smallest_effect"]["value"] > 0 for f in meta["findings"])
    # strict JSON: a parser that refuses NaN and Infinity reads every file written
    for path in tmp_path.rglob("*.json"):
        json.loads(path.read_text(), parse_constant=_refuse)
    metrics = {r["metric"] for r in summary}
    assert {"sensitivity", "noise", "smoothness"} <= metrics
    if name == "antialias":
        assert {"embed:p_top1_change", "crop:mac", "crop:consistency"} <= metrics
        # APS is built with circular padding: exactly invariant to circular shifts here too
        aps = {r["metric"]: float(r["value"]) for r in results if r["condition"] == "aps"}
        assert aps["circular:p_top1_change"] == 0.0 and aps["circular:consistency"] == 1.0
        assert aps["crop:p_top1_change"] >= 0.0
        assert {"crop:consistency_correct", "crop:first_frame_accuracy"} <= set(aps)
        networks = [json.loads(p.read_text()) for p in tmp_path.glob("networks/*/network.json")]
        assert any(n["spec"]["model_kwargs"].get("padding") == "circular" for n in networks)
        assert len(meta["findings"]) == 4
    if name == "measures":  # three measures at the same layers, in both phases
        for metric in ("diffeo", "diffeo_rf", "lie", "lie:rotate"):
            assert {r["phase"] for r in summary if r["metric"] == metric} == {"init", "trained"}
        layers = {m: {r["layer"] for r in summary if r["metric"] == m}
                  for m in ("sensitivity", "diffeo", "lie")}  # fmt: skip
        assert layers["sensitivity"] == layers["diffeo"] == layers["lie"]
        lie = {r["layer"]: float(r["value"]) for r in results if r["metric"] == "lie"}
        assert lie["input"] < 1e-5 and all(v > 0 for k, v in lie.items() if k != "input")
        assert {"lie_e2e:translate_x", "lie_e2e:scale"} <= metrics
        assert meta["findings"] == [] and "no verdict" in meta["findings_retired"]
    if name == "augmentation":  # every step of −12…+12, inside/outside where they exist
        assert {"pad-inside:p_top1_change", "pad-outside:mac", "layer:invariance"} <= metrics
        steps = [r for r in summary if r["metric"] == "pad:p_top1_change"]
        assert len(steps) == 2 * 24 * 3  # architectures × steps × augmentations
        none = {r["metric"] for r in summary if r["condition"] == "maxpool/none"}
        assert "pad-inside:p_top1_change" not in none  # nothing is inside a range of 0 px
        assert len(meta["conditions"]) == 6 and len(meta["findings"]) == 4
    if name == "worst-case":  # per run and phase, the attack beats the random draw at its layer
        last = {}
        for r in results:
            if r["metric"] in ("worst", "sensitivity"):
                key = (r["condition"], r["seed"], r["phase"], r["metric"])
                last[key] = max(last.get(key, (-1, 0)), (int(r["layer_index"]), float(r["value"])))
        pairs = [
            (v[1], last[k[:3] + ("sensitivity",)][1]) for k, v in last.items() if k[3] == "worst"
        ]
        assert len(pairs) == 4 and all(w >= s_ - 1e-6 for w, s_ in pairs)
    n_runs = len(meta["runs"])
    assert len({(r["condition"], r["seed"]) for r in results}) == n_runs
    phases = {r["phase"] for r in results}
    assert phases == ({"init"} if name == "smooth-init" else {"init", "trained"})
    assert "QUICK PRESET" in " ".join(meta["caveats"])
    if name == "synthetic":  # the caveat counts what E3 trains on: 10 × per_class images
        assert f"on {10 * TINY['per_class']} generated images" in meta["caveats"][0]
    if name == "random-labels":
        assert {c.split("|")[1] for c in meta["conditions"]} == {
            "real labels",
            "random labels",
            "random images",
        }


def test_resume_skips_finished_and_reruns_unfinished(tmp_path, monkeypatch):
    cfg = tiny("smooth-init", tmp_path)
    first = run_experiment(cfg, quiet=True)
    folders = sorted((tmp_path / "measurements").iterdir())
    stamps = {f: (f / "result.json").stat().st_mtime_ns for f in folders}
    # an interrupted run: its result is missing (never half-written, see atomic writes)
    (folders[0] / "result.json").unlink()
    # a result from an older spec version: recomputed, never relabelled
    old = json.loads((folders[1] / "result.json").read_text())
    (folders[1] / "result.json").write_text(json.dumps(old | {"spec_version": 2}))
    import defstab.measure as measure_mod

    calls = []
    real = measure_mod.measure_sensitivity

    def counting(*a, **k):
        calls.append(1)
        return real(*a, **k)

    monkeypatch.setattr(measure_mod, "measure_sensitivity", counting)
    second = run_experiment(cfg, quiet=True)
    assert len(calls) == 2  # the unfinished run and the stale one, nothing else
    for f in folders[2:]:
        assert (f / "result.json").stat().st_mtime_ns == stamps[f]
    from defstab.experiments.runs import RunSpec

    assert json.loads((folders[1] / "result.json").read_text())["spec_version"] == RunSpec.VERSION
    assert read_csv(tmp_path / "smooth-init" / "summary.csv")
    assert first["findings"][0]["observed"] == second["findings"][0]["observed"]


def test_networks_are_shared_and_runs_keep_their_provenance(tmp_path, monkeypatch):
    """E4 and antialias reuse E1's trained checkpoints; a cached run keeps the provenance
    of the code that computed it, while the experiment's tables are stamped anew."""
    import defstab.io.provenance as prov
    import defstab.train as train_mod

    archs = ["maxpool", "blurpool"]
    pooling = run_experiment(tiny("pooling", tmp_path, archs=archs), quiet=True)
    networks = sorted((tmp_path / "networks").iterdir())
    assert len(networks) == len(pooling["runs"]) == 2
    assert all((n / "network.json").is_file() for n in networks)
    monkeypatch.setattr(prov, "git_revision", lambda: "later")
    monkeypatch.setattr(train_mod, "train", lambda *a, **k: pytest.fail("retrained"))
    smooth = run_experiment(tiny("smoothness", tmp_path, archs=archs), quiet=True)
    anti = run_experiment(tiny("antialias", tmp_path, archs=archs), quiet=True)
    worst = run_experiment(tiny("worst-case", tmp_path, archs=archs), quiet=True)
    assert [r["network"] for r in worst["runs"]] == [r["network"] for r in pooling["runs"]]
    measures = run_experiment(tiny("measures", tmp_path, archs=archs), quiet=True)
    assert [r["network"] for r in measures["runs"]] == [r["network"] for r in pooling["runs"]]
    assert sorted((tmp_path / "networks").iterdir()) == networks  # nothing new trained
    assert [r["network"] for r in anti["runs"]] == [r["network"] for r in pooling["runs"]]
    assert [r["test_acc"] for r in anti["runs"]] == [r["test_acc"] for r in pooling["runs"]]
    assert smooth["versions"]["git_revision"] == "later"
    assert all(r["provenance"].get("git_revision") != "later" for r in smooth["runs"])
    assert all(r["provenance"].get("git_revision") == "later" for r in anti["runs"])
    assert all(r["provenance"]["defstab"] and r["provenance"]["torch"] for r in smooth["runs"])
    # E4's finding is computed from the same numbers as its summary table
    summary = read_csv(tmp_path / "smoothness" / "summary.csv")
    for arch in archs:
        by_phase = {
            phase: sum(
                v := [
                    float(r["mean"])
                    for r in summary
                    if r["condition"] == arch
                    and r["metric"] == "smoothness"
                    and r["phase"] == phase
                ]
            )
            / len(v)
            for phase in ("init", "trained")
        }
        assert (
            f"{arch} {by_phase['init']:.3f}→{by_phase['trained']:.3f}"
            in (smooth["findings"][0]["observed"])
        )


def test_report_contains_every_figure_and_table(tmp_path):
    for name in ("smooth-init", "synthetic"):
        run_experiment(tiny(name, tmp_path), quiet=True)
    html = write_report(tmp_path, tmp_path / "r.html").read_text()
    assert html.count("<img") == 2 and html.count("data:image/png;base64,") == 2
    assert "E2 · Smooth initialisation" in html and "E3 · Synthetic" in html
    assert html.count("sensitivity per layer (mean ± 2 std over seeds)") == 2
    assert "QUICK PRESET" in html and "font" in html
    assert not re.search(r"src=\"(?!data:)", html)  # self-contained
    # each finding shows its smallest effect of interest and, one seed here, no verdict
    import html as html_mod

    from defstab.experiments.catalog.smoothness import TV_CHANGE

    assert "smallest effect of interest δ" in html and html_mod.escape(TV_CHANGE.reason) in html
    # one seed, below the plan's first look: no verdict, the reason, and the next look
    assert (
        "no planned look reached" in html and "undecided: the plan&#x27;s next look is at 3" in html
    )
    assert "Seed plan (quick, stated before any run): looks at 3 seeds, fixed n" in html


def test_report_errors(tmp_path):
    with pytest.raises(ValueError, match="no defstab results"):
        write_report(tmp_path, tmp_path / "r.html")
    with pytest.raises(FileNotFoundError):
        write_report(tmp_path / "nope", tmp_path / "r.html")


def test_registry_lists_every_experiment_once():
    from defstab.cli.main import build_parser
    from defstab.experiments import EXPERIMENTS, get_experiment, list_experiments

    names = list_experiments()
    assert names == EXPERIMENTS and len(set(names)) == len(names) == 9
    assert names[:2] == ["pooling", "smooth-init"]  # the study's (and the report's) order
    with pytest.raises(ValueError, match="Did you mean 'pooling'"):
        get_experiment("poling")
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    choices = next(a for a in sub.choices["experiment"]._actions if a.dest == "name").choices
    assert list(choices) == names


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


def test_paper_preset_code_path_end_to_end(tmp_path):
    """The paper preset's own settings (full test set, augmentation off for digits, its
    thresholds), shrunk only where a test must be small."""
    from defstab.experiments.presets import PRESETS

    small = {"width": 0.125, "images": 8, "per_class": 6, "epochs": 1, "probe_images": 4,
             "batch_size": 30, "pooling_types": ["maxpool", "subsample"]}  # fmt: skip
    cfg = ExperimentConfig(
        name="pooling", out=tmp_path, preset="paper", data="synthetic:2", seeds=2,
        overrides=small,
    )  # fmt: skip
    meta = run_experiment(cfg, quiet=True)
    assert meta["preset"] == "paper" and meta["seeds"] == [0, 1]
    assert not any("QUICK" in c for c in meta["caveats"])
    assert meta["settings"]["min_test_acc"] == PRESETS["paper"]["min_test_acc"] == 0.85
    assert meta["settings"]["lr"] == PRESETS["paper"]["lr"]
    assert meta["cost"]["seconds_per_run"] > 0 and "CPU cores" in meta["cost"]["measured_on"]
    assert "GPU" in meta["cost"]["paper_preset_gpu_estimate"]
    trained = [f for f in meta["findings"] if "gate" in f]
    assert trained and all(f["gate"]["threshold"] == 0.85 for f in trained)
    assert all(f["verdict"] == "inconclusive" for f in trained)  # 1 epoch: did not learn
    init = [f for f in meta["findings"] if "gate" not in f]
    assert init and all(f["n_seeds"] == 2 and f["ci"][0] <= f["effect"] <= f["ci"][1]
                        for f in init)  # fmt: skip
    # the 1-epoch networks stand behind no trained-network finding: both seeds named
    assert all(f["n_seeds"] == 0 and len(f["missing_seeds"]) == 2 for f in trained)


def test_epochs_sweep_through_the_cli(tmp_path, capsys):
    from defstab.cli.main import main

    argv = ["experiment", "synthetic", "--epochs-sweep", "1,2", "--seeds", "2", "--width",
            "0.125", "--per-class", "6", "--images", "6", "--quiet",
            "--out", str(tmp_path)]  # fmt: skip
    assert main(argv) == 0
    rows = read_csv(tmp_path / "synthetic-sweep" / "sweep.csv")
    assert [r["synthetic_epochs"] for r in rows] == ["1", "1", "2", "2"]
    for e in (1, 2):  # each length is a whole experiment, with its own findings
        meta = json.loads((tmp_path / f"synthetic-epochs{e}" / "experiment.json").read_text())
        got = [r["effect"] for r in rows if r["synthetic_epochs"] == str(e)]
        want = [f["effect"] for f in meta["findings"]]  # None: every seed missed the gate
        assert [g == "" for g in got] == [w is None for w in want]
        assert [float(g) for g in got if g] == pytest.approx([w for w in want if w is not None])
    assert (tmp_path / "synthetic-sweep" / "sweep.png").stat().st_size > 5000
    assert main(argv[:3] + ["0,2"] + argv[4:]) == 2
    assert "positive" in capsys.readouterr().err


def test_more_seeds_on_an_existing_folder_reuse_every_finished_run(tmp_path, capsys):
    """`--seeds N` on a folder of fewer seeds adds only the missing seeds' runs."""
    from defstab.cli.main import main

    argv = ["experiment", "smooth-init", "--data", "synthetic:2", "--width", "0.125",
            "--images", "6", "--per-class", "6", "--quiet", "--out", str(tmp_path)]  # fmt: skip
    assert main([*argv, "--seeds", "2"]) == 0
    first = {p: p.stat().st_mtime_ns for p in (tmp_path / "measurements").rglob("result.json")}
    assert len(first) == 4 * 2  # four σ × two seeds
    capsys.readouterr()
    assert main([*argv, "--seeds", "3"]) == 0
    out = capsys.readouterr().out
    assert "(8 of 12 runs were already finished)" in out
    after = {p: p.stat().st_mtime_ns for p in (tmp_path / "measurements").rglob("result.json")}
    assert len(after) == 12 and all(after[p] == t for p, t in first.items())
    meta = json.loads((tmp_path / "smooth-init" / "experiment.json").read_text())
    assert meta["seeds"] == [0, 1, 2] and meta["findings"][0]["n_seeds"] == 3


def test_an_experiment_network_folder_is_a_run_folder(tmp_path, tiny_cifar, capsys):
    """`--run OUT/networks/<net>` rebuilds the network an experiment trained (its model,
    width, channels and classes — these two read from the checkpoint), with the
    normalisation of its data, and measures it."""
    import torch

    from defstab.cli.main import main
    from defstab.data.spec import DataSpec
    from defstab.io.checkpoint import model_state, read_checkpoint
    from defstab.models.loading import load_run

    overrides = dict(TINY_TRAIN) | {"per_class": None, "images": 4}
    cfg = ExperimentConfig(name="pooling", out=tmp_path, data=tiny_cifar, overrides=overrides,
                           archs=["maxpool"])  # fmt: skip
    run_experiment(cfg, quiet=True)
    (net,) = sorted((tmp_path / "networks").iterdir())
    record = json.loads((net / "network.json").read_text())
    model, info = load_run(net)
    saved = model_state(read_checkpoint(net / record["checkpoint"])[0])
    assert info["checkpoint"] == net / record["checkpoint"]  # the trained state
    for key, value in model.state_dict().items():
        assert torch.equal(value, saved[key]), key
    assert info["normalize"] == DataSpec.parse(tiny_cifar).normalization == "cifar10"
    out = tmp_path / "m"
    assert main(["measure", "--run", str(net), "--data", tiny_cifar, "--images", "4",
                 "--quiet", "--out", str(out)]) == 0  # fmt: skip
    config = json.loads((out / "config.json").read_text())
    assert config["weights"].startswith("trained:") and config["run"] == str(net)
    capsys.readouterr()
    with pytest.raises(ValueError, match="nor an experiment's network folder"):
        load_run(tmp_path)


def test_a_network_folder_for_other_channels_and_classes(tmp_path):
    """The spec does not record the data's channels and classes; they come from the
    checkpoint (a one-channel, four-class network here)."""
    from defstab.io.checkpoint import save_checkpoint
    from defstab.models import create_model
    from defstab.models.loading import load_run

    net = create_model("vgg_cifar_maxpool", width=0.125, in_channels=1, num_classes=4, seed=3)
    folder = tmp_path / "networks" / "vgg_cifar_maxpool-seed3-abc"
    save_checkpoint(net, folder / "checkpoints" / "step_00000005.safetensors")
    spec = {"model": "vgg_cifar_maxpool", "model_kwargs": {"width": 0.125}, "seed": 3,
            "data": "mnist:somewhere", "data_options": {}, "train": {}}  # fmt: skip
    (folder / "network.json").write_text(json.dumps({"spec": spec}))
    model, info = load_run(folder)
    assert info["step"] == 5 and info["normalize"] == "mnist"
    assert info["model_kwargs"] == {"width": 0.125, "in_channels": 1, "num_classes": 4}
    assert model(torch.rand(2, 1, 32, 32)).shape == (2, 4)
    for key, value in net.state_dict().items():
        assert torch.equal(model.state_dict()[key], value), key
