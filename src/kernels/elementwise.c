/* elementwise.c - dropout, elementwise add and axpy (float32).
 *
 * Why this file: the small elementwise kernels that layers and the training
 * loop share - dropout (inverted, as torch.nn.Dropout), the residual add and
 * the gradient-accumulating axpy.
 *
 * Dropout draws element i's bits from the counter generator of rng.h at
 * index stream_base + i, so the mask is a pure function of (seed, index):
 * the same for any thread count or split of the array, and a layer can
 * recompute or check it. Kept values are multiplied by 1/(1 - p) (rounded
 * once, from double); dropped ones by 0, so a NaN input stays NaN as in
 * PyTorch's input * mask * scale.
 *
 * Loops work in blocks of VB elements through a small buffer so that the
 * compiler vectorises them at -O2 and an output may be the very same array
 * as an input (in place). Results do not depend on the thread count. */
#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "dojo/cpu.h"
#include "dojo/kernels.h"
#include "dojo/rng.h"
#include "kernels/vec4.h"

#if defined(DOJO_X86) && (defined(__GNUC__) || defined(__clang__))
#define DJ_AVX2_CLONE 1
#else
#define DJ_AVX2_CLONE 0
#endif

enum {
    VB = 16,
    PAR_MIN = 1 << 16 /* below this many elements, one thread */
};

static dj_pool *pool_for(dj_pool *pool, size_t n)
{
    return n >= PAR_MIN ? pool : NULL;
}

/* ---- dropout ---------------------------------------------------------- */

typedef struct {
    dj_rng_key key;
    uint64_t base;
    uint32_t threshold; /* keep iff the draw is >= threshold */
    int drop_all;       /* p >= 1: nothing is kept */
    float scale;
    const float *x;
    float *y;
    uint8_t *mask;
    const uint8_t *mask_in;
} dropout_args;

/* Whether element `index` of the stream is kept. */
static uint8_t kept(dj_rng_key key, uint64_t index, uint32_t threshold)
{
    return dj_rng_keyed(key, (uint32_t)index, (uint32_t)(index >> 32), 0) >= threshold;
}

DJ_ALWAYS_INLINE void dropout_fwd_body(const dropout_args *a, size_t i0, size_t i1)
{
    const dj_rng_key key = a->key;
    const uint64_t base = a->base;
    const uint32_t thr = a->threshold;
    const float scale = a->scale;
    const float *x = a->x;
    float *y = a->y;
    uint8_t *mask = a->mask;
    if (a->drop_all) {
        for (size_t i = i0; i < i1; i++) {
            mask[i] = 0;
            y[i] = x[i] * 0.0f;
        }
        return;
    }
    size_t i = i0;
    for (; i + VB <= i1; i += VB) {
        uint8_t m[VB];
        float t[VB];
        for (int k = 0; k < VB; k++) {
            m[k] = kept(key, base + i + (size_t)k, thr);
            t[k] = x[i + k] * (m[k] ? scale : 0.0f);
        }
        for (int k = 0; k < VB; k++) {
            mask[i + k] = m[k];
            y[i + k] = t[k];
        }
    }
    for (; i < i1; i++) {
        uint8_t m = kept(key, base + i, thr);
        y[i] = x[i] * (m ? scale : 0.0f);
        mask[i] = m;
    }
}

static void dropout_fwd_range(void *arg, size_t i0, size_t i1)
{
    dropout_fwd_body(arg, i0, i1);
}

#if DJ_AVX2_CLONE
/* The same loop compiled for AVX2: the hash's 32-bit multiplies are one
 * vpmulld on eight lanes (SSE2 emulates them with two pmuludq and shuffles
 * on four); integer ops and one rounding per product, so the same bits. */
__attribute__((target("avx2"))) static void dropout_fwd_range_avx2(void *arg, size_t i0,
                                                                   size_t i1)
{
    dropout_fwd_body(arg, i0, i1);
}
#endif

static void dropout_bwd_range(void *arg, size_t i0, size_t i1)
{
    const dropout_args *a = arg;
    const float scale = a->scale;
    const uint8_t *mask = a->mask_in;
    const float *dy = a->x;
    float *dx = a->y;
    size_t i = i0;
    for (; i + VB <= i1; i += VB) {
        float t[VB];
        for (int k = 0; k < VB; k++)
            t[k] = dy[i + k] * (mask[i + k] ? scale : 0.0f);
        for (int k = 0; k < VB; k++)
            dx[i + k] = t[k];
    }
    for (; i < i1; i++)
        dx[i] = dy[i] * (mask[i] ? scale : 0.0f);
}

/* The keep threshold ceil(p * 2^32) (exact: p * 2^32 is a float times a
 * power of two) and the scale 1 / (1 - p); p <= 0 keeps everything. */
static void dropout_params(float p, dropout_args *a)
{
    a->drop_all = p >= 1.0f;
    a->threshold = p > 0.0f && !a->drop_all ? (uint32_t)ceil((double)p * 4294967296.0) : 0;
    a->scale = a->drop_all ? 0.0f : p > 0.0f ? (float)(1.0 / (1.0 - (double)p)) : 1.0f;
}

void dj_dropout_forward(dj_pool *pool, size_t n, float p, uint64_t seed, uint64_t stream_base,
                        const float *x, float *y, uint8_t *mask)
{
    dropout_args a = {.key = dj_rng_key_make(seed), .base = stream_base, .x = x, .y = y,
                      .mask = mask};
    dropout_params(p, &a);
    void (*fn)(void *, size_t, size_t) = dropout_fwd_range;
#if DJ_AVX2_CLONE
    if (dj_cpu_best_isa() >= DJ_ISA_AVX2)
        fn = dropout_fwd_range_avx2;
#endif
    dj_parallel_for(pool_for(pool, n), n, fn, &a);
}

void dj_dropout_backward(dj_pool *pool, size_t n, float p, const uint8_t *mask, const float *dy,
                         float *dx)
{
    dropout_args a = {.x = dy, .y = dx, .mask_in = mask};
    dropout_params(p, &a);
    dj_parallel_for(pool_for(pool, n), n, dropout_bwd_range, &a);
}

/* ---- add, axpy -------------------------------------------------------- */

typedef struct {
    float alpha;
    const float *a, *b;
    float *y;
} binary_args;

/* y = a + b, then (relu) x < 0 ? 0 : x - NaN and -0 pass, as
 * dj_relu_forward. Inlined with relu a constant: one loop each. */
static inline __attribute__((always_inline)) void add_loop(const binary_args *p, size_t i0,
                                                           size_t i1, int relu)
{
    const float *a = p->a, *b = p->b;
    float *y = p->y;
    size_t i = i0;
    for (; i + VB <= i1; i += VB) {
        float t[VB];
        for (int k = 0; k < VB; k++) {
            const float v = a[i + k] + b[i + k];
            t[k] = relu && v < 0.0f ? 0.0f : v;
        }
        for (int k = 0; k < VB; k++)
            y[i + k] = t[k];
    }
    for (; i < i1; i++) {
        const float v = a[i] + b[i];
        y[i] = relu && v < 0.0f ? 0.0f : v;
    }
}

static void add_range(void *arg, size_t i0, size_t i1)
{
    add_loop(arg, i0, i1, 0);
}

static void add_relu_range(void *arg, size_t i0, size_t i1)
{
    add_loop(arg, i0, i1, 1);
}

static void axpy_range(void *arg, size_t i0, size_t i1)
{
    const binary_args *p = arg;
    const float alpha = p->alpha;
    const float *x = p->a;
    float *y = p->y;
    size_t i = i0;
    for (; i + VB <= i1; i += VB) {
        float t[VB];
        for (int k = 0; k < VB; k++)
            t[k] = y[i + k] + alpha * x[i + k];
        for (int k = 0; k < VB; k++)
            y[i + k] = t[k];
    }
    for (; i < i1; i++)
        y[i] = y[i] + alpha * x[i];
}

void dj_add(dj_pool *pool, size_t n, const float *a, const float *b, float *y)
{
    binary_args p = {.a = a, .b = b, .y = y};
    dj_parallel_for(pool_for(pool, n), n, add_range, &p);
}

void dj_add_relu(dj_pool *pool, size_t n, const float *a, const float *b, float *y)
{
    binary_args p = {.a = a, .b = b, .y = y};
    dj_parallel_for(pool_for(pool, n), n, add_relu_range, &p);
}

void dj_axpy(dj_pool *pool, size_t n, float alpha, const float *x, float *y)
{
    binary_args p = {.alpha = alpha, .a = x, .y = y};
    dj_parallel_for(pool_for(pool, n), n, axpy_range, &p);
}
