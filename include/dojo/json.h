/* json.h - strict JSON (RFC 8259): parser to a read-only DOM, schema-checking
 * accessors that name the JSON path in their errors, and a writer.
 *
 * Dojo reads model specs, safetensors headers and config.json with this
 * module and writes config.json and metrics JSON lines with it.
 *
 * Parsing
 *   dj_json_parse() takes a (pointer, length) buffer (no NUL needed) and
 *   builds a document whose every byte lives in one arena: dj_json_free()
 *   releases it all. The parser is iterative (no recursion, so hostile input
 *   cannot overflow the C stack) and strict: no trailing commas, comments,
 *   leading zeros, NaN/Infinity, single quotes, unescaped control characters,
 *   invalid UTF-8 (overlong forms, surrogates, > U+10FFFF), bad \u escapes or
 *   lone surrogates, byte order marks, duplicate object keys (compared after
 *   unescaping), numbers that overflow a double, or content after the value.
 *   Nesting deeper than max_depth (default 256) is refused. Errors fill a
 *   dj_json_error: status, 1-based line and column (columns count UTF-8
 *   code points), byte offset, and a message such as
 *       line 3, column 17: expected ',' or '}' after object member
 *
 * Values
 *   Values are opaque and read-only; they stay valid until dj_json_free().
 *   Strings are UTF-8, NUL-terminated, with an explicit length (a \u0000
 *   escape gives an embedded NUL). Numbers keep the correctly rounded double
 *   and, for integer literals (no fraction, no exponent) within int64 range,
 *   the exact int64 (dj_json_is_int). Objects keep member order; lookup by
 *   key is O(log n). Every value knows its parent and its source position,
 *   so an error about any value can name its path ("layers[2].kernel_size")
 *   and where it is in the file without the caller tracking anything.
 *
 * Schema checking
 *   dj_json_as_*() check one value, dj_json_get_*() a required member and
 *   dj_json_opt_*() an optional member of an object. On a mismatch they
 *   return DJ_ERR_PARSE (wrong type, missing member) or DJ_ERR_RANGE (value
 *   outside [min, max]) and fill the error as
 *       layers[2].kernel_size: expected an integer, got string (line 7, column 22)
 *   dj_json_errorf() builds the same kind of message for checks of your own.
 *
 * Writing
 *   dj_json_writer builds text in a growable buffer, compact (one line, for
 *   JSON lines) or pretty (2-space indent). Errors are sticky: after the
 *   first failure (allocation, misuse such as a value without a key inside
 *   an object, a string that is not valid UTF-8) every call returns that
 *   status and writes nothing, so checking once at dj_json_writer_finish()
 *   suffices. Strings are escaped as JSON requires ("\"", "\\", control
 *   characters, and DEL as \u007f); non-ASCII is written as UTF-8, or as
 *   \uXXXX escapes (surrogate pairs above U+FFFF) with DJ_JSON_WRITE_ASCII.
 *   Doubles are written with the fewest significant digits (at most 17)
 *   that read back to the same bits, always with a '.' or exponent ("3.0", "1e+100", "-0.0") so they
 *   read back as non-integers. NaN and infinities are written as null (JSON
 *   has no such numbers; a NaN loss in a metrics line must not lose the
 *   line). Numbers are read and written independently of the C locale. */
#ifndef DOJO_JSON_H
#define DOJO_JSON_H

#include <stddef.h>
#include <stdio.h>
#include <stdint.h>

#include "dojo/status.h"

/* ---- allocation ----------------------------------------------------------- */

/* Optional allocator for documents and writers; NULL means malloc/realloc/
 * free. realloc_fn(ctx, NULL, n) allocates; returning NULL reports failure.
 * Blocks must be aligned as malloc's are. */
typedef struct {
    void *(*realloc_fn)(void *ctx, void *ptr, size_t size);
    void (*free_fn)(void *ctx, void *ptr);
    void *ctx;
} dj_json_allocator;

/* ---- errors --------------------------------------------------------------- */

#define DJ_JSON_ERROR_MAX 512

typedef struct {
    dj_status status;  /* DJ_OK when nothing went wrong */
    size_t line;       /* 1-based; 0 when the error has no position (I/O) */
    size_t column;     /* 1-based, in UTF-8 code points */
    size_t offset;     /* 0-based byte offset */
    char message[DJ_JSON_ERROR_MAX];
} dj_json_error;

/* ---- parsing -------------------------------------------------------------- */

#define DJ_JSON_DEFAULT_MAX_DEPTH 256

typedef struct {
    size_t max_depth;                 /* 0: DJ_JSON_DEFAULT_MAX_DEPTH */
    const dj_json_allocator *alloc;   /* NULL: malloc */
} dj_json_options;

typedef struct dj_json_doc dj_json_doc;
typedef struct dj_json_value dj_json_value;

typedef enum {
    DJ_JSON_NULL = 0,
    DJ_JSON_BOOL,
    DJ_JSON_NUMBER,
    DJ_JSON_STRING,
    DJ_JSON_ARRAY,
    DJ_JSON_OBJECT
} dj_json_type;

/* Parse text[0..len) (text may be NULL when len is 0). opt may be NULL. On
 * success *out is the document; on failure *out is NULL and err (if not
 * NULL) says what and where. Returns DJ_ERR_PARSE for any input that is not
 * acceptable JSON (including the depth limit and numbers beyond the double
 * range), DJ_ERR_NOMEM when an allocation fails, DJ_ERR_ARG for NULL
 * arguments. */
dj_status dj_json_parse(const char *text, size_t len, const dj_json_options *opt,
                        dj_json_doc **out, dj_json_error *err);

/* Read the whole file at path and parse it. Messages start with the path:
 *   "spec.json: line 3, column 17: ..." or "cannot open 'spec.json': ..." */
dj_status dj_json_parse_file(const char *path, const dj_json_options *opt,
                             dj_json_doc **out, dj_json_error *err);

/* Release a document and every value in it (NULL is fine). */
void dj_json_free(dj_json_doc *doc);

const dj_json_value *dj_json_root(const dj_json_doc *doc);

/* ---- reading values (all accept NULL and then return 0/NULL/DJ_JSON_NULL) -- */

dj_json_type dj_json_type_of(const dj_json_value *v);
/* "null", "boolean", "number", "string", "array", "object". */
const char *dj_json_type_name(dj_json_type t);

int dj_json_bool(const dj_json_value *v);          /* 1 for true */
double dj_json_number(const dj_json_value *v);     /* 0 unless a number */
/* Nonzero if v is an integer literal within [INT64_MIN, INT64_MAX]; then
 * dj_json_int() is exact (dj_json_number() is its correctly rounded double). */
int dj_json_is_int(const dj_json_value *v);
int64_t dj_json_int(const dj_json_value *v);
/* The string's bytes (NUL-terminated) and, if len is not NULL, its length. */
const char *dj_json_string(const dj_json_value *v, size_t *len);

/* Items of an array or members of an object; 0 for other values. */
size_t dj_json_len(const dj_json_value *v);
/* Array item i, or NULL when v is not an array or i is out of range. */
const dj_json_value *dj_json_at(const dj_json_value *arr, size_t i);
/* Member i of an object in document order: its key (and length) and value. */
const char *dj_json_key_at(const dj_json_value *obj, size_t i, size_t *key_len);
const dj_json_value *dj_json_value_at(const dj_json_value *obj, size_t i);
/* Member by key, or NULL when absent or obj is not an object. */
const dj_json_value *dj_json_get(const dj_json_value *obj, const char *key);
const dj_json_value *dj_json_get_n(const dj_json_value *obj, const char *key, size_t key_len);

/* The enclosing array/object (NULL for the root) and the position in the
 * source text where v starts. */
const dj_json_value *dj_json_parent(const dj_json_value *v);
void dj_json_position(const dj_json_value *v, size_t *line, size_t *column, size_t *offset);

/* Deep equality: same types, same member order and keys, numbers with the
 * same double bits (so 0 and -0 differ) and the same dj_json_is_int/int. */
int dj_json_equal(const dj_json_value *a, const dj_json_value *b);

/* ---- paths and schema errors ------------------------------------------------ */

/* Write v's path from the root into buf, e.g. "layers[2].kernel_size" or
 * "meta[\"odd key\"]" ("" for the root); keys that are not identifiers are
 * written as ["..."]. A path too long for buf keeps its end and starts with
 * "...". Returns the length written (always NUL-terminated when size > 0). */
size_t dj_json_path(const dj_json_value *v, char *buf, size_t size);

/* Fill err with "PATH: <message> (line L, column C)" where PATH is v's path
 * ("top level" for the root) and the position is v's; returns st. err may be
 * NULL. */
dj_status dj_json_errorf(dj_json_error *err, dj_status st, const dj_json_value *v,
                         const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;

/* Check one value. dj_json_as_int wants an integer literal in [min, max];
 * dj_json_as_string with len NULL also refuses strings with an embedded NUL
 * (so the result is safe as a C string). */
dj_status dj_json_expect(const dj_json_value *v, dj_json_type t, dj_json_error *err);
dj_status dj_json_as_int(const dj_json_value *v, int64_t min, int64_t max, int64_t *out,
                         dj_json_error *err);
dj_status dj_json_as_double(const dj_json_value *v, double *out, dj_json_error *err);
dj_status dj_json_as_bool(const dj_json_value *v, int *out, dj_json_error *err);
dj_status dj_json_as_string(const dj_json_value *v, const char **out, size_t *len,
                            dj_json_error *err);

/* v must be an array of min_len to max_len items ("layers[0].kernel_size:
 * expected an array of 2 items, got 3"). */
dj_status dj_json_expect_len(const dj_json_value *v, size_t min_len, size_t max_len,
                             dj_json_error *err);

/* Required member: obj must be an object and have key ("layers[2]: missing
 * member \"kernel_size\""). */
dj_status dj_json_member(const dj_json_value *obj, const char *key,
                         const dj_json_value **out, dj_json_error *err);
dj_status dj_json_get_int(const dj_json_value *obj, const char *key, int64_t min,
                          int64_t max, int64_t *out, dj_json_error *err);
dj_status dj_json_get_double(const dj_json_value *obj, const char *key, double *out,
                             dj_json_error *err);
dj_status dj_json_get_bool(const dj_json_value *obj, const char *key, int *out,
                           dj_json_error *err);
dj_status dj_json_get_string(const dj_json_value *obj, const char *key, const char **out,
                             size_t *len, dj_json_error *err);

/* Optional member: when absent, *out = def and DJ_OK; when present it must
 * pass the same checks as above. obj must still be an object. */
dj_status dj_json_opt_int(const dj_json_value *obj, const char *key, int64_t min,
                          int64_t max, int64_t def, int64_t *out, dj_json_error *err);
dj_status dj_json_opt_double(const dj_json_value *obj, const char *key, double def,
                             double *out, dj_json_error *err);
dj_status dj_json_opt_bool(const dj_json_value *obj, const char *key, int def, int *out,
                           dj_json_error *err);
dj_status dj_json_opt_string(const dj_json_value *obj, const char *key, const char *def,
                             const char **out, dj_json_error *err);

/* Refuse members whose key is not in the NULL-terminated list `allowed`
 * ("layers[2]: unknown member \"kernal_size\""), so typos are not ignored. */
dj_status dj_json_check_keys(const dj_json_value *obj, const char *const *allowed,
                             dj_json_error *err);

/* ---- writing ---------------------------------------------------------------- */

enum {
    DJ_JSON_WRITE_PRETTY = 1, /* newlines and 2-space indent (config.json) */
    DJ_JSON_WRITE_ASCII = 2   /* escape non-ASCII as \uXXXX */
};

/* Fields are private; the struct is public so a writer can live on the
 * stack. */
typedef struct {
    char *buf;
    size_t len, cap;
    unsigned char *levels;   /* per open container: kind and state bits */
    size_t depth, levels_cap;
    unsigned flags;
    int wrote_root;
    dj_status status;
    const dj_json_allocator *alloc;
    char error[128];
} dj_json_writer;

/* flags: DJ_JSON_WRITE_*; alloc may be NULL. Never fails (allocation
 * happens on first write). */
void dj_json_writer_init(dj_json_writer *w, unsigned flags, const dj_json_allocator *alloc);
/* Release the buffer (the writer can then be initialised again). */
void dj_json_writer_free(dj_json_writer *w);
/* Forget the text written so far and any error, keeping the buffer (for
 * writing one JSON line after another). */
void dj_json_writer_reset(dj_json_writer *w);

dj_status dj_json_write_begin_object(dj_json_writer *w);
dj_status dj_json_write_end_object(dj_json_writer *w);
dj_status dj_json_write_begin_array(dj_json_writer *w);
dj_status dj_json_write_end_array(dj_json_writer *w);
/* Inside an object, each value is preceded by exactly one key. */
dj_status dj_json_write_key(dj_json_writer *w, const char *key);
dj_status dj_json_write_key_n(dj_json_writer *w, const char *key, size_t len);
dj_status dj_json_write_string(dj_json_writer *w, const char *s);  /* NULL writes null */
dj_status dj_json_write_string_n(dj_json_writer *w, const char *s, size_t len);
dj_status dj_json_write_int(dj_json_writer *w, int64_t x);
dj_status dj_json_write_double(dj_json_writer *w, double x);
dj_status dj_json_write_bool(dj_json_writer *w, int b);
dj_status dj_json_write_null(dj_json_writer *w);
/* A parsed value and everything under it (numbers as parsed: exact int64,
 * "-0" for a negative-zero integer literal, big integer literals as
 * integers). */
dj_status dj_json_write_value(dj_json_writer *w, const dj_json_value *v);

/* Check that exactly one complete value was written and return the text
 * (NUL-terminated, owned by the writer, valid until the next write, reset
 * or free). On error *text is NULL and dj_json_writer_error() explains. */
dj_status dj_json_writer_finish(dj_json_writer *w, const char **text, size_t *len);
/* "" when no error; otherwise what went wrong, e.g. "value without a key
 * inside an object" or "out of memory". */
const char *dj_json_writer_error(const dj_json_writer *w);
/* Finishes w and returns its text with a newline appended, in a string the
 * caller frees (NULL on a writer error or no memory). Frees w. */
char *dj_json_writer_take_line(dj_json_writer *w);
/* Finishes w and writes its text and a newline to fp. Frees w. Returns the
 * writer's status (DJ_OK: written). */
dj_status dj_json_writer_print_line(dj_json_writer *w, FILE *fp);

#endif
