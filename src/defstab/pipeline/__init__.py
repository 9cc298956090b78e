"""One pipeline for everything a run needs, the same behind every command and in Python.

>>> import defstab
>>> from defstab.requests import MeasureRequest
>>> outcome = defstab.run(MeasureRequest(images=64), model="vgg_cifar_maxpool",
...                       data="cifar10:data/cifar-10-batches-py", out="m")  # doctest: +SKIP
>>> outcome.metrics[0]  # doctest: +SKIP
Metric(name='sensitivity', value=0.41, unit='', direction='lower', layer='pool5', ...)

Importing this package imports no torch (the protocol's runner is imported when run).
"""

from __future__ import annotations


def run(request, *, model=None, data=None, out=None, **execution):
    """Run the protocol of ``request`` (a request of :mod:`defstab.requests`) on ``model``
    and ``data``; returns its outcome (``.rows()``, ``.to_frame()``, ``.metrics``,
    ``.request``). ``execution``: the protocol's own settings of where and how it runs
    (for a measurement: ``shards``, ``shard``, ``executor``, ``resume``, ``device``,
    ``progress``, ``warn``)."""
    from defstab.requests.registry import protocol_of

    return protocol_of(request).run_function()(request, model=model, data=data, out=out,
                                               **execution)  # fmt: skip
