#!/usr/bin/env bash
# train_vs_torch.sh - training images/s of Dojo against PyTorch (Debian's
# python3-torch) on the same network, batch size and thread count, measured
# in the same run, printed as a ratio.
#
# usage: bench/train_vs_torch.sh [MODEL] [THREADS] [BATCH] [IMAGES] [PRECISION] [ROUNDS]
#        (defaults: models/fmnist-cnn.json 2 128 10240 fp32 3; PyTorch always
#        trains in float32, the reference a user would otherwise pick)
# Dojo's figure is its training throughput over one epoch of IMAGES images
# (forward, backward, update; data loading runs on its own thread).
# The two alternate ROUNDS times (Dojo, PyTorch, Dojo, ...): each round's
# ratio is printed, then the median of the rounds' ratios and of each side's
# figures - on a machine whose speed drifts (a shared VM) one pair is a
# sample of that drift, and alternating puts both sides in the same minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
model=${1:-models/fmnist-cnn.json}
threads=${2:-2}
batch=${3:-128}
images=${4:-10240}
precision=${5:-fp32}
rounds=${6:-3}
[[ "$rounds" =~ ^[1-9][0-9]*$ ]] || { echo "ROUNDS: expected a positive integer, got '$rounds'" >&2; exit 2; }
dojo=${DOJO:-build/dojo}
[ -x "$dojo" ] || { echo "build first: make" >&2; exit 2; }
/usr/bin/python3 -c 'import torch' 2>/dev/null || { echo "needs Debian's python3-torch: apt-get install python3-torch" >&2; exit 2; }

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
get_ips() { /usr/bin/python3 -c 'import json,sys; print(json.loads(sys.stdin.read().splitlines()[-1])["images_per_second"])'; }
pairs=()
for r in $(seq 1 "$rounds"); do
    rm -rf "$out/run"
    dojo_ips=$("$dojo" train --model "$model" --epochs 1 --batch-size "$batch" --threads "$threads" \
        --train-limit "$images" --test-limit 500 --precision "$precision" --out "$out/run" --json | get_ips)
    torch_ips=$(/usr/bin/python3 bench/torch_train_bench.py --model "$model" --threads "$threads" \
        --batch-size "$batch" --images "$images" --json | get_ips)
    pairs+=("$dojo_ips" "$torch_ips")
    /usr/bin/python3 -c 'import sys; d, t = float(sys.argv[3]), float(sys.argv[4]); print("round %s/%s: dojo %.0f, pytorch %.0f images/s, ratio %.2fx" % (sys.argv[1], sys.argv[2], d, t, d / t))' \
        "$r" "$rounds" "$dojo_ips" "$torch_ips"
done
/usr/bin/python3 - "$model" "$threads" "$batch" "$precision" "${pairs[@]}" <<'PY'
import statistics, sys
model, threads, batch, p = sys.argv[1:5]
v = [float(a) for a in sys.argv[5:]]
d, t = v[0::2], v[1::2]
ratios = [a / b for a, b in zip(d, t)]
print("%s, batch %s, %s threads: dojo (%s) %.0f images/s, pytorch (fp32) %.0f images/s (medians of %d rounds), "
      "ratio %.2fx (median of the rounds' ratios; range %.2f-%.2fx)"
      % (model, batch, threads, p, statistics.median(d), statistics.median(t), len(ratios),
         statistics.median(ratios), min(ratios), max(ratios)))
PY
