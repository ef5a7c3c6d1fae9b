/* train.c - the training loop: batches from the loader, forward, loss,
 * backward, optimizer update; evaluation each epoch; metrics.jsonl and
 * checkpoint.safetensors rewritten atomically at each epoch's end; resume.
 *
 * The step reads straight through: loader -> dj_model_forward -> softmax
 * cross-entropy -> dj_model_backward -> SGD/AdamW on the float32 masters. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "dojo/dataset.h"
#include "dojo/fileio.h"
#include "dojo/json.h"
#include "dojo/kernels.h"
#include "dojo/loader.h"
#include "dojo/nn.h"
#include "dojo/rng.h"
#include "dojo/safetensors.h"
#include "dojo/train.h"
#include "train/train_internal.h"

static double now_seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* ---- the state of a run ---- */

typedef struct {
    dj_train_config cfg;
    dj_idx_dataset ds;
    int have_ds;
    dj_model *model;
    dj_pool *pool;
    dj_loader *train, *test;
    dj_param *params;
    size_t nparams;
    dj_tensor *opt_a, *opt_b; /* per param: momentum / exp_avg, exp_avg_sq */
    float *probs, *dlogits;
    int classes;
    long step;
    int epoch;                /* epochs completed */
    double seconds;           /* training + eval time of earlier sessions */
    char *metrics;            /* metrics.jsonl content */
    size_t metrics_len, metrics_cap;
} run;

static void run_free(run *r)
{
    dj_loader_free(r->train);
    dj_loader_free(r->test);
    if (r->opt_a)
        for (size_t i = 0; i < r->nparams; i++) {
            dj_tensor_free(&r->opt_a[i]);
            dj_tensor_free(&r->opt_b[i]);
        }
    free(r->opt_a);
    free(r->opt_b);
    dj_free(r->probs);
    dj_free(r->dlogits);
    dj_model_free(r->model);
    dj_pool_destroy(r->pool);
    if (r->have_ds)
        dj_idx_dataset_free(&r->ds);
    free(r->metrics);
}

static dj_status metrics_append(run *r, const char *line, size_t len)
{
    if (r->metrics_len + len + 2 > r->metrics_cap) {
        size_t cap = (r->metrics_cap + len + 2) * 2;
        char *m = realloc(r->metrics, cap);
        if (!m)
            return DJ_ERR_NOMEM;
        r->metrics = m;
        r->metrics_cap = cap;
    }
    memcpy(r->metrics + r->metrics_len, line, len);
    r->metrics_len += len;
    r->metrics[r->metrics_len++] = '\n';
    r->metrics[r->metrics_len] = '\0';
    return DJ_OK;
}

static void out_path(const run *r, const char *name, char *buf, size_t size)
{
    snprintf(buf, size, "%s/%s", r->cfg.out, name);
}

static dj_status metrics_flush(run *r, char *err, size_t errlen)
{
    if (!r->cfg.out[0])
        return DJ_OK;
    char path[DJ_PATH_MAX + 32];
    out_path(r, "metrics.jsonl", path, sizeof path);
    return dj_write_atomic(path, r->metrics ? r->metrics : "", r->metrics_len, err, errlen);
}

/* ---- data ---- */

dj_status dj__open_split(const dj_idx_split *sp, const dj_idx_dataset *ds, const dj_model *m,
                         const dj_loader_opts *o, dj_loader **out, char *err, size_t errlen)
{
    int64_t shape[3];
    int nd = dj_model_input_shape(m, shape);
    size_t per = (size_t)ds->rows * ds->cols;
    if (!(nd == 3 && shape[0] == 1 && shape[1] == ds->rows && shape[2] == ds->cols) &&
        !(nd == 1 && (size_t)shape[0] == per)) {
        snprintf(err, errlen, "%s: images are %ux%u but the model's input is %s%lld values",
                 sp->images_path, ds->rows, ds->cols, nd == 3 ? "not [1, H, W]: " : "",
                 (long long)dj_model_input_size(m));
        return DJ_ERR_ARG;
    }
    if ((size_t)ds->n_classes > dj_model_output_size(m)) {
        snprintf(err, errlen, "%s: labels go up to %d but the model has %zu outputs", sp->labels_path,
                 ds->n_classes - 1, dj_model_output_size(m));
        return DJ_ERR_ARG;
    }
    dj_image_set set = {sp->images.data, sp->labels.data, sp->n, 1, (int)ds->rows, (int)ds->cols};
    dj_status st = dj_loader_create(&set, o, out);
    if (st)
        snprintf(err, errlen, "cannot create a data loader: %s", dj_status_str(st));
    return st;
}

/* ---- evaluation ---- */

/* The predicted class: the first largest logit. */
static int argmax(const float *row, int n)
{
    int best = 0;
    for (int k = 1; k < n; k++)
        if (row[k] > row[best])
            best = k;
    return best;
}

dj_status dj__evaluate(dj_model *m, dj_pool *pool, dj_loader *l, int classes,
                       double *loss, double *acc, int64_t *confusion, float *probs)
{
    const int outs = (int)dj_model_output_size(m);
    dj_loader_start(l, 0);
    const float *x;
    const int32_t *y;
    int count;
    double total_loss = 0;
    size_t correct = 0, n = 0;
    while (dj_loader_next(l, &x, &y, &count)) {
        const float *logits = dj_model_forward(m, pool, x, count, 0, 0, 0);
        total_loss += dj_softmax_xent_forward(count, outs, logits, y, 0.0f, probs) * count;
        for (int i = 0; i < count; i++) {
            const int best = argmax(logits + (size_t)i * outs, outs);
            correct += best == y[i];
            if (confusion && y[i] < classes && best < classes)
                confusion[y[i] * classes + best]++;
        }
        n += (size_t)count;
    }
    *loss = n ? total_loss / (double)n : 0;
    *acc = n ? (double)correct / (double)n : 0;
    return DJ_OK;
}

/* ---- checkpoints ---- */

/* The float32 data of a tensor for the checkpoint: its own, or (SHP
 * masters) decoded into a new buffer that *tmp owns. */
static const void *f32_data(const dj_tensor *t, float **tmp)
{
    *tmp = NULL;
    if (t->dtype != DJ_DT_SHP)
        return t->data;
    *tmp = dj_alloc(t->numel * sizeof(float));
    if (*tmp) {
        unsigned fl = 0;
        dj_cf_decode_array(DJ_FMT_SHP, t->bias, t->data, *tmp, t->numel, &fl);
    }
    return *tmp;
}

static dj_status save_checkpoint(run *r, char *err, size_t errlen)
{
    size_t n = r->nparams * 3;
    dj_st_tensor *t = calloc(n, sizeof *t);
    char (*names)[160] = calloc(n, sizeof *names);
    float **tmp = calloc(n, sizeof *tmp);
    if (!t || !names || !tmp) {
        free(t);
        free(names);
        free(tmp);
        return DJ_ERR_NOMEM;
    }
    size_t k = 0;
    int nomem = 0;
    for (size_t i = 0; i < r->nparams; i++) {
        const dj_param *p = &r->params[i];
        const void *d = f32_data(&p->value, &tmp[k]);
        nomem |= !d;
        t[k] = (dj_st_tensor){p->name, p->value.dtype == DJ_DT_SHP ? DJ_DT_F32 : p->value.dtype, 0,
                              p->value.ndim, p->value.shape, d,
                              p->value.numel * dj_dtype_size(p->value.dtype == DJ_DT_SHP
                                                                 ? DJ_DT_F32
                                                                 : p->value.dtype)};
        k++;
    }
    for (int which = 0; which < 2; which++) {
        const dj_tensor *st = which == 0 ? r->opt_a : r->opt_b;
        const char *suffix = r->cfg.optimizer == DJ_OPTIM_SGD ? "momentum_buffer"
                             : which == 0                     ? "exp_avg"
                                                              : "exp_avg_sq";
        for (size_t i = 0; i < r->nparams; i++) {
            if (!st[i].data)
                continue;
            snprintf(names[k], sizeof names[k], "optimizer.%s.%s", r->params[i].name, suffix);
            const void *d = f32_data(&st[i], &tmp[k]);
            nomem |= !d;
            t[k] = (dj_st_tensor){names[k], DJ_DT_F32, 0, st[i].ndim, st[i].shape, d,
                                  st[i].numel * sizeof(float)};
            k++;
        }
    }
    char epoch_s[32], step_s[32], secs_s[64];
    snprintf(epoch_s, sizeof epoch_s, "%d", r->epoch);
    snprintf(step_s, sizeof step_s, "%ld", r->step);
    snprintf(secs_s, sizeof secs_s, "%.17g", r->seconds);
    char *cfg = dj_train_config_to_json(&r->cfg);
    dj_st_meta meta[] = {{"dojo.format", "dojo-checkpoint-1"},
                         {"dojo.epoch", epoch_s},
                         {"dojo.step", step_s},
                         {"dojo.seconds", secs_s},
                         {"dojo.optimizer", dj_optim_name(r->cfg.optimizer)},
                         {"dojo.config", cfg ? cfg : "{}"}};
    char path[DJ_PATH_MAX + 32];
    out_path(r, "checkpoint.safetensors", path, sizeof path);
    dj_status st = nomem ? DJ_ERR_NOMEM
                         : dj_safetensors_write(path, t, k, meta, sizeof meta / sizeof meta[0],
                                                err, errlen);
    free(cfg);
    for (size_t i = 0; i < n; i++)
        dj_free(tmp[i]);
    free(tmp);
    free(t);
    free(names);
    return st;
}

/* Copies a tensor named `name` from the checkpoint into dst (shape and
 * dtype must match). */
static dj_status load_tensor(const dj_st_file *f, const char *source, const char *name,
                             dj_tensor *dst, char *err, size_t errlen)
{
    const dj_st_tensor *e = dj_safetensors_find(f, name);
    if (!e) {
        snprintf(err, errlen, "%s: no tensor \"%s\" (is it a checkpoint of this model?)", source, name);
        return DJ_ERR_PARSE;
    }
    int same = e->dtype == dst->dtype && e->ndim == dst->ndim && e->nbytes == dj_tensor_nbytes(dst);
    for (int d = 0; same && d < e->ndim; d++)
        same = e->shape[d] == dst->shape[d];
    if (!same) {
        char a[96], b[96];
        dj_tensor tmp = {.ndim = e->ndim};
        for (int d = 0; d < e->ndim && d < DJ_MAX_DIMS; d++)
            tmp.shape[d] = e->shape[d];
        snprintf(err, errlen, "%s: tensor \"%s\" is %s %s, the model expects %s %s", source, name,
                 dj_dtype_name(e->dtype), dj_tensor_shape_str(&tmp, a, sizeof a),
                 dj_dtype_name(dst->dtype), dj_tensor_shape_str(dst, b, sizeof b));
        return DJ_ERR_PARSE;
    }
    memcpy(dst->data, e->data, e->nbytes);
    return DJ_OK;
}

dj_status dj__load_params(dj_model *m, const dj_st_file *f, const char *source, char *err,
                          size_t errlen)
{
    size_t n;
    dj_param *p = dj_model_params(m, &n);
    for (size_t i = 0; i < n; i++) {
        dj_status st = load_tensor(f, source, p[i].name, &p[i].value, err, errlen);
        if (st)
            return st;
    }
    return DJ_OK;
}

static dj_status load_checkpoint(run *r, char *err, size_t errlen)
{
    char path[DJ_PATH_MAX + 32];
    out_path(r, "checkpoint.safetensors", path, sizeof path);
    dj_st_file *f = NULL;
    dj_status st = dj_safetensors_read(path, &f, err, errlen);
    if (st)
        return st;
    const char *fmt = dj_safetensors_meta(f, "dojo.format");
    const char *ep = dj_safetensors_meta(f, "dojo.epoch"), *sp = dj_safetensors_meta(f, "dojo.step");
    const char *secs = dj_safetensors_meta(f, "dojo.seconds");
    if (!fmt || strcmp(fmt, "dojo-checkpoint-1") != 0 || !ep || !sp) {
        snprintf(err, errlen, "%s: not a Dojo training checkpoint (metadata dojo.format/epoch/step missing)", path);
        dj_safetensors_free(f);
        return DJ_ERR_PARSE;
    }
    r->epoch = atoi(ep);
    r->step = atol(sp);
    r->seconds = secs ? atof(secs) : 0;
    st = dj__load_params(r->model, f, path, err, errlen);
    for (int which = 0; !st && which < 2; which++) {
        dj_tensor *ts = which == 0 ? r->opt_a : r->opt_b;
        const char *suffix = r->cfg.optimizer == DJ_OPTIM_SGD ? "momentum_buffer"
                             : which == 0                     ? "exp_avg"
                                                              : "exp_avg_sq";
        for (size_t i = 0; !st && i < r->nparams; i++) {
            if (!ts[i].data)
                continue;
            char name[200];
            snprintf(name, sizeof name, "optimizer.%s.%s", r->params[i].name, suffix);
            st = load_tensor(f, path, name, &ts[i], err, errlen);
        }
    }
    dj_safetensors_free(f);
    return st;
}

/* Keeps the metrics lines of epochs <= r->epoch (a step line belongs to
 * the epoch it was logged in, 1-based "epoch" field). */
static void load_metrics(run *r)
{
    char path[DJ_PATH_MAX + 32], errbuf[256];
    out_path(r, "metrics.jsonl", path, sizeof path);
    char *text = NULL;
    size_t len = 0;
    if (dj_read_file(path, (size_t)1 << 30, &text, &len, errbuf, sizeof errbuf) != DJ_OK)
        return;
    char *line = text;
    while (line < text + len) {
        char *nl = memchr(line, '\n', (size_t)(text + len - line));
        size_t l = nl ? (size_t)(nl - line) : (size_t)(text + len - line);
        dj_json_doc *doc = NULL;
        if (dj_json_parse(line, l, NULL, &doc, NULL) == DJ_OK) {
            int ep = (int)dj_json_number(dj_json_get(dj_json_root(doc), "epoch"));
            if (ep <= r->epoch)
                metrics_append(r, line, l);
        }
        dj_json_free(doc);
        line += l + 1;
    }
    free(text);
}

/* ---- the loop ---- */

static void json_line(dj_json_writer *w, run *r)
{
    const char *text;
    size_t len;
    if (dj_json_writer_finish(w, &text, &len) == DJ_OK)
        metrics_append(r, text, len);
    dj_json_writer_reset(w);
}

/* ---- master weights in SHP (cfp8-shp) ----
 * A parameter's value and optimizer moments are SHP codes, each tensor with
 * its own bias: the largest at which the tensor's largest magnitude, times
 * 2 (margin 1), fits. An update runs twice over the codes in chunks: decode,
 * the float32 optimizer step, and (pass 1) the new largest magnitudes, or
 * (pass 2) encoding at the biases that fit them, with stochastic rounding
 * keyed by (seed, step, parameter, tensor) and the element index. The bias
 * is a function of the values, so a checkpoint (which holds the decoded
 * values in float32) restores the same codes. */
#define SHP_MARGIN 1
#define SHP_CHUNK 2048
#define SHP_TASKS 64

static int shp_bias_of(float amax)
{
    int b;
    dj_cf_bias_for_amax(DJ_FMT_SHP, amax, SHP_MARGIN, &b);
    return b;
}

/* float32 tensor -> SHP codes (round to nearest; exact for values that came
 * from SHP at the same bias). */
static dj_status tensor_to_shp(dj_tensor *t)
{
    if (!t->data || t->dtype == DJ_DT_SHP)
        return DJ_OK;
    dj_tensor n;
    dj_status st = dj_tensor_init(&n, DJ_DT_SHP, t->ndim, t->shape);
    if (st)
        return st;
    float amax = 0;
    const float *x = dj_tensor_f32(t);
    for (size_t i = 0; i < t->numel; i++)
        amax = fabsf(x[i]) > amax ? fabsf(x[i]) : amax;
    n.bias = shp_bias_of(amax);
    unsigned flags = 0;
    dj_cf_encode_array(DJ_FMT_SHP, n.bias, x, n.data, t->numel, (dj_round){DJ_ROUND_NEAREST, 0}, 0,
                       &flags);
    dj_tensor_free(t);
    *t = n;
    return DJ_OK;
}

typedef struct {
    run *r;
    size_t i;          /* parameter */
    float lr;
    int pass, T;
    dj_tensor *t[3];   /* value, moment a, moment b (NULL if absent) */
    int newbias[3];
    float amax[3][SHP_TASKS];
} shp_job;

static void shp_task(void *arg, int task)
{
    shp_job *j = arg;
    const dj_train_config *c = &j->r->cfg;
    const dj_param *p = &j->r->params[j->i];
    const size_t n = p->value.numel;
    const size_t lo = n * (size_t)task / (size_t)j->T, hi = n * (size_t)(task + 1) / (size_t)j->T;
    float buf[3][SHP_CHUNK], amax[3] = {0, 0, 0};
    for (size_t b = lo; b < hi; b += SHP_CHUNK) {
        const size_t m = hi - b < SHP_CHUNK ? hi - b : SHP_CHUNK;
        unsigned fl = 0;
        for (int k = 0; k < 3; k++)
            if (j->t[k])
                dj_cf_decode_array(DJ_FMT_SHP, j->t[k]->bias, (const uint16_t *)j->t[k]->data + b,
                                   buf[k], m, &fl);
        const float *g = dj_tensor_f32(&p->grad) + b;
        if (c->optimizer == DJ_OPTIM_SGD)
            dj_sgd_update(NULL, m, buf[0], g, j->t[1] ? buf[1] : NULL, j->lr, (float)c->momentum,
                          (float)c->weight_decay, c->nesterov, j->r->step == 0);
        else
            dj_adamw_update(NULL, m, buf[0], g, buf[1], buf[2], j->lr, (float)c->beta1,
                            (float)c->beta2, (float)c->adam_eps, (float)c->weight_decay,
                            j->r->step + 1);
        for (int k = 0; k < 3; k++) {
            if (!j->t[k])
                continue;
            if (j->pass == 1) {
                for (size_t e = 0; e < m; e++)
                    amax[k] = fabsf(buf[k][e]) > amax[k] ? fabsf(buf[k][e]) : amax[k];
            } else {
                const uint64_t seed = dj_mix64(c->seed ^ dj_mix64(
                    (uint64_t)j->r->step ^ dj_mix64(0x736870ULL + j->i * 4 + (uint64_t)k)));
                dj_cf_encode_array(DJ_FMT_SHP, j->newbias[k], buf[k],
                                   (uint16_t *)j->t[k]->data + b, m,
                                   (dj_round){DJ_ROUND_STOCHASTIC, seed}, b, &fl);
            }
        }
    }
    for (int k = 0; k < 3; k++)
        j->amax[k][task] = amax[k];
}

static void update_param_shp(run *r, size_t i, double lr)
{
    dj_param *p = &r->params[i];
    shp_job j = {r, i, (float)lr, 1, dj_pool_threads(r->pool), {&p->value, NULL, NULL}, {0}, {{0}}};
    if (r->opt_a[i].data)
        j.t[1] = &r->opt_a[i];
    if (r->opt_b[i].data)
        j.t[2] = &r->opt_b[i];
    if (j.T > SHP_TASKS)
        j.T = SHP_TASKS;
    if ((size_t)j.T > p->value.numel / 16384 + 1)
        j.T = (int)(p->value.numel / 16384 + 1);
    dj_pool_run(j.T > 1 ? r->pool : NULL, shp_task, &j, j.T);
    for (int k = 0; k < 3; k++) {
        float a = 0;
        for (int t = 0; t < j.T; t++)
            a = j.amax[k][t] > a ? j.amax[k][t] : a;
        j.newbias[k] = shp_bias_of(a);
    }
    j.pass = 2;
    dj_pool_run(j.T > 1 ? r->pool : NULL, shp_task, &j, j.T);
    for (int k = 0; k < 3; k++)
        if (j.t[k])
            j.t[k]->bias = j.newbias[k];
}

static void update_params(run *r, double lr)
{
    const dj_train_config *c = &r->cfg;
    for (size_t i = 0; i < r->nparams; i++) {
        dj_param *p = &r->params[i];
        if (p->is_buffer)
            continue;
        if (p->value.dtype == DJ_DT_SHP) {
            update_param_shp(r, i, lr);
            continue;
        }
        float *w = p->value.data;
        const float *g = p->grad.data;
        if (c->optimizer == DJ_OPTIM_SGD)
            dj_sgd_update(r->pool, p->value.numel, w, g, r->opt_a[i].data, (float)lr,
                          (float)c->momentum, (float)c->weight_decay, c->nesterov, r->step == 0);
        else
            dj_adamw_update(r->pool, p->value.numel, w, g, r->opt_a[i].data, r->opt_b[i].data,
                            (float)lr, (float)c->beta1, (float)c->beta2, (float)c->adam_eps,
                            (float)c->weight_decay, r->step + 1);
    }
}

/* "quant": per quantised tensor, what its format did this epoch: format,
 * bias range, largest magnitude, saturated and flushed elements. */
static void write_quant_stats(dj_json_writer *w, dj_model *m)
{
    const size_t n = dj_model_quant_stats(m, NULL, 0, 0);
    if (!n)
        return;
    dj_quant_stat *s = calloc(n, sizeof *s);
    if (!s)
        return;
    dj_model_quant_stats(m, s, n, 1);
    dj_json_write_key(w, "quant");
    dj_json_write_begin_object(w);
    for (size_t i = 0; i < n; i++) {
        dj_json_write_key(w, s[i].name);
        dj_json_write_begin_object(w);
        dj_json_write_key(w, "format"), dj_json_write_string(w, s[i].format);
        dj_format f;
        if (s[i].scaled && dj_format_from_name(s[i].format, &f) == 0) {
            /* OCP: the power-of-two scale, effective bias - the fixed bias */
            const int fixed = dj_format_desc_of(f)->bias_default;
            dj_json_write_key(w, "scale_exp_min"), dj_json_write_int(w, s[i].bias_min - fixed);
            dj_json_write_key(w, "scale_exp_max"), dj_json_write_int(w, s[i].bias_max - fixed);
        } else {
            dj_json_write_key(w, "bias_min"), dj_json_write_int(w, s[i].bias_min);
            dj_json_write_key(w, "bias_max"), dj_json_write_int(w, s[i].bias_max);
        }
        dj_json_write_key(w, "amax"), dj_json_write_double(w, s[i].amax);
        dj_json_write_key(w, "overflow"), dj_json_write_int(w, s[i].overflow);
        dj_json_write_key(w, "underflow"), dj_json_write_int(w, s[i].underflow);
        dj_json_write_key(w, "elements"), dj_json_write_int(w, s[i].elements);
        dj_json_write_end_object(w);
    }
    dj_json_write_end_object(w);
    free(s);
}

/* Training state per trainable parameter: master weights, gradients,
 * optimizer moments and the low-precision weight copies. */
static double state_bytes_per_param(const run *r)
{
    size_t bytes = 0, count = 0;
    for (size_t i = 0; i < r->nparams; i++) {
        const dj_param *p = &r->params[i];
        if (p->is_buffer)
            continue;
        count += p->value.numel;
        bytes += dj_tensor_nbytes(&p->value) + dj_tensor_nbytes(&p->grad);
        if (r->opt_a[i].data)
            bytes += dj_tensor_nbytes(&r->opt_a[i]);
        if (r->opt_b[i].data)
            bytes += dj_tensor_nbytes(&r->opt_b[i]);
    }
    bytes += dj_model_quant_weight_bytes(r->model);
    return count ? (double)bytes / (double)count : 0.0;
}

/* The model, its policy, the thread pool, the optimizer state and the loss
 * buffers, for batches of up to maxb (no data, no files). */
static dj_status setup_engine(run *r, int maxb, char *err, size_t errlen)
{
    const dj_train_config *c = &r->cfg;
    dj_status st = dj_model_load(c->model, &r->model, err, errlen);
    if (st)
        return st;
    dj_model_init(r->model, c->seed);
    if ((st = dj_model_set_precision(r->model, &c->prec)) != DJ_OK) {
        snprintf(err, errlen, "%s", dj_model_error(r->model));
        return st;
    }
    int threads = c->threads;
    if ((st = dj_pool_create(threads, &r->pool)) != DJ_OK) {
        snprintf(err, errlen, "cannot start %d threads", threads);
        return st;
    }
    if ((st = dj_model_prepare(r->model, maxb, threads)) != DJ_OK) {
        snprintf(err, errlen, "%s", dj_model_error(r->model)[0] ? dj_model_error(r->model)
                                                                 : dj_status_str(st));
        return st;
    }
    r->params = dj_model_params(r->model, &r->nparams);
    r->opt_a = calloc(r->nparams, sizeof *r->opt_a);
    r->opt_b = calloc(r->nparams, sizeof *r->opt_b);
    if (!r->opt_a || !r->opt_b)
        return DJ_ERR_NOMEM;
    for (size_t i = 0; i < r->nparams; i++) {
        const dj_param *p = &r->params[i];
        if (p->is_buffer)
            continue;
        int need_a = c->optimizer == DJ_OPTIM_ADAMW || c->momentum > 0;
        if (need_a && dj_tensor_init(&r->opt_a[i], DJ_DT_F32, p->value.ndim, p->value.shape))
            return DJ_ERR_NOMEM;
        if (c->optimizer == DJ_OPTIM_ADAMW &&
            dj_tensor_init(&r->opt_b[i], DJ_DT_F32, p->value.ndim, p->value.shape))
            return DJ_ERR_NOMEM;
    }
    r->classes = (int)dj_model_output_size(r->model);
    r->probs = dj_alloc((size_t)maxb * (size_t)r->classes * sizeof(float));
    r->dlogits = dj_alloc((size_t)maxb * (size_t)r->classes * sizeof(float));
    if (!r->probs || !r->dlogits)
        return DJ_ERR_NOMEM;
    return DJ_OK;
}

/* cfp8-shp: the quantised layers' weights and moments become SHP (after a
 * checkpoint, if any, is loaded in float32). */
static dj_status shp_masters(run *r)
{
    if (dj_precision_formats_of(r->cfg.prec.precision).master != DJ_FMT_SHP)
        return DJ_OK;
    for (size_t i = 0; i < r->nparams; i++)
        if (dj_model_param_quantized(r->model, i) &&
            (tensor_to_shp(&r->params[i].value) || tensor_to_shp(&r->opt_a[i]) ||
             tensor_to_shp(&r->opt_b[i])))
            return DJ_ERR_NOMEM;
    return DJ_OK;
}

/* One training step on a batch; returns the mean loss and adds the number
 * of correct predictions to *correct. */
static double train_step(run *r, const float *x, const int32_t *y, int count, double lr,
                         size_t *correct)
{
    const dj_train_config *c = &r->cfg;
    const int outs = r->classes;
    const float *logits = dj_model_forward(r->model, r->pool, x, count, 1, c->seed, (uint64_t)r->step);
    double loss = dj_softmax_xent_forward(count, outs, logits, y, (float)c->label_smoothing, r->probs);
    if (correct)
        for (int i = 0; i < count; i++)
            *correct += argmax(logits + (size_t)i * outs, outs) == y[i];
    dj_softmax_xent_backward(count, outs, r->probs, y, (float)c->label_smoothing, r->dlogits);
    dj_model_backward(r->model, r->pool, r->dlogits);
    update_params(r, lr);
    r->step++;
    return loss;
}

#define EVAL_BATCH 500

static dj_status setup(run *r, int resume, char *err, size_t errlen)
{
    const dj_train_config *c = &r->cfg;
    const int eval_batch = EVAL_BATCH;
    /* the model and its policy first: a spec error is reported before the
     * data is read */
    dj_status st = setup_engine(r, c->batch_size > eval_batch ? c->batch_size : eval_batch, err,
                                errlen);
    if (st)
        return st;
    dj_idx_dataset_opts dopt = {0, 0};
    if ((st = dj_idx_dataset_open(c->data, &dopt, &r->ds, err, errlen)) != DJ_OK)
        return st;
    r->have_ds = 1;

    dj_loader_opts to = {.batch_size = c->batch_size, .shuffle = 1, .crop_pad = c->augment ? 2 : 0,
                         .hflip = c->augment, .seed = c->seed, .mean = dj_model_norm_mean(r->model),
                         .std = dj_model_norm_std(r->model), .limit = c->train_limit, .prefetch = 1};
    if ((st = dj__open_split(&r->ds.train, &r->ds, r->model, &to, &r->train, err, errlen)) != DJ_OK)
        return st;
    dj_loader_opts eo = {.batch_size = eval_batch, .mean = to.mean, .std = to.std,
                         .limit = c->test_limit, .prefetch = 1};
    if ((st = dj__open_split(&r->ds.test, &r->ds, r->model, &eo, &r->test, err, errlen)) != DJ_OK)
        return st;

    if (c->out[0]) {
        if ((st = dj_mkdirs(c->out, err, errlen)) != DJ_OK)
            return st;
        if (resume) {
            if ((st = load_checkpoint(r, err, errlen)) != DJ_OK)
                return st;
            load_metrics(r);
        }
        char path[DJ_PATH_MAX + 32];
        out_path(r, "config.json", path, sizeof path);
        char *cfg = dj_train_config_to_json(c);
        if (!cfg)
            return DJ_ERR_NOMEM;
        st = dj_write_atomic(path, cfg, strlen(cfg), err, errlen);
        free(cfg);
        if (st)
            return st;
    }
    return shp_masters(r);
}

dj_status dj_train_run(const dj_train_config *cfg, int resume, const dj_train_hooks *hooks,
                       dj_train_result *res, char *err, size_t errlen)
{
    run r;
    memset(&r, 0, sizeof r);
    r.cfg = *cfg;
    if (r.cfg.threads <= 0)
        r.cfg.threads = dj_cpu_count(); /* recorded in config.json: part of the run */
    memset(res, 0, sizeof *res);
    if (resume && !cfg->out[0]) {
        snprintf(err, errlen, "resuming needs the run's directory");
        return DJ_ERR_ARG;
    }
    dj_status st = setup(&r, resume, err, errlen);
    if (st) {
        run_free(&r);
        return st;
    }
    const dj_train_config *c = &r.cfg;
    const long steps_per_epoch = (long)dj_loader_batches(r.train);
    const int outs = r.classes;
    if (hooks && hooks->on_start)
        hooks->on_start(hooks->user, c, dj_model_param_count(r.model), r.epoch);
    if (r.epoch >= c->epochs) {
        snprintf(err, errlen, "%s already holds %d completed epochs (of %d); nothing to do",
                 c->out, r.epoch, c->epochs);
        run_free(&r);
        return DJ_ERR_ARG;
    }
    dj_json_writer w;
    dj_json_writer_init(&w, 0, NULL);
    double train_images = 0, train_time = 0;
    const double run_start = now_seconds();
    const double seconds_before = r.seconds;

    for (; r.epoch < c->epochs; r.epoch++) {
        const double t0 = now_seconds();
        dj_model_quant_new_epoch(r.model);
        dj_loader_start(r.train, r.epoch);
        const float *x;
        const int32_t *y;
        int count;
        double loss_sum = 0;
        size_t seen = 0, correct = 0, batch = 0;
        double lr = 0;
        while (dj_loader_next(r.train, &x, &y, &count)) {
            lr = dj_train_lr(c, r.step, steps_per_epoch);
            const double loss = train_step(&r, x, y, count, lr, &correct);
            batch++;
            loss_sum += loss * count;
            seen += (size_t)count;
            const double el = now_seconds() - t0;
            if (hooks && hooks->on_step) {
                dj_train_progress p = {r.epoch, c->epochs, batch, (size_t)steps_per_epoch, r.step,
                                       loss_sum / (double)seen, lr, el > 0 ? (double)seen / el : 0, 0};
                double per_step = el / (double)batch;
                p.eta_seconds = per_step * (double)((long)(c->epochs - r.epoch) * steps_per_epoch - (long)batch);
                hooks->on_step(hooks->user, &p);
            }
            if (c->log_every > 0 && r.step % c->log_every == 0) {
                dj_json_write_begin_object(&w);
                dj_json_write_key(&w, "type"), dj_json_write_string(&w, "step");
                dj_json_write_key(&w, "epoch"), dj_json_write_int(&w, r.epoch + 1);
                dj_json_write_key(&w, "step"), dj_json_write_int(&w, r.step);
                dj_json_write_key(&w, "loss"), dj_json_write_double(&w, loss);
                dj_json_write_key(&w, "lr"), dj_json_write_double(&w, lr);
                dj_json_write_key(&w, "images_per_second"),
                    dj_json_write_double(&w, el > 0 ? (double)seen / el : 0);
                dj_json_write_end_object(&w);
                json_line(&w, &r);
            }
        }
        const double train_el = now_seconds() - t0;
        train_images += (double)seen;
        train_time += train_el;
        dj_epoch_metrics m = {.epoch = r.epoch + 1, .lr = lr};
        m.train_loss = seen ? loss_sum / (double)seen : 0;
        m.train_accuracy = seen ? (double)correct / (double)seen : 0;
        m.images_per_second = train_el > 0 ? (double)seen / train_el : 0;
        dj__evaluate(r.model, r.pool, r.test, outs, &m.test_loss, &m.test_accuracy, NULL, r.probs);
        r.seconds = seconds_before + (now_seconds() - run_start);
        m.seconds = r.seconds;
        dj_json_write_begin_object(&w);
        dj_json_write_key(&w, "type"), dj_json_write_string(&w, "epoch");
        dj_json_write_key(&w, "epoch"), dj_json_write_int(&w, m.epoch);
        dj_json_write_key(&w, "step"), dj_json_write_int(&w, r.step);
        dj_json_write_key(&w, "train_loss"), dj_json_write_double(&w, m.train_loss);
        dj_json_write_key(&w, "train_accuracy"), dj_json_write_double(&w, m.train_accuracy);
        dj_json_write_key(&w, "test_loss"), dj_json_write_double(&w, m.test_loss);
        dj_json_write_key(&w, "test_accuracy"), dj_json_write_double(&w, m.test_accuracy);
        dj_json_write_key(&w, "lr"), dj_json_write_double(&w, m.lr);
        dj_json_write_key(&w, "images_per_second"), dj_json_write_double(&w, m.images_per_second);
        dj_json_write_key(&w, "seconds"), dj_json_write_double(&w, m.seconds);
        write_quant_stats(&w, r.model);
        dj_json_write_end_object(&w);
        json_line(&w, &r);
        /* The epoch counts as done once both files are on disk. */
        r.epoch++;
        if (c->out[0]) {
            st = metrics_flush(&r, err, errlen);
            if (!st)
                st = save_checkpoint(&r, err, errlen);
        }
        r.epoch--;
        res->last = m;
        if (st)
            break;
        if (hooks && hooks->on_epoch && hooks->on_epoch(hooks->user, &m)) {
            r.epoch++;
            break;
        }
    }
    res->epochs = r.epoch;
    res->state_bytes_per_param = state_bytes_per_param(&r);
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) == 0)
        res->peak_rss_bytes = (size_t)ru.ru_maxrss * 1024;
    res->images_per_second = train_time > 0 ? train_images / train_time : 0;
    res->seconds = r.seconds;
    dj_json_writer_free(&w);
    run_free(&r);
    return st;
}

dj_status dj_eval_run(const char *model_path, const char *checkpoint_path, const char *data_dir,
                      int threads, int batch_size, size_t limit, const dj_precision_config *prec,
                      dj_eval_result *res, char *err, size_t errlen)
{
    memset(res, 0, sizeof *res);
    dj_model *m = NULL;
    dj_pool *pool = NULL;
    dj_loader *l = NULL;
    dj_st_file *f = NULL;
    dj_idx_dataset ds;
    int have_ds = 0;
    float *probs = NULL;
    dj_idx_dataset_opts dopt = {0, 0};
    dj_status st = dj_model_load(model_path, &m, err, errlen);
    if (!st)
        st = dj_safetensors_read(checkpoint_path, &f, err, errlen);
    if (!st)
        st = dj__load_params(m, f, checkpoint_path, err, errlen);
    if (!st) {
        /* the run's policy, from the config recorded in the checkpoint */
        dj_train_config rc;
        dj_train_config_defaults(&rc);
        const char *cfg = dj_safetensors_meta(f, "dojo.config");
        char ignore[256];
        if (!prec && cfg &&
            dj_train_config_from_json(&rc, cfg, strlen(cfg), checkpoint_path, ignore,
                                      sizeof ignore) == DJ_OK)
            prec = &rc.prec;
        dj_precision_config fp32;
        dj_precision_config_defaults(&fp32);
        if (!prec)
            prec = &fp32;
        res->precision = prec->precision;
        if ((st = dj_model_set_precision(m, prec)) != DJ_OK)
            snprintf(err, errlen, "%s", dj_model_error(m));
    }
    if (!st && !(st = dj_idx_dataset_open(data_dir, &dopt, &ds, err, errlen)))
        have_ds = 1;
    if (!st) {
        threads = threads > 0 ? threads : dj_cpu_count();
        st = dj_pool_create(threads, &pool);
    }
    if (!st)
        st = dj_model_prepare(m, batch_size, threads);
    if (!st) {
        dj_loader_opts eo = {.batch_size = batch_size, .mean = dj_model_norm_mean(m),
                             .std = dj_model_norm_std(m), .limit = limit, .prefetch = 1};
        st = dj__open_split(&ds.test, &ds, m, &eo, &l, err, errlen);
    }
    if (!st) {
        res->classes = (int)dj_model_output_size(m);
        if (res->classes > 32)
            res->classes = 32;
        probs = dj_alloc((size_t)batch_size * dj_model_output_size(m) * sizeof(float));
        if (!probs)
            st = DJ_ERR_NOMEM;
    }
    if (!st) {
        res->n = dj_loader_samples(l);
        st = dj__evaluate(m, pool, l, res->classes, &res->loss, &res->accuracy, res->confusion, probs);
    }
    if (st && !err[0])
        snprintf(err, errlen, "%s", dj_status_str(st));
    dj_free(probs);
    dj_loader_free(l);
    if (have_ds)
        dj_idx_dataset_free(&ds);
    dj_safetensors_free(f);
    dj_pool_destroy(pool);
    dj_model_free(m);
    return st;
}

/* ---- the step alone (benchmarks) ---- */

struct dj_train_stepper {
    run r;
};

dj_status dj_train_stepper_create(const dj_train_config *c, dj_train_stepper **out, char *err,
                                  size_t errlen)
{
    *out = NULL;
    dj_train_stepper *s = calloc(1, sizeof *s);
    if (!s)
        return DJ_ERR_NOMEM;
    s->r.cfg = *c;
    if (s->r.cfg.threads <= 0)
        s->r.cfg.threads = dj_cpu_count();
    dj_status st = setup_engine(&s->r, c->batch_size, err, errlen);
    if (!st)
        st = shp_masters(&s->r);
    if (st) {
        run_free(&s->r);
        free(s);
        return st;
    }
    *out = s;
    return DJ_OK;
}

double dj_train_stepper_step(dj_train_stepper *s, const float *x, const int32_t *y, int n)
{
    return train_step(&s->r, x, y, n, s->r.cfg.lr, NULL);
}

size_t dj_train_stepper_input_size(const dj_train_stepper *s)
{
    return dj_model_input_size(s->r.model);
}

int dj_train_stepper_classes(const dj_train_stepper *s)
{
    return s->r.classes;
}

uint64_t dj_train_stepper_flops(const dj_train_stepper *s)
{
    return dj_model_flops(s->r.model);
}

dj_model *dj_train_stepper_model(dj_train_stepper *s)
{
    return s->r.model;
}

void dj_train_stepper_free(dj_train_stepper *s)
{
    if (!s)
        return;
    run_free(&s->r);
    free(s);
}
