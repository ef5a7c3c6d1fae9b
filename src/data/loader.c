/* loader.c - batches for training and evaluation, prepared on a background
 * thread while the training step runs.
 *
 * Everything random is a pure function of (seed, epoch, sample): the epoch's
 * permutation (Fisher-Yates with draws from the counter generator) and each
 * sample's crop offset and flip. So batches do not depend on timing or on
 * the thread count, and a resumed run sees the same batches. */
#define _POSIX_C_SOURCE 200809L
#include "dojo/loader.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "dojo/rng.h"
#include "dojo/tensor.h"

/* Streams of the counter generator (word argument), one per use. */
enum { STREAM_PERM = 1, STREAM_CROP = 2, STREAM_FLIP = 3 };

typedef struct {
    float *x;
    int32_t *y;
    int count;
    size_t batch;  /* which batch of the epoch it holds */
    int ready;
} slot;

struct dj_loader {
    dj_image_set set;
    dj_loader_opts opts;
    size_t n;            /* samples used */
    size_t nbatches;
    size_t sample_size;  /* c * h * w */
    float *mean, *inv_std;
    uint32_t *perm;
    int epoch;
    size_t next_batch;   /* the batch dj_loader_next returns next */
    slot slots[2];
    /* prefetch thread */
    pthread_t thread;
    int has_thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stop;
    long request;        /* batch index the worker should build next, or -1 */
    int request_slot;
};

static uint64_t key(int epoch, size_t i)
{
    return ((uint64_t)(uint32_t)epoch << 40) | (uint64_t)i;
}

static void build_batch(dj_loader *l, size_t b, slot *s)
{
    const dj_image_set *set = &l->set;
    const int c = set->c, h = set->h, w = set->w, pad = l->opts.crop_pad;
    size_t first = b * (size_t)l->opts.batch_size;
    size_t count = l->n - first < (size_t)l->opts.batch_size ? l->n - first : (size_t)l->opts.batch_size;
    for (size_t k = 0; k < count; k++) {
        const size_t idx = l->perm[first + k];
        const uint8_t *src = set->pixels + idx * l->sample_size;
        float *dst = s->x + k * l->sample_size;
        int dy = 0, dx = 0, flip = 0;
        if (pad > 0) {
            uint32_t r = dj_rng_u32(l->opts.seed, key(l->epoch, idx), STREAM_CROP);
            dy = (int)((r & 0xffff) % (uint32_t)(2 * pad + 1)) - pad;
            dx = (int)((r >> 16) % (uint32_t)(2 * pad + 1)) - pad;
        }
        if (l->opts.hflip)
            flip = (int)(dj_rng_u32(l->opts.seed, key(l->epoch, idx), STREAM_FLIP) >> 31);
        for (int ch = 0; ch < c; ch++) {
            const float m = l->mean[ch], is = l->inv_std[ch];
            const float zero = (0.0f - m) * is; /* padding is a black pixel */
            for (int yy = 0; yy < h; yy++) {
                const int sy = yy + dy;
                float *row = dst + ((size_t)ch * h + yy) * w;
                if (sy < 0 || sy >= h) {
                    for (int xx = 0; xx < w; xx++)
                        row[xx] = zero;
                    continue;
                }
                const uint8_t *srow = src + ((size_t)ch * h + sy) * w;
                for (int xx = 0; xx < w; xx++) {
                    int sx = (flip ? w - 1 - xx : xx) + dx;
                    row[xx] = (sx < 0 || sx >= w) ? zero : ((float)srow[sx] * (1.0f / 255.0f) - m) * is;
                }
            }
        }
        s->y[k] = set->labels[idx];
    }
    s->count = (int)count;
    s->batch = b;
}

static void *worker(void *arg)
{
    dj_loader *l = arg;
    pthread_mutex_lock(&l->mu);
    for (;;) {
        while (!l->stop && l->request < 0)
            pthread_cond_wait(&l->cv, &l->mu);
        if (l->stop)
            break;
        size_t b = (size_t)l->request;
        slot *s = &l->slots[l->request_slot];
        l->request = -1;
        pthread_mutex_unlock(&l->mu);
        build_batch(l, b, s);
        pthread_mutex_lock(&l->mu);
        s->ready = 1;
        pthread_cond_broadcast(&l->cv);
    }
    pthread_mutex_unlock(&l->mu);
    return NULL;
}

dj_status dj_loader_create(const dj_image_set *set, const dj_loader_opts *opts, dj_loader **out)
{
    *out = NULL;
    if (!set || !opts || opts->batch_size < 1 || set->c < 1 || set->h < 1 || set->w < 1 ||
        opts->crop_pad < 0 || opts->crop_pad > set->h || opts->crop_pad > set->w || set->n == 0 ||
        set->n > UINT32_MAX)
        return DJ_ERR_ARG;
    dj_loader *l = calloc(1, sizeof *l);
    if (!l)
        return DJ_ERR_NOMEM;
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->cv, NULL);
    l->set = *set;
    l->opts = *opts;
    l->n = opts->limit && opts->limit < set->n ? opts->limit : set->n;
    l->nbatches = opts->drop_last ? l->n / (size_t)opts->batch_size
                                  : (l->n + (size_t)opts->batch_size - 1) / (size_t)opts->batch_size;
    l->sample_size = (size_t)set->c * (size_t)set->h * (size_t)set->w;
    l->mean = calloc((size_t)set->c, sizeof *l->mean);
    l->inv_std = calloc((size_t)set->c, sizeof *l->inv_std);
    l->perm = calloc(l->n, sizeof *l->perm);
    l->request = -1;
    int ok = l->mean && l->inv_std && l->perm;
    for (int i = 0; ok && i < 2; i++) {
        l->slots[i].x = dj_alloc((size_t)opts->batch_size * l->sample_size * sizeof(float));
        l->slots[i].y = dj_alloc((size_t)opts->batch_size * sizeof(int32_t));
        ok = l->slots[i].x && l->slots[i].y;
    }
    if (!ok) {
        dj_loader_free(l);
        return DJ_ERR_NOMEM;
    }
    for (int ch = 0; ch < set->c; ch++) {
        l->mean[ch] = opts->mean ? opts->mean[ch] : 0.0f;
        float sd = opts->std ? opts->std[ch] : 1.0f;
        l->inv_std[ch] = sd > 0 ? 1.0f / sd : 1.0f;
    }
    if (opts->prefetch && pthread_create(&l->thread, NULL, worker, l) == 0)
        l->has_thread = 1;
    dj_loader_start(l, 0);
    *out = l;
    return DJ_OK;
}

/* Waits until the worker is idle (no request pending, none in progress). */
static void quiesce(dj_loader *l)
{
    if (!l->has_thread)
        return;
    pthread_mutex_lock(&l->mu);
    for (;;) {
        int busy = l->request >= 0;
        for (int i = 0; i < 2; i++)
            busy |= l->slots[i].ready == -1; /* requested, not built yet */
        if (!busy)
            break;
        pthread_cond_wait(&l->cv, &l->mu);
    }
    pthread_mutex_unlock(&l->mu);
}

static void request(dj_loader *l, size_t b, int slot_index)
{
    if (b >= l->nbatches)
        return;
    if (!l->has_thread) {
        build_batch(l, b, &l->slots[slot_index]);
        l->slots[slot_index].ready = 1;
        return;
    }
    pthread_mutex_lock(&l->mu);
    l->slots[slot_index].ready = -1;
    l->request = (long)b;
    l->request_slot = slot_index;
    pthread_cond_broadcast(&l->cv);
    pthread_mutex_unlock(&l->mu);
}

void dj_loader_free(dj_loader *l)
{
    if (!l)
        return;
    if (l->has_thread) {
        quiesce(l);
        pthread_mutex_lock(&l->mu);
        l->stop = 1;
        pthread_cond_broadcast(&l->cv);
        pthread_mutex_unlock(&l->mu);
        pthread_join(l->thread, NULL);
    }
    pthread_mutex_destroy(&l->mu);
    pthread_cond_destroy(&l->cv);
    for (int i = 0; i < 2; i++) {
        dj_free(l->slots[i].x);
        dj_free(l->slots[i].y);
    }
    free(l->mean);
    free(l->inv_std);
    free(l->perm);
    free(l);
}

size_t dj_loader_samples(const dj_loader *l)
{
    return l->n;
}

size_t dj_loader_batches(const dj_loader *l)
{
    return l->nbatches;
}

void dj_loader_start(dj_loader *l, int epoch)
{
    quiesce(l);
    l->epoch = epoch;
    for (size_t i = 0; i < l->n; i++)
        l->perm[i] = (uint32_t)i;
    if (l->opts.shuffle) {
        for (size_t i = l->n - 1; i > 0; i--) {
            uint32_t r = dj_rng_u32(l->opts.seed, key(epoch, i), STREAM_PERM);
            size_t j = (size_t)(((uint64_t)r * (uint64_t)(i + 1)) >> 32);
            uint32_t t = l->perm[i];
            l->perm[i] = l->perm[j];
            l->perm[j] = t;
        }
    }
    l->slots[0].ready = l->slots[1].ready = 0;
    l->next_batch = 0;
    request(l, 0, 0);
}

int dj_loader_next(dj_loader *l, const float **x, const int32_t **y, int *count)
{
    if (l->next_batch >= l->nbatches)
        return 0;
    const size_t b = l->next_batch;
    const int cur = (int)(b & 1);
    slot *s = &l->slots[cur];
    if (l->has_thread) {
        pthread_mutex_lock(&l->mu);
        while (s->ready != 1)
            pthread_cond_wait(&l->cv, &l->mu);
        pthread_mutex_unlock(&l->mu);
    }
    /* The other slot was handed out by the previous call and is free now. */
    request(l, b + 1, cur ^ 1);
    l->next_batch++;
    *x = s->x;
    *y = s->y;
    *count = s->count;
    return 1;
}
