/* test_activation.c - ReLU, GELU (exact erf form) and SiLU, forward and
 * backward (src/kernels/activation.c).
 *
 * Checked: values at known points (from the definitions, to double
 * precision); a dense sweep over [-12, 12] and some extreme inputs against
 * the double-precision references of ref_kernels.h, with tolerances that
 * follow each function's conditioning; every backward against central
 * finite differences of the double-precision forward; ReLU's conventions
 * (NaN passes through, gradient 0 at x = 0 as PyTorch's threshold_backward);
 * in-place use; and bit-identical results for NULL and 1-, 2-, 3-thread
 * pools on sizes that split. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dojo/kernels.h"
#include "harness.h"
#include "kernels/ref_kernels.h"

typedef void (*fwd_fn)(dj_pool *, size_t, const float *, float *);
typedef void (*bwd_fn)(dj_pool *, size_t, const float *, const float *, float *);

static void test_known_points(void)
{
    /* x, GELU(x) = x Phi(x), SiLU(x) = x / (1 + e^-x) */
    static const double pts[][3] = {
        {-6.0, -5.919525870226207e-09, -0.014835738939808647},
        {-3.0, -0.004049694094890287, -0.14227761953270035},
        {-1.0, -0.15865525393145707, -0.2689414213699951},
        {-0.5, -0.15426876936299344, -0.1887703343990727},
        {0.0, 0.0, 0.0},
        {0.5, 0.34573123063700656, 0.3112296656009273},
        {1.0, 0.8413447460685429, 0.7310585786300049},
        {2.0, 1.9544997361036416, 1.7615941559557646},
        {3.0, 2.99595030590511, 2.8577223804672998},
    };
    enum { N = sizeof pts / sizeof pts[0] };
    float x[N], g[N], s[N], r[N];
    for (int i = 0; i < N; i++)
        x[i] = (float)pts[i][0];
    dj_gelu_forward(NULL, N, x, g);
    dj_silu_forward(NULL, N, x, s);
    dj_relu_forward(NULL, N, x, r);
    for (int i = 0; i < N; i++) {
        CHECK(fabs(g[i] - pts[i][1]) <= 1.2e-7 * fabs(pts[i][1]), "gelu(%g) = %.9g, want %.9g",
              x[i], g[i], pts[i][1]);
        CHECK(fabs(s[i] - pts[i][2]) <= 3e-7 * fabs(pts[i][2]), "silu(%g) = %.9g, want %.9g",
              x[i], s[i], pts[i][2]);
        CHECK(r[i] == (x[i] > 0 ? x[i] : 0), "relu(%g) = %g", x[i], r[i]);
    }
    /* Derivatives at 0: GELU'(0) = 1/2, SiLU'(0) = 1/2; ReLU'(0) = 0. */
    float z = 0, one = 1, d;
    dj_gelu_backward(NULL, 1, &z, &one, &d);
    CHECK(d == 0.5f, "gelu'(0) = %g", d);
    dj_silu_backward(NULL, 1, &z, &one, &d);
    CHECK(d == 0.5f, "silu'(0) = %g", d);
    dj_relu_backward(NULL, 1, &z, &one, &d);
    CHECK(d == 0.0f, "relu'(0) = %g (PyTorch: 0)", d);

    float nan_in = NAN, out;
    dj_relu_forward(NULL, 1, &nan_in, &out);
    CHECK(isnan(out), "relu(NaN) = %g, want NaN (as torch.relu)", out);
}

/* Test inputs: a dense sweep over [-12, 12] and extremes. */
static float *sweep(size_t *n_out)
{
    static const float extra[] = {0.0f,   -0.0f,   1e-30f, -1e-30f, 1e-7f,   -1e-7f, 20.0f,
                                  -20.0f, 40.0f,   -40.0f, 88.0f,   -88.0f,  100.0f, -100.0f,
                                  1e30f,  -1e30f,  -0.7518f, -1.2785f};
    const size_t dense = 240001, n = dense + sizeof extra / sizeof extra[0];
    float *x = malloc(n * sizeof *x);
    for (size_t i = 0; i < dense; i++)
        x[i] = (float)(-12.0 + 24.0 * (double)i / (double)(dense - 1));
    memcpy(x + dense, extra, sizeof extra);
    *n_out = n;
    return x;
}

/* Forward: |y - f(x)| <= rtol * |f(x)| + atol. */
static void check_forward(const char *name, fwd_fn fwd, double (*ref)(double), double rtol,
                          double atol)
{
    size_t n;
    float *x = sweep(&n), *y = calloc(n, sizeof *y);
    fwd(NULL, n, x, y);
    double worst = 0;
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        double want = ref(x[i]);
        double err = fabs(y[i] - want), tol = rtol * fabs(want) + atol;
        if (!(err <= tol)) {
            if (bad++ < 5)
                CHECK(0, "%s(%.9g) = %.9g, want %.17g", name, x[i], y[i], want);
        }
        if (tol > 0 && err / tol > worst)
            worst = err / tol;
    }
    CHECK(bad == 0, "%s forward: %zu of %zu values off (worst %.3g x tolerance)", name, bad, n,
          worst);
    free(x), free(y);
}

/* Backward: dx = dy * f'(x) against the double derivative; the tolerance
 * is relative to `scale(x)`, the sum of the magnitudes of the derivative's
 * terms (so the roots of f', where they cancel, are judged fairly). */
static void check_backward(const char *name, bwd_fn bwd, double (*dref)(double),
                           double (*scale)(double), double rtol)
{
    size_t n;
    float *x = sweep(&n), *dy = calloc(n, sizeof *dy), *dx = calloc(n, sizeof *dx);
    for (size_t i = 0; i < n; i++)
        dy[i] = (float)ref_uniform(3, i, -2, 2);
    bwd(NULL, n, x, dy, dx);
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        double want = dy[i] * dref(x[i]);
        double tol = rtol * fabs(dy[i]) * scale(x[i]) + 1e-37;
        if (!(fabs(dx[i] - want) <= tol) && bad++ < 5)
            CHECK(0, "%s backward at x = %.9g, dy = %g: %.9g, want %.17g", name, x[i], dy[i],
                  dx[i], want);
    }
    CHECK(bad == 0, "%s backward: %zu of %zu values off", name, bad, n);
    free(x), free(dy), free(dx);
}

static double gelu_scale(double x)
{
    return 0.5 * erfc(-x / sqrt(2.0)) + fabs(x) * exp(-0.5 * x * x) / sqrt(2 * 3.14159265358979);
}

static double silu_scale(double x)
{
    double s = 1 / (1 + exp(-x));
    return s + fabs(x * s * (1 - s));
}

static double relu_grad(double x)
{
    return x > 0 ? 1 : 0;
}

static double one(double x)
{
    (void)x;
    return 1;
}

/* Backward against central differences of the double forward, at points
 * away from ReLU's kink. */
static void check_finite_diff(const char *name, bwd_fn bwd, double (*ref)(double))
{
    enum { N = 2000 };
    float x[N], dy[N], dx[N];
    for (int i = 0; i < N; i++) {
        double v = ref_uniform(5, i, -8, 8);
        x[i] = (float)(fabs(v) < 1e-2 ? v + 0.05 : v);
        dy[i] = (float)ref_uniform(6, i, -1, 1);
    }
    bwd(NULL, N, x, dy, dx);
    const double h = 1e-5;
    int bad = 0;
    for (int i = 0; i < N; i++) {
        double fd = dy[i] * (ref(x[i] + h) - ref(x[i] - h)) / (2 * h);
        if (!(fabs(dx[i] - fd) <= 1e-5 * (fabs(dy[i]) + 1e-3)) && bad++ < 5)
            CHECK(0, "%s backward at %.9g: %.9g, finite differences %.9g", name, x[i], dx[i], fd);
    }
    CHECK(bad == 0, "%s backward vs finite differences: %d of %d off", name, bad, N);
}

static void test_in_place(void)
{
    enum { N = 1000 };
    float x[N], dy[N], a[N], b[N];
    fwd_fn fwd[3] = {dj_relu_forward, dj_gelu_forward, dj_silu_forward};
    bwd_fn bwd[3] = {dj_relu_backward, dj_gelu_backward, dj_silu_backward};
    for (int i = 0; i < N; i++) {
        x[i] = (float)ref_uniform(7, i, -4, 4);
        dy[i] = (float)ref_uniform(8, i, -1, 1);
    }
    for (int k = 0; k < 3; k++) {
        fwd[k](NULL, N, x, a);
        memcpy(b, x, sizeof x);
        fwd[k](NULL, N, b, b);
        CHECK(!memcmp(a, b, sizeof a), "forward %d in place (y == x) differs", k);
        bwd[k](NULL, N, x, dy, a);
        memcpy(b, dy, sizeof dy);
        bwd[k](NULL, N, x, b, b);
        CHECK(!memcmp(a, b, sizeof a), "backward %d in place (dx == dy) differs", k);
        memcpy(b, x, sizeof x);
        bwd[k](NULL, N, b, dy, b);
        CHECK(!memcmp(a, b, sizeof a), "backward %d in place (dx == x) differs", k);
    }
}

static void test_threads(void)
{
    const size_t n = 300007; /* above every kernel's one-thread limit, odd */
    float *x = malloc(n * sizeof *x), *dy = malloc(n * sizeof *dy);
    float *base = malloc(n * sizeof *base), *out = malloc(n * sizeof *out);
    for (size_t i = 0; i < n; i++) {
        x[i] = (float)ref_uniform(9, i, -6, 6);
        dy[i] = (float)ref_uniform(10, i, -1, 1);
    }
    fwd_fn fwd[3] = {dj_relu_forward, dj_gelu_forward, dj_silu_forward};
    bwd_fn bwd[3] = {dj_relu_backward, dj_gelu_backward, dj_silu_backward};
    const char *names[3] = {"relu", "gelu", "silu"};
    for (int t = 1; t <= 3; t++) {
        dj_pool *pool;
        if (dj_pool_create(t, &pool) != DJ_OK) {
            CHECK(0, "dj_pool_create(%d)", t);
            continue;
        }
        for (int k = 0; k < 3; k++) {
            fwd[k](NULL, n, x, base);
            fwd[k](pool, n, x, out);
            CHECK(!memcmp(base, out, n * sizeof *out), "%s forward, %d threads, differs", names[k],
                  t);
            bwd[k](NULL, n, x, dy, base);
            bwd[k](pool, n, x, dy, out);
            CHECK(!memcmp(base, out, n * sizeof *out), "%s backward, %d threads, differs",
                  names[k], t);
        }
        dj_pool_destroy(pool);
    }
    free(x), free(dy), free(base), free(out);
}

int main(void)
{
    test_known_points();
    check_forward("relu", dj_relu_forward, ref_relu, 0, 0);
    /* GELU is evaluated in double (within 0.5 ulp here); SiLU in float with
     * expf (within ~2 ulp); the absolute floor covers denormal results. */
    check_forward("gelu", dj_gelu_forward, ref_gelu, 2e-7, 1e-37);
    check_forward("silu", dj_silu_forward, ref_silu, 3e-7, 1e-37);
    check_backward("relu", dj_relu_backward, relu_grad, one, 0);
    check_backward("gelu", dj_gelu_backward, ref_gelu_grad, gelu_scale, 2e-7);
    check_backward("silu", dj_silu_backward, ref_silu_grad, silu_scale, 5e-7);
    check_finite_diff("relu", dj_relu_backward, ref_relu);
    check_finite_diff("gelu", dj_gelu_backward, ref_gelu);
    check_finite_diff("silu", dj_silu_backward, ref_silu);
    test_in_place();
    test_threads();
    return th_done("test_activation");
}
