/* test_norm.c - batch norm and layer norm kernels (src/kernels/norm.c).
 *
 * Checked: a hand-computed BatchNorm2d example (output, saved statistics,
 * running mean and unbiased running variance - the numbers PyTorch 1.13
 * gives for the same input); the training forward, eval forward and
 * backward against the double-precision references of ref_kernels.h on
 * shapes with odd sizes, large channel means and hw = 1; every backward
 * output (dx, dgamma, dbeta) against central finite differences of the
 * double-precision forward; the same for layer norm; NULL gamma/beta equal
 * to gamma = 1, beta = 0; in-place use; and bit-identical results for a
 * NULL pool and pools of 1, 2 and 3 threads on sizes that do split; each
 * channel of channels swept in groups as it is alone; the
 * inner loops of every ISA the CPU runs bit-identical to the generic ones
 * (norm.h), tails and in-place use included. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dojo/kernels.h"
#include "harness.h"
#include "kernels/norm.h"
#include "kernels/ref_kernels.h"

static const float EPS = 1e-5f;

static float *fvec(size_t n)
{
    return calloc(n ? n : 1, sizeof(float));
}

static double *dvec(size_t n)
{
    return calloc(n ? n : 1, sizeof(double));
}

static void fill(float *x, size_t n, uint64_t seed, double lo, double hi)
{
    for (size_t i = 0; i < n; i++)
        x[i] = (float)ref_uniform(seed, i, lo, hi);
}

/* x for a batch-norm test: per-channel offsets and scales, so statistics
 * differ by channel (offset up to `offset`). */
static void fill_nchw(float *x, int n, int c, int hw, uint64_t seed, double offset)
{
    for (int i = 0; i < n; i++)
        for (int ch = 0; ch < c; ch++)
            for (int j = 0; j < hw; j++) {
                size_t k = ((size_t)i * c + ch) * hw + j;
                double center = offset * (ch % 5 - 2) / 2.0, scale = 0.5 + ch % 3;
                x[k] = (float)(center + scale * ref_uniform(seed, k, -1, 1));
            }
}

/* ---- batch norm ---- */

static void test_bn_hand(void)
{
    /* n = 2, c = 2, hw = 2. Channel 0 holds 1, 2, 3, 4: mean 2.5, biased
     * variance 1.25, unbiased 5/3. Channel 1 holds 10, 10, 10, 14: mean 11,
     * variance 3, unbiased 4. gamma = (1, 2), beta = (0, -1), momentum 0.1,
     * running stats starting at (0, 1). */
    const float x[8] = {1, 2, 10, 10, 3, 4, 10, 14};
    const float gamma[2] = {1, 2}, beta[2] = {0, -1};
    float rm[2] = {0, 0}, rv[2] = {1, 1}, y[8], sm[2], si[2];
    dj_batchnorm2d_forward_train(NULL, 2, 2, 2, x, gamma, beta, EPS, 0.1f, rm, rv, y, sm, si);
    const double inv0 = 1 / sqrt(1.25 + 1e-5), inv1 = 1 / sqrt(3 + 1e-5);
    const double want[8] = {-1.5 * inv0,         -0.5 * inv0,        -2 * inv1 - 1, -2 * inv1 - 1,
                            0.5 * inv0,          1.5 * inv0,         -2 * inv1 - 1, 6 * inv1 - 1};
    /* PyTorch 1.13, BatchNorm2d(2) on the same input: */
    const double torch_y[8] = {-1.3416353464126587, -0.44721174240112305, -2.1546988487243652,
                               -2.1546988487243652, 0.4472118616104126,   1.3416354656219482,
                               -2.1546988487243652, 2.4640955924987793};
    for (int i = 0; i < 8; i++) {
        CHECK(fabs(y[i] - want[i]) <= 1e-6, "bn hand y[%d] = %.9g, want %.9g", i, y[i], want[i]);
        CHECK(fabs(y[i] - torch_y[i]) <= 1e-6, "bn y[%d] = %.9g, torch %.9g", i, y[i], torch_y[i]);
    }
    CHECK(sm[0] == 2.5f && sm[1] == 11.0f, "save_mean %g %g", sm[0], sm[1]);
    CHECK(fabs(si[0] - inv0) <= 1e-7 && fabs(si[1] - inv1) <= 1e-7, "save_invstd %g %g", si[0],
          si[1]);
    CHECK(fabs(rm[0] - 0.25) <= 1e-7 && fabs(rm[1] - 1.1) <= 1e-7, "running_mean %.9g %.9g", rm[0],
          rm[1]);
    CHECK(fabs(rv[0] - (0.9 + 0.1 * 5.0 / 3.0)) <= 1e-7 && fabs(rv[1] - 1.3) <= 1e-7,
          "running_var %.9g %.9g (unbiased)", rv[0], rv[1]);

    /* Eval mode with those running statistics. */
    float ye[8];
    dj_batchnorm2d_forward_eval(NULL, 2, 2, 2, x, gamma, beta, EPS, rm, rv, ye);
    for (int i = 0; i < 8; i++) {
        int ch = (i / 2) % 2;
        double w = (x[i] - (double)rm[ch]) / sqrt((double)rv[ch] + 1e-5) * gamma[ch] + beta[ch];
        CHECK(fabs(ye[i] - w) <= 1e-6 * (1 + fabs(w)), "bn eval y[%d] = %.9g, want %.9g", i, ye[i],
              w);
    }
}

static void test_bn_vs_ref(int n, int c, int hw, double offset)
{
    const size_t N = (size_t)n * c * hw;
    float *x = fvec(N), *y = fvec(N), *g = fvec(c), *b = fvec(c), *rm = fvec(c), *rv = fvec(c);
    float *sm = fvec(c), *si = fvec(c), *dy = fvec(N), *dx = fvec(N), *dg = fvec(c), *db = fvec(c);
    fill_nchw(x, n, c, hw, 11 + N, offset);
    fill(g, c, 12, 0.5, 1.5);
    fill(b, c, 13, -1, 1);
    fill(rm, c, 14, -1, 1);
    fill(rv, c, 15, 0.5, 2);
    fill(dy, N, 16, -1, 1);
    double *xd = ref_to_double(x, N), *gd = ref_to_double(g, c), *bd = ref_to_double(b, c);
    double *dyd = ref_to_double(dy, N), *rm0 = ref_to_double(rm, c), *rv0 = ref_to_double(rv, c);
    double *yd = dvec(N), *md = dvec(c), *vd = dvec(c), *dxd = dvec(N), *dgd = dvec(c),
           *dbd = dvec(c);
    const float mom = 0.1f;

    dj_batchnorm2d_forward_train(NULL, n, c, hw, x, g, b, EPS, mom, rm, rv, y, sm, si);
    ref_batchnorm2d_train(n, c, hw, xd, gd, bd, EPS, yd, md, vd);
    double e = ref_rel_err(y, yd, N, 1);
    CHECK(e <= 5e-7, "bn train y (n=%d c=%d hw=%d offset=%g): rel err %.3g", n, c, hw, offset, e);
    const double cnt = (double)n * hw;
    for (int ch = 0; ch < c; ch++) {
        double inv = 1 / sqrt(vd[ch] + EPS);
        double wrm = 0.9 * rm0[ch] + 0.1 * md[ch];
        double wrv = 0.9 * rv0[ch] + 0.1 * (cnt > 1 ? vd[ch] * cnt / (cnt - 1) : 0);
        CHECK(fabs(sm[ch] - md[ch]) <= 1e-6 * (1 + fabs(md[ch])), "bn save_mean[%d] %.9g vs %.9g",
              ch, sm[ch], md[ch]);
        CHECK(fabs(si[ch] - inv) <= 1e-6 * inv, "bn save_invstd[%d] %.9g vs %.9g", ch, si[ch], inv);
        CHECK(fabs(rm[ch] - wrm) <= 1e-6 * (1 + fabs(wrm)), "bn running_mean[%d] %.9g vs %.9g", ch,
              rm[ch], wrm);
        CHECK(fabs(rv[ch] - wrv) <= 1e-6 * (1 + fabs(wrv)), "bn running_var[%d] %.9g vs %.9g", ch,
              rv[ch], wrv);
    }

    /* Eval with the updated running statistics. */
    double *rmd = ref_to_double(rm, c), *rvd = ref_to_double(rv, c);
    dj_batchnorm2d_forward_eval(NULL, n, c, hw, x, g, b, EPS, rm, rv, y);
    ref_batchnorm2d_eval(n, c, hw, xd, gd, bd, EPS, rmd, rvd, yd);
    e = ref_rel_err(y, yd, N, 1);
    CHECK(e <= 5e-7, "bn eval y (n=%d c=%d hw=%d): rel err %.3g", n, c, hw, e);

    /* Backward against the analytic double reference. The backward centres
     * x on the saved float mean (as PyTorch does), which costs accuracy in
     * proportion to |mean| / std: hence the offset term. */
    const double btol = 1e-6 + 2e-8 * offset;
    if (cnt > 1) {
        dj_batchnorm2d_backward(NULL, n, c, hw, x, dy, g, sm, si, dx, dg, db);
        ref_batchnorm2d_backward(n, c, hw, xd, dyd, gd, EPS, dxd, dgd, dbd);
        e = ref_rel_err(dx, dxd, N, 1e-3);
        CHECK(e <= btol, "bn dx (n=%d c=%d hw=%d): rel err %.3g", n, c, hw, e);
        e = ref_rel_err(dg, dgd, c, 1e-3);
        CHECK(e <= btol, "bn dgamma (n=%d c=%d hw=%d): rel err %.3g", n, c, hw, e);
        e = ref_rel_err(db, dbd, c, 1e-3);
        CHECK(e <= btol, "bn dbeta (n=%d c=%d hw=%d): rel err %.3g", n, c, hw, e);
    }

    free(x), free(y), free(g), free(b), free(rm), free(rv), free(sm), free(si), free(dy);
    free(dx), free(dg), free(db), free(xd), free(gd), free(bd), free(dyd), free(rm0), free(rv0);
    free(yd), free(md), free(vd), free(dxd), free(dgd), free(dbd), free(rmd), free(rvd);
}

/* sum(r * y) with y the double training-mode forward. */
static double bn_loss(int n, int c, int hw, const double *x, const double *g, const double *b,
                      const double *r, double *ybuf, double *mbuf, double *vbuf)
{
    ref_batchnorm2d_train(n, c, hw, x, g, b, EPS, ybuf, mbuf, vbuf);
    double L = 0;
    for (size_t i = 0; i < (size_t)n * c * hw; i++)
        L += r[i] * ybuf[i];
    return L;
}

/* Central difference of f along p[i], with step h. */
#define CENTRAL_DIFF(out, p, i, h, expr)            \
    do {                                            \
        double keep_ = (p)[i];                      \
        (p)[i] = keep_ + (h);                       \
        double up_ = (expr);                        \
        (p)[i] = keep_ - (h);                       \
        double down_ = (expr);                      \
        (p)[i] = keep_;                             \
        (out) = (up_ - down_) / (2 * (h));          \
    } while (0)

static void test_bn_finite_diff(int n, int c, int hw)
{
    const size_t N = (size_t)n * c * hw;
    const double h = 1e-4;
    float *x = fvec(N), *g = fvec(c), *b = fvec(c), *dy = fvec(N), *y = fvec(N);
    float *sm = fvec(c), *si = fvec(c), *dx = fvec(N), *dg = fvec(c), *db = fvec(c);
    fill_nchw(x, n, c, hw, 21, 2);
    fill(g, c, 22, 0.5, 1.5);
    fill(b, c, 23, -1, 1);
    fill(dy, N, 24, -1, 1);
    dj_batchnorm2d_forward_train(NULL, n, c, hw, x, g, b, EPS, 0.1f, NULL, NULL, y, sm, si);
    dj_batchnorm2d_backward(NULL, n, c, hw, x, dy, g, sm, si, dx, dg, db);

    double *xd = ref_to_double(x, N), *gd = ref_to_double(g, c), *bd = ref_to_double(b, c);
    double *r = ref_to_double(dy, N), *yb = dvec(N), *mb = dvec(c), *vb = dvec(c);
    double *fx = dvec(N), *fg = dvec(c), *fb = dvec(c);
    for (size_t i = 0; i < N; i++)
        CENTRAL_DIFF(fx[i], xd, i, h, bn_loss(n, c, hw, xd, gd, bd, r, yb, mb, vb));
    for (int i = 0; i < c; i++) {
        CENTRAL_DIFF(fg[i], gd, i, h, bn_loss(n, c, hw, xd, gd, bd, r, yb, mb, vb));
        CENTRAL_DIFF(fb[i], bd, i, h, bn_loss(n, c, hw, xd, gd, bd, r, yb, mb, vb));
    }
    double e = ref_rel_err(dx, fx, N, 1e-3);
    CHECK(e <= 1e-5, "bn dx vs finite differences (n=%d c=%d hw=%d): rel err %.3g", n, c, hw, e);
    e = ref_rel_err(dg, fg, c, 1e-3);
    CHECK(e <= 1e-5, "bn dgamma vs finite differences: rel err %.3g", e);
    e = ref_rel_err(db, fb, c, 1e-3);
    CHECK(e <= 1e-5, "bn dbeta vs finite differences: rel err %.3g", e);

    free(x), free(g), free(b), free(dy), free(y), free(sm), free(si), free(dx), free(dg), free(db);
    free(xd), free(gd), free(bd), free(r), free(yb), free(mb), free(vb), free(fx), free(fg);
    free(fb);
}

/* A constant channel: variance 0, y = beta, finite gradients; and the
 * one-value-per-channel case, which PyTorch refuses: no NaN in the
 * running variance. */
static void test_bn_degenerate(void)
{
    float x[6] = {3, 3, 3, 3, 3, 3}, g[1] = {2}, b[1] = {0.5f}, y[6], sm[1], si[1];
    float rm[1] = {0}, rv[1] = {1}, dy[6] = {1, -2, 3, 0.5f, 0, 1}, dx[6], dg[1], db[1];
    dj_batchnorm2d_forward_train(NULL, 2, 1, 3, x, g, b, EPS, 0.1f, rm, rv, y, sm, si);
    int ok = 1;
    for (int i = 0; i < 6; i++)
        ok &= y[i] == 0.5f;
    CHECK(ok, "constant channel: y = beta");
    CHECK(rv[0] == 0.9f, "constant channel: running_var %.9g", rv[0]);
    dj_batchnorm2d_backward(NULL, 2, 1, 3, x, dy, g, sm, si, dx, dg, db);
    ok = 1;
    for (int i = 0; i < 6; i++)
        ok &= isfinite(dx[i]);
    CHECK(ok && isfinite(dg[0]) && db[0] == 3.5f, "constant channel: finite gradients");

    float one[1] = {7}, y1[1];
    rm[0] = 0, rv[0] = 1;
    dj_batchnorm2d_forward_train(NULL, 1, 1, 1, one, g, b, EPS, 0.1f, rm, rv, y1, sm, si);
    CHECK(y1[0] == 0.5f && rv[0] == 0.9f && fabsf(rm[0] - 0.7f) < 1e-7f,
          "one value per channel: y %g, running (%g, %g)", y1[0], rm[0], rv[0]);
}

/* gamma/beta NULL equal gamma = 1, beta = 0; y may be x; dx may be dy. */
static void test_bn_null_and_inplace(void)
{
    enum { n = 3, c = 4, hw = 37, N = n * c * hw };
    float x[N], y1[N], y2[N], ones[c], zeros[c], sm1[c], si1[c], sm2[c], si2[c];
    float dy[N], dx1[N], dx2[N], dg[c], db[c];
    fill_nchw(x, n, c, hw, 31, 3);
    fill(dy, N, 32, -1, 1);
    for (int i = 0; i < c; i++)
        ones[i] = 1, zeros[i] = 0;
    dj_batchnorm2d_forward_train(NULL, n, c, hw, x, ones, zeros, EPS, 0.1f, NULL, NULL, y1, sm1,
                                 si1);
    dj_batchnorm2d_forward_train(NULL, n, c, hw, x, NULL, NULL, EPS, 0.1f, NULL, NULL, y2, sm2,
                                 si2);
    CHECK(!memcmp(y1, y2, sizeof y1) && !memcmp(sm1, sm2, sizeof sm1),
          "bn: NULL gamma/beta differ from 1/0");
    dj_batchnorm2d_backward(NULL, n, c, hw, x, dy, ones, sm1, si1, dx1, dg, db);
    dj_batchnorm2d_backward(NULL, n, c, hw, x, dy, NULL, sm1, si1, dx2, NULL, NULL);
    CHECK(!memcmp(dx1, dx2, sizeof dx1), "bn backward: NULL gamma differs from 1");

    memcpy(y2, x, sizeof x);
    dj_batchnorm2d_forward_train(NULL, n, c, hw, y2, NULL, NULL, EPS, 0.1f, NULL, NULL, y2, sm2,
                                 si2);
    CHECK(!memcmp(y1, y2, sizeof y1), "bn forward in place (y == x) differs");
    memcpy(dx2, dy, sizeof dy);
    dj_batchnorm2d_backward(NULL, n, c, hw, x, dx2, ones, sm1, si1, dx2, NULL, NULL);
    CHECK(!memcmp(dx1, dx2, sizeof dx1), "bn backward in place (dx == dy) differs");
}

/* The gradient of a normalisation sums to zero over each channel (row):
 * adding a constant to x changes nothing. In float the sum is bounded by
 * the final roundings, 2^-24 sum |dx| (what gives a conv bias in front of a
 * batch norm its zero gradient). */
static void check_zero_sums(const char *what, const float *dx, size_t groups, size_t count,
                            size_t stride, size_t inner)
{
    size_t bad = 0;
    for (size_t gi = 0; gi < groups; gi++) {
        double sum = 0, abs_sum = 0;
        for (size_t k = 0; k < count; k++) {
            /* element k of group gi: blocks of `inner` values, `stride` apart */
            float v = dx[gi * inner + (k / inner) * stride + k % inner];
            sum += v;
            abs_sum += fabs(v);
        }
        bad += !(fabs(sum) <= 0x1p-24 * abs_sum * 1.01 + 1e-30);
    }
    CHECK(bad == 0, "%s: %zu groups whose gradient does not sum to zero", what, bad);
}

static void test_zero_sums(double offset)
{
    enum { n = 6, c = 5, hw = 53, N = n * c * hw, R = 9, D = 301 };
    static float x[N], dy[N], dx[N], sm[c], si[c], y[N], g[c], b[c];
    static float lx[R * D], ldy[R * D], ldx[R * D], ly[R * D], lg[D], lb[D], lsm[R], lsi[R];
    fill_nchw(x, n, c, hw, 81, offset);
    fill(dy, N, 82, -1, 1);
    fill(g, c, 83, 0.5, 2);
    fill(b, c, 84, -1, 1);
    dj_batchnorm2d_forward_train(NULL, n, c, hw, x, g, b, EPS, 0.1f, NULL, NULL, y, sm, si);
    dj_batchnorm2d_backward(NULL, n, c, hw, x, dy, g, sm, si, dx, NULL, NULL);
    check_zero_sums(offset > 100 ? "bn dx, large mean" : "bn dx", dx, c, (size_t)n * hw,
                    (size_t)c * hw, hw);
    for (size_t i = 0; i < (size_t)R * D; i++)
        lx[i] = (float)(offset + ref_uniform(85, i, -2, 2));
    fill(ldy, (size_t)R * D, 86, -1, 1);
    fill(lg, D, 87, 0.5, 2);
    fill(lb, D, 88, -1, 1);
    dj_layernorm_forward(NULL, R, D, lx, lg, lb, EPS, ly, lsm, lsi);
    dj_layernorm_backward(NULL, R, D, lx, ldy, lg, lsm, lsi, ldx, NULL, NULL);
    check_zero_sums(offset > 100 ? "ln dx, large mean" : "ln dx", ldx, R, D, D, D);
}

/* ---- layer norm ---- */

static void test_ln_hand(void)
{
    /* Row 1, 2, 3, 4: mean 2.5, variance 1.25. PyTorch 1.13 LayerNorm(4)
     * gives -1.3416354656, -0.4472118616, 0.4472118020, 1.3416354656. */
    const float x[8] = {1, 2, 3, 4, -2, -2, -2, -2};
    const float g[4] = {1, 1, 1, 1}, b[4] = {0, 0, 0, 0.25f};
    float y[8], sm[2], si[2];
    dj_layernorm_forward(NULL, 2, 4, x, g, b, EPS, y, sm, si);
    const double inv = 1 / sqrt(1.25 + 1e-5);
    const double want[8] = {-1.5 * inv, -0.5 * inv, 0.5 * inv, 1.5 * inv + 0.25, 0, 0, 0, 0.25};
    for (int i = 0; i < 8; i++)
        CHECK(fabs(y[i] - want[i]) <= 1e-6, "ln hand y[%d] = %.9g, want %.9g", i, y[i], want[i]);
    CHECK(sm[0] == 2.5f && sm[1] == -2.0f, "ln save_mean %g %g", sm[0], sm[1]);
    CHECK(fabs(si[0] - inv) <= 1e-7 && fabs(si[1] - 1 / sqrt(1e-5)) <= 1e-7 * si[1],
          "ln save_invstd %g %g", si[0], si[1]);
}

static void test_ln_vs_ref(int rows, int d, double offset)
{
    const size_t N = (size_t)rows * d;
    float *x = fvec(N), *y = fvec(N), *g = fvec(d), *b = fvec(d), *sm = fvec(rows),
          *si = fvec(rows);
    float *dy = fvec(N), *dx = fvec(N), *dg = fvec(d), *db = fvec(d);
    for (int r = 0; r < rows; r++)
        for (int j = 0; j < d; j++)
            x[(size_t)r * d + j] =
                (float)(offset * (r % 3 - 1) + (0.5 + r % 4) * ref_uniform(41, (size_t)r * d + j, -1, 1));
    fill(g, d, 42, 0.5, 1.5);
    fill(b, d, 43, -1, 1);
    fill(dy, N, 44, -1, 1);
    double *xd = ref_to_double(x, N), *gd = ref_to_double(g, d), *bd = ref_to_double(b, d);
    double *dyd = ref_to_double(dy, N), *yd = dvec(N), *md = dvec(rows), *vd = dvec(rows);
    double *dxd = dvec(N), *dgd = dvec(d), *dbd = dvec(d);

    dj_layernorm_forward(NULL, rows, d, x, g, b, EPS, y, sm, si);
    ref_layernorm_forward(rows, d, xd, gd, bd, EPS, yd, md, vd);
    double e = ref_rel_err(y, yd, N, 1);
    CHECK(e <= 5e-7, "ln y (rows=%d d=%d offset=%g): rel err %.3g", rows, d, offset, e);
    for (int r = 0; r < rows; r++) {
        double inv = 1 / sqrt(vd[r] + EPS);
        CHECK(fabs(sm[r] - md[r]) <= 1e-6 * (1 + fabs(md[r])), "ln save_mean[%d]", r);
        CHECK(fabs(si[r] - inv) <= 1e-6 * inv, "ln save_invstd[%d] %.9g vs %.9g", r, si[r], inv);
    }
    /* As for batch norm, the saved float mean limits the backward's accuracy
     * when |mean| is large against the spread. */
    const double btol = 1e-6 + 2e-8 * offset;
    dj_layernorm_backward(NULL, rows, d, x, dy, g, sm, si, dx, dg, db);
    ref_layernorm_backward(rows, d, xd, dyd, gd, EPS, dxd, dgd, dbd);
    e = ref_rel_err(dx, dxd, N, 1e-3);
    CHECK(e <= btol, "ln dx (rows=%d d=%d): rel err %.3g", rows, d, e);
    e = ref_rel_err(dg, dgd, d, 1e-3);
    CHECK(e <= btol, "ln dgamma (rows=%d d=%d): rel err %.3g", rows, d, e);
    e = ref_rel_err(db, dbd, d, 1e-3);
    CHECK(e <= btol, "ln dbeta (rows=%d d=%d): rel err %.3g", rows, d, e);

    free(x), free(y), free(g), free(b), free(sm), free(si), free(dy), free(dx), free(dg);
    free(db), free(xd), free(gd), free(bd), free(dyd), free(yd), free(md), free(vd), free(dxd);
    free(dgd), free(dbd);
}

static double ln_loss(int rows, int d, const double *x, const double *g, const double *b,
                      const double *r, double *ybuf, double *mbuf, double *vbuf)
{
    ref_layernorm_forward(rows, d, x, g, b, EPS, ybuf, mbuf, vbuf);
    double L = 0;
    for (size_t i = 0; i < (size_t)rows * d; i++)
        L += r[i] * ybuf[i];
    return L;
}

static void test_ln_finite_diff(int rows, int d)
{
    const size_t N = (size_t)rows * d;
    const double h = 1e-4;
    float *x = fvec(N), *g = fvec(d), *b = fvec(d), *dy = fvec(N), *y = fvec(N);
    float *sm = fvec(rows), *si = fvec(rows), *dx = fvec(N), *dg = fvec(d), *db = fvec(d);
    fill(x, N, 51, -2, 2);
    fill(g, d, 52, 0.5, 1.5);
    fill(b, d, 53, -1, 1);
    fill(dy, N, 54, -1, 1);
    dj_layernorm_forward(NULL, rows, d, x, g, b, EPS, y, sm, si);
    dj_layernorm_backward(NULL, rows, d, x, dy, g, sm, si, dx, dg, db);

    double *xd = ref_to_double(x, N), *gd = ref_to_double(g, d), *bd = ref_to_double(b, d);
    double *r = ref_to_double(dy, N), *yb = dvec(N), *mb = dvec(rows), *vb = dvec(rows);
    double *fx = dvec(N), *fg = dvec(d), *fb = dvec(d);
    for (size_t i = 0; i < N; i++)
        CENTRAL_DIFF(fx[i], xd, i, h, ln_loss(rows, d, xd, gd, bd, r, yb, mb, vb));
    for (int i = 0; i < d; i++) {
        CENTRAL_DIFF(fg[i], gd, i, h, ln_loss(rows, d, xd, gd, bd, r, yb, mb, vb));
        CENTRAL_DIFF(fb[i], bd, i, h, ln_loss(rows, d, xd, gd, bd, r, yb, mb, vb));
    }
    double e = ref_rel_err(dx, fx, N, 1e-3);
    CHECK(e <= 1e-5, "ln dx vs finite differences (rows=%d d=%d): rel err %.3g", rows, d, e);
    e = ref_rel_err(dg, fg, d, 1e-3);
    CHECK(e <= 1e-5, "ln dgamma vs finite differences: rel err %.3g", e);
    e = ref_rel_err(db, fb, d, 1e-3);
    CHECK(e <= 1e-5, "ln dbeta vs finite differences: rel err %.3g", e);

    free(x), free(g), free(b), free(dy), free(y), free(sm), free(si), free(dx), free(dg), free(db);
    free(xd), free(gd), free(bd), free(r), free(yb), free(mb), free(vb), free(fx), free(fg);
    free(fb);
}

static void test_ln_null_and_inplace(void)
{
    enum { rows = 5, d = 43, N = rows * d };
    float x[N], y1[N], y2[N], ones[d], zeros[d], sm[rows], si[rows];
    float dy[N], dx1[N], dx2[N], dg1[d], db1[d], dg2[d], db2[d];
    fill(x, N, 61, -3, 5);
    fill(dy, N, 62, -1, 1);
    for (int i = 0; i < d; i++)
        ones[i] = 1, zeros[i] = 0;
    dj_layernorm_forward(NULL, rows, d, x, ones, zeros, EPS, y1, sm, si);
    dj_layernorm_forward(NULL, rows, d, x, NULL, NULL, EPS, y2, NULL, NULL);
    CHECK(!memcmp(y1, y2, sizeof y1), "ln: NULL gamma/beta differ from 1/0");
    dj_layernorm_forward(NULL, rows, d, x, ones, NULL, EPS, y2, NULL, NULL);
    CHECK(!memcmp(y1, y2, sizeof y1), "ln: NULL beta differs from 0");
    memcpy(y2, x, sizeof x);
    dj_layernorm_forward(NULL, rows, d, y2, ones, zeros, EPS, y2, NULL, NULL);
    CHECK(!memcmp(y1, y2, sizeof y1), "ln forward in place differs");

    dj_layernorm_backward(NULL, rows, d, x, dy, ones, sm, si, dx1, dg1, db1);
    dj_layernorm_backward(NULL, rows, d, x, dy, NULL, sm, si, dx2, NULL, NULL);
    CHECK(!memcmp(dx1, dx2, sizeof dx1), "ln backward: NULL gamma differs from 1");
    memcpy(dx2, dy, sizeof dy);
    dj_layernorm_backward(NULL, rows, d, x, dx2, ones, sm, si, dx2, dg2, db2);
    CHECK(!memcmp(dx1, dx2, sizeof dx1) && !memcmp(dg1, dg2, sizeof dg1) &&
              !memcmp(db1, db2, sizeof db1),
          "ln backward in place (dx == dy) differs");
}

/* ---- determinism over thread counts ---- */

typedef struct {
    float *y, *sm, *si, *rm, *rv, *ye, *dx, *dg, *db;
    float *ly, *lsm, *lsi, *ldx, *ldg, *ldb;
} outputs;

enum { DN = 8, DC = 12, DHW = 29 * 31, LROWS = 300, LD = 200 };

static void run_all(dj_pool *pool, const float *x, const float *dy, const float *g,
                    const float *b, const float *lx, const float *ldy, const float *lg,
                    const float *lb, outputs *o)
{
    for (int i = 0; i < DC; i++)
        o->rm[i] = 0.1f * i, o->rv[i] = 1;
    dj_batchnorm2d_forward_train(pool, DN, DC, DHW, x, g, b, EPS, 0.1f, o->rm, o->rv, o->y, o->sm,
                                 o->si);
    dj_batchnorm2d_forward_eval(pool, DN, DC, DHW, x, g, b, EPS, o->rm, o->rv, o->ye);
    dj_batchnorm2d_backward(pool, DN, DC, DHW, x, dy, g, o->sm, o->si, o->dx, o->dg, o->db);
    dj_layernorm_forward(pool, LROWS, LD, lx, lg, lb, EPS, o->ly, o->lsm, o->lsi);
    dj_layernorm_backward(pool, LROWS, LD, lx, ldy, lg, o->lsm, o->lsi, o->ldx, o->ldg, o->ldb);
}

static void outputs_alloc(outputs *o)
{
    const size_t N = (size_t)DN * DC * DHW, L = (size_t)LROWS * LD;
    o->y = fvec(N), o->ye = fvec(N), o->dx = fvec(N);
    o->sm = fvec(DC), o->si = fvec(DC), o->rm = fvec(DC), o->rv = fvec(DC), o->dg = fvec(DC),
    o->db = fvec(DC);
    o->ly = fvec(L), o->ldx = fvec(L), o->lsm = fvec(LROWS), o->lsi = fvec(LROWS);
    o->ldg = fvec(LD), o->ldb = fvec(LD);
}

static void outputs_free(outputs *o)
{
    free(o->y), free(o->ye), free(o->dx), free(o->sm), free(o->si), free(o->rm), free(o->rv);
    free(o->dg), free(o->db), free(o->ly), free(o->ldx), free(o->lsm), free(o->lsi);
    free(o->ldg), free(o->ldb);
}

static int same(const float *a, const float *b, size_t n)
{
    return memcmp(a, b, n * sizeof(float)) == 0;
}

static void test_threads(void)
{
    const size_t N = (size_t)DN * DC * DHW, L = (size_t)LROWS * LD;
    float *x = fvec(N), *dy = fvec(N), *g = fvec(DC), *b = fvec(DC);
    float *lx = fvec(L), *ldy = fvec(L), *lg = fvec(LD), *lb = fvec(LD);
    fill_nchw(x, DN, DC, DHW, 71, 4);
    fill(dy, N, 72, -1, 1);
    fill(g, DC, 73, 0.5, 1.5);
    fill(b, DC, 74, -1, 1);
    fill(lx, L, 75, -2, 3);
    fill(ldy, L, 76, -1, 1);
    fill(lg, LD, 77, 0.5, 1.5);
    fill(lb, LD, 78, -1, 1);

    outputs base;
    outputs_alloc(&base);
    run_all(NULL, x, dy, g, b, lx, ldy, lg, lb, &base);
    const int counts[3] = {1, 2, 3};
    for (int t = 0; t < 3; t++) {
        dj_pool *pool = NULL;
        if (dj_pool_create(counts[t], &pool) != DJ_OK) {
            CHECK(0, "dj_pool_create(%d) failed", counts[t]);
            continue;
        }
        outputs o;
        outputs_alloc(&o);
        run_all(pool, x, dy, g, b, lx, ldy, lg, lb, &o);
        int ok = same(o.y, base.y, N) && same(o.sm, base.sm, DC) && same(o.si, base.si, DC) &&
                 same(o.rm, base.rm, DC) && same(o.rv, base.rv, DC);
        CHECK(ok, "bn forward_train with %d threads differs from single-threaded", counts[t]);
        CHECK(same(o.ye, base.ye, N), "bn forward_eval with %d threads differs", counts[t]);
        ok = same(o.dx, base.dx, N) && same(o.dg, base.dg, DC) && same(o.db, base.db, DC);
        CHECK(ok, "bn backward with %d threads differs", counts[t]);
        ok = same(o.ly, base.ly, L) && same(o.lsm, base.lsm, LROWS) &&
             same(o.lsi, base.lsi, LROWS);
        CHECK(ok, "ln forward with %d threads differs", counts[t]);
        ok = same(o.ldx, base.ldx, L) && same(o.ldg, base.ldg, LD) && same(o.ldb, base.ldb, LD);
        CHECK(ok, "ln backward with %d threads differs", counts[t]);
        outputs_free(&o);
        dj_pool_destroy(pool);
    }
    outputs_free(&base);
    free(x), free(dy), free(g), free(b), free(lx), free(ldy), free(lg), free(lb);
}

/* Small planes are swept several channels at a time (norm.c, group_of):
 * every channel's outputs must be those of the same channel normalised
 * alone (a one-channel tensor, which no grouping touches), bit for bit -
 * forward (y with the fused ReLU, saved and running statistics) and
 * backward (dx through the ReLU mask, dgamma, dbeta); on a pool of 3
 * threads, whose ranges cut through groups. */
static void test_bn_channel_groups(int n, int c, int hw)
{
    const size_t N = (size_t)n * c * hw, P = (size_t)n * hw;
    float *x = fvec(N), *dy = fvec(N), *g = fvec(c), *b = fvec(c), *y = fvec(N), *dx = fvec(N);
    float *sm = fvec(c), *si = fvec(c), *rm = fvec(c), *rv = fvec(c), *dg = fvec(c), *db = fvec(c);
    float *x1 = fvec(P), *dy1 = fvec(P), *y1 = fvec(P), *dx1 = fvec(P);
    fill_nchw(x, n, c, hw, 81, 3);
    fill(dy, N, 82, -1, 1);
    fill(g, c, 83, 0.5, 1.5);
    fill(b, c, 84, -1, 1);
    for (int ch = 0; ch < c; ch++)
        rm[ch] = 0.01f * ch, rv[ch] = 1.0f + 0.02f * ch;
    dj_pool *pool = NULL;
    CHECK(dj_pool_create(3, &pool) == DJ_OK, "dj_pool_create(3) failed");
    dj_batchnorm2d_relu_forward_train(pool, n, c, hw, x, g, b, EPS, 0.1f, rm, rv, y, sm, si);
    dj_batchnorm2d_relu_backward(pool, n, c, hw, x, y, dy, g, sm, si, dx, dg, db);
    int bad = -1;
    for (int ch = 0; ch < c && bad < 0; ch++) {
        for (int i = 0; i < n; i++) {
            memcpy(x1 + (size_t)i * hw, x + ((size_t)i * c + ch) * hw, (size_t)hw * sizeof(float));
            memcpy(dy1 + (size_t)i * hw, dy + ((size_t)i * c + ch) * hw, (size_t)hw * sizeof(float));
        }
        float sm1, si1, rm1 = 0.01f * ch, rv1 = 1.0f + 0.02f * ch, dg1, db1;
        dj_batchnorm2d_relu_forward_train(NULL, n, 1, hw, x1, g + ch, b + ch, EPS, 0.1f, &rm1, &rv1,
                                          y1, &sm1, &si1);
        dj_batchnorm2d_relu_backward(NULL, n, 1, hw, x1, y1, dy1, g + ch, &sm1, &si1, dx1, &dg1,
                                     &db1);
        int ok = sm1 == sm[ch] && si1 == si[ch] && rm1 == rm[ch] && rv1 == rv[ch] &&
                 dg1 == dg[ch] && db1 == db[ch];
        for (int i = 0; i < n; i++) {
            ok = ok && same(y1 + (size_t)i * hw, y + ((size_t)i * c + ch) * hw, (size_t)hw);
            ok = ok && same(dx1 + (size_t)i * hw, dx + ((size_t)i * c + ch) * hw, (size_t)hw);
        }
        if (!ok)
            bad = ch;
    }
    CHECK(bad < 0, "bn %d x %d x %d: channel %d differs from the channel normalised alone", n, c,
          hw, bad);
    dj_pool_destroy(pool);
    free(x), free(dy), free(g), free(b), free(y), free(dx), free(sm), free(si), free(rm);
    free(rv), free(dg), free(db), free(x1), free(dy1), free(y1), free(dx1);
}

/* BatchNorm2d + ReLU fused against the two kernels in turn, bit for bit:
 * training and eval forward, backward (dx, dgamma, dbeta), with a channel
 * of NaN (the mask passes NaN), a channel with gamma 0 and beta -0 (outputs
 * of -0 and +0, which the ReLU keeps and its backward drops) and ordinary
 * ones; on a pool too. */
static void test_bn_relu_fused(int n, int c, int hw, dj_pool *pool)
{
    const size_t N = (size_t)n * c * hw;
    float *x = fvec(N), *dy = fvec(N), *g = fvec(c), *b = fvec(c);
    float *z = fvec(N), *y1 = fvec(N), *y2 = fvec(N), *dz = fvec(N), *dx1 = fvec(N), *dx2 = fvec(N);
    float *rm1 = fvec(c), *rv1 = fvec(c), *rm2 = fvec(c), *rv2 = fvec(c);
    float *sm1 = fvec(c), *si1 = fvec(c), *sm2 = fvec(c), *si2 = fvec(c);
    float *dg1 = fvec(c), *db1 = fvec(c), *dg2 = fvec(c), *db2 = fvec(c);
    fill_nchw(x, n, c, hw, 91, 2);
    fill(dy, N, 92, -1, 1);
    fill(g, c, 93, 0.5, 1.5);
    fill(b, c, 94, -0.5, 0.5);
    if (c > 2) {
        x[(size_t)2 * hw] = NAN; /* image 0, channel 2 */
        g[1] = 0.0f, b[1] = -0.0f;
    }
    for (int ch = 0; ch < c; ch++)
        rm1[ch] = rm2[ch] = 0.1f * ch, rv1[ch] = rv2[ch] = 1.0f + ch;

    dj_batchnorm2d_forward_train(pool, n, c, hw, x, g, b, EPS, 0.1f, rm1, rv1, z, sm1, si1);
    dj_relu_forward(pool, N, z, y1);
    dj_batchnorm2d_relu_forward_train(pool, n, c, hw, x, g, b, EPS, 0.1f, rm2, rv2, y2, sm2, si2);
    CHECK(same(y1, y2, N) && same(sm1, sm2, c) && same(si1, si2, c) && same(rm1, rm2, c) &&
              same(rv1, rv2, c),
          "bn+relu forward_train (%d, %d, %d) differs from bn then relu", n, c, hw);
    int zeros = 0, nans = 0;
    for (size_t i = 0; i < N; i++)
        zeros += y2[i] == 0.0f, nans += isnan(y2[i]);
    CHECK(c <= 2 || (zeros > 0 && nans > 0), "the special values did not occur (%d zeros, %d NaN)",
          zeros, nans);

    dj_relu_backward(pool, N, z, dy, dz);
    dj_batchnorm2d_backward(pool, n, c, hw, x, dz, g, sm1, si1, dx1, dg1, db1);
    dj_batchnorm2d_relu_backward(pool, n, c, hw, x, y2, dy, g, sm2, si2, dx2, dg2, db2);
    CHECK(same(dx1, dx2, N) && same(dg1, dg2, c) && same(db1, db2, c),
          "bn+relu backward (%d, %d, %d) differs from relu then bn backward", n, c, hw);
    /* in place: dx over dy */
    memcpy(dx2, dy, N * sizeof(float));
    dj_batchnorm2d_relu_backward(pool, n, c, hw, x, y2, dx2, g, sm2, si2, dx2, dg2, db2);
    CHECK(same(dx1, dx2, N), "bn+relu backward in place differs");

    dj_batchnorm2d_forward_eval(pool, n, c, hw, x, g, b, EPS, rm1, rv1, z);
    dj_relu_forward(pool, N, z, y1);
    dj_batchnorm2d_relu_forward_eval(pool, n, c, hw, x, g, b, EPS, rm1, rv1, y2);
    CHECK(same(y1, y2, N), "bn+relu forward_eval (%d, %d, %d) differs", n, c, hw);

    free(x), free(dy), free(g), free(b), free(z), free(y1), free(y2), free(dz), free(dx1),
        free(dx2);
    free(rm1), free(rv1), free(rm2), free(rv2), free(sm1), free(si1), free(sm2), free(si2);
    free(dg1), free(db1), free(dg2), free(db2);
}

static void test_bn_relu(void)
{
    test_bn_relu_fused(3, 5, 37, NULL);
    test_bn_relu_fused(2, 3, 1, NULL);
    dj_pool *pool = NULL;
    if (dj_pool_create(2, &pool) == DJ_OK) {
        test_bn_relu_fused(8, 6, 200, pool); /* large enough to split */
        dj_pool_destroy(pool);
    }
}

/* Each ISA's inner loops against the generic ones, bit for bit. */
static void test_isas(void)
{
    enum { NMAX = 1031 };
    static const size_t lens[] = {0, 1, 7, 8, 9, 15, 16, 17, 63, 200, 1031};
    float *x = fvec(NMAX), *dy = fvec(NMAX), *g = fvec(NMAX), *r = fvec(NMAX), *o = fvec(NMAX);
    float *xe = fvec(NMAX), *mk = fvec(NMAX);
    fill(x, NMAX, 81, -3, 5);
    fill(mk, NMAX, 84, -1, 1);
    mk[3] = 0.0f, mk[10] = -0.0f, mk[12] = NAN; /* the ReLU mask's edge cases */
    fill(dy, NMAX, 82, -1, 1);
    fill(g, NMAX, 83, 0.5, 1.5);
    x[100] = -2e-39f, dy[9] = 3e-40f; /* subnormal values */
    memcpy(xe, x, NMAX * sizeof(float));
    xe[5] = 1e30f, xe[13] = -3e25f; /* huge ones, for the elementwise loops only (in a sum
                                     * they would hide the other terms) */
    const dj__norm_fns *ref = &dj__norm_generic;
    int compared = 0;
    for (int isa = DJ_ISA_GENERIC + 1; isa < DJ_ISA_COUNT; isa++) {
        const dj__norm_fns *f = dj__norm_fns_for((dj_isa)isa);
        if (!dj_cpu_supports((dj_isa)isa) || f == ref)
            continue;
        compared++;
        const char *name = dj_isa_name((dj_isa)isa);
        for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++) {
            const size_t n = lens[li];
            double a1 = 0.25, a2 = 1, b1 = 0.25, b2 = 1;
            ref->sums(x, n, 1.375, &a1, &a2);
            f->sums(x, n, 1.375, &b1, &b2);
            CHECK(memcmp(&a1, &b1, sizeof a1) == 0 && memcmp(&a2, &b2, sizeof a2) == 0,
                  "%s sums, n = %zu: %.17g %.17g against generic %.17g %.17g", name, n, b1, b2,
                  a1, a2);
            for (int v = 0; v < 4; v++) { /* gamma or not, ReLU mask or not */
                const float *gm = v & 1 ? g : NULL, *mask = v & 2 ? mk : NULL;
                double sa[3] = {0, 0.5, -1}, sb[3] = {0, 0.5, -1};
                ref->bwd_sums(x, dy, mask, gm, n, 0.75f, sa);
                f->bwd_sums(x, dy, mask, gm, n, 0.75f, sb);
                CHECK(memcmp(sa, sb, sizeof sa) == 0, "%s bwd_sums (variant %d), n = %zu differ",
                      name, v, n);
                const dj__norm_coef c = {0.01, -0.2, 0.3, 1.7};
                ref->bwd_dx(xe, dy, mask, gm, r, n, 0.75f, &c);
                f->bwd_dx(xe, dy, mask, gm, o, n, 0.75f, &c);
                CHECK(same(r, o, n), "%s bwd_dx (variant %d), n = %zu differs", name, v, n);
            }
            for (int relu = 0; relu < 2; relu++) {
                ref->normalize(xe, r, n, 1.25f, 3e-8f, 0.7f, -0.1f, relu);
                memcpy(o, xe, n * sizeof(float));
                f->normalize(o, o, n, 1.25f, 3e-8f, 0.7f, -0.1f, relu); /* in place */
                CHECK(same(r, o, n), "%s normalize (relu %d), n = %zu differs", name, relu, n);
            }
        }
    }
    if (!compared)
        printf("test_norm: no ISA beyond generic on this CPU; cross-ISA check skipped\n");
    free(x), free(dy), free(g), free(r), free(o), free(xe), free(mk);
}

int main(void)
{
    test_bn_hand();
    test_bn_vs_ref(2, 3, 5, 0);
    test_bn_vs_ref(4, 5, 63, 3);
    test_bn_vs_ref(3, 7, 97, 1000); /* large means: the two-pass variance */
    test_bn_vs_ref(64, 6, 1, 2);    /* hw = 1 (BatchNorm after a 1x1 feature map) */
    test_bn_vs_ref(1, 2, 1, 0);     /* one value per channel */
    test_bn_finite_diff(3, 2, 5);
    test_bn_finite_diff(2, 3, 17);
    test_bn_degenerate();
    test_zero_sums(0);
    test_zero_sums(1000);
    test_bn_null_and_inplace();
    test_ln_hand();
    test_ln_vs_ref(3, 4, 0);
    test_ln_vs_ref(7, 37, 5);
    test_ln_vs_ref(5, 300, 1000); /* more columns than one reduction block */
    test_ln_vs_ref(4, 1, 0);      /* d = 1: y = beta */
    test_ln_finite_diff(3, 5);
    test_ln_finite_diff(4, 19);
    test_ln_null_and_inplace();
    test_threads();
    test_bn_channel_groups(40, 70, 49); /* groups of 20 channels, 7 x 7 planes */
    test_bn_channel_groups(36, 11, 3);  /* every channel in one group */
    test_bn_channel_groups(64, 5, 300); /* groups of 3 */
    test_bn_relu();
    test_isas();
    return th_done("test_norm");
}
