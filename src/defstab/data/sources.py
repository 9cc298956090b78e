"""Readers for CIFAR-10 (pickled batches or JPEG folders), MNIST (IDX), ImageFolder
trees and tensor files, behind one ``--data`` syntax.

DATA forms: ``folder:PATH``, ``cifar10:PATH``, ``mnist:PATH``, ``PATH.pt``, ``PATH.npy``.
Images come out as float32 in [0, 1], (N, C, H, W).
"""

from __future__ import annotations

import contextlib
import copy
import gzip
import pickle
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from defstab.io.images import read_image

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".gif", ".tif", ".tiff", ".webp"}
CIFAR10_CLASSES = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
]


@dataclass
class ImageDataset:
    """Images held as a tensor (N, C, H, W) — uint8, or float32 in [0, 1] as a tensor file
    gave them, never rounded — or as file paths read on demand.

    Attributes:
        labels: (N,) int64 class indices.
        classes: class names, index = label.
        name: where it came from (for reports).
        image_size: for file-backed sets, short side resized and centre-cropped to this.
        keep_aspect: file-backed sets: short side resized to ``image_size``, no crop
            (images then differ in size; :class:`~defstab.data.stream.DatasetImages`
            delivers them as a :class:`~defstab.data.stream.PaddedImages` canvas).
    """

    labels: torch.Tensor
    classes: list[str]
    name: str
    pixels: torch.Tensor | None = None
    paths: list[Path] | None = None
    image_size: int | None = None
    keep_aspect: bool = False

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def channels(self) -> int:
        if self.pixels is not None:
            return int(self.pixels.shape[1])
        return 3

    def images(self, indices) -> torch.Tensor:
        """(len(indices), C, H, W) float32 in [0, 1]."""
        idx = torch.as_tensor(indices, dtype=torch.long)
        if self.pixels is not None:
            if self.pixels.is_floating_point():
                return self.pixels[idx].float()
            return self.pixels[idx].float().div_(255.0)
        crop = not self.keep_aspect
        out = [read_image(self.paths[i], self.image_size, crop) for i in idx.tolist()]
        shapes = {tuple(t.shape) for t in out}
        if len(shapes) > 1:
            raise ValueError(
                f"images in {self.name} differ in size {sorted(shapes)[:3]}; "
                "give an image size to resize them alike."
            )
        return torch.stack(out)

    def sample(self, n: int, generator: torch.Generator | None = None):
        """``n`` distinct images in a seeded random order: (images, labels, indices)."""
        idx = self.draw(n, generator)
        return self.images(idx), self.labels[idx], idx

    def draw(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """The (n,) indices :meth:`sample` would read, none read: a stream's images."""
        if n < 1:
            raise ValueError(f"the number of images must be positive, got {n}.")
        if n > len(self):
            raise ValueError(f"asked for {n} images but {self.name} has only {len(self)}.")
        return torch.randperm(len(self), generator=generator)[:n]

    def subset(self, indices) -> ImageDataset:
        idx = torch.as_tensor(indices, dtype=torch.long)
        return ImageDataset(
            labels=self.labels[idx],
            classes=self.classes,
            name=self.name,
            pixels=None if self.pixels is None else self.pixels[idx],
            paths=None if self.paths is None else [self.paths[i] for i in idx.tolist()],
            image_size=self.image_size,
            keep_aspect=self.keep_aspect,
        )


# ---------------------------------------------------------------- ImageFolder
def read_image_folder(root: str | Path, image_size: int | None = None) -> ImageDataset:
    """An ImageFolder tree: ``root/<class>/<image>``; class index = sorted folder names."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"image folder not found: {root}")
    classes = sorted(d.name for d in root.iterdir() if d.is_dir())
    if not classes:
        raise ValueError(f"{root} has no class folders (expected root/<class>/<image>).")
    paths, labels = [], []
    for label, cls in enumerate(classes):
        files = sorted(p for p in (root / cls).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        paths += files
        labels += [label] * len(files)
    if not paths:
        raise ValueError(f"{root} has class folders but no image files.")
    return ImageDataset(
        torch.tensor(labels), classes, f"folder:{root}", paths=paths, image_size=image_size
    )


# ---------------------------------------------------------------- CIFAR-10 pickles
class _SafeUnpickler(pickle.Unpickler):
    """Unpickles plain containers and numpy arrays only: a file cannot run code."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
    }

    def find_class(self, module, name):
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a data file")


def _read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        with open(path, "rb") as f:
            d = _SafeUnpickler(f, encoding="bytes").load()
        data = np.asarray(d[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
        labels = np.asarray(d[b"labels"], dtype=np.int64)
    except (pickle.UnpicklingError, KeyError, ValueError, EOFError, TypeError) as e:
        raise ValueError(f"{path} is not a CIFAR-10 batch ({e}).") from None
    return data, labels


def read_cifar10_batches(root: str | Path, split: str = "test") -> ImageDataset:
    """The official python batches (``data_batch_1..5``, ``test_batch``)."""
    root = Path(root)
    if (root / "cifar-10-batches-py").is_dir():
        root = root / "cifar-10-batches-py"
    names = ["test_batch"] if split == "test" else [f"data_batch_{i}" for i in range(1, 6)]
    missing = [n for n in names if not (root / n).is_file()]
    if missing:
        raise FileNotFoundError(f"CIFAR-10 batch files {missing} not found in {root}")
    parts = [_read_cifar_batch(root / n) for n in names]
    data = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    return ImageDataset(
        torch.from_numpy(labels),
        list(CIFAR10_CLASSES),
        f"cifar10:{root}:{split}",
        pixels=torch.from_numpy(data),
    )


def read_cifar10(root: str | Path, split: str = "test") -> ImageDataset:
    """CIFAR-10 from the official batches or the JPEG ImageFolder layout (root/<split>/<class>)."""
    root = Path(root)
    if not root.exists():
        raise FileNotFoundError(f"CIFAR-10 folder not found: {root}")
    if (root / "test_batch").is_file() or (root / "cifar-10-batches-py").is_dir():
        return read_cifar10_batches(root, split)
    for cand in (root / split, root / "cifar10-jpeg" / split):
        if cand.is_dir():
            ds = read_image_folder(cand)
            ds.name = f"cifar10-jpeg:{cand}"
            # keep only what fits in memory as uint8 (60k × 3 KB = 180 MB at most)
            ds.pixels = (ds.images(range(len(ds))) * 255).round().to(torch.uint8)
            ds.paths = None
            return ds
    raise FileNotFoundError(f"{root} holds neither CIFAR-10 batches nor a {split}/ image folder")


# ---------------------------------------------------------------- MNIST IDX
def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (optionally .gz): MNIST's format for images and labels."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"IDX file not found: {path}")
    raw = path.read_bytes()
    if path.suffix == ".gz":
        try:
            raw = gzip.decompress(raw)
        except OSError as e:
            raise ValueError(f"{path} is not a valid gzip file ({e}).") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise ValueError(f"{path} is not an unsigned-byte IDX file (bad magic number).")
    ndim = raw[3]
    dims = struct.unpack(f">{ndim}I", raw[4 : 4 + 4 * ndim])
    body = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(dims)):
        raise ValueError(f"{path} is truncated: header says {dims}, found {body.size} values.")
    return body.reshape(dims)


def _find(root: Path, stems: list[str]) -> Path:
    for stem in stems:
        for cand in (
            root / stem,
            root / f"{stem}.gz",
            root / "MNIST" / "raw" / stem,
            root / "MNIST" / "raw" / f"{stem}.gz",
        ):
            if cand.is_file():
                return cand
    raise FileNotFoundError(f"none of {stems} (or .gz) found in {root}")


def read_mnist(root: str | Path, split: str = "test") -> ImageDataset:
    root = Path(root)
    prefix = "t10k" if split == "test" else "train"
    images = read_idx(_find(root, [f"{prefix}-images-idx3-ubyte", f"{prefix}-images.idx3-ubyte"]))
    labels = read_idx(_find(root, [f"{prefix}-labels-idx1-ubyte", f"{prefix}-labels.idx1-ubyte"]))
    if images.ndim != 3 or labels.shape[0] != images.shape[0]:
        raise ValueError(
            f"MNIST files in {root} disagree: {images.shape} images, {labels.shape} labels."
        )
    return ImageDataset(
        torch.from_numpy(labels.astype(np.int64)),
        [str(i) for i in range(10)],
        f"mnist:{root}:{split}",
        pixels=torch.from_numpy(images.copy())[:, None],
    )


# ---------------------------------------------------------------- tensor files
def read_tensor_file(path: str | Path) -> ImageDataset:
    """A .pt (``torch.load(weights_only=True)``) or .npy (no pickle) file holding images
    (N, C, H, W) — uint8, or float in [0, 1] — or a dict with "images" and "labels"."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"tensor file not found: {path}")
    try:
        if path.suffix == ".npy":
            obj = torch.from_numpy(np.load(path, allow_pickle=False))
        else:
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # corrupt or unsafe files end here, whatever torch raises
        raise ValueError(
            f"cannot read {path} as a tensor file ({type(e).__name__}: {e})."
        ) from None
    labels = None
    if isinstance(obj, dict):
        if "images" not in obj:
            raise ValueError(f"{path} holds a dict without an 'images' entry.")
        labels, obj = obj.get("labels"), obj["images"]
    if not isinstance(obj, torch.Tensor) or obj.ndim != 4:
        shape = tuple(obj.shape) if isinstance(obj, torch.Tensor) else type(obj).__name__
        raise ValueError(f"{path} must hold images of shape (N, C, H, W), got {shape}.")
    if obj.shape[1] not in (1, 3) and obj.shape[-1] in (1, 3):
        raise ValueError(
            f"{path} holds images of shape {tuple(obj.shape)}, which looks like (N, H, W, C); "
            "save them as (N, C, H, W) (e.g. array.transpose(0, 3, 1, 2))."
        )
    if obj.dtype == torch.uint8:
        pixels = obj
    else:
        x = obj.float()
        if not bool(torch.isfinite(x).all()):
            raise ValueError(f"{path} contains NaN or infinite values.")
        if x.min() < 0 or x.max() > 1:
            raise ValueError(f"float images in {path} must lie in [0, 1].")
        pixels = x  # kept as given: rounding to 8 bits would change what is measured
    n = pixels.shape[0]
    labels = torch.zeros(n, dtype=torch.long) if labels is None else torch.as_tensor(labels).long()
    classes = [str(i) for i in range(int(labels.max()) + 1)]
    return ImageDataset(labels, classes, str(path), pixels=pixels)


#: while a :func:`shared_data` block runs: {(data, split, image size): the data set read}
_SHARED: dict | None = None


@contextlib.contextmanager
def shared_data():
    """Within the block, :func:`load_data` reads (and decodes) each data set once: every
    later call gets a shallow copy sharing its pixel tensor, so what one caller sets on
    its copy (``image_size``) is its own. ``defstab bench`` runs the protocols of a card
    in one block (a CIFAR-10 JPEG split is otherwise decoded again by each)."""
    global _SHARED
    outer = _SHARED
    _SHARED = {} if outer is None else outer
    try:
        yield
    finally:
        _SHARED = outer


def load_data(spec, split: str = "test", image_size: int | None = None) -> ImageDataset:
    """Read a DATA string or :class:`~defstab.data.spec.DataSpec` (not synthetic tasks:
    see :func:`defstab.data.splits.train_test_splits`)."""
    from defstab.data.spec import DataSpec

    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}.")
    data = DataSpec.parse(spec)
    if _SHARED is None:
        return _load(data, split, image_size)
    key = (data.text, split, image_size)
    if key not in _SHARED:
        _SHARED[key] = _load(data, split, image_size)
    return copy.copy(_SHARED[key])


def _load(data, split: str, image_size: int | None) -> ImageDataset:
    if data.kind == "folder":
        return read_image_folder(data.path, image_size)
    if data.kind == "cifar10":
        return read_cifar10(data.path, split)
    if data.kind == "mnist":
        return read_mnist(data.path, split)
    if data.kind == "tensor":
        return read_tensor_file(data.path)
    raise ValueError(f"{data.text} is a generated task: use it with 'train' or 'experiment'.")
