/* test_quant.c - the precision policies' quantisation: bias (and OCP scale)
 * selection on crafted tensors, delayed scaling and its adaptation after an
 * overflow, the saturation/flush counts, stochastic rounding of gradients
 * (unbiased, reproducible from the seed, independent of the thread count),
 * the scaled-bias equivalence of the OCP formats, a quantised Linear
 * layer computing exactly what float32 computes on the decoded operands,
 * and a residual block's shortcut taking its body's input codes with the
 * same results as encoding them itself. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dojo/cfloat.h"
#include "dojo/kernels.h"
#include "dojo/nn.h"
#include "dojo/rng.h"
#include "harness.h"
#include "nn/nn_internal.h"

static float uniform(uint64_t seed, uint64_t i)
{
    return (float)(dj_rng_u32(seed, i, 0) >> 8) * (1.0f / 16777216.0f); /* [0, 1) */
}

/* x[i] in (-amax, amax) with x[0] = amax exactly. */
static void crafted(float *x, size_t n, float amax, uint64_t seed)
{
    for (size_t i = 0; i < n; i++)
        x[i] = (2.0f * uniform(seed, i) - 1.0f) * amax;
    x[0] = amax;
}

/* The chosen bias is the largest without overflow: amax encodes without the
 * O flag at it and with it one bias finer. */
static void test_bias_selection(void)
{
    const dj_format fmts[] = {DJ_FMT_CF8_143, DJ_FMT_CF8_152, DJ_FMT_E4M3, DJ_FMT_E5M2};
    float x[512];
    uint8_t codes[512];
    for (int fi = 0; fi < 4; fi++) {
        const dj_format f = fmts[fi];
        const int scaled = dj_format_desc_of(f)->bias_min == dj_format_desc_of(f)->bias_max;
        for (int trial = 0; trial < 200; trial++) {
            /* amax over 2^-20 .. 2^12, including exact powers of two and
             * values just below the overflow thresholds */
            float amax = ldexpf(1.0f + uniform(7, (uint64_t)trial), (trial % 33) - 20);
            if (trial % 5 == 0)
                amax = ldexpf(1.0f, (trial % 33) - 20);
            dj_quant q;
            dj_quant_init(&q, f, DJ_ROUND_NEAREST, scaled, 1, 1, 0);
            crafted(x, 512, amax, (uint64_t)trial);
            dj_quant_run(&q, NULL, x, 512, codes, 0, 1);
            const int b = q.bias;
            unsigned fl = 0;
            dj_cf_encode(f, b, amax, (dj_round){DJ_ROUND_NEAREST, 0}, 0, &fl);
            CHECK(!(fl & DJ_FLAG_OVERFLOW) && q.overflow == 0,
                  "%s amax %a: bias %d overflows (flags %u, count %lld)", dj_format_desc_of(f)->name,
                  amax, b, fl, (long long)q.overflow);
            if (b < 63) {
                fl = 0;
                dj_cf_encode(f, b + 1, amax, (dj_round){DJ_ROUND_NEAREST, 0}, 0, &fl);
                if (scaled) /* the OCP scale is chosen to fit max itself: not above it */
                    CHECK(ldexp((double)amax, 0) > dj_format_max(f, b + 1),
                          "%s amax %a: bias %d is not the largest that fits", dj_format_desc_of(f)->name,
                          amax, b);
                else
                    CHECK(fl & DJ_FLAG_OVERFLOW, "%s amax %a: bias %d is not the largest that fits",
                          dj_format_desc_of(f)->name, amax, b);
            }
            /* decoded values are within half an ulp of the inputs for normals */
            const float *lut = q.lut;
            const double ulp = ldexp(dj_format_max(f, b), -dj_format_desc_of(f)->man_bits);
            int bad = 0;
            for (int i = 0; i < 512; i++)
                bad += fabs((double)lut[codes[i]] - x[i]) > ulp;
            CHECK(bad == 0, "%s: %d values decode far from their inputs", dj_format_desc_of(f)->name,
                  bad);
        }
    }
    /* margin 2 leaves two binades of headroom */
    dj_quant q0, q2;
    dj_quant_init(&q0, DJ_FMT_CF8_143, DJ_ROUND_NEAREST, 0, 1, 1, 0);
    dj_quant_init(&q2, DJ_FMT_CF8_143, DJ_ROUND_NEAREST, 0, 1, 1, 2);
    CHECK(dj_quant_bias_for(&q2, 1.0f) + 2 == dj_quant_bias_for(&q0, 1.0f),
          "margin 2 lowers the bias by 2: %d vs %d", dj_quant_bias_for(&q2, 1.0f),
          dj_quant_bias_for(&q0, 1.0f));
}

/* Delayed scaling: the bias comes from the history; a jump in amax
 * saturates (counted) and the next step adapts. Flushes are counted too. */
static void test_delayed_scaling(void)
{
    float x[256];
    uint8_t codes[256];
    dj_quant q;
    dj_quant_init(&q, DJ_FMT_CF8_143, DJ_ROUND_NEAREST, 0, 0, 4, 0);
    crafted(x, 256, 1.0f, 1);
    dj_quant_run(&q, NULL, x, 256, codes, 0, 1);
    const int b1 = q.bias;
    CHECK(q.overflow == 0, "first step scales by its own amax");
    crafted(x, 256, 64.0f, 2); /* amax jumps 64x */
    dj_quant_run(&q, NULL, x, 256, codes, 0, 1);
    CHECK(q.bias == b1 && q.overflow > 0, "second step uses the history: bias %d (%d), %lld saturated",
          q.bias, b1, (long long)q.overflow);
    const int64_t over = q.overflow;
    dj_quant_run(&q, NULL, x, 256, codes, 0, 1);
    CHECK(q.bias == b1 - 6 && q.overflow == over, "third step adapted: bias %d, overflow %lld",
          q.bias, (long long)q.overflow);
    CHECK(q.bias_min == b1 - 6 && q.bias_max == b1, "bias range recorded");
    /* tiny values flush to zero and are counted */
    x[1] = 1e-30f;
    x[2] = -1e-30f;
    const int64_t under = q.underflow;
    dj_quant_run(&q, NULL, x, 256, codes, 0, 1);
    CHECK(q.underflow >= under + 2, "flushed elements counted (%lld)", (long long)q.underflow);
    /* evaluation (record 0) changes no statistics */
    const int64_t calls = q.calls;
    dj_quant_run(&q, NULL, x, 256, codes, 0, 0);
    CHECK(q.calls == calls, "record 0 keeps the statistics");
    dj_quant_reset_history(&q);
    CHECK(q.hcount == 0, "history emptied");
}

/* Gradients: stochastic rounding, unbiased, same bits for a seed whatever
 * the thread count, different bits for another seed. */
static void test_stochastic_gradients(void)
{
    enum { N = 1 << 16 };
    float *x = malloc(N * sizeof *x);
    uint8_t *c1 = malloc(N), *c2 = malloc(N), *c3 = malloc(N);
    for (size_t i = 0; i < N; i++)
        x[i] = (i & 1 ? -1.0f : 1.0f) * 0.01234f; /* between two CFloat8_1_5_2 values */
    dj_pool *pool = NULL;
    CHECK(dj_pool_create(2, &pool) == DJ_OK, "pool");
    dj_quant q1, q2, q3;
    dj_quant_init(&q1, DJ_FMT_CF8_152, DJ_ROUND_STOCHASTIC, 0, 1, 1, 0);
    q2 = q1;
    q3 = q1;
    dj_opd o = dj_quant_run(&q1, NULL, x, N, c1, 42, 1);
    dj_quant_run(&q2, pool, x, N, c2, 42, 1);
    dj_quant_run(&q3, pool, x, N, c3, 43, 1);
    CHECK(memcmp(c1, c2, N) == 0, "same seed: same codes on 1 and 2 threads");
    CHECK(memcmp(c1, c3, N) != 0, "another seed: other codes");
    double sum = 0;
    int values = 0;
    float seen[2] = {0, 0};
    for (size_t i = 0; i < N; i += 2) {
        const float v = o.lut[c1[i]];
        sum += v;
        if (v != seen[0] && v != seen[1] && values < 2)
            seen[values++] = v;
        else if (v != seen[0] && v != seen[1])
            values++;
    }
    CHECK(values == 2, "only the two neighbours appear (%d values)", values);
    const double mean = sum / (N / 2);
    CHECK(fabs(mean - 0.01234) < 0.01234 * 0.01, "unbiased: mean %.6f vs 0.01234", mean);
    dj_pool_destroy(pool);
    free(x);
    free(c1);
    free(c2);
    free(c3);
}

/* Encoding x * 2^s at the OCP format's bias is encoding x at bias + s. */
static void test_scaled_bias(void)
{
    const dj_format fmts[] = {DJ_FMT_E4M3, DJ_FMT_E5M2};
    int bad = 0, n = 0;
    for (int fi = 0; fi < 2; fi++) {
        const dj_format f = fmts[fi];
        const int b0 = dj_format_desc_of(f)->bias_default;
        for (int s = -b0; s <= 63 - b0; s += 3)
            for (uint64_t i = 0; i < 300; i++) {
                const float x = ldexpf(2.0f * uniform(s + 100, i) - 1.0f, (int)(i % 40) - 20);
                for (int mode = 0; mode < 2; mode++) {
                    const dj_round r = {(dj_rounding)mode, 9};
                    unsigned f1 = 0, f2 = 0;
                    const uint32_t a = dj_cf_encode(f, b0, ldexpf(x, s), r, i, &f1);
                    const uint32_t b = dj_cf_encode(f, b0 + s, x, r, i, &f2);
                    bad += a != b;
                    n++;
                }
                unsigned fl = 0;
                const uint32_t code = (uint32_t)(dj_rng_u32(1, i, 0) & 0xff);
                const float d1 = dj_cf_decode(f, b0 + s, code, &fl);
                const float d2 = ldexpf(dj_cf_decode(f, b0, code, &fl), -s);
                bad += !(d1 == d2 || (isnan(d1) && isnan(d2)));
            }
    }
    CHECK(bad == 0, "scaled bias: %d of %d conversions differ", bad, n);
    CHECK(dj_format_scaled_bias_ok(DJ_FMT_E4M3, 40) && !dj_format_bias_ok(DJ_FMT_E4M3, 40) &&
              !dj_format_scaled_bias_ok(DJ_FMT_E4M3, 64) && !dj_format_scaled_bias_ok(DJ_FMT_UHP, 30),
          "effective biases only for the fixed-bias 8-bit formats");
}

/* A quantised Linear: the output is float32 GEMM on the decoded operands. */
static void test_quantised_linear(void)
{
    const char *spec = "{\"name\":\"q\",\"input\":[40],\"layers\":["
                       "{\"type\":\"Linear\",\"out_features\":24},{\"type\":\"ReLU\"},"
                       "{\"type\":\"Linear\",\"out_features\":10}]}";
    const dj_precision fmts[] = {DJ_PREC_BF16, DJ_PREC_CFP8, DJ_PREC_OCP8};
    for (int k = 0; k < 3; k++) {
        dj_model *m = NULL;
        char err[512];
        CHECK(dj_model_parse(spec, strlen(spec), "q.json", &m, err, sizeof err) == DJ_OK, "%s", err);
        if (!m)
            return;
        dj_model_init(m, 3);
        dj_precision_config pc;
        dj_precision_config_defaults(&pc);
        pc.precision = fmts[k];
        snprintf(pc.keep_fp32, sizeof pc.keep_fp32, "2"); /* the last layer only */
        CHECK(dj_model_set_precision(m, &pc) == DJ_OK, "set precision");
        CHECK(dj_model_prepare(m, 8, 1) == DJ_OK, "prepare");
        float x[8 * 40];
        for (int i = 0; i < 8 * 40; i++)
            x[i] = 2.0f * uniform(5, (uint64_t)i) - 1.0f;
        dj_model_forward(m, NULL, x, 8, 1, 1, 0);
        dj_layer *L = &m->top.layers[0];
        CHECK(L->q != NULL && m->top.layers[2].q == NULL, "layer 0 quantised, layer 2 kept");
        if (!L->q) {
            dj_model_free(m);
            continue;
        }
        /* decode the operands the layer used and redo the product */
        float w[24 * 40], xd[8 * 40], y[8 * 24];
        for (int i = 0; i < 24 * 40; i++)
            w[i] = L->q->wo.kind == DJ_OPD_BF16 ? dj_bf16_to_f32(((const uint16_t *)L->q->wc)[i])
                                                : L->q->wo.lut[((const uint8_t *)L->q->wc)[i]];
        for (int i = 0; i < 8 * 40; i++)
            xd[i] = L->q->xo.kind == DJ_OPD_BF16 ? dj_bf16_to_f32(((const uint16_t *)L->q->xc)[i])
                                                 : L->q->xo.lut[((const uint8_t *)L->q->xc)[i]];
        const float *b = dj_tensor_f32(&m->params[L->p_bias].value);
        for (int i = 0; i < 8; i++)
            memcpy(y + i * 24, b, 24 * sizeof(float));
        dj_sgemm(NULL, 0, 1, 8, 24, 40, 1.0f, xd, 40, w, 40, 1.0f, y, 24);
        CHECK(memcmp(y, L->y, sizeof y) == 0, "%s: quantised Linear == float32 GEMM on decoded operands",
              dj_precision_name(fmts[k]));
        int differs = 0;
        const float *wf = dj_tensor_f32(&m->params[L->p_weight].value);
        for (int i = 0; i < 24 * 40; i++)
            differs += w[i] != wf[i];
        CHECK(differs > 0, "%s: the weights were really rounded", dj_precision_name(fmts[k]));
        /* a keep_fp32 name that is no layer is an error naming it */
        snprintf(pc.keep_fp32, sizeof pc.keep_fp32, "first,7");
        CHECK(dj_model_set_precision(m, &pc) == DJ_ERR_ARG && strstr(dj_model_error(m), "\"7\""),
              "unknown keep_fp32 layer: %s", dj_model_error(m));
        dj_model_free(m);
    }
}

/* A residual block whose body and shortcut start with quantised Conv2d
 * layers: the shortcut takes the body's input codes and quantiser state
 * (dj_layer.x_from) and allocates no code buffer of its own; three training
 * steps give the same logits, gradients and quantisation statistics, bit
 * for bit, as a model whose shortcut encodes its input itself. */
static void test_shared_block_input(void)
{
    const char *spec =
        "{\"name\":\"r\",\"input\":[4,8,8],\"layers\":[{\"type\":\"Residual\",\"body\":["
        "{\"type\":\"Conv2d\",\"out_channels\":6,\"kernel_size\":3,\"stride\":2,\"padding\":1},"
        "{\"type\":\"BatchNorm2d\"},{\"type\":\"ReLU\"},"
        "{\"type\":\"Conv2d\",\"out_channels\":6,\"kernel_size\":3,\"padding\":1},"
        "{\"type\":\"BatchNorm2d\"}],\"shortcut\":["
        "{\"type\":\"Conv2d\",\"out_channels\":6,\"kernel_size\":1,\"stride\":2},"
        "{\"type\":\"BatchNorm2d\"}]},{\"type\":\"ReLU\"},{\"type\":\"Flatten\"},"
        "{\"type\":\"Linear\",\"out_features\":10}]}";
    const dj_precision fmts[] = {DJ_PREC_CFP8, DJ_PREC_BF16, DJ_PREC_OCP8};
    enum { N = 8, IN = 4 * 8 * 8 };
    for (int k = 0; k < 3; k++) {
        dj_model *m[2] = {NULL, NULL};
        char err[512];
        for (int v = 0; v < 2; v++) {
            CHECK(dj_model_parse(spec, strlen(spec), "r.json", &m[v], err, sizeof err) == DJ_OK,
                  "%s", err);
            if (!m[v])
                return;
            dj_model_init(m[v], 11);
            dj_precision_config pc;
            dj_precision_config_defaults(&pc);
            pc.precision = fmts[k];
            snprintf(pc.keep_fp32, sizeof pc.keep_fp32, "none");
            CHECK(dj_model_set_precision(m[v], &pc) == DJ_OK, "set precision");
            dj_layer *res = &m[v]->top.layers[0];
            CHECK(res->shortcut.layers[0].x_from == &res->body.layers[0],
                  "%s: the shortcut takes the body's input codes", dj_precision_name(fmts[k]));
            if (v == 1) /* the reference: its shortcut encodes its input itself */
                res->shortcut.layers[0].x_from = NULL;
            CHECK(dj_model_prepare(m[v], N, 1) == DJ_OK, "prepare");
        }
        CHECK(m[0]->top.layers[0].shortcut.layers[0].q->xc == NULL &&
                  m[1]->top.layers[0].shortcut.layers[0].q->xc != NULL,
              "%s: no code buffer for the shared input", dj_precision_name(fmts[k]));
        float x[N * IN], dl[N * 10];
        int same_out = 1, same_grad = 1;
        for (int step = 0; step < 3; step++) {
            for (int i = 0; i < N * IN; i++)
                x[i] = 2.0f * uniform(20 + (uint64_t)step, (uint64_t)i) - 1.0f;
            for (int i = 0; i < N * 10; i++)
                dl[i] = uniform(30 + (uint64_t)step, (uint64_t)i) - 0.5f;
            const float *o0 = dj_model_forward(m[0], NULL, x, N, 1, 5, (uint64_t)step);
            const float *o1 = dj_model_forward(m[1], NULL, x, N, 1, 5, (uint64_t)step);
            same_out &= o0 && o1 && memcmp(o0, o1, N * 10 * sizeof(float)) == 0;
            dj_model_backward(m[0], NULL, dl);
            dj_model_backward(m[1], NULL, dl);
            for (size_t i = 0; i < m[0]->nparams; i++) {
                const dj_tensor *g0 = &m[0]->params[i].grad, *g1 = &m[1]->params[i].grad;
                if (g0->data)
                    same_grad &= memcmp(g0->data, g1->data, g0->numel * sizeof(float)) == 0;
            }
        }
        CHECK(same_out && same_grad,
              "%s: shared input codes change the logits (%d) or gradients (%d)",
              dj_precision_name(fmts[k]), !same_out, !same_grad);
        dj_quant_stat s0[16], s1[16];
        const size_t n0 = dj_model_quant_stats(m[0], s0, 16, 0);
        const size_t n1 = dj_model_quant_stats(m[1], s1, 16, 0);
        int same_stats = n0 == n1 && n0 > 0;
        for (size_t i = 0; same_stats && i < n0; i++)
            same_stats = !strcmp(s0[i].name, s1[i].name) && s0[i].bias_min == s1[i].bias_min &&
                         s0[i].bias_max == s1[i].bias_max && s0[i].amax == s1[i].amax &&
                         s0[i].overflow == s1[i].overflow && s0[i].underflow == s1[i].underflow &&
                         s0[i].elements == s1[i].elements && s0[i].steps == s1[i].steps;
        CHECK(same_stats, "%s: the shortcut's input statistics differ", dj_precision_name(fmts[k]));
        dj_model_free(m[0]);
        dj_model_free(m[1]);
    }
}

int main(void)
{
    test_bias_selection();
    test_delayed_scaling();
    test_stochastic_gradients();
    test_scaled_bias();
    test_quantised_linear();
    test_shared_block_input();
    return th_done("test_quant");
}
