"""The sensitivity's normalizer — the median distance between undeformed images — exact
or sampled, and Petrini's mean squared pair distance, per layer.

*Exact* (Ruderman §2.1, the default up to :data:`EXACT_UP_TO` images): the median over
all N(N−1)/2 pairs, from Gram matrices of every undeformed representation (held in a
:class:`~defstab.measure.store.RepresentationStore`): O(N²) time, memory N × (all layers).

*Sampled* (dataset scale): the images are processed in a seeded random order, and the
images at positions 2k and 2k + 1 of that order form pair k. The N // 2 pairs are
disjoint, so their distances are independent draws of the distance between two random
images, and the order statistics of those draws give a distribution-free confidence
interval for the median (the binomial argument below). Time and memory are O(N) in
pairs and O(F) per layer: a row waits only for its partner.

Petrini's denominator ⟨‖f(x₁) − f(x₂)‖²⟩ over all pairs needs no pair at all::

    Σ_{i<j} ‖rᵢ − rⱼ‖² = N·Σᵢ‖rᵢ − c‖² − ‖Σᵢ(rᵢ − c)‖²     for any c

so the sampled mode keeps the two running sums (c = the first row seen, which keeps the
subtraction free of cancellation) and is exact in O(N·F).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from defstab.measure.device import Chunk
from defstab.measure.distances import (
    mean_squared_pair_distance,
    median,
    paired_distance,
    pairwise_from_gram,
)
from defstab.measure.store import RepresentationStore

NORMALIZERS = ("auto", "exact", "sampled")
#: ``auto`` uses the exact all-pairs median up to this many images, the sampled one above:
#: at 4,096 images the exact median costs ~10× two forward passes on the CIFAR VGG.
EXACT_UP_TO = 4096
#: Confidence of the sampled median's interval.
CONFIDENCE = 0.95


def check_normalizer(mode: str) -> str:
    if mode not in NORMALIZERS:
        raise ValueError(f"normalizer must be one of {', '.join(NORMALIZERS)}; got {mode!r}.")
    return mode


def resolve_normalizer(mode: str, n: int) -> str:
    """``"exact"`` or ``"sampled"`` for ``n`` images."""
    check_normalizer(mode)
    if mode == "auto":
        return "exact" if n <= EXACT_UP_TO else "sampled"
    if mode == "sampled" and n < 4:
        raise ValueError(f"the sampled normalizer needs at least 4 images, got {n}.")
    return mode


def median_interval_ranks(m: int, confidence: float = CONFIDENCE) -> tuple[int, int]:
    """1-based ranks (l, u) of the order statistics X₍ₗ₎ ≤ median ≤ X₍ᵤ₎ covering the
    median of a continuous distribution with probability ≥ ``confidence``, from m i.i.d.
    draws: the count of draws below the median is Binomial(m, ½), so
    P(X₍ₗ₎ > median) = P(Bin < l) ≤ α/2 for the largest such l, and u = m + 1 − l.

    With too few draws for any such l (m < 6 at 95%), (1, m): the interval is then the
    whole sample, which covers with less than the stated confidence.
    """
    if m < 1:
        raise ValueError("an interval needs at least one draw.")
    k = torch.arange(m + 1, dtype=torch.float64)
    log_pmf = (
        torch.lgamma(torch.tensor(m + 1.0, dtype=torch.float64))
        - torch.lgamma(k + 1)
        - torch.lgamma(m - k + 1)
        - m * math.log(2.0)
    )
    cdf = torch.logcumsumexp(log_pmf, 0).exp()  # cdf[j] = P(Bin ≤ j)
    alpha = 1.0 - confidence
    # l = largest l with P(Bin ≤ l − 1) ≤ α/2; P(Bin ≤ −1) = 0 makes l ≥ 1 always hold
    below = int((cdf <= alpha / 2 * (1 + 1e-12)).sum())
    lo = max(1, below)
    return lo, m + 1 - lo


def median_with_interval(values: torch.Tensor, confidence: float = CONFIDENCE):
    """(median, low, high) of i.i.d. draws: the median as :func:`median` computes it and
    the order-statistic interval of :func:`median_interval_ranks`."""
    v = values.double().flatten()
    v = v[~torch.isnan(v)]
    if v.numel() == 0:
        raise ValueError("no pair distances: every pair lost an image.")
    lo, hi = median_interval_ranks(v.numel(), confidence)
    ordered = v.sort().values
    return median(v), float(ordered[lo - 1]), float(ordered[hi - 1])


@dataclass
class NormalizerStats:
    """One layer's normalizer: the median, its interval (None when exact), the number of
    pairs it rests on, and Petrini's mean squared pair distance over all pairs."""

    median: float
    low: float | None
    high: float | None
    pairs: int
    pairs_sq: float


class ExactNormalizer:
    """The all-pairs median: every undeformed row is kept until the Gram matrices (on the
    device up to ``device_bytes``, then in RAM up to ``store_bytes``, then on disk)."""

    mode = "exact"

    def __init__(
        self,
        n: int,
        features: dict[str, int],
        store_bytes: int,
        spill_dir=None,
        device=None,
        device_bytes: int | None = None,
    ):
        self.n = n
        self.store = RepresentationStore(n, features, store_bytes, spill_dir, device, device_bytes)

    def add(self, name: str, chunk: Chunk, rows: torch.Tensor) -> None:
        """Rows (b, F) of the undeformed images of ``chunk`` (positions are items)."""
        if not chunk.whole:  # holes (unreadable images): zeros, left out later
            full = rows.new_zeros(chunk.stop - chunk.start, rows.shape[1])
            full[chunk.offsets] = rows
            rows = full
        self.store.put(name, chunk.start, rows)

    def finish(self, name: str, distance: str, device=None, valid=None) -> NormalizerStats:
        gram = self.store.gram(name, device)
        if valid is not None and not bool(valid.all()):
            keep = valid.nonzero().squeeze(1).to(gram.device)
            gram = gram[keep][:, keep]
        n = gram.shape[0]
        return NormalizerStats(
            median(pairwise_from_gram(gram, distance)),
            None,
            None,
            n * (n - 1) // 2,
            mean_squared_pair_distance(gram),
        )

    @property
    def spilled(self) -> list[str]:
        return list(self.store.spilled)

    @property
    def in_ram(self) -> list[str]:
        """Layers kept in host RAM beyond the device budget (empty without one: on the
        CPU by default, where the device is the host)."""
        return list(self.store.in_ram) if self.store.tiered else []

    def close(self) -> None:
        self.store.close()


class SampledNormalizer:
    """Pairs (2k, 2k + 1) of the processing order, and running sums for Petrini's mean,
    kept on the rows' device (read on the host once, by :meth:`state`).

    Args:
        n: number of positions (images) in the whole measurement.
        names: the layers.
        distance: ``"cosine"`` or ``"euclidean"``.
        device: where the rows arrive.
    """

    mode = "sampled"

    def __init__(self, n: int, names: list[str], distance: str, device=None):
        self.distance = distance
        # pair k's distance per layer; NaN until both images are seen (or one is unreadable)
        self.pair_distances = torch.full(
            (len(names), n // 2), math.nan, dtype=torch.float64, device=device
        )
        self.index = {name: i for i, name in enumerate(names)}
        self.waiting: dict[str, dict[int, torch.Tensor]] = {name: {} for name in names}
        self.shift: dict[str, torch.Tensor] = {}
        self.sum = {name: None for name in names}  # Σ (r − c), (F,) float64
        self.sum_sq = dict.fromkeys(names, 0.0)  # Σ ‖r − c‖² (a 0-d tensor once rows come)
        self.count = dict.fromkeys(names, 0)

    def add(self, name: str, chunk: Chunk, rows: torch.Tensor) -> None:
        """Rows (b, F) of the undeformed images of ``chunk``."""
        self._accumulate(name, rows)
        if chunk.whole:
            # a run of positions: its pairs are strided views, at most its two ends alone
            p0, b = chunk.start, rows.shape[0]
            first = p0 % 2  # an odd start waits for its partner at the previous chunk's end
            whole = (b - first) - (b - first) % 2
            if whole:
                k0 = (p0 + first) // 2
                pairs = slice(k0, k0 + whole // 2)
                self._record(
                    name,
                    pairs,
                    rows[first : first + whole : 2],
                    rows[first + 1 : first + whole : 2],
                )
            alone = ([0] if first else []) + ([b - 1] if (b - first) % 2 else [])
            at = {j: p0 + j for j in alone}
        else:  # images were unreadable: the positions, on the host, say who is paired
            pos = (chunk.offsets.cpu() + chunk.start).tolist()
            first = [j for j in range(len(pos) - 1) if pos[j] % 2 == 0 and pos[j + 1] == pos[j] + 1]
            if first:
                a = torch.tensor(first, device=rows.device)
                pairs = torch.tensor([pos[j] // 2 for j in first], device=rows.device)
                self._record(name, pairs, rows[a], rows[a + 1])
            paired = set(first) | {j + 1 for j in first}
            at = {j: pos[j] for j in range(len(pos)) if j not in paired}
        # images whose partner is in another chunk (or was unreadable) wait for it
        waiting = self.waiting[name]
        for j, p in at.items():
            mate = waiting.pop(p ^ 1, None)
            if mate is None:
                waiting[p] = rows[j : j + 1].detach().clone()
                continue
            row = rows[j : j + 1]
            self._record(name, slice(p // 2, p // 2 + 1), *((mate, row) if p % 2 else (row, mate)))

    def _record(self, name, pairs, a, b) -> None:
        self.pair_distances[self.index[name], pairs] = paired_distance(a, b, self.distance)

    def _accumulate(self, name: str, rows: torch.Tensor) -> None:
        if name not in self.shift:
            self.shift[name] = rows[:1].detach().clone()
        # float32 within the chunk (≤ 64 rows: ~1e-7 relative), float64 across chunks
        centred = rows - self.shift[name]
        total = centred.sum(0).double()
        self.sum[name] = total if self.sum[name] is None else self.sum[name] + total
        self.sum_sq[name] = self.sum_sq[name] + (
            torch.linalg.vector_norm(centred, dim=1).double().square().sum()
        )
        self.count[name] += rows.shape[0]

    def finish(self, name: str, distance=None, device=None, valid=None) -> NormalizerStats:
        """Layer ``name``'s statistics (the arguments the exact mode needs are unused:
        the distance was fixed at construction, unreadable images left NaN pairs)."""
        d = self.pair_distances[self.index[name]]
        mid, low, high = median_with_interval(d)
        n = self.count[name]
        pairs_total = n * (n - 1) / 2
        between = n * float(self.sum_sq[name]) - float(self.sum[name].square().sum())
        return NormalizerStats(
            mid, low, high, int((~torch.isnan(d)).sum()), max(between, 0.0) / pairs_total
        )

    @property
    def spilled(self) -> list[str]:
        return []

    in_ram = spilled

    def close(self) -> None:
        self.waiting.clear()

    def state(self) -> dict:
        """What a shard hands to the merge: pair distances (NaN for pairs not in the shard)
        and, per layer, the running sums with their shift. Plain tensors, lists and ints
        (``torch.load(weights_only=True)`` reads them)."""
        names = list(self.index)
        return {
            "layers": names,
            "pair_distances": self.pair_distances.cpu(),
            "count": [self.count[n] for n in names],
            "sum_sq": [float(self.sum_sq[n]) for n in names],
            "shift": [self.shift[n].cpu() if n in self.shift else None for n in names],
            "sum": [None if self.sum[n] is None else self.sum[n].cpu() for n in names],
        }

    @classmethod
    def merged(cls, states: list[dict], distance: str) -> SampledNormalizer:
        """One normalizer from the states of disjoint shards: pair distances filled in
        from each, running sums moved to one shift c (shard s's sums about c_s become
        Σ(r − c) = S₁ + n(c_s − c) and Σ‖r − c‖² = S₂ + 2(c_s − c)·S₁ + n‖c_s − c‖²)."""
        names = states[0]["layers"]
        n = states[0]["pair_distances"].shape[1] * 2
        out = cls(n, names, distance)
        for state in states:
            if state["layers"] != names:
                raise ValueError("the shards measured different layers; rerun them alike.")
            d = state["pair_distances"]
            seen = ~torch.isnan(d)
            out.pair_distances[seen] = d[seen]
            for i, name in enumerate(names):
                count = state["count"][i]
                if count == 0:
                    continue
                shift, total = state["shift"][i].cpu(), state["sum"][i]
                sum_sq = state["sum_sq"][i]
                if name not in out.shift:
                    out.shift[name], out.sum[name] = shift, total.clone()
                    out.sum_sq[name], out.count[name] = sum_sq, count
                    continue
                delta = (shift - out.shift[name]).double().flatten()
                out.sum[name] += total + count * delta
                out.sum_sq[name] += (
                    sum_sq + 2 * float(delta @ total) + count * float(delta.square().sum())
                )
                out.count[name] += count
        return out
