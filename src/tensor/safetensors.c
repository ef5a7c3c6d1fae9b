/* safetensors.c - checkpoints in the safetensors format, so that PyTorch
 * users can load Dojo's weights with safetensors.torch.load_file().
 *
 * Layout: u64 little-endian header length N, N bytes of JSON header (padded
 * with spaces to a multiple of 8), then the tensors' bytes. The reader trusts
 * nothing: the header length is checked against the file size before use,
 * every tensor's dtype, shape and offsets are validated, and the tensors
 * must tile the byte buffer exactly (no gaps, no overlaps), as the reference
 * implementation requires. */
#define _POSIX_C_SOURCE 200809L
#include "dojo/safetensors.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dojo/fileio.h"
#include "dojo/json.h"

#define MAX_HEADER (100u << 20) /* 100 MB, the reference implementation's limit */

struct dj_st_file {
    char *buf;            /* the whole file */
    size_t len;
    dj_st_tensor *tensors;
    int64_t *shapes;      /* DJ_MAX_DIMS per tensor */
    char **names;
    size_t n;
    char **meta_keys, **meta_values;
    size_t nmeta;
};

/* Safetensors dtype names of the dtypes stored natively. */
static const char *st_dtype_name(dj_dtype dt)
{
    switch (dt) {
    case DJ_DT_F32: return "F32";
    case DJ_DT_BF16: return "BF16";
    case DJ_DT_I64: return "I64";
    case DJ_DT_I32: return "I32";
    case DJ_DT_U8: return "U8";
    case DJ_DT_E4M3: return "F8_E4M3";
    case DJ_DT_E5M2: return "F8_E5M2";
    case DJ_DT_CF8_143:
    case DJ_DT_CF8_152: return "U8";  /* + dojo.dtype metadata */
    case DJ_DT_SHP:
    case DJ_DT_UHP: return "U16";
    default: return NULL;
    }
}

static int st_dtype_parse(const char *s, dj_dtype *dt)
{
    static const struct {
        const char *name;
        dj_dtype dt;
    } map[] = {{"F32", DJ_DT_F32},         {"BF16", DJ_DT_BF16},       {"I64", DJ_DT_I64},
               {"I32", DJ_DT_I32},         {"U8", DJ_DT_U8},           {"F8_E4M3", DJ_DT_E4M3},
               {"F8_E5M2", DJ_DT_E5M2},    {"U16", DJ_DT_SHP}};
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strcmp(s, map[i].name) == 0) {
            *dt = map[i].dt;
            return 0;
        }
    return -1;
}

static int is_cfloat_dtype(dj_dtype dt)
{
    return dt == DJ_DT_CF8_143 || dt == DJ_DT_CF8_152 || dt == DJ_DT_SHP || dt == DJ_DT_UHP;
}

static void put_u64le(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

dj_status dj_safetensors_write(const char *path, const dj_st_tensor *tensors, size_t n,
                               const dj_st_meta *meta, size_t nmeta, char *err, size_t errlen)
{
    dj_json_writer w;
    dj_json_writer_init(&w, 0, NULL);
    dj_json_write_begin_object(&w);
    int have_meta = nmeta > 0;
    for (size_t i = 0; i < n && !have_meta; i++)
        have_meta = is_cfloat_dtype(tensors[i].dtype);
    if (have_meta) {
        dj_json_write_key(&w, "__metadata__");
        dj_json_write_begin_object(&w);
        for (size_t i = 0; i < nmeta; i++) {
            dj_json_write_key(&w, meta[i].key);
            dj_json_write_string(&w, meta[i].value);
        }
        for (size_t i = 0; i < n; i++) {
            if (!is_cfloat_dtype(tensors[i].dtype))
                continue;
            char key[300], val[64];
            dj_format f;
            dj_dtype_format(tensors[i].dtype, &f);
            snprintf(key, sizeof key, "dojo.dtype.%s", tensors[i].name);
            snprintf(val, sizeof val, "%s:%d", dj_format_desc_of(f)->name, tensors[i].bias);
            dj_json_write_key(&w, key);
            dj_json_write_string(&w, val);
        }
        dj_json_write_end_object(&w);
    }
    uint64_t offset = 0;
    for (size_t i = 0; i < n; i++) {
        const dj_st_tensor *t = &tensors[i];
        const char *dn = st_dtype_name(t->dtype);
        size_t numel = 1;
        for (int d = 0; d < t->ndim; d++)
            numel *= (size_t)t->shape[d];
        if (!dn || t->ndim < 0 || t->ndim > DJ_MAX_DIMS || numel * dj_dtype_size(t->dtype) != t->nbytes ||
            strncmp(t->name, "__metadata__", 12) == 0) {
            dj_json_writer_free(&w);
            snprintf(err, errlen, "cannot write '%s': tensor \"%s\" has a bad dtype, shape or size", path,
                     t->name);
            return DJ_ERR_ARG;
        }
        dj_json_write_key(&w, t->name);
        dj_json_write_begin_object(&w);
        dj_json_write_key(&w, "dtype");
        dj_json_write_string(&w, dn);
        dj_json_write_key(&w, "shape");
        dj_json_write_begin_array(&w);
        for (int d = 0; d < t->ndim; d++)
            dj_json_write_int(&w, t->shape[d]);
        dj_json_write_end_array(&w);
        dj_json_write_key(&w, "data_offsets");
        dj_json_write_begin_array(&w);
        dj_json_write_int(&w, (int64_t)offset);
        dj_json_write_int(&w, (int64_t)(offset + t->nbytes));
        dj_json_write_end_array(&w);
        dj_json_write_end_object(&w);
        offset += t->nbytes;
    }
    dj_json_write_end_object(&w);
    const char *text;
    size_t len;
    dj_status st = dj_json_writer_finish(&w, &text, &len);
    if (st) {
        snprintf(err, errlen, "cannot write '%s': %s", path, dj_json_writer_error(&w));
        dj_json_writer_free(&w);
        return st;
    }
    size_t padded = (len + 7) & ~(size_t)7;
    char *header = malloc(8 + padded);
    const void **ptrs = calloc(n + 1, sizeof *ptrs);
    size_t *lens = calloc(n + 1, sizeof *lens);
    if (!header || !ptrs || !lens) {
        free(header);
        free(ptrs);
        free(lens);
        dj_json_writer_free(&w);
        return DJ_ERR_NOMEM;
    }
    put_u64le((unsigned char *)header, padded);
    memcpy(header + 8, text, len);
    memset(header + 8 + len, ' ', padded - len);
    ptrs[0] = header;
    lens[0] = 8 + padded;
    for (size_t i = 0; i < n; i++) {
        ptrs[i + 1] = tensors[i].data;
        lens[i + 1] = tensors[i].nbytes;
    }
    st = dj_write_atomic_v(path, ptrs, lens, n + 1, err, errlen);
    free(header);
    free(ptrs);
    free(lens);
    dj_json_writer_free(&w);
    return st;
}

void dj_safetensors_free(dj_st_file *f)
{
    if (!f)
        return;
    for (size_t i = 0; i < f->n; i++)
        free(f->names[i]);
    for (size_t i = 0; i < f->nmeta; i++) {
        free(f->meta_keys[i]);
        free(f->meta_values[i]);
    }
    free(f->names);
    free(f->meta_keys);
    free(f->meta_values);
    free(f->tensors);
    free(f->shapes);
    free(f->buf);
    free(f);
}

static int cmp_offset(const void *a, const void *b)
{
    const dj_st_tensor *x = *(const dj_st_tensor *const *)a, *y = *(const dj_st_tensor *const *)b;
    const char *px = x->data, *py = y->data;
    return px < py ? -1 : px > py;
}

static char *dup_n(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

#define FAIL(st_, ...)                                                                   \
    do {                                                                                 \
        char msg_[1024];                                                                  \
        snprintf(msg_, sizeof msg_, __VA_ARGS__);                                        \
        snprintf(err, errlen, "%s: %s", source, msg_);                                   \
        status = (st_);                                                                  \
        goto done;                                                                       \
    } while (0)

/* Takes ownership of buf (malloc'd, len bytes). */
static dj_status parse_owned(char *buf, size_t len, const char *source, dj_st_file **out, char *err,
                             size_t errlen)
{
    dj_status status = DJ_OK;
    dj_json_doc *doc = NULL;
    dj_st_tensor **order = NULL;
    dj_st_file *f = calloc(1, sizeof *f);
    *out = NULL;
    if (!f) {
        free(buf);
        return DJ_ERR_NOMEM;
    }
    f->buf = buf;
    f->len = len;
    if (len < 8)
        FAIL(DJ_ERR_PARSE, "truncated: %zu bytes, a safetensors file starts with an 8-byte header length", len);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = (hlen << 8) | (unsigned char)buf[i];
    if (hlen > MAX_HEADER)
        FAIL(DJ_ERR_PARSE, "header length %llu is larger than the %u-byte limit", (unsigned long long)hlen, MAX_HEADER);
    if (hlen > len - 8)
        FAIL(DJ_ERR_PARSE, "truncated: header length %llu but only %zu bytes follow", (unsigned long long)hlen, len - 8);
    if (hlen < 2 || buf[8] != '{')
        FAIL(DJ_ERR_PARSE, "the header is not a JSON object");
    dj_json_error je;
    if (dj_json_parse(buf + 8, (size_t)hlen, NULL, &doc, &je) != DJ_OK)
        FAIL(DJ_ERR_PARSE, "header: %.400s", je.message);
    const dj_json_value *root = dj_json_root(doc);
    if (dj_json_type_of(root) != DJ_JSON_OBJECT)
        FAIL(DJ_ERR_PARSE, "the header is not a JSON object");
    const char *data = buf + 8 + hlen;
    const size_t data_len = len - 8 - (size_t)hlen;
    const size_t members = dj_json_len(root);
    f->tensors = calloc(members + 1, sizeof *f->tensors);
    f->shapes = calloc((members + 1) * DJ_MAX_DIMS, sizeof *f->shapes);
    f->names = calloc(members + 1, sizeof *f->names);
    order = calloc(members + 1, sizeof *order);
    if (!f->tensors || !f->shapes || !f->names || !order)
        FAIL(DJ_ERR_NOMEM, "out of memory");
    const dj_json_value *meta = NULL;
    for (size_t i = 0; i < members; i++) {
        size_t klen;
        const char *key = dj_json_key_at(root, i, &klen);
        const dj_json_value *v = dj_json_value_at(root, i);
        if (klen == 12 && memcmp(key, "__metadata__", 12) == 0) {
            meta = v;
            continue;
        }
        if (memchr(key, '\0', klen))
            FAIL(DJ_ERR_PARSE, "a tensor name contains a NUL character");
        static const char *const allowed[] = {"dtype", "shape", "data_offsets", NULL};
        if (dj_json_type_of(v) != DJ_JSON_OBJECT || dj_json_check_keys(v, allowed, &je) != DJ_OK)
            FAIL(DJ_ERR_PARSE, "tensor \"%.*s\": expected {dtype, shape, data_offsets}", (int)(klen > 100 ? 100 : klen), key);
        const char *dts;
        dj_dtype dt;
        if (dj_json_get_string(v, "dtype", &dts, NULL, &je) != DJ_OK || st_dtype_parse(dts, &dt) != 0)
            FAIL(DJ_ERR_PARSE, "tensor \"%.*s\": unsupported or missing dtype", (int)(klen > 100 ? 100 : klen), key);
        const dj_json_value *shape = dj_json_get(v, "shape"), *offs = dj_json_get(v, "data_offsets");
        if (dj_json_type_of(shape) != DJ_JSON_ARRAY || dj_json_len(shape) > DJ_MAX_DIMS)
            FAIL(DJ_ERR_PARSE, "tensor \"%.*s\": shape must be an array of at most %d sizes", (int)(klen > 100 ? 100 : klen), key, DJ_MAX_DIMS);
        dj_st_tensor *t = &f->tensors[f->n];
        int64_t *sh = f->shapes + f->n * DJ_MAX_DIMS;
        size_t numel = 1;
        for (size_t d = 0; d < dj_json_len(shape); d++) {
            const dj_json_value *s = dj_json_at(shape, d);
            if (!dj_json_is_int(s) || dj_json_int(s) < 0 || (uint64_t)dj_json_int(s) > data_len)
                FAIL(DJ_ERR_PARSE, "tensor \"%.*s\": bad size in shape", (int)(klen > 100 ? 100 : klen), key);
            sh[d] = dj_json_int(s);
            if (sh[d] != 0 && numel > data_len / (size_t)sh[d])
                numel = data_len + 1; /* certainly too big; reported below */
            else
                numel *= (size_t)sh[d];
        }
        if (dj_json_type_of(offs) != DJ_JSON_ARRAY || dj_json_len(offs) != 2 ||
            !dj_json_is_int(dj_json_at(offs, 0)) || !dj_json_is_int(dj_json_at(offs, 1)))
            FAIL(DJ_ERR_PARSE, "tensor \"%.*s\": data_offsets must be [begin, end]", (int)(klen > 100 ? 100 : klen), key);
        int64_t b = dj_json_int(dj_json_at(offs, 0)), e = dj_json_int(dj_json_at(offs, 1));
        if (b < 0 || e < b || (uint64_t)e > data_len)
            FAIL(DJ_ERR_PARSE, "tensor \"%.*s\": data_offsets [%lld, %lld] outside the %zu data bytes", (int)(klen > 100 ? 100 : klen), key, (long long)b, (long long)e, data_len);
        if (numel > data_len || numel * dj_dtype_size(dt) != (size_t)(e - b))
            FAIL(DJ_ERR_PARSE, "tensor \"%.*s\": shape needs %zu bytes but data_offsets give %lld", (int)(klen > 100 ? 100 : klen), key, numel > data_len ? (size_t)0 : numel * dj_dtype_size(dt), (long long)(e - b));
        f->names[f->n] = dup_n(key, klen);
        if (!f->names[f->n])
            FAIL(DJ_ERR_NOMEM, "out of memory");
        t->name = f->names[f->n];
        t->dtype = dt;
        t->bias = 0;
        t->ndim = (int)dj_json_len(shape);
        t->shape = sh;
        t->data = data + b;
        t->nbytes = (size_t)(e - b);
        order[f->n] = t;
        f->n++;
    }
    /* The tensors must tile the data buffer exactly. */
    qsort(order, f->n, sizeof *order, cmp_offset);
    size_t pos = 0;
    for (size_t i = 0; i < f->n; i++) {
        size_t b = (size_t)((const char *)order[i]->data - data);
        if (b != pos)
            FAIL(DJ_ERR_PARSE, "tensor \"%s\" starts at byte %zu: %s", order[i]->name, b,
                 b < pos ? "it overlaps the previous tensor" : "there is a gap before it");
        pos = b + order[i]->nbytes;
    }
    if (pos != data_len)
        FAIL(DJ_ERR_PARSE, "%zu bytes after the last tensor are not described by the header", data_len - pos);
    if (meta) {
        if (dj_json_type_of(meta) != DJ_JSON_OBJECT)
            FAIL(DJ_ERR_PARSE, "__metadata__ must be an object of strings");
        size_t nm = dj_json_len(meta);
        f->meta_keys = calloc(nm + 1, sizeof *f->meta_keys);
        f->meta_values = calloc(nm + 1, sizeof *f->meta_values);
        if (!f->meta_keys || !f->meta_values)
            FAIL(DJ_ERR_NOMEM, "out of memory");
        for (size_t i = 0; i < nm; i++) {
            size_t kl, vl;
            const char *k = dj_json_key_at(meta, i, &kl);
            const char *s = dj_json_string(dj_json_value_at(meta, i), &vl);
            if (!s)
                FAIL(DJ_ERR_PARSE, "__metadata__ values must be strings");
            f->meta_keys[i] = dup_n(k, kl);
            f->meta_values[i] = dup_n(s, vl);
            f->nmeta = i + 1;
            if (!f->meta_keys[i] || !f->meta_values[i])
                FAIL(DJ_ERR_NOMEM, "out of memory");
        }
    }
    /* CFloat tensors travel as U8/U16 plus "dojo.dtype.<name>" = "<format>:<bias>". */
    for (size_t i = 0; i < f->n; i++) {
        char key[300];
        snprintf(key, sizeof key, "dojo.dtype.%s", f->tensors[i].name);
        const char *v = dj_safetensors_meta(f, key);
        dj_st_tensor *t = &f->tensors[i];
        if (!v) {
            if (t->dtype == DJ_DT_SHP)
                FAIL(DJ_ERR_PARSE, "tensor \"%s\": U16 data needs a dojo.dtype metadata entry", t->name);
            continue;
        }
        char fname[32];
        int bias, used = 0;
        dj_format fmt;
        if (sscanf(v, "%31[a-z0-9_]:%d%n", fname, &bias, &used) != 2 || v[used] != '\0' ||
            dj_format_from_name(fname, &fmt) != 0 || !dj_format_bias_ok(fmt, bias))
            FAIL(DJ_ERR_PARSE, "metadata %s: bad value \"%s\"", key, v);
        dj_dtype want = fmt == DJ_FMT_CF8_143 ? DJ_DT_CF8_143 : fmt == DJ_FMT_CF8_152 ? DJ_DT_CF8_152
                        : fmt == DJ_FMT_SHP   ? DJ_DT_SHP     : fmt == DJ_FMT_UHP     ? DJ_DT_UHP
                                                                                       : DJ_DT_COUNT;
        if (want == DJ_DT_COUNT || dj_dtype_size(want) != dj_dtype_size(t->dtype))
            FAIL(DJ_ERR_PARSE, "metadata %s: format %s does not match the stored dtype", key, fname);
        t->dtype = want;
        t->bias = bias;
    }
done:
    free(order);
    dj_json_free(doc);
    if (status) {
        dj_safetensors_free(f);
        return status;
    }
    *out = f;
    return DJ_OK;
}

dj_status dj_safetensors_parse(const void *buf, size_t len, const char *source, dj_st_file **out,
                               char *err, size_t errlen)
{
    char *copy = malloc(len ? len : 1);
    if (!copy)
        return DJ_ERR_NOMEM;
    if (len)
        memcpy(copy, buf, len);
    return parse_owned(copy, len, source, out, err, errlen);
}

dj_status dj_safetensors_read(const char *path, dj_st_file **out, char *err, size_t errlen)
{
    char *buf;
    size_t len;
    *out = NULL;
    dj_status st = dj_read_file(path, (size_t)64 << 30, &buf, &len, err, errlen);
    if (st)
        return st;
    return parse_owned(buf, len, path, out, err, errlen);
}

size_t dj_safetensors_count(const dj_st_file *f)
{
    return f->n;
}

const dj_st_tensor *dj_safetensors_at(const dj_st_file *f, size_t i)
{
    return i < f->n ? &f->tensors[i] : NULL;
}

const dj_st_tensor *dj_safetensors_find(const dj_st_file *f, const char *name)
{
    for (size_t i = 0; i < f->n; i++)
        if (strcmp(f->tensors[i].name, name) == 0)
            return &f->tensors[i];
    return NULL;
}

const char *dj_safetensors_meta(const dj_st_file *f, const char *key)
{
    for (size_t i = 0; i < f->nmeta; i++)
        if (strcmp(f->meta_keys[i], key) == 0)
            return f->meta_values[i];
    return NULL;
}
