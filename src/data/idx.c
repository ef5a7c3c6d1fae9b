/* idx.c - reading IDX files (MNIST, Fashion-MNIST), raw or gzip'd.
 *
 * Everything funnels into one check of an IDX stream held in memory
 * (parse_header), which is what the fuzzer exercises: the file loader reads
 * the file, inflates it if it is gzip, and hands the bytes over. The size
 * the header implies is compared with the bytes actually present before any
 * allocation, so a forged header cannot ask for terabytes; inflation grows
 * its buffer under a caller-given limit so a small .gz cannot expand
 * without bound. When the loader owns the buffer (file or inflated data)
 * the payload is converted in place and the buffer kept, so loading the
 * 47 MB Fashion-MNIST training images costs one copy of them, not three.
 * Semantics and status codes are documented in include/dojo/idx.h. */
#define _POSIX_C_SOURCE 200809L
#define ZLIB_CONST

#include "dojo/idx.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#if defined(__GNUC__)
#define DJ_PRINTF_LIKE(f, a) __attribute__((format(printf, f, a)))
#else
#define DJ_PRINTF_LIKE(f, a)
#endif

/* Largest deflate expansion is about 1032:1; used only to distrust a gzip
 * trailer's size field when sizing the first output buffer. */
#define DEFLATE_MAX_RATIO 1032u

/* What one load is about: the name for messages, where they go, the limit. */
typedef struct {
    const char *name;
    char *err;
    size_t errlen;
    uint64_t max_bytes; /* effective limit, at most SIZE_MAX - 1 */
} idx_ctx;

/* What the header says, once it has been checked against the data. */
typedef struct {
    dj_idx_type type;
    int ndim;
    uint32_t dims[DJ_IDX_MAX_DIMS];
    size_t elem_size;
    size_t header_len; /* 4 + 4 * ndim */
    size_t data_len;   /* bytes of data, == count * elem_size */
    size_t count;
} idx_header;

static dj_status fail(const idx_ctx *c, dj_status st, const char *fmt, ...) DJ_PRINTF_LIKE(3, 4);

static dj_status fail(const idx_ctx *c, dj_status st, const char *fmt, ...)
{
    if (c->err && c->errlen > 0) {
        int n = snprintf(c->err, c->errlen, "%s: ", c->name);
        if (n >= 0 && (size_t)n < c->errlen) {
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(c->err + n, c->errlen - (size_t)n, fmt, ap);
            va_end(ap);
        }
    }
    return st;
}

/* strerror without the shared static buffer (XSI strerror_r). */
static const char *errno_str(int e, char *buf, size_t len)
{
    if (strerror_r(e, buf, len) != 0)
        snprintf(buf, len, "error %d", e);
    return buf;
}

static void init_ctx(idx_ctx *c, const char *name, uint64_t max_bytes, char *err, size_t errlen)
{
    c->name = name ? name : "<memory>";
    c->err = err;
    c->errlen = errlen;
    if (max_bytes == 0)
        max_bytes = DJ_IDX_DEFAULT_MAX_BYTES;
    /* Buffers are sized up to max_bytes + 1, which must fit in size_t. */
    if (max_bytes > (uint64_t)SIZE_MAX - 1)
        max_bytes = (uint64_t)SIZE_MAX - 1;
    c->max_bytes = max_bytes;
    if (err && errlen > 0)
        err[0] = '\0';
}

size_t dj_idx_type_size(int type)
{
    switch (type) {
    case DJ_IDX_U8:
    case DJ_IDX_I8: return 1;
    case DJ_IDX_I16: return 2;
    case DJ_IDX_I32:
    case DJ_IDX_F32: return 4;
    case DJ_IDX_F64: return 8;
    }
    return 0;
}

const char *dj_idx_type_name(int type)
{
    switch (type) {
    case DJ_IDX_U8: return "ubyte";
    case DJ_IDX_I8: return "sbyte";
    case DJ_IDX_I16: return "short";
    case DJ_IDX_I32: return "int";
    case DJ_IDX_F32: return "float";
    case DJ_IDX_F64: return "double";
    }
    return "unknown";
}

static const char *dims_str(const uint32_t *dims, int ndim, char *buf, size_t len)
{
    size_t pos = 0;
    if (len == 0)
        return buf;
    buf[0] = '\0';
    for (int i = 0; i < ndim && pos < len; i++) {
        int n = snprintf(buf + pos, len - pos, i ? "x%" PRIu32 : "%" PRIu32, dims[i]);
        if (n < 0)
            break;
        pos += (size_t)n;
    }
    return buf;
}

const char *dj_idx_shape_str(const dj_idx *t, char *buf, size_t len)
{
    if (!buf || len == 0)
        return buf;
    if (!t || t->ndim < 1 || t->ndim > DJ_IDX_MAX_DIMS) {
        snprintf(buf, len, "(none)");
        return buf;
    }
    return dims_str(t->dims, t->ndim, buf, len);
}

void dj_idx_free(dj_idx *t)
{
    if (!t)
        return;
    free(t->data);
    memset(t, 0, sizeof *t);
}

static uint32_t load_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static int is_gzip(const uint8_t *p, size_t len)
{
    return len >= 2 && p[0] == 0x1f && p[1] == 0x8b;
}

/* Check an IDX stream of `len` bytes at p; on success fill h. */
static dj_status parse_header(const idx_ctx *c, const uint8_t *p, size_t len, idx_header *h)
{
    char shape[DJ_IDX_MAX_DIMS * 11 + 1];

    memset(h, 0, sizeof *h);
    if (len == 0)
        return fail(c, DJ_ERR_PARSE, "empty: no IDX header");
    if (len < 4)
        return fail(c, DJ_ERR_PARSE, "truncated: %zu bytes, shorter than the 4-byte IDX magic",
                    len);
    if (p[0] != 0 || p[1] != 0)
        return fail(c, DJ_ERR_PARSE,
                    "not an IDX file: magic is %02x %02x %02x %02x, expected 00 00 TYPE NDIM",
                    p[0], p[1], p[2], p[3]);
    h->elem_size = dj_idx_type_size(p[2]);
    if (h->elem_size == 0)
        return fail(c, DJ_ERR_PARSE,
                    "unknown IDX element type 0x%02x (known: 0x08 ubyte, 0x09 sbyte, "
                    "0x0b short, 0x0c int, 0x0d float, 0x0e double)",
                    p[2]);
    h->type = (dj_idx_type)p[2];
    h->ndim = p[3];
    if (h->ndim == 0)
        return fail(c, DJ_ERR_PARSE, "number of dimensions is 0 (must be 1 to %d)",
                    DJ_IDX_MAX_DIMS);
    if (h->ndim > DJ_IDX_MAX_DIMS)
        return fail(c, DJ_ERR_UNSUPPORTED, "%d dimensions; this reader supports 1 to %d",
                    h->ndim, DJ_IDX_MAX_DIMS);
    h->header_len = 4 + 4 * (size_t)h->ndim;
    if (len < h->header_len)
        return fail(c, DJ_ERR_PARSE,
                    "truncated header: %d dimensions need a %zu-byte header, file has %zu bytes",
                    h->ndim, h->header_len, len);

    /* The implied size, in 64 bits with overflow checks; a zero dimension
     * makes the array empty whatever the others say. */
    int empty = 0, overflow = 0;
    uint64_t bytes = h->elem_size;
    for (int i = 0; i < h->ndim; i++) {
        h->dims[i] = load_be32(p + 4 + 4 * (size_t)i);
        if (h->dims[i] == 0)
            empty = 1;
    }
    for (int i = 0; i < h->ndim && !empty && !overflow; i++) {
        if (h->dims[i] > UINT64_MAX / bytes)
            overflow = 1;
        else
            bytes *= h->dims[i];
    }
    if (empty)
        bytes = 0;

    size_t have = len - h->header_len;
    if (overflow)
        return fail(c, DJ_ERR_PARSE,
                    "truncated: %s %s dimensions imply more than 2^64 bytes of data, "
                    "file has %zu",
                    dims_str(h->dims, h->ndim, shape, sizeof shape), dj_idx_type_name(h->type),
                    have);
    if (bytes > have)
        return fail(c, DJ_ERR_PARSE, "truncated: header says %" PRIu64 " bytes of data, file has %zu",
                    bytes, have);
    if (bytes < have)
        return fail(c, DJ_ERR_PARSE,
                    "trailing garbage: header says %" PRIu64
                    " bytes of data, file has %zu (%zu extra)",
                    bytes, have, have - (size_t)bytes);
    if (len > c->max_bytes)
        return fail(c, DJ_ERR_RANGE, "%zu bytes exceed the limit of %" PRIu64 " bytes", len,
                    c->max_bytes);
    h->data_len = (size_t)bytes;
    h->count = h->data_len / h->elem_size;
    return DJ_OK;
}

/* Big-endian elements to host order, in place; portable whatever the host
 * byte order (the compiler turns these into byte swaps or nothing). */
static void to_host_order(uint8_t *d, size_t count, size_t elem_size)
{
    size_t i;
    switch (elem_size) {
    case 2:
        for (i = 0; i < count; i++, d += 2) {
            uint16_t v = (uint16_t)((unsigned)d[0] << 8 | d[1]);
            memcpy(d, &v, 2);
        }
        break;
    case 4:
        for (i = 0; i < count; i++, d += 4) {
            uint32_t v = load_be32(d);
            memcpy(d, &v, 4);
        }
        break;
    case 8:
        for (i = 0; i < count; i++, d += 8) {
            uint64_t v = (uint64_t)load_be32(d) << 32 | load_be32(d + 4);
            memcpy(d, &v, 8);
        }
        break;
    default: break;
    }
}

static void fill_out(const idx_header *h, dj_idx *out)
{
    out->type = h->type;
    out->ndim = h->ndim;
    memcpy(out->dims, h->dims, sizeof out->dims);
    out->count = h->count;
    out->elem_size = h->elem_size;
}

/* Parse an IDX stream in a malloc'd buffer that we own (it is freed or
 * becomes out->data): the payload moves to the front and is converted. */
static dj_status take_owned(const idx_ctx *c, uint8_t *buf, size_t len, dj_idx *out)
{
    idx_header h;
    dj_status st = parse_header(c, buf, len, &h);
    if (st) {
        free(buf);
        return st;
    }
    fill_out(&h, out);
    if (h.count == 0) {
        free(buf);
        return DJ_OK;
    }
    memmove(buf, buf + h.header_len, h.data_len);
    to_host_order(buf, h.count, h.elem_size);
    uint8_t *shrunk = realloc(buf, h.data_len);
    out->data = shrunk ? shrunk : buf;
    return DJ_OK;
}

/* Inflate a whole gzip stream (one or more members) into a new buffer of
 * at most c->max_bytes bytes. */
static dj_status gunzip(const idx_ctx *c, const uint8_t *in, size_t in_len, uint8_t **out,
                        size_t *out_len)
{
    const uint64_t limit = c->max_bytes;
    const size_t cap_max = (size_t)limit + 1; /* one more byte shows the limit is passed */
    uint64_t ratio_bound = in_len > UINT64_MAX / DEFLATE_MAX_RATIO
                               ? UINT64_MAX
                               : (uint64_t)in_len * DEFLATE_MAX_RATIO + 64;

    /* First guess: the size in the last member's trailer if believable
     * (it is the size mod 2^32 and may lie), else four times the input. */
    uint64_t guess = 0;
    if (in_len >= 18) {
        const uint8_t *t = in + in_len - 4;
        guess = (uint32_t)t[0] | (uint32_t)t[1] << 8 | (uint32_t)t[2] << 16 | (uint32_t)t[3] << 24;
    }
    if (guess == 0 || guess > ratio_bound)
        guess = in_len > UINT64_MAX / 4 ? UINT64_MAX : (uint64_t)in_len * 4;
    if (guess < 64)
        guess = 64;
    if (guess > cap_max)
        guess = cap_max;
    size_t cap = (size_t)guess;

    uint8_t *buf = malloc(cap);
    if (!buf)
        return fail(c, DJ_ERR_NOMEM, "cannot allocate %zu bytes for decompression", cap);

    z_stream zs;
    memset(&zs, 0, sizeof zs);
    if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK) {
        free(buf);
        return fail(c, DJ_ERR_NOMEM, "cannot initialise zlib");
    }

    dj_status st = DJ_OK;
    size_t in_pos = 0; /* bytes handed to zlib so far */
    size_t olen = 0;
    for (;;) {
        if (zs.avail_in == 0 && in_pos < in_len) {
            size_t chunk = in_len - in_pos;
            if (chunk > UINT_MAX)
                chunk = UINT_MAX;
            zs.next_in = in + in_pos;
            zs.avail_in = (uInt)chunk;
            in_pos += chunk;
        }
        if (olen == cap) {
            if (cap >= cap_max) { /* not reached: olen > limit is caught below */
                st = fail(c, DJ_ERR_RANGE,
                          "gzip data decompresses to more than the limit of %" PRIu64 " bytes",
                          limit);
                break;
            }
            size_t ncap = cap <= cap_max / 2 ? cap * 2 : cap_max;
            uint8_t *nbuf = realloc(buf, ncap);
            if (!nbuf) {
                st = fail(c, DJ_ERR_NOMEM, "cannot allocate %zu bytes for decompression", ncap);
                break;
            }
            buf = nbuf;
            cap = ncap;
        }
        size_t room = cap - olen;
        zs.next_out = buf + olen;
        zs.avail_out = room > UINT_MAX ? UINT_MAX : (uInt)room;
        uInt before = zs.avail_out;
        int ret = inflate(&zs, Z_NO_FLUSH);
        olen += before - zs.avail_out;
        if (olen > limit) {
            st = fail(c, DJ_ERR_RANGE,
                      "gzip data decompresses to more than the limit of %" PRIu64 " bytes", limit);
            break;
        }
        if (ret == Z_STREAM_END) {
            size_t left = zs.avail_in + (in_len - in_pos);
            if (left == 0)
                break;
            /* Chunks are contiguous, so next_in is where the rest starts. */
            if (left >= 2 && zs.next_in[0] == 0x1f && zs.next_in[1] == 0x8b) {
                inflateReset(&zs); /* another gzip member follows */
                continue;
            }
            st = fail(c, DJ_ERR_PARSE, "trailing garbage: %zu byte%s after the gzip stream",
                      left, left == 1 ? "" : "s");
            break;
        }
        if (ret == Z_OK)
            continue;
        if (ret == Z_BUF_ERROR) {
            if (zs.avail_in == 0 && in_pos == in_len) {
                st = fail(c, DJ_ERR_PARSE,
                          "truncated gzip stream: compressed data ends after %zu "
                          "decompressed bytes",
                          olen);
                break;
            }
            if (zs.avail_in == 0 || zs.avail_out == 0)
                continue; /* more input or output room comes on the next turn */
        }
        if (ret == Z_MEM_ERROR) {
            st = fail(c, DJ_ERR_NOMEM, "out of memory in zlib");
            break;
        }
        st = fail(c, DJ_ERR_PARSE, "corrupt gzip data: %s", zs.msg ? zs.msg : "invalid stream");
        break;
    }
    inflateEnd(&zs);
    if (st) {
        free(buf);
        return st;
    }
    *out = buf;
    *out_len = olen;
    return DJ_OK;
}

dj_status dj_idx_load_mem(const void *buf, size_t len, const char *name, uint64_t max_bytes,
                          dj_idx *out, char *err, size_t errlen)
{
    idx_ctx c;
    init_ctx(&c, name, max_bytes, err, errlen);
    if (!out)
        return fail(&c, DJ_ERR_ARG, "no output struct given");
    memset(out, 0, sizeof *out);
    if (!buf && len > 0)
        return fail(&c, DJ_ERR_ARG, "NULL buffer with length %zu", len);

    const uint8_t *p = buf;
    if (is_gzip(p, len)) {
        uint8_t *raw = NULL;
        size_t raw_len = 0;
        dj_status st = gunzip(&c, p, len, &raw, &raw_len);
        if (st)
            return st;
        return take_owned(&c, raw, raw_len, out);
    }

    idx_header h;
    dj_status st = parse_header(&c, p, len, &h);
    if (st)
        return st;
    if (h.count > 0) {
        uint8_t *data = malloc(h.data_len);
        if (!data)
            return fail(&c, DJ_ERR_NOMEM, "cannot allocate %zu bytes of data", h.data_len);
        memcpy(data, p + h.header_len, h.data_len);
        to_host_order(data, h.count, h.elem_size);
        out->data = data;
    }
    fill_out(&h, out);
    return DJ_OK;
}

/* Read a whole file into a malloc'd buffer of at most c->max_bytes bytes. */
static dj_status read_file(const idx_ctx *c, const char *path, uint8_t **out, size_t *out_len)
{
    char ebuf[128];
    FILE *f = fopen(path, "rb");
    if (!f)
        return fail(c, DJ_ERR_IO, "cannot open: %s", errno_str(errno, ebuf, sizeof ebuf));

    const uint64_t limit = c->max_bytes;
    size_t cap = 1 << 16;
    struct stat sb;
    if (fstat(fileno(f), &sb) == 0) {
        if (S_ISDIR(sb.st_mode)) {
            fclose(f);
            return fail(c, DJ_ERR_IO, "is a directory, not an IDX file");
        }
        if (S_ISREG(sb.st_mode) && sb.st_size >= 0) {
            if ((uint64_t)sb.st_size > limit) {
                fclose(f);
                return fail(c, DJ_ERR_RANGE,
                            "file is %" PRIu64 " bytes, over the limit of %" PRIu64 " bytes",
                            (uint64_t)sb.st_size, limit);
            }
            cap = (size_t)sb.st_size + 1; /* +1: EOF shows in the first read */
        }
    }

    dj_status st = DJ_OK;
    uint8_t *buf = malloc(cap);
    size_t len = 0;
    if (!buf)
        st = fail(c, DJ_ERR_NOMEM, "cannot allocate %zu bytes to read the file", cap);
    while (!st) {
        if (len == cap) {
            if (cap > limit) {
                st = fail(c, DJ_ERR_RANGE, "file is larger than the limit of %" PRIu64 " bytes",
                          limit);
                break;
            }
            size_t ncap = cap <= ((size_t)limit + 1) / 2 ? cap * 2 : (size_t)limit + 1;
            uint8_t *nbuf = realloc(buf, ncap);
            if (!nbuf) {
                st = fail(c, DJ_ERR_NOMEM, "cannot allocate %zu bytes to read the file", ncap);
                break;
            }
            buf = nbuf;
            cap = ncap;
        }
        size_t want = cap - len;
        size_t got = fread(buf + len, 1, want, f);
        len += got;
        if (got < want) {
            if (ferror(f))
                st = fail(c, DJ_ERR_IO, "read error after %zu bytes: %s", len,
                          errno_str(errno, ebuf, sizeof ebuf));
            break;
        }
    }
    fclose(f);
    if (!st && len > limit)
        st = fail(c, DJ_ERR_RANGE, "file is larger than the limit of %" PRIu64 " bytes", limit);
    if (st) {
        free(buf);
        return st;
    }
    *out = buf;
    *out_len = len;
    return DJ_OK;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && memcmp(s + n - m, suffix, m) == 0;
}

dj_status dj_idx_load_file(const char *path, uint64_t max_bytes, dj_idx *out, char *err,
                           size_t errlen)
{
    idx_ctx c;
    init_ctx(&c, path ? path : "(null)", max_bytes, err, errlen);
    if (!out)
        return fail(&c, DJ_ERR_ARG, "no output struct given");
    memset(out, 0, sizeof *out);
    if (!path)
        return fail(&c, DJ_ERR_ARG, "no path given");

    uint8_t *buf = NULL;
    size_t len = 0;
    dj_status st = read_file(&c, path, &buf, &len);
    if (st)
        return st;

    if (is_gzip(buf, len)) {
        uint8_t *raw = NULL;
        size_t raw_len = 0;
        st = gunzip(&c, buf, len, &raw, &raw_len);
        free(buf);
        if (st)
            return st;
        return take_owned(&c, raw, raw_len, out);
    }
    if (ends_with(path, ".gz")) {
        if (len == 0)
            st = fail(&c, DJ_ERR_PARSE, "empty, expected gzip data (the name ends in .gz)");
        else if (len >= 4 && buf[0] == 0 && buf[1] == 0)
            st = fail(&c, DJ_ERR_PARSE,
                      "not gzip data although the name ends in .gz (it starts like an "
                      "uncompressed IDX file: %02x %02x %02x %02x; rename it without .gz)",
                      buf[0], buf[1], buf[2], buf[3]);
        else
            st = fail(&c, DJ_ERR_PARSE,
                      "not gzip data although the name ends in .gz (first byte %02x, gzip "
                      "starts with 1f 8b)",
                      buf[0]);
        free(buf);
        return st;
    }
    return take_owned(&c, buf, len, out);
}
