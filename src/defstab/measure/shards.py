"""A measurement split over processes: each shard measures a range of positions of the
processing order and hands back its raw distances and normalizer state; the merge makes
the result one process would have made.

Shard i of n covers chunks [⌊i·C/n⌋, ⌊(i+1)·C/n⌋) of the C chunks of the measurement, so
every shard runs the very chunks one process would run (the same images together in a
forward pass: equal thread counts give equal bits), and the chunk size is even, so no
pair (2k, 2k + 1) of the sampled normalizer straddles two shards. The merge fills each
per-image value and pair distance from the shard that measured it, and adds the running
sums (:meth:`~defstab.measure.normalizers.SampledNormalizer.merged`): the per-image values
and sampled pairs equal one process's bit for bit; Petrini's mean squared pair distance
equals it to rounding (sums added in another order).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from defstab.measure.normalizers import NormalizerStats, SampledNormalizer
from defstab.measure.result import SensitivityResult

#: Raw (L, N) float64 arrays a shard fills (NaN outside it and for unreadable images).
RAW = ("dist_def", "sq_def", "dist_noise", "sq_noise", "dist_worst")
#: Version of the shard file layout.
FORMAT = 1


def check_shard(shard: tuple[int, int]) -> tuple[int, int]:
    try:
        index, count = (int(v) for v in shard)
    except (TypeError, ValueError):
        raise ValueError(f"shard must be (index, count), got {shard!r}.") from None
    if count < 1 or not 0 <= index < count:
        raise ValueError(f"shard {index}/{count} does not exist: give 0 ≤ index < count.")
    return index, count


def shard_range(n: int, batch_size: int, shard: tuple[int, int]) -> tuple[int, int]:
    """Positions [start, stop) of shard (index, count) of ``n`` positions in chunks."""
    index, count = check_shard(shard)
    chunks = math.ceil(n / batch_size)
    if count > chunks:
        raise ValueError(
            f"{count} shards are more than the {chunks} chunks of {batch_size} images that "
            f"{n} images make; use at most {chunks} shards (or a smaller batch size)."
        )
    first, last = index * chunks // count, (index + 1) * chunks // count
    return first * batch_size, min(last * batch_size, n)


@dataclass
class MeasurementParts:
    """What a measurement (or one shard of it) computed before normalizing.

    Attributes:
        layers: names, layer 0 the input.
        raw: :data:`RAW` name -> (L, N) float64 or None (not measured).
        meta: settings, shared by every shard.
        deformation_params, worst_params, order: (N, …) as in :class:`SensitivityResult`.
        normalizer_state: the sampled normalizer's state (None when exact).
        stats: the exact normalizer's per-layer statistics (None when sampled).
        skipped: unreadable images: {"item", "path", "reason"}.
        shard: (index, count) and positions [start, stop) measured.
    """

    layers: list[str]
    raw: dict[str, torch.Tensor | None]
    meta: dict[str, Any]
    deformation_params: torch.Tensor | None
    worst_params: torch.Tensor | None = None
    order: torch.Tensor | None = None
    normalizer_state: dict | None = None
    stats: list[NormalizerStats] | None = None
    skipped: list[dict] = field(default_factory=list)
    shard: tuple[int, int] = (0, 1)
    positions: tuple[int, int] = (0, 0)

    def save(self, path) -> Path:
        """One file (torch's zip format, plain tensors and lists: ``weights_only`` loads
        it), written atomically."""
        from defstab.io.atomic import atomic_path

        if self.stats is not None:
            raise ValueError("an exact measurement is not sharded: only sampled parts are saved.")
        record = {
            "format": FORMAT,
            "layers": self.layers,
            "raw": self.raw,
            "meta": self.meta,
            "deformation_params": self.deformation_params,
            "worst_params": self.worst_params,
            "order": self.order,
            "normalizer_state": self.normalizer_state,
            "skipped": self.skipped,
            "shard": list(self.shard),
            "positions": list(self.positions),
        }
        with atomic_path(path) as tmp:
            torch.save(record, tmp)
        return Path(path)

    @classmethod
    def load(cls, path) -> MeasurementParts:
        """A saved shard; a file that is not one is one sentence."""
        try:
            record = torch.load(path, map_location="cpu", weights_only=True)
        except FileNotFoundError:
            raise
        except Exception as e:  # a truncated or foreign file: unpickling errors vary
            raise ValueError(f"{path} is not a readable measurement shard ({e}).") from None
        if not isinstance(record, dict) or record.get("format") != FORMAT:
            raise ValueError(f"{path} is not a measurement shard of this defstab version.")
        return cls(
            layers=record["layers"],
            raw=record["raw"],
            meta=record["meta"],
            deformation_params=record["deformation_params"],
            worst_params=record["worst_params"],
            order=record["order"],
            normalizer_state=record["normalizer_state"],
            skipped=record["skipped"],
            shard=tuple(record["shard"]),
            positions=tuple(record["positions"]),
        )


def merge_shards(parts: list[MeasurementParts]) -> SensitivityResult:
    """The result of one measurement from its parts: every shard of one count, or the
    single part of an unsharded run."""
    if not parts:
        raise ValueError("no parts to merge.")
    first = parts[0]
    count = first.shard[1]
    got = sorted(p.shard[0] for p in parts)
    if got != list(range(count)) or any(p.shard[1] != count for p in parts):
        raise ValueError(f"the parts are shards {got} of {count}; every shard is needed once.")
    for p in parts[1:]:
        if p.layers != first.layers or p.meta != first.meta:
            raise ValueError("the shards were measured with different settings; rerun them.")
        if not torch.equal(p.order, first.order):
            raise ValueError("the shards were drawn in different orders; rerun them alike.")
    raw = {}
    for name in RAW:
        if first.raw[name] is None:
            raw[name] = None
            continue
        merged = first.raw[name].clone()
        for p in parts[1:]:
            a, b = p.positions
            items = first.order[a:b] if first.order is not None else torch.arange(a, b)
            merged[:, items] = p.raw[name][:, items]
        raw[name] = merged
    worst_params = first.worst_params
    if worst_params is not None:
        worst_params = worst_params.clone()
        for p in parts[1:]:
            a, b = p.positions
            worst_params[first.order[a:b]] = p.worst_params[first.order[a:b]]
    stats = first.stats
    pair_distances = None
    if first.meta["normalizer"] == "exact" and stats is None:
        raise ValueError("no image could be read; nothing was measured.")
    if stats is None:
        distance = first.meta["distance"]
        normalizer = SampledNormalizer.merged([p.normalizer_state for p in parts], distance)
        stats = [normalizer.finish(name) for name in first.layers]
        pair_distances = normalizer.pair_distances
    skipped = sorted((s for p in parts for s in p.skipped), key=lambda s: s["item"])
    return _result(first, raw, stats, pair_distances, worst_params, skipped)


def _result(first, raw, stats, pair_distances, worst_params, skipped) -> SensitivityResult:
    valid = ~torch.isnan(raw["dist_def"][0])
    if not bool(valid.any()):
        raise ValueError("no image could be read; nothing was measured.")
    medians = torch.tensor([s.median for s in stats], dtype=torch.float64)
    scale = medians.clamp_min(torch.finfo(torch.float64).tiny)[:, None]

    def normalized(name):
        values = raw[name] / scale
        return values, values[:, valid].mean(1), values[:, valid].std(1)

    per_image, mean, std = normalized("dist_def")
    result = SensitivityResult(
        layers=first.layers,
        mean=mean,
        std=std,
        per_image=per_image,
        normalizer=medians,
        deformation_params=first.deformation_params,
        deformation_sq=raw["sq_def"][:, valid].mean(1),
        pairs_sq=torch.tensor([s.pairs_sq for s in stats], dtype=torch.float64),
        normalizer_stats=stats,
        pair_distances=pair_distances,
        order=first.order,
        meta=first.meta | {"n_images": int(valid.sum()), "skipped": skipped},
    )
    if raw["dist_noise"] is not None:
        result.noise_per_image, result.noise_mean, result.noise_std = normalized("dist_noise")
        result.noise_sq = raw["sq_noise"][:, valid].mean(1)
    if raw["dist_worst"] is not None:
        result.worst_per_image, result.worst_mean, result.worst_std = normalized("dist_worst")
        result.worst_params = worst_params
    return result
