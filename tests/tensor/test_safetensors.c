/* test_safetensors.c - safetensors round trips (every dtype we store, CFloat
 * tensors with their bias, metadata), a file written byte by byte as the
 * format's specification shows, and every kind of malformed file. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dojo/fileio.h"
#include "dojo/safetensors.h"
#include "harness.h"

static char dir[] = "/tmp/dojo-st-XXXXXX";

static dj_status parse_str(const char *header, const void *data, size_t dlen, char *err, size_t errlen)
{
    size_t hl = strlen(header);
    unsigned char *buf = malloc(8 + hl + dlen + 1);
    for (int i = 0; i < 8; i++)
        buf[i] = (unsigned char)((uint64_t)hl >> (8 * i));
    memcpy(buf + 8, header, hl);
    if (dlen)
        memcpy(buf + 8 + hl, data, dlen);
    dj_st_file *f = NULL;
    dj_status st = dj_safetensors_parse(buf, 8 + hl + dlen, "t.safetensors", &f, err, errlen);
    dj_safetensors_free(f);
    free(buf);
    return st;
}

static void expect_bad(const char *header, size_t dlen, const char *needle)
{
    static unsigned char zeros[256];
    char err[1024] = "";
    dj_status st = parse_str(header, zeros, dlen, err, sizeof err);
    CHECK(st != DJ_OK, "accepted bad file: %s", header);
    CHECK(strstr(err, needle) != NULL && strstr(err, "t.safetensors") != NULL,
          "message for %s: \"%s\" lacks \"%s\"", header, err, needle);
}

int main(void)
{
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    char path[256], err[1024];
    snprintf(path, sizeof path, "%s/a.safetensors", dir);

    /* Round trip. */
    float w[6] = {1, -2, 3.5f, 0, 1e-30f, -0.0f};
    int64_t nbt = 12345678901LL;
    uint8_t c8[4] = {0x38, 0x7f, 0x80, 0x01};
    uint16_t bf[2] = {0x3f80, 0xc000};
    const int64_t s23[2] = {2, 3}, s1[1] = {1}, s4[1] = {4}, s2[1] = {2};
    dj_st_tensor t[] = {
        {"0.weight", DJ_DT_F32, 0, 2, s23, w, sizeof w},
        {"1.num_batches_tracked", DJ_DT_I64, 0, 0, NULL, &nbt, 8},
        {"2.weight_cf8", DJ_DT_CF8_143, 11, 1, s4, c8, 4},
        {"3.bf", DJ_DT_BF16, 0, 1, s2, bf, 4},
        {"4.empty", DJ_DT_F32, 0, 1, (const int64_t[]){0}, NULL, 0},
        {"5.one", DJ_DT_F32, 0, 1, s1, w, 4},
    };
    dj_st_meta meta[] = {{"dojo.epoch", "3"}, {"note", "h\u00e9llo \"q\""}};
    CHECK(dj_safetensors_write(path, t, 6, meta, 2, err, sizeof err) == DJ_OK, "write: %s", err);
    dj_st_file *f = NULL;
    CHECK(dj_safetensors_read(path, &f, err, sizeof err) == DJ_OK, "read: %s", err);
    if (f) {
        CHECK(dj_safetensors_count(f) == 6, "count %zu", dj_safetensors_count(f));
        const dj_st_tensor *a = dj_safetensors_find(f, "0.weight");
        CHECK(a && a->dtype == DJ_DT_F32 && a->ndim == 2 && a->shape[0] == 2 && a->shape[1] == 3 &&
                  a->nbytes == sizeof w && memcmp(a->data, w, sizeof w) == 0, "0.weight round trip");
        const dj_st_tensor *b = dj_safetensors_find(f, "1.num_batches_tracked");
        CHECK(b && b->dtype == DJ_DT_I64 && b->ndim == 0 && memcmp(b->data, &nbt, 8) == 0, "scalar i64");
        const dj_st_tensor *c = dj_safetensors_find(f, "2.weight_cf8");
        CHECK(c && c->dtype == DJ_DT_CF8_143 && c->bias == 11 && memcmp(c->data, c8, 4) == 0,
              "cfloat8 keeps its format and bias");
        CHECK(dj_safetensors_find(f, "3.bf") && dj_safetensors_find(f, "3.bf")->dtype == DJ_DT_BF16, "bf16");
        CHECK(dj_safetensors_find(f, "4.empty") && dj_safetensors_find(f, "4.empty")->nbytes == 0, "empty");
        CHECK(dj_safetensors_find(f, "nope") == NULL, "missing name");
        CHECK(dj_safetensors_meta(f, "dojo.epoch") && strcmp(dj_safetensors_meta(f, "dojo.epoch"), "3") == 0, "meta");
        CHECK(dj_safetensors_meta(f, "note") && strcmp(dj_safetensors_meta(f, "note"), "h\u00e9llo \"q\"") == 0, "meta escapes");
        CHECK(dj_safetensors_at(f, 0) && strcmp(dj_safetensors_at(f, 0)->name, "0.weight") == 0, "order kept");
        dj_safetensors_free(f);
    }
    /* The header is padded to 8 bytes and the data follows it. */
    char *raw;
    size_t rawlen;
    CHECK(dj_read_file(path, 1 << 20, &raw, &rawlen, err, sizeof err) == DJ_OK, "raw read");
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--)
        hl = (hl << 8) | (unsigned char)raw[i];
    CHECK(hl % 8 == 0 && 8 + hl + sizeof w + 8 + 4 + 4 + 4 == rawlen, "layout: header %llu, file %zu",
          (unsigned long long)hl, rawlen);
    /* Truncating the file anywhere is detected. */
    int all_rejected = 1;
    for (size_t cut = 0; cut < rawlen; cut += 7) {
        dj_st_file *g = NULL;
        if (dj_safetensors_parse(raw, cut, "cut", &g, err, sizeof err) == DJ_OK)
            all_rejected = 0;
        dj_safetensors_free(g);
    }
    CHECK(all_rejected, "every truncation rejected");
    free(raw);

    /* A file as the specification's example shows it. */
    const float two[2] = {1.0f, 2.0f};
    char e2[1024] = "";
    CHECK(parse_str("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", two, 8, e2, sizeof e2) == DJ_OK,
          "minimal file: %s", e2);
    CHECK(parse_str("{\"__metadata__\":{\"k\":\"v\"},\"a\":{\"dtype\":\"F32\",\"shape\":[1,2],\"data_offsets\":[0,8]}}   ",
                    two, 8, e2, sizeof e2) == DJ_OK, "padded header with metadata: %s", e2);

    /* Malformed files. */
    {
        char e[256] = "";
        dj_st_file *g = NULL;
        CHECK(dj_safetensors_parse("abc", 3, "t.safetensors", &g, e, sizeof e) != DJ_OK && strstr(e, "truncated"), "short file: %s", e);
        unsigned char big[16] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, '{', '}'};
        CHECK(dj_safetensors_parse(big, 16, "t.safetensors", &g, e, sizeof e) != DJ_OK && strstr(e, "header length"), "huge header length: %s", e);
    }
    expect_bad("[1,2]", 0, "not a JSON object");
    expect_bad("{\"a\":", 0, "header");
    expect_bad("{\"a\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[0,4]}}", 4, "dtype");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, "shape needs");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,16]}}", 8, "outside");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 8, "outside");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, "gap");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, "overlaps");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 8, "after the last tensor");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,4]}}", 4, "shape");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4, "shape");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", 4, "data_offsets");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"x\":1}}", 4, "expected {dtype");
    expect_bad("{\"__metadata__\":{\"k\":1},\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "__metadata__");
    expect_bad("{\"__metadata__\":{\"dojo.dtype.a\":\"cfloat8_1_4_3:99\"},\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1, "bad value");
    expect_bad("{\"a\":{\"dtype\":\"U16\",\"shape\":[1],\"data_offsets\":[0,2]}}", 2, "U16");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, "header");

    /* A bad tensor is refused by the writer, and nothing is left behind. */
    dj_st_tensor bad = {"x", DJ_DT_F32, 0, 1, s2, w, 4};
    snprintf(path, sizeof path, "%s/b.safetensors", dir);
    CHECK(dj_safetensors_write(path, &bad, 1, NULL, 0, err, sizeof err) == DJ_ERR_ARG, "size mismatch refused");
    CHECK(access(path, F_OK) != 0, "no file written");
    dj_st_file *g = NULL;
    CHECK(dj_safetensors_read("/nonexistent/x.safetensors", &g, err, sizeof err) == DJ_ERR_IO &&
              strstr(err, "/nonexistent/x.safetensors"), "missing file named: %s", err);

    snprintf(path, sizeof path, "%s/a.safetensors", dir);
    unlink(path);
    rmdir(dir);
    return th_done("test_safetensors");
}
