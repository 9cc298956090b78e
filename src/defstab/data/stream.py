"""Images delivered chunk by chunk in a chosen order, so that a measurement over a whole
data set never holds more than one chunk of them.

Two sources share one interface (``len``, ``image_shape``, ``batches``, ``skipped``):

* :class:`TensorImages`: an (N, C, H, W) tensor already in memory;
* :class:`DatasetImages`: items of an :class:`~defstab.data.sources.ImageDataset`, read
  by loader worker processes when they are files. An unreadable or corrupt file is
  skipped, its path and reason kept in ``skipped``, never a crash at image 49,000.

``batches(order, batch_size, start, stop)`` walks positions [start, stop) of ``order``
(item indices in processing order) in chunks of ``batch_size`` consecutive positions and
yields ``(positions, images)``: the (b,) positions whose images could be read, ascending,
and their (b, C, H, W) float32 images in [0, 1]. Chunk boundaries depend only on
``start`` and ``batch_size``, never on which images were skipped.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import torch


class TensorImages:
    """An in-memory (N, C, H, W) tensor as a source."""

    #: every position is delivered: chunk k is positions [start + k·b, start + (k+1)·b)
    complete = True

    def __init__(self, images: torch.Tensor):
        self.images = images
        self.skipped: list[dict] = []

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def image_shape(self) -> tuple[int, ...]:
        return tuple(self.images.shape[1:])

    def batches(
        self, order: torch.Tensor | None, batch_size: int, start: int = 0, stop: int | None = None
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        stop = len(self) if stop is None else stop
        for p0 in range(start, stop, batch_size):
            p1 = min(p0 + batch_size, stop)
            rows = slice(p0, p1) if order is None else order[p0:p1]
            yield torch.arange(p0, p1), self.images[rows]


class MappedImages:
    """A source whose chunks pass through ``fn`` (e.g. a resize) as they are read."""

    def __init__(self, source, fn, image_shape: tuple[int, ...]):
        self.source, self.fn, self._shape = source, fn, tuple(image_shape)

    def __len__(self) -> int:
        return len(self.source)

    @property
    def complete(self) -> bool:
        return getattr(self.source, "complete", False)

    @property
    def image_shape(self) -> tuple[int, ...]:
        return self._shape

    @property
    def skipped(self) -> list[dict]:
        return self.source.skipped

    def batches(self, order, batch_size, start=0, stop=None):
        for positions, x in self.source.batches(order, batch_size, start, stop):
            yield positions, self.fn(x)


class _Positions(torch.utils.data.Dataset):
    """Position p → (p, image or None, reason): one file read, errors caught per image."""

    def __init__(self, data, order: torch.Tensor):
        self.data, self.order = data, order

    def __len__(self) -> int:
        return len(self.order)

    def __getitem__(self, p: int):
        try:
            return p, self.data.images([int(self.order[p])])[0], None
        except (OSError, ValueError) as e:  # read_image turns Pillow's errors into ValueError
            return p, None, str(e)


@dataclass
class PaddedImages:
    """Images of different sizes in one canvas: image i fills the top-left ``sizes[i]``
    (rows, columns) of ``canvas[i]``, zeros elsewhere.

    Attributes:
        canvas: (N, C, H_max, W_max) float32.
        sizes: (N, 2) int64 (h, w) of each image.
    """

    canvas: torch.Tensor
    sizes: torch.Tensor

    def __len__(self) -> int:
        return int(self.canvas.shape[0])

    @classmethod
    def of(cls, images: list[torch.Tensor]) -> PaddedImages:
        h = max(x.shape[-2] for x in images)
        w = max(x.shape[-1] for x in images)
        canvas = images[0].new_zeros(len(images), images[0].shape[0], h, w)
        for i, x in enumerate(images):  # a copy per image of a chunk, as a stack does
            canvas[i, :, : x.shape[-2], : x.shape[-1]] = x
        return cls(canvas, torch.tensor([list(x.shape[-2:]) for x in images]))


def _collate(items):
    ok = [(p, x) for p, x, _ in items if x is not None]
    failed = [(p, why) for p, x, why in items if x is None]
    if ok:
        positions = torch.tensor([p for p, _ in ok])
        shapes = {tuple(x.shape) for _, x in ok}
        if len(shapes) > 1:  # a keep-aspect data set: the images differ in size
            return positions, PaddedImages.of([x for _, x in ok]), failed
        images = torch.stack([x for _, x in ok])
    else:
        positions, images = torch.zeros(0, dtype=torch.long), None
    return positions, images, failed


class DatasetImages:
    """Items ``indices`` of an :class:`~defstab.data.sources.ImageDataset` as a source.

    Args:
        data: the data set (pixels in memory, or image files).
        indices: (N,) item indices of ``data``; item i of this source is data[indices[i]].
        workers: loader processes reading files (0: read in this process; at most one
            per core and per chunk are started). Pixels held in memory are sliced
            directly whatever this is.
    """

    def __init__(self, data, indices, workers: int = 0):
        if workers < 0:
            raise ValueError(f"workers must be ≥ 0, got {workers}.")
        self.data = data
        self.indices = torch.as_tensor(indices, dtype=torch.long)
        self.workers = workers
        self._skipped: dict[int, dict] = {}  # by item: a second pass over the images adds none
        self._shape = None

    def __len__(self) -> int:
        return int(self.indices.shape[0])

    @property
    def complete(self) -> bool:
        """Pixels in memory: nothing can be skipped (files may be unreadable)."""
        return self.data.paths is None

    @property
    def skipped(self) -> list[dict]:
        """Unreadable images so far, by item: {"item", "path", "reason"}."""
        return [self._skipped[i] for i in sorted(self._skipped)]

    @property
    def image_shape(self) -> tuple[int, ...]:
        """(C, H, W) of the first readable image."""
        if self._shape is None:
            for i in self.indices.tolist():
                try:
                    self._shape = tuple(self.data.images([i]).shape[1:])
                    break
                except (OSError, ValueError):
                    continue
            else:
                raise ValueError(f"none of the {len(self)} images of {self.data.name} is readable.")
        return self._shape

    def batches(
        self, order: torch.Tensor | None, batch_size: int, start: int = 0, stop: int | None = None
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        stop = len(self) if stop is None else stop
        order = torch.arange(len(self)) if order is None else order
        items = self.indices[order]
        if self.data.paths is None:  # pixels in memory: a slice per chunk, nothing to skip
            for p0 in range(start, stop, batch_size):
                p1 = min(p0 + batch_size, stop)
                yield torch.arange(p0, p1), self.data.images(items[p0:p1])
            return
        starts = range(start, stop, batch_size)
        chunks = [list(range(p0, min(p0 + batch_size, stop))) for p0 in starts]
        # more readers than cores or chunks only costs memory (each is a forked process)
        workers = min(self.workers, os.cpu_count() or 1, len(chunks))
        loader = torch.utils.data.DataLoader(
            _Positions(self.data, items),
            batch_sampler=chunks,
            num_workers=workers,
            collate_fn=_collate,
            persistent_workers=False,
        )
        for positions, images, failed in loader:
            for p, why in failed:
                item = int(order[p])
                path = str(self.data.paths[int(self.indices[item])])
                self._skipped[item] = {"item": item, "path": path, "reason": why}
            if images is not None:
                yield positions, images
