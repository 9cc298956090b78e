"""Count the calls that would make the host wait for a GPU, on any device (the CPU included).

On CUDA a read of a tensor's value on the host — ``.item()``, ``int(t)``/``float(t)``/
``bool(t)`` (an ``if`` on a tensor), ``.tolist()``, ``.numpy()``, ``.cpu()`` or
``.to("cpu")`` (named so) without ``non_blocking`` — and an operation whose output size
depends on the values (``nonzero``, boolean indexing, ``masked_select``, ``unique``) waits
for every kernel queued before it. On the CPU these calls cost nothing, so a loop full of
them runs at full speed here and crawls on a GPU. :func:`count_host_syncs` counts them on
any device: the Python-level reads by wrapping the ``Tensor`` methods, the value-dependent
operations with a ``TorchDispatchMode``. A test runs a loop twice with different numbers of
chunks or steps and checks that the count does not grow with them.

Host-side bookkeeping tensors are counted too (the guard cannot tell them from device
tensors on the CPU), so the loops under guard keep their bookkeeping in Python ints.
"""

from __future__ import annotations

import contextlib
from collections import Counter

import torch
from torch.utils._python_dispatch import TorchDispatchMode

_VALUE_DEPENDENT = {
    "aten._local_scalar_dense",
    "aten.nonzero",
    "aten.masked_select",
    "aten._unique2",
    "aten.unique_dim",
    "aten.unique_consecutive",
    "aten.repeat_interleave",
}
_READS = ("item", "tolist", "numpy", "cpu", "__bool__", "__int__", "__float__", "__index__")


class _Ops(TorchDispatchMode):
    def __init__(self, counts: Counter, enabled: list[bool]):
        super().__init__()
        self.counts, self.enabled = counts, enabled

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = str(func.overloadpacket)
        if self.enabled[0] and name in _VALUE_DEPENDENT and name != "aten._local_scalar_dense":
            self.counts[name] += 1  # scalar reads are counted where Python made them
        return func(*args, **(kwargs or {}))


@contextlib.contextmanager
def count_host_syncs():
    """``with count_host_syncs() as counts:`` … ``counts`` (a Counter by call name), with
    ``counts.paused()`` a context in which nothing is counted (work outside the loop)."""
    counts: Counter = Counter()
    enabled = [True]
    originals = {name: getattr(torch.Tensor, name) for name in _READS}
    original_to = torch.Tensor.to

    def wrap(name, fn):
        def counted(self, *args, **kwargs):
            if enabled[0]:
                counts[name] += 1
            return fn(self, *args, **kwargs)

        return counted

    def counted_to(self, *args, **kwargs):
        # ``.to("cpu")`` is a read back to the host; ``.to(x.device)`` (a device object) is
        # a move to wherever the work is, a no-op when it is there already
        target = kwargs.get("device", args[0] if args else None)
        to_host = isinstance(target, str) and torch.device(target).type == "cpu"
        if enabled[0] and to_host and not kwargs.get("non_blocking", False):
            counts["to(cpu)"] += 1
        return original_to(self, *args, **kwargs)

    @contextlib.contextmanager
    def paused():
        was, enabled[0] = enabled[0], False
        try:
            yield
        finally:
            enabled[0] = was

    counts.paused = paused  # type: ignore[attr-defined]
    for name, fn in originals.items():
        setattr(torch.Tensor, name, wrap(name, fn))
    torch.Tensor.to = counted_to
    try:
        with _Ops(counts, enabled):
            yield counts
    finally:
        for name, fn in originals.items():
            setattr(torch.Tensor, name, fn)
        torch.Tensor.to = original_to
