#!/usr/bin/env bash
# test_torch_parity.sh - a Dojo checkpoint means the same thing to PyTorch.
#
# Why this exists: tests/nn/test_fixtures.c checks the math layer by layer;
# this checks the whole chain a user relies on: `dojo train` writes a
# checkpoint, and PyTorch (tools/torch_eval.py: the spec's nn.Sequential,
# load_state_dict strict) must get the same accuracy and loss from it as
# `dojo eval` does, for the CNN and for the ResNet (whose BatchNorm running
# statistics and Residual body/shortcut names are what a checkpoint gets
# wrong most easily). Accuracies must agree to at most 1 image in 1000 (a
# near-tie of two logits may round either way; normally they are
# identical), losses within 1e-4.
#
# Needs Debian's python3-torch (/usr/bin/python3) and the Fashion-MNIST files
# in /usr/share/datasets/fashion-mnist; without them (CI) it says it is
# skipped and exits 0.
#
# usage: bash tests/train/test_torch_parity.sh BUILD_DIR   (from the repo root)
set -u

BUILD=${1:-build}
PY=/usr/bin/python3
DATA=/usr/share/datasets/fashion-mnist
LIMIT=1000
passed=0
failed=0

if ! [ -x "$PY" ] || ! "$PY" -c 'import torch, numpy' >/dev/null 2>&1; then
    echo "test_torch_parity: skipped ($PY has no torch)"
    exit 0
fi
if ! [ -d "$DATA" ]; then
    echo "test_torch_parity: skipped (no dataset in $DATA)"
    exit 0
fi
if ! [ -x "$BUILD/dojo" ]; then
    echo "test_torch_parity: $BUILD/dojo not found (pass the build directory)" >&2
    echo "test_torch_parity: 0 passed, 1 failed"
    exit 1
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

ok() { passed=$((passed + 1)); }
fail() { failed=$((failed + 1)); echo "FAIL: $*" >&2; }

# compare NAME DOJO_JSON TORCH_JSON: prints both and checks the bars.
compare() {
    "$PY" - "$1" "$2" "$3" "$LIMIT" <<'EOF'
import json, sys
name, d, t, limit = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3]), int(sys.argv[4])
print("  %s: dojo accuracy %.4f loss %.6f | torch accuracy %.4f loss %.6f (%d images; loss difference %.2g)" % (
    name, d["test_accuracy"], d["test_loss"], t["test_accuracy"], t["test_loss"], t["images"],
    abs(d["test_loss"] - t["test_loss"])))
bad = []
if d.get("images", t["images"]) != t["images"] or t["images"] != limit:
    bad.append("image counts differ: dojo %s, torch %s, wanted %d" % (d.get("images"), t["images"], limit))
dimg = round(abs(d["test_accuracy"] - t["test_accuracy"]) * t["images"])
if dimg > 1:
    bad.append("accuracies differ by %d images" % dimg)
if abs(d["test_loss"] - t["test_loss"]) > 1e-4:
    bad.append("losses differ by %.3g" % abs(d["test_loss"] - t["test_loss"]))
for b in bad:
    print("  %s: %s" % (name, b), file=sys.stderr)
sys.exit(1 if bad else 0)
EOF
}

for model in models/fmnist-cnn.json models/fmnist-resnet.json; do
    name=$(basename "$model" .json)
    out="$tmp/$name"
    if ! "$BUILD/dojo" train --model "$model" --epochs 1 --train-limit 2000 --test-limit $LIMIT \
            --threads 2 --out "$out" >"$tmp/$name.train.log" 2>&1; then
        fail "$name: dojo train failed:"; tail -5 "$tmp/$name.train.log" >&2
        continue
    fi
    ok
    ckpt="$out/checkpoint.safetensors"
    if ! dj=$("$BUILD/dojo" eval --model "$model" --checkpoint "$ckpt" --limit $LIMIT --threads 2 \
            --json 2>"$tmp/$name.eval.err"); then
        fail "$name: dojo eval failed: $(tail -3 "$tmp/$name.eval.err")"
        continue
    fi
    ok
    if ! pt=$("$PY" tools/torch_eval.py --model "$model" --checkpoint "$ckpt" --limit $LIMIT \
            --json 2>"$tmp/$name.torch.err"); then
        fail "$name: torch_eval.py failed (state_dict names or shapes?): $(tail -3 "$tmp/$name.torch.err")"
        continue
    fi
    ok
    if compare "$name" "$dj" "$pt"; then ok; else fail "$name: dojo eval and PyTorch disagree"; fi
done

echo "test_torch_parity: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
