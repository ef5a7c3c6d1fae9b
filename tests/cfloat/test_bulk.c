/* test_bulk.c - every bulk path (generic, AVX2, AVX-512: those this CPU
 * runs) gives the same codes and the same sticky flags as the scalar
 * reference, for both rounding modes, every format and many biases, on
 * inputs chosen to reach every branch: random bit patterns, values spread
 * over the format's range, the Tesla gap, float32 subnormals, specials.
 * Arrays of odd lengths and index offsets exercise the partial vectors, the
 * block structure and the stochastic element numbering. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cfloat/cfloat_internal.h"
#include "harness.h"

static uint64_t rng_state = 0x9E3779B97F4A7C15ULL;

static uint32_t rnd32(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 16);
}

/* Inputs for one (format, bias). */
static size_t make_inputs(dj_format f, int bias, float *x, size_t cap)
{
    size_t n = 0;
    const double maxv = dj_format_max(f, bias), minn = dj_format_min_normal(f, bias);
    const double mind = dj_format_min_denormal(f, bias);
    const float specials[] = {0.0f, -0.0f, INFINITY, -INFINITY, NAN, -NAN, 1.0f, -1.0f,
                              1e-45f, -1e-45f, 1.1754942e-38f, 1.17549435e-38f, 3.4028235e38f,
                              -3.4028235e38f};
    for (size_t i = 0; i < sizeof specials / sizeof specials[0]; i++)
        x[n++] = specials[i];
    const double anchors[] = {maxv, minn, mind > 0 ? mind : minn, minn * 0.5, minn * 0.75,
                              minn * 0.4375 * 2, maxv * 1.0625, maxv * 1.03125};
    for (size_t i = 0; i < sizeof anchors / sizeof anchors[0]; i++) {
        float v = (float)anchors[i];
        for (int d = -3; d <= 3; d++) {
            uint32_t u = dj__f32_bits(v) + (uint32_t)d;
            x[n++] = dj__bits_f32(u);
            x[n++] = -dj__bits_f32(u);
        }
    }
    int lo_e = ilogb(mind > 0 ? mind : minn) - 30, hi_e = ilogb(maxv) + 4;
    if (lo_e < -149)
        lo_e = -149;
    if (hi_e > 127)
        hi_e = 127;
    while (n < cap) {
        uint32_t kind = rnd32() % 8;
        uint32_t u;
        if (kind == 0) {
            u = rnd32(); /* any bit pattern */
        } else if (kind == 1) {
            u = rnd32() & 0x807fffffu; /* float32 subnormal */
        } else {
            int e = lo_e + (int)(rnd32() % (uint32_t)(hi_e - lo_e + 1));
            float v = ldexpf(1.0f + (float)(rnd32() & 0x7fffff) / 8388608.0f, e);
            if (kind == 2) /* exactly on the format's grid, or a midpoint */
                v = dj__bits_f32(dj__f32_bits(v) & ~((1u << (22 - dj_format_desc_of(f)->man_bits)) - 1));
            u = dj__f32_bits(v) | (rnd32() & 0x80000000u);
        }
        x[n++] = dj__bits_f32(u);
    }
    return n;
}

static int code_size(dj_format f)
{
    return dj_format_desc_of(f)->bits / 8;
}

static uint32_t get_code(dj_format f, const void *buf, size_t i)
{
    return code_size(f) == 1 ? ((const uint8_t *)buf)[i] : ((const uint16_t *)buf)[i];
}

static void check_format(dj_format f, int bias, const float *x, size_t n, void *ref, void *got)
{
    const dj_format_desc *d = dj_format_desc_of(f);
    for (int mode = 0; mode < 2; mode++) {
        dj_round r = {mode ? DJ_ROUND_STOCHASTIC : DJ_ROUND_NEAREST, 0x1234abcdULL + (uint64_t)bias};
        const uint64_t index0 = mode ? 1000003 : 0;
        unsigned ref_flags = 0;
        for (size_t i = 0; i < n; i++) {
            uint32_t c = dj_cf_encode(f, bias, x[i], r, index0 + i, &ref_flags);
            if (code_size(f) == 1)
                ((uint8_t *)ref)[i] = (uint8_t)c;
            else
                ((uint16_t *)ref)[i] = (uint16_t)c;
        }
        for (int isa = DJ_ISA_GENERIC; isa < DJ_ISA_COUNT; isa++) {
            if (!dj_cpu_supports((dj_isa)isa))
                continue;
            /* Whole array, then in uneven pieces with matching index0. */
            for (int split = 0; split < 2; split++) {
                unsigned flags = 0;
                memset(got, 0xA5, n * (size_t)code_size(f));
                size_t pos = 0;
                while (pos < n) {
                    size_t len = split ? 1 + rnd32() % 700 : n;
                    if (len > n - pos)
                        len = n - pos;
                    dj_status st = dj_cf_encode_array_isa((dj_isa)isa, f, bias, x + pos,
                                                          (char *)got + pos * (size_t)code_size(f),
                                                          len, r, index0 + pos, &flags);
                    CHECK(st == DJ_OK, "status %d", (int)st);
                    pos += len;
                }
                size_t bad = 0, first = 0;
                for (size_t i = 0; i < n; i++)
                    if (get_code(f, ref, i) != get_code(f, got, i) && bad++ == 0)
                        first = i;
                CHECK(bad == 0, "%s bias %d %s isa %s split %d: %zu mismatches, first x=%a (0x%08x) ref 0x%x got 0x%x",
                      d->name, bias, mode ? "SR" : "RN", dj_isa_name((dj_isa)isa), split, bad,
                      (double)x[first], dj__f32_bits(x[first]), get_code(f, ref, first), get_code(f, got, first));
                CHECK(flags == ref_flags, "%s bias %d %s isa %s: flags 0x%x, reference 0x%x", d->name,
                      bias, mode ? "SR" : "RN", dj_isa_name((dj_isa)isa), flags, ref_flags);
            }
        }
    }
}

/* dj_cf_encode_array_stats: the codes and flags of the reference, and the
 * statistics counted element by element from the definitions in cfloat.h,
 * for each path, in uneven pieces (counts added up, amax kept), with the
 * overflow limit at the format's max, ties counted or not, and a stream
 * position where a block of the stochastic loop wraps past 2^32 (done by
 * the reference there). */
static void check_stats(dj_format f, int bias, const float *x, size_t n, void *ref, void *got)
{
    const dj_format_desc *d = dj_format_desc_of(f);
    const uint32_t mag = d->bits == 8 ? 0x7fu : 0x7fffu;
    const float limit = (float)dj_format_max(f, bias);
    for (int mode = 0; mode < 2; mode++) {
        const dj_round r = {mode ? DJ_ROUND_STOCHASTIC : DJ_ROUND_NEAREST, 0x5eedULL + (uint64_t)bias};
        const uint64_t index0 = mode ? (1ULL << 32) - 517 : 7;
        const int tie = bias & 1;
        unsigned ref_flags = 0;
        dj_cf_stats want = {0, 0, 0.0f};
        for (size_t i = 0; i < n; i++) {
            const uint32_t c = dj_cf_encode(f, bias, x[i], r, index0 + i, &ref_flags);
            if (code_size(f) == 1)
                ((uint8_t *)ref)[i] = (uint8_t)c;
            else
                ((uint16_t *)ref)[i] = (uint16_t)c;
            const float a = fabsf(x[i]);
            want.over += a > limit || (tie && a == limit);
            want.under += x[i] != 0.0f && (c & mag) == 0;
            want.amax = a > want.amax ? a : want.amax;
        }
        for (int isa = DJ_ISA_GENERIC; isa < DJ_ISA_COUNT; isa++) {
            if (!dj_cpu_supports((dj_isa)isa))
                continue;
            unsigned flags = 0;
            dj_cf_stats st = {0, 0, 0.0f};
            memset(got, 0xA5, n * (size_t)code_size(f));
            for (size_t pos = 0, len; pos < n; pos += len) {
                len = 1 + rnd32() % 900;
                if (len > n - pos)
                    len = n - pos;
                CHECK(dj_cf_encode_array_stats_isa((dj_isa)isa, f, bias, x + pos,
                                                   (char *)got + pos * (size_t)code_size(f), len,
                                                   r, index0 + pos, &flags, limit, tie,
                                                   &st) == DJ_OK,
                      "stats status");
            }
            size_t bad = 0;
            for (size_t i = 0; i < n; i++)
                bad += get_code(f, ref, i) != get_code(f, got, i);
            CHECK(bad == 0 && flags == ref_flags, "%s bias %d %s isa %s stats: %zu codes differ, flags 0x%x ref 0x%x",
                  d->name, bias, mode ? "SR" : "RN", dj_isa_name((dj_isa)isa), bad, flags, ref_flags);
            CHECK(st.over == want.over && st.under == want.under &&
                      dj__f32_bits(st.amax) == dj__f32_bits(want.amax),
                  "%s bias %d %s isa %s: over %lld under %lld amax %g, counted %lld %lld %g", d->name,
                  bias, mode ? "SR" : "RN", dj_isa_name((dj_isa)isa), (long long)st.over,
                  (long long)st.under, (double)st.amax, (long long)want.over,
                  (long long)want.under, (double)want.amax);
        }
    }
}

/* Per-element flags: encode one element at a time through the bulk path. */
static void check_flags_per_element(dj_format f, int bias, const float *x, size_t n)
{
    for (int isa = DJ_ISA_GENERIC; isa < DJ_ISA_COUNT; isa++) {
        if (!dj_cpu_supports((dj_isa)isa))
            continue;
        size_t bad = 0;
        for (size_t i = 0; i < n; i++) {
            dj_round r = {DJ_ROUND_NEAREST, 0};
            unsigned fr = 0, fb = 0;
            uint16_t out;
            (void)dj_cf_encode(f, bias, x[i], r, i, &fr);
            dj_cf_encode_array_isa((dj_isa)isa, f, bias, x + i, &out, 1, r, i, &fb);
            if (fr != fb && bad++ < 3)
                fprintf(stderr, "  %s bias %d isa %s x=%a: flags ref 0x%x bulk 0x%x\n",
                        dj_format_desc_of(f)->name, bias, dj_isa_name((dj_isa)isa), (double)x[i], fr, fb);
        }
        CHECK(bad == 0, "%zu per-element flag mismatches", bad);
    }
}

static void check_decode(dj_format f, int bias)
{
    const size_t ncodes = (size_t)1 << dj_format_desc_of(f)->bits;
    uint16_t *codes = malloc(ncodes * 2);
    uint8_t *codes8 = malloc(ncodes);
    float *ref = malloc(ncodes * 4), *got = malloc(ncodes * 4);
    unsigned ref_flags = 0;
    for (size_t c = 0; c < ncodes; c++) {
        codes[c] = (uint16_t)c;
        codes8[c] = (uint8_t)c;
        ref[c] = dj_cf_decode(f, bias, (uint32_t)c, &ref_flags);
    }
    const void *in = ncodes == 256 ? (const void *)codes8 : (const void *)codes;
    for (int isa = DJ_ISA_GENERIC; isa < DJ_ISA_COUNT; isa++) {
        if (!dj_cpu_supports((dj_isa)isa))
            continue;
        unsigned flags = 0;
        dj_cf_decode_array_isa((dj_isa)isa, f, bias, in, got, ncodes, &flags);
        size_t bad = 0;
        for (size_t c = 0; c < ncodes; c++) {
            uint32_t a = dj__f32_bits(ref[c]), b = dj__f32_bits(got[c]);
            int same = a == b || (isnan(ref[c]) && isnan(got[c]) && (a >> 31) == (b >> 31));
            if (!same && bad++ < 3)
                fprintf(stderr, "  decode %s bias %d isa %s code 0x%zx: ref %a got %a\n",
                        dj_format_desc_of(f)->name, bias, dj_isa_name((dj_isa)isa), c,
                        (double)ref[c], (double)got[c]);
        }
        CHECK(bad == 0, "decode %s bias %d: %zu mismatches", dj_format_desc_of(f)->name, bias, bad);
        CHECK(flags == ref_flags, "decode flags 0x%x vs 0x%x", flags, ref_flags);
    }
    if (ncodes == 256) { /* CFloat8 -> bf16 is exact */
        uint16_t bf[256];
        unsigned fl = 0;
        dj_cf_decode_to_bf16_array(f, bias, codes8, bf, 256, &fl);
        size_t bad = 0;
        for (size_t c = 0; c < 256; c++) {
            uint32_t a = dj__f32_bits(ref[c]);
            if (!isnan(ref[c]) && ((a & 0xffffu) != 0 || bf[c] != (a >> 16)))
                bad++;
        }
        CHECK(bad == 0, "bf16 decode %s bias %d: %zu mismatches", dj_format_desc_of(f)->name, bias, bad);
    }
    free(codes);
    free(codes8);
    free(ref);
    free(got);
}

static void check_bf16_input(dj_format f, int bias, const float *x, size_t n)
{
    uint16_t *h = malloc(n * 2);
    float *w = malloc(n * 4);
    uint8_t *a = malloc(n), *b = malloc(n);
    for (size_t i = 0; i < n; i++) {
        h[i] = (uint16_t)(dj__f32_bits(x[i]) >> 16);
        w[i] = dj_bf16_to_f32(h[i]);
    }
    for (int mode = 0; mode < 2; mode++) {
        dj_round r = {mode ? DJ_ROUND_STOCHASTIC : DJ_ROUND_NEAREST, 77};
        unsigned fa = 0, fb = 0;
        dj_cf_encode_bf16_array(f, bias, h, a, n, r, 5, &fa);
        dj_cf_encode_array_isa(DJ_ISA_GENERIC, f, bias, w, b, n, r, 5, &fb);
        CHECK(memcmp(a, b, n) == 0 && fa == fb, "bf16 input %s bias %d mode %d differs from float32 path",
              dj_format_desc_of(f)->name, bias, mode);
    }
    free(h);
    free(w);
    free(a);
    free(b);
}

int main(void)
{
#if defined(__SANITIZE_ADDRESS__)
    const size_t N = 6000;
#else
    const size_t N = 40000;
#endif
    float *x = malloc(N * sizeof *x);
    void *ref = malloc(N * 2), *got = malloc(N * 2);
    for (int isa = DJ_ISA_GENERIC; isa < DJ_ISA_COUNT; isa++)
        printf("path %s: %s\n", dj_isa_name((dj_isa)isa), dj_cpu_supports((dj_isa)isa) ? "tested" : "not supported by this CPU");
    for (int fi = 0; fi < DJ_FMT_COUNT; fi++) {
        dj_format f = (dj_format)fi;
        const dj_format_desc *d = dj_format_desc_of(f);
        for (int bias = d->bias_min; bias <= d->bias_max; bias++) {
            int full = bias == d->bias_default || bias == d->bias_min || bias == d->bias_max;
            if (d->bits == 16 && !full && bias % 8 != 1)
                continue;
            size_t n = make_inputs(f, bias, x, full ? N : N / 8);
            check_format(f, bias, x, n, ref, got);
            if (full) {
                check_flags_per_element(f, bias, x, 3000);
                check_stats(f, bias, x, n < 6000 ? n : 6000, ref, got);
            }
            check_decode(f, bias);
            if (d->bits == 8)
                check_bf16_input(f, bias, x, n);
        }
    }
    /* Stochastic rounding far below the denormal quantum (more than 31
     * discarded bits): most lanes are decided by the leading random bits,
     * a few go to the reference; both must agree with it. */
    for (int fi = 0; fi < DJ_FMT_COUNT; fi++) {
        const dj_format f = (dj_format)fi;
        const int bias = dj_format_desc_of(f)->bias_default;
        const int e0 = ilogb(dj_format_min_denormal(f, bias) > 0 ? dj_format_min_denormal(f, bias)
                                                                 : dj_format_min_normal(f, bias));
        size_t n = N;
        for (size_t i = 0; i < n; i++) {
            int e = e0 - 1 - (int)(rnd32() % 60);
            if (e < -126)
                e = -126;
            x[i] = ldexpf(1.0f + (float)(rnd32() & 0x7fffff) / 8388608.0f, e);
        }
        check_format(f, bias, x, n, ref, got);
        check_stats(f, bias, x, 3000, ref, got); /* finite data: amax is a value of x */
    }
    free(x);
    free(ref);
    free(got);
    return th_done("test_bulk");
}
