/* bench_gemm.c - `dojo bench gemm`: GFLOP/s of dj_sgemm and of the
 * convolution kernels, each beside its plain reference (dj_sgemm_ref,
 * dj_conv2d_*_ref) measured in the same run.
 *
 * GEMM cases: square 256, 512 and 1024, and the products of a Fashion-MNIST
 * classifier's linear layers at batch 128 (9216 -> 128 forward, input
 * gradient and weight gradient; 128 -> 10 forward). Convolution cases, batch
 * 128: 1 -> 32 3x3 on 28x28, 32 -> 64 3x3 on 26x26, and ResNet-style 16, 32
 * and 64 channels 3x3 padding 1 on 28x28, 14x14 and 7x7; each forward,
 * backward_data and backward_weight. Flops are 2 M N K (2 N OC P K for a
 * convolution, P = output positions, K = C KH KW).
 *
 * Method. The fast kernels run on one thread (no pool) and on --threads
 * threads (default: every CPU). A sample is back-to-back calls lasting at
 * least --min-ms (default 100 ms); a figure is the best of --repeat samples
 * (default 3), timed with CLOCK_MONOTONIC. Each sample also records the
 * process CPU time: a figure whose threads had less than 90% of their CPUs
 * (other load on the machine) is marked with '*'; --clock cpu computes the
 * figures from that CPU time divided by the thread count instead (for a
 * busy machine; optimistic for N threads, as waits do not count). dj_sgemm
 * is timed as callers use it, allocating its packing buffers per call
 * (dj_sgemm_ws would not). The references are slow, so each runs once, on a
 * slice of the work when the whole would take too long (the first rows of
 * C; the first images of the batch): its per-flop speed is what the ratio
 * compares. Inputs are uniform in [-1, 1) from a
 * fixed seed; before timing, the fast result is checked against the
 * reference on the slice (a difference beyond rounding makes the exit
 * status 1). */
#define _POSIX_C_SOURCE 200809L

#include "bench_gemm.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "dojo/cpu.h"
#include "dojo/kernels.h"
#include "dojo/pool.h"

#define CMD "bench gemm"
/* A reference run is cut to about this many flops. */
#define REF_FLOPS 4e8

typedef struct {
    int json, threads, repeat, min_ms, gemm_on, conv_on;
    int use_cpu; /* figures from CPU time (per thread) instead of wall time */
} opts;

typedef struct {
    double wall, cpu;
} sample;

static double clock_s(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint64_t g_rng = 0x9E3779B97F4A7C15ULL;

static float *random_floats(size_t n)
{
    float *p = aligned_alloc(64, (n * sizeof(float) + 63) / 64 * 64 + 64);
    if (!p)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        g_rng ^= g_rng << 13;
        g_rng ^= g_rng >> 7;
        g_rng ^= g_rng << 17;
        p[i] = (float)((double)(g_rng >> 40) / (double)(1ull << 24) * 2.0 - 1.0);
    }
    return p;
}

/* One timed call of a kernel: the case and which path. */
typedef void (*run_fn)(void *ctx, dj_pool *pool);

/* Best per-call time over o->repeat samples of at least o->min_ms each;
 * *share is the CPU share of that sample (CPU time / (wall * threads)). */
static double time_it(const opts *o, run_fn fn, void *ctx, dj_pool *pool, double *share)
{
    fn(ctx, pool); /* warm up: page faults, caches */
    double best = INFINITY;
    const int T = dj_pool_threads(pool);
    for (int r = 0; r < o->repeat; r++) {
        const double w0 = clock_s(CLOCK_MONOTONIC), c0 = clock_s(CLOCK_PROCESS_CPUTIME_ID);
        long calls = 0;
        double w;
        do {
            fn(ctx, pool);
            calls++;
            w = clock_s(CLOCK_MONOTONIC) - w0;
        } while (w * 1e3 < o->min_ms);
        const double c = clock_s(CLOCK_PROCESS_CPUTIME_ID) - c0;
        const double t = o->use_cpu ? c / T / calls : w / calls;
        if (t < best) {
            best = t;
            *share = c / (w * T);
        }
    }
    return best;
}

static double time_once(run_fn fn, void *ctx)
{
    const double w0 = clock_s(CLOCK_MONOTONIC);
    fn(ctx, NULL);
    return clock_s(CLOCK_MONOTONIC) - w0;
}

static void report(const opts *o, const char *kind, const char *name, double flops, double t1,
                   double s1, double tT, double sT, double ref_rate, int T)
{
    const double g1 = flops / t1 * 1e-9, gT = flops / tT * 1e-9, gr = ref_rate * 1e-9;
    if (o->json) {
        printf("{\"bench\":\"gemm\",\"kind\":\"%s\",\"case\":\"%s\",\"gflop\":%.4f,"
               "\"ref_gflops\":%.3f,\"gflops_1\":%.2f,\"cpu_share_1\":%.2f,\"threads\":%d,"
               "\"gflops_t\":%.2f,\"cpu_share_t\":%.2f,\"speedup_1_vs_ref\":%.1f,"
               "\"scaling_t_vs_1\":%.2f}\n",
               kind, name, flops * 1e-9, gr, g1, s1, T, gT, sT, g1 / gr, gT / g1);
    } else {
        printf("%-34s %8.3f %8.2f %7.1f%c %7.1f%c %7.0fx %6.2fx\n", name, flops * 1e-9, gr, g1,
               s1 < 0.9 ? '*' : ' ', gT, sT < 0.9 ? '*' : ' ', g1 / gr, gT / g1);
    }
    fflush(stdout);
}

static void header(const opts *o, const char *what)
{
    if (o->json)
        return;
    printf("\n%-34s %8s %8s %8s %8s %8s %7s\n", what, "GFLOP", "ref", "1 thr", "T thr",
           "1/ref", "T/1");
}

/* |got - want| within a rounding bound for sums of `terms` products of
 * values in [-1, 1). */
static int close_enough(const float *got, const float *want, size_t n, int terms)
{
    const double tol = 8.0 * FLT_EPSILON * sqrt((double)terms + 1) * terms + 1e-6;
    for (size_t i = 0; i < n; i++)
        if (!(fabs((double)got[i] - want[i]) <= tol))
            return 0;
    return 1;
}

/* ---- GEMM ---- */

typedef struct {
    const char *name;
    int ta, tb, M, N, K;
} gemm_case;

static const gemm_case gemm_cases[] = {
    {"square 256", 0, 0, 256, 256, 256},
    {"square 512", 0, 0, 512, 512, 512},
    {"square 1024", 0, 0, 1024, 1024, 1024},
    {"linear 9216->128 fwd (NT)", 0, 1, 128, 128, 9216},
    {"linear 9216->128 dx (NN)", 0, 0, 128, 9216, 128},
    {"linear 9216->128 dW (TN)", 1, 0, 128, 9216, 128},
    {"linear 128->10 fwd (NT)", 0, 1, 128, 10, 128},
};

typedef struct {
    const gemm_case *c;
    int M; /* rows computed (a slice for the reference) */
    const float *A, *B;
    float *C;
} gemm_ctx;

static void gemm_fast(void *ctx, dj_pool *pool)
{
    gemm_ctx *g = ctx;
    const gemm_case *c = g->c;
    dj_sgemm(pool, c->ta, c->tb, g->M, c->N, c->K, 1.0f, g->A, c->ta ? c->M : c->K, g->B,
             c->tb ? c->K : c->N, 0.0f, g->C, c->N);
}

static void gemm_ref(void *ctx, dj_pool *pool)
{
    (void)pool;
    gemm_ctx *g = ctx;
    const gemm_case *c = g->c;
    dj_sgemm_ref(c->ta, c->tb, g->M, c->N, c->K, 1.0f, g->A, c->ta ? c->M : c->K, g->B,
                 c->tb ? c->K : c->N, 0.0f, g->C, c->N);
}

static int bench_gemm_case(const opts *o, const gemm_case *c, dj_pool *pool)
{
    float *A = random_floats((size_t)c->M * c->K), *B = random_floats((size_t)c->K * c->N);
    float *C = random_floats((size_t)c->M * c->N), *R = random_floats((size_t)c->M * c->N);
    int ok = 1;
    if (!A || !B || !C || !R) {
        dj_cli_err(CMD, "out of memory for case %s", c->name);
        ok = 0;
        goto done;
    }
    const double flops = 2.0 * c->M * c->N * c->K;
    int mref = (int)(c->M * (REF_FLOPS / flops));
    mref = mref < 1 ? 1 : mref > c->M ? c->M : mref;
    gemm_ctx ref = {c, mref, A, B, R}, fast = {c, c->M, A, B, C};
    const double tr = time_once(gemm_ref, &ref);
    const double ref_rate = 2.0 * mref * c->N * c->K / tr;
    gemm_fast(&fast, pool);
    if (!close_enough(C, R, (size_t)mref * c->N, c->K)) {
        dj_cli_err(CMD, "%s: dj_sgemm differs from dj_sgemm_ref", c->name);
        ok = 0;
    }
    double s1, sT;
    const double t1 = time_it(o, gemm_fast, &fast, NULL, &s1);
    const double tT = time_it(o, gemm_fast, &fast, pool, &sT);
    report(o, "gemm", c->name, flops, t1, s1, tT, sT, ref_rate, dj_pool_threads(pool));
done:
    free(A);
    free(B);
    free(C);
    free(R);
    return ok;
}

/* ---- convolution ---- */

typedef struct {
    const char *name;
    int c, h, w, oc, k, pad;
} conv_case;

static const conv_case conv_cases[] = {
    {"conv 1->32 3x3 28x28", 1, 28, 28, 32, 3, 0},
    {"conv 32->64 3x3 26x26", 32, 26, 26, 64, 3, 0},
    {"res 16->16 3x3 p1 28x28", 16, 28, 28, 16, 3, 1},
    {"res 32->32 3x3 p1 14x14", 32, 14, 14, 32, 3, 1},
    {"res 64->64 3x3 p1 7x7", 64, 7, 7, 64, 3, 1},
};

#define BATCH 128

enum { DIR_FWD, DIR_BDATA, DIR_BWEIGHT, DIR_COUNT };
static const char *const dir_names[DIR_COUNT] = {"fwd", "bwd_data", "bwd_weight"};

typedef struct {
    dj_conv2d_dims d;
    int dir;
    const float *x, *w, *bias, *dy;
    float *out, *dbias, *ws;
} conv_ctx;

static void conv_fast(void *ctx, dj_pool *pool)
{
    conv_ctx *c = ctx;
    switch (c->dir) {
    case DIR_FWD: dj_conv2d_forward(pool, &c->d, c->x, c->w, c->bias, c->out, c->ws); break;
    case DIR_BDATA: dj_conv2d_backward_data(pool, &c->d, c->dy, c->w, c->out, c->ws); break;
    default: dj_conv2d_backward_weight(pool, &c->d, c->x, c->dy, c->out, c->dbias, c->ws); break;
    }
}

static void conv_ref(void *ctx, dj_pool *pool)
{
    (void)pool;
    conv_ctx *c = ctx;
    switch (c->dir) {
    case DIR_FWD: dj_conv2d_forward_ref(&c->d, c->x, c->w, c->bias, c->out); break;
    case DIR_BDATA: dj_conv2d_backward_data_ref(&c->d, c->dy, c->w, c->out); break;
    default: dj_conv2d_backward_weight_ref(&c->d, c->x, c->dy, c->out, c->dbias); break;
    }
}

static int bench_conv_case(const opts *o, const conv_case *cc, dj_pool *pool)
{
    dj_conv2d_dims d;
    if (dj_conv2d_dims_init(&d, BATCH, cc->c, cc->h, cc->w, cc->oc, cc->k, cc->k, 1, 1, cc->pad,
                            cc->pad) != DJ_OK) {
        dj_cli_err(CMD, "%s: bad dimensions", cc->name);
        return 0;
    }
    const size_t xl = (size_t)d.n * d.c * d.h * d.w, yl = (size_t)d.n * d.oc * d.oh * d.ow;
    const size_t wl = (size_t)d.oc * d.c * d.kh * d.kw;
    const size_t big = xl > yl ? (xl > wl ? xl : wl) : (yl > wl ? yl : wl);
    const int T = dj_pool_threads(pool);
    float *x = random_floats(xl), *w = random_floats(wl), *bias = random_floats((size_t)d.oc);
    float *dy = random_floats(yl), *out = random_floats(big), *ref = random_floats(big);
    float *db = random_floats((size_t)d.oc), *ws = random_floats(dj_conv2d_workspace(&d, T));
    int ok = 1;
    if (!x || !w || !bias || !dy || !out || !ref || !db || !ws) {
        dj_cli_err(CMD, "out of memory for case %s", cc->name);
        ok = 0;
        goto done;
    }
    const int K = d.c * d.kh * d.kw, P = d.oh * d.ow;
    const double flops = 2.0 * d.n * d.oc * P * K;
    for (int dir = 0; dir < DIR_COUNT; dir++) {
        conv_ctx fast = {d, dir, x, w, bias, dy, out, db, ws};
        /* The reference on the first images of the batch (backward_weight
         * sums over the batch, so its slice is compared on the slice only). */
        conv_ctx r = fast;
        int nref = (int)(d.n * (REF_FLOPS / 4 / flops));
        r.d.n = nref < 1 ? 1 : nref > d.n ? d.n : nref;
        r.out = ref;
        r.dbias = NULL;
        const double tr = time_once(conv_ref, &r);
        const double ref_rate = flops * r.d.n / d.n / tr;
        conv_ctx check = fast;
        check.d.n = r.d.n;
        conv_fast(&check, pool);
        const size_t n_cmp = dir == DIR_FWD ? yl / d.n * r.d.n : dir == DIR_BDATA ? xl / d.n * r.d.n : wl;
        const int terms = dir == DIR_FWD ? K + 1 : dir == DIR_BDATA ? d.oc * d.kh * d.kw : r.d.n * P;
        if (!close_enough(out, ref, n_cmp, terms)) {
            dj_cli_err(CMD, "%s %s: the fast kernel differs from the reference", cc->name,
                       dir_names[dir]);
            ok = 0;
        }
        double s1, sT;
        const double t1 = time_it(o, conv_fast, &fast, NULL, &s1);
        const double tT = time_it(o, conv_fast, &fast, pool, &sT);
        char name[96];
        snprintf(name, sizeof name, "%s %s", cc->name, dir_names[dir]);
        report(o, "conv", name, flops, t1, s1, tT, sT, ref_rate, T);
    }
done:
    free(x);
    free(w);
    free(bias);
    free(dy);
    free(out);
    free(ref);
    free(db);
    free(ws);
    return ok;
}

/* ---- command line ---- */

static void usage(FILE *fp)
{
    fputs("usage: dojo bench gemm [--threads N] [--repeat N] [--min-ms MS] [--only gemm|conv]\n"
          "                       [--clock wall|cpu] [--json]\n"
          "\n"
          "GFLOP/s of dj_sgemm (square 256/512/1024 and the linear layers of a\n"
          "Fashion-MNIST net at batch 128) and of the convolution kernels (its conv\n"
          "layers at batch 128; forward, backward_data, backward_weight), on one\n"
          "thread and on N threads, beside the plain reference kernels measured in\n"
          "the same run (on a slice of the work). Columns: GFLOP per call; GFLOP/s\n"
          "of the reference, of 1 thread and of N threads ('*': the threads had\n"
          "under 90% of their CPUs); speedup of 1 thread over the reference; of N\n"
          "threads over 1. The ISA is the best the CPU runs (cap it with DOJO_ISA).\n"
          "\n"
          "  --threads N   threads for the parallel figures (default: all CPUs)\n"
          "  --repeat N    samples per figure, the best is kept (default 3)\n"
          "  --min-ms MS   minimum length of a sample (default 100)\n"
          "  --only WHAT   only the gemm or only the conv cases\n"
          "  --clock cpu   figures from CPU time per thread (for a busy machine;\n"
          "                optimistic for N threads: idle waits do not count)\n"
          "  --json        one JSON object per case instead of the table\n",
          fp);
}

static int parse_int_opt(dj_opt_iter *it, long long lo, long long hi, int *out)
{
    const char *v = dj_opt_value(it, CMD);
    long long x;
    if (!v)
        return -1;
    if (dj_parse_int(v, lo, hi, &x) != 0) {
        dj_cli_err(CMD, "bad value '%s' for %.*s (expected an integer %lld..%lld)", v,
                   (int)it->name_len, it->arg, lo, hi);
        return -1;
    }
    *out = (int)x;
    return 0;
}

int dj_bench_gemm(int argc, char **argv)
{
    opts o = {0, dj_cpu_count(), 3, 100, 1, 1, 0};
    const int first = argc > 0 && argv[0] && strcmp(argv[0], "gemm") == 0 ? 1 : 0;
    dj_opt_iter it;
    int rc;
    dj_opt_init(&it, argc, argv, first);
    while ((rc = dj_opt_next(&it, CMD)) == DJ_OPT_MORE) {
        if (dj_opt_is(&it, "--help")) {
            usage(stdout);
            return DJ_EXIT_OK;
        } else if (dj_opt_is(&it, "--json")) {
            if (dj_opt_no_value(&it, CMD))
                return DJ_EXIT_USAGE;
            o.json = 1;
        } else if (dj_opt_is(&it, "--threads")) {
            if (parse_int_opt(&it, 1, 1024, &o.threads))
                return DJ_EXIT_USAGE;
        } else if (dj_opt_is(&it, "--repeat")) {
            if (parse_int_opt(&it, 1, 1000, &o.repeat))
                return DJ_EXIT_USAGE;
        } else if (dj_opt_is(&it, "--min-ms")) {
            if (parse_int_opt(&it, 1, 100000, &o.min_ms))
                return DJ_EXIT_USAGE;
        } else if (dj_opt_is(&it, "--clock")) {
            const char *v = dj_opt_value(&it, CMD);
            if (!v)
                return DJ_EXIT_USAGE;
            if (strcmp(v, "wall") == 0 || strcmp(v, "cpu") == 0) {
                o.use_cpu = v[0] == 'c';
            } else {
                dj_cli_err(CMD, "bad --clock '%s' (valid: wall, cpu)", v);
                return DJ_EXIT_USAGE;
            }
        } else if (dj_opt_is(&it, "--only")) {
            const char *v = dj_opt_value(&it, CMD);
            if (!v)
                return DJ_EXIT_USAGE;
            if (strcmp(v, "gemm") == 0) {
                o.conv_on = 0;
            } else if (strcmp(v, "conv") == 0) {
                o.gemm_on = 0;
            } else {
                dj_cli_err(CMD, "bad --only '%s' (valid: gemm, conv)", v);
                return DJ_EXIT_USAGE;
            }
        } else {
            return dj_opt_unknown(&it, CMD);
        }
    }
    if (rc == DJ_OPT_ERROR)
        return DJ_EXIT_USAGE;

    dj_pool *pool = NULL;
    if (dj_pool_create(o.threads, &pool) != DJ_OK) {
        dj_cli_err(CMD, "cannot start %d threads", o.threads);
        return DJ_EXIT_DATA;
    }
    if (!o.json)
        printf("dojo bench gemm: ISA %s, %d threads (of %d CPUs), best of %d samples >= %d ms, "
               "%s time\n",
               dj_isa_name(dj_cpu_best_isa()), o.threads, dj_cpu_count(), o.repeat, o.min_ms,
               o.use_cpu ? "CPU" : "wall");
    int ok = 1;
    if (o.gemm_on) {
        header(&o, "sgemm (M x N x K)");
        for (size_t i = 0; i < sizeof gemm_cases / sizeof gemm_cases[0]; i++)
            ok &= bench_gemm_case(&o, &gemm_cases[i], pool);
    }
    if (o.conv_on) {
        header(&o, "conv2d, batch 128");
        for (size_t i = 0; i < sizeof conv_cases / sizeof conv_cases[0]; i++)
            ok &= bench_conv_case(&o, &conv_cases[i], pool);
    }
    dj_pool_destroy(pool);
    return ok ? DJ_EXIT_OK : DJ_EXIT_DATA;
}
