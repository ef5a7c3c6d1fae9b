/* test_idx.c - the IDX reader and the MNIST-style dataset helper.
 *
 * Small IDX files, raw and gzip'd (written with zlib here), go into a fresh
 * mkdtemp directory under /tmp that is removed at the end. Every kind of
 * malformed input is checked for its status and for a message that names
 * the file. If Debian's dataset-fashion-mnist package is installed, the real
 * files are loaded too; otherwise that part says it was skipped. */
#define _XOPEN_SOURCE 700
#define ZLIB_CONST

#include <ftw.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "dojo/dataset.h"
#include "dojo/idx.h"
#include "harness.h"

static char g_dir[64]; /* the temporary directory */

/* ---- building test inputs ---------------------------------------------- */

typedef struct {
    uint8_t *p;
    size_t len, cap;
} bytes;

static void put(bytes *b, const void *src, size_t n)
{
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->len + n)
            cap *= 2;
        uint8_t *np = realloc(b->p, cap);
        if (!np) {
            fprintf(stderr, "test_idx: out of memory\n");
            exit(1);
        }
        b->p = np;
        b->cap = cap;
    }
    if (n)
        memcpy(b->p + b->len, src, n);
    b->len += n;
}

static void put_byte(bytes *b, uint8_t v)
{
    put(b, &v, 1);
}

static void put_be32(bytes *b, uint32_t v)
{
    uint8_t q[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    put(b, q, 4);
}

static void put_zeros(bytes *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        put_byte(b, 0);
}

/* Header: 00 00 type ndim, then the dims. */
static void put_header(bytes *b, int type, int ndim, const uint32_t *dims)
{
    put_byte(b, 0);
    put_byte(b, 0);
    put_byte(b, (uint8_t)type);
    put_byte(b, (uint8_t)ndim);
    for (int i = 0; i < ndim; i++)
        put_be32(b, dims[i]);
}

/* n host-order elements of `size` bytes, written big-endian. */
static void put_elems_be(bytes *b, const void *host, size_t n, size_t size)
{
    const uint8_t *h = host;
    for (size_t i = 0; i < n; i++) {
        uint64_t v = 0;
        if (size == 1) {
            v = h[i];
        } else if (size == 2) {
            uint16_t x;
            memcpy(&x, h + 2 * i, 2);
            v = x;
        } else if (size == 4) {
            uint32_t x;
            memcpy(&x, h + 4 * i, 4);
            v = x;
        } else {
            memcpy(&v, h + 8 * i, 8);
        }
        for (size_t k = size; k-- > 0;)
            put_byte(b, (uint8_t)(v >> (8 * k)));
    }
}

static void bytes_free(bytes *b)
{
    free(b->p);
    memset(b, 0, sizeof *b);
}

/* gzip of `in` as one member (or two members split at `split` if > 0). */
static bytes gzip_of(const uint8_t *in, size_t len, size_t split)
{
    bytes out = {0};
    size_t parts[2][2] = {{0, split ? split : len}, {split, len}};
    for (int m = 0; m < (split ? 2 : 1); m++) {
        z_stream zs;
        memset(&zs, 0, sizeof zs);
        if (deflateInit2(&zs, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
            fprintf(stderr, "test_idx: deflateInit2 failed\n");
            exit(1);
        }
        size_t n = parts[m][1] - parts[m][0];
        uLong bound = deflateBound(&zs, (uLong)n);
        uint8_t *tmp = malloc(bound);
        zs.next_in = in + parts[m][0];
        zs.avail_in = (uInt)n;
        zs.next_out = tmp;
        zs.avail_out = (uInt)bound;
        if (!tmp || deflate(&zs, Z_FINISH) != Z_STREAM_END) {
            fprintf(stderr, "test_idx: deflate failed\n");
            exit(1);
        }
        put(&out, tmp, bound - zs.avail_out);
        free(tmp);
        deflateEnd(&zs);
    }
    return out;
}

/* Write a file in the temporary directory; returns its path (static). */
static const char *write_file(const char *name, const void *data, size_t len)
{
    static char path[256];
    snprintf(path, sizeof path, "%s/%s", g_dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || (len && fwrite(data, 1, len, f) != len) || fclose(f) != 0) {
        fprintf(stderr, "test_idx: cannot write %s\n", path);
        exit(1);
    }
    return path;
}

static const char *write_gz(const char *name, const bytes *raw)
{
    bytes gz = gzip_of(raw->p, raw->len, 0);
    const char *path = write_file(name, gz.p, gz.len);
    bytes_free(&gz);
    return path;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* ---- checking failures ------------------------------------------------- */

/* Load `path` and expect status `want` with a message holding the path and
 * `needle`. */
static void expect_file_fail(const char *path, uint64_t max_bytes, dj_status want,
                             const char *needle, int line)
{
    char err[DJ_IDX_ERR_LEN];
    dj_idx t;
    memset(&t, 0xAB, sizeof t);
    dj_status st = dj_idx_load_file(path, max_bytes, &t, err, sizeof err);
    CHECK(st == want, "line %d: %s: status %s, want %s (%s)", line, path, dj_status_str(st),
          dj_status_str(want), err);
    CHECK(strncmp(err, path, strlen(path)) == 0, "line %d: message does not start with %s: %s",
          line, path, err);
    CHECK(strstr(err, needle) != NULL, "line %d: message lacks \"%s\": %s", line, needle, err);
    CHECK(t.data == NULL && t.count == 0 && t.ndim == 0, "line %d: output not zeroed", line);
    dj_idx_free(&t);
}

/* The same bytes, raw and gzip'd, from a file and from memory. */
static void expect_bytes_fail(const char *name, const bytes *b, dj_status want,
                              const char *needle, int line)
{
    char gzname[128], err[DJ_IDX_ERR_LEN];
    expect_file_fail(write_file(name, b->p, b->len), 0, want, needle, line);
    snprintf(gzname, sizeof gzname, "%s.gz", name);
    expect_file_fail(write_gz(gzname, b), 0, want, needle, line);

    dj_idx t;
    dj_status st = dj_idx_load_mem(b->p, b->len, name, 0, &t, err, sizeof err);
    CHECK(st == want && strncmp(err, name, strlen(name)) == 0 && strstr(err, needle),
          "line %d: memory load of %s: %s: %s", line, name, dj_status_str(st), err);
    dj_idx_free(&t);
}

#define FILE_FAILS(path, max, want, needle) expect_file_fail(path, max, want, needle, __LINE__)
#define BYTES_FAIL(name, b, want, needle) expect_bytes_fail(name, b, want, needle, __LINE__)

/* ---- the tests --------------------------------------------------------- */

/* Every element type survives raw and gzip'd, from file and from memory. */
static void test_types(void)
{
    static const uint8_t u8[6] = {0, 1, 127, 128, 255, 42};
    static const int8_t i8[6] = {0, -1, -128, 127, 5, -7};
    static const int16_t i16[6] = {0, -1, -32768, 32767, 0x1234, -2};
    static const int32_t i32[6] = {0, -1, INT32_MIN, INT32_MAX, 0x12345678, -123456};
    const float f32[6] = {0.0f, -0.0f, 1.5f, -3.25e10f, INFINITY, 1e-40f};
    const double f64[6] = {0.0, -1.0, 3.141592653589793, 1e300, -INFINITY, 5e-324};
    const struct {
        int type;
        const void *vals;
        size_t size;
    } cases[] = {
        {DJ_IDX_U8, u8, 1},  {DJ_IDX_I8, i8, 1},  {DJ_IDX_I16, i16, 2},
        {DJ_IDX_I32, i32, 4}, {DJ_IDX_F32, f32, 4}, {DJ_IDX_F64, f64, 8},
    };
    const uint32_t dims[2] = {2, 3};

    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        const char *tn = dj_idx_type_name(cases[k].type);
        CHECK(dj_idx_type_size(cases[k].type) == cases[k].size, "size of %s", tn);
        bytes b = {0};
        put_header(&b, cases[k].type, 2, dims);
        put_elems_be(&b, cases[k].vals, 6, cases[k].size);
        char name[64], path[4][256];
        snprintf(name, sizeof name, "types-%s", tn);
        snprintf(path[0], sizeof path[0], "%s", write_file(name, b.p, b.len));
        snprintf(name, sizeof name, "types-%s.gz", tn);
        snprintf(path[1], sizeof path[1], "%s", write_gz(name, &b));

        for (int way = 0; way < 4; way++) {
            char err[DJ_IDX_ERR_LEN] = "";
            dj_idx t;
            dj_status st;
            if (way < 2) {
                st = dj_idx_load_file(path[way], 0, &t, err, sizeof err);
            } else if (way == 2) {
                st = dj_idx_load_mem(b.p, b.len, "mem", 0, &t, err, sizeof err);
            } else {
                bytes gz = gzip_of(b.p, b.len, 0);
                st = dj_idx_load_mem(gz.p, gz.len, "mem.gz", 0, &t, err, sizeof err);
                bytes_free(&gz);
            }
            CHECK(st == DJ_OK, "%s way %d: %s", tn, way, err);
            if (st)
                continue;
            CHECK((int)t.type == cases[k].type && t.ndim == 2 && t.dims[0] == 2 &&
                      t.dims[1] == 3 && t.dims[2] == 0 && t.count == 6 &&
                      t.elem_size == cases[k].size,
                  "%s way %d: header fields", tn, way);
            CHECK(t.data && memcmp(t.data, cases[k].vals, 6 * cases[k].size) == 0,
                  "%s way %d: values differ", tn, way);
            char shape[64];
            CHECK(strcmp(dj_idx_shape_str(&t, shape, sizeof shape), "2x3") == 0, "shape %s",
                  shape);
            dj_idx_free(&t);
            CHECK(t.data == NULL && t.count == 0, "free zeroes");
            dj_idx_free(&t); /* twice is harmless */
        }
        bytes_free(&b);
    }
    CHECK(dj_idx_type_size(0x0A) == 0 && strcmp(dj_idx_type_name(0x0A), "unknown") == 0,
          "0x0a is not a type");
    dj_idx_free(NULL);
}

/* NDIM 1..8 load; 0 is malformed, 9 and up unsupported. */
static void test_ndim(void)
{
    for (int nd = 1; nd <= DJ_IDX_MAX_DIMS; nd++) {
        uint32_t dims[DJ_IDX_MAX_DIMS];
        size_t count = 1;
        for (int i = 0; i < nd; i++) {
            dims[i] = (uint32_t)(i < 3 ? 2 + i : 1);
            count *= dims[i];
        }
        bytes b = {0};
        put_header(&b, DJ_IDX_U8, nd, dims);
        for (size_t i = 0; i < count; i++)
            put_byte(&b, (uint8_t)i);
        char err[DJ_IDX_ERR_LEN];
        dj_idx t;
        dj_status st = dj_idx_load_mem(b.p, b.len, "nd", 0, &t, err, sizeof err);
        CHECK(st == DJ_OK && t.ndim == nd && t.count == count, "ndim %d: %s", nd, err);
        CHECK(st || ((uint8_t *)t.data)[count - 1] == (uint8_t)(count - 1), "ndim %d data", nd);
        dj_idx_free(&t);
        bytes_free(&b);
    }

    bytes b = {0};
    put_header(&b, DJ_IDX_U8, 0, NULL);
    put_byte(&b, 1);
    BYTES_FAIL("ndim0-idx", &b, DJ_ERR_PARSE, "number of dimensions is 0");
    bytes_free(&b);

    uint32_t ones[255];
    for (int i = 0; i < 255; i++)
        ones[i] = 1;
    put_header(&b, DJ_IDX_U8, 9, ones);
    put_byte(&b, 1);
    BYTES_FAIL("ndim9-idx", &b, DJ_ERR_UNSUPPORTED, "9 dimensions; this reader supports 1 to 8");
    bytes_free(&b);
    put_header(&b, DJ_IDX_U8, 255, ones);
    put_byte(&b, 1);
    BYTES_FAIL("ndim255-idx", &b, DJ_ERR_UNSUPPORTED, "255 dimensions");
    bytes_free(&b);
}

/* Malformed headers and data sizes. */
static void test_malformed(void)
{
    bytes b = {0};

    static const uint8_t bad_magic[] = {0x01, 0x00, 0x08, 0x01, 0, 0, 0, 1, 7};
    put(&b, bad_magic, sizeof bad_magic);
    BYTES_FAIL("magic-idx", &b, DJ_ERR_PARSE, "not an IDX file: magic is 01 00 08 01");
    bytes_free(&b);
    static const uint8_t text[] = "P5\n28 28\n255\n";
    put(&b, text, sizeof text - 1);
    BYTES_FAIL("pgm-idx", &b, DJ_ERR_PARSE, "not an IDX file");
    bytes_free(&b);

    const int bad_types[] = {0x00, 0x07, 0x0A, 0x0F, 0xFF};
    for (size_t k = 0; k < sizeof bad_types / sizeof bad_types[0]; k++) {
        uint32_t one = 1;
        char needle[64];
        put_header(&b, bad_types[k], 1, &one);
        put_byte(&b, 0);
        snprintf(needle, sizeof needle, "unknown IDX element type 0x%02x", bad_types[k]);
        BYTES_FAIL("type-idx", &b, DJ_ERR_PARSE, needle);
        bytes_free(&b);
    }

    /* Short inputs. */
    BYTES_FAIL("empty-idx", &b, DJ_ERR_PARSE, "empty");
    put_byte(&b, 0);
    put_byte(&b, 0);
    put_byte(&b, 8);
    BYTES_FAIL("short3-idx", &b, DJ_ERR_PARSE, "truncated: 3 bytes");
    put_byte(&b, 3);
    put_be32(&b, 2);
    BYTES_FAIL("shorthdr-idx", &b, DJ_ERR_PARSE,
               "truncated header: 3 dimensions need a 16-byte header, file has 8 bytes");
    bytes_free(&b);

    /* The message the brief asks for, on a gzip'd file. */
    {
        const uint32_t dims[3] = {60000, 28, 28};
        put_header(&b, DJ_IDX_U8, 3, dims);
        put_zeros(&b, 1000);
        const char *path = write_gz("train-images-idx3-ubyte.gz", &b);
        char want[512], err[DJ_IDX_ERR_LEN];
        snprintf(want, sizeof want, "%s: truncated: header says 47040000 bytes of data, file has 1000",
                 path);
        dj_idx t;
        dj_status st = dj_idx_load_file(path, 0, &t, err, sizeof err);
        CHECK(st == DJ_ERR_PARSE && strcmp(err, want) == 0, "got %s: \"%s\"", dj_status_str(st),
              err);
        BYTES_FAIL("train-images-idx3-ubyte", &b, DJ_ERR_PARSE,
                   "truncated: header says 47040000 bytes of data, file has 1000");
        bytes_free(&b);
    }

    /* Multi-byte types count bytes, not elements. */
    {
        const uint32_t two = 2;
        put_header(&b, DJ_IDX_I32, 1, &two);
        put_zeros(&b, 7);
        BYTES_FAIL("int-short-idx", &b, DJ_ERR_PARSE, "header says 8 bytes of data, file has 7");
        put_zeros(&b, 2);
        BYTES_FAIL("int-long-idx", &b, DJ_ERR_PARSE,
                   "trailing garbage: header says 8 bytes of data, file has 9 (1 extra)");
        bytes_free(&b);
    }

    /* Huge dimensions: rejected by size before any allocation (ASan and the
     * fuzzer's malloc limit would report an attempt). */
    {
        const uint32_t big[DJ_IDX_MAX_DIMS] = {0xFFFFFFFFu, 0xFFFFFFFFu, 0xFFFFFFFFu, 0xFFFFFFFFu,
                                               0xFFFFFFFFu, 0xFFFFFFFFu, 0xFFFFFFFFu, 0xFFFFFFFFu};
        put_header(&b, DJ_IDX_U8, 2, big);
        put_zeros(&b, 10);
        BYTES_FAIL("huge2-idx", &b, DJ_ERR_PARSE,
                   "truncated: header says 18446744065119617025 bytes of data, file has 10");
        bytes_free(&b);
        put_header(&b, DJ_IDX_F64, 3, big);
        put_zeros(&b, 10);
        BYTES_FAIL("huge3-idx", &b, DJ_ERR_PARSE,
                   "truncated: 4294967295x4294967295x4294967295 double dimensions imply more "
                   "than 2^64 bytes of data, file has 10");
        bytes_free(&b);
        put_header(&b, DJ_IDX_U8, 8, big);
        BYTES_FAIL("huge8-idx", &b, DJ_ERR_PARSE, "more than 2^64 bytes");
        bytes_free(&b);
        /* 2^32 * 2^32 ... would wrap to 0 in 64 bits without the check. */
        const uint32_t wrap[3] = {65536, 65536, 65536};
        put_header(&b, DJ_IDX_F64, 3, wrap); /* 2^48 * 8 = 2^51: fits, truncated */
        BYTES_FAIL("wrap-idx", &b, DJ_ERR_PARSE, "header says 2251799813685248 bytes");
        bytes_free(&b);
        const uint32_t wrap4[4] = {65536, 65536, 65536, 65536};
        put_header(&b, DJ_IDX_U8, 4, wrap4); /* 2^64 exactly */
        BYTES_FAIL("wrap4-idx", &b, DJ_ERR_PARSE, "more than 2^64 bytes");
        bytes_free(&b);
    }

    /* A zero dimension is an empty array (documented), whatever the others. */
    {
        const uint32_t dims[3] = {5, 0, 0xFFFFFFFFu};
        for (int nd = 1; nd <= 3; nd++) {
            const uint32_t *d = nd == 1 ? dims + 1 : dims;
            put_header(&b, DJ_IDX_I32, nd, d);
            char err[DJ_IDX_ERR_LEN];
            dj_idx t;
            dj_status st = dj_idx_load_mem(b.p, b.len, "zero", 0, &t, err, sizeof err);
            CHECK(st == DJ_OK && t.count == 0 && t.data == NULL && t.ndim == nd,
                  "zero dim, ndim %d: %s", nd, err);
            dj_idx_free(&t);
            const char *path = write_gz("zero-idx.gz", &b);
            st = dj_idx_load_file(path, 0, &t, err, sizeof err);
            CHECK(st == DJ_OK && t.count == 0 && t.data == NULL, "zero dim gz: %s", err);
            dj_idx_free(&t);
            put_byte(&b, 1);
            BYTES_FAIL("zero-trail-idx", &b, DJ_ERR_PARSE,
                       "trailing garbage: header says 0 bytes of data, file has 1");
            bytes_free(&b);
        }
    }
}

/* gzip-specific failures, limits, and file-level errors. */
static void test_gzip_and_files(void)
{
    char err[DJ_IDX_ERR_LEN];
    dj_idx t;
    dj_status st;
    bytes raw = {0};
    const uint32_t n = 4000;
    put_header(&raw, DJ_IDX_U8, 1, &n);
    for (uint32_t i = 0; i < n; i++)
        put_byte(&raw, (uint8_t)((i * 7) ^ (i >> 3)));
    bytes gz = gzip_of(raw.p, raw.len, 0);

    /* Corruption in the middle of the deflate data. */
    bytes bad = {0};
    put(&bad, gz.p, gz.len);
    for (size_t i = 20; i < 40; i++)
        bad.p[i] ^= 0x55;
    FILE_FAILS(write_file("corrupt.gz", bad.p, bad.len), 0, DJ_ERR_PARSE, "gzip");
    st = dj_idx_load_mem(bad.p, bad.len, NULL, 0, &t, err, sizeof err);
    CHECK(st == DJ_ERR_PARSE && strncmp(err, "<memory>: ", 10) == 0, "mem corrupt: %s", err);
    bytes_free(&bad);

    /* CRC and length in the trailer. */
    put(&bad, gz.p, gz.len);
    bad.p[gz.len - 6] ^= 1;
    FILE_FAILS(write_file("crc.gz", bad.p, bad.len), 0, DJ_ERR_PARSE,
               "corrupt gzip data: incorrect data check");
    bad.p[gz.len - 6] ^= 1;
    bad.p[gz.len - 1] ^= 0x40; /* ISIZE: also the (untrusted) size hint */
    FILE_FAILS(write_file("isize.gz", bad.p, bad.len), 0, DJ_ERR_PARSE,
               "corrupt gzip data: incorrect length check");
    bytes_free(&bad);

    /* Bad header flags / method. */
    put(&bad, gz.p, gz.len);
    bad.p[2] = 7; /* compression method must be 8 */
    FILE_FAILS(write_file("method.gz", bad.p, bad.len), 0, DJ_ERR_PARSE,
               "corrupt gzip data: unknown compression method");
    bytes_free(&bad);

    /* Truncated gzip, at several points. */
    const size_t cuts[] = {2, 5, 10, 11, 30, gz.len / 2, gz.len - 8, gz.len - 1};
    for (size_t k = 0; k < sizeof cuts / sizeof cuts[0]; k++) {
        FILE_FAILS(write_file("cut.gz", gz.p, cuts[k]), 0, DJ_ERR_PARSE, "truncated gzip stream");
        st = dj_idx_load_mem(gz.p, cuts[k], "cut", 0, &t, err, sizeof err);
        CHECK(st == DJ_ERR_PARSE && strstr(err, "truncated gzip"), "mem cut %zu: %s", cuts[k],
              err);
    }

    /* Trailing garbage after the gzip stream, including zero padding. */
    put(&bad, gz.p, gz.len);
    put(&bad, "xyz", 3);
    FILE_FAILS(write_file("trail.gz", bad.p, bad.len), 0, DJ_ERR_PARSE,
               "trailing garbage: 3 bytes after the gzip stream");
    bytes_free(&bad);
    put(&bad, gz.p, gz.len);
    put_zeros(&bad, 512);
    FILE_FAILS(write_file("pad.gz", bad.p, bad.len), 0, DJ_ERR_PARSE,
               "trailing garbage: 512 bytes after the gzip stream");
    bytes_free(&bad);
    put(&bad, gz.p, gz.len);
    put_byte(&bad, 0x1f); /* half a gzip magic */
    FILE_FAILS(write_file("half.gz", bad.p, bad.len), 0, DJ_ERR_PARSE, "trailing garbage: 1 byte after the gzip stream");
    put_byte(&bad, 0x8b); /* a second member that is only a magic */
    FILE_FAILS(write_file("half2.gz", bad.p, bad.len), 0, DJ_ERR_PARSE, "truncated gzip stream");
    bytes_free(&bad);

    /* Several members are one stream (gzip -c a b > c). */
    bytes two = gzip_of(raw.p, raw.len, 1234);
    st = dj_idx_load_file(write_file("two.gz", two.p, two.len), 0, &t, err, sizeof err);
    CHECK(st == DJ_OK && t.count == n && memcmp(t.data, raw.p + 8, n) == 0, "two members: %s",
          err);
    dj_idx_free(&t);
    bytes_free(&two);
    /* A member split inside the header. */
    two = gzip_of(raw.p, raw.len, 3);
    st = dj_idx_load_mem(two.p, two.len, "two", 0, &t, err, sizeof err);
    CHECK(st == DJ_OK && t.count == n, "two members, split header: %s", err);
    dj_idx_free(&t);
    bytes_free(&two);

    /* Content decides, not the name: gzip without .gz loads. */
    st = dj_idx_load_file(write_file("gz-no-suffix-idx", gz.p, gz.len), 0, &t, err, sizeof err);
    CHECK(st == DJ_OK && t.count == n, "gzip without .gz: %s", err);
    dj_idx_free(&t);
    /* But a .gz name must hold gzip. */
    FILE_FAILS(write_file("raw-named.gz", raw.p, raw.len), 0, DJ_ERR_PARSE,
               "not gzip data although the name ends in .gz (it starts like an uncompressed IDX");
    FILE_FAILS(write_file("text.gz", "hello", 5), 0, DJ_ERR_PARSE, "first byte 68");
    FILE_FAILS(write_file("empty.gz", "", 0), 0, DJ_ERR_PARSE, "empty, expected gzip data");

    /* Size limits: decompression bomb, raw file, memory, and the boundary. */
    {
        bytes big = {0};
        const uint32_t mb = 1u << 20;
        put_header(&big, DJ_IDX_U8, 1, &mb);
        put_zeros(&big, mb);
        bytes bomb = gzip_of(big.p, big.len, 0);
        CHECK(bomb.len < 4096, "bomb is small: %zu", bomb.len);
        const char *path = write_file("bomb.gz", bomb.p, bomb.len);
        FILE_FAILS(path, 65536, DJ_ERR_RANGE,
                   "gzip data decompresses to more than the limit of 65536 bytes");
        st = dj_idx_load_mem(bomb.p, bomb.len, "bomb", 65536, &t, err, sizeof err);
        CHECK(st == DJ_ERR_RANGE, "mem bomb: %s", err);
        st = dj_idx_load_file(path, 0, &t, err, sizeof err);
        CHECK(st == DJ_OK && t.count == mb, "1 MiB under the default limit: %s", err);
        dj_idx_free(&t);
        FILE_FAILS(write_file("big-idx", big.p, big.len), 65536, DJ_ERR_RANGE,
                   "file is 1048584 bytes, over the limit of 65536 bytes");
        st = dj_idx_load_mem(big.p, big.len, "big", 65536, &t, err, sizeof err);
        CHECK(st == DJ_ERR_RANGE && strstr(err, "exceed the limit"), "mem big: %s", err);
        bytes_free(&big);
        bytes_free(&bomb);

        /* Exactly at the limit is fine, one byte over is not. */
        uint64_t exact = raw.len;
        st = dj_idx_load_mem(gz.p, gz.len, "exact", exact, &t, err, sizeof err);
        CHECK(st == DJ_OK, "at the limit: %s", err);
        dj_idx_free(&t);
        st = dj_idx_load_mem(gz.p, gz.len, "exact", exact - 1, &t, err, sizeof err);
        CHECK(st == DJ_ERR_RANGE, "over the limit: %s", err);
        st = dj_idx_load_mem(raw.p, raw.len, "exact", exact, &t, err, sizeof err);
        CHECK(st == DJ_OK, "raw at the limit: %s", err);
        dj_idx_free(&t);
        st = dj_idx_load_mem(raw.p, raw.len, "exact", exact - 1, &t, err, sizeof err);
        CHECK(st == DJ_ERR_RANGE, "raw over the limit: %s", err);
    }

    /* Files that cannot be read. */
    char path[256];
    snprintf(path, sizeof path, "%s/no-such-file-idx1-ubyte", g_dir);
    FILE_FAILS(path, 0, DJ_ERR_IO, "cannot open: No such file or directory");
    FILE_FAILS(g_dir, 0, DJ_ERR_IO, "is a directory");

    /* Arguments. */
    CHECK(dj_idx_load_file(NULL, 0, &t, err, sizeof err) == DJ_ERR_ARG, "NULL path");
    CHECK(dj_idx_load_file(path, 0, NULL, err, sizeof err) == DJ_ERR_ARG, "NULL out");
    CHECK(dj_idx_load_mem(NULL, 5, "x", 0, &t, err, sizeof err) == DJ_ERR_ARG, "NULL buffer");
    CHECK(dj_idx_load_mem(NULL, 0, "x", 0, &t, err, sizeof err) == DJ_ERR_PARSE, "empty buffer");
    CHECK(dj_idx_load_mem(raw.p, raw.len, "x", 0, NULL, err, sizeof err) == DJ_ERR_ARG,
          "NULL out (mem)");
    /* No message buffer, and a tiny one. */
    CHECK(dj_idx_load_mem(raw.p, 5, "x", 0, &t, NULL, 0) == DJ_ERR_PARSE, "no err buffer");
    char tiny[8];
    memset(tiny, 'z', sizeof tiny);
    CHECK(dj_idx_load_mem(raw.p, 5, "abcdefghij", 0, &t, tiny, sizeof tiny) == DJ_ERR_PARSE &&
              strcmp(tiny, "abcdefg") == 0,
          "tiny err buffer: %.8s", tiny);

    bytes_free(&raw);
    bytes_free(&gz);
}

/* Small inputs from the fuzzing corpus (fuzz/fuzz_idx.c), one per distinct
 * outcome of the gzip path; none crashed, they are kept so that every
 * branch of the inflate loop stays covered by the unit test. */
static void test_fuzz_regressions(void)
{
    static const struct {
        const char *hex;
        dj_status want;
        const char *needle;
    } cases[] = {
        {"1f8b", DJ_ERR_PARSE, "truncated gzip stream: compressed data ends after 0"},
        {"1f8b0000", DJ_ERR_PARSE, "corrupt gzip data: unknown compression method"},
        {"1f8b0800000302000000621c08008b00", DJ_ERR_PARSE,
         "corrupt gzip data: invalid distance too far back"},
        {"1f8b080000000000020ab6c532c184cabe", DJ_ERR_PARSE, "corrupt gzip data: invalid block type"},
        {"1f8b0800000000020400017e000000000000", DJ_ERR_PARSE,
         "corrupt gzip data: invalid stored block lengths"},
        {"1f8b08000000dcb3dcb3fd67000000000000", DJ_ERR_PARSE,
         "corrupt gzip data: too many length or distance symbols"},
        {"1f8b082b0000080054ca00603b6060830020", DJ_ERR_PARSE,
         "corrupt gzip data: unknown header flags set"},
        {"1f8b080000000000020315ca002c513873f986e9e16468daaf70d1ecd59e6c000000", DJ_ERR_PARSE,
         "corrupt gzip data: invalid code lengths set"},
        {"1f8b08000000000002036360291f60043031000000", DJ_ERR_PARSE,
         "corrupt gzip data: incorrect data check"},
        /* A valid empty member (FTEXT flag set): decompresses to nothing. */
        {"1f8b080100000000950803000000000000000000", DJ_ERR_PARSE, "empty: no IDX header"},
        /* gzip of a [0, 28, 28] ubyte header: a valid empty array. */
        {"1f8b080000000000ff006360e06066800019100600611f39d310000000", DJ_OK, NULL},
        {"1f8b0800000000001d036360e06066800019100600611f39d31000000040", DJ_ERR_PARSE,
         "trailing garbage: 1 byte after the gzip stream"},
        {"00000b010000000000", DJ_ERR_PARSE, "trailing garbage: header says 0 bytes"},
        {"00000e0100000000", DJ_OK, NULL},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        bytes b = {0};
        const char *h = cases[k].hex;
        for (size_t i = 0; h[i] && h[i + 1]; i += 2) {
            unsigned v;
            sscanf(h + i, "%2x", &v);
            put_byte(&b, (uint8_t)v);
        }
        char err[DJ_IDX_ERR_LEN] = "";
        dj_idx t;
        dj_status st = dj_idx_load_mem(b.p, b.len, "fuzz", 1 << 20, &t, err, sizeof err);
        CHECK(st == cases[k].want, "case %zu: %s (%s)", k, dj_status_str(st), err);
        CHECK(st == DJ_OK || (strncmp(err, "fuzz: ", 6) == 0 && strstr(err, cases[k].needle)),
              "case %zu: message %s", k, err);
        CHECK(st != DJ_OK || (t.count == 0 && t.data == NULL), "case %zu: empty array", k);
        dj_idx_free(&t);
        bytes_free(&b);
    }
}

/* ---- dataset directories ----------------------------------------------- */

/* Write one IDX file of a dataset into g_dir/sub (raw, or gzip'd if gz). */
static void ds_write(const char *sub, const char *name, int gz, int type, int ndim,
                     const uint32_t *dims, const uint8_t *vals)
{
    bytes b = {0};
    put_header(&b, type, ndim, dims);
    size_t count = 1;
    for (int i = 0; i < ndim; i++)
        count *= dims[i];
    size_t esz = dj_idx_type_size(type);
    for (size_t i = 0; i < count; i++) {
        for (size_t k = 1; k < esz; k++)
            put_byte(&b, 0);
        put_byte(&b, vals ? vals[i] : (uint8_t)(i * 3));
    }
    char rel[256];
    snprintf(rel, sizeof rel, "%s/%s%s", sub, name, gz ? ".gz" : "");
    if (gz)
        write_gz(rel, &b);
    else
        write_file(rel, b.p, b.len);
    bytes_free(&b);
}

/* A good little dataset: 6 train and 4 test images of 3x4. */
static void ds_make(const char *sub)
{
    static const uint8_t train_lb[6] = {0, 9, 3, 3, 1, 7};
    static const uint8_t test_lb[4] = {2, 9, 0, 8};
    char path[256];
    snprintf(path, sizeof path, "%s/%s", g_dir, sub);
    mkdir(path, 0700);
    ds_write(sub, "train-images-idx3-ubyte", 1, DJ_IDX_U8, 3, (const uint32_t[]){6, 3, 4}, NULL);
    ds_write(sub, "train-labels-idx1-ubyte", 0, DJ_IDX_U8, 1, (const uint32_t[]){6}, train_lb);
    ds_write(sub, "t10k-images-idx3-ubyte", 0, DJ_IDX_U8, 3, (const uint32_t[]){4, 3, 4}, NULL);
    ds_write(sub, "t10k-labels-idx1-ubyte", 1, DJ_IDX_U8, 1, (const uint32_t[]){4}, test_lb);
}

static void ds_rm(const char *sub, const char *file)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s/%s", g_dir, sub, file);
    remove(path);
}

/* Open g_dir/sub and expect failure `want` with all needles in the message. */
static void ds_expect(const char *sub, int n_classes, dj_status want, const char *needle1,
                      const char *needle2, int line)
{
    char dir[256], err[DJ_IDX_ERR_LEN] = "";
    snprintf(dir, sizeof dir, "%s/%s", g_dir, sub);
    dj_idx_dataset_opts opts = {n_classes, 0};
    dj_idx_dataset ds;
    dj_status st = dj_idx_dataset_open(dir, &opts, &ds, err, sizeof err);
    CHECK(st == want, "line %d: %s: status %s, want %s (%s)", line, sub, dj_status_str(st),
          dj_status_str(want), err);
    CHECK(strstr(err, dir) != NULL, "line %d: message does not name %s: %s", line, dir, err);
    CHECK(strstr(err, needle1) != NULL, "line %d: message lacks \"%s\": %s", line, needle1, err);
    CHECK(!needle2 || strstr(err, needle2) != NULL, "line %d: message lacks \"%s\": %s", line,
          needle2, err);
    CHECK(ds.train.images.data == NULL && ds.train.images_path == NULL && ds.n_classes == 0,
          "line %d: output not zeroed", line);
    dj_idx_dataset_free(&ds);
}
#define DS_FAILS(sub, nc, want, n1, n2) ds_expect(sub, nc, want, n1, n2, __LINE__)

static void test_dataset(void)
{
    char dir[256], err[DJ_IDX_ERR_LEN];
    dj_idx_dataset ds;
    dj_status st;

    ds_make("ok");
    snprintf(dir, sizeof dir, "%s/ok/", g_dir); /* a trailing slash is fine */
    dj_idx_dataset_opts ten = {10, 0};
    st = dj_idx_dataset_open(dir, &ten, &ds, err, sizeof err);
    CHECK(st == DJ_OK, "good dataset: %s", err);
    if (st == DJ_OK) {
        CHECK(ds.train.n == 6 && ds.test.n == 4 && ds.rows == 3 && ds.cols == 4 &&
                  ds.n_classes == 10,
              "good dataset: n %zu/%zu, %ux%u, %d classes", ds.train.n, ds.test.n, ds.rows,
              ds.cols, ds.n_classes);
        const uint8_t *px = ds.train.images.data, *lb = ds.test.labels.data;
        CHECK(px[5] == 15 && px[71] == (uint8_t)(71 * 3) && lb[1] == 9, "good dataset: values");
        CHECK(strstr(ds.train.images_path, "ok/train-images-idx3-ubyte.gz") &&
                  strstr(ds.train.labels_path, "ok/train-labels-idx1-ubyte") &&
                  !strstr(ds.train.labels_path, "//"),
              "paths %s %s", ds.train.images_path, ds.train.labels_path);
    }
    dj_idx_dataset_free(&ds);
    dj_idx_dataset_free(&ds);

    /* Class count inferred: max label 9 -> 10; and with an explicit 12. */
    st = dj_idx_dataset_open(dir, NULL, &ds, err, sizeof err);
    CHECK(st == DJ_OK && ds.n_classes == 10, "inferred classes %d: %s", ds.n_classes, err);
    dj_idx_dataset_free(&ds);
    dj_idx_dataset_opts twelve = {12, 0};
    st = dj_idx_dataset_open(dir, &twelve, &ds, err, sizeof err);
    CHECK(st == DJ_OK && ds.n_classes == 12, "12 classes: %s", err);
    dj_idx_dataset_free(&ds);

    /* Both NAME and NAME.gz: the raw one wins. */
    ds_write("ok", "train-images-idx3-ubyte", 0, DJ_IDX_U8, 3, (const uint32_t[]){6, 3, 4}, NULL);
    st = dj_idx_dataset_open(dir, &ten, &ds, err, sizeof err);
    CHECK(st == DJ_OK && !strstr(ds.train.images_path, ".gz"), "raw preferred: %s",
          st ? err : ds.train.images_path);
    dj_idx_dataset_free(&ds);

    /* Labels out of range. */
    DS_FAILS("ok", 9, DJ_ERR_RANGE, "ok/train-labels-idx1-ubyte",
             "label 9 at index 1 is not below the class count 9");
    DS_FAILS("ok", -1, DJ_ERR_ARG, "class count -1", NULL);
    DS_FAILS("ok", 300, DJ_ERR_ARG, "class count 300", NULL);

    /* Missing files: one, two, all. */
    ds_make("miss1");
    ds_rm("miss1", "t10k-labels-idx1-ubyte.gz");
    DS_FAILS("miss1", 10, DJ_ERR_IO,
             "missing t10k-labels-idx1-ubyte (looked for t10k-labels-idx1-ubyte and "
             "t10k-labels-idx1-ubyte.gz)",
             NULL);
    ds_rm("miss1", "train-images-idx3-ubyte.gz");
    DS_FAILS("miss1", 10, DJ_ERR_IO,
             "missing 2 of the 4 dataset files: train-images-idx3-ubyte[.gz], "
             "t10k-labels-idx1-ubyte[.gz]",
             NULL);
    snprintf(dir, sizeof dir, "%s/empty", g_dir);
    mkdir(dir, 0700);
    DS_FAILS("empty", 10, DJ_ERR_IO, "missing 4 of the 4", NULL);
    DS_FAILS("no-such-dir", 10, DJ_ERR_IO, "cannot open dataset directory", NULL);
    write_file("plainfile", "x", 1);
    DS_FAILS("plainfile", 10, DJ_ERR_IO, "not a directory", NULL);

    /* Counts that differ: names both files. */
    ds_make("count");
    ds_write("count", "t10k-labels-idx1-ubyte", 1, DJ_IDX_U8, 1, (const uint32_t[]){3}, NULL);
    DS_FAILS("count", 0, DJ_ERR_PARSE, "count/t10k-images-idx3-ubyte has 4 images",
             "count/t10k-labels-idx1-ubyte.gz has 3 labels");

    /* Wrong types and shapes. */
    ds_make("type");
    ds_write("type", "train-labels-idx1-ubyte", 0, DJ_IDX_I32, 1, (const uint32_t[]){6}, NULL);
    DS_FAILS("type", 0, DJ_ERR_PARSE, "type/train-labels-idx1-ubyte",
             "expected ubyte labels [N], got int [6]");
    ds_make("shape");
    ds_write("shape", "t10k-images-idx3-ubyte", 0, DJ_IDX_U8, 2, (const uint32_t[]){4, 12}, NULL);
    DS_FAILS("shape", 0, DJ_ERR_PARSE, "shape/t10k-images-idx3-ubyte",
             "expected ubyte images [N, rows, cols], got ubyte [4x12]");
    ds_make("size");
    ds_write("size", "t10k-images-idx3-ubyte", 0, DJ_IDX_U8, 3, (const uint32_t[]){4, 4, 3}, NULL);
    DS_FAILS("size", 0, DJ_ERR_PARSE, "test images are 4x3 but the training images",
             "are 3x4");
    ds_make("zero");
    ds_write("zero", "train-images-idx3-ubyte", 1, DJ_IDX_U8, 3, (const uint32_t[]){0, 3, 4},
             NULL);
    ds_write("zero", "train-labels-idx1-ubyte", 0, DJ_IDX_U8, 1, (const uint32_t[]){0}, NULL);
    DS_FAILS("zero", 0, DJ_ERR_PARSE, "zero/train-images-idx3-ubyte.gz",
             "empty image array (shape 0x3x4)");

    /* A broken file inside: the loader's message names it. */
    ds_make("broken");
    snprintf(dir, sizeof dir, "broken/t10k-images-idx3-ubyte");
    write_file(dir, "\0\0\x08\x03\0\0\0\x04", 8);
    DS_FAILS("broken", 0, DJ_ERR_PARSE, "broken/t10k-images-idx3-ubyte: truncated header", NULL);

    CHECK(dj_idx_dataset_open(NULL, NULL, &ds, err, sizeof err) == DJ_ERR_ARG, "NULL dir");
    CHECK(dj_idx_dataset_open(g_dir, NULL, NULL, err, sizeof err) == DJ_ERR_ARG, "NULL out");
}

/* The real Fashion-MNIST from Debian's dataset-fashion-mnist, if present. */
static void test_real_fashion_mnist(void)
{
    struct stat sb;
    if (stat(DJ_FASHION_MNIST_DIR, &sb) != 0) {
        printf("test_idx: %s not found (apt-get install dataset-fashion-mnist): "
               "real-data check skipped\n",
               DJ_FASHION_MNIST_DIR);
        return;
    }
    char err[DJ_IDX_ERR_LEN];
    dj_idx_dataset ds;
    dj_idx_dataset_opts ten = {10, 0};
    dj_status st = dj_idx_dataset_open(DJ_FASHION_MNIST_DIR, &ten, &ds, err, sizeof err);
    CHECK(st == DJ_OK, "Fashion-MNIST: %s", err);
    if (st)
        return;
    CHECK(ds.train.n == 60000 && ds.test.n == 10000 && ds.rows == 28 && ds.cols == 28,
          "Fashion-MNIST shape: %zu/%zu %ux%u", ds.train.n, ds.test.n, ds.rows, ds.cols);
    CHECK(ds.train.images.count == 60000u * 28 * 28 && ds.test.images.count == 10000u * 28 * 28,
          "Fashion-MNIST image counts");
    /* Balanced classes: 6000 and 1000 per class; known first labels. */
    size_t hist[2][10] = {{0}};
    const dj_idx_split *sp[2] = {&ds.train, &ds.test};
    for (int s = 0; s < 2; s++)
        for (size_t i = 0; i < sp[s]->n; i++)
            hist[s][((const uint8_t *)sp[s]->labels.data)[i]]++;
    for (int c = 0; c < 10; c++)
        CHECK(hist[0][c] == 6000 && hist[1][c] == 1000, "class %d: %zu/%zu", c, hist[0][c],
              hist[1][c]);
    const uint8_t *trl = ds.train.labels.data, *tel = ds.test.labels.data;
    CHECK(trl[0] == 9 && trl[1] == 0 && trl[2] == 0 && trl[3] == 3, "first train labels");
    CHECK(tel[0] == 9 && tel[1] == 2 && tel[2] == 1 && tel[3] == 1 && tel[4] == 6,
          "first test labels");
    printf("test_idx: loaded %s: train %zux%ux%u, test %zux%ux%u, %d classes\n",
           DJ_FASHION_MNIST_DIR, ds.train.n, ds.rows, ds.cols, ds.test.n, ds.rows, ds.cols,
           ds.n_classes);
    dj_idx_dataset_free(&ds);
}

int main(void)
{
    snprintf(g_dir, sizeof g_dir, "/tmp/dojo-test-idx-XXXXXX");
    if (!mkdtemp(g_dir)) {
        perror("test_idx: mkdtemp");
        return 1;
    }
    test_types();
    test_ndim();
    test_malformed();
    test_gzip_and_files();
    test_fuzz_regressions();
    test_dataset();
    test_real_fashion_mnist();
    nftw(g_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    struct stat sb;
    CHECK(stat(g_dir, &sb) != 0, "temporary directory %s removed", g_dir);
    return th_done("test_idx");
}
