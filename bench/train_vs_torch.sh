#!/usr/bin/env bash
# train_vs_torch.sh - training images/s of Dojo against PyTorch (Debian's
# python3-torch) on the same network, batch size and thread count, measured
# in the same run, printed as a ratio.
#
# usage: bench/train_vs_torch.sh [MODEL] [THREADS] [BATCH] [IMAGES] [PRECISION]
#        (defaults: models/fmnist-cnn.json 2 128 10240 fp32; PyTorch always
#        trains in float32, the reference a user would otherwise pick)
# Dojo's figure is its training throughput over one epoch of IMAGES images
# (forward, backward, update; data loading runs on its own thread).
set -euo pipefail
cd "$(dirname "$0")/.."
model=${1:-models/fmnist-cnn.json}
threads=${2:-2}
batch=${3:-128}
images=${4:-10240}
precision=${5:-fp32}
dojo=${DOJO:-build/dojo}
[ -x "$dojo" ] || { echo "build first: make" >&2; exit 2; }
/usr/bin/python3 -c 'import torch' 2>/dev/null || { echo "needs Debian's python3-torch: apt-get install python3-torch" >&2; exit 2; }

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
dojo_ips=$("$dojo" train --model "$model" --epochs 1 --batch-size "$batch" --threads "$threads" \
    --train-limit "$images" --test-limit 500 --precision "$precision" --out "$out/run" --json | tail -n 1 |
    /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["images_per_second"])')
torch_ips=$(/usr/bin/python3 bench/torch_train_bench.py --model "$model" --threads "$threads" \
    --batch-size "$batch" --images "$images" --json |
    /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["images_per_second"])')
/usr/bin/python3 - "$model" "$threads" "$batch" "$dojo_ips" "$torch_ips" "$precision" <<'PY'
import sys
model, threads, batch, d, t, p = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4]), float(sys.argv[5]), sys.argv[6]
print("%s, batch %s, %s threads: dojo (%s) %.0f images/s, pytorch (fp32) %.0f images/s, ratio %.2fx" % (model, batch, threads, p, d, t, d / t))
PY
