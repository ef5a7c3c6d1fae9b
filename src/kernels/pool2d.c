/* pool2d.c - max, average and global-average pooling, forward and backward,
 * with PyTorch's semantics (MaxPool2d, AvgPool2d with count_include_pad,
 * AdaptiveAvgPool2d((1, 1))), floor mode.
 *
 * These are memory-bound loops, so one implementation serves as both the
 * fast path and the reference: each (n, c) plane is independent, planes are
 * shared out among the threads, and within a plane every output is computed
 * in scan order. A backward pass zeroes its plane of dx and then adds each
 * output's gradient in output scan order, so overlapping windows sum in a
 * fixed order: the results do not depend on the thread count. (The 2 x 2
 * stride-2 max pooling, whose windows do not overlap, writes the same
 * values densely in one pass.) */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "dojo/kernels.h"
#include "kernels/vec4.h"

/* Planes of less work than this (in input elements, in all) stay on the
 * calling thread. */
#define MIN_PARALLEL 32768

dj_status dj_pool2d_dims_init(dj_pool2d_dims *d, int n, int c, int h, int w, int kh, int kw,
                              int stride_h, int stride_w, int pad_h, int pad_w)
{
    if (n < 1 || c < 1 || h < 1 || w < 1 || kh < 1 || kw < 1 || stride_h < 1 || stride_w < 1 ||
        pad_h < 0 || pad_w < 0)
        return DJ_ERR_ARG;
    /* PyTorch: padding at most half the kernel, so no window is all padding. */
    if (2LL * pad_h > kh || 2LL * pad_w > kw)
        return DJ_ERR_ARG;
    const long long hp = (long long)h + 2LL * pad_h, wp = (long long)w + 2LL * pad_w;
    if (hp < kh || wp < kw || (long long)h * w > 0x7fffffffLL)
        return DJ_ERR_ARG;
    *d = (dj_pool2d_dims){n, c, h, w, kh, kw, stride_h, stride_w, pad_h, pad_w,
                          (int)((hp - kh) / stride_h + 1), (int)((wp - kw) / stride_w + 1)};
    return DJ_OK;
}

static dj_pool *pool_for(dj_pool *pool, size_t work)
{
    return work < MIN_PARALLEL ? NULL : pool;
}

/* The window of output (oy, ox) clipped to the image: rows [*y0, *y1),
 * columns [*x0, *x1); *count is the unclipped size within the padded image
 * (the count_include_pad divisor). */
static void window(const dj_pool2d_dims *d, int oy, int ox, int *y0, int *y1, int *x0, int *x1,
                   int *count)
{
    int hs = oy * d->stride_h - d->pad_h, ws = ox * d->stride_w - d->pad_w;
    int he = hs + d->kh, we = ws + d->kw;
    if (he > d->h + d->pad_h)
        he = d->h + d->pad_h;
    if (we > d->w + d->pad_w)
        we = d->w + d->pad_w;
    *count = (he - hs) * (we - ws);
    *y0 = hs < 0 ? 0 : hs;
    *x0 = ws < 0 ? 0 : ws;
    *y1 = he > d->h ? d->h : he;
    *x1 = we > d->w ? d->w : we;
}


typedef struct {
    const dj_pool2d_dims *d;
    const float *in;
    float *out;
    const int32_t *argmax_in;
    int32_t *argmax_out;
    int relu;        /* max pooling of relu(x) (dj_relu_maxpool2d_*) */
    const float *relu_y; /* backward of that: the pool's output, for the ReLU's mask */
} pool_job;

/* ---- max pooling ---- */

/* One step of PyTorch's scan rule (below), without a branch: random data
 * makes "v > best" a coin flip that the branch predictor loses. */
static inline void max_take(float v, int32_t i, float *best, int32_t *at)
{
    const int take = (v > *best) | (v != v);
    *best = take ? v : *best;
    *at = take ? i : *at;
}

/* max_take on four windows at once (lanes). */
static inline void max_take4(v4f v, v4i i, v4f *best, v4i *at)
{
    const v4i take = (v > *best) | (v != v);
    *best = (v4f)(((v4i)v & take) | ((v4i)*best & ~take));
    *at = (i & take) | (*at & ~take);
}

/* The common 2 x 2 window, stride 2, no padding. */
static int is_2x2(const dj_pool2d_dims *d)
{
    return d->kh == 2 && d->kw == 2 && d->stride_h == 2 && d->stride_w == 2 && d->pad_h == 0 &&
           d->pad_w == 0;
}

/* Forward of that window: the same scan order and rule as the general loop,
 * so the same values and indices; four windows at a time (the even and odd
 * columns of two rows of 8 inputs), then one at a time. The first element
 * of a window is taken as it is (what the rule does from -inf). */
static void max_fwd_2x2(const dj_pool2d_dims *d, const float *x, float *y, int32_t *am, int relu)
{
    const int w = d->w;
    const v4i even = {0, 2, 4, 6};
    for (int oy = 0; oy < d->oh; oy++) {
        const float *r0 = x + (size_t)(2 * oy) * w, *r1 = r0 + w;
        const int32_t i0 = 2 * oy * w;
        float *yr = y + (size_t)oy * d->ow;
        int32_t *ar = am + (size_t)oy * d->ow;
        int ox = 0;
        for (; ox + 4 <= d->ow; ox += 4) { /* reads up to column 2 ox + 7 < w */
            const int c = 2 * ox;
            v4f a0, a1, b0, b1;
            memcpy(&a0, r0 + c, sizeof a0);
            memcpy(&a1, r0 + c + 4, sizeof a1);
            memcpy(&b0, r1 + c, sizeof b0);
            memcpy(&b1, r1 + c + 4, sizeof b1);
            a0 = relu_in4(a0, relu);
            a1 = relu_in4(a1, relu);
            b0 = relu_in4(b0, relu);
            b1 = relu_in4(b1, relu);
            const v4i idx = (i0 + c) + even;
            v4f best = EVEN4(a0, a1);
            v4i at = idx;
            max_take4(ODD4(a0, a1), idx + 1, &best, &at);
            max_take4(EVEN4(b0, b1), idx + w, &best, &at);
            max_take4(ODD4(b0, b1), idx + w + 1, &best, &at);
            memcpy(yr + ox, &best, sizeof best);
            memcpy(ar + ox, &at, sizeof at);
        }
        for (; ox < d->ow; ox++) {
            const int c = 2 * ox;
            float best = -INFINITY;
            int32_t at = i0 + c;
            max_take(relu_in(r0[c], relu), i0 + c, &best, &at);
            max_take(relu_in(r0[c + 1], relu), i0 + c + 1, &best, &at);
            max_take(relu_in(r1[c], relu), i0 + w + c, &best, &at);
            max_take(relu_in(r1[c + 1], relu), i0 + w + c + 1, &best, &at);
            yr[ox] = best;
            ar[ox] = at;
        }
    }
}

static void max_fwd_range(void *arg, size_t begin, size_t end)
{
    const pool_job *j = arg;
    const dj_pool2d_dims *d = j->d;
    const size_t in_plane = (size_t)d->h * d->w, out_plane = (size_t)d->oh * d->ow;
    if (is_2x2(d)) {
        for (size_t pl = begin; pl < end; pl++)
            max_fwd_2x2(d, j->in + pl * in_plane, j->out + pl * out_plane,
                        j->argmax_out + pl * out_plane, j->relu);
        return;
    }
    for (size_t pl = begin; pl < end; pl++) {
        const float *x = j->in + pl * in_plane;
        float *y = j->out + pl * out_plane;
        int32_t *am = j->argmax_out + pl * out_plane;
        for (int oy = 0; oy < d->oh; oy++)
            for (int ox = 0; ox < d->ow; ox++) {
                int y0, y1, x0, x1, count;
                window(d, oy, ox, &y0, &y1, &x0, &x1, &count);
                /* PyTorch's rule: a strictly greater value or a NaN takes
                 * over, so ties keep the first in scan order and a NaN
                 * propagates. */
                float best = -INFINITY;
                int32_t at = y0 * d->w + x0;
                for (int iy = y0; iy < y1; iy++)
                    for (int ix = x0; ix < x1; ix++) {
                        const float v = relu_in(x[iy * d->w + ix], j->relu);
                        if (v > best || isnan(v)) {
                            best = v;
                            at = iy * d->w + ix;
                        }
                    }
                y[oy * d->ow + ox] = best;
                am[oy * d->ow + ox] = at;
            }
    }
}

/* Runs a pooling kernel over every (n, c) plane. */
static void run_planes(dj_pool *pool, const dj_pool2d_dims *d, void (*fn)(void *, size_t, size_t),
                       pool_job *j)
{
    const size_t planes = (size_t)d->n * d->c;
    dj_parallel_for(pool_for(pool, planes * d->h * d->w), planes, fn, j);
}

void dj_maxpool2d_forward(dj_pool *pool, const dj_pool2d_dims *d, const float *x, float *y,
                          int32_t *argmax)
{
    pool_job j = {d, x, y, NULL, argmax, 0, NULL};
    run_planes(pool, d, max_fwd_range, &j);
}

/* The backward of max_fwd_2x2, written densely: windows do not overlap, so
 * each input position gets its window's gradient if it is the window's
 * argmax and +0 otherwise - what zeroing dx and adding each gradient there
 * gives (0 + g: a -0 gradient becomes +0), in one sequential pass instead
 * of a memset and a scatter. A fused ReLU's mask is the pool's output y <=
 * 0 (y is relu(x) at the argmax, and relu(v) <= 0 exactly when v <= 0). */
static void max_bwd_2x2(const dj_pool2d_dims *d, const float *dy, const int32_t *am,
                        const float *y, float *dx)
{
    const int w = d->w;
    const v4i even = {0, 2, 4, 6};
    for (int oy = 0; oy < d->oh; oy++) {
        float *r0 = dx + (size_t)(2 * oy) * w, *r1 = r0 + w;
        const int32_t i0 = 2 * oy * w;
        const size_t o = (size_t)oy * d->ow;
        int ox = 0;
        for (; ox + 4 <= d->ow; ox += 4) {
            const int c = 2 * ox;
            v4f g, yv;
            v4i a;
            memcpy(&g, dy + o + ox, sizeof g);
            memcpy(&a, am + o + ox, sizeof a);
            if (y) {
                memcpy(&yv, y + o + ox, sizeof yv);
                g = (v4f)((v4i)g & ~(yv <= 0.0f));
            }
            g = g + 0.0f;
            const v4i idx = (i0 + c) + even;
            const v4f e0 = (v4f)((v4i)g & (a == idx)), o0 = (v4f)((v4i)g & (a == idx + 1));
            const v4f e1 = (v4f)((v4i)g & (a == idx + w)), o1 = (v4f)((v4i)g & (a == idx + w + 1));
            const v4f p0 = ZIP_LO4(e0, o0), p1 = ZIP_HI4(e0, o0);
            const v4f q0 = ZIP_LO4(e1, o1), q1 = ZIP_HI4(e1, o1);
            memcpy(r0 + c, &p0, sizeof p0);
            memcpy(r0 + c + 4, &p1, sizeof p1);
            memcpy(r1 + c, &q0, sizeof q0);
            memcpy(r1 + c + 4, &q1, sizeof q1);
        }
        for (; ox < d->ow; ox++) {
            const int c = 2 * ox;
            const float g = y && y[o + ox] <= 0.0f ? 0.0f : dy[o + ox] + 0.0f;
            const int32_t a = am[o + ox] - (i0 + c);
            r0[c] = a == 0 ? g : 0.0f;
            r0[c + 1] = a == 1 ? g : 0.0f;
            r1[c] = a == w ? g : 0.0f;
            r1[c + 1] = a == w + 1 ? g : 0.0f;
        }
        if (w & 1)
            r0[w - 1] = r1[w - 1] = 0.0f;
    }
    if (d->h & 1)
        memset(dx + (size_t)(d->h - 1) * w, 0, (size_t)w * sizeof *dx);
}

static void max_bwd_range(void *arg, size_t begin, size_t end)
{
    const pool_job *j = arg;
    const dj_pool2d_dims *d = j->d;
    const size_t in_plane = (size_t)d->h * d->w, out_plane = (size_t)d->oh * d->ow;
    for (size_t pl = begin; pl < end; pl++) {
        const float *dy = j->in + pl * out_plane;
        const int32_t *am = j->argmax_in + pl * out_plane;
        /* the ReLU's gradient: 0 where relu(x) <= 0, read from the pool's output */
        const float *y = j->relu ? j->relu_y + pl * out_plane : NULL;
        float *dx = j->out + pl * in_plane;
        if (is_2x2(d)) {
            max_bwd_2x2(d, dy, am, y, dx);
            continue;
        }
        memset(dx, 0, in_plane * sizeof *dx);
        for (size_t i = 0; i < out_plane; i++)
            dx[am[i]] += y && y[i] <= 0.0f ? 0.0f : dy[i];
    }
}

void dj_maxpool2d_backward(dj_pool *pool, const dj_pool2d_dims *d, const float *dy,
                           const int32_t *argmax, float *dx)
{
    pool_job j = {d, dy, dx, argmax, NULL, 0, NULL};
    run_planes(pool, d, max_bwd_range, &j);
}

void dj_relu_maxpool2d_forward(dj_pool *pool, const dj_pool2d_dims *d, const float *x, float *y,
                               int32_t *argmax)
{
    pool_job j = {d, x, y, NULL, argmax, 1, NULL};
    run_planes(pool, d, max_fwd_range, &j);
}

void dj_relu_maxpool2d_backward(dj_pool *pool, const dj_pool2d_dims *d, const float *y,
                                const float *dy, const int32_t *argmax, float *dx)
{
    pool_job j = {d, dy, dx, argmax, NULL, 1, y};
    run_planes(pool, d, max_bwd_range, &j);
}

/* ---- average pooling ---- */

static void avg_fwd_range(void *arg, size_t begin, size_t end)
{
    const pool_job *j = arg;
    const dj_pool2d_dims *d = j->d;
    const size_t in_plane = (size_t)d->h * d->w, out_plane = (size_t)d->oh * d->ow;
    for (size_t pl = begin; pl < end; pl++) {
        const float *x = j->in + pl * in_plane;
        float *y = j->out + pl * out_plane;
        for (int oy = 0; oy < d->oh; oy++)
            for (int ox = 0; ox < d->ow; ox++) {
                int y0, y1, x0, x1, count;
                window(d, oy, ox, &y0, &y1, &x0, &x1, &count);
                float s = 0.0f;
                for (int iy = y0; iy < y1; iy++)
                    for (int ix = x0; ix < x1; ix++)
                        s += x[iy * d->w + ix];
                y[oy * d->ow + ox] = s / (float)count;
            }
    }
}

void dj_avgpool2d_forward(dj_pool *pool, const dj_pool2d_dims *d, const float *x, float *y)
{
    pool_job j = {d, x, y, NULL, NULL, 0, NULL};
    run_planes(pool, d, avg_fwd_range, &j);
}

static void avg_bwd_range(void *arg, size_t begin, size_t end)
{
    const pool_job *j = arg;
    const dj_pool2d_dims *d = j->d;
    const size_t in_plane = (size_t)d->h * d->w, out_plane = (size_t)d->oh * d->ow;
    for (size_t pl = begin; pl < end; pl++) {
        const float *dy = j->in + pl * out_plane;
        float *dx = j->out + pl * in_plane;
        memset(dx, 0, in_plane * sizeof *dx);
        for (int oy = 0; oy < d->oh; oy++)
            for (int ox = 0; ox < d->ow; ox++) {
                int y0, y1, x0, x1, count;
                window(d, oy, ox, &y0, &y1, &x0, &x1, &count);
                const float g = dy[oy * d->ow + ox] / (float)count;
                for (int iy = y0; iy < y1; iy++)
                    for (int ix = x0; ix < x1; ix++)
                        dx[iy * d->w + ix] += g;
            }
    }
}

void dj_avgpool2d_backward(dj_pool *pool, const dj_pool2d_dims *d, const float *dy, float *dx)
{
    pool_job j = {d, dy, dx, NULL, NULL, 0, NULL};
    run_planes(pool, d, avg_bwd_range, &j);
}

/* ---- global average pooling ---- */

typedef struct {
    size_t hw;
    const float *in;
    float *out;
} global_job;

static void global_fwd_range(void *arg, size_t begin, size_t end)
{
    const global_job *j = arg;
    for (size_t p = begin; p < end; p++) {
        const float *x = j->in + p * j->hw;
        double s = 0.0;
        for (size_t i = 0; i < j->hw; i++)
            s += x[i];
        j->out[p] = (float)(s / (double)j->hw);
    }
}

void dj_global_avgpool_forward(dj_pool *pool, size_t planes, size_t hw, const float *x, float *y)
{
    global_job j = {hw, x, y};
    dj_parallel_for(pool_for(pool, planes * hw), planes, global_fwd_range, &j);
}

static void global_bwd_range(void *arg, size_t begin, size_t end)
{
    const global_job *j = arg;
    for (size_t p = begin; p < end; p++) {
        const float g = (float)((double)j->in[p] / (double)j->hw);
        float *dx = j->out + p * j->hw;
        for (size_t i = 0; i < j->hw; i++)
            dx[i] = g;
    }
}

void dj_global_avgpool_backward(dj_pool *pool, size_t planes, size_t hw, const float *dy,
                                float *dx)
{
    global_job j = {hw, dy, dx};
    dj_parallel_for(pool_for(pool, planes * hw), planes, global_bwd_range, &j);
}
