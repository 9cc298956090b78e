"""Per-layer shift analysis: the sampling-theorem argument made measurable.

For a layer with cumulative stride s (from the model's ``feature_info`` where it describes
the layer, else the network's own size arithmetic; see :func:`defstab.tap.layer_info`), a shift of
the input by k pixels can only shift the feature map exactly when s divides k (Azulay &
Weiss §3).
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
from defstab.measure.sensitivity import DEFAULT_STORE_BYTES
from defstab.measure.store import RepresentationStore
from defstab.tap import cumulative_strides, evaluation_mode, layer_info, model_device_dtype, tap
from defstab.translate.protocols import crop_path


@torch.no_grad()
def layer_shift_analysis(
    model: nn.Module,
    images: torch.Tensor,
    crop: int,
    max_shift: int,
    layers=None,
    preprocess=None,
    batch_frames: int = 64,
) -> list[dict]:
    """Rows (layer, stride, shifted_copies (s²), stride_source, shift, multiple_of_stride,
    invariance, equivariance).

    Works a few images at a time and reduces every layer inside its forward hook, so memory
    holds one chunk's activations plus the unshifted feature maps (in the same RAM/disk
    store as :func:`defstab.measure.measure_sensitivity`) — never every frame's.

    Args:
        images: (N, C, H, W) with W ≥ crop + max_shift and H ≥ crop (N ≥ 2).
        batch_frames: frames per forward pass.
    """
    names = resolve_layers(model, layers)[1:]
    frames, _ = crop_path(images, crop, max_shift, "horizontal")  # (N, S, C, crop, crop)
    n, s = frames.shape[:2]
    if n < 2:
        raise ValueError("the layer analysis needs at least 2 images (its normalizer is a median).")
    device, dtype = model_device_dtype(model)
    prep = preprocess or (lambda t: t)
    modules = dict(model.named_modules())
    with evaluation_mode(model):
        info = layer_info(model, names, prep(frames[0, :1].to(device, dtype)))
        # maps, forward order (tokens and vectors have no map to shift); a global pool
        # gets the stride of the map it pools
        cumulative = cumulative_strides(info)
        names = [n for n in info if cumulative[n] is not None and len(info[n].shape) == 3]
        shapes = {name: info[name].shape for name in names}
        strides = {name: cumulative[name] for name in names}
        # a margin of one feature pixel each side, on maps wide enough to keep some
        margin = {name: 1 if shapes[name][-1] >= 3 else 0 for name in names}
        feats = {
            name: shapes[name][0] * shapes[name][1] * (shapes[name][2] - 2 * margin[name])
            for name in names
        }
        pooled = {name: torch.zeros(n, s, shapes[name][0]) for name in names}
        equi = {name: torch.full((n, s), float("nan"), dtype=torch.float64) for name in names}
        per_chunk = max(1, batch_frames // s)
        with RepresentationStore(n, feats, DEFAULT_STORE_BYTES) as store:
            for start in range(0, n, per_chunk):
                rows = slice(start, min(start + per_chunk, n))
                b = rows.stop - rows.start

                def reduce(name, out, rows=rows, b=b):
                    r = out.float().reshape(b, s, *shapes[name])
                    pooled[name][rows] = r.mean((-1, -2)).cpu()
                    w, e = r.shape[-1], margin[name]
                    store.put(name, rows.start, r[:, 0, ..., e : w - e].reshape(b, -1))
                    for k in range(1, s):
                        m = round(k / strides[name])  # content moved left by k px = m features
                        lo, hi = e, w - e - m
                        if hi - lo >= 1:
                            a = r[:, k, ..., lo:hi].reshape(b, -1)
                            ref = r[:, 0, ..., lo + m : hi + m].reshape(b, -1)
                            equi[name][rows, k] = paired_distance(ref, a, "cosine").cpu()

                if names:
                    x = frames[rows].reshape(b * s, *frames.shape[2:]).to(device, dtype)
                    tap(model, {name: modules[name] for name in names}, prep(x), reduce)
            eq_norm = {
                name: median(pairwise_from_gram(store.gram(name), "cosine")) for name in names
            }
    out = []
    for name in names:
        ref = pooled[name][:, 0].double()
        inv_norm = median(pairwise_from_gram(ref @ ref.T, "cosine"))
        for k in range(1, s):
            inv = paired_distance(ref, pooled[name][:, k].double(), "cosine") / max(inv_norm, 1e-12)
            eq = equi[name][:, k] / max(eq_norm[name], 1e-12)
            out.append(
                {
                    "layer": name,
                    "stride": strides[name],
                    "shifted_copies": strides[name] ** 2,
                    "stride_source": info[name].source,
                    "shift": k,
                    "multiple_of_stride": int(k % strides[name] == 0),
                    "invariance": float(inv.mean()),
                    "equivariance": float(eq.mean()),
                }
            )
    return out
