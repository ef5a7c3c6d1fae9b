/* test_loader.c - batches cover every sample once per epoch, are the same
 * with and without the prefetch thread, depend only on (seed, epoch), and
 * apply normalisation and augmentation as documented. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dojo/loader.h"
#include "harness.h"

enum { N = 103, C = 2, H = 5, W = 4 };

static uint8_t pixels[N * C * H * W], labels[N];

/* Sample i: every pixel of channel ch is (i + ch) % 256 except pixel (0,0) = 255. */
static void make_set(dj_image_set *set)
{
    for (int i = 0; i < N; i++) {
        labels[i] = (uint8_t)(i % 10);
        for (int ch = 0; ch < C; ch++)
            for (int p = 0; p < H * W; p++)
                pixels[((size_t)i * C + ch) * H * W + p] = (uint8_t)(p == 0 ? 255 : (i + ch) % 200);
    }
    *set = (dj_image_set){pixels, labels, N, C, H, W};
}

/* Runs one epoch and records the sample order (recovered from the pixels). */
static int run_epoch(dj_loader *l, int epoch, int *order, float *first_x, int *nb)
{
    dj_loader_start(l, epoch);
    const float *x;
    const int32_t *y;
    int count, pos = 0;
    *nb = 0;
    while (dj_loader_next(l, &x, &y, &count)) {
        if (*nb == 0 && first_x)
            memcpy(first_x, x, sizeof(float) * C * H * W);
        for (int k = 0; k < count; k++) {
            /* channel 0, pixel (2,2) holds i % 200 scaled to [0,1] */
            float v = x[(size_t)k * C * H * W + 2 * W + 2];
            int id = (int)lrintf(v * 255.0f);
            if (pos < N)
                order[pos] = id + (y[k] != id % 10 ? 1000 : 0);
            pos++;
        }
        (*nb)++;
    }
    return pos;
}

int main(void)
{
    dj_image_set set;
    make_set(&set);
    int order_a[N], order_b[N], order_c[N];
    for (int prefetch = 0; prefetch < 2; prefetch++) {
        dj_loader_opts o = {.batch_size = 10, .shuffle = 1, .seed = 42, .prefetch = prefetch};
        dj_loader *l = NULL;
        CHECK(dj_loader_create(&set, &o, &l) == DJ_OK, "create");
        CHECK(dj_loader_batches(l) == 11, "11 batches of up to 10, got %zu", dj_loader_batches(l));
        int nb = 0;
        int got = run_epoch(l, 3, prefetch ? order_b : order_a, NULL, &nb);
        CHECK(got == N && nb == 11, "epoch yields %d samples in %d batches", got, nb);
        int seen[N] = {0}, bad_label = 0;
        for (int i = 0; i < N; i++) {
            int id = (prefetch ? order_b : order_a)[i];
            if (id >= 1000)
                bad_label++;
            else if (id >= 0 && id < 200)
                seen[id % N]++;
        }
        int once = 1;
        for (int i = 0; i < N; i++)
            once &= seen[i] == 1;
        CHECK(once, "every sample exactly once per epoch");
        CHECK(bad_label == 0, "labels travel with their images");
        /* Epochs differ, and going back to epoch 3 repeats it exactly. */
        run_epoch(l, 4, order_c, NULL, &nb);
        CHECK(memcmp(order_a, order_c, sizeof order_a) != 0, "epoch 4 order differs from epoch 3");
        run_epoch(l, 3, order_c, NULL, &nb);
        CHECK(memcmp(prefetch ? order_b : order_a, order_c, sizeof order_c) == 0, "epoch 3 repeats");
        /* Stopping mid-epoch and restarting is fine. */
        dj_loader_start(l, 5);
        const float *x;
        const int32_t *y;
        int count;
        CHECK(dj_loader_next(l, &x, &y, &count) == 1 && count == 10, "first batch");
        dj_loader_free(l);
    }
    CHECK(memcmp(order_a, order_b, sizeof order_a) == 0, "prefetch does not change the batches");

    /* No shuffle, drop_last, limit, normalisation. */
    const float mean[C] = {0.5f, 0.25f}, std[C] = {0.5f, 2.0f};
    dj_loader_opts o = {.batch_size = 8, .drop_last = 1, .limit = 20, .mean = mean, .std = std};
    dj_loader *l = NULL;
    CHECK(dj_loader_create(&set, &o, &l) == DJ_OK, "create 2");
    CHECK(dj_loader_samples(l) == 20 && dj_loader_batches(l) == 2, "limit 20, drop_last: 2 batches");
    dj_loader_start(l, 0);
    const float *x;
    const int32_t *y;
    int count;
    CHECK(dj_loader_next(l, &x, &y, &count) && count == 8, "batch of 8");
    /* sample 0, channel 1, pixel (1,1): (0 + 1) / 255 normalised by mean .25, std 2 */
    float want = ((1.0f / 255.0f) - 0.25f) / 2.0f;
    CHECK(fabsf(x[1 * H * W + 1 * W + 1] - want) < 1e-6f, "normalised value %g want %g",
          (double)x[H * W + W + 1], (double)want);
    CHECK(fabsf(x[0] - (1.0f - 0.5f) / 0.5f) < 1e-6f, "pixel (0,0) = 255 -> 1");
    CHECK(y[3] == 3, "label of sample 3");
    dj_loader_free(l);

    /* Augmentation: flips and crops move the marker pixel (0,0) = 255 for
     * some samples, never changes the label, and is reproducible. */
    dj_loader_opts oa = {.batch_size = N, .crop_pad = 1, .hflip = 1, .seed = 9, .prefetch = 1};
    CHECK(dj_loader_create(&set, &oa, &l) == DJ_OK, "create 3");
    static float first[N * C * H * W], again[N * C * H * W];
    dj_loader_start(l, 2);
    CHECK(dj_loader_next(l, &x, &y, &count) && count == N, "one batch");
    memcpy(first, x, sizeof first);
    int moved = 0;
    for (int k = 0; k < N; k++)
        moved += x[(size_t)k * C * H * W] != 1.0f;
    CHECK(moved > N / 4 && moved < N, "augmentation moved the marker in %d of %d samples", moved, N);
    dj_loader_start(l, 2);
    CHECK(dj_loader_next(l, &x, &y, &count), "again");
    memcpy(again, x, sizeof again);
    CHECK(memcmp(first, again, sizeof first) == 0, "augmentation reproducible");
    dj_loader_free(l);

    dj_loader_opts bad = {.batch_size = 0};
    CHECK(dj_loader_create(&set, &bad, &l) == DJ_ERR_ARG && l == NULL, "batch size 0 rejected");
    return th_done("test_loader");
}
