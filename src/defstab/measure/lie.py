"""The Lie derivative of every layer, end to end, and each layer's contribution to it.

Gruver et al. 2023 (*The Lie Derivative for Measuring Learned Equivariance*; SPEC §8.2).
For a continuous transform g_t (:mod:`defstab.measure.lie_actions`: translate_x,
translate_y, rotate, scale) and a map f between spaces g acts on::

    L_X f(x) = d/dt g_{−t} f(g_t x) |_{t=0} = J_f(x) · v(x) − v(f(x))

with v(·) the action's tangent (a feature map's warp derivative; 0 for a vector such as the
class scores, where L_X f is the derivative of f(g_t x) itself). It is 0 exactly when f is
equivariant to the transform to first order.

What :func:`lie_derivatives` computes, per image, in one forward-mode pass (exact
derivatives, no finite differences) and one more pass per attributed module:

- **relative**: ‖L_X r(x)‖ / ‖r(x)‖ for every measured layer's output r (the input: 0 up to
  rounding, since normalisation per channel commutes with the warp);
- **end to end**, with s = softmax(model(x)): ``end_to_end_sq`` = ‖L_X s‖² (the paper's
  squared Eq. 4, summed over classes) and ``end_to_end_abs`` = mean over classes of
  |L_X s| (their code's ``.abs().mean(-1)``, lie-deriv issue #6) — both named, never mixed;
- **contributions** (their layer-wise equivariance error): the chain rule splits the end
  to end derivative over the modules of the network, L_X s = Σ_i J_{s∘>i} L_i with
  L_i = L_X(module_i)(its input) and J_{s∘>i} everything after it up to the softmax. Their
  code estimates ‖J_{s∘>i} L_i‖² per module with random probes (⟨∂(zᵀs)/∂out_i, L_i⟩²,
  z ~ N(0, I), whose expectation it is); defstab computes that expectation exactly, by
  pushing L_i forward from module i's output (a forward hook adds it as the tangent).
  Modules: every leaf module (no children), as theirs, plus every measured module not
  among them (a block as one unit). The leaves' vectors sum to L_X s except for what
  operations outside modules add (a functional ``x.mean((2, 3))``, ``torch.flatten``):
  its squared norm is ``unattributed``.

Squares do not add: Σ_i contribution_i ≠ end_to_end_sq in general (cross terms), as in
their paper; ``unattributed`` is the squared norm of the *vector* remainder.

Example:
    >>> import torch
    >>> from defstab.models import create_model
    >>> model = create_model("vgg_cifar_maxpool", width=0.125, seed=0)
    >>> res = lie_derivatives(model, torch.rand(4, 3, 32, 32), ["rotate"],
    ...                       layers=["features.conv1_1", "features.pool1"])
    >>> res.relative.shape, res.end_to_end_sq.shape   # (transforms, layers, images), (T, N)
    (torch.Size([1, 3, 4]), torch.Size([1, 4]))
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from typing import Any

import torch
import torch.autograd.forward_ad as fwAD
from torch import nn

from defstab._validate import check_images
from defstab.data.stream import TensorImages
from defstab.measure.layers import INPUT, is_attention, prefix_tokens, resolve_layers
from defstab.measure.lie_actions import (
    action_tangent,
    check_convention,
    parse_transforms,
    warp_tangent,
)
from defstab.models.outputs import class_scores
from defstab.progress import progress as bar
from defstab.tap import (
    evaluation_mode,
    first_tensor,
    hooks_removed_after,
    model_device_dtype,
    run_checked,
)

#: activations of a chunk aim at about this many bytes (every leaf's L_i is kept for it)
CHUNK_BYTES = 256 << 20
#: module types whose contribution is not attributed (identities in eval mode)
SKIPPED_LEAVES = (nn.Dropout, nn.Dropout2d, nn.Dropout1d, nn.Identity)


@dataclasses.dataclass
class LieResult:
    """Lie derivatives of one model on N images.

    Attributes:
        transforms: the T transforms, e.g. ``("translate_x", "rotate")``.
        layers: the L measured layers, ``"input"`` first.
        relative: (T, L, N) ‖L_X r(x)‖ / ‖r(x)‖ per layer and image (float64).
        end_to_end_sq: (T, N) ‖L_X softmax(f(x))‖², summed over classes.
        end_to_end_abs: (T, N) mean over classes of |L_X softmax(f(x))|.
        units: the U modules attributed (leaves in forward order, then measured
            modules that are not leaves); empty when contributions were not asked for.
        unit_types: their class names.
        leaf: (U,) bool, True for a leaf module.
        contributions: (T, U, N) ‖J_{softmax∘>i} L_i‖² per module and image, or None.
        unattributed: (T, N) ‖L_X s − Σ_leaves J L_i‖², what no leaf module accounts for.
        meta: transforms' parameterisation, aggregation names, counts.
    """

    transforms: tuple[str, ...]
    layers: list[str]
    relative: torch.Tensor
    end_to_end_sq: torch.Tensor
    end_to_end_abs: torch.Tensor
    units: list[str]
    unit_types: list[str]
    leaf: torch.Tensor
    contributions: torch.Tensor | None
    unattributed: torch.Tensor | None
    meta: dict[str, Any]

    @property
    def n_images(self) -> int:
        return int(self.relative.shape[-1])

    def layer_columns(self) -> dict[str, dict[str, float | None]]:
        """Per measured layer, the columns it adds to ``sensitivity.csv``:
        ``lie_<t>`` (mean relative Lie derivative), ``lie_<t>_std`` and, where the layer's
        module was attributed, ``lie_<t>_contribution`` (mean over images)."""
        index = {u: k for k, u in enumerate(self.units)}
        columns = {}
        for j, layer in enumerate(self.layers):
            row = {}
            for i, t in enumerate(self.transforms):
                values = self.relative[i, j]
                row[f"lie_{t}"] = float(values.mean())
                row[f"lie_{t}_std"] = float(values.std()) if values.numel() > 1 else 0.0
                if self.contributions is not None:
                    k = index.get(layer)
                    row[f"lie_{t}_contribution"] = (
                        None if k is None else float(self.contributions[i, k].mean())
                    )
            columns[layer] = row
        return columns

    def unit_rows(self) -> list[dict[str, Any]]:
        """``lie_layers.csv``: one row per attributed module and transform (tidy), then a
        row per transform for what operations outside modules add."""
        rows = []
        if self.contributions is None:
            return rows
        for k, unit in enumerate(self.units):
            for i, t in enumerate(self.transforms):
                values = self.contributions[i, k]
                rows.append({
                    "order": k, "module": unit, "type": self.unit_types[k],
                    "leaf": bool(self.leaf[k]), "transform": t,
                    "contribution_mean": float(values.mean()),
                    "contribution_std": float(values.std()) if values.numel() > 1 else 0.0,
                    "share_of_leaves": float(values.mean() / _leaf_total(self, i)),
                })  # fmt: skip
        for i, t in enumerate(self.transforms):
            values = self.unattributed[i]
            rows.append({
                "order": len(self.units), "module": "(outside modules)", "type": "",
                "leaf": False, "transform": t, "contribution_mean": float(values.mean()),
                "contribution_std": float(values.std()) if values.numel() > 1 else 0.0,
                "share_of_leaves": float(values.mean() / _leaf_total(self, i)),
            })  # fmt: skip
        return rows

    def end_to_end_rows(self) -> list[dict[str, Any]]:
        """``lie.csv``: one row per transform: the end-to-end value in both aggregations
        (mean and std over images), the leaves' summed contributions, the unattributed."""
        rows = []
        for i, t in enumerate(self.transforms):
            sq, ab = self.end_to_end_sq[i], self.end_to_end_abs[i]
            row = {
                "transform": t,
                "end_to_end_sq_mean": float(sq.mean()),
                "end_to_end_sq_std": float(sq.std()) if sq.numel() > 1 else 0.0,
                "end_to_end_abs_mean": float(ab.mean()),
                "end_to_end_abs_std": float(ab.std()) if ab.numel() > 1 else 0.0,
                "n_images": self.n_images,
            }
            if self.contributions is not None:
                row["leaf_contributions_sum"] = float(_leaf_total(self, i))
                row["unattributed_mean"] = float(self.unattributed[i].mean())
            rows.append(row)
        return rows


def _leaf_total(res: LieResult, i: int) -> float:
    total = float(res.contributions[i][res.leaf].mean(-1).sum())
    return total if total > 0 else math.nan


@torch.no_grad()
def lie_derivatives(
    model: nn.Module,
    images: torch.Tensor,
    transforms=("translate_x", "translate_y", "rotate", "scale"),
    layers: list[str] | str | None = None,
    *,
    preprocess=None,
    contributions: bool = True,
    output_key=None,
    batch_size: int | None = None,
    progress: bool = False,
    convention: str = "symmetric",
) -> LieResult:
    """Lie derivatives per layer, end to end and per module (see the module docstring).

    Args:
        model: any ``nn.Module`` returning class scores (N, classes) (read by
            :func:`defstab.models.outputs.class_scores`, ``output_key`` as there); run in
            eval mode, each module's mode restored; CPU or GPU, any number of classes.
        images: (N, C, H, W) images in the range the warp acts on, or a stream
            (:class:`~defstab.data.stream.DatasetImages`); ``preprocess`` (mean/std
            normalisation) is applied after the warp.
        transforms: names of :data:`~defstab.measure.lie_actions.TRANSFORMS` (or
            ``"translate"`` for both axes), a list or a comma-separated string.
        layers: as :func:`~defstab.measure.sensitivity.measure_sensitivity`'s.
        contributions: also attribute the end-to-end derivative to modules (one more
            forward pass per module and transform).
        batch_size: images per chunk; default from the size of the largest activation.
        progress: show a progress bar.
        convention: the derivative at t = 0 of the bilinear warp: "symmetric" (central
            differences, the default) or "gruver" (their one-sided derivative through
            ``floor``, to compare with their tables; see
            :func:`~defstab.measure.lie_actions.floor_differences`).
    """
    transforms = parse_transforms(transforms)
    check_convention(convention)
    if hasattr(images, "batches"):
        source = images
    else:
        check_images(images)
        source = TensorImages(images)
    if batch_size is not None and (not isinstance(batch_size, int) or batch_size < 1):
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}.")
    names = resolve_layers(model, layers)
    all_modules = dict(model.named_modules())
    measured = {name: all_modules[name] for name in names[1:]}
    # token sequences are acted on as maps in models with attention (ViTs), else as vectors
    prefix = prefix_tokens(model) if any(is_attention(m) for m in model.modules()) else None
    units = _units(model, names[1:]) if contributions else {}
    device, dtype = model_device_dtype(model)
    n = len(source)
    t_count, l_count, u_count = len(transforms), len(names), len(units)
    relative = torch.zeros(t_count, l_count, n, dtype=torch.float64)
    e2e_sq = torch.zeros(t_count, n, dtype=torch.float64)
    e2e_abs = torch.zeros_like(e2e_sq)
    contrib = torch.zeros(t_count, u_count, n, dtype=torch.float64) if contributions else None
    residual = torch.zeros_like(e2e_sq) if contributions else None
    called: set[str] = set()
    measured_at = torch.zeros(n, dtype=torch.bool)  # an unreadable image is left out
    with evaluation_mode(model):
        if batch_size is None:
            probe = next(source.batches(None, 2, 0, min(2, n)))[1]
            batch_size = _chunk_size(model, probe.to(device, dtype), preprocess)
        steps = -(-n // batch_size) * t_count * (2 + u_count)
        pbar = bar(total=steps, desc="Lie derivative", unit="pass") if progress else _Silent()
        try:
            for positions, x in source.batches(None, batch_size):
                x = x.to(device, dtype)
                measured_at[positions] = True
                for i, transform in enumerate(transforms):
                    full = _full_pass(model, x, transform, measured, preprocess, prefix,
                                      output_key, convention)  # fmt: skip
                    pbar.update(1)
                    for j, name in enumerate(names):
                        relative[i, j, positions] = full["relative"][name].double().cpu()
                    tangent = full["scores_tangent"].double()
                    e2e_sq[i, positions] = tangent.pow(2).sum(1).cpu()
                    e2e_abs[i, positions] = tangent.abs().mean(1).cpu()
                    if not contributions:
                        pbar.update(1 + u_count)
                        continue
                    local = _local_derivatives(model, x, transform, units, preprocess, prefix,
                                               convention)  # fmt: skip
                    called.update(local)
                    pbar.update(1)
                    remainder = tangent
                    for k, (unit, module) in enumerate(units.items()):
                        if unit in local:
                            pushed = _pushed(model, x, module, local[unit], preprocess,
                                             output_key).double()  # fmt: skip
                            contrib[i, k, positions] = pushed.pow(2).sum(1).cpu()
                            if _is_leaf(module):
                                remainder = remainder - pushed
                        pbar.update(1)
                    residual[i, positions] = remainder.pow(2).sum(1).cpu()
        finally:
            pbar.close()
    if not measured_at.any():
        raise ValueError("none of the images could be read.")
    keep = [k for k, u in enumerate(units) if u in called]  # modules the forward never calls
    unit_names = [list(units)[k] for k in keep]
    at = measured_at
    return LieResult(
        transforms=transforms,
        layers=names,
        relative=relative[..., at],
        end_to_end_sq=e2e_sq[:, at],
        end_to_end_abs=e2e_abs[:, at],
        units=unit_names,
        unit_types=[type(units[u]).__name__ for u in unit_names],
        leaf=torch.tensor([_is_leaf(units[u]) for u in unit_names], dtype=torch.bool),
        contributions=None if contrib is None else contrib[:, keep][..., at],
        unattributed=None if residual is None else residual[:, at],
        meta={
            "transforms": list(transforms),
            "parameterisation": "Gruver et al.: normalised coordinates, align_corners=True; "
            "translate t = 1 is (side − 1)/2 px, rotate in radians, scale factor 1 − t",
            "derivative": "symmetric (central) derivative of the bilinear warp at t = 0"
            if convention == "symmetric"
            else "Gruver et al.'s: the bilinear warp differentiated through floor at t = 0 "
            "(one-sided, pixel by pixel)",
            "convention": convention,
            "end_to_end": {
                "sq": "sum over classes of (L_X softmax)^2 (the paper's Eq. 4)",
                "abs": "mean over classes of |L_X softmax| (their code)",
            },
            "contributions": "exact expectation of their probe estimator"
            if contributions
            else None,
            "images": int(at.sum()),
        },
    )


class _Silent:
    def update(self, n=1):
        pass

    def close(self):
        pass


def _is_leaf(module: nn.Module) -> bool:
    return next(iter(module.children()), None) is None


def _units(model: nn.Module, measured: list[str]) -> dict[str, nn.Module]:
    """Leaves (their code's layers; dropout and identities excluded) in ``named_modules``
    order, then the measured modules that are not leaves."""
    units = {
        name: m
        for name, m in model.named_modules()
        if name and _is_leaf(m) and not isinstance(m, SKIPPED_LEAVES)
    }
    modules = dict(model.named_modules())
    for name in measured:
        units.setdefault(name, modules[name])
    return units


def _first_tensor(out):
    """The tensor a unit returned (None when it returned none: not attributed)."""
    if isinstance(out, torch.Tensor):
        return out
    if isinstance(out, (tuple, list)) and out and isinstance(out[0], torch.Tensor):
        return out[0]
    return None


def _dual_input(x, transform, preprocess, convention):
    """preprocess(x) as a dual tensor whose tangent is that of the warped input."""
    dual = fwAD.make_dual(x, warp_tangent(x, transform, convention))
    return preprocess(dual) if preprocess is not None else dual


def _full_pass(model, x, transform, measured, preprocess, prefix, output_key, convention):
    """One forward-mode pass with the warp's tangent at the input: every measured layer's
    relative Lie derivative (N,) and the softmax's tangent (N, classes)."""
    relative = {}

    def record(name, y):
        primal, tangent = fwAD.unpack_dual(y)
        if tangent is None:
            tangent = torch.zeros_like(primal)
        lie = tangent - action_tangent(primal, transform, prefix, convention)
        dims = tuple(range(1, primal.dim()))
        norm = primal.double().pow(2).sum(dims).sqrt()
        size = lie.double().pow(2).sum(dims).sqrt()
        relative[name] = torch.where(norm > 0, size / norm, math.nan)  # r(x) = 0: undefined

    hooks = []
    for name, module in measured.items():

        def hook(mod, args, out, name=name):
            record(name, first_tensor(out, name))

        hooks.append(module.register_forward_hook(hook))
    with hooks_removed_after(hooks), fwAD.dual_level(), _forward_ad_errors():
        inputs = _dual_input(x, transform, preprocess, convention)
        record(INPUT, inputs)
        scores = class_scores(model(inputs), output_key)
        tangent = fwAD.unpack_dual(torch.softmax(scores, dim=1)).tangent
    missing = [name for name in measured if name not in relative]
    if missing:
        raise ValueError(f"layer {missing[0]!r} is never called by the model's forward pass.")
    return {"relative": relative, "scores_tangent": tangent}


def _local_derivatives(model, x, transform, units, preprocess, prefix, convention):
    """L_i = J_module(in_i) · v(in_i) − v(out_i) for every call of every unit, computed on
    its own (the module alone, its input's tangent the action's). {unit: [L per call]}."""
    local: dict[str, list[torch.Tensor]] = {}
    busy = []  # while a module runs on its own, nested modules' hooks stand by

    def pre(name, module, args):
        if busy:
            return
        busy.append(name)
        try:
            tensors = [a for a in args if isinstance(a, torch.Tensor)]
            if not tensors or not tensors[0].is_floating_point():
                return
            duals = [
                fwAD.make_dual(a.clone(), action_tangent(a, transform, prefix, convention))
                if isinstance(a, torch.Tensor) and a.is_floating_point()
                else a
                for a in args
            ]  # cloned: an in-place module must not change the forward's own input
            out = _first_tensor(module(*duals))
            if out is None:
                return
            primal, tangent = fwAD.unpack_dual(out)
            if tangent is None:
                tangent = torch.zeros_like(primal)
            lie = tangent - action_tangent(primal, transform, prefix, convention)
            local.setdefault(name, []).append(lie)
        finally:
            busy.pop()

    hooks = [
        m.register_forward_pre_hook(lambda mod, args, name=name: pre(name, mod, args))
        for name, m in units.items()
    ]
    with hooks_removed_after(hooks), fwAD.dual_level(), _forward_ad_errors():
        model(preprocess(x) if preprocess is not None else x)
    return local


def _pushed(model, x, module, derivatives, preprocess, output_key):
    """J_{softmax∘>i} L_i: the forward pass with L_i added to the tangent of each of the
    module's calls; (N, classes) tangent of the softmax."""
    calls = iter(derivatives)

    def hook(mod, args, out):
        y = _first_tensor(out)
        lie = next(calls, None)
        if y is None or lie is None:
            return None
        primal, tangent = fwAD.unpack_dual(y)
        dual = fwAD.make_dual(primal, lie if tangent is None else tangent + lie)
        return dual if isinstance(out, torch.Tensor) else (dual, *out[1:])

    handles = [module.register_forward_hook(hook)]
    with hooks_removed_after(handles), fwAD.dual_level(), _forward_ad_errors():
        scores = class_scores(model(preprocess(x) if preprocess is not None else x), output_key)
        tangent = fwAD.unpack_dual(torch.softmax(scores, dim=1)).tangent
    return torch.zeros_like(scores) if tangent is None else tangent


@contextlib.contextmanager
def _forward_ad_errors():
    """One sentence for an operator without a forward-mode derivative. torch's fused
    attention kernels (``nn.MultiheadAttention``'s eval fast path, flash and efficient
    ``scaled_dot_product_attention``) have none, so meanwhile attention takes the composite
    "math" path, which computes the same thing from differentiable operators."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    fastpath = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        with sdpa_kernel(SDPBackend.MATH):
            yield
    except (NotImplementedError, RuntimeError) as e:
        if "forward AD" in str(e) or "forward-mode" in str(e) or "jvp" in str(e).lower():
            raise ValueError(
                "the Lie derivative needs forward-mode derivatives, and an operator of this "
                f"model has none in torch {torch.__version__}: {str(e).splitlines()[0]}"
            ) from None
        raise
    finally:
        torch.backends.mha.set_fastpath_enabled(fastpath)


def _chunk_size(model, probe, preprocess) -> int:
    """Images per chunk: every leaf's L_i for the chunk is kept, about the sum of all
    activations (≈ 3× with the passes' tangents), aimed at :data:`CHUNK_BYTES`."""
    total = 0

    def count(mod, args, out):
        nonlocal total
        y = _first_tensor(out)
        if y is not None:
            total += y[:1].numel() * y.element_size()

    hooks = [m.register_forward_hook(count) for m in model.modules() if _is_leaf(m)]
    with hooks_removed_after(hooks):
        run_checked(model, preprocess(probe) if preprocess is not None else probe)
    return int(max(1, min(256, CHUNK_BYTES // max(1, 3 * total))))
