"""DataSpec and provenance: parsed once, recorded whole, honest about where code came from."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import defstab
from defstab.data.spec import DataSpec
from defstab.io.provenance import git_revision


@pytest.mark.parametrize(
    "text,kind,size,norm",
    [
        ("cifar10:/d", "cifar10", 32, "cifar10"),
        ("mnist:/d", "mnist", 28, "mnist"),
        ("folder:/d", "folder", None, "imagenet"),
        ("x/images.npy", "tensor", None, "none"),
        ("synthetic", "synthetic", 28, "none"),
        ("synthetic:3.5", "synthetic", 28, "none"),
    ],
)
def test_data_spec_parses_each_form(text, kind, size, norm):
    spec = DataSpec.parse(text)
    assert (spec.kind, spec.native_size, spec.normalization) == (kind, size, norm)
    assert DataSpec.parse(spec) is spec and str(spec) == text
    assert spec.record()["text"] == text


@pytest.mark.parametrize(
    "text,match",
    [
        ("imagenet:/x", "cannot tell"),
        ("synthetic:big", "a number C"),
        ("synthetic:0", "positive"),
        ("cifar10:", "needs a path"),
        ("", "non-empty"),
    ],
)
def test_data_spec_errors(text, match):
    with pytest.raises(ValueError, match=match):
        DataSpec.parse(text)


def test_official_cifar_is_told_from_jpeg_folders(tmp_path):
    (tmp_path / "test_batch").write_bytes(b"")
    assert DataSpec.parse(f"cifar10:{tmp_path}").is_official_cifar
    assert not DataSpec.parse(f"cifar10:{tmp_path / 'jpeg'}").is_official_cifar
    assert "JPEG" in DataSpec.parse(f"cifar10:{tmp_path / 'jpeg'}").caveats()[0]


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_git_revision_is_this_checkouts_or_none(tmp_path):
    package = Path(defstab.__file__).resolve().parent
    root = package.parents[1]
    if (root / ".git").exists():  # an editable install of a checkout: its own HEAD
        head = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True
        ).stdout.strip()
        assert git_revision().split("-")[0] == head
    # an installed copy inside some other repository reports no revision (it once reported
    # the other repository's commit)
    other = tmp_path / "other-repo"
    site = other / "venv" / "lib" / "site-packages"
    shutil.copytree(package, site / "defstab", ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run(["git", "init", "-q", str(other)], check=True)
    (other / "f").write_text("x")
    subprocess.run(["git", "-C", str(other), "add", "f"], check=True)
    subprocess.run(
        [
            "git",
            "-C",
            str(other),
            "-c",
            "user.name=a",
            "-c",
            "user.email=a@b",
            "commit",
            "-qm",
            "x",
        ],
        check=True,
    )
    code = "from defstab.io.provenance import git_revision; print(git_revision())"
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"},
        check=True,
    ).stdout.strip()
    assert out == "None"
