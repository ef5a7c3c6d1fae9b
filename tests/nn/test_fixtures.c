/* test_fixtures.c - Dojo's layers, loss and optimizer against PyTorch.
 *
 * Why this exists: test_gradcheck proves each backward consistent with its
 * own forward, but not that the forward means what PyTorch's does (padding,
 * weight layout, BatchNorm's running statistics, GELU's form, SGD's
 * Nesterov step...). tools/gen_fixtures.py ran PyTorch (float64) on every
 * layer type and on one SGD step of models/fmnist-cnn.json and wrote the
 * results to the .safetensors files in tests/fixtures/; this program builds the same
 * models from the spec text stored in each fixture, fills inputs, parameters
 * and upstream gradients from the same integer-hash formula (reproduced here
 * bit-exactly, so no parameter tensors need storing), runs Dojo, and
 * compares. CI needs no PyTorch; regenerate with
 *     /usr/bin/python3 tools/gen_fixtures.py
 * The fixture layout is described at the top of that script.
 *
 * Tolerances (err = max |got - expected| over a tensor):
 *   forward values (outputs, logits, loss, running statistics):
 *       err <= 1e-5 * max(1, max |expected|)
 *     float32 keeps ~6e-8 relative; a dot product of K terms in another
 *     order differs by ~sqrt(K) ulps of its terms, well under 1e-5 for the
 *     K <= 9217 here, while a wrong padding, stride or transposed weight
 *     moves outputs by O(1) of their scale.
 *   gradients (input and parameters, momentum buffers):
 *       err <= 1e-4 * max |expected|
 *     relative to the tensor's largest value (its infinity norm) so that
 *     every element is held to the same absolute bar, floored at 1e-3 of
 *     the case's largest expected gradient: a gradient that is zero in exact
 *     arithmetic (a conv bias feeding BatchNorm: ~1e-16 in float64) comes
 *     out of any float32 implementation as rounding noise (~1e-7) that no
 *     relative bar can hold. Backward passes sum
 *     over the batch and spatial positions and BatchNorm/LayerNorm subtract
 *     means (cancellation), so they get 10x the forward's slack. A missing
 *     term of the sum (one sample, a border row) is far above 1e-4.
 *     Tensors over 100k elements are compared on their first 2 rows, every
 *     97th element and their L2 norm (relative 1e-4).
 *   parameters after one SGD step:
 *       |got - expected| <= 1e-4 * max |expected - before| + 2^-22 * |expected|
 *     i.e. the update itself to the gradient tolerance, plus two float32
 *     roundings of the weight (Dojo's and the fixture's storage).
 * The reference is PyTorch in float64, so these bound Dojo's own error. */
#define _POSIX_C_SOURCE 200809L

#include <dirent.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dojo/kernels.h"
#include "dojo/nn.h"
#include "dojo/pool.h"
#include "dojo/safetensors.h"
#include "harness.h"
#include "nn/nn_internal.h"

#define FIXTURE_DIR "tests/fixtures"
#define TOL_FWD 1e-5
#define TOL_GRAD 1e-4
#define GRAD_FLOOR 1e-3
#define THREADS 2

/* ---- the formula (must match tools/gen_fixtures.py bit for bit) ------------- */

static uint32_t fx_mix(uint32_t i, uint32_t stream)
{
    uint32_t h = i * 0x9E3779B1u + (stream * 0x85EBCA77u + 0x7F4A7C15u);
    h ^= h >> 16;
    h *= 0x85EBCA6Bu;
    h ^= h >> 13;
    h *= 0xC2B2AE35u;
    h ^= h >> 16;
    return h;
}

/* float32(int32(mix >> 8) - 2^23) * 2^(e - 24) + o: the product is exact,
 * the sum is the only rounding, as in numpy's float32 arithmetic. */
static void fx_fill(float *dst, size_t n, uint32_t stream, int e, float o)
{
    float scale = ldexpf(1.0f, e - 24);
    for (size_t i = 0; i < n; i++) {
        float k = (float)((int32_t)(fx_mix((uint32_t)i, stream) >> 8) - 8388608);
        dst[i] = k * scale + o;
    }
}

typedef struct {
    unsigned stream;
    int e;
    float o;
} fx_formula;

/* "stream e o" from metadata. */
static int fx_formula_get(const dj_st_file *f, const char *key, fx_formula *out)
{
    const char *v = dj_safetensors_meta(f, key);
    int o = 0;
    if (!v || sscanf(v, "%u %d %d", &out->stream, &out->e, &o) != 3)
        return -1;
    out->o = (float)o;
    return 0;
}

/* ---- reading fixture tensors ---------------------------------------------- */

typedef struct {
    const char *file;   /* case name for messages */
    double worst;       /* largest err / tolerance seen */
    char worst_what[256];
    double grad_scale;  /* max |expected| over all of the case's grad.* tensors */
    int compared;
} fx_case;

static int g_verbose; /* DOJO_TEST_VERBOSE=1: one line per compared tensor */

static void fx_note(fx_case *c, const char *what, double ratio)
{
    if (g_verbose)
        printf("    %-24s %-28s error/tolerance %.3g\n", c->file, what, ratio);
    c->compared++;
    if (ratio > c->worst || c->compared == 1) {
        c->worst = ratio;
        snprintf(c->worst_what, sizeof c->worst_what, "%s", what);
    }
}

/* A malloc'd float copy of fixture tensor `name` (NULL if absent or not F32). */
static float *fx_floats(const dj_st_file *f, const char *name, size_t *n)
{
    const dj_st_tensor *t = dj_safetensors_find(f, name);
    if (!t || t->dtype != DJ_DT_F32)
        return NULL;
    *n = t->nbytes / sizeof(float);
    float *v = malloc(t->nbytes ? t->nbytes : 1);
    if (v)
        memcpy(v, t->data, t->nbytes);
    return v;
}

static int64_t *fx_ints(const dj_st_file *f, const char *name, size_t *n)
{
    const dj_st_tensor *t = dj_safetensors_find(f, name);
    if (!t || t->dtype != DJ_DT_I64)
        return NULL;
    *n = t->nbytes / sizeof(int64_t);
    int64_t *v = malloc(t->nbytes ? t->nbytes : 1);
    if (v)
        memcpy(v, t->data, t->nbytes);
    return v;
}

/* ---- comparisons ----------------------------------------------------------- */

typedef enum { CMP_FWD, CMP_GRAD, CMP_UPDATE } cmp_kind;

/* Compares got[idx[j]] (or got[j] when idx is NULL) with exp[j], j < n.
 * before (CMP_UPDATE only) holds the values before the update, indexed
 * like got. */
static void cmp_values(fx_case *c, const char *what, cmp_kind kind, const float *got,
                       const float *exp, const int64_t *idx, size_t n, const float *before)
{
    double max_exp = 0, max_delta = 0;
    for (size_t j = 0; j < n; j++) {
        size_t g = idx ? (size_t)idx[j] : j;
        max_exp = fmax(max_exp, fabs(exp[j]));
        if (kind == CMP_UPDATE)
            max_delta = fmax(max_delta, fabs((double)exp[j] - before[g]));
    }
    double worst = 0, worst_err = 0, worst_tol = 1, worst_exp = 0;
    size_t worst_j = 0;
    int bad_value = 0;
    for (size_t j = 0; j < n; j++) {
        size_t g = idx ? (size_t)idx[j] : j;
        double err = fabs((double)got[g] - exp[j]);
        double tol = kind == CMP_FWD    ? TOL_FWD * fmax(1.0, max_exp)
                     : kind == CMP_GRAD ? TOL_GRAD * fmax(max_exp, GRAD_FLOOR * c->grad_scale)
                                        : TOL_GRAD * max_delta + ldexp(fabs(exp[j]), -22);
        if (tol == 0)
            tol = 1e-30; /* an all-zero expectation must be met exactly */
        if (!isfinite(got[g]))
            bad_value = 1, err = INFINITY;
        if (err / tol > worst || j == 0) {
            worst = err / tol, worst_err = err, worst_tol = tol, worst_exp = exp[j];
            worst_j = g;
        }
    }
    fx_note(c, what, worst);
    CHECK(!bad_value && worst <= 1.0,
          "%s: %s: max error %.3g at element %zu (got %.9g, expected %.9g), tolerance %.3g "
          "(max |expected| %.3g)",
          c->file, what, worst_err, worst_j, (double)got[worst_j], worst_exp, worst_tol, max_exp);
}

/* Compares the whole Dojo tensor got (n values) with fixture key `key`,
 * stored whole or, for big tensors, as key.rows / key.sample (at
 * sample_index.<param>) / key.norm. */
static void cmp_tensor(fx_case *c, const dj_st_file *f, const char *key, const char *param,
                       cmp_kind kind, const float *got, size_t n, const float *before)
{
    size_t m = 0;
    float *exp = fx_floats(f, key, &m);
    char k2[256];
    if (exp) {
        CHECK(m == n, "%s: %s has %zu values in the fixture, Dojo has %zu", c->file, key, m, n);
        if (m == n)
            cmp_values(c, key, kind, got, exp, NULL, n, before);
        free(exp);
        return;
    }
    /* subset form */
    snprintf(k2, sizeof k2, "%s.rows", key);
    float *rows = fx_floats(f, k2, &m);
    CHECK(rows != NULL, "%s: fixture has no %s (nor %s)", c->file, key, k2);
    if (!rows)
        return;
    CHECK(m <= n, "%s: %s has %zu values, the Dojo tensor %zu", c->file, k2, m, n);
    if (m <= n)
        cmp_values(c, k2, kind, got, rows, NULL, m, before);
    free(rows);

    snprintf(k2, sizeof k2, "sample_index.%s", param);
    size_t ni = 0, ns = 0;
    int64_t *idx = fx_ints(f, k2, &ni);
    snprintf(k2, sizeof k2, "%s.sample", key);
    float *sample = fx_floats(f, k2, &ns);
    CHECK(idx && sample && ni == ns, "%s: %s or its sample_index is missing", c->file, k2);
    int in_range = 1;
    for (size_t j = 0; idx && j < ni; j++)
        in_range &= idx[j] >= 0 && (size_t)idx[j] < n;
    CHECK(in_range, "%s: sample_index.%s out of range", c->file, param);
    if (idx && sample && ni == ns && in_range)
        cmp_values(c, k2, kind, got, sample, idx, ns, before);
    free(idx);
    free(sample);

    snprintf(k2, sizeof k2, "%s.norm", key);
    float *norm = fx_floats(f, k2, &m);
    CHECK(norm && m == 1, "%s: fixture has no %s", c->file, k2);
    if (norm && m == 1) {
        double s = 0;
        for (size_t i = 0; i < n; i++)
            s += (double)got[i] * got[i];
        double err = fabs(sqrt(s) - norm[0]), tol = TOL_GRAD * norm[0];
        fx_note(c, k2, tol > 0 ? err / tol : err);
        CHECK(err <= tol, "%s: %s: got %.9g, expected %.9g", c->file, k2, sqrt(s), (double)norm[0]);
    }
    free(norm);
}

/* ---- one fixture ------------------------------------------------------------- */

static dj_param *find_param(dj_param *ps, size_t np, const char *name)
{
    for (size_t i = 0; i < np; i++)
        if (!strcmp(ps[i].name, name))
            return &ps[i];
    return NULL;
}

/* Sets every parameter by its formula; checks that Dojo's names and
 * PyTorch's state_dict names are the same set. Returns 0 when all matched. */
static int set_params(fx_case *c, const dj_st_file *f, dj_model *m)
{
    size_t np = 0;
    dj_param *ps = dj_model_params(m, &np);
    int ok = 1;
    for (size_t i = 0; i < np; i++) {
        dj_param *p = &ps[i];
        if (p->value.dtype == DJ_DT_I64) { /* num_batches_tracked: PyTorch starts at 0 */
            memset(p->value.data, 0, p->value.numel * sizeof(int64_t));
            continue;
        }
        char key[160];
        fx_formula fm;
        snprintf(key, sizeof key, "param.%s", p->name);
        int found = fx_formula_get(f, key, &fm) == 0;
        CHECK(found, "%s: Dojo parameter '%s' is not in PyTorch's state_dict", c->file, p->name);
        if (!found) {
            ok = 0;
            continue;
        }
        fx_fill(dj_tensor_f32(&p->value), p->value.numel, fm.stream, fm.e, fm.o);
    }
    const char *list = dj_safetensors_meta(f, "params");
    CHECK(list != NULL, "%s: no 'params' metadata", c->file);
    for (const char *s = list; s && *s;) {
        size_t len = strcspn(s, " ");
        char name[128];
        snprintf(name, sizeof name, "%.*s", (int)len, s);
        int found = find_param(ps, np, name) != NULL;
        CHECK(found, "%s: PyTorch's state_dict entry '%s' is missing from Dojo's model", c->file,
              name);
        ok &= found;
        s += len;
        while (*s == ' ')
            s++;
    }
    return ok;
}

/* Compares buffers written by a train-mode forward (running stats, counts). */
static void cmp_buffers(fx_case *c, const dj_st_file *f, dj_model *m)
{
    size_t np = 0;
    dj_param *ps = dj_model_params(m, &np);
    for (size_t i = 0; i < np; i++) {
        dj_param *p = &ps[i];
        if (!p->is_buffer)
            continue;
        char key[160];
        snprintf(key, sizeof key, "after.%s", p->name);
        if (p->value.dtype == DJ_DT_I64) {
            size_t n = 0;
            int64_t *want = fx_ints(f, key, &n);
            CHECK(want && n == 1, "%s: fixture has no %s", c->file, key);
            if (want && n == 1)
                CHECK(((int64_t *)p->value.data)[0] == want[0], "%s: %s is %lld, PyTorch %lld",
                      c->file, key, (long long)((int64_t *)p->value.data)[0], (long long)want[0]);
            free(want);
            continue;
        }
        cmp_tensor(c, f, key, p->name, CMP_FWD, dj_tensor_f32(&p->value), p->value.numel, NULL);
    }
}

static void cmp_grads(fx_case *c, const dj_st_file *f, dj_model *m)
{
    size_t np = 0;
    dj_param *ps = dj_model_params(m, &np);
    for (size_t i = 0; i < np; i++) {
        if (ps[i].is_buffer)
            continue;
        char key[160];
        snprintf(key, sizeof key, "grad.%s", ps[i].name);
        cmp_tensor(c, f, key, ps[i].name, CMP_GRAD, dj_tensor_f32(&ps[i].grad), ps[i].grad.numel,
                   NULL);
    }
}

/* The training step: loss, backward from its gradient, one SGD step. */
static void run_step(fx_case *c, const dj_st_file *f, dj_model *m, dj_pool *pool,
                     const float *logits, int n)
{
    int classes = (int)dj_model_output_size(m);
    unsigned stream = 0;
    int fx_classes = 0;
    const char *lv = dj_safetensors_meta(f, "labels");
    CHECK(lv && sscanf(lv, "%u %d", &stream, &fx_classes) == 2 && fx_classes == classes,
          "%s: labels metadata '%s' does not fit %d classes", c->file, lv ? lv : "", classes);
    double lr = 0, mom = 0, wd = 0;
    int nesterov = 0;
    const char *sv = dj_safetensors_meta(f, "sgd");
    CHECK(sv && sscanf(sv, "%lf %lf %lf %d", &lr, &mom, &wd, &nesterov) == 4,
          "%s: bad sgd metadata", c->file);

    int32_t *labels = malloc((size_t)n * sizeof *labels);
    float *probs = malloc((size_t)n * classes * sizeof *probs);
    float *dlogits = malloc((size_t)n * classes * sizeof *dlogits);
    if (!labels || !probs || !dlogits) {
        CHECK(0, "out of memory");
        goto out;
    }
    for (int i = 0; i < n; i++)
        labels[i] = (int32_t)(fx_mix((uint32_t)i, stream) % (uint32_t)classes);

    double loss = dj_softmax_xent_forward(n, classes, logits, labels, 0.0f, probs);
    size_t k = 0;
    float *want = fx_floats(f, "loss", &k);
    CHECK(want && k == 1, "%s: fixture has no loss", c->file);
    if (want && k == 1) {
        double err = fabs(loss - want[0]), tol = TOL_FWD * fmax(1.0, fabs(want[0]));
        fx_note(c, "loss", err / tol);
        CHECK(err <= tol, "%s: loss %.9g, PyTorch %.9g", c->file, loss, (double)want[0]);
    }
    free(want);

    dj_softmax_xent_backward(n, classes, probs, labels, 0.0f, dlogits);
    dj_model_backward(m, pool, dlogits);
    cmp_grads(c, f, m);

    size_t np = 0;
    dj_param *ps = dj_model_params(m, &np);
    for (size_t i = 0; i < np; i++) {
        dj_param *p = &ps[i];
        if (p->is_buffer)
            continue;
        size_t cnt = p->value.numel;
        float *w = dj_tensor_f32(&p->value);
        float *before = malloc(cnt * sizeof *before);
        float *buf = calloc(cnt, sizeof *buf);
        if (!before || !buf) {
            CHECK(0, "out of memory");
            free(before);
            free(buf);
            continue;
        }
        memcpy(before, w, cnt * sizeof *before);
        dj_sgd_update(pool, cnt, w, dj_tensor_f32(&p->grad), buf, (float)lr, (float)mom, (float)wd,
                      nesterov, 1);
        char key[160];
        snprintf(key, sizeof key, "after.%s", p->name);
        cmp_tensor(c, f, key, p->name, CMP_UPDATE, w, cnt, before);
        snprintf(key, sizeof key, "momentum.%s", p->name);
        cmp_tensor(c, f, key, p->name, CMP_GRAD, buf, cnt, NULL);
        free(before);
        free(buf);
    }
out:
    free(labels);
    free(probs);
    free(dlogits);
}

static void run_fixture(const char *path, const char *name, dj_pool *pool)
{
    fx_case c = {.file = name, .worst = 0};
    dj_st_file *f = NULL;
    dj_model *m = NULL;
    float *x = NULL, *dy = NULL;
    char err[512];
    if (dj_safetensors_read(path, &f, err, sizeof err) != DJ_OK) {
        CHECK(0, "%s: %s", path, err);
        return;
    }
    for (size_t i = 0; i < dj_safetensors_count(f); i++) {
        const dj_st_tensor *t = dj_safetensors_at(f, i);
        if (strncmp(t->name, "grad.", 5) != 0 || t->dtype != DJ_DT_F32)
            continue;
        for (size_t j = 0; j < t->nbytes / sizeof(float); j++) {
            float v;
            memcpy(&v, (const char *)t->data + j * sizeof v, sizeof v);
            c.grad_scale = fmax(c.grad_scale, fabs(v));
        }
    }
    const char *kind = dj_safetensors_meta(f, "kind");
    const char *spec = dj_safetensors_meta(f, "spec");
    const char *bs = dj_safetensors_meta(f, "batch");
    const char *tr = dj_safetensors_meta(f, "train");
    int step = kind && !strcmp(kind, "step");
    CHECK(kind && spec && bs && tr && (step || !strcmp(kind, "layer")),
          "%s: missing fixture metadata (kind, spec, batch, train)", path);
    if (!kind || !spec || !bs || !tr)
        goto out;
    int n = atoi(bs), train = atoi(tr);

    if (dj_model_parse(spec, strlen(spec), path, &m, err, sizeof err) != DJ_OK) {
        CHECK(0, "%s: spec does not parse: %s", path, err);
        goto out;
    }
    if (dj_model_prepare(m, n, THREADS) != DJ_OK) {
        CHECK(0, "%s: prepare: %s", path, dj_model_error(m));
        goto out;
    }
    if (!set_params(&c, f, m))
        goto out;

    size_t in_size = dj_model_input_size(m), out_size = dj_model_output_size(m);
    fx_formula fi;
    CHECK(fx_formula_get(f, "input", &fi) == 0, "%s: no input formula", path);
    x = malloc((size_t)n * in_size * sizeof *x);
    dy = malloc((size_t)n * out_size * sizeof *dy);
    if (!x || !dy) {
        CHECK(0, "out of memory");
        goto out;
    }
    fx_fill(x, (size_t)n * in_size, fi.stream, fi.e, fi.o);

    dj_model_set_input_grad(m, !step);
    const float *y = dj_model_forward(m, pool, x, n, train, 1, 0);
    CHECK(y != NULL, "%s: forward failed", path);
    if (!y)
        goto out;
    cmp_tensor(&c, f, step ? "logits" : "output", "", CMP_FWD, y, (size_t)n * out_size, NULL);
    if (train)
        cmp_buffers(&c, f, m);

    if (step) {
        run_step(&c, f, m, pool, y, n);
    } else {
        fx_formula fd;
        CHECK(fx_formula_get(f, "dy", &fd) == 0, "%s: no dy formula", path);
        fx_fill(dy, (size_t)n * out_size, fd.stream, fd.e, fd.o);
        dj_model_backward(m, pool, dy);
        const float *dx = dj_model_input_grad(m);
        CHECK(dx != NULL, "%s: no input gradient", path);
        if (dx)
            cmp_tensor(&c, f, "grad.input", "", CMP_GRAD, dx, (size_t)n * in_size, NULL);
        cmp_grads(&c, f, m);
    }
    printf("  %-24s %3d tensors compared, worst error/tolerance %.3g (%s)\n", name, c.compared,
           c.worst, c.worst_what);
out:
    free(x);
    free(dy);
    dj_model_free(m);
    dj_safetensors_free(f);
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(void)
{
    const char *v = getenv("DOJO_TEST_VERBOSE");
    g_verbose = v && *v && strcmp(v, "0") != 0;
    DIR *d = opendir(FIXTURE_DIR);
    CHECK(d != NULL, "cannot open %s (run from the repository root)", FIXTURE_DIR);
    if (!d)
        return th_done("test_fixtures");
    char *names[256];
    size_t count = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL && count < 256) {
        size_t len = strlen(e->d_name);
        if (len > 12 && !strcmp(e->d_name + len - 12, ".safetensors"))
            names[count++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, count, sizeof *names, cmp_names);

    dj_pool *pool = NULL;
    CHECK(dj_pool_create(THREADS, &pool) == DJ_OK, "pool");
    int have_step = 0;
    for (size_t i = 0; i < count; i++) {
        char path[512], name[256];
        snprintf(path, sizeof path, "%s/%s", FIXTURE_DIR, names[i]);
        snprintf(name, sizeof name, "%.*s", (int)(strlen(names[i]) - 12), names[i]);
        have_step |= !strcmp(name, "step_fmnist_cnn");
        run_fixture(path, name, pool);
        free(names[i]);
    }
    CHECK(count >= 20, "only %zu fixtures in %s", count, FIXTURE_DIR);
    CHECK(have_step, "no step_fmnist_cnn fixture");
    dj_pool_destroy(pool);
    return th_done("test_fixtures");
}
