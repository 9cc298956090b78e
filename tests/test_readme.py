"""The README's Python examples run verbatim, in order, on tiny data this test writes at
the paths they name: the README cannot drift from the code."""

import re
from pathlib import Path

import pytest

from fixtures_formats import write_cifar_batches

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_has_python_examples():
    assert len(BLOCKS) >= 3


@pytest.mark.slow
def test_readme_python_examples_run_verbatim(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_cifar_batches(tmp_path / "cifar-10-batches-py", n_per_batch=8)
    namespace: dict = {"__name__": "readme"}
    for i, block in enumerate(BLOCKS):
        exec(compile(block, f"README.md python block {i + 1}", "exec"), namespace)
    # what the examples claim, checked on what they produced
    res = namespace["res"]
    assert len(res.layers) == 13 and res.relative_stability.shape == (13,)
    assert (tmp_path / "sensitivity.csv").exists() and (tmp_path / "results" / "pooling").is_dir()
    assert set(namespace["path"].summary()) >= {"p_top1_change", "mac", "consistency"}


def _pins(path: Path) -> dict[str, str]:
    lines = [ln.split("#")[0].strip() for ln in path.read_text().splitlines()]
    return dict(ln.split("===") for ln in lines if ln)


def test_install_commands_agree():
    """CI runs the README's test command; the demo command uses the same constraints; the
    CPU-only constraints pin the same versions as CPU builds."""
    root = README.parent
    text = README.read_text()
    test_command = 'pip install -e ".[test]" -c constraints.txt && python -m pytest'
    assert f"    {test_command}\n" in text
    assert test_command in (root / ".ci" / "run").read_text()
    assert "pip install -e . -c constraints.txt && defstab demo" in text
    plain, cpu = _pins(root / "constraints.txt"), _pins(root / "constraints-cpu.txt")
    assert set(plain) == {"torch", "torchvision"} == set(cpu)
    assert all(cpu[name] == f"{version}+cpu" for name, version in plain.items())
