/* bench_cfloat.c - `dojo bench cfloat`: throughput of the number-format
 * conversions, each beside the throughput of copying the same source bytes.
 *
 * For every format (at one bias) and every direction
 *     encode_rn    float32 -> format, round to nearest
 *     encode_sr    float32 -> format, stochastic rounding
 *     decode       format  -> float32
 *     bf16_encode  bf16    -> 8-bit format, round to nearest (dj_cf_encode_bf16_array)
 *     bf16_decode  8-bit format -> bf16 (dj_cf_decode_to_bf16_array)
 * it times the scalar reference (a loop over dj_cf_encode / dj_cf_decode) and
 * the bulk path on every instruction set the CPU supports
 * (dj_cf_encode_array_isa / dj_cf_decode_array_isa). The bf16 routines have
 * no per-ISA entry point, so their bulk path is "auto" (the ISA chosen by
 * dj_cpu_best_isa(), which DOJO_ISA caps). Beside each direction it times
 * memcpy of the same source array into a buffer of the same size, in the
 * same run and interleaved with the conversions, and reports each path's
 * speed as a ratio to that copy.
 *
 * Method. Single thread. Buffers are allocated and touched before any timing;
 * a timed sample is `iters` back-to-back calls (iters calibrated so that a
 * sample lasts at least ~50 ms), timed with clock_gettime(CLOCK_MONOTONIC);
 * each figure is the best (fastest) of --repeat samples, or with --stat
 * median the median (both are in the JSON lines). Each sample also records
 * the thread's CPU time (CLOCK_THREAD_CPUTIME_ID), so that a figure disturbed
 * by other load on the machine (the thread had < 90% of a CPU) is marked, and
 * --clock cpu computes the figures from CPU time instead, for a busy machine.
 * Outputs are hashed outside the timed region; the bulk paths must give the same
 * codes/values and flags as the scalar reference (the library's contract),
 * so a difference is reported and makes the exit status 1.
 *
 * Input data (deterministic, fixed seed): float32 values with a random sign
 * (positive only for unsigned formats), an exponent uniform over the binades
 * from 4x below the format's smallest positive value to 2x above its largest
 * (clamped to float32 normals), and a random mantissa; 1 in 256 elements is
 * a special (+-0, +-Inf, +-NaN; for unsigned formats also a negative number),
 * and 1 in 65536 a float32 subnormal (--data binades, the default: every
 * range and path of the converters, rare cases far more often than in real
 * tensors). --data gauss: standard normal values (Box-Muller, same seed), as
 * a layer's weights or activations look to the converter, at the bias that
 * training picks for their largest magnitude (dj_cf_bias_for_amax; formats
 * with a fixed bias keep it; --bias overrides). Decode sources are those
 * values encoded to nearest; bf16 sources are their upper 16 bits. */
#define _POSIX_C_SOURCE 200809L

#include "bench_cfloat.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "dojo/cfloat.h"
#include "dojo/cpu.h"

#define CMD "bench cfloat"
#define MIN_SAMPLE_S 0.05
#define SEED 0x5eedcf10a7ULL

typedef enum { DIR_ENC_RN, DIR_ENC_SR, DIR_DEC, DIR_BF16_ENC, DIR_BF16_DEC, DIR_COUNT } direction;

static const char *const dir_names[DIR_COUNT] = {"encode_rn", "encode_sr", "decode", "bf16_encode",
                                                 "bf16_decode"};
static const char *const dir_titles[DIR_COUNT] = {"f32->fmt rn", "f32->fmt sr", "fmt->f32",
                                                  "bf16->fmt rn", "fmt->bf16"};

/* A path: the copy baseline, the scalar reference, or a bulk ISA. */
enum { PATH_COPY = -2, PATH_SCALAR = -1 };
/* other values: a dj_isa (DJ_ISA_AUTO for the bf16 routines) */

#define MAX_PATHS 8

typedef struct {
    dj_format f;
    int bias;
    int code_bytes; /* 1 or 2 */
    size_t n;
    float *x;          /* float32 source */
    uint16_t *xb;      /* bf16 source */
    void *codes;       /* code source (decode) */
    void *out_codes;   /* encode destination */
    float *out_f32;    /* decode destination */
    uint16_t *out_bf16;/* bf16_decode destination */
    void *copy_dst;    /* memcpy destination */
    dj_round rn, sr;
} bench_ctx;

typedef struct {
    double wall, cpu; /* per call: CLOCK_MONOTONIC and this thread's CPU time */
} sample;

typedef struct {
    int path;
    char name[24];
    size_t iters;
    sample *samples;
    double median_s, best_s; /* per call */
    double stat_s;           /* the one reported: best or median */
    double cpu_share;        /* CPU time / wall time of that sample */
    unsigned flags;
    uint64_t checksum;
    int differs;
} path_result;

typedef struct {
    int json, verbose;
    size_t n;
    int repeat;
    int use_median; /* report the median sample instead of the best */
    int use_cpu;    /* figures from thread CPU time instead of wall time */
    int path_on[DJ_ISA_COUNT + 1]; /* [0] scalar, [1 + isa] bulk isa (AUTO for bf16) */
    int dir_on[DIR_COUNT];
    int nfmt;
    dj_format fmts[DJ_FMT_COUNT];
    int bias_given, bias;
    int gauss; /* --data gauss */
} bench_opts;

/* ---- small helpers ---- */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double thread_cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* The 1-minute load average, or -1. */
static double load_avg(void)
{
    double v = -1;
    FILE *fp = fopen("/proc/loadavg", "r");
    if (fp) {
        if (fscanf(fp, "%lf", &v) != 1)
            v = -1;
        fclose(fp);
    }
    return v;
}

/* Keeps the compiler from assuming anything about memory behind p. */
static void clobber(void *p)
{
#if defined(__GNUC__) || defined(__clang__)
    __asm__ volatile("" : : "r"(p) : "memory");
#else
    (void)p;
#endif
}

static uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t hash_bytes(const void *p, size_t nbytes)
{
    const unsigned char *b = p;
    uint64_t h = 0xcbf29ce484222325ULL ^ nbytes;
    size_t i = 0;
    for (; i + 8 <= nbytes; i += 8) {
        uint64_t w;
        memcpy(&w, b + i, 8);
        h = (h ^ w) * 0x100000001b3ULL;
        h ^= h >> 29;
    }
    for (; i < nbytes; i++)
        h = (h ^ b[i]) * 0x100000001b3ULL;
    return h;
}

static int g_sort_cpu; /* cmp_sample's key: 0 wall, 1 cpu */

static int cmp_sample(const void *a, const void *b)
{
    const sample *p = a, *q = b;
    double x = g_sort_cpu ? p->cpu : p->wall, y = g_sort_cpu ? q->cpu : q->wall;
    return (x > y) - (x < y);
}

static double key_of(const sample *sm, int cpu)
{
    return cpu ? sm->cpu : sm->wall;
}

static void *alloc_touched(size_t bytes)
{
    size_t sz = (bytes + 63) / 64 * 64;
    if (sz == 0)
        sz = 64;
    void *p = aligned_alloc(64, sz);
    if (p)
        memset(p, 0x5a, sz);
    return p;
}

/* The "model name" line of /proc/cpuinfo, or "unknown". */
static void cpu_model(char *buf, size_t size)
{
    snprintf(buf, size, "unknown");
    FILE *fp = fopen("/proc/cpuinfo", "r");
    if (!fp)
        return;
    char line[512];
    while (fgets(line, sizeof line, fp)) {
        if (strncmp(line, "model name", 10) == 0) {
            char *c = strchr(line, ':');
            if (c) {
                c++;
                while (*c == ' ' || *c == '\t')
                    c++;
                size_t l = strcspn(c, "\r\n");
                snprintf(buf, size, "%.*s", (int)l, c);
            }
            break;
        }
    }
    fclose(fp);
}

/* Size of the level-3 cache of CPU 0 in bytes (from sysfs), or 0. */
static size_t l3_bytes(void)
{
    for (int i = 0; i < 8; i++) {
        char path[96], buf[64];
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/level", i);
        FILE *fp = fopen(path, "r");
        if (!fp)
            continue;
        int level = 0;
        if (fscanf(fp, "%d", &level) != 1)
            level = 0;
        fclose(fp);
        if (level != 3)
            continue;
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/size", i);
        fp = fopen(path, "r");
        if (!fp)
            return 0;
        size_t v = 0;
        if (fgets(buf, sizeof buf, fp)) {
            char *end;
            v = (size_t)strtoull(buf, &end, 10);
            if (*end == 'K')
                v <<= 10;
            else if (*end == 'M')
                v <<= 20;
        }
        fclose(fp);
        return v;
    }
    return 0;
}

static void json_str(FILE *fp, const char *s)
{
    fputc('"', fp);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(fp, "\\%c", c);
        else if (c < 0x20 || c == 0x7f)
            fprintf(fp, "\\u%04x", c);
        else
            fputc(c, fp);
    }
    fputc('"', fp);
}

/* ---- input data ---- */

/* --data gauss: N(0, 1) values; the bias from their largest magnitude
 * unless given (bias_given) or fixed by the format. */
static void make_gauss(bench_ctx *c, int bias_given)
{
    const dj_format_desc *d = dj_format_desc_of(c->f);
    uint64_t s = SEED ^ ((uint64_t)c->f << 32);
    float amax = 0.0f;
    for (size_t i = 0; i < c->n; i++) {
        const double u1 = ((double)(splitmix64(&s) >> 11) + 1.0) / 9007199254740993.0;
        const double u2 = (double)(splitmix64(&s) >> 11) / 9007199254740992.0;
        float v = (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
        if (d->sign_bits == 0)
            v = fabsf(v);
        c->x[i] = v;
        amax = fabsf(v) > amax ? fabsf(v) : amax;
        uint32_t u;
        memcpy(&u, &v, 4);
        c->xb[i] = (uint16_t)(u >> 16);
    }
    int b;
    if (!bias_given && d->bias_min != d->bias_max && dj_cf_bias_for_amax(c->f, amax, 0, &b) == DJ_OK)
        c->bias = b;
}

static void make_data(bench_ctx *c, int gauss, int bias_given)
{
    if (gauss) {
        make_gauss(c, bias_given);
        unsigned fl = 0;
        dj_cf_encode_array(c->f, c->bias, c->x, c->codes, c->n, c->rn, 0, &fl);
        return;
    }
    const dj_format_desc *d = dj_format_desc_of(c->f);
    double lo = dj_format_min_denormal(c->f, c->bias);
    if (lo == 0)
        lo = dj_format_min_normal(c->f, c->bias);
    int elo = (int)floor(log2(lo)) - 2, ehi = (int)ceil(log2(dj_format_max(c->f, c->bias))) + 1;
    if (elo < -126)
        elo = -126;
    if (ehi > 127)
        ehi = 127;
    if (ehi < elo)
        ehi = elo;
    const uint32_t span = (uint32_t)(ehi - elo + 1);
    const int is_signed = d->sign_bits != 0;
    static const uint32_t specials[] = {0x00000000u, 0x80000000u, 0x7f800000u,
                                        0xff800000u, 0x7fc00000u, 0xffc00000u};
    uint64_t s = SEED ^ ((uint64_t)c->f << 32) ^ (uint64_t)c->bias;
    for (size_t i = 0; i < c->n; i++) {
        uint64_t r = splitmix64(&s);
        uint32_t u;
        if ((r & 0xff) == 0) {
            uint32_t k = (uint32_t)(r >> 8) % (is_signed ? 6u : 7u);
            u = k < 6 ? specials[k] : 0xbf800000u; /* -1 into an unsigned format */
        } else if (((r >> 8) & 0xffff) == 0) {
            u = (uint32_t)(r >> 32) & 0x807fffffu;
            if ((u & 0x7fffffu) == 0)
                u |= 1;
        } else {
            uint32_t e = (uint32_t)(elo + (int)((uint32_t)(r >> 24) % span)) + 127u;
            u = (e << 23) | ((uint32_t)(r >> 40) & 0x7fffffu);
            if (is_signed && (r & 0x100))
                u |= 0x80000000u;
        }
        memcpy(&c->x[i], &u, 4);
        c->xb[i] = (uint16_t)(u >> 16);
    }
    unsigned fl = 0;
    dj_cf_encode_array(c->f, c->bias, c->x, c->codes, c->n, c->rn, 0, &fl);
}

/* ---- one call of one path ---- */

static size_t src_bytes(const bench_ctx *c, direction d)
{
    switch (d) {
    case DIR_ENC_RN:
    case DIR_ENC_SR: return 4;
    case DIR_DEC: return (size_t)c->code_bytes;
    case DIR_BF16_ENC: return 2;
    default: return 1;
    }
}

static void *out_buf(const bench_ctx *c, direction d, int path, size_t *bytes)
{
    if (path == PATH_COPY) {
        *bytes = c->n * src_bytes(c, d);
        return c->copy_dst;
    }
    switch (d) {
    case DIR_ENC_RN:
    case DIR_ENC_SR: *bytes = c->n * (size_t)c->code_bytes; return c->out_codes;
    case DIR_DEC: *bytes = c->n * 4; return c->out_f32;
    case DIR_BF16_ENC: *bytes = c->n; return c->out_codes;
    default: *bytes = c->n * 2; return c->out_bf16;
    }
}

static const void *src_buf(const bench_ctx *c, direction d)
{
    switch (d) {
    case DIR_ENC_RN:
    case DIR_ENC_SR: return c->x;
    case DIR_BF16_ENC: return c->xb;
    default: return c->codes;
    }
}

static dj_status scalar_run(const bench_ctx *c, direction d, unsigned *flags)
{
    const dj_format f = c->f;
    const int bias = c->bias;
    const size_t n = c->n;
    unsigned fl = 0;
    switch (d) {
    case DIR_ENC_RN:
    case DIR_ENC_SR: {
        const dj_round r = d == DIR_ENC_RN ? c->rn : c->sr;
        if (c->code_bytes == 1) {
            uint8_t *o = c->out_codes;
            for (size_t i = 0; i < n; i++)
                o[i] = (uint8_t)dj_cf_encode(f, bias, c->x[i], r, i, &fl);
        } else {
            uint16_t *o = c->out_codes;
            for (size_t i = 0; i < n; i++)
                o[i] = (uint16_t)dj_cf_encode(f, bias, c->x[i], r, i, &fl);
        }
        break;
    }
    case DIR_DEC:
        if (c->code_bytes == 1) {
            const uint8_t *in = c->codes;
            for (size_t i = 0; i < n; i++)
                c->out_f32[i] = dj_cf_decode(f, bias, in[i], &fl);
        } else {
            const uint16_t *in = c->codes;
            for (size_t i = 0; i < n; i++)
                c->out_f32[i] = dj_cf_decode(f, bias, in[i], &fl);
        }
        break;
    case DIR_BF16_ENC: {
        uint8_t *o = c->out_codes;
        for (size_t i = 0; i < n; i++)
            o[i] = (uint8_t)dj_cf_encode(f, bias, dj_bf16_to_f32(c->xb[i]), c->rn, i, &fl);
        break;
    }
    default: {
        const uint8_t *in = c->codes;
        for (size_t i = 0; i < n; i++) {
            float v = dj_cf_decode(f, bias, in[i], &fl);
            uint32_t u;
            memcpy(&u, &v, 4);
            c->out_bf16[i] = (uint16_t)(u >> 16);
        }
        break;
    }
    }
    *flags = fl;
    return DJ_OK;
}

static dj_status run_once(const bench_ctx *c, direction d, int path, unsigned *flags)
{
    *flags = 0;
    if (path == PATH_COPY) {
        memcpy(c->copy_dst, src_buf(c, d), c->n * src_bytes(c, d));
        clobber(c->copy_dst);
        return DJ_OK;
    }
    if (path == PATH_SCALAR)
        return scalar_run(c, d, flags);
    const dj_isa isa = (dj_isa)path;
    switch (d) {
    case DIR_ENC_RN:
        return dj_cf_encode_array_isa(isa, c->f, c->bias, c->x, c->out_codes, c->n, c->rn, 0, flags);
    case DIR_ENC_SR:
        return dj_cf_encode_array_isa(isa, c->f, c->bias, c->x, c->out_codes, c->n, c->sr, 0, flags);
    case DIR_DEC:
        return dj_cf_decode_array_isa(isa, c->f, c->bias, c->codes, c->out_f32, c->n, flags);
    case DIR_BF16_ENC:
        dj_cf_encode_bf16_array(c->f, c->bias, c->xb, c->out_codes, c->n, c->rn, 0, flags);
        return DJ_OK;
    default:
        dj_cf_decode_to_bf16_array(c->f, c->bias, c->codes, c->out_bf16, c->n, flags);
        return DJ_OK;
    }
}

/* ---- measurement of one (format, direction) ---- */

typedef struct {
    const bench_opts *o;
    int rows, mismatches, noisy;
} bench_state;

static void path_name(int path, char *buf, size_t size)
{
    if (path == PATH_COPY)
        snprintf(buf, size, "memcpy");
    else if (path == PATH_SCALAR)
        snprintf(buf, size, "scalar");
    else if (path == DJ_ISA_AUTO)
        snprintf(buf, size, "auto(%s)", dj_isa_name(dj_cpu_best_isa()));
    else
        snprintf(buf, size, "%s", dj_isa_name((dj_isa)path));
}

static int measure_dir(bench_state *st, const bench_ctx *c, direction d)
{
    const bench_opts *o = st->o;
    path_result pr[MAX_PATHS];
    int np = 0;
    pr[np++].path = PATH_COPY;
    if (o->path_on[0])
        pr[np++].path = PATH_SCALAR;
    if (d == DIR_BF16_ENC || d == DIR_BF16_DEC) {
        if (o->path_on[1 + DJ_ISA_AUTO])
            pr[np++].path = DJ_ISA_AUTO;
    } else {
        for (int isa = DJ_ISA_GENERIC; isa < DJ_ISA_COUNT; isa++)
            if (o->path_on[1 + isa] && dj_cpu_supports((dj_isa)isa))
                pr[np++].path = isa;
    }
    if (np == 1)
        return 0;
    for (int k = 0; k < np; k++) {
        path_name(pr[k].path, pr[k].name, sizeof pr[k].name);
        pr[k].samples = malloc((size_t)o->repeat * sizeof(sample));
        if (!pr[k].samples) {
            dj_cli_err(CMD, "out of memory");
            for (int j = 0; j < k; j++)
                free(pr[j].samples);
            return -1;
        }
        pr[k].differs = 0;
    }

    /* Calibration: one call per path into a pre-filled output buffer (so an
     * element left unwritten shows in the hash), whose output is hashed. */
    unsigned cal_flags[MAX_PATHS];
    for (int k = 0; k < np; k++) {
        size_t ob;
        void *out = out_buf(c, d, pr[k].path, &ob);
        memset(out, 0xa5, ob);
        double t0 = now_s();
        dj_status s = run_once(c, d, pr[k].path, &cal_flags[k]);
        double t1 = now_s() - t0;
        pr[k].checksum = hash_bytes(out, ob);
        if (s != DJ_OK) {
            dj_cli_err(CMD, "%s %s on %s failed: %s", dj_format_desc_of(c->f)->name, dir_names[d],
                       pr[k].name, dj_status_str(s));
            for (int j = 0; j < np; j++)
                free(pr[j].samples);
            return -1;
        }
        double it = t1 > 0 ? ceil(MIN_SAMPLE_S / t1) : 1e6;
        pr[k].iters = it < 1 ? 1 : it > 1e7 ? 10000000 : (size_t)it;
    }
    /* Samples, the paths interleaved so that each sees the same conditions. */
    for (int rep = 0; rep < o->repeat; rep++) {
        for (int k = 0; k < np; k++) {
            unsigned fl = 0;
            const double c0 = thread_cpu_s(), t0 = now_s();
            for (size_t it = 0; it < pr[k].iters; it++)
                (void)run_once(c, d, pr[k].path, &fl);
            const double t1 = now_s(), c1 = thread_cpu_s();
            pr[k].samples[rep].wall = (t1 - t0) / (double)pr[k].iters;
            pr[k].samples[rep].cpu = (c1 - c0) / (double)pr[k].iters;
            pr[k].flags = fl;
        }
    }
    /* Statistics; the flags of every call must be the same. */
    int ref = np > 1 ? 1 : 0; /* the scalar path if it ran, else the first bulk path */
    for (int k = 0; k < np; k++) {
        g_sort_cpu = o->use_cpu;
        qsort(pr[k].samples, (size_t)o->repeat, sizeof(sample), cmp_sample);
        const sample *sm = pr[k].samples;
        const int mid = o->repeat / 2, uc = o->use_cpu;
        pr[k].best_s = key_of(&sm[0], uc);
        pr[k].median_s = o->repeat % 2 ? key_of(&sm[mid], uc)
                                       : (key_of(&sm[mid - 1], uc) + key_of(&sm[mid], uc)) / 2;
        pr[k].stat_s = o->use_median ? pr[k].median_s : pr[k].best_s;
        const sample *rs = o->use_median ? &sm[mid] : &sm[0];
        pr[k].cpu_share = rs->wall > 0 ? rs->cpu / rs->wall : 1;
        if (cal_flags[k] != pr[k].flags)
            pr[k].differs = 1;
    }
    for (int k = 1; k < np; k++) {
        if (k != ref && (pr[k].checksum != pr[ref].checksum || pr[k].flags != pr[ref].flags))
            pr[k].differs = 1;
        if (pr[k].differs)
            st->mismatches++;
    }

    const dj_format_desc *fd = dj_format_desc_of(c->f);
    const double sb = (double)src_bytes(c, d);
    const double copy_eps = (double)c->n / pr[0].stat_s;
    for (int k = 0; k < np; k++) {
        const double eps = (double)c->n / pr[k].stat_s;
        const double ratio = eps / copy_eps;
        char fb[5];
        dj_cf_flags_str(pr[k].flags, fb);
        size_t ob;
        (void)out_buf(c, d, pr[k].path, &ob);
        st->rows++;
        if (pr[k].cpu_share < 0.9)
            st->noisy++;
        if (o->json) {
            printf("{\"type\":\"measurement\",\"format\":");
            json_str(stdout, fd->name);
            printf(",\"bias\":%d,\"direction\":\"%s\",\"path\":", c->bias, dir_names[d]);
            json_str(stdout, pr[k].name);
            printf(",\"n\":%zu,\"src_bytes_per_elem\":%d,\"dst_bytes_per_elem\":%d,"
                   "\"repeat\":%d,\"iters\":%zu,\"median_s\":%.6e,\"best_s\":%.6e,"
                   "\"statistic\":\"%s\",\"clock\":\"%s\",\"melem_per_s\":%.4f,\"gb_per_s\":%.4f,"
                   "\"copy_melem_per_s\":%.4f,\"ratio_to_copy\":%.6f,\"cpu_share\":%.3f,",
                   c->n, (int)sb, (int)(ob / c->n), o->repeat, pr[k].iters, pr[k].median_s,
                   pr[k].best_s, o->use_median ? "median" : "best", o->use_cpu ? "cpu" : "wall",
                   eps / 1e6, eps * sb / 1e9,
                   copy_eps / 1e6, ratio, pr[k].cpu_share);
            printf("\"flags\":\"%s\",\"checksum\":\"0x%016llx\",\"matches_reference\":%s}\n", fb,
                   (unsigned long long)pr[k].checksum,
                   k == 0 || !pr[k].differs ? "true" : "false");
        } else {
            const char *chk = k == 0 ? "" : k == ref ? "ref" : pr[k].differs ? "DIFFERS" : "same";
            printf("%-14s %4d  %-12s %-12s %9.1f %8.2f %9.4f%c  %-5s %s", fd->name, c->bias,
                   dir_titles[d], pr[k].name, eps / 1e6, eps * sb / 1e9, ratio,
                   pr[k].cpu_share < 0.9 ? '*' : ' ', k == 0 ? "" : fb, chk);
            if (o->verbose)
                printf("  iters=%zu best=%.1f median=%.1f Melem/s cpu=%.0f%% hash=%016llx",
                       pr[k].iters, (double)c->n / pr[k].best_s / 1e6,
                       (double)c->n / pr[k].median_s / 1e6, 100 * pr[k].cpu_share,
                       (unsigned long long)pr[k].checksum);
            putchar('\n');
        }
    }
    fflush(stdout);
    for (int k = 0; k < np; k++)
        free(pr[k].samples);
    return 0;
}

/* ---- options ---- */

static void usage(FILE *fp)
{
    fputs("usage: dojo bench cfloat [OPTIONS]\n"
          "\n"
          "Single-threaded throughput of the number-format conversions, in elements/s,\n"
          "for each direction and path, beside memcpy of the same source bytes in the\n"
          "same run (ratio = conversion elements/s / memcpy elements/s).\n"
          "\n"
          "directions: encode_rn (float32 -> format, nearest), encode_sr (stochastic),\n"
          "  decode (format -> float32), bf16_encode (bf16 -> 8-bit format, nearest),\n"
          "  bf16_decode (8-bit format -> bf16)\n"
          "paths: scalar (loop over dj_cf_encode/dj_cf_decode), generic, avx2, avx512\n"
          "  (dj_cf_*_array_isa, those the CPU supports); the bf16 directions have one\n"
          "  bulk path, auto (the best ISA; DOJO_ISA caps it)\n"
          "\n"
          "options:\n"
          "  --format F[,F...]  formats to measure (default: all, at their default bias)\n"
          "  --bias B           bias (must be allowed for every format given)\n"
          "  --data D           binades (default): exponents uniform over every binade\n"
          "                     of the format and around it, with specials and float32\n"
          "                     subnormals (every path of the converters); gauss:\n"
          "                     standard normal values at the bias training would pick\n"
          "                     for their largest magnitude (--bias overrides)\n"
          "  --n N              elements per call (default 16M = 16777216, whose arrays\n"
          "                     exceed a 32 MiB L3; use e.g. --n 64K for in-cache\n"
          "                     figures); suffixes K, M (powers of 2)\n"
          "  --repeat R         timed samples per figure (default 3)\n"
          "  --stat best|median which sample is reported: the fastest (default; least\n"
          "                     disturbed by other load) or the median\n"
          "  --clock wall|cpu   time samples with CLOCK_MONOTONIC (default) or with the\n"
          "                     thread's CPU time (for a machine busy with other work)\n"
          "  --direction D[,D]  directions to run (default: all)\n"
          "  --path P[,P...]    paths to run: scalar, generic, avx2, avx512, auto, bulk\n"
          "                     (= all bulk paths) (default: all)\n"
          "  --json             one JSON object per line per measurement, then a summary\n"
          "  --verbose          also print sample counts, best figures and output hashes\n"
          "  --help             this text\n"
          "\n"
          "A default run takes minutes, mostly in the scalar reference (hundreds of ns\n"
          "per element); --path bulk leaves it out.\n"
          "\n"
          "Exit status: 0, 1 if a bulk path's output or flags differ from the scalar\n"
          "reference (or a conversion fails), 2 for a bad command line.\n",
          fp);
}

static int parse_count(const char *s, size_t *out)
{
    char buf[64];
    size_t l = strlen(s);
    if (l == 0 || l >= sizeof buf)
        return -1;
    memcpy(buf, s, l + 1);
    unsigned shift = 0;
    if (buf[l - 1] == 'K' || buf[l - 1] == 'k')
        shift = 10;
    else if (buf[l - 1] == 'M' || buf[l - 1] == 'm')
        shift = 20;
    else if (buf[l - 1] == 'G' || buf[l - 1] == 'g')
        shift = 30;
    if (shift)
        buf[l - 1] = '\0';
    long long v;
    if (dj_parse_int(buf, 1, (1LL << 34) >> shift, &v) != 0)
        return -1;
    *out = (size_t)v << shift;
    return 0;
}

/* Splits a comma-separated list, calling fn on each item; -1 on an empty item. */
static int each_item(const char *list, int (*fn)(const char *, void *), void *arg)
{
    char item[64];
    const char *p = list;
    for (;;) {
        size_t l = strcspn(p, ",");
        if (l == 0 || l >= sizeof item)
            return -1;
        memcpy(item, p, l);
        item[l] = '\0';
        if (fn(item, arg))
            return -1;
        if (p[l] == '\0')
            return 0;
        p += l + 1;
    }
}

static int add_format(const char *name, void *arg)
{
    bench_opts *o = arg;
    dj_format f;
    if (dj_format_from_name(name, &f) != 0)
        return -1;
    for (int i = 0; i < o->nfmt; i++)
        if (o->fmts[i] == f)
            return 0;
    o->fmts[o->nfmt++] = f;
    return 0;
}

static int add_direction(const char *name, void *arg)
{
    bench_opts *o = arg;
    for (int d = 0; d < DIR_COUNT; d++)
        if (strcmp(name, dir_names[d]) == 0) {
            o->dir_on[d] = 1;
            return 0;
        }
    return -1;
}

static int add_path(const char *name, void *arg)
{
    bench_opts *o = arg;
    if (strcmp(name, "scalar") == 0) {
        o->path_on[0] = 1;
        return 0;
    }
    if (strcmp(name, "bulk") == 0) {
        for (int i = 0; i < DJ_ISA_COUNT; i++)
            if (dj_cpu_supports((dj_isa)i))
                o->path_on[1 + i] = 1;
        return 0;
    }
    dj_isa isa;
    if (dj_isa_from_name(name, &isa) != 0)
        return -1;
    o->path_on[1 + isa] = 1;
    return 0;
}

static void format_names(char *buf, size_t size)
{
    size_t o = 0;
    buf[0] = '\0';
    for (int f = 0; f < DJ_FMT_COUNT && o < size; f++)
        o += (size_t)snprintf(buf + o, size - o, "%s%s", f ? ", " : "", dj_format_desc_of((dj_format)f)->name);
}

static int parse_opts(int argc, char **argv, int first, bench_opts *o, int *exit_now)
{
    dj_opt_iter it;
    int rc;
    const char *paths = NULL;
    *exit_now = -1;
    dj_opt_init(&it, argc, argv, first);
    while ((rc = dj_opt_next(&it, CMD)) == DJ_OPT_MORE) {
        const char *v;
        if (dj_opt_is(&it, "--help")) {
            usage(stdout);
            *exit_now = DJ_EXIT_OK;
            return 0;
        } else if (dj_opt_is(&it, "--json") || dj_opt_is(&it, "--verbose")) {
            if (dj_opt_no_value(&it, CMD))
                return -1;
            if (dj_opt_is(&it, "--json"))
                o->json = 1;
            else
                o->verbose = 1;
        } else if (dj_opt_is(&it, "--format")) {
            if (!(v = dj_opt_value(&it, CMD)))
                return -1;
            if (each_item(v, add_format, o)) {
                char names[256];
                format_names(names, sizeof names);
                dj_cli_err(CMD, "bad --format '%s' (valid: %s; a comma-separated list is allowed)", v,
                           names);
                return -1;
            }
        } else if (dj_opt_is(&it, "--bias")) {
            long long b;
            if (!(v = dj_opt_value(&it, CMD)))
                return -1;
            if (dj_parse_int(v, 0, 1000, &b) != 0) {
                dj_cli_err(CMD, "bad --bias '%s' (expected an integer 0..63, or the format's fixed bias)", v);
                return -1;
            }
            o->bias_given = 1;
            o->bias = (int)b;
        } else if (dj_opt_is(&it, "--data")) {
            if (!(v = dj_opt_value(&it, CMD)))
                return -1;
            if (strcmp(v, "binades") != 0 && strcmp(v, "gauss") != 0) {
                dj_cli_err(CMD, "bad --data '%s' (expected binades or gauss)", v);
                return -1;
            }
            o->gauss = strcmp(v, "gauss") == 0;
        } else if (dj_opt_is(&it, "--n")) {
            if (!(v = dj_opt_value(&it, CMD)))
                return -1;
            if (parse_count(v, &o->n) != 0) {
                dj_cli_err(CMD, "bad --n '%s' (expected a count 1..2^34, optional suffix K or M)", v);
                return -1;
            }
        } else if (dj_opt_is(&it, "--repeat")) {
            long long r;
            if (!(v = dj_opt_value(&it, CMD)))
                return -1;
            if (dj_parse_int(v, 1, 1000, &r) != 0) {
                dj_cli_err(CMD, "bad --repeat '%s' (expected an integer 1..1000)", v);
                return -1;
            }
            o->repeat = (int)r;
        } else if (dj_opt_is(&it, "--stat")) {
            if (!(v = dj_opt_value(&it, CMD)))
                return -1;
            if (strcmp(v, "best") == 0)
                o->use_median = 0;
            else if (strcmp(v, "median") == 0)
                o->use_median = 1;
            else {
                dj_cli_err(CMD, "bad --stat '%s' (valid: best, median)", v);
                return -1;
            }
        } else if (dj_opt_is(&it, "--clock")) {
            if (!(v = dj_opt_value(&it, CMD)))
                return -1;
            if (strcmp(v, "wall") == 0)
                o->use_cpu = 0;
            else if (strcmp(v, "cpu") == 0)
                o->use_cpu = 1;
            else {
                dj_cli_err(CMD, "bad --clock '%s' (valid: wall, cpu)", v);
                return -1;
            }
        } else if (dj_opt_is(&it, "--direction")) {
            if (!(v = dj_opt_value(&it, CMD)))
                return -1;
            memset(o->dir_on, 0, sizeof o->dir_on);
            if (each_item(v, add_direction, o)) {
                dj_cli_err(CMD, "bad --direction '%s' (valid: encode_rn, encode_sr, decode, "
                                "bf16_encode, bf16_decode)", v);
                return -1;
            }
        } else if (dj_opt_is(&it, "--path")) {
            if (!(v = dj_opt_value(&it, CMD)))
                return -1;
            paths = v;
        } else {
            (void)dj_opt_unknown(&it, CMD);
            return -1;
        }
    }
    if (rc == DJ_OPT_ERROR)
        return -1;
    if (paths) {
        memset(o->path_on, 0, sizeof o->path_on);
        if (each_item(paths, add_path, o)) {
            dj_cli_err(CMD, "bad --path '%s' (valid: scalar, generic, avx2, avx512, auto, bulk)", paths);
            return -1;
        }
        for (int isa = DJ_ISA_GENERIC; isa < DJ_ISA_COUNT; isa++)
            if (o->path_on[1 + isa] && !dj_cpu_supports((dj_isa)isa)) {
                dj_cli_err(CMD, "this CPU does not support --path %s", dj_isa_name((dj_isa)isa));
                return -1;
            }
    }
    if (o->nfmt == 0) {
        if (o->bias_given) {
            dj_cli_err(CMD, "--bias needs --format (the formats' bias ranges differ)");
            return -1;
        }
        for (int f = 0; f < DJ_FMT_COUNT; f++)
            o->fmts[o->nfmt++] = (dj_format)f;
    }
    if (o->bias_given)
        for (int i = 0; i < o->nfmt; i++)
            if (!dj_format_bias_ok(o->fmts[i], o->bias)) {
                const dj_format_desc *d = dj_format_desc_of(o->fmts[i]);
                dj_cli_err(CMD, "bias %d is not allowed for %s (allowed: %d..%d)", o->bias, d->name,
                           d->bias_min, d->bias_max);
                return -1;
            }
    return 0;
}

/* ---- the benchmark ---- */

int dj_bench_cfloat(int argc, char **argv)
{
    bench_opts o;
    memset(&o, 0, sizeof o);
    o.n = (size_t)16 << 20;
    o.repeat = 3;
    for (int i = 0; i <= DJ_ISA_COUNT; i++)
        o.path_on[i] = 1;
    for (int d = 0; d < DIR_COUNT; d++)
        o.dir_on[d] = 1;
    /* argv holds the arguments after `dojo bench cfloat`; a leading "cfloat"
     * (the benchmark's own name, as subcommands receive it) is skipped. */
    int first = argc > 0 && argv[0] && strcmp(argv[0], "cfloat") == 0 ? 1 : 0;
    int exit_now;
    if (parse_opts(argc, argv, first, &o, &exit_now) != 0)
        return DJ_EXIT_USAGE;
    if (exit_now >= 0)
        return exit_now;

    const size_t n = o.n;
    bench_ctx c;
    memset(&c, 0, sizeof c);
    c.n = n;
    c.rn = (dj_round){DJ_ROUND_NEAREST, 0};
    c.sr = (dj_round){DJ_ROUND_STOCHASTIC, 0x1234abcdULL};
    c.x = alloc_touched(n * 4);
    c.xb = alloc_touched(n * 2);
    c.codes = alloc_touched(n * 2);
    c.out_codes = alloc_touched(n * 2);
    c.out_f32 = alloc_touched(n * 4);
    c.out_bf16 = alloc_touched(n * 2);
    c.copy_dst = alloc_touched(n * 4);
    int status = DJ_EXIT_OK;
    if (!c.x || !c.xb || !c.codes || !c.out_codes || !c.out_f32 || !c.out_bf16 || !c.copy_dst) {
        dj_cli_err(CMD, "out of memory for %zu elements (needs about %zu MiB)", n, (n * 20) >> 20);
        status = DJ_EXIT_DATA;
        goto done;
    }

    char cpu[256];
    cpu_model(cpu, sizeof cpu);
    const size_t l3 = l3_bytes();
    const dj_isa best = dj_cpu_best_isa();
    char isas[64] = "";
    for (int isa = DJ_ISA_GENERIC; isa < DJ_ISA_COUNT; isa++)
        if (dj_cpu_supports((dj_isa)isa)) {
            strcat(isas, isas[0] ? " " : "");
            strcat(isas, dj_isa_name((dj_isa)isa));
        }
    if (!o.json) {
        printf("dojo bench cfloat: CPU %s; ISAs %s; dj_cpu_best_isa() = %s\n", cpu, isas,
               dj_isa_name(best));
        printf("data: %s\n", o.gauss ? "gauss (standard normal, bias from the largest magnitude)"
                                      : "binades (every binade of the format, specials, subnormals)");
        printf("n = %zu elements per call, single thread, %s of %d samples (each >= %.0f ms), "
               "%s", n, o.use_median ? "median" : "best", o.repeat, MIN_SAMPLE_S * 1e3,
               o.use_cpu ? "thread CPU time" : "wall time");
        if (l3) {
            /* The smallest working set: an 8-bit code array and its bf16 image. */
            const size_t smallest = n * 3, largest = n * 6;
            printf("; L3 %zu MiB: ", l3 >> 20);
            if (smallest > l3)
                printf("every source+destination exceeds it\n");
            else if (largest <= l3)
                printf("every source+destination fits in it (in-cache figures)\n");
            else
                printf("some source+destination pairs fit in it\n");
        } else {
            putchar('\n');
        }
        const double la = load_avg();
        if (la >= 0)
            printf("load average %.2f at the start\n", la);
        printf("Melem/s and GB/s of source bytes; 'vs copy' = elem/s / elem/s of memcpy of the "
               "same source bytes;\n'*': this thread had < 90%% of a CPU during the sample "
               "(other load); 'check': bulk output and flags\nagainst the scalar reference\n\n");
        printf("%-14s %4s  %-12s %-12s %9s %8s %10s  %-5s %s\n", "format", "bias", "direction",
               "path", "Melem/s", "GB/s", "vs copy", "flags", "check");
    }

    bench_state st = {&o, 0, 0, 0};
    const double t_start = now_s();
    for (int i = 0; i < o.nfmt && status == DJ_EXIT_OK; i++) {
        const dj_format_desc *d = dj_format_desc_of(o.fmts[i]);
        c.f = o.fmts[i];
        c.bias = o.bias_given ? o.bias : d->bias_default;
        c.code_bytes = d->bits / 8;
        make_data(&c, o.gauss, o.bias_given);
        for (int dir = 0; dir < DIR_COUNT; dir++) {
            if (!o.dir_on[dir])
                continue;
            if ((dir == DIR_BF16_ENC || dir == DIR_BF16_DEC) && d->bits != 8)
                continue;
            if (measure_dir(&st, &c, (direction)dir) != 0) {
                status = DJ_EXIT_DATA;
                break;
            }
        }
    }
    const double total = now_s() - t_start;
    if (status == DJ_EXIT_OK && st.mismatches)
        status = DJ_EXIT_DATA;
    if (o.json) {
        printf("{\"type\":\"summary\",\"cpu\":");
        json_str(stdout, cpu);
        printf(",\"data\":\"%s\"", o.gauss ? "gauss" : "binades");
        printf(",\"isas\":\"%s\",\"best_isa\":\"%s\",\"l3_bytes\":%zu,\"n\":%zu,\"repeat\":%d,"
               "\"statistic\":\"%s\",\"clock\":\"%s\",\"measurements\":%d,\"mismatches\":%d,"
               "\"disturbed\":%d,\"load_average_end\":%.2f,\"total_s\":%.3f,\"ok\":%s}\n",
               isas, dj_isa_name(best), l3, n, o.repeat, o.use_median ? "median" : "best",
               o.use_cpu ? "cpu" : "wall",
               st.rows, st.mismatches, st.noisy, load_avg(), total,
               status == DJ_EXIT_OK ? "true" : "false");
    } else {
        printf("\n%d measurements in %.1f s, load average %.2f at the end", st.rows, total,
               load_avg());
        if (st.noisy)
            printf("; %d figures disturbed by other load (*)", st.noisy);
        if (st.mismatches)
            printf("; %d bulk paths DIFFER from the scalar reference", st.mismatches);
        putchar('\n');
    }
    fflush(stdout);
    if (st.mismatches)
        dj_cli_err(CMD, "%d bulk measurements gave outputs or flags different from the scalar "
                        "reference", st.mismatches);
done:
    free(c.x);
    free(c.xb);
    free(c.codes);
    free(c.out_codes);
    free(c.out_f32);
    free(c.out_bf16);
    free(c.copy_dst);
    return status;
}
