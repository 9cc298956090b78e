"""Training throughput of defstab's engine against a plain PyTorch loop, and GFLOP/s.

Same model (the paper's CIFAR VGG), optimizer (SGD, momentum 0.9, weight decay 5e-4),
batch (128, fp32, random 32×32 images, no augmentation) and number of steps, in one run.
The engine's time counts its training steps (data indexing, lr schedule, forward,
backward, update), not the evaluations at checkpoints. The machine's matmul peak is
measured in the same run (an fp32 2048² GEMM).

Run: python benchmarks/bench_train.py [--steps 8] [--width 1.0]
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from defstab.data.sources import ImageDataset
from defstab.models import create_model
from defstab.models.summary import count_flops
from defstab.train import TrainConfig, train


def matmul_peak_gflops(n: int = 2048, repeats: int = 5) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best / 1e9


def plain_loop(model, x, y, steps: int, batch: int) -> float:
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    model.train()
    t0 = time.perf_counter()
    for s in range(steps):
        xb, yb = x[s * batch : (s + 1) * batch], y[s * batch : (s + 1) * batch]
        loss = F.cross_entropy(model(xb), yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--width", type=float, default=1.0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    n = args.steps * args.batch
    g = torch.Generator().manual_seed(0)
    pixels = torch.randint(0, 256, (n, 3, 32, 32), generator=g, dtype=torch.uint8)
    labels = torch.randint(0, 10, (n,), generator=g)
    x = pixels.float() / 255
    flops_per_image = 3 * count_flops(
        create_model("vgg_cifar_maxpool", width=args.width), (3, 32, 32)
    )

    data = ImageDataset(labels, [str(i) for i in range(10)], "random", pixels=pixels)
    cfg = TrainConfig(
        epochs=1,
        batch_size=args.batch,
        augment=False,
        probe_images=2,
        test_images=2,
        checkpoints_per_octave=1,
    )

    def ours() -> float:
        model = create_model("vgg_cifar_maxpool", width=args.width)
        return train(model, data, data.subset(range(4)), cfg, quiet=True).step_seconds

    def plain() -> float:
        return plain_loop(
            create_model("vgg_cifar_maxpool", width=args.width), x, labels, args.steps, args.batch
        )

    # alternate the two, best of `repeats` each, so neither gains from running second
    plain_loop(create_model("vgg_cifar_maxpool", width=args.width), x, labels, 2, args.batch)
    t_plain, t_ours = float("inf"), float("inf")
    for _ in range(args.repeats):
        t_plain = min(t_plain, plain())
        t_ours = min(t_ours, ours())
    peak = matmul_peak_gflops()
    print(
        f"torch {torch.__version__}, {args.threads} threads, CIFAR VGG width {args.width}, "
        f"batch {args.batch}, {args.steps} steps, fp32"
    )
    print(f"{'loop':28s} {'img/s':>8s} {'GFLOP/s':>8s} {'% of matmul peak':>17s}")
    for name, t in [("plain PyTorch loop", t_plain), ("defstab train() steps", t_ours)]:
        rate = n / t
        gflops = rate * flops_per_image / 1e9
        print(f"{name:28s} {rate:8.1f} {gflops:8.1f} {100 * gflops / peak:16.0f}%")
    print(
        f"defstab / plain throughput: {t_plain / t_ours:.2f}x; "
        f"matmul peak {peak:.1f} GFLOP/s (fp32 2048² GEMM)"
    )


if __name__ == "__main__":
    main()
