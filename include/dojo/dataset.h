/* dataset.h - MNIST-style image classification datasets stored as IDX files.
 *
 * A dataset directory holds four files, each raw or gzip'd (".gz"):
 *     train-images-idx3-ubyte   ubyte [N_train, rows, cols]
 *     train-labels-idx1-ubyte   ubyte [N_train]
 *     t10k-images-idx3-ubyte    ubyte [N_test, rows, cols]
 *     t10k-labels-idx1-ubyte    ubyte [N_test]
 * as MNIST and Fashion-MNIST are distributed. When both NAME and NAME.gz
 * exist the uncompressed one is read (it is what `gunzip -k` leaves).
 *
 * dj_idx_dataset_open() loads all four and checks that they form a dataset:
 * image files ubyte with 3 dimensions, label files ubyte with 1, N > 0 and
 * rows, cols > 0, image and label counts equal within a split, train and
 * test images the same size, and every label below the class count.
 *
 * Statuses: DJ_ERR_IO for a missing directory or file (the message lists
 * every missing file), DJ_ERR_PARSE for a file of the wrong type or shape
 * or mismatched counts, DJ_ERR_RANGE for a label out of range, DJ_ERR_ARG
 * for bad arguments, and whatever dj_idx_load_file() reports for a file
 * that is not valid IDX. Messages name the file (or the directory). */
#ifndef DOJO_DATASET_H
#define DOJO_DATASET_H

#include <stddef.h>
#include <stdint.h>

#include "dojo/idx.h"
#include "dojo/status.h"

/* Where Debian's dataset-fashion-mnist package installs Fashion-MNIST
 * (train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz,
 *  t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz). */
#define DJ_FASHION_MNIST_DIR "/usr/share/datasets/fashion-mnist"

typedef struct {
    dj_idx images;     /* ubyte [n, rows, cols]; images.data is uint8_t * */
    dj_idx labels;     /* ubyte [n], each below n_classes */
    size_t n;          /* number of examples */
    char *images_path; /* the files actually read (malloc'd) */
    char *labels_path;
} dj_idx_split;

typedef struct {
    dj_idx_split train, test;
    uint32_t rows, cols; /* image height and width, same in both splits */
    int n_classes;
} dj_idx_dataset;

typedef struct {
    int n_classes;      /* labels must be below it (1..256); 0: infer it as
                           the largest label in either split + 1 */
    uint64_t max_bytes; /* per-file limit, see dj_idx_load_file; 0: default */
} dj_idx_dataset_opts;

/* Load the dataset in `dir`. opts may be NULL (infer the class count,
 * default limit); pass n_classes = 10 for MNIST and Fashion-MNIST. On
 * failure *out is zeroed and err holds one line naming the file. */
dj_status dj_idx_dataset_open(const char *dir, const dj_idx_dataset_opts *opts,
                              dj_idx_dataset *out, char *err, size_t errlen);

/* Release everything; a zeroed struct is fine, twice is harmless. */
void dj_idx_dataset_free(dj_idx_dataset *ds);

#endif
