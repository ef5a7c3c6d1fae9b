/* bench_gemm.c - `dojo bench gemm`: GFLOP/s of dj_sgemm beside OpenBLAS's
 * sgemm and the machine's peak, of dj_gemm_q with 8-bit (CFloat8) and bf16
 * operands beside our float32, and of the convolution kernels beside their
 * plain references, all measured in the same run.
 *
 * GEMM cases (--cases): square 256, 512, 1024 and 2048 (NN); the products of
 * the Fashion-MNIST CNN's linear layers at batch 128 with the trans flags
 * nn/layers.c uses (9216 -> 128 forward NT, weight gradient TN, input
 * gradient NN; 128 -> 10 forward NT); tall-skinny 8192 x 64 x 64 and
 * 64 x 64 x 8192 (NN); and a 4096 -> 4096 linear forward (NT) at M = 1, 2,
 * 4 and 8, where reading B dominates (memory bound). Convolution cases,
 * batch 128: 1 -> 32 3x3 on 28x28, 32 -> 64 3x3 on 26x26, and fmnist-resnet's
 * 32, 64 and 128 channels 3x3 padding 1 on 28x28, 14x14 and 7x7 and its
 * stride-2 convolutions (3x3 and the 1x1 shortcut); each forward,
 * backward_data and backward_weight, on --threads threads also on the path
 * the kernel would take without its fast one ("other": the direct
 * implicit-GEMM kernels instead of Winograd for 3x3 stride 1, im2col instead
 * of the implicit GEMM over phase planes for other strides), for its
 * speedup. Flops are 2 M N K (2 N OC P K for a convolution, P = output
 * positions, K = C KH KW; the direct count also for Winograd, which does
 * about a quarter of the multiplications).
 *
 * Yardsticks (bench_peer.c). The peak is threads (at most the CPUs) x one
 * core's lanes x 2 x FMA units x clock, each factor's source printed. The
 * peer is cblas_sgemm of OpenBLAS (or another CBLAS) opened with dlopen and
 * set to the same thread count; without one the figures are printed alone.
 * Quantised operands: B (the weight-like operand, the big one when M <= 8)
 * is encoded once, round to nearest, as CFloat8_1_4_3 codes at the largest
 * bias that holds its values (read through dj_cf_decode_lut8's table) and
 * as bfloat16; A and C stay float32.
 *
 * Method. GEMMs run on --threads threads (default: every CPU) with a
 * workspace allocated once, as nn/ calls them (dj_sgemm_ws, dj_gemm_q);
 * convolutions on one thread and on --threads. A sample is back-to-back
 * calls lasting at least --min-ms (default 100 ms); a figure is the best of
 * --repeat samples (default 3), timed with CLOCK_MONOTONIC. Each sample also
 * records the process CPU time: a figure whose threads had less than 90% of
 * their CPUs (other load on the machine) is marked with '*'; --clock cpu
 * computes the figures from that CPU time divided by the thread count
 * instead (for a busy machine; optimistic for N threads, as waits do not
 * count). OpenBLAS is timed after our kernels and followed by a pause: its
 * threads spin for a while after each call. Inputs are uniform in [-1, 1)
 * from a fixed seed. Before timing: dj_sgemm and the convolutions are
 * checked against the plain references (dj_sgemm_ref, dj_conv2d_*_ref; slow,
 * so on a slice of the work when the whole would take too long: the first
 * rows of C, the first images of the batch, whose per-flop speed is also
 * reported); dj_gemm_q against dj_sgemm_ws on the decoded B, bit for bit (its
 * contract); the peer against dj_sgemm within float rounding. A failed check
 * makes the exit status 1. */
#define _POSIX_C_SOURCE 200809L

#include "bench_gemm.h"

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_peer.h"
#include "cli/cli.h"
#include "kernels/winograd.h"
#include "dojo/cfloat.h"
#include "dojo/cpu.h"
#include "dojo/json.h"
#include "dojo/kernels.h"
#include "dojo/pool.h"

#define CMD "bench gemm"
/* A reference run is cut to about this many flops. */
#define REF_FLOPS 4e8
/* After timing a multi-threaded peer: long enough for OpenBLAS's threads to
 * stop spinning (2^28 cycles by default, about 0.1 s). */
#define PEER_REST_MS 250
/* The 8-bit format of the quantised runs. */
#define Q8_FORMAT DJ_FMT_CF8_143

/* Groups of cases (--cases). */
enum {
    SET_SQUARE = 1u << 0,
    SET_TRAIN = 1u << 1,
    SET_SKINNY = 1u << 2,
    SET_SMALL = 1u << 3,
    SET_CONV = 1u << 4,
    SET_GEMM = SET_SQUARE | SET_TRAIN | SET_SKINNY | SET_SMALL,
    SET_ALL = SET_GEMM | SET_CONV
};
static const struct {
    const char *name;
    unsigned set;
} set_names[] = {{"square", SET_SQUARE}, {"train", SET_TRAIN}, {"skinny", SET_SKINNY},
                 {"small", SET_SMALL},   {"conv", SET_CONV},   {"gemm", SET_GEMM},
                 {"all", SET_ALL}};

typedef struct {
    int json, threads, repeat, min_ms;
    unsigned sets;
    int use_cpu;        /* figures from CPU time (per thread) instead of wall time */
    int peer_on;        /* --no-peer clears it */
    const char *blas;   /* --blas PATH, or NULL */
    int fma_units;      /* --fma-units, 0: derived */
    double ghz;         /* --ghz, 0: derived */
} opts;

static double clock_s(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {
    }
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

/* max |got - want| / max |want|: the peer's difference, for the record. */
static double max_rel_diff(const float *got, const float *want, size_t n)
{
    double d = 0, m = 0;
    for (size_t i = 0; i < n; i++) {
        const double e = fabs((double)got[i] - want[i]);
        d = e > d || e != e ? e : d;
        m = fabs((double)want[i]) > m ? fabs((double)want[i]) : m;
    }
    return m > 0 ? d / m : d;
}

/* x with `digits` decimals, so that JSON shows 12.35, not 12.3456789. */
static double rounded(double x, int digits)
{
    char b[64];
    if (!isfinite(x))
        return x;
    snprintf(b, sizeof b, "%.*f", digits, x);
    return strtod(b, NULL);
}

/* The JSON line of a writer, printed; then the writer is freed. */
static void json_print(dj_json_writer *w)
{
    const char *text;
    size_t len;
    if (dj_json_writer_finish(w, &text, &len) == DJ_OK)
        printf("%s\n", text);
    else
        dj_cli_err(CMD, "JSON output: %s", dj_json_writer_error(w));
    dj_json_writer_free(w);
    fflush(stdout);
}

static void jkey_num(dj_json_writer *w, const char *key, double x, int digits)
{
    dj_json_write_key(w, key);
    dj_json_write_double(w, rounded(x, digits)); /* non-finite: null */
}

static void jkey_int(dj_json_writer *w, const char *key, long long x)
{
    dj_json_write_key(w, key);
    dj_json_write_int(w, x);
}

static void jkey_str(dj_json_writer *w, const char *key, const char *s)
{
    dj_json_write_key(w, key);
    dj_json_write_string(w, s);
}

/* What every case shares: the options, threads, yardsticks and formats. */
typedef struct {
    const opts *o;
    dj_pool *pool;
    int T;                 /* threads of the pool */
    dj_bench_peak peak;
    double peak_gflops;    /* threads x per core; 0 if unknown */
    int peak_cores;        /* the threads the peak counts */
    dj_bench_blas blas;    /* handle NULL: no peer */
    int blas_threads;      /* what the peer reports after set_threads (0: unknown) */
    int q8_bias;
    float q8_lut[256];
    dj_lut8_form q8_form; /* the table's forms (as training uses them) */
    int bf16_bias;
} bench_env;

/* ---- GEMM ---- */

typedef struct {
    unsigned set;
    const char *name;
    int ta, tb, M, N, K;
} gemm_case;

static const gemm_case gemm_cases[] = {
    {SET_SQUARE, "square 256", 0, 0, 256, 256, 256},
    {SET_SQUARE, "square 512", 0, 0, 512, 512, 512},
    {SET_SQUARE, "square 1024", 0, 0, 1024, 1024, 1024},
    {SET_SQUARE, "square 2048", 0, 0, 2048, 2048, 2048},
    {SET_TRAIN, "linear 9216->128 fwd (NT)", 0, 1, 128, 128, 9216},
    {SET_TRAIN, "linear 9216->128 dW (TN)", 1, 0, 128, 9216, 128},
    {SET_TRAIN, "linear 9216->128 dx (NN)", 0, 0, 128, 9216, 128},
    {SET_TRAIN, "linear 128->10 fwd (NT)", 0, 1, 128, 10, 128},
    {SET_SKINNY, "tall-skinny (NN)", 0, 0, 8192, 64, 64},
    {SET_SKINNY, "deep-K skinny (NN)", 0, 0, 64, 64, 8192},
    {SET_SMALL, "linear 4096->4096 M=1 (NT)", 0, 1, 1, 4096, 4096},
    {SET_SMALL, "linear 4096->4096 M=2 (NT)", 0, 1, 2, 4096, 4096},
    {SET_SMALL, "linear 4096->4096 M=4 (NT)", 0, 1, 4, 4096, 4096},
    {SET_SMALL, "linear 4096->4096 M=8 (NT)", 0, 1, 8, 4096, 4096},
};

static const char *set_name(unsigned set)
{
    for (size_t i = 0; i < sizeof set_names / sizeof set_names[0]; i++)
        if (set_names[i].set == set)
            return set_names[i].name;
    return "?";
}

/* Memory bound: with M <= 8 rows, each element of B read feeds at most 8
 * FMAs, far below what the cores do per byte the memory delivers. */
static int memory_bound(const gemm_case *c)
{
    return c->M <= 8;
}

typedef struct {
    const gemm_case *c;
    int M;                 /* rows computed (a slice for the reference) */
    const float *A;
    dj_opd B;              /* float32, or codes for the quantised runs */
    float *C, *ws;
    const dj_bench_blas *blas;
} gemm_ctx;

static int lda_of(const gemm_case *c)
{
    return c->ta ? c->M : c->K;
}

static int ldb_of(const gemm_case *c)
{
    return c->tb ? c->K : c->N;
}

static void gemm_f32(void *ctx, dj_pool *pool)
{
    gemm_ctx *g = ctx;
    const gemm_case *c = g->c;
    dj_sgemm_ws(pool, c->ta, c->tb, g->M, c->N, c->K, 1.0f, g->A, lda_of(c), g->B.p, ldb_of(c),
                0.0f, g->C, c->N, g->ws);
}

static void gemm_quant(void *ctx, dj_pool *pool)
{
    gemm_ctx *g = ctx;
    const gemm_case *c = g->c;
    dj_gemm_q(pool, c->ta, c->tb, g->M, c->N, c->K, 1.0f, dj_opd_f32(g->A), lda_of(c), g->B,
              ldb_of(c), 0.0f, g->C, c->N, g->ws);
}

static void gemm_peer(void *ctx, dj_pool *pool)
{
    (void)pool;
    gemm_ctx *g = ctx;
    const gemm_case *c = g->c;
    dj_bench_blas_sgemm(g->blas, c->ta, c->tb, g->M, c->N, c->K, 1.0f, g->A, lda_of(c), g->B.p,
                        ldb_of(c), 0.0f, g->C, c->N);
}

static void gemm_ref(void *ctx, dj_pool *pool)
{
    (void)pool;
    gemm_ctx *g = ctx;
    const gemm_case *c = g->c;
    dj_sgemm_ref(c->ta, c->tb, g->M, c->N, c->K, 1.0f, g->A, lda_of(c), g->B.p, ldb_of(c), 0.0f,
                 g->C, c->N);
}

/* The figures of one case (times in seconds per call; 0: not measured). */
typedef struct {
    double flops, ref_rate;
    double t32, s32;       /* our float32 */
    double tq8, sq8;       /* B as CFloat8 codes */
    double tbf, sbf;       /* B as bf16 */
    double tpeer, speer;   /* the peer */
    double peer_diff;      /* max relative difference from ours; NAN if not run */
    int peer_ok;           /* 1 agrees, 0 not run, -1 differs */
} gemm_result;

static void gemm_header(const bench_env *e)
{
    if (e->o->json)
        return;
    printf("\n%-28s %5s %5s %5s %3s %9s %6s %9s %9s %9s %8s %9s %9s\n", "sgemm (GFLOP/s)", "M",
           "N", "K", "mem", "fp32", "%peak", e->blas.handle ? (e->blas.is_openblas ? "OpenBLAS"
                                                                                   : "peer")
                                                            : "peer",
           "ours/peer", "cf8", "cf8/fp32", "bf16", "bf16/fp32");
}

/* "  123.4*" or "       -" into buf (9 columns). */
static const char *fig(char *buf, size_t size, double flops, double t, double share)
{
    if (t > 0)
        snprintf(buf, size, "%8.1f%c", flops / t * 1e-9, share < 0.9 ? '*' : ' ');
    else
        snprintf(buf, size, "%8s ", "-");
    return buf;
}

static const char *ratio(char *buf, size_t size, double t_num, double t_den, int width)
{
    if (t_num > 0 && t_den > 0)
        snprintf(buf, size, "%*.2fx", width - 1, t_den / t_num);
    else
        snprintf(buf, size, "%*s", width, "-");
    return buf;
}

static void gemm_report(const bench_env *e, const gemm_case *c, const gemm_result *r)
{
    const double g32 = r->t32 > 0 ? r->flops / r->t32 * 1e-9 : NAN;
    const double pct = e->peak_gflops > 0 ? 100 * g32 / e->peak_gflops : NAN;
    if (!e->o->json) {
        char f1[32], f2[32], f3[32], f4[32], r1[32], r2[32], r3[32], p[32];
        if (isfinite(pct))
            snprintf(p, sizeof p, "%5.1f%%", pct);
        else
            snprintf(p, sizeof p, "%6s", "-");
        printf("%-28s %5d %5d %5d %3s %s %s %s %s %s %s %s %s\n", c->name, c->M, c->N, c->K,
               memory_bound(c) ? "yes" : "", fig(f1, sizeof f1, r->flops, r->t32, r->s32), p,
               fig(f2, sizeof f2, r->flops, r->tpeer, r->speer),
               ratio(r1, sizeof r1, r->t32, r->tpeer, 9), fig(f3, sizeof f3, r->flops, r->tq8, r->sq8),
               ratio(r2, sizeof r2, r->tq8, r->t32, 8), fig(f4, sizeof f4, r->flops, r->tbf, r->sbf),
               ratio(r3, sizeof r3, r->tbf, r->t32, 9));
        fflush(stdout);
        return;
    }
    dj_json_writer w;
    dj_json_writer_init(&w, 0, NULL);
    dj_json_write_begin_object(&w);
    jkey_str(&w, "bench", "gemm");
    jkey_str(&w, "kind", "gemm");
    jkey_str(&w, "case", c->name);
    jkey_str(&w, "set", set_name(c->set));
    jkey_int(&w, "m", c->M);
    jkey_int(&w, "n", c->N);
    jkey_int(&w, "k", c->K);
    jkey_int(&w, "trans_a", c->ta);
    jkey_int(&w, "trans_b", c->tb);
    dj_json_write_key(&w, "memory_bound");
    dj_json_write_bool(&w, memory_bound(c));
    jkey_num(&w, "gflop", r->flops * 1e-9, 4);
    jkey_int(&w, "threads", e->T);
    jkey_num(&w, "ref_gflops", r->ref_rate * 1e-9, 3);
    jkey_num(&w, "gflops_t", g32, 2);
    jkey_num(&w, "cpu_share_t", r->s32, 2);
    jkey_num(&w, "pct_peak", pct, 1);
    jkey_num(&w, "peer_gflops", r->tpeer > 0 ? r->flops / r->tpeer * 1e-9 : NAN, 2);
    jkey_num(&w, "peer_cpu_share", r->tpeer > 0 ? r->speer : NAN, 2);
    jkey_num(&w, "ours_vs_peer", r->tpeer > 0 ? r->tpeer / r->t32 : NAN, 3);
    dj_json_write_key(&w, "peer_max_rel_diff");
    if (r->peer_ok != 0)
        dj_json_write_double(&w, r->peer_diff);
    else
        dj_json_write_null(&w);
    jkey_num(&w, "cf8_gflops", r->flops / r->tq8 * 1e-9, 2);
    jkey_num(&w, "cf8_cpu_share", r->sq8, 2);
    jkey_num(&w, "cf8_vs_fp32", r->t32 / r->tq8, 3);
    jkey_num(&w, "bf16_gflops", r->flops / r->tbf * 1e-9, 2);
    jkey_num(&w, "bf16_cpu_share", r->sbf, 2);
    jkey_num(&w, "bf16_vs_fp32", r->t32 / r->tbf, 3);
    dj_json_write_end_object(&w);
    json_print(&w);
}

/* dj_gemm_q with B as `q` must give the bits of dj_sgemm_ws on the decoded
 * B (`dec`); C and R are scratch. Returns 1 if it does. */
static int check_quant(bench_env *e, const gemm_case *c, const float *A, dj_opd q,
                       const float *dec, float *C, float *R, float *ws)
{
    gemm_ctx g = {c, c->M, A, q, C, ws, NULL}, f = {c, c->M, A, dj_opd_f32(dec), R, ws, NULL};
    gemm_quant(&g, e->pool);
    gemm_f32(&f, e->pool);
    return memcmp(C, R, (size_t)c->M * c->N * sizeof(float)) == 0;
}

static int bench_gemm_case(bench_env *e, const gemm_case *c)
{
    const opts *o = e->o;
    const size_t na = (size_t)c->M * c->K, nb = (size_t)c->K * c->N, nc = (size_t)c->M * c->N;
    float *A = random_floats(na), *B = random_floats(nb), *C = random_floats(nc);
    float *R = random_floats(nc), *D = malloc(nb * sizeof(float));
    uint8_t *q8 = malloc(nb);
    uint16_t *bf = malloc(nb * sizeof(uint16_t));
    float *ws = malloc((dj_gemm_q_workspace(c->M, c->N, c->K, e->T) + 1) * sizeof(float));
    gemm_result r = {0};
    int ok = 1;
    if (!A || !B || !C || !R || !D || !q8 || !bf || !ws) {
        dj_cli_err(CMD, "out of memory for case %s", c->name);
        ok = 0;
        goto done;
    }
    r.flops = 2.0 * c->M * c->N * c->K;
    r.peer_diff = NAN;

    /* Our float32 against the reference, on the first rows of C. */
    int mref = (int)(c->M * (REF_FLOPS / r.flops));
    mref = mref < 1 ? 1 : mref > c->M ? c->M : mref;
    gemm_ctx ref = {c, mref, A, dj_opd_f32(B), R, NULL, NULL};
    gemm_ctx fast = {c, c->M, A, dj_opd_f32(B), C, ws, NULL};
    r.ref_rate = 2.0 * mref * c->N * c->K / time_once(gemm_ref, &ref);
    gemm_f32(&fast, e->pool);
    if (!close_enough(C, R, (size_t)mref * c->N, c->K)) {
        dj_cli_err(CMD, "%s: dj_sgemm differs from dj_sgemm_ref", c->name);
        ok = 0;
    }

    /* B as CFloat8 codes and as bf16, each checked bit for bit. */
    unsigned flags = 0;
    const dj_round nearest = {DJ_ROUND_NEAREST, 0};
    dj_cf_encode_array(Q8_FORMAT, e->q8_bias, B, q8, nb, nearest, 0, &flags);
    dj_cf_encode_array(DJ_FMT_BF16, e->bf16_bias, B, bf, nb, nearest, 0, &flags);
    for (size_t i = 0; i < nb; i++)
        D[i] = e->q8_lut[q8[i]];
    const dj_opd op8 = dj_opd_u8_form(q8, e->q8_lut, &e->q8_form), opbf = dj_opd_bf16(bf);
    if (!check_quant(e, c, A, op8, D, C, R, ws)) {
        dj_cli_err(CMD, "%s: dj_gemm_q with 8-bit B differs from dj_sgemm_ws on its values",
                   c->name);
        ok = 0;
    }
    for (size_t i = 0; i < nb; i++)
        D[i] = dj_bf16_to_f32(bf[i]);
    if (!check_quant(e, c, A, opbf, D, C, R, ws)) {
        dj_cli_err(CMD, "%s: dj_gemm_q with bf16 B differs from dj_sgemm_ws on its values",
                   c->name);
        ok = 0;
    }

    /* Our kernels, then the peer (whose threads spin after it). */
    r.t32 = time_it(o, gemm_f32, &fast, e->pool, &r.s32);
    gemm_ctx g8 = {c, c->M, A, op8, C, ws, NULL}, gb = {c, c->M, A, opbf, C, ws, NULL};
    r.tq8 = time_it(o, gemm_quant, &g8, e->pool, &r.sq8);
    r.tbf = time_it(o, gemm_quant, &gb, e->pool, &r.sbf);
    if (e->blas.handle) {
        gemm_ctx p = {c, c->M, A, dj_opd_f32(B), R, NULL, &e->blas};
        gemm_f32(&fast, e->pool); /* C: our float32 result again */
        gemm_peer(&p, NULL);
        r.peer_diff = max_rel_diff(R, C, nc);
        if (close_enough(R, C, nc, c->K)) {
            r.peer_ok = 1;
            r.tpeer = time_it(o, gemm_peer, &p, e->pool, &r.speer);
        } else {
            r.peer_ok = -1;
            dj_cli_err(CMD, "%s: the peer's sgemm differs from dj_sgemm (max relative "
                            "difference %.3g): not timed", c->name, r.peer_diff);
            ok = 0;
        }
        if (e->blas_threads != 1)
            sleep_ms(PEER_REST_MS);
    }
    gemm_report(e, c, &r);
done:
    free(A);
    free(B);
    free(C);
    free(R);
    free(D);
    free(q8);
    free(bf);
    free(ws);
    return ok;
}

/* ---- convolution ---- */

static void conv_report(const opts *o, const char *name, double flops, double t1, double s1,
                        double tT, double sT, double tD, double sD, double ref_rate, int T)
{
    const double g1 = flops / t1 * 1e-9, gT = flops / tT * 1e-9, gr = ref_rate * 1e-9;
    const double gD = flops / tD * 1e-9;
    if (o->json) {
        printf("{\"bench\":\"gemm\",\"kind\":\"conv\",\"case\":\"%s\",\"gflop\":%.4f,"
               "\"ref_gflops\":%.3f,\"gflops_1\":%.2f,\"cpu_share_1\":%.2f,\"threads\":%d,"
               "\"gflops_t\":%.2f,\"cpu_share_t\":%.2f,\"gflops_other_t\":%.2f,"
               "\"cpu_share_other_t\":%.2f,\"speedup_1_vs_ref\":%.1f,\"scaling_t_vs_1\":%.2f,"
               "\"speedup_t_vs_other\":%.2f}\n",
               name, flops * 1e-9, gr, g1, s1, T, gT, sT, gD, sD, g1 / gr, gT / g1, gT / gD);
    } else {
        printf("%-38s %8.3f %8.2f %7.1f%c %7.1f%c %7.1f%c %6.0fx %6.2fx %6.2fx\n", name,
               flops * 1e-9, gr, g1, s1 < 0.9 ? '*' : ' ', gT, sT < 0.9 ? '*' : ' ', gD,
               sD < 0.9 ? '*' : ' ', g1 / gr, gT / g1, gT / gD);
    }
    fflush(stdout);
}

static void conv_header(const opts *o)
{
    if (o->json)
        return;
    printf("\n%-38s %8s %8s %8s %8s %8s %7s %7s %7s\n", "conv2d, batch 128 (GFLOP/s)", "GFLOP",
           "ref", "1 thr", "T thr", "other", "1/ref", "T/1", "T/oth");
}

typedef struct {
    const char *name;
    int c, h, w, oc, k, pad, stride;
} conv_case;

static const conv_case conv_cases[] = {
    {"conv 1->32 3x3 28x28", 1, 28, 28, 32, 3, 0, 1},
    {"conv 32->64 3x3 26x26", 32, 26, 26, 64, 3, 0, 1},
    {"res 32->32 3x3 p1 28x28", 32, 28, 28, 32, 3, 1, 1},
    {"res 32->64 3x3 s2 p1 28x28", 32, 28, 28, 64, 3, 1, 2},
    {"res 32->64 1x1 s2 28x28", 32, 28, 28, 64, 1, 0, 2},
    {"res 64->64 3x3 p1 14x14", 64, 14, 14, 64, 3, 1, 1},
    {"res 64->128 3x3 s2 p1 14x14", 64, 14, 14, 128, 3, 1, 2},
    {"res 128->128 3x3 p1 7x7", 128, 7, 7, 128, 3, 1, 1},
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
    if (dj_conv2d_dims_init(&d, BATCH, cc->c, cc->h, cc->w, cc->oc, cc->k, cc->k, cc->stride,
                            cc->stride, cc->pad, cc->pad) != DJ_OK) {
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
        /* the other path: direct kernels where Winograd would run, im2col
         * where the strided implicit GEMM would */
        double sD;
        const int wino = dj__conv2d_winograd, strided = dj__conv2d_strided_implicit;
        dj__conv2d_winograd = 0;
        dj__conv2d_strided_implicit = 0;
        const double tD = time_it(o, conv_fast, &fast, pool, &sD);
        dj__conv2d_winograd = wino;
        dj__conv2d_strided_implicit = strided;
        char name[96];
        snprintf(name, sizeof name, "%s %s", cc->name, dir_names[dir]);
        conv_report(o, name, flops, t1, s1, tT, sT, tD, sD, ref_rate, T);
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
    fputs("usage: dojo bench gemm [--cases LIST] [--threads N] [--repeat N] [--min-ms MS]\n"
          "                       [--only gemm|conv] [--clock wall|cpu] [--no-peer]\n"
          "                       [--blas PATH] [--fma-units N] [--ghz X] [--json]\n"
          "\n"
          "GFLOP/s of dj_sgemm on N threads beside OpenBLAS's sgemm (loaded at run\n"
          "time, same thread count) and the machine's peak; of dj_gemm_q with B as\n"
          "CFloat8_1_4_3 codes and as bf16, beside our float32; and of the\n"
          "convolution kernels on 1 and N threads beside the plain references, all\n"
          "measured in the same run. GEMM columns: M N K; 'yes' if memory bound\n"
          "(M <= 8); float32 GFLOP/s and its share of the peak; the peer's GFLOP/s\n"
          "and ours over it; cf8 and bf16 GFLOP/s and each over our float32 ('*':\n"
          "the threads had under 90% of their CPUs). Convolution columns: the\n"
          "reference, ours on 1 and N threads, and on N threads the path taken\n"
          "without the fast one ('other': direct kernels instead of Winograd for\n"
          "3x3 stride 1, im2col instead of the phase-plane implicit GEMM for\n"
          "other strides). Peak = threads (at most the CPUs) x float32 lanes (16\n"
          "AVX-512, 8 AVX2, 4 SSE) x 2 x FMA units per core x clock, each factor's\n"
          "source printed. Our ISA is the best the CPU runs (cap it with DOJO_ISA;\n"
          "the peer picks its own).\n"
          "\n"
          "  --cases LIST   comma-separated: square (256..2048), train (the\n"
          "                 Fashion-MNIST CNN's linear layers at batch 128), skinny\n"
          "                 (8192x64x64, 64x64x8192), small (M = 1, 2, 4, 8 with\n"
          "                 N = K = 4096), conv; gemm = all but conv; default all\n"
          "  --only WHAT    gemm or conv (as --cases gemm / --cases conv)\n"
          "  --threads N    threads (default: all CPUs)\n"
          "  --repeat N     samples per figure, the best is kept (default 3)\n"
          "  --min-ms MS    minimum length of a sample (default 100)\n"
          "  --clock cpu    figures from CPU time per thread (for a busy machine;\n"
          "                 optimistic for N threads: idle waits do not count)\n"
          "  --no-peer      do not load a BLAS library\n"
          "  --blas PATH    the CBLAS library to load (default: the first of\n"
          "                 libopenblas.so.0, libopenblas.so, Debian's\n"
          "                 openblas-pthread/libopenblas.so.0, libblas.so.3)\n"
          "  --fma-units N  vector FMA units per core for the peak (default: from\n"
          "                 the CPU's vendor and model)\n"
          "  --ghz X        clock for the peak (default: cpufreq's maximum, else\n"
          "                 /proc/cpuinfo)\n"
          "  --json         JSON lines: the setup, one object per case, a summary\n",
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

/* "square,small" into a set mask; 0 after printing an error. */
static unsigned parse_cases(const char *v)
{
    unsigned sets = 0;
    const char *p = v;
    for (;;) {
        const size_t n = strcspn(p, ",");
        size_t i = 0;
        for (; i < sizeof set_names / sizeof set_names[0]; i++)
            if (strlen(set_names[i].name) == n && strncmp(p, set_names[i].name, n) == 0)
                break;
        if (i == sizeof set_names / sizeof set_names[0]) {
            char q[64];
            dj_cli_err(CMD, "bad --cases item %s (valid: square, train, skinny, small, conv, "
                            "gemm, all)", dj_cli_quote(p, n, 24, q, sizeof q));
            return 0;
        }
        sets |= set_names[i].set;
        if (p[n] == '\0')
            return sets;
        p += n + 1;
    }
}

static int parse_ghz(const char *v, double *out)
{
    char *end;
    const double g = strtod(v, &end);
    if (end == v || *end != '\0' || !(g > 0.05 && g < 20)) {
        dj_cli_err(CMD, "bad --ghz '%s' (expected a clock in GHz, such as 3.5)", v);
        return -1;
    }
    *out = g;
    return 0;
}

static int parse_args(int argc, char **argv, opts *o, int *exit_now)
{
    const int first = argc > 0 && argv[0] && strcmp(argv[0], "gemm") == 0 ? 1 : 0;
    dj_opt_iter it;
    int rc;
    *exit_now = 0;
    dj_opt_init(&it, argc, argv, first);
    while ((rc = dj_opt_next(&it, CMD)) == DJ_OPT_MORE) {
        const char *v;
        if (dj_opt_is(&it, "--help")) {
            usage(stdout);
            *exit_now = 1;
            return DJ_EXIT_OK;
        } else if (dj_opt_is(&it, "--json") || dj_opt_is(&it, "--no-peer")) {
            if (dj_opt_no_value(&it, CMD))
                return DJ_EXIT_USAGE;
            if (dj_opt_is(&it, "--json"))
                o->json = 1;
            else
                o->peer_on = 0;
        } else if (dj_opt_is(&it, "--threads")) {
            if (parse_int_opt(&it, 1, 1024, &o->threads))
                return DJ_EXIT_USAGE;
        } else if (dj_opt_is(&it, "--repeat")) {
            if (parse_int_opt(&it, 1, 1000, &o->repeat))
                return DJ_EXIT_USAGE;
        } else if (dj_opt_is(&it, "--min-ms")) {
            if (parse_int_opt(&it, 1, 100000, &o->min_ms))
                return DJ_EXIT_USAGE;
        } else if (dj_opt_is(&it, "--fma-units")) {
            if (parse_int_opt(&it, 1, 8, &o->fma_units))
                return DJ_EXIT_USAGE;
        } else if (dj_opt_is(&it, "--ghz")) {
            if (!(v = dj_opt_value(&it, CMD)) || parse_ghz(v, &o->ghz))
                return DJ_EXIT_USAGE;
        } else if (dj_opt_is(&it, "--blas")) {
            if (!(v = dj_opt_value(&it, CMD)))
                return DJ_EXIT_USAGE;
            o->blas = v;
        } else if (dj_opt_is(&it, "--cases")) {
            if (!(v = dj_opt_value(&it, CMD)) || !(o->sets = parse_cases(v)))
                return DJ_EXIT_USAGE;
        } else if (dj_opt_is(&it, "--clock")) {
            if (!(v = dj_opt_value(&it, CMD)))
                return DJ_EXIT_USAGE;
            if (strcmp(v, "wall") == 0 || strcmp(v, "cpu") == 0) {
                o->use_cpu = v[0] == 'c';
            } else {
                dj_cli_err(CMD, "bad --clock '%s' (valid: wall, cpu)", v);
                return DJ_EXIT_USAGE;
            }
        } else if (dj_opt_is(&it, "--only")) {
            if (!(v = dj_opt_value(&it, CMD)))
                return DJ_EXIT_USAGE;
            if (strcmp(v, "gemm") == 0) {
                o->sets &= SET_GEMM;
            } else if (strcmp(v, "conv") == 0) {
                o->sets &= SET_CONV;
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
    if (!o->sets) {
        dj_cli_err(CMD, "--only and --cases leave no cases to run");
        return DJ_EXIT_USAGE;
    }
    return DJ_EXIT_OK;
}

/* The peer, opened and set to our thread count (if wanted and found). */
static void open_peer(bench_env *e)
{
    const opts *o = e->o;
    if (o->peer_on && (o->sets & SET_GEMM) && dj_bench_blas_open(&e->blas, o->blas) == 0)
        e->blas_threads = dj_bench_blas_set_threads(&e->blas, e->T);
}

/* Wanted but not found. */
static int peer_missing(const bench_env *e)
{
    return e->o->peer_on && (e->o->sets & SET_GEMM) && !e->blas.handle;
}

#define PEER_MISSING "no BLAS peer found (tried %s): install OpenBLAS (apt-get install " \
                     "libopenblas0) to compare with it; our figures follow alone"

static void print_setup(const bench_env *e)
{
    const opts *o = e->o;
    const dj_bench_peak *p = &e->peak;
    if (o->json) {
        dj_json_writer w;
        dj_json_writer_init(&w, 0, NULL);
        dj_json_write_begin_object(&w);
        jkey_str(&w, "bench", "gemm");
        jkey_str(&w, "kind", "setup");
        jkey_str(&w, "cpu", p->cpu);
        jkey_str(&w, "isa", dj_isa_name(dj_cpu_best_isa()));
        jkey_int(&w, "threads", e->T);
        jkey_int(&w, "cpus", dj_cpu_count());
        jkey_int(&w, "repeat", o->repeat);
        jkey_int(&w, "min_ms", o->min_ms);
        jkey_str(&w, "clock", o->use_cpu ? "cpu" : "wall");
        dj_json_write_key(&w, "peak");
        dj_json_write_begin_object(&w);
        jkey_num(&w, "gflops", e->peak_gflops, 2);
        jkey_int(&w, "cores", e->peak_cores);
        jkey_num(&w, "per_core_gflops", p->per_core_gflops, 3);
        jkey_int(&w, "lanes", p->lanes);
        jkey_int(&w, "flops_per_fma", 2);
        jkey_int(&w, "fma_units", p->fma_units);
        jkey_num(&w, "ghz", p->ghz, 4);
        jkey_str(&w, "lanes_from", p->lanes_from);
        jkey_str(&w, "fma_units_from", p->fma_from);
        jkey_str(&w, "ghz_from", p->ghz_from);
        dj_json_write_end_object(&w);
        dj_json_write_key(&w, "peer");
        dj_json_write_begin_object(&w);
        dj_json_write_key(&w, "found");
        dj_json_write_bool(&w, e->blas.handle != NULL);
        if (e->blas.handle) {
            jkey_str(&w, "library", e->blas.path);
            dj_json_write_key(&w, "openblas");
            dj_json_write_bool(&w, e->blas.is_openblas);
            jkey_str(&w, "config", e->blas.config);
            jkey_int(&w, "threads", e->blas_threads);
        } else {
            jkey_str(&w, "reason", !o->peer_on ? "--no-peer"
                                   : !(o->sets & SET_GEMM) ? "no gemm cases"
                                                          : "not installed");
            if (peer_missing(e))
                jkey_str(&w, "tried", e->blas.tried);
        }
        dj_json_write_end_object(&w);
        dj_json_write_key(&w, "quantised");
        dj_json_write_begin_object(&w);
        jkey_str(&w, "operand", "B");
        jkey_str(&w, "cf8_format", dj_format_desc_of(Q8_FORMAT)->name);
        jkey_int(&w, "cf8_bias", e->q8_bias);
        jkey_str(&w, "rounding", "nearest");
        dj_json_write_end_object(&w);
        dj_json_write_end_object(&w);
        json_print(&w);
        if (peer_missing(e))
            dj_cli_err(CMD, PEER_MISSING, e->blas.tried); /* stdout stays JSON */
        return;
    }
    printf("dojo bench gemm: ISA %s, %d threads (of %d CPUs), best of %d samples >= %d ms, "
           "%s time\n",
           dj_isa_name(dj_cpu_best_isa()), e->T, dj_cpu_count(), o->repeat, o->min_ms,
           o->use_cpu ? "CPU" : "wall");
    printf("cpu: %s\n", p->cpu);
    if (e->peak_gflops > 0)
        printf("peak: %.1f GFLOP/s = %d cores x %.2f GFLOP/s; per core %s x 2 flops per FMA x %d "
               "FMA units (%s) x %.3f GHz (%s)\n",
               e->peak_gflops, e->peak_cores, p->per_core_gflops, p->lanes_from, p->fma_units,
               p->fma_from, p->ghz, p->ghz_from);
    else
        printf("peak: unknown: the clock is unknown (give --ghz); %s x 2 x %d FMA units (%s)\n",
               p->lanes_from, p->fma_units, p->fma_from);
    if (e->blas.handle) {
        printf("peer: cblas_sgemm of %s (%s), ", e->blas.path,
               e->blas.is_openblas ? e->blas.config : "not OpenBLAS");
        if (e->blas_threads)
            printf("%d threads\n", e->blas_threads);
        else
            printf("its thread count cannot be set\n");
    } else if (peer_missing(e)) {
        printf("peer: " PEER_MISSING "\n", e->blas.tried);
    } else if (!o->peer_on) {
        printf("peer: none (--no-peer)\n");
    }
    if (o->sets & SET_GEMM) {
        printf("quantised: B as %s codes (bias %d, round to nearest) decoded by the 256-entry "
               "table's %s (cf8), and as bf16; A and C float32 (dj_gemm_q)\n",
               dj_format_desc_of(Q8_FORMAT)->title, e->q8_bias,
               !e->q8_form.mbits ? "values (no form found: gathered)"
               : e->q8_form.nib  ? "nibble form (32 codes at a time)"
                                 : "arithmetic form");
        if (e->q8_form.sc)
            printf("quantised, M <= 8: the few-row kernel decodes the cf8 codes by the table's "
                   "scaled form (8 codes in six vector operations) with A multiplied by 2^%d "
                   "(exact: same bits)\n", e->q8_form.sc_exp);
    }
}

int dj_bench_gemm(int argc, char **argv)
{
    opts o = {0, dj_cpu_count(), 3, 100, SET_ALL, 0, 1, NULL, 0, 0};
    int exit_now;
    const int rc = parse_args(argc, argv, &o, &exit_now);
    if (rc != DJ_EXIT_OK || exit_now)
        return rc;

    bench_env e;
    memset(&e, 0, sizeof e);
    e.o = &o;
    if (dj_pool_create(o.threads, &e.pool) != DJ_OK) {
        dj_cli_err(CMD, "cannot start %d threads", o.threads);
        return DJ_EXIT_DATA;
    }
    e.T = dj_pool_threads(e.pool);
    dj_bench_peak_derive(DJ_ISA_AUTO, o.fma_units, o.ghz, &e.peak);
    e.peak_cores = e.T < dj_cpu_count() ? e.T : dj_cpu_count();
    e.peak_gflops = e.peak_cores * e.peak.per_core_gflops;
    if (dj_cf_bias_for_amax(Q8_FORMAT, 1.0f, 0, &e.q8_bias) != DJ_OK) /* inputs in [-1, 1) */
        e.q8_bias = dj_format_desc_of(Q8_FORMAT)->bias_default;
    dj_cf_decode_lut8(Q8_FORMAT, e.q8_bias, 0, e.q8_lut);
    dj_lut8_form_of(e.q8_lut, &e.q8_form);
    e.bf16_bias = dj_format_desc_of(DJ_FMT_BF16)->bias_default;

    open_peer(&e);
    print_setup(&e);

    int ok = 1, ngemm = 0, nconv = 0;
    if (o.sets & SET_GEMM) {
        gemm_header(&e);
        for (size_t i = 0; i < sizeof gemm_cases / sizeof gemm_cases[0]; i++)
            if (o.sets & gemm_cases[i].set) {
                ok &= bench_gemm_case(&e, &gemm_cases[i]);
                ngemm++;
            }
    }
    if (o.sets & SET_CONV) {
        conv_header(&o);
        for (size_t i = 0; i < sizeof conv_cases / sizeof conv_cases[0]; i++) {
            ok &= bench_conv_case(&o, &conv_cases[i], e.pool);
            nconv++;
        }
    }
    if (o.json) {
        dj_json_writer w;
        dj_json_writer_init(&w, 0, NULL);
        dj_json_write_begin_object(&w);
        jkey_str(&w, "bench", "gemm");
        jkey_str(&w, "kind", "summary");
        jkey_int(&w, "gemm_cases", ngemm);
        jkey_int(&w, "conv_cases", nconv);
        dj_json_write_key(&w, "ok");
        dj_json_write_bool(&w, ok);
        dj_json_write_end_object(&w);
        json_print(&w);
    }
    dj_bench_blas_close(&e.blas);
    dj_pool_destroy(e.pool);
    return ok ? DJ_EXIT_OK : DJ_EXIT_DATA;
}
