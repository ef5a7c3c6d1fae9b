/* pool.c - a fixed-size pthread pool with a blocking "run these tasks" call.
 *
 * One generation counter and a shared task index: dj_pool_run publishes the
 * job, wakes the workers, takes tasks itself, and waits until every task has
 * finished. Tasks are claimed with an atomic counter, so load balances
 * itself; determinism comes from tasks owning disjoint outputs.
 *
 * Waiting spins first: a training step is hundreds of short jobs, and a
 * worker put to sleep on a condition variable costs a futex wake-up to get
 * back (tens of microseconds under a hypervisor, where it is a cross-CPU
 * interrupt). So a worker that has finished a job watches the generation for
 * SPIN_ROUNDS pauses (a few hundred microseconds) before it sleeps, and the
 * caller watches the count of workers still busy as long before it sleeps;
 * a condition variable is signalled only when someone sleeps. The two
 * hand-overs are Dekker pairs on sequentially consistent atomics: the
 * publisher stores (generation, or active reaching 0), then loads the
 * sleeper count (flag); the sleeper stores its count (flag) under the mutex,
 * then loads the state it waits on - at least one of the two sees the
 * other, so no wake-up is lost. */
#define _POSIX_C_SOURCE 200809L
#include "dojo/pool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

/* Pauses a waiter spins before it sleeps (x86's pause is 10-150 cycles);
 * every YIELD_EVERY of them it yields the CPU, so that on a machine with
 * more runnable threads than CPUs the spin does not hold back the work it
 * waits for. */
#define SPIN_ROUNDS 20000
#define YIELD_EVERY 256

struct dj_pool {
    int nthreads;
    pthread_t *workers;
    pthread_mutex_t mu;
    pthread_cond_t wake, done;
    atomic_ulong generation;   /* the job's number; stored after the job */
    atomic_int stopping;
    /* the current job */
    dj_task_fn fn;
    void *arg;
    int ntasks;
    atomic_int next_task;
    atomic_int active;         /* workers still inside the current job */
    atomic_int sleepers;       /* workers waiting on `wake` */
    atomic_int caller_asleep;  /* dj_pool_run waiting on `done` */
};

static inline void spin_pause(int round)
{
    if (round % YIELD_EVERY == YIELD_EVERY - 1)
        sched_yield();
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

static void run_tasks(dj_pool *p)
{
    for (;;) {
        int t = atomic_fetch_add(&p->next_task, 1);
        if (t >= p->ntasks)
            break;
        p->fn(p->arg, t);
    }
}

/* The next generation after `seen` (or `seen` if the pool is stopping). */
static unsigned long next_job(dj_pool *p, unsigned long seen)
{
    unsigned long g = seen;
    for (int i = 0; i < SPIN_ROUNDS; i++) {
        g = atomic_load(&p->generation);
        if (g != seen || atomic_load(&p->stopping))
            return g;
        spin_pause(i);
    }
    pthread_mutex_lock(&p->mu);
    atomic_fetch_add(&p->sleepers, 1);
    while ((g = atomic_load(&p->generation)) == seen && !atomic_load(&p->stopping))
        pthread_cond_wait(&p->wake, &p->mu);
    atomic_fetch_sub(&p->sleepers, 1);
    pthread_mutex_unlock(&p->mu);
    return g;
}

static void *worker_main(void *arg)
{
    dj_pool *p = arg;
    unsigned long seen = 0;
    for (;;) {
        seen = next_job(p, seen);
        if (atomic_load(&p->stopping))
            break;
        run_tasks(p);
        if (atomic_fetch_sub(&p->active, 1) == 1 && atomic_load(&p->caller_asleep)) {
            pthread_mutex_lock(&p->mu);
            pthread_cond_signal(&p->done);
            pthread_mutex_unlock(&p->mu);
        }
    }
    return NULL;
}

dj_status dj_pool_create(int nthreads, dj_pool **out)
{
    if (nthreads < 1 || nthreads > 1024)
        return DJ_ERR_ARG;
    dj_pool *p = calloc(1, sizeof *p);
    if (!p)
        return DJ_ERR_NOMEM;
    p->nthreads = nthreads;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->wake, NULL);
    pthread_cond_init(&p->done, NULL);
    atomic_init(&p->generation, 0);
    atomic_init(&p->stopping, 0);
    atomic_init(&p->next_task, 0);
    atomic_init(&p->active, 0);
    atomic_init(&p->sleepers, 0);
    atomic_init(&p->caller_asleep, 0);
    if (nthreads > 1) {
        p->workers = calloc((size_t)nthreads - 1, sizeof *p->workers);
        if (!p->workers) {
            dj_pool_destroy(p);
            return DJ_ERR_NOMEM;
        }
        for (int i = 0; i < nthreads - 1; i++) {
            if (pthread_create(&p->workers[i], NULL, worker_main, p) != 0) {
                p->nthreads = i + 1; /* workers started so far, plus the caller */
                dj_pool_destroy(p);
                return DJ_ERR_NOMEM;
            }
        }
    }
    *out = p;
    return DJ_OK;
}

void dj_pool_destroy(dj_pool *p)
{
    if (!p)
        return;
    atomic_store(&p->stopping, 1);
    pthread_mutex_lock(&p->mu);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    if (p->workers)
        for (int i = 0; i < p->nthreads - 1; i++)
            pthread_join(p->workers[i], NULL);
    free(p->workers);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->wake);
    pthread_cond_destroy(&p->done);
    free(p);
}

int dj_pool_threads(const dj_pool *p)
{
    return p ? p->nthreads : 1;
}

void dj_pool_run(dj_pool *p, dj_task_fn fn, void *arg, int ntasks)
{
    if (ntasks <= 0)
        return;
    if (!p || p->nthreads == 1 || ntasks == 1) {
        for (int t = 0; t < ntasks; t++)
            fn(arg, t);
        return;
    }
    /* Every worker is past the last job (active reached 0), so none reads
     * these until the generation below moves. */
    p->fn = fn;
    p->arg = arg;
    p->ntasks = ntasks;
    atomic_store(&p->next_task, 0);
    atomic_store(&p->active, p->nthreads - 1);
    atomic_fetch_add(&p->generation, 1);
    if (atomic_load(&p->sleepers) > 0) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->wake);
        pthread_mutex_unlock(&p->mu);
    }

    run_tasks(p);

    for (int i = 0; i < SPIN_ROUNDS && atomic_load(&p->active) > 0; i++)
        spin_pause(i);
    if (atomic_load(&p->active) > 0) {
        pthread_mutex_lock(&p->mu);
        atomic_store(&p->caller_asleep, 1);
        while (atomic_load(&p->active) > 0)
            pthread_cond_wait(&p->done, &p->mu);
        atomic_store(&p->caller_asleep, 0);
        pthread_mutex_unlock(&p->mu);
    }
}

typedef struct {
    dj_range_fn fn;
    void *arg;
    size_t n;
    int parts;
} range_job;

static void range_task(void *arg, int t)
{
    const range_job *j = arg;
    size_t begin = j->n * (size_t)t / (size_t)j->parts;
    size_t end = j->n * (size_t)(t + 1) / (size_t)j->parts;
    if (begin < end)
        j->fn(j->arg, begin, end);
}

void dj_parallel_for(dj_pool *p, size_t n, dj_range_fn fn, void *arg)
{
    if (n == 0)
        return;
    int parts = dj_pool_threads(p);
    if ((size_t)parts > n)
        parts = (int)n;
    range_job j = {fn, arg, n, parts};
    dj_pool_run(p, range_task, &j, parts);
}

int dj_cpu_count(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : (int)n;
}
