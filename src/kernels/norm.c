/* norm.c - batch and layer normalisation, forward and backward (float32).
 *
 * Why this file: BatchNorm2d and LayerNorm are the normalisations the model
 * builder offers, and their statistics decide whether training is stable,
 * so they get their own careful kernels.
 *
 * Accuracy: means and variances come from one pass of sums in double of
 * d = x - K and d^2, K the first value of the channel (row): mean = K +
 * S1/N, var = (S2 - S1^2/N) / N. Because K is one of the values,
 * (K - mean)^2 <= N var, so the cancellation amplifies the sums' rounding
 * by at most N (double precision still leaves ~1e-9 at N = 10^7): as good
 * as two passes, for two thirds of the memory traffic. Sums are kept in
 * eight interleaved lanes, vectors of the inner loops (norm_impl.h, one
 * build per ISA, all giving the same bits). The forward centres x on the double mean split into two
 * floats, so y stays accurate when |mean| is large against the spread. The
 * backward recovers the exact mean from the saved float one (the sum of
 * x - mean_f, taken in the same pass as its other sums) and evaluates dx in
 * double: the gradient then sums to zero over each channel or row up to its
 * final rounding, as it should.
 *
 * Determinism: work is split by a fixed rule that does not depend on the
 * thread count - one channel (batch norm statistics and backward; a
 * thread may sweep several channels together, each summed as alone), one row
 * (layer norm) or one column (layer norm dgamma/dbeta) is reduced by one
 * thread, in index order - so every result is bit-identical for any number
 * of threads, NULL pool included.
 *
 * Beyond kernels.h: gamma and beta may be NULL (affine = False: 1 and 0);
 * running_mean/running_var may be NULL (track_running_stats = False);
 * save_mean/save_invstd and dgamma/dbeta may be NULL when not wanted. An
 * output may be the same array as an input (in place) but must not overlap
 * it otherwise. */
#include <math.h>
#include <stddef.h>

#include "dojo/kernels.h"
#include "kernels/norm.h"

enum {
    VB = 16,             /* floats per vectorisable block */
    COLS = 256,          /* layer-norm columns reduced together */
    PAR_MIN = 1 << 15,   /* fewer elements than this: stay on one thread */
    GROUP_FLOATS = 1024, /* batch norm: channels swept together (group_of) */
    GROUP_MAX = 64
};

/* The inner loops for the best ISA the CPU runs (all give the same bits). */
static const dj__norm_fns *fns(void)
{
    return dj__norm_fns_for(dj_cpu_best_isa());
}

static dj_pool *pool_for(dj_pool *pool, size_t elements)
{
    return elements >= PAR_MIN ? pool : NULL;
}

/* The backward's sums over one channel or row, with g = dy (or dy * gamma
 * for layer norm) and d = x - m, m the saved float mean: sum d, sum g and
 * sum g d, in double (fns->bwd_sums). sum d / N is what m misses of the
 * exact mean. */
typedef struct {
    double d, g, gd;
} bwd_sums;

static void add_bwd_sums(const dj__norm_fns *fn, const float *x, const float *dy,
                         const float *mask, const float *gamma, size_t n, float m, bwd_sums *s)
{
    double t[3] = {s->d, s->g, s->gd};
    fn->bwd_sums(x, dy, mask, gamma, n, m, t);
    s->d = t[0];
    s->g = t[1];
    s->gd = t[2];
}

/* The coefficients of dx = scale * ((g - mg) - ((x - m) - shift) * k) for
 * one channel or row of cnt values: the exact mean is m + shift, so the
 * gradient sums to zero over the channel up to the final rounding (what
 * makes a bias before a normalisation get a zero gradient). Also returns
 * sum g (x - mean) * invstd, the gamma gradient. */
static double bwd_coefficients(const bwd_sums *s, double cnt, double invstd, double scale,
                               dj__norm_coef *c)
{
    c->shift = s->d / cnt;
    const double gxmu = s->gd - c->shift * s->g; /* sum g (x - exact mean) */
    c->mg = s->g / cnt;
    c->k = invstd * invstd * gxmu / cnt;
    c->scale = scale;
    return gxmu * invstd;
}

/* The variance from shifted sums over cnt values (never < 0). */
static double variance(double s1, double s2, double cnt)
{
    double var = (s2 - s1 * s1 / cnt) / cnt;
    return var > 0 ? var : 0;
}

/* The low part of a double split into two floats. */
static float low_part(double v)
{
    return (float)(v - (double)(float)v);
}

/* ---- batch norm ------------------------------------------------------- */

typedef struct {
    const dj__norm_fns *fn;
    size_t n, c, hw;
    const float *x, *dy, *gamma, *beta;
    int relu;                        /* forward: a ReLU after the normalisation */
    const float *mask;               /* backward: that ReLU's output (or NULL) */
    float eps, momentum;
    float *running_mean, *running_var, *y, *save_mean, *save_invstd;
    const float *mean, *invstd;     /* saved statistics, for backward */
    const float *run_mean, *run_var; /* running statistics, for eval */
    float *dx, *dgamma, *dbeta;
} bn_args;

static const float *plane(const bn_args *a, const float *base, size_t i, size_t ch)
{
    return base + (i * a->c + ch) * a->hw;
}

/* Channels that one thread sweeps together, image by image: their planes
 * of one image are contiguous (as many whole planes as fit in GROUP_FLOATS,
 * at least one), where one channel alone reads one short plane per image
 * (a 7 x 7 plane is three cache lines, too short a stream for the
 * prefetcher; grouped, the 14 x 14 and 7 x 7 backward passes took
 * 0.65-0.75x the time). Each channel's sums still run over its planes in
 * image order: the same bits. */
static size_t group_of(const bn_args *a)
{
    size_t g = (size_t)GROUP_FLOATS / a->hw;
    return g < 1 ? 1 : g > GROUP_MAX ? GROUP_MAX : g;
}

static void bn_train_channels(void *arg, size_t c0, size_t c1)
{
    const bn_args *a = arg;
    const double cnt = (double)a->n * (double)a->hw;
    const size_t gsz = group_of(a);
    for (size_t g0 = c0; g0 < c1; g0 += gsz) {
        const size_t g1 = g0 + gsz < c1 ? g0 + gsz : c1;
        double shift[GROUP_MAX], s1[GROUP_MAX] = {0}, s2[GROUP_MAX] = {0};
        for (size_t ch = g0; ch < g1; ch++)
            shift[ch - g0] = plane(a, a->x, 0, ch)[0];
        for (size_t i = 0; i < a->n; i++)
            for (size_t ch = g0; ch < g1; ch++)
                a->fn->sums(plane(a, a->x, i, ch), a->hw, shift[ch - g0], &s1[ch - g0],
                            &s2[ch - g0]);
        float mean_hi[GROUP_MAX], mean_lo[GROUP_MAX], scale[GROUP_MAX];
        for (size_t ch = g0; ch < g1; ch++) {
            const size_t k = ch - g0;
            const double mean = shift[k] + s1[k] / cnt;
            const double var = variance(s1[k], s2[k], cnt);
            const double invstd = 1.0 / sqrt(var + (double)a->eps);
            const double g = a->gamma ? a->gamma[ch] : 1.0;
            mean_hi[k] = (float)mean;
            mean_lo[k] = low_part(mean);
            scale[k] = (float)(g * invstd);
            if (a->save_mean)
                a->save_mean[ch] = (float)mean;
            if (a->save_invstd)
                a->save_invstd[ch] = (float)invstd;
            if (a->running_mean) {
                const double m = a->momentum;
                a->running_mean[ch] = (float)((1.0 - m) * a->running_mean[ch] + m * mean);
            }
            if (a->running_var) {
                /* Unbiased, as PyTorch stores it; N = 1 (which PyTorch
                 * refuses in training) counts as a zero variance instead of
                 * 0/0. */
                const double m = a->momentum;
                const double unbiased = cnt > 1 ? var * cnt / (cnt - 1) : 0.0;
                a->running_var[ch] = (float)((1.0 - m) * a->running_var[ch] + m * unbiased);
            }
        }
        for (size_t i = 0; i < a->n; i++)
            for (size_t ch = g0; ch < g1; ch++) {
                const size_t k = ch - g0;
                const float *xp = plane(a, a->x, i, ch);
                a->fn->normalize(xp, a->y + (xp - a->x), a->hw, mean_hi[k], mean_lo[k], scale[k],
                                 a->beta ? a->beta[ch] : 0.0f, a->relu);
            }
    }
}

static void bn_forward_train(dj_pool *pool, int n, int c, int hw, const float *x,
                             const float *gamma, const float *beta, float eps, float momentum,
                             float *running_mean, float *running_var, float *y, float *save_mean,
                             float *save_invstd, int relu)
{
    if (n <= 0 || hw <= 0)
        return; /* no values: nothing to normalise, no statistics */
    bn_args a = {.fn = fns(), .n = (size_t)n, .c = (size_t)c, .hw = (size_t)hw, .x = x,
                 .gamma = gamma, .beta = beta, .relu = relu, .eps = eps, .momentum = momentum,
                 .running_mean = running_mean, .running_var = running_var, .y = y,
                 .save_mean = save_mean, .save_invstd = save_invstd};
    dj_parallel_for(pool_for(pool, a.n * a.c * a.hw), a.c, bn_train_channels, &a);
}

void dj_batchnorm2d_forward_train(dj_pool *pool, int n, int c, int hw, const float *x,
                                  const float *gamma, const float *beta, float eps,
                                  float momentum, float *running_mean, float *running_var,
                                  float *y, float *save_mean, float *save_invstd)
{
    bn_forward_train(pool, n, c, hw, x, gamma, beta, eps, momentum, running_mean, running_var, y,
                     save_mean, save_invstd, 0);
}

void dj_batchnorm2d_relu_forward_train(dj_pool *pool, int n, int c, int hw, const float *x,
                                       const float *gamma, const float *beta, float eps,
                                       float momentum, float *running_mean, float *running_var,
                                       float *y, float *save_mean, float *save_invstd)
{
    bn_forward_train(pool, n, c, hw, x, gamma, beta, eps, momentum, running_mean, running_var, y,
                     save_mean, save_invstd, 1);
}

/* Eval mode is elementwise: split over (n, c) planes. */
static void bn_eval_planes(void *arg, size_t p0, size_t p1)
{
    const bn_args *a = arg;
    for (size_t p = p0; p < p1; p++) {
        const size_t ch = p % a->c;
        const double invstd = 1.0 / sqrt((double)a->run_var[ch] + (double)a->eps);
        const double g = a->gamma ? a->gamma[ch] : 1.0;
        a->fn->normalize(a->x + p * a->hw, a->y + p * a->hw, a->hw, a->run_mean[ch], 0.0f,
                         (float)(g * invstd), a->beta ? a->beta[ch] : 0.0f, a->relu);
    }
}

static void bn_forward_eval(dj_pool *pool, int n, int c, int hw, const float *x,
                            const float *gamma, const float *beta, float eps,
                            const float *running_mean, const float *running_var, float *y,
                            int relu)
{
    bn_args a = {.fn = fns(), .n = (size_t)n, .c = (size_t)c, .hw = (size_t)hw, .x = x,
                 .gamma = gamma, .beta = beta, .relu = relu, .eps = eps,
                 .run_mean = running_mean, .run_var = running_var, .y = y};
    dj_parallel_for(pool_for(pool, a.n * a.c * a.hw), a.n * a.c, bn_eval_planes, &a);
}

void dj_batchnorm2d_forward_eval(dj_pool *pool, int n, int c, int hw, const float *x,
                                 const float *gamma, const float *beta, float eps,
                                 const float *running_mean, const float *running_var, float *y)
{
    bn_forward_eval(pool, n, c, hw, x, gamma, beta, eps, running_mean, running_var, y, 0);
}

void dj_batchnorm2d_relu_forward_eval(dj_pool *pool, int n, int c, int hw, const float *x,
                                      const float *gamma, const float *beta, float eps,
                                      const float *running_mean, const float *running_var,
                                      float *y)
{
    bn_forward_eval(pool, n, c, hw, x, gamma, beta, eps, running_mean, running_var, y, 1);
}

/* dx = gamma * invstd * (dy - mean(dy) - xhat * mean(dy * xhat)), with
 * xhat = (x - mean) * invstd and the means over the channel. */
static void bn_backward_channels(void *arg, size_t c0, size_t c1)
{
    const bn_args *a = arg;
    const double cnt = (double)a->n * (double)a->hw;
    const size_t gsz = group_of(a);
    for (size_t g0 = c0; g0 < c1; g0 += gsz) {
        const size_t g1 = g0 + gsz < c1 ? g0 + gsz : c1;
        bwd_sums s[GROUP_MAX] = {{0, 0, 0}};
        for (size_t i = 0; i < a->n; i++)
            for (size_t ch = g0; ch < g1; ch++)
                add_bwd_sums(a->fn, plane(a, a->x, i, ch), plane(a, a->dy, i, ch),
                             a->mask ? plane(a, a->mask, i, ch) : NULL, NULL, a->hw, a->mean[ch],
                             &s[ch - g0]);
        dj__norm_coef c[GROUP_MAX];
        for (size_t ch = g0; ch < g1; ch++) {
            const double invstd = a->invstd[ch];
            const double g = a->gamma ? a->gamma[ch] : 1.0;
            const double dgamma = bwd_coefficients(&s[ch - g0], cnt, invstd, g * invstd, &c[ch - g0]);
            if (a->dbeta)
                a->dbeta[ch] = (float)s[ch - g0].g;
            if (a->dgamma)
                a->dgamma[ch] = (float)dgamma;
        }
        for (size_t i = 0; i < a->n; i++)
            for (size_t ch = g0; ch < g1; ch++) {
                const float *xp = plane(a, a->x, i, ch);
                a->fn->bwd_dx(xp, plane(a, a->dy, i, ch),
                              a->mask ? plane(a, a->mask, i, ch) : NULL, NULL,
                              a->dx + (xp - a->x), a->hw, a->mean[ch], &c[ch - g0]);
            }
    }
}

void dj_batchnorm2d_backward(dj_pool *pool, int n, int c, int hw, const float *x, const float *dy,
                             const float *gamma, const float *save_mean, const float *save_invstd,
                             float *dx, float *dgamma, float *dbeta)
{
    dj_batchnorm2d_relu_backward(pool, n, c, hw, x, NULL, dy, gamma, save_mean, save_invstd, dx,
                                 dgamma, dbeta);
}

void dj_batchnorm2d_relu_backward(dj_pool *pool, int n, int c, int hw, const float *x,
                                  const float *y, const float *dy, const float *gamma,
                                  const float *save_mean, const float *save_invstd, float *dx,
                                  float *dgamma, float *dbeta)
{
    bn_args a = {.fn = fns(), .n = (size_t)n, .c = (size_t)c, .hw = (size_t)hw, .x = x, .dy = dy,
                 .mask = y, .gamma = gamma, .mean = save_mean, .invstd = save_invstd, .dx = dx,
                 .dgamma = dgamma, .dbeta = dbeta};
    dj_parallel_for(pool_for(pool, a.n * a.c * a.hw), a.c, bn_backward_channels, &a);
}

/* ---- layer norm -------------------------------------------------------- */

typedef struct {
    const dj__norm_fns *fn;
    size_t rows, d;
    const float *x, *dy, *gamma, *beta;
    float eps;
    float *y, *save_mean, *save_invstd;
    const float *mean, *invstd;
    float *dx, *dgamma, *dbeta;
} ln_args;

/* y = (x - mean) * invstd * gamma + beta for one row, the mean given as
 * mean_hi + mean_lo as for normalize(); gamma and beta may be NULL. */
static void ln_row_affine(const dj__norm_fns *fn, const float *x, float *y, size_t d, float mean_hi, float mean_lo,
                          float invstd, const float *gamma, const float *beta)
{
    if (!gamma && !beta) {
        fn->normalize(x, y, d, mean_hi, mean_lo, invstd, 0.0f, 0);
        return;
    }
    if (!gamma || !beta) {
        for (size_t j = 0; j < d; j++)
            y[j] = ((x[j] - mean_hi) - mean_lo) * invstd * (gamma ? gamma[j] : 1.0f) +
                   (beta ? beta[j] : 0.0f);
        return;
    }
    size_t j = 0;
    for (; j + VB <= d; j += VB) {
        float t[VB];
        for (int k = 0; k < VB; k++)
            t[k] = ((x[j + k] - mean_hi) - mean_lo) * invstd * gamma[j + k] + beta[j + k];
        for (int k = 0; k < VB; k++)
            y[j + k] = t[k];
    }
    for (; j < d; j++)
        y[j] = ((x[j] - mean_hi) - mean_lo) * invstd * gamma[j] + beta[j];
}

static void ln_forward_rows(void *arg, size_t r0, size_t r1)
{
    const ln_args *a = arg;
    const double cnt = (double)a->d;
    for (size_t r = r0; r < r1; r++) {
        const float *x = a->x + r * a->d;
        float *y = a->y + r * a->d;
        double s1 = 0, s2 = 0;
        a->fn->sums(x, a->d, x[0], &s1, &s2);
        const double mean = x[0] + s1 / cnt;
        const double invstd = 1.0 / sqrt(variance(s1, s2, cnt) + (double)a->eps);
        ln_row_affine(a->fn, x, y, a->d, (float)mean, low_part(mean), (float)invstd, a->gamma,
                      a->beta);
        if (a->save_mean)
            a->save_mean[r] = (float)mean;
        if (a->save_invstd)
            a->save_invstd[r] = (float)invstd;
    }
}

void dj_layernorm_forward(dj_pool *pool, int rows, int d, const float *x, const float *gamma,
                          const float *beta, float eps, float *y, float *save_mean,
                          float *save_invstd)
{
    if (d <= 0)
        return;
    ln_args a = {.fn = fns(), .rows = (size_t)rows, .d = (size_t)d, .x = x, .gamma = gamma, .beta = beta,
                 .eps = eps, .y = y, .save_mean = save_mean, .save_invstd = save_invstd};
    dj_parallel_for(pool_for(pool, a.rows * a.d), a.rows, ln_forward_rows, &a);
}

/* dgamma[j] = sum over rows of dy * xhat, dbeta[j] = sum of dy: each column
 * summed in row order in double, COLS columns at a time. */
static void ln_param_grad_cols(void *arg, size_t j0, size_t j1)
{
    const ln_args *a = arg;
    for (size_t jb = j0; jb < j1; jb += COLS) {
        const size_t len = j1 - jb < COLS ? j1 - jb : COLS;
        double sg[COLS] = {0}, sb[COLS] = {0};
        for (size_t r = 0; r < a->rows; r++) {
            const float *x = a->x + r * a->d + jb, *dy = a->dy + r * a->d + jb;
            const float mean = a->mean[r], invstd = a->invstd[r];
            size_t j = 0;
            for (; j + VB <= len; j += VB)
                for (int k = 0; k < VB; k++) {
                    sg[j + k] += (double)dy[j + k] * (double)((x[j + k] - mean) * invstd);
                    sb[j + k] += dy[j + k];
                }
            for (; j < len; j++) {
                sg[j] += (double)dy[j] * (double)((x[j] - mean) * invstd);
                sb[j] += dy[j];
            }
        }
        for (size_t j = 0; j < len; j++) {
            if (a->dgamma)
                a->dgamma[jb + j] = (float)sg[j];
            if (a->dbeta)
                a->dbeta[jb + j] = (float)sb[j];
        }
    }
}

/* dx = invstd * (g - mean(g) - xhat * mean(g * xhat)), g = dy * gamma,
 * the means over the row. */
static void ln_backward_rows(void *arg, size_t r0, size_t r1)
{
    const ln_args *a = arg;
    const size_t d = a->d;
    for (size_t r = r0; r < r1; r++) {
        const float *x = a->x + r * d, *dy = a->dy + r * d;
        const float m = a->mean[r];
        const double invstd = a->invstd[r];
        bwd_sums s = {0, 0, 0};
        add_bwd_sums(a->fn, x, dy, NULL, a->gamma, d, m, &s);
        dj__norm_coef c;
        bwd_coefficients(&s, (double)d, invstd, invstd, &c);
        a->fn->bwd_dx(x, dy, NULL, a->gamma, a->dx + r * d, d, m, &c);
    }
}

void dj_layernorm_backward(dj_pool *pool, int rows, int d, const float *x, const float *dy,
                           const float *gamma, const float *save_mean, const float *save_invstd,
                           float *dx, float *dgamma, float *dbeta)
{
    ln_args a = {.fn = fns(), .rows = (size_t)rows, .d = (size_t)d, .x = x, .dy = dy, .gamma = gamma,
                 .mean = save_mean, .invstd = save_invstd, .dx = dx, .dgamma = dgamma,
                 .dbeta = dbeta};
    dj_pool *p = pool_for(pool, a.rows * a.d);
    /* Parameter gradients first: dx may be written over x or dy. */
    if (dgamma || dbeta)
        dj_parallel_for(p, a.d, ln_param_grad_cols, &a);
    dj_parallel_for(p, a.rows, ln_backward_rows, &a);
}
