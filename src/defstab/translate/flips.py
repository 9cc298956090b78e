"""ImageNet-P's measures of a classifier over perturbation sequences (Hendrycks &
Dietterich 2019; ``ImageNet-P/test.py``): the flip probability FP, the top-5 distance
T5D, and the flip rate FR = FP / FP of a baseline network.

Pairs of frames (0-based): for noise sequences every frame j ≥ 1 against the clean
frame 0; otherwise every (j, j + d), d = the difficulty. Each measure is averaged over a
video's pairs, then over videos.

T5D of a pair: with σ(k) the rank in the second frame of the first frame's k-th class,
Σ_{k=1..5} |(k − 1) − min(σ(k) − 1, 5)| (``test.py``'s ``dist`` with its cumulative top-5
table). Ranks are ordinal: a class tied with the one ranked counts as ranked below it.
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

    min(σ(k) − 1, 5) is the number of classes scored above the first frame's k-th class
    in the second frame, capped at 5: how many of the second frame's 5 best scores exceed
    that class's score, so no full ranking is needed.
    """
    k = min(5, logits.shape[-1])
    a, b = logits[:, pairs[:, 0]], logits[:, pairs[:, 1]]  # (N, P, K)
    top_a = a.topk(k, dim=-1).indices  # (N, P, k): the first frame's classes, best first
    in_b = b.gather(-1, top_a)  # (N, P, k) their scores in the second frame
    best_b = b.topk(k, dim=-1).values  # (N, P, k)
    above = (best_b.unsqueeze(-2) > in_b.unsqueeze(-1)).sum(-1)  # (N, P, k), ≤ k
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
