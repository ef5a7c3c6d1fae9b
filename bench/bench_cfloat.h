/* bench_cfloat.h - the CFloat conversion benchmark behind `dojo bench cfloat`.
 *
 * The dojo command (src/cli/cmd_bench.c) calls dj_bench_cfloat with the
 * arguments that follow `dojo bench cfloat`: argv[0] .. argv[argc-1] are
 * those arguments (argc may be 0) and argv[argc] is NULL. It returns the
 * process exit status (0 ok, 1 failure, 2 bad command line). */
#ifndef DOJO_BENCH_CFLOAT_H
#define DOJO_BENCH_CFLOAT_H

int dj_bench_cfloat(int argc, char **argv);

#endif
