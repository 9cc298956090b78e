"""The one pipeline behind ``defstab measure`` and :func:`defstab.run`: the two doors
give the same files byte for byte, check the same options the same way, apply the same
normalisation (and say which), shard and resume alike, and a folder made from Python
replays with ``defstab rerun``."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import textwrap

import pytest

import defstab
from defstab.cli.main import build_parser, command_parser, main
from defstab.requests import DataOptions, MeasureRequest, ModelOptions
from defstab.requests.fields import from_namespace, options_of, request_argv

VGG = ModelOptions(model="vgg_cifar_maxpool", width=0.125)
VGG_ARGV = ["--model", "vgg_cifar_maxpool", "--width", "0.125"]
TABLES = ("sensitivity.csv", "per_image.csv")


def same_tables(a, b, tables=TABLES):
    return all((a / t).read_bytes() == (b / t).read_bytes() for t in tables)


def test_python_and_the_command_line_write_the_same_tables(tmp_path, tiny_cifar, capsys):
    request = MeasureRequest(images=6, seed=3, batch_size=4)
    outcome = defstab.run(request, model=VGG, data=tiny_cifar, out=tmp_path / "py",
                          progress=False)  # fmt: skip
    argv = ["measure", *VGG_ARGV, "--data", tiny_cifar, "--images", "6", "--seed", "3",
            "--batch-size", "4", "--quiet", "--out", str(tmp_path / "cli")]  # fmt: skip
    assert main(argv) == 0
    assert same_tables(tmp_path / "py", tmp_path / "cli")
    # the outcome holds what the folder holds
    rows = outcome.rows()
    assert [r["layer"] for r in rows] == outcome.result.layers
    frame = outcome.to_frame()
    assert list(frame["mean"]) == pytest.approx([r["mean"] for r in rows])
    first = outcome.metrics[0]
    assert (first.name, first.direction, first.layer) == ("sensitivity", "lower", rows[-1]["layer"])
    assert first.value == pytest.approx(rows[-1]["mean"])
    r_f = next(m for m in outcome.metrics if m.name == "relative_stability")
    assert r_f.value == pytest.approx(rows[-1]["relative_stability"])
    assert outcome.out == tmp_path / "py" and "sensitivity.csv" in outcome.written


def test_without_a_folder_nothing_is_written(tmp_path, tiny_cifar, monkeypatch):
    monkeypatch.chdir(tmp_path)
    outcome = defstab.run(MeasureRequest(images=4, no_noise=True), model=VGG,
                          data=DataOptions(data=tiny_cifar), progress=False)  # fmt: skip
    assert outcome.out is None and outcome.written == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cifar"]
    assert not any("relative_stability" == m.name for m in outcome.metrics)


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        (MeasureRequest(deformation="diffeo", grid=3), "--grid has no effect here"),
        (MeasureRequest(images=0), "--images must be at least 1, got 0"),
        (MeasureRequest(lie_images=2), "--lie-images has no effect here"),
        (MeasureRequest(normalizer="median"), "normalizer"),
        (MeasureRequest(images=8, normalizer="exact"), "--shards needs the sampled normalizer"),
    ],
)
def test_python_requests_are_checked_as_the_command_line_checks_them(
    tmp_path, tiny_cifar, request_, message
):
    shards = 2 if request_.normalizer == "exact" else 1
    with pytest.raises(ValueError, match=message):
        defstab.run(request_, model=VGG, data=tiny_cifar, out=tmp_path / "m", shards=shards)
    assert not (tmp_path / "m").exists()  # refused before anything is read or written


def test_an_unknown_request_and_a_bad_model_are_one_sentence(tiny_cifar):
    with pytest.raises(ValueError, match="is not a protocol's request; give one of: Measure"):
        defstab.run(object(), model=VGG, data=tiny_cifar)
    with pytest.raises(ValueError, match="model must be a model name, ModelOptions or a torch"):
        defstab.run(MeasureRequest(images=4), model=3.5, data=tiny_cifar)


FILE_MODEL = """
import torch

def net():
    torch.manual_seed(1)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(),
                               torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
                               torch.nn.Linear(4, 10))
"""


def test_one_normalisation_rule_from_both_doors_and_it_is_said(tmp_path, tiny_cifar, capsys):
    """A model from a file on CIFAR-10 images: the command line, Python with the file's
    name and Python with the module object all normalise with CIFAR-10's statistics, and
    say so; asking for none gives other numbers (so the rule is what makes them equal)."""
    (tmp_path / "nets.py").write_text(textwrap.dedent(FILE_MODEL))
    spec = f"{tmp_path / 'nets.py'}:net"
    common = ["--data", tiny_cifar, "--images", "6", "--layers", "0,1"]
    assert main(["measure", "--model", spec, *common, "--out", str(tmp_path / "cli")]) == 0
    said = capsys.readouterr().out
    assert "normalisation: cifar10 (the data's statistics" in said
    request = MeasureRequest(images=6, layers="0,1")
    defstab.run(request, model=spec, data=tiny_cifar, out=tmp_path / "name", progress=False)
    sys.path.insert(0, str(tmp_path))
    try:
        import nets

        defstab.run(request, model=nets.net(), data=tiny_cifar, out=tmp_path / "object",
                    progress=False)  # fmt: skip
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("nets", None)
    for folder in ("cli", "name", "object"):
        config = json.loads((tmp_path / folder / "config.json").read_text())
        assert config["normalize"] == "cifar10", folder
        assert config["normalize_rule"].startswith("the data's statistics")
        section = json.loads((tmp_path / folder / "section.json").read_text())
        assert "normalised with cifar10 (the data's statistics" in section["text"][0]
    assert same_tables(tmp_path / "cli", tmp_path / "name", ("sensitivity.csv",))
    assert same_tables(tmp_path / "cli", tmp_path / "object", ("sensitivity.csv",))
    assert main(["measure", "--model", spec, *common, "--normalize", "none", "--quiet",
                 "--out", str(tmp_path / "none")]) == 0  # fmt: skip
    assert not same_tables(tmp_path / "cli", tmp_path / "none", ("sensitivity.csv",))


def test_a_folder_made_from_python_replays_with_rerun(tmp_path, tiny_cifar, monkeypatch):
    monkeypatch.chdir(tmp_path)
    request = MeasureRequest(images=5, seed=1, deformation="diffeo", displacement=0.5)
    defstab.run(request, model=VGG, data=tiny_cifar, out=tmp_path / "py", progress=False)
    recorded = json.loads((tmp_path / "py" / "config.json").read_text())["request"]
    assert recorded["argv"][:5] == ["measure", *VGG_ARGV]
    assert main(["rerun", str(tmp_path / "py"), "--out", str(tmp_path / "again")]) == 0
    assert same_tables(tmp_path / "py", tmp_path / "again")


def test_a_folder_of_a_model_object_says_why_it_cannot_be_rerun(tmp_path, tiny_cifar, capsys):
    from defstab.models import create_model

    net = create_model("vgg_cifar_maxpool", width=0.125, seed=0)
    defstab.run(MeasureRequest(images=4, no_noise=True), model=net, data=tiny_cifar,
                out=tmp_path / "obj", progress=False)  # fmt: skip
    assert main(["rerun", str(tmp_path / "obj")]) == 2
    assert "the model was given as a Python object" in capsys.readouterr().err


def test_python_shards_resume_and_equal_the_command_line(tmp_path, tiny_cifar):
    """Shards from Python run in this process (no command line rebuilt); one lost shard is
    computed again alone; the merge equals the command line's --shards byte for byte."""
    request = MeasureRequest(images=8, batch_size=2, normalizer="sampled", seed=4)
    out = tmp_path / "py"
    defstab.run(request, model=VGG, data=tiny_cifar, out=out, shards=2, progress=False)
    argv = ["measure", *VGG_ARGV, "--data", tiny_cifar, "--images", "8", "--batch-size", "2",
            "--normalizer", "sampled", "--seed", "4", "--shards", "2", "--quiet",
            "--out", str(tmp_path / "cli")]  # fmt: skip
    assert main(argv) == 0
    assert same_tables(out, tmp_path / "cli")
    lost, kept = out / "shards" / "shard-1-of-2.pt", out / "shards" / "shard-0-of-2.pt"
    stamp = kept.stat().st_mtime_ns
    lost.unlink()
    defstab.run(request, model=VGG, data=tiny_cifar, out=out, shards=2, progress=False)
    assert lost.exists() and kept.stat().st_mtime_ns == stamp  # resumed: only the lost one
    defstab.run(request, model=VGG, data=tiny_cifar, out=out, shards=2, resume=False,
                progress=False)  # fmt: skip
    assert kept.stat().st_mtime_ns != stamp  # computed again
    assert same_tables(out, tmp_path / "cli")


def test_a_model_object_is_sharded_in_this_process(tmp_path, tiny_cifar):
    from defstab.models import create_model

    request = MeasureRequest(images=8, batch_size=2, normalizer="sampled")
    net = create_model("vgg_cifar_maxpool", width=0.125, seed=0)
    defstab.run(request, model=net, data=tiny_cifar, out=tmp_path / "obj", shards=2,
                progress=False)  # fmt: skip
    defstab.run(request, model=VGG, data=tiny_cifar, out=tmp_path / "name", shards=2,
                progress=False)  # fmt: skip
    assert same_tables(tmp_path / "obj", tmp_path / "name")


def test_every_request_field_is_an_option_with_its_default():
    """The parser is generated from the request: same names, same defaults, and the
    parsed arguments become the same request again (request_argv round trip)."""
    measure = command_parser(build_parser("measure"), "measure")
    defaults = vars(measure.parse_args(["--data", "x", "--out", "o"]))
    for f, _ in options_of(MeasureRequest):
        assert f.name in defaults and defaults[f.name] == f.default, f.name
    chosen = MeasureRequest(images=9, grid=4, max_disp=1.5, no_noise=True, layers="a,b",
                            lie_derivative="rotate", attack_steps=3)  # fmt: skip
    args = measure.parse_args([*request_argv(chosen), "--data", "x", "--out", "o"])
    assert from_namespace(MeasureRequest, args) == chosen


def test_sized_defaults_are_the_papers():
    """--grid and --max-disp default per image size from the field metadata, which
    matches the paper's settings (DeformationSpec.paper) on both sides of 64 px."""
    from defstab.deform import DeformationSpec
    from defstab.pipeline.measure import sized_default

    for side in (28, 32, 64, 65, 224):
        paper = DeformationSpec.paper(side)
        assert (sized_default("grid", side), sized_default("max_disp", side)) == (
            paper.grid, paper.max_disp)  # fmt: skip
    measure = command_parser(build_parser("measure"), "measure")
    helps = {a.dest: a.help for a in measure._actions}
    assert "default 3 for images ≤ 64 px, else 5" in helps["grid"]


def test_the_registry_knows_measure_and_refuses_a_second_of_a_name():
    from defstab.requests import SmoothnessRequest, SpatialRequest
    from defstab.requests.registry import PROTOCOLS, protocol_of, register_protocol

    for request, command in ((MeasureRequest(), "measure"), (SpatialRequest(), "spatial"),
                             (SmoothnessRequest(), "smoothness")):  # fmt: skip
        protocol = protocol_of(request)
        assert protocol.command == command
        assert protocol.run_function().__name__ == f"run_{command}"
    with pytest.raises(ValueError, match="already registered"):
        register_protocol(PROTOCOLS["deformation-sensitivity"])


def test_requests_and_the_pipeline_import_no_torch():
    code = ("import sys, defstab.requests, defstab.pipeline, defstab.requests.registry; "
            "import defstab.pipeline.models, defstab.pipeline.outcome; "
            "print('torch' in sys.modules)")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


def test_spatial_and_smoothness_from_python_equal_their_commands(tmp_path, tiny_cifar):
    from defstab.requests import SmoothnessRequest, SpatialRequest

    spatial = defstab.run(SpatialRequest(images=4, seed=2), model=VGG, data=tiny_cifar,
                          out=tmp_path / "sp", progress=False)  # fmt: skip
    assert main(["spatial", *VGG_ARGV, "--data", tiny_cifar, "--images", "4", "--seed", "2",
                 "--out", str(tmp_path / "sp_cli")]) == 0  # fmt: skip
    assert same_tables(tmp_path / "sp", tmp_path / "sp_cli", ("summary.csv", "per_image.csv"))
    accuracies = {m.name: m for m in spatial.metrics}
    assert accuracies["grid_accuracy"].value <= accuracies["natural_accuracy"].value
    assert {m.direction for m in spatial.metrics} == {"higher"}
    smooth = defstab.run(SmoothnessRequest(), model=VGG, out=tmp_path / "sm")
    assert main(["smoothness", *VGG_ARGV, "--out", str(tmp_path / "sm_cli")]) == 0
    assert same_tables(tmp_path / "sm", tmp_path / "sm_cli", ("smoothness.csv",))
    assert [m.layer for m in smooth.metrics] == list(smooth.values)
    assert smooth.expected is not None  # a registry model at its paper init
    for folder in ("sp", "sm"):  # made from Python, replayed by the command line
        assert main(["rerun", str(tmp_path / folder), "--out", str(tmp_path / f"{folder}2")]) == 0
    assert same_tables(tmp_path / "sp", tmp_path / "sp2", ("summary.csv", "per_image.csv"))
    assert same_tables(tmp_path / "sm", tmp_path / "sm2", ("smoothness.csv",))
    with pytest.raises(ValueError, match="--step has no effect here"):
        defstab.run(SmoothnessRequest(), model=ModelOptions(model="vgg_cifar_maxpool", step=3))
    with pytest.raises(ValueError, match="give no data"):
        defstab.run(SmoothnessRequest(), model=VGG, data=tiny_cifar)


def test_perturb_from_python_with_a_baseline_equals_its_command(tmp_path, tiny_cifar):
    from defstab.requests import PerturbRequest

    request = PerturbRequest(images=2, preset="cifar-p", perturbations="translate,shot_noise",
                             baseline_model="vgg_cifar_avgpool", baseline_width=0.125)  # fmt: skip
    outcome = defstab.run(request, model=VGG, data=tiny_cifar, out=tmp_path / "py",
                          progress=False)  # fmt: skip
    argv = ["perturb", *VGG_ARGV, "--data", tiny_cifar, "--images", "2", "--preset", "cifar-p",
            "--perturbations", "translate,shot_noise", "--baseline-model", "vgg_cifar_avgpool",
            "--baseline-width", "0.125", "--quiet", "--out", str(tmp_path / "cli")]  # fmt: skip
    assert main(argv) == 0
    assert same_tables(tmp_path / "py", tmp_path / "cli", ("summary.csv", "per_video.csv"))
    names = [m.name for m in outcome.metrics]
    assert names == ["fp_translate", "fr_translate", "fp_shot_noise", "fr_shot_noise", "fr_mean"]
    assert set(outcome.normalizations) == {"model", "baseline"}
    assert main(["rerun", str(tmp_path / "py"), "--out", str(tmp_path / "again")]) == 0
    assert same_tables(tmp_path / "py", tmp_path / "again", ("summary.csv", "per_video.csv"))
    with pytest.raises(ValueError, match="unknown perturbation blur"):
        defstab.run(PerturbRequest(perturbations="blur"), model=VGG, data=tiny_cifar)
    with pytest.raises(ValueError, match="--baseline-width has no effect here"):
        defstab.run(PerturbRequest(baseline_width=0.5), model=VGG, data=tiny_cifar)


def test_translate_from_python_equals_its_command_and_runs_without_a_folder(tmp_path, tiny_cifar):
    from defstab.requests import TranslateRequest

    request = TranslateRequest(images=3, steps=2, protocol="crop,circular", robust_grid="integer",
                               robust_radius=2, seed=5)  # fmt: skip
    outcome = defstab.run(request, model=VGG, data=tiny_cifar, out=tmp_path / "py",
                          progress=False)  # fmt: skip
    argv = ["translate", *VGG_ARGV, "--data", tiny_cifar, "--images", "3", "--steps", "2",
            "--protocol", "crop,circular", "--robust-grid", "integer", "--robust-radius", "2",
            "--seed", "5", "--quiet", "--out", str(tmp_path / "cli")]  # fmt: skip
    assert main(argv) == 0
    tables = ("summary.csv", "per_step.csv", "worst_shift_accuracy.csv")
    assert same_tables(tmp_path / "py", tmp_path / "cli", tables)
    names = {m.name: m for m in outcome.metrics}
    assert names["p_top1_change_crop"].direction == "lower"
    assert names["robust_accuracy_worst-integer-shift"].direction == "higher"
    bare = defstab.run(request, model=VGG, data=tiny_cifar, progress=False)
    assert bare.out is None and bare.rows() == outcome.rows()
    assert main(["rerun", str(tmp_path / "py"), "--out", str(tmp_path / "again")]) == 0
    assert same_tables(tmp_path / "py", tmp_path / "again", tables)
    with pytest.raises(ValueError, match="--robust-radius has no effect here"):
        defstab.run(TranslateRequest(robust_radius=4), model=VGG, data=tiny_cifar)


def test_train_from_python_then_measure_its_folder(tmp_path, tiny_cifar):
    """Python trains what the command line trains (the same weights), and the folder is a
    --run for the measuring protocols from both doors."""
    import torch

    from defstab.models.loading import load_run
    from defstab.requests import TrainRequest

    request = TrainRequest(epochs=1, batch_size=8, train_images=16, test_images=8,
                           precision="fp32")  # fmt: skip
    outcome = defstab.run(request, model=VGG, data=tiny_cifar, out=tmp_path / "tr",
                          progress=False)  # fmt: skip
    assert outcome.metrics[0].name == "test_accuracy" and outcome.out == tmp_path / "tr"
    argv = ["train", *VGG_ARGV, "--data", tiny_cifar, "--epochs", "1", "--batch-size", "8",
            "--train-images", "16", "--test-images", "8", "--precision", "fp32", "--quiet",
            "--out", str(tmp_path / "tr_cli")]  # fmt: skip
    assert main(argv) == 0
    ours, _ = load_run(tmp_path / "tr")
    theirs, _ = load_run(tmp_path / "tr_cli")
    assert all(
        torch.equal(a, b)
        for a, b in zip(ours.state_dict().values(), theirs.state_dict().values(), strict=True)
    )
    measured = defstab.run(MeasureRequest(images=4, no_noise=True),
                           model=ModelOptions(run=str(tmp_path / "tr")), data=tiny_cifar,
                           progress=False)  # fmt: skip
    assert measured.model_settings["weights"].startswith("trained:")
    assert measured.normalization.reason == "what the train folder trained with"
    with pytest.raises(ValueError, match="train records its model by name"):
        defstab.run(request, model=ours, data=tiny_cifar, out=tmp_path / "x")


def test_dataset_bias_from_python_equals_its_command(tmp_path):
    from defstab.requests import DatasetBiasRequest

    coco = {"images": [{"id": 1, "width": 100, "height": 80}],
            "annotations": [{"image_id": 1, "bbox": [10, 10, 20, 20]},
                            {"image_id": 1, "bbox": [40, 30, 30, 30]}]}  # fmt: skip
    (tmp_path / "c.json").write_text(json.dumps(coco))
    boxes = f"coco:{tmp_path / 'c.json'}"
    outcome = defstab.run(DatasetBiasRequest(bins=4), data=boxes, out=tmp_path / "py")
    assert main(["dataset-bias", "--data", boxes, "--bins", "4", "--quiet",
                 "--out", str(tmp_path / "cli")]) == 0  # fmt: skip
    assert same_tables(tmp_path / "py", tmp_path / "cli", ("summary.csv", "boxes.csv"))
    assert outcome.stats["data"]["boxes"] == 2
    assert main(["rerun", str(tmp_path / "py"), "--out", str(tmp_path / "again")]) == 0
    assert same_tables(tmp_path / "py", tmp_path / "again", ("summary.csv", "boxes.csv"))
    with pytest.raises(ValueError, match="reads boxes only; give no model"):
        defstab.run(DatasetBiasRequest(data=boxes), model=VGG)


def test_an_experiment_from_python_equals_its_command(tmp_path):
    """The scaled-down E1 from Python and from the command line: the same results table;
    the Python door refuses what the command line refuses."""
    from defstab.requests import ExperimentRequest

    request = ExperimentRequest(name="pooling", data="synthetic:2", archs="maxpool,subsample",
                                seeds=2, width=0.125, images=8, per_class=6, epochs=1)  # fmt: skip
    outcome = defstab.run(request, out=tmp_path / "py", progress=False)
    argv = ["experiment", "pooling", "--data", "synthetic:2", "--archs", "maxpool,subsample",
            "--seeds", "2", "--width", "0.125", "--images", "8", "--per-class", "6",
            "--epochs", "1", "--quiet", "--out", str(tmp_path / "cli")]  # fmt: skip
    assert main(argv) == 0
    assert same_tables(tmp_path / "py" / "pooling", tmp_path / "cli" / "pooling",
                       ("results.csv", "summary.csv"))  # fmt: skip
    assert outcome.meta["findings"] and outcome.summary_lines()[0].endswith("[quick preset]")
    with pytest.raises(ValueError, match="--templates has no effect here"):
        defstab.run(ExperimentRequest(name="pooling", templates="mnist:x"), out=tmp_path / "x")
    with pytest.raises(ValueError, match="unknown downsampling type maxpol"):
        defstab.run(ExperimentRequest(archs="maxpol"), out=tmp_path / "x")


def test_a_deformation_figure_from_python(tmp_path):
    import numpy as np
    from PIL import Image

    from defstab.requests import DeformRequest

    picture = tmp_path / "a.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(
        picture
    )
    outcome = defstab.run(DeformRequest(kind="diffeo", size=32), data=[picture],
                          out=tmp_path / "fig.png")  # fmt: skip
    assert outcome.out == tmp_path / "fig.png" and outcome.out.stat().st_size > 0
    assert outcome.request.images == (str(picture),)
    assert main(["deform", str(picture), "--kind", "diffeo", "--size", "32", "-o",
                 str(tmp_path / "cli.png")]) == 0  # fmt: skip
    with pytest.raises(ValueError, match="--grid has no effect here"):
        defstab.run(DeformRequest(images=(str(picture),), kind="diffeo", grid=3))
    with pytest.raises(ValueError, match="give the images to deform"):
        defstab.run(DeformRequest())


#: options a command has beside its request's fields: where it writes, how it runs
RUN_OPTIONS = {"help", "out", "quiet", "device", "config", "output", "shards", "shard",
               "executor", "workers", "address", "connect_timeout", "cpus_per_run",
               "gpus_per_run", "processes_per_run", "slurm_partition", "slurm_time",
               "slurm_cluster", "slurm_param"}  # fmt: skip


@pytest.mark.parametrize(
    "command",
    [
        "measure",
        "translate",
        "perturb",
        "spatial",
        "smoothness",
        "train",
        "dataset-bias",
        "experiment",
        "deform",
        "bench",
    ],
)
def test_every_option_of_a_protocol_command_is_a_request_field(command):
    """The parsers are generated from the requests: each option of a protocol's command
    is a field of its request, of the model options or of the data options (or says
    where and how the run goes)."""
    from defstab.requests.registry import PROTOCOLS

    (protocol,) = [p for p in PROTOCOLS.values() if p.command == command]
    fields = {f.name for f in dataclasses.fields(protocol.request)}
    fields |= {f.name for f in dataclasses.fields(ModelOptions)}
    fields |= {f.name for f in dataclasses.fields(DataOptions)}
    parser = command_parser(build_parser(command), command)
    dests = {a.dest for a in parser._actions}
    assert dests - fields - RUN_OPTIONS == set()
