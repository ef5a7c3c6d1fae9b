/* norm_impl.h - the inner loops of the normalisation kernels (norm.c),
 * written once with GCC vector types and compiled per instruction set: the
 * including file defines DJ_NORM_NAME, the name of the dj__norm_fns it
 * exports (norm_generic.c plain, norm_avx2.c with AVX2).
 *
 * Every variant does the same operations in the same order on every value
 * (eight double lanes per sum, lane k taking elements 8 i + k, the tail in
 * lane 0, the lanes added pairwise; per-element formulas as written, and
 * both files are built with -ffp-contract=off so that no multiply-add is
 * fused), so the results are bit-identical across ISAs; test_norm.c checks
 * it. Only the width of the registers differs. */
#include <string.h>

#include "kernels/norm.h"

/* Without AVX a v4d is two SSE registers; every function that passes one is
 * static and inlined, so the ABI note does not apply. */
#pragma GCC diagnostic ignored "-Wpsabi"

typedef float v4f_n __attribute__((vector_size(16)));
typedef float v8f_n __attribute__((vector_size(32)));
typedef double v4d_n __attribute__((vector_size(32)));

#define AI static inline __attribute__((always_inline))

/* Eight floats at p as two vectors of four doubles. */
AI void ld8d(const float *p, v4d_n *lo, v4d_n *hi)
{
    v4f_n a, b;
    memcpy(&a, p, sizeof a);
    memcpy(&b, p + 4, sizeof b);
    *lo = __builtin_convertvector(a, v4d_n);
    *hi = __builtin_convertvector(b, v4d_n);
}

typedef int v8i_n __attribute__((vector_size(32)));

/* Eight gradients at dy as two vectors of four doubles, zero where the
 * ReLU mask (its output) is <= 0 (mask NULL: none), as relu's backward. */
AI void ld8g(const float *dy, const float *mask, v4d_n *lo, v4d_n *hi)
{
    if (!mask) {
        ld8d(dy, lo, hi);
        return;
    }
    v8f_n g, mk;
    memcpy(&g, dy, sizeof g);
    memcpy(&mk, mask, sizeof mk);
    const v8i_n zero = {0};
    g = (v8f_n)((v8i_n)g & ~(mk <= (v8f_n)zero));
    const v4f_n a = {g[0], g[1], g[2], g[3]}, b = {g[4], g[5], g[6], g[7]};
    *lo = __builtin_convertvector(a, v4d_n);
    *hi = __builtin_convertvector(b, v4d_n);
}

/* The same for one value, times gamma[i] when gamma is not NULL. */
AI double g_at(const float *dy, const float *mask, const float *gamma, size_t i)
{
    const double g = mask && mask[i] <= 0.0f ? 0.0 : (double)dy[i];
    return gamma ? g * gamma[i] : g;
}

/* Elements i .. i + 7 of x and of the gradient g (ld8g, times gamma when
 * gamma is not NULL), each as two vectors of four doubles. */
AI void ld8xg(const float *x, const float *dy, const float *mask, const float *gamma, size_t i,
              v4d_n *x0, v4d_n *x1, v4d_n *g0, v4d_n *g1)
{
    ld8d(x + i, x0, x1);
    ld8g(dy + i, mask ? mask + i : NULL, g0, g1);
    if (gamma) {
        v4d_n m0, m1;
        ld8d(gamma + i, &m0, &m1);
        *g0 *= m0;
        *g1 *= m1;
    }
}

AI v4d_n splat4d(double v)
{
    return (v4d_n){v, v, v, v};
}

/* The eight lanes (lo: 0..3, hi: 4..7) into an array. */
AI void lanes_out(v4d_n lo, v4d_n hi, double a[8])
{
    memcpy(a, &lo, sizeof lo);
    memcpy(a + 4, &hi, sizeof hi);
}

AI double lanes_sum(const double a[8])
{
    return ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
}

static void shifted_sums(const float *x, size_t n, double shift, double *s1, double *s2)
{
    const v4d_n sh = splat4d(shift);
    v4d_n a0 = {0}, a1 = {0}, b0 = {0}, b1 = {0};
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        v4d_n x0, x1;
        ld8d(x + i, &x0, &x1);
        const v4d_n d0 = x0 - sh, d1 = x1 - sh;
        a0 += d0;
        a1 += d1;
        b0 += d0 * d0;
        b1 += d1 * d1;
    }
    double a[8], b[8];
    lanes_out(a0, a1, a);
    lanes_out(b0, b1, b);
    for (; i < n; i++) {
        const double d = (double)x[i] - shift;
        a[0] += d;
        b[0] += d * d;
    }
    *s1 += lanes_sum(a);
    *s2 += lanes_sum(b);
}

/* g = dy (0 where mask <= 0), or that times gamma (both widened first) */
static void bwd_sums(const float *x, const float *dy, const float *mask, const float *gamma,
                     size_t n, float m, double s[3])
{
    const v4d_n mv = splat4d(m);
    v4d_n a0 = {0}, a1 = {0}, b0 = {0}, b1 = {0}, c0 = {0}, c1 = {0};
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        v4d_n x0, x1, g0, g1;
        ld8xg(x, dy, mask, gamma, i, &x0, &x1, &g0, &g1);
        const v4d_n d0 = x0 - mv, d1 = x1 - mv;
        a0 += d0;
        a1 += d1;
        b0 += g0;
        b1 += g1;
        c0 += g0 * d0;
        c1 += g1 * d1;
    }
    double a[8], b[8], c[8];
    lanes_out(a0, a1, a);
    lanes_out(b0, b1, b);
    lanes_out(c0, c1, c);
    for (; i < n; i++) {
        const double d = (double)x[i] - m, g = g_at(dy, mask, gamma, i);
        a[0] += d;
        b[0] += g;
        c[0] += g * d;
    }
    s[0] += lanes_sum(a);
    s[1] += lanes_sum(b);
    s[2] += lanes_sum(c);
}

/* dx = (float)(((g - mg) - ((x - m) - shift) * k) * scale), in double */
static void bwd_dx(const float *x, const float *dy, const float *mask, const float *gamma,
                   float *dx, size_t n, float m, const dj__norm_coef *c)
{
    const double shift = c->shift, mg = c->mg, k = c->k, scale = c->scale;
    const v4d_n mv = splat4d(m), shv = splat4d(shift), mgv = splat4d(mg), kv = splat4d(k),
                scv = splat4d(scale);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        v4d_n x0, x1, g0, g1;
        ld8xg(x, dy, mask, gamma, i, &x0, &x1, &g0, &g1);
        const v4d_n r0 = ((g0 - mgv) - ((x0 - mv) - shv) * kv) * scv;
        const v4d_n r1 = ((g1 - mgv) - ((x1 - mv) - shv) * kv) * scv;
        const v4f_n f0 = __builtin_convertvector(r0, v4f_n), f1 = __builtin_convertvector(r1, v4f_n);
        memcpy(dx + i, &f0, sizeof f0);
        memcpy(dx + i + 4, &f1, sizeof f1);
    }
    for (; i < n; i++) {
        const double g = g_at(dy, mask, gamma, i);
        dx[i] = (float)(((g - mg) - (((double)x[i] - m) - shift) * k) * scale);
    }
}

/* y = ((x - mean_hi) - mean_lo) * scale + shift in float, then (relu) x <
 * 0 ? 0 : x; y may be x */
static void normalize(const float *x, float *y, size_t n, float mean_hi, float mean_lo, float scale,
                      float shift, int relu)
{
    const v8i_n zero = {0};
    const v8f_n mh = {mean_hi, mean_hi, mean_hi, mean_hi, mean_hi, mean_hi, mean_hi, mean_hi};
    const v8f_n ml = {mean_lo, mean_lo, mean_lo, mean_lo, mean_lo, mean_lo, mean_lo, mean_lo};
    const v8f_n sc = {scale, scale, scale, scale, scale, scale, scale, scale};
    const v8f_n sh = {shift, shift, shift, shift, shift, shift, shift, shift};
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        v8f_n v;
        memcpy(&v, x + i, sizeof v);
        v = ((v - mh) - ml) * sc + sh;
        if (relu)
            v = (v8f_n)((v8i_n)v & ~(v < (v8f_n)zero));
        memcpy(y + i, &v, sizeof v);
    }
    for (; i < n; i++) {
        const float t = ((x[i] - mean_hi) - mean_lo) * scale + shift;
        y[i] = relu && t < 0.0f ? 0.0f : t;
    }
}

const dj__norm_fns DJ_NORM_NAME = {shifted_sums, bwd_sums, bwd_dx, normalize};
