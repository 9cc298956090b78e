"""ImageNet-P frames: defstab's batched per-image warps (images of different sizes on one
canvas, each about its own centre) against what a user porting ``make_imagenet_p.py``
would write on tensors: one ``TF.affine`` / ``TF.perspective`` per image and frame on the
whole image, then ``CenterCrop(224)``. Same inputs, same frames (checked), ratios printed.

    python benchmarks/bench_sequences.py [--images 16]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from defstab.data.stream import PaddedImages  # noqa: E402
from defstab.translate.sequences import get_sequence_preset, make_sequence  # noqa: E402
from test_imagenet_p_edges import _their_frame  # noqa: E402  (the per-image port)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=16)
    args = parser.parse_args()
    g = torch.Generator().manual_seed(0)
    widths = [256, 341, 384, 300]  # ImageNet-like aspects after Resize(256)
    images = [torch.rand(3, 256, widths[i % 4], generator=g) for i in range(args.images)]
    padded = PaddedImages.of(images)
    preset = get_sequence_preset("imagenet-p")
    print(f"{args.images} images (256 × {sorted(set(widths))}), torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads")  # fmt: skip
    print(f"{'perturbation':<13} {'defstab s':>10} {'per image s':>12} {'speed-up':>9}")
    for perturbation in ("translate", "rotate", "scale", "tilt"):
        t0 = time.perf_counter()
        frames, values = make_sequence(padded, perturbation, preset)
        ours = time.perf_counter() - t0
        t0 = time.perf_counter()
        loop = [
            torch.stack([_their_frame(x[None], perturbation, float(v), "authors")[0]
                         for v in values])
            for x in images
        ]  # fmt: skip
        theirs = time.perf_counter() - t0
        assert torch.allclose(frames, torch.stack(loop), atol=2e-4)
        print(f"{perturbation:<13} {ours:10.2f} {theirs:12.2f} {theirs / ours:8.1f}x")


if __name__ == "__main__":
    main()
