/* fuzz_idx.c - libFuzzer target for the IDX reader's in-memory core.
 *
 * dj_idx_load_mem() takes raw IDX bytes or gzip of them (inflated in
 * memory), so one entry point covers the header checks, the size and
 * overflow arithmetic, the byte-order conversion and the inflate loop. A
 * small size limit keeps decompression bombs from tripping libFuzzer's
 * memory limit. Any result must be consistent: success gives a struct
 * whose fields agree with each other and with the input, failure a zeroed
 * struct and a message starting with the name.
 *
 * Mutated gzip rarely gets past the CRC, so the input is also gzip'd here
 * (one member, or two split at a point the input chooses) and loaded
 * again: the gzip path must give the same status, message and data as the
 * raw path, and a limit one byte below the decompressed size must fail.
 *
 * Seeds: make a corpus directory with a few real files, e.g.
 *   mkdir -p fuzz/corpus-idx && cp /usr/share/datasets/fashion-mnist/t10k-labels* fuzz/corpus-idx/
 * and run  build-fuzz/fuzz/fuzz_idx fuzz/corpus-idx -max_len=4096 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "dojo/idx.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_LIMIT ((uint64_t)8 << 20)

/* gzip of d[0..n), as two members split at `split` when 0 < split < n. */
static uint8_t *gzip_of(const uint8_t *d, size_t n, size_t split, size_t *out_len)
{
    size_t cap = 2 * (n + 64) + 64, len = 0;
    uint8_t *out = malloc(cap);
    size_t bounds[3] = {0, split > 0 && split < n ? split : n, n};
    for (int m = 0; m < 2 && out; m++) {
        if (m == 1 && bounds[1] == n)
            break;
        z_stream zs;
        memset(&zs, 0, sizeof zs);
        if (deflateInit2(&zs, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK)
            abort();
        zs.next_in = (Bytef *)(uintptr_t)(d + bounds[m]);
        zs.avail_in = (uInt)(bounds[m + 1] - bounds[m]);
        zs.next_out = out + len;
        zs.avail_out = (uInt)(cap - len);
        if (deflate(&zs, Z_FINISH) != Z_STREAM_END)
            abort();
        len = cap - zs.avail_out;
        deflateEnd(&zs);
    }
    *out_len = len;
    return out;
}

static void same_result(dj_status st, const dj_idx *t, const char *err, dj_status st2,
                        const dj_idx *t2, const char *err2)
{
    if (st != st2 || strcmp(err, err2) != 0)
        abort();
    if (st == DJ_OK && (t->type != t2->type || t->ndim != t2->ndim || t->count != t2->count ||
                        memcmp(t->dims, t2->dims, sizeof t->dims) != 0 ||
                        (t->count && memcmp(t->data, t2->data, t->count * t->elem_size) != 0)))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[DJ_IDX_ERR_LEN];
    dj_idx t;
    dj_status st = dj_idx_load_mem(data, size, "fuzz", FUZZ_LIMIT, &t, err, sizeof err);
    if (st == DJ_OK) {
        size_t count = 1;
        if (t.ndim < 1 || t.ndim > DJ_IDX_MAX_DIMS || dj_idx_type_size(t.type) != t.elem_size ||
            t.elem_size == 0)
            abort();
        for (int i = 0; i < t.ndim; i++)
            count *= t.dims[i];
        if (count != t.count || (t.count == 0) != (t.data == NULL))
            abort();
        if (t.count * t.elem_size > FUZZ_LIMIT)
            abort();
        /* Raw input: the data is the input's tail, byte-swapped per element. */
        if (size >= 2 && data[0] == 0 && t.count > 0) {
            size_t hdr = 4 + 4 * (size_t)t.ndim, es = t.elem_size;
            if (size != hdr + t.count * es)
                abort();
            const uint8_t *src = data + hdr, *dst = t.data;
            for (size_t i = 0; i < t.count; i++)
                for (size_t k = 0; k < es; k++) {
                    uint16_t one = 1;
                    int little = *(const uint8_t *)&one == 1;
                    size_t from = little ? es - 1 - k : k;
                    if (dst[i * es + k] != src[i * es + from])
                        abort();
                }
        }
        volatile uint8_t sink = 0;
        const uint8_t *d = t.data;
        for (size_t i = 0; i < t.count * t.elem_size; i += 4096)
            sink ^= d[i];
        (void)sink;
    } else {
        if (t.data || t.count || t.ndim || strncmp(err, "fuzz: ", 6) != 0)
            abort();
    }

    if (!(size >= 2 && data[0] == 0x1f && data[1] == 0x8b) && size <= 16384) {
        size_t gz_len, split = size ? data[size - 1] % (size + 1) : 0;
        uint8_t *gz = gzip_of(data, size, split, &gz_len);
        if (gz) {
            char err2[DJ_IDX_ERR_LEN];
            dj_idx t2;
            dj_status st2 = dj_idx_load_mem(gz, gz_len, "fuzz", FUZZ_LIMIT, &t2, err2, sizeof err2);
            same_result(st, &t, err, st2, &t2, err2);
            dj_idx_free(&t2);
            if (st == DJ_OK) {
                st2 = dj_idx_load_mem(gz, gz_len, "fuzz", size, &t2, err2, sizeof err2);
                same_result(st, &t, err, st2, &t2, err2);
                dj_idx_free(&t2);
                st2 = dj_idx_load_mem(gz, gz_len, "fuzz", size - 1, &t2, err2, sizeof err2);
                if (st2 != DJ_ERR_RANGE || t2.data)
                    abort();
            }
            free(gz);
        }
    }
    dj_idx_free(&t);
    return 0;
}
