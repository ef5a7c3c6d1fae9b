/* train.h - the training loop, evaluation, metrics log and checkpoints.
 *
 * A run is fully described by a dj_train_config (written to config.json in
 * the output directory). Each epoch ends with metrics.jsonl and
 * checkpoint.safetensors rewritten atomically, so an interrupted run loses at
 * most the epoch in progress, and `resume` continues it: with the same
 * thread count and seed the resumed run ends with weights bit-identical to
 * an uninterrupted one (all randomness is keyed by seed, epoch and step).
 *
 * Checkpoint layout (safetensors): the model's state_dict under PyTorch
 * names ("0.weight", "3.body.1.running_mean", ...), the optimizer state under
 * "optimizer.<param>.momentum_buffer" (SGD) or "optimizer.<param>.exp_avg" /
 * "optimizer.<param>.exp_avg_sq" (AdamW), and metadata "dojo.format" =
 * "dojo-checkpoint-1", "dojo.epoch" (epochs completed), "dojo.step",
 * "dojo.seconds", "dojo.config" (config.json's text). */
#ifndef DOJO_TRAIN_H
#define DOJO_TRAIN_H

#include <stddef.h>
#include <stdint.h>

#include "dojo/nn.h"
#include "dojo/precision.h"
#include "dojo/status.h"

typedef enum { DJ_OPTIM_SGD = 0, DJ_OPTIM_ADAMW } dj_optim_kind;
typedef enum { DJ_SCHED_CONSTANT = 0, DJ_SCHED_COSINE, DJ_SCHED_STEP, DJ_SCHED_ONECYCLE } dj_sched_kind;

#define DJ_PATH_MAX 1024

typedef struct {
    char model[DJ_PATH_MAX];  /* model spec path */
    char data[DJ_PATH_MAX];   /* directory with the four IDX files */
    char out[DJ_PATH_MAX];    /* output directory ("" = write nothing) */
    int epochs;
    int batch_size;
    dj_optim_kind optimizer;
    double lr, momentum, weight_decay;
    int nesterov;
    double beta1, beta2, adam_eps;
    dj_sched_kind schedule;
    double warmup_epochs;
    int step_size;            /* step schedule: epochs per decay */
    double gamma;             /* step schedule: decay factor */
    int augment;              /* random crop (pad 2) + horizontal flip */
    double label_smoothing;
    int threads;
    uint64_t seed;
    size_t train_limit, test_limit; /* use only the first N samples (0: all) */
    int log_every;            /* steps between step lines in metrics.jsonl */
    dj_precision_config prec; /* number formats of the run (precision.h) */
} dj_train_config;

/* Built-in defaults (before the model spec and the command line). */
void dj_train_config_defaults(dj_train_config *c);
/* Applies the "train" object of the model spec at c->model (if any). */
dj_status dj_train_config_apply_spec(dj_train_config *c, char *err, size_t errlen);
/* config.json text (pretty JSON, caller frees) and its inverse. */
char *dj_train_config_to_json(const dj_train_config *c);
dj_status dj_train_config_from_json(dj_train_config *c, const char *text, size_t len,
                                    const char *source, char *err, size_t errlen);
const char *dj_optim_name(dj_optim_kind k);
const char *dj_sched_name(dj_sched_kind k);
int dj_optim_from_name(const char *s, dj_optim_kind *k);
int dj_sched_from_name(const char *s, dj_sched_kind *k);
/* Learning rate at a global step (0-based) of total_steps. */
double dj_train_lr(const dj_train_config *c, long step, long steps_per_epoch);

/* Progress while training (for the CLI's display). */
typedef struct {
    int epoch, epochs;        /* 0-based epoch */
    size_t batch, batches;    /* batches done in this epoch */
    long step;                /* global steps done */
    double loss;              /* running mean loss of this epoch */
    double lr;
    double images_per_second; /* this epoch so far */
    double eta_seconds;       /* to the end of the run */
} dj_train_progress;

typedef struct {
    int epoch;                /* 1-based: epochs completed */
    double train_loss, train_accuracy;
    double test_loss, test_accuracy;
    double lr, images_per_second, seconds; /* seconds: whole run so far */
} dj_epoch_metrics;

typedef struct {
    void (*on_start)(void *user, const dj_train_config *c, size_t params, int start_epoch);
    void (*on_step)(void *user, const dj_train_progress *p);
    /* Returns nonzero to stop after this epoch (its checkpoint is written;
     * the run can be resumed). */
    int (*on_epoch)(void *user, const dj_epoch_metrics *m);
    void *user;
} dj_train_hooks;

typedef struct {
    dj_epoch_metrics last;
    int epochs;
    double images_per_second; /* training throughput over the run */
    double seconds;
    /* Bytes per trainable parameter of training state: master weights,
     * gradients, optimizer moments and low-precision weight copies. */
    double state_bytes_per_param;
    size_t peak_rss_bytes;    /* the process's peak resident memory */
} dj_train_result;

/* Trains per c. resume != 0 continues from c->out's checkpoint. */
dj_status dj_train_run(const dj_train_config *c, int resume, const dj_train_hooks *hooks,
                       dj_train_result *res, char *err, size_t errlen);

/* Evaluation of a checkpoint on the test split. confusion (classes x
 * classes, row = true label) may be NULL. The forward pass runs under a
 * precision policy: prec, or when prec is NULL the one the checkpoint's run
 * trained with (its dojo.config metadata; fp32 if it has none), so that the
 * figures agree with the run's own. res->precision says which. */
typedef struct {
    size_t n;
    int classes;
    double loss, accuracy;
    int64_t confusion[32 * 32];
    dj_precision precision;
} dj_eval_result;

dj_status dj_eval_run(const char *model_path, const char *checkpoint_path, const char *data_dir,
                      int threads, int batch_size, size_t limit, const dj_precision_config *prec,
                      dj_eval_result *res, char *err, size_t errlen);

/* ---- the training step alone (benchmarks: no data loading, no files) ----
 * The model, policy, optimizer and thread pool of c, for batches of up to
 * c->batch_size. A step is forward, loss, backward and update at c->lr. */
typedef struct dj_train_stepper dj_train_stepper;
dj_status dj_train_stepper_create(const dj_train_config *c, dj_train_stepper **out, char *err,
                                  size_t errlen);
double dj_train_stepper_step(dj_train_stepper *s, const float *x, const int32_t *y, int n);
size_t dj_train_stepper_input_size(const dj_train_stepper *s); /* values per sample */
int dj_train_stepper_classes(const dj_train_stepper *s);
uint64_t dj_train_stepper_flops(const dj_train_stepper *s);    /* forward FLOPs per sample */
dj_model *dj_train_stepper_model(dj_train_stepper *s);         /* e.g. for dj_model_profile */
void dj_train_stepper_free(dj_train_stepper *s);

#endif
