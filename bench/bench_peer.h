/* bench_peer.h - the yardsticks `dojo bench gemm` measures against: a BLAS
 * library (OpenBLAS) loaded at run time, and the machine's peak float32
 * FLOP rate derived from the CPU's vector width, FMA units and clock.
 *
 * Neither is needed to build or test dojo: the BLAS library is opened with
 * dlopen when the benchmark runs, and a missing one is reported, not fatal. */
#ifndef DOJO_BENCH_PEER_H
#define DOJO_BENCH_PEER_H

#include "dojo/cpu.h"

/* ---- the machine's peak ---- */

typedef struct {
    char cpu[128];          /* "model name" of /proc/cpuinfo, or "unknown" */
    int lanes;              /* float32 lanes of a vector of the ISA in use */
    int fma_units;          /* vector FMA units per core (full-width)      */
    double ghz;             /* clock; 0 if unknown                         */
    double per_core_gflops; /* lanes * 2 * fma_units * ghz; 0 if unknown  */
    char lanes_from[96];    /* where each factor came from, in words       */
    char fma_from[160];
    char ghz_from[128];
} dj_bench_peak;

/* Derives the peak of one core running code for `isa` (DJ_ISA_AUTO: the
 * best the CPU runs). fma_units > 0 and ghz > 0 override the derived
 * values (--fma-units, --ghz). Reads /proc/cpuinfo and cpufreq's sysfs;
 * never fails (an unknown clock leaves per_core_gflops 0). */
void dj_bench_peak_derive(dj_isa isa, int fma_units, double ghz, dj_bench_peak *p);

/* ---- the BLAS peer ---- */

typedef void (*dj_bench_sgemm_fn)(int order, int trans_a, int trans_b, int M, int N, int K,
                                  float alpha, const float *A, int lda, const float *B, int ldb,
                                  float beta, float *C, int ldc);

typedef struct {
    void *handle;            /* dlopen handle; NULL if none was found          */
    char path[512];          /* the file the library was loaded from           */
    int is_openblas;         /* openblas_get_config was found                  */
    char config[256];        /* openblas_get_config(), corename; or ""          */
    dj_bench_sgemm_fn sgemm; /* cblas_sgemm                                    */
    void (*set_threads)(int);/* openblas_set_num_threads, or NULL              */
    int (*get_threads)(void);/* openblas_get_num_threads, or NULL              */
    char tried[512];         /* the names tried, for the "not found" message   */
} dj_bench_blas;

/* Opens the first library that has cblas_sgemm: `path` if not NULL, else
 * libopenblas.so.0, libopenblas.so, Debian's openblas-pthread directory,
 * libblas.so.3. Returns 0, or -1 (b->handle NULL, b->tried filled). */
int dj_bench_blas_open(dj_bench_blas *b, const char *path);
/* Sets the library's thread count where it can (OpenBLAS); returns the
 * count it reports afterwards, or 0 if it cannot tell. */
int dj_bench_blas_set_threads(dj_bench_blas *b, int threads);
/* C = alpha op(A) op(B) + beta C, row-major, as dj_sgemm. */
void dj_bench_blas_sgemm(const dj_bench_blas *b, int trans_a, int trans_b, int M, int N, int K,
                         float alpha, const float *A, int lda, const float *B, int ldb,
                         float beta, float *C, int ldc);
void dj_bench_blas_close(dj_bench_blas *b);

#endif
