"""measure_sensitivity: normalized distance per layer between r(x) and r(τx).

For every requested layer r and image x (Ruderman §2.1)::

    sensitivity(x) = d(r(x), r(τx)) / median_{i<j} d(r(x_i), r(x_j))

with the median over all pairs of undeformed images. One forward pass per chunk of
images runs x, τx and (optionally) the noise control x + η together; forward hooks reduce
every layer to per-image distances at once, and keep r(x) for the pairwise median.

Beside the paper's normalized distance, the same pass gives Petrini et al. 2021's
relative stability exactly (Petrini, Favero, Geiger, Wyart, *Relative stability toward
diffeomorphisms indicates performance in deep nets*)::

    D_f = ⟨‖f(τx) − f(x)‖²⟩ / ⟨‖f(x₁) − f(x₂)‖²⟩     G_f = ⟨‖f(x + η) − f(x)‖²⟩ / ⟨‖f(x₁) − f(x₂)‖²⟩
    R_f = D_f / G_f = ⟨‖f(τx) − f(x)‖²⟩ / ⟨‖f(x + η) − f(x)‖²⟩

with means of *squared Euclidean* distances whatever ``distance`` is, and Gaussian η added
where Petrini adds it, in the network's input space (after ``preprocess``), scaled per image
to ‖η‖ = ‖τx − x‖ measured in that same space.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from defstab._validate import check_images
from defstab.data.stream import DatasetImages, TensorImages
from defstab.deform import DeformationSpec, apply_tps
from defstab.measure.deformations import resolve_deformation
from defstab.measure.device import Chunk, PositionResults, chunks_of, device_budget, to_device
from defstab.measure.distances import check_distance, paired_distance
from defstab.measure.layers import INPUT, prefix_tokens, resolve_layers
from defstab.measure.normalizers import (
    ExactNormalizer,
    SampledNormalizer,
    resolve_normalizer,
)
from defstab.measure.result import SensitivityResult
from defstab.measure.shards import RAW, MeasurementParts, merge_shards, shard_range
from defstab.measure.worst_case import WorstCaseTPS, worst_case_displacements
from defstab.tap import (
    cumulative_strides,
    evaluation_mode,
    infos_from_shapes,
    model_device_dtype,
    probe_layers,
    tap,
)

__all__ = ["SensitivityResult", "evaluation_mode", "measure_sensitivity"]

DEFAULT_STORE_BYTES = 3 << 30  # 3 GiB of undeformed representations in RAM, the rest on disk
ACTIVATION_BYTES = 256 << 20  # aim for chunks whose largest activation is about this size


@torch.no_grad()
def measure_sensitivity(
    model: nn.Module,
    images: torch.Tensor | DatasetImages,
    deformation: DeformationSpec | torch.Tensor | None = None,
    layers: list[str] | str | None = None,
    distance: str = "cosine",
    generator: torch.Generator | None = None,
    *,
    noise_control: bool = True,
    preprocess=None,
    batch_size: int | None = None,
    store_bytes: int = DEFAULT_STORE_BYTES,
    spill_dir=None,
    device_bytes: int | None = None,
    progress: bool = False,
    tokens: str = "all",
    worst_case: WorstCaseTPS | None = None,
    labels: torch.Tensor | None = None,
    normalizer: str = "auto",
    shard: tuple[int, int] | None = None,
    aggregate: str = "mean",
) -> SensitivityResult | MeasurementParts:
    """Normalized distance between the representations of x and τx, layer by layer.

    Args:
        model: any ``nn.Module``; measured in eval mode under no_grad, each module's
            mode restored afterwards.
        images: (N, C, H, W) images (N ≥ 2), or a stream of them read chunk by chunk
            (:class:`~defstab.data.stream.DatasetImages`), in the range the deformation
            acts on (e.g. [0, 1]); ``preprocess`` (e.g. mean/std normalisation) is applied after the
            deformation, and layer 0 is what the model receives.
        deformation: a :class:`~defstab.deform.DeformationSpec` (one random deformation
            per image from ``generator``; default the paper's setting for the image size),
            or explicit displacements (N, k·k, 2) or fields (N, H, W, 2) in pixels.
        layers: module names (``named_modules()``), a comma-separated string, or None
            for the model's ``representation_points`` (the paper's networks) or every
            conv and downsampling module. ``"input"`` is always layer 0.
        distance: ``"cosine"`` (the paper's) or ``"euclidean"``.
        generator: CPU generator; all N deformations are drawn from it first, then all N
            noise images, before any chunking.
        noise_control: also measure x + η: Gaussian η added after ``preprocess`` (the
            network's input space, as Petrini et al. do), scaled per image to
            ‖η‖ = ‖prep(τx) − prep(x)‖; gives ``noise_*`` and Petrini's D_f, G_f, R_f.
        batch_size: images per forward chunk (each chunk runs 2 or 3 copies); default
            from the size of the largest activation. Results do not depend on it: every
            random draw happens up front, per image.
        store_bytes: RAM for undeformed representations (the rest goes to a temporary
            file in ``spill_dir``); the pairwise median stays exact either way.
        device_bytes: memory of the model's device for undeformed representations, kept
            there before any goes to RAM (``store_bytes``); default on a GPU half its free
            memory (``torch.cuda.mem_get_info``), on the CPU none (the device is the host).
        progress: show a progress bar.
        tokens: for token sequences (N, T, D), e.g. a ViT block's output: ``"all"``
            compares the whole (T·D) vector, class token included; ``"patches"`` drops
            the class (and distillation/register) tokens first (see
            :func:`defstab.measure.layers.prefix_tokens`). Feature maps are unaffected.
        worst_case: a :class:`~defstab.measure.worst_case.WorstCaseTPS`: also measure,
            per image, the worst TPS deformation of that budget found by projected
            gradient ascent (started from the image's random deformation when it has the
            same grid, plus ``restarts`` uniform starts drawn after the noise), maximising
            the distance at its ``layer`` (default: the last measured layer) or the loss.
        labels: (N,) true classes, for a worst case on the loss of the true label.
        normalizer: ``"exact"``: the median over all N(N−1)/2 pairs (every undeformed
            representation kept: O(N²) time, memory N × layers); ``"sampled"``: the
            images are processed in a seeded random order and the median is taken over
            the N // 2 disjoint pairs (2k, 2k + 1) of it, with a 95% order-statistic
            interval per layer (``normalizer_stats``) — O(N) time, flat memory;
            ``"auto"`` (default): exact up to
            :data:`~defstab.measure.normalizers.EXACT_UP_TO` images. Petrini's
            ``pairs_sq`` is exact in both. Sampled mode draws its noise per position of
            the order (:class:`PositionNoise`), so its noise values differ from exact
            mode's; the deformations are the same.
        aggregate: "mean" (Petrini et al.'s formula, R_f always) or "median": also
            ``relative_stability_median``, their results code's Σ_features median over
            images of (Δf)² under τ over the same under η — it keeps every image's squared
            differences per feature, so it needs the exact normalizer, the noise control
            and memory N × features × 8 bytes (refused above ``store_bytes``).
        shard: (index, count): measure only that shard of the sampled measurement and
            return its :class:`~defstab.measure.shards.MeasurementParts` (save them,
            then :func:`~defstab.measure.shards.merge_shards` every shard's parts into
            the result one process gives). Chunks are then of an even size.

    Returns:
        :class:`SensitivityResult`.
    """
    if hasattr(images, "batches"):  # a stream (defstab.data.stream): read chunk by chunk
        source = images
    else:
        check_images(images)
        source = TensorImages(images)
    n = len(source)
    if n < 2:
        raise ValueError("at least 2 images are needed: the normalizer is a median over pairs.")
    check_distance(distance)
    mode = resolve_normalizer(normalizer, n)
    if aggregate not in ("mean", "median"):
        raise ValueError(f"aggregate must be 'mean' or 'median', got {aggregate!r}.")
    if aggregate == "median" and (mode != "exact" or shard is not None or not noise_control):
        raise ValueError(
            "the median aggregate keeps every image's squared differences per feature: it "
            "needs the exact normalizer, one process and the noise control."
        )
    if shard is not None and mode == "exact":
        raise ValueError(
            "a shard needs the sampled normalizer: the exact median needs every image in "
            "one process (normalizer='sampled')."
        )
    if tokens not in ("all", "patches"):
        raise ValueError(f"tokens must be 'all' or 'patches', got {tokens!r}.")
    skip = prefix_tokens(model) if tokens == "patches" else 0
    if batch_size is not None and (not isinstance(batch_size, int) or batch_size < 1):
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}.")
    names = resolve_layers(model, layers)
    all_modules = dict(model.named_modules())
    modules = {name: all_modules[name] for name in names[1:]}
    device, dtype = model_device_dtype(model)
    image_shape = source.image_shape
    size = tuple(image_shape[-2:])
    if deformation is None:
        deformation = DeformationSpec.paper(max(size))
    deform = resolve_deformation(deformation, n, size, generator)
    if mode == "exact":
        order = None  # positions are items
        # drawn for all images at once, like the deformations: chunking must not change them
        all_noise = torch.randn((n, *image_shape), generator=generator) if noise_control else None
        noise_at = None if all_noise is None else _ItemNoise(all_noise)
    else:
        # a seeded random order: the pairs (2k, 2k + 1) of it are random pairs of images
        order = torch.randperm(n, generator=generator)
        seed = int(torch.randint(2**62, (1,), generator=generator))
        noise_at = PositionNoise(seed, image_shape) if noise_control else None
    attack_starts = attack_restarts = None
    if worst_case is not None:
        attack_layer = worst_case.layer or (
            names[-1] if worst_case.objective == "distance" else None
        )
        if attack_layer is not None and attack_layer not in names:
            raise ValueError(f"the attack layer {attack_layer!r} is not among the measured layers.")
        worst_case = _with_layer(worst_case, attack_layer)
        k2, c = worst_case.grid**2, worst_case.max_disp
        if deform.kind == "displacements" and deform.grid == worst_case.grid:
            attack_starts = deform.params.clamp(-c, c)  # the random deformation itself
        else:
            attack_starts = (torch.rand(n, k2, 2, generator=generator) * 2 - 1) * c
        attack_restarts = (
            torch.rand(worst_case.restarts, n, k2, 2, generator=generator) * 2 - 1
        ) * c
        worst_params = torch.zeros(n, k2, 2)
    prep = preprocess or (lambda x: x)
    passes = 2 + noise_control + (worst_case is not None)

    with evaluation_mode(model):
        # shapes only: a grey image, so that no file is read twice
        probe = prep(torch.full((1, *image_shape), 0.5, device=device, dtype=dtype))
        features = {INPUT: probe[0].numel()}
        tuple_outputs: dict[str, str] = {}
        strides: dict[str, int | None] = {INPUT: 1}
        stride_sources: dict[str, str] = {INPUT: "input"}
        if modules:
            shapes = probe_layers(model, modules, probe, tuple_outputs)
            infos = infos_from_shapes(model, shapes, tuple(probe.shape[1:]))
            strides.update(cumulative_strides(infos))
            stride_sources = {name: info.source for name, info in infos.items()}
            features.update(
                {
                    name: math.prod(shape) // shape[0] * (shape[0] - skip)
                    if len(shape) == 2
                    else math.prod(shape)
                    for name, shape in shapes.items()
                }
            )
            names = list(features)
            modules = {name: modules[name] for name in names[1:]}
        if batch_size is None:
            largest = max(features.values()) * passes * torch.finfo(dtype).bits // 8
            batch_size = max(1, min(64, ACTIVATION_BYTES // largest))
            if mode == "sampled" and batch_size > 1:
                batch_size -= batch_size % 2  # whole pairs per chunk, hence per shard
        start, stop = (0, n) if shard is None else shard_range(n, batch_size, shard)
        if shard is not None and shard[1] > 1 and batch_size % 2:
            raise ValueError(
                f"sharded measurements need an even batch size (a pair of images must not "
                f"straddle two shards), got {batch_size}."
            )
        # per position of [start, stop), on the device; NaN stays where an image could not
        # be read. Petrini's squared Euclidean distances are kept whatever `distance` is.
        kinds = ["dist_def", "sq_def"]
        kinds += ["dist_noise", "sq_noise"] if noise_control else []
        kinds += ["dist_worst"] if worst_case is not None else []
        results = PositionResults(kinds, len(names), start, stop, device)
        index = {name: i for i, name in enumerate(names)}
        per_feature = _per_feature_buffers(aggregate, names, features, n, store_bytes, device)
        pairs = (
            ExactNormalizer(
                n, features, store_bytes, spill_dir, device, device_budget(device, device_bytes)
            )
            if mode == "exact"
            else SampledNormalizer(n, names, distance, device)
        )
        # what each chunk indexes lives on the device, copied there once
        deform_on = deform.to(device)
        order_on = None if order is None else to_device(order, device)
        if worst_case is not None:  # the attack's starts, and the worst found, per item
            attack_starts, attack_restarts = attack_starts.to(device), attack_restarts.to(device)
            worst_params = worst_params.to(device)
            labels = labels.to(device) if labels is not None else None
        bar = None
        if progress:
            from defstab.progress import progress as progress_bar

            bar = progress_bar(total=stop - start, desc="measuring", unit="img", leave=False)
        try:
            # no host synchronisation in this loop (tests/test_device_path.py counts them):
            # every result stays on the device until the loop is over
            # a stream's images are checked on the device and the flag read at the end
            nonfinite = torch.zeros((), dtype=torch.bool, device=device)
            for chunk, x in chunks_of(source, order, batch_size, start, stop, device):
                b = x.shape[0]
                rows = chunk.rows()  # into per-position arrays
                items = rows if order_on is None else order_on[rows]
                x = to_device(x, device, dtype)
                nonfinite |= ~torch.isfinite(x.sum())
                x_in, tx_in = prep(torch.cat([x, deform_on.apply(x, items)])).split(b)
                parts = [x_in, tx_in]
                if noise_control:
                    eta = to_device(noise_at(chunk), device)
                    parts.append(x_in + _matched_noise(x_in, tx_in, eta))
                if worst_case is not None:
                    worst, _ = worst_case_displacements(
                        model,
                        x,
                        worst_case,
                        attack_starts[items],
                        attack_restarts[:, items],
                        labels[items] if labels is not None else None,
                        preprocess,
                        distance,
                    )
                    worst_params[items] = worst.detach().float()
                    parts.append(prep(apply_tps(x, worst, worst_case.grid, worst_case.padding)))
                batch = torch.cat(parts)

                def on_output(name, y, chunk=chunk, b=b):
                    if skip and y.ndim == 3:  # (N, T, D) tokens: drop the class tokens
                        y = y[:, skip:]
                    flat = y.reshape(y.shape[0], -1)
                    i = index[name]
                    ref, moved = flat[:b], flat[b : 2 * b]
                    results.put("dist_def", i, chunk, paired_distance(ref, moved, distance))
                    results.put("sq_def", i, chunk, _squared(ref, moved))
                    if noise_control:
                        noisy = flat[2 * b : 3 * b]
                        results.put("dist_noise", i, chunk, paired_distance(ref, noisy, distance))
                        results.put("sq_noise", i, chunk, _squared(ref, noisy))
                    if per_feature is not None:  # (Δf)² per image and feature, for medians
                        rows = chunk.rows()
                        per_feature[name][0][rows] = (moved - ref).float().pow(2)
                        per_feature[name][1][rows] = (flat[2 * b : 3 * b] - ref).float().pow(2)
                    if worst_case is not None:
                        worst = flat[(passes - 1) * b :]
                        results.put("dist_worst", i, chunk, paired_distance(ref, worst, distance))
                    pairs.add(name, chunk, ref)

                on_output(INPUT, batch)
                if modules:
                    tap(model, modules, batch, on_output)
                if bar is not None:
                    bar.update(b)
            # the loop is over: the host reads its results, once
            if bool(nonfinite):
                raise ValueError("some of the images contain NaN or infinite values.")
            measured = torch.arange(start, stop) if order is None else order[start:stop]
            raw = {kind: results.to_host(kind, measured, n) for kind in kinds}
            dist_def = raw["dist_def"]
            stats = state = None
            if mode == "exact":
                valid = ~torch.isnan(dist_def[0])
                if bool(valid.any()):
                    stats = [pairs.finish(name, distance, device, valid) for name in names]
            else:
                state = pairs.state()
            spilled, in_ram = pairs.spilled, pairs.in_ram
        finally:
            pairs.close()
            if bar is not None:
                bar.close()

    meta = {
        "distance": distance,
        "n_images": n,
        "image_size": list(size),
        "deformation": deform.record(),
        "noise_control": noise_control,
        "noise_space": "network input (after preprocess)" if noise_control else None,
        "batch_size": batch_size,
        "spilled_layers": spilled,
        "host_layers": in_ram,
        "normalizer": mode,
        **(
            {"normalizer_pairs": "disjoint pairs of a seeded random order"}
            if mode == "sampled"
            else {}
        ),
        "tokens": tokens,
        "tuple_outputs": tuple_outputs,
        # cumulative stride s per layer (None: not a feature map); full invariance to
        # translation there needs all s² sub-stride shifted copies (Azulay & Weiss)
        "strides": strides,
        "stride_sources": stride_sources,
    }
    if worst_case is not None:
        meta["worst_case"] = worst_case.record()
    meta["aggregate"] = aggregate
    if per_feature is not None:
        valid = (~torch.isnan(dist_def[0])).to(device)
        meta["relative_stability_median"] = [
            _median_ratio(per_feature[name][0][valid], per_feature[name][1][valid])
            for name in names
        ]
    parts = MeasurementParts(
        layers=names,
        raw={kind: raw.get(kind) for kind in RAW},
        meta=meta,
        deformation_params=deform.params,
        worst_params=worst_params.cpu() if worst_case is not None else None,
        order=order,
        normalizer_state=state,
        stats=stats,
        skipped=list(source.skipped),
        shard=(0, 1) if shard is None else tuple(shard),
        positions=(start, stop),
    )
    return parts if shard is not None else merge_shards([parts])


def _per_feature_buffers(aggregate, names, features, n, store_bytes, device):
    """For the median aggregate: per layer, (N, F) float32 squared differences under the
    deformation and under the noise; None for the mean. Refused beyond ``store_bytes``."""
    if aggregate != "median":
        return None
    need = 2 * 4 * n * sum(features[name] for name in names)
    if need > store_bytes:
        raise ValueError(
            f"the median aggregate keeps {need / 2**30:.2f} GiB of squared differences for "
            f"{n} images over these layers, more than the {store_bytes / 2**30:.2f} GiB "
            "allowed (--ram-budget); measure fewer images or layers."
        )
    return {
        name: tuple(torch.zeros(n, features[name], device=device) for _ in range(2))
        for name in names
    }


def _median_ratio(deformed: torch.Tensor, noisy: torch.Tensor) -> float:
    """Σ_features median over images of (Δf)² under τ, over the same under η: (N, F)
    each. The median of an even count is the mean of its two middle values."""
    num, den = _feature_medians(deformed).sum(), _feature_medians(noisy).sum()
    return float(num / den) if den > 0 else math.nan


def _feature_medians(values: torch.Tensor) -> torch.Tensor:
    """(N, F) -> (F,) medians over images (sorting: torch.quantile refuses large inputs)."""
    ordered = values.sort(dim=0).values.double()
    n = ordered.shape[0]
    return (ordered[(n - 1) // 2] + ordered[n // 2]) / 2


def _with_layer(attack, layer):
    from dataclasses import replace

    return replace(attack, layer=layer)


def _squared(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Squared Euclidean distance between rows: (N, F), (N, F) -> (N,) float64.

    The norm accumulates in the rows' precision (float32: relative error ~1e-7, pairwise
    summation), squared in float64; a float64 copy of the difference cost 5% of a
    measurement."""
    return torch.linalg.vector_norm(a - b, dim=1).double().square()


class PositionNoise:
    """Gaussian noise per position of the processing order, the same whatever the chunks.

    Positions are grouped in blocks of :attr:`BLOCK`; block j is drawn at once from a
    generator seeded ``seed + j``, so a chunk (or a shard) draws only its own blocks.
    """

    BLOCK = 64

    def __init__(self, seed: int, image_shape: tuple[int, ...]):
        self.seed, self.image_shape = seed, tuple(image_shape)
        self._cached: tuple[int, torch.Tensor] | None = None

    def _block(self, j: int) -> torch.Tensor:
        if self._cached is None or self._cached[0] != j:
            g = torch.Generator().manual_seed(self.seed + j)
            self._cached = (j, torch.randn((self.BLOCK, *self.image_shape), generator=g))
        return self._cached[1]

    def __call__(self, chunk: Chunk) -> torch.Tensor:
        """(b, C, H, W) noise of the chunk's readable positions, on the host."""
        p0, p1 = chunk.start, chunk.stop
        out = torch.empty((p1 - p0, *self.image_shape))
        for j in range(p0 // self.BLOCK, (p1 - 1) // self.BLOCK + 1):  # one or two blocks
            a, z = max(p0, j * self.BLOCK), min(p1, (j + 1) * self.BLOCK)
            out[a - p0 : z - p0] = self._block(j)[a - j * self.BLOCK : z - j * self.BLOCK]
        return out if chunk.whole else out[chunk.offsets.cpu()]


class _ItemNoise:
    """The exact mode's noise, drawn for all N images up front: a chunk's rows of it."""

    def __init__(self, noise: torch.Tensor):
        self.noise = noise

    def __call__(self, chunk: Chunk) -> torch.Tensor:
        block = self.noise[chunk.start : chunk.stop]
        return block if chunk.whole else block[chunk.offsets.cpu()]


def _matched_noise(x: torch.Tensor, tx: torch.Tensor, eta: torch.Tensor) -> torch.Tensor:
    """Gaussian noise ``eta`` (drawn up front) scaled per image to ‖τx − x‖."""
    eta = eta.to(x.device, x.dtype)
    target = torch.linalg.vector_norm((tx - x).flatten(1), dim=1)
    current = torch.linalg.vector_norm(eta.flatten(1), dim=1).clamp_min(1e-12)
    return eta * (target / current).view(-1, *[1] * (x.ndim - 1))
