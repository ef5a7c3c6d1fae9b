/* tensor.c - tensor allocation and dtype tables. */
#define _POSIX_C_SOURCE 200809L
#include "dojo/tensor.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
    const char *name;
    size_t size;
    int format; /* dj_format, or -1 */
} g_dtypes[DJ_DT_COUNT] = {
    [DJ_DT_F32] = {"f32", 4, -1},
    [DJ_DT_BF16] = {"bf16", 2, DJ_FMT_BF16},
    [DJ_DT_CF8_143] = {"cfloat8_1_4_3", 1, DJ_FMT_CF8_143},
    [DJ_DT_CF8_152] = {"cfloat8_1_5_2", 1, DJ_FMT_CF8_152},
    [DJ_DT_SHP] = {"shp", 2, DJ_FMT_SHP},
    [DJ_DT_UHP] = {"uhp", 2, DJ_FMT_UHP},
    [DJ_DT_E4M3] = {"e4m3", 1, DJ_FMT_E4M3},
    [DJ_DT_E5M2] = {"e5m2", 1, DJ_FMT_E5M2},
    [DJ_DT_I64] = {"i64", 8, -1},
    [DJ_DT_I32] = {"i32", 4, -1},
    [DJ_DT_U8] = {"u8", 1, -1},
};

size_t dj_dtype_size(dj_dtype dt)
{
    return ((int)dt >= 0 && dt < DJ_DT_COUNT) ? g_dtypes[dt].size : 0;
}

const char *dj_dtype_name(dj_dtype dt)
{
    return ((int)dt >= 0 && dt < DJ_DT_COUNT) ? g_dtypes[dt].name : "?";
}

int dj_dtype_format(dj_dtype dt, dj_format *f)
{
    if ((int)dt < 0 || dt >= DJ_DT_COUNT || g_dtypes[dt].format < 0)
        return -1;
    *f = (dj_format)g_dtypes[dt].format;
    return 0;
}

void *dj_alloc(size_t bytes)
{
    if (bytes == 0)
        return NULL;
    void *p = NULL;
    size_t rounded = (bytes + 63) & ~(size_t)63;
    if (rounded < bytes || posix_memalign(&p, 64, rounded) != 0)
        return NULL;
    return p;
}

void *dj_calloc(size_t bytes)
{
    void *p = dj_alloc(bytes);
    if (p)
        memset(p, 0, bytes);
    return p;
}

void dj_free(void *p)
{
    free(p);
}

dj_status dj_tensor_init(dj_tensor *t, dj_dtype dt, int ndim, const int64_t *shape)
{
    memset(t, 0, sizeof *t);
    if ((int)dt < 0 || dt >= DJ_DT_COUNT || ndim < 0 || ndim > DJ_MAX_DIMS)
        return DJ_ERR_ARG;
    size_t numel = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0 || (shape[i] > 0 && numel > SIZE_MAX / (size_t)shape[i] / 8))
            return DJ_ERR_RANGE;
        numel *= (size_t)shape[i];
        t->shape[i] = shape[i];
    }
    t->dtype = dt;
    t->ndim = ndim;
    t->numel = numel;
    t->scale = 1.0f;
    dj_format f;
    t->bias = dj_dtype_format(dt, &f) == 0 ? dj_format_desc_of(f)->bias_default : 0;
    if (numel > 0) {
        t->data = dj_calloc(numel * g_dtypes[dt].size);
        if (!t->data)
            return DJ_ERR_NOMEM;
        t->owns = 1;
    }
    return DJ_OK;
}

void dj_tensor_free(dj_tensor *t)
{
    if (t->owns)
        dj_free(t->data);
    t->data = NULL;
    t->owns = 0;
}

size_t dj_tensor_nbytes(const dj_tensor *t)
{
    return t->numel * dj_dtype_size(t->dtype);
}

const char *dj_tensor_shape_str(const dj_tensor *t, char *buf, size_t size)
{
    size_t pos = 0;
    if (size == 0)
        return buf;
    buf[0] = '\0';
    pos += (size_t)snprintf(buf + pos, size - pos, "[");
    for (int i = 0; i < t->ndim && pos < size; i++)
        pos += (size_t)snprintf(buf + pos, size - pos, i ? ", %lld" : "%lld", (long long)t->shape[i]);
    if (pos < size)
        snprintf(buf + pos, size - pos, "]");
    return buf;
}
