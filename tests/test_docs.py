"""The documentation cannot drift from the code: every Python block of the README and of
every docs page runs verbatim (in the order a reader meets them, on tiny data this test
writes at the paths they name); the site builds with ``mkdocs build --strict`` (broken
links, missing references, docstring warnings fail); the README stays short; the version
is one and the same everywhere."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from fixtures_formats import write_cifar_batches

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
#: Pages with Python blocks, in reading order (one namespace: later blocks use earlier names).
PAGES = ["cli.md", "tutorials/python-api.md", "tutorials/stability-card.md",
         "tutorials/worst-cases.md",
         "tutorials/translations.md", "tutorials/shift-invariance.md"]  # fmt: skip


def blocks(path: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(), flags=re.S)


def test_every_page_with_python_is_run():
    having = sorted(str(p.relative_to(DOCS)) for p in DOCS.rglob("*.md") if blocks(p))
    assert having == sorted(PAGES)
    assert len(blocks(README)) >= 1


@pytest.mark.slow
def test_python_blocks_run_verbatim(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_cifar_batches(tmp_path / "cifar-10-batches-py", n_per_batch=8)
    for i, block in enumerate(blocks(README)):  # the README's tour stands alone
        exec(compile(block, f"README.md python block {i + 1}", "exec"), {"__name__": "docs"})
    namespace: dict = {"__name__": "docs"}
    for page in PAGES:
        for i, block in enumerate(blocks(DOCS / page)):
            exec(compile(block, f"docs/{page} python block {i + 1}", "exec"), namespace)
    # what the examples claim, checked on what they produced
    res = namespace["res"]
    assert len(res.layers) == 13 and res.relative_stability.shape == (13,)
    assert (tmp_path / "sensitivity.csv").exists() and (tmp_path / "results" / "pooling").is_dir()
    assert set(namespace["path"].summary()) >= {"p_top1_change", "mac", "consistency"}
    assert namespace["circular"].summary()["consistency"] == 1.0
    assert (namespace["worst"]["shifts"], namespace["worst"]["robust_accuracy"]) == (961, 1.0)
    outcome = namespace["outcome"]  # defstab.run: its folder, its shards, its metrics
    assert (tmp_path / "m" / "sensitivity.csv").exists() and outcome.request.images == 8
    assert len(list((tmp_path / "m" / "shards").glob("shard-*-of-2.pt"))) == 2
    assert outcome.metrics[0].direction == "lower" and outcome.normalization.name == "cifar10"
    card = namespace["card"]  # defstab bench from Python
    assert (tmp_path / "card" / "bench.json").exists() and card.images == 8


#: ``mkdocs`` run with the heavy libraries unimportable (an import of one fails the build)
WITHOUT_TORCH = """
import runpy, sys
HEAVY = ("torch", "torchvision", "timm", "matplotlib")
class Refuse:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in HEAVY:
            raise ImportError(f"the docs build imported {name}")
sys.meta_path.insert(0, Refuse())
sys.argv = ["mkdocs", *sys.argv[1:]]
runpy.run_module("mkdocs", run_name="__main__")
"""


@pytest.mark.slow
def test_docs_build_strictly(tmp_path):
    """``mkdocs build --strict``: the CLI reference generated from the parsers, the API
    from the docstrings; a warning (a broken link, a bad reference) fails."""
    pytest.importorskip("mkdocs", reason="the docs extra: pip install -e '.[docs]'")
    site = tmp_path / "site"
    # with torch, torchvision, timm and matplotlib unimportable: the docs need none of them
    run = subprocess.run(
        [sys.executable, "-c", WITHOUT_TORCH, "build", "--strict", "-d", str(site)],
        cwd=ROOT, capture_output=True, text=True,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    assert "MkDocs 2.0" not in run.stderr and "end of life" not in run.stderr  # pinned tools
    cli = (site / "reference" / "cli.html").read_text()
    assert all(f"defstab {name}" in cli for name in ("measure", "translate", "experiment"))
    assert "--normalizer" in cli  # an option added lately is there: generated, not copied
    api = (site / "reference" / "api.html").read_text()
    assert "measure_sensitivity" in api and "median_interval_ranks" in api
    # the docstrings' Sphinx roles became links (or code), none is shown raw
    assert not re.search(r":(class|func|meth|mod|data):<code>", api)
    assert 'href="#defstab.data.stream.DatasetImages"><code>DatasetImages</code>' in api
    assert "Unreleased" in (site / "changelog.html").read_text()


def test_readme_is_short_and_points_to_the_docs():
    text = README.read_text()
    assert len(text.splitlines()) <= 200
    for link in re.findall(r"\]\(((?:docs/|CHANGELOG)[^)#]*)", text):
        assert (ROOT / link).exists(), link


def test_one_version_everywhere(tmp_path):
    """defstab.__version__ is the one place: the CLI, the package metadata, the changelog's
    latest release and config.json agree with it."""
    from importlib.metadata import version

    import defstab
    from defstab.cli.main import main

    assert version("defstab") == defstab.__version__
    out = subprocess.run([sys.executable, "-m", "defstab", "--version"], capture_output=True,
                         text=True, check=True).stdout  # fmt: skip
    assert out.strip() == f"defstab {defstab.__version__}"
    released = re.findall(r"^## \[(\d[^\]]*)\]", (ROOT / "CHANGELOG.md").read_text(), re.M)
    assert released[0] == defstab.__version__
    assert main(["smoothness", "--model", "vgg_cifar_maxpool", "--width", "0.25", "--out",
                 str(tmp_path / "s")]) == 0  # fmt: skip
    config = json.loads((tmp_path / "s" / "config.json").read_text())
    assert config["versions"]["defstab"] == defstab.__version__


def _pins(path: Path) -> dict[str, str]:
    lines = [ln.split("#")[0].strip() for ln in path.read_text().splitlines()]
    return dict(re.split(r"===?", ln, maxsplit=1) for ln in lines if ln)


def test_install_commands_agree():
    """CI runs the README's test command; the demo command uses the same constraints; the
    CPU-only constraints pin the same versions as CPU builds."""
    root = README.parent
    text = README.read_text()
    test_command = (
        'scripts/install-chromium; pip install -e ".[test,docs]" -c constraints.txt '
        "&& python -m pytest"
    )
    assert f"    {test_command}\n" in text
    assert test_command in (root / ".ci" / "run").read_text()
    assert "pip install -e . -c constraints.txt && defstab demo" in text
    plain, cpu = _pins(root / "constraints.txt"), _pins(root / "constraints-cpu.txt")
    assert set(cpu) == {"torch", "torchvision"}
    assert all(cpu[name] == f"{plain[name]}+cpu" for name in cpu)
    # the docs tools are pinned too (the CI's docs build and browser test use them), and
    # the docs-only install (no torch) names nothing else
    assert {"mkdocs", "mkdocs-material", "mkdocstrings-python"} <= set(plain)
    tools = [ln.split("#")[0].strip() for ln in (root / "docs" / "requirements.txt").open()]
    assert {re.sub(r"\[.*\]", "", t) for t in tools if t} <= set(plain)
    assert "pip install -r docs/requirements.txt -c constraints.txt" in text
