/* test_conv2d.c - the convolution kernels.
 *
 * 1. The reference against hand-computed results on tiny cases (forward,
 *    both backwards, with and without padding and stride).
 * 2. The references against each other: backward_data and backward_weight
 *    are the adjoints of forward, so <conv(x, w), dy> = <x, dx> = <w, dw>.
 * 3. Every fast path (each ISA this CPU runs, 1, 2 and 3 threads) against
 *    the reference on many shapes (odd sizes, strides 1-3, paddings 0-2,
 *    non-square kernels, 1x1, K and P beyond one cache block, batch smaller
 *    than the thread count, padding beyond the kernel; stride 1 takes the
 *    implicit-GEMM path unless K is huge, other strides the implicit GEMM
 *    over phase planes, then again im2col), within a bound on float rounding error computed
 *    per element from the same operation on |x|, |w|, |dy|. Outputs start
 *    as NaN (the kernels overwrite); the workspace is exactly the size
 *    dj_conv2d_workspace asks for (ASan checks the rest).
 * 4. Bit-identical results on 1, 2 and 3 threads and across repeated runs. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "kernels/gemm_internal.h"
#include "kernels/winograd.h"

static uint64_t rng_state = 0x853C49E6748FEA9BULL;

static float frand(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (float)((double)(rng_state >> 40) / (double)(1ull << 24) * 2.0 - 1.0);
}

static size_t x_len(const dj_conv2d_dims *d)
{
    return (size_t)d->n * d->c * d->h * d->w;
}

static size_t y_len(const dj_conv2d_dims *d)
{
    return (size_t)d->n * d->oc * d->oh * d->ow;
}

static size_t w_len(const dj_conv2d_dims *d)
{
    return (size_t)d->oc * d->c * d->kh * d->kw;
}

static int near(float got, float want)
{
    return fabsf(got - want) <= 1e-5f * (1.0f + fabsf(want));
}

/* ---- 1. hand-computed cases ---- */

static void test_hand(void)
{
    dj_conv2d_dims d;
    const float x[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    /* 3x3 image, 2x2 kernel [1 2; 3 4], stride 1, no padding. */
    CHECK(dj_conv2d_dims_init(&d, 1, 1, 3, 3, 1, 2, 2, 1, 1, 0, 0) == DJ_OK, "dims");
    CHECK(d.oh == 2 && d.ow == 2, "oh %d ow %d", d.oh, d.ow);
    const float w[4] = {1, 2, 3, 4}, bias = 0.5f, ones[4] = {1, 1, 1, 1};
    float y[4], dx[9], dw[4], db;
    dj_conv2d_forward_ref(&d, x, w, &bias, y);
    const float y_want[4] = {37.5f, 47.5f, 67.5f, 77.5f};
    for (int i = 0; i < 4; i++)
        CHECK(near(y[i], y_want[i]), "forward y[%d] = %g, want %g", i, y[i], y_want[i]);
    dj_conv2d_backward_data_ref(&d, ones, w, dx);
    const float dx_want[9] = {1, 3, 2, 4, 10, 6, 3, 7, 4};
    for (int i = 0; i < 9; i++)
        CHECK(near(dx[i], dx_want[i]), "backward_data dx[%d] = %g, want %g", i, dx[i], dx_want[i]);
    dj_conv2d_backward_weight_ref(&d, x, ones, dw, &db);
    const float dw_want[4] = {12, 16, 24, 28};
    for (int i = 0; i < 4; i++)
        CHECK(near(dw[i], dw_want[i]), "backward_weight dw[%d] = %g, want %g", i, dw[i], dw_want[i]);
    CHECK(near(db, 4), "dbias %g", db);

    /* 3x3 image, 3x3 kernel of ones, stride 2, padding 1: 2x2 output, each
     * the sum of a clipped window. */
    CHECK(dj_conv2d_dims_init(&d, 1, 1, 3, 3, 1, 3, 3, 2, 2, 1, 1) == DJ_OK, "dims");
    CHECK(d.oh == 2 && d.ow == 2, "oh %d ow %d", d.oh, d.ow);
    float w9[9];
    for (int i = 0; i < 9; i++)
        w9[i] = 1;
    dj_conv2d_forward_ref(&d, x, w9, NULL, y);
    const float y2_want[4] = {12, 16, 24, 28};
    for (int i = 0; i < 4; i++)
        CHECK(near(y[i], y2_want[i]), "padded forward y[%d] = %g, want %g", i, y[i], y2_want[i]);
    /* dy = [1 2; 3 4]: dx(iy, ix) = sum of dy over windows covering it. */
    const float dy2[4] = {1, 2, 3, 4};
    dj_conv2d_backward_data_ref(&d, dy2, w9, dx);
    const float dx2_want[9] = {1, 3, 2, 4, 10, 6, 3, 7, 4};
    for (int i = 0; i < 9; i++)
        CHECK(near(dx[i], dx2_want[i]), "padded backward_data dx[%d] = %g, want %g", i, dx[i],
              dx2_want[i]);
    float dw9[9];
    dj_conv2d_backward_weight_ref(&d, x, dy2, dw9, &db);
    /* dw(ki, kj) = sum_{oy, ox} dy(oy, ox) x(2 oy - 1 + ki, 2 ox - 1 + kj) */
    const float dw9_want[9] = {4 * 5, 3 * 4 + 4 * 6, 3 * 5, 2 * 2 + 4 * 8, 1 * 1 + 2 * 3 + 3 * 7 + 4 * 9,
                               1 * 2 + 3 * 8, 2 * 5, 1 * 4 + 2 * 6, 1 * 5};
    for (int i = 0; i < 9; i++)
        CHECK(near(dw9[i], dw9_want[i]), "padded backward_weight dw[%d] = %g, want %g", i, dw9[i],
              dw9_want[i]);
    CHECK(near(db, 10), "dbias %g", db);

    /* Rejected shapes. */
    CHECK(dj_conv2d_dims_init(&d, 1, 1, 2, 2, 1, 3, 3, 1, 1, 0, 0) == DJ_ERR_ARG, "kernel > image");
    CHECK(dj_conv2d_dims_init(&d, 1, 1, 4, 4, 1, 3, 3, 0, 1, 0, 0) == DJ_ERR_ARG, "stride 0");
    CHECK(dj_conv2d_dims_init(&d, 0, 1, 4, 4, 1, 3, 3, 1, 1, 0, 0) == DJ_ERR_ARG, "batch 0");
    CHECK(dj_conv2d_dims_init(&d, 1, 1, 4, 4, 1, 3, 3, 1, 1, -1, 0) == DJ_ERR_ARG, "pad -1");
}

/* ---- 2. adjoint identities of the references ---- */

static double dot(const float *a, const float *b, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += (double)a[i] * b[i];
    return s;
}

static void test_adjoint(void)
{
    dj_conv2d_dims d;
    dj_conv2d_dims_init(&d, 2, 3, 7, 8, 4, 3, 2, 2, 1, 1, 2);
    float *x = malloc(x_len(&d) * 4), *w = malloc(w_len(&d) * 4), *y = malloc(y_len(&d) * 4);
    float *dy = malloc(y_len(&d) * 4), *dx = malloc(x_len(&d) * 4), *dw = malloc(w_len(&d) * 4);
    for (size_t i = 0; i < x_len(&d); i++)
        x[i] = frand();
    for (size_t i = 0; i < w_len(&d); i++)
        w[i] = frand();
    for (size_t i = 0; i < y_len(&d); i++)
        dy[i] = frand();
    dj_conv2d_forward_ref(&d, x, w, NULL, y);
    dj_conv2d_backward_data_ref(&d, dy, w, dx);
    dj_conv2d_backward_weight_ref(&d, x, dy, dw, NULL);
    const double a = dot(y, dy, y_len(&d)), b = dot(x, dx, x_len(&d)), c = dot(w, dw, w_len(&d));
    CHECK(fabs(a - b) <= 1e-5 * (1 + fabs(a)), "<conv x, dy> %.9g != <x, dx> %.9g", a, b);
    CHECK(fabs(a - c) <= 1e-5 * (1 + fabs(a)), "<conv x, dy> %.9g != <w, dw> %.9g", a, c);
    free(x);
    free(w);
    free(y);
    free(dy);
    free(dx);
    free(dw);
}

/* ---- 3, 4. fast paths against the reference ---- */

typedef struct {
    int n, c, h, w, oc, kh, kw, sh, sw, ph, pw;
} conv_case;

static const conv_case cases[] = {
    {1, 1, 3, 3, 1, 2, 2, 1, 1, 0, 0},    {2, 3, 7, 6, 5, 3, 3, 1, 1, 1, 1},
    {3, 2, 9, 8, 7, 3, 2, 2, 1, 0, 2},    {1, 4, 5, 5, 3, 1, 1, 1, 1, 0, 0},
    {2, 5, 6, 7, 4, 1, 1, 2, 2, 0, 0},    {1, 3, 8, 8, 13, 5, 5, 2, 2, 2, 2},
    {2, 1, 28, 28, 8, 3, 3, 1, 1, 0, 0},  {1, 40, 6, 6, 6, 3, 3, 1, 1, 1, 1},
    {2, 3, 20, 20, 4, 1, 3, 1, 1, 0, 1},  {1, 64, 14, 14, 9, 3, 3, 1, 1, 1, 1},
    {4, 16, 7, 7, 16, 3, 3, 1, 1, 1, 1},  {3, 2, 4, 9, 3, 4, 1, 1, 3, 2, 0},
    {1, 2, 2, 2, 3, 3, 3, 1, 1, 1, 1},    {2, 3, 5, 4, 2, 2, 2, 2, 2, 1, 1},
    {5, 6, 10, 11, 17, 3, 3, 2, 2, 1, 0}, {1, 7, 1, 9, 5, 1, 3, 1, 2, 0, 1},
    /* padding beyond k - 1: backward_data crops dy */
    {1, 2, 5, 5, 3, 1, 1, 1, 1, 1, 1},    {2, 3, 6, 5, 4, 2, 3, 1, 1, 2, 3},
    /* K = 9225 > 8192: stride 1 and 2 on the im2col path */
    {1, 1025, 3, 3, 2, 3, 3, 1, 1, 0, 0}, {1, 1025, 5, 4, 2, 3, 3, 2, 2, 1, 1},
    /* stride 2 with rows long enough for the four-wide gather and scatter:
     * fmnist-resnet's 3x3 and 1x1, odd widths, padding 0 and 2 */
    {2, 6, 28, 28, 9, 3, 3, 2, 2, 1, 1},  {2, 5, 27, 29, 4, 1, 1, 2, 2, 0, 0},
    {1, 3, 19, 23, 5, 3, 3, 2, 2, 0, 2},
    /* Winograd shapes: fmnist-cnn's second convolution (several chunks of
     * images), fmnist-resnet's, partial tiles, one image per chunk */
    {6, 32, 26, 26, 64, 3, 3, 1, 1, 0, 0},  {3, 16, 14, 14, 32, 3, 3, 1, 1, 1, 1},
    {2, 17, 9, 11, 19, 3, 3, 1, 1, 1, 1},   {2, 24, 7, 7, 20, 3, 3, 1, 1, 1, 1},
    {1, 16, 49, 45, 16, 3, 3, 1, 1, 1, 1},  {2, 5, 6, 6, 7, 3, 3, 1, 1, 2, 2},
    /* ... with image lanes (more images than tiles in a row): a partial
     * group of eight, two chunks (8 + 2 images), whole groups only */
    {9, 16, 7, 7, 16, 3, 3, 1, 1, 1, 1},    {10, 17, 9, 11, 19, 3, 3, 1, 1, 1, 1},
    {8, 16, 5, 6, 8, 3, 3, 1, 1, 1, 1},
};

/* Bound scale for the Winograd path (mode 2 below): its transforms (constants
 * up to 8 and 1/24, sums of up to six terms) round more than a direct sum. */
static double tol_scale = 1.0;
/* The Winograd path's error scale (mode 2): an output mixes the transform
 * values of its whole 4x4 tile, and a weight-gradient element those of its
 * whole 3x3 kernel, so its error is relative to the tile's (kernel's)
 * magnitudes, not the element's own sum of |terms| - with a 2x2 image a tap
 * whose four terms cancel had 15000x the direct bound, in 2000 random draws. */
static int wino_bounds = 0;

/* a[] over planes of h x w: each value replaced by the largest in its 4x4
 * block (blocks from (0, 0), as the Winograd tiles). */
static void tile_max(float *a, size_t planes, int h, int w)
{
    for (size_t p = 0; p < planes; p++) {
        float *q = a + p * (size_t)h * w;
        for (int ty = 0; ty < h; ty += 4)
            for (int tx = 0; tx < w; tx += 4) {
                float m = 0;
                for (int y = ty; y < ty + 4 && y < h; y++)
                    for (int x = tx; x < tx + 4 && x < w; x++)
                        m = q[y * w + x] > m ? q[y * w + x] : m;
                for (int y = ty; y < ty + 4 && y < h; y++)
                    for (int x = tx; x < tx + 4 && x < w; x++)
                        q[y * w + x] = m;
            }
    }
}

/* a[] in groups of k: each value replaced by its group's sum. */
static void group_sum(float *a, size_t n, int k)
{
    for (size_t i = 0; i < n; i += (size_t)k) {
        double s = 0;
        for (int j = 0; j < k; j++)
            s += a[i + j];
        for (int j = 0; j < k; j++)
            a[i + j] = (float)s;
    }
}

/* |err| <= eps * (4 sqrt(terms) * sum|terms| + |value|) per element. */
static long compare(const float *got, const float *want, const float *absum, size_t n, int terms,
                    double *worst)
{
    long bad = 0;
    for (size_t i = 0; i < n; i++) {
        const double tol =
            tol_scale * FLT_EPSILON * (4.0 * sqrt((double)terms + 1) * absum[i] + fabs(want[i])) +
            1e-30;
        const double r = fabs((double)got[i] - want[i]) / tol;
        if (!(r <= 1.0))
            bad++;
        if (r > *worst || r != r)
            *worst = r;
    }
    return bad;
}

static void fill_nan(float *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = NAN;
}

static float *absv(const float *p, size_t n)
{
    float *a = malloc(n * sizeof *a);
    for (size_t i = 0; i < n; i++)
        a[i] = fabsf(p[i]);
    return a;
}

static void test_case(const conv_case *cc, dj_pool **pools, int npools)
{
    dj_conv2d_dims d;
    if (dj_conv2d_dims_init(&d, cc->n, cc->c, cc->h, cc->w, cc->oc, cc->kh, cc->kw, cc->sh, cc->sw,
                            cc->ph, cc->pw) != DJ_OK) {
        CHECK(0, "dims_init rejected case n=%d c=%d h=%d w=%d", cc->n, cc->c, cc->h, cc->w);
        return;
    }
    const size_t xl = x_len(&d), yl = y_len(&d), wl = w_len(&d);
    float *x = malloc(xl * 4), *w = malloc(wl * 4), *bias = malloc((size_t)d.oc * 4);
    float *dy = malloc(yl * 4);
    for (size_t i = 0; i < xl; i++)
        x[i] = frand();
    for (size_t i = 0; i < wl; i++)
        w[i] = frand();
    for (int i = 0; i < d.oc; i++)
        bias[i] = frand();
    for (size_t i = 0; i < yl; i++)
        dy[i] = frand();
    float *ax = absv(x, xl), *aw = absv(w, wl), *abias = absv(bias, (size_t)d.oc), *ady = absv(dy, yl);

    /* references and their error scales */
    float *y_ref = malloc(yl * 4), *y_abs = malloc(yl * 4);
    float *dx_ref = malloc(xl * 4), *dx_abs = malloc(xl * 4);
    float *dw_ref = malloc(wl * 4), *dw_abs = malloc(wl * 4);
    float *db_ref = malloc((size_t)d.oc * 4), *db_abs = malloc((size_t)d.oc * 4);
    dj_conv2d_forward_ref(&d, x, w, bias, y_ref);
    dj_conv2d_forward_ref(&d, ax, aw, abias, y_abs);
    dj_conv2d_backward_data_ref(&d, dy, w, dx_ref);
    dj_conv2d_backward_data_ref(&d, ady, aw, dx_abs);
    dj_conv2d_backward_weight_ref(&d, x, dy, dw_ref, db_ref);
    dj_conv2d_backward_weight_ref(&d, ax, ady, dw_abs, db_abs);
    const int k_fwd = d.c * d.kh * d.kw + 1, k_bd = d.oc * d.kh * d.kw, k_bw = d.n * d.oh * d.ow;
    if (wino_bounds) {
        tile_max(y_abs, (size_t)d.n * d.oc, d.oh, d.ow);
        tile_max(dx_abs, (size_t)d.n * d.c, d.h, d.w);
        group_sum(dw_abs, wl, d.kh * d.kw);
    }

    float *y = malloc(yl * 4), *dx = malloc(xl * 4), *dw = malloc(wl * 4);
    float *db = malloc((size_t)d.oc * 4);
    float *y1 = malloc(yl * 4), *dx1 = malloc(xl * 4), *dw1 = malloc(wl * 4);
    float *db1 = malloc((size_t)d.oc * 4);
    float *yr = malloc(yl * 4), *yr2 = malloc(yl * 4);
    for (int isa = DJ_ISA_GENERIC; isa < DJ_ISA_COUNT; isa++) {
        if (!dj_cpu_supports((dj_isa)isa))
            continue;
        const char *in = dj_isa_name((dj_isa)isa);
        for (int t = 0; t < npools; t++) {
            dj_pool *pool = pools[t];
            const int T = dj_pool_threads(pool);
            const size_t wsn = dj_conv2d_workspace(&d, T);
            CHECK(wsn >= dj__conv2d_workspace_isa((dj_isa)isa, &d, T), "workspace");
            float *ws = malloc(wsn * sizeof *ws);
            for (int rep = 0; rep < (t == npools - 1 ? 2 : 1); rep++) {
                const int use_bias = (rep + t) % 2 == 0;
                double worst = 0;
                long bad;

                fill_nan(y, yl);
                dj__conv2d_forward_isa((dj_isa)isa, pool, &d, x, w, use_bias ? bias : NULL, y, ws);
                if (use_bias) {
                    bad = compare(y, y_ref, y_abs, yl, k_fwd, &worst);
                    CHECK(bad == 0, "forward %s T=%d case %dx%dx%dx%d oc=%d k=%dx%d: %ld bad (worst %.3g)",
                          in, T, d.n, d.c, d.h, d.w, d.oc, d.kh, d.kw, bad, worst);
                } else { /* y + bias must match the reference with bias */
                    for (size_t i = 0; i < yl; i++)
                        y1[i] = y[i] + bias[i / ((size_t)d.oh * d.ow) % (size_t)d.oc];
                    bad = compare(y1, y_ref, y_abs, yl, k_fwd, &worst);
                    CHECK(bad == 0, "forward (no bias) %s T=%d case %dx%dx%dx%d: %ld bad (worst %.3g)",
                          in, T, d.n, d.c, d.h, d.w, bad, worst);
                }
                /* ReLU fused into the pass that writes y: bit for bit
                 * dj_relu_forward of the output above */
                dj_conv2d_dims dr = d;
                dr.relu = 1;
                fill_nan(yr, yl);
                dj__conv2d_forward_isa((dj_isa)isa, pool, &dr, x, w, use_bias ? bias : NULL, yr,
                                       ws);
                dj_relu_forward(NULL, yl, y, yr2);
                CHECK(memcmp(yr, yr2, yl * 4) == 0,
                      "forward with relu %s T=%d case %dx%dx%dx%d oc=%d k=%dx%d s=%d,%d: differs "
                      "from forward then dj_relu_forward",
                      in, T, d.n, d.c, d.h, d.w, d.oc, d.kh, d.kw, d.stride_h, d.stride_w);

                fill_nan(dx, xl);
                dj__conv2d_backward_data_isa((dj_isa)isa, pool, &d, dy, w, dx, ws);
                worst = 0;
                bad = compare(dx, dx_ref, dx_abs, xl, k_bd, &worst);
                CHECK(bad == 0, "backward_data %s T=%d case %dx%dx%dx%d oc=%d k=%dx%d s=%d,%d p=%d,%d: %ld bad (worst %.3g)",
                      in, T, d.n, d.c, d.h, d.w, d.oc, d.kh, d.kw, d.stride_h, d.stride_w, d.pad_h,
                      d.pad_w, bad, worst);

                fill_nan(dw, wl);
                fill_nan(db, (size_t)d.oc);
                dj__conv2d_backward_weight_isa((dj_isa)isa, pool, &d, x, dy, dw, use_bias ? db : NULL,
                                               ws);
                worst = 0;
                bad = compare(dw, dw_ref, dw_abs, wl, k_bw, &worst);
                CHECK(bad == 0, "backward_weight %s T=%d case %dx%dx%dx%d oc=%d k=%dx%d: %ld bad (worst %.3g)",
                      in, T, d.n, d.c, d.h, d.w, d.oc, d.kh, d.kw, bad, worst);
                if (use_bias) {
                    worst = 0;
                    bad = compare(db, db_ref, db_abs, (size_t)d.oc, k_bw, &worst);
                    CHECK(bad == 0, "dbias %s T=%d: %ld bad (worst %.3g)", in, T, bad, worst);
                } else {
                    CHECK(isnan(db[0]), "dbias written though NULL was passed");
                }

                /* The same bits as on one thread (and as the previous run). */
                if (t == 0) {
                    memcpy(y1, y, yl * 4);
                    memcpy(dx1, dx, xl * 4);
                    memcpy(dw1, dw, wl * 4);
                    memcpy(db1, db, (size_t)d.oc * 4);
                } else if (use_bias) {
                    CHECK(memcmp(y, y1, yl * 4) == 0 && memcmp(dx, dx1, xl * 4) == 0 &&
                              memcmp(dw, dw1, wl * 4) == 0 && memcmp(db, db1, (size_t)d.oc * 4) == 0,
                          "%s case %dx%dx%dx%d: %d threads (run %d) differ from 1 thread", in, d.n,
                          d.c, d.h, d.w, T, rep);
                }
            }
            free(ws);
        }
    }
    free(x);
    free(w);
    free(bias);
    free(dy);
    free(ax);
    free(aw);
    free(abias);
    free(ady);
    free(y_ref);
    free(y_abs);
    free(dx_ref);
    free(dx_abs);
    free(dw_ref);
    free(dw_abs);
    free(db_ref);
    free(db_abs);
    free(y);
    free(dx);
    free(dw);
    free(db);
    free(y1);
    free(dx1);
    free(dw1);
    free(db1);
    free(yr);
    free(yr2);
}

/* The workspace for n images serves every smaller batch of the same shape
 * (the model sizes it for its batch and runs the last, smaller one in it):
 * never smaller for fewer images, on shapes that take each path, Winograd
 * with row and with image lanes (which n picks) among them. */
static void test_workspace_batches(void)
{
    static const conv_case shapes[] = {
        {1, 17, 9, 11, 19, 3, 3, 1, 1, 1, 1},  {1, 16, 14, 14, 16, 3, 3, 1, 1, 1, 1},
        {1, 128, 7, 7, 128, 3, 3, 1, 1, 1, 1}, {1, 32, 26, 26, 64, 3, 3, 1, 1, 0, 0},
        {1, 32, 28, 28, 64, 3, 3, 2, 2, 1, 1}, {1, 32, 28, 28, 64, 1, 1, 2, 2, 0, 0},
        {1, 1, 28, 28, 32, 3, 3, 1, 1, 0, 0},  {1, 40, 5, 6, 24, 3, 3, 1, 1, 1, 1},
    };
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        const conv_case *cc = &shapes[i];
        for (int T = 1; T <= 3; T++) {
            dj_conv2d_dims big;
            CHECK(dj_conv2d_dims_init(&big, 40, cc->c, cc->h, cc->w, cc->oc, cc->kh, cc->kw, cc->sh,
                                      cc->sw, cc->ph, cc->pw) == DJ_OK,
                  "dims");
            const size_t need = dj_conv2d_workspace(&big, T);
            for (int n = 1; n < 40; n++) {
                dj_conv2d_dims d = big;
                d.n = n;
                CHECK(dj_conv2d_workspace(&d, T) <= need,
                      "shape %zu, %d threads: %d images need %zu floats, more than 40 images' %zu",
                      i, T, n, dj_conv2d_workspace(&d, T), need);
            }
        }
    }
}

int main(void)
{
    test_workspace_batches();
    test_hand();
    test_adjoint();
    dj_pool *p2 = NULL, *p3 = NULL;
    CHECK(dj_pool_create(2, &p2) == DJ_OK, "pool of 2");
    CHECK(dj_pool_create(3, &p3) == DJ_OK, "pool of 3");
    dj_pool *pools[] = {NULL, p2, p3};
    const long strided = dj__conv2d_strided_calls;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        test_case(&cases[i], pools, 3);
    CHECK(dj__conv2d_strided_calls > strided, "the strided implicit GEMM did not run");
    /* Every strided case again on im2col. */
    dj__conv2d_strided_implicit = 0;
    const long on_phases = dj__conv2d_strided_calls;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        if (cases[i].sh != 1 || cases[i].sw != 1)
            test_case(&cases[i], pools, 3);
    CHECK(dj__conv2d_strided_calls == on_phases, "the strided implicit GEMM ran when turned off");
    dj__conv2d_strided_implicit = 1;
    /* Every 3 x 3 stride-1 case again on the Winograd path. */
    dj__conv2d_winograd = 2;
    wino_bounds = 1;
    tol_scale = 4; /* with those bounds, measured worst 1.6 (forward of 7x7 images) */
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const conv_case *cc = &cases[i];
        if (cc->kh != 3 || cc->kw != 3 || cc->sh != 1 || cc->sw != 1)
            continue;
        const long before = dj__conv2d_winograd_calls;
        test_case(cc, pools, 3);
        CHECK(dj__conv2d_winograd_calls > before, "case %zu: the Winograd path did not run", i);
    }
    dj__conv2d_winograd = 1;
    wino_bounds = 0;
    dj_pool_destroy(p2);
    dj_pool_destroy(p3);
    return th_done("test_conv2d");
}
