/* gemm_ukr_impl.h - the body of the AVX2 and AVX-512 float32 GEMM
 * micro-kernels, written once: a 6 x (2 * DJ_VW) tile of C in twelve vector
 * accumulators (two vectors per row), fed per k by two loads of B and six
 * broadcasts of A. Twelve independent FMA chains cover the FMA latency x
 * throughput of current cores.
 *
 * One kernel body, inlined into three entry points that differ only in
 * where the operands come from (see gemm_internal.h): packed A and B panels
 * (B's rows may have any stride), B rows through an offset table, or A rows
 * read in place through row pointers. Edge tiles go through a full-size
 * buffer, so they are computed by the same instructions as interior ones.
 *
 * The including file defines the vector type and operations, then includes
 * this once:
 *   DJ_V, DJ_VW (floats per vector), DJ_V_ZERO(), DJ_V_LOAD(p),
 *   DJ_V_STORE(p, v), DJ_V_FMA(a, b, c) = a * b + c, DJ_V_MUL(a, b),
 *   DJ_V_SET1(x), DJ_V_BCAST(p) = every lane *p, and DJ_UKR_NAME(base),
 *   which appends the ISA to the entry points' names;
 * and optionally DJ_UKR_ASM_PACKED, _OFS and _AROWS, assembly for the main
 * loop of each entry point (AVX2 has them; the C loop then runs only the
 * last k % 4 steps). */
#include <stdint.h>
#include <string.h>

#include "kernels/gemm_internal.h"

#define MR 6
#define NR (2 * DJ_VW)


/* One k step q of the unrolled group: row r of the tile += A(q, r) * B row. */
#define ROW(r, q)                                                                                  \
    do {                                                                                           \
        const DJ_V av_ = DJ_V_BCAST(mode == AROWS ? a##r + (q) : a + (q) * MR + (r));                                   \
        c##r##0 = DJ_V_FMA(av_, b0, c##r##0);                                               \
        c##r##1 = DJ_V_FMA(av_, b1, c##r##1);                                               \
    } while (0)

/* B row q of the group: b + q * bs, or b + off[q] with an offset table. */
#define BROW(q) (mode == OFS ? b + off[q] : b + (q) * bs)

#define STEP(q)                                                                                    \
    do {                                                                                           \
        const float *bp_ = BROW(q);                                                                \
        const DJ_V b0 = DJ_V_LOAD(bp_);                                                    \
        const DJ_V b1 = DJ_V_LOAD(bp_ + DJ_VW);                                                \
        ROW(0, q);                                                                                 \
        ROW(1, q);                                                                                 \
        ROW(2, q);                                                                                 \
        ROW(3, q);                                                                                 \
        ROW(4, q);                                                                                 \
        ROW(5, q);                                                                                 \
    } while (0)

/* Moves every operand pointer on by `steps` k steps. */
#define ADVANCE(steps)                                                                             \
    do {                                                                                           \
        if (mode == AROWS) {                                                                       \
            a0 += (steps);                                                                         \
            a1 += (steps);                                                                         \
            a2 += (steps);                                                                         \
            a3 += (steps);                                                                         \
            a4 += (steps);                                                                         \
            a5 += (steps);                                                                         \
        } else {                                                                                   \
            a += (steps) * MR;                                                                     \
        }                                                                                          \
        if (mode == OFS)                                                                           \
            off += (steps);                                                                        \
        else                                                                                       \
            b += (steps) * bs;                                                                     \
    } while (0)

/* Row r of the result: alpha * acc (+ beta * old) stored at p. */
#define OUT(r, p, ld)                                                                              \
    do {                                                                                           \
        float *q_ = (p) + (ptrdiff_t)(r) * (ld);                                                   \
        if (beta == 0.0f) {                                                                        \
            DJ_V_STORE(q_, DJ_V_MUL(va, c##r##0));                                      \
            DJ_V_STORE(q_ + DJ_VW, DJ_V_MUL(va, c##r##1));                                  \
        } else {                                                                                   \
            DJ_V_STORE(q_, DJ_V_FMA(va, c##r##0, DJ_V_MUL(vb, DJ_V_LOAD(q_)))); \
            DJ_V_STORE(q_ + DJ_VW,                                                               \
                             DJ_V_FMA(va, c##r##1, DJ_V_MUL(vb, DJ_V_LOAD(q_ + DJ_VW)))); \
        }                                                                                          \
    } while (0)

/* Where the operands come from; a constant in each entry point, so that
 * every compiler builds three loops without run-time tests. */
enum { PACKED, OFS, AROWS };

/* A(p, r) is a[p * MR + r] (PACKED, OFS) or arows[r][p] (AROWS); B row p is
 * b + p * bs (PACKED, AROWS) or b + off[p] (OFS). */
static inline __attribute__((always_inline)) void
kernel(const int mode, int k, const float *a, const float *const *arows, const float *b,
       ptrdiff_t bs, const int32_t *off, float *c, ptrdiff_t ldc, int m, int n, float alpha,
       float beta)
{
    const int aro = mode == AROWS;
    const float *a0 = aro ? arows[0] : NULL, *a1 = aro ? arows[1] : NULL;
    const float *a2 = aro ? arows[2] : NULL, *a3 = aro ? arows[3] : NULL;
    const float *a4 = aro ? arows[4] : NULL, *a5 = aro ? arows[5] : NULL;
    DJ_V c00 = DJ_V_ZERO(), c01 = DJ_V_ZERO();
    DJ_V c10 = DJ_V_ZERO(), c11 = DJ_V_ZERO();
    DJ_V c20 = DJ_V_ZERO(), c21 = DJ_V_ZERO();
    DJ_V c30 = DJ_V_ZERO(), c31 = DJ_V_ZERO();
    DJ_V c40 = DJ_V_ZERO(), c41 = DJ_V_ZERO();
    DJ_V c50 = DJ_V_ZERO(), c51 = DJ_V_ZERO();

    const int full = m == MR && n == NR;
    if (full)
        for (int r = 0; r < MR; r++) {
            _mm_prefetch((const char *)(c + r * ldc), _MM_HINT_T0);
            _mm_prefetch((const char *)(c + r * ldc + NR - 1), _MM_HINT_T0);
        }

    int p = 0;
#ifdef DJ_UKR_ASM_PACKED
    /* the including file's assembly runs the whole groups of 4 k steps
     * (same FMAs, same order, same bits) */
    if (k >= 4) {
        _Alignas(64) DJ_V acc[12];
        if (mode == PACKED)
            DJ_UKR_ASM_PACKED(a, b, bs, k / 4, acc);
        else if (mode == OFS)
            DJ_UKR_ASM_OFS(a, b, off, k / 4, acc);
        else
            DJ_UKR_ASM_AROWS(arows, b, k / 4, acc);
        c00 = acc[0], c01 = acc[1], c10 = acc[2], c11 = acc[3], c20 = acc[4], c21 = acc[5];
        c30 = acc[6], c31 = acc[7], c40 = acc[8], c41 = acc[9], c50 = acc[10], c51 = acc[11];
        p = k / 4 * 4;
        ADVANCE(p);
    }
#endif
    for (; p + 4 <= k; p += 4) {
        STEP(0);
        STEP(1);
        STEP(2);
        STEP(3);
        ADVANCE(4);
    }
    for (; p < k; p++) {
        STEP(0);
        ADVANCE(1);
    }

    const DJ_V va = DJ_V_SET1(alpha), vb = DJ_V_SET1(beta);
    _Alignas(DJ_VW * 4) float tile[MR * NR];
    float *dst = c;
    ptrdiff_t ld = ldc;
    if (!full) {
        dst = tile;
        ld = NR;
        if (beta != 0.0f) { /* OUT reads the tile: C's m x n, zeros around it */
            memset(tile, 0, sizeof tile);
            for (int i = 0; i < m; i++)
                memcpy(tile + i * NR, c + i * ldc, (size_t)n * sizeof(float));
        }
    }
    OUT(0, dst, ld);
    OUT(1, dst, ld);
    OUT(2, dst, ld);
    OUT(3, dst, ld);
    OUT(4, dst, ld);
    OUT(5, dst, ld);
    if (!full)
        for (int i = 0; i < m; i++)
            memcpy(c + i * ldc, tile + i * NR, (size_t)n * sizeof(float));
}

void DJ_UKR_NAME(dj__sgemm_ukr_)(int k, const float *a, const float *b, ptrdiff_t bs, float *c,
                        ptrdiff_t ldc, int m, int n, float alpha, float beta)
{
    kernel(PACKED, k, a, NULL, b, bs, NULL, c, ldc, m, n, alpha, beta);
}

void DJ_UKR_NAME(dj__sgemm_ukr_ofs_)(int k, const float *a, const float *b, const int32_t *off, float *c,
                            ptrdiff_t ldc, int m, int n, float alpha, float beta)
{
    kernel(OFS, k, a, NULL, b, 0, off, c, ldc, m, n, alpha, beta);
}

void DJ_UKR_NAME(dj__sgemm_ukr_arows_)(int k, const float *const *arows, const float *b, float *c,
                              ptrdiff_t ldc, int m, int n, float alpha, float beta)
{
    kernel(AROWS, k, NULL, arows, b, NR, NULL, c, ldc, m, n, alpha, beta);
}
