/* conv2d_ref.c - the reference convolution that the fast kernels are tested
 * against: the definition written out as loops, one output element at a
 * time, accumulated in double. backward_data gathers (for each input element,
 * the outputs that read it) rather than scattering, so it shares no code path
 * with the fast col2im. */
#include <stddef.h>

#include "dojo/kernels.h"

static size_t x_at(const dj_conv2d_dims *d, int n, int c, int iy, int ix)
{
    return (((size_t)n * d->c + c) * d->h + iy) * d->w + ix;
}

static size_t y_at(const dj_conv2d_dims *d, int n, int o, int oy, int ox)
{
    return (((size_t)n * d->oc + o) * d->oh + oy) * d->ow + ox;
}

static size_t w_at(const dj_conv2d_dims *d, int o, int c, int ki, int kj)
{
    return (((size_t)o * d->c + c) * d->kh + ki) * d->kw + kj;
}

void dj_conv2d_forward_ref(const dj_conv2d_dims *d, const float *x, const float *w,
                           const float *bias, float *y)
{
    for (int n = 0; n < d->n; n++)
        for (int o = 0; o < d->oc; o++)
            for (int oy = 0; oy < d->oh; oy++)
                for (int ox = 0; ox < d->ow; ox++) {
                    double acc = bias ? bias[o] : 0.0;
                    for (int c = 0; c < d->c; c++)
                        for (int ki = 0; ki < d->kh; ki++) {
                            const int iy = oy * d->stride_h - d->pad_h + ki;
                            if (iy < 0 || iy >= d->h)
                                continue;
                            for (int kj = 0; kj < d->kw; kj++) {
                                const int ix = ox * d->stride_w - d->pad_w + kj;
                                if (ix < 0 || ix >= d->w)
                                    continue;
                                acc += (double)x[x_at(d, n, c, iy, ix)] * w[w_at(d, o, c, ki, kj)];
                            }
                        }
                    const float v = (float)acc;
                    y[y_at(d, n, o, oy, ox)] = d->relu && v < 0.0f ? 0.0f : v;
                }
}

void dj_conv2d_backward_data_ref(const dj_conv2d_dims *d, const float *dy, const float *w,
                                 float *dx)
{
    for (int n = 0; n < d->n; n++)
        for (int c = 0; c < d->c; c++)
            for (int iy = 0; iy < d->h; iy++)
                for (int ix = 0; ix < d->w; ix++) {
                    double acc = 0.0;
                    for (int ki = 0; ki < d->kh; ki++) {
                        /* oy * stride_h = iy + pad_h - ki */
                        const int ty = iy + d->pad_h - ki;
                        if (ty < 0 || ty % d->stride_h || ty / d->stride_h >= d->oh)
                            continue;
                        for (int kj = 0; kj < d->kw; kj++) {
                            const int tx = ix + d->pad_w - kj;
                            if (tx < 0 || tx % d->stride_w || tx / d->stride_w >= d->ow)
                                continue;
                            for (int o = 0; o < d->oc; o++)
                                acc += (double)dy[y_at(d, n, o, ty / d->stride_h, tx / d->stride_w)] *
                                       w[w_at(d, o, c, ki, kj)];
                        }
                    }
                    dx[x_at(d, n, c, iy, ix)] = (float)acc;
                }
}

void dj_conv2d_backward_weight_ref(const dj_conv2d_dims *d, const float *x, const float *dy,
                                   float *dw, float *dbias)
{
    for (int o = 0; o < d->oc; o++) {
        for (int c = 0; c < d->c; c++)
            for (int ki = 0; ki < d->kh; ki++)
                for (int kj = 0; kj < d->kw; kj++) {
                    double acc = 0.0;
                    for (int n = 0; n < d->n; n++)
                        for (int oy = 0; oy < d->oh; oy++) {
                            const int iy = oy * d->stride_h - d->pad_h + ki;
                            if (iy < 0 || iy >= d->h)
                                continue;
                            for (int ox = 0; ox < d->ow; ox++) {
                                const int ix = ox * d->stride_w - d->pad_w + kj;
                                if (ix < 0 || ix >= d->w)
                                    continue;
                                acc += (double)dy[y_at(d, n, o, oy, ox)] * x[x_at(d, n, c, iy, ix)];
                            }
                        }
                    dw[w_at(d, o, c, ki, kj)] = (float)acc;
                }
        if (dbias) {
            double acc = 0.0;
            for (int n = 0; n < d->n; n++)
                for (int oy = 0; oy < d->oh; oy++)
                    for (int ox = 0; ox < d->ow; ox++)
                        acc += dy[y_at(d, n, o, oy, ox)];
            dbias[o] = (float)acc;
        }
    }
}
