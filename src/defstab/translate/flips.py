"""ImageNet-P's measures of a classifier over perturbation sequences (Hendrycks &
Dietterich 2019; ``ImageNet-P/test.py``): the flip probability FP, the top-5 distance
T5D, and the flip rate FR = FP / FP of a baseline network.

Pairs of frames (0-based): for noise sequences every frame j ≥ 1 against the clean
frame 0; otherwise every (j, j + d), d = the difficulty. Each measure is averaged over a
video's pairs, then over videos.

T5D of a pair: with σ(k) the rank in the second frame of the first frame's k-th class,
Σ_{k=1..5} |(k − 1) − min(σ(k) − 1, 5)| (``test.py``'s ``dist`` with its cumulative top-5
table). Ranks are ordinal, as ``test.py``'s ``rankdata(..., method="ordinal")``: among
tied scores the lower class index ranks first.
"""

from __future__ import annotations

import torch


def frame_pairs(frames: int, step: int, noise: bool) -> torch.Tensor:
    """(P, 2) indices (first, second) of the compared frames."""
    if frames < 2:
        raise ValueError(f"a sequence needs at least 2 frames, got {frames}.")
    if noise:
        later = torch.arange(1, frames)
        return torch.stack([torch.zeros_like(later), later], dim=1)
    if not 1 <= step < frames:
        raise ValueError(f"the step d must lie in 1…{frames - 1}, got {step}.")
    first = torch.arange(frames - step)
    return torch.stack([first, first + step], dim=1)


def video_flips(top1: torch.Tensor, pairs: torch.Tensor) -> torch.Tensor:
    """(N, F) top-1 classes, (P, 2) pairs -> (N,) each video's flip probability."""
    return (top1[:, pairs[:, 0]] != top1[:, pairs[:, 1]]).float().mean(1)


def video_top5_distance(logits: torch.Tensor, pairs: torch.Tensor) -> torch.Tensor:
    """(N, F, K) class scores, (P, 2) pairs -> (N,) each video's mean top-5 distance.

    Ranks are ordinal, as ``scipy.stats.rankdata(-scores, method="ordinal")`` in
    ``test.py``: among tied scores the lower class index ranks first. So the first frame's
    five best classes are a stable descending sort's first five, and σ(k) − 1 — how many
    classes rank above class c in the second frame — counts the classes scored higher
    plus the tied ones of lower index (exactly tied scores: a constant output, a saturated
    softmax, low precision).
    """
    k = min(5, logits.shape[-1])
    a, b = logits[:, pairs[:, 0]], logits[:, pairs[:, 1]]  # (N, P, K)
    top_a = a.sort(dim=-1, descending=True, stable=True).indices[..., :k]  # (N, P, k)
    in_b = b.gather(-1, top_a).unsqueeze(-1)  # (N, P, k, 1) their scores in the second frame
    scores = b.unsqueeze(-2)  # (N, P, 1, K)
    index = torch.arange(b.shape[-1], device=b.device)
    tied_before = (scores == in_b) & (index < top_a.unsqueeze(-1))
    above = ((scores > in_b) | tied_before).sum(-1)  # (N, P, k)
    ranks = torch.arange(k, device=logits.device)
    return (ranks - above.clamp(max=5)).abs().sum(-1).float().mean(1)


def sequence_measures(logits: torch.Tensor, step: int, noise: bool) -> dict[str, torch.Tensor]:
    """(N, F, K) -> ``{"fp": (N,), "t5d": (N,)}`` per video."""
    pairs = frame_pairs(logits.shape[1], step, noise).to(logits.device)
    return {
        "fp": video_flips(logits.argmax(-1), pairs),
        "t5d": video_top5_distance(logits, pairs),
    }


def flip_rate(fp: float, baseline_fp: float) -> float:
    """FR = FP / FP of the baseline (NaN when the baseline never flips)."""
    return fp / baseline_fp if baseline_fp > 0 else float("nan")
