#!/usr/bin/env bash
# ab_train.sh - two builds of dojo alternated on the same training step, for
# "did this change make it faster?" on a machine whose speed drifts.
#
# usage: bench/ab_train.sh OLD_DOJO NEW_DOJO [MODEL] [PRECISION] [ROUNDS] [BATCH] [THREADS]
#        (defaults: models/fmnist-cnn.json fp32 5 128, all CPUs)
# Each round runs `dojo bench train --json` with OLD, then with NEW; the script
# prints each round's images/s and ratio, then the medians and the median of
# the rounds' ratios (NEW over OLD) with their range. Keep OLD a copy of the
# binary (cp build/dojo /tmp/dojo-old) before rebuilding.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 2 ] || { sed -n '5,6p' "$0" | sed 's/^# //' >&2; exit 2; }
old=$1 new=$2
model=${3:-models/fmnist-cnn.json}
precision=${4:-fp32}
rounds=${5:-5}
batch=${6:-128}
threads=${7:-$(nproc)}
for b in "$old" "$new"; do [ -x "$b" ] || { echo "ab_train.sh: not an executable: $b" >&2; exit 2; }; done
[[ "$rounds" =~ ^[1-9][0-9]*$ ]] || { echo "ab_train.sh: ROUNDS: expected a positive integer, got '$rounds'" >&2; exit 2; }
ips() {
    "$1" bench train --model "$model" --precision "$precision" --batch-size "$batch" \
        --threads "$threads" --json | tail -n 1 |
        sed -n 's/.*"images_per_second":\([0-9.eE+-]*\).*/\1/p'
}
pairs=()
for r in $(seq 1 "$rounds"); do
    a=$(ips "$old")
    b=$(ips "$new")
    [ -n "$a" ] && [ -n "$b" ] || { echo "ab_train.sh: a run gave no images_per_second" >&2; exit 1; }
    pairs+=("$a" "$b")
    awk -v r="$r" -v n="$rounds" -v a="$a" -v b="$b" \
        'BEGIN { printf "round %d/%d: old %.0f, new %.0f images/s, new/old %.3f\n", r, n, a, b, b / a }'
done
printf '%s\n' "${pairs[@]}" | paste - - | awk -v m="$model" -v p="$precision" '
    { a[NR] = $1; b[NR] = $2; q[NR] = $2 / $1 }
    function median(x, n,   i, j, t, y) {
        for (i = 1; i <= n; i++) y[i] = x[i]
        for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (y[j] < y[i]) { t = y[i]; y[i] = y[j]; y[j] = t }
        return n % 2 ? y[(n + 1) / 2] : (y[n / 2] + y[n / 2 + 1]) / 2
    }
    END {
        lo = hi = q[1]
        for (i = 2; i <= NR; i++) { if (q[i] < lo) lo = q[i]; if (q[i] > hi) hi = q[i] }
        printf "%s, %s: old %.0f, new %.0f images/s (medians of %d rounds), new/old %.3f (median of the rounds'"'"' ratios; range %.3f-%.3f)\n",
            m, p, median(a, NR), median(b, NR), NR, median(q, NR), lo, hi
    }'
