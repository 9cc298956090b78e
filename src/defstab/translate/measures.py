"""Measures over consecutive steps of a path (Azulay & Weiss; Zhang 2019).

Inputs are per-image sequences of model outputs: probabilities (N, S, K) and labels (N,),
or the same reduced to :class:`Steps` — the few (N, S) numbers per step that every
measure reads, so that a run over 50,000 images never holds (N, S, K) probabilities.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class Steps:
    """Per image and step, what the measures read of the probabilities (N, S, K).

    Attributes:
        top1: (N, S) top-1 class.
        p_top1: (N, S) its probability.
        p_next: (N, S − 1) probability at step k + 1 of the top-1 class of step k.
        p_first: (N, S) probability of the first frame's top-1 class.
        p_true, in_top5: (N, S) probability of the true class, and whether it is among
            the 5 most probable (None without labels).
    """

    top1: torch.Tensor
    p_top1: torch.Tensor
    p_next: torch.Tensor
    p_first: torch.Tensor
    p_true: torch.Tensor | None = None
    in_top5: torch.Tensor | None = None

    @classmethod
    def from_probs(cls, probs: torch.Tensor, labels: torch.Tensor | None = None) -> Steps:
        t = probs.argmax(-1)
        p_top1 = probs.gather(-1, t.unsqueeze(-1)).squeeze(-1)
        p_next = probs[:, 1:].gather(-1, t[:, :-1].unsqueeze(-1)).squeeze(-1)
        first = t[:, :1].unsqueeze(-1).expand(-1, probs.shape[1], 1)
        p_first = probs.gather(-1, first).squeeze(-1)
        if labels is None:
            return cls(t, p_top1, p_next, p_first)
        y = labels.to(probs.device).view(-1, 1, 1)
        p_true = probs.gather(-1, y.expand(-1, probs.shape[1], 1)).squeeze(-1)
        k = min(5, probs.shape[-1])
        top5 = (probs.topk(k, dim=-1).indices == y).any(-1)
        return cls(t, p_top1, p_next, p_first, p_true, top5)

    @classmethod
    def cat(cls, parts: list[Steps]) -> Steps:
        """Chunks of images, in order, as one."""
        fields = ("top1", "p_top1", "p_next", "p_first", "p_true", "in_top5")
        joined = {
            f: None if getattr(parts[0], f) is None else torch.cat([getattr(p, f) for p in parts])
            for f in fields
        }
        return cls(**joined)

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.top1.shape)


def as_steps(probs, labels=None) -> Steps:
    """``probs`` (N, S, K) reduced to :class:`Steps`, or Steps as they are."""
    if isinstance(probs, Steps):
        if labels is not None and probs.in_top5 is None:
            raise ValueError("these steps were reduced without labels.")
        return probs
    return Steps.from_probs(probs, labels)


def top1(probs) -> torch.Tensor:
    return as_steps(probs).top1


def p_top1_change(probs) -> float:
    """Fraction of consecutive steps at which the top-1 class changes."""
    t = top1(probs)
    return float((t[:, 1:] != t[:, :-1]).float().mean())


def mac(probs) -> float:
    """Mean absolute change, over one step, of the probability of the class that was top-1
    before the step."""
    s = as_steps(probs)
    return float((s.p_next - s.p_top1[:, :-1]).abs().mean())


def per_step(probs) -> dict[str, torch.Tensor]:
    """P(top-1 change) and MAC of each step separately, over images: ``{"p_top1_change":
    (S − 1,), "mac": (S − 1,)}`` (their means over steps are :func:`p_top1_change` and
    :func:`mac`)."""
    s = as_steps(probs)
    return {
        "p_top1_change": (s.top1[:, 1:] != s.top1[:, :-1]).float().mean(0),
        "mac": (s.p_next - s.p_top1[:, :-1]).abs().mean(0),
    }


def steps_within(shifts: torch.Tensor, limit: int) -> torch.Tensor:
    """(S − 1,) bool: both ends of each step of a path of ``shifts`` (S, 2) lie within
    ±``limit`` pixels on both axes (inside the range a training augmentation draws)."""
    inside = shifts.abs().amax(-1) <= limit
    return inside[1:] & inside[:-1]


def in_top5(probs, labels: torch.Tensor) -> torch.Tensor:
    """(N, S) bool: the true class is among the 5 most probable (all, if K ≤ 5)."""
    return as_steps(probs, labels).in_top5


def jaggedness(probs, labels: torch.Tensor) -> float:
    """Mean number per image of one-step transitions of the true class into or out of the
    top-5 (Azulay & Weiss's jaggedness)."""
    t5 = in_top5(probs, labels)
    return float((t5[:, 1:] != t5[:, :-1]).float().sum(1).mean())


def consistency(probs) -> float:
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


def consistency_by_correctness(probs, labels: torch.Tensor) -> dict[str, float]:
    """Consistency over the images whose *first* frame is classified correctly, and over
    those whose first frame is not, beside the fraction correct — a classifier that is
    always right is consistent whatever it does with shifts (antialiased-cnns #52), so an
    accurate network's consistency says little until it is split this way.

    Returns:
        ``{"consistency_correct", "consistency_incorrect", "first_frame_accuracy",
        "images_correct", "images_incorrect"}``; a side with no image is NaN.
    """
    t = top1(probs)
    s = t.shape[1]
    if s < 2:
        raise ValueError("consistency needs at least 2 frames per image.")
    same = (t.unsqueeze(2) == t.unsqueeze(1)).float()
    per_image = (same.sum((1, 2)) - s) / (s * (s - 1))  # (N,) each image's consistency
    right = t[:, 0] == labels.to(t.device)
    nan = float("nan")
    return {
        "consistency_correct": float(per_image[right].mean()) if right.any() else nan,
        "consistency_incorrect": float(per_image[~right].mean()) if (~right).any() else nan,
        "first_frame_accuracy": float(right.float().mean()),
        "images_correct": int(right.sum()),
        "images_incorrect": int((~right).sum()),
    }


def accuracy_along_path(probs, labels: torch.Tensor) -> torch.Tensor:
    """(S,) top-1 accuracy at each step."""
    t = top1(probs)
    return (t == labels.to(t.device).view(-1, 1)).float().mean(0)


def summarize(probs, labels: torch.Tensor | None) -> dict[str, float]:
    probs = as_steps(probs, labels)
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
        out |= consistency_by_correctness(probs, labels)
    return out
