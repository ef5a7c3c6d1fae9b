/* test_spec.c - model specs: the shipped models parse into the expected
 * layers, parameter names, shapes and counts; every malformed spec we could
 * think of is refused with the right status and a message that names the
 * file, the layer path, the layer type and the field; the size limits stop
 * hostile specs; dj_model_prepare plans (and refuses) buffers; a forward
 * and backward pass on each shipped model gives finite numbers. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dojo/nn.h"
#include "harness.h"
#include "nn/nn_internal.h"

#define SRC "models/x.json"

/* ---- helpers -------------------------------------------------------------- */

static dj_model *parse_ok(const char *spec, int line)
{
    dj_model *m = NULL;
    char err[512];
    dj_status st = dj_model_parse(spec, strlen(spec), SRC, &m, err, sizeof err);
    CHECK(st == DJ_OK && m, "(line %d) spec refused: %s", line, err);
    return st == DJ_OK ? m : NULL;
}

/* The spec must be refused with status `want` and a message that starts
 * with the source and contains each of the given substrings. */
static void refuse(const char *spec, dj_status want, const char *s1, const char *s2,
                   const char *s3, int line)
{
    dj_model *m = (dj_model *)1;
    char err[512];
    memset(err, 'x', sizeof err);
    dj_status st = dj_model_parse(spec, strlen(spec), SRC, &m, err, sizeof err);
    CHECK(st == want, "(line %d) status %d (%s), expected %d; message: %s", line, (int)st,
          dj_status_str(st), (int)want, st ? err : "(accepted)");
    CHECK(m == NULL, "(line %d) model not NULL on error", line);
    if (st == DJ_OK) {
        dj_model_free(m);
        return;
    }
    CHECK(strncmp(err, SRC ": ", strlen(SRC) + 2) == 0, "(line %d) message lacks the source: %s",
          line, err);
    const char *subs[3] = {s1, s2, s3};
    for (int i = 0; i < 3; i++)
        CHECK(!subs[i] || strstr(err, subs[i]), "(line %d) message lacks '%s': %s", line,
              subs[i], err);
    CHECK(!strchr(err, '\n'), "(line %d) message is not one line: %s", line, err);
}

#define REFUSE(spec, st, s1, s2, s3) refuse(spec, st, s1, s2, s3, __LINE__)

/* A spec with input [c, h, w] (as text) and the given layers. */
static const char *spec_in(const char *input, const char *layers)
{
    static char buf[8192];
    snprintf(buf, sizeof buf, "{\"input\": %s, \"layers\": %s}", input, layers);
    return buf;
}

static const char *spec(const char *layers)
{
    return spec_in("[1, 8, 8]", layers);
}

static const dj_param *find(dj_model *m, const char *name)
{
    size_t n;
    dj_param *p = dj_model_params(m, &n);
    for (size_t i = 0; i < n; i++)
        if (strcmp(p[i].name, name) == 0)
            return &p[i];
    return NULL;
}

typedef struct {
    const char *name;
    int ndim;
    int64_t shape[4];
    int is_buffer, no_decay;
} want_param;

static void check_params(dj_model *m, const want_param *w, size_t nw, size_t trainable,
                         const char *what)
{
    size_t n;
    dj_param *p = dj_model_params(m, &n);
    CHECK(n == nw, "%s: %zu parameters, expected %zu", what, n, nw);
    for (size_t i = 0; i < n && i < nw; i++) {
        CHECK(strcmp(p[i].name, w[i].name) == 0, "%s: parameter %zu is '%s', expected '%s'",
              what, i, p[i].name, w[i].name);
        int same = p[i].value.ndim == w[i].ndim;
        for (int d = 0; same && d < w[i].ndim; d++)
            same = p[i].value.shape[d] == w[i].shape[d];
        char s[64];
        CHECK(same, "%s: %s has shape %s", what, p[i].name,
              dj_tensor_shape_str(&p[i].value, s, sizeof s));
        CHECK(p[i].is_buffer == w[i].is_buffer && p[i].no_decay == w[i].no_decay,
              "%s: %s flags buffer %d no_decay %d", what, p[i].name, p[i].is_buffer,
              p[i].no_decay);
        int is_count = strstr(p[i].name, "num_batches_tracked") != NULL;
        CHECK(p[i].value.dtype == (is_count ? DJ_DT_I64 : DJ_DT_F32) && p[i].value.data,
              "%s: %s dtype %s", what, p[i].name, dj_dtype_name(p[i].value.dtype));
        CHECK(p[i].is_buffer ? p[i].grad.data == NULL
                             : (p[i].grad.data && p[i].grad.numel == p[i].value.numel &&
                                p[i].grad.dtype == DJ_DT_F32),
              "%s: %s grad", what, p[i].name);
    }
    CHECK(dj_model_param_count(m) == trainable, "%s: %zu trainable, expected %zu", what,
          dj_model_param_count(m), trainable);
}

/* The MFLOP figure the description states matches what the model computes. */
static void check_description_flops(dj_model *m, const char *path)
{
    dj_json_doc *doc;
    dj_json_error e;
    if (dj_json_parse_file(path, NULL, &doc, &e)) {
        CHECK(0, "%s", e.message);
        return;
    }
    const char *d = dj_json_string(dj_json_get(dj_json_root(doc), "description"), NULL);
    CHECK(d != NULL, "%s has no description", path);
    const char *p = d ? strstr(d, " MFLOP") : NULL;
    CHECK(p != NULL, "%s: description does not state MFLOP", path);
    if (p) {
        while (p > d && (p[-1] == '.' || (p[-1] >= '0' && p[-1] <= '9')))
            p--;
        double stated = atof(p), actual = (double)dj_model_flops(m) / 1e6;
        CHECK(fabs(stated - actual) <= 0.051, "%s: description says %.2f MFLOP, model has %.3f",
              path, stated, actual);
    }
    dj_json_free(doc);
}

/* A forward and backward pass with random input: finite logits and grads;
 * eval forward too. */
static void smoke_run(dj_model *m, const char *what)
{
    int n = 3;
    CHECK(dj_model_prepare(m, n, 2) == DJ_OK, "%s: prepare: %s", what, dj_model_error(m));
    dj_pool *pool = NULL;
    CHECK(dj_pool_create(2, &pool) == DJ_OK, "pool");
    size_t in = dj_model_input_size(m), out = dj_model_output_size(m);
    float *x = malloc(n * in * sizeof(float)), *dl = malloc(n * out * sizeof(float));
    for (size_t i = 0; i < n * in; i++)
        x[i] = (float)((i * 2654435761u) % 1000) / 500.0f - 1.0f;
    for (size_t i = 0; i < n * out; i++)
        dl[i] = (float)((i * 40503u) % 100) / 50.0f - 1.0f;
    dj_model_init(m, 1);
    const float *y = dj_model_forward(m, pool, x, n, 1, 7, 0);
    CHECK(y != NULL, "%s: forward returned NULL", what);
    int finite = y != NULL;
    for (size_t i = 0; y && i < n * out; i++)
        finite &= isfinite(y[i]) != 0;
    CHECK(finite, "%s: non-finite logits", what);
    dj_model_backward(m, pool, dl);
    size_t np;
    dj_param *p = dj_model_params(m, &np);
    for (size_t k = 0; k < np; k++) {
        if (p[k].is_buffer)
            continue;
        int ok = 1;
        double sum = 0;
        const float *g = dj_tensor_f32(&p[k].grad);
        for (size_t i = 0; i < p[k].grad.numel; i++) {
            ok &= isfinite(g[i]) != 0;
            sum += fabs(g[i]);
        }
        CHECK(ok && sum > 0, "%s: grad of %s finite %d, sum %g", what, p[k].name, ok, sum);
    }
    const dj_param *nbt = find(m, "1.num_batches_tracked");
    if (nbt)
        CHECK(*(int64_t *)nbt->value.data == 1, "%s: num_batches_tracked %lld", what,
              (long long)*(int64_t *)nbt->value.data);
    y = dj_model_forward(m, pool, x, 2, 0, 7, 0);
    finite = y != NULL;
    for (size_t i = 0; y && i < 2 * out; i++)
        finite &= isfinite(y[i]) != 0;
    CHECK(finite, "%s: eval forward", what);
    /* Misuse: more samples than prepared, more threads than prepared. */
    CHECK(dj_model_forward(m, pool, x, n + 1, 1, 7, 0) == NULL, "%s: n > max_batch", what);
    CHECK(dj_model_forward(m, pool, x, 0, 1, 7, 0) == NULL, "%s: n = 0", what);
    dj_pool *big = NULL;
    CHECK(dj_pool_create(3, &big) == DJ_OK, "pool");
    CHECK(dj_model_forward(m, big, x, 1, 1, 7, 0) == NULL, "%s: more threads than prepared", what);
    dj_pool_destroy(big);
    dj_pool_destroy(pool);
    free(x);
    free(dl);
}

/* ---- the shipped models ------------------------------------------------------ */

static void test_fmnist_mlp(void)
{
    dj_model *m = NULL;
    char err[512];
    dj_status st = dj_model_load("models/fmnist-mlp.json", &m, err, sizeof err);
    CHECK(st == DJ_OK, "fmnist-mlp: %s", err);
    if (st)
        return;
    static const want_param w[] = {
        {"1.weight", 2, {256, 784}, 0, 0},
        {"1.bias", 1, {256}, 0, 1},
        {"3.weight", 2, {10, 256}, 0, 0},
        {"3.bias", 1, {10}, 0, 1},
    };
    check_params(m, w, sizeof w / sizeof w[0], 203530, "fmnist-mlp");
    CHECK(strcmp(dj_model_name(m), "fmnist-mlp") == 0, "name %s", dj_model_name(m));
    CHECK(dj_model_output_size(m) == 10 && dj_model_input_size(m) == 784, "sizes");
    check_description_flops(m, "models/fmnist-mlp.json");
    smoke_run(m, "fmnist-mlp");
    dj_model_free(m);
}

static void test_fmnist_cnn(void)
{
    dj_model *m = NULL;
    char err[512];
    dj_status st = dj_model_load("models/fmnist-cnn.json", &m, err, sizeof err);
    CHECK(st == DJ_OK, "fmnist-cnn: %s", err);
    if (st)
        return;
    static const want_param w[] = {
        {"0.weight", 4, {32, 1, 3, 3}, 0, 0},  {"0.bias", 1, {32}, 0, 1},
        {"2.weight", 4, {64, 32, 3, 3}, 0, 0}, {"2.bias", 1, {64}, 0, 1},
        {"7.weight", 2, {128, 9216}, 0, 0},    {"7.bias", 1, {128}, 0, 1},
        {"10.weight", 2, {10, 128}, 0, 0},     {"10.bias", 1, {10}, 0, 1},
    };
    check_params(m, w, sizeof w / sizeof w[0], 1199882, "fmnist-cnn");
    int64_t shape[3];
    CHECK(dj_model_input_shape(m, shape) == 3 && shape[0] == 1 && shape[1] == 28 &&
              shape[2] == 28,
          "input shape");
    CHECK(dj_model_norm_mean(m)[0] == 0.2860f && dj_model_norm_std(m)[0] == 0.3530f,
          "normalize %g %g", dj_model_norm_mean(m)[0], dj_model_norm_std(m)[0]);
    /* the layer sequence of the PyTorch example */
    static const dj_layer_kind kinds[] = {
        DJ_L_CONV2D,  DJ_L_RELU,   DJ_L_CONV2D, DJ_L_RELU,    DJ_L_MAXPOOL2D, DJ_L_DROPOUT,
        DJ_L_FLATTEN, DJ_L_LINEAR, DJ_L_RELU,   DJ_L_DROPOUT, DJ_L_LINEAR};
    CHECK(m->top.count == 11, "fmnist-cnn has %d layers", m->top.count);
    for (int i = 0; i < 11 && i < m->top.count; i++)
        CHECK(m->top.layers[i].kind == kinds[i], "layer %d is %s", i,
              dj_layer_kind_name(m->top.layers[i].kind));
    if (m->top.count == 11) {
        CHECK(m->top.layers[5].p == 0.25f && m->top.layers[9].p == 0.5f, "dropout p");
        const dj_layer *f = &m->top.layers[6];
        CHECK(f->in.ndim == 3 && f->in.d[0] == 64 && f->in.d[1] == 12 && f->out.ndim == 1 &&
                  f->out.d[0] == 9216,
              "flatten shapes");
    }
    const dj_json_value *t = dj_model_train_spec(m);
    CHECK(t && dj_json_get(t, "epochs") && dj_json_get(t, "lr") && dj_json_get(t, "optimizer"),
          "train spec");
    check_description_flops(m, "models/fmnist-cnn.json");
    char sum[4096];
    dj_model_summary(m, sum, sizeof sum);
    CHECK(strstr(sum, "Conv2d") && strstr(sum, "[64, 12, 12]") && strstr(sum, "1199882") &&
              strstr(sum, "18496"),
          "summary:\n%s", sum);
    char tiny[16];
    dj_model_summary(m, tiny, sizeof tiny);
    CHECK(strlen(tiny) == 15, "summary truncates safely");
    smoke_run(m, "fmnist-cnn");
    dj_model_free(m);
}

static void test_fmnist_resnet(void)
{
    dj_model *m = NULL;
    char err[512];
    dj_status st = dj_model_load("models/fmnist-resnet.json", &m, err, sizeof err);
    CHECK(st == DJ_OK, "fmnist-resnet: %s", err);
    if (st)
        return;
    size_t n;
    dj_param *p = dj_model_params(m, &n);
    /* stem and the first BatchNorm with all its buffers */
    static const want_param head[] = {
        {"0.weight", 4, {32, 1, 3, 3}, 0, 0},   {"1.weight", 1, {32}, 0, 1},
        {"1.bias", 1, {32}, 0, 1},              {"1.running_mean", 1, {32}, 1, 1},
        {"1.running_var", 1, {32}, 1, 1},       {"1.num_batches_tracked", 0, {0}, 1, 1},
        {"3.body.0.weight", 4, {32, 32, 3, 3}, 0, 0},
    };
    for (size_t i = 0; i < sizeof head / sizeof head[0] && i < n; i++) {
        CHECK(strcmp(p[i].name, head[i].name) == 0, "resnet param %zu: %s", i, p[i].name);
        CHECK(p[i].value.ndim == head[i].ndim && p[i].is_buffer == head[i].is_buffer,
              "resnet %s ndim %d", p[i].name, p[i].value.ndim);
    }
    const char *names[] = {"5.body.0.weight", "5.body.1.running_var", "5.body.3.weight",
                           "5.shortcut.0.weight", "5.shortcut.1.num_batches_tracked",
                           "7.shortcut.1.bias", "11.weight", "11.bias"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        CHECK(find(m, names[i]) != NULL, "resnet lacks %s", names[i]);
    const dj_param *sc = find(m, "5.shortcut.0.weight");
    CHECK(sc && sc->value.shape[0] == 64 && sc->value.shape[1] == 32 && sc->value.shape[2] == 1,
          "shortcut conv shape");
    CHECK(find(m, "3.shortcut.0.weight") == NULL, "block 3 has no shortcut");
    CHECK(find(m, "0.bias") == NULL, "bias=false convs have no bias");
    const dj_param *fc = find(m, "11.weight");
    CHECK(fc && fc->value.shape[0] == 10 && fc->value.shape[1] == 128, "fc shape");
    CHECK(dj_model_flops(m) < 80000000, "resnet has %llu FLOPs",
          (unsigned long long)dj_model_flops(m));
    /* trainable scalars add up */
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        if (!p[i].is_buffer)
            total += p[i].value.numel;
    CHECK(total == dj_model_param_count(m), "param count %zu vs %zu", total,
          dj_model_param_count(m));
    check_description_flops(m, "models/fmnist-resnet.json");
    char sum[8192];
    dj_model_summary(m, sum, sizeof sum);
    CHECK(strstr(sum, "5.shortcut.0") && strstr(sum, "Residual") && strstr(sum, "[128, 7, 7]") && strstr(sum, "308074"),
          "summary:\n%s", sum);
    smoke_run(m, "fmnist-resnet");
    dj_model_free(m);
}

/* ---- well-formed specs ------------------------------------------------------------- */

static void test_all_layer_types(void)
{
    const char *s =
        "{\"name\": \"every\", \"input\": [3, 10, 9],\n"
        " \"normalize\": {\"mean\": [0.1, 0.2, 0.3], \"std\": [1, 2, 3]},\n"
        " \"layers\": [\n"
        "  {\"type\": \"Conv2d\", \"out_channels\": 4, \"kernel_size\": [3, 2], \"stride\": [2, 1],"
        "   \"padding\": [1, 0], \"in_channels\": 3, \"dilation\": 1, \"groups\": 1,"
        "   \"padding_mode\": \"zeros\"},\n"
        "  {\"type\": \"BatchNorm2d\", \"eps\": 1e-3, \"momentum\": 0.2, \"num_features\": 4},\n"
        "  {\"type\": \"ReLU\", \"inplace\": true},\n"
        "  {\"type\": \"GELU\", \"approximate\": \"none\"},\n"
        "  {\"type\": \"SiLU\"},\n"
        "  {\"type\": \"MaxPool2d\", \"kernel_size\": 3, \"stride\": 1, \"padding\": 1},\n"
        "  {\"type\": \"AvgPool2d\", \"kernel_size\": 2},\n"
        "  {\"type\": \"LayerNorm\", \"normalized_shape\": [4, 2, 4]},\n"
        "  {\"type\": \"Residual\", \"body\": [{\"type\": \"Conv2d\", \"out_channels\": 4,"
        "   \"kernel_size\": 3, \"padding\": 1}]},\n"
        "  {\"type\": \"Dropout\", \"p\": 0.1},\n"
        "  {\"type\": \"AdaptiveAvgPool2d\", \"output_size\": [1, 1]},\n"
        "  {\"type\": \"Flatten\", \"start_dim\": 1, \"end_dim\": -1},\n"
        "  {\"type\": \"LayerNorm\", \"normalized_shape\": 4},\n"
        "  {\"type\": \"Linear\", \"out_features\": 5, \"bias\": false, \"in_features\": 4}\n"
        " ]}";
    dj_model *m = parse_ok(s, __LINE__);
    if (!m)
        return;
    /* conv: (10 + 2 - 3) / 2 + 1 = 5, (9 - 2) / 1 + 1 = 8; maxpool keeps 5x8; avgpool 2x4 */
    const dj_layer *L = m->top.layers;
    CHECK(L[0].out.d[0] == 4 && L[0].out.d[1] == 5 && L[0].out.d[2] == 8, "conv out");
    CHECK(L[5].out.d[1] == 5 && L[5].out.d[2] == 8, "maxpool out");
    CHECK(L[6].out.d[1] == 2 && L[6].out.d[2] == 4, "avgpool out");
    CHECK(L[10].out.ndim == 3 && L[10].out.d[1] == 1, "adaptive out");
    CHECK(L[11].out.ndim == 1 && L[11].out.d[0] == 4, "flatten out");
    CHECK(dj_model_output_size(m) == 5, "output size");
    CHECK(dj_model_norm_std(m)[2] == 3.0f, "std");
    CHECK(find(m, "7.weight") && find(m, "7.weight")->value.ndim == 3 &&
              find(m, "7.weight")->value.shape[2] == 4,
          "LayerNorm weight has the per-sample shape");
    CHECK(find(m, "8.body.0.weight") && find(m, "8.body.0.bias"), "residual params");
    CHECK(find(m, "13.weight") && !find(m, "13.bias"), "linear without bias");
    CHECK(find(m, "13.weight")->no_decay == 0 && find(m, "7.bias")->no_decay == 1 &&
              find(m, "1.weight")->no_decay == 1,
          "no_decay flags");
    CHECK(dj_model_train_spec(m) == NULL, "no train spec");
    /* default name when the spec has none: the file name */
    dj_model_free(m);
    m = parse_ok(spec("[{\"type\": \"Flatten\"}]"), __LINE__);
    if (m)
        CHECK(strcmp(dj_model_name(m), "x") == 0, "default name %s", dj_model_name(m));
    dj_model_free(m);
    /* flat input: Linear directly, LayerNorm, activations, Dropout */
    m = parse_ok(spec_in("[20]", "[{\"type\": \"Linear\", \"out_features\": 7}, {\"type\": "
                                 "\"LayerNorm\"}, {\"type\": \"GELU\"}, {\"type\": \"Dropout\"}, "
                                 "{\"type\": \"Residual\", \"body\": [{\"type\": \"Linear\", "
                                 "\"out_features\": 3}], \"shortcut\": [{\"type\": \"Linear\", "
                                 "\"out_features\": 3, \"bias\": false}]}]"),
                 __LINE__);
    if (m) {
        CHECK(dj_model_output_size(m) == 3 && m->top.layers[3].p == 0.5f, "flat model");
        int64_t sh[3];
        CHECK(dj_model_input_shape(m, sh) == 1 && sh[0] == 20, "flat input shape");
        CHECK(find(m, "4.shortcut.0.weight") && !find(m, "4.shortcut.0.bias"), "flat residual");
    }
    dj_model_free(m);
    /* empty shortcut list = identity */
    m = parse_ok(spec("[{\"type\": \"Residual\", \"body\": [{\"type\": \"ReLU\"}], "
                      "\"shortcut\": []}]"),
                 __LINE__);
    if (m)
        CHECK(m->top.layers[0].has_shortcut == 0, "empty shortcut");
    dj_model_free(m);
}

/* ---- malformed specs ------------------------------------------------------------------ */

static void test_top_level_errors(void)
{
    REFUSE("{", DJ_ERR_PARSE, "line 1, column 2", NULL, NULL);
    REFUSE("", DJ_ERR_PARSE, "line 1", NULL, NULL);
    REFUSE("[]", DJ_ERR_PARSE, "expected a model object", NULL, NULL);
    REFUSE("{\"input\": [1, 8, 8]}", DJ_ERR_PARSE, "missing field \"layers\"", NULL, NULL);
    REFUSE("{\"input\": [1, 8, 8], \"layers\": []}", DJ_ERR_PARSE, "field \"layers\"",
           "non-empty", NULL);
    REFUSE("{\"input\": [1, 8, 8], \"layers\": {}}", DJ_ERR_PARSE, "field \"layers\"",
           "got an object", NULL);
    REFUSE("{\"layers\": [{\"type\": \"ReLU\"}]}", DJ_ERR_PARSE, "missing field \"input\"", NULL,
           NULL);
    REFUSE(spec_in("[1, 28]", "[{\"type\": \"ReLU\"}]"), DJ_ERR_PARSE, "field \"input\"",
           "[channels, height, width] or [features]", "got [1, 28]");
    REFUSE(spec_in("[0, 28, 28]", "[{\"type\": \"ReLU\"}]"), DJ_ERR_RANGE, "field \"input\"",
           "[0, 28, 28]", NULL);
    REFUSE(spec_in("[1, 28, \"28\"]", "[{\"type\": \"ReLU\"}]"), DJ_ERR_PARSE, "field \"input\"",
           "positive integers", NULL);
    REFUSE(spec_in("\"1x28x28\"", "[{\"type\": \"ReLU\"}]"), DJ_ERR_PARSE, "field \"input\"",
           "got \"1x28x28\"", NULL);
    REFUSE(spec_in("[1, 1.5, 28]", "[{\"type\": \"ReLU\"}]"), DJ_ERR_PARSE, "field \"input\"",
           NULL, NULL);
    REFUSE("{\"input\": [1, 8, 8], \"layer\": [], \"layers\": [{\"type\": \"ReLU\"}]}",
           DJ_ERR_PARSE, "unknown field \"layer\"", "takes name, description", NULL);
    REFUSE("{\"name\": 3, \"input\": [1, 8, 8], \"layers\": [{\"type\": \"ReLU\"}]}",
           DJ_ERR_PARSE, "field \"name\"", "expected a string", NULL);
    REFUSE("{\"name\": \"\", \"input\": [1, 8, 8], \"layers\": [{\"type\": \"ReLU\"}]}",
           DJ_ERR_PARSE, "field \"name\"", NULL, NULL);
    REFUSE("{\"train\": [], \"input\": [1, 8, 8], \"layers\": [{\"type\": \"ReLU\"}]}",
           DJ_ERR_PARSE, "field \"train\"", "expected an object", NULL);
    REFUSE("{\"description\": 1, \"input\": [1, 8, 8], \"layers\": [{\"type\": \"ReLU\"}]}",
           DJ_ERR_PARSE, "field \"description\"", NULL, NULL);
    /* found by fuzz_spec: keys and names with control characters stay one line */
    REFUSE("{\"in\\nput\": [1, 7, 7], \"layers\": [{\"type\": \"ReLU\"}]}", DJ_ERR_PARSE,
           "unknown field \"in?put\"", NULL, NULL);
    REFUSE(spec("[{\"type\": \"ReLU\", \"a\\u0000b\": 1}]"), DJ_ERR_PARSE,
           "unknown field \"a?b\"", NULL, NULL);
    REFUSE("{\"name\": \"a\\nb\", \"input\": [1, 8, 8], \"layers\": [{\"type\": \"ReLU\"}]}",
           DJ_ERR_PARSE, "field \"name\": expected a name of 1 to 100 printable characters",
           NULL, NULL);
    /* position of the offending value */
    REFUSE("{\n  \"input\": [1, 8, 8],\n  \"layers\": [\n    {\"type\": \"ReLU\"},\n"
           "    {\"type\": \"Conv2d\", \"out_channels\": 0, \"kernel_size\": 3}\n  ]\n}",
           DJ_ERR_RANGE, "layers[1] (Conv2d): field \"out_channels\"", "(line 5, column 40)",
           "got 0");
}

static void test_normalize_errors(void)
{
    const char *L = "\"layers\": [{\"type\": \"ReLU\"}]";
    char s[512];
    snprintf(s, sizeof s, "{\"input\": [2, 8, 8], \"normalize\": {\"mean\": [0.5], \"std\": [1, 1]}, %s}", L);
    REFUSE(s, DJ_ERR_PARSE, "field \"normalize.mean\"", "2 numbers (one per input channel)",
           "got [0.5]");
    snprintf(s, sizeof s, "{\"input\": [1, 8, 8], \"normalize\": {\"mean\": [0.5], \"std\": [0]}, %s}", L);
    REFUSE(s, DJ_ERR_RANGE, "field \"normalize.std\"", "positive", NULL);
    snprintf(s, sizeof s, "{\"input\": [1, 8, 8], \"normalize\": {\"mean\": [0.5], \"std\": [-1]}, %s}", L);
    REFUSE(s, DJ_ERR_RANGE, "field \"normalize.std\"", "got -1", NULL);
    snprintf(s, sizeof s, "{\"input\": [1, 8, 8], \"normalize\": {\"mean\": [0.5], \"std\": [1e-50]}, %s}", L);
    REFUSE(s, DJ_ERR_RANGE, "field \"normalize.std\"", NULL, NULL);
    snprintf(s, sizeof s, "{\"input\": [1, 8, 8], \"normalize\": {\"mean\": [1e300], \"std\": [1]}, %s}", L);
    REFUSE(s, DJ_ERR_RANGE, "field \"normalize.mean\"", "float32", NULL);
    snprintf(s, sizeof s, "{\"input\": [1, 8, 8], \"normalize\": {\"mean\": 0.5, \"std\": [1]}, %s}", L);
    REFUSE(s, DJ_ERR_PARSE, "field \"normalize.mean\"", "got 0.5", NULL);
    snprintf(s, sizeof s, "{\"input\": [1, 8, 8], \"normalize\": {\"mean\": [\"a\"], \"std\": [1]}, %s}", L);
    REFUSE(s, DJ_ERR_PARSE, "field \"normalize.mean\"", "expected numbers", NULL);
    snprintf(s, sizeof s, "{\"input\": [1, 8, 8], \"normalize\": {\"mean\": [0.5]}, %s}", L);
    REFUSE(s, DJ_ERR_PARSE, "missing field \"std\"", NULL, NULL);
    snprintf(s, sizeof s, "{\"input\": [1, 8, 8], \"normalize\": {\"mean\": [0.5], \"std\": [1], \"sd\": 1}, %s}", L);
    REFUSE(s, DJ_ERR_PARSE, "unknown field \"sd\"", NULL, NULL);
    snprintf(s, sizeof s, "{\"input\": [1, 8, 8], \"normalize\": [0.5, 1], %s}", L);
    REFUSE(s, DJ_ERR_PARSE, "field \"normalize\"", NULL, NULL);
}

static void test_layer_errors(void)
{
    /* structure and types */
    REFUSE(spec("[3]"), DJ_ERR_PARSE, "layers[0]: expected a layer object", "got 3", NULL);
    REFUSE(spec("[{\"kind\": \"ReLU\"}]"), DJ_ERR_PARSE, "layers[0]: missing field \"type\"",
           NULL, NULL);
    REFUSE(spec("[{\"type\": 5}]"), DJ_ERR_PARSE, "layers[0]", "field \"type\"", NULL);
    REFUSE(spec("[{\"type\": \"ReLU\"}, {\"type\": \"Conv2D\", \"out_channels\": 3}]"),
           DJ_ERR_PARSE, "layers[1]: unknown layer type \"Conv2D\"", "did you mean \"Conv2d\"",
           "Conv2d, Linear, BatchNorm2d, LayerNorm, ReLU, GELU, SiLU, MaxPool2d, AvgPool2d, "
           "AdaptiveAvgPool2d, Flatten, Dropout, Residual");
    REFUSE(spec("[{\"type\": \"Transformer\"}]"), DJ_ERR_PARSE, "unknown layer type \"Transformer\"",
           "known types: Conv2d", NULL);
    REFUSE(spec("[{\"type\": \"ReLU\", \"slope\": 1}]"), DJ_ERR_PARSE,
           "layers[0] (ReLU): unknown field \"slope\"", "ReLU takes inplace", NULL);
    REFUSE(spec("[{\"type\": \"Flatten\", \"x\": 1}]"), DJ_ERR_PARSE,
           "layers[0] (Flatten): unknown field \"x\"", NULL, NULL);

    /* Conv2d */
    REFUSE(spec("[{\"type\": \"Conv2d\", \"kernel_size\": 3}]"), DJ_ERR_PARSE,
           "layers[0] (Conv2d): missing field \"out_channels\"", NULL, NULL);
    REFUSE(spec("[{\"type\": \"Conv2d\", \"out_channels\": 0, \"kernel_size\": 3}]"), DJ_ERR_RANGE,
           "layers[0] (Conv2d): field \"out_channels\": expected a positive integer, got 0", NULL,
           NULL);
    REFUSE(spec("[{\"type\": \"Conv2d\", \"out_channels\": -4, \"kernel_size\": 3}]"), DJ_ERR_RANGE,
           "field \"out_channels\"", "got -4", NULL);
    REFUSE(spec("[{\"type\": \"Conv2d\", \"out_channels\": 2.5, \"kernel_size\": 3}]"), DJ_ERR_PARSE,
           "field \"out_channels\"", "got 2.5", NULL);
    REFUSE(spec("[{\"type\": \"Conv2d\", \"out_channels\": 99999999999, \"kernel_size\": 3}]"),
           DJ_ERR_RANGE, "field \"out_channels\"", "too large", NULL);
    REFUSE(spec("[{\"type\": \"Conv2d\", \"out_channels\": 4}]"), DJ_ERR_PARSE,
           "(Conv2d): missing field \"kernel_size\"", NULL, NULL);
    REFUSE(spec("[{\"type\": \"Conv2d\", \"out_channels\": 4, \"kernel_size\": \"3\"}]"),
           DJ_ERR_PARSE,
           "layers[0] (Conv2d): field \"kernel_size\": expected a positive integer or [h, w]",
           "got \"3\"", NULL);
    REFUSE(spec("[{\"type\": \"Conv2d\", \"out_channels\": 4, \"kernel_size\": [3]}]"),
           DJ_ERR_PARSE, "field \"kernel_size\": expected a positive integer or [h, w]", NULL, NULL);
    REFUSE(spec("[{\"type\": \"Conv2d\", \"out_channels\": 4, \"kernel_size\": [3, 3, 3]}]"),
           DJ_ERR_PARSE, "field \"kernel_size\"", NULL, NULL);
    REFUSE(spec("[{\"type\": \"Conv2d\", \"out_channels\": 4, \"kernel_size\": [3, 0]}]"),
           DJ_ERR_RANGE, "field \"kernel_size\"", "got [3, 0]", NULL);
    REFUSE(spec("[{\"type\": \"Conv2d\", \"out_channels\": 4, \"kernel_size\": 3, \"stride\": 0}]"),
           DJ_ERR_RANGE, "field \"stride\": expected a positive integer or [h, w], got 0", NULL,
           NULL);
    REFUSE(spec("[{\"type\": \"Conv2d\", \"out_channels\": 4, \"kernel_size\": 3, \"padding\": -1}]"),
           DJ_ERR_RANGE, "field \"padding\": expected a non-negative integer or [h, w]", NULL, NULL);
    REFUSE(spec("[{\"type\": \"Conv2d\", \"out_channels\": 4, \"kernel_size\": 3, \"padding\": \"same\"}]"),
           DJ_ERR_PARSE, "field \"padding\"", NULL, NULL);
    REFUSE(spec("[{\"type\": \"Conv2d\", \"out_channels\": 4, \"kernel_size\": 9}]"), DJ_ERR_ARG,
           "layers[0] (Conv2d): field \"kernel_size\"",
           "kernel 9x9 is larger than the padded input 8x8", "[1, 8, 8]");
    REFUSE(spec("[{\"type\": \"Conv2d\", \"out_channels\": 4, \"kernel_size\": [3, 11], \"padding\": 1}]"),
           DJ_ERR_ARG, "kernel 3x11 is larger than the padded input 10x10", NULL, NULL);
    REFUSE(spec("[{\"type\": \"Conv2d\", \"out_channels\": 4, \"kernel_size\": 3, \"bias\": 1}]"),
           DJ_ERR_PARSE, "field \"bias\": expected true or false, got 1", NULL, NULL);
    REFUSE(spec("[{\"type\": \"Conv2d\", \"out_channels\": 4, \"kernal_size\": 3}]"), DJ_ERR_PARSE,
           "(Conv2d): unknown field \"kernal_size\"", "out_channels, kernel_size", NULL);
    REFUSE(spec("[{\"type\": \"Conv2d\", \"out_channels\": 4, \"kernel_size\": 3, \"groups\": 2}]"),
           DJ_ERR_UNSUPPORTED, "field \"groups\": 2 is not supported", NULL, NULL);
    REFUSE(spec("[{\"type\": \"Conv2d\", \"out_channels\": 4, \"kernel_size\": 3, \"dilation\": [1, 2]}]"),
           DJ_ERR_UNSUPPORTED, "field \"dilation\"", NULL, NULL);
    REFUSE(spec("[{\"type\": \"Conv2d\", \"out_channels\": 4, \"kernel_size\": 3, \"padding_mode\": \"reflect\"}]"),
           DJ_ERR_UNSUPPORTED, "field \"padding_mode\"", NULL, NULL);
    REFUSE(spec("[{\"type\": \"Conv2d\", \"out_channels\": 4, \"kernel_size\": 3, \"in_channels\": 3}]"),
           DJ_ERR_ARG, "field \"in_channels\": 3 does not match the 1 channels", "[1, 8, 8]", NULL);
    REFUSE(spec_in("[16]", "[{\"type\": \"Conv2d\", \"out_channels\": 4, \"kernel_size\": 3}]"),
           DJ_ERR_ARG, "layers[0] (Conv2d): expects an image input", "got [16]", NULL);

    /* Linear */
    REFUSE(spec("[{\"type\": \"Conv2d\", \"out_channels\": 64, \"kernel_size\": 3},"
                " {\"type\": \"ReLU\"}, {\"type\": \"Linear\", \"out_features\": 10}]"),
           DJ_ERR_ARG, "layers[2] (Linear): expects a flat input; got [64, 6, 6]",
           "add a Flatten", NULL);
    REFUSE(spec_in("[5]", "[{\"type\": \"Linear\"}]"), DJ_ERR_PARSE,
           "layers[0] (Linear): missing field \"out_features\"", NULL, NULL);
    REFUSE(spec_in("[5]", "[{\"type\": \"Linear\", \"out_features\": 0}]"), DJ_ERR_RANGE,
           "field \"out_features\"", NULL, NULL);
    REFUSE(spec_in("[5]", "[{\"type\": \"Linear\", \"out_features\": 2, \"in_features\": 6}]"),
           DJ_ERR_ARG, "field \"in_features\": 6 does not match the 5 features", NULL, NULL);

    /* norms */
    REFUSE(spec("[{\"type\": \"BatchNorm2d\", \"eps\": 0}]"), DJ_ERR_RANGE,
           "layers[0] (BatchNorm2d): field \"eps\": expected a positive number, got 0", NULL,
           NULL);
    REFUSE(spec("[{\"type\": \"BatchNorm2d\", \"eps\": 1e-60}]"), DJ_ERR_RANGE, "field \"eps\"",
           "float32", NULL);
    REFUSE(spec("[{\"type\": \"BatchNorm2d\", \"momentum\": 1.5}]"), DJ_ERR_RANGE,
           "field \"momentum\": expected a number in [0, 1], got 1.5", NULL, NULL);
    REFUSE(spec("[{\"type\": \"BatchNorm2d\", \"momentum\": null}]"), DJ_ERR_PARSE,
           "field \"momentum\"", "got null", NULL);
    REFUSE(spec("[{\"type\": \"BatchNorm2d\", \"num_features\": 3}]"), DJ_ERR_ARG,
           "field \"num_features\"", NULL, NULL);
    REFUSE(spec("[{\"type\": \"BatchNorm2d\", \"affine\": false}]"), DJ_ERR_UNSUPPORTED,
           "field \"affine\"", NULL, NULL);
    REFUSE(spec_in("[5]", "[{\"type\": \"BatchNorm2d\"}]"), DJ_ERR_ARG,
           "layers[0] (BatchNorm2d): expects an image input", NULL, NULL);
    REFUSE(spec("[{\"type\": \"LayerNorm\", \"normalized_shape\": [8, 8]}]"), DJ_ERR_ARG,
           "layers[0] (LayerNorm): field \"normalized_shape\"", "[1, 8, 8]", NULL);
    REFUSE(spec("[{\"type\": \"LayerNorm\", \"normalized_shape\": \"all\"}]"), DJ_ERR_PARSE,
           "field \"normalized_shape\"", NULL, NULL);
    REFUSE(spec("[{\"type\": \"LayerNorm\", \"eps\": -1}]"), DJ_ERR_RANGE, "field \"eps\"", NULL,
           NULL);
    REFUSE(spec("[{\"type\": \"GELU\", \"approximate\": \"tanh\"}]"), DJ_ERR_UNSUPPORTED,
           "layers[0] (GELU): field \"approximate\": \"tanh\" is not supported", NULL, NULL);

    /* pooling */
    REFUSE(spec("[{\"type\": \"MaxPool2d\"}]"), DJ_ERR_PARSE,
           "layers[0] (MaxPool2d): missing field \"kernel_size\"", NULL, NULL);
    REFUSE(spec("[{\"type\": \"MaxPool2d\", \"kernel_size\": 3, \"padding\": 2}]"), DJ_ERR_RANGE,
           "field \"padding\"", "more than half the kernel size", NULL);
    REFUSE(spec("[{\"type\": \"AvgPool2d\", \"kernel_size\": 9}]"), DJ_ERR_ARG,
           "layers[0] (AvgPool2d): field \"kernel_size\"", "larger than the padded input", NULL);
    REFUSE(spec("[{\"type\": \"MaxPool2d\", \"kernel_size\": 2, \"ceil_mode\": true}]"),
           DJ_ERR_UNSUPPORTED, "field \"ceil_mode\"", NULL, NULL);
    REFUSE(spec("[{\"type\": \"AvgPool2d\", \"kernel_size\": 2, \"count_include_pad\": false}]"),
           DJ_ERR_UNSUPPORTED, "field \"count_include_pad\"", NULL, NULL);
    REFUSE(spec("[{\"type\": \"AvgPool2d\", \"kernel_size\": 2, \"dilation\": 1}]"), DJ_ERR_PARSE,
           "unknown field \"dilation\"", NULL, NULL);
    REFUSE(spec("[{\"type\": \"AdaptiveAvgPool2d\", \"output_size\": 2}]"), DJ_ERR_UNSUPPORTED,
           "layers[0] (AdaptiveAvgPool2d): field \"output_size\"", NULL, NULL);
    REFUSE(spec_in("[4]", "[{\"type\": \"AdaptiveAvgPool2d\"}]"), DJ_ERR_ARG, "expects an image",
           NULL, NULL);
    REFUSE(spec("[{\"type\": \"Flatten\", \"start_dim\": 0}]"), DJ_ERR_UNSUPPORTED,
           "field \"start_dim\"", NULL, NULL);

    /* Dropout */
    REFUSE(spec("[{\"type\": \"Dropout\", \"p\": 1}]"), DJ_ERR_RANGE,
           "layers[0] (Dropout): field \"p\": expected a probability in [0, 1), got 1", NULL,
           NULL);
    REFUSE(spec("[{\"type\": \"Dropout\", \"p\": 0.99999999999}]"), DJ_ERR_RANGE, "field \"p\"",
           NULL, NULL);
    REFUSE(spec("[{\"type\": \"Dropout\", \"p\": -0.1}]"), DJ_ERR_RANGE, "field \"p\"", "got -0.1",
           NULL);
    REFUSE(spec("[{\"type\": \"Dropout\", \"p\": \"half\"}]"), DJ_ERR_PARSE, "field \"p\"", NULL,
           NULL);
}

static void test_residual_errors(void)
{
    REFUSE(spec("[{\"type\": \"Residual\"}]"), DJ_ERR_PARSE,
           "layers[0] (Residual): missing field \"body\"", NULL, NULL);
    REFUSE(spec("[{\"type\": \"Residual\", \"body\": []}]"), DJ_ERR_PARSE,
           "layers[0] (Residual): field \"body\": expected a non-empty list", NULL, NULL);
    REFUSE(spec("[{\"type\": \"Residual\", \"body\": {\"type\": \"ReLU\"}}]"), DJ_ERR_PARSE,
           "field \"body\"", NULL, NULL);
    REFUSE(spec("[{\"type\": \"Residual\", \"body\": [{\"type\": \"ReLU\"}], \"shortcut\": 1}]"),
           DJ_ERR_PARSE, "field \"shortcut\"", NULL, NULL);
    REFUSE(spec("[{\"type\": \"Residual\", \"body\": [{\"type\": \"ReLU\"}], \"skip\": []}]"),
           DJ_ERR_PARSE, "unknown field \"skip\"", "Residual takes body, shortcut", NULL);
    /* a body that changes the shape, without a shortcut */
    REFUSE(spec("[{\"type\": \"ReLU\"}, {\"type\": \"Residual\", \"body\": [{\"type\": \"Conv2d\","
                " \"out_channels\": 4, \"kernel_size\": 3, \"padding\": 1}]}]"),
           DJ_ERR_ARG, "layers[1] (Residual): body output [4, 8, 8] does not match the input [1, 8, 8]",
           "shortcut", NULL);
    /* with a shortcut that disagrees */
    REFUSE(spec("[{\"type\": \"Residual\", \"body\": [{\"type\": \"Conv2d\", \"out_channels\": 4,"
                " \"kernel_size\": 3, \"stride\": 2, \"padding\": 1}], \"shortcut\": [{\"type\": "
                "\"Conv2d\", \"out_channels\": 4, \"kernel_size\": 1}]}]"),
           DJ_ERR_ARG, "layers[0] (Residual): body output [4, 4, 4] does not match shortcut output [4, 8, 8]",
           NULL, NULL);
    /* errors inside: the full path */
    REFUSE(spec("[{\"type\": \"ReLU\"}, {\"type\": \"Residual\", \"body\": [{\"type\": \"ReLU\"},"
                " {\"type\": \"Conv2d\", \"out_channels\": 1, \"kernel_size\": \"3\"}]}]"),
           DJ_ERR_PARSE,
           "layers[1].body[1] (Conv2d): field \"kernel_size\": expected a positive integer or [h, w]",
           NULL, NULL);
    REFUSE(spec("[{\"type\": \"Residual\", \"body\": [{\"type\": \"ReLU\"}], \"shortcut\": "
                "[{\"type\": \"Dropout\", \"p\": 2}]}]"),
           DJ_ERR_RANGE, "layers[0].shortcut[0] (Dropout): field \"p\"", NULL, NULL);
    REFUSE(spec("[{\"type\": \"Residual\", \"body\": [{\"type\": \"Residual\", \"body\": "
                "[{\"type\": \"ReLU\"}, {\"type\": \"Relu\"}]}]}]"),
           DJ_ERR_PARSE, "layers[0].body[0].body[1]: unknown layer type \"Relu\"",
           "did you mean \"ReLU\"", NULL);
    REFUSE(spec("[{\"type\": \"Residual\", \"body\": [{\"type\": \"Flatten\"}, {\"type\": "
                "\"Linear\", \"out_features\": 3}]}]"),
           DJ_ERR_ARG, "layers[0] (Residual): body output [3] does not match the input [1, 8, 8]",
           NULL, NULL);
    /* nesting deeper than the limit */
    char deep[4096];
    size_t pos = 0;
    pos += (size_t)snprintf(deep + pos, sizeof deep - pos, "{\"input\": [1, 2, 2], \"layers\": ");
    for (int i = 0; i < 20; i++)
        pos += (size_t)snprintf(deep + pos, sizeof deep - pos, "[{\"type\": \"Residual\", \"body\": ");
    pos += (size_t)snprintf(deep + pos, sizeof deep - pos, "[{\"type\": \"ReLU\"}]");
    for (int i = 0; i < 20; i++)
        pos += (size_t)snprintf(deep + pos, sizeof deep - pos, "}]");
    snprintf(deep + pos, sizeof deep - pos, "}");
    REFUSE(deep, DJ_ERR_RANGE, "nest deeper than 8", NULL, NULL);
}

static void test_size_limits(void)
{
    /* 2^40 parameters */
    REFUSE(spec_in("[1, 1024, 1024]", "[{\"type\": \"Flatten\"}, {\"type\": \"Linear\", "
                                      "\"out_features\": 1048576}]"),
           DJ_ERR_RANGE, "layers[1] (Linear): model too large", "1.weight", NULL);
    /* an activation of 2^40 values */
    REFUSE(spec_in("[1, 65536, 65536]", "[{\"type\": \"ReLU\"}]"), DJ_ERR_RANGE,
           "field \"input\": model too large", NULL, NULL);
    REFUSE(spec_in("[1, 4096, 4096]", "[{\"type\": \"Conv2d\", \"out_channels\": 1048576, "
                                      "\"kernel_size\": 1}]"),
           DJ_ERR_RANGE, "layers[0] (Conv2d): model too large", NULL, NULL);
    /* huge padding: the output is too large */
    REFUSE(spec_in("[1, 4, 4]", "[{\"type\": \"Conv2d\", \"out_channels\": 1, \"kernel_size\": 1,"
                                " \"padding\": 65536}]"),
           DJ_ERR_RANGE, "model too large", NULL, NULL);
    /* many small layers adding up */
    char big[1 << 16];
    size_t pos = (size_t)snprintf(big, sizeof big, "{\"input\": [64, 1024, 1024], \"layers\": [");
    for (int i = 0; i < 200; i++)
        pos += (size_t)snprintf(big + pos, sizeof big - pos, "%s{\"type\": \"ReLU\"}", i ? ", " : "");
    snprintf(big + pos, sizeof big - pos, "]}");
    REFUSE(big, DJ_ERR_RANGE, "model too large", "activations", NULL);
    /* FLOPs: a deep stack of big convolutions */
    pos = (size_t)snprintf(big, sizeof big, "{\"input\": [4096, 32, 32], \"layers\": [");
    for (int i = 0; i < 60; i++)
        pos += (size_t)snprintf(big + pos, sizeof big - pos,
                                "%s{\"type\": \"Conv2d\", \"out_channels\": 4096, \"kernel_size\": 3, \"padding\": 1}",
                                i ? ", " : "");
    snprintf(big + pos, sizeof big - pos, "]}");
    REFUSE(big, DJ_ERR_RANGE, "model too large", NULL, NULL);
    /* explicit small limits through the internal entry point */
    dj_nn_limits lim;
    dj_nn_default_limits(&lim);
    lim.max_params = 99;
    dj_model *m = NULL;
    char err[512];
    const char *s = spec_in("[20]", "[{\"type\": \"Linear\", \"out_features\": 5}]");
    dj_status st = dj_model_parse_limits(s, strlen(s), "lim.json", &lim, &m, err, sizeof err);
    CHECK(st == DJ_ERR_RANGE && m == NULL && strstr(err, "lim.json: layers[0] (Linear)") &&
              strstr(err, "0.weight"),
          "limit: %d %s", (int)st, err);
    lim.max_params = 105;
    st = dj_model_parse_limits(s, strlen(s), "lim.json", &lim, &m, err, sizeof err);
    CHECK(st == DJ_OK && m && dj_model_param_count(m) == 105, "exact limit: %s", err);
    dj_model_free(m);
    dj_nn_default_limits(&lim);
    lim.max_flops = 1000;
    s = spec_in("[1, 4, 4]", "[{\"type\": \"Conv2d\", \"out_channels\": 16, \"kernel_size\": 3}]");
    st = dj_model_parse_limits(s, strlen(s), "lim.json", &lim, &m, err, sizeof err);
    CHECK(st == DJ_ERR_RANGE && strstr(err, "layers[0] (Conv2d): model too large: more than 1000 FLOPs"),
          "flops limit: %d %s", (int)st, err);
    dj_nn_default_limits(&lim);
    lim.max_layers = 3;
    s = spec("[{\"type\": \"ReLU\"}, {\"type\": \"Residual\", \"body\": [{\"type\": \"ReLU\"}, {\"type\": \"ReLU\"}]}]");
    st = dj_model_parse_limits(s, strlen(s), "lim.json", &lim, &m, err, sizeof err);
    CHECK(st == DJ_ERR_RANGE && strstr(err, "layers[1].body[1]: model too large: more than 3 layers"),
          "layer limit: %d %s", (int)st, err);
}

static void test_load_and_prepare(void)
{
    dj_model *m = (dj_model *)1;
    char err[512];
    dj_status st = dj_model_load("models/no-such-model.json", &m, err, sizeof err);
    CHECK(st == DJ_ERR_IO && m == NULL && strstr(err, "models/no-such-model.json"),
          "missing file: %d %s", (int)st, err);
    /* a small error buffer is still NUL-terminated */
    char small[12];
    st = dj_model_parse("{", 1, "a-long-source-name.json", &m, small, sizeof small);
    CHECK(st == DJ_ERR_PARSE && strlen(small) == sizeof small - 1, "small buffer '%s'", small);
    st = dj_model_parse("{", 1, "x", &m, NULL, 0);
    CHECK(st == DJ_ERR_PARSE, "NULL error buffer");

    st = dj_model_load("models/fmnist-cnn.json", &m, err, sizeof err);
    CHECK(st == DJ_OK, "%s", err);
    if (st)
        return;
    CHECK(dj_model_prepare(m, 0, 1) == DJ_ERR_ARG, "batch 0");
    CHECK(dj_model_prepare(m, 4, 0) == DJ_ERR_ARG, "threads 0");
    st = dj_model_prepare(m, 1000000, 1);
    CHECK(st == DJ_ERR_RANGE && strstr(dj_model_error(m), "fmnist-cnn: batch 1000000 needs") &&
              strstr(dj_model_error(m), "GiB"),
          "huge batch: %d %s", (int)st, dj_model_error(m));
    CHECK(dj_model_prepare(m, 2, 1) == DJ_OK && dj_model_error(m)[0] == 0, "prepare 2: %s",
          dj_model_error(m));
    const float *y2 = m->top.layers[0].y;
    CHECK(dj_model_prepare(m, 1, 1) == DJ_OK && m->top.layers[0].y == y2 && m->max_batch == 2,
          "smaller batch keeps the plan");
    CHECK(dj_model_prepare(m, 4, 2) == DJ_OK && m->max_batch == 4 && m->nthreads == 2,
          "larger batch re-plans");
    /* a refused re-plan keeps the plan in use */
    CHECK(dj_model_prepare(m, 1000000, 1) == DJ_ERR_RANGE && m->max_batch == 4 &&
              m->top.layers[0].y != NULL,
          "refusal keeps the plan");
    dj_model_free(m);
}

int main(void)
{
    test_fmnist_mlp();
    test_fmnist_cnn();
    test_fmnist_resnet();
    test_all_layer_types();
    test_top_level_errors();
    test_normalize_errors();
    test_layer_errors();
    test_residual_errors();
    test_size_limits();
    test_load_and_prepare();
    return th_done("test_spec");
}
