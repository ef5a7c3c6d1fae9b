/* test_decode.c - decoding, classification and the format table against an
 * independent model written from docs/CFLOAT.md (tests/cfloat/cf_ref.h).
 *
 * Every code of CFloat8_1_4_3 and CFloat8_1_5_2 at all 64 biases, every SHP
 * code at biases 0, 15, 31, 63 and every code of UHP, E4M3, E5M2 and bf16 is
 * decoded and compared bit-exactly (sign of zero included) with the value
 * computed from the layout; the D flag must be raised exactly for denormal
 * codes; the bulk decoder on every supported ISA must agree bit for bit. */
#include "cf_ref.h"
#include "harness.h"

#include <strings.h>

static const dj_isa k_isas[] = {DJ_ISA_AUTO, DJ_ISA_GENERIC, DJ_ISA_AVX2, DJ_ISA_AVX512};

/* All codes of format f at one bias: scalar decode, classification, flags,
 * then the bulk decoder on every supported ISA. */
static void check_codes(dj_format f, int bias)
{
    const rfmt *F = rf(f);
    uint32_t n = r_ncodes(F);
    float *out = (float *)malloc(sizeof(float) * n);
    float *scal = (float *)malloc(sizeof(float) * n);
    void *in = malloc((size_t)n * 2);
    unsigned any_d = 0;
    if (!out || !scal || !in) {
        CHECK(0, "out of memory");
        return;
    }
    for (uint32_t c = 0; c < n; c++) {
        dj_class k = r_classify(F, c);
        double ref = r_decode(F, bias, c);
        unsigned fl = 0;
        float got = dj_cf_decode(f, bias, c, &fl);
        scal[c] = got;
        if (F->bits == 8)
            ((uint8_t *)in)[c] = (uint8_t)c;
        else
            ((uint16_t *)in)[c] = (uint16_t)c;
        if (k == DJ_CLASS_NAN) {
            CHECK(isnan(got), "%s bias %d code 0x%X: expected NaN, got %a", F->name, bias, c, (double)got);
        } else {
            float want = (float)ref;
            CHECK((double)want == ref, "model: %s bias %d code 0x%X not a float32", F->name, bias, c);
            CHECK(r_f2u(got) == r_f2u(want), "%s bias %d code 0x%X: expected %a (0x%08X), got %a (0x%08X)",
                  F->name, bias, c, (double)want, r_f2u(want), (double)got, r_f2u(got));
        }
        if (f == DJ_FMT_BF16)
            CHECK(r_f2u(got) == c << 16, "bf16 code 0x%04X: decode bits 0x%08X, want 0x%08X", c, r_f2u(got),
                  c << 16);
        unsigned wantfl = k == DJ_CLASS_DENORMAL ? DJ_FLAG_DENORMAL : 0;
        any_d |= wantfl;
        CHECK(fl == wantfl, "%s bias %d code 0x%X: flags 0x%X, want 0x%X", F->name, bias, c, fl, wantfl);
        dj_class kk = dj_format_classify(f, c);
        CHECK(kk == k, "%s code 0x%X: class %d (%s), want %d (%s)", F->name, c, (int)kk, dj_class_name(kk),
              (int)k, dj_class_name(k));
        /* sticky: never clears */
        unsigned st = DJ_FLAG_INVALID | DJ_FLAG_OVERFLOW | DJ_FLAG_UNDERFLOW;
        (void)dj_cf_decode(f, bias, c, &st);
        CHECK(st == (DJ_FLAG_INVALID | DJ_FLAG_OVERFLOW | DJ_FLAG_UNDERFLOW | wantfl),
              "%s code 0x%X: sticky flags 0x%X", F->name, c, st);
    }
    for (size_t i = 0; i < sizeof k_isas / sizeof k_isas[0]; i++) {
        dj_isa isa = k_isas[i];
        if (!dj_cpu_supports(isa)) {
            unsigned fl = 0;
            CHECK(dj_cf_decode_array_isa(isa, f, bias, in, out, n, &fl) == DJ_ERR_UNSUPPORTED,
                  "decode_array_isa(%s) on a CPU without it must be DJ_ERR_UNSUPPORTED", dj_isa_name(isa));
            continue;
        }
        /* whole array, then odd sub-ranges (vector tails, unaligned starts) */
        static const size_t offs[][2] = {{0, 0}, {1, 7}, {3, 33}, {5, 100}, {17, 1}};
        for (size_t o = 0; o < sizeof offs / sizeof offs[0]; o++) {
            size_t off = offs[o][0], len = offs[o][1] ? offs[o][1] : n;
            if (off + len > n) len = n - off;
            unsigned fl = 0, want = 0;
            memset(out, 0xA5, sizeof(float) * n);
            const void *src = F->bits == 8 ? (const void *)((const uint8_t *)in + off)
                                           : (const void *)((const uint16_t *)in + off);
            dj_status st = dj_cf_decode_array_isa(isa, f, bias, src, out + off, len, &fl);
            CHECK(st == DJ_OK, "decode_array_isa(%s) status %d", dj_isa_name(isa), (int)st);
            int bad = 0;
            for (size_t j = off; j < off + len; j++) {
                if (r_f2u(out[j]) != r_f2u(scal[j]) && bad++ < 3)
                    CHECK(0, "%s bias %d code 0x%zX isa %s: bulk 0x%08X scalar 0x%08X", F->name, bias, j,
                          dj_isa_name(isa), r_f2u(out[j]), r_f2u(scal[j]));
                if (r_classify(F, (uint32_t)j) == DJ_CLASS_DENORMAL) want |= DJ_FLAG_DENORMAL;
            }
            CHECK(bad == 0, "%s bias %d isa %s: %d bulk decode mismatches", F->name, bias, dj_isa_name(isa), bad);
            CHECK(fl == want, "%s bias %d isa %s [%zu,+%zu): bulk flags 0x%X want 0x%X", F->name, bias,
                  dj_isa_name(isa), off, len, fl, want);
            if (off + len < n) CHECK(r_f2u(out[off + len]) == 0xA5A5A5A5u, "bulk decode wrote past n");
            if (off > 0) CHECK(r_f2u(out[off - 1]) == 0xA5A5A5A5u, "bulk decode wrote before out");
        }
        unsigned fl = 0;
        dj_cf_decode_array(f, bias, in, out, n, &fl);
        int bad = 0;
        for (uint32_t j = 0; j < n; j++)
            bad += r_f2u(out[j]) != r_f2u(scal[j]);
        CHECK(bad == 0 && fl == any_d, "%s bias %d dj_cf_decode_array: %d mismatches, flags 0x%X", F->name, bias,
              bad, fl);
    }
    free(out);
    free(scal);
    free(in);
}

/* Largest finite value from the spec's closed forms. */
static double spec_max(dj_format f, int bias)
{
    switch (f) {
    case DJ_FMT_CF8_143: return (2 - 0x1p-3) * ldexp(1, 15 - bias);
    case DJ_FMT_CF8_152: return (2 - 0x1p-2) * ldexp(1, 31 - bias);
    case DJ_FMT_SHP: return (2 - 0x1p-10) * ldexp(1, 31 - bias);
    case DJ_FMT_UHP: return (2 - 0x1p-10) * 0x1p31;
    case DJ_FMT_E4M3: return 448;
    case DJ_FMT_E5M2: return 57344;
    case DJ_FMT_BF16: return (2 - 0x1p-7) * 0x1p127;
    default: return 0;
    }
}

static void check_limits(dj_format f, int bias)
{
    const rfmt *F = rf(f);
    rtab T;
    CHECK(r_tab_build(&T, f, bias), "model table %s bias %d", F->name, bias);
    double mx = (double)T.max;
    CHECK(mx == spec_max(f, bias), "model: %s bias %d max %a vs spec %a", F->name, bias, mx, spec_max(f, bias));
    CHECK(dj_format_max(f, bias) == mx, "dj_format_max(%s,%d) = %a, want %a", F->name, bias, dj_format_max(f, bias),
          mx);
    double mn = ldexp(1, 1 - bias);
    CHECK((double)T.minnorm == mn, "model: min normal");
    CHECK(dj_format_min_normal(f, bias) == mn, "dj_format_min_normal(%s,%d) = %a, want %a", F->name, bias,
          dj_format_min_normal(f, bias), mn);
    double md = F->denorm == R_DN_TESLA ? ldexp(1, -bias - F->M)
              : F->denorm == R_DN_IEEE  ? ldexp(1, 1 - bias - F->M)
                                        : 0.0;
    CHECK((double)T.mindenorm == md, "model: min denormal");
    CHECK(dj_format_min_denormal(f, bias) == md, "dj_format_min_denormal(%s,%d) = %a, want %a", F->name, bias,
          dj_format_min_denormal(f, bias), md);
    CHECK(dj_format_max_code(f, bias) == T.max_code, "dj_format_max_code(%s,%d) = 0x%X, want 0x%X", F->name, bias,
          dj_format_max_code(f, bias), T.max_code);
    if (F->denorm != R_DN_FLUSH) {
        int de = F->denorm == R_DN_TESLA ? -bias : 1 - bias;
        CHECK(dj_format_denorm_exp(f, bias) == de, "dj_format_denorm_exp(%s,%d) = %d, want %d", F->name, bias,
              dj_format_denorm_exp(f, bias), de);
    }
    r_tab_free(&T);
}

static void check_desc(void)
{
    for (int i = 0; i < DJ_FMT_COUNT; i++) {
        dj_format f = (dj_format)i;
        const rfmt *F = rf(f);
        const dj_format_desc *d = dj_format_desc_of(f);
        CHECK(d != NULL, "dj_format_desc_of(%d) is NULL", i);
        if (!d) continue;
        CHECK(d->name && strcmp(d->name, F->name) == 0, "format %d name '%s' want '%s'", i, d->name ? d->name : "(null)",
              F->name);
        CHECK(d->title && d->title[0], "format %s has no title", F->name);
        CHECK(d->bits == F->bits && d->sign_bits == F->sbits && d->exp_bits == F->E && d->man_bits == F->M,
              "format %s layout %d/%d/%d/%d", F->name, d->bits, d->sign_bits, d->exp_bits, d->man_bits);
        CHECK(d->bias_min == F->bmin && d->bias_max == F->bmax && d->bias_default == F->bdef,
              "format %s biases %d..%d default %d", F->name, d->bias_min, d->bias_max, d->bias_default);
        dj_denorm_rule dr = F->denorm == R_DN_TESLA ? DJ_DENORM_TESLA
                          : F->denorm == R_DN_IEEE  ? DJ_DENORM_IEEE
                                                    : DJ_DENORM_FLUSH;
        dj_specials_rule sr = F->specials == R_SP_NONE ? DJ_SPECIALS_NONE
                            : F->specials == R_SP_IEEE ? DJ_SPECIALS_IEEE
                                                       : DJ_SPECIALS_E4M3;
        CHECK(d->denorm == dr, "format %s denorm rule %d", F->name, (int)d->denorm);
        CHECK(d->specials == sr, "format %s specials rule %d", F->name, (int)d->specials);
        CHECK(d->overflow == (F->saturate ? DJ_OVERFLOW_SATURATE : DJ_OVERFLOW_INF), "format %s overflow rule",
              F->name);
        CHECK(d->nan_code == F->nan_code, "format %s nan_code 0x%X want 0x%X", F->name, d->nan_code, F->nan_code);
        CHECK(!!d->nan_keeps_sign == F->nan_sign && !!d->nan_to_max == F->nan_max, "format %s NaN policy", F->name);
    }
    CHECK(strcmp(dj_format_desc_of(DJ_FMT_CF8_143)->title, "CFloat8_1_4_3") == 0, "CFloat8_1_4_3 title");
    CHECK(dj_format_desc_of(DJ_FMT_COUNT) == NULL, "desc_of(COUNT) must be NULL");
    CHECK(dj_format_desc_of((dj_format)-1) == NULL, "desc_of(-1) must be NULL");
    CHECK(dj_format_desc_of((dj_format)1000) == NULL, "desc_of(1000) must be NULL");
}

static void check_names(void)
{
    for (int i = 0; i < DJ_FMT_COUNT; i++) {
        const char *name = rf((dj_format)i)->name;
        dj_format out = DJ_FMT_COUNT;
        CHECK(dj_format_from_name(name, &out) == 0 && out == (dj_format)i, "from_name(%s)", name);
        char up[32], mixed[32];
        size_t L = strlen(name);
        for (size_t k = 0; k <= L; k++) {
            up[k] = (char)(name[k] >= 'a' && name[k] <= 'z' ? name[k] - 32 : name[k]);
            mixed[k] = (char)(k % 2 ? up[k] : name[k]);
        }
        out = DJ_FMT_COUNT;
        CHECK(dj_format_from_name(up, &out) == 0 && out == (dj_format)i, "from_name(%s)", up);
        out = DJ_FMT_COUNT;
        CHECK(dj_format_from_name(mixed, &out) == 0 && out == (dj_format)i, "from_name(%s)", mixed);
        /* prefixes and extensions of a valid name are not names */
        char buf[40];
        snprintf(buf, sizeof buf, "%.*s", (int)(L - 1), name);
        CHECK(dj_format_from_name(buf, &out) != 0, "from_name(%s) accepted", buf);
        snprintf(buf, sizeof buf, "%sx", name);
        CHECK(dj_format_from_name(buf, &out) != 0, "from_name(%s) accepted", buf);
        snprintf(buf, sizeof buf, "%s ", name);
        CHECK(dj_format_from_name(buf, &out) != 0, "from_name('%s') accepted", buf);
        snprintf(buf, sizeof buf, " %s", name);
        CHECK(dj_format_from_name(buf, &out) != 0, "from_name('%s') accepted", buf);
    }
    static const char *bad[] = {"", "cfloat8", "cfloat16", "fp8", "e4m3fn", "bfloat16", "fp16", "half",
                                "cfloat8_1_4_2", "cfloat8-1-4-3", "CFloat8_1_6_1", "e3m4", "hp", "u", "-"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        dj_format out;
        CHECK(dj_format_from_name(bad[i], &out) != 0, "from_name('%s') accepted", bad[i]);
    }
    /* the human titles are not command-line names unless they match case-insensitively */
    dj_format out;
    CHECK(dj_format_from_name("CFloat8_1_5_2", &out) == 0 && out == DJ_FMT_CF8_152, "from_name(CFloat8_1_5_2)");
}

static void check_bias_ok(void)
{
    for (int i = 0; i < DJ_FMT_COUNT; i++) {
        dj_format f = (dj_format)i;
        const rfmt *F = rf(f);
        for (int b = -70; b <= 200; b++) {
            int want = b >= F->bmin && b <= F->bmax;
            CHECK(!!dj_format_bias_ok(f, b) == want, "bias_ok(%s, %d) = %d, want %d", F->name, b,
                  dj_format_bias_ok(f, b), want);
        }
    }
    CHECK(!dj_format_bias_ok(DJ_FMT_CF8_143, -1) && dj_format_bias_ok(DJ_FMT_CF8_143, 0) &&
              dj_format_bias_ok(DJ_FMT_CF8_143, 63) && !dj_format_bias_ok(DJ_FMT_CF8_143, 64),
          "cfloat8_1_4_3 bias edges");
    CHECK(!dj_format_bias_ok(DJ_FMT_COUNT, 7), "bias_ok of an invalid format");
}

static void check_misc(void)
{
    char buf[5];
    CHECK(strcmp(dj_cf_flags_str(0, buf), "-") == 0, "flags_str(0) = '%s'", dj_cf_flags_str(0, buf));
    CHECK(strcmp(dj_cf_flags_str(15, buf), "IDOU") == 0, "flags_str(15) = '%s'", dj_cf_flags_str(15, buf));
    CHECK(strcmp(dj_cf_flags_str(DJ_FLAG_INVALID | DJ_FLAG_OVERFLOW, buf), "IO") == 0, "flags_str(I|O)");
    CHECK(strcmp(dj_cf_flags_str(DJ_FLAG_DENORMAL | DJ_FLAG_UNDERFLOW, buf), "DU") == 0, "flags_str(D|U)");
    CHECK(strcmp(dj_cf_flags_str(DJ_FLAG_UNDERFLOW, buf), "U") == 0, "flags_str(U)");
    const char *names[5];
    for (int c = 0; c <= DJ_CLASS_NAN; c++) {
        names[c] = dj_class_name((dj_class)c);
        CHECK(names[c] && names[c][0], "class_name(%d)", c);
        for (int k = 0; k < c; k++)
            CHECK(names[c] && names[k] && strcasecmp(names[c], names[k]) != 0, "class names %d and %d equal", c, k);
    }
    /* spot values from the spec, independent of the model */
    unsigned fl = 0;
    CHECK(dj_cf_decode(DJ_FMT_CF8_143, 7, 0x07, &fl) == 0.875f * 0x1p-7f && fl == DJ_FLAG_DENORMAL,
          "CF8_143 bias 7 largest denormal is 0.875*2^-7");
    fl = 0;
    CHECK(dj_cf_decode(DJ_FMT_CF8_143, 7, 0x08, &fl) == 0x1p-6f && fl == 0, "CF8_143 bias 7 min normal 2^-6");
    CHECK(dj_cf_decode(DJ_FMT_CF8_143, 7, 0x7F, &fl) == 480.0f, "CF8_143 bias 7 code 0x7F is 480");
    CHECK(dj_cf_decode(DJ_FMT_E4M3, 7, 0x7E, &fl) == 448.0f, "E4M3 0x7E is 448");
    CHECK(dj_cf_decode(DJ_FMT_E4M3, 7, 0x01, &fl) == 0x1p-9f, "E4M3 0x01 is 2^-9");
    CHECK(dj_cf_decode(DJ_FMT_E5M2, 15, 0x7B, &fl) == 57344.0f, "E5M2 0x7B is 57344");
    CHECK(dj_cf_decode(DJ_FMT_E5M2, 15, 0xFC, &fl) == -INFINITY, "E5M2 0xFC is -Inf");
    CHECK(dj_cf_decode(DJ_FMT_UHP, 31, 0xFC00, &fl) == INFINITY, "UHP 0xFC00 is +Inf");
    CHECK(isnan(dj_cf_decode(DJ_FMT_UHP, 31, 0xFE00, &fl)), "UHP 0xFE00 is NaN");
    CHECK(dj_cf_decode(DJ_FMT_UHP, 31, 0x0400, &fl) == 0x1p-30f, "UHP 0x0400 is 2^-30");
    CHECK(dj_cf_decode(DJ_FMT_SHP, 0, 0x0001, &fl) == 0x1p-10f, "SHP bias 0 code 1 is 2^-10");
    CHECK(dj_cf_decode(DJ_FMT_CF8_152, 63, 0x01, &fl) == 0x1p-65f, "CF8_152 bias 63 code 1 is 2^-65");
    CHECK(r_f2u(dj_cf_decode(DJ_FMT_SHP, 15, 0x8000, &fl)) == 0x80000000u, "SHP 0x8000 is -0");
    fl = 0;
    CHECK(r_f2u(dj_cf_decode(DJ_FMT_UHP, 31, 0x0001, &fl)) == 0 && fl == DJ_FLAG_DENORMAL,
          "UHP denormal code reads +0 with D");
}

int main(void)
{
    check_desc();
    check_names();
    check_bias_ok();
    check_misc();
    for (int b = 0; b <= 63; b++) {
        check_codes(DJ_FMT_CF8_143, b);
        check_codes(DJ_FMT_CF8_152, b);
    }
    static const int shp_b[] = {0, 15, 31, 63};
    for (size_t i = 0; i < 4; i++)
        check_codes(DJ_FMT_SHP, shp_b[i]);
    check_codes(DJ_FMT_UHP, 31);
    check_codes(DJ_FMT_E4M3, 7);
    check_codes(DJ_FMT_E5M2, 15);
    check_codes(DJ_FMT_BF16, 127);
    static const int lim_b[] = {0, 1, 7, 15, 31, 32, 62, 63};
    for (int i = 0; i < 3; i++)
        for (size_t k = 0; k < sizeof lim_b / sizeof lim_b[0]; k++)
            check_limits((dj_format)i, lim_b[k]);
    check_limits(DJ_FMT_UHP, 31);
    check_limits(DJ_FMT_E4M3, 7);
    check_limits(DJ_FMT_E5M2, 15);
    check_limits(DJ_FMT_BF16, 127);
    return th_done("test_decode");
}
