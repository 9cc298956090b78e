"""Downloads, only when asked for explicitly (``--download``): torchvision fetches the
official files into ROOT in the layouts our readers take (``cifar-10-batches-py/``,
``MNIST/raw/``). Nothing in defstab downloads otherwise."""

from __future__ import annotations

from pathlib import Path


def download(kind: str, root: str | Path) -> Path:
    """Fetch CIFAR-10 or MNIST (train and test) into ``root``; returns ``root``.

    A download that fails (no internet, a full disk) removes the folders it created, if
    they are still empty, so a failed command leaves nothing behind."""
    if kind not in ("cifar10", "mnist"):
        raise ValueError(f"only cifar10 and mnist can be downloaded, not {kind!r}.")
    import torchvision.datasets as tvd

    root = Path(root)
    created = [d for d in (root, *root.parents) if not d.exists()]
    root.mkdir(parents=True, exist_ok=True)
    reader = tvd.CIFAR10 if kind == "cifar10" else tvd.MNIST
    try:
        for train in (True, False):
            reader(str(root), train=train, download=True)
    except BaseException:
        for d in created:  # deepest first
            try:
                d.rmdir()
            except OSError:  # not empty (a partial download is torchvision's to resume)
                break
        raise
    return root
