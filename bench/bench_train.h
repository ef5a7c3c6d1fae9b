/* bench_train.h - the training-step benchmark behind `dojo bench train`.
 * Called with the arguments after `dojo bench train` (argc may be 0);
 * returns the process exit status (0 ok, 1 failure, 2 bad command line). */
#ifndef DOJO_BENCH_TRAIN_H
#define DOJO_BENCH_TRAIN_H

int dj_bench_train(int argc, char **argv);

#endif
