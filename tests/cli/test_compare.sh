#!/usr/bin/env bash
# test_compare.sh - `dojo compare`: a tiny comparison (MLP, fp32 and bf16,
# 2 seeds, 2 epochs, 300 training / 100 test images) writes every report
# file with the right content, a second invocation reuses the runs, an
# unfinished run is resumed, --jobs 2 trains two runs at once to the same
# results and stops both on Ctrl-C, and bad input fails with a message
# naming it.
#
# Needs the Fashion-MNIST files in /usr/share/datasets/fashion-mnist (Debian's
# dataset-fashion-mnist; .ci/run installs it); without them it says it is
# skipped and exits 0. Uses /usr/bin/python3 for the JSON and XML checks when
# there is one, else checks the same things more loosely with grep.
#
# usage: bash tests/cli/test_compare.sh BUILD_DIR   (from the repo root)
set -u

B=${1:?usage: test_compare.sh BUILD_DIR}
D="$B/dojo"
DATA=/usr/share/datasets/fashion-mnist
MODEL=models/fmnist-mlp.json
PY=/usr/bin/python3

if [ ! -x "$D" ]; then
    echo "test_compare: $D not found or not executable"
    echo "test_compare: 0 passed, 1 failed"
    exit 1
fi
if [ ! -d "$DATA" ]; then
    echo "test_compare: skipped (no dataset in $DATA; apt-get install dataset-fashion-mnist)"
    exit 0
fi
[ -x "$PY" ] || PY=""

TMP=$(mktemp -d "${TMPDIR:-/tmp}/test_compare.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
OUT="$TMP/cmp"

passed=0
failed=0
pass() { passed=$((passed + 1)); }
fail() {
    failed=$((failed + 1))
    echo "FAIL: $*"
}
check() { # check DESCRIPTION COMMAND...
    local what=$1
    shift
    if "$@"; then pass; else fail "$what"; fi
}
has() { grep -qF -- "$2" "$1"; } # has FILE STRING

# compare ARGS...: runs dojo compare with the tiny settings; sets rc.
compare() {
    "$D" compare --model "$MODEL" --data "$DATA" --epochs 2 --train-limit 300 --test-limit 100 \
        --threads 1 "$@" >"$TMP/out" 2>"$TMP/err"
    rc=$?
}

# ---- a first comparison -----------------------------------------------------

compare --precisions fp32,bf16 --seeds 2 --out "$OUT" --json
if [ "$rc" -ne 0 ]; then
    fail "dojo compare exited $rc"
    cat "$TMP/out" "$TMP/err"
fi
for f in report.json report.md report.html accuracy.svg loss.svg; do
    check "$f written" test -s "$OUT/$f"
done
for p in fp32 bf16; do
    for s in 1 2; do
        check "runs/$p-seed$s/train.log" test -s "$OUT/runs/$p-seed$s/train.log"
        check "runs/$p-seed$s/metrics.jsonl" test -s "$OUT/runs/$p-seed$s/metrics.jsonl"
        check "runs/$p-seed$s: the child ran with --precision $p --seed $s" \
            has "$OUT/runs/$p-seed$s/train.log" "--precision $p --seed $s"
    done
done
check "progress/summary line per run" has "$TMP/out" "[4/4] bf16 seed 2: test accuracy"
check "table on stdout" has "$TMP/out" "| policy | test accuracy (%) | Δ vs fp32 (points) |"
check "fp32 row on stdout" grep -q '^| fp32 | [0-9.]* ± [0-9.]* |' "$TMP/out"
check "bf16 row on stdout" grep -q '^| bf16 | [0-9.]* ± [0-9.]* | [-+][0-9.]* |' "$TMP/out"
check "report.md holds the table" has "$OUT/report.md" "| policy | test accuracy (%)"

if [ -n "$PY" ]; then
    check "report.json: 2 policies x 2 seeds, per-epoch arrays, summaries" "$PY" - "$OUT/report.json" <<'EOF'
import json, math, sys
r = json.load(open(sys.argv[1]))
assert list(r["policies"]) == ["fp32", "bf16"], list(r["policies"])
assert r["epochs"] == 2 and r["seeds"] == [1, 2], (r["epochs"], r["seeds"])
for name, pol in r["policies"].items():
    runs = pol["runs"]
    assert [x["seed"] for x in runs] == [1, 2], runs
    for x in runs:
        assert x["status"] == "done", x
        assert 0.3 < x["test_accuracy"] <= 1, x
        assert x["images_per_second"] > 0 and x["seconds"] > 0, x
        assert x["peak_rss_bytes"] > 1 << 20, x
        assert "state_bytes_per_param" in x
        for k in ("test_accuracy", "test_loss", "train_loss"):
            v = x["per_epoch"][k]
            assert len(v) == 2 and all(isinstance(e, float) for e in v), (k, v)
        assert x["per_epoch"]["test_accuracy"][-1] == x["test_accuracy"], x
    s = pol["summary"]
    accs = [x["test_accuracy"] for x in runs]
    mean = sum(accs) / 2
    assert s["runs"] == 2 and s["failed"] == 0, s
    assert math.isclose(s["test_accuracy_mean"], mean), s
    assert math.isclose(s["test_accuracy_std"], math.sqrt(sum((a - mean) ** 2 for a in accs)),
                        abs_tol=1e-12), s
    assert s["peak_rss_bytes"] == max(x["peak_rss_bytes"] for x in runs), s
    assert "test_accuracy_delta_vs_fp32" in s and "images_per_second_ratio_vs_fp32" in s, s
EOF
    check "--json: the last stdout line is the summary per policy" "$PY" -c '
import json, sys
last = open(sys.argv[1]).read().splitlines()[-1]
j = json.loads(last)
assert set(j["policies"]) == {"fp32", "bf16"}, j
assert j["policies"]["fp32"]["runs"] == 2, j' "$TMP/out"
    check "SVGs are well-formed XML" "$PY" -c '
import sys, xml.dom.minidom
for f in sys.argv[1:]:
    xml.dom.minidom.parse(f)' "$OUT/accuracy.svg" "$OUT/loss.svg"
else
    check "report.json: 4 runs" test "$(grep -c '"seed":' "$OUT/report.json")" -eq 4
    check "report.json: fp32 and bf16" has "$OUT/report.json" '"bf16": {'
    check "--json last line" sh -c 'tail -n 1 "$1" | grep -q "^{.*\"policies\":{\"fp32\":"' _ "$TMP/out"
fi

for svg in accuracy loss; do
    check "$svg.svg is an SVG" has "$OUT/$svg.svg" "<svg xmlns=\"http://www.w3.org/2000/svg\""
    for p in fp32 bf16; do
        check "$svg.svg: a line for $p" grep -q "<polyline class=\"series\" data-policy=\"$p\"" "$OUT/$svg.svg"
    done
    check "$svg.svg: title names the model" has "$OUT/$svg.svg" "fmnist-mlp: test"
done
check "report.html: the table" has "$OUT/report.html" '<table class="summary">'
check "report.html: both plots inline" test "$(grep -c '<svg ' "$OUT/report.html")" -eq 2
check "report.html: the command line" has "$OUT/report.html" "dojo compare --model"
check "report.html: no external resources" sh -c '! grep -Eq "<(script|link|img)[ >]|src=|url\(" "$1"' _ \
    "$OUT/report.html"

# ---- the second invocation reuses every run ----------------------------------

logs_before=$(cat "$OUT"/runs/*/train.log | wc -l)
compare --precisions fp32,bf16 --seeds 2 --out "$OUT"
check "second run exits 0 (got $rc)" test "$rc" -eq 0
check "second run reuses all 4 runs" test "$(grep -c 'reused' "$TMP/out")" -eq 4
check "second run trains nothing" test "$(cat "$OUT"/runs/*/train.log | wc -l)" -eq "$logs_before"

# ---- an unfinished run is resumed --------------------------------------------
# A run interrupted after epoch 1 of 2: a 1-epoch run whose config says 2.

R="$OUT/runs/fp32-seed3"
"$D" train --model "$MODEL" --data "$DATA" --precision fp32 --seed 3 --epochs 1 --train-limit 300 \
    --test-limit 100 --threads 1 --out "$R" >/dev/null 2>&1
sed -i 's/"epochs": 1,/"epochs": 2,/' "$R/config.json"
compare --precisions fp32 --seed-list 3 --out "$OUT"
check "resume exits 0 (got $rc)" test "$rc" -eq 0
check "resume says so" has "$TMP/out" "resuming $R after epoch 1 of 2"
check "resumed with dojo train --resume" has "$R/train.log" "train --resume $R"
check "resumed run has both epochs" test "$(grep -c '"type":"epoch"' "$R/metrics.jsonl")" -eq 2

# ---- --jobs: runs at once ------------------------------------------------------

OUTJ="$TMP/cmpj"
compare --precisions fp32,bf16 --seeds 2 --out "$OUTJ" --jobs 2
check "--jobs 2 exits 0 (got $rc)" test "$rc" -eq 0
# the second run starts before the first one ends
started2=$(grep -n '^\[2/4\] bf16 seed 1: training' "$TMP/out" | cut -d: -f1)
ended1=$(grep -n '^\[1/4\] fp32 seed 1: test accuracy' "$TMP/out" | cut -d: -f1)
check "--jobs 2: run 2 starts before run 1 ends ($started2 < $ended1)" \
    test -n "$started2" -a -n "$ended1" -a "${started2:-0}" -lt "${ended1:-0}"
check "--jobs 2: every run reported" test "$(grep -c ': test accuracy' "$TMP/out")" -eq 4
for p in fp32 bf16; do
    for sd in 1 2; do
        # the same training, bit for bit, as one at a time
        check "--jobs 2: $p seed $sd has the per-epoch metrics of the run one at a time" \
            cmp -s <(grep -o '"test_accuracy":[^,]*,"test_loss":[^,]*' "$OUT/runs/$p-seed$sd/metrics.jsonl") \
            <(grep -o '"test_accuracy":[^,]*,"test_loss":[^,]*' "$OUTJ/runs/$p-seed$sd/metrics.jsonl")
    done
done
check "--jobs 2: the report says runs shared the machine" has "$OUTJ/report.md" "2 at a time"

# without --threads each of N jobs gets CPUs / N threads
ncpu=$(nproc 2>/dev/null || echo 1)
want=$((ncpu / 2 > 0 ? ncpu / 2 : 1))
"$D" compare --model "$MODEL" --data "$DATA" --epochs 1 --train-limit 100 --test-limit 50 \
    --precisions fp32 --seeds 2 --jobs 2 --out "$TMP/cmpt" >"$TMP/out" 2>"$TMP/err"
check "--jobs 2 without --threads: exit 0 (got $?)" test -s "$TMP/cmpt/report.md"
check "--jobs 2 without --threads: each run on $want threads" \
    has "$TMP/cmpt/runs/fp32-seed1/train.log" "--threads $want"

# Ctrl-C stops every running job; the same command then finishes them
"$D" compare --model "$MODEL" --data "$DATA" --epochs 3 --train-limit 20000 --test-limit 100 \
    --threads 1 --precisions fp32 --seeds 2 --jobs 2 --out "$TMP/cmpi" >"$TMP/out" 2>"$TMP/err" &
cpid=$!
for _ in $(seq 1 100); do
    [ "$(grep -c ': training' "$TMP/out" 2>/dev/null)" -ge 2 ] && break
    sleep 0.1
done
sleep 1
kill -INT $cpid
wait $cpid
rc=$?
check "--jobs 2, SIGINT: exit 130 (got $rc)" test "$rc" -eq 130
check "--jobs 2, SIGINT: no dojo train left running" \
    sh -c '! pgrep -f "train --model $1 .*--out $2/runs/" >/dev/null' _ "$MODEL" "$TMP/cmpi"
check "--jobs 2, SIGINT: both runs were interrupted" \
    test "$(grep -c 'interrupted' "$TMP/out")" -ge 2

compare --precisions fp32 --out "$TMP/bad3" --jobs 0
check "--jobs 0: exit 2 (got $rc)" test "$rc" -eq 2
check "--jobs 0: named in the message" has "$TMP/err" "--jobs"

# ---- errors --------------------------------------------------------------------

compare --precisions fp32,cfp9 --out "$TMP/bad"
check "bad policy: exit 2 (got $rc)" test "$rc" -eq 2
check "bad policy: named in the message" has "$TMP/err" '--precisions: unknown policy "cfp9"'
check "bad policy: nothing created" test ! -e "$TMP/bad"

compare --precisions fp32 --seeds 1 --out "$TMP/fail" -- --lr abc
check "failing run: exit non-zero (got $rc)" test "$rc" -ne 0
check "failing run: names the run and its log" has "$TMP/err" "fp32 seed 1 failed"
check "failing run: names its log" has "$TMP/err" "$TMP/fail/runs/fp32-seed1/train.log"
check "failing run: shows the log's last lines" has "$TMP/err" "--lr: expected a number"
check "failing run: still writes the report" has "$TMP/fail/report.md" "| fp32 | failed |"

compare --precisions fp32 --out "$TMP/bad2" -- --epochs 3
check "--epochs after --: exit 2 (got $rc)" test "$rc" -eq 2

"$D" compare --help >"$TMP/out" 2>&1
check "--help exits 0" test $? -eq 0
check "--help documents --precisions" has "$TMP/out" "--precisions LIST"
"$D" --help >"$TMP/out" 2>&1
check "dojo --help lists compare" grep -q '^  compare ' "$TMP/out"

echo "test_compare: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
