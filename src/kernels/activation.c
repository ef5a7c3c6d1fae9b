/* activation.c - ReLU, GELU and SiLU, forward and backward (float32).
 *
 * Why this file: the elementwise non-linearities of the models, with
 * PyTorch's definitions (GELU in its exact erf form). Backward kernels take
 * the forward input x, not the output.
 *
 * The ReLU loops work in blocks of VB elements through a small buffer, so
 * that the compiler vectorises them at -O2 (which, with GCC, vectorises only
 * loops of a known trip count) while an output may still be the very same
 * array as an input. GELU and SiLU call libm's erfc/exp(f), which compilers
 * do not vectorise; they stay plain loops, split over threads at a smaller
 * size. (A vectorised erf/exp would make them several times faster: libm's
 * erfc costs some 60 ns an element on the development machine.) Any output
 * may be the same array as an input (in place), and results do not depend
 * on the thread count. */
#include <math.h>
#include <stddef.h>

#include "dojo/kernels.h"

enum {
    VB = 16,
    PAR_MIN_CHEAP = 1 << 16,     /* ReLU: below this, one thread */
    PAR_MIN_LIBM = 1 << 12       /* GELU, SiLU */
};

typedef struct {
    const float *x, *dy;
    float *y;
} act_args;

static void run(dj_pool *pool, size_t n, size_t par_min, dj_range_fn fn, const float *x,
                const float *dy, float *y)
{
    act_args a = {x, dy, y};
    dj_parallel_for(n >= par_min ? pool : NULL, n, fn, &a);
}

/* ---- ReLU (NaN passes through, as in torch.relu) ---- */

static float relu1(float x)
{
    return x < 0.0f ? 0.0f : x;
}

/* threshold_backward: the gradient is dropped where x <= 0. */
static float relu_grad1(float x, float dy)
{
    return x <= 0.0f ? 0.0f : dy;
}

static void relu_fwd_range(void *arg, size_t i0, size_t i1)
{
    const act_args *a = arg;
    const float *x = a->x;
    float *y = a->y;
    size_t i = i0;
    for (; i + VB <= i1; i += VB) {
        float t[VB];
        for (int k = 0; k < VB; k++)
            t[k] = relu1(x[i + k]);
        for (int k = 0; k < VB; k++)
            y[i + k] = t[k];
    }
    for (; i < i1; i++)
        y[i] = relu1(x[i]);
}

static void relu_bwd_range(void *arg, size_t i0, size_t i1)
{
    const act_args *a = arg;
    const float *x = a->x, *dy = a->dy;
    float *dx = a->y;
    size_t i = i0;
    for (; i + VB <= i1; i += VB) {
        float t[VB];
        for (int k = 0; k < VB; k++)
            t[k] = relu_grad1(x[i + k], dy[i + k]);
        for (int k = 0; k < VB; k++)
            dx[i + k] = t[k];
    }
    for (; i < i1; i++)
        dx[i] = relu_grad1(x[i], dy[i]);
}

void dj_relu_forward(dj_pool *pool, size_t n, const float *x, float *y)
{
    run(pool, n, PAR_MIN_CHEAP, relu_fwd_range, x, NULL, y);
}

void dj_relu_backward(dj_pool *pool, size_t n, const float *x, const float *dy, float *dx)
{
    run(pool, n, PAR_MIN_CHEAP, relu_bwd_range, x, dy, dx);
}

/* ---- GELU: x * Phi(x), Phi the standard normal CDF ----
 * Phi(x) = erfc(-x / sqrt 2) / 2 keeps its relative accuracy for negative x,
 * where 1 + erf(x / sqrt 2) would cancel. It is evaluated in double: with a
 * float argument, the argument's own rounding moves erfc by 2 z^2 2^-24
 * relative (1e-6 at x = -6), and libm's erfc costs no more than erfcf. */

static const double INV_SQRT2 = 0.70710678118654752440;
static const double INV_SQRT_2PI = 0.39894228040143267794;

static float gelu1(float x)
{
    return (float)(0.5 * x * erfc(-x * INV_SQRT2));
}

/* d/dx x Phi(x) = Phi(x) + x phi(x). */
static float gelu_grad1(float x, float dy)
{
    const double xd = x;
    const double cdf = 0.5 * erfc(-xd * INV_SQRT2);
    const double pdf = exp(-0.5 * xd * xd) * INV_SQRT_2PI;
    return (float)(dy * (cdf + xd * pdf));
}

static void gelu_fwd_range(void *arg, size_t i0, size_t i1)
{
    const act_args *a = arg;
    for (size_t i = i0; i < i1; i++)
        a->y[i] = gelu1(a->x[i]);
}

static void gelu_bwd_range(void *arg, size_t i0, size_t i1)
{
    const act_args *a = arg;
    for (size_t i = i0; i < i1; i++)
        a->y[i] = gelu_grad1(a->x[i], a->dy[i]);
}

void dj_gelu_forward(dj_pool *pool, size_t n, const float *x, float *y)
{
    run(pool, n, PAR_MIN_LIBM, gelu_fwd_range, x, NULL, y);
}

void dj_gelu_backward(dj_pool *pool, size_t n, const float *x, const float *dy, float *dx)
{
    run(pool, n, PAR_MIN_LIBM, gelu_bwd_range, x, dy, dx);
}

/* ---- SiLU: x * sigmoid(x) ---- */

static float silu1(float x)
{
    return x / (1.0f + expf(-x));
}

/* d/dx x s(x) = s(x) (1 + x (1 - s(x))), as PyTorch's silu_backward, with
 * 1 - s(x) taken as e^-x s(x) for x >= 0, where 1 - s would cancel. */
static float silu_grad1(float x, float dy)
{
    const float e = expf(-x);
    const float s = 1.0f / (1.0f + e);
    const float one_minus_s = x >= 0.0f ? e * s : 1.0f - s;
    return dy * s * (1.0f + x * one_minus_s);
}

static void silu_fwd_range(void *arg, size_t i0, size_t i1)
{
    const act_args *a = arg;
    for (size_t i = i0; i < i1; i++)
        a->y[i] = silu1(a->x[i]);
}

static void silu_bwd_range(void *arg, size_t i0, size_t i1)
{
    const act_args *a = arg;
    for (size_t i = i0; i < i1; i++)
        a->y[i] = silu_grad1(a->x[i], a->dy[i]);
}

void dj_silu_forward(dj_pool *pool, size_t n, const float *x, float *y)
{
    run(pool, n, PAR_MIN_LIBM, silu_fwd_range, x, NULL, y);
}

void dj_silu_backward(dj_pool *pool, size_t n, const float *x, const float *dy, float *dx)
{
    run(pool, n, PAR_MIN_LIBM, silu_bwd_range, x, dy, dx);
}
