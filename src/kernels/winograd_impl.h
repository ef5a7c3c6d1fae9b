/* winograd_impl.h - the F(4x4, 3x3) tile transforms (winograd.h), written
 * once with GCC vector types of eight floats (one tile per lane) and
 * compiled per instruction set: the including file defines DJ_WINO_NAME,
 * the name of the dj__wino_fns it exports. */
#include <stdint.h>
#include <string.h>
#ifdef __AVX2__
#include <immintrin.h>
#endif

#include "kernels/winograd.h"

typedef float v8 __attribute__((vector_size(32)));
typedef int32_t v8i __attribute__((vector_size(32)));
/* Without AVX a v8 is two SSE registers; every function that passes one is
 * static and inlined, so the ABI note does not apply. */
#pragma GCC diagnostic ignored "-Wpsabi"

static inline __attribute__((always_inline)) v8 ld8(const float *p)
{
    v8 v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline __attribute__((always_inline)) void st8(float *p, v8 v)
{
    memcpy(p, &v, sizeof v);
}

/* The 1-D transforms, shared subexpressions spelled out: o[k * so] = row k
 * of the matrix times (x[0], x[s], ...). */

/* B^T, 6 -> 6 */
static inline __attribute__((always_inline)) void bt6(const v8 *x, ptrdiff_t s, v8 *o, ptrdiff_t so)
{
    const v8 d0 = x[0], d1 = x[s], d2 = x[2 * s], d3 = x[3 * s], d4 = x[4 * s], d5 = x[5 * s];
    const v8 t5 = d4 - d2, t6 = d3 - d1;
    o[0] = 4.0f * d0 - 5.0f * d2 + d4;
    o[so] = (d3 + d4) - 4.0f * (d1 + d2);
    o[2 * so] = (d4 - d3) + 4.0f * (d1 - d2);
    o[3 * so] = t5 + 2.0f * t6;
    o[4 * so] = t5 - 2.0f * t6;
    o[5 * so] = 4.0f * d1 - 5.0f * d3 + d5;
}

/* A^T, 6 -> 4 */
static inline __attribute__((always_inline)) void at6(const v8 *x, ptrdiff_t s, v8 *o, ptrdiff_t so)
{
    const v8 s1 = x[s] + x[2 * s], e1 = x[s] - x[2 * s];
    const v8 s2 = x[3 * s] + x[4 * s], e2 = x[3 * s] - x[4 * s];
    o[0] = x[0] + s1 + s2;
    o[so] = e1 + 2.0f * e2;
    o[2 * so] = s1 + 4.0f * s2;
    o[3 * so] = e1 + 8.0f * e2 + x[5 * s];
}

/* A, 4 -> 6 */
static inline __attribute__((always_inline)) void a4(const v8 *x, ptrdiff_t s, v8 *o, ptrdiff_t so)
{
    const v8 y0 = x[0], y1 = x[s], y2 = x[2 * s], y3 = x[3 * s];
    const v8 p = y0 + y2, q = y1 + y3, p4 = y0 + 4.0f * y2, q4 = y1 + 4.0f * y3;
    o[0] = y0;
    o[so] = p + q;
    o[2 * so] = p - q;
    o[3 * so] = p4 + 2.0f * q4;
    o[4 * so] = p4 - 2.0f * q4;
    o[5 * so] = y3;
}

#ifdef __AVX2__
/* Four 4 x 4 transposes, one in each 128-bit half of r[0..3]: q[k] holds
 * element k of every row, for the low half and the high half. */
static inline __attribute__((always_inline)) void transpose4_halves(const __m256 *r, __m256 *q)
{
    const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
    const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
    q[0] = _mm256_shuffle_ps(t0, t2, 0x44);
    q[1] = _mm256_shuffle_ps(t0, t2, 0xEE);
    q[2] = _mm256_shuffle_ps(t1, t3, 0x44);
    q[3] = _mm256_shuffle_ps(t1, t3, 0xEE);
}
#endif

/* Row r of the tiles' 4 x 4 outputs (o[q] lane l: column q of tile l) into
 * dst + l * ls (the first cols[l] values). */
static inline __attribute__((always_inline)) void put_row(const v8 *o, int nl, float *dst,
                                                          ptrdiff_t ls, const int *cols)
{
#ifdef __AVX2__
    /* 4 x 4 transposes in each 128-bit half: tile l's row in one register */
    const __m256 r[4] = {(__m256)o[0], (__m256)o[1], (__m256)o[2], (__m256)o[3]};
    __m256 q[4];
    transpose4_halves(r, q);
    for (int l = 0; l < nl; l++) {
        const __m128 v = l < 4 ? _mm256_castps256_ps128(q[l]) : _mm256_extractf128_ps(q[l - 4], 1);
        if (cols[l] == 4) {
            _mm_storeu_ps(dst + l * ls, v);
        } else {
            float tmp[4];
            _mm_storeu_ps(tmp, v);
            for (int c = 0; c < cols[l]; c++)
                dst[l * ls + c] = tmp[c];
        }
    }
#else
    for (int l = 0; l < nl; l++)
        for (int c = 0; c < cols[l]; c++)
            dst[l * ls + c] = o[c][l];
#endif
}

static void in_tiles(const float *src, ptrdiff_t rs, ptrdiff_t xs, ptrdiff_t qs, ptrdiff_t plane,
                     int nc, float *v, size_t vs, ptrdiff_t ld)
{
    for (int c = 0; c < nc; c++) {
        const float *s = src + c * plane;
        v8 d[36], t[36], o[6];
        for (int r = 0; r < 6; r++)
            for (int q = 0; q < 6; q++)
                d[r * 6 + q] = ld8(s + r * rs + (q & 3) * xs + (q >> 2) * qs);
        for (int q = 0; q < 6; q++) /* columns: t = B^T d */
            bt6(d + q, 6, t + q, 6);
        for (int i = 0; i < 6; i++) { /* rows: (B^T d) B */
            bt6(t + i * 6, 1, o, 1);
            float *p = v + (size_t)i * 6 * vs + (size_t)c * ld;
            for (int j = 0; j < 6; j++)
                st8(p + j * vs, o[j]);
        }
    }
}

static void dy_tiles(const float *src, ptrdiff_t rs, ptrdiff_t xs, ptrdiff_t plane, int nc,
                     float *y, size_t vs, ptrdiff_t ld)
{
    for (int c = 0; c < nc; c++) {
        const float *s = src + c * plane;
        v8 d[16], t[24], o[6];
        for (int r = 0; r < 4; r++)
            for (int q = 0; q < 4; q++)
                d[r * 4 + q] = ld8(s + r * rs + q * xs);
        for (int q = 0; q < 4; q++) /* columns: t (6 x 4) = A d */
            a4(d + q, 4, t + q, 4);
        for (int i = 0; i < 6; i++) { /* rows: (A d) A^T */
            a4(t + i * 4, 1, o, 1);
            float *p = y + (size_t)i * 6 * vs + (size_t)c * ld;
            for (int j = 0; j < 6; j++)
                st8(p + j * vs, o[j]);
        }
    }
}

static void out_tiles(const float *m, size_t vs, ptrdiff_t ld, int nc, int nl, float *dst,
                      ptrdiff_t ls, int rows, const int *cols, ptrdiff_t ldd, ptrdiff_t plane,
                      const float *bias, int relu)
{
    for (int c = 0; c < nc; c++) {
        v8 x[36], t[24], o[4];
        for (int k = 0; k < 36; k++)
            x[k] = ld8(m + k * vs + (size_t)c * ld);
        for (int j = 0; j < 6; j++) /* columns: t (4 x 6) = A^T M */
            at6(x + j, 6, t + j, 6);
        const float b = bias ? bias[c] : 0.0f;
        for (int r = 0; r < rows; r++) { /* rows: (A^T M) A */
            at6(t + r * 6, 1, o, 1);
            for (int q = 0; q < 4; q++) {
                o[q] += b;
                if (relu) /* negatives to +0; -0 and NaN stay */
                    o[q] = (v8)((v8i)o[q] & ~(o[q] < 0.0f));
            }
            put_row(o, nl, dst + c * plane + r * ldd, ls, cols);
        }
    }
}

static void split_row(const float *row, int xs, float *dst)
{
    int x = 0;
#ifdef __AVX2__
    /* 32 floats: pair the phases within each vector, then a 4 x 4
     * transpose of 64-bit pairs */
    const __m256i pairs = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    for (; x + 8 <= xs; x += 8) {
        const float *r = row + 4 * x;
        const __m256d a0 = _mm256_castps_pd(_mm256_permutevar8x32_ps(_mm256_loadu_ps(r), pairs));
        const __m256d a1 = _mm256_castps_pd(_mm256_permutevar8x32_ps(_mm256_loadu_ps(r + 8), pairs));
        const __m256d a2 = _mm256_castps_pd(_mm256_permutevar8x32_ps(_mm256_loadu_ps(r + 16), pairs));
        const __m256d a3 = _mm256_castps_pd(_mm256_permutevar8x32_ps(_mm256_loadu_ps(r + 24), pairs));
        const __m256d t0 = _mm256_unpacklo_pd(a0, a1), t1 = _mm256_unpackhi_pd(a0, a1);
        const __m256d t2 = _mm256_unpacklo_pd(a2, a3), t3 = _mm256_unpackhi_pd(a2, a3);
        _mm256_storeu_ps(dst + x, _mm256_castpd_ps(_mm256_permute2f128_pd(t0, t2, 0x20)));
        _mm256_storeu_ps(dst + xs + x, _mm256_castpd_ps(_mm256_permute2f128_pd(t1, t3, 0x20)));
        _mm256_storeu_ps(dst + 2 * xs + x, _mm256_castpd_ps(_mm256_permute2f128_pd(t0, t2, 0x31)));
        _mm256_storeu_ps(dst + 3 * xs + x, _mm256_castpd_ps(_mm256_permute2f128_pd(t1, t3, 0x31)));
    }
#endif
    for (; x < xs; x++)
        for (int ph = 0; ph < 4; ph++)
            dst[ph * xs + x] = row[4 * x + ph];
}

static void interleave(const float *const *src, int n, float *dst)
{
    int p = 0;
#ifdef __AVX2__
    /* an 8 x 8 transpose per 8 positions */
    for (; p + 8 <= n; p += 8) {
        __m256 in[8], r[8];
        for (int l = 0; l < 8; l++)
            in[l] = _mm256_loadu_ps(src[l] + p);
        transpose4_halves(in, r);
        transpose4_halves(in + 4, r + 4);
        /* r[k] (k < 4) holds positions p + k, p + 4 + k of lanes 0-3 in its
         * halves; r[4 + k] those of lanes 4-7 */
        for (int k = 0; k < 4; k++) {
            _mm256_storeu_ps(dst + 8 * (p + k), _mm256_permute2f128_ps(r[k], r[4 + k], 0x20));
            _mm256_storeu_ps(dst + 8 * (p + 4 + k), _mm256_permute2f128_ps(r[k], r[4 + k], 0x31));
        }
    }
#endif
    for (; p < n; p++)
        for (int l = 0; l < 8; l++)
            dst[8 * p + l] = src[l][p];
}

const dj__wino_fns DJ_WINO_NAME = {in_tiles, out_tiles, dy_tiles, split_row, interleave};
