/* gemm_avx2.c - the AVX2+FMA float32 GEMM micro-kernel: the body in
 * gemm_ukr_impl.h (shared with AVX-512) on ymm registers, a 6 x 16 tile of
 * C in twelve accumulators; the 15 live registers fit the 16 that AVX2 has.
 *
 * Also here: the AVX2 decoder of bf16 and 8-bit operands for the packing
 * routines (dj__opd_decode_avx2, used by the AVX2 and AVX-512 kernels).
 *
 * Built with -mavx2 -mfma; called only when dj_cpu_supports(DJ_ISA_AVX2). */
#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#include "kernels/gemm_internal.h"

#define DJ_V __m256
#define DJ_VW 8
#define DJ_V_ZERO() _mm256_setzero_ps()
#define DJ_V_LOAD(p) _mm256_loadu_ps(p)
#define DJ_V_STORE(p, v) _mm256_storeu_ps(p, v)
#define DJ_V_FMA(a, b, c) _mm256_fmadd_ps(a, b, c)
#define DJ_V_MUL(a, b) _mm256_mul_ps(a, b)
#define DJ_V_SET1(x) _mm256_set1_ps(x)
#define DJ_V_BCAST(p) _mm256_broadcast_ss(p)
#define DJ_UKR_NAME(base) base##avx2
#include "kernels/gemm_ukr_impl.h"

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

/* 8 codes by the table's form f (kernels.h): the exponent and mantissa
 * fields shifted into place and rebiased by one integer add; denormals and
 * zero by an exact multiply; the sign bit moved; codes of magnitude >=
 * f->special (NaN, Inf) gathered from the table. */
static inline __attribute__((always_inline)) __m256 decode8_form(const uint8_t *s, const float *lut,
                                                                 const dj_lut8_form *f)
{
    const __m256i m7f = _mm256_set1_epi32(0x7f);
    const __m256i c = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)s));
    const __m256i a = _mm256_and_si256(c, m7f);
    const __m256i sign = _mm256_slli_epi32(_mm256_andnot_si256(m7f, c), 24);
    const __m256i nb = _mm256_add_epi32(_mm256_sll_epi32(a, _mm_cvtsi32_si128(23 - f->mbits)),
                                        _mm256_set1_epi32(f->exp_add));
    const __m256i mm = _mm256_set1_epi32((1 << f->mbits) - 1);
    const __m256 den = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_and_si256(a, mm)),
                                     _mm256_set1_ps(f->dscale));
    const __m256i isden = _mm256_cmpgt_epi32(_mm256_set1_epi32(1 << f->mbits), a);
    __m256 v = _mm256_blendv_ps(_mm256_castsi256_ps(nb), den, _mm256_castsi256_ps(isden));
    v = _mm256_or_ps(v, _mm256_castsi256_ps(sign));
    if (f->special < 0x80) {
        const __m256i sp = _mm256_cmpgt_epi32(a, _mm256_set1_epi32(f->special - 1));
        if (!_mm256_testz_si256(sp, sp))
            v = _mm256_mask_i32gather_ps(v, lut, c, _mm256_castsi256_ps(sp), 4);
    }
    return v;
}

/* dj__opd_decode_generic with 8 lanes at a time: bf16 widened by a 16-bit
 * shift; 8-bit codes by the table's form, or gathered from the table. The
 * bits are the scalar routine's (the form is the table's, checked when made). */
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
        if (src.form) {
            const dj_lut8_form f = *src.form;
            for (; i + 8 <= n; i += 8)
                _mm256_storeu_ps(dst + i, decode8_form(s + i, src.lut, &f));
            break;
        }
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
