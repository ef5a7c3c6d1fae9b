/* bench_peer.c - what `dojo bench gemm` compares its figures with: the
 * machine's peak float32 rate, and OpenBLAS's sgemm loaded with dlopen (so
 * neither the build nor CI needs a BLAS).
 *
 * Peak per core = float32 lanes of the ISA in use (16 AVX-512, 8 AVX2, 4
 * SSE) x 2 (a fused multiply-add is two flops) x vector FMA units per core
 * x clock. The FMA units come from the vendor, family and model name in
 * /proc/cpuinfo by the rules in fma_units_of (each says why); the clock from
 * cpufreq's cpuinfo_max_freq, else /proc/cpuinfo's "cpu MHz", else the "@
 * x.xxGHz" of the model name. Both can be overridden. */
#define _GNU_SOURCE /* dladdr, realpath */

#include "bench_peer.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- /proc/cpuinfo ---- */

typedef struct {
    char vendor[32];
    char model_name[128];
    int family, model; /* -1 if absent */
    double mhz;        /* "cpu MHz", 0 if absent */
} cpuinfo;

/* The value after "key<spaces>:" on a line, or NULL. */
static const char *field(const char *line, const char *key)
{
    const size_t n = strlen(key);
    if (strncmp(line, key, n) != 0)
        return NULL;
    const char *p = line + n;
    while (*p == ' ' || *p == '\t')
        p++;
    if (*p != ':')
        return NULL;
    p++;
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

static void copy_value(char *dst, size_t size, const char *v)
{
    snprintf(dst, size, "%.*s", (int)strcspn(v, "\r\n"), v);
}

/* The first processor's block of /proc/cpuinfo. */
static void read_cpuinfo(cpuinfo *ci)
{
    memset(ci, 0, sizeof *ci);
    ci->family = ci->model = -1;
    FILE *fp = fopen("/proc/cpuinfo", "r");
    if (!fp)
        return;
    char line[1024];
    const char *v;
    while (fgets(line, sizeof line, fp)) {
        if (line[0] == '\n')
            break; /* end of the first processor */
        if ((v = field(line, "vendor_id")))
            copy_value(ci->vendor, sizeof ci->vendor, v);
        else if ((v = field(line, "model name")))
            copy_value(ci->model_name, sizeof ci->model_name, v);
        else if ((v = field(line, "cpu family")))
            ci->family = atoi(v);
        else if ((v = field(line, "model")))
            ci->model = atoi(v);
        else if ((v = field(line, "cpu MHz")))
            ci->mhz = atof(v);
    }
    fclose(fp);
}

/* "... @ 2.60GHz" at the end of an Intel model name: the GHz, or 0. */
static double ghz_in_name(const char *name)
{
    const char *at = strrchr(name, '@');
    if (!at)
        return 0;
    char *end;
    const double g = strtod(at + 1, &end);
    while (*end == ' ')
        end++;
    return g > 0 && strncmp(end, "GHz", 3) == 0 ? g : 0;
}

/* Full-width vector FMA units per core, and why. */
static int fma_units_of(dj_isa isa, const cpuinfo *ci, char *why, size_t size)
{
    const int amd = strcmp(ci->vendor, "AuthenticAMD") == 0;
    const int intel = strcmp(ci->vendor, "GenuineIntel") == 0;
    if (isa == DJ_ISA_AVX512) {
        if (amd && ci->family == 0x19) {
            snprintf(why, size, "AMD family 25 with AVX-512 is Zen 4: a 512-bit FMA takes its two "
                                "256-bit FMA pipes, so 1");
            return 1;
        }
        if (amd && ci->family >= 0x1a) {
            snprintf(why, size, "AMD family %d (Zen 5): two 512-bit FMA pipes", ci->family);
            return 2;
        }
        if (intel && strstr(ci->model_name, "Xeon")) {
            snprintf(why, size, "Intel Xeon: server core, FMA on ports 0+1 and port 5 (some "
                                "Silver/Bronze parts have 1: use --fma-units)");
            return 2;
        }
        if (intel) {
            snprintf(why, size, "Intel client core: ports 0+1 fuse into one 512-bit FMA");
            return 1;
        }
        snprintf(why, size, "assumed (vendor '%s' not known)", ci->vendor);
        return 2;
    }
    if (isa == DJ_ISA_AVX2) {
        if (amd && ci->family == 0x17 && ci->model < 0x30) {
            snprintf(why, size, "AMD family 23 model %d is Zen/Zen+: two 128-bit FMA pipes make "
                                "one 256-bit", ci->model);
            return 1;
        }
        if (amd && ci->family >= 0x17) {
            const char *zen = ci->family == 0x17 ? "Zen 2" : ci->family == 0x19 ? "Zen 3 or 4"
                              : ci->family == 0x1a ? "Zen 5" : "Zen 2 or later";
            snprintf(why, size, "AMD family %d model %d is %s: two 256-bit FMA pipes", ci->family,
                     ci->model, zen);
            return 2;
        }
        if (intel) {
            snprintf(why, size, "Intel core since Haswell: 256-bit FMA on ports 0 and 1");
            return 2;
        }
        snprintf(why, size, "assumed (vendor '%s' not known)", ci->vendor);
        return 2;
    }
    snprintf(why, size, "assumed: two vector floating-point pipes");
    return 2;
}

void dj_bench_peak_derive(dj_isa isa, int fma_units, double ghz, dj_bench_peak *p)
{
    cpuinfo ci;
    read_cpuinfo(&ci);
    if (isa == DJ_ISA_AUTO)
        isa = dj_cpu_best_isa();
    memset(p, 0, sizeof *p);
    snprintf(p->cpu, sizeof p->cpu, "%s", ci.model_name[0] ? ci.model_name : "unknown");

    switch (isa) {
    case DJ_ISA_AVX512: p->lanes = 16; break;
    case DJ_ISA_AVX2: p->lanes = 8; break;
    default: p->lanes = 4; break;
    }
    snprintf(p->lanes_from, sizeof p->lanes_from, "%d float32 lanes (%s %s)", p->lanes,
             isa == DJ_ISA_GENERIC ? "SSE, for ISA" : "ISA", dj_isa_name(isa));

    if (fma_units > 0) {
        p->fma_units = fma_units;
        snprintf(p->fma_from, sizeof p->fma_from, "--fma-units");
    } else {
        p->fma_units = fma_units_of(isa, &ci, p->fma_from, sizeof p->fma_from);
    }

    if (ghz > 0) {
        p->ghz = ghz;
        snprintf(p->ghz_from, sizeof p->ghz_from, "--ghz");
    } else {
        FILE *fp = fopen("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq", "r");
        long khz = 0;
        if (fp) {
            if (fscanf(fp, "%ld", &khz) != 1)
                khz = 0;
            fclose(fp);
        }
        if (khz > 0) {
            p->ghz = khz * 1e-6;
            snprintf(p->ghz_from, sizeof p->ghz_from,
                     "cpufreq cpuinfo_max_freq of cpu0 (the highest clock, boost included)");
        } else if (ci.mhz > 0) {
            p->ghz = ci.mhz * 1e-3;
            snprintf(p->ghz_from, sizeof p->ghz_from,
                     "'cpu MHz' of /proc/cpuinfo; no cpufreq, so the clock the kernel "
                     "reports, nominal under a hypervisor");
        } else if ((p->ghz = ghz_in_name(ci.model_name)) > 0) {
            snprintf(p->ghz_from, sizeof p->ghz_from, "the model name's '@ GHz'");
        } else {
            snprintf(p->ghz_from, sizeof p->ghz_from, "unknown (give --ghz)");
        }
    }
    p->per_core_gflops = p->lanes * 2.0 * p->fma_units * p->ghz;
}

/* ---- the BLAS peer ---- */

enum { ROW_MAJOR = 101, NO_TRANS = 111, TRANS = 112 }; /* CBLAS's enum values */

int dj_bench_blas_open(dj_bench_blas *b, const char *path)
{
    static const char *const names[] = {
        "libopenblas.so.0", "libopenblas.so",
        "/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas.so.0", "libblas.so.3"};
    const char *const *list = path ? &path : names;
    const size_t count = path ? 1 : sizeof names / sizeof names[0];
    memset(b, 0, sizeof *b);
    for (size_t i = 0; i < count; i++) {
        const size_t used = strlen(b->tried);
        snprintf(b->tried + used, sizeof b->tried - used, "%s%s", used ? ", " : "", list[i]);
        void *h = dlopen(list[i], RTLD_NOW | RTLD_LOCAL);
        if (!h)
            continue;
        void *f = dlsym(h, "cblas_sgemm");
        if (!f) {
            dlclose(h);
            continue;
        }
        /* dlsym's object pointers become function pointers by memcpy:
         * POSIX makes them the same size, ISO C has no cast for it. */
        b->handle = h;
        memcpy(&b->sgemm, &f, sizeof f);
        void *st = dlsym(h, "openblas_set_num_threads"), *gt = dlsym(h, "openblas_get_num_threads");
        memcpy(&b->set_threads, &st, sizeof st);
        memcpy(&b->get_threads, &gt, sizeof gt);
        void *cfg = dlsym(h, "openblas_get_config"), *core = dlsym(h, "openblas_get_corename");
        if (cfg) {
            char *(*get_config)(void), *(*get_core)(void);
            memcpy(&get_config, &cfg, sizeof cfg);
            memcpy(&get_core, &core, sizeof core);
            const char *c = get_config(), *k = core ? get_core() : NULL;
            b->is_openblas = 1;
            snprintf(b->config, sizeof b->config, "%s%s%s", c ? c : "", k ? ", core " : "",
                     k ? k : "");
        }
        /* The file it came from (a symlink or soname resolved). */
        Dl_info info;
        const char *from = dladdr(f, &info) && info.dli_fname && info.dli_fname[0]
                               ? info.dli_fname
                               : list[i];
        char *real = realpath(from, NULL);
        snprintf(b->path, sizeof b->path, "%s", real ? real : from);
        free(real);
        return 0;
    }
    return -1;
}

int dj_bench_blas_set_threads(dj_bench_blas *b, int threads)
{
    if (!b->handle)
        return 0;
    if (b->set_threads)
        b->set_threads(threads);
    return b->get_threads ? b->get_threads() : 0;
}

void dj_bench_blas_sgemm(const dj_bench_blas *b, int trans_a, int trans_b, int M, int N, int K,
                         float alpha, const float *A, int lda, const float *B, int ldb,
                         float beta, float *C, int ldc)
{
    b->sgemm(ROW_MAJOR, trans_a ? TRANS : NO_TRANS, trans_b ? TRANS : NO_TRANS, M, N, K, alpha, A,
             lda, B, ldb, beta, C, ldc);
}

void dj_bench_blas_close(dj_bench_blas *b)
{
    /* Not dlclose: OpenBLAS's threads may still be winding down, and some
     * versions crash when unloaded under them; the process ends soon. */
    b->handle = NULL;
    b->sgemm = NULL;
}
