/* test_sr.c - stochastic rounding (docs/CFLOAT.md rule 6), the bulk paths on
 * every ISA the CPU runs, and the bf16 <-> CFloat8 conversions.
 *
 * (a) the result is always one of the two neighbours lo <= x < hi taken from
 *     the model's sorted value table (overflow rule applied to hi beyond
 *     max), with the flags that neighbour implies; representable x is exact;
 *     and it equals the spec's exact decision "up iff U < (x-lo)/(hi-lo)"
 *     with U = 0.(word0)(word1)... of dj_rng_u32(seed, index, word).
 * (b) unbiased: frequencies of rounding up and means over 200000 indices.
 * (c) reproducible: a pure function of (seed, index); chunking is invisible.
 * (d) dj_cf_encode_array_isa on every supported ISA == scalar, codes+flags.
 * (e) bf16 -> CFloat8 equals the widened float32 path; CFloat8 -> bf16 exact. */
#include "cf_ref.h"
#include "harness.h"

#include <time.h>

static const dj_isa k_isas[] = {DJ_ISA_AUTO, DJ_ISA_GENERIC, DJ_ISA_AVX2, DJ_ISA_AVX512};

static uint32_t get_code(const rfmt *F, const void *out, size_t i)
{
    return F->bits == 8 ? ((const uint8_t *)out)[i] : ((const uint16_t *)out)[i];
}

static dj_round sr(uint64_t seed)
{
    dj_round r = {DJ_ROUND_STOCHASTIC, seed};
    return r;
}

/* ---- (a) neighbours and the exact decision ---- */

static long g_exact_checked, g_undecided;

static void check_one_sr(const rtab *T, float x, uint64_t seed, uint64_t index)
{
    r_srcase s;
    r_sr_case(T, x, &s);
    unsigned fl = 0;
    uint32_t got = dj_cf_encode(T->f, T->bias, x, sr(seed), index, &fl);
    char a[8], b[8], c[8];
    int ok0 = got == s.code[0] && fl == s.fl[0];
    int ok1 = !s.det && got == s.code[1] && fl == s.fl[1];
    if (!(ok0 || ok1)) {
        if (s.det)
            CHECK(0, "SR %s bias %d x=0x%08X (%a) seed %llu index %llu: want 0x%X %s, got 0x%X %s", T->F->name,
                  T->bias, r_f2u(x), (double)x, (unsigned long long)seed, (unsigned long long)index, s.code[0],
                  r_flags_txt(s.fl[0], a), got, r_flags_txt(fl, c));
        else
            CHECK(0,
                  "SR %s bias %d x=0x%08X (%a) seed %llu index %llu: got 0x%X %s, not a neighbour: "
                  "lo 0x%X %s, hi 0x%X %s",
                  T->F->name, T->bias, r_f2u(x), (double)x, (unsigned long long)seed, (unsigned long long)index, got,
                  r_flags_txt(fl, c), s.code[0], r_flags_txt(s.fl[0], a), s.code[1], r_flags_txt(s.fl[1], b));
        return;
    }
    th_passed++;
    if (s.det) return;
    int up = r_sr_up(seed, index, s.N, s.D);
    if (up < 0) {
        g_undecided++;
        return;
    }
    g_exact_checked++;
    if (got == s.code[up] && fl == s.fl[up]) {
        th_passed++;
    } else {
        CHECK(0,
              "SR exact: %s bias %d x=0x%08X (%a) seed %llu index %llu: p = %.17Lg, U < p is %s, want 0x%X %s, "
              "got 0x%X %s",
              T->F->name, T->bias, r_f2u(x), (double)x, (unsigned long long)seed, (unsigned long long)index,
              s.N / s.D, up ? "true" : "false", s.code[up], r_flags_txt(s.fl[up], a), got, r_flags_txt(fl, c));
    }
}

static void part_a(uint64_t *rng)
{
    int big = !R_SANITIZED;
    for (int f = 0; f < DJ_FMT_COUNT; f++) {
        const rfmt *F = rf((dj_format)f);
        int biases[64], nb = 0;
        if (F->bmin == F->bmax)
            biases[nb++] = F->bmin;
        else if (F->bits == 8)
            for (int b = 0; b < 64; b++) {
                if (big || b < 3 || b > 60 || b % 8 == 7) biases[nb++] = b; /* all 64 unless sanitized */
            }
        else {
            biases[nb++] = 0;
            biases[nb++] = 15;
            biases[nb++] = 63;
        }
        for (int k = 0; k < nb; k++) {
            rtab T;
            if (!r_tab_build(&T, (dj_format)f, biases[k])) {
                CHECK(0, "model table");
                continue;
            }
            r_vec all = {0}, v = {0};
            r_push_specials(&v, rng);
            r_push_table_inputs(&all, &T, rng, F->bits == 8 ? 500 : 20000);
            /* all of them for 8-bit formats, a sample (the gap and the ends included) for 16-bit */
            size_t step = F->bits == 8 ? 1 : (big ? 6 : 48);
            for (size_t i = 0; i < all.n; i++)
                if (i % step == 0 || fabsl((long double)all.x[i]) < 4 * T.minnorm ||
                    fabsl((long double)all.x[i]) > T.max / 2)
                    r_push(&v, all.x[i]);
            free(all.x);
            size_t nr = F->bits == 8 ? 1000 : (big ? 30000 : 5000);
            for (size_t i = 0; i < nr; i++)
                r_push(&v, r_u2f(r_rand32(rng)));
            uint64_t seed = r_rand64(rng);
            uint64_t index0 = r_rand64(rng) >> (r_rand32(rng) & 63);
            /* every input with a random (seed, index); a few inputs with many */
            for (size_t i = 0; i < v.n; i++)
                check_one_sr(&T, v.x[i], (i & 1) ? seed : r_rand64(rng), index0 + i);
            for (size_t i = 0; i < v.n; i += v.n / 50 + 1)
                for (uint64_t j = 0; j < 64; j++)
                    check_one_sr(&T, v.x[i], seed, j);
            /* the bulk path draws the same bits: element i is index0 + i */
            void *out = malloc(v.n * 2);
            unsigned fl = 0, wantfl = 0;
            if (!out) exit(2);
            dj_cf_encode_array(T.f, T.bias, v.x, out, v.n, sr(seed), index0, &fl);
            int bad = 0;
            for (size_t i = 0; i < v.n; i++) {
                unsigned f1 = 0;
                uint32_t want = dj_cf_encode(T.f, T.bias, v.x[i], sr(seed), index0 + i, &f1);
                wantfl |= f1;
                if (get_code(F, out, i) != want && bad++ < 3)
                    CHECK(0, "SR bulk %s bias %d x=0x%08X index %llu: bulk 0x%X scalar 0x%X", F->name, T.bias,
                          r_f2u(v.x[i]), (unsigned long long)(index0 + i), get_code(F, out, i), want);
            }
            CHECK(bad == 0 && fl == wantfl, "SR bulk %s bias %d: %d mismatches, flags 0x%X want 0x%X", F->name,
                  T.bias, bad, fl, wantfl);
            free(out);
            free(v.x);
            r_tab_free(&T);
        }
    }
    printf("test_sr: %ld stochastic results checked against the exact U < p rule (%ld undecided)\n",
           g_exact_checked, g_undecided);
}

/* ---- (b) unbiased ---- */

static void stat_case(const rtab *T, float x, size_t n, int bulk, uint64_t seed, uint64_t index0)
{
    const rfmt *F = T->F;
    r_srcase s;
    if (x == 0) return; /* the requested value underflowed float32 */
    r_sr_case(T, x, &s);
    if (s.det) {
        CHECK(0, "stat case %s x=%a is deterministic", F->name, (double)x);
        return;
    }
    long double p = s.N / s.D;
    int by_flag = s.code[0] == s.code[1]; /* saturating overflow band: up shows only as O */
    size_t k = 0;
    long double sum = 0;
    void *out = malloc(n * 2);
    float *xs = (float *)malloc(n * sizeof(float));
    if (!out || !xs) exit(2);
    if (bulk && !by_flag) {
        for (size_t i = 0; i < n; i++)
            xs[i] = x;
        unsigned fl = 0;
        dj_cf_encode_array(T->f, T->bias, xs, out, n, sr(seed), index0, &fl);
    }
    size_t nexact = R_SANITIZED ? 500 : 3000;
    /* the decoded magnitudes of the two results (Inf, or max in the saturating
     * overflow band, count as the unbounded hi) */
    double d0 = r_decode(F, T->bias, s.code[0]), d1 = r_decode(F, T->bias, s.code[1]);
    long double val0 = isfinite(d0) ? fabsl((long double)d0) : s.lo;
    long double val1 = isfinite(d1) && !by_flag ? fabsl((long double)d1) : s.hi;
    CHECK(val0 == s.lo && val1 == s.hi, "model: neighbours of %a decode to %a, %a", (double)x, d0, d1);
    int bad_exact = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t code;
        unsigned fl = 0;
        if (bulk && !by_flag)
            code = get_code(F, out, i);
        else
            code = dj_cf_encode(T->f, T->bias, x, sr(seed), index0 + i, &fl);
        int up;
        if (by_flag) {
            up = (fl & DJ_FLAG_OVERFLOW) != 0;
        } else {
            up = code == s.code[1];
            if (!up && code != s.code[0] && bad_exact++ < 3)
                CHECK(0, "stat %s x=%a: code 0x%X is not a neighbour", F->name, (double)x, code);
        }
        k += (size_t)up;
        sum += up ? val1 : val0;
        if (i < nexact) {
            int want = r_sr_up(seed, index0 + i, s.N, s.D);
            if (want >= 0 && want != up && bad_exact++ < 3)
                CHECK(0, "stat %s bias %d x=%a index %llu: rounded %s, exact rule says %s", F->name, T->bias,
                      (double)x, (unsigned long long)(index0 + i), up ? "up" : "down", want ? "up" : "down");
        }
    }
    long double mean_k = n * p, sd = sqrtl(n * p * (1 - p));
    CHECK(fabsl((long double)k - mean_k) <= 5 * sd + 1,
          "SR bias: %s bias %d x=%a (%s): %zu of %zu rounded up, expected %.1Lf +- %.1Lf (p = %.6Lg)", F->name,
          T->bias, (double)x, bulk ? "bulk" : "scalar", k, n, mean_k, sd, p);
    long double mean = sum / n, ax = fabsl((long double)x);
    long double tol = 5 * s.D * sqrtl(p * (1 - p) / n) + s.D / n;
    CHECK(fabsl(mean - ax) <= tol, "SR mean: %s bias %d x=%a: mean |result| %.10Lg, |x| %.10Lg, tol %.3Lg", F->name,
          T->bias, (double)x, mean, ax, tol);
    CHECK(bad_exact == 0, "SR stat %s x=%a: %d exact-rule mismatches", F->name, (double)x, bad_exact);
    free(out);
    free(xs);
}

static void part_b(uint64_t *rng)
{
    size_t n = R_SANITIZED ? 30000 : 200000, ns = R_SANITIZED ? 4000 : 20000;
    static const struct {
        dj_format f;
        int bias;
    } cs[] = {{DJ_FMT_CF8_143, 7},  {DJ_FMT_CF8_143, 0}, {DJ_FMT_CF8_143, 63}, {DJ_FMT_CF8_152, 15},
              {DJ_FMT_CF8_152, 40}, {DJ_FMT_SHP, 15},    {DJ_FMT_SHP, 63},     {DJ_FMT_UHP, 31},
              {DJ_FMT_E4M3, 7},     {DJ_FMT_E5M2, 15},   {DJ_FMT_BF16, 127}};
    static const double fracs[] = {0.5, 0.1, 0.9, 1.0 / 3, 0.013};
    for (size_t c = 0; c < sizeof cs / sizeof cs[0]; c++) {
        rtab T;
        if (!r_tab_build(&T, cs[c].f, cs[c].bias)) continue;
        const rfmt *F = T.F;
        uint64_t seed = r_rand64(rng), idx = r_rand64(rng) >> 8;
        /* a normal value pair in the middle of the range */
        size_t mid = T.n / 2;
        for (size_t q = 0; q < sizeof fracs / sizeof fracs[0]; q++) {
            float x = (float)(T.v[mid] + (T.v[mid + 1] - T.v[mid]) * fracs[q]);
            stat_case(&T, q == 3 && F->sbits ? -x : x, n, 1, seed + q, idx);
        }
        stat_case(&T, (float)(T.v[mid] + (T.v[mid + 1] - T.v[mid]) * 0.3), ns, 0, seed, idx);
        /* the gap (Tesla) or the step to the smallest normal */
        long double below = 0;
        for (size_t i = 0; i < T.n; i++)
            if (T.v[i] < T.minnorm) below = T.v[i];
        if (F->denorm != R_DN_FLUSH) {
            static const double gf[] = {0.5, 0.2, 0.77, 1.0 / 9, 0.999};
            for (size_t q = 0; q < 5; q++) {
                float x = (float)(below + (T.minnorm - below) * gf[q]);
                stat_case(&T, q == 2 && F->sbits ? -x : x, n, 1, seed ^ 0xABCD, idx + 7 * q);
            }
            stat_case(&T, (float)(below + (T.minnorm - below) * 0.6), ns, 0, seed ^ 0x1234, idx);
            /* between 0 and the smallest denormal, and far below it */
            stat_case(&T, (float)(T.mindenorm * 0.3), n, 1, seed + 99, idx);
            stat_case(&T, (float)(T.mindenorm * 0x1p-10 * 1.3), n, 1, seed + 98, idx);
            stat_case(&T, -(float)(T.mindenorm * 0x1p-10 * 1.3), ns, 0, seed + 97, idx);
            stat_case(&T, (float)(T.mindenorm * 0x1p-40 * 1.7), n, 1, seed + 96, idx);
        }
        /* the band between max and the value above it */
        if (T.max * 1.0001L <= FLT_MAX)
            stat_case(&T, (float)(T.max + (T.vnext - T.max) * 0.25), ns, 0, seed + 5, idx);
        r_tab_free(&T);
    }
}

/* ---- (c) reproducible ---- */

static void part_c(uint64_t *rng)
{
    rtab T;
    if (!r_tab_build(&T, DJ_FMT_CF8_143, 7)) return;
    float xh = 1.0625f; /* halfway between 1 and 1.125: p = 1/2 */
    unsigned fl = 0;
    int same = 0, diff_seed = 0, diff_hi = 0, diff_idxhi = 0, ups = 0;
    for (uint64_t i = 0; i < 4000; i++) {
        uint32_t a = dj_cf_encode(T.f, 7, xh, sr(42), i, &fl);
        uint32_t b = dj_cf_encode(T.f, 7, xh, sr(42), i, &fl);
        same += a == b;
        ups += a == 0x39;
        diff_seed += a != dj_cf_encode(T.f, 7, xh, sr(43), i, &fl);
        diff_hi += a != dj_cf_encode(T.f, 7, xh, sr(42 + (1ull << 32)), i, &fl);
        diff_idxhi += a != dj_cf_encode(T.f, 7, xh, sr(42), i + (1ull << 32), &fl);
    }
    CHECK(same == 4000, "same seed and index gave different codes (%d of 4000 equal)", same);
    CHECK(ups > 1700 && ups < 2300, "p = 1/2 rounded up %d of 4000 times", ups);
    CHECK(diff_seed > 1700 && diff_seed < 2300, "seeds 42/43 differ in %d of 4000", diff_seed);
    CHECK(diff_hi > 1700 && diff_hi < 2300, "seeds differing in the high word differ in %d of 4000", diff_hi);
    CHECK(diff_idxhi > 1700 && diff_idxhi < 2300, "indices differing in the high word differ in %d of 4000",
          diff_idxhi);

    /* element 12345 alone == element 12345 of an array with index0 = 0 */
    size_t n = 20000;
    float *x = (float *)malloc(n * sizeof(float));
    uint8_t *o1 = (uint8_t *)malloc(n), *o2 = (uint8_t *)malloc(n);
    if (!x || !o1 || !o2) exit(2);
    for (size_t i = 0; i < n; i++)
        x[i] = (float)ldexp(1.0 + r_rand_unit(rng), (int)(r_rand32(rng) % 30) - 20) * ((i & 1) ? -1.0f : 1.0f);
    x[12345] = 1.0f + 1.0f / 3.0f;
    for (int f = DJ_FMT_CF8_143; f <= DJ_FMT_CF8_152; f++) {
        uint64_t seed = 0xDEADBEEFCAFEull + (uint64_t)f;
        unsigned fa = 0;
        dj_cf_encode_array((dj_format)f, 7, x, o1, n, sr(seed), 0, &fa);
        int ok = 1;
        for (uint64_t rep = 0; rep < 3; rep++) {
            unsigned f1 = 0;
            ok &= dj_cf_encode((dj_format)f, 7, x[12345], sr(seed), 12345, &f1) == o1[12345];
        }
        CHECK(ok, "element 12345 alone differs from element 12345 of the array");
        int bad = 0;
        for (size_t i = 0; i < n; i++) {
            unsigned f1 = 0;
            bad += dj_cf_encode((dj_format)f, 7, x[i], sr(seed), i, &f1) != o1[i];
        }
        CHECK(bad == 0, "array vs scalar by index: %d mismatches", bad);
        /* chunks with matching index0 */
        static const size_t chunks[] = {1, 7, 64, 100, 333, 1, 2, 31, 4096};
        size_t pos = 0, c = 0;
        unsigned fb = 0;
        memset(o2, 0, n);
        while (pos < n) {
            size_t len = chunks[c++ % (sizeof chunks / sizeof chunks[0])];
            if (len > n - pos) len = n - pos;
            dj_cf_encode_array((dj_format)f, 7, x + pos, o2 + pos, len, sr(seed), pos, &fb);
            pos += len;
        }
        CHECK(memcmp(o1, o2, n) == 0 && fa == fb, "chunked SR encoding differs from one call");
        /* a non-zero index0: the array is a window of the stream */
        unsigned fc = 0;
        dj_cf_encode_array((dj_format)f, 7, x + 1000, o2, 5000, sr(seed), 1000, &fc);
        CHECK(memcmp(o1 + 1000, o2, 5000) == 0, "index0 = 1000 window differs");
        /* a different seed changes the stream */
        dj_cf_encode_array((dj_format)f, 7, x, o2, n, sr(seed + 1), 0, &fc);
        CHECK(memcmp(o1, o2, n) != 0, "different seeds gave identical arrays");
    }
    free(x);
    free(o1);
    free(o2);
    r_tab_free(&T);
}

/* ---- (d) every ISA == scalar ---- */

static void isa_compare(const rtab *T, const float *x, size_t n, dj_round r, uint64_t index0, uint64_t *rng)
{
    const rfmt *F = T->F;
    uint32_t *want = (uint32_t *)malloc(n * sizeof(uint32_t));
    unsigned *wfl = (unsigned *)malloc(n * sizeof(unsigned));
    uint8_t *out = (uint8_t *)malloc(n * 2 + 64);
    if (!want || !wfl || !out) exit(2);
    for (size_t i = 0; i < n; i++) {
        wfl[i] = 0;
        want[i] = dj_cf_encode(T->f, T->bias, x[i], r, index0 + i, &wfl[i]);
    }
    const char *mode = r.mode == DJ_ROUND_NEAREST ? "RN" : "SR";
    for (size_t k = 0; k < sizeof k_isas / sizeof k_isas[0]; k++) {
        dj_isa isa = k_isas[k];
        if (!dj_cpu_supports(isa)) {
            unsigned fl = 0;
            CHECK(dj_cf_encode_array_isa(isa, T->f, T->bias, x, out, n, r, index0, &fl) == DJ_ERR_UNSUPPORTED,
                  "encode_array_isa(%s) without CPU support must be DJ_ERR_UNSUPPORTED", dj_isa_name(isa));
            continue;
        }
        size_t win[][2] = {{0, n}, {1, n - 1}, {3, 37}, {5, 1}, {0, 15}, {7, 16}, {9, 65}, {2, 255}};
        for (size_t w = 0; w < sizeof win / sizeof win[0]; w++) {
            size_t off = win[w][0], len = win[w][1];
            if (off + len > n) continue;
            unsigned fl = 0, wantfl = 0;
            size_t es = (size_t)F->bits / 8;
            memset(out, 0xA5, n * 2 + 64);
            dj_status st = dj_cf_encode_array_isa(isa, T->f, T->bias, x + off, out + es * off, len, r, index0 + off, &fl);
            CHECK(st == DJ_OK, "encode_array_isa(%s) status %d", dj_isa_name(isa), (int)st);
            int bad = 0;
            for (size_t i = off; i < off + len; i++) {
                wantfl |= wfl[i];
                uint32_t got = get_code(F, out, i);
                if (got != want[i] && bad++ < 3)
                    CHECK(0, "%s %s bias %d isa %s x=0x%08X (%a) index %llu: bulk 0x%X, scalar 0x%X", mode, F->name,
                          T->bias, dj_isa_name(isa), r_f2u(x[i]), (double)x[i], (unsigned long long)(index0 + i), got,
                          want[i]);
            }
            char a[8], b[8];
            CHECK(bad == 0, "%s %s bias %d isa %s window [%zu,+%zu): %d mismatches", mode, F->name, T->bias,
                  dj_isa_name(isa), off, len, bad);
            CHECK(fl == wantfl, "%s %s bias %d isa %s window [%zu,+%zu): flags %s, scalar %s", mode, F->name, T->bias,
                  dj_isa_name(isa), off, len, r_flags_txt(fl, a), r_flags_txt(wantfl, b));
            if (off > 0) CHECK(get_code(F, out, off - 1) == (F->bits == 8 ? 0xA5u : 0xA5A5u), "wrote before out");
            if (off + len < n + 1) CHECK(get_code(F, out, off + len) == (F->bits == 8 ? 0xA5u : 0xA5A5u), "wrote past n");
        }
        /* per-element flags through the bulk path (n = 1, and a short run) */
        for (int t = 0; t < 300; t++) {
            size_t i = r_rand32(rng) % n;
            unsigned fl = 0;
            CHECK(dj_cf_encode_array_isa(isa, T->f, T->bias, x + i, out, 1, r, index0 + i, &fl) == DJ_OK &&
                      get_code(F, out, 0) == want[i] && fl == wfl[i],
                  "%s %s bias %d isa %s single x=0x%08X: bulk 0x%X flags 0x%X, scalar 0x%X flags 0x%X", mode, F->name,
                  T->bias, dj_isa_name(isa), r_f2u(x[i]), get_code(F, out, 0), fl, want[i], wfl[i]);
        }
    }
    free(want);
    free(wfl);
    free(out);
}

static void part_d(uint64_t *rng)
{
    for (int f = 0; f < DJ_FMT_COUNT; f++) {
        const rfmt *F = rf((dj_format)f);
        int biases[8], nb = 0;
        if (F->bmin == F->bmax)
            biases[nb++] = F->bmin;
        else {
            biases[nb++] = 0;
            biases[nb++] = F->bdef;
            biases[nb++] = 40;
            biases[nb++] = 63;
        }
        for (int k = 0; k < nb; k++) {
            rtab T;
            if (!r_tab_build(&T, (dj_format)f, biases[k])) continue;
            r_vec all = {0}, v = {0};
            r_push_table_inputs(&all, &T, rng, 3000);
            r_push_specials(&v, rng);
            /* a sample of the table inputs (all of them for 8-bit formats) */
            size_t step = F->bits == 8 ? 1 : (R_SANITIZED ? 40 : 8);
            for (size_t i = r_rand32(rng) % step; i < all.n; i += step)
                r_push(&v, all.x[i]);
            for (int i = 0; i < 2000; i++)
                r_push(&v, r_u2f(r_rand32(rng)));
            r_push_specials(&v, rng);
            /* shuffle so that specials sit in every vector lane */
            for (size_t i = v.n - 1; i > 0; i--) {
                size_t j = r_rand32(rng) % (i + 1);
                float t = v.x[i];
                v.x[i] = v.x[j];
                v.x[j] = t;
            }
            dj_round rn = {DJ_ROUND_NEAREST, 0};
            isa_compare(&T, v.x, v.n, rn, 0, rng);
            isa_compare(&T, v.x, v.n, sr(r_rand64(rng)), r_rand64(rng) >> 1, rng);
            isa_compare(&T, v.x, v.n, sr(7), 0xFFFFFFFFull - 100, rng); /* index crosses 2^32 */
            free(all.x);
            free(v.x);
            r_tab_free(&T);
        }
    }
}

/* ---- (e) bf16 <-> CFloat8 ---- */

static void part_e(uint64_t *rng)
{
    size_t n = 65536;
    uint16_t *h = (uint16_t *)malloc(n * 2);
    float *w = (float *)malloc(n * sizeof(float));
    uint8_t *o1 = (uint8_t *)malloc(n), *o2 = (uint8_t *)malloc(n);
    if (!h || !w || !o1 || !o2) exit(2);
    for (size_t i = 0; i < n; i++) {
        h[i] = (uint16_t)i;
        w[i] = r_u2f((uint32_t)i << 16);
        CHECK(r_f2u(dj_bf16_to_f32((uint16_t)i)) == (uint32_t)i << 16, "dj_bf16_to_f32");
    }
    static const int biases[] = {0, 7, 15, 31, 63};
    for (int f = DJ_FMT_CF8_143; f <= DJ_FMT_CF8_152; f++) {
        for (size_t k = 0; k < 5; k++) {
            int b = biases[k];
            for (int m = 0; m < 2; m++) {
                dj_round r = m ? sr(r_rand64(rng)) : (dj_round){DJ_ROUND_NEAREST, 0};
                uint64_t index0 = m ? r_rand64(rng) >> 2 : 0;
                unsigned f1 = 0, f2 = 0;
                dj_cf_encode_bf16_array((dj_format)f, b, h, o1, n, r, index0, &f1);
                dj_cf_encode_array((dj_format)f, b, w, o2, n, r, index0, &f2);
                int bad = 0;
                for (size_t i = 0; i < n; i++)
                    if (o1[i] != o2[i] && bad++ < 3)
                        CHECK(0, "bf16->%s bias %d %s: bf16 0x%04zX gives 0x%02X, float32 path 0x%02X",
                              rf((dj_format)f)->name, b, m ? "SR" : "RN", i, o1[i], o2[i]);
                CHECK(bad == 0 && f1 == f2, "bf16->%s bias %d %s: %d mismatches, flags 0x%X vs 0x%X",
                      rf((dj_format)f)->name, b, m ? "SR" : "RN", bad, f1, f2);
                /* and per element against the scalar reference path */
                bad = 0;
                for (size_t i = 0; i < n; i += 7) {
                    unsigned f3 = 0;
                    bad += dj_cf_encode((dj_format)f, b, w[i], r, index0 + i, &f3) != o1[i];
                }
                CHECK(bad == 0, "bf16->%s bias %d: %d differ from dj_cf_encode", rf((dj_format)f)->name, b, bad);
            }
        }
        /* CFloat8 -> bf16, every code at every bias */
        for (int b = 0; b < 64; b++) {
            uint8_t c8[256];
            uint16_t o16[256];
            unsigned fl = 0, want = 0;
            for (int c = 0; c < 256; c++)
                c8[c] = (uint8_t)c;
            dj_cf_decode_to_bf16_array((dj_format)f, b, c8, o16, 256, &fl);
            for (int c = 0; c < 256; c++) {
                unsigned f1 = 0;
                float d = dj_cf_decode((dj_format)f, b, (uint32_t)c, &f1);
                want |= f1;
                float ref = (float)r_decode(rf((dj_format)f), b, (uint32_t)c);
                CHECK((r_f2u(ref) & 0xFFFFu) == 0, "%s bias %d code 0x%02X is not a bf16 value", rf((dj_format)f)->name,
                      b, c);
                CHECK(o16[c] == r_f2u(ref) >> 16 && o16[c] == r_f2u(d) >> 16,
                      "%s bias %d code 0x%02X -> bf16 0x%04X, want 0x%04X", rf((dj_format)f)->name, b, c, o16[c],
                      r_f2u(ref) >> 16);
            }
            CHECK(fl == want && want == DJ_FLAG_DENORMAL, "%s bias %d -> bf16 flags 0x%X, want 0x%X",
                  rf((dj_format)f)->name, b, fl, want);
        }
    }
    free(h);
    free(w);
    free(o1);
    free(o2);
}

int main(void)
{
    uint64_t rng = 0x5742A11Eull;
    static void (*const parts[])(uint64_t *) = {part_a, part_b, part_c, part_d, part_e};
    for (int i = 0; i < 5; i++) {
        clock_t t = clock();
        parts[i](&rng);
        printf("test_sr: part (%c) took %.2f s cpu\n", 'a' + i, (double)(clock() - t) / CLOCKS_PER_SEC);
        fflush(stdout);
    }
    return th_done("test_sr");
}
