/* bench_gemm.h - the GEMM and convolution benchmark behind `dojo bench gemm`.
 *
 * The dojo command calls dj_bench_gemm with the arguments that follow
 * `dojo bench gemm`: argv[0] .. argv[argc-1] are those arguments (argc may
 * be 0; a leading "gemm" is skipped) and argv[argc] is NULL. It returns the
 * process exit status (0 ok, 1 failure, 2 bad command line). */
#ifndef DOJO_BENCH_GEMM_H
#define DOJO_BENCH_GEMM_H

int dj_bench_gemm(int argc, char **argv);

#endif
