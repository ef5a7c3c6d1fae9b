/* cmd_train.c - `dojo train` and `dojo eval`: options, the progress display
 * and the final report. The loop itself is in src/train/. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "dojo/fileio.h"
#include "dojo/json.h"
#include "dojo/train.h"

void dj_train_usage(FILE *fp)
{
    fputs("usage: dojo train --model SPEC.json [options]\n"
          "       dojo train --resume DIR [--epochs N] [--threads N] [--json]\n"
          "\n"
          "Trains the model described by SPEC.json on an MNIST-style dataset and\n"
          "writes config.json, metrics.jsonl and checkpoint.safetensors to --out\n"
          "(atomically, at the end of every epoch).\n"
          "\n"
          "options (defaults: the spec's \"train\" object, else the value shown):\n"
          "  --model PATH          model spec (models/fmnist-cnn.json, ...)\n"
          "  --data DIR            the four IDX files, gzip'd or raw\n"
          "                        (default /usr/share/datasets/fashion-mnist)\n"
          "  --out DIR             output directory (default runs/<model name>)\n"
          "  --resume DIR          continue the run in DIR from its last checkpoint\n"
          "  --epochs N            (5)\n"
          "  --batch-size N        (128)\n"
          "  --lr X                peak learning rate (0.05)\n"
          "  --optimizer sgd|adamw (sgd)\n"
          "  --momentum X          SGD momentum (0.9)\n"
          "  --nesterov on|off     (on)\n"
          "  --weight-decay X      (5e-4; AdamW: decoupled)\n"
          "  --schedule constant|cosine|step|onecycle   (cosine)\n"
          "  --warmup X            warmup epochs, linear (0)\n"
          "  --step-size N         step schedule: decay every N epochs (1)\n"
          "  --gamma X             step schedule: decay factor (0.1)\n"
          "  --augment on|off      random crop (pad 2) and horizontal flip (off)\n"
          "  --label-smoothing X   (0)\n"
          "  --precision P         fp32|bf16|cfp8|cfp8-shp|ocp8 (fp32); see\n"
          "                        docs/PRECISION.md\n"
          "  --scaling S           delayed|current: amax of activations and\n"
          "                        gradients over a history, or of this step (delayed)\n"
          "  --amax-history N      steps of amax history for delayed scaling (16)\n"
          "  --margin N            powers of two of headroom in bias choice (0)\n"
          "  --keep-fp32 LIST      GEMM/conv layers kept in fp32: first,last (default),\n"
          "                        none, or layer names (0,9)\n"
          "  --threads N           (all CPUs)\n"
          "  --seed N              (1)\n"
          "  --train-limit N       use only the first N training images\n"
          "  --test-limit N        use only the first N test images\n"
          "  --log-every N         steps between step lines in metrics.jsonl (100)\n"
          "  --json                end with one JSON line: test_accuracy, test_loss,\n"
          "                        epochs, images_per_second, seconds\n",
          fp);
}

void dj_eval_usage(FILE *fp)
{
    fputs("usage: dojo eval --model SPEC.json --checkpoint FILE.safetensors [options]\n"
          "\n"
          "Evaluates a checkpoint on the test split: accuracy, loss and the\n"
          "confusion matrix (rows: true class, columns: predicted).\n"
          "\n"
          "options:\n"
          "  --data DIR        (default /usr/share/datasets/fashion-mnist)\n"
          "  --batch-size N    (500)\n"
          "  --threads N       (all CPUs)\n"
          "  --limit N         only the first N test images\n"
          "  --precision P     fp32|bf16|cfp8|cfp8-shp|ocp8: the forward pass's number\n"
          "                    formats (default: the policy the checkpoint was trained\n"
          "                    with, so that the figures match the run's)\n"
          "  --keep-fp32 LIST  with --precision: layers kept in fp32 (first,last)\n"
          "  --json            one JSON object instead of the text report\n",
          fp);
}

static int parse_double(const char *cmd, const char *opt, const char *s, double lo, double hi, double *out)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end != '\0' || !isfinite(v) || v < lo || v > hi) {
        dj_cli_err(cmd, "%s: expected a number in [%g, %g], got '%s'", opt, lo, hi, s);
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_intopt(const char *cmd, const char *opt, const char *s, long long lo, long long hi,
                        long long *out)
{
    int rc = dj_parse_int(s, lo, hi, out);
    if (rc != 0) {
        dj_cli_err(cmd, "%s: expected an integer in [%lld, %lld], got '%s'", opt, lo, hi, s);
        return -1;
    }
    return 0;
}

static int parse_onoff(const char *cmd, const char *opt, const char *s, int *out)
{
    if (!strcmp(s, "on") || !strcmp(s, "true") || !strcmp(s, "1")) {
        *out = 1;
        return 0;
    }
    if (!strcmp(s, "off") || !strcmp(s, "false") || !strcmp(s, "0")) {
        *out = 0;
        return 0;
    }
    dj_cli_err(cmd, "%s: expected on or off, got '%s'", opt, s);
    return -1;
}

/* ---- progress display ---- */

typedef struct {
    int tty;
    int json;
    double last_print;
    double t0;
} display;

static void on_start(void *user, const dj_train_config *c, size_t params, int start_epoch)
{
    display *d = user;
    d->t0 = dj_cli_now();
    printf("training %s: %zu parameters, %d epochs, batch %d, %s lr %g (%s), %d threads%s\n", c->model,
           params, c->epochs, c->batch_size, dj_optim_name(c->optimizer), c->lr,
           dj_sched_name(c->schedule), c->threads, c->augment ? ", augmented" : "");
    if (start_epoch > 0)
        printf("resuming after epoch %d\n", start_epoch);
    if (c->out[0])
        printf("writing to %s/\n", c->out);
    fflush(stdout);
}

static void on_step(void *user, const dj_train_progress *p)
{
    display *d = user;
    double t = dj_cli_now();
    int last = p->batch == p->batches;
    if (d->tty) {
        if (!last && t - d->last_print < 0.1)
            return;
        d->last_print = t;
        char eta[32];
        dj_cli_duration(p->eta_seconds, eta, sizeof eta);
        int width = 24, fill = (int)((double)width * (double)p->batch / (double)p->batches);
        char bar[32];
        for (int i = 0; i < width; i++)
            bar[i] = i < fill ? '#' : '.';
        bar[width] = '\0';
        printf("\r\033[Kepoch %d/%d [%s] %zu/%zu loss %.4f  %.0f img/s  eta %s", p->epoch + 1,
               p->epochs, bar, p->batch, p->batches, p->loss, p->images_per_second, eta);
        if (last)
            printf("\r\033[K");
        fflush(stdout);
    } else {
        if (!last && t - d->last_print < 10.0)
            return;
        d->last_print = t;
        if (last)
            return;
        char eta[32];
        dj_cli_duration(p->eta_seconds, eta, sizeof eta);
        printf("epoch %d/%d step %zu/%zu loss %.4f lr %.4g %.0f img/s eta %s\n", p->epoch + 1,
               p->epochs, p->batch, p->batches, p->loss, p->lr, p->images_per_second, eta);
        fflush(stdout);
    }
}

static int on_epoch(void *user, const dj_epoch_metrics *m)
{
    (void)user;
    printf("epoch %d: train loss %.4f acc %.2f%% | test loss %.4f acc %.2f%% | %.0f img/s | %.1f s\n",
           m->epoch, m->train_loss, 100 * m->train_accuracy, m->test_loss, 100 * m->test_accuracy,
           m->images_per_second, m->seconds);
    fflush(stdout);
    return 0;
}

/* The model's name for the default output directory: spec file stem. */
static void default_out(const char *model, char *out, size_t n)
{
    const char *base = strrchr(model, '/');
    base = base ? base + 1 : model;
    size_t len = strlen(base);
    if (len > 5 && strcmp(base + len - 5, ".json") == 0)
        len -= 5;
    snprintf(out, n, "runs/%.*s", (int)len, base);
}

int dj_cmd_train(int argc, char **argv)
{
    const char *cmd = "train";
    dj_train_config c;
    dj_train_config_defaults(&c);
    const char *model = NULL, *resume = NULL, *out = NULL, *data = NULL;
    int json = 0;
    /* Options are applied after the spec (or config.json) is read, so the
     * command line wins; remember them as (name, value) pairs. */
    const char *names[64], *values[64];
    int nset = 0;
    dj_opt_iter it;
    int rc;
    dj_opt_init(&it, argc, argv, 1);
    while ((rc = dj_opt_next(&it, cmd)) == DJ_OPT_MORE) {
        if (dj_opt_is(&it, "--help")) {
            dj_train_usage(stdout);
            return DJ_EXIT_OK;
        }
        if (dj_opt_is(&it, "--json")) {
            if (dj_opt_no_value(&it, cmd))
                return DJ_EXIT_USAGE;
            json = 1;
            continue;
        }
        static const char *const known[] = {
            "--model", "--data", "--out", "--resume", "--epochs", "--batch-size", "--lr",
            "--optimizer", "--momentum", "--nesterov", "--weight-decay", "--schedule", "--warmup",
            "--step-size", "--gamma", "--augment", "--label-smoothing", "--threads", "--seed",
            "--train-limit", "--test-limit", "--log-every", "--precision", "--scaling",
            "--amax-history", "--margin", "--keep-fp32", NULL};
        int k = 0;
        while (known[k] && !dj_opt_is(&it, known[k]))
            k++;
        if (!known[k])
            return dj_opt_unknown(&it, cmd);
        const char *v = dj_opt_value(&it, cmd);
        if (!v)
            return DJ_EXIT_USAGE;
        if (!strcmp(known[k], "--model"))
            model = v;
        else if (!strcmp(known[k], "--resume"))
            resume = v;
        else if (!strcmp(known[k], "--out"))
            out = v;
        else if (!strcmp(known[k], "--data"))
            data = v;
        else if (nset < 64) {
            names[nset] = known[k];
            values[nset++] = v;
        }
    }
    if (rc == DJ_OPT_ERROR)
        return DJ_EXIT_USAGE;

    char err[1024] = "";
    if (resume) {
        if (model || out) {
            dj_cli_err(cmd, "--resume takes the model and output directory from DIR/config.json; "
                            "leave out --model and --out");
            return DJ_EXIT_USAGE;
        }
        char path[DJ_PATH_MAX + 32], *text = NULL;
        size_t len;
        snprintf(path, sizeof path, "%s/config.json", resume);
        if (dj_read_file(path, 1 << 20, &text, &len, err, sizeof err) != DJ_OK) {
            dj_cli_err(cmd, "--resume: %s", err);
            return DJ_EXIT_DATA;
        }
        dj_status st = dj_train_config_from_json(&c, text, len, path, err, sizeof err);
        free(text);
        if (st) {
            dj_cli_err(cmd, "%s", err);
            return DJ_EXIT_DATA;
        }
        snprintf(c.out, sizeof c.out, "%s", resume);
    } else {
        if (!model) {
            dj_cli_err(cmd, "missing --model (e.g. --model models/fmnist-cnn.json)");
            return DJ_EXIT_USAGE;
        }
        if (strlen(model) >= DJ_PATH_MAX) {
            dj_cli_err(cmd, "--model: path too long");
            return DJ_EXIT_USAGE;
        }
        snprintf(c.model, sizeof c.model, "%s", model);
        if (dj_train_config_apply_spec(&c, err, sizeof err) != DJ_OK) {
            dj_cli_err(cmd, "%s", err);
            return DJ_EXIT_DATA;
        }
        if (out)
            snprintf(c.out, sizeof c.out, "%s", out);
        else
            default_out(model, c.out, sizeof c.out);
    }
    if (data)
        snprintf(c.data, sizeof c.data, "%s", data);
    for (int i = 0; i < nset; i++) {
        const char *o = names[i], *v = values[i];
        long long ll;
        double d;
        int b;
        if (!strcmp(o, "--epochs")) {
            if (parse_intopt(cmd, o, v, 1, 100000, &ll))
                return DJ_EXIT_USAGE;
            c.epochs = (int)ll;
        } else if (!strcmp(o, "--batch-size")) {
            if (parse_intopt(cmd, o, v, 1, 65536, &ll))
                return DJ_EXIT_USAGE;
            c.batch_size = (int)ll;
        } else if (!strcmp(o, "--threads")) {
            if (parse_intopt(cmd, o, v, 1, 1024, &ll))
                return DJ_EXIT_USAGE;
            c.threads = (int)ll;
        } else if (!strcmp(o, "--step-size")) {
            if (parse_intopt(cmd, o, v, 1, 100000, &ll))
                return DJ_EXIT_USAGE;
            c.step_size = (int)ll;
        } else if (!strcmp(o, "--log-every")) {
            if (parse_intopt(cmd, o, v, 0, 1000000000, &ll))
                return DJ_EXIT_USAGE;
            c.log_every = (int)ll;
        } else if (!strcmp(o, "--train-limit") || !strcmp(o, "--test-limit")) {
            if (parse_intopt(cmd, o, v, 0, 1000000000000LL, &ll))
                return DJ_EXIT_USAGE;
            *(o[2] == 't' && o[3] == 'r' ? &c.train_limit : &c.test_limit) = (size_t)ll;
        } else if (!strcmp(o, "--seed")) {
            uint64_t s;
            if (dj_parse_u64(v, &s) != 0) {
                dj_cli_err(cmd, "--seed: expected a non-negative integer, got '%s'", v);
                return DJ_EXIT_USAGE;
            }
            c.seed = s;
        } else if (!strcmp(o, "--lr")) {
            if (parse_double(cmd, o, v, 0, 1000, &c.lr))
                return DJ_EXIT_USAGE;
        } else if (!strcmp(o, "--momentum")) {
            if (parse_double(cmd, o, v, 0, 0.9999999, &c.momentum))
                return DJ_EXIT_USAGE;
        } else if (!strcmp(o, "--weight-decay")) {
            if (parse_double(cmd, o, v, 0, 10, &c.weight_decay))
                return DJ_EXIT_USAGE;
        } else if (!strcmp(o, "--warmup")) {
            if (parse_double(cmd, o, v, 0, 10000, &c.warmup_epochs))
                return DJ_EXIT_USAGE;
        } else if (!strcmp(o, "--gamma")) {
            if (parse_double(cmd, o, v, 0, 10, &c.gamma))
                return DJ_EXIT_USAGE;
        } else if (!strcmp(o, "--label-smoothing")) {
            if (parse_double(cmd, o, v, 0, 0.999, &d))
                return DJ_EXIT_USAGE;
            c.label_smoothing = d;
        } else if (!strcmp(o, "--nesterov") || !strcmp(o, "--augment")) {
            if (parse_onoff(cmd, o, v, &b))
                return DJ_EXIT_USAGE;
            *(o[2] == 'n' ? &c.nesterov : &c.augment) = b;
        } else if (!strcmp(o, "--amax-history")) {
            if (parse_intopt(cmd, o, v, 1, DJ_AMAX_HISTORY_MAX, &ll))
                return DJ_EXIT_USAGE;
            c.prec.history = (int)ll;
        } else if (!strcmp(o, "--margin")) {
            if (parse_intopt(cmd, o, v, 0, 8, &ll))
                return DJ_EXIT_USAGE;
            c.prec.margin = (int)ll;
        } else if (!strcmp(o, "--precision")) {
            if (dj_precision_from_name(v, &c.prec.precision)) {
                dj_cli_err(cmd, "--precision: expected fp32, bf16, cfp8, cfp8-shp or ocp8, got '%s'", v);
                return DJ_EXIT_USAGE;
            }
        } else if (!strcmp(o, "--scaling")) {
            if (dj_scaling_from_name(v, &c.prec.scaling)) {
                dj_cli_err(cmd, "--scaling: expected delayed or current, got '%s'", v);
                return DJ_EXIT_USAGE;
            }
        } else if (!strcmp(o, "--keep-fp32")) {
            if (strlen(v) >= sizeof c.prec.keep_fp32) {
                dj_cli_err(cmd, "--keep-fp32: list too long");
                return DJ_EXIT_USAGE;
            }
            snprintf(c.prec.keep_fp32, sizeof c.prec.keep_fp32, "%s", v);
        } else if (!strcmp(o, "--optimizer")) {
            if (dj_optim_from_name(v, &c.optimizer)) {
                dj_cli_err(cmd, "--optimizer: expected sgd or adamw, got '%s'", v);
                return DJ_EXIT_USAGE;
            }
        } else if (!strcmp(o, "--schedule")) {
            if (dj_sched_from_name(v, &c.schedule)) {
                dj_cli_err(cmd, "--schedule: expected constant, cosine, step or onecycle, got '%s'", v);
                return DJ_EXIT_USAGE;
            }
        }
    }

    display d = {isatty(STDOUT_FILENO), json, 0, 0};
    dj_train_hooks hooks = {on_start, on_step, on_epoch, &d};
    dj_train_result res;
    err[0] = '\0';
    dj_status st = dj_train_run(&c, resume != NULL, &hooks, &res, err, sizeof err);
    if (st) {
        dj_cli_err(cmd, "%s", err[0] ? err : dj_status_str(st));
        return DJ_EXIT_DATA;
    }
    printf("done: test accuracy %.2f%%, test loss %.4f, %.0f img/s, %.1f s\n",
           100 * res.last.test_accuracy, res.last.test_loss, res.images_per_second, res.seconds);
    if (json) {
        dj_json_writer w;
        dj_json_writer_init(&w, 0, NULL);
        dj_json_write_begin_object(&w);
        dj_json_write_key(&w, "test_accuracy"), dj_json_write_double(&w, res.last.test_accuracy);
        dj_json_write_key(&w, "test_loss"), dj_json_write_double(&w, res.last.test_loss);
        dj_json_write_key(&w, "train_loss"), dj_json_write_double(&w, res.last.train_loss);
        dj_json_write_key(&w, "epochs"), dj_json_write_int(&w, res.epochs);
        dj_json_write_key(&w, "images_per_second"), dj_json_write_double(&w, res.images_per_second);
        dj_json_write_key(&w, "seconds"), dj_json_write_double(&w, res.seconds);
        dj_json_write_key(&w, "precision"), dj_json_write_string(&w, dj_precision_name(c.prec.precision));
        dj_json_write_key(&w, "state_bytes_per_param"), dj_json_write_double(&w, res.state_bytes_per_param);
        dj_json_write_key(&w, "peak_rss_bytes"), dj_json_write_int(&w, (int64_t)res.peak_rss_bytes);
        dj_json_write_key(&w, "out"), dj_json_write_string(&w, c.out);
        dj_json_write_end_object(&w);
        dj_json_writer_print_line(&w, stdout);
    }
    return DJ_EXIT_OK;
}

int dj_cmd_eval(int argc, char **argv)
{
    const char *cmd = "eval";
    const char *model = NULL, *ckpt = NULL, *data = "/usr/share/datasets/fashion-mnist";
    long long batch = 500, threads = 0, limit = 0;
    int json = 0, rc, have_prec = 0;
    dj_precision_config prec;
    dj_precision_config_defaults(&prec);
    dj_opt_iter it;
    dj_opt_init(&it, argc, argv, 1);
    while ((rc = dj_opt_next(&it, cmd)) == DJ_OPT_MORE) {
        const char *v;
        if (dj_opt_is(&it, "--help")) {
            dj_eval_usage(stdout);
            return DJ_EXIT_OK;
        } else if (dj_opt_is(&it, "--json")) {
            if (dj_opt_no_value(&it, cmd))
                return DJ_EXIT_USAGE;
            json = 1;
        } else if (dj_opt_is(&it, "--model")) {
            if (!(model = dj_opt_value(&it, cmd)))
                return DJ_EXIT_USAGE;
        } else if (dj_opt_is(&it, "--checkpoint")) {
            if (!(ckpt = dj_opt_value(&it, cmd)))
                return DJ_EXIT_USAGE;
        } else if (dj_opt_is(&it, "--data")) {
            if (!(data = dj_opt_value(&it, cmd)))
                return DJ_EXIT_USAGE;
        } else if (dj_opt_is(&it, "--batch-size")) {
            if (!(v = dj_opt_value(&it, cmd)) || parse_intopt(cmd, "--batch-size", v, 1, 65536, &batch))
                return DJ_EXIT_USAGE;
        } else if (dj_opt_is(&it, "--threads")) {
            if (!(v = dj_opt_value(&it, cmd)) || parse_intopt(cmd, "--threads", v, 1, 1024, &threads))
                return DJ_EXIT_USAGE;
        } else if (dj_opt_is(&it, "--limit")) {
            if (!(v = dj_opt_value(&it, cmd)) || parse_intopt(cmd, "--limit", v, 0, 1000000000000LL, &limit))
                return DJ_EXIT_USAGE;
        } else if (dj_opt_is(&it, "--precision")) {
            if (!(v = dj_opt_value(&it, cmd)))
                return DJ_EXIT_USAGE;
            if (dj_precision_from_name(v, &prec.precision)) {
                dj_cli_err(cmd, "--precision: expected fp32, bf16, cfp8, cfp8-shp or ocp8, got '%s'", v);
                return DJ_EXIT_USAGE;
            }
            have_prec = 1;
        } else if (dj_opt_is(&it, "--keep-fp32")) {
            if (!(v = dj_opt_value(&it, cmd)))
                return DJ_EXIT_USAGE;
            if (strlen(v) >= sizeof prec.keep_fp32) {
                dj_cli_err(cmd, "--keep-fp32: list too long");
                return DJ_EXIT_USAGE;
            }
            snprintf(prec.keep_fp32, sizeof prec.keep_fp32, "%s", v);
        } else {
            return dj_opt_unknown(&it, cmd);
        }
    }
    if (rc == DJ_OPT_ERROR)
        return DJ_EXIT_USAGE;
    if (!model || !ckpt) {
        dj_cli_err(cmd, "missing %s", !model ? "--model" : "--checkpoint");
        return DJ_EXIT_USAGE;
    }
    static dj_eval_result r;
    char err[1024] = "";
    dj_status st = dj_eval_run(model, ckpt, data, (int)threads, (int)batch, (size_t)limit,
                               have_prec ? &prec : NULL, &r, err, sizeof err);
    if (st) {
        dj_cli_err(cmd, "%s", err);
        return DJ_EXIT_DATA;
    }
    if (json) {
        dj_json_writer w;
        dj_json_writer_init(&w, 0, NULL);
        dj_json_write_begin_object(&w);
        dj_json_write_key(&w, "test_accuracy"), dj_json_write_double(&w, r.accuracy);
        dj_json_write_key(&w, "test_loss"), dj_json_write_double(&w, r.loss);
        dj_json_write_key(&w, "images"), dj_json_write_int(&w, (int64_t)r.n);
        dj_json_write_key(&w, "precision"), dj_json_write_string(&w, dj_precision_name(r.precision));
        dj_json_write_key(&w, "confusion");
        dj_json_write_begin_array(&w);
        for (int i = 0; i < r.classes; i++) {
            dj_json_write_begin_array(&w);
            for (int j = 0; j < r.classes; j++)
                dj_json_write_int(&w, r.confusion[i * r.classes + j]);
            dj_json_write_end_array(&w);
        }
        dj_json_write_end_array(&w);
        dj_json_write_end_object(&w);
        dj_json_writer_print_line(&w, stdout);
        return DJ_EXIT_OK;
    }
    printf("test images: %zu\nprecision:   %s\naccuracy:    %.2f%%\nloss:        %.4f\n\nconfusion matrix (rows: true, columns: predicted)\n",
           r.n, dj_precision_name(r.precision), 100 * r.accuracy, r.loss);
    printf("      ");
    for (int j = 0; j < r.classes; j++)
        printf("%6d", j);
    printf("\n");
    for (int i = 0; i < r.classes; i++) {
        printf("%6d", i);
        for (int j = 0; j < r.classes; j++)
            printf("%6lld", (long long)r.confusion[i * r.classes + j]);
        printf("\n");
    }
    return DJ_EXIT_OK;
}
