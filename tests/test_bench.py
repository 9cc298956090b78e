"""``defstab bench``: every protocol's numbers equal its own command's on the same images,
the paired comparison finds a planted pair's known signs and nothing between a model and
itself, a bench interrupted and run again equals one that was not, bad input is one
sentence with no bench.json, bench.json follows its schema, and the bootstrap and Holm
are checked against closed forms on planted effects."""

from __future__ import annotations

import csv
import json
import math

import pytest

import defstab
from defstab.cli.main import main
from defstab.pipeline.bench_compare import compare_pair, paired_bootstrap, parse_deltas
from defstab.requests.bench import CARD, BenchRequest, card_requests
from defstab.requests.fields import request_argv

WIDTH = ["--width", "0.125"]


def rows(path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def values(folder) -> dict[str, float]:
    return {r["key"]: float(r["value"]) for r in rows(folder / "card.csv")}


def bench(argv: list[str]) -> int:
    return main(["bench", *argv, "--quiet"])


@pytest.fixture(scope="module")
def card_folder(tmp_path_factory):
    """One width-0.125 VGG benched on every protocol of the card (8 CIFAR images)."""
    from fixtures_formats import write_cifar_batches

    root = tmp_path_factory.mktemp("bench")
    write_cifar_batches(root / "cifar", n_per_batch=8)
    data = f"cifar10:{root / 'cifar'}"
    assert bench(["vgg_cifar_maxpool", *WIDTH, "--data", data, "--images", "8",
                  "--out", str(root / "b")]) == 0  # fmt: skip
    return root, data


def test_every_protocol_equals_its_own_command(card_folder, tmp_path):
    """Each protocol of the card run as its own command (the options --list shows) gives
    the numbers bench's card holds; each per-image mean is the card's value."""
    root, data = card_folder
    card = values(root / "b")
    for name, request in card_requests("quick", 8, 0, 32, list(CARD)).items():
        command = {"tps": "measure", "diffeo": "measure"}.get(name, name)
        data_argv = [] if name == "smoothness" else ["--data", data, "--quiet"]
        out = tmp_path / name
        assert main([command, "--model", "vgg_cifar_maxpool", *WIDTH, *data_argv,
                     *request_argv(request), "--out", str(out)]) == 0  # fmt: skip
        if name in ("tps", "diffeo"):
            for r in rows(out / "sensitivity.csv")[1:]:
                assert card[f"{name}:sensitivity@{r['layer']}"] == pytest.approx(float(r["mean"]))
                assert card[f"{name}:r_f@{r['layer']}"] == pytest.approx(
                    float(r["relative_stability"]))  # fmt: skip
        elif name == "translate":
            for r in rows(out / "summary.csv"):
                size = f"_{r['object_size']}px" if r.get("object_size") else ""
                for metric in ("p_top1_change", "mac"):
                    key = f"translate:{metric}_{r['protocol']}{size}"
                    assert card[key] == pytest.approx(float(r[metric]))
        elif name == "perturb":
            for r in rows(out / "summary.csv"):
                assert card[f"perturb:fp_{r['perturbation']}"] == pytest.approx(float(r["fp"]))
        elif name == "spatial":
            (r,) = rows(out / "summary.csv")
            for metric, column in (("natural", "natural"), ("random", "random"),
                                   ("worst_of_k", "worst_of_10"), ("grid", "grid")):  # fmt: skip
                assert card[f"spatial:{metric}_accuracy"] == pytest.approx(float(r[column]))
        else:
            for r in rows(out / "smoothness.csv"):
                assert card[f"smoothness:normalized_tv@{r['layer']}"] == pytest.approx(
                    float(r["smoothness"]))  # fmt: skip
        # the unit's own folder is that command's result (spatial's with its figure)
        unit = root / "b" / "units" / "vgg_cifar_maxpool" / name
        if name == "spatial":
            assert "spatial.png" in json.loads((unit / "section.json").read_text())["figures"]
        assert json.loads((unit / "config.json").read_text())["command"] == command
    for name in CARD:
        saved = json.loads((root / "b" / "units" / "vgg_cifar_maxpool" /
                            f"{name}.card.json").read_text())  # fmt: skip
        for e in saved["unit"]["entries"]:
            if e["values"] is not None:
                assert sum(e["values"]) / len(e["values"]) == pytest.approx(e["value"])


def test_the_card_is_in_the_report_and_follows_the_schema(card_folder, tmp_path):
    import jsonschema

    root, _ = card_folder
    from defstab.pipeline.bench_outputs import SCHEMA

    record = json.loads((root / "b" / "bench.json").read_text())
    schema = json.loads(SCHEMA.read_text())
    jsonschema.validate(record, schema)
    assert record["schema_version"] == "1.0" and record["images"] == 8
    assert [p["name"] for p in record["protocols"]] == list(CARD)
    (model,) = record["models"]
    assert model["accuracy"] == values(root / "b")["spatial:natural_accuracy"]
    broken = dict(record, models=[dict(model, metrics=[{"key": "no colon"}])])
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema)
    assert main(["report", str(root / "b"), "--out", str(tmp_path / "r.html")]) == 0
    page = (tmp_path / "r.html").read_text()
    assert "Stability card: vgg_cifar_maxpool" in page
    assert page.index("Stability card") < page.index("Rotations and translations")
    assert "leaderboard by tps:sensitivity@features.pool4" in page
    assert 'alt="card_vgg_cifar_maxpool.png"' in page


@pytest.fixture(scope="module")
def real_cifar(cifar10_jpeg):
    return f"cifar10:{cifar10_jpeg}"


def test_a_planted_pair_has_its_known_signs(real_cifar, tmp_path, capsys):
    """vgg_cifar_blurpool is vgg_cifar_maxpool with each max-pool replaced by blur then
    pool, with the same initial weights: identical before the first pooling (difference
    exactly 0), more stable after it (Zhang 2019: a low-pass filter before subsampling)."""
    out = tmp_path / "pair"
    assert bench(["vgg_cifar_maxpool", "vgg_cifar_blurpool", *WIDTH, "--data", real_cifar,
                  "--images", "32", "--protocols", "tps", "--out", str(out)]) == 0  # fmt: skip
    compared = [r for r in rows(out / "comparison.csv") if r["key"].startswith("tps:sens")]
    before = [r for r in compared if r["key"].split("@")[1] in ("features.conv1_1",
                                                                 "features.conv1_2")]  # fmt: skip
    after = [r for r in compared if r not in before]
    assert len(before) == 2 and len(after) >= 8
    for r in before:
        assert float(r["effect"]) == 0 and float(r["ci_low"]) == 0 == float(r["ci_high"])
        assert r["verdict"] == "no difference shown"
    for r in after:  # maxpool − blurpool > 0: blurpool more stable, after Holm
        assert float(r["ci_low"]) > 0, r
        assert r["verdict"] == "vgg_cifar_blurpool more stable", r
    text = " ".join(json.loads((out / "section.json").read_text())["text"])
    assert "not over training seeds" in text and "Holm" in text  # what the verdicts are about
    board = rows(out / "leaderboard.csv")
    assert [r["model"] for r in board] == ["vgg_cifar_blurpool", "vgg_cifar_maxpool"]


def test_a_model_against_itself_differs_nowhere(tiny_cifar, tmp_path):
    same = tmp_path / "same"
    assert (
        bench(
            [
                "vgg_cifar_maxpool",
                "vgg_cifar_maxpool",
                *WIDTH,
                "--data",
                tiny_cifar,
                "--images",
                "8",
                "--protocols",
                "diffeo,perturb",
                "--out",
                str(same),
            ]
        )
        == 0
    )
    compared = rows(same / "comparison.csv")
    assert len(compared) > 20
    for r in compared:
        assert r["a"] == "vgg_cifar_maxpool" and r["b"] == "vgg_cifar_maxpool-2"
        assert float(r["effect"]) == 0
        if r["ci_low"]:
            assert float(r["ci_low"]) <= 0 <= float(r["ci_high"])
            assert r["verdict"] == "no difference shown"


def test_an_interrupted_bench_resumes_to_the_same_result(tiny_cifar, tmp_path, monkeypatch):
    import defstab.pipeline.smoothness as smoothness

    argv = ["vgg_cifar_maxpool", "vgg_cifar_avgpool", *WIDTH, "--data", tiny_cifar,
            "--images", "6", "--protocols", "diffeo,smoothness"]  # fmt: skip
    assert bench([*argv, "--out", str(tmp_path / "whole")]) == 0
    real = smoothness.run_smoothness
    calls = []

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:  # the second model's smoothness: Ctrl-C
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(smoothness, "run_smoothness", interrupted)
    out = tmp_path / "resumed"
    assert bench([*argv, "--out", str(out)]) == 130  # what Ctrl-C ends a command with
    assert not (out / "bench.json").exists()  # nothing looks complete
    done = out / "units" / "vgg_cifar_maxpool" / "diffeo.card.json"
    stamp = done.stat().st_mtime_ns
    monkeypatch.setattr(smoothness, "run_smoothness", real)
    assert bench([*argv, "--out", str(out)]) == 0
    assert done.stat().st_mtime_ns == stamp  # found, not run again
    for table in ("card.csv", "comparison.csv", "leaderboard.csv"):
        assert (out / table).read_bytes() == (tmp_path / "whole" / table).read_bytes()


def test_python_and_the_command_line_give_the_same_card(tiny_cifar, tmp_path):
    from defstab.requests import ModelOptions

    request = BenchRequest(models=("vgg_cifar_maxpool",), images=4, protocols="tps,smoothness")
    outcome = defstab.run(request, model=ModelOptions(width=0.125), data=tiny_cifar,
                          out=tmp_path / "py", progress=False)  # fmt: skip
    assert (
        bench(
            [
                "vgg_cifar_maxpool",
                *WIDTH,
                "--data",
                tiny_cifar,
                "--images",
                "4",
                "--protocols",
                "tps,smoothness",
                "--out",
                str(tmp_path / "cli"),
            ]
        )
        == 0
    )
    assert (tmp_path / "py" / "card.csv").read_bytes() == (tmp_path / "cli" /
                                                           "card.csv").read_bytes()  # fmt: skip
    sens = [m for m in outcome.metrics if m.name.startswith("tps:sensitivity")]
    assert sens[-1].direction == "lower" and sens[-1].layer == "features.pool4"
    record = json.loads((tmp_path / "py" / "config.json").read_text())["request"]
    assert record["argv"][:3] == ["bench", "--width", "0.125"]


BAD = [
    (["vgg_cifar_maxpool", "--protocols", "tps,warp"], "unknown protocol 'warp' for --protocols"),
    (["vgg_cifar_maxpool", "--rank-by", "spatial:grid_accuracy", "--protocols", "tps"],
     "'spatial:grid_accuracy' is not a metric of the card's protocols (tps)"),
    (["vgg_cifar_maxpool", "--delta", "tps:sensitivity=-1"], "--delta takes METRIC=VALUE"),
    (["--protocols", "tps"], "give one or more MODELs to bench"),
    (["vgg_cifar_maxpool", "--resamples", "10"], "--resamples must be at least 100"),
    (["no_such_net"], "no_such_net"),
    (["vgg_cifar_maxpool@widht=2"], "vgg_cifar_maxpool@widht=2: unknown model option 'widht'"),
]  # fmt: skip


@pytest.mark.parametrize(("argv", "message"), BAD)
def test_bad_input_is_one_sentence_and_writes_nothing(tiny_cifar, tmp_path, capsys, argv,
                                                      message):  # fmt: skip
    out = tmp_path / "b"
    assert bench([*argv, *WIDTH, "--data", tiny_cifar, "--images", "4", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert not (out / "bench.json").exists()


MODELS = """
import torch
from torch import nn


class Net(nn.Module):
    def __init__(self, channels=3, nan=False):
        super().__init__()
        self.conv = nn.Conv2d(channels, 4, 3, padding=1)
        self.fc = nn.Linear(4, 10)
        self.nan = nan

    def forward(self, x):
        logits = self.fc(self.conv(x).mean(dim=(2, 3)))
        return logits * float("nan") if self.nan else logits


def gray():
    return Net(channels=1)


def nan_scores():
    return Net(nan=True)
"""


@pytest.mark.parametrize(
    ("factory", "message"),
    [("gray", "cannot run on inputs of shape"), ("nan_scores", "gives NaN class scores")],
)
def test_a_model_that_cannot_take_the_images_is_named_in_one_sentence(
    tiny_cifar, tmp_path, capsys, factory, message
):
    (tmp_path / "nets.py").write_text(MODELS)
    out = tmp_path / "b"
    argv = [
        "vgg_cifar_maxpool@width=0.125",
        f"{tmp_path / 'nets.py'}:{factory}",
        "--data",
        tiny_cifar,
        "--images",
        "4",
        "--protocols",
        "spatial",
        "--out",
        str(out),
    ]
    assert bench(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert f"nets_{factory}, spatial:" in err[-1] and message in err[-1], err
    assert "Traceback" not in "\n".join(err) and not (out / "bench.json").exists()


def test_bench_list_names_every_protocol_with_its_settings(capsys):
    assert main(["bench", "--list"]) == 0
    text = capsys.readouterr().out
    for name, card in CARD.items():
        assert f"{name}  [defstab " in text and card.metrics in text
    assert "quick    --images 512 --lie-derivative translate,rotate --lie-images 64" in text


# the statistics, on planted per-image values


def _entry(key, values, direction="lower"):
    return {"key": key, "protocol": key.split(":")[0], "metric": key, "layer": None,
            "value": sum(values) / len(values), "unit": "u", "direction": direction,
            "images": list(range(len(values))), "values": list(values)}  # fmt: skip


def _planted(n, effect, sd, seed):
    import torch

    gen = torch.Generator().manual_seed(seed)
    b = torch.rand(n, generator=gen, dtype=torch.float64)
    a = b + effect + sd * torch.randn(n, generator=gen, dtype=torch.float64)
    return a.tolist(), b.tolist()


def test_the_bootstrap_interval_is_the_normal_one_for_a_planted_difference():
    """For a mean of n = 400 differences the percentile interval is close to the closed
    form d̄ ± 1.96 s/√n, and contains the planted effect."""
    import statistics

    a, b = _planted(400, 0.1, 0.05, 1)
    found = paired_bootstrap(_entry("t:m", a), _entry("t:m", b), 4000, seed=0)
    d = [x - y for x, y in zip(a, b, strict=True)]
    half = 1.96 * statistics.stdev(d) / math.sqrt(len(d))
    assert found["effect"] == pytest.approx(statistics.fmean(d))
    assert found["ci"][0] == pytest.approx(found["effect"] - half, abs=0.15 * half)
    assert found["ci"][1] == pytest.approx(found["effect"] + half, abs=0.15 * half)
    assert found["ci"][0] < 0.1 < found["ci"][1]
    assert found["p_positive"] == pytest.approx(1 / 4001)  # every draw above 0


def test_verdicts_say_the_direction_and_at_least_delta_only_when_stated():
    big_a, big_b = _planted(200, 0.1, 0.02, 2)  # A larger: less stable when lower is
    null_a, null_b = _planted(200, 0.0, 0.02, 3)
    card_a = [_entry("t:big", big_a), _entry("t:null", null_a),
              _entry("t:acc", big_a, direction="higher")]  # fmt: skip
    card_b = [_entry("t:big", big_b), _entry("t:null", null_b),
              _entry("t:acc", big_b, direction="higher")]  # fmt: skip
    no_delta = {r["key"]: r["verdict"] for r in compare_pair("A", card_a, "B", card_b, 2000, 0,
                                                             {})}  # fmt: skip
    assert no_delta == {"t:big": "B more stable", "t:null": "no difference shown",
                        "t:acc": "A more stable"}  # fmt: skip
    deltas = parse_deltas("t:big=0.05,t:null=0.05,t:acc=0.5")
    said = {r["key"]: r["verdict"] for r in compare_pair("A", card_a, "B", card_b, 2000, 0,
                                                         deltas)}  # fmt: skip
    assert said["t:big"] == "B more stable (at least δ)"
    assert said["t:null"] == "within ±δ"
    assert said["t:acc"] == "A more stable (direction; an effect below δ is not excluded)"


def test_holm_keeps_twenty_null_metrics_from_a_verdict():
    """20 metrics without any effect: no 'more stable' verdict after Holm (each alone
    would cross 2.5% with probability 2.5%)."""
    card_a, card_b = [], []
    for k in range(20):
        a, b = _planted(60, 0.0, 0.1, 100 + k)
        card_a.append(_entry(f"t:m{k}", a))
        card_b.append(_entry(f"t:m{k}", b))
    found = compare_pair("A", card_a, "B", card_b, 2000, 0, {})
    assert all(r["verdict"] == "no difference shown" for r in found)
    assert all(r["p_holm"] >= 0.025 for r in found)


def test_shared_data_reads_once_and_hands_out_copies(tiny_cifar, monkeypatch):
    import defstab.data.sources as sources

    reads = []
    real = sources._load
    monkeypatch.setattr(sources, "_load", lambda *a: reads.append(a) or real(*a))
    with sources.shared_data():
        first, second = sources.load_data(tiny_cifar), sources.load_data(tiny_cifar)
        first.image_size = 17  # one protocol's setting stays its own
        assert second.image_size is None and first.pixels is second.pixels
        sources.load_data(tiny_cifar, split="train")
    assert len(reads) == 2  # test once, train once
    sources.load_data(tiny_cifar)
    assert len(reads) == 3  # outside the block: read again


def test_the_output_files_page_lists_the_columns_bench_writes(card_folder, tmp_path):
    from test_report_tables import documented_columns

    root, data = card_folder
    out = tmp_path / "two"
    assert (
        bench(
            [
                "vgg_cifar_maxpool",
                "vgg_cifar_avgpool",
                *WIDTH,
                "--data",
                data,
                "--images",
                "4",
                "--protocols",
                "smoothness,diffeo",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    documented = documented_columns()
    for name in ("card.csv", "leaderboard.csv", "comparison.csv"):
        written = list(rows(out / name)[0])
        assert documented[("bench", name)] == written, name


def test_a_bench_folder_replays_with_rerun(tiny_cifar, tmp_path):
    first = tmp_path / "b"
    assert bench(["vgg_cifar_maxpool@width=0.125", "--data", tiny_cifar, "--images", "4",
                  "--protocols", "diffeo,smoothness", "--out", str(first)]) == 0  # fmt: skip
    assert main(["rerun", str(first), "--out", str(tmp_path / "again")]) == 0
    for table in ("card.csv", "leaderboard.csv"):
        assert (first / table).read_bytes() == (tmp_path / "again" / table).read_bytes()


def test_models_prepared_differently_are_said_to_be(tiny_cifar, tmp_path):
    """A CIFAR network (the data's statistics) beside a torchvision one (ImageNet's): the
    same source images, each normalised as it expects, and bench.json and the report's
    section say so."""
    out = tmp_path / "b"
    assert bench(["vgg_cifar_maxpool@width=0.125", "torchvision:resnet18@num_classes=10",
                  "--data", tiny_cifar, "--images", "4", "--protocols", "diffeo",
                  "--out", str(out)]) == 0  # fmt: skip
    (note,) = json.loads((out / "bench.json").read_text())["preprocessing_differs"]
    assert "vgg_cifar_maxpool: cifar10, torchvision_resnet18: imagenet" in note
    assert note in json.loads((out / "section.json").read_text())["text"]
    units = json.loads((out / "bench.json").read_text())["models"]
    images = [json.loads((out / "units" / m["label"] / "diffeo.card.json").read_text())[
        "unit"]["entries"][0]["images"] for m in units]  # fmt: skip
    assert images[0] == images[1]  # the same source images


def test_models_and_their_own_options_from_a_config_file(tiny_cifar, tmp_path, capsys):
    (tmp_path / "bench.toml").write_text(
        'models = ["vgg_cifar_maxpool@width=0.125", {model = "vgg_cifar_avgpool", '
        "width = 0.125, init_seed = 3}]\n"
        f'data = "{tiny_cifar}"\nimages = 4\nprotocols = "smoothness"\n'
    )
    out = tmp_path / "b"
    assert bench(["--config", str(tmp_path / "bench.toml"), "--out", str(out)]) == 0
    models = json.loads((out / "bench.json").read_text())["models"]
    assert [(m["label"], m["options"]["width"], m["options"]["init_seed"]) for m in models] == [
        ("vgg_cifar_maxpool", 0.125, None), ("vgg_cifar_avgpool", 0.125, 3)]  # fmt: skip
    capsys.readouterr()
    assert bench(["vgg_cifar_maxpool", "--config", str(tmp_path / "bench.toml"), "--out",
                  str(tmp_path / "c")]) == 2  # fmt: skip
    assert "names the models; give them there or on the command line" in capsys.readouterr().err


def test_a_large_family_gets_enough_resamples_to_reach_a_verdict():
    """60 metrics with a clear planted effect: with 2000 resamples the smallest bootstrap
    p-value, 1/2001, times 60 is above 2.5% and no verdict could be reached; the pair's
    resamples are raised to 10·60/2.5% = 24,000 and every metric says the direction."""
    from defstab.pipeline.bench_compare import resamples_for

    assert resamples_for(2000, 60) == 24_000 and resamples_for(50_000, 60) == 50_000
    card_a, card_b = [], []
    for k in range(60):
        a, b = _planted(100, 0.1, 0.05, 200 + k)
        card_a.append(_entry(f"t:m{k}", a))
        card_b.append(_entry(f"t:m{k}", b))
    found = compare_pair("A", card_a, "B", card_b, 2000, 0, {})
    assert {r["resamples"] for r in found} == {24_000}
    assert all(r["verdict"] == "B more stable" for r in found)


def test_sharded_measurements_equal_measure_with_the_same_shards(real_cifar, tmp_path):
    """--shards 2: the tps unit is 'defstab measure --shards 2' (the sampled normalizer),
    its shards in the unit's folder, and a bench run again finds them."""
    out = tmp_path / "b"
    argv = ["vgg_cifar_maxpool@width=0.125", "--data", real_cifar, "--images", "128",
            "--protocols", "diffeo", "--shards", "2", "--out", str(out)]  # fmt: skip
    assert bench(argv) == 0
    (request,) = card_requests("quick", 128, 0, 32, ["diffeo"]).values()
    assert main(["measure", "--model", "vgg_cifar_maxpool", *WIDTH, "--data", real_cifar,
                 *request_argv(request), "--shards", "2", "--quiet",
                 "--out", str(tmp_path / "m")]) == 0  # fmt: skip
    card = values(out)
    for r in rows(tmp_path / "m" / "sensitivity.csv")[1:]:
        assert card[f"diffeo:sensitivity@{r['layer']}"] == pytest.approx(float(r["mean"]))
    shards = sorted((out / "units" / "vgg_cifar_maxpool" / "diffeo" / "shards").iterdir())
    assert [p.name for p in shards] == ["shard-0-of-2.pt", "shard-1-of-2.pt"]
    record = json.loads((out / "config.json").read_text())["request"]["argv"]
    assert record[record.index("--shards") + 1] == "2"  # a rerun shards alike
    # from Python: the same card, and the folder records the command line with --shards
    py = tmp_path / "py"
    defstab.run(BenchRequest(models=("vgg_cifar_maxpool@width=0.125",), images=128,
                             protocols="diffeo"), data=real_cifar, out=py, shards=2,
                progress=False)  # fmt: skip
    assert (py / "card.csv").read_bytes() == (out / "card.csv").read_bytes()
    argv = json.loads((py / "config.json").read_text())["request"]["argv"]
    assert argv[-2:] == ["--shards", "2"]
