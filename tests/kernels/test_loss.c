/* test_loss.c - softmax cross-entropy with label smoothing
 * (src/kernels/loss.c).
 *
 * Checked: a hand-computed example with and without label smoothing (loss,
 * probabilities and gradient; PyTorch 1.13's CrossEntropyLoss gives the same
 * numbers); random batches against the double-precision reference of
 * ref_kernels.h for several class counts and smoothings; the backward
 * against central finite differences of the double-precision loss; huge and
 * tiny logits (no overflow, probabilities sum to 1); and a label out of
 * range (NaN loss, no out-of-bounds access). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "dojo/kernels.h"
#include "harness.h"
#include "kernels/ref_kernels.h"

static void test_hand(void)
{
    /* Row 0: logits 1, 2, 3, label 2. lse = log(e + e^2 + e^3) =
     * 3.40760596444438, so nll = 0.40760596444438 and the smoothing term
     * (mean over classes of -log p) = lse - 2 = 1.40760596444438.
     * Row 1: logits 1, 1, 1, label 0: both terms are log 3.
     * s = 0:   loss = (0.40760596444438 + log 3) / 2 = 0.7531091265562448
     * s = 0.1: row 0 = 0.9 * 0.4076... + 0.1 * 1.4076... = 0.50760596444438,
     *          loss = (0.50760596444438 + log 3) / 2 = 0.8031091265562449 */
    const float z[6] = {1, 2, 3, 1, 1, 1};
    const int32_t y[2] = {2, 0};
    const double p0[3] = {0.09003057317038046, 0.24472847105479767, 0.6652409557748219};
    float p[6], d[6];

    double L = dj_softmax_xent_forward(2, 3, z, y, 0.0f, p);
    CHECK(fabs(L - 0.7531091265562448) <= 1e-7, "loss (s = 0) = %.12g", L);
    for (int c = 0; c < 3; c++) {
        CHECK(fabs(p[c] - p0[c]) <= 6e-8, "p[0][%d] = %.9g, want %.9g", c, p[c], p0[c]);
        CHECK(fabs(p[3 + c] - 1.0 / 3) <= 6e-8, "p[1][%d] = %.9g", c, p[3 + c]);
    }
    dj_softmax_xent_backward(2, 3, p, y, 0.0f, d);
    /* (p - onehot) / 2; PyTorch: 0.0450153, 0.1223642, -0.1673795 / -1/3, 1/6, 1/6 */
    const double g0[6] = {p0[0] / 2, p0[1] / 2, (p0[2] - 1) / 2, (1.0 / 3 - 1) / 2, 1.0 / 6,
                          1.0 / 6};
    for (int i = 0; i < 6; i++)
        CHECK(fabs(d[i] - g0[i]) <= 6e-8, "dlogits (s = 0)[%d] = %.9g, want %.9g", i, d[i], g0[i]);

    L = dj_softmax_xent_forward(2, 3, z, y, 0.1f, p);
    CHECK(fabs(L - 0.8031091265562449) <= 1e-7, "loss (s = 0.1) = %.12g", L);
    dj_softmax_xent_backward(2, 3, p, y, 0.1f, d);
    /* target = 0.9 onehot + 0.1 / 3; PyTorch: 0.0283486, 0.1056976, -0.1340462 / -0.3, 0.15, 0.15 */
    const double u = 0.1 / 3;
    const double g1[6] = {(p0[0] - u) / 2,       (p0[1] - u) / 2, (p0[2] - 0.9 - u) / 2,
                          (1.0 / 3 - 0.9 - u) / 2, (1.0 / 3 - u) / 2, (1.0 / 3 - u) / 2};
    for (int i = 0; i < 6; i++)
        CHECK(fabs(d[i] - g1[i]) <= 6e-8, "dlogits (s = 0.1)[%d] = %.9g, want %.9g", i, d[i],
              g1[i]);
}

static void make_batch(int n, int C, double spread, uint64_t seed, float *z, int32_t *y)
{
    for (size_t i = 0; i < (size_t)n * C; i++)
        z[i] = (float)ref_uniform(seed, i, -spread, spread);
    for (int r = 0; r < n; r++)
        y[r] = (int32_t)(dj_rng_u32(seed + 1, (uint64_t)r, 0) % (uint32_t)C);
}

static void test_vs_ref(int n, int C, float s, double spread)
{
    const size_t N = (size_t)n * C;
    float *z = malloc(N * sizeof *z), *p = malloc(N * sizeof *p), *d = malloc(N * sizeof *d);
    int32_t *y = malloc((size_t)n * sizeof *y);
    double *pd = malloc(N * sizeof *pd), *gd = malloc(N * sizeof *gd);
    make_batch(n, C, spread, 100 + (uint64_t)C, z, y);
    double *zd = ref_to_double(z, N);

    double L = dj_softmax_xent_forward(n, C, z, y, s, p);
    double Lr = ref_softmax_xent(n, C, zd, y, s, pd);
    CHECK(fabs(L - Lr) <= 1e-6 * fabs(Lr), "loss n=%d C=%d s=%g: %.12g, reference %.12g", n, C,
          s, L, Lr);
    double e = ref_rel_err(p, pd, N, 0);
    CHECK(e <= 2e-7, "probs n=%d C=%d: rel err %.3g", n, C, e);
    int sum_ok = 1;
    for (int r = 0; r < n; r++) {
        double sum = 0;
        for (int c = 0; c < C; c++)
            sum += p[(size_t)r * C + c];
        sum_ok &= fabs(sum - 1) <= 1e-6;
    }
    CHECK(sum_ok, "probs n=%d C=%d do not sum to 1", n, C);

    dj_softmax_xent_backward(n, C, p, y, s, d);
    for (int r = 0; r < n; r++)
        for (int c = 0; c < C; c++) {
            size_t i = (size_t)r * C + c;
            gd[i] = (pd[i] - ((c == y[r]) * (1.0 - s) + (double)s / C)) / n;
        }
    e = ref_rel_err(d, gd, N, 0);
    CHECK(e <= 2e-7, "dlogits n=%d C=%d s=%g: rel err %.3g", n, C, s, e);

    /* Central differences of the double loss. */
    if (N <= 2000) {
        const double h = 1e-5;
        double *fd = malloc(N * sizeof *fd);
        for (size_t i = 0; i < N; i++) {
            double keep = zd[i];
            zd[i] = keep + h;
            double up = ref_softmax_xent(n, C, zd, y, s, pd);
            zd[i] = keep - h;
            double down = ref_softmax_xent(n, C, zd, y, s, pd);
            zd[i] = keep;
            fd[i] = (up - down) / (2 * h);
        }
        e = ref_rel_err(d, fd, N, 0);
        CHECK(e <= 1e-5, "dlogits vs finite differences n=%d C=%d s=%g: rel err %.3g", n, C, s,
              e);
        free(fd);
    }
    free(z), free(p), free(d), free(y), free(pd), free(gd), free(zd);
}

static void test_extremes(void)
{
    const float z[8] = {1e4f, -1e4f, 0, 5e3f, -3e38f, -3e38f, -3e38f, 3e38f};
    const int32_t y[2] = {1, 0};
    float p[8], d[8];
    double L = dj_softmax_xent_forward(2, 4, z, y, 0.25f, p);
    CHECK(isfinite(L), "huge logits: loss %g", L);
    /* Row 0: lse = 1e4, -log p[1] = 2e4, smoothing term = lse - mean(z)
     * = 1e4 - 5e3 / 4 (s = 0.25, exact in float). Row 1's shifted logits
     * overflow float (-6e38): only check that nothing became inf or NaN. */
    const double row0 = 0.75 * 2e4 + 0.25 * (1e4 - (1e4 - 1e4 + 0 + 5e3) / 4);
    float p0[4], d0[4];
    double L0 = dj_softmax_xent_forward(1, 4, z, y, 0.25f, p0);
    CHECK(fabs(L0 - row0) <= 1e-9 * row0, "huge logits: row loss %.12g, want %.12g", L0, row0);
    CHECK(p0[0] == 1.0f && p0[1] == 0.0f && p0[3] == 0.0f, "huge logits: probs %g %g %g %g",
          p0[0], p0[1], p0[2], p0[3]);
    dj_softmax_xent_backward(1, 4, p0, y, 0.25f, d0);
    CHECK(d0[1] == -0.8125f && d0[0] == 0.9375f && d0[2] == -0.0625f,
          "huge logits: dlogits %g %g", d0[0], d0[1]);
    int ok = 1;
    for (int i = 0; i < 8; i++)
        ok &= isfinite(p[i]);
    dj_softmax_xent_backward(2, 4, p, y, 0.25f, d);
    for (int i = 0; i < 8; i++)
        ok &= isfinite(d[i]);
    CHECK(ok, "extreme logits: non-finite probabilities or gradients");
}

static void test_bad_label(void)
{
    const float z[6] = {1, 2, 3, 0, 0, 0};
    const int32_t y[2] = {1, 3}; /* 3 is out of range for 3 classes */
    float p[6], d[6];
    double L = dj_softmax_xent_forward(2, 3, z, y, 0.0f, p);
    CHECK(isnan(L), "label out of range: loss %g, want NaN", L);
    dj_softmax_xent_backward(2, 3, p, y, 0.3f, d);
    int ok = 1;
    for (int c = 0; c < 3; c++)
        ok &= fabs(d[3 + c] - (1.0 / 3 - 0.1) / 2) <= 1e-7;
    CHECK(ok, "label out of range: backward row %g %g %g", d[3], d[4], d[5]);
    const int32_t neg[2] = {-1, 0};
    CHECK(isnan(dj_softmax_xent_forward(2, 3, z, neg, 0.0f, p)), "negative label: loss not NaN");
}

int main(void)
{
    test_hand();
    test_vs_ref(1, 2, 0.0f, 3);
    test_vs_ref(7, 10, 0.0f, 5);
    test_vs_ref(7, 10, 0.1f, 5);
    test_vs_ref(13, 37, 0.3f, 20);
    test_vs_ref(64, 1000, 0.1f, 8);
    test_vs_ref(3, 100, 1.0f, 2);
    test_extremes();
    test_bad_label();
    return th_done("test_loss");
}
