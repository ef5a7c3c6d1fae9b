/* bench_train.c - `dojo bench train`: images per second of the whole
 * training step (forward, loss, backward, optimizer update) of a model
 * under a precision policy, on synthetic input, without data loading.
 *
 * Method. The model is built and initialised as `dojo train` would (the
 * spec's training defaults, then the options); the input is uniform in
 * [-1, 1) and the labels uniform over the classes, from a fixed seed. After
 * --warmup steps (default 3: buffers and caches settle), --steps steps
 * (default 20) are timed with CLOCK_MONOTONIC as --repeat samples (default
 * 3); the figure is the best sample. The process CPU time of each sample
 * is recorded too: a figure whose threads had less than 90% of their CPUs
 * (other load on the machine) is marked with '*'.
 *
 * --profile then times --steps more steps layer by layer (dj_model_profile)
 * and prints each layer's forward and backward milliseconds per step, the
 * share of the step, and the rest (loss, optimizer update). Those steps are
 * not part of the images/s figure. */
#define _POSIX_C_SOURCE 200809L

#include "bench_train.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "dojo/json.h"
#include "dojo/kernels.h"
#include "dojo/precision.h"
#include "dojo/rng.h"
#include "dojo/tensor.h"
#include "dojo/train.h"

#define CMD "bench train"

static double clock_s(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void usage(FILE *fp)
{
    fputs("usage: dojo bench train [--model SPEC.json] [--precision P] [OPTIONS]\n"
          "\n"
          "Images per second of the full training step (forward, loss, backward,\n"
          "optimizer update) on synthetic input, without data loading.\n"
          "\n"
          "options:\n"
          "  --model PATH         model spec (models/fmnist-cnn.json)\n"
          "  --precision P        fp32|bf16|cfp8|cfp8-shp|ocp8 (fp32)\n"
          "  --batch-size N       (the spec's, else 128)\n"
          "  --threads N          (all CPUs)\n"
          "  --steps N            timed steps per sample (20)\n"
          "  --warmup N           untimed steps first (3)\n"
          "  --repeat N           samples; the best is reported (3)\n"
          "  --profile            then time the layers: ms per step forward, backward\n"
          "                       (each including its encoding of 8-bit/bf16 operands,\n"
          "                       also shown alone), share of the step\n"
          "  --json               end with one JSON line: images_per_second, ...; with\n"
          "                       --profile a \"profile\" member, one object per layer\n"
          "\n"
          "bench/train_vs_torch.sh runs PyTorch on the same network, batch and threads\n"
          "in the same run and prints the ratio.\n",
          fp);
}

static int int_opt(const char *o, const char *v, long long lo, long long hi, int *out)
{
    long long ll;
    if (dj_parse_int(v, lo, hi, &ll) != 0) {
        dj_cli_err(CMD, "%s: expected an integer in [%lld, %lld], got '%s'", o, lo, hi, v);
        return -1;
    }
    *out = (int)ll;
    return 0;
}

/* Percent of `threads` CPUs busy for `cpu` CPU seconds over `wall`. */
static double busy(double cpu, double wall, int threads)
{
    return wall > 0 ? 100 * cpu / (wall * threads) : 0;
}

/* --profile: `steps` more steps with per-layer timing, printed as a table;
 * with w (--json) also as its "profile" member: step_ms, rest_share, cpu
 * and one object per layer. */
static int print_profile(dj_train_stepper *s, const float *x, const int32_t *y, int batch,
                         int steps, int threads, dj_json_writer *w)
{
    dj_model *m = dj_train_stepper_model(s);
    const size_t nl = dj_model_profile_report(m, NULL, 0);
    dj_layer_profile *p = calloc(nl ? nl : 1, sizeof *p);
    if (!p)
        return -1;
    dj_model_profile(m, 1);
    const double w0 = clock_s(CLOCK_MONOTONIC), c0 = clock_s(CLOCK_PROCESS_CPUTIME_ID);
    for (int i = 0; i < steps; i++)
        dj_train_stepper_step(s, x, y, batch);
    const double wall = clock_s(CLOCK_MONOTONIC) - w0;
    const double cpu_all = clock_s(CLOCK_PROCESS_CPUTIME_ID) - c0;
    dj_model_profile(m, 0);
    dj_model_profile_report(m, p, nl);
    const double per = 1e3 / steps, total = wall * per;
    double f = 0, b = 0, e = 0, cpu = 0;
    printf("\nper-layer time, ms per step (%d profiled steps, %.1f ms each); encoding (amax,\n"
           "bias, conversion, statistics of 8-bit/bf16 operands) is part of forward and\n"
           "backward; cpu: the threads' busy share (process CPU time / (wall time x %d threads);\n"
           "a pool thread's spin-wait for the next task, up to a few hundred us, counts as busy):\n",
           steps, total, threads);
    printf("%-22s %-18s %-12s %9s %9s %9s %7s %5s\n", "layer", "kind", "output", "forward",
           "backward", "encoding", "share", "cpu");
    if (w) {
        dj_json_write_key(w, "profile");
        dj_json_write_begin_object(w);
        dj_json_write_key(w, "steps"), dj_json_write_int(w, steps);
        dj_json_write_key(w, "step_ms"), dj_json_write_double(w, total);
        dj_json_write_key(w, "layers");
        dj_json_write_begin_array(w);
    }
    for (size_t i = 0; i < nl; i++) {
        char shape[48] = "";
        if (p[i].out_ndim == 3)
            snprintf(shape, sizeof shape, "%lldx%lldx%lld", (long long)p[i].out[0],
                     (long long)p[i].out[1], (long long)p[i].out[2]);
        else
            snprintf(shape, sizeof shape, "%lld", (long long)p[i].out[0]);
        char kind[40];
        snprintf(kind, sizeof kind, "%*s%s%s", 2 * p[i].depth, "", p[i].kind,
                 p[i].kind && !strcmp(p[i].kind, "Residual") ? " (sum)" : "");
        const double t = (p[i].forward_s + p[i].backward_s) * per;
        if (w) {
            dj_json_write_begin_object(w);
            dj_json_write_key(w, "name"), dj_json_write_string(w, p[i].name);
            dj_json_write_key(w, "kind"), dj_json_write_string(w, p[i].kind);
            dj_json_write_key(w, "output"), dj_json_write_string(w, shape);
            if (p[i].fused) {
                dj_json_write_key(w, "fused_into");
                dj_json_write_string(w, p[i].fused == 1 ? "next" : "previous");
            } else {
                dj_json_write_key(w, "forward_ms"), dj_json_write_double(w, p[i].forward_s * per);
                dj_json_write_key(w, "backward_ms"), dj_json_write_double(w, p[i].backward_s * per);
                dj_json_write_key(w, "encoding_ms"), dj_json_write_double(w, p[i].encode_s * per);
                dj_json_write_key(w, "share"), dj_json_write_double(w, t / total);
                dj_json_write_key(w, "cpu_share");
                dj_json_write_double(w, busy(p[i].cpu_s, p[i].forward_s + p[i].backward_s,
                                             threads) / 100);
            }
            dj_json_write_end_object(w);
        }
        if (p[i].fused) {
            printf("%-22s %-18s %-12s %9s %9s %9s %7s %5s  (in the %s layer)\n", p[i].name, kind,
                   shape, "-", "-", "-", "-", "-", p[i].fused == 1 ? "next" : "previous");
            continue;
        }
        printf("%-22s %-18s %-12s %9.2f %9.2f %9.2f %6.1f%% %4.0f%%\n", p[i].name, kind, shape,
               p[i].forward_s * per, p[i].backward_s * per, p[i].encode_s * per,
               100 * t / total, busy(p[i].cpu_s, p[i].forward_s + p[i].backward_s, threads));
        f += p[i].forward_s;
        b += p[i].backward_s;
        e += p[i].encode_s;
        cpu += p[i].cpu_s;
    }
    const double rest = total - (f + b) * per;
    printf("%-22s %-18s %-12s %9s %9s %9s %6.1f%% %4.0f%%\n", "(rest)", "loss, update", "", "", "",
           "", 100 * rest / total, busy(cpu_all - cpu, wall - f - b, threads));
    printf("%-22s %-18s %-12s %9.2f %9.2f %9.2f %7s %4.0f%%\n", "total", "", "", f * per, b * per,
           e * per, "", busy(cpu_all, wall, threads));
    if (w) {
        dj_json_write_end_array(w);
        dj_json_write_key(w, "rest_share"), dj_json_write_double(w, rest / total);
        dj_json_write_key(w, "cpu_share"), dj_json_write_double(w, busy(cpu_all, wall, threads) / 100);
        dj_json_write_end_object(w);
    }
    free(p);
    return 0;
}

int dj_bench_train(int argc, char **argv)
{
    dj_train_config c;
    dj_train_config_defaults(&c);
    const char *model = "models/fmnist-cnn.json";
    int json = 0, profile = 0, steps = 20, warmup = 3, repeat = 3, batch = 0, threads = 0;
    const char *prec = NULL;
    dj_opt_iter it;
    int rc;
    dj_opt_init(&it, argc, argv, 0);
    while ((rc = dj_opt_next(&it, CMD)) == DJ_OPT_MORE) {
        const char *v;
        if (dj_opt_is(&it, "--help")) {
            usage(stdout);
            return DJ_EXIT_OK;
        } else if (dj_opt_is(&it, "--json")) {
            if (dj_opt_no_value(&it, CMD))
                return DJ_EXIT_USAGE;
            json = 1;
        } else if (dj_opt_is(&it, "--profile")) {
            if (dj_opt_no_value(&it, CMD))
                return DJ_EXIT_USAGE;
            profile = 1;
        } else if (dj_opt_is(&it, "--model")) {
            if (!(model = dj_opt_value(&it, CMD)))
                return DJ_EXIT_USAGE;
        } else if (dj_opt_is(&it, "--precision")) {
            if (!(prec = dj_opt_value(&it, CMD)))
                return DJ_EXIT_USAGE;
        } else {
            /* the integer options: name, range, destination */
            static const char *const names[] = {"--batch-size", "--threads", "--steps", "--warmup",
                                                "--repeat"};
            static const long long lo[] = {1, 1, 1, 0, 1}, hi[] = {65536, 1024, 100000, 1000, 100};
            int *const dst[] = {&batch, &threads, &steps, &warmup, &repeat};
            int k = 0;
            while (k < 5 && !dj_opt_is(&it, names[k]))
                k++;
            if (k == 5)
                return dj_opt_unknown(&it, CMD);
            if (!(v = dj_opt_value(&it, CMD)) || int_opt(names[k], v, lo[k], hi[k], dst[k]))
                return DJ_EXIT_USAGE;
        }
    }
    if (rc == DJ_OPT_ERROR)
        return DJ_EXIT_USAGE;
    if (strlen(model) >= sizeof c.model) {
        dj_cli_err(CMD, "--model: path too long");
        return DJ_EXIT_USAGE;
    }
    snprintf(c.model, sizeof c.model, "%s", model);
    char err[1024] = "";
    if (dj_train_config_apply_spec(&c, err, sizeof err) != DJ_OK) {
        dj_cli_err(CMD, "%s", err);
        return DJ_EXIT_DATA;
    }
    if (prec && dj_precision_from_name(prec, &c.prec.precision) != 0) {
        dj_cli_err(CMD, "--precision: expected fp32, bf16, cfp8, cfp8-shp or ocp8, got '%s'", prec);
        return DJ_EXIT_USAGE;
    }
    if (batch)
        c.batch_size = batch;
    c.threads = threads > 0 ? threads : dj_cpu_count();
    dj_train_stepper *s = NULL;
    if (dj_train_stepper_create(&c, &s, err, sizeof err) != DJ_OK) {
        dj_cli_err(CMD, "%s", err);
        return DJ_EXIT_DATA;
    }
    const size_t in = dj_train_stepper_input_size(s);
    const int classes = dj_train_stepper_classes(s);
    float *x = dj_alloc((size_t)c.batch_size * in * sizeof(float));
    int32_t *y = malloc((size_t)c.batch_size * sizeof *y);
    if (!x || !y) {
        dj_free(x);
        free(y);
        dj_train_stepper_free(s);
        dj_cli_err(CMD, "out of memory for a batch of %d", c.batch_size);
        return DJ_EXIT_DATA;
    }
    for (size_t i = 0; i < (size_t)c.batch_size * in; i++)
        x[i] = (float)(dj_rng_u32(17, i, 0) >> 8) * (2.0f / 16777216.0f) - 1.0f;
    for (int i = 0; i < c.batch_size; i++)
        y[i] = (int32_t)(dj_rng_u32(18, (uint64_t)i, 0) % (uint32_t)classes);

    for (int i = 0; i < warmup; i++)
        dj_train_stepper_step(s, x, y, c.batch_size);
    double best = 0, best_busy = 1, loss = 0;
    for (int r = 0; r < repeat; r++) {
        const double w0 = clock_s(CLOCK_MONOTONIC), c0 = clock_s(CLOCK_PROCESS_CPUTIME_ID);
        for (int i = 0; i < steps; i++)
            loss = dj_train_stepper_step(s, x, y, c.batch_size);
        const double wall = clock_s(CLOCK_MONOTONIC) - w0, cpu = clock_s(CLOCK_PROCESS_CPUTIME_ID) - c0;
        const double ips = (double)steps * c.batch_size / wall;
        if (ips > best) {
            best = ips;
            best_busy = cpu / (wall * c.threads);
        }
    }
    const double gflops = best * 3.0 * (double)dj_train_stepper_flops(s) / 1e9;
    printf("%s, %s, batch %d, %d threads: %.0f images/s%s (%.1f GFLOP/s at 3x forward FLOPs; "
           "best of %d x %d steps; last loss %.4f)\n",
           model, dj_precision_name(c.prec.precision), c.batch_size, c.threads, best,
           best_busy < 0.9 ? " *" : "", gflops, repeat, steps, loss);
    if (best_busy < 0.9)
        printf("* the threads had %.0f%% of their CPUs: other load on the machine\n", 100 * best_busy);
    dj_json_writer w;
    dj_json_writer_init(&w, 0, NULL);
    if (json) {
        dj_json_write_begin_object(&w);
        dj_json_write_key(&w, "model"), dj_json_write_string(&w, model);
        dj_json_write_key(&w, "precision"), dj_json_write_string(&w, dj_precision_name(c.prec.precision));
        dj_json_write_key(&w, "batch_size"), dj_json_write_int(&w, c.batch_size);
        dj_json_write_key(&w, "threads"), dj_json_write_int(&w, c.threads);
        dj_json_write_key(&w, "images_per_second"), dj_json_write_double(&w, best);
        dj_json_write_key(&w, "gflops"), dj_json_write_double(&w, gflops);
        dj_json_write_key(&w, "cpu_share"), dj_json_write_double(&w, best_busy);
    }
    if (profile && print_profile(s, x, y, c.batch_size, steps, c.threads, json ? &w : NULL) != 0) {
        dj_json_writer_free(&w);
        dj_free(x);
        free(y);
        dj_train_stepper_free(s);
        dj_cli_err(CMD, "out of memory for the profile");
        return DJ_EXIT_DATA;
    }
    if (json) {
        dj_json_write_end_object(&w);
        dj_json_writer_print_line(&w, stdout);
    }
    dj_json_writer_free(&w);
    dj_free(x);
    free(y);
    dj_train_stepper_free(s);
    return DJ_EXIT_OK;
}
