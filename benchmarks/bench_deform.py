"""Throughput of random TPS deformation (sample + warp) against what a user would use.

Compares, in one run, for 128 images:
  * defstab: sample displacements, exact TPS field (cached operator), grid_sample warp;
  * bare ``torch.nn.functional.grid_sample`` with a precomputed grid (the lower bound);
  * kornia's ``get_tps_transform`` + ``warp_image_tps`` (if kornia is installed);
  * per-image scipy: ``RBFInterpolator`` (thin_plate_spline) + ``map_coordinates``.

On a GPU (``--device cuda``) the images live there and scipy and kornia are left out.

Run: python benchmarks/bench_deform.py [--threads 2] [--scipy-images 8] [--device cuda]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
import torch.nn.functional as F

from _timing import best_time, print_table
from defstab.deform import get_tps, random_tps, sample_displacements
from defstab.deform.warp import pixel_to_normalized


def bench_defstab(x, grid, c, gen):
    return lambda: random_tps(x, grid, c, gen)


def bench_bare_grid_sample(x, grid, c, gen):
    """The lower bound: the same kind of field, computed before the clock starts.

    grid_sample's speed depends on where it samples (points outside the image take
    another branch), so the precomputed grid comes from the same TPS distribution.
    """
    n, _, h, w = x.shape
    field = get_tps((h, w), grid).field(sample_displacements(n, grid, c, gen))
    ys, xs = torch.arange(h, dtype=x.dtype), torch.arange(w, dtype=x.dtype)
    base = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), -1)
    g = pixel_to_normalized(base + field, (h, w)).to(x.device)
    return lambda: F.grid_sample(x, g, mode="bilinear", align_corners=True)


def bench_kornia(x, grid, c, gen):
    try:
        from kornia.geometry.transform import get_tps_transform, warp_image_tps
    except ImportError:
        return None
    n = x.shape[0]
    lin = torch.linspace(-1, 1, grid)
    yy, xx = torch.meshgrid(lin, lin, indexing="ij")
    src = torch.stack([xx.reshape(-1), yy.reshape(-1)], -1).expand(n, -1, -1)
    h, w = x.shape[-2:]

    def run():
        d = sample_displacements(n, grid, c, gen) * torch.tensor([2 / (w - 1), 2 / (h - 1)])
        kernel, affine = get_tps_transform(src + d, src)
        return warp_image_tps(x, src + d, kernel, affine)

    return run


def bench_scipy(x, grid, c, gen, n_images):
    from scipy.interpolate import RBFInterpolator
    from scipy.ndimage import map_coordinates

    tps = get_tps(tuple(x.shape[-2:]), grid)
    cp = tps.control_points.numpy()
    h, w = x.shape[-2:]
    yy, xx = np.mgrid[0:h, 0:w]
    pts = np.stack([xx.ravel(), yy.ravel()], 1).astype(np.float64)
    xs = x[:n_images].numpy()

    def run():
        disp = sample_displacements(n_images, grid, c, gen).double().numpy()
        out = np.empty_like(xs)
        for i in range(n_images):
            u = RBFInterpolator(cp, disp[i], kernel="thin_plate_spline", degree=1)(pts)
            coords = [yy + u[:, 1].reshape(h, w), xx + u[:, 0].reshape(h, w)]
            for ch in range(xs.shape[1]):
                out[i, ch] = map_coordinates(xs[i, ch], coords, order=1, cval=0.0)
        return out

    return run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--images", type=int, default=128)
    ap.add_argument("--scipy-images", type=int, default=8, help="scipy is per image: time fewer")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    print(f"torch {torch.__version__}, {device}, {args.threads} threads, {args.images} images, "
          "float32")  # fmt: skip

    def timed(fn, repeats=5):
        def synced():
            fn()
            if device.type == "cuda":
                torch.cuda.synchronize()

        return best_time(synced, repeats=repeats)

    rows, ceilings = [], []
    for size, grid, c in [(32, 3, 2.0), (224, 5, 10.0)]:
        gen = torch.Generator().manual_seed(0)
        x = torch.rand(args.images, 3, size, size, generator=gen).to(device)
        get_tps((size, size), grid)  # operator built once, as in real use
        # alternate defstab and its floor, best of each, so neither gains from going second
        ours, bare = float("inf"), float("inf")
        for _ in range(3):
            ours = min(ours, timed(bench_defstab(x, grid, c, gen)))
            bare = min(bare, timed(bench_bare_grid_sample(x, grid, c, gen)))
        # the exact field's own GEMM, alone: what no implementation of an exact TPS avoids
        d = sample_displacements(args.images, grid, c, gen).to(device)
        tps = get_tps((size, size), grid)
        field = min(timed(lambda tps=tps, d=d: tps.sampling_grid(d)) for _ in range(3))
        timings = {
            "defstab": (ours, args.images),
            "grid_sample (bare)": (bare, args.images),
            "field alone (TPS GEMM)": (field, args.images),
        }
        ceilings.append((size, bare / (bare + field)))
        kornia_fn = bench_kornia(x, grid, c, gen) if device.type == "cpu" else None
        if kornia_fn is not None:
            timings["kornia warp_image_tps"] = (timed(kornia_fn, repeats=2), args.images)
        if device.type == "cpu":
            timings["scipy per image"] = (
                timed(bench_scipy(x, grid, c, gen, args.scipy_images), repeats=2),
                args.scipy_images,
            )
        ours = args.images / timings["defstab"][0]
        for name, (sec, n) in timings.items():
            rate = n / sec
            rows.append(
                {
                    "size": f"3x{size}x{size}",
                    "k": grid,
                    "C": c,
                    "method": name,
                    "img/s": f"{rate:,.0f}",
                    "defstab / method": f"{ours / rate:.2f}x",
                }
            )
    print_table(rows, ["size", "k", "C", "method", "img/s", "defstab / method"])
    for size, ceiling in ceilings:
        print(f"{size} px: with nothing but the field and grid_sample, defstab / bare would be "
              f"{ceiling:.2f}x")  # fmt: skip


if __name__ == "__main__":
    main()
