"""Cost of the worst-case TPS attack against the work it cannot avoid.

Per image, an attack of S steps needs S × (forward + backward) through the deformation
and the network up to the attacked layer. This times both in the same run — the attack
(``worst_case_displacements``) and a bare loop of S forward + backward passes of the same
graph — and prints the ratio (goal: ≤ 1.3×). CIFAR VGG (32 px) and the ImageNet VGG
(224 px; width 0.25 here so that it runs on a laptop CPU in a minute).

    python benchmarks/bench_worst_case.py [--steps 5]
"""

from __future__ import annotations

import argparse

import torch

from _timing import best_time, print_table
from defstab.deform import DeformationSpec, apply_tps
from defstab.measure.distances import paired_distance
from defstab.measure.worst_case import WorstCaseTPS, layer_forward, worst_case_displacements
from defstab.models import create_model

CASES = [
    ("vgg_cifar_maxpool", 1.0, 32, 64),
    ("vgg_imagenet_maxpool", 0.25, 224, 4),
]


def time_case(name: str, width: float, size: int, batch: int, steps: int) -> dict:
    model = create_model(name, width=width, seed=0).eval()
    layer = model.representation_points[-1]
    x = torch.rand(batch, 3, size, size)
    spec = DeformationSpec.paper(size)
    start = spec.sample(batch, torch.Generator().manual_seed(0))
    attack = WorstCaseTPS.like(spec, steps=steps, layer=layer)
    forward = layer_forward(model, layer)
    with torch.no_grad():
        ref = forward(x)

    def bare():
        # the unavoidable part: S × (forward + backward) w.r.t. the displacements
        d = start.clone()
        for _ in range(steps):
            d.requires_grad_(True)
            value = paired_distance(ref, forward(apply_tps(x, d, spec.grid)), "cosine")
            (grad,) = torch.autograd.grad(value.sum(), d)
            d = (d.detach() + 0.1 * grad.sign()).clamp(-spec.max_disp, spec.max_disp)

    def full():
        worst_case_displacements(model, x, attack, start)

    t_bare = best_time(bare, repeats=3)
    t_full = best_time(full, repeats=3)
    return {
        "model": f"{name} ×{width}",
        "images": batch,
        "steps": steps,
        "S×(fwd+bwd) ms/img": f"{1000 * t_bare / batch:.1f}",
        "attack ms/img": f"{1000 * t_full / batch:.1f}",
        "ratio": f"{t_full / t_bare:.2f}",
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=5)
    args = parser.parse_args()
    torch.manual_seed(0)
    rows = [time_case(*case, args.steps) for case in CASES]
    print_table(rows, list(rows[0]))


if __name__ == "__main__":
    main()
