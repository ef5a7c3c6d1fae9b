/* safetensors.h - reading and writing the safetensors format
 * (8-byte little-endian header length N, N bytes of JSON header
 * {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]},
 *  "__metadata__": {"key": "string value", ...}}, then the byte buffer),
 * the checkpoint format PyTorch users load with safetensors.torch.load_file.
 *
 * Writes are atomic: a temporary file in the same directory, fsync, rename.
 * Reads validate everything (header size, JSON, dtypes, shapes against
 * offsets, offsets inside the buffer, no overlaps or gaps... ) and never
 * trust a length from the file before checking it against the file size. */
#ifndef DOJO_SAFETENSORS_H
#define DOJO_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "dojo/status.h"
#include "dojo/tensor.h"

typedef struct {
    const char *name;
    dj_dtype dtype;  /* F32, BF16, I64, I32, U8, F8_E4M3, F8_E5M2 map to safetensors
                        dtypes; CFloat dtypes are written as U8 (8-bit) or U16
                        (shp/uhp) with "dojo.dtype.<name>" = "<format>:<bias>"
                        metadata so that they read back exactly */
    int bias;
    int ndim;
    const int64_t *shape;
    const void *data;
    size_t nbytes;   /* must equal numel * dtype size */
} dj_st_tensor;

typedef struct {
    const char *key, *value;
} dj_st_meta;

/* Writes tensors (in the given order) and metadata atomically to path. */
dj_status dj_safetensors_write(const char *path, const dj_st_tensor *tensors, size_t n,
                               const dj_st_meta *meta, size_t nmeta, char *err, size_t errlen);

typedef struct dj_st_file dj_st_file;

/* Parses a whole file held in memory (the buffer is copied). `source` names
 * it in error messages. */
dj_status dj_safetensors_parse(const void *buf, size_t len, const char *source,
                               dj_st_file **out, char *err, size_t errlen);
dj_status dj_safetensors_read(const char *path, dj_st_file **out, char *err, size_t errlen);
void dj_safetensors_free(dj_st_file *f);

size_t dj_safetensors_count(const dj_st_file *f);
/* Entry i (header order), or the entry named `name` (NULL if none). The
 * returned struct and its pointers live as long as f. */
const dj_st_tensor *dj_safetensors_at(const dj_st_file *f, size_t i);
const dj_st_tensor *dj_safetensors_find(const dj_st_file *f, const char *name);
/* Metadata value for key, or NULL. */
const char *dj_safetensors_meta(const dj_st_file *f, const char *key);

#endif
