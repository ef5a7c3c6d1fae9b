/* dataset.c - an MNIST-style dataset directory: four IDX files that must
 * agree with each other.
 *
 * idx.c knows the file format; this file knows the layout MNIST and
 * Fashion-MNIST use (file names, ubyte images [N, rows, cols] and ubyte
 * labels [N]) and checks everything a training loop would otherwise trip
 * over later: missing files, counts that differ, labels out of range. */
#define _POSIX_C_SOURCE 200809L

#include "dojo/dataset.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#if defined(__GNUC__)
#define DJ_PRINTF_LIKE(f, a) __attribute__((format(printf, f, a)))
#else
#define DJ_PRINTF_LIKE(f, a)
#endif

enum { TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS, N_FILES };

static const char *const g_file_names[N_FILES] = {
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
};

static dj_status ds_fail(char *err, size_t errlen, dj_status st, const char *fmt, ...)
    DJ_PRINTF_LIKE(4, 5);

static dj_status ds_fail(char *err, size_t errlen, dj_status st, const char *fmt, ...)
{
    if (err && errlen > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return st;
}

/* dir + "/" + name + suffix, malloc'd; NULL if out of memory. */
static char *join_path(const char *dir, const char *name, const char *suffix)
{
    size_t dl = strlen(dir), nl = strlen(name), sl = strlen(suffix);
    int slash = dl > 0 && dir[dl - 1] != '/';
    char *p = malloc(dl + (size_t)slash + nl + sl + 1);
    if (!p)
        return NULL;
    memcpy(p, dir, dl);
    if (slash)
        p[dl] = '/';
    memcpy(p + dl + (size_t)slash, name, nl);
    memcpy(p + dl + (size_t)slash + nl, suffix, sl + 1);
    return p;
}

static int path_exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0;
}

/* Pick NAME if present, else NAME.gz; *path is NULL if neither exists. */
static dj_status find_file(const char *dir, const char *name, char **path)
{
    *path = NULL;
    char *raw = join_path(dir, name, "");
    char *gz = join_path(dir, name, ".gz");
    if (!raw || !gz) {
        free(raw);
        free(gz);
        return DJ_ERR_NOMEM;
    }
    if (path_exists(raw)) {
        *path = raw;
        free(gz);
    } else if (path_exists(gz)) {
        *path = gz;
        free(raw);
    } else {
        free(raw);
        free(gz);
    }
    return DJ_OK;
}

void dj_idx_dataset_free(dj_idx_dataset *ds)
{
    if (!ds)
        return;
    dj_idx_split *splits[2] = {&ds->train, &ds->test};
    for (int i = 0; i < 2; i++) {
        dj_idx_free(&splits[i]->images);
        dj_idx_free(&splits[i]->labels);
        free(splits[i]->images_path);
        free(splits[i]->labels_path);
    }
    memset(ds, 0, sizeof *ds);
}

/* Shapes and counts of one split (images and labels already loaded). */
static dj_status check_split(const dj_idx_split *s, char *err, size_t errlen)
{
    char shape[128];
    const dj_idx *im = &s->images, *lb = &s->labels;
    if (im->type != DJ_IDX_U8 || im->ndim != 3)
        return ds_fail(err, errlen, DJ_ERR_PARSE,
                       "%s: expected ubyte images [N, rows, cols], got %s [%s]", s->images_path,
                       dj_idx_type_name(im->type), dj_idx_shape_str(im, shape, sizeof shape));
    if (lb->type != DJ_IDX_U8 || lb->ndim != 1)
        return ds_fail(err, errlen, DJ_ERR_PARSE, "%s: expected ubyte labels [N], got %s [%s]",
                       s->labels_path, dj_idx_type_name(lb->type),
                       dj_idx_shape_str(lb, shape, sizeof shape));
    if (im->count == 0)
        return ds_fail(err, errlen, DJ_ERR_PARSE, "%s: empty image array (shape %s)", s->images_path,
                       dj_idx_shape_str(im, shape, sizeof shape));
    if (im->dims[0] != lb->dims[0])
        return ds_fail(err, errlen, DJ_ERR_PARSE,
                       "image and label counts differ: %s has %u images, %s has %u labels",
                       s->images_path, (unsigned)im->dims[0], s->labels_path,
                       (unsigned)lb->dims[0]);
    return DJ_OK;
}

dj_status dj_idx_dataset_open(const char *dir, const dj_idx_dataset_opts *opts,
                              dj_idx_dataset *out, char *err, size_t errlen)
{
    char ebuf[128];
    if (err && errlen > 0)
        err[0] = '\0';
    if (!out)
        return ds_fail(err, errlen, DJ_ERR_ARG, "dataset: no output struct given");
    memset(out, 0, sizeof *out);
    if (!dir)
        return ds_fail(err, errlen, DJ_ERR_ARG, "dataset: no directory given");
    int n_classes = opts ? opts->n_classes : 0;
    uint64_t max_bytes = opts ? opts->max_bytes : 0;
    if (n_classes < 0 || n_classes > 256)
        return ds_fail(err, errlen, DJ_ERR_ARG,
                       "%s: class count %d is not 0 (infer) or 1 to 256", dir, n_classes);

    struct stat sb;
    if (stat(dir, &sb) != 0) {
        int e = errno;
        if (strerror_r(e, ebuf, sizeof ebuf) != 0)
            snprintf(ebuf, sizeof ebuf, "error %d", e);
        return ds_fail(err, errlen, DJ_ERR_IO, "%s: cannot open dataset directory: %s", dir,
                       ebuf);
    }
    if (!S_ISDIR(sb.st_mode))
        return ds_fail(err, errlen, DJ_ERR_IO, "%s: not a directory (expected a directory "
                       "holding the four IDX files)", dir);

    /* Find all four before loading any, so one message lists every gap. */
    char *paths[N_FILES] = {NULL};
    int missing[N_FILES], n_missing = 0;
    dj_status st = DJ_OK;
    for (int i = 0; i < N_FILES && !st; i++) {
        st = find_file(dir, g_file_names[i], &paths[i]);
        if (!st && !paths[i])
            missing[n_missing++] = i;
    }
    if (st) {
        st = ds_fail(err, errlen, DJ_ERR_NOMEM, "%s: out of memory", dir);
    } else if (n_missing == 1) {
        const char *nm = g_file_names[missing[0]];
        st = ds_fail(err, errlen, DJ_ERR_IO, "%s: missing %s (looked for %s and %s.gz)", dir, nm,
                     nm, nm);
    } else if (n_missing > 1) {
        char list[256] = "";
        size_t pos = 0;
        for (int k = 0; k < n_missing && pos < sizeof list; k++) {
            int n = snprintf(list + pos, sizeof list - pos, "%s%s[.gz]", k ? ", " : "",
                             g_file_names[missing[k]]);
            if (n < 0)
                break;
            pos += (size_t)n;
        }
        st = ds_fail(err, errlen, DJ_ERR_IO, "%s: missing %d of the 4 dataset files: %s", dir,
                     n_missing, list);
    }
    out->train.images_path = paths[TRAIN_IMAGES];
    out->train.labels_path = paths[TRAIN_LABELS];
    out->test.images_path = paths[TEST_IMAGES];
    out->test.labels_path = paths[TEST_LABELS];
    if (st)
        goto fail;

    dj_idx *slots[N_FILES] = {&out->train.images, &out->train.labels, &out->test.images,
                              &out->test.labels};
    for (int i = 0; i < N_FILES; i++) {
        st = dj_idx_load_file(paths[i], max_bytes, slots[i], err, errlen);
        if (st)
            goto fail;
    }

    dj_idx_split *splits[2] = {&out->train, &out->test};
    for (int s = 0; s < 2; s++) {
        st = check_split(splits[s], err, errlen);
        if (st)
            goto fail;
        splits[s]->n = splits[s]->images.dims[0];
    }
    const dj_idx *tr = &out->train.images, *te = &out->test.images;
    if (tr->dims[1] != te->dims[1] || tr->dims[2] != te->dims[2]) {
        st = ds_fail(err, errlen, DJ_ERR_PARSE,
                     "%s: test images are %ux%u but the training images (%s) are %ux%u",
                     out->test.images_path, (unsigned)te->dims[1], (unsigned)te->dims[2],
                     out->train.images_path, (unsigned)tr->dims[1], (unsigned)tr->dims[2]);
        goto fail;
    }
    out->rows = tr->dims[1];
    out->cols = tr->dims[2];

    if (n_classes == 0) {
        int max_label = 0;
        for (int s = 0; s < 2; s++) {
            const uint8_t *lb = splits[s]->labels.data;
            for (size_t i = 0; i < splits[s]->n; i++)
                if (lb[i] > max_label)
                    max_label = lb[i];
        }
        n_classes = max_label + 1;
    } else {
        for (int s = 0; s < 2; s++) {
            const uint8_t *lb = splits[s]->labels.data;
            for (size_t i = 0; i < splits[s]->n; i++) {
                if (lb[i] >= n_classes) {
                    st = ds_fail(err, errlen, DJ_ERR_RANGE,
                                 "%s: label %u at index %zu is not below the class count %d",
                                 splits[s]->labels_path, (unsigned)lb[i], i, n_classes);
                    goto fail;
                }
            }
        }
    }
    out->n_classes = n_classes;
    return DJ_OK;

fail:
    dj_idx_dataset_free(out);
    return st;
}
