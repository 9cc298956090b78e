"""Each data source on small files written here in the real formats."""

import pickle

import numpy as np
import pytest
import torch

from defstab.data.sources import load_data, read_idx
from fixtures_formats import write_cifar_batches, write_idx, write_image_folder, write_mnist


def test_cifar10_batches(tmp_path):
    data, labels = write_cifar_batches(tmp_path / "cifar-10-batches-py")
    ds = load_data(f"cifar10:{tmp_path}")
    assert len(ds) == 6 and ds.labels.tolist() == labels
    x = ds.images([2])
    expected = torch.from_numpy(data[2].reshape(3, 32, 32)).float() / 255
    torch.testing.assert_close(x[0], expected)
    assert len(load_data(f"cifar10:{tmp_path}", split="train")) == 30


def test_cifar10_pickle_cannot_run_code(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    (tmp_path / "test_batch").write_bytes(pickle.dumps({b"data": Evil(), b"labels": []}))
    with pytest.raises(ValueError, match="refusing to load builtins.print"):
        load_data(f"cifar10:{tmp_path}")


def test_cifar10_jpeg_folder_layout(tmp_path):
    write_image_folder(tmp_path / "test", classes=("airplane", "automobile"), size=(32, 32))
    ds = load_data(f"cifar10:{tmp_path}")
    assert len(ds) == 8 and ds.classes == ["airplane", "automobile"]
    assert ds.images([0]).shape == (1, 3, 32, 32)


@pytest.mark.parametrize("gz", [True, False])
def test_mnist_idx(tmp_path, gz):
    images, labels = write_mnist(tmp_path, gz=gz)
    ds = load_data(f"mnist:{tmp_path}")
    assert ds.labels.tolist() == labels.tolist()
    torch.testing.assert_close(ds.images([3])[0, 0], torch.from_numpy(images[3]).float() / 255)


def test_idx_errors(tmp_path):
    bad = tmp_path / "bad"
    bad.write_bytes(b"\x00\x00\x09\x01\x00\x00\x00\x02ab")
    with pytest.raises(ValueError, match="magic"):
        read_idx(bad)
    short = write_idx(tmp_path / "short", np.zeros((4, 2), np.uint8))
    short.write_bytes(short.read_bytes()[:-3])
    with pytest.raises(ValueError, match="truncated"):
        read_idx(short)


def test_image_folder_sorted_classes_and_sampling(tmp_path):
    write_image_folder(tmp_path, classes=("zebra", "ant", "moth"))
    ds = load_data(f"folder:{tmp_path}", image_size=24)
    assert ds.classes == ["ant", "moth", "zebra"]
    assert ds.labels.tolist() == [0] * 4 + [1] * 4 + [2] * 4
    x1, y1, i1 = ds.sample(5, torch.Generator().manual_seed(0))
    x2, y2, i2 = ds.sample(5, torch.Generator().manual_seed(0))
    assert x1.shape == (5, 3, 24, 24) and torch.equal(x1, x2) and torch.equal(i1, i2)
    assert len(set(i1.tolist())) == 5
    with pytest.raises(ValueError, match="only 12"):
        ds.sample(13)


def test_tensor_files(tmp_path):
    x = torch.rand(5, 1, 8, 8)
    torch.save({"images": x, "labels": torch.arange(5)}, tmp_path / "d.pt")
    ds = load_data(str(tmp_path / "d.pt"))
    assert ds.labels.tolist() == [0, 1, 2, 3, 4]
    assert torch.equal(ds.images([1]), x[1:2])  # float images are kept, never rounded
    eight_bit = (x.numpy() * 255).astype(np.uint8)
    np.save(tmp_path / "d.npy", eight_bit)
    torch.testing.assert_close(
        load_data(str(tmp_path / "d.npy")).images([0]),
        torch.from_numpy(eight_bit[:1]).float() / 255,
        atol=0,
        rtol=0,
    )
    torch.save(torch.rand(3, 8, 8), tmp_path / "bad.pt")
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        load_data(str(tmp_path / "bad.pt"))
    (tmp_path / "corrupt.pt").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="cannot read"):
        load_data(str(tmp_path / "corrupt.pt"))


@pytest.mark.parametrize(
    "spec,err",
    [
        ("imagenet:/x", ValueError),
        ("folder:/nonexistent", FileNotFoundError),
        ("mnist:/nonexistent", FileNotFoundError),
    ],
)
def test_bad_specs(spec, err):
    with pytest.raises(err):
        load_data(spec)


def test_real_mnist_test_set(shared_data):
    ds = load_data(f"mnist:{shared_data / 'mnist'}")
    assert len(ds) == 10000 and ds.labels[:5].tolist() == [7, 2, 1, 0, 4]
