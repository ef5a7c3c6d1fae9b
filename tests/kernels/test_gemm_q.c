/* test_gemm_q.c - dj_gemm_q, the GEMM on operands of any kind (float32,
 * bfloat16 bits, 8-bit codes through a table).
 *
 * The contract (kernels.h) is exact: dj_gemm_q equals dj_sgemm run on float
 * arrays holding the decoded values, bit for bit. So every check here is a
 * memcmp against the float32 kernel on the same ISA and thread count, over
 * every ISA this CPU runs, 1 and 2 threads, all four transposes, every pair
 * of operand kinds, tiny and odd shapes (M = 1..8, edge tiles, K and N
 * beyond a cache block), alpha/beta variants, padded leading dimensions,
 * the caller's workspace or none, and tables holding NaN and Inf. C's
 * padding columns must stay untouched.
 *
 * Also: dj_cf_decode_lut8 against dj_cf_decode for every 8-bit format, and
 * a round trip of all 256 codes of NaN-free tables through the GEMM (codes
 * times an identity matrix give back each code's value, which encodes back
 * to the code). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dojo/cfloat.h"
#include "harness.h"
#include "kernels/gemm_internal.h"
#include "opd_operand.h"

#define SENTINEL 12345.0f

/* The tables of the tests: CFloat8_1_4_3 at bias 7 (every code a number),
 * and OCP E4M3 with a scale of 2^-3 (two NaN codes, kept out of the random
 * data unless a test wants them). */
static float lut_cf8[256], lut_e4m3[256];


static void fill_c(float *C, const float *C0, int M, int N, int ldc)
{
    for (int i = 0; i < M; i++)
        for (int j = 0; j < ldc; j++)
            C[(size_t)i * ldc + j] = j >= N ? SENTINEL : C0[(size_t)i * ldc + j];
}

typedef struct {
    int M, N, K;
    int all_kinds; /* 1: every pair of kinds; 0: a few (the big shapes) */
} shape;

static const shape shapes[] = {
    {1, 1, 1, 1},    {1, 17, 5, 1},    {2, 9, 7, 1},     {3, 33, 13, 1},   {4, 16, 64, 1},
    {5, 5, 1, 1},    {6, 31, 17, 1},   {7, 1, 3, 1},     {8, 40, 29, 1},   {13, 17, 19, 1},
    {33, 65, 70, 1}, {50, 37, 300, 1}, {45, 53, 61, 1},  {1, 300, 600, 0}, {300, 1, 600, 0},
    /* threaded: packed B shared, A per thread, several k blocks */
    {150, 130, 260, 0}, {97, 203, 530, 0},
    /* N beyond one column block */
    {7, 4200, 5, 0},
};

typedef struct {
    float alpha, beta;
} scalars;

static const scalars variants[] = {{1.0f, 0.0f}, {-0.75f, 0.5f}};

/* One shape, one pair of kinds, every transpose, ISA and pool. */
static void check_shape(const shape *s, dj_opd_kind ka, dj_opd_kind kb, dj_pool **pools,
                        int npools)
{
    const int M = s->M, N = s->N, K = s->K;
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            const int ar = ta ? K : M, ac = ta ? M : K, br = tb ? N : K, bc = tb ? K : N;
            const int lda = ac + (ta ? 3 : 1), ldb = bc + (tb ? 2 : 0), ldc = N + 3;
            operand A, B;
            make_operand(&A, ka, (size_t)ar * lda, lut_cf8);
            make_operand(&B, kb, (size_t)br * ldb, lut_e4m3);
            float *C0 = malloc((size_t)M * ldc * sizeof *C0);
            float *Cq = malloc((size_t)M * ldc * sizeof *Cq);
            float *Cf = malloc((size_t)M * ldc * sizeof *Cf);
            float *C1 = malloc((size_t)M * ldc * sizeof *C1);
            for (size_t i = 0; i < (size_t)M * ldc; i++)
                C0[i] = frand();
            const int nv = s->all_kinds ? 2 : 1;
            for (int v = 0; v < nv; v++) {
                const float alpha = variants[v].alpha, beta = variants[v].beta;
                for (int isa = DJ_ISA_GENERIC; isa < DJ_ISA_COUNT; isa++) {
                    if (!dj_cpu_supports((dj_isa)isa))
                        continue;
                    for (int t = 0; t < npools; t++) {
                        const int T = dj_pool_threads(pools[t]);
                        fill_c(Cf, C0, M, N, ldc);
                        dj__sgemm_isa((dj_isa)isa, pools[t], ta, tb, M, N, K, alpha, A.dec, lda,
                                      B.dec, ldb, beta, Cf, ldc, NULL);
                        /* once with no workspace, once with exactly the one asked for */
                        for (int use_ws = 0; use_ws < 2; use_ws++) {
                            const size_t wsn = dj_gemm_q_workspace(M, N, K, T);
                            float *ws = use_ws && wsn ? malloc(wsn * sizeof *ws) : NULL;
                            fill_c(Cq, C0, M, N, ldc);
                            dj__gemm_q_isa((dj_isa)isa, pools[t], ta, tb, M, N, K, alpha, A.opd,
                                           lda, B.opd, ldb, beta, Cq, ldc, ws);
                            CHECK(memcmp(Cq, Cf, (size_t)M * ldc * sizeof *Cq) == 0,
                                  "%s T=%d %dx%dx%d ta=%d tb=%d A=%s B=%s alpha=%g beta=%g ws=%d: "
                                  "dj_gemm_q differs from dj_sgemm on the decoded values",
                                  dj_isa_name((dj_isa)isa), T, M, N, K, ta, tb, kind_name(ka),
                                  kind_name(kb), alpha, beta, use_ws);
                            free(ws);
                        }
                        if (t == 0)
                            memcpy(C1, Cq, (size_t)M * ldc * sizeof *C1);
                        else
                            CHECK(memcmp(C1, Cq, (size_t)M * ldc * sizeof *C1) == 0,
                                  "%s %dx%dx%d ta=%d tb=%d A=%s B=%s: T=%d differs from 1 thread",
                                  dj_isa_name((dj_isa)isa), M, N, K, ta, tb, kind_name(ka),
                                  kind_name(kb), T);
                    }
                }
            }
            free_operand(&A);
            free_operand(&B);
            free(C0);
            free(Cq);
            free(Cf);
            free(C1);
        }
}

static void test_shapes(dj_pool **pools, int npools)
{
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        const shape *s = &shapes[i];
        for (int ka = DJ_OPD_F32; ka <= DJ_OPD_U8; ka++)
            for (int kb = DJ_OPD_F32; kb <= DJ_OPD_U8; kb++) {
                /* the big shapes: the diagonal and two mixed pairs */
                if (!s->all_kinds && ka != kb && !(ka == DJ_OPD_U8 && kb == DJ_OPD_F32) &&
                    !(ka == DJ_OPD_F32 && kb == DJ_OPD_BF16))
                    continue;
                check_shape(s, (dj_opd_kind)ka, (dj_opd_kind)kb, pools, npools);
            }
    }
}

/* The float32 operands through dj_gemm_q are dj_sgemm / dj_sgemm_ws. */
static void test_f32_wrapper(dj_pool *pool)
{
    const int M = 77, N = 301, K = 290, T = dj_pool_threads(pool);
    operand A, B;
    make_operand(&A, DJ_OPD_F32, (size_t)K * M, NULL);
    make_operand(&B, DJ_OPD_F32, (size_t)N * K, NULL);
    float *C1 = malloc((size_t)M * N * sizeof *C1), *C2 = malloc((size_t)M * N * sizeof *C2);
    const size_t wsn = dj_gemm_q_workspace(M, N, K, T);
    CHECK(wsn == dj_sgemm_workspace(M, N, K, T), "dj_gemm_q_workspace %zu != dj_sgemm_workspace",
          wsn);
    float *ws = malloc(wsn * sizeof *ws);
    dj_sgemm(pool, 1, 0, M, N, K, 0.5f, A.dec, M, B.dec, N, 0.0f, C1, N);
    dj_gemm_q(pool, 1, 0, M, N, K, 0.5f, A.opd, M, B.opd, N, 0.0f, C2, N, ws);
    CHECK(memcmp(C1, C2, (size_t)M * N * sizeof *C1) == 0, "dj_gemm_q(f32) differs from dj_sgemm");
    dj_gemm_q(pool, 1, 0, M, N, K, 0.5f, A.opd, M, B.opd, N, 0.0f, C2, N, NULL);
    CHECK(memcmp(C1, C2, (size_t)M * N * sizeof *C1) == 0,
          "dj_gemm_q(f32, no workspace) differs from dj_sgemm");
    free_operand(&A);
    free_operand(&B);
    free(C1);
    free(C2);
    free(ws);
}

/* NaN and Inf in the table propagate exactly as in float32. */
static void test_specials(dj_pool *pool)
{
    float lut[256];
    dj_cf_decode_lut8(DJ_FMT_E5M2, 15, 0, lut); /* +-Inf at 0x7C/0xFC, NaNs above */
    const int M = 23, N = 19, K = 37;
    uint8_t *A = malloc((size_t)M * K), *B = malloc((size_t)K * N);
    float *Af = malloc((size_t)M * K * sizeof *Af), *Bf = malloc((size_t)K * N * sizeof *Bf);
    float *Cq = malloc((size_t)M * N * sizeof *Cq), *Cf = malloc((size_t)M * N * sizeof *Cf);
    for (int i = 0; i < M * K; i++) {
        A[i] = (uint8_t)(urand() % 61 == 0 ? 0x7C + urand() % 4 : urand() % 0x70);
        Af[i] = lut[A[i]];
    }
    for (int i = 0; i < K * N; i++) {
        B[i] = (uint8_t)(urand() % 53 == 0 ? 0xFC + urand() % 4 : 0x80 + urand() % 0x70);
        Bf[i] = lut[B[i]];
    }
    dj_lut8_form form;
    CHECK(dj_lut8_form_of(lut, &form) && form.special == 0x7C, "E5M2: form special %#x",
          form.special);
    long nonfinite = 0;
    for (int isa = DJ_ISA_GENERIC; isa < DJ_ISA_COUNT; isa++) {
        if (!dj_cpu_supports((dj_isa)isa))
            continue;
        for (int tb = 0; tb < 2; tb++)
            for (int use_form = 0; use_form < 2; use_form++) {
                const dj_lut8_form *fp = use_form ? &form : NULL;
                dj__sgemm_isa((dj_isa)isa, pool, 0, tb, M, N, K, 1.0f, Af, K, Bf, tb ? K : N, 0.0f,
                              Cf, N, NULL);
                dj__gemm_q_isa((dj_isa)isa, pool, 0, tb, M, N, K, 1.0f, dj_opd_u8_form(A, lut, fp),
                               K, dj_opd_u8_form(B, lut, fp), tb ? K : N, 0.0f, Cq, N, NULL);
                CHECK(memcmp(Cq, Cf, (size_t)M * N * sizeof *Cq) == 0,
                      "%s tb=%d form=%d: NaN/Inf operands: dj_gemm_q differs from dj_sgemm",
                      dj_isa_name((dj_isa)isa), tb, use_form);
                for (int i = 0; i < M * N; i++)
                    nonfinite += !isfinite(Cf[i]);
            }
    }
    CHECK(nonfinite > 0, "the specials test produced no NaN/Inf");
    free(A);
    free(B);
    free(Af);
    free(Bf);
    free(Cq);
    free(Cf);
}

/* dj_cf_decode_lut8 is dj_cf_decode (scaled) code by code. */
static void test_lut(void)
{
    static const struct {
        dj_format f;
        int bias, scale;
    } cases[] = {
        {DJ_FMT_CF8_143, 0, 0},  {DJ_FMT_CF8_143, 7, 0},  {DJ_FMT_CF8_143, 63, 0},
        {DJ_FMT_CF8_152, 15, 0}, {DJ_FMT_CF8_152, 40, 0}, {DJ_FMT_E4M3, 7, 0},
        {DJ_FMT_E4M3, 7, -5},    {DJ_FMT_E4M3, 7, 9},     {DJ_FMT_E5M2, 15, 0},
        {DJ_FMT_E5M2, 15, 3},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        float lut[256];
        const dj_format f = cases[c].f;
        dj_cf_decode_lut8(f, cases[c].bias, cases[c].scale, lut);
        long bad = 0;
        for (uint32_t code = 0; code < 256; code++) {
            unsigned flags = 0;
            const float v = dj_cf_decode(f, cases[c].bias, code, &flags);
            const dj_class cl = dj_format_classify(f, code);
            if (cl == DJ_CLASS_NAN)
                bad += !isnan(lut[code]) || !(f32_bits(lut[code]) & 0x00400000u) ||
                       !!signbit(lut[code]) != !!(code & 0x80);
            else if (cl == DJ_CLASS_INF)
                bad += !isinf(lut[code]) || !!signbit(lut[code]) != !!(code & 0x80);
            else
                bad += f32_bits(lut[code]) != f32_bits(ldexpf(v, -cases[c].scale)) ||
                       (double)lut[code] != ldexp((double)v, -cases[c].scale);
        }
        CHECK(bad == 0, "dj_cf_decode_lut8(%s, bias %d, scale %d): %ld codes wrong",
              dj_format_desc_of(f)->name, cases[c].bias, cases[c].scale, bad);
    }
}

/* All 256 codes of a NaN-free (and Inf-free) table as a 16 x 16 operand,
 * times an identity: each element of C is one code's value (a sum of it
 * and zeros; -0 may come back as +0), which encodes back to the code. Both
 * sides, both transposes, every ISA. */
static void test_roundtrip(dj_pool *pool)
{
    static const struct {
        dj_format f;
        int bias;
    } cases[] = {{DJ_FMT_CF8_143, 0}, {DJ_FMT_CF8_143, 7}, {DJ_FMT_CF8_152, 15},
                 {DJ_FMT_CF8_152, 63}};
    uint8_t codes[256];
    float eye[256], C[256];
    for (int i = 0; i < 256; i++) {
        codes[i] = (uint8_t)i;
        eye[i] = i / 16 == i % 16 ? 1.0f : 0.0f;
    }
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        float lut[256];
        const dj_format f = cases[c].f;
        const int bias = cases[c].bias;
        dj_cf_decode_lut8(f, bias, 0, lut);
        long nan = 0;
        for (int i = 0; i < 256; i++)
            nan += !isfinite(lut[i]);
        CHECK(nan == 0, "%s: the table has %ld non-finite values", dj_format_desc_of(f)->name, nan);
        for (int isa = DJ_ISA_GENERIC; isa < DJ_ISA_COUNT; isa++) {
            if (!dj_cpu_supports((dj_isa)isa))
                continue;
            for (int side = 0; side < 2; side++)
                for (int tr = 0; tr < 2; tr++) {
                    /* side 0: C = op(codes) * I; side 1: C = I * op(codes). With
                     * tr the codes are read transposed, so C holds code j * 16 + i
                     * at (i, j). */
                    const dj_opd q = dj_opd_u8(codes, lut), e = dj_opd_f32(eye);
                    if (side == 0)
                        dj__gemm_q_isa((dj_isa)isa, pool, tr, 0, 16, 16, 16, 1.0f, q, 16, e, 16,
                                       0.0f, C, 16, NULL);
                    else
                        dj__gemm_q_isa((dj_isa)isa, pool, 0, tr, 16, 16, 16, 1.0f, e, 16, q, 16,
                                       0.0f, C, 16, NULL);
                    long bad = 0;
                    for (int i = 0; i < 16; i++)
                        for (int j = 0; j < 16; j++) {
                            const int code = tr ? j * 16 + i : i * 16 + j;
                            const float got = C[i * 16 + j];
                            const dj_round rn = {DJ_ROUND_NEAREST, 0};
                            unsigned flags = 0;
                            const uint32_t back = dj_cf_encode(f, bias, got, rn, 0, &flags);
                            if (got != lut[code])
                                bad++;
                            else if (lut[code] != 0.0f ? back != (uint32_t)code
                                                       : (back & 0x7F) != 0)
                                bad++;
                        }
                    CHECK(bad == 0, "%s bias %d %s side=%d tr=%d: %ld codes do not round-trip",
                          dj_format_desc_of(f)->name, bias, dj_isa_name((dj_isa)isa), side, tr,
                          bad);
                }
        }
    }
}

/* The paths for few rows of C. The streaming path gives the blocked path's
 * bits; the dot-product kernel (AVX2 and AVX-512, transposed B, M <= 8)
 * sums in another order, so it is checked against the blocked result
 * within the float32 error bound of a K-term dot product (2 K 2^-24
 * sum |a b|, both paths' errors). Every path gives, for 8-bit operands
 * (with and without the table's forms; an E4M3 table with the arithmetic
 * form, a CFloat8 one with the nibble form too), the bits of float32
 * operands holding the decoded values; every transpose, ISA and thread
 * count; and the counters show that each path is the one these shapes
 * take. */
typedef enum { PATH_BLOCKED, PATH_STREAM, PATH_DOT } gemm_path;

static long run_path(gemm_path path, dj_isa isa, dj_pool *pool, int ta, int tb, int M, int N, int K,
                     dj_opd A, dj_opd B, float *C)
{
    const int saved_panels = dj__sgemm_stream_panels, saved_dot = dj__sgemm_dot_on;
    dj__sgemm_stream_panels = path == PATH_BLOCKED ? 0 : saved_panels;
    dj__sgemm_dot_on = path == PATH_DOT;
    const long s0 = dj__sgemm_stream_calls, d0 = dj__sgemm_dot_calls;
    dj__gemm_q_isa(isa, pool, ta, tb, M, N, K, 1.0f, A, ta ? M : K, B, tb ? K : N, 0.0f, C, N,
                   NULL);
    dj__sgemm_stream_panels = saved_panels;
    dj__sgemm_dot_on = saved_dot;
    return (dj__sgemm_stream_calls - s0) * 10 + (dj__sgemm_dot_calls - d0);
}

static void test_few_rows(dj_pool **pools, int npools)
{
    /* the dot kernel's scaled form (8-bit B of the CFloat8 table) runs from
     * 128 columns on: M = 1..8, odd N, K below 8 and with partial groups */
    static const int sshapes[][3] = {{1, 300, 600}, {3, 129, 700}, {6, 300, 256}, {7, 200, 1030},
                                    {12, 70, 900},  {2, 4100, 64}, {8, 77, 1003}, {5, 40, 4099},
                                    {6, 90, 1000},  {4, 131, 1003}, {8, 129, 777}, {5, 701, 35},
                                    {8, 3001, 7},   {2, 257, 241}};
    long dot_runs = 0;
    const long sc0 = dj__sgemm_dot_sc_calls;
    for (size_t s = 0; s < sizeof sshapes / sizeof sshapes[0]; s++) {
        const int M = sshapes[s][0], N = sshapes[s][1], K = sshapes[s][2];
        /* 3, 4: 8-bit B of the CFloat8 table, 4 with its forms (the operands
         * alternate between form and none, and A takes one of each pair) */
        for (int kind = 0; kind < 5; kind++)
            for (int ta = 0; ta < 2; ta++)
                for (int tb = 0; tb < 2; tb++) {
                    const dj_opd_kind k = kind == 0 ? DJ_OPD_F32 : kind == 1 ? DJ_OPD_BF16 : DJ_OPD_U8;
                    operand A, B;
                    make_operand(&A, k, (size_t)M * K, lut_cf8);
                    make_operand(&B, k, (size_t)K * N, kind >= 3 ? lut_cf8 : lut_e4m3);
                    if (kind == 4 && !B.form && (B.form = malloc(sizeof *B.form)) != NULL) {
                        CHECK(dj_lut8_form_of(lut_cf8, B.form), "CFloat8 has a form");
                        B.opd = dj_opd_u8_form(B.mem, lut_cf8, B.form);
                    }
                    /* bound[i, j] = 2 K 2^-24 sum_p |a(i, p) b(p, j)| */
                    double *bound = malloc((size_t)M * N * sizeof *bound);
                    for (int i = 0; i < M; i++)
                        for (int jj = 0; jj < N; jj++) {
                            double sa = 0;
                            for (int p = 0; p < K; p++)
                                sa += fabs((double)A.dec[ta ? (size_t)p * M + i : (size_t)i * K + p] *
                                           (double)B.dec[tb ? (size_t)jj * K + p : (size_t)p * N + jj]);
                            bound[(size_t)i * N + jj] = 2.0 * K * ldexp(sa, -24);
                        }
                    float *Cb = malloc((size_t)M * N * sizeof *Cb);
                    float *Cq = malloc((size_t)M * N * sizeof *Cq);
                    float *Cf = malloc((size_t)M * N * sizeof *Cf);
                    for (int isa = DJ_ISA_GENERIC; isa < DJ_ISA_COUNT; isa++) {
                        if (!dj_cpu_supports((dj_isa)isa))
                            continue;
                        const dj__sgemm_kernel *kd = dj__sgemm_kernel_for((dj_isa)isa);
                        for (int t = 0; t < npools; t++) {
                            const int T = dj_pool_threads(pools[t]);
                            CHECK(run_path(PATH_BLOCKED, (dj_isa)isa, pools[t], ta, tb, M, N, K,
                                           A.opd, B.opd, Cb) == 0,
                                  "%s %dx%dx%d: the blocked run took another path",
                                  dj_isa_name((dj_isa)isa), M, N, K);
                            for (gemm_path path = PATH_STREAM; path <= PATH_DOT; path++) {
                                const int dot = path == PATH_DOT && kd->dot_nt && tb && M <= DJ_DOT_MAX_M;
                                const int stream = !dot && M <= 2 * kd->mr;
                                const long took = run_path(path, (dj_isa)isa, pools[t], ta, tb, M,
                                                           N, K, A.opd, B.opd, Cq);
                                run_path(path, (dj_isa)isa, pools[t], ta, tb, M, N, K,
                                         dj_opd_f32(A.dec), dj_opd_f32(B.dec), Cf);
                                CHECK(took == stream * 10 + dot,
                                      "%s %dx%dx%d ta=%d tb=%d path %d: counters say %ld",
                                      dj_isa_name((dj_isa)isa), M, N, K, ta, tb, (int)path, took);
                                CHECK(memcmp(Cq, Cf, (size_t)M * N * sizeof *Cq) == 0,
                                      "%s T=%d %dx%dx%d ta=%d tb=%d %s path %d: differs from float32 "
                                      "on the decoded values", dj_isa_name((dj_isa)isa), T, M, N, K,
                                      ta, tb, kind_name(k), (int)path);
                                long bad = 0;
                                for (size_t e = 0; e < (size_t)M * N; e++)
                                    bad += dot ? !(fabs((double)Cq[e] - (double)Cb[e]) <= bound[e])
                                               : f32_bits(Cq[e]) != f32_bits(Cb[e]);
                                dot_runs += dot;
                                CHECK(bad == 0,
                                      "%s T=%d %dx%dx%d ta=%d tb=%d %s path %d: %ld elements off "
                                      "the blocked result", dj_isa_name((dj_isa)isa), T, M, N, K,
                                      ta, tb, kind_name(k), (int)path, bad);
                            }
                        }
                    }
                    free(bound);
                    free(Cb);
                    free(Cq);
                    free(Cf);
                    free_operand(&A);
                    free_operand(&B);
                }
    }
    CHECK(dot_runs > 0 || !dj_cpu_supports(DJ_ISA_AVX2), "the dot-product kernel never ran");
    CHECK(dj__sgemm_dot_sc_calls > sc0 || !dj_cpu_supports(DJ_ISA_AVX2),
          "the dot-product kernel never decoded by the scaled form");

    /* The dot kernel pads a partial last vector of B with code 0 and must
     * mask it: a table whose code 0 is NaN, data without code 0. */
    float lut[256];
    memcpy(lut, lut_e4m3, sizeof lut);
    lut[0] = NAN;
    const int M = 3, N = 50, K = 1003;
    uint8_t *b = malloc((size_t)N * K);
    float *A = malloc((size_t)M * K * sizeof *A), *Bf = malloc((size_t)N * K * sizeof *Bf);
    float *Cq = malloc((size_t)M * N * sizeof *Cq), *Cf = malloc((size_t)M * N * sizeof *Cf);
    for (int i = 0; i < M * K; i++)
        A[i] = frand();
    for (int i = 0; i < N * K; i++) {
        b[i] = (uint8_t)(1 + urand() % 0x7e);
        Bf[i] = lut[b[i]];
    }
    for (int isa = DJ_ISA_GENERIC; isa < DJ_ISA_COUNT; isa++) {
        if (!dj_cpu_supports((dj_isa)isa))
            continue;
        dj__gemm_q_isa((dj_isa)isa, pools[0], 0, 1, M, N, K, 1.0f, dj_opd_f32(A), K, dj_opd_u8(b, lut),
                       K, 0.0f, Cq, N, NULL);
        dj__gemm_q_isa((dj_isa)isa, pools[0], 0, 1, M, N, K, 1.0f, dj_opd_f32(A), K, dj_opd_f32(Bf),
                       K, 0.0f, Cf, N, NULL);
        long nonfinite = 0;
        for (int i = 0; i < M * N; i++)
            nonfinite += !isfinite(Cq[i]);
        CHECK(nonfinite == 0 && memcmp(Cq, Cf, (size_t)M * N * sizeof *Cq) == 0,
              "%s: a NaN at code 0 of the table leaked into %ld results (or bits differ)",
              dj_isa_name((dj_isa)isa), nonfinite);
    }
    free(b);
    free(A);
    free(Bf);
    free(Cq);
    free(Cf);
}

/* The dot kernel's scaled form multiplies A by 2^sc_exp (2^(126 - bias)
 * for CFloat8) where that is exact, else decodes B as before: either way
 * the bits of float32 B holding the decoded values, on 1 and 2 threads.
 * A in [-1, 1), with denormals, Inf and NaN: scaled; A with a value that
 * would overflow (1e30 at bias 7; 4 at bias 0, where the factor is 2^126;
 * 4e19 at bias 63, where it is 2^63):
 * not. B holds every code, denormals and -0 among them. */
static void test_scaled_a(dj_pool **pools, int npools)
{
    if (!dj_cpu_supports(DJ_ISA_AVX2))
        return;
    static const struct {
        int bias;
        float special; /* put in A's element 5 of each row (0: none) */
        int denormals, scaled;
    } cases[] = {{7, 0.0f, 0, 1},      {7, 0.0f, 1, 1},      {7, INFINITY, 0, 1},
                 {7, -INFINITY, 1, 1}, {7, NAN, 0, 1},       {7, 1e30f, 0, 0},
                 {0, 0.0f, 0, 1},      {0, 4.0f, 0, 0},      {0, 3.99f, 0, 1},
                 {63, 1e18f, 1, 1},    {63, 4e19f, 0, 0}};
    const int N = 400, K = 300;
    uint8_t *b = malloc((size_t)N * K);
    float *A = malloc((size_t)8 * K * sizeof *A), *Bf = malloc((size_t)N * K * sizeof *Bf);
    float *Cq = malloc((size_t)8 * N * sizeof *Cq), *Cf = malloc((size_t)8 * N * sizeof *Cf);
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        float lut[256];
        dj_lut8_form form;
        dj_cf_decode_lut8(DJ_FMT_CF8_143, cases[c].bias, 0, lut);
        CHECK(dj_lut8_form_of(lut, &form) && dj__dot_sc_form(&form), "bias %d: no scaled form",
              cases[c].bias);
        for (int i = 0; i < N * K; i++) {
            b[i] = (uint8_t)(i % 256 ^ urand() % 2 * 0x80);
            Bf[i] = lut[b[i]];
        }
        for (int M = 1; M <= 8; M++) {
            for (int i = 0; i < M * K; i++) {
                A[i] = frand();
                if (cases[c].denormals && i % 3 == 0)
                    A[i] *= 0x1p-130f;
            }
            for (int i = 0; i < M; i++)
                if (cases[c].special != 0.0f)
                    A[i * K + 5] = cases[c].special;
            for (int t = 0; t < npools; t++) {
                const long s0 = dj__sgemm_dot_sc_calls;
                dj__gemm_q_isa(DJ_ISA_AVX2, pools[t], 0, 1, M, N, K, 1.0f, dj_opd_f32(A), K,
                               dj_opd_u8_form(b, lut, &form), K, 0.0f, Cq, N, NULL);
                const long took = dj__sgemm_dot_sc_calls - s0;
                dj__gemm_q_isa(DJ_ISA_AVX2, pools[t], 0, 1, M, N, K, 1.0f, dj_opd_f32(A), K,
                               dj_opd_f32(Bf), K, 0.0f, Cf, N, NULL);
                CHECK(took == cases[c].scaled, "bias %d special %g M=%d: scaled %ld times, not %d",
                      cases[c].bias, (double)cases[c].special, M, took, cases[c].scaled);
                CHECK(memcmp(Cq, Cf, (size_t)M * N * sizeof *Cq) == 0,
                      "bias %d special %g denormals %d M=%d T=%d: differs from float32",
                      cases[c].bias, (double)cases[c].special, cases[c].denormals, M,
                      dj_pool_threads(pools[t]));
            }
        }
    }
    free(b);
    free(A);
    free(Bf);
    free(Cq);
    free(Cf);
}

/* dj_lut8_form_of finds the arithmetic form of every 8-bit format's table
 * at every bias (CFloat8) and every scale that gives an effective bias
 * 0..63 (OCP): the format's mantissa width, the table read only for NaN and
 * Inf codes, and the nibble form for the CFloat8 tables (not the OCP ones,
 * whose NaN and Inf codes break it); every ISA's decoder gives the table's
 * bits for all 256 codes with the forms. Tables without a form (random, or
 * one entry changed) get none or a smaller `special`, and still decode to
 * the table's bits. */
static void test_forms(void)
{
    static const struct {
        dj_format f;
        int mbits, special, nib, sc;
    } fmts[] = {{DJ_FMT_CF8_143, 3, 0x80, 1, 1}, {DJ_FMT_CF8_152, 2, 0x80, 1, 1},
                {DJ_FMT_E4M3, 3, 0x7F, 0, 0},    {DJ_FMT_E5M2, 2, 0x7C, 0, 0}};
    uint8_t all[256 + 3];
    for (int i = 0; i < 256 + 3; i++)
        all[i] = (uint8_t)i;
    long bad = 0, tables = 0;
    for (size_t c = 0; c < sizeof fmts / sizeof fmts[0]; c++) {
        const dj_format f = fmts[c].f;
        const dj_format_desc *d = dj_format_desc_of(f);
        const int ocp = f == DJ_FMT_E4M3 || f == DJ_FMT_E5M2;
        for (int eb = 0; eb <= 63; eb++) {
            float lut[256];
            if (ocp)
                dj_cf_decode_lut8(f, d->bias_default, eb - d->bias_default, lut);
            else
                dj_cf_decode_lut8(f, eb, 0, lut);
            dj_lut8_form form;
            tables++;
            /* the scaled form: CFloat denormals, lut = 2^(126 - bias) * the
             * float of the moved fields (the smallest normal code, a = 1 << mbits,
             * moves to 2^-126 and its exponent is raised by one) */
            if (!dj_lut8_form_of(lut, &form) || form.mbits != fmts[c].mbits ||
                form.special != fmts[c].special || form.nib != fmts[c].nib ||
                form.sc != fmts[c].sc ||
                (form.sc && (form.sc_exp != 126 - eb || form.sc_den != 1 << 23 ||
                             !dj__dot_sc_form(&form)))) {
                bad++;
                fprintf(stderr, "%s effective bias %d: form mbits %d special %#x nib %d sc %d "
                        "sc_exp %d\n", d->name, eb, form.mbits, form.special, form.nib, form.sc,
                        form.sc_exp);
                continue;
            }
            for (int isa = DJ_ISA_GENERIC; isa < DJ_ISA_COUNT; isa++) {
                const dj__sgemm_kernel *kd = dj__sgemm_kernel_for((dj_isa)isa);
                if (!kd)
                    continue;
                float out[256];
                kd->decode(dj_opd_u8_form(all, lut, &form), 256, out);
                for (int i = 0; i < 256; i++)
                    bad += f32_bits(out[i]) != f32_bits(lut[i]);
            }
        }
    }
    CHECK(bad == 0 && tables == 4 * 64, "forms of %ld tables: %ld wrong", tables, bad);

    /* Tables without the form, or with one entry that breaks it. */
    for (int trial = 0; trial < 40; trial++) {
        float lut[256];
        if (trial < 8) {
            for (int i = 0; i < 256; i++)
                lut[i] = frand() * 100.0f;
        } else {
            if (trial % 2)
                dj_cf_decode_lut8(DJ_FMT_CF8_143, 3 + trial, 0, lut);
            else
                dj_cf_decode_lut8(DJ_FMT_E5M2, 15, trial % 7 - 3, lut);
            lut[urand() % 256] = frand();
        }
        dj_lut8_form form;
        const int has = dj_lut8_form_of(lut, &form);
        if (trial < 8)
            CHECK(!has, "a random table has a form (mbits %d special %#x)", form.mbits,
                  form.special);
        CHECK(!form.sc, "trial %d: a table with a random entry has the scaled form", trial);
        for (int isa = DJ_ISA_GENERIC; isa < DJ_ISA_COUNT; isa++) {
            const dj__sgemm_kernel *kd = dj__sgemm_kernel_for((dj_isa)isa);
            if (!kd)
                continue;
            for (int off = 0; off < 3; off++) {
                float out[256];
                kd->decode(dj_opd_u8_form(all + off, lut, &form), 256, out);
                long wrong = 0;
                for (int i = 0; i < 256; i++)
                    wrong += f32_bits(out[i]) != f32_bits(lut[(i + off) & 255]);
                CHECK(wrong == 0, "trial %d %s off %d: %ld codes decoded off the table", trial,
                      dj_isa_name((dj_isa)isa), off, wrong);
            }
        }
    }
}

/* decode_rows of kd: rows of n elements ld apart into rows ldd apart,
 * against dj__opd_get; the floats between the rows of dst are not touched;
 * the source ends where its last row ends (a heap block of just that size,
 * so that AddressSanitizer sees any read past it). Returns the wrong values. */
static long decode_rows_wrong(const dj__sgemm_kernel *kd, const float *lut,
                              const dj_lut8_form *form)
{
    enum { NMAX = 37 };
    long bad = 0;
    for (int kind = DJ_OPD_F32; kind <= DJ_OPD_U8 + 1; kind++)
        for (int rows = 0; rows <= 3; rows++)
            for (int n = 0; n <= NMAX; n += n < 18 ? 1 : 5) {
                const int ld = n + (rows & 1) * 3, ldd = n + 2;
                const size_t elems = rows ? (size_t)(rows - 1) * ld + n : 0;
                const size_t esize = kind == DJ_OPD_F32 ? 4 : kind == DJ_OPD_BF16 ? 2 : 1;
                unsigned char *src = malloc(elems * esize + 1);
                CHECK(src != NULL, "memory");
                for (size_t i = 0; i < elems * esize; i++)
                    src[i] = (unsigned char)urand();
                if (kind == DJ_OPD_F32) /* no NaN patterns: compared bit for bit anyway */
                    for (size_t i = 0; i < elems; i++)
                        src[i * 4 + 3] &= 0x3f;
                const dj_opd o = kind == DJ_OPD_F32    ? dj_opd_f32((const float *)(void *)src)
                                 : kind == DJ_OPD_BF16 ? dj_opd_bf16((const uint16_t *)(void *)src)
                                 : kind == DJ_OPD_U8   ? dj_opd_u8(src, lut)
                                                       : dj_opd_u8_form(src, lut, form);
                float out[3 * (NMAX + 2) + 1];
                for (int i = 0; i < 3 * (NMAX + 2) + 1; i++)
                    out[i] = SENTINEL;
                kd->decode_rows(o, ld, rows, n, out, ldd);
                for (int r = 0; r < 3; r++)
                    for (int i = 0; i < ldd; i++) {
                        const float want =
                            r < rows && i < n ? dj__opd_get(o, (ptrdiff_t)r * ld + i) : SENTINEL;
                        bad += f32_bits(out[r * ldd + i]) != f32_bits(want);
                    }
                free(src);
            }
    return bad;
}

/* The decoders of every ISA agree with dj__opd_get on every length and
 * alignment (the vector bodies and their tails), one row or several, for
 * 8-bit codes of a table with the arithmetic form only (E4M3) and of one
 * with the nibble form too (CFloat8, 32 codes at a time). */
static void test_decoders(void)
{
    enum { NMAX = 77 };
    uint8_t c8[NMAX + 8];
    uint16_t c16[NMAX + 8];
    for (int i = 0; i < NMAX + 8; i++) {
        c8[i] = (uint8_t)urand();
        c16[i] = (uint16_t)urand();
    }
    for (int isa = DJ_ISA_GENERIC; isa < DJ_ISA_COUNT; isa++) {
        const dj__sgemm_kernel *kd = dj__sgemm_kernel_for((dj_isa)isa);
        if (!kd)
            continue;
        dj_lut8_form form, nform;
        CHECK(dj_lut8_form_of(lut_e4m3, &form) && !form.nib, "E4M3 has a form, no nibble form");
        CHECK(dj_lut8_form_of(lut_cf8, &nform) && nform.nib, "CFloat8 has a nibble form");
        long bad = 0;
        /* U8 + 1: with the form; U8 + 2: the CFloat8 table with its forms */
        for (int kind = DJ_OPD_BF16; kind <= DJ_OPD_U8 + 2; kind++)
            for (int off = 0; off < 3; off++)
                for (int n = 0; n <= NMAX; n++) {
                    const dj_opd o = kind == DJ_OPD_BF16 ? dj_opd_bf16(c16 + off)
                                     : kind == DJ_OPD_U8 ? dj_opd_u8(c8 + off, lut_e4m3)
                                     : kind == DJ_OPD_U8 + 1
                                         ? dj_opd_u8_form(c8 + off, lut_e4m3, &form)
                                         : dj_opd_u8_form(c8 + off, lut_cf8, &nform);
                    float out[NMAX + 1];
                    out[n] = SENTINEL;
                    kd->decode(o, n, out);
                    for (int i = 0; i < n; i++)
                        bad += f32_bits(out[i]) != f32_bits(dj__opd_get(o, i));
                    bad += out[n] != SENTINEL;
                }
        CHECK(bad == 0, "%s decoder: %ld values wrong", dj_isa_name((dj_isa)isa), bad);
        bad = decode_rows_wrong(kd, lut_e4m3, &form) + decode_rows_wrong(kd, lut_cf8, &nform);
        CHECK(bad == 0, "%s decode_rows: %ld values wrong", dj_isa_name((dj_isa)isa), bad);
    }
}

int main(void)
{
    dj_cf_decode_lut8(DJ_FMT_CF8_143, 7, 0, lut_cf8);
    dj_cf_decode_lut8(DJ_FMT_E4M3, 7, 3, lut_e4m3);
    dj_pool *p2 = NULL;
    CHECK(dj_pool_create(2, &p2) == DJ_OK, "pool of 2");
    dj_pool *pools[] = {NULL, p2};
    test_lut();
    test_forms();
    test_few_rows(pools, 2);
    test_scaled_a(pools, 2);
    test_decoders();
    test_roundtrip(NULL);
    test_roundtrip(p2);
    test_shapes(pools, 2);
    test_f32_wrapper(NULL);
    test_f32_wrapper(p2);
    test_specials(NULL);
    test_specials(p2);
    for (int isa = DJ_ISA_GENERIC; isa < DJ_ISA_COUNT; isa++)
        if (dj_cpu_supports((dj_isa)isa))
            printf("test_gemm_q: checked ISA %s\n", dj_isa_name((dj_isa)isa));
    dj_pool_destroy(p2);
    return th_done("test_gemm_q");
}
