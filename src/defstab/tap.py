"""One hook tap: run a model and hand each requested layer's output to a callback.

Every part of defstab that reads a network's intermediate representations — sensitivity
to deformation (:mod:`defstab.measure`), the per-layer shift analysis
(:mod:`defstab.translate`), the training probes (:mod:`defstab.train`) — goes through this
module: the eval-mode context, the device/dtype lookup, the forward-order probe, the forward
with an early stop after the deepest requested layer, and each layer's geometry (channels,
cumulative stride).

Example:
    >>> import torch
    >>> from defstab.models import create_model
    >>> model = create_model("vgg_cifar_maxpool", width=0.125, seed=0)
    >>> names = ["features.conv1_1", "features.pool1"]
    >>> info = layer_info(model, names, torch.zeros(1, 3, 32, 32))
    >>> [(i.name, i.channels, i.reduction, i.source) for i in info.values()]
    [('features.conv1_1', 4, 1, 'feature_info'), ('features.pool1', 4, 2, 'feature_info')]
    >>> means = {}
    >>> modules = dict(model.named_modules())
    >>> tap(model, {n: modules[n] for n in names}, torch.rand(2, 3, 32, 32),
    ...     lambda name, y: means.__setitem__(name, tuple(y.shape)))
    >>> means
    {'features.conv1_1': (2, 4, 32, 32), 'features.pool1': (2, 4, 16, 16)}
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn


class _StopForward(Exception):
    """Raised by the hook of the deepest requested layer: nothing after it is needed."""


@contextlib.contextmanager
def evaluation_mode(model: nn.Module):
    """Put every module in eval mode, then restore each one's own mode."""
    modes = {m: m.training for m in model.modules()}
    model.eval()
    try:
        yield
    finally:
        for m, mode in modes.items():
            m.training = mode


def model_device_dtype(model: nn.Module) -> tuple[torch.device, torch.dtype]:
    """Device and floating dtype of the model's first parameter (or buffer); CPU float32
    for a model without either."""
    for p in model.parameters():
        return p.device, p.dtype
    for b in model.buffers():
        if b.is_floating_point():
            return b.device, b.dtype
    return torch.device("cpu"), torch.float32


def pick_device(name: str | None = "auto") -> torch.device:
    """``"auto"`` (GPU if there is one), ``"cpu"``, ``"cuda"``, ``"cuda:1"``, …; one clear
    error for an unknown name or a GPU that is not there."""
    if name in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise ValueError(f"unknown device {name!r}.") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} was asked for but no GPU is available.")
    return dev


def first_tensor(output, name: str) -> torch.Tensor:
    """The tensor a module returned (the first element of a tuple or list)."""
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, tuple | list) and output and isinstance(output[0], torch.Tensor):
        return output[0]
    raise ValueError(f"layer {name!r} does not output a tensor; choose another layer.")


def run_checked(model: nn.Module, batch: torch.Tensor):
    """``model(batch)``, with a model that cannot take these inputs (too small for its
    downsampling, wrong channel count) reported in one sentence instead of a traceback."""
    try:
        return model(batch)
    except RuntimeError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ValueError(
            f"the model cannot run on inputs of shape {tuple(batch.shape[1:])} (C, H, W): {first}"
        ) from None


def tap(
    model: nn.Module,
    modules: dict[str, nn.Module],
    batch: torch.Tensor,
    on_output: Callable[[str, torch.Tensor], None],
    stop_early: bool = True,
) -> None:
    """Forward ``batch`` and call ``on_output(name, output)`` for each module in ``modules``.

    ``on_output`` reduces the output at once (a distance, a pooled vector), so memory holds
    one layer's activations at a time. With ``stop_early`` the forward pass ends after the
    last module of ``modules`` (its order must be the forward order, see
    :func:`probe_layers`).
    """
    last = list(modules)[-1] if modules else None

    def make_hook(name):
        def hook(module, inputs, output):
            on_output(name, first_tensor(output, name))
            if stop_early and name == last:
                raise _StopForward

        return hook

    handles = [m.register_forward_hook(make_hook(n)) for n, m in modules.items()]
    try:
        model(batch)
    except _StopForward:
        pass
    finally:
        for h in handles:
            h.remove()


def probe_layers(
    model: nn.Module,
    modules: dict[str, nn.Module],
    probe: torch.Tensor,
    notes: dict[str, str] | None = None,
) -> dict[str, tuple[int, ...]]:
    """Run ``probe`` through the whole model: {layer: output shape without the batch
    dimension}, in *execution* order.

    Module order and forward order can differ (a module registered late but called early);
    measuring follows the forward order. A module that runs twice, or never, is an error.
    ``notes``, if given, receives ``{layer: "element 0 of a tuple of 2"}`` for every layer
    whose module returns a tuple or list (its first tensor is what is measured).
    """
    shapes: dict[str, tuple[int, ...]] = {}

    def make_hook(name):
        def hook(module, inputs, output):
            if name in shapes:
                raise ValueError(
                    f"layer {name!r} runs more than once per forward pass; "
                    "choose a module that runs once."
                )
            shapes[name] = tuple(first_tensor(output, name).shape[1:])
            if notes is not None and isinstance(output, tuple | list):
                notes[name] = f"element 0 of a {type(output).__name__} of {len(output)}"

        return hook

    handles = [m.register_forward_hook(make_hook(n)) for n, m in modules.items()]
    try:
        run_checked(model, probe)
    finally:
        for h in handles:
            h.remove()
    missing = [n for n in modules if n not in shapes]
    if missing:
        raise ValueError(f"layers {missing} are never called by the model's forward pass.")
    return shapes


@dataclass(frozen=True)
class LayerInfo:
    """Geometry of one layer's output.

    Attributes:
        name: module name.
        shape: output shape without the batch dimension, e.g. (C, H, W).
        channels: C (None for outputs that are not feature maps).
        reduction: cumulative stride, input width / feature width (None if not a map).
        source: ``"feature_info"`` when the model describes its layers (registry VGGs, timm
            models), ``"inferred"`` when computed from the probe's output width.
    """

    name: str
    shape: tuple[int, ...]
    channels: int | None
    reduction: int | None
    source: str


def declared_features(model: nn.Module) -> dict[str, dict]:
    """The model's own description of its layers, ``{module: {"num_chs", "reduction"}}``,
    from a timm-style ``feature_info`` (a list of dicts, or timm's ``FeatureInfo``)."""
    info = getattr(model, "feature_info", None)
    if info is None:
        return {}
    entries = getattr(info, "info", info)  # timm's FeatureInfo keeps the list in .info
    try:
        return {e["module"]: e for e in entries if "module" in e}
    except TypeError:
        return {}


def layer_info(model: nn.Module, names: list[str], probe: torch.Tensor) -> dict[str, LayerInfo]:
    """{name: :class:`LayerInfo`} in forward order, from one probe forward pass.

    The stride comes from the model's ``feature_info`` where it names the layer; otherwise
    it is inferred as round(input width / feature width) and marked ``"inferred"``.
    """
    modules = dict(model.named_modules())
    with evaluation_mode(model), torch.no_grad():
        shapes = probe_layers(model, {n: modules[n] for n in names}, probe)
    return infos_from_shapes(model, shapes, probe.shape[-1])


def cumulative_strides(infos: dict[str, LayerInfo]) -> dict[str, int | None]:
    """{name: cumulative stride} in forward order (None: not a feature map).

    A 1×1 map the model does not declare is a global pooling (or a map pooled to one
    pixel): it has no sampling grid of its own, and it is invariant to exactly the shifts
    the map it pools is equivariant to, so it gets that map's stride (input width / 1
    would say nothing).
    """
    out: dict[str, int | None] = {}
    last = None
    for name, info in infos.items():
        stride = info.reduction
        if stride is not None and info.source == "inferred" and info.shape[-2:] == (1, 1):
            stride = last if last is not None else stride
        out[name] = stride
        if stride is not None:
            last = stride
    return out


def infos_from_shapes(model: nn.Module, shapes: dict, width: int) -> dict[str, LayerInfo]:
    """:class:`LayerInfo` of layers whose output ``shapes`` (without the batch) are known,
    for an input ``width`` pixels wide (see :func:`layer_info`)."""
    declared = declared_features(model)
    out = {}
    for name, shape in shapes.items():
        shape = tuple(shape)
        if len(shape) != 3:
            out[name] = LayerInfo(name, shape, None, None, "inferred")
        elif name in declared:
            d = declared[name]
            out[name] = LayerInfo(
                name, shape, int(d["num_chs"]), int(d["reduction"]), "feature_info"
            )
        else:
            out[name] = LayerInfo(
                name, shape, shape[0], max(1, round(width / shape[-1])), "inferred"
            )
    return out
