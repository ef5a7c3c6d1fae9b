/* test_train.c - the training engine end to end: configuration and
 * schedules; a short training run on Fashion-MNIST that must pass 80%;
 * evaluation of its checkpoint agreeing with the run; and resume: a run
 * stopped after one epoch and resumed ends with weights bit-identical to an
 * uninterrupted run. The data parts need /usr/share/datasets/fashion-mnist
 * (Debian's dataset-fashion-mnist, installed by .ci/run). */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dojo/fileio.h"
#include "dojo/safetensors.h"
#include "dojo/train.h"
#include "harness.h"

#define DATA "/usr/share/datasets/fashion-mnist"

static void test_config(void)
{
    dj_train_config c, d;
    dj_train_config_defaults(&c);
    snprintf(c.model, sizeof c.model, "models/fmnist-cnn.json");
    snprintf(c.out, sizeof c.out, "runs/x");
    c.lr = 0.123;
    c.optimizer = DJ_OPTIM_ADAMW;
    c.schedule = DJ_SCHED_ONECYCLE;
    c.seed = 12345678901234ULL;
    c.train_limit = 777;
    char *text = dj_train_config_to_json(&c);
    CHECK(text != NULL, "config to json");
    char err[512] = "";
    dj_train_config_defaults(&d);
    CHECK(text && dj_train_config_from_json(&d, text, strlen(text), "config.json", err, sizeof err) == DJ_OK,
          "config from json: %s", err);
    CHECK(memcmp(&c, &d, sizeof c) == 0, "config.json round trip is exact");
    free(text);
    const char *bad = "{\"model\":\"m\",\"data\":\"d\",\"out\":\"o\",\"epochs\":0}";
    CHECK(dj_train_config_from_json(&d, bad, strlen(bad), "config.json", err, sizeof err) != DJ_OK &&
              strstr(err, "epochs"), "epochs 0 rejected: %s", err);
    const char *typo = "{\"model\":\"m\",\"data\":\"d\",\"out\":\"o\",\"epoch\":3}";
    CHECK(dj_train_config_from_json(&d, typo, strlen(typo), "config.json", err, sizeof err) != DJ_OK &&
              strstr(err, "epoch"), "unknown key rejected: %s", err);

    /* Schedules. */
    dj_train_config_defaults(&c);
    c.epochs = 10;
    c.lr = 1.0;
    c.schedule = DJ_SCHED_CONSTANT;
    CHECK(dj_train_lr(&c, 0, 100) == 1.0 && dj_train_lr(&c, 999, 100) == 1.0, "constant");
    c.warmup_epochs = 1;
    CHECK(fabs(dj_train_lr(&c, 0, 100) - 0.01) < 1e-12 && fabs(dj_train_lr(&c, 49, 100) - 0.5) < 1e-12 &&
              dj_train_lr(&c, 100, 100) == 1.0, "linear warmup");
    c.warmup_epochs = 0;
    c.schedule = DJ_SCHED_COSINE;
    CHECK(dj_train_lr(&c, 0, 100) == 1.0 && fabs(dj_train_lr(&c, 500, 100) - 0.5) < 1e-12 &&
              dj_train_lr(&c, 999, 100) < 1e-4, "cosine");
    c.schedule = DJ_SCHED_STEP;
    c.step_size = 3;
    c.gamma = 0.5;
    CHECK(dj_train_lr(&c, 299, 100) == 1.0 && dj_train_lr(&c, 300, 100) == 0.5 && dj_train_lr(&c, 600, 100) == 0.25,
          "step");
    c.schedule = DJ_SCHED_ONECYCLE;
    CHECK(fabs(dj_train_lr(&c, 0, 100) - 0.04) < 1e-12, "onecycle starts at lr/25: %g", dj_train_lr(&c, 0, 100));
    CHECK(fabs(dj_train_lr(&c, 299, 100) - 1.0) < 1e-12, "onecycle peaks at 30%%: %g", dj_train_lr(&c, 299, 100));
    CHECK(fabs(dj_train_lr(&c, 999, 100) - 0.04e-4) < 1e-12, "onecycle ends at lr/25e4: %g", dj_train_lr(&c, 999, 100));
}

typedef struct {
    int stop_after;
} stopper;

static int stop_hook(void *user, const dj_epoch_metrics *m)
{
    return m->epoch >= ((stopper *)user)->stop_after;
}

/* Every tensor of two checkpoints is byte-identical. */
static int same_checkpoints(const char *a, const char *b)
{
    dj_st_file *fa = NULL, *fb = NULL;
    char err[512];
    int same = dj_safetensors_read(a, &fa, err, sizeof err) == DJ_OK &&
               dj_safetensors_read(b, &fb, err, sizeof err) == DJ_OK &&
               dj_safetensors_count(fa) == dj_safetensors_count(fb) && dj_safetensors_count(fa) > 0;
    for (size_t i = 0; same && i < dj_safetensors_count(fa); i++) {
        const dj_st_tensor *x = dj_safetensors_at(fa, i);
        const dj_st_tensor *y = dj_safetensors_find(fb, x->name);
        same = y && x->nbytes == y->nbytes && memcmp(x->data, y->data, x->nbytes) == 0;
        if (!same)
            fprintf(stderr, "  tensor %s differs\n", x->name);
    }
    dj_safetensors_free(fa);
    dj_safetensors_free(fb);
    return same;
}

static void rm_run(const char *dir)
{
    const char *files[] = {"config.json", "metrics.jsonl", "checkpoint.safetensors"};
    char p[512];
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, files[i]);
        unlink(p);
    }
    rmdir(dir);
}

static void test_training(void)
{
    char base[] = "/tmp/dojo-train-XXXXXX";
    CHECK(mkdtemp(base) != NULL, "mkdtemp");
    char a[600], b[600], ca[700], cb[700], err[1024] = "";
    snprintf(a, sizeof a, "%s/a", base);
    snprintf(b, sizeof b, "%s/b", base);

    /* A short run must learn: MLP, 4000 images, 3 epochs. */
    dj_train_config c;
    dj_train_config_defaults(&c);
    snprintf(c.model, sizeof c.model, "models/fmnist-mlp.json");
    CHECK(dj_train_config_apply_spec(&c, err, sizeof err) == DJ_OK, "spec train defaults: %s", err);
    snprintf(c.data, sizeof c.data, DATA);
    snprintf(c.out, sizeof c.out, "%s", a);
    c.epochs = 3;
    c.train_limit = 4000;
    c.test_limit = 2000;
    c.threads = 2;
    c.log_every = 10;
    dj_train_result res;
    dj_status st = dj_train_run(&c, 0, NULL, &res, err, sizeof err);
    CHECK(st == DJ_OK, "training: %s", err);
    CHECK(res.epochs == 3 && res.last.test_accuracy > 0.80, "3 epochs on 4000 images: test accuracy %.4f",
          res.last.test_accuracy);
    printf("short run: test accuracy %.4f, loss %.4f, %.0f img/s\n", res.last.test_accuracy,
           res.last.test_loss, res.images_per_second);
    snprintf(ca, sizeof ca, "%s/checkpoint.safetensors", a);
    dj_eval_result ev;
    CHECK(dj_eval_run(c.model, ca, DATA, 2, 250, 2000, NULL, &ev, err, sizeof err) == DJ_OK, "eval: %s", err);
    CHECK(ev.n == 2000 && fabs(ev.accuracy - res.last.test_accuracy) < 1e-12 &&
              fabs(ev.loss - res.last.test_loss) < 1e-5,
          "eval of the checkpoint agrees with the run: %.6f vs %.6f", ev.accuracy, res.last.test_accuracy);
    long total = 0;
    for (int i = 0; i < 100; i++)
        total += ev.confusion[i];
    CHECK(total == 2000, "confusion matrix counts every image (%ld)", total);
    char *metrics = NULL;
    size_t mlen = 0;
    char mp[700];
    snprintf(mp, sizeof mp, "%s/metrics.jsonl", a);
    CHECK(dj_read_file(mp, 1 << 20, &metrics, &mlen, err, sizeof err) == DJ_OK, "metrics.jsonl: %s", err);
    int epochs_lines = 0, step_lines = 0;
    for (char *p = metrics; p && (p = strstr(p, "\"type\":")); p++) {
        epochs_lines += strncmp(p, "\"type\":\"epoch\"", 14) == 0;
        step_lines += strncmp(p, "\"type\":\"step\"", 13) == 0;
    }
    const int steps = 3 * (int)((4000 + c.batch_size - 1) / c.batch_size);
    CHECK(epochs_lines == 3 && step_lines == steps / 10, "metrics: %d epoch lines, %d step lines (want %d)",
          epochs_lines, step_lines, steps / 10);
    free(metrics);
    rm_run(a);

    /* Resume: uninterrupted 2 epochs vs 1 epoch, stop, resume. */
    c.epochs = 2;
    c.train_limit = 1000;
    c.test_limit = 500;
    CHECK(dj_train_run(&c, 0, NULL, &res, err, sizeof err) == DJ_OK, "run A: %s", err);
    snprintf(c.out, sizeof c.out, "%s", b);
    stopper s = {1};
    dj_train_hooks hooks = {NULL, NULL, stop_hook, &s};
    CHECK(dj_train_run(&c, 0, &hooks, &res, err, sizeof err) == DJ_OK && res.epochs == 1,
          "run B stops after epoch 1 (%d): %s", res.epochs, err);
    snprintf(cb, sizeof cb, "%s/checkpoint.safetensors", b);
    snprintf(ca, sizeof ca, "%s/checkpoint.safetensors", a);
    CHECK(!same_checkpoints(ca, cb), "after one epoch the weights differ from after two");
    CHECK(dj_train_run(&c, 1, NULL, &res, err, sizeof err) == DJ_OK && res.epochs == 2, "resume B: %s", err);
    CHECK(same_checkpoints(ca, cb), "resumed run is bit-identical to the uninterrupted one");
    CHECK(dj_train_run(&c, 1, NULL, &res, err, sizeof err) != DJ_OK && strstr(err, "nothing to do"),
          "resuming a finished run says so: %s", err);
    rm_run(a);
    rm_run(b);
    rmdir(base);
}

/* Every 8-bit/bf16 policy learns, logs what its formats did, reproduces
 * itself from the seed (stochastic rounding included) and resumes
 * bit-identically; SHP masters shrink the training state. */
static void test_precisions(void)
{
    char base[] = "/tmp/dojo-prec-XXXXXX";
    CHECK(mkdtemp(base) != NULL, "mkdtemp");
    char a[600], b[600], ca[700], cb[700], mp[700], err[1024] = "";
    snprintf(a, sizeof a, "%s/a", base);
    snprintf(b, sizeof b, "%s/b", base);
    snprintf(ca, sizeof ca, "%s/checkpoint.safetensors", a);
    snprintf(cb, sizeof cb, "%s/checkpoint.safetensors", b);
    snprintf(mp, sizeof mp, "%s/metrics.jsonl", a);
    const dj_precision pols[] = {DJ_PREC_BF16, DJ_PREC_CFP8, DJ_PREC_CFP8_SHP, DJ_PREC_OCP8};
    const char *grad_fmt[] = {"\"bf16\"", "\"cfloat8_1_5_2\"", "\"cfloat8_1_5_2\"", "\"e5m2\""};
    double bytes[4] = {0};
    for (int k = 0; k < 4; k++) {
        const char *name = dj_precision_name(pols[k]);
        dj_train_config c;
        dj_train_config_defaults(&c);
        snprintf(c.model, sizeof c.model, "models/fmnist-mlp.json");
        CHECK(dj_train_config_apply_spec(&c, err, sizeof err) == DJ_OK, "spec: %s", err);
        snprintf(c.data, sizeof c.data, DATA);
        snprintf(c.out, sizeof c.out, "%s", a);
        c.prec.precision = pols[k];
        snprintf(c.prec.keep_fp32, sizeof c.prec.keep_fp32, "none");
        c.epochs = 2;
        c.train_limit = 1500;
        c.test_limit = 500;
        c.threads = 2;
        dj_train_result res;
        CHECK(dj_train_run(&c, 0, NULL, &res, err, sizeof err) == DJ_OK, "%s run A: %s", name, err);
        CHECK(res.last.test_accuracy > 0.65, "%s learns: %.3f", name, res.last.test_accuracy);
        bytes[k] = res.state_bytes_per_param;
        dj_eval_result ev;
        CHECK(dj_eval_run(c.model, ca, DATA, 2, 250, 500, NULL, &ev, err, sizeof err) == DJ_OK &&
                  ev.precision == pols[k] && ev.accuracy == res.last.test_accuracy &&
                  fabs(ev.loss - res.last.test_loss) < 1e-6,
              "%s: dojo eval runs the checkpoint's policy and agrees with the run (%.4f vs %.4f): %s",
              name, ev.accuracy, res.last.test_accuracy, err);
        char *metrics = NULL;
        size_t mlen = 0;
        CHECK(dj_read_file(mp, 1 << 22, &metrics, &mlen, err, sizeof err) == DJ_OK, "metrics: %s", err);
        CHECK(metrics && strstr(metrics, "\"quant\"") && strstr(metrics, "\"1.grad_output\"") &&
                  strstr(metrics, grad_fmt[k]) && strstr(metrics, "\"underflow\""),
              "%s: metrics.jsonl records the formats' statistics", name);
        free(metrics);
        snprintf(c.out, sizeof c.out, "%s", b);
        CHECK(dj_train_run(&c, 0, NULL, &res, err, sizeof err) == DJ_OK, "%s run A again: %s", name, err);
        CHECK(same_checkpoints(ca, cb), "%s: same seed, same weights (stochastic rounding reproducible)",
              name);
        rm_run(b);
        stopper s = {1};
        dj_train_hooks hooks = {NULL, NULL, stop_hook, &s};
        CHECK(dj_train_run(&c, 0, &hooks, &res, err, sizeof err) == DJ_OK && res.epochs == 1,
              "%s run B stops after one epoch: %s", name, err);
        CHECK(dj_train_run(&c, 1, NULL, &res, err, sizeof err) == DJ_OK && res.epochs == 2,
              "%s resume: %s", name, err);
        CHECK(same_checkpoints(ca, cb), "%s: resumed run is bit-identical", name);
        rm_run(b);
        c.seed = 2;
        CHECK(dj_train_run(&c, 0, NULL, &res, err, sizeof err) == DJ_OK, "%s seed 2: %s", name, err);
        CHECK(!same_checkpoints(ca, cb), "%s: another seed, other weights", name);
        rm_run(a);
        rm_run(b);
    }
    /* fp32 weight, gradient and momentum (12) plus the weight copy the
     * kernels read (bf16 2, CFloat8 1); SHP weight and momentum: 2 + 4 + 2 + 1 */
    CHECK(fabs(bytes[0] - 14.0) < 0.01 && fabs(bytes[1] - 13.0) < 0.01 && fabs(bytes[2] - 9.0) < 0.01,
          "state bytes per parameter: bf16 %.2f (14), cfp8 %.2f (13), cfp8-shp %.2f (9)",
          bytes[0], bytes[1], bytes[2]);
    rmdir(base);
}

int main(void)
{
    test_config();
    struct stat sb;
    if (stat(DATA, &sb) == 0) {
        test_training();
        test_precisions();
    }
    else
        printf("SKIP training tests: %s not installed (apt-get install dataset-fashion-mnist)\n", DATA);
    return th_done("test_train");
}
