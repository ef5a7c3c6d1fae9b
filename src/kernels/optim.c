/* optim.c - the optimizer updates: SGD (momentum, Nesterov, weight decay)
 * and AdamW, with PyTorch's semantics, on float32 master weights.
 *
 * Why this file: the step that turns gradients into new weights must match
 * torch.optim so that hyper-parameters carry over. The element loops follow
 * the single-tensor PyTorch code operation by operation, in float:
 *
 *   SGD:   d = g + wd * w                 (only when wd != 0)
 *          buf = first ? d : buf * mu + d (dampening 0; only when mu != 0)
 *          d = nesterov ? d + mu * buf : buf
 *          w = w - lr * d
 *   AdamW: w = w * (1 - lr * wd)
 *          m = m * b1 + (1 - b1) * g
 *          v = v * b2 + (1 - b2) * g * g
 *          w = w + (-lr / bc1) * m / (sqrt(v) / sqrt(bc2) + eps)
 *
 * with bc1 = 1 - b1^t, bc2 = 1 - b2^t. Scalars are formed in double (as
 * Python does) and rounded to float once, as PyTorch does when it applies a
 * Python number to a float tensor. (PyTorch's vectorised CPU kernels may fuse
 * a multiply-add, so agreement with it is to an ulp or so, not bit for bit.)
 *
 * The arrays of one update must not overlap. SGD's loops work in blocks of
 * VB so that the compiler vectorises them at -O2 (GCC vectorises only loops
 * of a known trip count there). AdamW's loop stays scalar: sqrtf may set
 * errno, which keeps compilers from vectorising it unless the build uses
 * -fno-math-errno (the loop is memory-bound either way). Results do not
 * depend on the thread count. */
#include <math.h>
#include <stddef.h>

#include "dojo/kernels.h"

enum {
    VB = 16,
    PAR_MIN = 1 << 15 /* below this many weights, one thread */
};

static dj_pool *pool_for(dj_pool *pool, size_t n)
{
    return n >= PAR_MIN ? pool : NULL;
}

/* The arguments of one update, for the range functions. */
typedef struct {
    float *w, *buf, *m, *v;
    const float *g;
    /* SGD */
    float lr, momentum, weight_decay;
    int nesterov, first_step;
    /* AdamW's scalars, already rounded to float */
    float decay, beta1, one_minus_beta1, beta2, one_minus_beta2, bc2_sqrt, eps, neg_step;
} optim_args;

/* ---- SGD -------------------------------------------------------------- */

/* The SGD step for n elements, specialised by its constant flags:
 * the callers below pass literals, so each call inlines to its own loop
 * with no branch inside (which the vectoriser needs). with_wd: fold in
 * weight decay (when wd == 0, PyTorch leaves g untouched; 0 * w would turn
 * an infinite weight into a NaN). mode: SGD_PLAIN (no momentum buffer),
 * SGD_FIRST (buf = d) or SGD_MOMENTUM (buf = buf * mu + d). */
enum { SGD_PLAIN, SGD_FIRST, SGD_MOMENTUM };

static inline void sgd_loop(float *restrict w, float *restrict buf, const float *restrict g,
                            size_t n, float lr, float mu, float wd, const int with_wd,
                            const int mode, const int nesterov)
{
    size_t i = 0;
    for (; i + VB <= n; i += VB)
        for (int k = 0; k < VB; k++) {
            const float wi = w[i + k];
            const float d = with_wd ? g[i + k] + wd * wi : g[i + k];
            if (mode == SGD_PLAIN) {
                w[i + k] = wi - lr * d;
                continue;
            }
            const float b = mode == SGD_FIRST ? d : buf[i + k] * mu + d;
            buf[i + k] = b;
            w[i + k] = wi - lr * (nesterov ? d + mu * b : b);
        }
    for (; i < n; i++) {
        const float wi = w[i];
        const float d = with_wd ? g[i] + wd * wi : g[i];
        if (mode == SGD_PLAIN) {
            w[i] = wi - lr * d;
            continue;
        }
        const float b = mode == SGD_FIRST ? d : buf[i] * mu + d;
        buf[i] = b;
        w[i] = wi - lr * (nesterov ? d + mu * b : b);
    }
}

/* Picks the specialised loop; every call passes literal flags. */
static void sgd_range(void *arg, size_t i0, size_t i1)
{
    const optim_args *a = arg;
    float *w = a->w + i0, *buf = a->buf ? a->buf + i0 : NULL;
    const float *g = a->g + i0;
    const size_t n = i1 - i0;
    const float lr = a->lr, mu = a->momentum, wd = a->weight_decay;
    const int mode = mu == 0.0f ? SGD_PLAIN : a->first_step ? SGD_FIRST : SGD_MOMENTUM;
#define SGD_LOOP(WITH_WD, MODE, NESTEROV) \
    sgd_loop(w, buf, g, n, lr, mu, wd, WITH_WD, MODE, NESTEROV)
    if (wd != 0.0f) {
        if (mode == SGD_PLAIN)
            SGD_LOOP(1, SGD_PLAIN, 0);
        else if (mode == SGD_FIRST)
            a->nesterov ? SGD_LOOP(1, SGD_FIRST, 1) : SGD_LOOP(1, SGD_FIRST, 0);
        else
            a->nesterov ? SGD_LOOP(1, SGD_MOMENTUM, 1) : SGD_LOOP(1, SGD_MOMENTUM, 0);
    } else {
        if (mode == SGD_PLAIN)
            SGD_LOOP(0, SGD_PLAIN, 0);
        else if (mode == SGD_FIRST)
            a->nesterov ? SGD_LOOP(0, SGD_FIRST, 1) : SGD_LOOP(0, SGD_FIRST, 0);
        else
            a->nesterov ? SGD_LOOP(0, SGD_MOMENTUM, 1) : SGD_LOOP(0, SGD_MOMENTUM, 0);
    }
#undef SGD_LOOP
}

void dj_sgd_update(dj_pool *pool, size_t n, float *w, const float *g, float *buf, float lr,
                   float momentum, float weight_decay, int nesterov, int first_step)
{
    optim_args a = {.w = w, .g = g, .buf = buf, .lr = lr, .momentum = momentum,
                    .weight_decay = weight_decay, .nesterov = nesterov != 0,
                    .first_step = first_step != 0};
    dj_parallel_for(pool_for(pool, n), n, sgd_range, &a);
}

/* ---- AdamW ------------------------------------------------------------ */

static void adamw_loop(const optim_args *a, float *restrict w, const float *restrict g,
                       float *restrict m, float *restrict v, size_t n)
{
    const float beta1 = a->beta1, c1 = a->one_minus_beta1, beta2 = a->beta2,
                c2 = a->one_minus_beta2, bc2_sqrt = a->bc2_sqrt, eps = a->eps,
                decay = a->decay, neg_step = a->neg_step;
    for (size_t i = 0; i < n; i++) {
        const float mm = m[i] * beta1 + c1 * g[i];
        const float vv = v[i] * beta2 + c2 * g[i] * g[i];
        const float denom = sqrtf(vv) / bc2_sqrt + eps;
        m[i] = mm;
        v[i] = vv;
        w[i] = w[i] * decay + neg_step * mm / denom;
    }
}

static void adamw_range(void *arg, size_t i0, size_t i1)
{
    const optim_args *a = arg;
    adamw_loop(a, a->w + i0, a->g + i0, a->m + i0, a->v + i0, i1 - i0);
}

void dj_adamw_update(dj_pool *pool, size_t n, float *w, const float *g, float *m, float *v,
                     float lr, float beta1, float beta2, float eps, float weight_decay, long step)
{
    const double t = (double)step;
    const double bc1 = 1.0 - pow((double)beta1, t);
    const double bc2 = 1.0 - pow((double)beta2, t);
    optim_args a = {.w = w, .g = g, .m = m, .v = v,
                    .decay = (float)(1.0 - (double)lr * (double)weight_decay),
                    .beta1 = beta1, .one_minus_beta1 = (float)(1.0 - (double)beta1),
                    .beta2 = beta2, .one_minus_beta2 = (float)(1.0 - (double)beta2),
                    .bc2_sqrt = (float)sqrt(bc2), .eps = eps,
                    .neg_step = (float)(-(double)lr / bc1)};
    dj_parallel_for(pool_for(pool, n), n, adamw_range, &a);
}
