/* gemm_generic.c - the portable float32 GEMM micro-kernel: a 4 x 8 tile of
 * C held in eight 4-lane vectors (GCC/Clang vector extensions, so SSE2 on
 * x86-64 and NEON on Arm without intrinsics). It is the path for CPUs
 * without AVX2 and for DOJO_ISA=generic. See gemm_internal.h for the packed
 * formats and the summation order. */
#include <stdint.h>
#include <string.h>

#include "kernels/gemm_internal.h"

#define MR 4
#define NR 8

typedef float v4 __attribute__((vector_size(16)));

static inline v4 load4(const float *p)
{
    v4 v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline void store4(float *p, v4 v)
{
    memcpy(p, &v, sizeof v);
}

/* Where the operands come from; a constant in each entry point. */
enum { PACKED, OFS, AROWS };

/* A(p, i): a[p * MR + i] (PACKED, OFS) or arows[i][p] (AROWS). B row p:
 * b + p * bs (PACKED, AROWS) or b + off[p] (OFS). */
static inline __attribute__((always_inline)) void
kernel(const int mode, int k, const float *a, const float *const *arows, const float *b,
       ptrdiff_t bs, const int32_t *off, float *c, ptrdiff_t ldc, int m, int n, float alpha,
       float beta)
{
    /* Named accumulators, unrolled by hand: compilers keep them in
     * registers (an array of vectors they may not). */
    v4 c00 = {0, 0, 0, 0}, c01 = c00, c10 = c00, c11 = c00;
    v4 c20 = c00, c21 = c00, c30 = c00, c31 = c00;
    for (int p = 0; p < k; p++) {
        const float *bp = mode == OFS ? b + off[p] : b + p * bs;
        const v4 b0 = load4(bp), b1 = load4(bp + 4);
        float a0, a1, a2, a3;
        if (mode == AROWS) {
            a0 = arows[0][p];
            a1 = arows[1][p];
            a2 = arows[2][p];
            a3 = arows[3][p];
        } else {
            a0 = a[0];
            a1 = a[1];
            a2 = a[2];
            a3 = a[3];
            a += MR;
        }
        const v4 v0 = {a0, a0, a0, a0}, v1 = {a1, a1, a1, a1};
        const v4 v2 = {a2, a2, a2, a2}, v3 = {a3, a3, a3, a3};
        c00 += v0 * b0;
        c01 += v0 * b1;
        c10 += v1 * b0;
        c11 += v1 * b1;
        c20 += v2 * b0;
        c21 += v2 * b1;
        c30 += v3 * b0;
        c31 += v3 * b1;
    }
    const v4 acc[MR][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}};

    const v4 va = {alpha, alpha, alpha, alpha}, vb = {beta, beta, beta, beta};
    const int full = m == MR && n == NR;
    float tile[MR * NR];
    float *dst = c;
    ptrdiff_t ld = ldc;
    if (!full) { /* same arithmetic as a full tile, through a buffer */
        dst = tile;
        ld = NR;
        memset(tile, 0, sizeof tile);
        if (beta != 0.0f)
            for (int i = 0; i < m; i++)
                memcpy(tile + i * NR, c + i * ldc, (size_t)n * sizeof(float));
    }
    for (int i = 0; i < MR; i++) {
        float *q = dst + i * ld;
        if (beta == 0.0f) {
            store4(q, va * acc[i][0]);
            store4(q + 4, va * acc[i][1]);
        } else {
            store4(q, va * acc[i][0] + vb * load4(q));
            store4(q + 4, va * acc[i][1] + vb * load4(q + 4));
        }
    }
    if (!full)
        for (int i = 0; i < m; i++)
            memcpy(c + i * ldc, tile + i * NR, (size_t)n * sizeof(float));
}

void dj__sgemm_ukr_generic(int k, const float *a, const float *b, ptrdiff_t bs, float *c,
                           ptrdiff_t ldc, int m, int n, float alpha, float beta)
{
    kernel(PACKED, k, a, NULL, b, bs, NULL, c, ldc, m, n, alpha, beta);
}

void dj__sgemm_ukr_ofs_generic(int k, const float *a, const float *b, const int32_t *off, float *c,
                               ptrdiff_t ldc, int m, int n, float alpha, float beta)
{
    kernel(OFS, k, a, NULL, b, 0, off, c, ldc, m, n, alpha, beta);
}

void dj__sgemm_ukr_arows_generic(int k, const float *const *arows, const float *b, float *c,
                                 ptrdiff_t ldc, int m, int n, float alpha, float beta)
{
    kernel(AROWS, k, NULL, arows, b, NR, NULL, c, ldc, m, n, alpha, beta);
}
