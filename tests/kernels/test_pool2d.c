/* test_pool2d.c - pooling against PyTorch's rules and a naive version.
 *
 * ReLU + MaxPool2d fused (dj_relu_maxpool2d_*): bit for bit the two kernels
 * in a row, with NaN, infinities, -0 and negatives in x.
 * Hand cases: the max-pool argmax tie rule (first in scan order) and NaN
 * propagation, count_include_pad divisors at the borders, global average
 * pooling; the shapes dims_init rejects. Then random shapes (strides,
 * paddings, non-square and overlapping windows) against naive loops written
 * from the definitions, forward and backward, on 1, 2 and 3 threads with
 * bit-identical results. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dojo/kernels.h"
#include "harness.h"

static uint64_t rng_state = 0xDA3E39CB94B95BDBULL;

static float frand(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (float)((double)(rng_state >> 40) / (double)(1ull << 24) * 2.0 - 1.0);
}

static void test_hand(void)
{
    dj_pool2d_dims d;
    /* Ties: a 4x4 plane of equal values, 2x2 windows, stride 2. */
    CHECK(dj_pool2d_dims_init(&d, 1, 1, 4, 4, 2, 2, 2, 2, 0, 0) == DJ_OK, "dims");
    float x[16], y[4];
    int32_t am[4];
    for (int i = 0; i < 16; i++)
        x[i] = 3.0f;
    dj_maxpool2d_forward(NULL, &d, x, y, am);
    const int32_t first[4] = {0, 2, 8, 10};
    for (int i = 0; i < 4; i++)
        CHECK(am[i] == first[i] && y[i] == 3.0f, "tie: argmax[%d] = %d, want %d", i, am[i], first[i]);
    /* Two maxima in one window: the first in scan order. */
    x[1] = 5.0f;
    x[4] = 5.0f;
    dj_maxpool2d_forward(NULL, &d, x, y, am);
    CHECK(am[0] == 1 && y[0] == 5.0f, "tie of 5s: argmax %d", am[0]);
    /* NaN propagates. */
    x[10] = NAN;
    dj_maxpool2d_forward(NULL, &d, x, y, am);
    CHECK(isnan(y[3]) && am[3] == 10, "NaN: y %g argmax %d", y[3], am[3]);
    /* Padding is -inf: with pad 1 an all-negative plane still picks a real
     * element, the first of the clipped window. */
    CHECK(dj_pool2d_dims_init(&d, 1, 1, 2, 2, 2, 2, 1, 1, 1, 1) == DJ_OK, "dims");
    CHECK(d.oh == 3 && d.ow == 3, "oh %d ow %d", d.oh, d.ow);
    const float neg[4] = {-4, -3, -2, -1};
    float y9[9];
    int32_t am9[9];
    dj_maxpool2d_forward(NULL, &d, neg, y9, am9);
    const float y9_want[9] = {-4, -3, -3, -2, -1, -1, -2, -1, -1};
    for (int i = 0; i < 9; i++)
        CHECK(y9[i] == y9_want[i], "padded max y[%d] = %g, want %g", i, y9[i], y9_want[i]);
    const float all_inf[4] = {-INFINITY, -INFINITY, -INFINITY, -INFINITY};
    dj_maxpool2d_forward(NULL, &d, all_inf, y9, am9);
    CHECK(am9[4] == 0 && am9[8] == 3 && am9[2] == 1, "all -inf: argmax %d %d %d", am9[4], am9[8],
          am9[2]);
    /* Backward sends each gradient to its argmax; overlaps add. */
    float dy9[9], dx4[4];
    for (int i = 0; i < 9; i++)
        dy9[i] = 1.0f;
    dj_maxpool2d_forward(NULL, &d, neg, y9, am9);
    dj_maxpool2d_backward(NULL, &d, dy9, am9, dx4);
    const float dx4_want[4] = {1, 2, 2, 4};
    for (int i = 0; i < 4; i++)
        CHECK(dx4[i] == dx4_want[i], "max backward dx[%d] = %g, want %g", i, dx4[i], dx4_want[i]);

    /* count_include_pad: 3x3 of ones, 3x3 windows, stride 1, pad 1. */
    CHECK(dj_pool2d_dims_init(&d, 1, 1, 3, 3, 3, 3, 1, 1, 1, 1) == DJ_OK, "dims");
    float ones[9], a9[9], g9[9];
    for (int i = 0; i < 9; i++)
        ones[i] = 1.0f;
    dj_avgpool2d_forward(NULL, &d, ones, a9);
    const float a9_want[9] = {4 / 9.f, 6 / 9.f, 4 / 9.f, 6 / 9.f, 1, 6 / 9.f, 4 / 9.f, 6 / 9.f, 4 / 9.f};
    for (int i = 0; i < 9; i++)
        CHECK(fabsf(a9[i] - a9_want[i]) < 1e-6f, "avg y[%d] = %g, want %g", i, a9[i], a9_want[i]);
    /* Backward: every input is in windows whose gradients are 1/9 each. */
    dj_avgpool2d_backward(NULL, &d, ones, g9);
    for (int i = 0; i < 9; i++)
        CHECK(fabsf(g9[i] - a9_want[i]) < 1e-6f, "avg dx[%d] = %g, want %g", i, g9[i], a9_want[i]);

    /* Global average pooling. */
    const float gx[6] = {1, 2, 3, 10, 20, 30};
    float gy[2], gdx[6];
    dj_global_avgpool_forward(NULL, 2, 3, gx, gy);
    CHECK(gy[0] == 2.0f && gy[1] == 20.0f, "global avg %g %g", gy[0], gy[1]);
    const float gdy[2] = {3, 6};
    dj_global_avgpool_backward(NULL, 2, 3, gdy, gdx);
    for (int i = 0; i < 6; i++)
        CHECK(gdx[i] == (i < 3 ? 1.0f : 2.0f), "global avg dx[%d] = %g", i, gdx[i]);

    /* Rejected shapes. */
    CHECK(dj_pool2d_dims_init(&d, 1, 1, 4, 4, 2, 2, 2, 2, 2, 0) == DJ_ERR_ARG, "pad > k / 2");
    CHECK(dj_pool2d_dims_init(&d, 1, 1, 2, 2, 3, 3, 1, 1, 0, 0) == DJ_ERR_ARG, "kernel > image");
    CHECK(dj_pool2d_dims_init(&d, 1, 1, 4, 4, 2, 2, 0, 2, 0, 0) == DJ_ERR_ARG, "stride 0");
    CHECK(dj_pool2d_dims_init(&d, 1, 0, 4, 4, 2, 2, 2, 2, 0, 0) == DJ_ERR_ARG, "no channels");
}

/* ---- naive versions, from the definitions ---- */

static void naive(const dj_pool2d_dims *d, const float *x, const float *dy, float *ymax,
                  int32_t *am, float *yavg, float *dxmax, float *dxavg)
{
    const size_t planes = (size_t)d->n * d->c, ip = (size_t)d->h * d->w, op = (size_t)d->oh * d->ow;
    memset(dxmax, 0, planes * ip * sizeof *dxmax);
    memset(dxavg, 0, planes * ip * sizeof *dxavg);
    for (size_t pl = 0; pl < planes; pl++)
        for (int oy = 0; oy < d->oh; oy++)
            for (int ox = 0; ox < d->ow; ox++) {
                const size_t o = pl * op + (size_t)oy * d->ow + ox;
                float best = -INFINITY, sum = 0;
                int32_t arg = -1;
                int inside = 0; /* window cells in the padded image */
                for (int ki = 0; ki < d->kh; ki++)
                    for (int kj = 0; kj < d->kw; kj++) {
                        const int iy = oy * d->stride_h - d->pad_h + ki;
                        const int ix = ox * d->stride_w - d->pad_w + kj;
                        if (iy < d->h + d->pad_h && ix < d->w + d->pad_w)
                            inside++;
                        if (iy < 0 || iy >= d->h || ix < 0 || ix >= d->w)
                            continue;
                        const float v = x[pl * ip + (size_t)iy * d->w + ix];
                        if (arg < 0 || v > best || isnan(v)) {
                            best = v;
                            arg = iy * d->w + ix;
                        }
                        sum += v;
                    }
                ymax[o] = best;
                am[o] = arg;
                yavg[o] = sum / (float)inside;
                dxmax[pl * ip + (size_t)arg] += dy[o];
                for (int ki = 0; ki < d->kh; ki++)
                    for (int kj = 0; kj < d->kw; kj++) {
                        const int iy = oy * d->stride_h - d->pad_h + ki;
                        const int ix = ox * d->stride_w - d->pad_w + kj;
                        if (iy >= 0 && iy < d->h && ix >= 0 && ix < d->w)
                            dxavg[pl * ip + (size_t)iy * d->w + ix] += dy[o] / (float)inside;
                    }
            }
}

typedef struct {
    int n, c, h, w, kh, kw, sh, sw, ph, pw;
    int specials; /* NaN and infinities in x: max pooling only */
} pool_case;

static const pool_case cases[] = {
    {2, 3, 8, 8, 2, 2, 2, 2, 0, 0, 0},   {1, 2, 7, 9, 3, 3, 2, 2, 1, 1, 0},  {3, 1, 5, 6, 3, 2, 1, 1, 1, 1, 0},
    {2, 2, 11, 7, 4, 3, 3, 2, 2, 1, 0},  {1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0},  {4, 8, 32, 32, 3, 3, 2, 2, 1, 1, 0},
    {2, 16, 28, 28, 2, 2, 2, 2, 0, 0, 0}, {1, 3, 6, 5, 5, 4, 1, 1, 2, 2, 0},
    /* the 2 x 2 stride-2 fast path with an odd last row and column (dropped) */
    {3, 2, 7, 9, 2, 2, 2, 2, 0, 0, 0},
    /* the fast path's four-window body and its tail, with NaN and +-inf
     * (and a general-path case with them) */
    {2, 3, 12, 19, 2, 2, 2, 2, 0, 0, 1}, {1, 2, 8, 8, 2, 2, 2, 2, 0, 0, 1},
    {1, 2, 9, 7, 3, 3, 2, 2, 1, 1, 1},
};

static void test_case(const pool_case *pc, dj_pool **pools, int npools)
{
    dj_pool2d_dims d;
    if (dj_pool2d_dims_init(&d, pc->n, pc->c, pc->h, pc->w, pc->kh, pc->kw, pc->sh, pc->sw, pc->ph,
                            pc->pw) != DJ_OK) {
        CHECK(0, "case rejected");
        return;
    }
    const size_t xl = (size_t)d.n * d.c * d.h * d.w, yl = (size_t)d.n * d.c * d.oh * d.ow;
    float *x = malloc(xl * 4), *dy = malloc(yl * 4);
    for (size_t i = 0; i < xl; i++) /* few distinct values: many ties */
        x[i] = (float)(int)(frand() * 4.0f);
    if (pc->specials) /* and some NaN, -inf and +inf */
        for (size_t i = 0; i < xl; i++) {
            const float r = frand();
            x[i] = r > 0.9f ? NAN : r < -0.9f ? -INFINITY : r > 0.85f ? INFINITY : x[i];
        }
    for (size_t i = 0; i < xl; i++) /* negatives and -0 for the ReLU */
        if (frand() < -0.5f) {
            const float r = frand();
            x[i] = r < -0.5f ? -0.0f : r < 0.5f ? -x[i] - 1.0f : x[i];
        }
    for (size_t i = 0; i < yl; i++) /* -0 (becomes +0 where it lands) and NaN too */
        dy[i] = i % 7 == 3 ? -0.0f : pc->specials && i % 11 == 5 ? NAN : frand();
    float *ymax = malloc(yl * 4), *yavg = malloc(yl * 4), *dxmax = malloc(xl * 4);
    float *dxavg = malloc(xl * 4);
    int32_t *am = malloc(yl * 4);
    naive(&d, x, dy, ymax, am, yavg, dxmax, dxavg);

    float *y = malloc(yl * 4), *dx = malloc(xl * 4), *y1 = malloc(yl * 4), *dx1 = malloc(xl * 4);
    float *gy = malloc((size_t)d.n * d.c * 4), *gdx = malloc(xl * 4);
    int32_t *a = malloc(yl * 4), *a1 = malloc(yl * 4);
    float *rx = malloc(xl * 4), *rdx = malloc(xl * 4), *ry = malloc(yl * 4);
    for (int t = 0; t < npools; t++) {
        const int T = dj_pool_threads(pools[t]);
        dj_maxpool2d_forward(pools[t], &d, x, y, a);
        long bad = 0;
        for (size_t i = 0; i < yl; i++)
            bad += memcmp(&y[i], &ymax[i], sizeof y[i]) != 0 || a[i] != am[i]; /* NaN too */
        CHECK(bad == 0, "maxpool forward T=%d case %dx%dx%dx%d k%dx%d: %ld bad", T, d.n, d.c, d.h,
              d.w, d.kh, d.kw, bad);
        dj_maxpool2d_backward(pools[t], &d, dy, a, dx);
        bad = 0;
        for (size_t i = 0; i < xl; i++) /* bits: +0 where nothing lands or -0 did */
            bad += memcmp(&dx[i], &dxmax[i], sizeof dx[i]) != 0;
        CHECK(bad == 0, "maxpool backward T=%d: %ld bad", T, bad);

        /* ReLU then MaxPool fused: bit for bit the two kernels in a row */
        dj_relu_forward(pools[t], xl, x, rx);
        dj_maxpool2d_forward(pools[t], &d, rx, ry, a1);
        dj_relu_maxpool2d_forward(pools[t], &d, x, y, a);
        CHECK(memcmp(y, ry, yl * 4) == 0 && memcmp(a, a1, yl * 4) == 0,
              "relu+maxpool forward T=%d case %dx%dx%dx%d: differs from relu then maxpool", T, d.n,
              d.c, d.h, d.w);
        dj_maxpool2d_backward(pools[t], &d, dy, a1, rx);
        dj_relu_backward(pools[t], xl, x, rx, rdx);
        dj_relu_maxpool2d_backward(pools[t], &d, y, dy, a, dx); /* y: the fused forward's */
        CHECK(memcmp(dx, rdx, xl * 4) == 0,
              "relu+maxpool backward T=%d case %dx%dx%dx%d: differs from maxpool then relu", T,
              d.n, d.c, d.h, d.w);
        if (pc->specials)
            continue;

        dj_avgpool2d_forward(pools[t], &d, x, y);
        bad = 0;
        for (size_t i = 0; i < yl; i++)
            bad += !(fabsf(y[i] - yavg[i]) <= 1e-6f * (1 + fabsf(yavg[i])));
        CHECK(bad == 0, "avgpool forward T=%d case %dx%dx%dx%d: %ld bad", T, d.n, d.c, d.h, d.w, bad);
        dj_avgpool2d_backward(pools[t], &d, dy, dx);
        bad = 0;
        for (size_t i = 0; i < xl; i++)
            bad += !(fabsf(dx[i] - dxavg[i]) <= 1e-6f * (1 + fabsf(dxavg[i])));
        CHECK(bad == 0, "avgpool backward T=%d: %ld bad", T, bad);
        if (t == 0) {
            memcpy(y1, y, yl * 4);
            memcpy(dx1, dx, xl * 4);
        } else {
            CHECK(memcmp(y, y1, yl * 4) == 0 && memcmp(dx, dx1, xl * 4) == 0,
                  "avgpool T=%d differs from 1 thread", T);
        }

        /* global average over each plane */
        const size_t planes = (size_t)d.n * d.c, hw = (size_t)d.h * d.w;
        dj_global_avgpool_forward(pools[t], planes, hw, x, gy);
        dj_global_avgpool_backward(pools[t], planes, hw, gy, gdx);
        bad = 0;
        for (size_t p = 0; p < planes; p++) {
            double s = 0;
            for (size_t i = 0; i < hw; i++)
                s += x[p * hw + i];
            const float want = (float)(s / (double)hw);
            bad += fabsf(gy[p] - want) > 1e-6f * (1 + fabsf(want));
            for (size_t i = 0; i < hw; i++)
                bad += fabsf(gdx[p * hw + i] - gy[p] / (float)hw) > 1e-6f * (1 + fabsf(gy[p]));
        }
        CHECK(bad == 0, "global avgpool T=%d: %ld bad", T, bad);
    }
    free(x);
    free(dy);
    free(ymax);
    free(yavg);
    free(dxmax);
    free(dxavg);
    free(am);
    free(y);
    free(dx);
    free(y1);
    free(dx1);
    free(gy);
    free(gdx);
    free(a);
    free(a1);
    free(rx);
    free(rdx);
    free(ry);
}

int main(void)
{
    test_hand();
    dj_pool *p2 = NULL, *p3 = NULL;
    CHECK(dj_pool_create(2, &p2) == DJ_OK, "pool of 2");
    CHECK(dj_pool_create(3, &p3) == DJ_OK, "pool of 3");
    dj_pool *pools[] = {NULL, p2, p3};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        test_case(&cases[i], pools, 3);
    dj_pool_destroy(p2);
    dj_pool_destroy(p3);
    return th_done("test_pool2d");
}
