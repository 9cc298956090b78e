"""Per-layer shift analysis: the sampling-theorem argument made measurable.

For a layer with cumulative stride s (input size / feature size), a shift of the input by
k pixels can only shift the feature map exactly when s divides k (Azulay & Weiss §3).
For shifts k = 1..K of the crop protocol (content moves by exactly k pixels, no padding)
we measure, per layer:

* ``invariance``: normalized cosine distance between the globally average-pooled
  representations of the unshifted and the shifted input (what a classifier head sees);
* ``equivariance``: normalized cosine distance between the shifted input's feature map
  and the unshifted one moved by round(k/s) feature pixels, over their overlap with a
  margin of one feature pixel cut from each side (away from padding effects);

each normalized by the median over pairs of distinct images of the same quantity at
k = 0, and split by whether s divides k.
"""

from __future__ import annotations

import torch
from torch import nn

from defstab.measure.distances import median, paired_distance, pairwise_from_gram
from defstab.measure.layers import resolve_layers
from defstab.measure.sensitivity import _model_device_dtype, evaluation_mode
from defstab.translate.protocols import crop_path


@torch.no_grad()
def capture(model: nn.Module, x: torch.Tensor, names: list[str]) -> dict[str, torch.Tensor]:
    modules = dict(model.named_modules())
    outs: dict[str, torch.Tensor] = {}
    hooks = [
        modules[n].register_forward_hook(
            lambda m, i, o, n=n: outs.__setitem__(
                n, (o[0] if isinstance(o, tuple) else o).detach().clone()
            )
        )
        for n in names
    ]
    try:
        with evaluation_mode(model):
            model(x)
    finally:
        for h in hooks:
            h.remove()
    return outs


def layer_shift_analysis(
    model: nn.Module, images: torch.Tensor, crop: int, max_shift: int, layers=None, preprocess=None
) -> list[dict]:
    """Rows (layer, stride, shift, multiple_of_stride, invariance, equivariance).

    Args:
        images: (N, C, H, W) with W ≥ crop + max_shift and H ≥ crop (N ≥ 2).
    """
    names = resolve_layers(model, layers)[1:]
    frames, _ = crop_path(images, crop, max_shift, "horizontal")  # (N, S, C, crop, crop)
    n, s = frames.shape[:2]
    device, _ = _model_device_dtype(model)
    x = frames.reshape(n * s, *frames.shape[2:]).to(device)
    if preprocess is not None:
        x = preprocess(x)
    reps = capture(model, x, names)
    rows = []
    for name in names:
        r = reps[name].float()
        if r.ndim != 4:
            continue
        r = r.reshape(n, s, *r.shape[1:])
        stride = max(1, round(crop / r.shape[-1]))
        pooled = r.mean((-1, -2))  # (N, S, C)
        ref = pooled[:, 0]
        inv_norm = median(pairwise_from_gram(ref.double() @ ref.double().T, "cosine"))
        w = r.shape[-1]
        base = r[:, 0]
        eq_norm_rep = base[..., 1 : w - 1].flatten(1).double()
        eq_norm = median(pairwise_from_gram(eq_norm_rep @ eq_norm_rep.T, "cosine"))
        for k in range(1, s):
            inv = paired_distance(ref, pooled[:, k], "cosine") / max(inv_norm, 1e-12)
            m = round(k / stride)
            # content moved left by k px: feature x' of frame k ~ feature x' + m of frame 0
            lo, hi = 1, w - 1 - m
            if hi - lo < 1:
                eq = torch.full((n,), float("nan"), dtype=torch.float64)
            else:
                a = r[:, k][..., lo:hi].flatten(1)
                b = base[..., lo + m : hi + m].flatten(1)
                eq = paired_distance(b, a, "cosine") / max(eq_norm, 1e-12)
            rows.append(
                {
                    "layer": name,
                    "stride": stride,
                    "shift": k,
                    "multiple_of_stride": int(k % stride == 0),
                    "invariance": float(inv.mean()),
                    "equivariance": float(eq.mean()),
                }
            )
    return rows
