/* ref_kernels.h - plain reference versions of the normalisation, activation,
 * dropout, loss and optimizer kernels of include/dojo/kernels.h, for the
 * tests (the GEMM/conv/pooling references live in the library as *_ref).
 *
 * They are written for obviousness, not speed: textbook formulas, one
 * thread, in double precision on double arrays, so that a test can perturb
 * an input by a tiny step for central finite differences and can measure
 * the float kernels' error against a result that is exact to ~1e-15. The
 * optimizer references come twice: in double, and in float following
 * PyTorch's single-tensor code operation by operation (what the fast kernel
 * should reproduce to the ulp).
 *
 * Everything here is static inline so that each test includes only what it
 * uses without unused-function warnings. */
#ifndef DOJO_TEST_REF_KERNELS_H
#define DOJO_TEST_REF_KERNELS_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "dojo/rng.h"

/* ---- test utilities ---- */

/* A deterministic uniform value in [lo, hi) for test data (not the kernels'
 * generator's job, but it is a convenient pure function). */
static inline double ref_uniform(uint64_t seed, uint64_t i, double lo, double hi)
{
    return lo + (hi - lo) * (dj_rng_u32(seed, i, 0) / 4294967296.0);
}

static inline double *ref_to_double(const float *x, size_t n)
{
    double *d = malloc(n * sizeof *d);
    for (size_t i = 0; i < n; i++)
        d[i] = x[i];
    return d;
}

/* max |a - b| / (max |b| + floor): an error relative to the array's scale. */
static inline double ref_rel_err(const float *a, const double *b, size_t n, double floor)
{
    double emax = 0, bmax = 0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)a[i] - b[i]);
        if (!(e <= emax)) /* catches NaN */
            emax = e;
        if (fabs(b[i]) > bmax)
            bmax = fabs(b[i]);
    }
    return emax / (bmax + floor);
}

/* ---- batch norm (NCHW, statistics per channel over n, h, w) ---- */

/* Training mode: biased variance per channel into var[c]. */
static inline void ref_batchnorm2d_train(int n, int c, int hw, const double *x,
                                         const double *gamma, const double *beta, double eps,
                                         double *y, double *mean, double *var)
{
    const double cnt = (double)n * hw;
    for (int ch = 0; ch < c; ch++) {
        double s = 0;
        for (int i = 0; i < n; i++)
            for (int j = 0; j < hw; j++)
                s += x[((size_t)i * c + ch) * hw + j];
        const double mu = s / cnt;
        double ss = 0;
        for (int i = 0; i < n; i++)
            for (int j = 0; j < hw; j++) {
                double d = x[((size_t)i * c + ch) * hw + j] - mu;
                ss += d * d;
            }
        const double v = ss / cnt;
        for (int i = 0; i < n; i++)
            for (int j = 0; j < hw; j++) {
                size_t k = ((size_t)i * c + ch) * hw + j;
                y[k] = (x[k] - mu) / sqrt(v + eps) * gamma[ch] + beta[ch];
            }
        mean[ch] = mu;
        var[ch] = v;
    }
}

static inline void ref_batchnorm2d_eval(int n, int c, int hw, const double *x, const double *gamma,
                                        const double *beta, double eps, const double *rmean,
                                        const double *rvar, double *y)
{
    for (int i = 0; i < n; i++)
        for (int ch = 0; ch < c; ch++)
            for (int j = 0; j < hw; j++) {
                size_t k = ((size_t)i * c + ch) * hw + j;
                y[k] = (x[k] - rmean[ch]) / sqrt(rvar[ch] + eps) * gamma[ch] + beta[ch];
            }
}

/* The analytic backward of training mode (batch statistics of x). */
static inline void ref_batchnorm2d_backward(int n, int c, int hw, const double *x,
                                            const double *dy, const double *gamma, double eps,
                                            double *dx, double *dgamma, double *dbeta)
{
    const double cnt = (double)n * hw;
    for (int ch = 0; ch < c; ch++) {
        double s = 0, ss = 0;
        for (int i = 0; i < n; i++)
            for (int j = 0; j < hw; j++)
                s += x[((size_t)i * c + ch) * hw + j];
        const double mu = s / cnt;
        for (int i = 0; i < n; i++)
            for (int j = 0; j < hw; j++) {
                double d = x[((size_t)i * c + ch) * hw + j] - mu;
                ss += d * d;
            }
        const double inv = 1.0 / sqrt(ss / cnt + eps);
        double sdy = 0, sdyxhat = 0;
        for (int i = 0; i < n; i++)
            for (int j = 0; j < hw; j++) {
                size_t k = ((size_t)i * c + ch) * hw + j;
                sdy += dy[k];
                sdyxhat += dy[k] * (x[k] - mu) * inv;
            }
        dbeta[ch] = sdy;
        dgamma[ch] = sdyxhat;
        for (int i = 0; i < n; i++)
            for (int j = 0; j < hw; j++) {
                size_t k = ((size_t)i * c + ch) * hw + j;
                double xhat = (x[k] - mu) * inv;
                dx[k] = gamma[ch] * inv * (dy[k] - sdy / cnt - xhat * sdyxhat / cnt);
            }
    }
}

/* ---- layer norm (over the last d values of each row) ---- */

static inline void ref_layernorm_forward(int rows, int d, const double *x, const double *gamma,
                                         const double *beta, double eps, double *y, double *mean,
                                         double *var)
{
    for (int r = 0; r < rows; r++) {
        const double *xr = x + (size_t)r * d;
        double s = 0, ss = 0;
        for (int j = 0; j < d; j++)
            s += xr[j];
        const double mu = s / d;
        for (int j = 0; j < d; j++)
            ss += (xr[j] - mu) * (xr[j] - mu);
        const double v = ss / d;
        for (int j = 0; j < d; j++)
            y[(size_t)r * d + j] = (xr[j] - mu) / sqrt(v + eps) * gamma[j] + beta[j];
        mean[r] = mu;
        var[r] = v;
    }
}

static inline void ref_layernorm_backward(int rows, int d, const double *x, const double *dy,
                                          const double *gamma, double eps, double *dx,
                                          double *dgamma, double *dbeta)
{
    for (int j = 0; j < d; j++)
        dgamma[j] = dbeta[j] = 0;
    for (int r = 0; r < rows; r++) {
        const double *xr = x + (size_t)r * d, *dyr = dy + (size_t)r * d;
        double s = 0, ss = 0;
        for (int j = 0; j < d; j++)
            s += xr[j];
        const double mu = s / d;
        for (int j = 0; j < d; j++)
            ss += (xr[j] - mu) * (xr[j] - mu);
        const double inv = 1.0 / sqrt(ss / d + eps);
        double sg = 0, sgx = 0;
        for (int j = 0; j < d; j++) {
            double xhat = (xr[j] - mu) * inv;
            sg += dyr[j] * gamma[j];
            sgx += dyr[j] * gamma[j] * xhat;
            dgamma[j] += dyr[j] * xhat;
            dbeta[j] += dyr[j];
        }
        for (int j = 0; j < d; j++) {
            double xhat = (xr[j] - mu) * inv;
            dx[(size_t)r * d + j] = inv * (dyr[j] * gamma[j] - sg / d - xhat * sgx / d);
        }
    }
}

/* ---- activations ---- */

static inline double ref_relu(double x)
{
    return x > 0 ? x : 0;
}

static inline double ref_gelu(double x)
{
    return 0.5 * x * erfc(-x / sqrt(2.0));
}

static inline double ref_gelu_grad(double x)
{
    return 0.5 * erfc(-x / sqrt(2.0)) + x * exp(-0.5 * x * x) / sqrt(2.0 * 3.14159265358979323846);
}

static inline double ref_silu(double x)
{
    return x / (1.0 + exp(-x));
}

static inline double ref_silu_grad(double x)
{
    double s = 1.0 / (1.0 + exp(-x));
    return s + x * s * (1.0 - s);
}

/* ---- dropout: the rule of kernels.h, word for word ---- */

static inline int ref_dropout_kept(uint64_t seed, uint64_t index, float p)
{
    return (double)dj_rng_u32(seed, index, 0) >= (double)p * 4294967296.0;
}

/* ---- softmax cross-entropy with label smoothing (PyTorch's definition) ---- */

/* Writes probabilities; returns the mean loss. */
static inline double ref_softmax_xent(int n, int classes, const double *logits,
                                      const int32_t *labels, double s, double *probs)
{
    double total = 0;
    for (int r = 0; r < n; r++) {
        const double *z = logits + (size_t)r * classes;
        double m = z[0], sum = 0;
        for (int c = 1; c < classes; c++)
            m = z[c] > m ? z[c] : m;
        for (int c = 0; c < classes; c++)
            sum += exp(z[c] - m);
        double nll = 0, smooth = 0;
        for (int c = 0; c < classes; c++) {
            double logp = z[c] - m - log(sum);
            probs[(size_t)r * classes + c] = exp(logp);
            if (c == labels[r])
                nll = -logp;
            smooth += -logp / classes;
        }
        total += (1 - s) * nll + s * smooth;
    }
    return total / n;
}

/* ---- optimizers ---- */

/* torch.optim.SGD, one step, in double. */
static inline void ref_sgd_step_d(size_t n, double *w, const double *g, double *buf, double lr,
                                  double mu, double wd, int nesterov, int first)
{
    for (size_t i = 0; i < n; i++) {
        double d = g[i];
        if (wd != 0)
            d += wd * w[i];
        if (mu != 0) {
            buf[i] = first ? d : mu * buf[i] + d;
            d = nesterov ? d + mu * buf[i] : buf[i];
        }
        w[i] -= lr * d;
    }
}

/* The same in float, one PyTorch tensor operation per statement. */
static inline void ref_sgd_step_f(size_t n, float *w, const float *g, float *buf, float lr,
                                  float mu, float wd, int nesterov, int first)
{
    for (size_t i = 0; i < n; i++) {
        float d = g[i];
        if (wd != 0) {
            float t = wd * w[i]; /* d_p.add(param, alpha=wd) */
            d = d + t;
        }
        if (mu != 0) {
            if (first) {
                buf[i] = d;      /* torch.clone(d_p) */
            } else {
                float b = buf[i] * mu; /* buf.mul_(momentum) */
                buf[i] = b + d;        /* .add_(d_p, alpha=1 - dampening) */
            }
            if (nesterov) {
                float t = mu * buf[i];
                d = d + t; /* d_p.add(buf, alpha=momentum) */
            } else {
                d = buf[i];
            }
        }
        float t = lr * d;
        w[i] = w[i] - t; /* param.add_(d_p, alpha=-lr) */
    }
}

/* torch.optim.AdamW, step t (>= 1), in double. */
static inline void ref_adamw_step_d(size_t n, double *w, const double *g, double *m, double *v,
                                    double lr, double b1, double b2, double eps, double wd, long t)
{
    const double bc1 = 1 - pow(b1, (double)t), bc2 = 1 - pow(b2, (double)t);
    for (size_t i = 0; i < n; i++) {
        w[i] -= lr * wd * w[i];
        m[i] = b1 * m[i] + (1 - b1) * g[i];
        v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i];
        w[i] -= lr * (m[i] / bc1) / (sqrt(v[i] / bc2) + eps);
    }
}

/* The same in float as PyTorch's _single_tensor_adamw computes it: Python
 * scalars in double, each rounded to float where it meets a tensor. */
static inline void ref_adamw_step_f(size_t n, float *w, const float *g, float *m, float *v,
                                    float lr, float b1, float b2, float eps, float wd, long t)
{
    const double bc1 = 1 - pow((double)b1, (double)t), bc2 = 1 - pow((double)b2, (double)t);
    const float decay = (float)(1 - (double)lr * wd);
    const float c1 = (float)(1 - (double)b1), c2 = (float)(1 - (double)b2);
    const float bc2_sqrt = (float)sqrt(bc2), neg_step = (float)(-(double)lr / bc1);
    for (size_t i = 0; i < n; i++) {
        w[i] = w[i] * decay;                 /* param.mul_(1 - lr * wd) */
        float mb = m[i] * b1;                /* exp_avg.mul_(beta1) */
        float gc = c1 * g[i];
        m[i] = mb + gc;                      /* .add_(grad, alpha=1 - beta1) */
        float vb = v[i] * b2;                /* exp_avg_sq.mul_(beta2) */
        float gg = c2 * g[i];
        gg = gg * g[i];
        v[i] = vb + gg;                      /* .addcmul_(grad, grad, value=1 - beta2) */
        float denom = sqrtf(v[i]);           /* exp_avg_sq.sqrt() */
        denom = denom / bc2_sqrt;            /* / bias_correction2_sqrt */
        denom = denom + eps;                 /* .add_(eps) */
        float num = neg_step * m[i];
        float upd = num / denom;
        w[i] = w[i] + upd;                   /* param.addcdiv_(exp_avg, denom, value=-step_size) */
    }
}

#endif
