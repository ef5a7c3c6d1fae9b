/* gemm_avx2.c - the AVX2+FMA float32 GEMM micro-kernel: a 6 x 16 tile of C
 * in twelve ymm accumulators (two vectors per row), fed per k by two loads
 * of the B panel and six broadcasts of A. Twelve independent FMA chains
 * cover the FMA latency x throughput of Zen 3 and Intel cores alike, and the
 * 15 live registers fit the 16 that AVX2 has.
 *
 * One kernel body, inlined into three entry points that differ only in
 * where the operands come from (see gemm_internal.h): packed A and B panels
 * (B's rows may have any stride), B rows through an offset table, or A rows
 * read in place through row pointers. Edge tiles go through a full-size
 * buffer, so they are computed by the same instructions as interior ones.
 *
 * Also here: the AVX2 decoder of bf16 and 8-bit operands for the packing
 * routines (dj__opd_decode_avx2, used by the AVX2 and AVX-512 kernels).
 *
 * Built with -mavx2 -mfma; called only when dj_cpu_supports(DJ_ISA_AVX2). */
#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#include "kernels/gemm_internal.h"

#define MR 6
#define NR 16

/* One k step q of the unrolled group: row r of the tile += A(q, r) * B row. */
#define ROW(r, q)                                                                                  \
    do {                                                                                           \
        const __m256 av_ = _mm256_broadcast_ss(mode == AROWS ? a##r + (q) : a + (q) * MR + (r));                                   \
        c##r##0 = _mm256_fmadd_ps(av_, b0, c##r##0);                                               \
        c##r##1 = _mm256_fmadd_ps(av_, b1, c##r##1);                                               \
    } while (0)

/* B row q of the group: b + q * bs, or b + off[q] with an offset table. */
#define BROW(q) (mode == OFS ? b + off[q] : b + (q) * bs)

#define STEP(q)                                                                                    \
    do {                                                                                           \
        const float *bp_ = BROW(q);                                                                \
        const __m256 b0 = _mm256_loadu_ps(bp_);                                                    \
        const __m256 b1 = _mm256_loadu_ps(bp_ + 8);                                                \
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
            _mm256_storeu_ps(q_, _mm256_mul_ps(va, c##r##0));                                      \
            _mm256_storeu_ps(q_ + 8, _mm256_mul_ps(va, c##r##1));                                  \
        } else {                                                                                   \
            _mm256_storeu_ps(q_, _mm256_fmadd_ps(va, c##r##0, _mm256_mul_ps(vb, _mm256_loadu_ps(q_)))); \
            _mm256_storeu_ps(q_ + 8,                                                               \
                             _mm256_fmadd_ps(va, c##r##1, _mm256_mul_ps(vb, _mm256_loadu_ps(q_ + 8)))); \
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
    __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps();
    __m256 c10 = _mm256_setzero_ps(), c11 = _mm256_setzero_ps();
    __m256 c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps();
    __m256 c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps();
    __m256 c40 = _mm256_setzero_ps(), c41 = _mm256_setzero_ps();
    __m256 c50 = _mm256_setzero_ps(), c51 = _mm256_setzero_ps();

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

    const __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
    _Alignas(32) float tile[MR * NR];
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

void dj__sgemm_ukr_avx2(int k, const float *a, const float *b, ptrdiff_t bs, float *c,
                        ptrdiff_t ldc, int m, int n, float alpha, float beta)
{
    kernel(PACKED, k, a, NULL, b, bs, NULL, c, ldc, m, n, alpha, beta);
}

void dj__sgemm_ukr_ofs_avx2(int k, const float *a, const float *b, const int32_t *off, float *c,
                            ptrdiff_t ldc, int m, int n, float alpha, float beta)
{
    kernel(OFS, k, a, NULL, b, 0, off, c, ldc, m, n, alpha, beta);
}

void dj__sgemm_ukr_arows_avx2(int k, const float *const *arows, const float *b, float *c,
                              ptrdiff_t ldc, int m, int n, float alpha, float beta)
{
    kernel(AROWS, k, NULL, arows, b, NR, NULL, c, ldc, m, n, alpha, beta);
}

/* ---- packing ---- */

/* Columns i of the 8 x 8 block rows r[0..7] (8 floats each): o[i] holds
 * r[0][i] .. r[7][i]. */
static inline __attribute__((always_inline)) void transpose8(__m256 r[8], __m256 o[8])
{
    const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
    const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
    const __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
    const __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
    const __m256 u0 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(1, 0, 1, 0));
    const __m256 u1 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(3, 2, 3, 2));
    const __m256 u2 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(1, 0, 1, 0));
    const __m256 u3 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(3, 2, 3, 2));
    const __m256 u4 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(1, 0, 1, 0));
    const __m256 u5 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(3, 2, 3, 2));
    const __m256 u6 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(1, 0, 1, 0));
    const __m256 u7 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(3, 2, 3, 2));
    o[0] = _mm256_permute2f128_ps(u0, u4, 0x20);
    o[1] = _mm256_permute2f128_ps(u1, u5, 0x20);
    o[2] = _mm256_permute2f128_ps(u2, u6, 0x20);
    o[3] = _mm256_permute2f128_ps(u3, u7, 0x20);
    o[4] = _mm256_permute2f128_ps(u0, u4, 0x31);
    o[5] = _mm256_permute2f128_ps(u1, u5, 0x31);
    o[6] = _mm256_permute2f128_ps(u2, u6, 0x31);
    o[7] = _mm256_permute2f128_ps(u3, u7, 0x31);
}

/* dj__sgemm_pack_b_rows for NR = 16: k rows of 16 lanes from nr <= 16
 * source rows (rows[j][0 .. k)), lanes past nr zero. Each full half of 8
 * lanes goes through 8 x 8 transposes; the rest lane by lane. */
void dj__sgemm_pack_b_rows_avx2(const float *const *rows, int nr, int k, float *dst)
{
    for (int h = 0; h < 2; h++) {
        float *d = dst + h * 8;
        const int lanes = nr - h * 8 < 0 ? 0 : nr - h * 8 > 8 ? 8 : nr - h * 8;
        int p = 0;
        if (lanes == 8) {
            const float *const *s = rows + h * 8;
            for (; p + 8 <= k; p += 8) {
                __m256 r[8], o[8];
                for (int i = 0; i < 8; i++)
                    r[i] = _mm256_loadu_ps(s[i] + p);
                transpose8(r, o);
                for (int i = 0; i < 8; i++)
                    _mm256_storeu_ps(d + (size_t)(p + i) * NR, o[i]);
            }
            for (; p + 4 <= k; p += 4) /* then 4 x 4 blocks */
                for (int q = 0; q < 8; q += 4) {
                    __m128 x0 = _mm_loadu_ps(s[q] + p), x1 = _mm_loadu_ps(s[q + 1] + p);
                    __m128 x2 = _mm_loadu_ps(s[q + 2] + p), x3 = _mm_loadu_ps(s[q + 3] + p);
                    _MM_TRANSPOSE4_PS(x0, x1, x2, x3);
                    _mm_storeu_ps(d + (size_t)p * NR + q, x0);
                    _mm_storeu_ps(d + (size_t)(p + 1) * NR + q, x1);
                    _mm_storeu_ps(d + (size_t)(p + 2) * NR + q, x2);
                    _mm_storeu_ps(d + (size_t)(p + 3) * NR + q, x3);
                }
        }
        for (; p < k; p++) {
            float *dp = d + (size_t)p * NR;
            for (int i = 0; i < lanes; i++)
                dp[i] = rows[h * 8 + i][p];
            for (int i = lanes; i < 8; i++)
                dp[i] = 0.0f;
        }
    }
}

/* dj__opd_decode_generic with 8 lanes at a time: bf16 widened by a 16-bit
 * shift, 8-bit codes gathered from the table. Bits are moved, never
 * computed on, so the result is the scalar routine's. */
void dj__opd_decode_avx2(dj_opd src, int n, float *dst)
{
    int i = 0;
    switch (src.kind) {
    case DJ_OPD_BF16: {
        const uint16_t *s = src.p;
        for (; i + 8 <= n; i += 8) {
            const __m128i h = _mm_loadu_si128((const __m128i *)(s + i));
            const __m256i w = _mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16);
            _mm256_storeu_si256((__m256i *)(dst + i), w);
        }
        break;
    }
    case DJ_OPD_U8: {
        const uint8_t *s = src.p;
        for (; i + 8 <= n; i += 8) {
            const __m256i idx = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(s + i)));
            _mm256_storeu_ps(dst + i, _mm256_i32gather_ps(src.lut, idx, 4));
        }
        break;
    }
    default: break;
    }
    dj__opd_decode_generic(dj__opd_at(src, i), n - i, dst + i);
}
