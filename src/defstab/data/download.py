"""Downloads, only when asked for explicitly (``--download``): torchvision fetches the
official files into ROOT in the layouts our readers take (``cifar-10-batches-py/``,
``MNIST/raw/``). Nothing in defstab downloads otherwise."""

from __future__ import annotations

from pathlib import Path


def download(kind: str, root: str | Path) -> Path:
    """Fetch CIFAR-10 or MNIST (train and test) into ``root``; returns ``root``."""
    import torchvision.datasets as tvd

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    if kind == "cifar10":
        for train in (True, False):
            tvd.CIFAR10(str(root), train=train, download=True)
    elif kind == "mnist":
        for train in (True, False):
            tvd.MNIST(str(root), train=train, download=True)
    else:
        raise ValueError(f"only cifar10 and mnist can be downloaded, not {kind!r}.")
    return root
