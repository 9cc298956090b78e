"""One hook tap: run a model and hand each requested layer's output to a callback.

Every part of defstab that reads a network's intermediate representations — sensitivity
to deformation (:mod:`defstab.measure`), the per-layer shift analysis
(:mod:`defstab.translate`), the training probes (:mod:`defstab.train`) — goes through this
module: the eval-mode context, the device/dtype lookup, the forward-order probe, the forward
with an early stop after the deepest requested layer, and each layer's geometry (channels,
cumulative stride).

Examples:
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


@contextlib.contextmanager
def hooks_removed_after(handles):
    """Keep hook ``handles`` for the ``with`` block; remove them afterwards, whatever
    happens inside."""
    try:
        yield
    finally:
        for h in handles:
            h.remove()


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


def _raised_by_defstab(error: BaseException) -> bool:
    """Whether ``error`` was raised in defstab's own code (a hook's check), not in the
    model's: the innermost frame of its traceback decides."""
    import defstab

    tb = error.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    package = defstab.__file__.rsplit("/", 1)[0]
    return tb is not None and tb.tb_frame.f_code.co_filename.startswith(package)


def guard_forward(model: nn.Module, name: str) -> nn.Module:
    """Make any exception of ``model``'s own forward (an ``AssertionError`` of a ViT given
    another input size, a ``RuntimeError`` of a wrong channel count) one sentence naming
    the model, the input shape and the exception; defstab's own errors (hooks' checks, the
    early stop of :func:`tap`) pass unchanged. Replaces ``model.forward`` on the instance
    (its modules, their names and hooks are untouched); returns ``model``.
    """
    forward = model.forward
    if getattr(forward, "_defstab_guarded", False):
        return model

    def guarded(*args, **kwargs):
        try:
            return forward(*args, **kwargs)
        except _StopForward:
            raise
        except Exception as e:
            if _raised_by_defstab(e):
                raise
            x = args[0] if args else next(iter(kwargs.values()), None)
            shape = tuple(x.shape[1:]) if isinstance(x, torch.Tensor) else "?"
            first = str(e).strip().splitlines()[0] if str(e).strip() else "(no message)"
            raise ValueError(
                f"the model {name} cannot run on inputs of shape {shape} (C, H, W): "
                f"its forward raised {type(e).__name__}: {first}"
            ) from None

    guarded._defstab_guarded = True  # type: ignore[attr-defined]
    model.forward = guarded
    return model


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
    with hooks_removed_after(handles):
        run_checked(model, probe)
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
        reduction: cumulative stride in input pixels per feature pixel (None: no grid).
        source: where the stride comes from — ``"feature_info"`` (the model declares it:
            registry VGGs, timm models), ``"network"`` (the network's own size arithmetic,
            see :func:`grid_strides`), ``"global pool"`` (a map whose size does not follow
            the input's: it gets the stride of the map it pools, see
            :func:`cumulative_strides`), ``"patch size"`` (transformer tokens), or
            ``"inferred"`` (input width / map width, only where the network cannot be
            probed at another size — approximate, and every command says so).
    """

    name: str
    shape: tuple[int, ...]
    channels: int | None
    reduction: int | None
    source: str


#: The size step of the stride probe: a multiple of every cumulative stride a network can
#: have up to 8, and of 10, 12, 14, 16, 20, 28, 32 and 64 (2⁶·3·5·7), so the added input
#: pixels add exactly step / s feature pixels to a map of stride s.
GRID_STEP = 6720


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
    """{name: :class:`LayerInfo`} in forward order, from one probe forward pass (and the
    stride probe of :func:`grid_strides`), at any input size."""
    modules = dict(model.named_modules())
    with evaluation_mode(model), torch.no_grad():
        shapes = probe_layers(model, {n: modules[n] for n in names}, probe)
    return infos_from_shapes(model, shapes, tuple(probe.shape[1:]))


def cumulative_strides(infos: dict[str, LayerInfo]) -> dict[str, int | None]:
    """{name: cumulative stride} in forward order (None: no grid).

    A map whose size does not follow the input's (``"global pool"``: a global pooling, a
    pooling to a fixed size) has no sampling grid of its own, and it is invariant to
    exactly the shifts the map it pools is equivariant to, so it gets that map's stride.
    """
    out: dict[str, int | None] = {}
    last = None
    for name, info in infos.items():
        stride = info.reduction
        if info.source == "global pool":
            stride = last
        out[name] = stride
        if stride is not None:
            last = stride
    return out


def infos_from_shapes(
    model: nn.Module, shapes: dict, input_shape: tuple[int, int, int]
) -> dict[str, LayerInfo]:
    """:class:`LayerInfo` of layers whose output ``shapes`` (without the batch) are known,
    for inputs of ``input_shape`` (C, H, W) (see :func:`layer_info`)."""
    declared = declared_features(model)
    maps = [n for n, shape in shapes.items() if len(shape) == 3 and n not in declared]
    measured = grid_strides(model, maps, input_shape) if maps else {}
    patch = patch_size(model)
    modules = dict(model.named_modules())
    out = {}
    for name, shape in shapes.items():
        shape = tuple(shape)
        if name in declared:
            d = declared[name]
            out[name] = LayerInfo(
                name, shape, int(d["num_chs"]), int(d["reduction"]), "feature_info"
            )
        elif len(shape) == 2 and patch is not None:  # (tokens, dim): a transformer's tokens
            out[name] = LayerInfo(name, shape, None, patch, "patch size")
        elif len(shape) != 3:
            out[name] = LayerInfo(name, shape, None, None, "not a map")
        elif measured is None and _is_patch_embedding(modules.get(name), patch):
            out[name] = LayerInfo(name, shape, shape[0], patch, "patch size")
        else:
            stride, channel_dim, source = (
                measured[name] if measured is not None else (None, 0, "inferred")
            )
            if source == "inferred":  # no module tells: input width / map width
                stride = max(1, round(input_shape[-1] / shape[-1]))
            out[name] = LayerInfo(name, shape, shape[channel_dim], stride, source)
    return out


def grid_strides(
    model: nn.Module, names: list[str], input_shape: tuple[int, int, int]
) -> dict[str, tuple[int | None, int, str]] | None:
    """The cumulative stride of each named layer's map from the network's own arithmetic.

    Runs the model on the ``meta`` device (shapes only: no memory, no arithmetic) at the
    input size and at that size plus :data:`GRID_STEP` pixels on both sides. Convolutions
    and poolings of any kernel, stride, padding and dilation add exactly ``GRID_STEP / s``
    feature pixels to a map of cumulative stride s, so s = GRID_STEP / (growth), whatever
    the input size. A map that does not grow is pooled to a fixed size (stride None).

    Returns:
        {name: (stride or None, index of the channel dimension — 0 for (C, H, W), 2 for a
        channels-last (H, W, C) map —, source: "network", "global pool", or "inferred" for
        a map that does not grow like a grid: an upsampling, a reshape)}, or None when the
        network refuses the larger size (a fixed-size model) or the meta device — then no
        module tells.
    """
    c, h, w = input_shape
    first = _meta_shapes(model, names, (c, h, w))
    grown = _meta_shapes(model, names, (c, h + GRID_STEP, w + GRID_STEP))
    if first is None or grown is None:
        return None
    out = {}
    for name in names:
        a, b = first[name], grown[name]
        changed = [i for i in range(len(a)) if a[i] != b[i]]  # the spatial dimensions
        growth = b[changed[-1]] - a[changed[-1]] if changed else 0
        if not changed:
            out[name] = (None, 0, "global pool")
        elif len(changed) != 2 or growth <= 0 or GRID_STEP % growth:
            out[name] = (None, 0, "inferred")  # not a plain grid: no module tells
        else:  # the one dimension that did not grow holds the channels
            channel_dim = next(i for i in range(3) if i not in changed)
            out[name] = (GRID_STEP // growth, channel_dim, "network")
    return out


def meta_forward(model: nn.Module, input_shape: tuple[int, ...]):
    """``model`` on one input of ``input_shape`` (C, H, W) on the ``meta`` device: shapes
    only, no memory, no arithmetic; the model's own weights are not touched or copied
    (its forward hooks fire as usual). Errors of the model propagate."""
    from torch.func import functional_call

    state = {
        k: torch.empty_like(v, device="meta")
        for k, v in [*model.named_parameters(), *model.named_buffers()]
    }
    with torch.no_grad():
        return functional_call(model, state, (torch.empty(1, *input_shape, device="meta"),))


def _meta_shapes(model: nn.Module, names: list[str], input_shape) -> dict | None:
    """{name: output shape without the batch} of one meta-device forward, or None if the
    model cannot run there."""
    modules = dict(model.named_modules())
    shapes: dict[str, tuple[int, ...]] = {}
    last = names[-1]

    def make_hook(name):
        def hook(module, inputs, output):
            if isinstance(output, torch.Tensor | tuple | list):
                shapes[name] = tuple(first_tensor(output, name).shape[1:])
            if name == last:
                raise _StopForward

        return hook

    handles = [modules[n].register_forward_hook(make_hook(n)) for n in names]
    try:
        with evaluation_mode(model):
            meta_forward(model, input_shape)
    except _StopForward:
        pass
    except Exception:  # a fixed-size model, a data-dependent op: the meta run cannot say
        return None
    finally:
        for h in handles:
            h.remove()
    return shapes if all(n in shapes for n in names) else None


def _is_patch_embedding(module: nn.Module | None, patch: int | None) -> bool:
    """A conv that cuts the image into patches: kernel = stride = the patch size."""
    return (
        isinstance(module, nn.Conv2d)
        and patch is not None
        and module.stride == module.kernel_size == (patch, patch)
    )


def patch_size(model: nn.Module) -> int | None:
    """The patch size of a vision transformer (its tokens' stride in pixels): timm's
    ``patch_embed.patch_size``, torchvision's ``patch_size``; None if the model says none."""
    for owner in (getattr(model, "patch_embed", None), model):
        size = getattr(owner, "patch_size", None)
        if isinstance(size, int) and size > 0:
            return size
        if isinstance(size, tuple | list) and size and isinstance(size[-1], int):
            return int(size[-1])
    return None
