"""A result folder holds one complete result or none: a failed rerun leaves the previous
result byte for byte, a folder of another command is refused, storage refusals without an
errno (torch's zip writer) are one sentence, and resume files survive the swap."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from defstab.cli.main import main
from defstab.io.result_folder import staged_folder
from fixtures_formats import write_image_folder

LIMITED = """
import resource, sys
resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}))
from defstab.cli.main import main
sys.exit(main({argv!r}))
"""


def _limited(argv, cwd, limit):
    """The CLI in a child process whose files may not exceed ``limit`` bytes."""
    code = LIMITED.format(limit=limit, argv=[str(a) for a in argv])
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=cwd)


def _snapshot(folder):
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("rf")
    return f"folder:{write_image_folder(root / 'imgs', per_class=2, size=(32, 32))}"


def _perturb(data, out, seed):
    return ["perturb", "--model", "vgg_cifar_maxpool", "--width", "0.125", "--data", data,
            "--images", "2", "--preset", "cifar-p", "--perturbations", "translate",
            "--seed", str(seed), "--quiet", "--out", str(out)]  # fmt: skip


def test_a_rerun_that_fails_at_a_write_leaves_the_previous_result(data, tmp_path):
    out = tmp_path / "p"
    assert main(_perturb(data, out, seed=0)) == 0
    before = _snapshot(out)
    assert {"config.json", "section.json", "summary.csv"} <= {str(p) for p in before}
    # other settings; the figure (tens of kB) exceeds the limit, the tables do not
    failed = _limited(_perturb(data, out, seed=1), tmp_path, limit=8_000)
    assert failed.returncode == 2, failed.stderr[-2000:]
    line = failed.stderr.strip().splitlines()[-1]
    assert "could not write" in line and "EFBIG" in line and "Traceback" not in failed.stderr
    assert _snapshot(out) == before  # not one new table beside the old settings
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p"]  # no staging left behind
    # and without the limit the rerun replaces the whole result
    assert main(_perturb(data, out, seed=1)) == 0
    assert (
        _snapshot(out)[next(p for p in before if str(p) == "config.json")]
        != before[next(p for p in before if str(p) == "config.json")]
    )


def test_a_folder_of_another_command_is_refused(data, tmp_path, capsys):
    out = tmp_path / "p"
    assert main(_perturb(data, out, seed=0)) == 0
    before = _snapshot(out)
    argv = ["measure", "--model", "vgg_cifar_maxpool", "--width", "0.125", "--data", data,
            "--images", "4", "--quiet", "--out", str(out)]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "holds a result of 'defstab perturb'" in err and err.count("\n") == 1
    assert _snapshot(out) == before


def test_a_shard_refused_for_size_is_one_sentence(data, tmp_path):
    argv = ["measure", "--model", "vgg_cifar_maxpool", "--width", "0.125", "--data", data,
            "--images", "4", "--batch-size", "2", "--no-noise", "--quiet", "--shard", "0/2",
            "--out", "m"]  # fmt: skip
    failed = _limited(argv, tmp_path, limit=2_000)  # a shard file is larger
    assert failed.returncode == 2, failed.stderr[-2000:]
    lines = failed.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in failed.stderr, failed.stderr[-2000:]
    assert "m/shards/shard-0-of-2.pt" in lines[0] and "EFBIG" in lines[0]


def test_shards_are_resume_files_kept_across_the_swap(data, tmp_path):
    out = tmp_path / "m"
    argv = ["measure", "--model", "vgg_cifar_maxpool", "--width", "0.125", "--data", data,
            "--images", "4", "--batch-size", "2", "--no-noise", "--quiet", "--shards", "2",
            "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    shards = sorted(p.name for p in (out / "shards").iterdir())
    assert shards == ["shard-0-of-2.pt", "shard-1-of-2.pt"]
    table = (out / "sensitivity.csv").read_bytes()
    assert main(argv) == 0  # the rerun merges the kept shards into the same table
    assert (out / "sensitivity.csv").read_bytes() == table
    assert sorted(p.name for p in (out / "shards").iterdir()) == shards


def test_staging_swaps_whole_and_cleans_up(tmp_path):
    final = tmp_path / "r"
    final.mkdir()
    (final / "old.csv").write_text("old")
    (final / "keep").mkdir()
    (final / "keep" / "part").write_text("resume")
    dead = tmp_path / ".r.staging-999999999"  # a killed run's staging (no such process)
    dead.mkdir()
    with pytest.raises(RuntimeError), staged_folder(final, keep=("keep",)) as stage:
        (stage / "new.csv").write_text("new")
        raise RuntimeError("the run failed")
    assert sorted(p.name for p in final.iterdir()) == ["keep", "old.csv"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r"]  # both stagings gone
    with staged_folder(final, keep=("keep",)) as stage:
        assert stage.parent == final.parent and stage != final and not any(stage.iterdir())
        (stage / "new.csv").write_text("new")
        assert (final / "old.csv").exists()  # the old result stays until the swap
    assert sorted(p.name for p in final.iterdir()) == ["keep", "new.csv"]
    assert (final / "keep" / "part").read_text() == "resume"
    assert sorted(os.listdir(tmp_path)) == ["r"]
    deep = tmp_path / "a" / "b" / "r"  # folders made for a run that fails are removed
    with pytest.raises(RuntimeError), staged_folder(deep):
        raise RuntimeError("the run failed")
    assert sorted(os.listdir(tmp_path)) == ["r"]


def test_more_shards_than_chunks_is_refused_before_loading(capsys):
    argv = ["measure", "--model", "no_such_model", "--data", "cifar10:/nonexistent",
            "--images", "8", "--shards", "2", "--out", "/nonexistent/m"]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "--shards 2 needs 2 chunks" in err and "--batch-size 4 or fewer" in err


def test_a_killed_runs_staging_folder_is_not_reported(data, tmp_path):
    results = tmp_path / "results"
    assert main(_perturb(data, results / "p", seed=0)) == 0
    killed = results / ".m.staging-999999999"  # what a killed measure leaves behind
    killed.mkdir()
    (killed / "section.json").write_text((results / "p" / "section.json").read_text())
    (killed / "config.json").write_text((results / "p" / "config.json").read_text())
    report = tmp_path / "report.html"
    assert main(["report", str(results), "-o", str(report)]) == 0
    assert report.read_text().count("<h2>") == 1
