/* loader.h - batches of images for training and evaluation: shuffling,
 * augmentation, normalisation, prepared on a background thread.
 *
 * The order of an epoch is a permutation drawn from (seed, epoch) and the
 * augmentation of sample i in epoch e from (seed, e, i) with the counter
 * generator, so a run resumed at epoch e sees exactly the batches an
 * uninterrupted run sees, whatever the thread count. Pixels (uint8) are
 * augmented, scaled to [0, 1] and normalised per channel:
 * x = (p / 255 - mean[c]) / std[c]. */
#ifndef DOJO_LOADER_H
#define DOJO_LOADER_H

#include <stddef.h>
#include <stdint.h>

#include "dojo/status.h"

/* A set of images in memory (not owned by the loader). */
typedef struct {
    const uint8_t *pixels; /* n x c x h x w */
    const uint8_t *labels; /* n */
    size_t n;
    int c, h, w;
} dj_image_set;

typedef struct {
    int batch_size;     /* >= 1 */
    int shuffle;        /* permute each epoch */
    int drop_last;      /* skip a final partial batch */
    int crop_pad;       /* random crop after zero padding by this many pixels (0: off) */
    int hflip;          /* random horizontal flip with probability 1/2 */
    uint64_t seed;
    const float *mean;  /* c values (NULL: 0) */
    const float *std;   /* c values (NULL: 1) */
    size_t limit;       /* use only the first `limit` samples (0: all) */
    int prefetch;       /* prepare the next batch on a background thread */
} dj_loader_opts;

typedef struct dj_loader dj_loader;

dj_status dj_loader_create(const dj_image_set *set, const dj_loader_opts *opts, dj_loader **out);
void dj_loader_free(dj_loader *l);

size_t dj_loader_samples(const dj_loader *l);
size_t dj_loader_batches(const dj_loader *l);

/* Starts epoch `epoch` (0-based). */
void dj_loader_start(dj_loader *l, int epoch);
/* The next batch: *x is count x c x h x w floats, *y count labels (int32).
 * Returns 0 when the epoch is over. Pointers are valid until the next call. */
int dj_loader_next(dj_loader *l, const float **x, const int32_t **y, int *count);

#endif
