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


def git_revision() -> str | None:
    """The defstab checkout's commit (with "-dirty" when modified), if it is one."""
    root = Path(__file__).resolve().parents[3]
    try:
        rev = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return rev + ("-dirty" if dirty else "")
