"""Shared fixtures: real data from ../shared/data when present (skipped when absent)."""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest
import torch

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is absent")
    return SHARED_DATA


def _unpack(archive: Path, dest: Path) -> Path:
    if not archive.is_file():
        pytest.skip(f"{archive} is absent")
    with tarfile.open(archive) as tar:
        tar.extractall(dest, filter="data")
    return dest


@pytest.fixture(scope="session")
def imagenet_samples(shared_data, tmp_path_factory) -> Path:
    """The 1,000 ImageNet samples, unpacked once per test session."""
    dest = _unpack(shared_data / "imagenet-samples.tar", tmp_path_factory.mktemp("imnet"))
    return dest / "imagenet-samples" / "val"


@pytest.fixture(scope="session")
def cifar10_jpeg(shared_data, tmp_path_factory) -> Path:
    """The CIFAR-10 JPEG ImageFolder tree (train/ and test/), unpacked once."""
    dest = _unpack(shared_data / "cifar10-jpeg.tar.xz", tmp_path_factory.mktemp("cifar"))
    return dest / "cifar10-jpeg"


@pytest.fixture
def gen() -> torch.Generator:
    return torch.Generator().manual_seed(1234)


@pytest.fixture
def tiny_cifar(tmp_path) -> str:
    """A data spec of CIFAR-10 python batches written under tmp_path (8 images a batch)."""
    from fixtures_formats import write_cifar_batches

    write_cifar_batches(tmp_path / "cifar", n_per_batch=8)
    return f"cifar10:{tmp_path / 'cifar'}"
