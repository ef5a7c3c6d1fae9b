/* pool.h - the thread pool: created once, reused by every parallel kernel.
 *
 * Work is split deterministically: dj_pool_run(pool, fn, arg, ntasks) calls
 * fn(arg, t) for every task t in [0, ntasks) and returns when all are done.
 * Which thread runs a task may vary, so a task must write only its own part
 * of the output; reductions are done by the caller in task order. That keeps
 * results bit-identical for a given thread count (and kernels that split by
 * a fixed rule, not by the thread count, are identical for any count). */
#ifndef DOJO_POOL_H
#define DOJO_POOL_H

#include <stddef.h>

#include "dojo/status.h"

typedef struct dj_pool dj_pool;

/* nthreads >= 1 (the calling thread counts as one: nthreads - 1 workers). */
dj_status dj_pool_create(int nthreads, dj_pool **out);
void dj_pool_destroy(dj_pool *pool);
int dj_pool_threads(const dj_pool *pool); /* 1 for a NULL pool */

typedef void (*dj_task_fn)(void *arg, int task);

/* Runs fn(arg, t) for t in [0, ntasks); blocks until all finish. A NULL pool
 * runs everything on the calling thread. Not reentrant: a task must not call
 * dj_pool_run on the same pool. */
void dj_pool_run(dj_pool *pool, dj_task_fn fn, void *arg, int ntasks);

/* Splits [0, n) into nthreads contiguous ranges and calls
 * fn(arg, begin, end) for each non-empty one, in parallel. */
typedef void (*dj_range_fn)(void *arg, size_t begin, size_t end);
void dj_parallel_for(dj_pool *pool, size_t n, dj_range_fn fn, void *arg);

/* The number of online CPUs (at least 1). */
int dj_cpu_count(void);

#endif
