"""Hold the undeformed representations of every layer until their Gram matrices are made.

The normalizer needs all pairs of undeformed images at every layer, so an exact median
needs every representation at once: 7.8 GB for the ImageNet VGG on 128 images. The
store keeps layers in memory up to a budget, smallest first, and puts the rest in a
temporary memory-mapped file; Gram matrices are then built in column blocks, so memory
stays bounded whatever the model.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import torch

#: Columns per block of the Gram matrix. Each block is a float32 GEMM (fast) whose result
#: is accumulated in float64, so rounding stays ~1e-6 relative whatever the layer size.
BLOCK_COLUMNS = 1 << 14


class RepresentationStore:
    """(N, F_l) float32 arrays, one per layer, in RAM or on disk.

    Args:
        n: number of images.
        features: {layer: F_l}.
        budget_bytes: RAM for representations; layers beyond it go to disk.
        spill_dir: folder for the temporary file (default: the system's temp folder).
    """

    def __init__(self, n: int, features: dict[str, int], budget_bytes: int, spill_dir=None):
        self.n = n
        self.arrays: dict[str, torch.Tensor | np.memmap] = {}
        self.spilled: list[str] = []
        self._tmp: tempfile.TemporaryDirectory | None = None
        used = 0
        for layer in sorted(features, key=features.__getitem__):
            size = n * features[layer] * 4
            if used + size <= budget_bytes:
                self.arrays[layer] = torch.empty(n, features[layer], dtype=torch.float32)
                used += size
            else:
                if self._tmp is None:
                    self._tmp = tempfile.TemporaryDirectory(prefix="defstab-", dir=spill_dir)
                path = Path(self._tmp.name) / f"{len(self.spilled)}.f32"
                self.arrays[layer] = np.memmap(path, np.float32, "w+", shape=(n, features[layer]))
                self.spilled.append(layer)
        self.ram_bytes = used

    def put(self, layer: str, start: int, rows: torch.Tensor) -> None:
        """Write rows [start, start + len(rows)) of ``layer``."""
        rows = rows.detach().to("cpu", torch.float32)
        target = self.arrays[layer]
        if isinstance(target, torch.Tensor):
            target[start : start + rows.shape[0]] = rows
        else:
            target[start : start + rows.shape[0]] = rows.numpy()

    def gram(self, layer: str, device=None) -> torch.Tensor:
        """G = R Rᵀ, (N, N) float64: float32 products over blocks of columns, summed in float64."""
        r = self.arrays[layer]
        g = torch.zeros(self.n, self.n, dtype=torch.float64, device=device)
        for f0 in range(0, r.shape[1], BLOCK_COLUMNS):
            block = r[:, f0 : f0 + BLOCK_COLUMNS]
            block = torch.as_tensor(
                np.ascontiguousarray(block) if isinstance(r, np.memmap) else block
            )
            block = block.to(device=device)
            g += (block @ block.T).double()
        return g

    def close(self) -> None:
        self.arrays.clear()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
