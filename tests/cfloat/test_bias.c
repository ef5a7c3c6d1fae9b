/* test_bias.c - dj_cf_bias_for_amax (docs/CFLOAT.md "Bias selection").
 *
 * The returned bias must be the largest at which amax * 2^margin does not
 * overflow under rule 2. The expectation is computed from the model's value
 * tables (the overflow threshold at bias b is the midpoint of max and the
 * value above it, and that midpoint itself overflows), and is confirmed by
 * encoding amax * 2^margin with round-to-nearest: no O at the returned bias,
 * O at bias + 1. */
#include "cf_ref.h"
#include "harness.h"

static long double g_tie[3][64];  /* overflow threshold per configurable format and bias */
static long double g_max[3][64], g_vnext[3][64];

static void build_ties(void)
{
    for (int f = 0; f < 3; f++)
        for (int b = 0; b < 64; b++) {
            rtab T;
            CHECK(r_tab_build(&T, (dj_format)f, b), "model table");
            g_tie[f][b] = (T.max + T.vnext) / 2;
            g_max[f][b] = T.max;
            g_vnext[f][b] = T.vnext;
            /* closed form from the spec: (2 - 2^-(M+1)) * 2^(2^E - 1 - b) */
            const rfmt *F = rf((dj_format)f);
            long double cf = (2 - ldexpl(1, -(F->M + 1))) * ldexpl(1, (1 << F->E) - 1 - b);
            CHECK(g_tie[f][b] == cf, "model tie %s bias %d", F->name, b);
            r_tab_free(&T);
        }
}

static int expected_bias(int f, long double y)
{
    for (int b = 63; b >= 0; b--)
        if (y < g_tie[f][b]) return b;
    return -1;
}

static long g_cases;

static void check_amax(dj_format f, float amax, int margin)
{
    const rfmt *F = rf(f);
    long double y = ldexpl((long double)amax, margin);
    int want = expected_bias((int)f, y);
    int bias = -12345;
    dj_status st = dj_cf_bias_for_amax(f, amax, margin, &bias);
    g_cases++;
    if (want < 0) {
        CHECK(st == DJ_ERR_RANGE && bias == 0, "%s amax=%a margin %d: want DJ_ERR_RANGE bias 0, got status %d bias %d",
              F->name, (double)amax, margin, (int)st, bias);
        return;
    }
    CHECK(st == DJ_OK && bias == want, "%s amax=%a (0x%08X) margin %d: want bias %d, got status %d bias %d", F->name,
          (double)amax, r_f2u(amax), margin, want, (int)st, bias);
    /* confirm by encoding amax * 2^margin when it is a float32 */
    if (st == DJ_OK && y <= FLT_MAX && bias >= 0 && bias <= 63) {
        float yf = (float)y;
        dj_round rn = {DJ_ROUND_NEAREST, 0};
        unsigned fl = 0;
        (void)dj_cf_encode(f, bias, yf, rn, 0, &fl);
        CHECK(!(fl & DJ_FLAG_OVERFLOW), "%s amax*2^%d=%a overflows at the returned bias %d", F->name, margin,
              (double)yf, bias);
        if (bias < 63) {
            fl = 0;
            (void)dj_cf_encode(f, bias + 1, yf, rn, 0, &fl);
            CHECK(fl & DJ_FLAG_OVERFLOW, "%s amax*2^%d=%a does not overflow at bias %d: %d is not the largest",
                  F->name, margin, (double)yf, bias + 1, bias);
        }
    }
}

int main(void)
{
    build_ties();
    uint64_t rng = 0xB1A5ull;
    for (int f = 0; f < 3; f++) {
        dj_format fm = (dj_format)f;
        for (int margin = 0; margin <= 3; margin++) {
            /* powers of two over the whole float32 range */
            for (int e = -149; e <= 127; e++) {
                float p = ldexpf(1.0f, e);
                check_amax(fm, p, margin);
                check_amax(fm, nextafterf(p, 0), margin);
                check_amax(fm, nextafterf(p, INFINITY), margin);
                check_amax(fm, p * 1.5f, margin);
            }
            /* around max, the overflow tie and the value above max at each bias */
            for (int b = 0; b < 64; b++) {
                long double t = ldexpl(g_tie[f][b], -margin);
                long double points[3];
                points[0] = t;
                points[1] = ldexpl(g_max[f][b], -margin);
                points[2] = ldexpl(g_vnext[f][b], -margin);
                for (int k = 0; k < 3; k++) {
                    if (points[k] > FLT_MAX) continue;
                    float v = (float)points[k];
                    float lo = v, hi = v;
                    check_amax(fm, v, margin);
                    for (int s = 0; s < 3; s++) {
                        lo = nextafterf(lo, 0);
                        hi = nextafterf(hi, INFINITY);
                        check_amax(fm, lo, margin);
                        check_amax(fm, hi, margin);
                    }
                }
            }
            /* tiny, zero, huge, random */
            static const uint32_t bits[] = {0x00000000u, 0x00000001u, 0x007FFFFFu, 0x00800000u, 0x0DA24260u,
                                            0x3F800000u, 0x7F7FFFFFu, 0x4F000000u, 0x4EFFFFFFu, 0x5F000000u};
            for (size_t i = 0; i < sizeof bits / sizeof bits[0]; i++)
                check_amax(fm, r_u2f(bits[i]), margin);
            for (int i = 0; i < 3000; i++)
                check_amax(fm, r_u2f(r_rand32(&rng) & 0x7F7FFFFFu), margin);
        }
        /* amax = 0 gives the largest bias, whatever the margin */
        for (int margin = 0; margin <= 8; margin++) {
            int bias = -1;
            CHECK(dj_cf_bias_for_amax(fm, 0.0f, margin, &bias) == DJ_OK && bias == 63, "%s amax 0 margin %d: bias %d",
                  rf(fm)->name, margin, bias);
        }
        /* too big even at bias 0 */
        int bias = -1;
        CHECK(dj_cf_bias_for_amax(fm, FLT_MAX, 0, &bias) == DJ_ERR_RANGE && bias == 0, "%s FLT_MAX: bias %d",
              rf(fm)->name, bias);
        bias = -1;
        CHECK(dj_cf_bias_for_amax(fm, FLT_MAX, 3, &bias) == DJ_ERR_RANGE && bias == 0, "%s FLT_MAX*8: bias %d",
              rf(fm)->name, bias);
        /* bad amax */
        static const uint32_t badbits[] = {0x7FC00000u, 0xFFC00000u, 0x7F800001u, 0x7F800000u, 0xFF800000u,
                                           0xBF800000u, 0x80000001u, 0xFF7FFFFFu, 0x80800000u};
        for (size_t i = 0; i < sizeof badbits / sizeof badbits[0]; i++) {
            bias = 0;
            CHECK(dj_cf_bias_for_amax(fm, r_u2f(badbits[i]), 0, &bias) == DJ_ERR_ARG,
                  "%s amax 0x%08X must be DJ_ERR_ARG", rf(fm)->name, badbits[i]);
        }
    }
    /* spot values from the spec: CFloat8_1_4_3 max at bias 7 is 480, the tie 496 overflows */
    int bias = -1;
    CHECK(dj_cf_bias_for_amax(DJ_FMT_CF8_143, 480.0f, 0, &bias) == DJ_OK && bias == 7, "480 -> bias %d", bias);
    CHECK(dj_cf_bias_for_amax(DJ_FMT_CF8_143, 495.0f, 0, &bias) == DJ_OK && bias == 7, "495 -> bias %d", bias);
    CHECK(dj_cf_bias_for_amax(DJ_FMT_CF8_143, 496.0f, 0, &bias) == DJ_OK && bias == 6, "496 -> bias %d", bias);
    CHECK(dj_cf_bias_for_amax(DJ_FMT_CF8_143, 124.0f, 2, &bias) == DJ_OK && bias == 6, "124*4 -> bias %d", bias);
    CHECK(dj_cf_bias_for_amax(DJ_FMT_CF8_143, 61440.0f, 0, &bias) == DJ_OK && bias == 0, "61440 -> bias %d", bias);
    CHECK(dj_cf_bias_for_amax(DJ_FMT_CF8_143, 63488.0f, 0, &bias) == DJ_ERR_RANGE && bias == 0,
          "63488 -> RANGE, bias %d", bias);
    CHECK(dj_cf_bias_for_amax(DJ_FMT_CF8_152, 1.0f, 0, &bias) == DJ_OK && bias == 31, "152: 1.0 -> bias %d", bias);
    CHECK(dj_cf_bias_for_amax(DJ_FMT_SHP, 1.0f, 0, &bias) == DJ_OK && bias == 31, "shp: 1.0 -> bias %d", bias);
    CHECK(dj_cf_bias_for_amax(DJ_FMT_SHP, 0x1p-40f, 0, &bias) == DJ_OK && bias == 63, "shp: 2^-40 -> bias %d", bias);
    /* formats with a fixed bias, and an invalid format */
    static const dj_format fixed[] = {DJ_FMT_UHP, DJ_FMT_E4M3, DJ_FMT_E5M2, DJ_FMT_BF16, DJ_FMT_COUNT};
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) {
        bias = 0;
        CHECK(dj_cf_bias_for_amax(fixed[i], 1.0f, 0, &bias) == DJ_ERR_ARG, "format %d has no free bias: DJ_ERR_ARG",
              (int)fixed[i]);
        CHECK(dj_cf_bias_for_amax(fixed[i], 0.0f, 0, &bias) == DJ_ERR_ARG, "format %d amax 0: DJ_ERR_ARG",
              (int)fixed[i]);
    }
    printf("test_bias: %ld amax cases\n", g_cases);
    return th_done("test_bias");
}
