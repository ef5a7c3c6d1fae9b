/* test_encode.c - round-to-nearest encoding against an independent reference.
 *
 * The reference (cf_ref.h) does not convert: it builds the sorted list of all
 * finite values of the format at a bias from every code, finds the
 * neighbours of x by binary search, picks the nearer with exact arithmetic
 * (ties to the even code), and applies docs/CFLOAT.md rules 2-5: overflow with
 * unbounded exponent (the value above max is max + its spacing, 480 for
 * E4M3), specials, the UHP flush and the flags I, D, O, U. Code and flags of
 * dj_cf_encode must match exactly for: every value, every midpoint and the
 * float32s 1 and 2 ulps around it, the gap, the overflow tie, specials,
 * float32 subnormals and extremes, and a large random sample, both signs.
 * The bulk path dj_cf_encode_array is compared with the same reference. */
#include "cf_ref.h"
#include "harness.h"

static long g_checked;

static void report(const rtab *T, float x, uint32_t want, unsigned wfl, uint32_t got, unsigned gfl, const char *path)
{
    char a[8], b[8];
    CHECK(0, "%s %s bias %d x=0x%08X (%a): want code 0x%X flags %s, got 0x%X flags %s", path, T->F->name, T->bias,
          r_f2u(x), (double)x, want, r_flags_txt(wfl, a), got, r_flags_txt(gfl, b));
}

/* Scalar and bulk RN on every input of v against the reference. */
static void check_inputs(const rtab *T, const r_vec *v, uint64_t *rng)
{
    dj_round rn = {DJ_ROUND_NEAREST, 0};
    size_t n = v->n;
    uint32_t *want = (uint32_t *)malloc(sizeof(uint32_t) * n);
    void *out = malloc(n * 2 + 2);
    if (!want || !out) {
        CHECK(0, "out of memory");
        exit(2);
    }
    unsigned wall = 0;
    for (size_t i = 0; i < n; i++) {
        float x = v->x[i];
        uint32_t wc;
        unsigned wf;
        r_rn(T, x, &wc, &wf);
        want[i] = wc;
        wall |= wf;
        unsigned fl = 0;
        uint64_t idx = r_rand64(rng); /* RN ignores the index */
        uint32_t got = dj_cf_encode(T->f, T->bias, x, rn, idx, &fl);
        g_checked++;
        if (got != wc || fl != wf) report(T, x, wc, wf, got, fl, "dj_cf_encode");
        else th_passed++;
    }
    /* the bulk path, auto-selected ISA */
    unsigned fl = 0;
    dj_cf_encode_array(T->f, T->bias, v->x, out, n, rn, 0, &fl);
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t got = T->F->bits == 8 ? ((uint8_t *)out)[i] : ((uint16_t *)out)[i];
        if (got != want[i] && bad++ < 5) {
            uint32_t wc;
            unsigned wf;
            r_rn(T, v->x[i], &wc, &wf);
            report(T, v->x[i], wc, wf, got, 0, "dj_cf_encode_array (flags n/a)");
        }
    }
    CHECK(bad == 0, "%s bias %d: %d bulk mismatches", T->F->name, T->bias, bad);
    char a[8], b[8];
    CHECK(fl == wall, "%s bias %d: bulk sticky flags %s, want %s", T->F->name, T->bias, r_flags_txt(fl, a),
          r_flags_txt(wall, b));
    free(want);
    free(out);
}

/* Random float32 bit patterns (every class) against the reference. */
static void check_random_bits(const rtab *T, uint64_t *rng, size_t count)
{
    r_vec v = {0};
    for (size_t i = 0; i < count; i++)
        r_push(&v, r_u2f(r_rand32(rng)));
    check_inputs(T, &v, rng);
    free(v.x);
}

static void check_format(dj_format f, const int *biases, size_t nb, size_t nnear, size_t nrand, uint64_t *rng)
{
    for (size_t k = 0; k < nb; k++) {
        rtab T;
        if (!r_tab_build(&T, f, biases[k])) {
            CHECK(0, "model table %s bias %d", rf(f)->name, biases[k]);
            continue;
        }
        r_vec v = {0};
        r_push_specials(&v, rng);
        r_push_table_inputs(&v, &T, rng, nnear);
        check_inputs(&T, &v, rng);
        free(v.x);
        check_random_bits(&T, rng, nrand);
        r_tab_free(&T);
    }
}

/* Hand-derived cases straight from the text of docs/CFLOAT.md, independent
 * of the model (so that a shared mistake in the model would show). */
static void check_spec_examples(void)
{
    dj_round rn = {DJ_ROUND_NEAREST, 0};
    struct {
        dj_format f;
        int bias;
        float x;
        uint32_t code;
        unsigned fl;
    } c[] = {
        /* E4M3: 448 < x <= 464 -> 448 without O; x > 464 overflows to max */
        {DJ_FMT_E4M3, 7, 448.0f, 0x7E, 0},
        {DJ_FMT_E4M3, 7, 464.0f, 0x7E, 0},
        {DJ_FMT_E4M3, 7, 464.00003f, 0x7E, DJ_FLAG_OVERFLOW},
        {DJ_FMT_E4M3, 7, -470.0f, 0xFE, DJ_FLAG_OVERFLOW},
        {DJ_FMT_E4M3, 7, 1e30f, 0x7E, DJ_FLAG_OVERFLOW},
        {DJ_FMT_E4M3, 7, INFINITY, 0x7E, DJ_FLAG_OVERFLOW},
        {DJ_FMT_E4M3, 7, -INFINITY, 0xFE, DJ_FLAG_OVERFLOW},
        {DJ_FMT_E4M3, 7, NAN, 0x7F, DJ_FLAG_INVALID},
        {DJ_FMT_E4M3, 7, -NAN, 0xFF, DJ_FLAG_INVALID},
        {DJ_FMT_E4M3, 7, -0.0f, 0x80, 0},
        {DJ_FMT_E4M3, 7, 0x1p-10f, 0x00, DJ_FLAG_UNDERFLOW},   /* tie with 2^-9: even code 0 */
        {DJ_FMT_E4M3, 7, 0x1.8p-9f, 0x02, DJ_FLAG_UNDERFLOW},  /* tie 1/2: even code 2 */
        {DJ_FMT_E4M3, 7, 0x1.fp-7f, 0x08, 0},                  /* rounds up to min normal, not tiny */
        {DJ_FMT_E4M3, 7, 0x1.ep-7f, 0x08, DJ_FLAG_UNDERFLOW},  /* -> 2^-6 but tiny (unbounded: 0.1111) */
        /* E5M2: max 57344, overflow tie 61440 overflows */
        {DJ_FMT_E5M2, 15, 57344.0f, 0x7B, 0},
        {DJ_FMT_E5M2, 15, 61439.996f, 0x7B, 0},
        {DJ_FMT_E5M2, 15, 61440.0f, 0x7B, DJ_FLAG_OVERFLOW},
        {DJ_FMT_E5M2, 15, INFINITY, 0x7B, DJ_FLAG_OVERFLOW},
        {DJ_FMT_E5M2, 15, -NAN, 0xFE, DJ_FLAG_INVALID},
        {DJ_FMT_E5M2, 15, NAN, 0x7E, DJ_FLAG_INVALID},
        /* CFloat8_1_4_3 bias 7: max 480, tie 496 overflows; gap 0.875*2^-7 .. 2^-6 */
        {DJ_FMT_CF8_143, 7, 480.0f, 0x7F, 0},
        {DJ_FMT_CF8_143, 7, 495.99997f, 0x7F, 0},
        {DJ_FMT_CF8_143, 7, 496.0f, 0x7F, DJ_FLAG_OVERFLOW},
        {DJ_FMT_CF8_143, 7, -496.0f, 0xFF, DJ_FLAG_OVERFLOW},
        {DJ_FMT_CF8_143, 7, INFINITY, 0x7F, DJ_FLAG_OVERFLOW},
        {DJ_FMT_CF8_143, 7, -INFINITY, 0xFF, DJ_FLAG_OVERFLOW},
        {DJ_FMT_CF8_143, 7, NAN, 0x7F, DJ_FLAG_INVALID},
        {DJ_FMT_CF8_143, 7, -NAN, 0x7F, DJ_FLAG_INVALID},
        {DJ_FMT_CF8_143, 7, -0.0f, 0x80, 0},
        {DJ_FMT_CF8_143, 7, 0.875f * 0x1p-7f, 0x07, 0},
        {DJ_FMT_CF8_143, 7, 1.4375f * 0x1p-7f, 0x08, DJ_FLAG_UNDERFLOW}, /* gap midpoint: even code 0x08 */
        {DJ_FMT_CF8_143, 7, 1.43f * 0x1p-7f, 0x07, DJ_FLAG_UNDERFLOW},
        {DJ_FMT_CF8_143, 7, 1.44f * 0x1p-7f, 0x08, DJ_FLAG_UNDERFLOW},
        {DJ_FMT_CF8_143, 7, -1.44f * 0x1p-7f, 0x88, DJ_FLAG_UNDERFLOW},
        {DJ_FMT_CF8_143, 7, 1.96875f * 0x1p-7f, 0x08, 0},  /* not tiny */
        {DJ_FMT_CF8_143, 7, 1.9375f * 0x1p-7f, 0x08, 0},   /* tie 1.111|1 -> 2^-6 with unbounded exp: not tiny */
        {DJ_FMT_CF8_143, 7, 0x1.effffep-7f, 0x08, DJ_FLAG_UNDERFLOW}, /* just below: tiny */
        {DJ_FMT_CF8_143, 7, 0x1p-11f, 0x00, DJ_FLAG_UNDERFLOW}, /* half of 2^-10: tie to 0 */
        {DJ_FMT_CF8_143, 7, -0x1p-11f, 0x80, DJ_FLAG_UNDERFLOW},
        {DJ_FMT_CF8_143, 7, 0x1p-149f, 0x00, DJ_FLAG_UNDERFLOW | DJ_FLAG_DENORMAL},
        {DJ_FMT_CF8_143, 0, 2.0f, 0x08, 0},
        {DJ_FMT_CF8_143, 0, 1.0f, 0x07, DJ_FLAG_UNDERFLOW}, /* bias 0: 1.0 is in the gap 0.875 .. 2 */
        {DJ_FMT_CF8_143, 63, 0x1p-66f, 0x01, 0},
        /* CFloat8_1_5_2 bias 15: max 1.75*2^16 = 114688 */
        {DJ_FMT_CF8_152, 15, 114688.0f, 0x7F, 0},
        {DJ_FMT_CF8_152, 15, 122880.0f, 0x7F, DJ_FLAG_OVERFLOW},
        {DJ_FMT_CF8_152, 15, 0.75f * 0x1p-15f, 0x03, 0},
        {DJ_FMT_CF8_152, 15, 1.375f * 0x1p-15f, 0x04, DJ_FLAG_UNDERFLOW}, /* gap midpoint (0.75+2)/2 */
        /* SHP bias 15: max (2-2^-10)*2^16 */
        {DJ_FMT_SHP, 15, 131008.0f, 0x7FFF, 0},
        {DJ_FMT_SHP, 15, 131040.0f, 0x7FFF, DJ_FLAG_OVERFLOW},
        {DJ_FMT_SHP, 15, 131039.99f, 0x7FFF, 0},
        {DJ_FMT_SHP, 15, NAN, 0x7FFF, DJ_FLAG_INVALID},
        {DJ_FMT_SHP, 15, -0.0f, 0x8000, 0},
        {DJ_FMT_SHP, 15, 1.0f, 0x3C00, 0},
        /* UHP */
        {DJ_FMT_UHP, 31, 1.0f, 0x7C00, 0},
        {DJ_FMT_UHP, 31, -1.0f, 0xFE00, DJ_FLAG_INVALID},
        {DJ_FMT_UHP, 31, -0.0f, 0x0000, 0},
        {DJ_FMT_UHP, 31, INFINITY, 0xFC00, 0},
        {DJ_FMT_UHP, 31, -INFINITY, 0xFE00, DJ_FLAG_INVALID},
        {DJ_FMT_UHP, 31, NAN, 0xFE00, DJ_FLAG_INVALID},
        {DJ_FMT_UHP, 31, -NAN, 0xFE00, DJ_FLAG_INVALID},
        {DJ_FMT_UHP, 31, 0x1p-30f, 0x0400, 0},
        {DJ_FMT_UHP, 31, 0x1p-31f, 0x0000, DJ_FLAG_UNDERFLOW},
        {DJ_FMT_UHP, 31, 0x1.ffcp-31f, 0x0000, DJ_FLAG_UNDERFLOW},  /* largest of binade below: flushed */
        {DJ_FMT_UHP, 31, 0x1.ffep-31f, 0x0400, 0},                  /* tie rounds up to 2^-30: not tiny */
        {DJ_FMT_UHP, 31, 0x1.ffdffep-31f, 0x0000, DJ_FLAG_UNDERFLOW},
        {DJ_FMT_UHP, 31, 0x1p-140f, 0x0000, DJ_FLAG_UNDERFLOW | DJ_FLAG_DENORMAL},
        {DJ_FMT_UHP, 31, -0x1p-140f, 0xFE00, DJ_FLAG_INVALID | DJ_FLAG_DENORMAL},
        {DJ_FMT_UHP, 31, 0x1.ffcp31f, 0xFBFF, 0},
        {DJ_FMT_UHP, 31, 0x1.ffdffep31f, 0xFBFF, 0},
        {DJ_FMT_UHP, 31, 0x1.ffep31f, 0xFC00, DJ_FLAG_OVERFLOW},
        /* bf16 */
        {DJ_FMT_BF16, 127, 1.0f, 0x3F80, 0},
        {DJ_FMT_BF16, 127, 1.00390625f, 0x3F80, 0},   /* tie 1 + 2^-8: even */
        {DJ_FMT_BF16, 127, 1.01171875f, 0x3F82, 0},   /* tie 1 + 3*2^-8: even */
        {DJ_FMT_BF16, 127, FLT_MAX, 0x7F80, DJ_FLAG_OVERFLOW},
        {DJ_FMT_BF16, 127, -FLT_MAX, 0xFF80, DJ_FLAG_OVERFLOW},
        {DJ_FMT_BF16, 127, 0x1.fep127f, 0x7F7F, 0},
        {DJ_FMT_BF16, 127, 0x1.fefffep127f, 0x7F7F, 0},
        {DJ_FMT_BF16, 127, 0x1.ffp127f, 0x7F80, DJ_FLAG_OVERFLOW},
        {DJ_FMT_BF16, 127, INFINITY, 0x7F80, 0},
        {DJ_FMT_BF16, 127, -INFINITY, 0xFF80, 0},
        {DJ_FMT_BF16, 127, NAN, 0x7FC0, DJ_FLAG_INVALID},
        {DJ_FMT_BF16, 127, -NAN, 0xFFC0, DJ_FLAG_INVALID},
        {DJ_FMT_BF16, 127, -0.0f, 0x8000, 0},
        {DJ_FMT_BF16, 127, 0x1p-133f, 0x0001, DJ_FLAG_DENORMAL},
        {DJ_FMT_BF16, 127, 0x1p-134f, 0x0000, DJ_FLAG_DENORMAL | DJ_FLAG_UNDERFLOW},
        {DJ_FMT_BF16, 127, 0x1.8p-133f, 0x0002, DJ_FLAG_DENORMAL | DJ_FLAG_UNDERFLOW},
        {DJ_FMT_BF16, 127, 0x1.ffp-127f, 0x0080, DJ_FLAG_DENORMAL}, /* rounds to 2^-126: not tiny */
        {DJ_FMT_BF16, 127, 0x1.fdp-127f, 0x007F, DJ_FLAG_DENORMAL | DJ_FLAG_UNDERFLOW},
    };
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        unsigned fl = 0;
        uint32_t got = dj_cf_encode(c[i].f, c[i].bias, c[i].x, rn, 0, &fl);
        char a[8], b[8];
        CHECK(got == c[i].code && fl == c[i].fl, "spec case %zu: %s bias %d x=%a: want 0x%X %s, got 0x%X %s", i,
              rf(c[i].f)->name, c[i].bias, (double)c[i].x, c[i].code, r_flags_txt(c[i].fl, a), got,
              r_flags_txt(fl, b));
        /* the model must agree with the hand-derived answer too */
        rtab T;
        if (r_tab_build(&T, c[i].f, c[i].bias)) {
            uint32_t wc;
            unsigned wf;
            r_rn(&T, c[i].x, &wc, &wf);
            CHECK(wc == c[i].code && wf == c[i].fl, "model disagrees with spec case %zu (0x%X %s)", i, wc,
                  r_flags_txt(wf, a));
        }
        r_tab_free(&T);
    }
    /* flags are sticky: never cleared */
    unsigned fl = DJ_FLAG_INVALID | DJ_FLAG_UNDERFLOW;
    (void)dj_cf_encode(DJ_FMT_CF8_143, 7, 1.0f, rn, 0, &fl);
    CHECK(fl == (DJ_FLAG_INVALID | DJ_FLAG_UNDERFLOW), "sticky flags cleared: 0x%X", fl);
    fl = DJ_FLAG_DENORMAL;
    (void)dj_cf_encode(DJ_FMT_CF8_143, 7, 1e9f, rn, 0, &fl);
    CHECK(fl == (DJ_FLAG_DENORMAL | DJ_FLAG_OVERFLOW), "sticky flags: 0x%X", fl);
    /* RN ignores the seed and the index */
    for (int i = 0; i < 100; i++) {
        dj_round r2 = {DJ_ROUND_NEAREST, (uint64_t)i * 0x123456789ull};
        unsigned f1 = 0, f2 = 0;
        float x = 1.0f + (float)i / 37.0f;
        CHECK(dj_cf_encode(DJ_FMT_CF8_143, 7, x, r2, (uint64_t)i, &f1) == dj_cf_encode(DJ_FMT_CF8_143, 7, x, rn, 0, &f2),
              "RN depends on seed/index");
    }
}

int main(void)
{
    uint64_t rng = 0x5EEDC0FFEEull;
    int big = !R_SANITIZED;
    check_spec_examples();
    int all[64];
    for (int b = 0; b < 64; b++)
        all[b] = b;
    /* CFloat8: every bias; random sample spread over the 64 biases */
    check_format(DJ_FMT_CF8_143, all, 64, big ? 3000 : 300, big ? 6000 : 600, &rng);
    check_format(DJ_FMT_CF8_152, all, 64, big ? 3000 : 300, big ? 6000 : 600, &rng);
    static const int shp_b[] = {0, 1, 15, 31, 62, 63};
    check_format(DJ_FMT_SHP, shp_b, 6, big ? 40000 : 4000, big ? 60000 : 6000, &rng);
    static const int b31[] = {31}, b7[] = {7}, b15[] = {15}, b127[] = {127};
    check_format(DJ_FMT_UHP, b31, 1, big ? 200000 : 20000, big ? 400000 : 40000, &rng);
    check_format(DJ_FMT_E4M3, b7, 1, big ? 200000 : 20000, big ? 400000 : 40000, &rng);
    check_format(DJ_FMT_E5M2, b15, 1, big ? 200000 : 20000, big ? 400000 : 40000, &rng);
    check_format(DJ_FMT_BF16, b127, 1, big ? 200000 : 20000, big ? 400000 : 40000, &rng);
    printf("test_encode: %ld scalar encodings compared with the model\n", g_checked);
    return th_done("test_encode");
}
