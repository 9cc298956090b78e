"""Wall time of an experiment's runs: in one process (serial) vs 2 local worker processes
vs a private 2-CPU Ray cluster, on this machine, and the engines' overhead per run.

Workload (a stated subset of E1 quick, so it finishes in minutes on 2 cores): E1
(`pooling`) with maxpool and subsample, 2 seeds, width 0.125, 1 epoch on 5,000 CIFAR-10
training images, 1,000 test images, 16 measured images — 4 runs. Overhead: the same
plan with no training (measured at init only), where the work per run is ~1 s and the wall
time is mostly the engine's (process/worker start, dispatch, result read-back).

Every configuration runs in a fresh output folder (nothing is reused). The serial run uses
torch's default threads (all cores), each worker cores / workers threads, so their numbers
agree to float rounding (the tests check byte equality at equal thread counts); the
largest difference of summary.csv means is printed.

    python benchmarks/bench_scaleout.py --data cifar10:PATH [--skip-ray]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import print_table  # noqa: E402

RUNS = ["--archs", "maxpool,subsample", "--seeds", "2", "--width", "0.125", "--images", "16",
        "--train-images", "5000", "--test-images", "1000", "--quiet"]  # fmt: skip
#: E1 paper preset: 6 types × 5 seeds; the GPU cost estimate of presets.PAPER_COST
PAPER_E1_NETWORKS, PAPER_E1_GPU_HOURS, PAPER_ALL_GPU_HOURS = 30, 1.5, 4.5


def timed(argv: list[str]) -> float:
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "defstab", *argv], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"failed: {' '.join(argv)}\n{done.stderr[-1500:]}")
    return time.perf_counter() - t0


def means(path: Path) -> dict:
    from defstab.io.tables import read_csv

    keys = ("condition", "phase", "metric", "layer_index")
    return {tuple(r[k] for k in keys): float(r["mean"]) for r in read_csv(path)}


def max_difference(a: dict, b: dict) -> float:
    if a.keys() != b.keys():
        raise SystemExit("the executors produced different rows")
    return max(abs(a[k] - b[k]) for k in a)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="cifar10:PATH")
    parser.add_argument("--skip-ray", action="store_true")
    args = parser.parse_args()
    base = ["experiment", "pooling", "--data", args.data, *RUNS]
    configs = [("serial (1 process)", []), ("local, 2 workers", ["--executor", "local",
               "--workers", "2"])]  # fmt: skip
    if not args.skip_ray:
        configs.append(("Ray, private 2-CPU cluster", ["--executor", "ray"]))
    root = Path(tempfile.mkdtemp(prefix="bench_scaleout_"))
    rows = []
    try:
        for phase, epochs in (("train 1 epoch + measure", "1"), ("measure only (overhead)", "0")):
            serial = None
            for name, extra in configs:
                out = root / f"{phase[:5]}-{len(rows)}"
                seconds = timed([*base, "--epochs", epochs, *extra, "--out", str(out)])
                summary = means(out / "pooling" / "summary.csv")
                serial = serial or (seconds, summary)
                rows.append(
                    {
                        "workload": phase,
                        "executor": name,
                        "wall s": f"{seconds:.1f}",
                        "vs serial": f"{serial[0] / seconds:.2f}x",
                        "extra s per run": f"{(seconds - serial[0]) / 4:+.1f}",
                        "max |Δ mean| vs serial": f"{max_difference(summary, serial[1]):.1e}",
                    }
                )
                print(rows[-1], flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"\n{os.cpu_count()} CPU cores; 4 runs per workload")
    print_table(rows, list(rows[0]))
    per_network_min = PAPER_E1_GPU_HOURS * 60 / PAPER_E1_NETWORKS
    waves = -(-PAPER_E1_NETWORKS // 8)
    print(
        f"\nOn paper (FLOP estimate, not measured): E1 paper preset = {PAPER_E1_NETWORKS} "
        f"networks × ≈{per_network_min:.0f} GPU-min; on 8 GPUs with one run each, "
        f"{waves} waves ≈ {waves * per_network_min:.0f} min (vs {PAPER_E1_GPU_HOURS:.1f} h on "
        f"one GPU). All of E1–E5 ≈ {PAPER_ALL_GPU_HOURS} GPU-hours ≈ "
        f"{PAPER_ALL_GPU_HOURS * 60 / 8:.0f} min on 8 GPUs if the runs spread evenly."
    )


if __name__ == "__main__":
    main()
