"""Hold the undeformed representations of every layer until their Gram matrices are made.

The normalizer needs all pairs of undeformed images at every layer, so an exact median
needs every representation at once: 7.8 GB for the ImageNet VGG on 128 images. The
store keeps layers, smallest first, in three tiers:

1. on the model's device up to a device budget (a GPU's memory; on the CPU the device is
   the host and this tier is the RAM budget): written in place, no copy, no wait;
2. in host RAM up to the RAM budget, pinned on a GPU and copied into on a side stream
   with ``non_blocking`` copies, so the measurement's stream never waits for them;
3. in a temporary file with plain positional I/O (not a memory map, whose dirty pages
   would count against the process) — this tier waits for each chunk's copy.

Gram matrices are built in blocks of columns, so memory stays bounded whatever the model.
"""

from __future__ import annotations

import errno
import os
import tempfile

import numpy as np
import torch

#: Columns per block of the Gram matrix. Each block is a float32 GEMM (fast) whose result
#: is accumulated in float64, so rounding stays ~1e-6 relative whatever the layer size.
BLOCK_COLUMNS = 1 << 14
#: Columns per slab of a spilled layer: slab s holds columns [s·S, (s+1)·S) of all N
#: images contiguously, so writing a chunk of rows and reading a slab are each one call.
SLAB_COLUMNS = 1 << 16


class _SpilledLayer:
    """An (N, F) float32 array in a file, laid out as column slabs of (N, SLAB_COLUMNS)."""

    def __init__(self, fd: int, offset: int, n: int, f: int):
        self.fd, self.offset, self.n, self.f = fd, offset, n, f

    def _slabs(self):
        for c0 in range(0, self.f, SLAB_COLUMNS):
            yield c0, min(c0 + SLAB_COLUMNS, self.f)

    def write_rows(self, start: int, rows: np.ndarray) -> None:
        for c0, c1 in self._slabs():
            block = np.ascontiguousarray(rows[:, c0:c1])
            at = self.offset + (c0 * self.n + start * (c1 - c0)) * 4
            try:
                written = os.pwrite(self.fd, block.data, at)
            except OSError as e:
                raise _spill_error(e) from None
            if written != block.nbytes:  # a full disk can also end a write short
                raise _spill_error(OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)))

    def read_slab(self, c0: int, c1: int) -> np.ndarray:
        out = np.empty((self.n, c1 - c0), dtype=np.float32)
        nbytes = out.nbytes
        got = os.preadv(self.fd, [out.data], self.offset + c0 * self.n * 4)
        if got != nbytes:
            raise OSError(f"short read from the spill file ({got} of {nbytes} bytes).")
        return out


def _spill_error(e: OSError):
    """A refused write of the spill file, as one sentence that says what the file is."""
    from defstab.io.atomic import storage_error

    where = f"the spill file of measure in {tempfile.gettempdir()} (representations beyond RAM)"
    return storage_error(where, e)


class RepresentationStore:
    """(N, F_l) float32 arrays, one per layer, on the device, in RAM or in a temporary file.

    Args:
        n: number of images.
        features: {layer: F_l}.
        budget_bytes: host RAM for representations; layers beyond it go to disk.
        spill_dir: folder for the temporary file (default: the system's temp folder).
        device: where the rows arrive (the model's device).
        device_bytes: memory of ``device`` for representations, before the host tiers;
            None: on the CPU the host tiers alone (``budget_bytes`` of RAM), on a GPU none.
    """

    def __init__(
        self,
        n: int,
        features: dict[str, int],
        budget_bytes: int,
        spill_dir=None,
        device=None,
        device_bytes: int | None = None,
    ):
        self.n = n
        self.device = torch.device(device or "cpu")
        self.arrays: dict[str, torch.Tensor | _SpilledLayer] = {}
        self.on_device: list[str] = []
        self.in_ram: list[str] = []
        self.spilled: list[str] = []
        self._file = None
        self.tiered = device_bytes is not None
        cuda = self.device.type == "cuda"
        # host copies go on their own stream: the measurement's stream never waits on them
        self._side = torch.cuda.Stream(self.device) if cuda else None
        used, used_device, offset = 0, 0, 0
        for layer in sorted(features, key=features.__getitem__):
            size = n * features[layer] * 4
            if device_bytes is not None and used_device + size <= device_bytes:
                self.arrays[layer] = torch.empty(
                    n, features[layer], dtype=torch.float32, device=self.device
                )
                self.on_device.append(layer)
                used_device += size
                continue
            if used + size <= budget_bytes:
                self.arrays[layer] = torch.empty(
                    n, features[layer], dtype=torch.float32, pin_memory=cuda
                )
                self.in_ram.append(layer)
                used += size
                continue
            if self._file is None:
                try:
                    self._file = tempfile.TemporaryFile(prefix="defstab-spill-", dir=spill_dir)
                except OSError as e:
                    raise _spill_error(e) from None
            self.arrays[layer] = _SpilledLayer(self._file.fileno(), offset, n, features[layer])
            offset += size
            self.spilled.append(layer)
        self.device_bytes, self.ram_bytes, self.disk_bytes = used_device, used, offset

    def put(self, layer: str, start: int, rows: torch.Tensor) -> None:
        """Write rows [start, start + len(rows)) of ``layer``."""
        rows = rows.detach()
        target = self.arrays[layer]
        if not isinstance(target, torch.Tensor):  # the disk: the rows must be on the host
            target.write_rows(start, rows.to("cpu", torch.float32).numpy())
            return
        place = target[start : start + rows.shape[0]]
        if self._side is None or target.device == rows.device:
            place.copy_(rows)
            return
        # device → pinned host on the side stream, after the rows are computed; the rows'
        # memory is kept from reuse until the copy is done (record_stream)
        self._side.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(self._side):
            place.copy_(rows, non_blocking=True)
        rows.record_stream(self._side)

    def _settle(self) -> None:
        """Wait for the side stream's copies (before host rows are read)."""
        if self._side is not None:
            self._side.synchronize()

    def _column_blocks(self, layer: str):
        self._settle()
        r = self.arrays[layer]
        if isinstance(r, torch.Tensor):
            for f0 in range(0, r.shape[1], BLOCK_COLUMNS):
                yield r[:, f0 : f0 + BLOCK_COLUMNS]
            return
        for c0, c1 in r._slabs():
            slab = torch.from_numpy(r.read_slab(c0, c1))
            for f0 in range(0, slab.shape[1], BLOCK_COLUMNS):
                yield slab[:, f0 : f0 + BLOCK_COLUMNS]

    def gram(self, layer: str, device=None) -> torch.Tensor:
        """G = R Rᵀ, (N, N) float64: float32 products over blocks of columns, summed in float64."""
        n = self.n
        h = n // 2
        g = torch.zeros(n, n, dtype=torch.float64, device=device)
        for block in self._column_blocks(layer):
            block = block.to(device=device)
            if n < 64:
                g += (block @ block.T).double()
                continue
            # G is symmetric: the two diagonal halves and one off-diagonal block suffice
            top, bottom = block[:h], block[h:]
            g[:h, :h] += (top @ top.T).double()
            g[h:, h:] += (bottom @ bottom.T).double()
            g[:h, h:] += (top @ bottom.T).double()
        if n >= 64:
            g[h:, :h] = g[:h, h:].T
        return g

    def close(self) -> None:
        self._settle()  # no copy may still be writing into memory that is freed
        self.arrays.clear()
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
