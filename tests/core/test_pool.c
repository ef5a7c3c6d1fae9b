/* test_pool.c - the thread pool runs every task exactly once, blocks until
 * all are done, survives many reuses, and splits ranges exactly. */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "dojo/pool.h"
#include "harness.h"

typedef struct {
    atomic_int *hits;
    int ntasks;
} hit_job;

static void hit_task(void *arg, int t)
{
    hit_job *j = arg;
    atomic_fetch_add(&j->hits[t], 1);
}

typedef struct {
    unsigned char *seen;
} range_job;

static void mark_range(void *arg, size_t begin, size_t end)
{
    range_job *j = arg;
    for (size_t i = begin; i < end; i++)
        j->seen[i]++;
}

int main(void)
{
    for (int threads = 1; threads <= 4; threads++) {
        dj_pool *pool = NULL;
        CHECK(dj_pool_create(threads, &pool) == DJ_OK && pool, "create %d", threads);
        CHECK(dj_pool_threads(pool) == threads, "threads %d", dj_pool_threads(pool));
        atomic_int hits[100];
        for (int round = 0; round < 200; round++) {
            int ntasks = 1 + (round * 7) % 100;
            for (int i = 0; i < 100; i++)
                atomic_init(&hits[i], 0);
            hit_job j = {hits, ntasks};
            dj_pool_run(pool, hit_task, &j, ntasks);
            int ok = 1;
            for (int i = 0; i < 100; i++)
                ok &= atomic_load(&hits[i]) == (i < ntasks ? 1 : 0);
            CHECK(ok, "threads %d round %d: some task ran not exactly once", threads, round);
        }
        for (size_t n = 0; n < 50; n++) {
            unsigned char seen[64];
            memset(seen, 0, sizeof seen);
            range_job r = {seen};
            dj_parallel_for(pool, n, mark_range, &r);
            int ok = 1;
            for (size_t i = 0; i < sizeof seen; i++)
                ok &= seen[i] == (i < n ? 1 : 0);
            CHECK(ok, "threads %d: parallel_for over %zu did not cover each index once", threads, n);
        }
        dj_pool_destroy(pool);
    }
    /* A NULL pool runs inline. */
    atomic_int hits[3];
    for (int i = 0; i < 3; i++)
        atomic_init(&hits[i], 0);
    hit_job j = {hits, 3};
    dj_pool_run(NULL, hit_task, &j, 3);
    CHECK(atomic_load(&hits[0]) == 1 && atomic_load(&hits[2]) == 1, "NULL pool");
    CHECK(dj_pool_threads(NULL) == 1, "NULL pool has one thread");
    dj_pool *bad = NULL;
    CHECK(dj_pool_create(0, &bad) == DJ_ERR_ARG && bad == NULL, "0 threads rejected");
    CHECK(dj_cpu_count() >= 1, "cpu count");
    return th_done("test_pool");
}
