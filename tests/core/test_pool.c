/* test_pool.c - the thread pool runs every task exactly once, blocks until
 * all are done, survives many reuses, and splits ranges exactly; also across
 * its sleeps (workers idle past their spin, a caller waiting on a slow task). */
#define _POSIX_C_SOURCE 200809L
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

static void sleep_ms(int ms)
{
    struct timespec ts = {0, (long)ms * 1000000L};
    nanosleep(&ts, NULL);
}

/* Task t writes its value (plain stores, read by the caller after the run);
 * task 0 first sleeps, so that the caller finishes its share and waits. */
typedef struct {
    int *out;
    int slow_ms, value;
} slow_job;

static void slow_task(void *arg, int t)
{
    slow_job *j = arg;
    if (t == 0 && j->slow_ms)
        sleep_ms(j->slow_ms);
    j->out[t] = j->value + t;
}

/* Jobs far enough apart that the workers stop spinning and sleep, jobs
 * whose one slow task puts the caller to sleep, and jobs back to back:
 * every task runs once and its output is there when dj_pool_run returns. */
static void test_sleeps(void)
{
    for (int threads = 2; threads <= 4; threads++) {
        dj_pool *pool = NULL;
        CHECK(dj_pool_create(threads, &pool) == DJ_OK, "create %d", threads);
        int out[8];
        for (int round = 0; round < 12; round++) {
            memset(out, 0, sizeof out);
            slow_job j = {out, round % 3 == 1 ? 20 : 0, 1000 * (round + 1)};
            if (round % 3 == 2)
                sleep_ms(30); /* the workers are asleep by now */
            dj_pool_run(pool, slow_task, &j, 8);
            int ok = 1;
            for (int t = 0; t < 8; t++)
                ok &= out[t] == j.value + t;
            CHECK(ok, "threads %d round %d: a task's output is missing after the run", threads,
                  round);
        }
        dj_pool_destroy(pool);
    }
    /* destroyed while the workers sleep, and right after a job */
    dj_pool *pool = NULL;
    CHECK(dj_pool_create(3, &pool) == DJ_OK, "create 3");
    sleep_ms(30);
    dj_pool_destroy(pool);
    CHECK(dj_pool_create(3, &pool) == DJ_OK, "create 3");
    int out[8];
    slow_job j = {out, 0, 5};
    dj_pool_run(pool, slow_task, &j, 8);
    dj_pool_destroy(pool);
    CHECK(out[7] == 12, "the last job's output");
}

int main(void)
{
    test_sleeps();
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
