"""``defstab bench`` against what a user would otherwise run: the card's protocols as
separate commands, each a new process (on the same images, with the same settings).

Both are run here, as subprocesses, on the same data; the numbers of every protocol are
asserted equal (bench's card.csv against each command's own tables) before the times are
compared. Prints each command's wall time, the sum, bench's, and the ratio.

    python benchmarks/bench_bench.py --data cifar10:PATH [--images 512] [--width 0.25]

The issue's goal: bench ≤ 0.6 × the sum of the separate commands (quick budget, 512
CIFAR-10 test images, width-0.25 VGG, 2 cores).
"""

from __future__ import annotations

import argparse
import csv
import json
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def timed(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "defstab", *argv], check=True,
                   stdout=subprocess.DEVNULL)  # fmt: skip
    return time.perf_counter() - start


def rows(path: Path) -> list[dict]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def check_equal(card: list[dict], folders: dict[str, Path]) -> int:
    """Bench's card against each command's tables; returns the numbers compared."""
    compared = 0
    value = {r["key"]: float(r["value"]) for r in card}
    for name in ("tps", "diffeo"):
        for r in rows(folders[name] / "sensitivity.csv"):
            if r["layer"] != "input":
                assert abs(value[f"{name}:sensitivity@{r['layer']}"] - float(r["mean"])) < 1e-6
                compared += 1
    for r in rows(folders["spatial"] / "summary.csv"):
        for metric, column in (("natural", "natural"), ("grid", "grid")):
            assert abs(value[f"spatial:{metric}_accuracy"] - float(r[column])) < 1e-9
            compared += 1
    for r in rows(folders["perturb"] / "summary.csv"):
        assert abs(value[f"perturb:fp_{r['perturbation']}"] - float(r["fp"])) < 1e-9
        compared += 1
    for r in rows(folders["translate"] / "summary.csv"):
        size = f"_{r['object_size']}px" if r.get("object_size") else ""
        key = f"translate:p_top1_change_{r['protocol']}{size}"
        if key in value:
            assert abs(value[key] - float(r["p_top1_change"])) < 1e-9
            compared += 1
    for r in rows(folders["smoothness"] / "smoothness.csv"):
        assert abs(value[f"smoothness:normalized_tv@{r['layer']}"] - float(r["smoothness"])) < 1e-6
        compared += 1
    return compared


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--images", type=int, default=512)
    parser.add_argument("--width", default="0.25")
    parser.add_argument("--model", default="vgg_cifar_maxpool")
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
    from defstab.requests.bench import CARD, card_requests
    from defstab.requests.fields import request_argv

    model = ["--model", args.model, "--width", args.width]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        separate, folders = {}, {}
        for name, request in card_requests("quick", args.images, 0, 32, list(CARD)).items():
            command = {"tps": "measure", "diffeo": "measure"}.get(name, name)
            data = [] if name == "smoothness" else ["--data", args.data, "--quiet"]
            folders[name] = tmp / name
            argv = [command, *model, *data, *request_argv(request), "--out", str(folders[name])]
            separate[name] = timed(argv)
            print(f"{separate[name]:7.1f} s  defstab {shlex.join(argv)}", flush=True)
        bench_argv = [
            "bench",
            args.model,
            "--width",
            args.width,
            "--data",
            args.data,
            "--images",
            str(args.images),
            "--out",
            str(tmp / "bench"),
            "--quiet",
        ]
        bench = timed(bench_argv)
        print(f"{bench:7.1f} s  defstab {shlex.join(bench_argv)}")
        compared = check_equal(rows(tmp / "bench" / "card.csv"), folders)
        info = json.loads((tmp / "bench" / "bench.json").read_text())
    total = sum(separate.values())
    units = sum(u["seconds"] for m in info["models"] for u in m["units"].values())
    print(f"\n{compared} numbers equal between bench and the separate commands")
    print(
        f"separate commands: {total:.1f} s in all; bench: {bench:.1f} s (its units: {units:.1f} s)"
    )
    print(f"ratio bench / separate = {bench / total:.2f} (goal ≤ 0.6)")


if __name__ == "__main__":
    main()
