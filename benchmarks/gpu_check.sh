#!/usr/bin/env bash
# The GPU check: run on a CUDA machine from the repository root, after
#   pip install -e ".[test]" -c constraints.txt
# It runs the GPU-marked tests, the three benchmarks on the GPU, a two-process NCCL torchrun
# of a small network against one process, and the E1 quick preset with its wall time, each
# under its own time limit (about 10 minutes in all), then prints one table. Logs: $OUT.
#
#   benchmarks/gpu_check.sh [DATA]     DATA: cifar10:PATH (default: the unpacked shared copy)
set -uo pipefail
cd "$(dirname "$0")/.."
DATA=${1:-cifar10:$HOME/.cache/defstab-data/cifar10-jpeg}
OUT=${OUT:-$(mktemp -d /tmp/defstab-gpu-check.XXXX)}
mkdir -p "$OUT"
if ! python -c "import torch, sys; sys.exit(not torch.cuda.is_available())"; then
    echo "gpu_check: no CUDA device is visible to torch; nothing to check." >&2
    exit 2
fi
GPUS=$(python -c "import torch; print(torch.cuda.device_count())")
CARD=$(python -c "import torch; print(torch.cuda.get_device_name(0))")
ROWS=()

check() {  # check NAME LIMIT_S COMMAND...: run, time, keep the last line of its output
    local name=$1 limit=$2; shift 2
    local t0=$SECONDS
    timeout "$limit" "$@" >"$OUT/$name.log" 2>&1
    local rc=$?
    local last
    last=$(grep -v '^\s*$' "$OUT/$name.log" | tail -n 1 | cut -c1-90)
    ROWS+=("$(printf '%-22s %-6s %6ss  %s' "$name" "$([ $rc = 0 ] && echo ok || echo "rc=$rc")" $((SECONDS - t0)) "$last")")
    echo "done: ${ROWS[-1]}"  # as it goes, so a run cut short still shows what finished
}

SMALL=(--model vgg_cifar_maxpool --width 0.25 --data synthetic --per-class 100 --epochs 2
       --batch-size 64 --seed 0 --quiet)
check gpu-tests 120 python -m pytest -m gpu -q -p no:cacheprovider
check bench-train 150 python benchmarks/bench_train.py --device cuda --widths 0.25,1
check bench-deform 60 python benchmarks/bench_deform.py --device cuda --scipy-images 2
check bench-measure 120 python benchmarks/bench_measure.py --device cuda
check train-1-process 60 defstab train "${SMALL[@]}" --out "$OUT/ddp1" --overwrite
if [ "$GPUS" -ge 2 ]; then
    check train-2-nccl 90 torchrun --standalone --nproc-per-node 2 -m defstab train \
        "${SMALL[@]}" --out "$OUT/ddp2" --overwrite
    check ddp-compare 30 python - "$OUT/ddp1/history.csv" "$OUT/ddp2/history.csv" <<'PY'
import csv, sys
a, b = ([float(r["test_acc"]) for r in csv.DictReader(open(p))] for p in sys.argv[1:3])
print(f"test accuracy, 1 process {a[-1]:.4f} vs 2 NCCL processes {b[-1]:.4f}; "
      f"largest difference over {len(a)} checkpoints {max(abs(x - y) for x, y in zip(a, b)):.4f}")
PY
else
    ROWS+=("$(printf '%-22s %-6s %6s   %s' train-2-nccl skip - "one GPU: NCCL needs a GPU per process")")
fi
check e1-quick 300 defstab experiment pooling --preset quick --data "$DATA" --out "$OUT/e1" --quiet

echo
echo "defstab GPU check on $GPUS × $CARD ($(python -c 'import torch; print("torch", torch.__version__, "CUDA", torch.version.cuda)')); logs in $OUT"
printf '%-22s %-6s %7s  %s\n' check result time "last line of its output"
printf '%s\n' "${ROWS[@]}"
