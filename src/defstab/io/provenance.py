"""What produced a result: library versions, git revision, machine."""

from __future__ import annotations

import platform
import subprocess
from pathlib import Path


def versions() -> dict[str, str]:
    import numpy
    import torch

    import defstab

    out = {
        "defstab": defstab.__version__,
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
    try:
        import torchvision

        out["torchvision"] = torchvision.__version__
    except Exception:  # torchvision is optional at run time
        pass
    rev = git_revision()
    if rev:
        out["git_revision"] = rev
    return out


def source_checkout() -> Path | None:
    """The root of the defstab source checkout this module runs from, or None.

    Only an editable install runs from ``ROOT/src/defstab``; an installed copy lives in
    site-packages, whose parent folders may belong to any other repository.
    """
    package = Path(__file__).resolve().parents[1]
    root = package.parents[1]
    if package.parent.name != "src" or not (root / "pyproject.toml").is_file():
        return None
    if 'name = "defstab"' not in (root / "pyproject.toml").read_text(errors="replace"):
        return None
    return root


def _git(root: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(root), *args], capture_output=True, text=True, timeout=5, check=True
    ).stdout.strip()


def git_revision() -> str | None:
    """The defstab checkout's commit (with "-dirty" when modified), if it is one."""
    root = source_checkout()
    if root is None:
        return None
    try:
        if Path(_git(root, "rev-parse", "--show-toplevel")).resolve() != root:
            return None  # the checkout sits inside another repository without its own .git
        rev = _git(root, "rev-parse", "HEAD")
        dirty = _git(root, "status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return None
    return rev + ("-dirty" if dirty else "")
