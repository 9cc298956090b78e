"""The Lie derivative against what a user would otherwise run (Gruver et al.'s recipe), in
the same run, on the same images and model:

* end to end, one transform: defstab's one forward-mode pass (the warp's tangent at the
  input) against their ``jvp``, the double-VJP trick (two backward passes) through their
  warp;
* each module's contribution: defstab's exact value (one forward-mode pass per module)
  against their estimator — forward hooks computing each leaf's own L_i, then one backward
  pass per random probe z (their default 100) reading ⟨∂(zᵀs)/∂out_i, L_i⟩².

Both sides are batched over the images (their scripts use batch 1). The estimator's error
against the exact value is printed too: it is what 100 probes buy.

    python benchmarks/bench_lie.py [--images 16] [--width 0.25] [--probes 100] [--data D]

(``--data cifar10:PATH`` measures real images; the default, uniform noise, exaggerates the
gap between their one-sided derivative and the symmetric one: noise has no smoothness.)
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F

from _timing import best_time
from defstab.measure.lie import lie_derivatives
from defstab.measure.lie_actions import action_tangent
from defstab.models import create_model


def their_jvp(f, x, v):
    """J_f(x)·v by the double-VJP trick (their ``lee/lie_derivs.py:jvp``)."""
    x = x.detach().requires_grad_(True)
    y = f(x)
    u = torch.zeros_like(y, requires_grad=True)
    (g,) = torch.autograd.grad(y, x, u, create_graph=True)
    (jv,) = torch.autograd.grad(g, u, v)
    return jv


def their_warp(x, transform, t):
    """Their ``affine_transform``: A_t built from a tensor t (so it is differentiable),
    ``affine_grid(align_corners=True)``, bilinear sampling through ``floor``, reflected
    indices."""
    one, zero = torch.ones_like(t), torch.zeros_like(t)
    rows = {
        "translate_x": [[one, zero, t], [zero, one, zero]],
        "rotate": [[torch.cos(t), torch.sin(t), zero], [-torch.sin(t), torch.cos(t), zero]],
        "scale": [[1 - t, zero, zero], [zero, 1 - t, zero]],
    }[transform]
    theta = torch.stack([torch.stack(r) for r in rows]).expand(x.shape[0], 2, 3)
    n, c, h, w = x.shape
    grid = F.affine_grid(theta, [n, c, h, w], align_corners=True)
    px, py = (grid[..., 0] + 1) / 2 * (w - 1), (grid[..., 1] + 1) / 2 * (h - 1)
    x0, y0 = px.floor().detach(), py.floor().detach()
    wx, wy = (px - x0).unsqueeze(1), (py - y0).unsqueeze(1)

    def at(yi, xi):
        yi = (h - 1) - ((h - 1) - yi.long().abs()).abs()
        xi = (w - 1) - ((w - 1) - xi.long().abs()).abs()
        flat = (yi * w + xi).reshape(n, 1, h * w).expand(n, c, h * w)
        return x.reshape(n, c, h * w).gather(2, flat).reshape(n, c, h, w)

    top = at(y0, x0) * (1 - wx) + at(y0, x0 + 1) * wx
    bottom = at(y0 + 1, x0) * (1 - wx) + at(y0 + 1, x0 + 1) * wx
    return top * (1 - wy) + bottom * wy


def their_end_to_end(model, x, transform):
    """d/dt softmax(model(warp_t(x))) at t = 0 by their jvp through their warp."""
    return their_jvp(lambda t: torch.softmax(model(their_warp(x, transform, t)), dim=1),
                     torch.zeros(()), torch.ones(()))  # fmt: skip


def their_contributions(model, x, transform, probes, generator):
    """Their estimator: per leaf, the mean over probes of ⟨∂(zᵀs)/∂out_i, L_i⟩², summed
    per image (their store_estimator), with L_i from a forward hook (their store_inputs)."""
    leaves = [(n, m) for n, m in model.named_modules() if n and not list(m.children())]
    local, outputs, hooks, busy = {}, {}, [], []
    for name, module in leaves:

        def hook(mod, args, out, name=name):
            if busy:  # the module's own jvp below runs it again
                return
            busy.append(name)
            inp = args[0].detach()
            lie = their_jvp(lambda z: mod(z.clone()), inp, action_tangent(inp, transform))
            busy.pop()
            local[name] = lie - action_tangent(out.detach(), transform)
            outputs[name] = out

        hooks.append(module.register_forward_hook(hook))
    try:
        scores = torch.softmax(model(x.clone().requires_grad_(True)), dim=1)
    finally:
        for h in hooks:
            h.remove()
    totals = {name: torch.zeros(x.shape[0]) for name in local}
    for _ in range(probes):
        z = torch.randn(scores.shape, generator=generator)
        grads = torch.autograd.grad(scores, [outputs[n] for n in local], z, retain_graph=True)
        for (name, lie), g in zip(local.items(), grads, strict=True):
            totals[name] += (g * lie).flatten(1).sum(1).pow(2).detach()
    return {name: v / probes for name, v in totals.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=16)
    ap.add_argument("--width", type=float, default=0.25)
    ap.add_argument("--probes", type=int, default=100)
    ap.add_argument("--data", default=None, help="a DATA spec (default: uniform noise)")
    args = ap.parse_args()
    torch.manual_seed(0)
    model = create_model("vgg_cifar_maxpool", width=args.width, seed=0).eval()
    for m in model.modules():  # their scripts replace in-place ReLUs (backward hooks)
        if hasattr(m, "inplace"):
            m.inplace = False
    if args.data:
        from defstab.data.sources import load_data
        from defstab.data.spec import DataSpec

        x = load_data(DataSpec.parse(args.data), "test").images(list(range(args.images)))
    else:
        x = torch.rand(args.images, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    transform = "rotate"
    ours = lie_derivatives(model, x, [transform], contributions=True)
    theirs_e2e = their_end_to_end(model, x, transform)
    gap = (theirs_e2e.pow(2).sum(1).double() - ours.end_to_end_sq[0]).abs().max()
    print(f"end to end ‖L_X s‖²: their one-sided derivative (floor at t = 0) differs from the "
          f"symmetric one by up to {float(gap):.2e} (values ≈ "
          f"{float(ours.end_to_end_sq[0].mean()):.2e})")  # fmt: skip
    gen = torch.Generator().manual_seed(1)
    estimate = their_contributions(model, x, transform, args.probes, gen)
    exact = {u: ours.contributions[0, k] for k, u in enumerate(ours.units) if ours.leaf[k]}
    big = [u for u in exact if float(exact[u].mean()) > 1e-3 * float(max(
        v.mean() for v in exact.values()))]  # fmt: skip
    errors = [
        abs(float(estimate[u].mean()) - float(exact[u].mean())) / float(exact[u].mean())
        for u in big
    ]
    print(f"their {args.probes}-probe estimate vs the exact contribution, over "
          f"{len(big)} leaves: median relative error {sorted(errors)[len(errors) // 2]:.1%}, "
          f"largest {max(errors):.1%}")  # fmt: skip

    t_ours_e2e = best_time(lambda: lie_derivatives(model, x, [transform], contributions=False),
                           repeats=3)  # fmt: skip
    t_theirs_e2e = best_time(lambda: their_end_to_end(model, x, transform), repeats=3)
    t_ours = best_time(lambda: lie_derivatives(model, x, [transform]), repeats=2)
    t_theirs = best_time(lambda: their_contributions(model, x, transform, args.probes, gen),
                         repeats=2)  # fmt: skip
    print(f"{args.images} images, width {args.width}, {transform}, 2 threads:")
    print(f"  end to end + every layer: defstab {t_ours_e2e:.3f} s, their jvp {t_theirs_e2e:.3f} s"
          f" (end to end only): {t_theirs_e2e / t_ours_e2e:.2f}×")  # fmt: skip
    print(f"  contributions: defstab exact {t_ours:.3f} s, their {args.probes}-probe estimate "
          f"{t_theirs:.3f} s: {t_theirs / t_ours:.2f}×")  # fmt: skip


if __name__ == "__main__":
    main()
