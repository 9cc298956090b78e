"""One network trained by several processes (``torchrun --nproc-per-node N -m defstab
train ...``): DistributedDataParallel, gloo on CPU, NCCL on GPU.

What stays as configured: the **global** batch (``batch_size``, split over the processes)
and the learning rate, so N processes take the same steps as one. Each process reads the
same global batch (the data order and the augmentation are seeded by step, not by
process), augments it identically and keeps its own slice; the loss of a slice is its sum
over the global batch size, times N, because DDP averages gradients over processes — so
the gradient is exactly the single-process mean. BatchNorm: on GPU the layers become
SyncBatchNorm (statistics over the global batch, as one process computes them); on CPU,
where PyTorch has no SyncBatchNorm, each process normalises by its slice's statistics and
the run is *not* the single-process run (a warning says so). Only rank 0 evaluates and
writes checkpoints, history and logs; every process resumes from the same checkpoint.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn


@dataclass(frozen=True)
class Distributed:
    """This process's place in a multi-process run."""

    rank: int
    world: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        dist.barrier()

    def slice(self, n: int) -> slice:
        """This process's rows of a global batch of ``n`` (near-equal contiguous parts)."""
        bounds = [n * r // self.world for r in range(self.world + 1)]
        return slice(bounds[self.rank], bounds[self.rank + 1])

    def sum(self, *values: float) -> list[float]:
        """Each value summed over the processes."""
        t = torch.tensor(values, dtype=torch.float64, device=self.device)
        dist.all_reduce(t)
        return t.tolist()

    def wrap(self, model: nn.Module) -> nn.Module:
        """The model DDP trains (the bare ``model`` stays for evaluation and checkpoints)."""
        from torch.nn.parallel import DistributedDataParallel

        if self.device.type == "cuda":
            return DistributedDataParallel(
                nn.SyncBatchNorm.convert_sync_batchnorm(model), device_ids=[self.device.index]
            )
        if any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules()):
            warnings.warn(
                "BatchNorm on CPU: each process normalises by its own slice of the batch "
                "(PyTorch's SyncBatchNorm needs GPUs), so this run differs from a "
                "single-process one.",
                stacklevel=2,
            )
        return DistributedDataParallel(model)


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def from_environment(device: torch.device) -> Distributed | None:
    """The process group torchrun describes (``WORLD_SIZE`` > 1), started once; None for
    a single process. NCCL on GPU (one device per process, ``LOCAL_RANK``), gloo on CPU."""
    if world_size() <= 1:
        return None
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Distributed(dist.get_rank(), dist.get_world_size(), device)
