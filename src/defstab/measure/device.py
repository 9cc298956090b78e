"""Keep a measurement's per-chunk work on the model's device: no host round trip per chunk.

On a GPU, every read of a device value on the host (``.item()``, ``.cpu()``, an ``if`` on a
tensor) and every blocking host-to-device copy waits for all the kernels queued before it,
so a loop that does one per layer per chunk runs at the pace of its round trips, not of the
card (the first GPU check measured 6.5× two bare forward passes on the CIFAR VGG). Here:

* :func:`to_device` copies host tensors through pinned memory without blocking;
* :class:`Chunk` is a chunk's place in the processing order in Python ints, so the loop
  never reads an index tensor on the host;
* :class:`PositionResults` holds per-image results on the device, written by slices, and
  copies them to the host once, at the end;
* :func:`device_budget` is the device memory a measurement may keep its undeformed
  representations in (``torch.cuda.mem_get_info``, or a number the caller gives).

On the CPU every one of these is the plain operation it replaces, so the numbers are the
same on either device and the CPU tests check the GPU's code path.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

#: Share of the free device memory a measurement keeps representations in by default: the
#: rest is for the network's activations of a chunk (2–4 copies of it) and the Gram blocks.
DEVICE_SHARE = 0.5


def device_budget(device: torch.device, override: int | None = None) -> int | None:
    """Bytes of ``device`` memory for undeformed representations: ``override`` when given,
    else :data:`DEVICE_SHARE` of what ``torch.cuda.mem_get_info`` reports free; None on the
    CPU (the device is the host: ``store_bytes`` governs)."""
    if override is not None:
        if override < 0:
            raise ValueError(f"the device memory budget must be ≥ 0 bytes, got {override}.")
        return int(override)
    if device.type != "cuda":
        return None
    free, _ = torch.cuda.mem_get_info(device)
    return int(free * DEVICE_SHARE)


def to_device(t: torch.Tensor, device: torch.device, dtype: torch.dtype | None = None):
    """``t`` on ``device`` (and ``dtype``): from the host to a GPU through pinned memory
    with ``non_blocking`` (a pageable copy would wait for the queue to drain); the plain
    ``.to`` otherwise."""
    if device.type == "cuda" and t.device.type == "cpu":
        t = t.pin_memory().to(device, non_blocking=True)
    elif t.device != device:
        t = t.to(device)
    return t if dtype is None or t.dtype == dtype else t.to(dtype)


@dataclass(frozen=True)
class Chunk:
    """Positions [``start``, ``stop``) of the processing order, ``offsets`` (b,) on the
    device the readable ones' places in that range when some images were unreadable
    (None: every position was read, ``stop - start`` images)."""

    start: int
    stop: int
    offsets: torch.Tensor | None = None

    @property
    def whole(self) -> bool:
        return self.offsets is None

    def rows(self, buffer_start: int = 0):
        """An index into a buffer whose row 0 is position ``buffer_start``: a slice for a
        whole chunk (no index tensor, no copy), else device offsets."""
        if self.offsets is None:
            return slice(self.start - buffer_start, self.stop - buffer_start)
        return self.offsets + (self.start - buffer_start)


def chunks_of(source, order, batch_size: int, start: int, stop: int, device):
    """``source.batches`` with each chunk's place as a :class:`Chunk` known without reading
    its positions: chunk k of a source that skips nothing (``source.complete``) covers
    positions [start + k·b, start + (k+1)·b). A source of files may skip unreadable images
    (and a chunk whose images were all unreadable is not yielded): its positions are read
    on the host, where they were made."""
    complete = getattr(source, "complete", False)
    for k, (positions, x) in enumerate(source.batches(order, batch_size, start, stop)):
        if complete:
            p0 = start + k * batch_size
            yield Chunk(p0, min(p0 + batch_size, stop)), x
            continue
        pos = positions.tolist()
        p0 = pos[0] - (pos[0] - start) % batch_size  # the chunk's own first position
        p1 = min(p0 + batch_size, stop)
        if len(pos) == p1 - p0:
            yield Chunk(p0, p1), x
        else:
            offsets = to_device(torch.tensor(pos) - p0, device)
            yield Chunk(p0, p1, offsets), x


class PositionResults:
    """Per-image values for positions [start, stop), L rows each, on the device.

    Args:
        names: the result names (e.g. ``"dist_def"``).
        layers: L.
        start, stop: the positions measured.
        device: where they are written.
    """

    def __init__(self, names, layers: int, start: int, stop: int, device):
        self.start = start
        self.values = {
            name: torch.full((layers, stop - start), math.nan, dtype=torch.float64, device=device)
            for name in names
        }

    def put(self, name: str, layer: int, chunk: Chunk, values: torch.Tensor) -> None:
        """Values (b,) of one layer for the images of ``chunk``."""
        self.values[name][layer, chunk.rows(self.start)] = values

    def to_host(self, name: str, items: torch.Tensor, n: int) -> torch.Tensor:
        """(L, n) float64 on the host: position p's values at item ``items[p - start]``,
        NaN for items not measured here."""
        block = self.values[name].cpu()
        out = torch.full((block.shape[0], n), math.nan, dtype=torch.float64)
        out[:, items] = block
        return out
