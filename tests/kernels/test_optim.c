/* test_optim.c - SGD and AdamW updates (src/kernels/optim.c).
 *
 * Checked, for SGD: hand-computed steps (plain, momentum, Nesterov, weight
 * decay, and both; numbers chosen to be exact in float, and equal to what
 * torch.optim.SGD 1.13 gives); the first-step rule buf = d even over a
 * buffer holding NaN; momentum 0 with no buffer; wd = 0 leaving an infinite
 * weight infinite; and several steps of random data, every flag
 * combination, against ref_kernels.h's float model of PyTorch's code (to the
 * ulp) and its double version. For AdamW: a hand-computed example (constant
 * gradient: bias-corrected moments are exact) and torch.optim.AdamW 1.13's
 * numbers over four steps of varying gradients; ten random steps against the
 * float model and the double version. For both: bit-identical results for
 * NULL and 1-, 2-, 3-thread pools. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dojo/kernels.h"
#include "harness.h"
#include "kernels/ref_kernels.h"

/* |a - b| within `ulps` units in the last place of b (float). */
static int near_ulps(float a, float b, int ulps)
{
    if (a == b)
        return 1;
    return fabsf(a - b) <= ulps * (nextafterf(fabsf(b), INFINITY) - fabsf(b));
}

static void test_sgd_hand(void)
{
    /* w = 1, g = 0.5 every step, lr = 0.125; momentum 0.5; wd 0.25. */
    static const struct {
        const char *name;
        float mu, wd;
        int nesterov;
        float w[3];
    } cases[] = {
        {"plain", 0, 0, 0, {0.9375f, 0.875f, 0.8125f}},
        {"momentum", 0.5f, 0, 0, {0.9375f, 0.84375f, 0.734375f}},
        {"nesterov", 0.5f, 0, 1, {0.90625f, 0.796875f, 0.6796875f}},
        {"momentum + wd", 0.5f, 0.25f, 0, {0.90625f, 0.7685546875f, 0.613189697265625f}},
        {"nesterov + wd", 0.5f, 0.25f, 1, {0.859375f, 0.701904296875f, 0.5411949157714844f}},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        float w = 1, g = 0.5f, buf = NAN;
        for (int t = 0; t < 3; t++) {
            dj_sgd_update(NULL, 1, &w, &g, cases[k].mu != 0 ? &buf : NULL, 0.125f, cases[k].mu,
                          cases[k].wd, cases[k].nesterov, t == 0);
            CHECK(w == cases[k].w[t], "sgd %s step %d: w = %.17g, want %.17g", cases[k].name,
                  t + 1, w, cases[k].w[t]);
        }
    }
    /* Plain SGD with weight decay: d = 0.5 + 0.25 w. */
    float w = 1, g = 0.5f;
    dj_sgd_update(NULL, 1, &w, &g, NULL, 0.125f, 0, 0.25f, 0, 1);
    CHECK(w == 0.90625f, "sgd plain + wd: w = %.9g", w);
    /* wd = 0 does not touch g: an infinite weight stays infinite. */
    w = INFINITY;
    dj_sgd_update(NULL, 1, &w, &g, NULL, 0.125f, 0, 0, 0, 1);
    CHECK(w == INFINITY, "sgd wd = 0 with w = inf: w = %g", w);
}

/* Several SGD steps on random data, every flag combination. */
static void test_sgd_random(void)
{
    enum { N = 1031, STEPS = 5 };
    float w[N], buf[N], g[N], wf[N], buff[N];
    double wd_[N], bufd[N], gd[N];
    const float mus[2] = {0, 0.9f}, wds[2] = {0, 5e-4f};
    for (int combo = 0; combo < 8; combo++) {
        const float mu = mus[combo & 1], wdk = wds[(combo >> 1) & 1];
        const int nest = (combo >> 2) & 1;
        if (nest && mu == 0)
            continue; /* PyTorch refuses Nesterov without momentum */
        for (int i = 0; i < N; i++) {
            w[i] = wf[i] = (float)ref_uniform(20, i, -1, 1);
            wd_[i] = w[i];
            buf[i] = buff[i] = NAN; /* the first step must not read it */
            bufd[i] = 0;
        }
        size_t off_ulp = 0;
        double worst = 0;
        for (int t = 0; t < STEPS; t++) {
            for (int i = 0; i < N; i++) {
                g[i] = (float)ref_uniform(21 + t, i, -2, 2);
                gd[i] = g[i];
            }
            const float lr = 0.05f;
            dj_sgd_update(NULL, N, w, g, buf, lr, mu, wdk, nest, t == 0);
            ref_sgd_step_f(N, wf, g, buff, lr, mu, wdk, nest, t == 0);
            ref_sgd_step_d(N, wd_, gd, bufd, lr, mu, wdk, nest, t == 0);
            for (int i = 0; i < N; i++) {
                off_ulp += !near_ulps(w[i], wf[i], 1) || (mu != 0 && !near_ulps(buf[i], buff[i], 1));
                /* relative to the weight or the step, whichever is larger */
                double e = fabs(w[i] - wd_[i]) / (fabs(wd_[i]) + lr);
                worst = e > worst ? e : worst;
            }
        }
        CHECK(off_ulp == 0, "sgd mu=%g wd=%g nesterov=%d: %zu values > 1 ulp from PyTorch's float "
              "sequence", mu, wdk, nest, off_ulp);
        CHECK(worst <= 1e-5, "sgd mu=%g wd=%g nesterov=%d: rel err vs double %.3g", mu, wdk, nest,
              worst);
    }
}

static void test_adamw_hand(void)
{
    /* w = 1, g = 0.5 every step, lr = 0.1, betas (0.9, 0.999), eps 1e-8,
     * wd = 0.01. With a constant gradient the corrected moments are exactly
     * m / bc1 = 0.5 and v / bc2 = 0.25, so each step is
     *   w = w (1 - 0.001) - 0.1 * 0.5 / (0.5 + 1e-8):
     * 0.899000002, 0.798101004, 0.697302905 (in exact arithmetic);
     * torch.optim.AdamW 1.13 gives 0.8990000486, 0.7981010079, 0.6973029375. */
    const double torch_w[3] = {0.8990000486373901, 0.798101007938385, 0.6973029375076294};
    float w = 1, g = 0.5f, m = 0, v = 0;
    double we = 1;
    for (int t = 1; t <= 3; t++) {
        dj_adamw_update(NULL, 1, &w, &g, &m, &v, 0.1f, 0.9f, 0.999f, 1e-8f, 0.01f, t);
        we = we * (1 - 0.001) - 0.1 * 0.5 / (0.5 + 1e-8);
        CHECK(fabs(w - we) <= 2e-7, "adamw hand step %d: w = %.9g, want %.9g", t, w, we);
        CHECK(fabs(w - torch_w[t - 1]) <= 1.2e-7, "adamw step %d: w = %.9g, torch %.9g", t, w,
              torch_w[t - 1]);
    }

    /* torch.optim.AdamW(lr=0.01, betas=(0.9, 0.99), eps=1e-6, weight_decay=0.1),
     * w = (1, -2, 0.5), four steps with these gradients: */
    static const float grads[4][3] = {
        {0.5f, -1.0f, 0.0f}, {-0.25f, 2.0f, 1e-3f}, {1.5f, 0.125f, -4.0f}, {0, 0, 0}};
    static const double torch_seq[4][3] = {
        {0.9890000224113464, -1.9880000352859497, 0.49950000643730164},
        {0.9853440523147583, -1.9896681308746338, 0.4915863871574402},
        {0.9776773452758789, -1.9908636808395386, 0.4974527657032013},
        {0.971214234828949, -1.991487979888916, 0.5021752119064331}};
    float ws[3] = {1, -2, 0.5f}, ms[3] = {0}, vs[3] = {0};
    for (int t = 0; t < 4; t++) {
        dj_adamw_update(NULL, 3, ws, grads[t], ms, vs, 0.01f, 0.9f, 0.99f, 1e-6f, 0.1f, t + 1);
        for (int i = 0; i < 3; i++)
            CHECK(fabs(ws[i] - torch_seq[t][i]) <= 2.5e-7 * fabs(torch_seq[t][i]),
                  "adamw step %d w[%d] = %.9g, torch %.9g", t + 1, i, ws[i], torch_seq[t][i]);
    }
}

static void test_adamw_random(void)
{
    enum { N = 1031, STEPS = 10 };
    static float w[N], m[N], v[N], g[N], wf[N], mf[N], vf[N];
    static double wd_[N], md[N], vd[N], gd[N];
    const float lr = 3e-3f, b1 = 0.9f, b2 = 0.999f, eps = 1e-8f, wdk = 0.05f;
    for (int i = 0; i < N; i++) {
        w[i] = wf[i] = (float)ref_uniform(30, i, -1, 1);
        wd_[i] = w[i];
        m[i] = v[i] = mf[i] = vf[i] = 0;
        md[i] = vd[i] = 0;
    }
    size_t off_ulp = 0;
    double worst = 0;
    for (int t = 1; t <= STEPS; t++) {
        for (int i = 0; i < N; i++) {
            /* mixed magnitudes, some exact zeros */
            double u = ref_uniform(31 + t, i, -1, 1);
            g[i] = i % 17 == 0 ? 0.0f : (float)(u * pow(10.0, (double)(i % 7) - 4));
            gd[i] = g[i];
        }
        dj_adamw_update(NULL, N, w, g, m, v, lr, b1, b2, eps, wdk, t);
        ref_adamw_step_f(N, wf, g, mf, vf, lr, b1, b2, eps, wdk, t);
        ref_adamw_step_d(N, wd_, gd, md, vd, lr, b1, b2, eps, wdk, t);
        for (int i = 0; i < N; i++) {
            off_ulp += !near_ulps(w[i], wf[i], 1) || !near_ulps(m[i], mf[i], 1) ||
                       !near_ulps(v[i], vf[i], 1);
            /* The step is lr-sized: judge the weight's error against it. */
            double e = fabs(w[i] - wd_[i]) / (1e-6 * fabs(wd_[i]) + lr * 1e-3);
            worst = e > worst ? e : worst;
        }
    }
    CHECK(off_ulp == 0, "adamw: %zu values > 1 ulp from PyTorch's float sequence", off_ulp);
    CHECK(worst <= 1, "adamw vs double: %.3g x tolerance", worst);
}

static void test_threads(void)
{
    const size_t n = 100003;
    float *g = malloc(n * sizeof *g), *w0 = malloc(n * sizeof *w0), *w1 = malloc(n * sizeof *w1);
    float *a0 = malloc(n * sizeof *a0), *a1 = malloc(n * sizeof *a1);
    float *b0 = malloc(n * sizeof *b0), *b1 = malloc(n * sizeof *b1);
    for (size_t i = 0; i < n; i++)
        g[i] = (float)ref_uniform(40, i, -1, 1);
    for (int t = 1; t <= 3; t++) {
        dj_pool *pool;
        if (dj_pool_create(t, &pool) != DJ_OK) {
            CHECK(0, "dj_pool_create(%d)", t);
            continue;
        }
        for (size_t i = 0; i < n; i++)
            w0[i] = w1[i] = (float)ref_uniform(41, i, -1, 1);
        for (int step = 0; step < 2; step++) {
            dj_sgd_update(NULL, n, w0, g, a0, 0.1f, 0.9f, 1e-4f, 1, step == 0);
            dj_sgd_update(pool, n, w1, g, a1, 0.1f, 0.9f, 1e-4f, 1, step == 0);
        }
        CHECK(!memcmp(w0, w1, n * sizeof *w0) && !memcmp(a0, a1, n * sizeof *a0),
              "sgd with %d threads differs", t);
        memset(a0, 0, n * sizeof *a0), memset(a1, 0, n * sizeof *a1);
        memset(b0, 0, n * sizeof *b0), memset(b1, 0, n * sizeof *b1);
        for (long step = 1; step <= 2; step++) {
            dj_adamw_update(NULL, n, w0, g, a0, b0, 1e-3f, 0.9f, 0.999f, 1e-8f, 0.01f, step);
            dj_adamw_update(pool, n, w1, g, a1, b1, 1e-3f, 0.9f, 0.999f, 1e-8f, 0.01f, step);
        }
        CHECK(!memcmp(w0, w1, n * sizeof *w0) && !memcmp(a0, a1, n * sizeof *a0) &&
                  !memcmp(b0, b1, n * sizeof *b0),
              "adamw with %d threads differs", t);
        dj_pool_destroy(pool);
    }
    free(g), free(w0), free(w1), free(a0), free(a1), free(b0), free(b1);
}

int main(void)
{
    test_sgd_hand();
    test_sgd_random();
    test_adamw_hand();
    test_adamw_random();
    test_threads();
    return th_done("test_optim");
}
