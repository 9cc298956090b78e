"""Cost of a full sensitivity measurement against the forward passes it cannot avoid.

For 128 images at every layer of the paper's CIFAR VGG (32×32) and ImageNet VGG
(224×224), compares in one run:
  * bare: two forward passes (x and τx, eval, no_grad, the measurement's batch size),
    τx precomputed;
  * floor: the bare passes plus every layer's clean rows kept in RAM and its Gram matrix
    (the exact pairwise median's unavoidable work);
  * defstab: ``measure_sensitivity`` (deformation, hooks, per-image distances, exact
    pairwise median) without and with the noise control (which adds a third pass).
Each variant runs in its own process so that its peak memory (max RSS) is its own.

``--scale N1,N2,…`` instead prints cost against N on the CIFAR VGG (every layer, no noise
control): the exact normalizer (up to 4,096 images) and the sampled one, each against two
bare forward passes of the same images in the same chunks, with peak memory. Images are
1,000 random images repeated (deformed τx precomputed for the bare passes), streamed in
chunks so that no N × image tensor exists on either side.

Run: python benchmarks/bench_measure.py [--images 128] [--only cifar|imagenet] [--device cuda]
     python benchmarks/bench_measure.py --scale 1000,10000,50000
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import torch

CASES = {"cifar": ("vgg_cifar_maxpool", 32), "imagenet": ("vgg_imagenet_maxpool", 224)}


def worker(
    case: str, mode: str, images: int, threads: int, device: str = "cpu", width: float = 1.0
) -> dict:
    from defstab.deform import random_tps
    from defstab.measure import DeformationSpec, measure_sensitivity
    from defstab.measure.sensitivity import ACTIVATION_BYTES
    from defstab.models import create_model

    torch.set_num_threads(threads)
    name, size = CASES[case]
    model = create_model(name, seed=0, width=width).eval().to(device)
    x = torch.rand(images, 3, size, size, generator=torch.Generator().manual_seed(0)).to(device)
    spec = DeformationSpec.paper(size)
    # the measurement's own chunk size (2 copies per chunk without noise, 3 with)
    largest = max(p.numel() for p in _activations(model, x[:1]))
    batch = max(1, min(64, ACTIVATION_BYTES // (largest * (3 if mode == "noise" else 2) * 4)))
    if mode in ("bare", "floor"):
        tx, _ = random_tps(x, spec.grid, spec.max_disp, torch.Generator().manual_seed(1))
        layers = list(model.features.children())
        t0 = time.perf_counter()
        with torch.no_grad():
            if mode == "bare":
                for s in range(0, images, batch):
                    model(x[s : s + batch])
                    model(tx[s : s + batch])
            else:  # + each layer's clean rows kept in RAM and its Gram matrix: the exact
                # median's own work (what any exact all-pairs median has to do)
                kept = [[] for _ in layers]
                hooks = [m.register_forward_hook(lambda m, i, o, k=k: k.append(o.flatten(1)))
                         for m, k in zip(layers, kept, strict=True)]  # fmt: skip
                for s in range(0, images, batch):
                    model(x[s : s + batch])
                for h in hooks:
                    h.remove()
                for s in range(0, images, batch):
                    model(tx[s : s + batch])
                for k in [[x.flatten(1)], *kept]:
                    rows = torch.cat(k)
                    rows @ rows.T
        if x.is_cuda:
            torch.cuda.synchronize()
        seconds = time.perf_counter() - t0
    else:
        t0 = time.perf_counter()
        measure_sensitivity(
            model,
            x,
            spec,
            generator=torch.Generator().manual_seed(1),
            noise_control=(mode == "noise"),
            batch_size=batch,
        )
        seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB -> GiB
    return {"case": case, "mode": mode, "seconds": seconds, "peak_gib": peak, "batch": batch}


class RepeatedImages:
    """N images cycling through ``base`` (B, C, H, W), read chunk by chunk: a source for
    measure_sensitivity with the interface of defstab.data.stream.TensorImages."""

    def __init__(self, base: torch.Tensor, n: int):
        self.base, self.n, self.skipped = base, n, []

    def __len__(self) -> int:
        return self.n

    @property
    def image_shape(self):
        return tuple(self.base.shape[1:])

    def batches(self, order, batch_size, start=0, stop=None):
        stop = self.n if stop is None else stop
        for p0 in range(start, stop, batch_size):
            positions = torch.arange(p0, min(p0 + batch_size, stop))
            items = positions if order is None else order[positions]
            yield positions, self.base[items % len(self.base)]


def scale_worker(n: int, mode: str, threads: int, device: str) -> dict:
    """One row of the --scale table: ``bare`` (two passes), ``exact`` or ``sampled``."""
    from defstab.deform import random_tps
    from defstab.measure import DeformationSpec, measure_sensitivity
    from defstab.models import create_model

    torch.set_num_threads(threads)
    model = create_model("vgg_cifar_maxpool", seed=0).eval().to(device)
    base = torch.rand(1000, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    spec = DeformationSpec.paper(32)
    batch = 64  # the measurement's own choice for this network (ACTIVATION_BYTES)
    if mode == "bare":
        tx, _ = random_tps(base, spec.grid, spec.max_disp, torch.Generator().manual_seed(1))
        x_dev, tx_dev = base.to(device), tx.to(device)
        t0 = time.perf_counter()
        with torch.no_grad():
            for s in range(0, n, batch):
                rows = torch.arange(s, min(s + batch, n)) % len(base)
                model(x_dev[rows])
                model(tx_dev[rows])
    else:
        t0 = time.perf_counter()
        result = measure_sensitivity(
            model,
            RepeatedImages(base, n),
            spec,
            generator=torch.Generator().manual_seed(1),
            noise_control=False,
            batch_size=batch,
            normalizer=mode,
        )
        assert result.n_images == n
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB -> GiB
    return {"n": n, "mode": mode, "seconds": seconds, "peak_gib": peak}


def scale_table(sizes: list[int], threads: int, device: str, exact_up_to: int) -> None:
    print(
        f"torch {torch.__version__}, {device}, {threads} threads, float32; CIFAR VGG (width 1), "
        "every layer, no noise control, chunks of 64"
    )
    print(f"{'N':>7s} {'normalizer':10s} {'measure':>9s} {'2 passes':>9s} {'ratio':>7s} "
          f"{'peak RSS':>9s} {'bare RSS':>9s}")  # fmt: skip
    for n in sizes:
        bare = _run_worker(["--scale-worker", str(n), "bare"], threads, device)
        for mode in ("exact", "sampled"):
            if mode == "exact" and n > exact_up_to:
                continue
            r = _run_worker(["--scale-worker", str(n), mode], threads, device)
            print(
                f"{n:7d} {mode:10s} {r['seconds']:8.1f}s {bare['seconds']:8.1f}s "
                f"{r['seconds'] / bare['seconds']:6.2f}x {r['peak_gib']:8.2f}G "
                f"{bare['peak_gib']:8.2f}G",
                flush=True,
            )


def _run_worker(extra: list[str], threads: int, device: str) -> dict:
    cmd = [sys.executable, __file__, *extra, "--threads", str(threads), "--device", device]
    return json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)


def _activations(model, x):
    outs = []
    hooks = [
        m.register_forward_hook(lambda m, i, o: outs.append(o)) for m in model.features.children()
    ]
    with torch.no_grad():
        model(x)
    for h in hooks:
        h.remove()
    return [o[0] for o in outs]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=128)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--only", choices=list(CASES))
    ap.add_argument("--modes", default="bare,floor,measure,noise", help="which variants to run")
    ap.add_argument("--imagenet-width", type=float, default=0.5, help="ImageNet VGG width")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--scale", default=None, help="comma-separated N: the cost-vs-N table")
    ap.add_argument("--exact-up-to", type=int, default=4096, help="--scale: exact rows up to N")
    ap.add_argument("--worker", nargs=2, metavar=("CASE", "MODE"), help=argparse.SUPPRESS)
    ap.add_argument("--scale-worker", nargs=2, metavar=("N", "MODE"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.scale_worker:
        n, mode = args.scale_worker
        print(json.dumps(scale_worker(int(n), mode, args.threads, args.device), allow_nan=False))
        return
    if args.scale:
        sizes = [int(s) for s in args.scale.split(",")]
        scale_table(sizes, args.threads, args.device, args.exact_up_to)
        return
    if args.worker:
        width = args.imagenet_width if args.worker[0] == "imagenet" else 1.0
        print(
            json.dumps(
                worker(*args.worker, args.images, args.threads, args.device, width), allow_nan=False
            )
        )
        return
    print(
        f"torch {torch.__version__}, {args.device}, {args.threads} threads, {args.images} "
        f"images, float32; ImageNet VGG width {args.imagenet_width}"
    )
    header = ["network".ljust(10), "mode".ljust(36), "batch".rjust(5), "seconds".rjust(8)]
    print(" ".join(header + ["vs bare".rjust(8), "vs floor".rjust(8), "peak RSS".rjust(9)]))
    labels = {
        "bare": "2 bare forward passes",
        "floor": "floor: 2 passes + clean rows + Grams",
        "measure": "defstab measure",
        "noise": "defstab + noise control",
    }
    for case in [args.only] if args.only else list(CASES):
        done = {}
        for mode in args.modes.split(","):
            cmd = [sys.executable, __file__, "--worker", case, mode, "--images", str(args.images),
                   "--threads", str(args.threads), "--device", args.device,
                   "--imagenet-width", str(args.imagenet_width)]  # fmt: skip
            r = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
            done[mode] = r["seconds"]

            def ratio(base, r=r, done=done):
                return f"{r['seconds'] / done[base]:7.2f}x" if base in done else " " * 8

            print(
                f"{case:10s} {labels[mode]:36s} {r['batch']:5d} {r['seconds']:8.2f} "
                f"{ratio('bare')} {ratio('floor')} {r['peak_gib']:8.2f}G",
                flush=True,
            )


if __name__ == "__main__":
    main()
