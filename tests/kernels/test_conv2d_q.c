/* test_conv2d_q.c - the convolutions on operands of any kind (float32,
 * bfloat16 bits, 8-bit codes through a table): dj_conv2d_forward_q,
 * dj_conv2d_backward_data_q, dj_conv2d_backward_weight_q.
 *
 * The contract (kernels.h) is exact, so every check is a memcmp against the
 * float32 kernel run on float arrays of the decoded values, on the same ISA
 * and thread count: every ISA this CPU runs, 1 and 2 threads, every pair of
 * operand kinds, strides 1 and 2, padding 0 and 1, kernels 1x1 and 3x3, with
 * and without bias (and dbias), shapes that take each path (stride 1:
 * implicit GEMM, or im2col for backward data when the input channels are
 * few and for every kernel when K is huge; other strides: the implicit GEMM
 * over phase planes for kernels of several taps, then again im2col), images
 * whose positions span several k blocks. Outputs start as NaN (they must be
 * overwritten); the workspace is exactly dj_conv2d_q_workspace's size (ASan
 * watches the rest); the 3x3 stride-1 cases again on the Winograd path.
 * The float32 entry points are checked against
 * dj_conv2d_*_q with float32 operands, and 2 threads against 1. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dojo/cfloat.h"
#include "harness.h"
#include "kernels/gemm_internal.h"
#include "kernels/winograd.h"
#include "opd_operand.h"

static float lut_a[256], lut_b[256];


static void fill_nan(float *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = NAN;
}

typedef struct {
    int n, c, h, w, oc, k, s, p;
} conv_case;

static const conv_case cases[] = {
    /* stride 1, implicit GEMM (backward data implicit when c fills the tile) */
    {2, 6, 7, 6, 5, 3, 1, 1},  {1, 12, 5, 9, 7, 3, 1, 0}, {2, 6, 6, 5, 4, 1, 1, 0},
    {1, 13, 5, 5, 3, 1, 1, 1}, {2, 6, 24, 25, 4, 3, 1, 1},
    /* stride 1 with few input channels: backward data on im2col */
    {2, 1, 9, 8, 8, 3, 1, 1},  {3, 2, 6, 7, 3, 3, 1, 0}, {1, 3, 20, 20, 4, 3, 1, 1},
    /* more images than tiles in a row (Winograd: image lanes; 8 + 1 images,
     * two chunks of 8 + 2) */
    {9, 3, 7, 7, 4, 3, 1, 1},  {10, 5, 9, 11, 6, 3, 1, 1},
    /* stride 2: the implicit GEMM over phase planes (im2col for 1 x 1) */
    {2, 3, 9, 8, 7, 3, 2, 1},  {1, 5, 10, 11, 6, 3, 2, 0}, {2, 4, 6, 7, 5, 1, 2, 0},
    {3, 2, 5, 5, 9, 1, 2, 1},  {1, 7, 40, 37, 4, 3, 2, 1},
    /* stride 3; an 8-bit plane too large to decode whole (> 4096 values) */
    {2, 3, 11, 10, 4, 3, 3, 1}, {1, 2, 70, 65, 3, 3, 2, 1},
    /* K = 9225 > 8192: stride 1 and 2 on the im2col path */
    {1, 1025, 3, 3, 2, 3, 1, 0}, {1, 1025, 5, 4, 2, 3, 2, 1},
};

typedef struct {
    dj_opd_kind a, b; /* forward (x, w), backward data (dy, w), backward weight (x, dy) */
} kinds;

static void check_case(const conv_case *cc, kinds kk, dj_pool **pools, int npools)
{
    dj_conv2d_dims d;
    if (dj_conv2d_dims_init(&d, cc->n, cc->c, cc->h, cc->w, cc->oc, cc->k, cc->k, cc->s, cc->s,
                            cc->p, cc->p) != DJ_OK) {
        CHECK(0, "dims_init rejected a case");
        return;
    }
    const size_t xl = (size_t)d.n * d.c * d.h * d.w, yl = (size_t)d.n * d.oc * d.oh * d.ow;
    const size_t wl = (size_t)d.oc * d.c * d.kh * d.kw;
    /* operands of the kinds under test: x and dy as a, w as b (and dy as b
     * for backward weight, through a second copy) */
    operand x, w, dy, dy_b;
    make_operand(&x, kk.a, xl, lut_a);
    make_operand(&w, kk.b, wl, lut_b);
    make_operand(&dy, kk.a, yl, lut_a);
    make_operand(&dy_b, kk.b, yl, lut_b);
    float *bias = malloc((size_t)d.oc * sizeof *bias);
    for (int i = 0; i < d.oc; i++)
        bias[i] = frand();
    float *yq = malloc(yl * 4), *yf = malloc(yl * 4), *y1 = malloc(yl * 4);
    float *dxq = malloc(xl * 4), *dxf = malloc(xl * 4), *dx1 = malloc(xl * 4);
    float *dwq = malloc(wl * 4), *dwf = malloc(wl * 4), *dw1 = malloc(wl * 4);
    float *dbq = malloc((size_t)d.oc * 4), *dbf = malloc((size_t)d.oc * 4);
    float *db1 = malloc((size_t)d.oc * 4);
    char what[160];
    snprintf(what, sizeof what, "case n=%d c=%d %dx%d oc=%d k=%d s=%d p=%d kinds %s,%s", d.n, d.c,
             d.h, d.w, d.oc, cc->k, cc->s, cc->p, kind_name(kk.a), kind_name(kk.b));
    for (int isa = DJ_ISA_GENERIC; isa < DJ_ISA_COUNT; isa++) {
        if (!dj_cpu_supports((dj_isa)isa))
            continue;
        const char *in = dj_isa_name((dj_isa)isa);
        for (int t = 0; t < npools; t++) {
            dj_pool *pool = pools[t];
            const int T = dj_pool_threads(pool);
            const size_t wsn = dj_conv2d_q_workspace(&d, T);
            CHECK(wsn >= dj__conv2d_workspace_isa((dj_isa)isa, &d, T), "workspace");
            float *ws = malloc(wsn * sizeof *ws);
            for (int use_bias = 0; use_bias < 2; use_bias++) {
                const float *b = use_bias ? bias : NULL;
                fill_nan(yq, yl);
                fill_nan(yf, yl);
                dj__conv2d_forward_q_isa((dj_isa)isa, pool, &d, x.opd, w.opd, b, yq, ws);
                dj__conv2d_forward_isa((dj_isa)isa, pool, &d, x.dec, w.dec, b, yf, ws);
                CHECK(memcmp(yq, yf, yl * 4) == 0, "forward %s T=%d bias=%d %s: differs", in, T,
                      use_bias, what);

                fill_nan(dwq, wl);
                fill_nan(dwf, wl);
                fill_nan(dbq, (size_t)d.oc);
                fill_nan(dbf, (size_t)d.oc);
                dj__conv2d_backward_weight_q_isa((dj_isa)isa, pool, &d, x.opd, dy_b.opd, dwq,
                                                 use_bias ? dbq : NULL, ws);
                dj__conv2d_backward_weight_isa((dj_isa)isa, pool, &d, x.dec, dy_b.dec, dwf,
                                               use_bias ? dbf : NULL, ws);
                CHECK(memcmp(dwq, dwf, wl * 4) == 0, "backward_weight %s T=%d %s: dw differs", in,
                      T, what);
                if (use_bias)
                    CHECK(memcmp(dbq, dbf, (size_t)d.oc * 4) == 0,
                          "backward_weight %s T=%d %s: dbias differs", in, T, what);
                else
                    CHECK(isnan(dbq[0]), "dbias written though NULL was passed");
            }
            fill_nan(dxq, xl);
            fill_nan(dxf, xl);
            dj__conv2d_backward_data_q_isa((dj_isa)isa, pool, &d, dy.opd, w.opd, dxq, ws);
            dj__conv2d_backward_data_isa((dj_isa)isa, pool, &d, dy.dec, w.dec, dxf, ws);
            CHECK(memcmp(dxq, dxf, xl * 4) == 0, "backward_data %s T=%d %s: differs", in, T, what);
            free(ws);
            /* the same bits on every thread count (bias on: the last run) */
            if (t == 0) {
                memcpy(y1, yq, yl * 4);
                memcpy(dx1, dxq, xl * 4);
                memcpy(dw1, dwq, wl * 4);
                memcpy(db1, dbq, (size_t)d.oc * 4);
            } else {
                CHECK(memcmp(y1, yq, yl * 4) == 0 && memcmp(dx1, dxq, xl * 4) == 0 &&
                          memcmp(dw1, dwq, wl * 4) == 0 && memcmp(db1, dbq, (size_t)d.oc * 4) == 0,
                      "%s %s: T=%d differs from 1 thread", in, what, T);
            }
        }
    }
    free_operand(&x);
    free_operand(&w);
    free_operand(&dy);
    free_operand(&dy_b);
    free(bias);
    free(yq);
    free(yf);
    free(y1);
    free(dxq);
    free(dxf);
    free(dx1);
    free(dwq);
    free(dwf);
    free(dw1);
    free(dbq);
    free(dbf);
    free(db1);
}

/* The public entry points: float32 operands through the _q kernels give
 * the float32 kernels' bits; the _q workspace is the float32 one. */
static void test_public(dj_pool *pool)
{
    dj_conv2d_dims d;
    dj_conv2d_dims_init(&d, 2, 5, 9, 8, 6, 3, 3, 1, 1, 1, 1);
    const int T = dj_pool_threads(pool);
    const size_t xl = (size_t)d.n * d.c * d.h * d.w, yl = (size_t)d.n * d.oc * d.oh * d.ow;
    const size_t wl = (size_t)d.oc * d.c * d.kh * d.kw;
    operand x, w, dy, xq, wq;
    make_operand(&x, DJ_OPD_F32, xl, NULL);
    make_operand(&w, DJ_OPD_F32, wl, NULL);
    make_operand(&dy, DJ_OPD_F32, yl, NULL);
    make_operand(&xq, DJ_OPD_U8, xl, lut_a);
    make_operand(&wq, DJ_OPD_BF16, wl, NULL);
    const size_t wsn = dj_conv2d_q_workspace(&d, T);
    CHECK(wsn == dj_conv2d_workspace(&d, T), "dj_conv2d_q_workspace != dj_conv2d_workspace");
    float *ws = malloc(wsn * sizeof *ws);
    float *a = malloc(yl * 4), *b = malloc(yl * 4), *da = malloc(xl * 4), *dbx = malloc(xl * 4);
    float *ga = malloc(wl * 4), *gb = malloc(wl * 4), *ba = malloc((size_t)d.oc * 4);
    float *bb = malloc((size_t)d.oc * 4);
    dj_conv2d_forward(pool, &d, x.dec, w.dec, NULL, a, ws);
    dj_conv2d_forward_q(pool, &d, x.opd, w.opd, NULL, b, ws);
    CHECK(memcmp(a, b, yl * 4) == 0, "dj_conv2d_forward_q(f32) differs");
    dj_conv2d_backward_data(pool, &d, dy.dec, w.dec, da, ws);
    dj_conv2d_backward_data_q(pool, &d, dy.opd, w.opd, dbx, ws);
    CHECK(memcmp(da, dbx, xl * 4) == 0, "dj_conv2d_backward_data_q(f32) differs");
    dj_conv2d_backward_weight(pool, &d, x.dec, dy.dec, ga, ba, ws);
    dj_conv2d_backward_weight_q(pool, &d, x.opd, dy.opd, gb, bb, ws);
    CHECK(memcmp(ga, gb, wl * 4) == 0 && memcmp(ba, bb, (size_t)d.oc * 4) == 0,
          "dj_conv2d_backward_weight_q(f32) differs");
    /* and quantised operands through the public (best-ISA) entry points */
    dj_conv2d_forward(pool, &d, xq.dec, wq.dec, NULL, a, ws);
    dj_conv2d_forward_q(pool, &d, xq.opd, wq.opd, NULL, b, ws);
    CHECK(memcmp(a, b, yl * 4) == 0, "dj_conv2d_forward_q(u8, bf16) differs");
    dj_conv2d_backward_weight(pool, &d, xq.dec, dy.dec, ga, ba, ws);
    dj_conv2d_backward_weight_q(pool, &d, xq.opd, dy.opd, gb, bb, ws);
    CHECK(memcmp(ga, gb, wl * 4) == 0 && memcmp(ba, bb, (size_t)d.oc * 4) == 0,
          "dj_conv2d_backward_weight_q(u8, f32) differs");
    dj_conv2d_backward_data(pool, &d, dy.dec, wq.dec, da, ws);
    dj_conv2d_backward_data_q(pool, &d, dy.opd, wq.opd, dbx, ws);
    CHECK(memcmp(da, dbx, xl * 4) == 0, "dj_conv2d_backward_data_q(f32, bf16) differs");
    free_operand(&x);
    free_operand(&w);
    free_operand(&dy);
    free_operand(&xq);
    free_operand(&wq);
    free(ws);
    free(a);
    free(b);
    free(da);
    free(dbx);
    free(ga);
    free(gb);
    free(ba);
    free(bb);
}

int main(void)
{
    dj_cf_decode_lut8(DJ_FMT_CF8_143, 9, 0, lut_a);
    dj_cf_decode_lut8(DJ_FMT_E5M2, 15, 2, lut_b); /* Inf/NaN codes kept out of the data */
    dj_pool *p2 = NULL;
    CHECK(dj_pool_create(2, &p2) == DJ_OK, "pool of 2");
    dj_pool *pools[] = {NULL, p2};
    /* Strided cases on both of their paths: the implicit GEMM over phase
     * planes (the default), then im2col. */
    const long strided = dj__conv2d_strided_calls;
    for (int path = 1; path >= 0; path--) {
        dj__conv2d_strided_implicit = path;
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
            for (int a = DJ_OPD_F32; a <= DJ_OPD_U8; a++)
                for (int b = DJ_OPD_F32; b <= DJ_OPD_U8; b++) {
                    /* the huge-K case: the diagonal only */
                    if ((cases[i].c > 100 && a != b) || (path == 0 && cases[i].s == 1))
                        continue;
                    check_case(&cases[i], (kinds){(dj_opd_kind)a, (dj_opd_kind)b}, pools, 2);
                }
        if (path == 1)
            CHECK(dj__conv2d_strided_calls > strided, "the strided implicit GEMM did not run");
    }
    dj__conv2d_strided_implicit = 1;
    /* The Winograd path (every 3x3 stride-1 case): decoding happens in its
     * split copies and weight transform, so the bits still equal the float32
     * kernels' on the decoded values. */
    dj__conv2d_winograd = 2;
    const long before = dj__conv2d_winograd_calls;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        if (cases[i].k != 3 || cases[i].s != 1 || cases[i].c > 100)
            continue;
        for (int a = DJ_OPD_F32; a <= DJ_OPD_U8; a++)
            for (int b = DJ_OPD_F32; b <= DJ_OPD_U8; b++)
                check_case(&cases[i], (kinds){(dj_opd_kind)a, (dj_opd_kind)b}, pools, 2);
    }
    CHECK(dj__conv2d_winograd_calls > before, "the Winograd path did not run");
    dj__conv2d_winograd = 1;
    test_public(NULL);
    test_public(p2);
    dj_pool_destroy(p2);
    return th_done("test_conv2d_q");
}
