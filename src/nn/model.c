/* model.c - a model from a JSON spec: parsing and checking every layer,
 * inferring shapes from "input", naming parameters as PyTorch's
 * nn.Sequential state_dict does, planning the buffers of forward and
 * backward (dj_model_prepare), and the one-line-per-layer summary.
 *
 * A spec comes from users and, through the fuzzer, from anywhere, so every
 * field is checked and every failure says where: the file, the layer path,
 * the layer type, the field, what was expected and what came, and the line
 * and column, e.g.
 *   models/x.json: layers[5].body[1] (Conv2d): field "kernel_size": expected
 *   a positive integer or [h, w], got "3" (line 14, column 40)
 *
 * Statuses: DJ_ERR_PARSE for text that is not JSON or does not follow the
 * schema (wrong JSON type, missing or unknown field, unknown layer type);
 * DJ_ERR_RANGE for numbers outside their domain (zero channels, p >= 1)
 * and for models over the size limits; DJ_ERR_ARG for layers whose shapes
 * do not fit together (Linear on an image, a kernel larger than its padded
 * input, a Residual whose branches disagree); DJ_ERR_UNSUPPORTED for
 * PyTorch options Dojo does not implement (groups, dilation, ceil_mode...). */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "nn/nn_internal.h"

#define NN_MAX_DIM (1 << 16)       /* height, width, kernel, stride, padding */
#define NN_MAX_CHANNELS (1 << 20)  /* channels and features */
#define NN_MAX_NAME 100            /* state_dict prefix length */
#define NN_MAX_PLAN_BYTES ((uint64_t)32 << 30)

static const char *const g_kind_names[DJ_L_COUNT] = {
    [DJ_L_CONV2D] = "Conv2d",
    [DJ_L_LINEAR] = "Linear",
    [DJ_L_BATCHNORM2D] = "BatchNorm2d",
    [DJ_L_LAYERNORM] = "LayerNorm",
    [DJ_L_RELU] = "ReLU",
    [DJ_L_GELU] = "GELU",
    [DJ_L_SILU] = "SiLU",
    [DJ_L_MAXPOOL2D] = "MaxPool2d",
    [DJ_L_AVGPOOL2D] = "AvgPool2d",
    [DJ_L_ADAPTIVEAVGPOOL2D] = "AdaptiveAvgPool2d",
    [DJ_L_FLATTEN] = "Flatten",
    [DJ_L_DROPOUT] = "Dropout",
    [DJ_L_RESIDUAL] = "Residual",
};

const char *dj_layer_kind_name(dj_layer_kind k)
{
    return ((int)k >= 0 && k < DJ_L_COUNT) ? g_kind_names[k] : "?";
}

void dj_nn_default_limits(dj_nn_limits *lim)
{
    lim->max_params = (uint64_t)1 << 28;     /* 1 GiB of float32 */
    lim->max_acts = (uint64_t)1 << 27;       /* 512 MiB per sample */
    lim->max_flops = (uint64_t)1 << 42;      /* ~4.4 TFLOP per sample */
    lim->max_layer_size = (uint64_t)1 << 26; /* 256 MiB per sample */
    lim->max_layers = 10000;
    lim->max_depth = 8;
}

/* ---- small helpers -------------------------------------------------------- */

static uint64_t mul_sat(uint64_t a, uint64_t b)
{
    if (a != 0 && b > UINT64_MAX / a)
        return UINT64_MAX;
    return a * b;
}

static uint64_t add_sat(uint64_t a, uint64_t b)
{
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

static size_t shape_size(const dj_shape *s)
{
    size_t n = 1;
    for (int i = 0; i < s->ndim; i++)
        n *= (size_t)s->d[i];
    return n;
}

static const char *shape_str(const dj_shape *s, char *buf, size_t size)
{
    if (s->ndim == 3)
        snprintf(buf, size, "[%lld, %lld, %lld]", (long long)s->d[0], (long long)s->d[1],
                 (long long)s->d[2]);
    else
        snprintf(buf, size, "[%lld]", (long long)s->d[0]);
    return buf;
}

static int shape_equal(const dj_shape *a, const dj_shape *b)
{
    if (a->ndim != b->ndim)
        return 0;
    for (int i = 0; i < a->ndim; i++)
        if (a->d[i] != b->d[i])
            return 0;
    return 1;
}

/* A short description of a JSON value for "got ..." in messages. */
static const char *describe(const dj_json_value *v, char *buf, size_t size)
{
    switch (dj_json_type_of(v)) {
    case DJ_JSON_NUMBER:
        if (dj_json_is_int(v))
            snprintf(buf, size, "%lld", (long long)dj_json_int(v));
        else
            snprintf(buf, size, "%.17g", dj_json_number(v));
        break;
    case DJ_JSON_STRING: {
        size_t len;
        const char *s = dj_json_string(v, &len);
        char tmp[48];
        size_t k = 0;
        for (size_t i = 0; i < len && k + 1 < sizeof tmp; i++)
            tmp[k++] = (s[i] >= 0x20 && s[i] < 0x7f && s[i] != '"') ? s[i] : '?';
        tmp[k] = 0;
        snprintf(buf, size, "\"%s%s\"", tmp, len > k ? "..." : "");
        break;
    }
    case DJ_JSON_BOOL:
        snprintf(buf, size, "%s", dj_json_bool(v) ? "true" : "false");
        break;
    case DJ_JSON_ARRAY: {
        size_t n = dj_json_len(v);
        if (n >= 1 && n <= 4) {
            size_t pos = (size_t)snprintf(buf, size, "[");
            for (size_t i = 0; i < n && pos < size; i++) {
                char item[64];
                const dj_json_value *e = dj_json_at(v, i);
                int t = dj_json_type_of(e);
                const char *d = (t == DJ_JSON_ARRAY || t == DJ_JSON_OBJECT)
                                    ? dj_json_type_name((dj_json_type)t)
                                    : describe(e, item, sizeof item);
                pos += (size_t)snprintf(buf + pos, size - pos, "%s%s", i ? ", " : "", d);
            }
            if (pos < size)
                snprintf(buf + pos, size - pos, "]");
        } else {
            snprintf(buf, size, "an array of %zu items", n);
        }
        break;
    }
    case DJ_JSON_OBJECT:
        snprintf(buf, size, "an object");
        break;
    default:
        snprintf(buf, size, "null");
        break;
    }
    return buf;
}

/* A member key made printable for a message (non-ASCII, quotes and
 * control characters become '?', long keys are cut with "..."). */
static const char *printable_key(const char *k, size_t klen, char *buf, size_t size)
{
    size_t n = 0;
    for (size_t j = 0; j < klen && n + 4 < size && n < 40; j++)
        buf[n++] = (k[j] >= 0x20 && k[j] < 0x7f && k[j] != '"') ? k[j] : '?';
    buf[n] = 0;
    if (n < klen && n + 4 <= size)
        memcpy(buf + n, "...", 4);
    return buf;
}

/* ---- parse context and errors ---------------------------------------------- */

typedef struct {
    const char *source;
    char *err;
    size_t errlen;
    const dj_nn_limits *lim;
    dj_model *m;
    const dj_json_value *layer; /* the layer being parsed, or NULL */
    const char *type;           /* its type, once known */
    int depth;                  /* Residual nesting */
    uint64_t param_scalars;
} pctx;

static dj_status fail(pctx *c, dj_status st, const dj_json_value *at, const char *field,
                      const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 5, 6)))
#endif
    ;

/* "<source>: <layer path> (<type>): field "<field>": <message> (line L, column C)" */
static dj_status fail(pctx *c, dj_status st, const dj_json_value *at, const char *field,
                      const char *fmt, ...)
{
    if (!c->err || c->errlen == 0)
        return st;
    char msg[512], where[256] = "", pos[64] = "";
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    size_t w = 0;
    if (c->layer) {
        char path[160];
        dj_json_path(c->layer, path, sizeof path);
        if (c->type)
            w += (size_t)snprintf(where + w, sizeof where - w, "%s (%s): ", path, c->type);
        else
            w += (size_t)snprintf(where + w, sizeof where - w, "%s: ", path);
    }
    if (field && w < sizeof where)
        snprintf(where + w, sizeof where - w, "field \"%s\": ", field);
    if (!at)
        at = c->layer;
    if (at) {
        size_t line = 0, col = 0, off = 0;
        dj_json_position(at, &line, &col, &off);
        if (line)
            snprintf(pos, sizeof pos, " (line %zu, column %zu)", line, col);
    }
    snprintf(c->err, c->errlen, "%s: %s%s%s", c->source, where, msg, pos);
    return st;
}

/* ---- typed fields ----------------------------------------------------------- */

static const char *int_phrase(int64_t min)
{
    return min == 1 ? "a positive integer" : min == 0 ? "a non-negative integer" : "an integer";
}

/* Integer field in [min, max]; when absent, def (or an error if required). */
static dj_status f_int(pctx *c, const dj_json_value *obj, const char *key, int64_t min,
                       int64_t max, int required, int64_t def, int64_t *out)
{
    const dj_json_value *v = dj_json_get(obj, key);
    char got[128];
    if (!v) {
        if (required)
            return fail(c, DJ_ERR_PARSE, obj, NULL, "missing field \"%s\"", key);
        *out = def;
        return DJ_OK;
    }
    if (dj_json_type_of(v) != DJ_JSON_NUMBER || !dj_json_is_int(v))
        return fail(c, DJ_ERR_PARSE, v, key, "expected %s, got %s", int_phrase(min),
                    describe(v, got, sizeof got));
    int64_t x = dj_json_int(v);
    if (x < min)
        return fail(c, DJ_ERR_RANGE, v, key, "expected %s, got %lld", int_phrase(min),
                    (long long)x);
    if (x > max)
        return fail(c, DJ_ERR_RANGE, v, key, "%lld is too large (at most %lld)", (long long)x,
                    (long long)max);
    *out = x;
    return DJ_OK;
}

/* An int or [h, w] (kernel_size, stride, padding). */
static dj_status f_pair(pctx *c, const dj_json_value *obj, const char *key, int64_t min,
                        int64_t max, int required, int defh, int defw, int *h, int *w)
{
    const dj_json_value *v = dj_json_get(obj, key);
    char got[128];
    if (!v) {
        if (required)
            return fail(c, DJ_ERR_PARSE, obj, NULL, "missing field \"%s\"", key);
        *h = defh;
        *w = defw;
        return DJ_OK;
    }
    int64_t x[2];
    dj_json_type t = dj_json_type_of(v);
    if (t == DJ_JSON_NUMBER && dj_json_is_int(v)) {
        x[0] = x[1] = dj_json_int(v);
    } else if (t == DJ_JSON_ARRAY && dj_json_len(v) == 2 &&
               dj_json_type_of(dj_json_at(v, 0)) == DJ_JSON_NUMBER &&
               dj_json_is_int(dj_json_at(v, 0)) &&
               dj_json_type_of(dj_json_at(v, 1)) == DJ_JSON_NUMBER &&
               dj_json_is_int(dj_json_at(v, 1))) {
        x[0] = dj_json_int(dj_json_at(v, 0));
        x[1] = dj_json_int(dj_json_at(v, 1));
    } else {
        return fail(c, DJ_ERR_PARSE, v, key, "expected %s or [h, w], got %s", int_phrase(min),
                    describe(v, got, sizeof got));
    }
    for (int i = 0; i < 2; i++) {
        if (x[i] < min)
            return fail(c, DJ_ERR_RANGE, v, key, "expected %s or [h, w], got %s",
                        int_phrase(min), describe(v, got, sizeof got));
        if (x[i] > max)
            return fail(c, DJ_ERR_RANGE, v, key, "%lld is too large (at most %lld)",
                        (long long)x[i], (long long)max);
    }
    *h = (int)x[0];
    *w = (int)x[1];
    return DJ_OK;
}

/* A number in the interval described by lo/hi (inclusive flags); `what`
 * says it in words, e.g. "a number in [0, 1)". */
static dj_status f_num(pctx *c, const dj_json_value *obj, const char *key, double lo,
                       int lo_incl, double hi, int hi_incl, const char *what, double def,
                       double *out)
{
    const dj_json_value *v = dj_json_get(obj, key);
    char got[128];
    if (!v) {
        *out = def;
        return DJ_OK;
    }
    if (dj_json_type_of(v) != DJ_JSON_NUMBER)
        return fail(c, DJ_ERR_PARSE, v, key, "expected %s, got %s", what,
                    describe(v, got, sizeof got));
    double x = dj_json_number(v);
    if (!(lo_incl ? x >= lo : x > lo) || !(hi_incl ? x <= hi : x < hi))
        return fail(c, DJ_ERR_RANGE, v, key, "expected %s, got %s", what,
                    describe(v, got, sizeof got));
    *out = x;
    return DJ_OK;
}

static dj_status f_bool(pctx *c, const dj_json_value *obj, const char *key, int def, int *out)
{
    const dj_json_value *v = dj_json_get(obj, key);
    char got[128];
    if (!v) {
        *out = def;
        return DJ_OK;
    }
    if (dj_json_type_of(v) != DJ_JSON_BOOL)
        return fail(c, DJ_ERR_PARSE, v, key, "expected true or false, got %s",
                    describe(v, got, sizeof got));
    *out = dj_json_bool(v);
    return DJ_OK;
}

/* PyTorch options Dojo accepts only at their default value. */
static dj_status f_default_int(pctx *c, const dj_json_value *obj, const char *key, int def,
                               int pair)
{
    const dj_json_value *v = dj_json_get(obj, key);
    if (!v)
        return DJ_OK;
    int h, w;
    dj_status st = DJ_OK;
    if (pair) {
        st = f_pair(c, obj, key, -(1 << 30), 1 << 30, 0, def, def, &h, &w);
    } else {
        int64_t x = def;
        st = f_int(c, obj, key, INT64_MIN, INT64_MAX, 0, def, &x);
        h = w = (x == def) ? def : def + 1;
    }
    if (st)
        return st;
    if (h != def || w != def) {
        char got[128];
        return fail(c, DJ_ERR_UNSUPPORTED, v, key, "%s is not supported (only %d)",
                    describe(v, got, sizeof got), def);
    }
    return DJ_OK;
}

static dj_status f_default_bool(pctx *c, const dj_json_value *obj, const char *key, int def)
{
    int b;
    dj_status st = f_bool(c, obj, key, def, &b);
    if (st)
        return st;
    if (b != def)
        return fail(c, DJ_ERR_UNSUPPORTED, dj_json_get(obj, key), key,
                    "%s is not supported (only %s)", b ? "true" : "false",
                    def ? "true" : "false");
    return DJ_OK;
}

static dj_status f_default_string(pctx *c, const dj_json_value *obj, const char *key,
                                  const char *def)
{
    const dj_json_value *v = dj_json_get(obj, key);
    char got[128];
    if (!v)
        return DJ_OK;
    if (dj_json_type_of(v) != DJ_JSON_STRING)
        return fail(c, DJ_ERR_PARSE, v, key, "expected a string, got %s",
                    describe(v, got, sizeof got));
    size_t len;
    const char *s = dj_json_string(v, &len);
    if (len != strlen(def) || memcmp(s, def, len) != 0)
        return fail(c, DJ_ERR_UNSUPPORTED, v, key, "%s is not supported (only \"%s\")",
                    describe(v, got, sizeof got), def);
    return DJ_OK;
}

/* Refuse members not in `allowed` (NULL-terminated), listing the allowed. */
static dj_status check_keys(pctx *c, const dj_json_value *obj, const char *const *allowed,
                            const char *owner)
{
    size_t n = dj_json_len(obj);
    for (size_t i = 0; i < n; i++) {
        size_t klen;
        const char *k = dj_json_key_at(obj, i, &klen);
        int found = 0;
        for (const char *const *a = allowed; *a && !found; a++)
            found = strlen(*a) == klen && memcmp(*a, k, klen) == 0;
        if (found)
            continue;
        char list[400];
        size_t pos = 0;
        list[0] = 0;
        for (const char *const *a = allowed; *a && pos < sizeof list; a++)
            if (strcmp(*a, "type") != 0)
                pos += (size_t)snprintf(list + pos, sizeof list - pos, "%s%s",
                                        pos ? ", " : "", *a);
        char got[64];
        printable_key(k, klen, got, sizeof got);
        return fail(c, DJ_ERR_PARSE, dj_json_value_at(obj, i), NULL,
                    "unknown field \"%s\" (%s takes %s)", got, owner,
                    list[0] ? list : "no fields");
    }
    return DJ_OK;
}

/* ---- parameters ------------------------------------------------------------- */

/* Registers a parameter; its storage is allocated once the whole spec has
 * been checked (alloc_params). Returns the index or -1 (error set). */
static int add_param(pctx *c, const dj_layer *L, const char *suffix, dj_dtype dt, int ndim,
                     const int64_t *shape, int is_buffer, int no_decay)
{
    dj_model *m = c->m;
    uint64_t numel = 1;
    for (int i = 0; i < ndim; i++)
        numel = mul_sat(numel, (uint64_t)shape[i]);
    c->param_scalars = add_sat(c->param_scalars, numel);
    if (c->param_scalars > c->lim->max_params) {
        fail(c, DJ_ERR_RANGE, NULL, NULL,
             "model too large: parameter %s.%s takes the total past %llu values", L->name,
             suffix, (unsigned long long)c->lim->max_params);
        return -1;
    }
    if (m->nparams == m->params_cap) {
        size_t cap = m->params_cap ? 2 * m->params_cap : 16;
        dj_param *p = realloc(m->params, cap * sizeof *p);
        if (!p) {
            fail(c, DJ_ERR_NOMEM, NULL, NULL, "out of memory");
            return -1;
        }
        m->params = p;
        m->params_cap = cap;
    }
    dj_param *p = &m->params[m->nparams];
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "%s.%s", L->name, suffix);
    p->value.dtype = dt;
    p->value.ndim = ndim;
    for (int i = 0; i < ndim; i++)
        p->value.shape[i] = shape[i];
    p->value.numel = (size_t)numel;
    p->is_buffer = is_buffer;
    p->no_decay = no_decay;
    if (!is_buffer)
        m->trainable += (size_t)numel;
    return (int)m->nparams++;
}

static dj_status alloc_params(dj_model *m)
{
    for (size_t i = 0; i < m->nparams; i++) {
        dj_param *p = &m->params[i];
        int64_t shape[DJ_MAX_DIMS];
        int ndim = p->value.ndim;
        dj_dtype dt = p->value.dtype;
        memcpy(shape, p->value.shape, sizeof shape);
        dj_status st = dj_tensor_init(&p->value, dt, ndim, shape);
        if (!st && !p->is_buffer)
            st = dj_tensor_init(&p->grad, DJ_DT_F32, ndim, shape);
        if (st)
            return st;
    }
    return DJ_OK;
}

/* ---- layers ------------------------------------------------------------------- */

static dj_status parse_seq(pctx *c, const dj_json_value *arr, const char *prefix, dj_shape in,
                           dj_seq *seq, dj_shape *out);

static dj_status need_image(pctx *c, const dj_layer *L)
{
    char s[80];
    if (L->in.ndim != 3)
        return fail(c, DJ_ERR_ARG, NULL, NULL,
                    "expects an image input [channels, height, width]; got %s",
                    shape_str(&L->in, s, sizeof s));
    return DJ_OK;
}

/* An optional PyTorch field that repeats an inferred count (in_channels,
 * in_features, num_features) must agree with it. */
static dj_status f_inferred(pctx *c, const dj_json_value *obj, const char *key,
                            const dj_layer *L, int64_t actual, const char *what)
{
    const dj_json_value *v = dj_json_get(obj, key);
    if (!v)
        return DJ_OK;
    int64_t x;
    dj_status st = f_int(c, obj, key, 1, INT64_MAX, 0, 0, &x);
    if (st)
        return st;
    if (x != actual) {
        char s[80];
        return fail(c, DJ_ERR_ARG, v, key, "%lld does not match the %lld %s that arrive (%s)",
                    (long long)x, (long long)actual, what, shape_str(&L->in, s, sizeof s));
    }
    return DJ_OK;
}

/* Pooling and convolution output size along one axis, or an error naming
 * the kernel and padded input when the kernel does not fit. */
static dj_status window_out(pctx *c, const dj_json_value *obj, const dj_layer *L)
{
    int64_t h = L->in.d[1], w = L->in.d[2];
    int64_t ph = h + 2 * (int64_t)L->ph, pw = w + 2 * (int64_t)L->pw;
    if (L->kh > ph || L->kw > pw) {
        char s[80];
        return fail(c, DJ_ERR_ARG, dj_json_get(obj, "kernel_size"), "kernel_size",
                    "kernel %dx%d is larger than the padded input %lldx%lld (input %s, "
                    "padding [%d, %d])",
                    L->kh, L->kw, (long long)ph, (long long)pw, shape_str(&L->in, s, sizeof s),
                    L->ph, L->pw);
    }
    return DJ_OK;
}

static dj_status parse_layer(pctx *c, const dj_json_value *obj, dj_layer *L)
{
    char got[128];
    dj_status st;
    if (dj_json_type_of(obj) != DJ_JSON_OBJECT)
        return fail(c, DJ_ERR_PARSE, obj, NULL, "expected a layer object with a \"type\", got %s",
                    describe(obj, got, sizeof got));
    const dj_json_value *tv = dj_json_get(obj, "type");
    if (!tv)
        return fail(c, DJ_ERR_PARSE, obj, NULL, "missing field \"type\"");
    if (dj_json_type_of(tv) != DJ_JSON_STRING)
        return fail(c, DJ_ERR_PARSE, tv, "type", "expected a layer type name, got %s",
                    describe(tv, got, sizeof got));
    size_t tlen;
    const char *tname = dj_json_string(tv, &tlen);
    int kind = -1, near = -1;
    for (int k = 0; k < DJ_L_COUNT; k++) {
        if (strlen(g_kind_names[k]) == tlen && memcmp(g_kind_names[k], tname, tlen) == 0)
            kind = k;
        else if (strlen(g_kind_names[k]) == tlen && strncasecmp(g_kind_names[k], tname, tlen) == 0)
            near = k;
    }
    if (kind < 0) {
        char list[300];
        size_t pos = 0;
        for (int k = 0; k < DJ_L_COUNT; k++)
            pos += (size_t)snprintf(list + pos, sizeof list - pos, "%s%s", k ? ", " : "",
                                    g_kind_names[k]);
        if (near >= 0)
            return fail(c, DJ_ERR_PARSE, tv, NULL,
                        "unknown layer type %s (did you mean \"%s\"?); known types: %s",
                        describe(tv, got, sizeof got), g_kind_names[near], list);
        return fail(c, DJ_ERR_PARSE, tv, NULL, "unknown layer type %s; known types: %s",
                    describe(tv, got, sizeof got), list);
    }
    L->kind = (dj_layer_kind)kind;
    c->type = g_kind_names[kind];
    L->out = L->in;
    int64_t x;
    double d;
    char s1[80];

    switch (L->kind) {
    case DJ_L_CONV2D: {
        static const char *const keys[] = {"type", "out_channels", "kernel_size", "stride",
                                           "padding", "bias", "in_channels", "dilation",
                                           "groups", "padding_mode", NULL};
        if ((st = check_keys(c, obj, keys, "Conv2d")) || (st = need_image(c, L)) ||
            (st = f_int(c, obj, "out_channels", 1, NN_MAX_CHANNELS, 1, 0, &x)))
            return st;
        L->out_ch = (int)x;
        if ((st = f_pair(c, obj, "kernel_size", 1, NN_MAX_DIM, 1, 0, 0, &L->kh, &L->kw)) ||
            (st = f_pair(c, obj, "stride", 1, NN_MAX_DIM, 0, 1, 1, &L->sh, &L->sw)) ||
            (st = f_pair(c, obj, "padding", 0, NN_MAX_DIM, 0, 0, 0, &L->ph, &L->pw)) ||
            (st = f_bool(c, obj, "bias", 1, &L->has_bias)) ||
            (st = f_inferred(c, obj, "in_channels", L, L->in.d[0], "channels")) ||
            (st = f_default_int(c, obj, "dilation", 1, 1)) ||
            (st = f_default_int(c, obj, "groups", 1, 0)) ||
            (st = f_default_string(c, obj, "padding_mode", "zeros")) ||
            (st = window_out(c, obj, L)))
            return st;
        int64_t cin = L->in.d[0];
        L->out.ndim = 3;
        L->out.d[0] = L->out_ch;
        L->out.d[1] = (L->in.d[1] + 2 * (int64_t)L->ph - L->kh) / L->sh + 1;
        L->out.d[2] = (L->in.d[2] + 2 * (int64_t)L->pw - L->kw) / L->sw + 1;
        int64_t wshape[4] = {L->out_ch, cin, L->kh, L->kw};
        uint64_t k = mul_sat(mul_sat((uint64_t)cin, (uint64_t)L->kh), (uint64_t)L->kw);
        L->flops = mul_sat(mul_sat(2 * k, (uint64_t)L->out_ch),
                           (uint64_t)(L->out.d[1] * L->out.d[2]));
        /* im2col of one sample must stay addressable too */
        if (mul_sat(k, (uint64_t)(L->out.d[1] * L->out.d[2])) > c->lim->max_layer_size * 16)
            return fail(c, DJ_ERR_RANGE, NULL, NULL,
                        "model too large: the convolution of %s with a %dx%d kernel unfolds "
                        "to more than %llu values per sample",
                        shape_str(&L->in, s1, sizeof s1), L->kh, L->kw,
                        (unsigned long long)(c->lim->max_layer_size * 16));
        if ((L->p_weight = add_param(c, L, "weight", DJ_DT_F32, 4, wshape, 0, 0)) < 0)
            return DJ_ERR_RANGE;
        if (L->has_bias && (L->p_bias = add_param(c, L, "bias", DJ_DT_F32, 1, wshape, 0, 1)) < 0)
            return DJ_ERR_RANGE;
        break;
    }
    case DJ_L_LINEAR: {
        static const char *const keys[] = {"type", "out_features", "bias", "in_features", NULL};
        if ((st = check_keys(c, obj, keys, "Linear")))
            return st;
        if (L->in.ndim != 1)
            return fail(c, DJ_ERR_ARG, NULL, NULL, "expects a flat input; got %s \xe2\x80\x94 add a Flatten",
                        shape_str(&L->in, s1, sizeof s1));
        if ((st = f_int(c, obj, "out_features", 1, NN_MAX_CHANNELS, 1, 0, &x)))
            return st;
        L->out_ch = (int)x;
        if ((st = f_bool(c, obj, "bias", 1, &L->has_bias)) ||
            (st = f_inferred(c, obj, "in_features", L, L->in.d[0], "features")))
            return st;
        L->out.ndim = 1;
        L->out.d[0] = L->out_ch;
        int64_t wshape[2] = {L->out_ch, L->in.d[0]};
        L->flops = mul_sat(2 * (uint64_t)L->out_ch, (uint64_t)L->in.d[0]);
        if ((L->p_weight = add_param(c, L, "weight", DJ_DT_F32, 2, wshape, 0, 0)) < 0)
            return DJ_ERR_RANGE;
        if (L->has_bias && (L->p_bias = add_param(c, L, "bias", DJ_DT_F32, 1, wshape, 0, 1)) < 0)
            return DJ_ERR_RANGE;
        break;
    }
    case DJ_L_BATCHNORM2D: {
        static const char *const keys[] = {"type", "eps", "momentum", "num_features", "affine",
                                           "track_running_stats", NULL};
        if ((st = check_keys(c, obj, keys, "BatchNorm2d")) || (st = need_image(c, L)) ||
            (st = f_num(c, obj, "eps", 0, 0, INFINITY, 0, "a positive number", 1e-5, &d)))
            return st;
        L->eps = (float)d;
        if (!(L->eps > 0))
            return fail(c, DJ_ERR_RANGE, dj_json_get(obj, "eps"), "eps",
                        "%g is too small for float32", d);
        if ((st = f_num(c, obj, "momentum", 0, 1, 1, 1, "a number in [0, 1]", 0.1, &d)))
            return st;
        L->momentum = (float)d;
        if ((st = f_inferred(c, obj, "num_features", L, L->in.d[0], "channels")) ||
            (st = f_default_bool(c, obj, "affine", 1)) ||
            (st = f_default_bool(c, obj, "track_running_stats", 1)))
            return st;
        int64_t cs[1] = {L->in.d[0]};
        if ((L->p_weight = add_param(c, L, "weight", DJ_DT_F32, 1, cs, 0, 1)) < 0 ||
            (L->p_bias = add_param(c, L, "bias", DJ_DT_F32, 1, cs, 0, 1)) < 0 ||
            (L->p_mean = add_param(c, L, "running_mean", DJ_DT_F32, 1, cs, 1, 1)) < 0 ||
            (L->p_var = add_param(c, L, "running_var", DJ_DT_F32, 1, cs, 1, 1)) < 0 ||
            (L->p_count = add_param(c, L, "num_batches_tracked", DJ_DT_I64, 0, cs, 1, 1)) < 0)
            return DJ_ERR_RANGE;
        break;
    }
    case DJ_L_LAYERNORM: {
        static const char *const keys[] = {"type", "eps", "normalized_shape",
                                           "elementwise_affine", NULL};
        if ((st = check_keys(c, obj, keys, "LayerNorm")) ||
            (st = f_num(c, obj, "eps", 0, 0, INFINITY, 0, "a positive number", 1e-5, &d)))
            return st;
        L->eps = (float)d;
        if (!(L->eps > 0))
            return fail(c, DJ_ERR_RANGE, dj_json_get(obj, "eps"), "eps",
                        "%g is too small for float32", d);
        if ((st = f_default_bool(c, obj, "elementwise_affine", 1)))
            return st;
        const dj_json_value *ns = dj_json_get(obj, "normalized_shape");
        if (ns) {
            int ok = 0;
            if (dj_json_type_of(ns) == DJ_JSON_NUMBER && dj_json_is_int(ns))
                ok = L->in.ndim == 1 && dj_json_int(ns) == L->in.d[0];
            else if (dj_json_type_of(ns) == DJ_JSON_ARRAY &&
                     dj_json_len(ns) == (size_t)L->in.ndim) {
                ok = 1;
                for (int i = 0; i < L->in.ndim; i++) {
                    const dj_json_value *e = dj_json_at(ns, (size_t)i);
                    ok = ok && dj_json_type_of(e) == DJ_JSON_NUMBER && dj_json_is_int(e) &&
                         dj_json_int(e) == L->in.d[i];
                }
            } else if (!(dj_json_type_of(ns) == DJ_JSON_ARRAY ||
                         (dj_json_type_of(ns) == DJ_JSON_NUMBER && dj_json_is_int(ns)))) {
                return fail(c, DJ_ERR_PARSE, ns, "normalized_shape",
                            "expected an integer or a list of integers, got %s",
                            describe(ns, got, sizeof got));
            }
            if (!ok)
                return fail(c, DJ_ERR_ARG, ns, "normalized_shape",
                            "%s does not match the per-sample shape %s (LayerNorm normalises "
                            "over the whole sample)",
                            describe(ns, got, sizeof got), shape_str(&L->in, s1, sizeof s1));
        }
        if ((L->p_weight = add_param(c, L, "weight", DJ_DT_F32, L->in.ndim, L->in.d, 0, 1)) < 0 ||
            (L->p_bias = add_param(c, L, "bias", DJ_DT_F32, L->in.ndim, L->in.d, 0, 1)) < 0)
            return DJ_ERR_RANGE;
        break;
    }
    case DJ_L_RELU:
    case DJ_L_SILU: {
        static const char *const keys[] = {"type", "inplace", NULL};
        int b;
        if ((st = check_keys(c, obj, keys, c->type)) || (st = f_bool(c, obj, "inplace", 0, &b)))
            return st;
        break;
    }
    case DJ_L_GELU: {
        static const char *const keys[] = {"type", "approximate", NULL};
        if ((st = check_keys(c, obj, keys, "GELU")) ||
            (st = f_default_string(c, obj, "approximate", "none")))
            return st;
        break;
    }
    case DJ_L_MAXPOOL2D:
    case DJ_L_AVGPOOL2D: {
        static const char *const mkeys[] = {"type", "kernel_size", "stride", "padding",
                                            "dilation", "ceil_mode", NULL};
        static const char *const akeys[] = {"type", "kernel_size", "stride", "padding",
                                            "ceil_mode", "count_include_pad", NULL};
        int maxp = L->kind == DJ_L_MAXPOOL2D;
        if ((st = check_keys(c, obj, maxp ? mkeys : akeys, c->type)) || (st = need_image(c, L)) ||
            (st = f_pair(c, obj, "kernel_size", 1, NN_MAX_DIM, 1, 0, 0, &L->kh, &L->kw)) ||
            (st = f_pair(c, obj, "stride", 1, NN_MAX_DIM, 0, L->kh, L->kw, &L->sh, &L->sw)) ||
            (st = f_pair(c, obj, "padding", 0, NN_MAX_DIM, 0, 0, 0, &L->ph, &L->pw)) ||
            (st = f_default_bool(c, obj, "ceil_mode", 0)))
            return st;
        if (maxp && (st = f_default_int(c, obj, "dilation", 1, 1)))
            return st;
        if (!maxp && (st = f_default_bool(c, obj, "count_include_pad", 1)))
            return st;
        if (2 * L->ph > L->kh || 2 * L->pw > L->kw)
            return fail(c, DJ_ERR_RANGE, dj_json_get(obj, "padding"), "padding",
                        "padding [%d, %d] is more than half the kernel size [%d, %d]", L->ph,
                        L->pw, L->kh, L->kw);
        if ((st = window_out(c, obj, L)))
            return st;
        L->out.d[1] = (L->in.d[1] + 2 * (int64_t)L->ph - L->kh) / L->sh + 1;
        L->out.d[2] = (L->in.d[2] + 2 * (int64_t)L->pw - L->kw) / L->sw + 1;
        break;
    }
    case DJ_L_ADAPTIVEAVGPOOL2D: {
        static const char *const keys[] = {"type", "output_size", NULL};
        if ((st = check_keys(c, obj, keys, "AdaptiveAvgPool2d")) || (st = need_image(c, L)))
            return st;
        int h = 1, w = 1;
        if (dj_json_get(obj, "output_size") &&
            (st = f_pair(c, obj, "output_size", 1, NN_MAX_DIM, 0, 1, 1, &h, &w)))
            return st;
        if (h != 1 || w != 1)
            return fail(c, DJ_ERR_UNSUPPORTED, dj_json_get(obj, "output_size"), "output_size",
                        "only 1 ([1, 1], global average pooling) is supported, got %s",
                        describe(dj_json_get(obj, "output_size"), got, sizeof got));
        L->out.d[1] = L->out.d[2] = 1;
        break;
    }
    case DJ_L_FLATTEN: {
        static const char *const keys[] = {"type", "start_dim", "end_dim", NULL};
        if ((st = check_keys(c, obj, keys, "Flatten")) ||
            (st = f_default_int(c, obj, "start_dim", 1, 0)) ||
            (st = f_default_int(c, obj, "end_dim", -1, 0)))
            return st;
        L->out.ndim = 1;
        L->out.d[0] = (int64_t)shape_size(&L->in);
        L->out.d[1] = L->out.d[2] = 0;
        break;
    }
    case DJ_L_DROPOUT: {
        static const char *const keys[] = {"type", "p", "inplace", NULL};
        int b;
        if ((st = check_keys(c, obj, keys, "Dropout")) ||
            (st = f_num(c, obj, "p", 0, 1, 1, 0, "a probability in [0, 1)", 0.5, &d)) ||
            (st = f_bool(c, obj, "inplace", 0, &b)))
            return st;
        L->p = (float)d;
        if (L->p >= 1.0f) /* rounds up to 1 in float32 */
            return fail(c, DJ_ERR_RANGE, dj_json_get(obj, "p"), "p",
                        "expected a probability in [0, 1), got %.17g", d);
        break;
    }
    case DJ_L_RESIDUAL: {
        static const char *const keys[] = {"type", "body", "shortcut", NULL};
        if ((st = check_keys(c, obj, keys, "Residual")))
            return st;
        if (c->depth >= c->lim->max_depth)
            return fail(c, DJ_ERR_RANGE, NULL, NULL, "Residual layers nest deeper than %d levels",
                        c->lim->max_depth);
        const dj_json_value *body = dj_json_get(obj, "body");
        const dj_json_value *sc = dj_json_get(obj, "shortcut");
        if (!body)
            return fail(c, DJ_ERR_PARSE, obj, NULL, "missing field \"body\"");
        if (dj_json_type_of(body) != DJ_JSON_ARRAY || dj_json_len(body) == 0)
            return fail(c, DJ_ERR_PARSE, body, "body", "expected a non-empty list of layers, got %s",
                        describe(body, got, sizeof got));
        if (sc && dj_json_type_of(sc) != DJ_JSON_ARRAY)
            return fail(c, DJ_ERR_PARSE, sc, "shortcut", "expected a list of layers, got %s",
                        describe(sc, got, sizeof got));
        char prefix[sizeof L->name + 16];
        dj_shape bo, so = L->in;
        const dj_json_value *self = c->layer;
        c->depth++;
        snprintf(prefix, sizeof prefix, "%s.body.", L->name);
        st = parse_seq(c, body, prefix, L->in, &L->body, &bo);
        if (!st && sc && dj_json_len(sc) > 0) {
            L->has_shortcut = 1;
            snprintf(prefix, sizeof prefix, "%s.shortcut.", L->name);
            st = parse_seq(c, sc, prefix, L->in, &L->shortcut, &so);
        }
        c->depth--;
        c->layer = self;
        c->type = "Residual";
        if (st)
            return st;
        if (!shape_equal(&bo, &so)) {
            char s2[80];
            if (L->has_shortcut)
                return fail(c, DJ_ERR_ARG, NULL, NULL,
                            "body output %s does not match shortcut output %s",
                            shape_str(&bo, s1, sizeof s1), shape_str(&so, s2, sizeof s2));
            return fail(c, DJ_ERR_ARG, NULL, NULL,
                        "body output %s does not match the input %s it is added to "
                        "(add a \"shortcut\" that maps one to the other)",
                        shape_str(&bo, s1, sizeof s1), shape_str(&so, s2, sizeof s2));
        }
        L->out = bo;
        for (int i = 0; i < L->body.count; i++)
            L->flops = add_sat(L->flops, L->body.layers[i].flops);
        for (int i = 0; i < L->shortcut.count; i++)
            L->flops = add_sat(L->flops, L->shortcut.layers[i].flops);
        break;
    }
    default:
        return fail(c, DJ_ERR_ARG, NULL, NULL, "internal error: unhandled layer kind");
    }
    return DJ_OK;
}

/* Checks the size of a layer's output and adds it to the model totals. */
static dj_status account(pctx *c, dj_layer *L)
{
    dj_model *m = c->m;
    char s[80];
    uint64_t size = 1;
    for (int i = 0; i < L->out.ndim; i++)
        size = mul_sat(size, (uint64_t)L->out.d[i]);
    if (size > c->lim->max_layer_size)
        return fail(c, DJ_ERR_RANGE, NULL, NULL,
                    "model too large: output %s has %llu values per sample (limit %llu)",
                    shape_str(&L->out, s, sizeof s), (unsigned long long)size,
                    (unsigned long long)c->lim->max_layer_size);
    L->in_size = shape_size(&L->in);
    L->out_size = (size_t)size;
    m->acts = add_sat(m->acts, size);
    if (m->acts > c->lim->max_acts)
        return fail(c, DJ_ERR_RANGE, NULL, NULL,
                    "model too large: activations pass %llu values per sample",
                    (unsigned long long)c->lim->max_acts);
    if (L->kind != DJ_L_RESIDUAL) {
        m->flops = add_sat(m->flops, L->flops);
        if (m->flops > c->lim->max_flops)
            return fail(c, DJ_ERR_RANGE, NULL, NULL,
                        "model too large: more than %llu FLOPs per sample",
                        (unsigned long long)c->lim->max_flops);
    }
    return DJ_OK;
}

static dj_status parse_seq(pctx *c, const dj_json_value *arr, const char *prefix, dj_shape in,
                           dj_seq *seq, dj_shape *out)
{
    size_t n = dj_json_len(arr);
    seq->layers = calloc(n, sizeof *seq->layers);
    if (!seq->layers)
        return fail(c, DJ_ERR_NOMEM, arr, NULL, "out of memory");
    for (size_t i = 0; i < n; i++) {
        dj_layer *L = &seq->layers[i];
        const dj_json_value *obj = dj_json_at(arr, i);
        seq->count = (int)i + 1;
        L->p_weight = L->p_bias = L->p_mean = L->p_var = L->p_count = -1;
        L->in = in;
        L->uid = c->m->nlayers++;
        c->layer = obj;
        c->type = NULL;
        if (c->m->nlayers > c->lim->max_layers)
            return fail(c, DJ_ERR_RANGE, obj, NULL, "model too large: more than %d layers",
                        c->lim->max_layers);
        int len = snprintf(L->name, sizeof L->name, "%s%zu", prefix, i);
        if (len < 0 || len > NN_MAX_NAME)
            return fail(c, DJ_ERR_RANGE, obj, NULL,
                        "layers nest too deeply: the parameter prefix \"%.40s...\" is longer "
                        "than %d characters",
                        L->name, NN_MAX_NAME);
        dj_status st = parse_layer(c, obj, L);
        if (!st)
            st = account(c, L);
        if (st)
            return st;
        in = L->out;
    }
    *out = in;
    return DJ_OK;
}

/* ---- the top level -------------------------------------------------------------- */

static dj_status parse_input(pctx *c, const dj_json_value *root)
{
    dj_model *m = c->m;
    const dj_json_value *v = dj_json_get(root, "input");
    char got[128];
    if (!v)
        return fail(c, DJ_ERR_PARSE, root, NULL,
                    "missing field \"input\" (the per-sample shape, e.g. [1, 28, 28])");
    size_t n = dj_json_len(v);
    if (dj_json_type_of(v) != DJ_JSON_ARRAY || (n != 1 && n != 3))
        return fail(c, DJ_ERR_PARSE, v, "input",
                    "expected [channels, height, width] or [features], got %s",
                    describe(v, got, sizeof got));
    m->input.ndim = (int)n;
    for (size_t i = 0; i < n; i++) {
        const dj_json_value *e = dj_json_at(v, i);
        int64_t max = (n == 3 && i > 0) ? NN_MAX_DIM : NN_MAX_CHANNELS;
        if (dj_json_type_of(e) != DJ_JSON_NUMBER || !dj_json_is_int(e))
            return fail(c, DJ_ERR_PARSE, e, "input", "expected positive integers, got %s",
                        describe(v, got, sizeof got));
        if (dj_json_int(e) < 1 || dj_json_int(e) > max)
            return fail(c, DJ_ERR_RANGE, e, "input", "%s: each size must be 1 to %lld",
                        describe(v, got, sizeof got), (long long)max);
        m->input.d[i] = dj_json_int(e);
    }
    uint64_t size = 1;
    for (size_t i = 0; i < n; i++)
        size = mul_sat(size, (uint64_t)m->input.d[i]);
    if (size > c->lim->max_layer_size)
        return fail(c, DJ_ERR_RANGE, v, "input",
                    "model too large: %llu values per sample (limit %llu)",
                    (unsigned long long)size, (unsigned long long)c->lim->max_layer_size);
    m->in_size = (size_t)size;
    m->acts = size;
    return DJ_OK;
}

static dj_status parse_normalize(pctx *c, const dj_json_value *root)
{
    dj_model *m = c->m;
    char got[128];
    m->norm_channels = m->input.ndim == 3 ? (int)m->input.d[0] : 1;
    m->norm_mean = malloc((size_t)m->norm_channels * sizeof(float));
    m->norm_std = malloc((size_t)m->norm_channels * sizeof(float));
    if (!m->norm_mean || !m->norm_std)
        return fail(c, DJ_ERR_NOMEM, NULL, NULL, "out of memory");
    for (int i = 0; i < m->norm_channels; i++) {
        m->norm_mean[i] = 0.0f;
        m->norm_std[i] = 1.0f;
    }
    const dj_json_value *v = dj_json_get(root, "normalize");
    if (!v)
        return DJ_OK;
    if (dj_json_type_of(v) != DJ_JSON_OBJECT)
        return fail(c, DJ_ERR_PARSE, v, "normalize",
                    "expected {\"mean\": [...], \"std\": [...]}, got %s",
                    describe(v, got, sizeof got));
    size_t nk = dj_json_len(v);
    for (size_t i = 0; i < nk; i++) {
        size_t klen;
        const char *k = dj_json_key_at(v, i, &klen);
        char kb[64];
        if (!(klen == 4 && memcmp(k, "mean", 4) == 0) && !(klen == 3 && memcmp(k, "std", 3) == 0))
            return fail(c, DJ_ERR_PARSE, dj_json_value_at(v, i), "normalize",
                        "unknown field \"%s\" (normalize takes mean, std)",
                        printable_key(k, klen, kb, sizeof kb));
    }
    const char *names[2] = {"mean", "std"};
    float *dst[2] = {m->norm_mean, m->norm_std};
    for (int k = 0; k < 2; k++) {
        char field[32];
        snprintf(field, sizeof field, "normalize.%s", names[k]);
        const dj_json_value *a = dj_json_get(v, names[k]);
        if (!a)
            return fail(c, DJ_ERR_PARSE, v, "normalize", "missing field \"%s\"", names[k]);
        if (dj_json_type_of(a) != DJ_JSON_ARRAY ||
            dj_json_len(a) != (size_t)m->norm_channels)
            return fail(c, DJ_ERR_PARSE, a, field,
                        "expected a list of %d number%s (one per input channel), got %s",
                        m->norm_channels, m->norm_channels == 1 ? "" : "s",
                        describe(a, got, sizeof got));
        for (int i = 0; i < m->norm_channels; i++) {
            const dj_json_value *e = dj_json_at(a, (size_t)i);
            if (dj_json_type_of(e) != DJ_JSON_NUMBER)
                return fail(c, DJ_ERR_PARSE, e, field, "expected numbers, got %s",
                            describe(e, got, sizeof got));
            double x = dj_json_number(e);
            float f = (float)x;
            if (!isfinite(f) || (k == 1 && !(f > 0)))
                return fail(c, DJ_ERR_RANGE, e, field, "%s must be %s, got %s",
                            k ? "std" : "mean",
                            k ? "positive (and representable in float32)"
                              : "representable in float32",
                            describe(e, got, sizeof got));
            dst[k][i] = f;
        }
    }
    return DJ_OK;
}

static dj_status build(pctx *c, const dj_json_value *root)
{
    dj_model *m = c->m;
    char got[128];
    dj_status st;
    if (dj_json_type_of(root) != DJ_JSON_OBJECT)
        return fail(c, DJ_ERR_PARSE, root, NULL, "expected a model object, got %s",
                    describe(root, got, sizeof got));
    size_t nk = dj_json_len(root);
    static const char *const keys[] = {"name", "description", "input", "normalize", "layers",
                                       "train", NULL};
    for (size_t i = 0; i < nk; i++) {
        size_t klen;
        const char *k = dj_json_key_at(root, i, &klen);
        char kb[64];
        int found = 0;
        for (const char *const *a = keys; *a && !found; a++)
            found = strlen(*a) == klen && memcmp(*a, k, klen) == 0;
        if (!found)
            return fail(c, DJ_ERR_PARSE, dj_json_value_at(root, i), NULL,
                        "unknown field \"%s\" (a model takes name, description, input, "
                        "normalize, layers, train)",
                        printable_key(k, klen, kb, sizeof kb));
    }
    const dj_json_value *v = dj_json_get(root, "name");
    if (v && dj_json_type_of(v) != DJ_JSON_STRING)
        return fail(c, DJ_ERR_PARSE, v, "name", "expected a string, got %s",
                    describe(v, got, sizeof got));
    v = dj_json_get(root, "description");
    if (v && dj_json_type_of(v) != DJ_JSON_STRING)
        return fail(c, DJ_ERR_PARSE, v, "description", "expected a string, got %s",
                    describe(v, got, sizeof got));
    const dj_json_value *name = dj_json_get(root, "name");
    if (name) {
        size_t len;
        const char *s = dj_json_string(name, &len);
        int printable = len > 0 && len <= 100;
        for (size_t i = 0; i < len && printable; i++)
            printable = (unsigned char)s[i] >= 0x20 && s[i] != 0x7f;
        if (!printable)
            return fail(c, DJ_ERR_PARSE, name, "name",
                        "expected a name of 1 to 100 printable characters, got %s",
                        describe(name, got, sizeof got));
        m->name = strdup(s);
    } else {
        /* the file name without directory and extension */
        const char *base = strrchr(c->source, '/');
        base = base ? base + 1 : c->source;
        size_t len = strlen(base);
        if (len > 5 && strcmp(base + len - 5, ".json") == 0)
            len -= 5;
        m->name = strndup(base, len ? len : 1);
    }
    if (!m->name)
        return fail(c, DJ_ERR_NOMEM, NULL, NULL, "out of memory");

    v = dj_json_get(root, "train");
    if (v && dj_json_type_of(v) != DJ_JSON_OBJECT)
        return fail(c, DJ_ERR_PARSE, v, "train", "expected an object, got %s",
                    describe(v, got, sizeof got));
    m->train = v;

    if ((st = parse_input(c, root)) || (st = parse_normalize(c, root)))
        return st;

    const dj_json_value *layers = dj_json_get(root, "layers");
    if (!layers)
        return fail(c, DJ_ERR_PARSE, root, NULL, "missing field \"layers\"");
    if (dj_json_type_of(layers) != DJ_JSON_ARRAY || dj_json_len(layers) == 0)
        return fail(c, DJ_ERR_PARSE, layers, "layers", "expected a non-empty list of layers, got %s",
                    describe(layers, got, sizeof got));
    if ((st = parse_seq(c, layers, "", m->input, &m->top, &m->output)))
        return st;
    c->layer = NULL;
    c->type = NULL;
    m->out_size = shape_size(&m->output);
    if (alloc_params(m))
        return fail(c, DJ_ERR_NOMEM, NULL, NULL, "out of memory for %zu parameters",
                    m->trainable);
    return DJ_OK;
}

dj_status dj_model_parse_limits(const char *text, size_t len, const char *source,
                                const dj_nn_limits *lim, dj_model **out, char *err,
                                size_t errlen)
{
    dj_json_doc *doc = NULL;
    dj_json_error jerr;
    if (err && errlen)
        err[0] = 0;
    if (!out)
        return DJ_ERR_ARG;
    *out = NULL;
    if (!source)
        source = "model spec";
    dj_status st = dj_json_parse(text, len, NULL, &doc, &jerr);
    if (st) {
        if (err && errlen)
            snprintf(err, errlen, "%s: %s", source, jerr.message);
        return st;
    }
    dj_model *m = calloc(1, sizeof *m);
    if (!m) {
        dj_json_free(doc);
        if (err && errlen)
            snprintf(err, errlen, "%s: out of memory", source);
        return DJ_ERR_NOMEM;
    }
    m->doc = doc;
    m->source = strdup(source);
    pctx c = {.source = source, .err = err, .errlen = errlen, .lim = lim, .m = m};
    st = m->source ? build(&c, dj_json_root(doc)) : fail(&c, DJ_ERR_NOMEM, NULL, NULL, "out of memory");
    if (st) {
        dj_model_free(m);
        return st;
    }
    *out = m;
    return DJ_OK;
}

dj_status dj_model_parse(const char *text, size_t len, const char *source, dj_model **out,
                         char *err, size_t errlen)
{
    dj_nn_limits lim;
    dj_nn_default_limits(&lim);
    return dj_model_parse_limits(text, len, source, &lim, out, err, errlen);
}

dj_status dj_model_load(const char *path, dj_model **out, char *err, size_t errlen)
{
    if (err && errlen)
        err[0] = 0;
    if (!out || !path)
        return DJ_ERR_ARG;
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) {
        if (err && errlen)
            snprintf(err, errlen, "cannot open model spec '%s': %s", path, strerror(errno));
        return DJ_ERR_IO;
    }
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    dj_status st = DJ_OK;
    while (buf) {
        len += fread(buf + len, 1, cap - len, f);
        if (len < cap)
            break;
        if (cap >= ((size_t)64 << 20)) {
            st = DJ_ERR_RANGE;
            break;
        }
        char *nb = realloc(buf, cap * 2);
        if (!nb) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = nb;
        cap *= 2;
    }
    int rerr = ferror(f);
    fclose(f);
    if (!buf) {
        if (err && errlen)
            snprintf(err, errlen, "%s: out of memory", path);
        return DJ_ERR_NOMEM;
    }
    if (st || rerr) {
        if (err && errlen)
            snprintf(err, errlen, st ? "%s: model spec larger than 64 MiB" : "%s: read error",
                     path);
        free(buf);
        return st ? st : DJ_ERR_IO;
    }
    st = dj_model_parse(buf, len, path, out, err, errlen);
    free(buf);
    return st;
}

/* ---- buffers -------------------------------------------------------------------- */

static void free_seq_plan(dj_seq *s);

static void free_layer_plan(dj_layer *L)
{
    dj_free(L->y);
    dj_free(L->save_mean);
    dj_free(L->save_invstd);
    dj_free(L->argmax);
    dj_free(L->mask);
    L->y = L->save_mean = L->save_invstd = NULL;
    L->argmax = NULL;
    L->mask = NULL;
    L->x = NULL;
    if (L->q) {
        dj_free(L->q->wc);
        dj_free(L->q->xc);
        dj_free(L->q->gc);
        L->q->wc = L->q->xc = L->q->gc = NULL;
    }
    if (L->kind == DJ_L_RESIDUAL) {
        free_seq_plan(&L->body);
        free_seq_plan(&L->shortcut);
    }
}

static void free_seq_plan(dj_seq *s)
{
    for (int i = 0; i < s->count; i++)
        free_layer_plan(&s->layers[i]);
    dj_free(s->gbuf[0]);
    dj_free(s->gbuf[1]);
    s->gbuf[0] = s->gbuf[1] = NULL;
}

/* One buffer of the plan: counted on the dry run, allocated on the real one. */
typedef struct {
    int alloc;
    uint64_t bytes;
    int failed;
    uint64_t max_elems; /* largest single buffer, in elements */
    size_t ws_floats;   /* conv workspace */
} plan_ctx;

/* Counts a buffer; on the allocating run also allocates it into *dst (the
 * dry run leaves *dst alone so that a plan in use survives a refusal). */
static void plan_buf(plan_ctx *p, void *dst, uint64_t elems, size_t elem_size)
{
    if (elems > p->max_elems)
        p->max_elems = elems;
    uint64_t b = mul_sat(elems, elem_size);
    p->bytes = add_sat(p->bytes, (b + 63) & ~(uint64_t)63);
    if (!p->alloc)
        return;
    void *q = NULL;
    if (!p->failed && b > 0) {
        q = dj_calloc((size_t)b);
        if (!q)
            p->failed = 1;
    }
    memcpy(dst, &q, sizeof q);
}

/* Code buffers of a quantised Conv2d/Linear: weights, input, output grad. */
static void plan_quant(dj_model *m, dj_layer *L, int B, plan_ctx *p)
{
    if (!L->q)
        return;
    const size_t es = (size_t)dj_format_desc_of(L->q->x.fmt)->bits / 8;
    plan_buf(p, &L->q->wc, m->params[L->p_weight].value.numel, es);
    plan_buf(p, &L->q->xc, L->x_from ? 0 : (uint64_t)B * L->in_size, es);
    plan_buf(p, &L->q->gc, (uint64_t)B * L->out_size, es);
}

/* Whether layer i of s is a ReLU fused into the MaxPool2d after it, or
 * that pool. */
static int relu_pool_at(const dj_seq *s, int i)
{
    const dj_layer_kind k = s->layers[i].kind;
    return (k == DJ_L_RELU && i + 1 < s->count && s->layers[i + 1].kind == DJ_L_MAXPOOL2D) ||
           (k == DJ_L_MAXPOOL2D && i > 0 && s->layers[i - 1].kind == DJ_L_RELU);
}

/* Whether layer i of s is a layer of kind k with the ReLU after it fused in,
 * or that ReLU (one that a pool does not take). */
static int relu_after_at(const dj_seq *s, int i, dj_layer_kind k)
{
    const dj_layer_kind ki = s->layers[i].kind;
    if (ki == k)
        return i + 1 < s->count && s->layers[i + 1].kind == DJ_L_RELU && !relu_pool_at(s, i + 1);
    return ki == DJ_L_RELU && i > 0 && s->layers[i - 1].kind == k && !relu_pool_at(s, i);
}

static void plan_seq(dj_model *m, dj_seq *s, int B, int nthreads, plan_ctx *p)
{
    size_t gsize = 0;
    for (int i = 0; i < s->count; i++) {
        dj_layer *L = &s->layers[i];
        uint64_t nout = (uint64_t)B * L->out_size, nin = (uint64_t)B * L->in_size;
        if (L->in_size > gsize)
            gsize = L->in_size;
        L->relu_pool = relu_pool_at(s, i);
        L->bn_relu = relu_after_at(s, i, DJ_L_BATCHNORM2D);
        L->res_relu = relu_after_at(s, i, DJ_L_RESIDUAL);
        L->conv_relu = relu_after_at(s, i, DJ_L_CONV2D);
        switch (L->kind) {
        case DJ_L_CONV2D: {
            dj_conv2d_dims d;
            plan_buf(p, &L->y, nout, sizeof(float));
            if (dj_conv2d_dims_init(&d, B, (int)L->in.d[0], (int)L->in.d[1], (int)L->in.d[2],
                                    L->out_ch, L->kh, L->kw, L->sh, L->sw, L->ph, L->pw) == DJ_OK) {
                size_t ws = dj_conv2d_q_workspace(&d, nthreads);
                if (ws > p->ws_floats)
                    p->ws_floats = ws;
            }
            plan_quant(m, L, B, p);
            break;
        }
        case DJ_L_LINEAR: {
            const int in = (int)L->in_size, out = L->out_ch;
            const size_t ws[3] = {dj_gemm_q_workspace(B, out, in, nthreads),
                                  dj_gemm_q_workspace(out, in, B, nthreads),
                                  dj_gemm_q_workspace(B, in, out, nthreads)};
            for (int k = 0; k < 3; k++)
                if (ws[k] > p->ws_floats)
                    p->ws_floats = ws[k];
            plan_buf(p, &L->y, nout, sizeof(float));
            plan_quant(m, L, B, p);
            break;
        }
        case DJ_L_RELU:
        case DJ_L_GELU:
        case DJ_L_SILU:
        case DJ_L_AVGPOOL2D:
        case DJ_L_ADAPTIVEAVGPOOL2D:
            if (!dj_nn_relu_forward_fused(L))
                plan_buf(p, &L->y, nout, sizeof(float));
            break;
        case DJ_L_BATCHNORM2D:
            plan_buf(p, &L->y, nout, sizeof(float));
            plan_buf(p, &L->save_mean, (uint64_t)L->in.d[0], sizeof(float));
            plan_buf(p, &L->save_invstd, (uint64_t)L->in.d[0], sizeof(float));
            break;
        case DJ_L_LAYERNORM:
            plan_buf(p, &L->y, nout, sizeof(float));
            plan_buf(p, &L->save_mean, (uint64_t)B, sizeof(float));
            plan_buf(p, &L->save_invstd, (uint64_t)B, sizeof(float));
            break;
        case DJ_L_MAXPOOL2D:
            plan_buf(p, &L->y, nout, sizeof(float));
            plan_buf(p, &L->argmax, nout, sizeof(int32_t));
            break;
        case DJ_L_DROPOUT:
            if (L->p > 0) {
                plan_buf(p, &L->y, nout, sizeof(float));
                plan_buf(p, &L->mask, nin, 1);
            }
            break;
        case DJ_L_RESIDUAL:
            plan_buf(p, &L->y, nout, sizeof(float));
            plan_seq(m, &L->body, B, nthreads, p);
            if (L->has_shortcut)
                plan_seq(m, &L->shortcut, B, nthreads, p);
            break;
        default:
            break;
        }
    }
    s->gsize = gsize;
    plan_buf(p, &s->gbuf[0], (uint64_t)B * gsize, sizeof(float));
    plan_buf(p, &s->gbuf[1], (uint64_t)B * gsize, sizeof(float));
}

dj_status dj_model_prepare(dj_model *m, int max_batch, int nthreads)
{
    if (!m)
        return DJ_ERR_ARG;
    m->error[0] = 0;
    if (max_batch < 1 || nthreads < 1) {
        snprintf(m->error, sizeof m->error, "%s: batch size %d and thread count %d must be >= 1",
                 m->name, max_batch, nthreads);
        return DJ_ERR_ARG;
    }
    if (m->max_batch >= max_batch && m->nthreads >= nthreads)
        return DJ_OK;
    if (max_batch < m->max_batch)
        max_batch = m->max_batch;
    if (nthreads < m->nthreads)
        nthreads = m->nthreads;

    /* dry run: count */
    plan_ctx p = {0};
    plan_seq(m, &m->top, max_batch, nthreads, &p);
    p.bytes = add_sat(p.bytes, mul_sat(p.ws_floats, sizeof(float)));
    if (p.max_elems > (uint64_t)INT32_MAX || p.ws_floats > (uint64_t)INT32_MAX ||
        p.bytes > NN_MAX_PLAN_BYTES) {
        snprintf(m->error, sizeof m->error,
                 "%s: batch %d needs %.1f GiB of activations and scratch, more than the "
                 "limit (%llu GiB, and 2^31 values per buffer)",
                 m->name, max_batch, (double)p.bytes / (1 << 30),
                 (unsigned long long)(NN_MAX_PLAN_BYTES >> 30));
        return DJ_ERR_RANGE;
    }

    free_seq_plan(&m->top);
    dj_free(m->ws);
    m->ws = NULL;
    m->max_batch = m->nthreads = 0;
    m->last_n = 0;
    m->dinput = NULL;

    p = (plan_ctx){.alloc = 1};
    plan_seq(m, &m->top, max_batch, nthreads, &p);
    m->ws_floats = p.ws_floats;
    if (!p.failed && m->ws_floats) {
        m->ws = dj_calloc(m->ws_floats * sizeof(float));
        p.failed = m->ws == NULL;
    }
    if (p.failed) {
        free_seq_plan(&m->top);
        dj_free(m->ws);
        m->ws = NULL;
        snprintf(m->error, sizeof m->error,
                 "%s: out of memory allocating %.1f GiB of activations for batch %d", m->name,
                 (double)p.bytes / (1 << 30), max_batch);
        return DJ_ERR_NOMEM;
    }
    m->plan_bytes = (size_t)p.bytes;
    m->max_batch = max_batch;
    m->nthreads = nthreads;
    return DJ_OK;
}

const char *dj_model_error(const dj_model *m)
{
    return m ? m->error : "no model";
}

/* ---- forward and backward entry points ---------------------------------------------- */

const float *dj_model_forward(dj_model *m, dj_pool *pool, const float *x, int n, int train,
                              uint64_t seed, uint64_t step)
{
    if (!m || !x || n < 1 || n > m->max_batch || dj_pool_threads(pool) > m->nthreads)
        return NULL;
    m->last_n = 0;
    m->dinput = NULL;
    m->last_seed = seed;
    m->last_step = step;
    const float *y = dj_seq_forward(m, &m->top, pool, x, n, train ? 1 : 0, seed, step);
    m->last_n = n;
    m->last_train = train ? 1 : 0;
    m->out = y;
    return y;
}

void dj_model_backward(dj_model *m, dj_pool *pool, const float *dlogits)
{
    if (!m || !dlogits || m->last_n < 1 || dj_pool_threads(pool) > m->nthreads)
        return;
    m->dinput = dj_seq_backward(m, &m->top, pool, dlogits, m->last_n, m->want_dinput);
}

void dj_model_set_input_grad(dj_model *m, int on)
{
    m->want_dinput = on ? 1 : 0;
}

const float *dj_model_input_grad(const dj_model *m)
{
    return m->want_dinput ? m->dinput : NULL;
}

/* ---- accessors and teardown ---------------------------------------------------------- */

static void free_seq(dj_seq *s)
{
    for (int i = 0; i < s->count; i++) {
        free(s->layers[i].q);
        s->layers[i].q = NULL;
    }
    for (int i = 0; i < s->count; i++)
        if (s->layers[i].kind == DJ_L_RESIDUAL) {
            free_seq(&s->layers[i].body);
            free_seq(&s->layers[i].shortcut);
        }
    free(s->layers);
    s->layers = NULL;
    s->count = 0;
}

void dj_model_free(dj_model *m)
{
    if (!m)
        return;
    free_seq_plan(&m->top);
    free_seq(&m->top);
    dj_free(m->ws);
    for (size_t i = 0; i < m->nparams; i++) {
        dj_tensor_free(&m->params[i].value);
        dj_tensor_free(&m->params[i].grad);
    }
    free(m->params);
    free(m->norm_mean);
    free(m->norm_std);
    free(m->name);
    free(m->source);
    dj_json_free(m->doc);
    free(m);
}

const char *dj_model_name(const dj_model *m)
{
    return m->name;
}

const dj_json_value *dj_model_train_spec(const dj_model *m)
{
    return m->train;
}

int dj_model_input_shape(const dj_model *m, int64_t shape[3])
{
    for (int i = 0; i < 3; i++)
        shape[i] = i < m->input.ndim ? m->input.d[i] : 0;
    return m->input.ndim;
}

size_t dj_model_input_size(const dj_model *m)
{
    return m->in_size;
}

size_t dj_model_output_size(const dj_model *m)
{
    return m->out_size;
}

const float *dj_model_norm_mean(const dj_model *m)
{
    return m->norm_mean;
}

const float *dj_model_norm_std(const dj_model *m)
{
    return m->norm_std;
}

dj_param *dj_model_params(dj_model *m, size_t *count)
{
    if (count)
        *count = m->nparams;
    return m->params;
}

size_t dj_model_param_count(const dj_model *m)
{
    return m->trainable;
}

uint64_t dj_model_flops(const dj_model *m)
{
    return m->flops;
}

/* ---- summary ------------------------------------------------------------------------- */

typedef struct {
    char *buf;
    size_t size, pos;
} sbuf;

static void sb_printf(sbuf *b, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

static void sb_printf(sbuf *b, const char *fmt, ...)
{
    if (b->pos >= b->size)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b->buf + b->pos, b->size - b->pos, fmt, ap);
    va_end(ap);
    if (n > 0)
        b->pos += (size_t)n;
    if (b->pos >= b->size)
        b->pos = b->size;
}

static size_t layer_params(const dj_model *m, const dj_layer *L)
{
    size_t n = 0;
    if (L->p_weight >= 0)
        n += m->params[L->p_weight].value.numel;
    if (L->p_bias >= 0)
        n += m->params[L->p_bias].value.numel;
    if (L->kind == DJ_L_RESIDUAL) {
        for (int i = 0; i < L->body.count; i++)
            n += layer_params(m, &L->body.layers[i]);
        for (int i = 0; i < L->shortcut.count; i++)
            n += layer_params(m, &L->shortcut.layers[i]);
    }
    return n;
}

static void summary_seq(const dj_model *m, const dj_seq *s, int indent, sbuf *b)
{
    for (int i = 0; i < s->count; i++) {
        const dj_layer *L = &s->layers[i];
        char shape[80], label[160];
        snprintf(label, sizeof label, "%*s%s", indent, "", L->name);
        sb_printf(b, "%-24s %-18s %-16s %10zu\n", label, dj_layer_kind_name(L->kind),
                  shape_str(&L->out, shape, sizeof shape), layer_params(m, L));
        if (L->kind == DJ_L_RESIDUAL) {
            summary_seq(m, &L->body, indent + 2, b);
            summary_seq(m, &L->shortcut, indent + 2, b);
        }
    }
}

void dj_model_summary(const dj_model *m, char *buf, size_t size)
{
    if (!buf || size == 0)
        return;
    buf[0] = 0;
    sbuf b = {buf, size, 0};
    char shape[80];
    sb_printf(&b, "%s: input %s\n", m->name, shape_str(&m->input, shape, sizeof shape));
    sb_printf(&b, "%-24s %-18s %-16s %10s\n", "layer", "type", "output", "params");
    summary_seq(m, &m->top, 0, &b);
    sb_printf(&b, "total: %zu parameters, %.2f MFLOP forward per sample, %llu activations per sample\n",
              m->trainable, (double)m->flops / 1e6, (unsigned long long)m->acts);
    buf[size - 1] = 0;
}

typedef void (*layer_fn)(dj_layer *L, void *arg);

static void visit(dj_seq *s, layer_fn fn, void *arg)
{
    for (int i = 0; i < s->count; i++) {
        dj_layer *L = &s->layers[i];
        fn(L, arg);
        if (L->kind == DJ_L_RESIDUAL) {
            visit(&L->body, fn, arg);
            if (L->has_shortcut)
                visit(&L->shortcut, fn, arg);
        }
    }
}

/* ---- per-layer profile -------------------------------------------------------------- */

static void zero_times(dj_layer *L, void *arg)
{
    (void)arg;
    L->t_fwd = L->t_bwd = L->t_enc = L->t_cpu = 0;
}

void dj_model_profile(dj_model *m, int on)
{
    if (!m)
        return;
    if (on)
        visit(&m->top, zero_times, NULL);
    m->profile = on ? 1 : 0;
}

/* Inclusive forward, backward and CPU seconds of a sequence. */
static void seq_times(const dj_seq *s, double *f, double *b, double *c)
{
    for (int i = 0; i < s->count; i++) {
        *f += s->layers[i].t_fwd;
        *b += s->layers[i].t_bwd;
        *c += s->layers[i].t_cpu;
    }
}

static void profile_seq(const dj_seq *s, int depth, dj_layer_profile *out, size_t cap, size_t *k)
{
    for (int i = 0; i < s->count; i++) {
        const dj_layer *L = &s->layers[i];
        if (out && *k < cap) {
            dj_layer_profile *p = &out[*k];
            memset(p, 0, sizeof *p);
            snprintf(p->name, sizeof p->name, "%s", L->name);
            p->kind = dj_layer_kind_name(L->kind);
            p->depth = depth;
            p->fused = L->kind != DJ_L_RELU ? 0
                       : L->relu_pool              ? 1
                       : L->bn_relu || L->res_relu ? 2
                                                   : 0;
            p->out_ndim = L->out.ndim;
            for (int d = 0; d < L->out.ndim && d < 3; d++)
                p->out[d] = L->out.d[d];
            double f = L->t_fwd, b = L->t_bwd, cpu = L->t_cpu;
            if (L->kind == DJ_L_RESIDUAL) { /* self time: the sum */
                double cf = 0, cb = 0, cc = 0;
                seq_times(&L->body, &cf, &cb, &cc);
                seq_times(&L->shortcut, &cf, &cb, &cc);
                f -= cf;
                b -= cb;
                cpu -= cc;
            }
            p->forward_s = f > 0 ? f : 0;
            p->backward_s = b > 0 ? b : 0;
            p->cpu_s = cpu > 0 ? cpu : 0;
            p->encode_s = L->t_enc;
        }
        (*k)++;
        if (L->kind == DJ_L_RESIDUAL) {
            profile_seq(&L->body, depth + 1, out, cap, k);
            profile_seq(&L->shortcut, depth + 1, out, cap, k);
        }
    }
}

size_t dj_model_profile_report(const dj_model *m, dj_layer_profile *out, size_t cap)
{
    size_t k = 0;
    if (m)
        profile_seq(&m->top, 0, out, cap, &k);
    return k;
}

/* ---- precision policies ---------------------------------------------------------------- */

/* The Conv2d/Linear layers in depth-first order: counted on a first walk
 * (gemm == NULL), collected on a second. */
typedef struct {
    dj_layer **gemm;
    int n;
} gemm_list;

static void collect_gemm(dj_layer *L, void *arg)
{
    gemm_list *g = arg;
    if (L->kind == DJ_L_CONV2D || L->kind == DJ_L_LINEAR) {
        if (g->gemm)
            g->gemm[g->n] = L;
        g->n++;
    }
}

static void drop_quant(dj_layer *L, void *arg)
{
    (void)arg;
    free(L->q);
    L->q = NULL;
    L->x_from = NULL;
}

/* A residual block whose body and shortcut each start with a quantised
 * Conv2d: the shortcut's takes the body's input codes (dj_layer.x_from). */
static void share_block_input(dj_layer *L, void *arg)
{
    (void)arg;
    if (L->kind != DJ_L_RESIDUAL || !L->has_shortcut || !L->body.count || !L->shortcut.count)
        return;
    dj_layer *b = &L->body.layers[0], *s = &L->shortcut.layers[0];
    if (b->kind == DJ_L_CONV2D && s->kind == DJ_L_CONV2D && b->q && s->q &&
        b->q->x.fmt == s->q->x.fmt && b->q->x.rounding == s->q->x.rounding &&
        b->q->x.scaled == s->q->x.scaled && b->q->x.current == s->q->x.current &&
        b->q->x.history == s->q->x.history && b->q->x.margin == s->q->x.margin)
        s->x_from = b;
}

dj_status dj_model_set_precision(dj_model *m, const dj_precision_config *pc)
{
    if (!m || !pc || (unsigned)pc->precision >= DJ_PREC_COUNT)
        return DJ_ERR_ARG;
    m->error[0] = 0;
    /* the plan's code buffers belong to the old policy */
    free_seq_plan(&m->top);
    dj_free(m->ws);
    m->ws = NULL;
    m->max_batch = m->nthreads = 0;
    m->last_n = 0;
    visit(&m->top, drop_quant, NULL);
    m->prec = *pc;

    gemm_list gl = {NULL, 0}, *g = &gl;
    visit(&m->top, collect_gemm, g);
    g->gemm = calloc((size_t)g->n + 1, sizeof *g->gemm);
    char *keep = calloc((size_t)g->n + 1, 1);
    if (!g->gemm || !keep) {
        free(g->gemm);
        free(keep);
        return DJ_ERR_NOMEM;
    }
    g->n = 0;
    visit(&m->top, collect_gemm, g);
    /* keep_fp32: comma-separated "first", "last", "none" or layer names */
    char list[sizeof pc->keep_fp32];
    snprintf(list, sizeof list, "%s", pc->keep_fp32);
    dj_status st = DJ_OK;
    for (char *save = NULL, *tok = strtok_r(list, ", ", &save); tok;
         tok = strtok_r(NULL, ", ", &save)) {
        if (!strcmp(tok, "none"))
            continue;
        if (!strcmp(tok, "first") || !strcmp(tok, "last")) {
            if (g->n)
                keep[tok[0] == 'f' ? 0 : g->n - 1] = 1;
            continue;
        }
        int found = 0;
        for (int i = 0; i < g->n; i++)
            if (!strcmp(g->gemm[i]->name, tok))
                keep[i] = found = 1;
        if (!found) {
            snprintf(m->error, sizeof m->error,
                     "%s: keep_fp32 names \"%.40s\", which is no Conv2d or Linear layer of the "
                     "model (names are state_dict prefixes such as 0 or 3.body.0)",
                     m->name, tok);
            st = DJ_ERR_ARG;
            break;
        }
    }
    const dj_precision_formats f = dj_precision_formats_of(pc->precision);
    for (int i = 0; st == DJ_OK && i < g->n && f.fwd != DJ_FMT_COUNT; i++) {
        if (keep[i])
            continue;
        dj_layer_quant *q = calloc(1, sizeof *q);
        if (!q) {
            st = DJ_ERR_NOMEM;
            break;
        }
        const int cur = pc->scaling == DJ_SCALING_CURRENT;
        dj_quant_init(&q->w, f.fwd, f.fwd_round, f.scaled, 1, 1, pc->margin);
        dj_quant_init(&q->x, f.fwd, f.fwd_round, f.scaled, cur, pc->history, pc->margin);
        dj_quant_init(&q->g, f.bwd, f.bwd_round, f.scaled, cur, pc->history, pc->margin);
        g->gemm[i]->q = q;
    }
    if (st)
        visit(&m->top, drop_quant, NULL);
    else
        visit(&m->top, share_block_input, NULL);
    free(keep);
    free(g->gemm);
    return st;
}

typedef struct {
    dj_quant_stat *out;
    size_t cap, n;
    int reset;
} stat_ctx;

static void stat_one(stat_ctx *c, const char *layer, const char *what, dj_quant *q)
{
    if (c->out && c->n < c->cap) {
        dj_quant_stat *s = &c->out[c->n];
        memset(s, 0, sizeof *s);
        snprintf(s->name, sizeof s->name, "%s.%s", layer, what);
        s->format = dj_format_desc_of(q->fmt)->name;
        s->scaled = q->scaled;
        s->bias_min = q->calls ? q->bias_min : q->bias;
        s->bias_max = q->calls ? q->bias_max : q->bias;
        s->amax = q->amax;
        s->overflow = q->overflow;
        s->underflow = q->underflow;
        s->elements = q->elements;
        s->steps = q->calls;
    }
    c->n++;
    if (c->reset) {
        q->overflow = q->underflow = q->elements = q->calls = 0;
        q->bias_min = 1 << 30;
        q->bias_max = -(1 << 30);
        q->amax = 0.0f;
    }
}

static void stat_layer(dj_layer *L, void *arg)
{
    if (!L->q)
        return;
    stat_one(arg, L->name, "weight", &L->q->w);
    stat_one(arg, L->name, "input", &L->q->x);
    stat_one(arg, L->name, "grad_output", &L->q->g);
}

size_t dj_model_quant_stats(dj_model *m, dj_quant_stat *out, size_t cap, int reset)
{
    stat_ctx c = {out, cap, 0, reset};
    visit(&m->top, stat_layer, &c);
    return c.n;
}

static void new_epoch_layer(dj_layer *L, void *arg)
{
    (void)arg;
    if (L->q) {
        dj_quant_reset_history(&L->q->x);
        dj_quant_reset_history(&L->q->g);
    }
}

void dj_model_quant_new_epoch(dj_model *m)
{
    visit(&m->top, new_epoch_layer, NULL);
}

typedef struct {
    const dj_model *m;
    size_t bytes;
} wbytes_ctx;

static void wbytes_layer(dj_layer *L, void *arg)
{
    wbytes_ctx *c = arg;
    if (L->q)
        c->bytes += c->m->params[L->p_weight].value.numel *
                    (size_t)(dj_format_desc_of(L->q->w.fmt)->bits / 8);
}

size_t dj_model_quant_weight_bytes(const dj_model *m)
{
    wbytes_ctx c = {m, 0};
    visit((dj_seq *)&m->top, wbytes_layer, &c);
    return c.bytes;
}

typedef struct {
    size_t i;
    int found;
} pq_ctx;

static void pq_layer(dj_layer *L, void *arg)
{
    pq_ctx *c = arg;
    if (L->q && L->p_weight >= 0 && (size_t)L->p_weight == c->i)
        c->found = 1;
}

int dj_model_param_quantized(const dj_model *m, size_t i)
{
    pq_ctx c = {i, 0};
    visit((dj_seq *)&m->top, pq_layer, &c);
    return c.found;
}
