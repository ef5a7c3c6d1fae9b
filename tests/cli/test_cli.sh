#!/usr/bin/env bash
# test_cli.sh - the `dojo` command line: `dojo cfloat encode|decode|table|info`,
# help and version, and every error path (exit status, one message line on
# stderr naming the line or option, no crash, complete stdout lines).
#
# Usage: bash tests/cli/test_cli.sh BUILD_DIR   (CTest passes the build dir)
# Expected values are derived by hand from docs/CFLOAT.md.
set -u

B=${1:?usage: test_cli.sh BUILD_DIR}
D="$B/dojo"
if [ ! -x "$D" ]; then
    echo "test_cli: $D not found or not executable"
    echo "test_cli: 0 passed, 1 failed"
    exit 1
fi

TMP=$(mktemp -d "${TMPDIR:-/tmp}/test_cli.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

passed=0
failed=0
pass() { passed=$((passed + 1)); }
fail() {
    failed=$((failed + 1))
    echo "FAIL: $*"
}
check() { # check DESCRIPTION COMMAND...  (passes if the command succeeds)
    local what=$1
    shift
    if "$@"; then pass; else fail "$what"; fi
}

# ---- runners ---------------------------------------------------------------

# run STDIN ARGS...: runs dojo with STDIN as its input; sets rc, out, err.
run() {
    local input=$1
    shift
    printf '%s' "$input" >"$TMP/in"
    "$D" "$@" <"$TMP/in" >"$TMP/out" 2>"$TMP/err"
    rc=$?
    out=$(cat "$TMP/out")
    err=$(cat "$TMP/err")
}

# enc FORMAT BIAS INPUT EXPECTED: one line through `cfloat encode`.
enc() {
    run "$3"$'\n' cfloat encode --format "$1" --bias "$2"
    if [ "$rc" -eq 0 ] && [ "$out" = "$4" ] && [ -z "$err" ]; then
        pass
    else
        fail "encode --format $1 --bias $2 <<< '$3': expected '$4', got '$out' (exit $rc) $err"
    fi
}

# dec FORMAT BIAS CODE EXPECTED: one line through `cfloat decode`.
dec() {
    run "$3"$'\n' cfloat decode --format "$1" --bias "$2"
    if [ "$rc" -eq 0 ] && [ "$out" = "$4" ] && [ -z "$err" ]; then
        pass
    else
        fail "decode --format $1 --bias $2 <<< '$3': expected '$4', got '$out' (exit $rc) $err"
    fi
}

# expect_err STATUS PATTERN STDIN ARGS...: the command must exit with STATUS,
# print exactly one line on stderr starting "dojo: " and containing PATTERN
# (fixed string), not crash, and leave stdout ending in a complete line.
expect_err() {
    local want=$1 pat=$2 input=$3
    shift 3
    run "$input" "$@"
    local what="dojo $* (stdin '${input:0:40}')"
    local nlines
    nlines=$(wc -l <"$TMP/err")
    if [ "$rc" -ne "$want" ]; then
        fail "$what: exit $rc, expected $want; stderr: $err"
    elif [ "$nlines" -ne 1 ] || [ "${err#dojo: }" = "$err" ]; then
        fail "$what: stderr should be one line 'dojo: ...', got: $err"
    elif [[ "$err" != *"$pat"* ]]; then
        fail "$what: stderr '$err' does not mention '$pat'"
    elif [ -s "$TMP/out" ] && [ "$(tail -c 1 "$TMP/out" | od -An -c | tr -d ' ')" != '\n' ]; then
        fail "$what: stdout ends in a partial line"
    else
        pass
    fi
}

# ---- encode: known values (cfloat8_1_4_3 at bias 7 unless said) ---------------

enc cfloat8_1_4_3 7 1.0 "0x38 0x1p+0 -"
enc cfloat8_1_4_3 7 1 "0x38 0x1p+0 -"
enc cfloat8_1_4_3 7 480 "0x7f 0x1.ep+8 -"             # max (2 - 2^-3) * 2^8
enc cfloat8_1_4_3 7 0x1.ep+8 "0x7f 0x1.ep+8 -"
enc cfloat8_1_4_3 7 -480 "0xff -0x1.ep+8 -"
enc cfloat8_1_4_3 7 1e9 "0x7f 0x1.ep+8 O"             # overflow saturates
enc cfloat8_1_4_3 7 -1e9 "0xff -0x1.ep+8 O"
enc cfloat8_1_4_3 7 495 "0x7f 0x1.ep+8 -"             # below the overflow tie 496
enc cfloat8_1_4_3 7 496 "0x7f 0x1.ep+8 O"             # the overflow tie overflows
enc cfloat8_1_4_3 7 inf "0x7f 0x1.ep+8 O"
enc cfloat8_1_4_3 7 -inf "0xff -0x1.ep+8 O"
enc cfloat8_1_4_3 7 nan "0x7f 0x1.ep+8 I"             # NaN -> +max
enc cfloat8_1_4_3 7 -nan "0x7f 0x1.ep+8 I"
enc cfloat8_1_4_3 7 0 "0x00 0x0p+0 -"
enc cfloat8_1_4_3 7 -0 "0x80 -0x0p+0 -"               # negative zero kept
enc cfloat8_1_4_3 7 -0x1.8p-3 "0xa4 -0x1.8p-3 -"      # e = 4, m = 4
enc cfloat8_1_4_3 7 1.0625 "0x38 0x1p+0 -"            # tie 1 / 1.125 -> even 0x38
enc cfloat8_1_4_3 7 1.1875 "0x3a 0x1.4p+0 -"          # tie 1.125 / 1.25 -> even 0x3a
enc cfloat8_1_4_3 7 1e-3 "0x01 0x1p-10 U"             # denormal quantum 2^-10
enc cfloat8_1_4_3 7 0x1p-6 "0x08 0x1p-6 -"            # smallest normal 2^(1-7)
# The Tesla gap: largest denormal 0x1.cp-8 (0.875 * 2^-7), smallest normal
# 0x1p-6 (2 * 2^-7), midpoint 1.4375 * 2^-7 = 0x1.7p-7 goes to the even code.
enc cfloat8_1_4_3 7 0x1.cp-8 "0x07 0x1.cp-8 -"
enc cfloat8_1_4_3 7 0x1.6p-7 "0x07 0x1.cp-8 U"
enc cfloat8_1_4_3 7 0x1.7p-7 "0x08 0x1p-6 U"
enc cfloat8_1_4_3 7 0x1.8p-7 "0x08 0x1p-6 U"
enc cfloat8_1_4_3 7 bits:0x00000001 "0x00 0x0p+0 DU"  # float32 subnormal input
enc cfloat8_1_4_3 7 bits:0x3f800000 "0x38 0x1p+0 -"
enc cfloat8_1_4_3 7 bits:0xbf800000 "0xb8 -0x1p+0 -"
enc cfloat8_1_4_3 0 1.0 "0x07 0x1.cp-1 U"             # bias 0: 1.0 lies in the gap
enc cfloat8_1_4_3 0 2.0 "0x08 0x1p+1 -"
enc cfloat8_1_4_3 63 1.0 "0x7f 0x1.ep-48 O"           # bias 63: max 1.875 * 2^-48
# Bias 20: largest denormal 0.875 * 2^-20, smallest normal 2 * 2^-20; 2^-20
# is in the gap, below its midpoint 1.4375 * 2^-20, so it goes down.
enc cfloat8_1_4_3 20 0x1p-20 "0x07 0x1.cp-21 U"
enc cfloat8_1_4_3 20 0x1.cp-21 "0x07 0x1.cp-21 -"
enc cfloat8_1_5_2 15 1.0 "0x3c 0x1p+0 -"
enc cfloat8_1_5_2 15 114688 "0x7f 0x1.cp+16 -"        # (2 - 2^-2) * 2^16
enc cfloat8_1_5_2 15 1e9 "0x7f 0x1.cp+16 O"
enc shp 15 1.0 "0x3c00 0x1p+0 -"
enc shp 15 131008 "0x7fff 0x1.ffcp+16 -"              # (2 - 2^-10) * 2^16
enc shp 15 -nan "0x7fff 0x1.ffcp+16 I"
enc uhp 31 1.0 "0x7c00 0x1p+0 -"
enc uhp 31 -1 "0xfe00 nan I"                          # negative into UHP
enc uhp 31 -inf "0xfe00 nan I"
enc uhp 31 -0 "0x0000 0x0p+0 -"                       # UHP has only +0
enc uhp 31 inf "0xfc00 inf -"
enc uhp 31 1e10 "0xfc00 inf O"
enc uhp 31 nan "0xfe00 nan I"
enc uhp 31 0x1p-31 "0x0000 0x0p+0 U"                  # below 2^-30 flushes
enc uhp 31 0x1p-30 "0x0400 0x1p-30 -"
enc e4m3 7 500 "0x7e 0x1.cp+8 O"
enc e4m3 7 448 "0x7e 0x1.cp+8 -"
enc e4m3 7 464 "0x7e 0x1.cp+8 -"                      # 448 < x <= 464 -> 448
enc e4m3 7 465 "0x7e 0x1.cp+8 O"
enc e4m3 7 nan "0x7f nan I"
enc e4m3 7 -nan "0xff nan I"
enc e4m3 7 0x1p-9 "0x01 0x1p-9 -"                     # IEEE denormal 2^(1-7) * 0.001
enc e4m3 7 0x1p-10 "0x00 0x0p+0 U"                    # tie 0 / 2^-9 -> even
enc e5m2 15 57344 "0x7b 0x1.cp+15 -"
enc e5m2 15 61440 "0x7b 0x1.cp+15 O"                  # overflow tie
enc e5m2 15 inf "0x7b 0x1.cp+15 O"
enc e5m2 15 nan "0x7e nan I"
enc bf16 127 bits:0x3f800001 "0x3f80 0x1p+0 -"
enc bf16 127 1.0 "0x3f80 0x1p+0 -"
enc bf16 127 -2.5 "0xc020 -0x1.4p+1 -"
enc bf16 127 inf "0x7f80 inf -"
enc bf16 127 -inf "0xff80 -inf -"
enc bf16 127 1e39 "0x7f80 inf -"                      # float32 overflow: inf
enc bf16 127 bits:0x7f7fffff "0x7f80 inf O"           # FLT_MAX rounds past bf16 max
enc bf16 127 nan "0x7fc0 nan I"
enc bf16 127 -nan "0xffc0 nan I"
enc bf16 127 bits:0x7f800001 "0x7fc0 nan I"           # signalling NaN input
enc bf16 127 bits:0x00400000 "0x0040 0x1p-127 D"      # exact subnormal
enc bf16 127 bits:0x00000001 "0x0000 0x0p+0 DU"
enc bf16 127 1e-50 "0x0000 0x0p+0 -"                  # float32 underflow: +0

# ---- encode: input forms ------------------------------------------------------

for form in 1.5 +1.5 1.50 01.5 1.5e0 15e-1 0.15E+1 0x1.8p0 0X1.8P+0 0x18p-4 0x3p-1 0x1.8 \
    bits:0x3fc00000 BITS:0X3FC00000 bits:0x3FC00000 $' 1.5' $'1.5 ' $'\t1.5\t' $'1.5\r' $' \t1.5\r'; do
    enc cfloat8_1_4_3 7 "$form" "0x3c 0x1.8p+0 -"
done
for form in .5 0.5 5e-1 0x.8p0 0x.8 bits:0x3f000000; do
    enc cfloat8_1_4_3 7 "$form" "0x30 0x1p-1 -"
done
enc cfloat8_1_4_3 7 5. "0x4a 0x1.4p+2 -"
for form in inf INF +inf Inf infinity INFINITY +Infinity; do
    enc bf16 127 "$form" "0x7f80 inf -"
done
for form in -inf -INF -Infinity; do
    enc bf16 127 "$form" "0xff80 -inf -"
done
for form in nan NaN NAN +nan; do
    enc e4m3 7 "$form" "0x7f nan I"
done
for form in -nan -NaN -NAN; do
    enc e4m3 7 "$form" "0xff nan I"
done
enc bf16 127 bits:0x1 "0x0000 0x0p+0 DU"              # 1 to 8 hex digits
expect_err 1 'line 1: cannot parse' $'bits:0x000000001\n' cfloat encode --format bf16
enc bf16 127 bits:0x00000001 "0x0000 0x0p+0 DU"       # 8 digits, leading zeros
enc bf16 127 0x1p-149 "0x0000 0x0p+0 DU"              # hex float to a float32 subnormal
enc bf16 127 1e-45 "0x0000 0x0p+0 DU"
enc bf16 127 "1$(printf '0%.0s' {1..100})" "0x7f80 inf -"       # 1e100 -> float32 inf
enc bf16 127 "0.$(printf '0%.0s' {1..3000})1" "0x0000 0x0p+0 -" # long input, -> +0

# Several lines, flags per line (a fresh status word per input), a last line
# without a newline.
run $'1e9\n1\nnan\n0x1.6p-7\n-0' cfloat encode --format cfloat8_1_4_3
exp=$'0x7f 0x1.ep+8 O\n0x38 0x1p+0 -\n0x7f 0x1.ep+8 I\n0x07 0x1.cp-8 U\n0x80 -0x0p+0 -'
check "multi-line encode with per-line flags: got '$out' (exit $rc)" test "$rc" -eq 0 -a "$out" = "$exp"
run $'1\r\n2\r\n' cfloat encode --format cfloat8_1_4_3
check "CRLF input: got '$out'" test "$rc" -eq 0 -a "$out" = $'0x38 0x1p+0 -\n0x40 0x1p+1 -'
run "" cfloat encode --format cfloat8_1_4_3
check "empty input gives no output and exit 0" test "$rc" -eq 0 -a -z "$out" -a -z "$err"

# --bias defaults to the format's default; options in either spelling.
run $'1\n' cfloat encode --format cfloat8_1_5_2
check "default bias of cfloat8_1_5_2 is 15: got '$out'" test "$out" = "0x3c 0x1p+0 -"
run $'1\n' cfloat encode --format=shp --bias=20
check "--format=shp --bias=20: got '$out'" test "$out" = "0x5000 0x1p+0 -"
run $'1\n' cfloat encode --bias 20 --format shp
check "options in any order: got '$out'" test "$out" = "0x5000 0x1p+0 -"
run $'1\n' cfloat encode --format E4M3 --bias 7
check "format names are case-insensitive: got '$out' $err" test "$out" = "0x38 0x1p+0 -"
run $'1\n' cfloat encode --format e4m3 --bias +7
check "--bias +7: got '$out' $err" test "$out" = "0x38 0x1p+0 -"

# ---- decode -----------------------------------------------------------------

dec cfloat8_1_4_3 7 0x38 "0x38 0x1p+0 -"
dec cfloat8_1_4_3 7 38 "0x38 0x1p+0 -"
dec cfloat8_1_4_3 7 0X7F "0x7f 0x1.ep+8 -"
dec cfloat8_1_4_3 7 7f "0x7f 0x1.ep+8 -"
dec cfloat8_1_4_3 7 0x0001 "0x01 0x1p-10 D"
dec cfloat8_1_4_3 7 1 "0x01 0x1p-10 D"
dec cfloat8_1_4_3 7 0x07 "0x07 0x1.cp-8 D"
dec cfloat8_1_4_3 7 0x08 "0x08 0x1p-6 -"
dec cfloat8_1_4_3 7 0x80 "0x80 -0x0p+0 -"
dec cfloat8_1_4_3 7 $' 0xff\r' "0xff -0x1.ep+8 -"
dec cfloat8_1_4_3 0 0x07 "0x07 0x1.cp-1 D"
dec e4m3 7 0x7f "0x7f nan -"
dec e4m3 7 0xff "0xff nan -"
dec e4m3 7 0x7e "0x7e 0x1.cp+8 -"
dec e5m2 15 0x7c "0x7c inf -"
dec e5m2 15 0xfc "0xfc -inf -"
dec uhp 31 0xfe00 "0xfe00 nan -"
dec uhp 31 0xfc00 "0xfc00 inf -"
dec uhp 31 0x0001 "0x0001 0x0p+0 D"                   # UHP denormal codes read as zero
dec uhp 31 3c00 "0x3c00 0x1p-16 -"
dec bf16 127 0x3f80 "0x3f80 0x1p+0 -"
dec bf16 127 ffc0 "0xffc0 nan -"
dec shp 15 0x7fff "0x7fff 0x1.ffcp+16 -"

# ---- table, and decode/encode consistency -------------------------------------

# table_roundtrip FORMAT BIAS: every table line is CODE VALUE DECIMAL CLASS;
# decode of every code agrees with the table; every value re-encodes to its
# code (except NaN codes, Inf codes in saturating formats, and UHP's denormal
# codes, which read as zero).
table_roundtrip() {
    local f=$1 b=$2 bits=$3
    local n=$((1 << bits)) t="$TMP/table.$f.$b"
    "$D" cfloat table --format "$f" --bias "$b" >"$t" 2>"$TMP/err"
    rc=$?
    if [ "$rc" -ne 0 ]; then
        fail "table --format $f --bias $b: exit $rc $(cat "$TMP/err")"
        return
    fi
    local head
    head=$(head -n 1 "$t")
    check "table $f $b: header '$head' names the format and the bias" \
        test "${head:0:1}" = "#" -a "${head/$f/}" != "$head" -a "${head/bias $b/}" != "$head"
    check "table $f $b: $n code lines" test "$(tail -n +2 "$t" | wc -l)" -eq "$n"
    local badfmt
    badfmt=$(tail -n +2 "$t" | awk -v digits=$((bits / 4)) '
        { expect = sprintf("0x%0" digits "x", NR - 1) }
        NF != 4 || $1 != expect || $4 !~ /^(zero|denormal|normal|inf|nan)$/ { print; exit }')
    check "table $f $b: malformed line '$badfmt'" test -z "$badfmt"

    # decode every code: CODE VALUE must agree with the table; D for denormals.
    tail -n +2 "$t" | awk '{ print $1 }' | "$D" cfloat decode --format "$f" --bias "$b" \
        >"$TMP/dec" 2>"$TMP/err"
    local mism
    mism=$(tail -n +2 "$t" | paste -d ' ' - "$TMP/dec" | awk '
        $1 != $5 || $2 != $6 { print; exit }
        ($4 == "denormal") != ($7 == "D") { print; exit }')
    check "decode agrees with table for $f bias $b: '$mism' $(cat "$TMP/err")" test -z "$mism"

    # re-encode every number
    local skip='$4 == "nan"'
    case $f in
        uhp) skip='$4 == "nan" || $4 == "denormal"' ;;
        bf16) ;;
        *) skip='$4 == "nan" || $4 == "inf"' ;;
    esac
    tail -n +2 "$t" | awk "!($skip)" >"$TMP/nums"
    awk '{ print $2 }' "$TMP/nums" | "$D" cfloat encode --format "$f" --bias "$b" \
        >"$TMP/enc" 2>"$TMP/err"
    rc=$?
    # Flags: none, except D for bf16's denormals (float32 subnormal inputs).
    mism=$(paste -d ' ' "$TMP/nums" "$TMP/enc" | awk -v f="$f" '
        $1 != $5 || $2 != $6 || ($7 != "-" && !(f == "bf16" && $4 == "denormal" && $7 == "D")) {
            print; exit }')
    check "table values re-encode exactly for $f bias $b (exit $rc): '$mism' $(cat "$TMP/err")" \
        test "$rc" -eq 0 -a -z "$mism" -a "$(wc -l <"$TMP/nums")" -eq "$(wc -l <"$TMP/enc")"
    # The decimal column is the same number as the hex one.
    mism=$(awk '{ print $3 }' "$TMP/nums" |
        "$D" cfloat encode --format "$f" --bias "$b" 2>&1 | paste -d ' ' "$TMP/nums" - |
        awk '$1 != $5 { print; exit }')
    check "table DECIMAL column re-encodes for $f bias $b: '$mism'" test -z "$mism"
}

for b in 0 1 7 20 63; do table_roundtrip cfloat8_1_4_3 $b 8; done
for b in 0 15 63; do table_roundtrip cfloat8_1_5_2 $b 8; done
table_roundtrip e4m3 7 8
table_roundtrip e5m2 15 8
table_roundtrip shp 15 16
table_roundtrip uhp 31 16
table_roundtrip bf16 127 16

"$D" cfloat table --format cfloat8_1_4_3 >"$TMP/t7" 2>&1
check "table: --bias defaults to 7 for cfloat8_1_4_3" cmp -s "$TMP/t7" "$TMP/table.cfloat8_1_4_3.7"
check "table: 0x38 is 1.0 at bias 7" grep -qx '0x38 0x1p+0 1 normal' "$TMP/t7"
check "table: 0x07 is the largest denormal" grep -qx '0x07 0x1.cp-8 0.0068359375 denormal' "$TMP/t7"
check "table: 0x7f is 480" grep -qx '0x7f 0x1.ep+8 480 normal' "$TMP/t7"
check "table: e4m3 0x7f is nan" grep -qx '0x7f nan nan nan' "$TMP/table.e4m3.7"
check "table: e5m2 0xfc is -inf" grep -qx '0xfc -inf -inf inf' "$TMP/table.e5m2.15"

# ---- stochastic rounding --------------------------------------------------------

# 1.1 lies between 1.0 (0x38) and 1.125 (0x39); it rounds up with p = 0.8.
N=2000
yes 1.1 | head -n $N >"$TMP/sr_in"
sr() { "$D" cfloat encode --format cfloat8_1_4_3 --bias 7 --rounding stochastic "$@" <"$TMP/sr_in"; }
sr --seed 1 >"$TMP/sr1a"
sr --seed 1 >"$TMP/sr1b"
sr --seed=1 >"$TMP/sr1c"
sr --seed 2 >"$TMP/sr2"
sr >"$TMP/sr0"
sr --seed 0 >"$TMP/sr0b"
sr --seed 0x10 >"$TMP/sr16a"
sr --seed 16 >"$TMP/sr16b"
check "stochastic: $N lines" test "$(wc -l <"$TMP/sr1a")" -eq $N
check "stochastic: same seed, same output" cmp -s "$TMP/sr1a" "$TMP/sr1b"
check "stochastic: --seed=1 equals --seed 1" cmp -s "$TMP/sr1a" "$TMP/sr1c"
check "stochastic: default seed is 0" cmp -s "$TMP/sr0" "$TMP/sr0b"
check "stochastic: --seed 0x10 equals --seed 16" cmp -s "$TMP/sr16a" "$TMP/sr16b"
check "stochastic: seeds 1 and 2 differ" bash -c '! cmp -s "$1" "$2"' _ "$TMP/sr1a" "$TMP/sr2"
check "stochastic: seeds 0 and 1 differ" bash -c '! cmp -s "$1" "$2"' _ "$TMP/sr0" "$TMP/sr1a"
others=$(grep -cv -e '^0x38 0x1p+0 -$' -e '^0x39 0x1.2p+0 -$' "$TMP/sr1a")
check "stochastic: only the two neighbours appear ($others others)" test "$others" -eq 0
ups=$(grep -c '^0x39' "$TMP/sr1a")
# p = 0.8: mean 1600, sd ~18; accept 1450..1750 (over 8 sd).
check "stochastic: 1.1 rounds up about 80% of the time ($ups of $N)" test "$ups" -ge 1450 -a "$ups" -le 1750
# Line i is element i: the first k lines of a longer input give the same k results.
head -n 100 "$TMP/sr_in" | "$D" cfloat encode --format cfloat8_1_4_3 --rounding stochastic --seed 1 >"$TMP/sr_head"
check "stochastic: line i is element i (prefix stable)" cmp -s "$TMP/sr_head" <(head -n 100 "$TMP/sr1a")
# Exact values are never moved.
yes 1.125 | head -n 200 | "$D" cfloat encode --format cfloat8_1_4_3 --rounding stochastic --seed 5 >"$TMP/sr_exact"
check "stochastic: exact values stay exact" test "$(sort -u "$TMP/sr_exact")" = "0x39 0x1.2p+0 -"
run $'1.1\n' cfloat encode --format cfloat8_1_4_3 --rounding nearest --seed 9
check "nearest ignores the seed: got '$out'" test "$out" = "0x39 0x1.2p+0 -"
# Overflow in stochastic mode still saturates with O.
run $'1e9\n' cfloat encode --format cfloat8_1_4_3 --rounding stochastic
check "stochastic overflow: got '$out'" test "$out" = "0x7f 0x1.ep+8 O"

# ---- info ------------------------------------------------------------------

for f in cfloat8_1_4_3 cfloat8_1_5_2 shp uhp e4m3 e5m2 bf16; do
    run "" cfloat info --format "$f"
    check "info --format $f (exit $rc) $err" test "$rc" -eq 0 -a -n "$out" -a -z "$err"
    run "" cfloat info --format "$f" --json
    check "info --format $f --json (exit $rc) $err" test "$rc" -eq 0 -a "${out:0:1}" = "{"
    if command -v python3 >/dev/null 2>&1; then
        check "info --format $f --json is valid JSON naming the format" \
            python3 -c 'import json,sys; d=json.loads(sys.argv[1]); assert d["format"]==sys.argv[2]' "$out" "$f"
    fi
done
run "" cfloat info --format cfloat8_1_4_3 --bias 7
check "info cfloat8_1_4_3: largest 0x1.ep+8 (480)" grep -q '0x1.ep+8 (480)' "$TMP/out"
check "info cfloat8_1_4_3: smallest normal 0x1p-6" grep -q '0x1p-6 (0.015625)' "$TMP/out"
check "info cfloat8_1_4_3: smallest denormal 0x1p-10" grep -q '0x1p-10 (0.0009765625)' "$TMP/out"
check "info cfloat8_1_4_3: bias range" grep -q '0\.\.63' "$TMP/out"
run "" cfloat info --format cfloat8_1_4_3 --bias 0
check "info cfloat8_1_4_3 --bias 0: largest 0x1.ep+15" grep -q '0x1.ep+15 (61440)' "$TMP/out"
run "" cfloat info --format uhp
check "info uhp: no denormals" grep -qi 'smallest denormal: *none' "$TMP/out"
run "" cfloat info --format e4m3
check "info e4m3: largest 448" grep -q '0x1.cp+8 (448)' "$TMP/out"
run "" cfloat info --format e4m3 --json
if command -v python3 >/dev/null 2>&1; then
    check "info e4m3 --json: max 448, min_denormal 2^-9" python3 -c '
import json,sys; d=json.loads(sys.argv[1])
assert d["max"]["decimal"]==448 and d["max"]["hex"]=="0x1.cp+8", d
assert d["min_denormal"]["hex"]=="0x1p-9" and d["bias"]==7' "$out"
    run "" cfloat info --format uhp --json
    check "info uhp --json: min_denormal null" python3 -c '
import json,sys; d=json.loads(sys.argv[1]); assert d["min_denormal"] is None' "$out"
fi
run "" cfloat info
check "info with no --format: exit 0" test "$rc" -eq 0
for f in cfloat8_1_4_3 cfloat8_1_5_2 shp uhp e4m3 e5m2 bf16; do
    check "info summary lists $f" grep -q "^$f " "$TMP/out"
done
run "" cfloat info --json
if command -v python3 >/dev/null 2>&1; then
    check "info --json (all formats) is one JSON object" python3 -c '
import json,sys; d=json.loads(sys.argv[1]); assert len(d["formats"])==7' "$out"
fi

# ---- help and version --------------------------------------------------------

for args in "--help" "help" "-h" "cfloat --help" "cfloat help" "cfloat encode --help" \
    "cfloat decode --help" "cfloat table --help" "cfloat info --help" "help cfloat" \
    "bench --help" "help bench" "cfloat encode --format nope --help"; do
    # shellcheck disable=SC2086
    run "" $args
    check "dojo $args: usage on stdout, exit 0 (exit $rc, stderr '$err')" \
        test "$rc" -eq 0 -a -z "$err" -a "${out#usage: }" != "$out"
done
run "" --version
check "dojo --version: got '$out'" test "$rc" -eq 0 -a "$out" = "dojo 0.1.0"
run ""
check "dojo with no arguments: usage on stderr, exit 2 (exit $rc)" \
    test "$rc" -eq 2 -a -z "$out" -a "${err#usage: }" != "$err"
run "" cfloat
check "dojo cfloat with no subcommand: exit 2" test "$rc" -eq 2 -a -z "$out" -a -n "$err"
run "" bench
check "dojo bench with no benchmark: exit 2" test "$rc" -eq 2 -a -z "$out" -a -n "$err"

# ---- errors: command line (exit 2) -------------------------------------------

E=(cfloat encode)
expect_err 2 'unknown command "frob"' "" frob
expect_err 2 'unknown subcommand "frob"' "" cfloat frob
expect_err 2 'unknown benchmark "frob"' "" bench frob
expect_err 2 'unknown format "nope"' "" "${E[@]}" --format nope
expect_err 2 'cfloat8_1_4_3, cfloat8_1_5_2, shp, uhp, e4m3, e5m2, bf16' "" "${E[@]}" --format nope
expect_err 2 'unknown format' "" cfloat decode --format=
expect_err 2 'missing --format' "" "${E[@]}"
expect_err 2 'missing --format' "" cfloat table --bias 3
expect_err 2 '0..63' "" "${E[@]}" --format cfloat8_1_4_3 --bias 64
expect_err 2 '0..63' "" "${E[@]}" --format cfloat8_1_4_3 --bias -1
expect_err 2 '0..63' "" cfloat table --format cfloat8_1_5_2 --bias 99999999999999999999999
expect_err 2 'fixed at 7' "" "${E[@]}" --format e4m3 --bias 8
expect_err 2 'fixed at 31' "" cfloat decode --format uhp --bias 15
expect_err 2 'fixed at 127' "" cfloat info --format bf16 --bias 0
expect_err 2 'not an integer' "" "${E[@]}" --format cfloat8_1_4_3 --bias 7.5
expect_err 2 'not an integer' "" "${E[@]}" --format cfloat8_1_4_3 --bias abc
expect_err 2 'not an integer' "" "${E[@]}" --format cfloat8_1_4_3 --bias=
expect_err 2 'not an integer' "" "${E[@]}" --format cfloat8_1_4_3 --bias ' 7'
expect_err 2 '--seed' "" "${E[@]}" --format cfloat8_1_4_3 --seed -1
expect_err 2 '--seed' "" "${E[@]}" --format cfloat8_1_4_3 --seed 1.5
expect_err 2 '--seed' "" "${E[@]}" --format cfloat8_1_4_3 --seed x
expect_err 2 '--seed' "" "${E[@]}" --format cfloat8_1_4_3 --seed 18446744073709551616
expect_err 2 'unknown rounding "up"' "" "${E[@]}" --format cfloat8_1_4_3 --rounding up
expect_err 2 "unknown option '--frob'" "" "${E[@]}" --format cfloat8_1_4_3 --frob
expect_err 2 "unknown option '--frob'" "" "${E[@]}" --frob=1 --format cfloat8_1_4_3
expect_err 2 "unknown option '-x'" "" "${E[@]}" --format cfloat8_1_4_3 -x
expect_err 2 "unknown option '--rounding'" "" cfloat decode --format e4m3 --rounding nearest
expect_err 2 "unknown option '--seed'" "" cfloat table --format e4m3 --seed 1
expect_err 2 "unknown option '--json'" "" "${E[@]}" --format e4m3 --json
expect_err 2 "unexpected argument 'extra'" "" "${E[@]}" --format e4m3 extra
expect_err 2 "'--format' needs a value" "" "${E[@]}" --format
expect_err 2 "'--bias' needs a value" "" "${E[@]}" --format e4m3 --bias
expect_err 2 "'--seed' needs a value" "" "${E[@]}" --format e4m3 --seed
expect_err 2 "'--rounding' needs a value" "" "${E[@]}" --format e4m3 --rounding
expect_err 2 "'--json' takes no value" "" cfloat info --json=yes
expect_err 2 '--bias needs --format' "" cfloat info --bias 3
expect_err 2 'unexpected argument' "" --version extra
# A usage error is reported before any input is read or output written.
expect_err 2 '0..63' $'1\n2\n' "${E[@]}" --format cfloat8_1_4_3 --bias 64
check "usage error prints nothing on stdout" test -z "$out"

# ---- errors: input data (exit 1) -----------------------------------------------

expect_err 1 'line 3: cannot parse "1.2.3" as a number' $'1\n2\n1.2.3\n4\n' "${E[@]}" --format cfloat8_1_4_3
check "bad line 3: exactly the two good lines before it, complete" \
    test "$out" = $'0x38 0x1p+0 -\n0x40 0x1p+1 -'
check "bad line 3: the message is exactly as documented" \
    test "$err" = 'dojo: cfloat encode: line 3: cannot parse "1.2.3" as a number'
expect_err 1 'line 2' $'1\n\n3\n' "${E[@]}" --format cfloat8_1_4_3
check "empty line: the first line is printed" test "$out" = "0x38 0x1p+0 -"
expect_err 1 'line 1' $' \t\r\n' "${E[@]}" --format cfloat8_1_4_3
expect_err 1 'line 1' $'\n' "${E[@]}" --format cfloat8_1_4_3
for badin in 1.2.3 abc 1e 1e+ e5 . - + -- +-1 0x 0x.p1 0xp3 0x1p 0x1p+ 0x1.8p-3f 1,5 '1 2' '1	2' \
    1.5f 0b101 nan1 'nan(1)' nanx inff infinit -infinityy 'in f' ++inf bits: bits:0x \
    bits:0x123456789 bits:3f800000 bits:0x3f80000g 'bits: 0x3f800000' bits:-0x1 bits:+0x1 \
    bitsx0x1 '1e1.5' $'1\x01' $'\xff' '１' 1e99999x '"' 1e5e5 0x1p5p5 1p5 0x1e+5; do
    expect_err 1 'line 1: cannot parse' "$badin"$'\n' "${E[@]}" --format cfloat8_1_4_3
done
enc cfloat8_1_4_3 7 0x1e "0x5f 0x1.ep+4 -"           # 30: e is a hex digit here
enc cfloat8_1_4_3 7 0x1.8e "0x3c 0x1.8p+0 -"           # 1.5546875 -> 1.5
expect_err 1 'line 2' $'1\n'"$(printf 'x%.0s' {1..5000})"$'\n3\n' "${E[@]}" --format cfloat8_1_4_3
check "overlong line: the message says it is too long" test "${err/longer than/}" != "$err"
expect_err 1 'line 1' "$(printf '1%.0s' {1..4097})" "${E[@]}" --format bf16
longok="$(printf ' %.0s' {1..4093})1.5"              # 4096 bytes: the limit, accepted
run "$longok"$'\n' "${E[@]}" --format cfloat8_1_4_3
check "a 4096-byte line is accepted (exit $rc) $err" test "$rc" -eq 0 -a "$out" = "0x3c 0x1.8p+0 -"
# Embedded NUL bytes and binary garbage: an error, no crash.
printf '1\n1\0002\n' >"$TMP/nul"
"$D" cfloat encode --format cfloat8_1_4_3 <"$TMP/nul" >"$TMP/out" 2>"$TMP/err"
rc=$?
check "NUL byte in a line: exit 1, names line 2 (exit $rc: $(cat "$TMP/err"))" \
    test "$rc" -eq 1 -a "$(grep -c 'line 2' "$TMP/err")" -eq 1
head -c 20000 /dev/urandom >"$TMP/garbage" 2>/dev/null || : >"$TMP/garbage"
for sub in encode decode; do
    "$D" cfloat $sub --format shp <"$TMP/garbage" >/dev/null 2>"$TMP/err"
    rc=$?
    check "random bytes into $sub: exit 0 or 1, no crash (exit $rc)" test "$rc" -le 1
done

# decode errors
D8=(cfloat decode --format cfloat8_1_4_3)
expect_err 1 'line 1' $'0x100\n' "${D8[@]}"
check "code too wide: the message says it does not fit" test "${err/does not fit/}" != "$err"
expect_err 1 'line 2' $'0x7f\n100\n' "${D8[@]}"
check "decode: the good line before the error is printed" test "$out" = "0x7f 0x1.ep+8 -"
expect_err 1 'line 1' $'0x10000\n' cfloat decode --format bf16
expect_err 1 'line 1' $'12345\n' cfloat decode --format bf16
for badin in 0x xyz 0xg1 -1 +1 '0x 1' '1 2' 0x0x1 1.0 '' ' ' 'bits:0x1' 0g1 h1 12345 0x12345; do
    expect_err 1 'line 1' "$badin"$'\n' "${D8[@]}"
done

# ---- output errors ---------------------------------------------------------------

if [ -w /dev/full ]; then
    printf '1\n' | "$D" cfloat encode --format e4m3 >/dev/full 2>"$TMP/err"
    rc=$?
    check "writing to a full device: exit 1 with a message (exit $rc)" \
        test "$rc" -eq 1 -a -s "$TMP/err"
    "$D" cfloat table --format bf16 >/dev/full 2>"$TMP/err"
    rc=$?
    check "table to a full device: exit 1 (exit $rc)" test "$rc" -eq 1 -a -s "$TMP/err"
fi

# ---- train: precision options -------------------------------------------------------

M=models/fmnist-cnn.json
if [ -f "$M" ]; then
    expect_err 2 "--precision: expected fp32, bf16, cfp8, cfp8-shp or ocp8, got 'fp16'" "" \
        train --model "$M" --precision fp16
    expect_err 2 "--scaling: expected delayed or current" "" train --model "$M" --scaling late
    expect_err 2 "--margin: expected an integer in [0, 8]" "" train --model "$M" --margin 9
    expect_err 2 "--amax-history: expected an integer in [1, 64]" "" train --model "$M" --amax-history 0
    expect_err 1 'keep_fp32 names "5", which is no Conv2d or Linear layer' "" \
        train --model "$M" --precision cfp8 --keep-fp32 first,5 --data /nonexistent-dir-for-test
    # dojo bench train runs a step under every policy and reports a rate
    for p in fp32 bf16 cfp8 cfp8-shp ocp8; do
        out=$("$D" bench train --model models/fmnist-mlp.json --precision $p --batch-size 32 \
            --steps 2 --warmup 1 --repeat 1 --threads 1 --json 2>&1 | tail -n 1)
        check "bench train --precision $p: $out" \
            grep -Eq '"precision":"'$p'".*"images_per_second":[0-9.e+]+' <<<"$out"
    done
    expect_err 2 "--precision: expected fp32" "" bench train --precision fp8
    # --profile: one row per layer of the tree (fmnist-resnet has 31; its 7
    # ReLUs follow a BatchNorm2d or a residual sum and are done by it), each Conv2d with
    # forward and backward time, encoding time only under cfp8, and a
    # non-negative rest (the layer times are inside the step's)
    for p in fp32 cfp8; do
        out=$("$D" bench train --model models/fmnist-resnet.json --precision $p --batch-size 4 \
            --steps 2 --warmup 1 --repeat 1 --threads 1 --profile 2>&1)
        rows=$(grep -cE '^[0-9][0-9.a-z]* +[ A-Za-z0-9()]+ +[0-9x]+ +([0-9.]+ +[0-9.]+ +[0-9.]+ +[0-9.]+%|- +- +- +- +- +\(in the previous layer\))' <<<"$out")
        check "bench train --profile ($p): 31 layer rows, got $rows: $out" test "$rows" -eq 31
        fused=$(grep -c "(in the previous layer)" <<<"$out")
        check "bench train --profile ($p): the 7 ReLUs (after a BatchNorm2d or a sum) fused, got $fused" \
            test "$fused" -eq 7
        check "bench train --profile ($p): conv rows timed" \
            awk '$1 == "3.body.0" && $2 == "Conv2d" && $4 > 0 && $5 > 0 { ok = 1 } END { exit !ok }' <<<"$out"
        if [ $p = cfp8 ]; then
            check "bench train --profile (cfp8): the quantised conv's encoding is timed" \
                awk '$1 == "3.body.0" && $6 > 0 { ok = 1 } END { exit !ok }' <<<"$out"
        else
            check "bench train --profile (fp32): no encoding" \
                awk '$1 == "total" && $4 == "0.00" { ok = 1 } END { exit !ok }' <<<"$out"
        fi
        check "bench train --profile ($p): rest >= 0" \
            awk '$1 == "(rest)" { ok = $4 + 0 >= 0 } END { exit !ok }' <<<"$out"
    done
    # --profile --json: the same per layer in the JSON line, shares adding up to 1
    if [ -x /usr/bin/python3 ]; then
        out=$("$D" bench train --model models/fmnist-resnet.json --batch-size 4 --steps 2 \
            --warmup 1 --repeat 1 --threads 1 --profile --json 2>&1 | tail -n 1)
        check "bench train --profile --json: $out" /usr/bin/python3 -c '
import json, sys
p = json.loads(sys.argv[1])["profile"]
L = p["layers"]
assert len(L) == 31 and p["steps"] == 2 and p["step_ms"] > 0, p
assert sum(1 for l in L if l.get("fused_into") == "previous") == 7, L
conv = [l for l in L if l["kind"] == "Conv2d"]
assert len(conv) == 9 and all(l["forward_ms"] > 0 and l["backward_ms"] > 0 for l in conv), conv
total = sum(l.get("share", 0) for l in L) + p["rest_share"]
assert abs(total - 1) < 1e-9, total' "$out"
    fi
    expect_err 2 "--steps: expected an integer" "" bench train --steps 0
fi

# dojo bench cfloat: both input distributions run, are checked against the
# reference (exit 0), and say which they used; gauss picks the bias for the
# data's largest magnitude (N(0,1): 13 or 14 for CFloat8_1_4_3, not the
# default 7) unless --bias is given.
for data in binades gauss; do
    run "" bench cfloat --format cfloat8_1_4_3 --path generic --direction encode_rn,decode \
        --n 4K --repeat 1 --data $data --json
    check "bench cfloat --data $data: exit $rc, $err" test "$rc" -eq 0
    check "bench cfloat --data $data: summary names the data" \
        grep -q '"type":"summary","cpu":.*"data":"'$data'"' <<<"$out"
    check "bench cfloat --data $data: two measured directions" \
        test "$(grep -c '"type":"measurement".*"path":"generic"' <<<"$out")" -eq 2
done
check "bench cfloat --data gauss: bias from the amax" grep -Eq '"bias":1[34],' <<<"$out"
run "" bench cfloat --format cfloat8_1_4_3 --bias 9 --path generic --direction encode_rn \
    --n 4K --repeat 1 --data gauss --json
check "bench cfloat --data gauss --bias 9: bias kept" grep -q '"bias":9,' <<<"$out"
expect_err 2 "bad --data 'normal'" "" bench cfloat --data normal

echo "test_cli: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
