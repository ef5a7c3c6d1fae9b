/* test_gradcheck.c - every layer's backward against finite differences.
 *
 * The model's float32 forward and backward give the output and the
 * gradients of the scalar loss L = sum(r * output) (r fixed random
 * weights, so dlogits = r) with respect to every parameter and to the
 * input. The test carries its own double-precision forward of every layer
 * type, written from PyTorch's definitions and independent of kernels.h,
 * and takes central differences of L on it (step 1e-5 in double, so
 * truncation and rounding are far below float32 noise). Checked: the float
 * forward against the double one, every parameter gradient (sampled
 * elements for big tensors), the input gradient (through
 * dj_model_input_grad), BatchNorm2d's batch-statistics dependence in
 * training mode and its running-stat update, and the eval-mode paths.
 *
 * Also: dropout masks are reproducible from (seed, step, layer) and differ
 * across steps and layers, backward overwrites (does not accumulate) the
 * grads, num_batches_tracked counts training forwards, PyTorch's default
 * init (bounds, spread, reproducibility), and a pool of 2 threads gives
 * what one thread gives. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dojo/nn.h"
#include "dojo/rng.h"
#include "harness.h"
#include "nn/nn_internal.h"

/* ---- random numbers for the test ------------------------------------------- */

static uint64_t g_rng = 0x243f6a8885a308d3ULL;

static double urand(void) /* [0, 1) */
{
    g_rng = g_rng * 6364136223846793005ULL + 1442695040888963407ULL;
    return (double)(g_rng >> 11) * (1.0 / 9007199254740992.0);
}

static double srand_(double a) /* [-a, a) */
{
    return (2.0 * urand() - 1.0) * a;
}

/* ---- the double-precision reference forward --------------------------------- */

typedef struct {
    dj_model *m;
    double **p; /* per parameter, a double copy of its value */
} ref_ctx;

static void ref_seq(ref_ctx *r, const dj_seq *s, const double *x, int n, double *out, int train);

static void ref_layer(ref_ctx *r, const dj_layer *L, const double *x, int n, double *y, int train)
{
    size_t in = L->in_size, out = L->out_size;
    int C = L->in.ndim == 3 ? (int)L->in.d[0] : 0;
    int H = L->in.ndim == 3 ? (int)L->in.d[1] : 0, W = L->in.ndim == 3 ? (int)L->in.d[2] : 0;
    int OH = L->out.ndim == 3 ? (int)L->out.d[1] : 0, OW = L->out.ndim == 3 ? (int)L->out.d[2] : 0;
    switch (L->kind) {
    case DJ_L_CONV2D: {
        const double *w = r->p[L->p_weight], *b = L->p_bias >= 0 ? r->p[L->p_bias] : NULL;
        int O = L->out_ch;
        for (int i = 0; i < n; i++)
            for (int o = 0; o < O; o++)
                for (int oy = 0; oy < OH; oy++)
                    for (int ox = 0; ox < OW; ox++) {
                        double s = b ? b[o] : 0.0;
                        for (int c = 0; c < C; c++)
                            for (int ky = 0; ky < L->kh; ky++)
                                for (int kx = 0; kx < L->kw; kx++) {
                                    int iy = oy * L->sh - L->ph + ky, ix = ox * L->sw - L->pw + kx;
                                    if (iy < 0 || iy >= H || ix < 0 || ix >= W)
                                        continue;
                                    s += x[(((size_t)i * C + c) * H + iy) * W + ix] *
                                         w[(((size_t)o * C + c) * L->kh + ky) * L->kw + kx];
                                }
                        y[(((size_t)i * O + o) * OH + oy) * OW + ox] = s;
                    }
        break;
    }
    case DJ_L_LINEAR: {
        const double *w = r->p[L->p_weight], *b = L->p_bias >= 0 ? r->p[L->p_bias] : NULL;
        for (int i = 0; i < n; i++)
            for (size_t o = 0; o < out; o++) {
                double s = b ? b[o] : 0.0;
                for (size_t k = 0; k < in; k++)
                    s += x[i * in + k] * w[o * in + k];
                y[i * out + o] = s;
            }
        break;
    }
    case DJ_L_BATCHNORM2D: {
        const double *g = r->p[L->p_weight], *b = r->p[L->p_bias];
        const double *rm = r->p[L->p_mean], *rv = r->p[L->p_var];
        size_t hw = (size_t)H * W;
        for (int c = 0; c < C; c++) {
            double mean = rm[c], var = rv[c];
            if (train) {
                double s = 0, ss = 0;
                for (int i = 0; i < n; i++)
                    for (size_t k = 0; k < hw; k++)
                        s += x[((size_t)i * C + c) * hw + k];
                mean = s / (double)(n * hw);
                for (int i = 0; i < n; i++)
                    for (size_t k = 0; k < hw; k++) {
                        double d = x[((size_t)i * C + c) * hw + k] - mean;
                        ss += d * d;
                    }
                var = ss / (double)(n * hw);
            }
            double inv = 1.0 / sqrt(var + (double)L->eps);
            for (int i = 0; i < n; i++)
                for (size_t k = 0; k < hw; k++) {
                    size_t j = ((size_t)i * C + c) * hw + k;
                    y[j] = (x[j] - mean) * inv * g[c] + b[c];
                }
        }
        break;
    }
    case DJ_L_LAYERNORM: {
        const double *g = r->p[L->p_weight], *b = r->p[L->p_bias];
        for (int i = 0; i < n; i++) {
            double s = 0, ss = 0;
            for (size_t k = 0; k < in; k++)
                s += x[i * in + k];
            double mean = s / (double)in;
            for (size_t k = 0; k < in; k++)
                ss += (x[i * in + k] - mean) * (x[i * in + k] - mean);
            double inv = 1.0 / sqrt(ss / (double)in + (double)L->eps);
            for (size_t k = 0; k < in; k++)
                y[i * in + k] = (x[i * in + k] - mean) * inv * g[k] + b[k];
        }
        break;
    }
    case DJ_L_RELU:
        for (size_t k = 0; k < n * in; k++)
            y[k] = x[k] > 0 ? x[k] : 0.0;
        break;
    case DJ_L_GELU:
        for (size_t k = 0; k < n * in; k++)
            y[k] = 0.5 * x[k] * (1.0 + erf(x[k] / sqrt(2.0)));
        break;
    case DJ_L_SILU:
        for (size_t k = 0; k < n * in; k++)
            y[k] = x[k] / (1.0 + exp(-x[k]));
        break;
    case DJ_L_MAXPOOL2D:
    case DJ_L_AVGPOOL2D:
        for (int pl = 0; pl < n * C; pl++)
            for (int oy = 0; oy < OH; oy++)
                for (int ox = 0; ox < OW; ox++) {
                    double best = -INFINITY, sum = 0;
                    for (int ky = 0; ky < L->kh; ky++)
                        for (int kx = 0; kx < L->kw; kx++) {
                            int iy = oy * L->sh - L->ph + ky, ix = ox * L->sw - L->pw + kx;
                            if (iy < 0 || iy >= H || ix < 0 || ix >= W)
                                continue;
                            double v = x[((size_t)pl * H + iy) * W + ix];
                            best = v > best ? v : best;
                            sum += v;
                        }
                    y[((size_t)pl * OH + oy) * OW + ox] =
                        L->kind == DJ_L_MAXPOOL2D ? best : sum / (L->kh * L->kw);
                }
        break;
    case DJ_L_ADAPTIVEAVGPOOL2D:
        for (int pl = 0; pl < n * C; pl++) {
            double s = 0;
            for (int k = 0; k < H * W; k++)
                s += x[(size_t)pl * H * W + k];
            y[pl] = s / (H * W);
        }
        break;
    case DJ_L_FLATTEN:
        memcpy(y, x, n * in * sizeof *y);
        break;
    case DJ_L_DROPOUT:
        /* the mask the float forward drew */
        for (size_t k = 0; k < n * in; k++)
            y[k] = L->dropped ? (L->mask[k] ? x[k] / (1.0 - (double)L->p) : 0.0) : x[k];
        break;
    case DJ_L_RESIDUAL: {
        double *b = malloc(n * out * sizeof *b), *s = malloc(n * out * sizeof *s);
        ref_seq(r, &L->body, x, n, b, train);
        if (L->has_shortcut)
            ref_seq(r, &L->shortcut, x, n, s, train);
        else
            memcpy(s, x, n * out * sizeof *s);
        for (size_t k = 0; k < n * out; k++)
            y[k] = b[k] + s[k];
        free(b);
        free(s);
        break;
    }
    default:
        break;
    }
}

static void ref_seq(ref_ctx *r, const dj_seq *s, const double *x, int n, double *out, int train)
{
    const double *cur = x;
    double *tmp = NULL;
    for (int i = 0; i < s->count; i++) {
        const dj_layer *L = &s->layers[i];
        double *y = i == s->count - 1 ? out : malloc(n * L->out_size * sizeof *y);
        ref_layer(r, L, cur, n, y, train);
        free(tmp);
        tmp = y == out ? NULL : y;
        cur = y;
    }
}

static double ref_loss(ref_ctx *r, const double *x, int n, const double *w, int train,
                       double *y)
{
    ref_seq(r, &r->m->top, x, n, y, train);
    double s = 0;
    for (size_t k = 0; k < n * r->m->out_size; k++)
        s += w[k] * y[k];
    return s;
}

/* ---- comparing gradients ------------------------------------------------------ */

/* analytic a[i] against finite differences f[i] for the sampled indices */
static int close_enough(const float *a, const double *f, const size_t *idx, size_t cnt,
                        const char *what, const char *name)
{
    double fmax = 0;
    for (size_t k = 0; k < cnt; k++)
        fmax = fmax > fabs(f[k]) ? fmax : fabs(f[k]);
    int bad = 0;
    for (size_t k = 0; k < cnt; k++) {
        double tol = 1e-3 * fabs(f[k]) + 1e-4 * fmax + 1e-6;
        if (!(fabs((double)a[idx[k]] - f[k]) <= tol)) {
            if (bad++ < 3)
                fprintf(stderr, "%s: %s[%zu]: backward %.8g, finite difference %.8g\n", what,
                        name, idx[k], (double)a[idx[k]], f[k]);
        }
    }
    CHECK(bad == 0, "%s: %s: %d of %zu gradient values off (largest |fd| %.3g)", what, name, bad,
          cnt, fmax);
    return bad == 0;
}

/* Indices to check: all of a small tensor, a random sample of a big one. */
static size_t pick(size_t numel, size_t *idx, size_t max)
{
    if (numel <= max) {
        for (size_t i = 0; i < numel; i++)
            idx[i] = i;
        return numel;
    }
    for (size_t i = 0; i < max; i++)
        idx[i] = (size_t)(urand() * (double)numel);
    return max;
}

#define SAMPLE 48
#define FD_STEP 1e-5

typedef struct {
    const char *what;
    const char *spec;
    int n;
    int train;
    int check_running; /* compare BatchNorm running stats after the forward */
} gc_case;

/* Randomises parameters so that every path matters (BatchNorm's gamma
 * away from 1, biases away from 0, running stats off their defaults). */
static void randomise(dj_model *m)
{
    size_t np;
    dj_param *p = dj_model_params(m, &np);
    for (size_t k = 0; k < np; k++) {
        if (p[k].value.dtype != DJ_DT_F32)
            continue;
        float *v = dj_tensor_f32(&p[k].value);
        int is_var = strstr(p[k].name, "running_var") != NULL;
        int is_norm_w = 0;
        /* norm weights: the only 1-valued parameters after init */
        if (!is_var && !strstr(p[k].name, "running_mean") && p[k].value.numel > 0 && v[0] == 1.0f)
            is_norm_w = 1;
        for (size_t i = 0; i < p[k].value.numel; i++) {
            if (is_var)
                v[i] = (float)(0.5 + urand());
            else if (is_norm_w)
                v[i] = (float)(0.5 + urand());
            else if (strstr(p[k].name, "bias") || strstr(p[k].name, "running_mean"))
                v[i] = (float)srand_(0.5);
            else
                v[i] += (float)srand_(0.05); /* keep init's scale, break symmetry */
        }
    }
}

static void run_case(const gc_case *tc)
{
    dj_model *m = NULL;
    char err[512];
    dj_status st = dj_model_parse(tc->spec, strlen(tc->spec), tc->what, &m, err, sizeof err);
    CHECK(st == DJ_OK, "%s: %s", tc->what, err);
    if (st)
        return;
    int n = tc->n;
    dj_model_init(m, 42);
    randomise(m);
    CHECK(dj_model_prepare(m, n + 1, 1) == DJ_OK, "%s: prepare %s", tc->what, dj_model_error(m));
    dj_model_set_input_grad(m, 1);
    size_t in = dj_model_input_size(m), out = dj_model_output_size(m);
    size_t np;
    dj_param *p = dj_model_params(m, &np);

    float *x = malloc(n * in * sizeof *x), *rw = malloc(n * out * sizeof *rw);
    double *xd = malloc(n * in * sizeof *xd), *rwd = malloc(n * out * sizeof *rwd);
    double *yd = malloc(n * out * sizeof *yd);
    for (size_t i = 0; i < n * in; i++) {
        x[i] = (float)srand_(1.5);
        xd[i] = x[i];
    }
    for (size_t i = 0; i < n * out; i++) {
        rw[i] = (float)srand_(1.0);
        rwd[i] = rw[i];
    }

    /* the double copy of the parameters, taken before the forward (which
     * updates running stats in training mode) */
    ref_ctx r = {m, calloc(np, sizeof(double *))};
    for (size_t k = 0; k < np; k++) {
        r.p[k] = malloc((p[k].value.numel + 1) * sizeof(double));
        for (size_t i = 0; i < p[k].value.numel; i++)
            r.p[k][i] = p[k].value.dtype == DJ_DT_F32 ? dj_tensor_f32(&p[k].value)[i] : 0.0;
    }

    const float *y = dj_model_forward(m, NULL, x, n, tc->train, 1234, 5);
    CHECK(y != NULL, "%s: forward", tc->what);
    if (!y)
        goto done;
    dj_model_backward(m, NULL, rw);
    const float *dx = dj_model_input_grad(m);
    CHECK(dx != NULL, "%s: no input gradient", tc->what);

    /* forward against the reference */
    double l0 = ref_loss(&r, xd, n, rwd, tc->train, yd);
    double ymax = 0, yerr = 0;
    for (size_t i = 0; i < n * out; i++) {
        ymax = fmax(ymax, fabs(yd[i]));
        yerr = fmax(yerr, fabs(yd[i] - (double)y[i]));
    }
    CHECK(yerr <= 1e-4 * (ymax + 1e-3), "%s: forward differs from the reference by %.3g (max %.3g)",
          tc->what, yerr, ymax);
    (void)l0;

    /* BatchNorm running stats: (1 - momentum) * old + momentum * batch stat
     * (unbiased variance); eval mode leaves them alone */
    if (tc->check_running) {
        const dj_layer *L = &m->top.layers[tc->check_running - 1];
        int C = (int)L->in.d[0];
        size_t hw = (size_t)(L->in.d[1] * L->in.d[2]);
        const float *rm = dj_tensor_f32(&p[L->p_mean].value), *rv = dj_tensor_f32(&p[L->p_var].value);
        /* the layer's input is the model input here */
        int ok = 1;
        for (int c = 0; c < C; c++) {
            double s = 0, ss = 0, cnt = (double)(n * hw);
            for (int i = 0; i < n; i++)
                for (size_t k = 0; k < hw; k++)
                    s += xd[((size_t)i * C + c) * hw + k];
            double mean = s / cnt;
            for (int i = 0; i < n; i++)
                for (size_t k = 0; k < hw; k++) {
                    double d = xd[((size_t)i * C + c) * hw + k] - mean;
                    ss += d * d;
                }
            double mom = L->momentum;
            double em = tc->train ? (1 - mom) * r.p[L->p_mean][c] + mom * mean : r.p[L->p_mean][c];
            double ev = tc->train ? (1 - mom) * r.p[L->p_var][c] + mom * ss / (cnt - 1)
                                  : r.p[L->p_var][c];
            if (fabs(rm[c] - em) > 1e-5 * (1 + fabs(em)) || fabs(rv[c] - ev) > 1e-5 * (1 + fabs(ev))) {
                ok = 0;
                fprintf(stderr, "channel %d: running mean %g (want %g), var %g (want %g)\n", c,
                        rm[c], em, rv[c], ev);
            }
        }
        CHECK(ok, "%s: running statistics", tc->what);
        int64_t count = *(int64_t *)p[L->p_count].value.data;
        CHECK(count == (tc->train ? 1 : 0), "%s: num_batches_tracked %lld", tc->what,
              (long long)count);
    }

    /* parameter gradients */
    size_t idx[SAMPLE];
    double fd[SAMPLE];
    for (size_t k = 0; k < np; k++) {
        if (p[k].is_buffer)
            continue;
        size_t cnt = pick(p[k].value.numel, idx, SAMPLE);
        for (size_t j = 0; j < cnt; j++) {
            double *v = &r.p[k][idx[j]], save = *v;
            double h = FD_STEP * fmax(1.0, fabs(save));
            *v = save + h;
            double lp = ref_loss(&r, xd, n, rwd, tc->train, yd);
            *v = save - h;
            double lm = ref_loss(&r, xd, n, rwd, tc->train, yd);
            *v = save;
            fd[j] = (lp - lm) / (2 * h);
        }
        close_enough(dj_tensor_f32(&p[k].grad), fd, idx, cnt, tc->what, p[k].name);
    }
    /* input gradient */
    if (dx) {
        size_t cnt = pick(n * in, idx, SAMPLE);
        for (size_t j = 0; j < cnt; j++) {
            double save = xd[idx[j]], h = FD_STEP * fmax(1.0, fabs(save));
            xd[idx[j]] = save + h;
            double lp = ref_loss(&r, xd, n, rwd, tc->train, yd);
            xd[idx[j]] = save - h;
            double lm = ref_loss(&r, xd, n, rwd, tc->train, yd);
            xd[idx[j]] = save;
            fd[j] = (lp - lm) / (2 * h);
        }
        close_enough(dx, fd, idx, cnt, tc->what, "input");
    }

    /* backward overwrites: a second backward gives the same grads */
    {
        float *g1 = NULL;
        size_t k0 = np;
        for (size_t k = 0; k < np && k0 == np; k++)
            if (!p[k].is_buffer)
                k0 = k;
        if (k0 < np) {
            size_t cnt = p[k0].grad.numel;
            g1 = malloc(cnt * sizeof *g1);
            memcpy(g1, p[k0].grad.data, cnt * sizeof *g1);
            dj_model_backward(m, NULL, rw);
            CHECK(memcmp(g1, p[k0].grad.data, cnt * sizeof *g1) == 0,
                  "%s: a second backward changed %s (accumulates?)", tc->what, p[k0].name);
            free(g1);
        }
    }

done:
    for (size_t k = 0; k < np; k++)
        free(r.p[k]);
    free(r.p);
    free(x);
    free(rw);
    free(xd);
    free(rwd);
    free(yd);
    dj_model_free(m);
}

/* ---- the cases ----------------------------------------------------------------- */

#define SPEC(input, layers) "{\"input\": " input ", \"layers\": [" layers "]}"

static const gc_case g_cases[] = {
    {"Conv2d", SPEC("[3, 7, 6]", "{\"type\": \"Conv2d\", \"out_channels\": 4, \"kernel_size\": [3, 2],"
                                 " \"stride\": [2, 1], \"padding\": [1, 0]}"), 2, 1, 0},
    {"Conv2d 1x1 no bias", SPEC("[2, 5, 5]", "{\"type\": \"Conv2d\", \"out_channels\": 3, "
                                            "\"kernel_size\": 1, \"bias\": false}"), 3, 1, 0},
    {"Conv2d 5x5 pad 2", SPEC("[2, 6, 6]", "{\"type\": \"Conv2d\", \"out_channels\": 2, "
                                          "\"kernel_size\": 5, \"padding\": 2, \"stride\": 2}"), 2, 1, 0},
    {"Linear", SPEC("[12]", "{\"type\": \"Linear\", \"out_features\": 5}"), 3, 1, 0},
    {"Flatten+Linear no bias", SPEC("[2, 3, 3]", "{\"type\": \"Flatten\"}, {\"type\": \"Linear\","
                                                 " \"out_features\": 4, \"bias\": false}"), 2, 1, 0},
    {"BatchNorm2d train", SPEC("[3, 4, 5]", "{\"type\": \"BatchNorm2d\", \"momentum\": 0.3}"), 4, 1, 1},
    {"BatchNorm2d eval", SPEC("[3, 4, 5]", "{\"type\": \"BatchNorm2d\", \"eps\": 1e-3}"), 3, 0, 1},
    {"BatchNorm2d train, batch 1", SPEC("[2, 3, 3]", "{\"type\": \"BatchNorm2d\"}"), 1, 1, 1},
    {"LayerNorm image", SPEC("[2, 3, 4]", "{\"type\": \"LayerNorm\"}"), 3, 1, 0},
    {"LayerNorm flat", SPEC("[10]", "{\"type\": \"LayerNorm\", \"eps\": 1e-4}"), 2, 1, 0},
    {"ReLU", SPEC("[2, 4, 4]", "{\"type\": \"ReLU\"}"), 2, 1, 0},
    {"GELU", SPEC("[30]", "{\"type\": \"GELU\"}"), 2, 1, 0},
    {"SiLU", SPEC("[30]", "{\"type\": \"SiLU\"}"), 2, 1, 0},
    {"MaxPool2d 2", SPEC("[2, 6, 6]", "{\"type\": \"MaxPool2d\", \"kernel_size\": 2}"), 2, 1, 0},
    {"MaxPool2d 3/2 pad 1", SPEC("[2, 7, 7]", "{\"type\": \"MaxPool2d\", \"kernel_size\": 3, "
                                             "\"stride\": 2, \"padding\": 1}"), 2, 1, 0},
    {"AvgPool2d 2", SPEC("[2, 6, 5]", "{\"type\": \"AvgPool2d\", \"kernel_size\": 2}"), 2, 1, 0},
    {"AvgPool2d 3/2 pad 1", SPEC("[2, 7, 7]", "{\"type\": \"AvgPool2d\", \"kernel_size\": 3, "
                                             "\"stride\": 2, \"padding\": 1}"), 2, 1, 0},
    {"AdaptiveAvgPool2d", SPEC("[3, 5, 4]", "{\"type\": \"AdaptiveAvgPool2d\"}, {\"type\": \"Flatten\"}"), 2, 1, 0},
    {"Dropout train", SPEC("[40]", "{\"type\": \"Dropout\", \"p\": 0.3}"), 3, 1, 0},
    {"Dropout eval", SPEC("[40]", "{\"type\": \"Dropout\", \"p\": 0.3}"), 3, 0, 0},
    {"Residual identity", SPEC("[3, 5, 5]",
        "{\"type\": \"Residual\", \"body\": [{\"type\": \"Conv2d\", \"out_channels\": 3, \"kernel_size\": 3,"
        " \"padding\": 1}, {\"type\": \"BatchNorm2d\"}, {\"type\": \"ReLU\"}, {\"type\": \"Conv2d\","
        " \"out_channels\": 3, \"kernel_size\": 3, \"padding\": 1, \"bias\": false}]}"), 2, 1, 0},
    {"Residual shortcut", SPEC("[3, 6, 6]",
        "{\"type\": \"Residual\", \"body\": [{\"type\": \"Conv2d\", \"out_channels\": 4, \"kernel_size\": 3,"
        " \"stride\": 2, \"padding\": 1, \"bias\": false}, {\"type\": \"BatchNorm2d\"}, {\"type\": \"SiLU\"},"
        " {\"type\": \"Conv2d\", \"out_channels\": 4, \"kernel_size\": 3, \"padding\": 1}],"
        " \"shortcut\": [{\"type\": \"Conv2d\", \"out_channels\": 4, \"kernel_size\": 1, \"stride\": 2,"
        " \"bias\": false}, {\"type\": \"BatchNorm2d\"}]}, {\"type\": \"ReLU\"}"), 3, 1, 0},
    {"Residual nested, flat", SPEC("[6]",
        "{\"type\": \"Residual\", \"body\": [{\"type\": \"Linear\", \"out_features\": 6},"
        " {\"type\": \"Residual\", \"body\": [{\"type\": \"GELU\"}, {\"type\": \"Dropout\", \"p\": 0.25}]},"
        " {\"type\": \"LayerNorm\"}], \"shortcut\": [{\"type\": \"Linear\", \"out_features\": 6, \"bias\": false}]},"
        " {\"type\": \"Residual\", \"body\": [{\"type\": \"Flatten\"}]}"), 3, 1, 0},
    {"small model train", SPEC("[2, 8, 8]",
        "{\"type\": \"Conv2d\", \"out_channels\": 4, \"kernel_size\": 3, \"padding\": 1},"
        " {\"type\": \"BatchNorm2d\"}, {\"type\": \"ReLU\"},"
        " {\"type\": \"Residual\", \"body\": [{\"type\": \"Conv2d\", \"out_channels\": 4, \"kernel_size\": 3,"
        "  \"padding\": 1, \"bias\": false}, {\"type\": \"BatchNorm2d\"}, {\"type\": \"GELU\"}]},"
        " {\"type\": \"MaxPool2d\", \"kernel_size\": 2},"
        " {\"type\": \"Residual\", \"body\": [{\"type\": \"Conv2d\", \"out_channels\": 6, \"kernel_size\": 3,"
        "  \"stride\": 2, \"padding\": 1}, {\"type\": \"SiLU\"}],"
        "  \"shortcut\": [{\"type\": \"AvgPool2d\", \"kernel_size\": 2}, {\"type\": \"Conv2d\","
        "  \"out_channels\": 6, \"kernel_size\": 1}]},"
        " {\"type\": \"Dropout\", \"p\": 0.2}, {\"type\": \"Flatten\"},"
        " {\"type\": \"Linear\", \"out_features\": 8}, {\"type\": \"LayerNorm\"}, {\"type\": \"ReLU\"},"
        " {\"type\": \"Linear\", \"out_features\": 3}"), 3, 1, 0},
    {"small model eval", SPEC("[1, 6, 6]",
        "{\"type\": \"Conv2d\", \"out_channels\": 3, \"kernel_size\": 3},"
        " {\"type\": \"BatchNorm2d\"}, {\"type\": \"ReLU\"}, {\"type\": \"Dropout\"},"
        " {\"type\": \"AdaptiveAvgPool2d\", \"output_size\": 1}, {\"type\": \"Flatten\"},"
        " {\"type\": \"Linear\", \"out_features\": 2}"), 2, 0, 0},
};

/* ---- dropout, init, threads ------------------------------------------------------- */

static dj_model *load(const char *spec, int max_batch, int nthreads)
{
    dj_model *m = NULL;
    char err[512];
    if (dj_model_parse(spec, strlen(spec), "test", &m, err, sizeof err) != DJ_OK) {
        CHECK(0, "%s", err);
        return NULL;
    }
    dj_model_init(m, 3);
    CHECK(dj_model_prepare(m, max_batch, nthreads) == DJ_OK, "prepare: %s", dj_model_error(m));
    return m;
}

static void test_dropout(void)
{
    dj_model *m = load(SPEC("[1000]", "{\"type\": \"Dropout\", \"p\": 0.3}, {\"type\": \"Dropout\", "
                                      "\"p\": 0.3}"), 2, 1);
    if (!m)
        return;
    float *x = malloc(2000 * sizeof *x);
    for (int i = 0; i < 2000; i++)
        x[i] = 1.0f;
    dj_layer *L0 = &m->top.layers[0], *L1 = &m->top.layers[1];
    uint8_t *a = malloc(2000), *b = malloc(2000);
    dj_model_forward(m, NULL, x, 2, 1, 99, 7);
    memcpy(a, L0->mask, 2000);
    memcpy(b, L1->mask, 2000);
    int kept = 0;
    for (int i = 0; i < 2000; i++)
        kept += a[i];
    CHECK(kept > 1300 && kept < 1500, "dropout kept %d of 2000 at p 0.3", kept);
    CHECK(memcmp(a, b, 2000) != 0, "two dropout layers draw the same mask");
    /* the mask is a function of (seed, step, layer): the kernel's draw with
     * the documented derived seed */
    uint64_t s0 = dj_dropout_seed(99, 7, L0->uid);
    int same = 1;
    for (int i = 0; i < 2000; i++) {
        uint32_t u = dj_rng_u32(s0, (uint64_t)i, 0);
        same &= (u >= (uint32_t)((double)L0->p * 4294967296.0)) == (a[i] != 0);
    }
    CHECK(same, "mask is not dj_rng_u32(dj_dropout_seed(seed, step, uid), i) >= p 2^32");
    dj_model_forward(m, NULL, x, 2, 1, 99, 7);
    CHECK(memcmp(a, L0->mask, 2000) == 0, "same seed and step, different mask");
    dj_model_forward(m, NULL, x, 2, 1, 99, 8);
    CHECK(memcmp(a, L0->mask, 2000) != 0, "next step, same mask");
    dj_model_forward(m, NULL, x, 2, 1, 100, 7);
    CHECK(memcmp(a, L0->mask, 2000) != 0, "other seed, same mask");
    const float *y = dj_model_forward(m, NULL, x, 2, 0, 99, 7);
    int ident = y != NULL;
    for (int i = 0; y && i < 2000; i++)
        ident &= y[i] == 1.0f;
    CHECK(ident, "eval-mode dropout is not the identity");
    free(a);
    free(b);
    free(x);
    dj_model_free(m);
}

static void test_init(void)
{
    const char *s = SPEC("[16, 6, 6]", "{\"type\": \"Conv2d\", \"out_channels\": 64, \"kernel_size\": 3},"
                                       " {\"type\": \"BatchNorm2d\"}, {\"type\": \"Flatten\"},"
                                       " {\"type\": \"Linear\", \"out_features\": 300},"
                                       " {\"type\": \"LayerNorm\"}");
    dj_model *a = load(s, 1, 1), *b = load(s, 1, 1);
    if (!a || !b)
        return;
    dj_model_init(a, 5);
    dj_model_init(b, 5);
    size_t np;
    dj_param *pa = dj_model_params(a, &np), *pb = dj_model_params(b, NULL);
    for (size_t k = 0; k < np; k++)
        CHECK(memcmp(pa[k].value.data, pb[k].value.data, dj_tensor_nbytes(&pa[k].value)) == 0,
              "init not reproducible: %s", pa[k].name);
    dj_model_init(b, 6);
    CHECK(memcmp(pa[0].value.data, pb[0].value.data, dj_tensor_nbytes(&pa[0].value)) != 0,
          "seed does not matter");
    /* bounds and spread: U(-bound, bound) has std bound / sqrt(3) */
    struct {
        const char *name;
        double fan_in;
        int is_bias;
    } w[] = {{"0.weight", 16 * 9, 0}, {"0.bias", 16 * 9, 1}, {"3.weight", 64 * 4 * 4, 0},
             {"3.bias", 64 * 16, 1}};
    for (size_t i = 0; i < sizeof w / sizeof w[0]; i++) {
        const dj_param *p = NULL;
        for (size_t k = 0; k < np; k++)
            if (strcmp(pa[k].name, w[i].name) == 0)
                p = &pa[k];
        CHECK(p != NULL, "no %s", w[i].name);
        if (!p)
            continue;
        double a5 = sqrt(5.0), gain = sqrt(2.0 / (1 + a5 * a5));
        double bound = w[i].is_bias ? 1.0 / sqrt(w[i].fan_in) : gain * sqrt(3.0 / w[i].fan_in);
        double s2 = 0, mx = 0;
        const float *v = dj_tensor_f32(&p->value);
        for (size_t j = 0; j < p->value.numel; j++) {
            s2 += (double)v[j] * v[j];
            mx = fmax(mx, fabs(v[j]));
        }
        double sd = sqrt(s2 / p->value.numel), want = bound / sqrt(3.0);
        double rel = p->value.numel > 1000 ? 0.05 : 0.25;
        CHECK(mx <= bound && mx > 0.8 * bound, "%s: max |w| %g, bound %g", w[i].name, mx, bound);
        CHECK(fabs(sd - want) < rel * want, "%s: std %g, expected %g", w[i].name, sd, want);
    }
    /* 1/sqrt(fan_in) for the default a = sqrt(5): the two bounds agree */
    for (size_t k = 0; k < np; k++) {
        const float *v = dj_tensor_f32(&pa[k].value);
        if (strstr(pa[k].name, "1.") == pa[k].name || strstr(pa[k].name, "4.") == pa[k].name) {
            int ok = 1;
            int one = strstr(pa[k].name, "weight") || strstr(pa[k].name, "running_var");
            if (pa[k].value.dtype == DJ_DT_I64)
                ok = *(int64_t *)pa[k].value.data == 0;
            else
                for (size_t j = 0; j < pa[k].value.numel; j++)
                    ok &= v[j] == (one ? 1.0f : 0.0f);
            CHECK(ok, "norm parameter %s not initialised to %d", pa[k].name, one);
        }
    }
    dj_model_free(a);
    dj_model_free(b);
}

/* num_batches_tracked, batches smaller than planned, and 2 threads vs 1 */
static void test_state_and_threads(void)
{
    const char *s = SPEC("[2, 8, 8]",
        "{\"type\": \"Conv2d\", \"out_channels\": 8, \"kernel_size\": 3, \"padding\": 1},"
        " {\"type\": \"BatchNorm2d\"}, {\"type\": \"ReLU\"},"
        " {\"type\": \"Residual\", \"body\": [{\"type\": \"Conv2d\", \"out_channels\": 8, \"kernel_size\": 3,"
        "  \"padding\": 1}, {\"type\": \"BatchNorm2d\"}]},"
        " {\"type\": \"MaxPool2d\", \"kernel_size\": 2}, {\"type\": \"Flatten\"},"
        " {\"type\": \"Linear\", \"out_features\": 5}");
    dj_model *a = load(s, 8, 1), *b = load(s, 8, 2);
    if (!a || !b)
        return;
    dj_pool *pool = NULL;
    CHECK(dj_pool_create(2, &pool) == DJ_OK, "pool");
    int n = 5;
    float *x = malloc(n * 128 * sizeof *x), *dl = malloc(n * 5 * sizeof *dl);
    for (int i = 0; i < n * 128; i++)
        x[i] = (float)srand_(1);
    for (int i = 0; i < n * 5; i++)
        dl[i] = (float)srand_(1);
    const float *ya = dj_model_forward(a, NULL, x, n, 1, 1, 1);
    const float *yb = dj_model_forward(b, pool, x, n, 1, 1, 1);
    double err = 0;
    for (int i = 0; ya && yb && i < n * 5; i++)
        err = fmax(err, fabs(ya[i] - yb[i]));
    CHECK(ya && yb && err < 1e-4, "2 threads differ from 1 by %g", err);
    dj_model_backward(a, NULL, dl);
    dj_model_backward(b, pool, dl);
    size_t np;
    dj_param *pa = dj_model_params(a, &np), *pb = dj_model_params(b, NULL);
    for (size_t k = 0; k < np; k++) {
        if (pa[k].is_buffer)
            continue;
        double e = 0, mx = 0;
        for (size_t i = 0; i < pa[k].grad.numel; i++) {
            e = fmax(e, fabs(dj_tensor_f32(&pa[k].grad)[i] - dj_tensor_f32(&pb[k].grad)[i]));
            mx = fmax(mx, fabs(dj_tensor_f32(&pa[k].grad)[i]));
        }
        CHECK(e <= 1e-4 * (mx + 1e-3), "%s: 2-thread grad differs by %g", pa[k].name, e);
    }
    /* two more training forwards and an eval one */
    dj_model_forward(a, NULL, x, 3, 1, 1, 2);
    dj_model_forward(a, NULL, x, 2, 0, 1, 3);
    for (size_t k = 0; k < np; k++)
        if (pa[k].value.dtype == DJ_DT_I64)
            CHECK(*(int64_t *)pa[k].value.data == 2, "%s = %lld after 2 training forwards",
                  pa[k].name, (long long)*(int64_t *)pa[k].value.data);
    /* input grad is off by default */
    CHECK(dj_model_input_grad(a) == NULL, "input grad without asking");
    dj_pool_destroy(pool);
    free(x);
    free(dl);
    dj_model_free(a);
    dj_model_free(b);
}

int main(void)
{
    for (size_t i = 0; i < sizeof g_cases / sizeof g_cases[0]; i++)
        run_case(&g_cases[i]);
    test_dropout();
    test_init();
    test_state_and_threads();
    return th_done("test_gradcheck");
}
