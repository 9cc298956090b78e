"""Writers for small files in the real formats (tests write their own data)."""

from __future__ import annotations

import gzip
import pickle
import struct
from pathlib import Path

import numpy as np
from PIL import Image


def write_cifar_batches(root: Path, n_per_batch: int = 6, seed: int = 0) -> np.ndarray:
    """data_batch_1..5 and test_batch as CIFAR-10's python pickles; returns test pixels."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    test = None
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = rng.integers(0, 256, (n_per_batch, 3072), dtype=np.uint8)
        labels = list(rng.integers(0, 10, n_per_batch))
        with open(root / name, "wb") as f:
            pickle.dump({b"data": data, b"labels": [int(v) for v in labels]}, f)
        if name == "test_batch":
            test = (data, labels)
    return test


def write_idx(path: Path, array: np.ndarray, gz: bool = False) -> Path:
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    raw = header + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(raw) if gz else raw)
    return path


def write_mnist(root: Path, n: int = 20, seed: int = 0, gz: bool = True):
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, n, dtype=np.uint8)
    sfx = ".gz" if gz else ""
    write_idx(root / f"t10k-images-idx3-ubyte{sfx}", images, gz)
    write_idx(root / f"t10k-labels-idx1-ubyte{sfx}", labels, gz)
    return images, labels


def write_image_folder(
    root: Path, classes=("cat", "dog", "emu"), per_class=4, size=(40, 36), seed=0
):
    rng = np.random.default_rng(seed)
    for c in classes:
        (root / c).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            arr = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
            Image.fromarray(arr).save(root / c / f"{i:03d}.png")
    return root


def write_train_test_tree(root: Path, per_class: int = 2, size=(32, 32)) -> Path:
    """``root/train/<class>/`` and ``root/test/<class>/`` image folders, as ``defstab
    train --data folder:ROOT`` reads them; returns ``root``."""
    for split in ("train", "test"):
        write_image_folder(root / split, per_class=per_class, size=size)
    return root
