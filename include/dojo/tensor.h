/* tensor.h - shape, dtype (with exponent bias / scale for the narrow
 * formats) and storage.
 *
 * Every tensor says what it holds: float32 today for everything the training
 * engine computes, and, as the 8-bit policies arrive, bf16 or a CFloat/OCP
 * format with its per-tensor exponent bias (or, for E4M3/E5M2, a power-of-two
 * scale). Storage is 64-byte aligned and owned by the tensor unless it is a
 * view. Shapes are PyTorch's (row-major, NCHW for images, OIHW for conv
 * weights, [out, in] for linear weights). */
#ifndef DOJO_TENSOR_H
#define DOJO_TENSOR_H

#include <stddef.h>
#include <stdint.h>

#include "dojo/cfloat.h"
#include "dojo/status.h"

#define DJ_MAX_DIMS 8

typedef enum {
    DJ_DT_F32 = 0,
    DJ_DT_BF16,
    DJ_DT_CF8_143,
    DJ_DT_CF8_152,
    DJ_DT_SHP,
    DJ_DT_UHP,
    DJ_DT_E4M3,
    DJ_DT_E5M2,
    DJ_DT_I64,
    DJ_DT_I32,
    DJ_DT_U8,
    DJ_DT_COUNT
} dj_dtype;

size_t dj_dtype_size(dj_dtype dt);    /* bytes per element */
const char *dj_dtype_name(dj_dtype dt); /* "f32", "bf16", "cfloat8_1_4_3", ... */
/* The cfloat format of a narrow float dtype; returns 0 and sets *f, or -1. */
int dj_dtype_format(dj_dtype dt, dj_format *f);

typedef struct {
    dj_dtype dtype;
    int bias;        /* exponent bias (CFloat dtypes); format default otherwise */
    float scale;     /* value = decoded code * scale (OCP formats); 1 otherwise */
    int ndim;
    int64_t shape[DJ_MAX_DIMS];
    size_t numel;
    void *data;      /* 64-byte aligned */
    int owns;        /* free data with the tensor */
} dj_tensor;

/* Allocates a zero-filled tensor. ndim 0 is a scalar (numel 1). */
dj_status dj_tensor_init(dj_tensor *t, dj_dtype dt, int ndim, const int64_t *shape);
void dj_tensor_free(dj_tensor *t);   /* frees owned data; t may be reused */
size_t dj_tensor_nbytes(const dj_tensor *t);
/* "[32, 1, 3, 3]" into buf. */
const char *dj_tensor_shape_str(const dj_tensor *t, char *buf, size_t size);
static inline float *dj_tensor_f32(const dj_tensor *t)
{
    return (float *)t->data;
}

/* 64-byte aligned allocation (NULL on failure or size 0); free with dj_free. */
void *dj_alloc(size_t bytes);
void *dj_calloc(size_t bytes);
void dj_free(void *p);

#endif
