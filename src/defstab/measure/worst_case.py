"""Worst-case TPS deformations: projected gradient ascent over the control displacements.

Ruderman et al. measure the *average* effect of random deformations of strength C and name
worst-case deformations as future work; ADef (Alaifari et al. 2019) and stAdv (Xiao et
al. 2018) attack through smooth deformation fields. Here the field is defstab's TPS,
linear in the k×k control displacements d, so the attack is cheap: every step is one
forward and one backward pass, and the projection keeps each coordinate of d in [−C, C],
the budget of the random deformations.

Per image the objective is either the distance at one layer between r(x) and r(τ_d x)
(default: the last measured layer) or the classifier's cross-entropy on the true or the
predicted label. Images are attacked together (the objectives are independent: the model
is in eval mode), and the best point visited is kept per image, so the result is never
worse than the start — the random deformation itself.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from defstab._validate import check_images
from defstab.deform import DeformationSpec, apply_tps
from defstab.measure.distances import check_distance, paired_distance
from defstab.models.outputs import class_scores, output_tensor
from defstab.tap import evaluation_mode, model_device_dtype, run_checked, tap

OBJECTIVES = ("distance", "loss")


@dataclass(frozen=True)
class WorstCaseTPS:
    """A worst-case TPS deformation of the same budget as the random ones.

    Attributes:
        grid, max_disp, padding: as :class:`~defstab.deform.DeformationSpec` (k, C).
        steps: gradient steps per start.
        step_size: α in pixels (default 2.5·C / steps, so a start can cross the box).
        restarts: extra random starts (uniform in [−C, C]) besides the random deformation.
        objective: ``"distance"`` (at ``layer``) or ``"loss"`` (cross-entropy).
        layer: module name for the distance objective (None: the last measured layer).
        label: ``"predicted"`` (on the undeformed image) or ``"true"`` for the loss.
    """

    grid: int = 3
    max_disp: float = 2.0
    steps: int = 10
    step_size: float | None = None
    restarts: int = 0
    objective: str = "distance"
    layer: str | None = None
    label: str = "predicted"
    padding: str = "zeros"

    def __post_init__(self):
        if isinstance(self.steps, bool) or not isinstance(self.steps, int) or self.steps < 1:
            raise ValueError(f"attack steps must be an integer ≥ 1, got {self.steps!r}.")
        if not isinstance(self.restarts, int) or self.restarts < 0:
            raise ValueError(f"restarts must be an integer ≥ 0, got {self.restarts!r}.")
        if not (math.isfinite(self.max_disp) and self.max_disp > 0):
            raise ValueError(f"max_disp must be positive, got {self.max_disp!r}.")
        if self.step_size is not None and not self.step_size > 0:
            raise ValueError(f"step_size must be positive, got {self.step_size!r}.")
        if self.objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {OBJECTIVES}, got {self.objective!r}.")
        if self.label not in ("predicted", "true"):
            raise ValueError(f"label must be 'predicted' or 'true', got {self.label!r}.")

    @classmethod
    def like(cls, spec: DeformationSpec, **options) -> WorstCaseTPS:
        """The worst case within the budget of the random ``spec`` (same k, C, padding)."""
        return cls(spec.grid, spec.max_disp, padding=spec.padding, **options)

    @property
    def alpha(self) -> float:
        return self.step_size if self.step_size is not None else 2.5 * self.max_disp / self.steps

    def record(self) -> dict:
        return {"kind": "worst-case tps", **asdict(self), "step_size": self.alpha}


def projected_ascent(
    objective: Callable[[torch.Tensor], torch.Tensor],
    starts: list[torch.Tensor],
    budget: torch.Tensor | float,
    steps: int,
    step_size: torch.Tensor | float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Maximise ``objective(d)`` (N,) over d (N, K, 2) with every coordinate in
    [−budget, budget], by signed gradient steps from each start; the best point visited
    per image wins.

    Args:
        objective: d (N, K, 2) -> per-image values (N,), differentiable in d.
        starts: start points (N, K, 2), already inside the box.
        budget: C, a number or (N,) per image.
        step_size: α, a number or (N,) per image.

    Returns:
        ``(best d (N, K, 2), best value (N,))``.
    """
    c = torch.as_tensor(budget, dtype=starts[0].dtype, device=starts[0].device)
    c = c.view(-1, 1, 1) if c.ndim else c
    a = torch.as_tensor(step_size, dtype=starts[0].dtype, device=starts[0].device)
    a = a.view(-1, 1, 1) if a.ndim else a
    best, best_value = None, None
    for start in starts:
        d = start.detach().clone()
        for step in range(steps + 1):
            last = step == steps
            with torch.set_grad_enabled(not last):  # callers may run under no_grad
                d.requires_grad_(not last)
                value = objective(d)
                grad = None if last else torch.autograd.grad(value.sum(), d)[0]
            with torch.no_grad():
                value = value.detach()
                if best is None:
                    best, best_value = d.detach().clone(), value.clone()
                else:
                    better = value > best_value
                    best[better] = d.detach()[better]
                    best_value = torch.where(better, value, best_value)
                if not last:
                    d = torch.minimum(torch.maximum(d.detach() + a * grad.sign(), -c), c)
    return best, best_value


def layer_forward(model: nn.Module, layer: str | None) -> Callable[[torch.Tensor], torch.Tensor]:
    """x -> the flattened output of ``layer`` (the model's output when None), stopping the
    forward pass there."""
    if layer is None:
        return lambda x: output_tensor(run_checked(model, x)).flatten(1)
    if layer == "input":
        return lambda x: x.flatten(1)
    modules = dict(model.named_modules())
    if layer not in modules:
        from defstab.models.registry import unknown_name_message

        raise ValueError(unknown_name_message("attack layer", layer, [n for n in modules if n]))

    def forward(x):
        out = {}
        tap(model, {layer: modules[layer]}, x, lambda name, y: out.__setitem__(name, y))
        return out[layer].flatten(1)

    return forward


def worst_case_displacements(
    model: nn.Module,
    images: torch.Tensor,
    attack: WorstCaseTPS,
    start: torch.Tensor,
    restarts: torch.Tensor | None = None,
    labels: torch.Tensor | None = None,
    preprocess=None,
    distance: str = "cosine",
    budget: torch.Tensor | float | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The worst-case displacements of a batch.

    Args:
        images: (N, C, H, W) in the range the deformation acts on (before ``preprocess``).
        start: (N, k·k, 2) the first start, e.g. the random deformation of each image.
        restarts: (R, N, k·k, 2) further starts, or None.
        labels: (N,) true classes, for ``objective="loss", label="true"``.
        distance: for the distance objective, ``"cosine"`` or ``"euclidean"``.
        budget: C per image (N,) or a number; default ``attack.max_disp``.

    Returns:
        ``(displacements (N, k·k, 2), objective value (N,))``; |d| ≤ C holds exactly.
    """
    check_images(images)
    check_distance(distance)
    device, dtype = model_device_dtype(model)
    x = images.to(device, dtype)
    prep = preprocess or (lambda t: t)
    c = attack.max_disp if budget is None else budget
    alpha = (
        attack.alpha if budget is None else torch.as_tensor(c) * (attack.alpha / attack.max_disp)
    )
    starts = [start.to(device, dtype)] + (
        list(restarts.to(device, dtype).unbind(0)) if restarts is not None else []
    )
    with evaluation_mode(model):
        if attack.objective == "distance":
            forward = layer_forward(model, attack.layer)
            with torch.no_grad():
                reference = forward(prep(x))

            def objective(d):
                deformed = apply_tps(x, d, attack.grid, attack.padding)
                return paired_distance(reference, forward(prep(deformed)), distance)
        else:
            with torch.no_grad():
                target = class_scores(run_checked(model, prep(x))).argmax(-1)
            if attack.label == "true":
                if labels is None:
                    raise ValueError("the loss on the true label needs labels.")
                target = labels.to(device)

            def objective(d):
                deformed = prep(apply_tps(x, d, attack.grid, attack.padding))
                logits = class_scores(run_checked(model, deformed))
                return F.cross_entropy(logits.float(), target, reduction="none")

        return projected_ascent(objective, starts, c, attack.steps, alpha)


@dataclass
class FlipResult:
    """Smallest deformation strength that changes each image's top-1 class.

    Attributes:
        strength: (N,) the smallest C found (within ``tolerance``) whose worst-case TPS
            deformation flips the prediction; ``inf`` where none up to ``max_disp`` did.
            An attack finds an upper bound on the true minimum.
        predicted: (N,) top-1 class of the undeformed images.
        max_disp, tolerance: the search range and the bisection's precision (px).
    """

    strength: torch.Tensor
    predicted: torch.Tensor
    max_disp: float
    tolerance: float

    def quantile(self, q: float) -> float:
        """The smallest C at which at least a fraction ``q`` of the predictions have
        flipped (``inf`` when fewer flip within ``max_disp``)."""
        ordered = self.strength.sort().values
        return float(ordered[max(0, math.ceil(q * len(ordered)) - 1)])

    def summary(self) -> dict:
        finite = self.strength[torch.isfinite(self.strength)]
        return {
            "images": len(self.strength),
            "fraction_flipped": len(finite) / max(1, len(self.strength)),
            "strength_q25": self.quantile(0.25),
            "strength_median": self.quantile(0.5),
            "strength_q75": self.quantile(0.75),
            "max_disp": self.max_disp,
            "tolerance": self.tolerance,
        }

    def survival(self, strengths: torch.Tensor) -> torch.Tensor:
        """(S,) fraction of images whose prediction survives every deformation of
        strength ≤ c (as far as the attack finds), for each c in ``strengths``."""
        return (self.strength.view(1, -1) > strengths.view(-1, 1)).float().mean(1)


def minimal_flip_strength(
    model: nn.Module,
    images: torch.Tensor,
    grid: int = 3,
    max_disp: float = 4.0,
    steps: int = 10,
    restarts: int = 0,
    tolerance: float = 0.05,
    preprocess=None,
    generator: torch.Generator | None = None,
    padding: str = "zeros",
) -> FlipResult:
    """Per image, the smallest C whose worst-case deformation (loss on the predicted
    class) changes the top-1 class: bisection over C with the attack inside, all images
    at once (each with its own C).

    Every start is drawn once, in units of C, so the search is deterministic given the
    generator and monotone in the draws.

    Args:
        images: (N, C, H, W) before ``preprocess``.
        max_disp: upper end of the search; images that survive it get ``inf``.
        tolerance: stop when the bracket is this narrow (px).

    Returns:
        :class:`FlipResult`.
    """
    check_images(images)
    if not (max_disp > 0 and tolerance > 0):
        raise ValueError("max_disp and tolerance must be positive.")
    device, dtype = model_device_dtype(model)
    x = images.to(device, dtype)
    prep = preprocess or (lambda t: t)
    n, k2 = x.shape[0], grid * grid
    unit = torch.rand(1 + restarts, n, k2, 2, generator=generator) * 2 - 1  # in units of C
    attack = WorstCaseTPS(grid, max_disp, steps=steps, objective="loss", padding=padding)
    with torch.no_grad(), evaluation_mode(model):
        predicted = class_scores(run_checked(model, prep(x))).argmax(-1)

    def flips(idx: torch.Tensor, budget: torch.Tensor) -> torch.Tensor:
        c = budget.to(device, dtype).view(-1, 1, 1)
        starts = unit[:, idx].to(device, dtype) * c
        best, _ = worst_case_displacements(
            model, x[idx], attack, starts[0], starts[1:] if restarts else None,
            preprocess=preprocess, budget=budget.to(device, dtype),
        )  # fmt: skip
        with torch.no_grad(), evaluation_mode(model):
            deformed = apply_tps(x[idx], best, grid, padding)
            flipped = class_scores(run_checked(model, prep(deformed))).argmax(-1)
            return (flipped != predicted[idx]).cpu()

    strength = torch.full((n,), float("inf"), dtype=torch.float64)
    everyone = torch.arange(n)
    flipped = flips(everyone, torch.full((n,), float(max_disp)))
    active = everyone[flipped]
    lo = torch.zeros(len(active), dtype=torch.float64)
    hi = torch.full((len(active),), float(max_disp), dtype=torch.float64)
    while len(active) and float((hi - lo).max()) > tolerance:
        mid = (lo + hi) / 2
        f = flips(active, mid.float())
        hi, lo = torch.where(f, mid, hi), torch.where(f, lo, mid)
    strength[active] = hi
    return FlipResult(strength, predicted.cpu(), float(max_disp), float(tolerance))
