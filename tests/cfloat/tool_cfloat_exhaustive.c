/* tool_cfloat_exhaustive.c - the bulk conversion path against the scalar
 * reference over all 2^32 float32 bit patterns (`make exhaustive`; built as
 * build/tests/cfloat_exhaustive and not run by CTest: it takes hours).
 *
 * For each selected format (one bias each), rounding mode and instruction
 * set, every float32 bit pattern u is encoded by the scalar reference
 * dj_cf_encode() and by dj_cf_encode_array_isa(); codes are compared element
 * by element. The bulk path is called on chunks of --chunk consecutive bit
 * patterns (default 65536); since flags are sticky per call, flags are
 * compared per chunk: the OR of the reference's flags over the chunk against
 * the flags of the bulk call for that chunk (a "flag mismatch" is a chunk
 * whose flags differ; the first few are narrowed down to single inputs).
 * Stochastic rounding uses a fixed seed and element index = the float bits
 * (the bulk call gets index0 = the chunk's first bit pattern). The reference
 * is computed once per chunk and compared with every selected ISA, so the
 * time T in a summary line is the wall time of the whole pass; a line after
 * each pass gives the thread CPU time per element of the reference and of
 * each bulk path (independent of other load on the machine).
 *
 * After the encode passes, the small domains are checked completely as well:
 * decoding every code of the format (per ISA; values bit for bit, and flags
 * per element), and for 8-bit formats bf16 -> format over all 65536 bf16
 * patterns (dj_cf_encode_bf16_array, index = the bf16 bits) and format ->
 * bf16 (dj_cf_decode_to_bf16_array); those two routines choose their ISA
 * themselves (DOJO_ISA caps it), so they are labelled "auto(ISA)".
 *
 * Work is split over all cores with pthreads (chunks handed out by an atomic
 * counter). Progress goes to stderr at most once a second when stderr is a
 * terminal (--progress: also to a file or pipe, a line every 30 s). Exit status: 0 when everything matches, 1 on any mismatch, 2 for
 * a bad command line. */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dojo/cfloat.h"
#include "dojo/cpu.h"

#define PROG "cfloat_exhaustive"
#define MAX_SHOW_DEFAULT 8
#define MAX_EXAMPLES 64
#define DIAG_CHUNKS 4 /* flag-mismatch chunks narrowed down per ISA and pass */
#define DEFAULT_SEED 0x5eedULL

/* ---- options ---- */

typedef struct {
    dj_format f;
    int bias;
} sel;

static const sel g_default_sel[] = {
    {DJ_FMT_CF8_143, 7}, {DJ_FMT_CF8_152, 15}, {DJ_FMT_SHP, 15}, {DJ_FMT_UHP, 31},
    {DJ_FMT_E4M3, 7},    {DJ_FMT_E5M2, 15},    {DJ_FMT_BF16, 127},
};

typedef struct {
    sel sels[DJ_FMT_COUNT];
    int nsel;
    int modes[2]; /* [nearest, stochastic] */
    dj_isa isas[DJ_ISA_COUNT];
    int nisa;
    int threads;
    uint64_t start, count;
    uint32_t chunk;
    uint64_t seed;
    int max_show;
    int small;    /* run the decode / bf16 checks */
    int progress; /* progress lines even when stderr is not a terminal */
} options;

/* ---- small helpers ---- */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* CPU time of the calling thread: per-element costs that do not depend on
 * how busy the machine is. */
static double thread_cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static float f32_of(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static uint32_t bits_of(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static const char *mode_name(dj_rounding m)
{
    return m == DJ_ROUND_NEAREST ? "nearest" : "stochastic";
}

static void isa_label(dj_isa isa, char *buf, size_t size)
{
    if (isa == DJ_ISA_AUTO)
        snprintf(buf, size, "auto(%s)", dj_isa_name(dj_cpu_best_isa()));
    else
        snprintf(buf, size, "%s", dj_isa_name(isa));
}

/* ---- mismatch examples: the smallest inputs kept, per ISA ---- */

typedef struct {
    int kind; /* 0 code, 1 flags (narrowed to one input), 2 flags (chunk only) */
    uint32_t bits;
    uint32_t exp_code, got_code;
    unsigned exp_flags, got_flags;
    uint64_t chunk_start, chunk_len;
} example;

typedef struct {
    uint64_t code_mm, flag_mm;
    double bulk_s; /* summed over threads */
    example ex[MAX_EXAMPLES];
    int nex;
} isa_result;

static void add_example(isa_result *r, const example *e)
{
    if (r->nex == MAX_EXAMPLES && e->bits >= r->ex[MAX_EXAMPLES - 1].bits)
        return;
    int i = r->nex < MAX_EXAMPLES ? r->nex++ : MAX_EXAMPLES - 1;
    while (i > 0 && r->ex[i - 1].bits > e->bits) {
        r->ex[i] = r->ex[i - 1];
        i--;
    }
    r->ex[i] = *e;
}

static void print_examples(const isa_result *r, int max_show, int code_bytes)
{
    const int w = code_bytes * 2;
    int shown = 0;
    for (int i = 0; i < r->nex && shown < max_show; i++, shown++) {
        const example *e = &r->ex[i];
        char fe[5], fg[5];
        dj_cf_flags_str(e->exp_flags, fe);
        dj_cf_flags_str(e->got_flags, fg);
        if (e->kind == 0)
            printf("  code mismatch: x = 0x%08" PRIx32 " (%.9g): expected 0x%0*" PRIx32
                   " (flags %s), got 0x%0*" PRIx32 "\n",
                   e->bits, (double)f32_of(e->bits), w, e->exp_code, fe, w, e->got_code);
        else if (e->kind == 1)
            printf("  flag mismatch: x = 0x%08" PRIx32 " (%.9g) -> 0x%0*" PRIx32
                   ": expected flags %s, got %s (single-element bulk call)\n",
                   e->bits, (double)f32_of(e->bits), w, e->exp_code, fe, fg);
        else
            printf("  flag mismatch: chunk 0x%08" PRIx64 "..0x%08" PRIx64
                   ": expected flags %s, got %s (no single input reproduces it)\n",
                   e->chunk_start, e->chunk_start + e->chunk_len - 1, fe, fg);
    }
    uint64_t total = r->code_mm + r->flag_mm;
    if (total > (uint64_t)shown)
        printf("  (%" PRIu64 " more mismatches not shown)\n", total - (uint64_t)shown);
}

/* ---- the encode pass ---- */

typedef struct {
    const options *o;
    dj_format f;
    int bias;
    int code_bytes;
    dj_round r;
    uint64_t nchunks;
    atomic_uint_fast64_t next_chunk;
    atomic_uint_fast64_t done;
    atomic_int diag_left[DJ_ISA_COUNT];
    pthread_mutex_t mu;
    isa_result res[DJ_ISA_COUNT]; /* indexed like o->isas */
    double ref_s;                 /* summed over threads */
    atomic_int failed;            /* an API call or an allocation failed */
} pass;

typedef struct {
    float *x;
    uint16_t *ref;
    uint8_t *ref_fl;
    void *got;
} worker_buf;

static uint32_t code_at(const void *p, int code_bytes, size_t j)
{
    return code_bytes == 1 ? ((const uint8_t *)p)[j] : ((const uint16_t *)p)[j];
}

/* Narrows a chunk whose flags differ down to single inputs: each element
 * through a one-element bulk call. Returns how many examples it found. */
static int diagnose_flags(pass *ps, int k, const worker_buf *b, uint64_t start, size_t len,
                          unsigned exp_or, unsigned got_or)
{
    const dj_isa isa = ps->o->isas[k];
    int found = 0;
    for (size_t j = 0; j < len; j++) {
        unsigned fl = 0;
        uint16_t c = 0;
        if (dj_cf_encode_array_isa(isa, ps->f, ps->bias, &b->x[j], &c, 1, ps->r, start + j, &fl))
            break;
        if (fl != b->ref_fl[j]) {
            example e = {1, (uint32_t)(start + j), b->ref[j], code_at(&c, ps->code_bytes, 0),
                         b->ref_fl[j], fl, start, len};
            pthread_mutex_lock(&ps->mu);
            add_example(&ps->res[k], &e);
            pthread_mutex_unlock(&ps->mu);
            if (++found >= ps->o->max_show)
                break;
        }
    }
    if (!found) {
        example e = {2, (uint32_t)start, 0, 0, exp_or, got_or, start, len};
        pthread_mutex_lock(&ps->mu);
        add_example(&ps->res[k], &e);
        pthread_mutex_unlock(&ps->mu);
    }
    return found;
}

static void *worker(void *arg)
{
    pass *ps = arg;
    const options *o = ps->o;
    const size_t cap = o->chunk;
    worker_buf b;
    b.x = malloc(cap * sizeof *b.x);
    b.ref = malloc(cap * sizeof *b.ref);
    b.ref_fl = malloc(cap);
    b.got = malloc(cap * 2);
    uint64_t code_mm[DJ_ISA_COUNT] = {0}, flag_mm[DJ_ISA_COUNT] = {0};
    double bulk_s[DJ_ISA_COUNT] = {0}, ref_s = 0;
    if (!b.x || !b.ref || !b.ref_fl || !b.got) {
        atomic_store(&ps->failed, 1);
        goto out;
    }
    while (!atomic_load(&ps->failed)) {
        const uint64_t ci = atomic_fetch_add(&ps->next_chunk, 1);
        if (ci >= ps->nchunks)
            break;
        const uint64_t start = o->start + ci * o->chunk;
        const uint64_t end = o->start + o->count;
        const size_t len = (size_t)(end - start < o->chunk ? end - start : o->chunk);

        double t0 = thread_cpu_s();
        unsigned exp_or = 0;
        for (size_t j = 0; j < len; j++) {
            const uint32_t u = (uint32_t)(start + j);
            unsigned fl = 0;
            b.x[j] = f32_of(u);
            b.ref[j] = (uint16_t)dj_cf_encode(ps->f, ps->bias, b.x[j], ps->r, u, &fl);
            b.ref_fl[j] = (uint8_t)fl;
            exp_or |= fl;
        }
        ref_s += thread_cpu_s() - t0;

        for (int k = 0; k < o->nisa; k++) {
            unsigned got_or = 0;
            t0 = thread_cpu_s();
            dj_status st = dj_cf_encode_array_isa(o->isas[k], ps->f, ps->bias, b.x, b.got, len,
                                                  ps->r, start, &got_or);
            bulk_s[k] += thread_cpu_s() - t0;
            if (st != DJ_OK) {
                if (!atomic_exchange(&ps->failed, 1))
                    fprintf(stderr, PROG ": dj_cf_encode_array_isa(%s) failed: %s\n",
                            dj_isa_name(o->isas[k]), dj_status_str(st));
                goto out;
            }
            int shown = 0;
            for (size_t j = 0; j < len; j++) {
                const uint32_t got = code_at(b.got, ps->code_bytes, j);
                if (got != b.ref[j]) {
                    code_mm[k]++;
                    if (shown++ < o->max_show) {
                        example e = {0, (uint32_t)(start + j), b.ref[j], got, b.ref_fl[j], 0, start,
                                     len};
                        pthread_mutex_lock(&ps->mu);
                        add_example(&ps->res[k], &e);
                        pthread_mutex_unlock(&ps->mu);
                    }
                }
            }
            if (got_or != exp_or) {
                flag_mm[k]++;
                if (atomic_fetch_sub(&ps->diag_left[k], 1) > 0)
                    diagnose_flags(ps, k, &b, start, len, exp_or, got_or);
            }
        }
        atomic_fetch_add(&ps->done, len);
    }
out:
    pthread_mutex_lock(&ps->mu);
    for (int k = 0; k < o->nisa; k++) {
        ps->res[k].code_mm += code_mm[k];
        ps->res[k].flag_mm += flag_mm[k];
        ps->res[k].bulk_s += bulk_s[k];
    }
    ps->ref_s += ref_s;
    pthread_mutex_unlock(&ps->mu);
    free(b.x);
    free(b.ref);
    free(b.ref_fl);
    free(b.got);
    return NULL;
}

/* Runs one (format, mode) pass; returns the number of mismatches (or -1). */
static long long run_pass(const options *o, sel s, dj_rounding mode)
{
    const dj_format_desc *d = dj_format_desc_of(s.f);
    pass *ps = calloc(1, sizeof *ps);
    if (!ps) {
        fprintf(stderr, PROG ": out of memory\n");
        return -1;
    }
    ps->o = o;
    ps->f = s.f;
    ps->bias = s.bias;
    ps->code_bytes = d->bits / 8;
    ps->r = (dj_round){mode, o->seed};
    ps->nchunks = (o->count + o->chunk - 1) / o->chunk;
    atomic_init(&ps->next_chunk, 0);
    atomic_init(&ps->done, 0);
    atomic_init(&ps->failed, 0);
    for (int k = 0; k < DJ_ISA_COUNT; k++)
        atomic_init(&ps->diag_left[k], DIAG_CHUNKS);
    pthread_mutex_init(&ps->mu, NULL);

    pthread_t *tids = calloc((size_t)o->threads, sizeof *tids);
    int started = 0;
    const double t0 = now_s();
    for (int i = 0; tids && i < o->threads; i++) {
        int err = pthread_create(&tids[i], NULL, worker, ps);
        if (err) {
            fprintf(stderr, PROG ": pthread_create: %s\n", strerror(err));
            break;
        }
        started++;
    }
    if (started == 0) {
        fprintf(stderr, PROG ": could not start any thread\n");
        free(tids);
        pthread_mutex_destroy(&ps->mu);
        free(ps);
        return -1;
    }
    /* Progress, at most once a second, on a terminal (or, with --progress,
     * a line every 30 s on any stderr). */
    const int tty = isatty(STDERR_FILENO);
    const int show = tty || o->progress;
    const double every = tty ? 1.0 : 30.0;
    double last = t0;
    int printed = 0;
    while (atomic_load(&ps->done) < o->count) {
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep(&ts, NULL);
        if (atomic_load(&ps->failed))
            break;
        if (atomic_load(&ps->next_chunk) >= ps->nchunks + (uint64_t)started)
            break; /* every worker has left its loop */
        double t = now_s();
        if (show && t - last >= every) {
            uint64_t done = atomic_load(&ps->done);
            double frac = (double)done / (double)o->count;
            double eta = frac > 0 ? (t - t0) * (1 - frac) / frac : 0;
            fprintf(stderr, "%s%s bias %d %s: %5.1f%% (%.0f s, about %.0f s left)%s",
                    tty ? "\r" : "", d->name, s.bias, mode_name(mode), 100 * frac, t - t0, eta,
                    tty ? "   " : "\n");
            fflush(stderr);
            last = t;
            printed = tty;
        }
    }
    for (int i = 0; i < started; i++)
        pthread_join(tids[i], NULL);
    const double wall = now_s() - t0;
    if (printed)
        fprintf(stderr, "\r%*s\r", 79, "");
    free(tids);

    long long mism = 0;
    if (atomic_load(&ps->failed) || started < o->threads)
        mism = -1;
    const uint64_t done = atomic_load(&ps->done);
    for (int k = 0; k < o->nisa && mism >= 0; k++) {
        char lab[32];
        isa_label(o->isas[k], lab, sizeof lab);
        const isa_result *r = &ps->res[k];
        printf("%s bias %d %s %s: %" PRIu64 " inputs, %" PRIu64 " code mismatches, %" PRIu64
               " flag mismatches, %.1f s\n",
               d->name, s.bias, mode_name(mode), lab, done, r->code_mm, r->flag_mm, wall);
        print_examples(r, o->max_show, ps->code_bytes);
        mism += (long long)(r->code_mm + r->flag_mm);
    }
    if (mism >= 0) {
        printf("  (%d threads; CPU time per element: reference %.1f ns", started,
               done ? ps->ref_s / (double)done * 1e9 : 0.0);
        for (int k = 0; k < o->nisa; k++)
            printf(", %s %.2f ns", dj_isa_name(o->isas[k]),
                   done ? ps->res[k].bulk_s / (double)done * 1e9 : 0.0);
        printf(")\n");
    }
    fflush(stdout);
    pthread_mutex_destroy(&ps->mu);
    free(ps);
    return mism;
}

/* ---- the small domains: decode, bf16 ---- */

static long long report_small(const char *fmt, int bias, const char *what, const char *lab,
                              uint64_t n, const char *unit, uint64_t vmm, uint64_t fmm,
                              const isa_result *r, const options *o, int code_bytes)
{
    printf("%s bias %d %s %s: %" PRIu64 " %s, %" PRIu64 " code mismatches, %" PRIu64
           " flag mismatches\n",
           fmt, bias, what, lab, n, unit, vmm, fmm);
    print_examples(r, o->max_show, code_bytes);
    return (long long)(vmm + fmm);
}

/* Every code decoded by the reference and by each ISA (whole array for the
 * values and the OR of flags, one-element calls for per-element flags). */
static long long check_decode(const options *o, sel s)
{
    const dj_format_desc *d = dj_format_desc_of(s.f);
    const uint32_t ncodes = 1u << d->bits;
    const int cb = d->bits / 8;
    uint16_t *codes = malloc(ncodes * sizeof *codes);
    uint8_t *codes8 = malloc(ncodes);
    float *ref = malloc(ncodes * sizeof *ref), *got = malloc(ncodes * sizeof *got);
    uint8_t *ref_fl = malloc(ncodes);
    long long mism = 0;
    if (!codes || !codes8 || !ref || !got || !ref_fl) {
        fprintf(stderr, PROG ": out of memory\n");
        mism = -1;
        goto out;
    }
    unsigned ref_or = 0;
    for (uint32_t c = 0; c < ncodes; c++) {
        unsigned fl = 0;
        codes[c] = (uint16_t)c;
        codes8[c] = (uint8_t)c;
        ref[c] = dj_cf_decode(s.f, s.bias, c, &fl);
        ref_fl[c] = (uint8_t)fl;
        ref_or |= fl;
    }
    const void *in = cb == 1 ? (const void *)codes8 : (const void *)codes;
    for (int k = 0; k < o->nisa; k++) {
        isa_result *r = calloc(1, sizeof *r);
        if (!r) {
            mism = -1;
            goto out;
        }
        unsigned got_or = 0;
        dj_status st = dj_cf_decode_array_isa(o->isas[k], s.f, s.bias, in, got, ncodes, &got_or);
        if (st != DJ_OK) {
            fprintf(stderr, PROG ": dj_cf_decode_array_isa failed: %s\n", dj_status_str(st));
            free(r);
            mism = -1;
            goto out;
        }
        for (uint32_t c = 0; c < ncodes; c++) {
            unsigned fl1 = 0;
            float g1;
            (void)dj_cf_decode_array_isa(o->isas[k], s.f, s.bias,
                                         cb == 1 ? (const void *)&codes8[c] : (const void *)&codes[c],
                                         &g1, 1, &fl1);
            const uint32_t eb = bits_of(ref[c]);
            if (bits_of(got[c]) != eb) {
                r->code_mm++;
                /* bits holds the code; exp/got hold float bits */
                example e = {0, c, eb, bits_of(got[c]), ref_fl[c], 0, 0, 0};
                add_example(r, &e);
            }
            if (fl1 != ref_fl[c]) {
                r->flag_mm++;
                example e = {1, c, eb, bits_of(g1), ref_fl[c], fl1, 0, 0};
                add_example(r, &e);
            }
        }
        if (got_or != ref_or && r->flag_mm == 0) {
            r->flag_mm++;
            example e = {2, 0, 0, 0, ref_or, got_or, 0, ncodes};
            add_example(r, &e);
        }
        char lab[32];
        isa_label(o->isas[k], lab, sizeof lab);
        printf("%s bias %d decode %s: %" PRIu32 " codes, %" PRIu64 " value mismatches, %" PRIu64
               " flag mismatches\n",
               d->name, s.bias, lab, ncodes, r->code_mm, r->flag_mm);
        /* Examples: "x" is the code, values are float32 bits. */
        for (int i = 0; i < r->nex && i < o->max_show; i++) {
            const example *e = &r->ex[i];
            char fe[5], fg[5];
            dj_cf_flags_str(e->exp_flags, fe);
            dj_cf_flags_str(e->got_flags, fg);
            if (e->kind == 2)
                printf("  flag mismatch over all codes: expected %s, got %s\n", fe, fg);
            else
                printf("  %s mismatch: code 0x%0*" PRIx32 ": expected 0x%08" PRIx32
                       " (%.9g) flags %s, got 0x%08" PRIx32 " (%.9g) flags %s\n",
                       e->kind == 0 ? "value" : "flag", cb * 2, e->bits, e->exp_code,
                       (double)f32_of(e->exp_code), fe, e->got_code, (double)f32_of(e->got_code),
                       e->kind == 0 ? "-" : fg);
        }
        mism += (long long)(r->code_mm + r->flag_mm);
        free(r);
    }
out:
    free(codes);
    free(codes8);
    free(ref);
    free(got);
    free(ref_fl);
    return mism;
}

/* bf16 -> 8-bit format over all bf16 patterns, and 8-bit format -> bf16. */
static long long check_bf16(const options *o, sel s)
{
    const dj_format_desc *d = dj_format_desc_of(s.f);
    if (d->bits != 8)
        return 0;
    char lab[32];
    isa_label(DJ_ISA_AUTO, lab, sizeof lab);
    long long mism = 0;
    static uint16_t in[65536];
    static uint8_t out[65536], ref[65536], ref_fl[65536];
    for (uint32_t i = 0; i < 65536; i++)
        in[i] = (uint16_t)i;
    for (int m = 0; m < 2; m++) {
        if (!o->modes[m])
            continue;
        const dj_round r = {(dj_rounding)m, o->seed};
        isa_result *res = calloc(1, sizeof *res);
        if (!res)
            return -1;
        unsigned ref_or = 0, got_or = 0;
        for (uint32_t i = 0; i < 65536; i++) {
            unsigned fl = 0;
            ref[i] = (uint8_t)dj_cf_encode(s.f, s.bias, dj_bf16_to_f32((uint16_t)i), r, i, &fl);
            ref_fl[i] = (uint8_t)fl;
            ref_or |= fl;
        }
        dj_cf_encode_bf16_array(s.f, s.bias, in, out, 65536, r, 0, &got_or);
        for (uint32_t i = 0; i < 65536; i++) {
            unsigned fl1 = 0;
            uint8_t o1;
            dj_cf_encode_bf16_array(s.f, s.bias, &in[i], &o1, 1, r, i, &fl1);
            if (out[i] != ref[i]) {
                res->code_mm++;
                example e = {0, i << 16, ref[i], out[i], ref_fl[i], 0, 0, 0};
                add_example(res, &e);
            }
            if (fl1 != ref_fl[i]) {
                res->flag_mm++;
                example e = {1, i << 16, ref[i], o1, ref_fl[i], fl1, 0, 0};
                add_example(res, &e);
            }
        }
        if (got_or != ref_or && res->flag_mm == 0) {
            res->flag_mm++;
            example e = {2, 0, 0, 0, ref_or, got_or, 0, 0x100000000ULL};
            add_example(res, &e);
        }
        char what[48];
        snprintf(what, sizeof what, "bf16-encode %s", mode_name((dj_rounding)m));
        mism += report_small(d->name, s.bias, what, lab, 65536, "inputs (x = bf16 bits << 16)",
                             res->code_mm, res->flag_mm, res, o, 1);
        free(res);
    }
    /* decode to bf16 */
    {
        isa_result *res = calloc(1, sizeof *res);
        if (!res)
            return -1;
        static uint8_t codes[256];
        static uint16_t got[256];
        unsigned ref_or = 0, got_or = 0;
        for (uint32_t c = 0; c < 256; c++)
            codes[c] = (uint8_t)c;
        dj_cf_decode_to_bf16_array(s.f, s.bias, codes, got, 256, &got_or);
        for (uint32_t c = 0; c < 256; c++) {
            unsigned fl = 0, fl1 = 0;
            const uint16_t want = (uint16_t)(bits_of(dj_cf_decode(s.f, s.bias, c, &fl)) >> 16);
            uint16_t g1;
            ref_or |= fl;
            dj_cf_decode_to_bf16_array(s.f, s.bias, &codes[c], &g1, 1, &fl1);
            if (got[c] != want) {
                res->code_mm++;
                example e = {0, c, want, got[c], fl, 0, 0, 0};
                add_example(res, &e);
            }
            if (fl1 != fl) {
                res->flag_mm++;
                example e = {1, c, want, g1, fl, fl1, 0, 0};
                add_example(res, &e);
            }
        }
        if (got_or != ref_or && res->flag_mm == 0) {
            res->flag_mm++;
            example e = {2, 0, 0, 0, ref_or, got_or, 0, 256};
            add_example(res, &e);
        }
        printf("%s bias %d bf16-decode %s: 256 codes, %" PRIu64 " value mismatches, %" PRIu64
               " flag mismatches\n",
               d->name, s.bias, lab, res->code_mm, res->flag_mm);
        for (int i = 0; i < res->nex && i < o->max_show; i++) {
            const example *e = &res->ex[i];
            char fe[5], fg[5];
            dj_cf_flags_str(e->exp_flags, fe);
            dj_cf_flags_str(e->got_flags, fg);
            if (e->kind == 2)
                printf("  flag mismatch over all codes: expected %s, got %s\n", fe, fg);
            else
                printf("  %s mismatch: code 0x%02" PRIx32 ": expected bf16 0x%04" PRIx32
                       " flags %s, got 0x%04" PRIx32 " flags %s\n",
                       e->kind == 0 ? "value" : "flag", e->bits, e->exp_code, fe, e->got_code,
                       e->kind == 0 ? "-" : fg);
        }
        mism += (long long)(res->code_mm + res->flag_mm);
        free(res);
    }
    fflush(stdout);
    return mism;
}

/* ---- command line ---- */

static void usage(FILE *fp)
{
    fputs("usage: cfloat_exhaustive [OPTIONS]\n"
          "\n"
          "Checks the bulk conversion path (dj_cf_encode_array_isa) against the scalar\n"
          "reference (dj_cf_encode) over all 2^32 float32 bit patterns: codes element by\n"
          "element, flags per chunk (OR of the reference's flags vs the bulk call's).\n"
          "Then checks decode of every code, and for 8-bit formats bf16 <-> format.\n"
          "\n"
          "options:\n"
          "  --format F        one format (default: cfloat8_1_4_3 bias 7, cfloat8_1_5_2 15,\n"
          "                    shp 15, uhp 31, e4m3 7, e5m2 15, bf16 127)\n"
          "  --bias B          its bias (default: the format's default bias)\n"
          "  --rounding M      nearest, stochastic or both (default both)\n"
          "  --isa I[,I...]    generic, avx2, avx512 or all (default: all the CPU supports)\n"
          "  --threads N       worker threads (default: the online CPUs)\n"
          "  --seed S          stochastic-rounding seed (default 0x5eed)\n"
          "  --start BITS      first float32 bit pattern (default 0)\n"
          "  --count N         number of bit patterns (default 2^32 = 4294967296)\n"
          "  --chunk N         elements per bulk call and flag comparison (default 65536)\n"
          "  --show N          mismatches printed per line (default 8)\n"
          "  --encode-only     skip the decode and bf16 checks\n"
          "  --progress        progress on stderr even when it is not a terminal (a line\n"
          "                    every 30 s; on a terminal it is updated every second)\n"
          "  --help            this text\n"
          "\n"
          "Exit status: 0 if everything matches, 1 on any mismatch or failure, 2 for a\n"
          "bad command line.\n",
          fp);
}

static int usage_err(const char *fmt, const char *arg)
{
    fprintf(stderr, PROG ": ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, " (try '" PROG " --help')\n");
    return 2;
}

static int parse_u64(const char *s, uint64_t *out)
{
    if (!s || !*s || *s == '-' || *s == '+')
        return -1;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 0);
    if (*end || errno == ERANGE)
        return -1;
    *out = (uint64_t)v;
    return 0;
}

static int add_isa_list(options *o, const char *list)
{
    char buf[64];
    if (strlen(list) >= sizeof buf)
        return -1;
    strcpy(buf, list);
    o->nisa = 0;
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (strcmp(t, "all") == 0) {
            o->nisa = 0;
            for (int i = DJ_ISA_GENERIC; i < DJ_ISA_COUNT; i++)
                if (dj_cpu_supports((dj_isa)i))
                    o->isas[o->nisa++] = (dj_isa)i;
            continue;
        }
        dj_isa isa;
        if (dj_isa_from_name(t, &isa) != 0 || isa == DJ_ISA_AUTO)
            return -1;
        if (!dj_cpu_supports(isa))
            return -2;
        int dup = 0;
        for (int i = 0; i < o->nisa; i++)
            dup |= o->isas[i] == isa;
        if (!dup && o->nisa < DJ_ISA_COUNT)
            o->isas[o->nisa++] = isa;
    }
    return o->nisa ? 0 : -1;
}

static int parse_args(int argc, char **argv, options *o)
{
    int have_format = 0, have_bias = 0;
    long bias = 0;
    dj_format fmt = DJ_FMT_CF8_143;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = NULL;
        char name[32];
        const char *eq = strchr(a, '=');
        size_t nl = eq ? (size_t)(eq - a) : strlen(a);
        if (nl >= sizeof name)
            return usage_err("unknown option '%s'", a);
        memcpy(name, a, nl);
        name[nl] = '\0';
        if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0) {
            usage(stdout);
            return 0;
        }
        if (strcmp(name, "--encode-only") == 0 || strcmp(name, "--progress") == 0) {
            if (eq)
                return usage_err("option '%s' takes no value", name);
            if (name[2] == 'e')
                o->small = 0;
            else
                o->progress = 1;
            continue;
        }
        static const char *const with_value[] = {"--format", "--bias",  "--rounding", "--isa",
                                                 "--threads", "--seed", "--start",    "--count",
                                                 "--chunk",   "--show"};
        int known = 0;
        for (size_t k = 0; k < sizeof with_value / sizeof with_value[0]; k++)
            known |= strcmp(name, with_value[k]) == 0;
        if (!known)
            return usage_err(a[0] == '-' ? "unknown option '%s'" : "unexpected argument '%s'", a);
        if (eq)
            v = eq + 1;
        else if (i + 1 < argc)
            v = argv[++i];
        else
            return usage_err("option '%s' needs a value", name);
        uint64_t u;
        if (strcmp(name, "--format") == 0) {
            if (dj_format_from_name(v, &fmt) != 0)
                return usage_err("unknown format '%s' (valid: cfloat8_1_4_3, cfloat8_1_5_2, shp, "
                                 "uhp, e4m3, e5m2, bf16)",
                                 v);
            have_format = 1;
        } else if (strcmp(name, "--bias") == 0) {
            char *end;
            errno = 0;
            bias = strtol(v, &end, 10);
            if (!*v || *end || errno)
                return usage_err("bad --bias '%s' (expected an integer)", v);
            have_bias = 1;
        } else if (strcmp(name, "--rounding") == 0) {
            if (strcmp(v, "nearest") == 0) {
                o->modes[0] = 1;
                o->modes[1] = 0;
            } else if (strcmp(v, "stochastic") == 0) {
                o->modes[0] = 0;
                o->modes[1] = 1;
            } else if (strcmp(v, "both") == 0) {
                o->modes[0] = o->modes[1] = 1;
            } else {
                return usage_err("bad --rounding '%s' (valid: nearest, stochastic, both)", v);
            }
        } else if (strcmp(name, "--isa") == 0) {
            int rc = add_isa_list(o, v);
            if (rc == -2)
                return usage_err("this CPU does not support every ISA in '%s'", v);
            if (rc)
                return usage_err("bad --isa '%s' (valid: generic, avx2, avx512, all; a "
                                 "comma-separated list is allowed)",
                                 v);
        } else if (strcmp(name, "--threads") == 0) {
            if (parse_u64(v, &u) || u < 1 || u > 1024)
                return usage_err("bad --threads '%s' (expected 1..1024)", v);
            o->threads = (int)u;
        } else if (strcmp(name, "--seed") == 0) {
            if (parse_u64(v, &o->seed))
                return usage_err("bad --seed '%s' (expected an unsigned integer)", v);
        } else if (strcmp(name, "--start") == 0) {
            if (parse_u64(v, &o->start) || o->start > 0xffffffffULL)
                return usage_err("bad --start '%s' (expected a bit pattern 0..0xffffffff)", v);
        } else if (strcmp(name, "--count") == 0) {
            if (parse_u64(v, &o->count) || o->count < 1 || o->count > 0x100000000ULL)
                return usage_err("bad --count '%s' (expected 1..4294967296)", v);
        } else if (strcmp(name, "--chunk") == 0) {
            if (parse_u64(v, &u) || u < 1 || u > (1u << 24))
                return usage_err("bad --chunk '%s' (expected 1..16777216)", v);
            o->chunk = (uint32_t)u;
        } else if (strcmp(name, "--show") == 0) {
            if (parse_u64(v, &u) || u > MAX_EXAMPLES)
                return usage_err("bad --show '%s' (expected 0..64)", v);
            o->max_show = (int)u;
        }
    }
    if (have_bias && !have_format)
        return usage_err("%s needs --format", "--bias");
    if (have_format) {
        const dj_format_desc *d = dj_format_desc_of(fmt);
        int b = have_bias ? (int)bias : d->bias_default;
        if (!have_bias)
            for (size_t k = 0; k < sizeof g_default_sel / sizeof g_default_sel[0]; k++)
                if (g_default_sel[k].f == fmt)
                    b = g_default_sel[k].bias;
        if (bias < -1000 || bias > 1000 || !dj_format_bias_ok(fmt, b)) {
            char msg[128];
            snprintf(msg, sizeof msg, "bias %d is not allowed for %s (allowed: %d..%d)", b,
                     d->name, d->bias_min, d->bias_max);
            return usage_err("%s", msg);
        }
        o->nsel = 1;
        o->sels[0] = (sel){fmt, b};
    }
    if (o->start + o->count > 0x100000000ULL)
        return usage_err("%s: --start + --count exceeds 2^32", "range");
    return -1; /* go on */
}

int main(int argc, char **argv)
{
    options o;
    memset(&o, 0, sizeof o);
    o.nsel = (int)(sizeof g_default_sel / sizeof g_default_sel[0]);
    memcpy(o.sels, g_default_sel, sizeof g_default_sel);
    o.modes[0] = o.modes[1] = 1;
    for (int i = DJ_ISA_GENERIC; i < DJ_ISA_COUNT; i++)
        if (dj_cpu_supports((dj_isa)i))
            o.isas[o.nisa++] = (dj_isa)i;
    long nproc = sysconf(_SC_NPROCESSORS_ONLN);
    o.threads = nproc > 0 ? (int)nproc : 1;
    o.count = 0x100000000ULL;
    o.chunk = 65536;
    o.seed = DEFAULT_SEED;
    o.max_show = MAX_SHOW_DEFAULT;
    o.small = 1;
    int rc = parse_args(argc, argv, &o);
    if (rc >= 0)
        return rc;

    printf("cfloat_exhaustive: %d threads, ISAs", o.threads);
    for (int k = 0; k < o.nisa; k++)
        printf(" %s", dj_isa_name(o.isas[k]));
    printf(" (best %s), inputs 0x%08" PRIx64 "..0x%08" PRIx64 ", chunks of %" PRIu32
           ", stochastic seed 0x%" PRIx64 "\n",
           dj_isa_name(dj_cpu_best_isa()), o.start, o.start + o.count - 1, o.chunk, o.seed);
    fflush(stdout);

    const double t0 = now_s();
    long long total = 0;
    int failed = 0;
    for (int i = 0; i < o.nsel && !failed; i++) {
        for (int m = 0; m < 2 && !failed; m++) {
            if (!o.modes[m])
                continue;
            long long r = run_pass(&o, o.sels[i], (dj_rounding)m);
            if (r < 0)
                failed = 1;
            else
                total += r;
        }
        if (o.small && !failed) {
            long long r = check_decode(&o, o.sels[i]);
            long long r2 = r < 0 ? 0 : check_bf16(&o, o.sels[i]);
            if (r < 0 || r2 < 0)
                failed = 1;
            else
                total += r + r2;
        }
    }
    printf("cfloat_exhaustive: %s: %lld mismatches, %.1f s\n",
           failed ? "FAILED" : total ? "MISMATCHES" : "all match", total, now_s() - t0);
    return failed || total ? 1 : 0;
}
