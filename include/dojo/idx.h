/* idx.h - reader for IDX files, the format of MNIST and Fashion-MNIST.
 *
 * An IDX stream is
 *     0x00 0x00 TYPE NDIM                 4-byte magic
 *     NDIM big-endian uint32 dimensions   outermost first
 *     the elements, big-endian, row-major
 * and is often stored gzip-compressed (train-images-idx3-ubyte.gz).
 *
 * What this reader accepts, and why:
 *   - every element type of the format (see dj_idx_type); 2-, 4- and 8-byte
 *     elements are converted to host byte order;
 *   - NDIM from 1 to DJ_IDX_MAX_DIMS (8). NDIM 0 is malformed (a 0-d file
 *     has no count to check against); more than 8 is valid IDX but not
 *     supported (DJ_ERR_UNSUPPORTED): no dataset needs it;
 *   - a zero dimension is allowed: it is a valid empty array (count 0,
 *     data NULL) and then the data part must be empty. Callers that need a
 *     non-empty array check count (the dataset helper in dataset.h does);
 *   - the data part must be exactly the size the dimensions imply: fewer
 *     bytes is "truncated", more is "trailing garbage". The implied size is
 *     computed with overflow checks and compared with the bytes actually
 *     present before anything is allocated, so a forged header cannot make
 *     the reader allocate more than the input holds;
 *   - gzip input (detected by its magic 1f 8b; a path ending in ".gz" must
 *     hold gzip data) is inflated in memory; multi-member gzip is accepted,
 *     anything after the last member is rejected, as is a stream that
 *     decompresses to more than the size limit (decompression bombs).
 *
 * Statuses:
 *   DJ_ERR_ARG          NULL path/buffer/output
 *   DJ_ERR_IO           the file cannot be opened or read (missing, directory)
 *   DJ_ERR_PARSE        bad magic, unknown type, NDIM 0, short header,
 *                       dimensions that overflow, truncated data, trailing
 *                       garbage, corrupt or truncated gzip, ".gz" not gzip
 *   DJ_ERR_UNSUPPORTED  NDIM above DJ_IDX_MAX_DIMS
 *   DJ_ERR_RANGE        the file or decompressed stream exceeds max_bytes
 *   DJ_ERR_NOMEM        an allocation failed
 *
 * Every failure writes one line into the caller's err buffer (if not NULL),
 * starting with the file name, e.g.
 *   "train-images-idx3-ubyte.gz: truncated: header says 47040000 bytes of
 *    data, file has 1000"
 * Nothing here keeps global state; the loaders are safe to call from
 * several threads at once. */
#ifndef DOJO_IDX_H
#define DOJO_IDX_H

#include <stddef.h>
#include <stdint.h>

#include "dojo/status.h"

/* Element types; the values are the IDX type codes. */
typedef enum {
    DJ_IDX_U8 = 0x08,  /* unsigned byte  -> uint8_t  */
    DJ_IDX_I8 = 0x09,  /* signed byte    -> int8_t   */
    DJ_IDX_I16 = 0x0B, /* short          -> int16_t  */
    DJ_IDX_I32 = 0x0C, /* int            -> int32_t  */
    DJ_IDX_F32 = 0x0D, /* float          -> float    (IEEE binary32) */
    DJ_IDX_F64 = 0x0E  /* double         -> double   (IEEE binary64) */
} dj_idx_type;

#define DJ_IDX_MAX_DIMS 8

/* Default limit on the size of one IDX stream (header + data, after
 * decompression) and of the file holding it: 4 GiB. */
#define DJ_IDX_DEFAULT_MAX_BYTES ((uint64_t)4 << 30)

/* A suggested size for err buffers: long enough for a path and a reason. */
#define DJ_IDX_ERR_LEN 512

typedef struct {
    dj_idx_type type;
    int ndim;                        /* 1 .. DJ_IDX_MAX_DIMS */
    uint32_t dims[DJ_IDX_MAX_DIMS];  /* dims[0] outermost; unused ones 0 */
    size_t count;                    /* product of dims (0 if any is 0) */
    size_t elem_size;                /* bytes per element: 1, 2, 4 or 8 */
    void *data;                      /* count * elem_size bytes in host byte
                                        order, malloc'd, aligned for the type;
                                        NULL when count is 0 */
} dj_idx;

/* Bytes per element (1, 2, 4, 8), or 0 for a code that is not an IDX type. */
size_t dj_idx_type_size(int type);
/* "ubyte", "sbyte", "short", "int", "float", "double", or "unknown". */
const char *dj_idx_type_name(int type);

/* Load an IDX stream held in memory: raw IDX bytes, or gzip of them
 * (recognised by the gzip magic). `name` is used in error messages (NULL
 * gives "<memory>"). max_bytes bounds the decompressed stream (and, for raw
 * input, len); 0 means DJ_IDX_DEFAULT_MAX_BYTES. The buffer is not kept:
 * `out` owns a fresh copy. On failure *out is zeroed. */
dj_status dj_idx_load_mem(const void *buf, size_t len, const char *name, uint64_t max_bytes,
                          dj_idx *out, char *err, size_t errlen);

/* Load an IDX file, gzip'd or raw. A path ending in ".gz" must hold gzip
 * data; any other path is inflated if it starts with the gzip magic. Both
 * the file and the decompressed stream must be at most max_bytes (0 means
 * DJ_IDX_DEFAULT_MAX_BYTES). Messages name the path as given. On failure
 * *out is zeroed. */
dj_status dj_idx_load_file(const char *path, uint64_t max_bytes, dj_idx *out, char *err,
                           size_t errlen);

/* Release the data and zero the struct; NULL and zeroed structs are fine,
 * so calling it twice is harmless. */
void dj_idx_free(dj_idx *t);

/* The shape as "60000x28x28" into buf (always terminated); returns buf. */
const char *dj_idx_shape_str(const dj_idx *t, char *buf, size_t len);

#endif
