/* cmd_bench.c - `dojo bench ...`: the benchmarks in bench/, run on demand
 * (never inside the test suite). Each benchmark parses its own options;
 * this file only dispatches to it. */
#include <string.h>

#include "bench_cfloat.h"
#include "bench_gemm.h"
#include "bench_train.h"
#include "cli/cli.h"

void dj_bench_usage(FILE *fp)
{
    fputs("usage: dojo bench cfloat|gemm|train [OPTIONS]\n"
          "\n"
          "Benchmarks, run by hand (never inside the test suite). Speed figures\n"
          "are ratios against a peer measured in the same run.\n"
          "\n"
          "  cfloat   CFloat conversion throughput (dojo bench cfloat --help)\n"
          "  gemm     GEMM GFLOP/s beside OpenBLAS and the peak; convolutions\n"
          "           (dojo bench gemm --help)\n"
          "  train    images/s of the training step (dojo bench train --help)\n",
          fp);
}

int dj_cmd_bench(int argc, char **argv)
{
    if (argc < 2) {
        dj_bench_usage(stderr);
        return DJ_EXIT_USAGE;
    }
    const char *what = argv[1];
    if (strcmp(what, "--help") == 0 || strcmp(what, "-h") == 0 || strcmp(what, "help") == 0) {
        dj_bench_usage(stdout);
        return DJ_EXIT_OK;
    }
    if (strcmp(what, "cfloat") == 0)
        return dj_bench_cfloat(argc - 2, argv + 2); /* the arguments after "cfloat" */
    if (strcmp(what, "gemm") == 0)
        return dj_bench_gemm(argc - 2, argv + 2);
    if (strcmp(what, "train") == 0)
        return dj_bench_train(argc - 2, argv + 2);
    char q[128];
    dj_cli_err("bench", "unknown benchmark %s (valid: cfloat, gemm, train)",
               dj_cli_quote(what, strlen(what), 40, q, sizeof q));
    return DJ_EXIT_USAGE;
}
