/* test_gemm.c - dj_sgemm on every ISA path this CPU runs (generic, AVX2,
 * AVX-512) and on 1, 2 and 3 threads equals a double-precision product
 * within a rounding-error bound, for all four transposes, alpha/beta
 * variants (beta == 0 must not read C, alpha == 0 must not read A or B),
 * padded leading dimensions, edge tiles, tiny sizes (M, N or K of 1), K
 * beyond one cache block, N beyond one column block and B beyond one packing
 * phase. dj_sgemm_ref is checked against the same product. Results must be
 * bit-identical across runs and thread counts (the k blocks depend on K
 * only), and nothing outside C's M x N block may be written. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "kernels/gemm_internal.h"

static uint64_t rng_state = 0x2545F4914F6CDD1DULL;

static float frand(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (float)((double)(rng_state >> 40) / (double)(1ull << 24) * 2.0 - 1.0);
}

#define SENTINEL 12345.0f

typedef struct {
    int M, N, K;
    int nv;    /* run the first nv alpha/beta variants (0: all) */
    int trans; /* 1: all four transposes; 0: only NN (the big products) */
} shape;

static const shape shapes[] = {
    {1, 1, 1, 0, 1},      {1, 17, 5, 0, 1},     {7, 1, 3, 0, 1},     {5, 5, 1, 0, 1},
    {13, 17, 19, 0, 1},   {6, 16, 64, 0, 1},    {12, 32, 257, 0, 1}, {33, 65, 70, 0, 1},
    {50, 37, 300, 2, 1},  {150, 33, 10, 2, 1},  {128, 10, 128, 2, 1}, {45, 53, 61, 2, 1},
    {1, 300, 600, 2, 1},  {300, 1, 600, 2, 1},  {7, 4200, 5, 2, 1},  {70, 80, 90, 2, 1},
    /* packed B over the 16 MiB budget: two packing phases (13 rows: more
     * than the streaming path takes) */
    {13, 2100, 2100, 1, 0},
    /* the streaming path over a large B */
    {1, 2100, 2100, 1, 0},
};

typedef struct {
    float alpha, beta;
    int c_nan; /* C holds NaN (only with beta == 0) */
    int ab_nan; /* A and B hold a NaN (only with alpha == 0) */
} scalars;

static const scalars variants[] = {
    {1.0f, 0.0f, 1, 0}, {1.0f, 1.0f, 0, 0}, {-0.5f, 2.0f, 0, 0}, {2.0f, 0.0f, 1, 0},
    {0.0f, 0.5f, 0, 1}, {0.0f, 0.0f, 1, 1}, {1.5f, -1.0f, 0, 0},
};

/* The product in double and the bound on a float computation's error. */
static void expect(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
                   const float *B, int ldb, float beta, const float *C0, int ldc, double *want,
                   double *tol)
{
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double s = 0, sabs = 0;
            if (alpha != 0.0f)
                for (int p = 0; p < K; p++) {
                    double a = ta ? A[(size_t)p * lda + i] : A[(size_t)i * lda + p];
                    double b = tb ? B[(size_t)j * ldb + p] : B[(size_t)p * ldb + j];
                    s += a * b;
                    sabs += fabs(a * b);
                }
            double old = beta == 0.0f ? 0.0 : (double)beta * C0[(size_t)i * ldc + j];
            double v = alpha * s + old;
            want[(size_t)i * N + j] = v;
            tol[(size_t)i * N + j] = FLT_EPSILON * (4.0 * sqrt((double)K + 1) * fabs(alpha) * sabs +
                                                    2.0 * fabs(old) + fabs(v)) + 1e-30;
        }
}

/* Counts elements of C outside tolerance or outside M x N and changed. */
static long compare(int M, int N, const float *C, int ldc, const double *want, const double *tol,
                    double *worst)
{
    long bad = 0;
    for (int i = 0; i < M; i++)
        for (int j = 0; j < ldc; j++) {
            float got = C[(size_t)i * ldc + j];
            if (j >= N) {
                bad += got != SENTINEL;
                continue;
            }
            double e = fabs((double)got - want[(size_t)i * N + j]);
            double r = e / tol[(size_t)i * N + j];
            if (!(r <= 1.0))
                bad++;
            if (r > *worst || r != r)
                *worst = r;
        }
    return bad;
}

static void fill_c(float *C, int M, int N, int ldc, const float *src, int nan)
{
    for (int i = 0; i < M; i++)
        for (int j = 0; j < ldc; j++)
            C[(size_t)i * ldc + j] = j >= N ? SENTINEL : nan ? NAN : src[(size_t)i * ldc + j];
}

static void test_shape(const shape *s, dj_pool **pools, int npools)
{
    const int M = s->M, N = s->N, K = s->K;
    for (int ta = 0; ta < 1 + s->trans; ta++)
        for (int tb = 0; tb < 1 + s->trans; tb++) {
            const int ar = ta ? K : M, ac = ta ? M : K, br = tb ? N : K, bc = tb ? K : N;
            const int lda = ac + (ta ? 3 : 1), ldb = bc + (tb ? 2 : 0), ldc = N + 3;
            float *A = malloc((size_t)ar * lda * sizeof *A);
            float *B = malloc((size_t)br * ldb * sizeof *B);
            float *C0 = malloc((size_t)M * ldc * sizeof *C0);
            float *C = malloc((size_t)M * ldc * sizeof *C);
            float *C1 = malloc((size_t)M * ldc * sizeof *C1);
            double *want = malloc((size_t)M * N * sizeof *want);
            double *tol = malloc((size_t)M * N * sizeof *tol);
            for (size_t i = 0; i < (size_t)ar * lda; i++)
                A[i] = frand();
            for (size_t i = 0; i < (size_t)br * ldb; i++)
                B[i] = frand();
            for (size_t i = 0; i < (size_t)M * ldc; i++)
                C0[i] = frand();
            const int nv = s->nv ? s->nv : (int)(sizeof variants / sizeof variants[0]);
            for (int v = 0; v < nv; v++) {
                const scalars *sc = &variants[v];
                float a_save = A[0], b_save = B[0];
                if (sc->ab_nan) {
                    A[0] = NAN;
                    B[0] = NAN;
                }
                expect(ta, tb, M, N, K, sc->alpha, A, lda, B, ldb, sc->beta, C0, ldc, want, tol);

                double worst = 0;
                fill_c(C, M, N, ldc, C0, sc->c_nan);
                dj_sgemm_ref(ta, tb, M, N, K, sc->alpha, A, lda, B, ldb, sc->beta, C, ldc);
                long bad = compare(M, N, C, ldc, want, tol, &worst);
                CHECK(bad == 0, "ref %dx%dx%d ta=%d tb=%d alpha=%g beta=%g: %ld bad (worst %.3g)", M,
                      N, K, ta, tb, sc->alpha, sc->beta, bad, worst);

                for (int isa = DJ_ISA_GENERIC; isa < DJ_ISA_COUNT; isa++) {
                    if (!dj_cpu_supports((dj_isa)isa))
                        continue;
                    for (int t = 0; t < npools; t++) {
                        worst = 0;
                        fill_c(C, M, N, ldc, C0, sc->c_nan);
                        dj__sgemm_isa((dj_isa)isa, pools[t], ta, tb, M, N, K, sc->alpha, A, lda,
                                      B, ldb, sc->beta, C, ldc, NULL);
                        bad = compare(M, N, C, ldc, want, tol, &worst);
                        CHECK(bad == 0,
                              "%s threads=%d %dx%dx%d ta=%d tb=%d alpha=%g beta=%g: %ld bad "
                              "(worst error %.3g x bound)",
                              dj_isa_name((dj_isa)isa), dj_pool_threads(pools[t]), M, N, K, ta, tb,
                              sc->alpha, sc->beta, bad, worst);
                        /* Bit-identical to the single-thread run (and so to a
                         * rerun on the same thread count). */
                        if (t == 0) {
                            memcpy(C1, C, (size_t)M * ldc * sizeof *C);
                        } else {
                            CHECK(memcmp(C1, C, (size_t)M * ldc * sizeof *C) == 0,
                                  "%s %dx%dx%d ta=%d tb=%d: threads=%d differs from 1 thread",
                                  dj_isa_name((dj_isa)isa), M, N, K, ta, tb,
                                  dj_pool_threads(pools[t]));
                        }
                    }
                }
                A[0] = a_save;
                B[0] = b_save;
            }
            free(A);
            free(B);
            free(C0);
            free(C);
            free(C1);
            free(want);
            free(tol);
        }
}

/* The same call twice on the same pool gives the same bits. */
static void test_repeat(dj_pool *pool)
{
    const int M = 211, N = 190, K = 530;
    float *A = malloc((size_t)M * K * sizeof *A), *B = malloc((size_t)K * N * sizeof *B);
    float *C1 = malloc((size_t)M * N * sizeof *C1), *C2 = malloc((size_t)M * N * sizeof *C2);
    for (int i = 0; i < M * K; i++)
        A[i] = frand();
    for (int i = 0; i < K * N; i++)
        B[i] = frand();
    dj_sgemm(pool, 0, 1, M, N, K, 1.0f, A, K, B, K, 0.0f, C1, N);
    dj_sgemm(pool, 0, 1, M, N, K, 1.0f, A, K, B, K, 0.0f, C2, N);
    CHECK(memcmp(C1, C2, (size_t)M * N * sizeof *C1) == 0, "two runs on %d threads differ",
          dj_pool_threads(pool));
    free(A);
    free(B);
    free(C1);
    free(C2);
}

/* dj_sgemm_ws with exactly the scratch it asks for (ASan watches the
 * bounds; the start is deliberately not 64-byte aligned) gives dj_sgemm's
 * bits. */
static void test_workspace(dj_pool *pool)
{
    const int M = 77, N = 301, K = 290, T = dj_pool_threads(pool);
    float *A = malloc((size_t)K * M * sizeof *A), *B = malloc((size_t)N * K * sizeof *B);
    float *C1 = malloc((size_t)M * N * sizeof *C1), *C2 = malloc((size_t)M * N * sizeof *C2);
    const size_t n = dj_sgemm_workspace(M, N, K, T);
    float *ws = malloc((n + 1) * sizeof *ws);
    CHECK(n > 0, "workspace for %dx%dx%d is 0", M, N, K);
    CHECK(dj_sgemm_workspace(4, 4, 4, T) == 0, "a tiny product needs no workspace");
    for (int i = 0; i < M * K; i++)
        A[i] = frand();
    for (int i = 0; i < K * N; i++)
        B[i] = frand();
    dj_sgemm(pool, 1, 1, M, N, K, 0.5f, A, M, B, K, 0.0f, C1, N);
    dj_sgemm_ws(pool, 1, 1, M, N, K, 0.5f, A, M, B, K, 0.0f, C2, N, ws + 1);
    CHECK(memcmp(C1, C2, (size_t)M * N * sizeof *C1) == 0, "dj_sgemm_ws differs from dj_sgemm");
    free(A);
    free(B);
    free(C1);
    free(C2);
    free(ws);
}

/* Each ISA's three micro-kernel entry points (packed, through an offset
 * table, A rows in place) compute the same tile bit for bit, and on the
 * ISAs with FMA (AVX2, whose loops are assembly, and AVX-512) that tile is
 * the scalar one: each element a chain of fmaf() over k from 0, then
 * alpha * acc, or fmaf(alpha, acc, beta * c). Every k up to 40 (the
 * assembly's groups of 4 and the C remainder), longer ones, B strides of NR
 * and more, beta 0 and not. */
static void test_ukr_entry_points(void)
{
    enum { KMAX = 300, LDC = DJ_SGEMM_MAX_NR + 3 };
    for (int isa = DJ_ISA_GENERIC; isa < DJ_ISA_COUNT; isa++) {
        const dj__sgemm_kernel *kd = dj__sgemm_kernel_for((dj_isa)isa);
        if (!kd)
            continue;
        const int MR = kd->mr, NR = kd->nr;
        const int bsmax = NR + 5;
        float *a = malloc((size_t)KMAX * MR * sizeof *a);
        float *at = malloc((size_t)MR * KMAX * sizeof *at);
        float *b = malloc((size_t)KMAX * bsmax * sizeof *b);
        float *bp = malloc((size_t)KMAX * NR * sizeof *bp);
        int32_t *off = malloc(KMAX * sizeof *off);
        for (int i = 0; i < KMAX * MR; i++)
            a[i] = frand();
        for (int r = 0; r < MR; r++) /* at: A's rows, k contiguous */
            for (int p = 0; p < KMAX; p++)
                at[r * KMAX + p] = a[p * MR + r];
        const float *arows[DJ_SGEMM_MAX_MR];
        for (int r = 0; r < MR; r++)
            arows[r] = at + r * KMAX;
        for (int i = 0; i < KMAX * bsmax; i++)
            b[i] = frand();
        long bad = 0, scalar_bad = 0;
        for (int bs = NR; bs <= bsmax; bs += 5)
            for (int k = 0; k <= KMAX; k += k < 40 ? 1 : 37) {
                for (int p = 0; p < k; p++) {
                    off[p] = p * bs;
                    memcpy(bp + p * NR, b + p * bs, (size_t)NR * sizeof *bp);
                }
                for (int v = 0; v < 2; v++) {
                    const float beta = v ? -0.75f : 0.0f;
                    float c0[DJ_SGEMM_MAX_MR * LDC], c1[DJ_SGEMM_MAX_MR * LDC],
                        c2[DJ_SGEMM_MAX_MR * LDC];
                    float cin[DJ_SGEMM_MAX_MR * LDC];
                    for (int i = 0; i < DJ_SGEMM_MAX_MR * LDC; i++)
                        cin[i] = c0[i] = c1[i] = c2[i] = frand();
                    kd->ukr(k, a, b, bs, c0, LDC, MR, NR, 1.25f, beta);
                    kd->ukr_ofs(k, a, b, off, c1, LDC, MR, NR, 1.25f, beta);
                    kd->ukr_arows(k, arows, bp, c2, LDC, MR, NR, 1.25f, beta);
                    bad += memcmp(c0, c1, sizeof c0) != 0;
                    bad += memcmp(c0, c2, sizeof c0) != 0;
                    if (isa == DJ_ISA_GENERIC)
                        continue; /* plain C: the compiler picks FMA or not */
                    for (int i = 0; i < MR; i++)
                        for (int j = 0; j < NR; j++) {
                            float acc = 0.0f;
                            for (int p = 0; p < k; p++)
                                acc = fmaf(a[p * MR + i], b[p * bs + j], acc);
                            const float want = beta == 0.0f ? 1.25f * acc
                                                            : fmaf(1.25f, acc, beta * cin[i * LDC + j]);
                            scalar_bad += memcmp(&c0[i * LDC + j], &want, sizeof want) != 0;
                        }
                }
            }
        CHECK(bad == 0, "%s micro-kernel entry points disagree in %ld cases",
              dj_isa_name((dj_isa)isa), bad);
        CHECK(scalar_bad == 0, "%s micro-kernel: %ld elements differ from the scalar fmaf chain",
              dj_isa_name((dj_isa)isa), scalar_bad);
        free(a);
        free(at);
        free(b);
        free(bp);
        free(off);
    }
}

int main(void)
{
    test_ukr_entry_points();
    dj_pool *p2 = NULL, *p3 = NULL;
    CHECK(dj_pool_create(2, &p2) == DJ_OK, "pool of 2");
    CHECK(dj_pool_create(3, &p3) == DJ_OK, "pool of 3");
    dj_pool *pools[] = {NULL, p2, p3};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        test_shape(&shapes[i], pools, 3);
    test_repeat(p2);
    test_repeat(p3);
    test_workspace(NULL);
    test_workspace(p3);
    for (int isa = DJ_ISA_GENERIC; isa < DJ_ISA_COUNT; isa++)
        if (dj_cpu_supports((dj_isa)isa))
            printf("test_gemm: checked ISA %s\n", dj_isa_name((dj_isa)isa));
    dj_pool_destroy(p2);
    dj_pool_destroy(p3);
    return th_done("test_gemm");
}
