/* test_elementwise.c - dropout, add and axpy (src/kernels/elementwise.c).
 *
 * Dropout: the mask follows kernels.h's rule word for word (draw >= p 2^32,
 * checked element by element, also across an index that crosses 2^32);
 * the keep rate is 1 - p within 5 sigma over 10^6 elements for several p;
 * kept values are scaled by exactly 1/(1 - p); the same seed and stream
 * give the same mask and another seed a different one; a call on a slice
 * with stream_base + offset reproduces that slice of the whole; the
 * backward uses the forward's mask (backward of x equals forward of x, bit
 * for bit); p = 0 is the identity and p = 1 gives zeros (as PyTorch); and
 * results are bit-identical for NULL and 1-, 2-, 3-thread pools.
 * add and axpy: exact values, in-place use, thread counts. add_relu: bit
 * for bit dj_add then dj_relu_forward, with NaN, +-inf, sums of +0 and -0
 * and exact cancellations, in place and on a pool. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dojo/kernels.h"
#include "harness.h"
#include "kernels/ref_kernels.h"

static float *fvec(size_t n)
{
    return calloc(n ? n : 1, sizeof(float));
}

static void fill(float *x, size_t n, uint64_t seed)
{
    for (size_t i = 0; i < n; i++)
        x[i] = (float)ref_uniform(seed, i, -3, 3);
}

static void test_dropout_rule_and_rate(void)
{
    const size_t n = 1000000;
    float *x = fvec(n), *y = fvec(n);
    uint8_t *mask = malloc(n);
    fill(x, n, 1);
    const float ps[] = {0.1f, 0.3f, 0.5f, 0.9f};
    for (size_t k = 0; k < sizeof ps / sizeof ps[0]; k++) {
        const float p = ps[k];
        const uint64_t seed = 1234 + k, base = 77;
        dj_dropout_forward(NULL, n, p, seed, base, x, y, mask);
        const float scale = (float)(1.0 / (1.0 - (double)p));
        size_t kept = 0, rule_bad = 0, value_bad = 0;
        for (size_t i = 0; i < n; i++) {
            int want = ref_dropout_kept(seed, base + i, p);
            kept += mask[i];
            rule_bad += mask[i] != want;
            value_bad += y[i] != (want ? x[i] * scale : 0.0f);
        }
        CHECK(rule_bad == 0, "dropout p=%g: %zu mask bits break the rule", p, rule_bad);
        CHECK(value_bad == 0, "dropout p=%g: %zu values not x / (1 - p) or 0", p, value_bad);
        const double expect = n * (1.0 - p), sigma = sqrt(n * p * (1.0 - p));
        CHECK(fabs(kept - expect) <= 5 * sigma, "dropout p=%g: kept %zu of %zu, expected %.0f", p,
              kept, n, expect);
    }
    free(x), free(y), free(mask);
}

static void test_dropout_reproducible(void)
{
    const size_t n = 10000, off = 1237;
    float *x = fvec(n), *y1 = fvec(n), *y2 = fvec(n), *dx = fvec(n);
    uint8_t *m1 = malloc(n), *m2 = malloc(n);
    fill(x, n, 2);
    dj_dropout_forward(NULL, n, 0.4f, 99, 1000, x, y1, m1);
    dj_dropout_forward(NULL, n, 0.4f, 99, 1000, x, y2, m2);
    CHECK(!memcmp(m1, m2, n) && !memcmp(y1, y2, n * sizeof *y1), "dropout: same seed, new mask");
    dj_dropout_forward(NULL, n, 0.4f, 100, 1000, x, y2, m2);
    size_t diff = 0;
    for (size_t i = 0; i < n; i++)
        diff += m1[i] != m2[i];
    CHECK(diff > n / 4, "dropout: another seed changes only %zu of %zu mask bits", diff, n);

    /* A slice with stream_base + off reproduces that part of the whole. */
    dj_dropout_forward(NULL, n - off, 0.4f, 99, 1000 + off, x + off, y2, m2);
    CHECK(!memcmp(m1 + off, m2, n - off) && !memcmp(y1 + off, y2, (n - off) * sizeof *y2),
          "dropout: a slice with an offset stream differs from the whole");

    /* Backward with the forward's mask: the same linear map. */
    dj_dropout_backward(NULL, n, 0.4f, m1, x, dx);
    CHECK(!memcmp(dx, y1, n * sizeof *dx), "dropout backward(x) differs from forward(x)");
    size_t bad = 0;
    for (size_t i = 0; i < n; i++)
        bad += (dx[i] != 0) != (m1[i] != 0 && x[i] != 0);
    CHECK(bad == 0, "dropout backward: %zu gradients where the mask says dropped", bad);

    /* Indices that cross 2^32 (the stream's high word). */
    const uint64_t base = (1ull << 32) - 20;
    dj_dropout_forward(NULL, 64, 0.5f, 7, base, x, y1, m1);
    bad = 0;
    for (size_t i = 0; i < 64; i++)
        bad += m1[i] != ref_dropout_kept(7, base + i, 0.5f);
    CHECK(bad == 0, "dropout across index 2^32: %zu mask bits break the rule", bad);

    free(x), free(y1), free(y2), free(dx), free(m1), free(m2);
}

static void test_dropout_edges(void)
{
    enum { N = 1000 };
    float x[N], y[N], dx[N];
    uint8_t m[N];
    fill(x, N, 3);
    x[5] = NAN;
    dj_dropout_forward(NULL, N, 0.0f, 1, 0, x, y, m);
    int ok = 1;
    for (int i = 0; i < N; i++)
        ok &= m[i] == 1 && (i == 5 ? isnan(y[i]) : y[i] == x[i]);
    CHECK(ok, "dropout p = 0 is not the identity");
    dj_dropout_forward(NULL, N, 1.0f, 1, 0, x, y, m);
    ok = 1;
    for (int i = 0; i < N; i++)
        ok &= m[i] == 0 && (i == 5 ? isnan(y[i]) : y[i] == 0.0f);
    CHECK(ok, "dropout p = 1 does not give zeros (NaN * 0 stays NaN, as PyTorch)");
    dj_dropout_backward(NULL, N, 1.0f, m, x, dx);
    ok = 1;
    for (int i = 0; i < N; i++)
        ok &= i == 5 ? isnan(dx[i]) : dx[i] == 0.0f;
    CHECK(ok, "dropout backward p = 1 does not give zeros");

    /* A NaN input stays NaN whether dropped or kept. */
    dj_dropout_forward(NULL, N, 0.5f, 1, 0, x, y, m);
    CHECK(isnan(y[5]), "dropout: NaN input gives %g", y[5]);

    /* In place: y == x. */
    float z[N];
    memcpy(z, x, sizeof z);
    dj_dropout_forward(NULL, N, 0.5f, 1, 0, z, z, m);
    CHECK(!memcmp(z, y, sizeof z), "dropout in place differs");
}

static void test_add_axpy(void)
{
    enum { N = 1037 };
    float a[N], b[N], y[N], z[N];
    fill(a, N, 4);
    fill(b, N, 5);
    dj_add(NULL, N, a, b, y);
    int ok = 1;
    for (int i = 0; i < N; i++)
        ok &= y[i] == a[i] + b[i];
    CHECK(ok, "dj_add values");
    memcpy(z, a, sizeof z);
    dj_add(NULL, N, z, b, z);
    CHECK(!memcmp(z, y, sizeof z), "dj_add in place (y == a) differs");
    memcpy(z, b, sizeof z);
    dj_add(NULL, N, a, z, z);
    CHECK(!memcmp(z, y, sizeof z), "dj_add in place (y == b) differs");

    memcpy(y, b, sizeof y);
    dj_axpy(NULL, N, -0.375f, a, y);
    ok = 1;
    for (int i = 0; i < N; i++)
        ok &= y[i] == b[i] + -0.375f * a[i];
    CHECK(ok, "dj_axpy values");
    memcpy(y, a, sizeof y);
    dj_axpy(NULL, N, 2.0f, y, y);
    ok = 1;
    for (int i = 0; i < N; i++)
        ok &= y[i] == 3.0f * a[i];
    CHECK(ok, "dj_axpy with x == y");
}

static void test_add_relu(void)
{
    enum { N = 1043 };
    float a[N], b[N], y[N], z[N], w[N];
    fill(a, N, 8);
    fill(b, N, 9);
    /* specials: NaN, infinities, -0 + -0 = -0, +0 + -0 = +0, x + -x = +0 */
    a[0] = NAN, a[1] = -0.0f, b[1] = -0.0f, a[2] = 0.0f, b[2] = -0.0f, b[3] = -a[3];
    a[4] = INFINITY, b[5] = -INFINITY, a[6] = INFINITY, b[6] = -INFINITY, a[20] = -NAN;
    dj_add(NULL, N, a, b, z);
    dj_relu_forward(NULL, N, z, y);
    dj_add_relu(NULL, N, a, b, w);
    CHECK(!memcmp(w, y, sizeof w), "dj_add_relu differs from dj_add then dj_relu_forward");
    CHECK(signbit(w[1]) && w[1] == 0.0f, "-0 + -0 gives -0, which the ReLU keeps (as torch.relu)");
    CHECK(isnan(w[0]) && isnan(w[6]), "NaN and inf - inf pass the ReLU");
    memcpy(z, a, sizeof z);
    dj_add_relu(NULL, N, z, b, z);
    CHECK(!memcmp(z, y, sizeof z), "dj_add_relu in place (y == a) differs");
    dj_pool *pool;
    if (dj_pool_create(2, &pool) == DJ_OK) {
        const size_t n = 200003;
        float *x = fvec(n), *c = fvec(n), *y0 = fvec(n), *y1 = fvec(n);
        fill(x, n, 10);
        fill(c, n, 11);
        dj_add_relu(NULL, n, x, c, y0);
        dj_add_relu(pool, n, x, c, y1);
        CHECK(!memcmp(y0, y1, n * sizeof *y0), "dj_add_relu on 2 threads differs");
        free(x), free(c), free(y0), free(y1);
        dj_pool_destroy(pool);
    }
}

static void test_threads(void)
{
    const size_t n = 200003;
    float *x = fvec(n), *b = fvec(n), *y0 = fvec(n), *y1 = fvec(n);
    uint8_t *m0 = malloc(n), *m1 = malloc(n);
    fill(x, n, 6);
    fill(b, n, 7);
    for (int t = 1; t <= 3; t++) {
        dj_pool *pool;
        if (dj_pool_create(t, &pool) != DJ_OK) {
            CHECK(0, "dj_pool_create(%d)", t);
            continue;
        }
        dj_dropout_forward(NULL, n, 0.25f, 5, 11, x, y0, m0);
        dj_dropout_forward(pool, n, 0.25f, 5, 11, x, y1, m1);
        CHECK(!memcmp(y0, y1, n * sizeof *y0) && !memcmp(m0, m1, n),
              "dropout forward, %d threads, differs", t);
        dj_dropout_backward(NULL, n, 0.25f, m0, b, y0);
        dj_dropout_backward(pool, n, 0.25f, m0, b, y1);
        CHECK(!memcmp(y0, y1, n * sizeof *y0), "dropout backward, %d threads, differs", t);
        dj_add(NULL, n, x, b, y0);
        dj_add(pool, n, x, b, y1);
        CHECK(!memcmp(y0, y1, n * sizeof *y0), "dj_add, %d threads, differs", t);
        dj_axpy(NULL, n, 0.5f, x, y0);
        dj_axpy(pool, n, 0.5f, x, y1);
        CHECK(!memcmp(y0, y1, n * sizeof *y0), "dj_axpy, %d threads, differs", t);
        dj_pool_destroy(pool);
    }
    free(x), free(b), free(y0), free(y1), free(m0), free(m1);
}

int main(void)
{
    test_dropout_rule_and_rate();
    test_dropout_reproducible();
    test_dropout_edges();
    test_add_axpy();
    test_add_relu();
    test_threads();
    return th_done("test_elementwise");
}
