#!/usr/bin/env bash
# test_bench_gemm.sh - smoke test of `dojo bench gemm` (bench/bench_gemm.c):
# with the smallest settings it runs the memory-bound cases (M = 1..8) and
# the tall-skinny ones, prints the JSON lines with their fields (setup with
# the peak and how it was derived, one object per case, a summary), handles
# the BLAS peer present, absent (--blas to a missing file) or off
# (--no-peer) with exit status 0, honours --ghz and --fma-units, and rejects
# bad options with status 2 and one line on stderr. Says nothing about
# speed, and needs no OpenBLAS (it checks the peer's figures only when one
# is installed). A few seconds.
#
# Uses /usr/bin/python3 for the JSON checks when there is one, else checks
# the same fields more loosely with grep.
#
# usage: bash tests/bench/test_bench_gemm.sh BUILD_DIR   (from the repo root)
set -u

B=${1:?usage: test_bench_gemm.sh BUILD_DIR}
D="$B/dojo"
PY=/usr/bin/python3
if [ ! -x "$D" ]; then
    echo "test_bench_gemm: $D not found or not executable"
    echo "test_bench_gemm: 0 passed, 1 failed"
    exit 1
fi
[ -x "$PY" ] || PY=""

TMP=$(mktemp -d "${TMPDIR:-/tmp}/test_bench_gemm.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

passed=0
failed=0
pass() { passed=$((passed + 1)); }
fail() {
    failed=$((failed + 1))
    echo "FAIL: $*"
}

QUICK=(--min-ms 1 --repeat 1)

# bench ARGS...: runs `dojo bench gemm ARGS`; sets rc, out ($TMP/out), err.
bench() {
    "$D" bench gemm "$@" >"$TMP/out" 2>"$TMP/err"
    rc=$?
    err=$(cat "$TMP/err")
}

# json_check NAME MODE [ARGS]: checks $TMP/out's JSON lines with python3
# (MODE: small-nopeer, skinny-auto, override GHZ FMA); passes with a grep
# check of the essentials when there is no python3.
json_check() {
    local name=$1
    shift
    if [ -z "$PY" ]; then
        if grep -q '"kind":"setup"' "$TMP/out" && grep -q '"per_core_gflops"' "$TMP/out" &&
            grep -q '"cf8_vs_fp32"' "$TMP/out" && grep -q '"kind":"summary".*"ok":true' "$TMP/out"; then
            pass
        else
            fail "$name: JSON lines lack fields: $(head -c 400 "$TMP/out")"
        fi
        return
    fi
    local msg
    if msg=$("$PY" - "$TMP/out" "$@" 2>&1 <<'PYEOF'
import json, math, sys

path, mode, args = sys.argv[1], sys.argv[2], sys.argv[3:]
lines = [json.loads(l) for l in open(path) if l.strip()]
assert lines, "no output"
setup, cases, summary = lines[0], lines[1:-1], lines[-1]
assert setup["bench"] == "gemm" and setup["kind"] == "setup", setup
assert summary["kind"] == "summary" and summary["ok"] is True, summary
assert summary["gemm_cases"] == len(cases) and summary["conv_cases"] == 0, summary
for k in ("cpu", "isa", "threads", "cpus", "repeat", "min_ms", "clock", "peak", "peer", "quantised"):
    assert k in setup, "setup lacks " + k
pk = setup["peak"]
for k in ("gflops", "cores", "per_core_gflops", "lanes", "flops_per_fma", "fma_units", "ghz",
          "lanes_from", "fma_units_from", "ghz_from"):
    assert k in pk, "peak lacks " + k
assert pk["lanes"] in (4, 8, 16) and pk["fma_units"] >= 1, pk
if pk["ghz"]:  # known clock: the peak is the product of its factors
    assert math.isclose(pk["per_core_gflops"], pk["lanes"] * 2 * pk["fma_units"] * pk["ghz"], rel_tol=1e-3), pk
    assert math.isclose(pk["gflops"], pk["cores"] * pk["per_core_gflops"], rel_tol=1e-3), pk
assert setup["quantised"]["operand"] == "B" and setup["quantised"]["cf8_format"] == "cfloat8_1_4_3"
peer = setup["peer"]
fields = ("case", "set", "m", "n", "k", "trans_a", "trans_b", "memory_bound", "gflop", "threads",
          "ref_gflops", "gflops_t", "cpu_share_t", "pct_peak", "peer_gflops", "ours_vs_peer",
          "peer_max_rel_diff", "cf8_gflops", "cf8_vs_fp32", "bf16_gflops", "bf16_vs_fp32")
for c in cases:
    assert c["bench"] == "gemm" and c["kind"] == "gemm", c
    for k in fields:
        assert k in c, c["case"] + " lacks " + k
    for k in ("gflops_t", "cf8_gflops", "cf8_vs_fp32", "bf16_gflops", "bf16_vs_fp32", "ref_gflops"):
        assert c[k] > 0, (c["case"], k, c[k])
    assert c["memory_bound"] == (c["m"] <= 8), c
    assert (c["pct_peak"] is None) == (not pk["ghz"]), c
    if peer["found"]:
        assert c["peer_gflops"] > 0 and c["ours_vs_peer"] > 0, c
        assert c["peer_max_rel_diff"] < 1e-4, c
    else:
        assert c["peer_gflops"] is None and c["ours_vs_peer"] is None, c
if mode == "small-nopeer":
    assert peer == {"found": False, "reason": "--no-peer"}, peer
    assert [(c["m"], c["n"], c["k"]) for c in cases] == [(m, 4096, 4096) for m in (1, 2, 4, 8)], cases
    assert all(c["set"] == "small" for c in cases)
elif mode == "skinny-auto":
    assert sorted((c["m"], c["n"], c["k"]) for c in cases) == [(64, 64, 8192), (8192, 64, 64)], cases
    if peer["found"]:
        assert peer["library"] and "threads" in peer and "openblas" in peer, peer
    else:
        assert peer["reason"] == "not installed" and peer["tried"], peer
    print("peer found" if peer["found"] else "no peer")
elif mode == "override":
    ghz, fma = float(args[0]), int(args[1])
    assert pk["ghz"] == ghz and pk["ghz_from"] == "--ghz", pk
    assert pk["fma_units"] == fma and pk["fma_units_from"] == "--fma-units", pk
PYEOF
    ); then
        pass
        [ -n "$msg" ] && echo "test_bench_gemm: $name: $msg"
    else
        fail "$name: $msg"
    fi
}

# ---- the memory-bound cases, no peer ----------------------------------------
bench --cases small "${QUICK[@]}" --json --no-peer
if [ "$rc" -eq 0 ] && [ -z "$err" ]; then pass; else fail "--cases small --no-peer: exit $rc: $err"; fi
json_check "--cases small --no-peer" small-nopeer

# ---- the skinny cases with whatever peer this machine has -------------------
bench --cases skinny "${QUICK[@]}" --json
if [ "$rc" -eq 0 ]; then pass; else fail "--cases skinny: exit $rc: $err"; fi
json_check "--cases skinny" skinny-auto
if grep -q '"found":false' "$TMP/out"; then # no OpenBLAS here: one line saying how to get it
    if [ "$(printf '%s\n' "$err" | wc -l)" -eq 1 ] && [[ "$err" == *"apt-get install libopenblas0"* ]]; then
        pass
    else
        fail "no peer: expected one stderr line naming libopenblas0, got: $err"
    fi
elif [ -z "$err" ]; then
    pass
else
    fail "--cases skinny with a peer: unexpected stderr: $err"
fi

# ---- a peer that is not there: status 0, one line saying how to get it ------
bench --cases skinny "${QUICK[@]}" --json --blas "$TMP/no-such-libblas.so"
if [ "$rc" -eq 0 ] && [ "$(printf '%s\n' "$err" | wc -l)" -eq 1 ] &&
    [[ "$err" == *"no BLAS peer found"*"apt-get install libopenblas0"* ]]; then
    pass
else
    fail "--json --blas missing: exit $rc: $err"
fi
json_check "--json --blas missing" skinny-auto
# ... and in the table, on stdout
bench --cases skinny "${QUICK[@]}" --blas "$TMP/no-such-libblas.so"
if [ "$rc" -eq 0 ] && [ -z "$err" ] && grep -q '^peer: no BLAS peer found' "$TMP/out" &&
    grep -q 'apt-get install libopenblas0' "$TMP/out" && grep -q '^peak: ' "$TMP/out" &&
    grep -q '^tall-skinny (NN) ' "$TMP/out" && grep -q '^deep-K skinny (NN) ' "$TMP/out"; then
    pass
else
    fail "--blas missing: exit $rc, output: $(cat "$TMP/out") $err"
fi

# ---- overrides of the peak's factors ----------------------------------------
bench --cases skinny "${QUICK[@]}" --json --no-peer --ghz 3.25 --fma-units 1
if [ "$rc" -eq 0 ]; then pass; else fail "--ghz --fma-units: exit $rc: $err"; fi
json_check "--ghz 3.25 --fma-units 1" override 3.25 1

# ---- help and bad options ---------------------------------------------------
bench --help
if [ "$rc" -eq 0 ] && grep -q -- '--cases' "$TMP/out" && grep -q -- '--no-peer' "$TMP/out"; then
    pass
else
    fail "--help: exit $rc"
fi
for args in "--cases bogus" "--cases small,,conv" "--cases" "--ghz 0" "--ghz fast" \
    "--fma-units 0" "--threads 0" "--no-peer=1"; do
    # shellcheck disable=SC2086
    bench $args
    if [ "$rc" -eq 2 ] && [ "$(printf '%s\n' "$err" | wc -l)" -eq 1 ] && [ -n "$err" ] &&
        [ ! -s "$TMP/out" ]; then
        pass
    else
        fail "bench gemm $args: expected exit 2 and one stderr line, got exit $rc: $err"
    fi
done

echo "test_bench_gemm: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
