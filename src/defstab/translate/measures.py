"""Measures over consecutive steps of a path (Azulay & Weiss; Zhang 2019).

Inputs are per-image sequences of model outputs: probabilities (N, S, K) and labels (N,).
"""

from __future__ import annotations

import torch


def top1(probs: torch.Tensor) -> torch.Tensor:
    return probs.argmax(-1)


def p_top1_change(probs: torch.Tensor) -> float:
    """Fraction of consecutive steps at which the top-1 class changes."""
    t = top1(probs)
    return float((t[:, 1:] != t[:, :-1]).float().mean())


def mac(probs: torch.Tensor) -> float:
    """Mean absolute change, over one step, of the probability of the class that was top-1
    before the step."""
    t = top1(probs)[:, :-1]
    before = probs[:, :-1].gather(-1, t.unsqueeze(-1)).squeeze(-1)
    after = probs[:, 1:].gather(-1, t.unsqueeze(-1)).squeeze(-1)
    return float((after - before).abs().mean())


def per_step(probs: torch.Tensor) -> dict[str, torch.Tensor]:
    """P(top-1 change) and MAC of each step separately, over images: ``{"p_top1_change":
    (S − 1,), "mac": (S − 1,)}`` (their means over steps are :func:`p_top1_change` and
    :func:`mac`)."""
    t = top1(probs)
    before = probs[:, :-1].gather(-1, t[:, :-1].unsqueeze(-1)).squeeze(-1)
    after = probs[:, 1:].gather(-1, t[:, :-1].unsqueeze(-1)).squeeze(-1)
    return {
        "p_top1_change": (t[:, 1:] != t[:, :-1]).float().mean(0),
        "mac": (after - before).abs().mean(0),
    }


def steps_within(shifts: torch.Tensor, limit: int) -> torch.Tensor:
    """(S − 1,) bool: both ends of each step of a path of ``shifts`` (S, 2) lie within
    ±``limit`` pixels on both axes (inside the range a training augmentation draws)."""
    inside = shifts.abs().amax(-1) <= limit
    return inside[1:] & inside[:-1]


def in_top5(probs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """(N, S) bool: the true class is among the 5 most probable (all, if K ≤ 5)."""
    k = min(5, probs.shape[-1])
    return (probs.topk(k, dim=-1).indices == labels.view(-1, 1, 1)).any(-1)


def jaggedness(probs: torch.Tensor, labels: torch.Tensor) -> float:
    """Mean number per image of one-step transitions of the true class into or out of the
    top-5 (Azulay & Weiss's jaggedness)."""
    t5 = in_top5(probs, labels)
    return float((t5[:, 1:] != t5[:, :-1]).float().sum(1).mean())


def consistency(probs: torch.Tensor) -> float:
    """Shift consistency (Zhang 2019): the probability that two different frames of the
    same image get the same top-1 class, averaged over all pairs of frames (the
    expectation of Zhang's two random shifts)."""
    t = top1(probs)
    s = t.shape[1]
    if s < 2:
        raise ValueError("consistency needs at least 2 frames per image.")
    same = (t.unsqueeze(2) == t.unsqueeze(1)).float()  # (N, S, S)
    off = same.sum((1, 2)) - s
    return float((off / (s * (s - 1))).mean())


def accuracy_along_path(probs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """(S,) top-1 accuracy at each step."""
    return (top1(probs) == labels.view(-1, 1)).float().mean(0)


def summarize(probs: torch.Tensor, labels: torch.Tensor | None) -> dict[str, float]:
    out = {
        "p_top1_change": p_top1_change(probs),
        "mac": mac(probs),
        "consistency": consistency(probs),
        "images": probs.shape[0],
        "steps": probs.shape[1] - 1,
    }
    if labels is not None:
        out["jaggedness"] = jaggedness(probs, labels)
        out["accuracy"] = float(accuracy_along_path(probs, labels).mean())
    return out
