"""SensitivityResult: what a measurement returns, and how its tables are written."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from defstab.measure.normalizers import NormalizerStats


@dataclass
class SensitivityResult:
    """Per-layer sensitivity to deformation (and to matched noise).

    Tensors are indexed [layer] or [layer, image]; layer 0 is the input.

    Attributes:
        layers: names in forward order (``"input"`` first).
        mean, std: (L,) mean and standard deviation (ddof = 1) over images of the
            normalized distance.
        per_image: (L, N) normalized distances (NaN for an image that could not be read).
        normalizer: (L,) median distance over all pairs of undeformed images.
        noise_mean, noise_std, noise_per_image: the same for x + η, η Gaussian in the
            network's input space with ‖η‖ = ‖τx − x‖ there, per image (None without the
            noise control).
        deformation_sq, noise_sq: (L,) mean over images of the squared Euclidean
            distances ‖f(τx) − f(x)‖² and ‖f(x + η) − f(x)‖², whatever ``distance`` is.
        pairs_sq: (L,) mean over pairs of undeformed images of ‖f(x₁) − f(x₂)‖².
        worst_mean, worst_std, worst_per_image: the same as mean/std/per_image for the
            worst-case deformation (None without ``worst_case``), normalized alike.
        worst_params: (N, k·k, 2) the worst-case displacements (replay them as
            ``deformation``).
        normalizer_stats: per layer, the median, its 95% interval (sampled mode; None
            when exact), the number of pairs, and Petrini's mean squared pair distance.
        pair_distances: (L, N // 2) sampled mode: the distance of pair k, images
            ``order[2k]`` and ``order[2k + 1]`` (NaN where one could not be read).
        order: (N,) sampled mode: the processing order (item indices).
        meta: settings (distance, deformation, counts) for tables and reports.
    """

    layers: list[str]
    mean: torch.Tensor
    std: torch.Tensor
    per_image: torch.Tensor
    normalizer: torch.Tensor
    noise_mean: torch.Tensor | None = None
    noise_std: torch.Tensor | None = None
    noise_per_image: torch.Tensor | None = None
    deformation_params: torch.Tensor | None = None
    deformation_sq: torch.Tensor | None = None
    noise_sq: torch.Tensor | None = None
    pairs_sq: torch.Tensor | None = None
    worst_mean: torch.Tensor | None = None
    worst_std: torch.Tensor | None = None
    worst_per_image: torch.Tensor | None = None
    worst_params: torch.Tensor | None = None
    normalizer_stats: list[NormalizerStats] | None = None
    pair_distances: torch.Tensor | None = None
    order: torch.Tensor | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def n_images(self) -> int:
        """Images measured (an image that could not be read has NaN in ``per_image``)."""
        return int((~torch.isnan(self.per_image[0])).sum())

    @property
    def relative_stability(self) -> torch.Tensor | None:
        """(L,) Petrini et al. 2021's R_f = ⟨‖f(τx) − f(x)‖²⟩ / ⟨‖f(x + η) − f(x)‖²⟩
        (< 1: more stable to the deformation than to noise of the same norm)."""
        if self.noise_sq is None:
            return None
        return self.deformation_sq / _positive(self.noise_sq)

    @property
    def relative_stability_median(self) -> torch.Tensor | None:
        """(L,) with ``aggregate="median"``: Σ_features median over images of (Δf)² under
        τ over the same under η — the aggregation of Petrini et al.'s results code, not
        their paper's mean; None otherwise."""
        values = self.meta.get("relative_stability_median")
        return None if values is None else torch.tensor(values, dtype=torch.float64)

    @property
    def deformation_stability(self) -> torch.Tensor | None:
        """(L,) Petrini's D_f = ⟨‖f(τx) − f(x)‖²⟩ / ⟨‖f(x₁) − f(x₂)‖²⟩."""
        if self.deformation_sq is None:
            return None
        return self.deformation_sq / _positive(self.pairs_sq)

    @property
    def noise_stability(self) -> torch.Tensor | None:
        """(L,) Petrini's G_f = ⟨‖f(x + η) − f(x)‖²⟩ / ⟨‖f(x₁) − f(x₂)‖²⟩."""
        if self.noise_sq is None:
            return None
        return self.noise_sq / _positive(self.pairs_sq)

    @property
    def mean_distance_ratio(self) -> torch.Tensor | None:
        """(L,) mean normalized ``distance`` under deformation / under noise: the ratio
        defstab 0.1.0 reported as "relative_stability". It is *not* Petrini's R_f (no
        squares; cosine by default); kept because it uses the paper's distance."""
        if self.noise_mean is None:
            return None
        return self.mean / _positive(self.noise_mean)

    def to_rows(self) -> list[dict[str, Any]]:
        """One dict per layer (tidy: one row per observation)."""
        rows = []
        for i, name in enumerate(self.layers):
            row = {
                "layer_index": i,
                "layer": name,
                "mean": float(self.mean[i]),
                "std": float(self.std[i]),
                "n_images": self.n_images,
                "normalizer": float(self.normalizer[i]),
            }
            if self.normalizer_stats is not None:
                stats = self.normalizer_stats[i]
                row["normalizer_low"] = stats.low  # None (an empty cell) when exact
                row["normalizer_high"] = stats.high
                row["normalizer_pairs"] = stats.pairs
            if "strides" in self.meta:
                stride = self.meta["strides"].get(name)
                row["stride"] = stride
                row["shifted_copies"] = stride * stride if stride else None
            if self.worst_mean is not None:
                row["worst_mean"] = float(self.worst_mean[i])
                row["worst_std"] = float(self.worst_std[i])
            if self.noise_mean is not None:
                row["noise_mean"] = float(self.noise_mean[i])
                row["noise_std"] = float(self.noise_std[i])
                row["mean_distance_ratio"] = float(self.mean_distance_ratio[i])
                row["D_f"] = float(self.deformation_stability[i])
                row["G_f"] = float(self.noise_stability[i])
                row["relative_stability"] = float(self.relative_stability[i])
            if self.relative_stability_median is not None:
                row["relative_stability_median"] = float(self.relative_stability_median[i])
            rows.append(row)
        return rows

    def to_csv(self, path) -> None:
        from defstab.io.tables import write_csv

        write_csv(path, self.to_rows())

    def to_json(self, path) -> None:
        from defstab.io.atomic import write_json

        write_json(path, {"meta": self.meta, "layers": self.to_rows()})

    def to_dataframe(self):
        """A pandas DataFrame (needs pandas)."""
        try:
            import pandas as pd
        except ImportError:
            raise ImportError("to_dataframe needs pandas: pip install pandas") from None
        return pd.DataFrame(self.to_rows())


def _positive(t: torch.Tensor) -> torch.Tensor:
    return t.clamp_min(torch.finfo(torch.float64).tiny)
