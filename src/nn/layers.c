/* layers.c - forward and backward of every layer type, on the buffers that
 * dj_model_prepare planned, with the math delegated to kernels.h.
 *
 * Forward walks a sequence front to back; each layer remembers the input it
 * saw (layers that change nothing - Flatten, Dropout in eval mode - pass
 * their input on instead of copying it). Backward walks back to front with
 * two gradient buffers per sequence, each layer writing d(input) into the
 * one that does not hold its d(output). A Residual sends d(output) into both
 * branches (each with its own buffers) and sums what comes back. Nothing is
 * allocated here. */
#define _POSIX_C_SOURCE 200809L

#include <math.h>
#include <string.h>
#include <time.h>

#include "nn/nn_internal.h"

/* Seconds on a clock, for dj_model_profile. */
static double clock_of(clockid_t id)
{
    struct timespec t;
    clock_gettime(id, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static double now_s(void)
{
    return clock_of(CLOCK_MONOTONIC);
}

/* Profiling one layer call: wall and process CPU time at its start. */
typedef struct {
    double wall, cpu;
} prof_mark;

static prof_mark prof_start(const dj_model *m)
{
    prof_mark p = {0, 0};
    if (m->profile) {
        p.wall = now_s();
        p.cpu = clock_of(CLOCK_PROCESS_CPUTIME_ID);
    }
    return p;
}

/* Adds the call's wall time to *t and its CPU time (all threads) to the
 * layer's. */
static void prof_end(const dj_model *m, dj_layer *L, prof_mark p, double *t)
{
    if (!m->profile)
        return;
    *t += now_s() - p.wall;
    L->t_cpu += clock_of(CLOCK_PROCESS_CPUTIME_ID) - p.cpu;
}

static float *pf(dj_model *m, int idx)
{
    return idx >= 0 ? dj_tensor_f32(&m->params[idx].value) : NULL;
}

static float *pg(dj_model *m, int idx)
{
    return idx >= 0 ? dj_tensor_f32(&m->params[idx].grad) : NULL;
}

uint64_t dj_dropout_seed(uint64_t seed, uint64_t step, int uid)
{
    return dj_nn_mix64(seed ^ dj_nn_mix64(step ^ dj_nn_mix64(0x64726f706f7574ULL + (uint64_t)uid)));
}

static void conv_dims(const dj_layer *L, int n, dj_conv2d_dims *d)
{
    dj_conv2d_dims_init(d, n, (int)L->in.d[0], (int)L->in.d[1], (int)L->in.d[2], L->out_ch,
                        L->kh, L->kw, L->sh, L->sw, L->ph, L->pw);
    d->relu = L->conv_relu; /* the forward's; the backward ignores it */
}

static void pool_dims(const dj_layer *L, int n, dj_pool2d_dims *d)
{
    dj_pool2d_dims_init(d, n, (int)L->in.d[0], (int)L->in.d[1], (int)L->in.d[2], L->kh, L->kw,
                        L->sh, L->sw, L->ph, L->pw);
}

/* ---- quantised operands (precision policies) ---- */

/* The stochastic-rounding seed of a layer's gradient at a step. */
static uint64_t grad_seed(uint64_t seed, uint64_t step, int uid)
{
    return dj_nn_mix64(seed ^ dj_nn_mix64(step ^ dj_nn_mix64(0x67726164ULL + (uint64_t)uid)));
}

/* Weights and input of a Conv2d/Linear into their formats (weights by their
 * current amax, inputs per the scaling rule). */
static void quant_forward(dj_model *m, dj_layer *L, dj_pool *pool, const float *x, size_t nin,
                          int train)
{
    const double t0 = m->profile ? now_s() : 0;
    dj_layer_quant *q = L->q;
    const dj_param *w = &m->params[L->p_weight];
    if (w->value.dtype == DJ_DT_SHP) /* master weights in SHP (cfp8-shp) */
        q->wo = dj_quant_run16(&q->w, pool, w->value.data, DJ_FMT_SHP, w->value.bias,
                               w->value.numel, q->wc, 0, train);
    else
        q->wo = dj_quant_run(&q->w, pool, dj_tensor_f32(&w->value), w->value.numel, q->wc, 0,
                             train);
    if (L->x_from) { /* the same tensor, just encoded by x_from: its codes and state */
        q->x = L->x_from->q->x;
        q->xo = L->x_from->q->xo;
    } else {
        q->xo = dj_quant_run(&q->x, pool, x, nin, q->xc, 0, train);
    }
    if (m->profile)
        L->t_enc += now_s() - t0;
}

static dj_opd quant_backward(dj_model *m, dj_layer *L, dj_pool *pool, const float *dy, size_t n)
{
    const double t0 = m->profile ? now_s() : 0;
    const dj_opd go = dj_quant_run(&L->q->g, pool, dy, n, L->q->gc,
                                   grad_seed(m->last_seed, m->last_step, L->uid), 1);
    if (m->profile)
        L->t_enc += now_s() - t0;
    return go;
}

static const float *layer_forward(dj_model *m, dj_layer *L, dj_pool *pool, const float *x,
                                  int n, int train, uint64_t seed, uint64_t step)
{
    size_t nin = (size_t)n * L->in_size, nout = (size_t)n * L->out_size;
    L->x = x;
    L->fwd_train = train;
    L->dropped = 0;
    switch (L->kind) {
    case DJ_L_CONV2D: {
        dj_conv2d_dims d;
        conv_dims(L, n, &d);
        if (L->q) {
            quant_forward(m, L, pool, x, nin, train);
            dj_conv2d_forward_q(pool, &d, L->q->xo, L->q->wo, pf(m, L->p_bias), L->y, m->ws);
        } else {
            dj_conv2d_forward(pool, &d, x, pf(m, L->p_weight), pf(m, L->p_bias), L->y, m->ws);
        }
        return L->y;
    }
    case DJ_L_LINEAR: {
        int in = (int)L->in_size, out = L->out_ch;
        const float *b = pf(m, L->p_bias);
        if (b)
            for (int i = 0; i < n; i++)
                memcpy(L->y + (size_t)i * out, b, (size_t)out * sizeof(float));
        dj_opd xo = dj_opd_f32(x), wo = dj_opd_f32(pf(m, L->p_weight));
        if (L->q) {
            quant_forward(m, L, pool, x, nin, train);
            xo = L->q->xo;
            wo = L->q->wo;
        }
        dj_gemm_q(pool, 0, 1, n, out, in, 1.0f, xo, in, wo, in, b ? 1.0f : 0.0f, L->y, out, m->ws);
        return L->y;
    }
    case DJ_L_BATCHNORM2D: {
        int c = (int)L->in.d[0], hw = (int)(L->in.d[1] * L->in.d[2]);
        if (train) {
            (L->bn_relu ? dj_batchnorm2d_relu_forward_train : dj_batchnorm2d_forward_train)(
                pool, n, c, hw, x, pf(m, L->p_weight), pf(m, L->p_bias), L->eps, L->momentum,
                pf(m, L->p_mean), pf(m, L->p_var), L->y, L->save_mean, L->save_invstd);
            int64_t *count = (int64_t *)m->params[L->p_count].value.data;
            (*count)++;
        } else {
            (L->bn_relu ? dj_batchnorm2d_relu_forward_eval : dj_batchnorm2d_forward_eval)(
                pool, n, c, hw, x, pf(m, L->p_weight), pf(m, L->p_bias), L->eps, pf(m, L->p_mean),
                pf(m, L->p_var), L->y);
        }
        return L->y;
    }
    case DJ_L_LAYERNORM:
        dj_layernorm_forward(pool, n, (int)L->in_size, x, pf(m, L->p_weight), pf(m, L->p_bias),
                             L->eps, L->y, L->save_mean, L->save_invstd);
        return L->y;
    case DJ_L_RELU:
        if (dj_nn_relu_forward_fused(L)) /* done by the layer after or before */
            return x;
        dj_relu_forward(pool, nin, x, L->y);
        return L->y;
    case DJ_L_GELU:
        dj_gelu_forward(pool, nin, x, L->y);
        return L->y;
    case DJ_L_SILU:
        dj_silu_forward(pool, nin, x, L->y);
        return L->y;
    case DJ_L_MAXPOOL2D: {
        dj_pool2d_dims d;
        pool_dims(L, n, &d);
        if (L->relu_pool) /* x is the ReLU's input */
            dj_relu_maxpool2d_forward(pool, &d, x, L->y, L->argmax);
        else
            dj_maxpool2d_forward(pool, &d, x, L->y, L->argmax);
        return L->y;
    }
    case DJ_L_AVGPOOL2D: {
        dj_pool2d_dims d;
        pool_dims(L, n, &d);
        dj_avgpool2d_forward(pool, &d, x, L->y);
        return L->y;
    }
    case DJ_L_ADAPTIVEAVGPOOL2D:
        dj_global_avgpool_forward(pool, (size_t)n * (size_t)L->in.d[0],
                                  (size_t)(L->in.d[1] * L->in.d[2]), x, L->y);
        return L->y;
    case DJ_L_FLATTEN:
        return x;
    case DJ_L_DROPOUT:
        if (!train || L->p <= 0.0f)
            return x;
        L->dropped = 1;
        dj_dropout_forward(pool, nin, L->p, dj_dropout_seed(seed, step, L->uid), 0, x, L->y,
                           L->mask);
        return L->y;
    case DJ_L_RESIDUAL: {
        const float *b = dj_seq_forward(m, &L->body, pool, x, n, train, seed, step);
        const float *s = L->has_shortcut
                             ? dj_seq_forward(m, &L->shortcut, pool, x, n, train, seed, step)
                             : x;
        (L->res_relu ? dj_add_relu : dj_add)(pool, nout, b, s, L->y);
        return L->y;
    }
    default:
        return x;
    }
}

/* BatchNorm2d backward after an eval-mode forward: the statistics are
 * constants, so it is an affine map per channel. */
static void batchnorm_eval_backward(dj_model *m, const dj_layer *L, int n, const float *dy,
                                    float *dx)
{
    int c = (int)L->in.d[0];
    size_t hw = (size_t)(L->in.d[1] * L->in.d[2]);
    const float *x = L->x, *gamma = pf(m, L->p_weight), *mean = pf(m, L->p_mean),
                *var = pf(m, L->p_var);
    float *dgamma = pg(m, L->p_weight), *dbeta = pg(m, L->p_bias);
    for (int ch = 0; ch < c; ch++) {
        float invstd = 1.0f / sqrtf(var[ch] + L->eps);
        double sg = 0, sb = 0;
        float scale = gamma[ch] * invstd;
        for (int i = 0; i < n; i++) {
            size_t off = ((size_t)i * (size_t)c + (size_t)ch) * hw;
            for (size_t k = 0; k < hw; k++) {
                /* a fused ReLU's backward first: dropped where its output <= 0 */
                float g = L->bn_relu && L->y[off + k] <= 0.0f ? 0.0f : dy[off + k];
                sb += g;
                sg += (double)g * (double)((x[off + k] - mean[ch]) * invstd);
                if (dx)
                    dx[off + k] = g * scale;
            }
        }
        dgamma[ch] = (float)sg;
        dbeta[ch] = (float)sb;
    }
}

/* Writes parameter grads and, when need_dx, d(input) into dx (or returns dy
 * itself for layers that pass their input on). Returns d(input) or NULL. */
static const float *layer_backward(dj_model *m, dj_layer *L, dj_pool *pool, const float *dy,
                                   int n, float *dx, int need_dx)
{
    size_t nin = (size_t)n * L->in_size;
    switch (L->kind) {
    case DJ_L_CONV2D: {
        dj_conv2d_dims d;
        conv_dims(L, n, &d);
        if (L->q) {
            const dj_opd go = quant_backward(m, L, pool, dy, (size_t)n * L->out_size);
            dj_conv2d_backward_weight_q(pool, &d, L->q->xo, go, pg(m, L->p_weight),
                                        pg(m, L->p_bias), m->ws);
            if (!need_dx)
                return NULL;
            dj_conv2d_backward_data_q(pool, &d, go, L->q->wo, dx, m->ws);
            return dx;
        }
        dj_conv2d_backward_weight(pool, &d, L->x, dy, pg(m, L->p_weight), pg(m, L->p_bias),
                                  m->ws);
        if (!need_dx)
            return NULL;
        dj_conv2d_backward_data(pool, &d, dy, pf(m, L->p_weight), dx, m->ws);
        return dx;
    }
    case DJ_L_LINEAR: {
        int in = (int)L->in_size, out = L->out_ch;
        dj_opd go = dj_opd_f32(dy), xo = dj_opd_f32(L->x), wo = dj_opd_f32(pf(m, L->p_weight));
        if (L->q) {
            go = quant_backward(m, L, pool, dy, (size_t)n * L->out_size);
            xo = L->q->xo;
            wo = L->q->wo;
        }
        dj_gemm_q(pool, 1, 0, out, in, n, 1.0f, go, out, xo, in, 0.0f, pg(m, L->p_weight), in,
                  m->ws);
        float *db = pg(m, L->p_bias);
        if (db) {
            for (int j = 0; j < out; j++)
                db[j] = 0.0f;
            for (int i = 0; i < n; i++)
                for (int j = 0; j < out; j++)
                    db[j] += dy[(size_t)i * out + j];
        }
        if (!need_dx)
            return NULL;
        dj_gemm_q(pool, 0, 0, n, in, out, 1.0f, go, out, wo, in, 0.0f, dx, in, m->ws);
        return dx;
    }
    case DJ_L_BATCHNORM2D: {
        int c = (int)L->in.d[0], hw = (int)(L->in.d[1] * L->in.d[2]);
        if (L->fwd_train)
            dj_batchnorm2d_relu_backward(pool, n, c, hw, L->x, L->bn_relu ? L->y : NULL, dy,
                                         pf(m, L->p_weight), L->save_mean, L->save_invstd, dx,
                                         pg(m, L->p_weight), pg(m, L->p_bias));
        else
            batchnorm_eval_backward(m, L, n, dy, need_dx ? dx : NULL);
        return need_dx ? dx : NULL;
    }
    case DJ_L_LAYERNORM:
        dj_layernorm_backward(pool, n, (int)L->in_size, L->x, dy, pf(m, L->p_weight),
                              L->save_mean, L->save_invstd, dx, pg(m, L->p_weight),
                              pg(m, L->p_bias));
        return need_dx ? dx : NULL;
    case DJ_L_RELU:
    case DJ_L_GELU:
    case DJ_L_SILU:
        if (!need_dx)
            return NULL;
        if (L->relu_pool || L->bn_relu || L->res_relu) /* that layer's backward does it */
            return dy;
        if (L->kind == DJ_L_RELU)
            dj_relu_backward(pool, nin, L->x, dy, dx);
        else if (L->kind == DJ_L_GELU)
            dj_gelu_backward(pool, nin, L->x, dy, dx);
        else
            dj_silu_backward(pool, nin, L->x, dy, dx);
        return dx;
    case DJ_L_MAXPOOL2D: {
        if (!need_dx)
            return NULL;
        dj_pool2d_dims d;
        pool_dims(L, n, &d);
        if (L->relu_pool)
            dj_relu_maxpool2d_backward(pool, &d, L->y, dy, L->argmax, dx);
        else
            dj_maxpool2d_backward(pool, &d, dy, L->argmax, dx);
        return dx;
    }
    case DJ_L_AVGPOOL2D: {
        if (!need_dx)
            return NULL;
        dj_pool2d_dims d;
        pool_dims(L, n, &d);
        dj_avgpool2d_backward(pool, &d, dy, dx);
        return dx;
    }
    case DJ_L_ADAPTIVEAVGPOOL2D:
        if (!need_dx)
            return NULL;
        dj_global_avgpool_backward(pool, (size_t)n * (size_t)L->in.d[0],
                                   (size_t)(L->in.d[1] * L->in.d[2]), dy, dx);
        return dx;
    case DJ_L_FLATTEN:
        return dy;
    case DJ_L_DROPOUT:
        if (!L->dropped)
            return dy;
        if (!need_dx)
            return NULL;
        dj_dropout_backward(pool, nin, L->p, L->mask, dy, dx);
        return dx;
    case DJ_L_RESIDUAL: {
        if (L->res_relu) { /* the fused ReLU's backward: dy where the output > 0, into dx
                            * (the branches write only their own buffers) */
            dj_relu_backward(pool, (size_t)n * L->out_size, L->y, dy, dx);
            dy = dx;
        }
        const float *b = dj_seq_backward(m, &L->body, pool, dy, n, need_dx);
        const float *s = L->has_shortcut ? dj_seq_backward(m, &L->shortcut, pool, dy, n, need_dx)
                                         : dy;
        if (!need_dx)
            return NULL;
        dj_add(pool, nin, b, s, dx);
        return dx;
    }
    default:
        return dy;
    }
}

const float *dj_seq_forward(dj_model *m, dj_seq *s, dj_pool *pool, const float *x, int n,
                            int train, uint64_t seed, uint64_t step)
{
    for (int i = 0; i < s->count; i++) {
        const prof_mark p = prof_start(m);
        x = layer_forward(m, &s->layers[i], pool, x, n, train, seed, step);
        prof_end(m, &s->layers[i], p, &s->layers[i].t_fwd);
    }
    return x;
}

const float *dj_seq_backward(dj_model *m, dj_seq *s, dj_pool *pool, const float *dy, int n,
                             int need_dx)
{
    for (int i = s->count - 1; i >= 0; i--) {
        float *dst = dy == s->gbuf[0] ? s->gbuf[1] : s->gbuf[0];
        const prof_mark p = prof_start(m);
        dy = layer_backward(m, &s->layers[i], pool, dy, n, dst, i > 0 || need_dx);
        prof_end(m, &s->layers[i], p, &s->layers[i].t_bwd);
        if (!dy)
            return NULL;
    }
    return dy;
}
