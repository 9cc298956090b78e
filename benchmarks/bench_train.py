"""Training throughput of defstab's engine against a plain PyTorch loop, and GFLOP/s.

Same model (the paper's CIFAR VGG), optimizer (SGD, momentum 0.9, weight decay 5e-4),
batch (128 random 32×32 images, no augmentation) and number of steps, in one run:

  * plain loop, fp32 NCHW: what a user writes first (the baseline of every ratio);
  * plain loop, channels-last + bf16 autocast: the same loop with the two levers;
  * defstab ``train()`` steps in fp32 and in bf16 (channels-last in both): its time counts
    the training steps (data indexing, lr schedule, forward, backward, update), not the
    evaluations at checkpoints;
  * the machine's throughput with one single-threaded process per core, for the plain
    fp32 loop and for defstab bf16 (how ``defstab experiment --workers N`` trains).

GFLOP/s are against the machine's fp32 and bf16 matmul peaks (the fastest of 1024²–3072²
GEMMs, same run).
Runs alternate and the best of ``--repeats`` counts, so none gains from running second.

With ``--compile``, the fast plain loop under ``torch.compile`` too, its compile time
printed and, in a second row, spread over one CIFAR-10 epoch.

Run: python benchmarks/bench_train.py [--widths 0.25,1] [--steps 12] [--device cpu|cuda]
     [--compile]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from functools import partial

import torch
import torch.nn.functional as F

from defstab.data.sources import ImageDataset
from defstab.models import create_model
from defstab.models.summary import count_flops
from defstab.train import TrainConfig, train
from defstab.train.precision import bf16_supported

MODEL = "vgg_cifar_maxpool"


def matmul_peak_gflops(dtype: torch.dtype, device: torch.device) -> float:
    """The fastest square GEMM of 1024², 2048² and 3072², best of 6 each, in GFLOP/s."""
    peak = 0.0
    for n in (1024, 2048, 3072):
        a = torch.randn(n, n, device=device).to(dtype)
        b = torch.randn(n, n, device=device).to(dtype)
        for _ in range(6):
            _sync(device)
            t0 = time.perf_counter()
            a @ b
            _sync(device)
            peak = max(peak, 2 * n**3 / (time.perf_counter() - t0) / 1e9)
    return peak


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def plain_loop(width, x, y, steps, batch, device, fast: bool, compiled: bool = False) -> float:
    """Seconds for ``steps`` SGD steps of a bare loop (fast: channels-last + bf16;
    compiled: the model under ``torch.compile``); the untimed first step is not counted
    (:func:`compiled_loop` reports it, the compilation)."""
    return _plain_loop(width, x, y, steps, batch, device, fast, compiled)[0]


def compiled_loop(width, x, y, steps, batch, device) -> tuple[float, float]:
    """(compile seconds, seconds of ``steps`` steps after it) of the compiled fast loop."""
    seconds, first = _plain_loop(width, x, y, steps, batch, device, True, True)
    return first, seconds


def _plain_loop(width, x, y, steps, batch, device, fast, compiled) -> tuple[float, float]:
    model = create_model(MODEL, width=width, seed=0).to(device)
    layout = torch.channels_last if fast else torch.contiguous_format
    model = model.to(memory_format=layout)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    model.train()
    net = torch.compile(model) if compiled else model
    xs = x.to(device).contiguous(memory_format=layout)
    ys = y.to(device)

    def step(s):
        xb, yb = xs[s * batch : (s + 1) * batch], ys[s * batch : (s + 1) * batch]
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=fast):
            out = net(xb)
        loss = F.cross_entropy(out.float(), yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    t0 = time.perf_counter()
    step(0)  # first-call allocations and kernel choice (or compilation) are not throughput
    _sync(device)
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    for s in range(steps):
        step(s)
    _sync(device)
    return time.perf_counter() - t0, first


def engine(width, data, steps, batch, device, precision: str) -> float:
    """Seconds of the training steps of defstab's ``train()`` (no checkpoint evaluations)."""
    cfg = TrainConfig(
        epochs=1, batch_size=batch, augment=False, probe_images=2, test_images=2,
        precision=precision, device=str(device),
    )  # fmt: skip
    model = create_model(MODEL, width=width, seed=0)
    # make_data gives steps + 1 batches, as the plain loop runs one untimed step first; the
    # engine times all of them, so scale to `steps` (its first step counts: a bias against it)
    seconds = train(model, data, data.subset(range(4)), cfg, quiet=True).step_seconds
    return seconds * steps / (steps + 1)


def make_data(steps: int, batch: int):
    n = (steps + 1) * batch  # one step more: the engine's first step is not throughput
    g = torch.Generator().manual_seed(0)
    pixels = torch.randint(0, 256, (n, 3, 32, 32), generator=g, dtype=torch.uint8)
    labels = torch.randint(0, 10, (n,), generator=g)
    return pixels.float() / 255, labels, ImageDataset(labels, [str(i) for i in range(10)],
                                                      "random", pixels=pixels)  # fmt: skip


def worker(kind: str, width: float, steps: int, batch: int) -> float:
    """One single-threaded process of the 'one process per core' rows."""
    torch.set_num_threads(1)
    x, y, data = make_data(steps, batch)
    cpu = torch.device("cpu")
    if kind == "plain":
        return plain_loop(width, x[batch:], y[batch:], steps, batch, cpu, fast=False)
    return engine(width, data, steps, batch, cpu, "bf16")


def per_core(kind: str, width: float, steps: int, batch: int, cores: int) -> float:
    """Images per second of ``cores`` single-threaded processes running at once."""
    cmd = [sys.executable, __file__, "--worker", kind, "--widths", str(width),
           "--steps", str(steps), "--batch", str(batch)]  # fmt: skip
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True) for _ in range(cores)]
    seconds = [json.loads(p.communicate()[0])["seconds"] for p in procs]
    return cores * steps * batch / max(seconds)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--widths", default="0.25,1.0")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument(
        "--compile", action="store_true", help="add torch.compile rows (slow: it compiles)"
    )
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        seconds = worker(args.worker, float(args.widths), args.steps, args.batch)
        print(json.dumps({"seconds": seconds}, allow_nan=False))
        return
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    bf16 = bf16_supported(device)
    peak32 = matmul_peak_gflops(torch.float32, device)
    peak16 = matmul_peak_gflops(torch.bfloat16, device) if bf16 else float("nan")
    print(
        f"torch {torch.__version__}, {device}, {args.threads} threads, batch {args.batch}, "
        f"{args.steps} steps; matmul peak fp32 {peak32:.0f} GFLOP/s, bf16 {peak16:.0f} GFLOP/s"
        + ("" if bf16 else " (no bf16 on this device: bf16 rows skipped)")
    )
    head = f"{'width':>5s}  {'loop':44s} {'img/s':>8s} {'GFLOP/s':>8s} {'of peak':>8s}"
    print(head + f" {'vs plain':>9s}")
    for width in [float(w) for w in args.widths.split(",")]:
        bench_width(width, args, device, {"fp32": peak32, "bf16": peak16} if bf16 else
                    {"fp32": peak32})  # fmt: skip


def bench_width(width: float, args, device: torch.device, peaks: dict[str, float]) -> None:
    """One width: every loop of the module docstring, one table row each."""
    steps, batch = args.steps, args.batch
    x, y, data = make_data(steps, batch)
    x, y = x[batch:], y[batch:]
    flops = 3 * count_flops(create_model(MODEL, width=width), (3, 32, 32))  # fwd + bwd
    runs = {
        "plain loop, fp32 NCHW": ("fp32", partial(plain_loop, width, x, y, steps, batch,
                                                  device, False)),
        "defstab train(), fp32": ("fp32", partial(engine, width, data, steps, batch, device,
                                                  "fp32")),
    }  # fmt: skip
    if "bf16" in peaks:
        runs["plain loop, channels-last + bf16 autocast"] = (
            "bf16",
            partial(plain_loop, width, x, y, steps, batch, device, True),
        )
        runs["defstab train(), bf16"] = (
            "bf16", partial(engine, width, data, steps, batch, device, "bf16"))  # fmt: skip
    best = {name: float("inf") for name in runs}
    for _ in range(args.repeats):
        for name, (_, fn) in runs.items():
            best[name] = min(best[name], fn())
    rates = {name: (steps * batch / t, runs[name][0]) for name, t in best.items()}
    if args.compile and "bf16" in peaks:  # once: a recompilation is not what a user pays
        compile_s, t = compiled_loop(width, x, y, steps, batch, device)
        epoch = 391  # CIFAR-10 steps per epoch at batch 128: what the compile time is spread over
        label = f"plain channels-last + bf16 + torch.compile ({compile_s:.0f} s to compile)"
        rates[label] = (steps * batch / t, "bf16")
        steady = steps * batch / t
        with_compile = epoch * batch / (compile_s + epoch * batch / steady)
        rates["  the same over one epoch, compile time counted"] = (with_compile, "bf16")
    cores = os.cpu_count() or 1
    if device.type == "cpu" and cores > 1:
        label = f"{cores} processes × 1 thread, "
        kinds = {"plain": "plain fp32 NCHW", "engine": "defstab bf16"}
        if "bf16" not in peaks:
            kinds.pop("engine")
        best_rate = dict.fromkeys(kinds, 0.0)
        for _ in range(args.repeats):  # best of repeats, alternating, as above
            for kind in kinds:
                rate = per_core(kind, width, steps, batch, cores)
                best_rate[kind] = max(best_rate[kind], rate)
        for kind, name in kinds.items():
            rates[label + name] = (best_rate[kind], "fp32" if kind == "plain" else "bf16")
    base = rates["plain loop, fp32 NCHW"][0]
    for name, (rate, precision) in rates.items():
        gflops = rate * flops / 1e9
        print(
            f"{width:5.2f}  {name:44s} {rate:8.0f} {gflops:8.1f} "
            f"{100 * gflops / peaks[precision]:7.0f}% {rate / base:8.2f}x",
            flush=True,
        )


if __name__ == "__main__":
    main()
