/* config.c - a training run's configuration: defaults, the model spec's
 * "train" object, config.json in and out, and the learning-rate schedules. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dojo/json.h"
#include "dojo/train.h"

#define DJ_PI 3.14159265358979323846

static const char *const g_optim_names[] = {"sgd", "adamw"};
static const char *const g_sched_names[] = {"constant", "cosine", "step", "onecycle"};

const char *dj_optim_name(dj_optim_kind k)
{
    return (unsigned)k < 2 ? g_optim_names[k] : "?";
}

const char *dj_sched_name(dj_sched_kind k)
{
    return (unsigned)k < 4 ? g_sched_names[k] : "?";
}

int dj_optim_from_name(const char *s, dj_optim_kind *k)
{
    for (int i = 0; i < 2; i++)
        if (strcasecmp(s, g_optim_names[i]) == 0) {
            *k = (dj_optim_kind)i;
            return 0;
        }
    return -1;
}

int dj_sched_from_name(const char *s, dj_sched_kind *k)
{
    for (int i = 0; i < 4; i++)
        if (strcasecmp(s, g_sched_names[i]) == 0) {
            *k = (dj_sched_kind)i;
            return 0;
        }
    return -1;
}

void dj_train_config_defaults(dj_train_config *c)
{
    memset(c, 0, sizeof *c);
    snprintf(c->data, sizeof c->data, "%s", "/usr/share/datasets/fashion-mnist");
    c->epochs = 5;
    c->batch_size = 128;
    c->optimizer = DJ_OPTIM_SGD;
    c->lr = 0.05;
    c->momentum = 0.9;
    c->weight_decay = 5e-4;
    c->nesterov = 1;
    c->beta1 = 0.9;
    c->beta2 = 0.999;
    c->adam_eps = 1e-8;
    c->schedule = DJ_SCHED_COSINE;
    c->warmup_epochs = 0;
    c->step_size = 1;
    c->gamma = 0.1;
    c->augment = 0;
    c->label_smoothing = 0;
    c->threads = 0; /* 0: all CPUs */
    c->seed = 1;
    c->log_every = 100;
    dj_precision_config_defaults(&c->prec);
}

/* Reads the known keys of a "train"-like object into c; `full` requires the
 * config.json keys too (model, data, out, ...). */
static dj_status read_object(dj_train_config *c, const dj_json_value *o, int full, dj_json_error *e)
{
    static const char *const spec_keys[] = {
        "epochs", "batch_size", "optimizer", "lr", "momentum", "nesterov", "weight_decay",
        "beta1", "beta2", "adam_eps", "schedule", "warmup_epochs", "step_size", "gamma",
        "augment", "label_smoothing", "threads", "seed", "train_limit", "test_limit", "log_every",
        "precision", "scaling", "amax_history", "margin", "keep_fp32", "model", "data", "out", "format", NULL};
    dj_status st = dj_json_check_keys(o, spec_keys, e);
    if (st)
        return st;
    int64_t i64;
    double d;
    int b;
    const char *s;
#define GET_INT(key, lo, hi, field)                                                              \
    if ((st = dj_json_opt_int(o, key, lo, hi, (int64_t)c->field, &i64, e)) != DJ_OK)             \
        return st;                                                                               \
    c->field = (__typeof__(c->field))i64;
#define GET_DBL(key, lo, hi, field)                                                              \
    if ((st = dj_json_opt_double(o, key, c->field, &d, e)) != DJ_OK)                             \
        return st;                                                                               \
    if (!(d >= (lo) && d <= (hi)))                                                               \
        return dj_json_errorf(e, DJ_ERR_RANGE, dj_json_get(o, key), "must be in [%g, %g]",     \
                              (double)(lo), (double)(hi));                                       \
    c->field = d;
    GET_INT("epochs", 1, 100000, epochs)
    GET_INT("batch_size", 1, 65536, batch_size)
    GET_DBL("lr", 0, 1e3, lr)
    GET_DBL("momentum", 0, 0.9999999, momentum)
    GET_DBL("weight_decay", 0, 10, weight_decay)
    GET_DBL("beta1", 0, 0.9999999, beta1)
    GET_DBL("beta2", 0, 0.9999999, beta2)
    GET_DBL("adam_eps", 1e-30, 1, adam_eps)
    GET_DBL("warmup_epochs", 0, 1e4, warmup_epochs)
    GET_INT("step_size", 1, 100000, step_size)
    GET_DBL("gamma", 0, 10, gamma)
    GET_DBL("label_smoothing", 0, 0.999, label_smoothing)
    GET_INT("threads", 0, 1024, threads)
    GET_INT("train_limit", 0, INT64_MAX, train_limit)
    GET_INT("test_limit", 0, INT64_MAX, test_limit)
    GET_INT("log_every", 0, 1000000000, log_every)
    GET_INT("amax_history", 1, DJ_AMAX_HISTORY_MAX, prec.history)
    GET_INT("margin", 0, 8, prec.margin)
#undef GET_INT
#undef GET_DBL
    if ((st = dj_json_opt_bool(o, "nesterov", c->nesterov, &b, e)) != DJ_OK)
        return st;
    c->nesterov = b;
    if ((st = dj_json_opt_bool(o, "augment", c->augment, &b, e)) != DJ_OK)
        return st;
    c->augment = b;
    const dj_json_value *seed = dj_json_get(o, "seed");
    if (seed) {
        if (!dj_json_is_int(seed) || dj_json_int(seed) < 0)
            return dj_json_errorf(e, DJ_ERR_PARSE, seed, "expected a non-negative integer");
        c->seed = (uint64_t)dj_json_int(seed);
    }
    if ((st = dj_json_opt_string(o, "optimizer", dj_optim_name(c->optimizer), &s, e)) != DJ_OK)
        return st;
    if (dj_optim_from_name(s, &c->optimizer) != 0)
        return dj_json_errorf(e, DJ_ERR_PARSE, dj_json_get(o, "optimizer"),
                              "unknown optimizer \"%s\" (sgd, adamw)", s);
    if ((st = dj_json_opt_string(o, "schedule", dj_sched_name(c->schedule), &s, e)) != DJ_OK)
        return st;
    if (dj_sched_from_name(s, &c->schedule) != 0)
        return dj_json_errorf(e, DJ_ERR_PARSE, dj_json_get(o, "schedule"),
                              "unknown schedule \"%s\" (constant, cosine, step, onecycle)", s);
    if ((st = dj_json_opt_string(o, "precision", dj_precision_name(c->prec.precision), &s, e)) !=
        DJ_OK)
        return st;
    if (dj_precision_from_name(s, &c->prec.precision) != 0)
        return dj_json_errorf(e, DJ_ERR_PARSE, dj_json_get(o, "precision"),
                              "unknown precision \"%s\" (fp32, bf16, cfp8, cfp8-shp, ocp8)", s);
    if ((st = dj_json_opt_string(o, "scaling", dj_scaling_name(c->prec.scaling), &s, e)) != DJ_OK)
        return st;
    if (dj_scaling_from_name(s, &c->prec.scaling) != 0)
        return dj_json_errorf(e, DJ_ERR_PARSE, dj_json_get(o, "scaling"),
                              "unknown scaling \"%s\" (delayed, current)", s);
    if ((st = dj_json_opt_string(o, "keep_fp32", c->prec.keep_fp32, &s, e)) != DJ_OK)
        return st;
    if (strlen(s) >= sizeof c->prec.keep_fp32)
        return dj_json_errorf(e, DJ_ERR_RANGE, dj_json_get(o, "keep_fp32"), "too long");
    if (s != c->prec.keep_fp32)
        snprintf(c->prec.keep_fp32, sizeof c->prec.keep_fp32, "%s", s);
    if (full) {
        struct {
            const char *key;
            char *dst;
        } paths[] = {{"model", c->model}, {"data", c->data}, {"out", c->out}};
        for (size_t i = 0; i < 3; i++) {
            if ((st = dj_json_get_string(o, paths[i].key, &s, NULL, e)) != DJ_OK)
                return st;
            if (strlen(s) >= DJ_PATH_MAX)
                return dj_json_errorf(e, DJ_ERR_RANGE, dj_json_get(o, paths[i].key), "path too long");
            snprintf(paths[i].dst, DJ_PATH_MAX, "%s", s);
        }
    }
    return DJ_OK;
}

dj_status dj_train_config_apply_spec(dj_train_config *c, char *err, size_t errlen)
{
    dj_json_doc *doc = NULL;
    dj_json_error e;
    dj_status st = dj_json_parse_file(c->model, NULL, &doc, &e);
    if (st) {
        snprintf(err, errlen, "%s", e.message);
        return st;
    }
    const dj_json_value *t = dj_json_get(dj_json_root(doc), "train");
    if (t) {
        st = read_object(c, t, 0, &e);
        if (st)
            snprintf(err, errlen, "%s: %s", c->model, e.message);
    }
    dj_json_free(doc);
    return st;
}

dj_status dj_train_config_from_json(dj_train_config *c, const char *text, size_t len,
                                    const char *source, char *err, size_t errlen)
{
    dj_json_doc *doc = NULL;
    dj_json_error e;
    dj_status st = dj_json_parse(text, len, NULL, &doc, &e);
    if (!st)
        st = read_object(c, dj_json_root(doc), 1, &e);
    if (st)
        snprintf(err, errlen, "%s: %s", source, e.message);
    dj_json_free(doc);
    return st;
}

char *dj_train_config_to_json(const dj_train_config *c)
{
    dj_json_writer w;
    dj_json_writer_init(&w, DJ_JSON_WRITE_PRETTY, NULL);
    dj_json_write_begin_object(&w);
#define KS(k, v) (dj_json_write_key(&w, k), dj_json_write_string(&w, v))
#define KI(k, v) (dj_json_write_key(&w, k), dj_json_write_int(&w, (int64_t)(v)))
#define KD(k, v) (dj_json_write_key(&w, k), dj_json_write_double(&w, v))
#define KB(k, v) (dj_json_write_key(&w, k), dj_json_write_bool(&w, v))
    KS("format", "dojo-train-config-1");
    KS("model", c->model);
    KS("data", c->data);
    KS("out", c->out);
    KI("epochs", c->epochs);
    KI("batch_size", c->batch_size);
    KS("optimizer", dj_optim_name(c->optimizer));
    KD("lr", c->lr);
    KD("momentum", c->momentum);
    KB("nesterov", c->nesterov);
    KD("weight_decay", c->weight_decay);
    KD("beta1", c->beta1);
    KD("beta2", c->beta2);
    KD("adam_eps", c->adam_eps);
    KS("schedule", dj_sched_name(c->schedule));
    KD("warmup_epochs", c->warmup_epochs);
    KI("step_size", c->step_size);
    KD("gamma", c->gamma);
    KB("augment", c->augment);
    KD("label_smoothing", c->label_smoothing);
    KI("threads", c->threads);
    KI("seed", c->seed);
    KI("train_limit", c->train_limit);
    KI("test_limit", c->test_limit);
    KI("log_every", c->log_every);
    KS("precision", dj_precision_name(c->prec.precision));
    KS("scaling", dj_scaling_name(c->prec.scaling));
    KI("amax_history", c->prec.history);
    KI("margin", c->prec.margin);
    KS("keep_fp32", c->prec.keep_fp32);
#undef KS
#undef KI
#undef KD
#undef KB
    dj_json_write_end_object(&w);
    return dj_json_writer_take_line(&w);
}

/* PyTorch OneCycleLR defaults: pct_start 0.3, cosine annealing, initial
 * lr = max / 25, final lr = initial / 1e4. */
static double onecycle(double max_lr, long step, long total)
{
    const double initial = max_lr / 25.0, final_lr = initial / 1e4;
    const double end1 = 0.3 * (double)total - 1.0, end2 = (double)total - 1.0;
    double s = (double)step, start, end, pct;
    if (s <= end1) {
        start = initial;
        end = max_lr;
        pct = end1 > 0 ? s / end1 : 1.0;
    } else {
        start = max_lr;
        end = final_lr;
        pct = end2 > end1 ? (s - end1) / (end2 - end1) : 1.0;
    }
    if (pct > 1.0)
        pct = 1.0;
    return end + (start - end) / 2.0 * (1.0 + cos(DJ_PI * pct));
}

double dj_train_lr(const dj_train_config *c, long step, long steps_per_epoch)
{
    const long total = (long)c->epochs * steps_per_epoch;
    if (c->schedule == DJ_SCHED_ONECYCLE)
        return onecycle(c->lr, step, total);
    const long warm = (long)(c->warmup_epochs * (double)steps_per_epoch);
    if (step < warm)
        return c->lr * (double)(step + 1) / (double)warm;
    switch (c->schedule) {
    case DJ_SCHED_COSINE: {
        double t = (double)(step - warm), T = (double)(total - warm);
        return T > 0 ? 0.5 * c->lr * (1.0 + cos(DJ_PI * (t / T))) : c->lr;
    }
    case DJ_SCHED_STEP:
        return c->lr * pow(c->gamma, (double)((step / steps_per_epoch) / c->step_size));
    default:
        return c->lr;
    }
}
