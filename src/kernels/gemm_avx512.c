/* gemm_avx512.c - the AVX-512 float32 GEMM micro-kernel: the AVX2 kernel
 * (gemm_avx2.c) line for line at twice the width, a 6 x 32 tile of C in
 * twelve zmm accumulators (two vectors per row), fed per k by two loads of
 * B and six broadcasts of A. It keeps the AVX2 kernel's simple shape on
 * purpose: the development machines cannot run AVX-512, so the kernel must
 * be checkable by reading it side by side with the AVX2 one; the tests run
 * it against the reference wherever the CPU has AVX-512.
 *
 * The same three entry points as the AVX2 kernel (packed panels, B rows
 * through an offset table, A rows in place); see gemm_internal.h.
 *
 * Built with -mavx512f/bw/dq/vl; called only when
 * dj_cpu_supports(DJ_ISA_AVX512). */
#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#include "kernels/gemm_internal.h"

#define MR 6
#define NR 32

/* One k step q of the unrolled group: row r of the tile += A(q, r) * B row. */
#define ROW(r, q)                                                                                  \
    do {                                                                                           \
        const __m512 av_ = _mm512_set1_ps(*(mode == AROWS ? a##r + (q) : a + (q) * MR + (r)));                                       \
        c##r##0 = _mm512_fmadd_ps(av_, b0, c##r##0);                                               \
        c##r##1 = _mm512_fmadd_ps(av_, b1, c##r##1);                                               \
    } while (0)

/* B row q of the group: b + q * bs, or b + off[q] with an offset table. */
#define BROW(q) (mode == OFS ? b + off[q] : b + (q) * bs)

#define STEP(q)                                                                                    \
    do {                                                                                           \
        const float *bp_ = BROW(q);                                                                \
        const __m512 b0 = _mm512_loadu_ps(bp_);                                                    \
        const __m512 b1 = _mm512_loadu_ps(bp_ + 16);                                                \
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
            _mm512_storeu_ps(q_, _mm512_mul_ps(va, c##r##0));                                      \
            _mm512_storeu_ps(q_ + 16, _mm512_mul_ps(va, c##r##1));                                  \
        } else {                                                                                   \
            _mm512_storeu_ps(q_, _mm512_fmadd_ps(va, c##r##0, _mm512_mul_ps(vb, _mm512_loadu_ps(q_)))); \
            _mm512_storeu_ps(q_ + 16,                                                               \
                             _mm512_fmadd_ps(va, c##r##1, _mm512_mul_ps(vb, _mm512_loadu_ps(q_ + 16)))); \
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
    __m512 c00 = _mm512_setzero_ps(), c01 = _mm512_setzero_ps();
    __m512 c10 = _mm512_setzero_ps(), c11 = _mm512_setzero_ps();
    __m512 c20 = _mm512_setzero_ps(), c21 = _mm512_setzero_ps();
    __m512 c30 = _mm512_setzero_ps(), c31 = _mm512_setzero_ps();
    __m512 c40 = _mm512_setzero_ps(), c41 = _mm512_setzero_ps();
    __m512 c50 = _mm512_setzero_ps(), c51 = _mm512_setzero_ps();

    const int full = m == MR && n == NR;
    if (full)
        for (int r = 0; r < MR; r++) {
            _mm_prefetch((const char *)(c + r * ldc), _MM_HINT_T0);
            _mm_prefetch((const char *)(c + r * ldc + NR - 1), _MM_HINT_T0);
        }

    int p = 0;
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

    const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
    _Alignas(64) float tile[MR * NR];
    float *dst = c;
    ptrdiff_t ld = ldc;
    if (!full) {
        dst = tile;
        ld = NR;
        memset(tile, 0, sizeof tile);
        if (beta != 0.0f)
            for (int i = 0; i < m; i++)
                memcpy(tile + i * NR, c + i * ldc, (size_t)n * sizeof(float));
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

void dj__sgemm_ukr_avx512(int k, const float *a, const float *b, ptrdiff_t bs, float *c,
                        ptrdiff_t ldc, int m, int n, float alpha, float beta)
{
    kernel(PACKED, k, a, NULL, b, bs, NULL, c, ldc, m, n, alpha, beta);
}

void dj__sgemm_ukr_ofs_avx512(int k, const float *a, const float *b, const int32_t *off, float *c,
                            ptrdiff_t ldc, int m, int n, float alpha, float beta)
{
    kernel(OFS, k, a, NULL, b, 0, off, c, ldc, m, n, alpha, beta);
}

void dj__sgemm_ukr_arows_avx512(int k, const float *const *arows, const float *b, float *c,
                              ptrdiff_t ldc, int m, int n, float alpha, float beta)
{
    kernel(AROWS, k, NULL, arows, b, NR, NULL, c, ldc, m, n, alpha, beta);
}
