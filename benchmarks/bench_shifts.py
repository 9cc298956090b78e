"""Shifts and the worst-shift accuracy against what a user would otherwise write, in the
same run:

* band-limited half-pixel shifts: defstab's phase ramp (one FFT of the images, one inverse
  FFT per shift) against Michaeli et al.'s ``subpixel_shift`` (zero-insertion ×up, a
  low-pass FFT at the upsampled size, roll, decimate), ported here, per shift;
* the accuracy under the worst shift of a grid: :func:`shift_robust_accuracy` (shifts
  made by one gather or one batched FFT, chunks of images × shifts through the model)
  against their evaluation loop (one ``torch.roll`` or ``subpixel_shift`` and one forward
  pass of the batch per shift).

    python benchmarks/bench_shifts.py [--images 128] [--radius 12] [--width 0.25]
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F

from _timing import best_time
from defstab.models import create_model
from defstab.translate.robust import shift_robust_accuracy
from defstab.translate.shifts import fourier_shift, shift_grid


def their_subpixel_shift(images, up, shift_x, shift_y):
    """Zero-insert ×up, ideal low-pass (Nyquist halved), ×up², roll, decimate (theirs)."""
    b, c, h, w = images.shape
    n = h * up
    low = int((n * (1 / up)) // 2)
    rect = torch.ones(n)
    rect[low + 1 : n - low] = 0
    if n % 4 == 0:
        rect[low] = rect[n - low] = 0.5
    mask = (rect[:, None] * rect[None, :])[:, : n // 2 + 1]
    z = F.pad(images.reshape(b, c, h, 1, w, 1), [0, up - 1, 0, 0, 0, up - 1])
    z = torch.fft.irfft2(torch.fft.rfft2(z.reshape(b, c, n, w * up)) * mask) * up**2
    return torch.roll(z, shifts=(-shift_x, -shift_y), dims=(2, 3))[:, :, ::up, ::up]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=128)
    ap.add_argument("--radius", type=int, default=12)
    ap.add_argument("--width", type=float, default=0.25)
    args = ap.parse_args()
    torch.manual_seed(0)
    x = torch.rand(args.images, 3, 32, 32)
    grid = shift_grid("half", args.radius)  # (R − 1)² half-pixel shifts
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.images} "
          f"images of 32 px, {len(grid)} half-pixel shifts (radius {args.radius})")  # fmt: skip

    def ours_shift():
        for i in range(0, len(grid), 32):
            fourier_shift(x, grid[i : i + 32])

    def theirs_shift():
        for dx, dy in grid.tolist():  # theirs reads at i + s/2: shift = −2·d on H, W
            their_subpixel_shift(x, 2, int(-2 * dy), int(-2 * dx))

    a, b = best_time(ours_shift, 3), best_time(theirs_shift, 3)
    print(f"{'half-pixel shifts':<34} defstab {a:7.3f} s   theirs {b:7.3f} s   {b / a:5.2f}x")

    model = create_model("vgg_cifar_maxpool", width=args.width, seed=0).eval()
    with torch.no_grad():
        labels = model(x).argmax(-1)
    for name in ("integer", "half"):
        shifts = shift_grid(name, args.radius)

        def ours(name=name):
            return shift_robust_accuracy(model, x, labels, name, radius=args.radius)

        def loop(shifts=shifts, name=name):
            with torch.no_grad():
                ok = model(x).argmax(-1) == labels
                for dx, dy in shifts.tolist():
                    if name == "integer":
                        moved = torch.roll(x, (int(dy), int(dx)), (2, 3))
                    else:
                        moved = their_subpixel_shift(x, 2, int(-2 * dy), int(-2 * dx))
                    ok &= model(moved).argmax(-1) == labels
            return ok

        assert ours()["robust"].tolist() == loop().tolist()  # the same answer first
        a, b = best_time(ours, 1), best_time(loop, 1)
        print(f"{'worst ' + name + ' shift accuracy':<34} defstab {a:7.3f} s   loop   {b:7.3f} s"
              f"   {b / a:5.2f}x")  # fmt: skip


if __name__ == "__main__":
    main()
