/* json.c - strict JSON parser (RFC 8259) to an arena-backed DOM, accessors
 * whose errors name the JSON path, and a growable-buffer writer.
 *
 * Why it looks the way it does:
 * - The parser is a loop over an explicit stack of open containers. Values
 *   of an open container collect on a scratch stack (heap) and move into the
 *   arena, exactly sized, when the container closes; so nothing recurses and
 *   the document holds no slack.
 * - Each value records its parent and source position. Walks over the DOM
 *   (writing, equality, paths) follow parent pointers instead of a stack,
 *   and errors about any value can name "layers[2].kernel_size" and a line.
 * - Objects with more than SMALL_OBJECT members get an index sorted by key
 *   (stable merge sort: O(n log n) whatever the keys, unlike a hash table
 *   under hostile input); it finds duplicates and serves lookups.
 * - Numbers go through strtod (correct rounding) after the grammar is
 *   checked here; the C locale's decimal point is substituted so that a
 *   program that called setlocale() still reads and writes "1.5". */
#include "dojo/json.h"

#include <errno.h>
#include <float.h>
#include <locale.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SMALL_OBJECT 8

/* The exact-arithmetic shortcut for short decimals needs double operations
 * evaluated in double precision (not x87 extended). */
#if defined(FLT_EVAL_METHOD) && FLT_EVAL_METHOD == 0
#define FAST_DECIMAL 1
#else
#define FAST_DECIMAL 0
#endif

enum { F_INT = 1, F_INT_SYNTAX = 2 };

typedef struct json_member json_member;

struct dj_json_value {
    unsigned char type;   /* dj_json_type */
    unsigned char flags;  /* F_* for numbers */
    size_t line, column, offset;
    const dj_json_value *parent;
    union {
        int b;
        struct { double d; int64_t i; } num;
        struct { const char *s; size_t len; } str;
        struct { dj_json_value *items; size_t len; } arr;
        struct { json_member *members; size_t len; size_t *sorted; } obj;
    } u;
};

struct json_member {
    const char *key;
    size_t key_len;
    dj_json_value value;
};

/* ---- allocation ------------------------------------------------------------ */

static void *mem_realloc(const dj_json_allocator *a, void *p, size_t n)
{
    if (a)
        return a->realloc_fn(a->ctx, p, n);
    return realloc(p, n);
}

static void mem_free(const dj_json_allocator *a, void *p)
{
    if (!p)
        return;
    if (a)
        a->free_fn(a->ctx, p);
    else
        free(p);
}

/* Make room for `need` elements of `elem` bytes in *ptr (capacity *cap);
 * returns 0 on success, -1 on overflow or allocation failure. */
static int grow_array(const dj_json_allocator *a, void **ptr, size_t *cap, size_t need,
                      size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t ncap = *cap ? *cap : 16;
    while (ncap < need) {
        if (ncap > SIZE_MAX / 2)
            return -1;
        ncap *= 2;
    }
    if (ncap > SIZE_MAX / elem)
        return -1;
    void *np = mem_realloc(a, *ptr, ncap * elem);
    if (!np)
        return -1;
    *ptr = np;
    *cap = ncap;
    return 0;
}

/* The arena: a list of chunks; the head is the one being filled. */
typedef struct chunk {
    struct chunk *next;
    size_t size, used;
} chunk;

#define CHUNK_HDR ((sizeof(chunk) + 15) & ~(size_t)15)
#define CHUNK_MIN 4096
#define CHUNK_MAX ((size_t)64 << 20)

typedef struct {
    chunk *head;
    size_t total;
    const dj_json_allocator *alloc;
} arena;

static void *arena_alloc(arena *ar, size_t n, size_t align)
{
    chunk *c = ar->head;
    if (c) {
        size_t off = (c->used + (align - 1)) & ~(align - 1);
        if (off <= c->size && n <= c->size - off) {
            c->used = off + n;
            return (unsigned char *)c + CHUNK_HDR + off;
        }
    }
    size_t want = ar->total < CHUNK_MIN ? CHUNK_MIN : ar->total;
    if (want > CHUNK_MAX)
        want = CHUNK_MAX;
    int dedicated = n > want / 2;
    size_t size = dedicated ? n : want;
    if (size > SIZE_MAX - CHUNK_HDR)
        return NULL;
    chunk *nc = mem_realloc(ar->alloc, NULL, CHUNK_HDR + size);
    if (!nc)
        return NULL;
    nc->size = size;
    nc->used = n;
    ar->total += size;
    if (dedicated && c) { /* keep filling the current chunk */
        nc->next = c->next;
        c->next = nc;
    } else {
        nc->next = c;
        ar->head = nc;
    }
    return (unsigned char *)nc + CHUNK_HDR;
}

static void arena_release(arena *ar)
{
    chunk *c = ar->head;
    while (c) {
        chunk *next = c->next;
        mem_free(ar->alloc, c);
        c = next;
    }
    ar->head = NULL;
}

struct dj_json_doc {
    arena ar;
    dj_json_value root;
};

/* ---- UTF-8 and small text helpers ---------------------------------------------- */

/* Length of the valid UTF-8 sequence of 2..4 bytes at s (avail bytes
 * readable), or 0 if it is not one (RFC 3629: no overlong forms, no
 * surrogates, nothing above U+10FFFF). */
static size_t utf8_seq_len(const unsigned char *s, size_t avail)
{
    unsigned c0 = s[0];
    size_t len;
    unsigned lo = 0x80, hi = 0xBF;
    if (c0 < 0xC2)
        return 0;
    if (c0 < 0xE0) {
        len = 2;
    } else if (c0 < 0xF0) {
        len = 3;
        if (c0 == 0xE0)
            lo = 0xA0;
        else if (c0 == 0xED)
            hi = 0x9F;
    } else if (c0 < 0xF5) {
        len = 4;
        if (c0 == 0xF0)
            lo = 0x90;
        else if (c0 == 0xF4)
            hi = 0x8F;
    } else {
        return 0;
    }
    if (avail < len)
        return 0;
    if (s[1] < lo || s[1] > hi)
        return 0;
    for (size_t k = 2; k < len; k++)
        if (s[k] < 0x80 || s[k] > 0xBF)
            return 0;
    return len;
}

static uint32_t utf8_decode(const unsigned char *s, size_t len)
{
    switch (len) {
    case 2: return ((uint32_t)(s[0] & 0x1F) << 6) | (s[1] & 0x3F);
    case 3: return ((uint32_t)(s[0] & 0x0F) << 12) | ((uint32_t)(s[1] & 0x3F) << 6) | (s[2] & 0x3F);
    default:
        return ((uint32_t)(s[0] & 0x07) << 18) | ((uint32_t)(s[1] & 0x3F) << 12) |
               ((uint32_t)(s[2] & 0x3F) << 6) | (s[3] & 0x3F);
    }
}

static size_t utf8_encode(uint32_t cp, char *o)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xC0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Copy a key into buf for a message: JSON-escaped quotes, backslashes and
 * control characters, at most `max` bytes of key (cut at a character
 * boundary, then "..."). */
static void quote_key(char *buf, size_t size, const char *key, size_t len, size_t max)
{
    size_t o = 0;
    const unsigned char *k = (const unsigned char *)key;
    if (size < 16) {
        if (size)
            buf[0] = 0;
        return;
    }
    size_t limit = size - 6; /* room for an escape, "...", NUL */
    int cut = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned c = k[i];
        if (i >= max || o + 6 >= limit) {
            cut = 1;
            break;
        }
        if (c == '"' || c == '\\') {
            buf[o++] = '\\';
            buf[o++] = (char)c;
        } else if (c < 0x20 || c == 0x7F) {
            o += (size_t)snprintf(buf + o, size - o, "\\u%04x", c);
        } else if (c >= 0x80) {
            size_t l = utf8_seq_len(k + i, len - i);
            if (l == 0) {
                o += (size_t)snprintf(buf + o, size - o, "\\x%02x", c);
            } else {
                if (i + l > max || o + l + 6 >= limit) {
                    cut = 1;
                    break;
                }
                memcpy(buf + o, k + i, l);
                o += l;
                i += l - 1;
            }
        } else {
            buf[o++] = (char)c;
        }
    }
    if (cut) {
        memcpy(buf + o, "...", 3);
        o += 3;
    }
    buf[o] = 0;
}

static const char *type_article(dj_json_type t)
{
    switch (t) {
    case DJ_JSON_NULL: return "null";
    case DJ_JSON_BOOL: return "a boolean";
    case DJ_JSON_NUMBER: return "a number";
    case DJ_JSON_STRING: return "a string";
    case DJ_JSON_ARRAY: return "an array";
    case DJ_JSON_OBJECT: return "an object";
    }
    return "a value";
}

const char *dj_json_type_name(dj_json_type t)
{
    switch (t) {
    case DJ_JSON_NULL: return "null";
    case DJ_JSON_BOOL: return "boolean";
    case DJ_JSON_NUMBER: return "number";
    case DJ_JSON_STRING: return "string";
    case DJ_JSON_ARRAY: return "array";
    case DJ_JSON_OBJECT: return "object";
    }
    return "unknown";
}

/* ---- numbers as text (shared by parser and writer) ------------------------- */

/* strtod on the JSON number text s[0..n), with '.' replaced by the current
 * locale's decimal point. buf has room for n * 8 + 1 bytes or is grown. */
static double locale_strtod(const char *s, size_t n, char *buf, const char *dp, size_t dplen)
{
    size_t o = 0;
    for (size_t k = 0; k < n; k++) {
        if (s[k] == '.') {
            memcpy(buf + o, dp, dplen);
            o += dplen;
        } else {
            buf[o++] = s[k];
        }
    }
    buf[o] = 0;
    return strtod(buf, NULL);
}

static void decimal_point(const char **dp, size_t *dplen)
{
    const struct lconv *lc = localeconv();
    const char *d = lc && lc->decimal_point && lc->decimal_point[0] ? lc->decimal_point : ".";
    size_t l = strlen(d);
    if (l > 8) { /* no real locale has this; be safe with the buffer sizes */
        d = ".";
        l = 1;
    }
    *dp = d;
    *dplen = l;
}

/* Shortest "%.{p}g" text of finite x that reads back to the same double,
 * with the decimal point as '.', and always a '.' or an exponent so that it
 * reads back as a non-integer. Returns the length (< 40).
 *
 * For a normal double, a decimal of at most 15 significant digits that reads
 * back to x is within half an ulp of x, which is less than half a unit in
 * its 15th digit; so "%.15g" (which drops trailing zeros) prints exactly
 * that decimal when one exists. Otherwise 16 or 17 digits are needed.
 * Subnormals have fewer bits, so they search upward from 1 digit. */
static size_t format_double(double x, char out[40])
{
    char tmp[64];
    int n = snprintf(tmp, sizeof tmp, "%.15g", x);
    if (strtod(tmp, NULL) != x) {
        n = snprintf(tmp, sizeof tmp, "%.16g", x);
        if (strtod(tmp, NULL) != x)
            n = snprintf(tmp, sizeof tmp, "%.17g", x);
    } else if (x != 0 && fabs(x) < DBL_MIN) {
        for (int p = 1; p < 15; p++) {
            char t2[64];
            int n2 = snprintf(t2, sizeof t2, "%.*g", p, x);
            if (strtod(t2, NULL) == x) {
                memcpy(tmp, t2, (size_t)n2 + 1);
                n = n2;
                break;
            }
        }
    }
    /* Replace the locale's decimal point with '.'. */
    const char *dp;
    size_t dplen;
    decimal_point(&dp, &dplen);
    size_t o = 0;
    int has_point = 0;
    for (int k = 0; k < n;) {
        if ((size_t)(n - k) >= dplen && memcmp(tmp + k, dp, dplen) == 0) {
            out[o++] = '.';
            has_point = 1;
            k += (int)dplen;
        } else {
            char c = tmp[k++];
            if (c == 'e' || c == 'E')
                has_point = 1;
            out[o++] = c;
        }
    }
    if (!has_point) {
        out[o++] = '.';
        out[o++] = '0';
    }
    out[o] = 0;
    return o;
}

/* ---- the parser -------------------------------------------------------------- */

typedef struct {
    json_member m;   /* key unused for array items */
    size_t key_off;  /* byte offset of the key, for duplicate messages */
} entry;

typedef struct {
    dj_json_value v;  /* type and position of the container */
    size_t first;     /* its first entry on the scratch stack */
    const char *key;  /* the key waiting for its value (objects) */
    size_t key_len, key_off;
} frame;

typedef struct {
    const unsigned char *s;
    size_t n, i;
    size_t max_depth;
    const dj_json_allocator *alloc;
    arena ar;
    entry *ents;
    size_t nents, cap_ents;
    frame *frames;
    size_t nframes, cap_frames;
    size_t *tmp;
    size_t cap_tmp;
    char *numbuf;
    size_t cap_num;
    const char *dp;
    size_t dplen;
    size_t pos_off, pos_line, pos_col; /* position cache: line/column at pos_off */
    dj_json_error *err;
} parser;

/* Line and column (1-based, columns in code points) of byte offset off.
 * Amortised O(1) for increasing offsets. */
static void pos_at(parser *p, size_t off, size_t *line, size_t *col)
{
    if (off < p->pos_off) {
        p->pos_off = 0;
        p->pos_line = 1;
        p->pos_col = 1;
    }
    size_t ln = p->pos_line, cl = p->pos_col;
    for (size_t k = p->pos_off; k < off && k < p->n; k++) {
        unsigned char c = p->s[k];
        if (c == '\n') {
            ln++;
            cl = 1;
        } else if ((c & 0xC0) != 0x80) {
            cl++;
        }
    }
    p->pos_off = off;
    p->pos_line = ln;
    p->pos_col = cl;
    *line = ln;
    *col = cl;
}

static dj_status fail(parser *p, size_t off, dj_status st, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;

static dj_status fail(parser *p, size_t off, dj_status st, const char *fmt, ...)
{
    dj_json_error *e = p->err;
    if (!e)
        return st;
    size_t line, col;
    pos_at(p, off, &line, &col);
    e->status = st;
    e->line = line;
    e->column = col;
    e->offset = off;
    int k = snprintf(e->message, sizeof e->message, "line %zu, column %zu: ", line, col);
    if (k < 0)
        k = 0;
    if ((size_t)k < sizeof e->message) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e->message + k, sizeof e->message - (size_t)k, fmt, ap);
        va_end(ap);
    }
    return st;
}

static dj_status nomem(parser *p)
{
    return fail(p, p->i, DJ_ERR_NOMEM, "out of memory");
}

/* "'x'", "end of input", "byte 0xC3", "control character U+0009" */
static void describe(const parser *p, size_t off, char *buf, size_t size)
{
    if (off >= p->n) {
        snprintf(buf, size, "end of input");
        return;
    }
    unsigned c = p->s[off];
    if (c > 0x20 && c < 0x7F)
        snprintf(buf, size, "'%c'", (char)c);
    else if (c < 0x20 || c == 0x7F)
        snprintf(buf, size, "control character U+%04X", c);
    else if (c == ' ')
        snprintf(buf, size, "' '");
    else {
        size_t l = utf8_seq_len(p->s + off, p->n - off);
        if (l)
            snprintf(buf, size, "character U+%04X", (unsigned)utf8_decode(p->s + off, l));
        else
            snprintf(buf, size, "byte 0x%02X (not UTF-8)", c);
    }
}

static void skip_ws(parser *p)
{
    const unsigned char *s = p->s;
    size_t i = p->i, n = p->n;
    while (i < n && (s[i] == ' ' || s[i] == '\n' || s[i] == '\r' || s[i] == '\t'))
        i++;
    p->i = i;
}

static int is_digit(unsigned c) { return c >= '0' && c <= '9'; }

static int is_word(unsigned c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c) || c == '_' ||
           c == '+' || c == '-' || c == '.';
}

static void set_pos(parser *p, dj_json_value *v, size_t off)
{
    v->offset = off;
    pos_at(p, off, &v->line, &v->column);
}

static int hex4(const unsigned char *s, uint32_t *out)
{
    uint32_t v = 0;
    for (int k = 0; k < 4; k++) {
        unsigned c = s[k];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= c - '0';
        else if (c >= 'a' && c <= 'f')
            v |= c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            v |= c - 'A' + 10;
        else
            return -1;
    }
    *out = v;
    return 0;
}

/* String at p->i (which is '"'); decoded into the arena. */
static dj_status parse_string(parser *p, const char **out, size_t *out_len)
{
    const unsigned char *s = p->s;
    size_t n = p->n, open = p->i, start = open + 1, j = start;
    while (j < n) {
        unsigned char c = s[j];
        if (c == '"')
            break;
        j += c == '\\' ? 2 : 1;
    }
    if (j > n)
        j = n;
    int closed = j < n;
    char *o = arena_alloc(&p->ar, j - start + 1, 1);
    if (!o)
        return nomem(p);
    size_t k = start, w = 0;
    while (k < j) {
        unsigned char c = s[k];
        if (c == '\\') {
            if (k + 1 >= n)
                break; /* unterminated */
            unsigned char e = s[k + 1];
            char ch = 0;
            switch (e) {
            case '"': ch = '"'; break;
            case '\\': ch = '\\'; break;
            case '/': ch = '/'; break;
            case 'b': ch = '\b'; break;
            case 'f': ch = '\f'; break;
            case 'n': ch = '\n'; break;
            case 'r': ch = '\r'; break;
            case 't': ch = '\t'; break;
            case 'u': {
                uint32_t cp, lo;
                if (k + 6 > n || hex4(s + k + 2, &cp))
                    return fail(p, k, DJ_ERR_PARSE, "invalid \\u escape in string: expected 4 hex digits");
                if (cp >= 0xDC00 && cp <= 0xDFFF)
                    return fail(p, k, DJ_ERR_PARSE,
                                "lone low surrogate \\u%04X in string (not preceded by a high surrogate)",
                                (unsigned)cp);
                size_t used = 6;
                if (cp >= 0xD800 && cp <= 0xDBFF) {
                    if (k + 12 > n || s[k + 6] != '\\' || s[k + 7] != 'u' || hex4(s + k + 8, &lo) ||
                        lo < 0xDC00 || lo > 0xDFFF)
                        return fail(p, k, DJ_ERR_PARSE,
                                    "lone high surrogate \\u%04X in string (not followed by a low "
                                    "surrogate \\uDC00-\\uDFFF)",
                                    (unsigned)cp);
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    used = 12;
                }
                w += utf8_encode(cp, o + w);
                k += used;
                continue;
            }
            default: {
                char d[48];
                describe(p, k + 1, d, sizeof d);
                return fail(p, k, DJ_ERR_PARSE, "invalid escape '\\' followed by %s in string", d);
            }
            }
            o[w++] = ch;
            k += 2;
        } else if (c < 0x20) {
            if (c == '\n')
                return fail(p, k, DJ_ERR_PARSE,
                            "unescaped newline in string (missing closing '\"'?)");
            return fail(p, k, DJ_ERR_PARSE, "unescaped control character U+%04X in string",
                        (unsigned)c);
        } else if (c < 0x80) {
            o[w++] = (char)c;
            k++;
        } else {
            size_t l = utf8_seq_len(s + k, j - k);
            if (l == 0)
                return fail(p, k, DJ_ERR_PARSE, "invalid UTF-8 in string (byte 0x%02X)", (unsigned)c);
            memcpy(o + w, s + k, l);
            w += l;
            k += l;
        }
    }
    if (!closed)
        return fail(p, open, DJ_ERR_PARSE, "unterminated string");
    o[w] = 0;
    *out = o;
    *out_len = w;
    p->i = j + 1;
    return DJ_OK;
}

static dj_status parse_number(parser *p, dj_json_value *v)
{
    const unsigned char *s = p->s;
    size_t n = p->n, start = p->i, i = start;
    int neg = 0, int_syntax = 1, overflow = 0;
    uint64_t mag = 0;
    const uint64_t limit_pos = (uint64_t)INT64_MAX;
    if (s[i] == '-') {
        neg = 1;
        i++;
    }
    if (i >= n || !is_digit(s[i]))
        return fail(p, i, DJ_ERR_PARSE, "expected a digit after '-'");
    if (s[i] == '0') {
        i++;
        if (i < n && is_digit(s[i]))
            return fail(p, start, DJ_ERR_PARSE, "leading zeros are not allowed in numbers");
    } else {
        const uint64_t limit = neg ? limit_pos + 1 : limit_pos;
        while (i < n && is_digit(s[i])) {
            unsigned d = s[i] - '0';
            if (!overflow && (mag > (limit - d) / 10))
                overflow = 1;
            if (!overflow)
                mag = mag * 10 + d;
            i++;
        }
    }
    /* For the fast path below: all digits as one integer (while at most 19
     * significant ones), and the power of ten that scales it. */
    uint64_t sig = 0;
    int sig_digits = 0;
    long exp10 = 0;
    for (size_t k = start + neg; k < i; k++) {
        if (sig_digits < 19 && (sig || s[k] != '0')) {
            sig = sig * 10 + (unsigned)(s[k] - '0');
            sig_digits++;
        } else if (sig) {
            sig_digits = 99; /* too many digits for the fast path */
        }
    }
    if (i < n && s[i] == '.') {
        i++;
        int_syntax = 0;
        if (i >= n || !is_digit(s[i]))
            return fail(p, i, DJ_ERR_PARSE, "expected a digit after '.' in number");
        while (i < n && is_digit(s[i])) {
            if (sig_digits < 19) {
                if (sig || s[i] != '0') {
                    sig = sig * 10 + (unsigned)(s[i] - '0');
                    sig_digits++;
                }
                exp10--;
            } else {
                sig_digits = 99;
            }
            i++;
        }
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        int_syntax = 0;
        int eneg = 0;
        long e = 0;
        if (i < n && (s[i] == '+' || s[i] == '-'))
            eneg = s[i++] == '-';
        if (i >= n || !is_digit(s[i]))
            return fail(p, i, DJ_ERR_PARSE, "expected a digit in the exponent of number");
        while (i < n && is_digit(s[i])) {
            if (e < 100000)
                e = e * 10 + (s[i] - '0');
            i++;
        }
        exp10 += eneg ? -e : e;
    }
    v->type = DJ_JSON_NUMBER;
    v->flags = 0;
    if (int_syntax && !overflow) {
        int64_t x;
        if (!neg)
            x = (int64_t)mag;
        else if (mag == limit_pos + 1)
            x = INT64_MIN;
        else
            x = -(int64_t)mag;
        v->flags = F_INT | F_INT_SYNTAX;
        v->u.num.i = x;
        v->u.num.d = (x == 0 && neg) ? -0.0 : (double)x; /* int64 -> double rounds correctly */
    } else if (FAST_DECIMAL && sig_digits <= 15 && (sig == 0 || (exp10 >= -22 && exp10 <= 22))) {
        /* Clinger's fast path: sig and 10^|exp10| are exact doubles, so one
         * correctly rounded multiply or divide gives the correct result. */
        static const double pow10[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                         1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                         1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
        double d = (double)sig;
        if (sig != 0)
            d = exp10 < 0 ? d / pow10[-exp10] : d * pow10[exp10];
        v->flags = int_syntax ? F_INT_SYNTAX : 0;
        v->u.num.d = neg ? -d : d;
        v->u.num.i = 0;
    } else {
        size_t len = i - start;
        if (len > (SIZE_MAX - 1) / 8 ||
            grow_array(p->alloc, (void **)&p->numbuf, &p->cap_num, len * 8 + 1, 1))
            return nomem(p);
        double d = locale_strtod((const char *)s + start, len, p->numbuf, p->dp, p->dplen);
        if (isinf(d) || isnan(d))
            return fail(p, start, DJ_ERR_PARSE, "number is too large for a double");
        v->flags = int_syntax ? F_INT_SYNTAX : 0;
        v->u.num.d = d;
        v->u.num.i = 0;
    }
    p->i = i;
    return DJ_OK;
}

/* The error for "a value was expected at p->i but is not there". */
static dj_status value_error(parser *p)
{
    size_t i = p->i;
    const unsigned char *s = p->s;
    if (i >= p->n)
        return fail(p, i, DJ_ERR_PARSE, "unexpected end of input, expected a JSON value");
    unsigned c = s[i];
    if (i == 0 && p->n >= 3 && s[0] == 0xEF && s[1] == 0xBB && s[2] == 0xBF)
        return fail(p, i, DJ_ERR_PARSE,
                    "byte order mark (U+FEFF) is not allowed in JSON; save the file as UTF-8 "
                    "without BOM");
    if (c == '/' && i + 1 < p->n && (s[i + 1] == '/' || s[i + 1] == '*'))
        return fail(p, i, DJ_ERR_PARSE, "comments are not allowed in JSON");
    if (c == '\'')
        return fail(p, i, DJ_ERR_PARSE, "strings must be in double quotes");
    if (c == '+' || c == '.')
        return fail(p, i, DJ_ERR_PARSE, "a number cannot start with '%c'", (char)c);
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_') {
        size_t e = i;
        while (e < p->n && e - i < 24 && is_word(s[e]))
            e++;
        return fail(p, i, DJ_ERR_PARSE,
                    "invalid literal '%.*s%s' (JSON has only true, false and null; no NaN or "
                    "Infinity)",
                    (int)(e - i), (const char *)s + i, e < p->n && is_word(s[e]) ? "..." : "");
    }
    char d[48];
    describe(p, i, d, sizeof d);
    return fail(p, i, DJ_ERR_PARSE, "unexpected %s, expected a JSON value", d);
}

static dj_status parse_literal(parser *p, dj_json_value *v)
{
    static const struct { const char *word; size_t len; dj_json_type t; int b; } lits[] = {
        {"true", 4, DJ_JSON_BOOL, 1}, {"false", 5, DJ_JSON_BOOL, 0}, {"null", 4, DJ_JSON_NULL, 0}};
    size_t i = p->i;
    for (size_t k = 0; k < 3; k++) {
        size_t l = lits[k].len;
        if (p->n - i >= l && memcmp(p->s + i, lits[k].word, l) == 0 &&
            !(i + l < p->n && is_word(p->s[i + l]))) {
            v->type = (unsigned char)lits[k].t;
            v->flags = 0;
            v->u.b = lits[k].b;
            p->i = i + l;
            return DJ_OK;
        }
    }
    return value_error(p);
}

static int key_cmp(const char *a, size_t al, const char *b, size_t bl)
{
    int c = memcmp(a, b, al < bl ? al : bl);
    if (c)
        return c;
    return al < bl ? -1 : al > bl;
}

/* Stable bottom-up merge sort of idx[0..n) by member key (tmp has n slots). */
static void sort_members(const json_member *m, size_t *idx, size_t *tmp, size_t n)
{
    size_t *src = idx, *dst = tmp;
    for (size_t width = 1; width < n; width *= 2) {
        for (size_t lo = 0; lo < n; lo += 2 * width) {
            size_t mid = lo + width < n ? lo + width : n;
            size_t hi = mid + width < n ? mid + width : n;
            size_t a = lo, b = mid, o = lo;
            while (a < mid && b < hi) {
                const json_member *x = &m[src[a]], *y = &m[src[b]];
                if (key_cmp(y->key, y->key_len, x->key, x->key_len) < 0)
                    dst[o++] = src[b++];
                else
                    dst[o++] = src[a++];
            }
            while (a < mid)
                dst[o++] = src[a++];
            while (b < hi)
                dst[o++] = src[b++];
        }
        size_t *t = src;
        src = dst;
        dst = t;
    }
    if (src != idx)
        memcpy(idx, src, n * sizeof *idx);
}

/* Point the parent of each child of v at v (v is in its final place). */
static void adopt_children(dj_json_value *v)
{
    if (v->type == DJ_JSON_ARRAY) {
        for (size_t k = 0; k < v->u.arr.len; k++)
            v->u.arr.items[k].parent = v;
    } else if (v->type == DJ_JSON_OBJECT) {
        for (size_t k = 0; k < v->u.obj.len; k++)
            v->u.obj.members[k].value.parent = v;
    }
}

static dj_status duplicate_error(parser *p, const entry *e, size_t first, size_t second)
{
    size_t l1, c1;
    char key[160];
    pos_at(p, e[first].key_off, &l1, &c1);
    quote_key(key, sizeof key, e[second].m.key, e[second].m.key_len, 100);
    return fail(p, e[second].key_off, DJ_ERR_PARSE,
                "duplicate key \"%s\" in object (first at line %zu, column %zu)", key, l1, c1);
}

/* Close the innermost container: move its entries into the arena. */
static dj_status close_container(parser *p, dj_json_value *out)
{
    frame *f = &p->frames[p->nframes - 1];
    size_t cnt = p->nents - f->first;
    entry *e = cnt ? p->ents + f->first : NULL;
    *out = f->v;
    if (f->v.type == DJ_JSON_ARRAY) {
        dj_json_value *items = NULL;
        if (cnt) {
            items = arena_alloc(&p->ar, cnt * sizeof *items, _Alignof(dj_json_value));
            if (!items)
                return nomem(p);
            for (size_t k = 0; k < cnt; k++) {
                items[k] = e[k].m.value;
                adopt_children(&items[k]);
            }
        }
        out->u.arr.items = items;
        out->u.arr.len = cnt;
    } else {
        json_member *m = NULL;
        size_t *sorted = NULL;
        if (cnt) {
            m = arena_alloc(&p->ar, cnt * sizeof *m, _Alignof(json_member));
            if (!m)
                return nomem(p);
            for (size_t k = 0; k < cnt; k++) {
                m[k] = e[k].m;
                adopt_children(&m[k].value);
            }
        }
        if (cnt <= SMALL_OBJECT) {
            for (size_t b = 1; b < cnt; b++)
                for (size_t a = 0; a < b; a++)
                    if (key_cmp(m[a].key, m[a].key_len, m[b].key, m[b].key_len) == 0)
                        return duplicate_error(p, e, a, b);
        } else {
            sorted = arena_alloc(&p->ar, cnt * sizeof *sorted, _Alignof(size_t));
            if (!sorted || grow_array(p->alloc, (void **)&p->tmp, &p->cap_tmp, cnt, sizeof *p->tmp))
                return nomem(p);
            for (size_t k = 0; k < cnt; k++)
                sorted[k] = k;
            sort_members(m, sorted, p->tmp, cnt);
            /* Equal keys form runs in the sorted index, in document order
             * (stable sort); a run's second entry is that key's first repeat.
             * Report the repeat that comes first in the document. */
            size_t best_a = 0, best_b = SIZE_MAX;
            for (size_t r = 0; r < cnt;) {
                const json_member *x = &m[sorted[r]];
                size_t e2 = r + 1;
                while (e2 < cnt && key_cmp(x->key, x->key_len, m[sorted[e2]].key,
                                           m[sorted[e2]].key_len) == 0)
                    e2++;
                if (e2 - r >= 2 && sorted[r + 1] < best_b) {
                    best_a = sorted[r];
                    best_b = sorted[r + 1];
                }
                r = e2;
            }
            if (best_b != SIZE_MAX)
                return duplicate_error(p, e, best_a, best_b);
        }
        out->u.obj.members = m;
        out->u.obj.len = cnt;
        out->u.obj.sorted = sorted;
    }
    p->nents = f->first;
    p->nframes--;
    return DJ_OK;
}

/* Key at p->i (a '"'), then ':'; stored in the innermost frame. */
static dj_status parse_key(parser *p)
{
    frame *f = &p->frames[p->nframes - 1];
    size_t off = p->i;
    const char *k;
    size_t kl;
    dj_status st = parse_string(p, &k, &kl);
    if (st)
        return st;
    f->key = k;
    f->key_len = kl;
    f->key_off = off;
    skip_ws(p);
    if (p->i >= p->n || p->s[p->i] != ':') {
        char d[48];
        describe(p, p->i, d, sizeof d);
        return fail(p, p->i, DJ_ERR_PARSE, "expected ':' after object key, got %s", d);
    }
    p->i++;
    return DJ_OK;
}

static dj_status key_expected(parser *p, int after_comma)
{
    const unsigned char *s = p->s;
    size_t i = p->i;
    if (after_comma && i < p->n && s[i] == '}')
        return fail(p, i, DJ_ERR_PARSE, "trailing comma before '}' (not allowed in JSON)");
    if (i < p->n && s[i] == '\'')
        return fail(p, i, DJ_ERR_PARSE, "object keys must be strings in double quotes");
    if (i < p->n && s[i] == '/' && i + 1 < p->n && (s[i + 1] == '/' || s[i + 1] == '*'))
        return fail(p, i, DJ_ERR_PARSE, "comments are not allowed in JSON");
    char d[48];
    describe(p, i, d, sizeof d);
    return fail(p, i, DJ_ERR_PARSE, after_comma ? "expected a string key after ',', got %s"
                                                : "expected a string key or '}', got %s",
                d);
}

static dj_status separator_error(parser *p, int object)
{
    const unsigned char *s = p->s;
    size_t i = p->i;
    if (i < p->n && s[i] == '/' && i + 1 < p->n && (s[i + 1] == '/' || s[i + 1] == '*'))
        return fail(p, i, DJ_ERR_PARSE, "comments are not allowed in JSON");
    if (i >= p->n)
        return fail(p, i, DJ_ERR_PARSE, object ? "unexpected end of input, expected ',' or '}' after object member"
                                               : "unexpected end of input, expected ',' or ']' after array element");
    char d[48];
    describe(p, i, d, sizeof d);
    return fail(p, i, DJ_ERR_PARSE,
                object ? "expected ',' or '}' after object member, got %s"
                       : "expected ',' or ']' after array element, got %s",
                d);
}

static dj_status push_frame(parser *p, dj_json_type t, size_t off)
{
    if (p->nframes >= p->max_depth)
        return fail(p, off, DJ_ERR_PARSE, "nesting deeper than %zu levels of arrays and objects",
                    p->max_depth);
    if (grow_array(p->alloc, (void **)&p->frames, &p->cap_frames, p->nframes + 1, sizeof *p->frames))
        return nomem(p);
    frame *f = &p->frames[p->nframes++];
    memset(f, 0, sizeof *f);
    f->v.type = (unsigned char)t;
    set_pos(p, &f->v, off);
    f->first = p->nents;
    return DJ_OK;
}

static dj_status parse_root(parser *p, dj_json_value *root)
{
    dj_json_value v;
    dj_status st;
    const unsigned char *s = p->s;

next_value:
    skip_ws(p);
    if (p->i >= p->n)
        return value_error(p);
    memset(&v, 0, sizeof v);
    switch (s[p->i]) {
    case '{':
        if ((st = push_frame(p, DJ_JSON_OBJECT, p->i)))
            return st;
        p->i++;
        skip_ws(p);
        if (p->i < p->n && s[p->i] == '}') {
            p->i++;
            if ((st = close_container(p, &v)))
                return st;
            goto have_value;
        }
        if (p->i >= p->n || s[p->i] != '"')
            return key_expected(p, 0);
        if ((st = parse_key(p)))
            return st;
        goto next_value;
    case '[':
        if ((st = push_frame(p, DJ_JSON_ARRAY, p->i)))
            return st;
        p->i++;
        skip_ws(p);
        if (p->i < p->n && s[p->i] == ']') {
            p->i++;
            if ((st = close_container(p, &v)))
                return st;
            goto have_value;
        }
        goto next_value;
    case '"':
        v.type = DJ_JSON_STRING;
        set_pos(p, &v, p->i);
        if ((st = parse_string(p, &v.u.str.s, &v.u.str.len)))
            return st;
        goto have_value;
    case '-': case '0': case '1': case '2': case '3': case '4':
    case '5': case '6': case '7': case '8': case '9':
        set_pos(p, &v, p->i);
        if ((st = parse_number(p, &v)))
            return st;
        goto have_value;
    case 't': case 'f': case 'n':
        set_pos(p, &v, p->i);
        if ((st = parse_literal(p, &v)))
            return st;
        goto have_value;
    default:
        return value_error(p);
    }

have_value:
    if (p->nframes == 0) {
        *root = v;
        skip_ws(p);
        if (p->i < p->n) {
            char d[48];
            describe(p, p->i, d, sizeof d);
            return fail(p, p->i, DJ_ERR_PARSE, "unexpected %s after the JSON value", d);
        }
        return DJ_OK;
    }
    {
        frame *f = &p->frames[p->nframes - 1];
        if (grow_array(p->alloc, (void **)&p->ents, &p->cap_ents, p->nents + 1, sizeof *p->ents))
            return nomem(p);
        entry *e = &p->ents[p->nents++];
        e->m.key = f->key;
        e->m.key_len = f->key_len;
        e->key_off = f->key_off;
        e->m.value = v;
    }

    for (;;) {
        frame *f = &p->frames[p->nframes - 1];
        int object = f->v.type == DJ_JSON_OBJECT;
        skip_ws(p);
        if (p->i < p->n && s[p->i] == ',') {
            p->i++;
            skip_ws(p);
            if (object) {
                if (p->i >= p->n || s[p->i] != '"')
                    return key_expected(p, 1);
                if ((st = parse_key(p)))
                    return st;
            } else if (p->i < p->n && s[p->i] == ']') {
                return fail(p, p->i, DJ_ERR_PARSE, "trailing comma before ']' (not allowed in JSON)");
            }
            goto next_value;
        }
        if (p->i < p->n && s[p->i] == (object ? '}' : ']')) {
            p->i++;
            if ((st = close_container(p, &v)))
                return st;
            goto have_value;
        }
        return separator_error(p, object);
    }
}

static void error_ok(dj_json_error *err)
{
    if (err) {
        err->status = DJ_OK;
        err->line = err->column = err->offset = 0;
        err->message[0] = 0;
    }
}

static dj_status error_plain(dj_json_error *err, dj_status st, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

static dj_status error_plain(dj_json_error *err, dj_status st, const char *fmt, ...)
{
    if (err) {
        err->status = st;
        err->line = err->column = err->offset = 0;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->message, sizeof err->message, fmt, ap);
        va_end(ap);
    }
    return st;
}

dj_status dj_json_parse(const char *text, size_t len, const dj_json_options *opt,
                        dj_json_doc **out, dj_json_error *err)
{
    error_ok(err);
    if (!out)
        return error_plain(err, DJ_ERR_ARG, "dj_json_parse: out is NULL");
    *out = NULL;
    if (!text && len)
        return error_plain(err, DJ_ERR_ARG, "dj_json_parse: text is NULL");
    parser p;
    memset(&p, 0, sizeof p);
    p.s = (const unsigned char *)(text ? text : "");
    p.n = len;
    p.max_depth = opt && opt->max_depth ? opt->max_depth : DJ_JSON_DEFAULT_MAX_DEPTH;
    p.alloc = opt ? opt->alloc : NULL;
    p.ar.alloc = p.alloc;
    p.pos_line = p.pos_col = 1;
    p.err = err;
    decimal_point(&p.dp, &p.dplen);

    dj_status st;
    dj_json_doc *doc = arena_alloc(&p.ar, sizeof *doc, _Alignof(dj_json_doc));
    if (!doc)
        st = nomem(&p);
    else
        st = parse_root(&p, &doc->root);
    mem_free(p.alloc, p.ents);
    mem_free(p.alloc, p.frames);
    mem_free(p.alloc, p.tmp);
    mem_free(p.alloc, p.numbuf);
    if (st) {
        arena_release(&p.ar);
        return st;
    }
    doc->root.parent = NULL;
    adopt_children(&doc->root);
    doc->ar = p.ar;
    *out = doc;
    return DJ_OK;
}

dj_status dj_json_parse_file(const char *path, const dj_json_options *opt, dj_json_doc **out,
                             dj_json_error *err)
{
    error_ok(err);
    if (!out)
        return error_plain(err, DJ_ERR_ARG, "dj_json_parse_file: out is NULL");
    *out = NULL;
    if (!path)
        return error_plain(err, DJ_ERR_ARG, "dj_json_parse_file: path is NULL");
    const dj_json_allocator *a = opt ? opt->alloc : NULL;
    errno = 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return error_plain(err, DJ_ERR_IO, "cannot open '%s': %s", path,
                           errno ? strerror(errno) : "unknown error");
    char *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (grow_array(a, (void **)&buf, &cap, len + 65536, 1)) {
            fclose(f);
            mem_free(a, buf);
            return error_plain(err, DJ_ERR_NOMEM, "cannot read '%s': out of memory", path);
        }
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0 || len < cap) {
            if (ferror(f)) {
                int e = errno;
                fclose(f);
                mem_free(a, buf);
                return error_plain(err, DJ_ERR_IO, "cannot read '%s': %s", path,
                                   e ? strerror(e) : "read error");
            }
            if (feof(f))
                break;
        }
    }
    fclose(f);
    dj_json_error local;
    dj_status st = dj_json_parse(buf, len, opt, out, &local);
    mem_free(a, buf);
    if (st && err) {
        *err = local;
        if (snprintf(err->message, sizeof err->message, "%s: %s", path, local.message) < 0)
            err->message[0] = 0;
    }
    return st;
}

void dj_json_free(dj_json_doc *doc)
{
    if (!doc)
        return;
    arena ar = doc->ar; /* doc itself lives in the arena */
    arena_release(&ar);
}

const dj_json_value *dj_json_root(const dj_json_doc *doc)
{
    return doc ? &doc->root : NULL;
}

/* ---- reading values ------------------------------------------------------------ */

dj_json_type dj_json_type_of(const dj_json_value *v)
{
    return v ? (dj_json_type)v->type : DJ_JSON_NULL;
}

int dj_json_bool(const dj_json_value *v)
{
    return v && v->type == DJ_JSON_BOOL && v->u.b;
}

double dj_json_number(const dj_json_value *v)
{
    return v && v->type == DJ_JSON_NUMBER ? v->u.num.d : 0.0;
}

int dj_json_is_int(const dj_json_value *v)
{
    return v && v->type == DJ_JSON_NUMBER && (v->flags & F_INT);
}

int64_t dj_json_int(const dj_json_value *v)
{
    return dj_json_is_int(v) ? v->u.num.i : 0;
}

const char *dj_json_string(const dj_json_value *v, size_t *len)
{
    if (!v || v->type != DJ_JSON_STRING) {
        if (len)
            *len = 0;
        return NULL;
    }
    if (len)
        *len = v->u.str.len;
    return v->u.str.s;
}

size_t dj_json_len(const dj_json_value *v)
{
    if (!v)
        return 0;
    if (v->type == DJ_JSON_ARRAY)
        return v->u.arr.len;
    if (v->type == DJ_JSON_OBJECT)
        return v->u.obj.len;
    return 0;
}

const dj_json_value *dj_json_at(const dj_json_value *arr, size_t i)
{
    if (!arr || arr->type != DJ_JSON_ARRAY || i >= arr->u.arr.len)
        return NULL;
    return &arr->u.arr.items[i];
}

const char *dj_json_key_at(const dj_json_value *obj, size_t i, size_t *key_len)
{
    if (!obj || obj->type != DJ_JSON_OBJECT || i >= obj->u.obj.len) {
        if (key_len)
            *key_len = 0;
        return NULL;
    }
    if (key_len)
        *key_len = obj->u.obj.members[i].key_len;
    return obj->u.obj.members[i].key;
}

const dj_json_value *dj_json_value_at(const dj_json_value *obj, size_t i)
{
    if (!obj || obj->type != DJ_JSON_OBJECT || i >= obj->u.obj.len)
        return NULL;
    return &obj->u.obj.members[i].value;
}

const dj_json_value *dj_json_get_n(const dj_json_value *obj, const char *key, size_t key_len)
{
    if (!obj || obj->type != DJ_JSON_OBJECT || (!key && key_len))
        return NULL;
    const json_member *m = obj->u.obj.members;
    size_t n = obj->u.obj.len;
    if (!key)
        key = "";
    if (!obj->u.obj.sorted) {
        for (size_t k = 0; k < n; k++)
            if (m[k].key_len == key_len && memcmp(m[k].key, key, key_len) == 0)
                return &m[k].value;
        return NULL;
    }
    const size_t *idx = obj->u.obj.sorted;
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const json_member *x = &m[idx[mid]];
        int c = key_cmp(x->key, x->key_len, key, key_len);
        if (c == 0)
            return &x->value;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

const dj_json_value *dj_json_get(const dj_json_value *obj, const char *key)
{
    return key ? dj_json_get_n(obj, key, strlen(key)) : NULL;
}

const dj_json_value *dj_json_parent(const dj_json_value *v)
{
    return v ? v->parent : NULL;
}

void dj_json_position(const dj_json_value *v, size_t *line, size_t *column, size_t *offset)
{
    if (line)
        *line = v ? v->line : 0;
    if (column)
        *column = v ? v->column : 0;
    if (offset)
        *offset = v ? v->offset : 0;
}

/* Index of v among its parent's children. */
static size_t child_index(const dj_json_value *v)
{
    const dj_json_value *p = v->parent;
    if (p->type == DJ_JSON_ARRAY)
        return (size_t)(v - p->u.arr.items);
    const json_member *m =
        (const json_member *)(const void *)((const char *)v - offsetof(json_member, value));
    return (size_t)(m - p->u.obj.members);
}

static const dj_json_value *child(const dj_json_value *p, size_t k)
{
    return p->type == DJ_JSON_ARRAY ? &p->u.arr.items[k] : &p->u.obj.members[k].value;
}

static int node_equal(const dj_json_value *a, const dj_json_value *b)
{
    if (a->type != b->type)
        return 0;
    switch (a->type) {
    case DJ_JSON_NULL: return 1;
    case DJ_JSON_BOOL: return a->u.b == b->u.b;
    case DJ_JSON_NUMBER:
        if ((a->flags & F_INT) != (b->flags & F_INT))
            return 0;
        if ((a->flags & F_INT) && a->u.num.i != b->u.num.i)
            return 0;
        return memcmp(&a->u.num.d, &b->u.num.d, sizeof(double)) == 0;
    case DJ_JSON_STRING:
        return a->u.str.len == b->u.str.len && memcmp(a->u.str.s, b->u.str.s, a->u.str.len) == 0;
    default:
        return dj_json_len(a) == dj_json_len(b);
    }
}

static int member_key_equal(const dj_json_value *pa, const dj_json_value *pb, size_t k)
{
    if (pa->type != DJ_JSON_OBJECT)
        return 1;
    const json_member *x = &pa->u.obj.members[k], *y = &pb->u.obj.members[k];
    return x->key_len == y->key_len && memcmp(x->key, y->key, x->key_len) == 0;
}

int dj_json_equal(const dj_json_value *a, const dj_json_value *b)
{
    if (!a || !b)
        return a == b;
    const dj_json_value *ra = a;
    for (;;) {
        if (!node_equal(a, b))
            return 0;
        if (dj_json_len(a) > 0) {
            if (!member_key_equal(a, b, 0))
                return 0;
            a = child(a, 0);
            b = child(b, 0);
            continue;
        }
        for (;;) {
            if (a == ra)
                return 1;
            const dj_json_value *pa = a->parent, *pb = b->parent;
            size_t k = child_index(a) + 1;
            if (k < dj_json_len(pa)) {
                if (!member_key_equal(pa, pb, k))
                    return 0;
                a = child(pa, k);
                b = child(pb, k);
                break;
            }
            a = pa;
            b = pb;
        }
    }
}

/* ---- paths and schema errors ------------------------------------------------ */

static int is_identifier(const char *k, size_t len)
{
    if (len == 0)
        return 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)k[i];
        int alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
        if (!alpha && !(i > 0 && is_digit(c)))
            return 0;
    }
    return 1;
}

size_t dj_json_path(const dj_json_value *v, char *buf, size_t size)
{
    char tmp[1024];
    size_t start = sizeof tmp - 1; /* tmp[start..] holds the path so far */
    int truncated = 0;
    tmp[start] = 0;
    while (v && v->parent) {
        char seg[200];
        const dj_json_value *p = v->parent;
        size_t k = child_index(v);
        int seg_len;
        if (p->type == DJ_JSON_ARRAY) {
            seg_len = snprintf(seg, sizeof seg, "[%zu]", k);
        } else {
            const json_member *m = &p->u.obj.members[k];
            if (is_identifier(m->key, m->key_len) && m->key_len < 120) {
                seg_len = snprintf(seg, sizeof seg, "%s%s", p->parent ? "." : "", m->key);
            } else {
                char q[160];
                quote_key(q, sizeof q, m->key, m->key_len, 100);
                seg_len = snprintf(seg, sizeof seg, "[\"%s\"]", q);
            }
        }
        if (seg_len < 0)
            seg_len = 0;
        if ((size_t)seg_len >= sizeof seg)
            seg_len = (int)sizeof seg - 1;
        if ((size_t)seg_len > start - 3) { /* keep room for "..." */
            truncated = 1;
            break;
        }
        start -= (size_t)seg_len;
        memcpy(tmp + start, seg, (size_t)seg_len);
        v = p;
    }
    if (truncated) {
        start -= 3;
        memcpy(tmp + start, "...", 3);
    }
    size_t len = sizeof tmp - 1 - start;
    if (size == 0)
        return 0;
    if (len >= size) { /* keep the end, the most specific part */
        size_t drop = len - (size - 1) + (size > 4 ? 3 : 0);
        if (drop > len)
            drop = len;
        size_t o = 0;
        if (size > 4) {
            memcpy(buf, "...", 3);
            o = 3;
        }
        memcpy(buf + o, tmp + start + drop, len - drop);
        o += len - drop;
        buf[o] = 0;
        return o;
    }
    memcpy(buf, tmp + start, len + 1);
    return len;
}

/* Message "PATH: text (line L, column C)" with the path of `at` and the
 * position of `pos`. */
static dj_status verror(dj_json_error *err, dj_status st, const dj_json_value *at,
                        const dj_json_value *pos, const char *fmt, va_list ap)
{
    if (!err)
        return st;
    char text[DJ_JSON_ERROR_MAX];
    vsnprintf(text, sizeof text, fmt, ap);
    err->status = st;
    err->line = pos ? pos->line : 0;
    err->column = pos ? pos->column : 0;
    err->offset = pos ? pos->offset : 0;
    if (!at) {
        snprintf(err->message, sizeof err->message, "%s", text);
        return st;
    }
    char path[256];
    dj_json_path(at, path, sizeof path);
    int r;
    if (pos)
        r = snprintf(err->message, sizeof err->message, "%s: %s (line %zu, column %zu)",
                     path[0] ? path : "top level", text, pos->line, pos->column);
    else
        r = snprintf(err->message, sizeof err->message, "%s: %s", path[0] ? path : "top level", text);
    if (r < 0)
        err->message[0] = 0;
    return st;
}

dj_status dj_json_errorf(dj_json_error *err, dj_status st, const dj_json_value *v,
                         const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    verror(err, st, v, v, fmt, ap);
    va_end(ap);
    return st;
}

static dj_status at_error(dj_json_error *err, dj_status st, const dj_json_value *at,
                          const dj_json_value *pos, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 5, 6)))
#endif
    ;

static dj_status at_error(dj_json_error *err, dj_status st, const dj_json_value *at,
                          const dj_json_value *pos, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    verror(err, st, at, pos, fmt, ap);
    va_end(ap);
    return st;
}

dj_status dj_json_expect(const dj_json_value *v, dj_json_type t, dj_json_error *err)
{
    if (!v)
        return error_plain(err, DJ_ERR_ARG, "dj_json_expect: value is NULL");
    if (v->type != t)
        return dj_json_errorf(err, DJ_ERR_PARSE, v, "expected %s, got %s", type_article(t),
                              dj_json_type_name((dj_json_type)v->type));
    return DJ_OK;
}

dj_status dj_json_expect_len(const dj_json_value *v, size_t min_len, size_t max_len,
                             dj_json_error *err)
{
    dj_status st = dj_json_expect(v, DJ_JSON_ARRAY, err);
    if (st)
        return st;
    size_t n = v->u.arr.len;
    if (n >= min_len && n <= max_len)
        return DJ_OK;
    if (min_len == max_len)
        return dj_json_errorf(err, DJ_ERR_PARSE, v, "expected an array of %zu item%s, got %zu",
                              min_len, min_len == 1 ? "" : "s", n);
    if (max_len == SIZE_MAX)
        return dj_json_errorf(err, DJ_ERR_PARSE, v,
                              "expected an array of at least %zu item%s, got %zu", min_len,
                              min_len == 1 ? "" : "s", n);
    return dj_json_errorf(err, DJ_ERR_PARSE, v, "expected an array of %zu to %zu items, got %zu",
                          min_len, max_len, n);
}

dj_status dj_json_as_int(const dj_json_value *v, int64_t min, int64_t max, int64_t *out,
                         dj_json_error *err)
{
    if (!v)
        return error_plain(err, DJ_ERR_ARG, "dj_json_as_int: value is NULL");
    if (v->type != DJ_JSON_NUMBER)
        return dj_json_errorf(err, DJ_ERR_PARSE, v, "expected an integer, got %s",
                              dj_json_type_name((dj_json_type)v->type));
    if (!(v->flags & F_INT)) {
        char num[40];
        format_double(v->u.num.d, num);
        if (v->flags & F_INT_SYNTAX)
            return dj_json_errorf(err, DJ_ERR_RANGE, v,
                                  "integer is out of the 64-bit range (about %s)", num);
        return dj_json_errorf(err, DJ_ERR_PARSE, v, "expected an integer, got number %s", num);
    }
    int64_t x = v->u.num.i;
    if (x < min || x > max) {
        if (max == INT64_MAX)
            return dj_json_errorf(err, DJ_ERR_RANGE, v, "%lld is out of range (expected at least %lld)",
                                  (long long)x, (long long)min);
        if (min == INT64_MIN)
            return dj_json_errorf(err, DJ_ERR_RANGE, v, "%lld is out of range (expected at most %lld)",
                                  (long long)x, (long long)max);
        return dj_json_errorf(err, DJ_ERR_RANGE, v, "%lld is out of range (expected %lld to %lld)",
                              (long long)x, (long long)min, (long long)max);
    }
    if (out)
        *out = x;
    return DJ_OK;
}

dj_status dj_json_as_double(const dj_json_value *v, double *out, dj_json_error *err)
{
    if (!v)
        return error_plain(err, DJ_ERR_ARG, "dj_json_as_double: value is NULL");
    if (v->type != DJ_JSON_NUMBER)
        return dj_json_errorf(err, DJ_ERR_PARSE, v, "expected a number, got %s",
                              dj_json_type_name((dj_json_type)v->type));
    if (out)
        *out = v->u.num.d;
    return DJ_OK;
}

dj_status dj_json_as_bool(const dj_json_value *v, int *out, dj_json_error *err)
{
    dj_status st = dj_json_expect(v, DJ_JSON_BOOL, err);
    if (!st && out)
        *out = v->u.b;
    return st;
}

dj_status dj_json_as_string(const dj_json_value *v, const char **out, size_t *len,
                            dj_json_error *err)
{
    dj_status st = dj_json_expect(v, DJ_JSON_STRING, err);
    if (st)
        return st;
    if (!len && memchr(v->u.str.s, 0, v->u.str.len))
        return dj_json_errorf(err, DJ_ERR_PARSE, v, "string contains a NUL character (\\u0000)");
    if (out)
        *out = v->u.str.s;
    if (len)
        *len = v->u.str.len;
    return DJ_OK;
}

/* Looks up key in obj; *out NULL when absent. Errors when obj is not an
 * object. */
static dj_status lookup(const dj_json_value *obj, const char *key, const dj_json_value **out,
                        dj_json_error *err)
{
    *out = NULL;
    if (!obj || !key)
        return error_plain(err, DJ_ERR_ARG, "JSON member lookup: object or key is NULL");
    if (obj->type != DJ_JSON_OBJECT)
        return dj_json_errorf(err, DJ_ERR_PARSE, obj, "expected an object, got %s",
                              dj_json_type_name((dj_json_type)obj->type));
    *out = dj_json_get(obj, key);
    return DJ_OK;
}

dj_status dj_json_member(const dj_json_value *obj, const char *key, const dj_json_value **out,
                         dj_json_error *err)
{
    const dj_json_value *v;
    dj_status st = lookup(obj, key, &v, err);
    if (out)
        *out = v;
    if (st)
        return st;
    if (!v) {
        char q[160];
        quote_key(q, sizeof q, key, strlen(key), 100);
        return dj_json_errorf(err, DJ_ERR_PARSE, obj, "missing member \"%s\"", q);
    }
    return DJ_OK;
}

dj_status dj_json_get_int(const dj_json_value *obj, const char *key, int64_t min, int64_t max,
                          int64_t *out, dj_json_error *err)
{
    const dj_json_value *v;
    dj_status st = dj_json_member(obj, key, &v, err);
    return st ? st : dj_json_as_int(v, min, max, out, err);
}

dj_status dj_json_get_double(const dj_json_value *obj, const char *key, double *out,
                             dj_json_error *err)
{
    const dj_json_value *v;
    dj_status st = dj_json_member(obj, key, &v, err);
    return st ? st : dj_json_as_double(v, out, err);
}

dj_status dj_json_get_bool(const dj_json_value *obj, const char *key, int *out, dj_json_error *err)
{
    const dj_json_value *v;
    dj_status st = dj_json_member(obj, key, &v, err);
    return st ? st : dj_json_as_bool(v, out, err);
}

dj_status dj_json_get_string(const dj_json_value *obj, const char *key, const char **out,
                             size_t *len, dj_json_error *err)
{
    const dj_json_value *v;
    dj_status st = dj_json_member(obj, key, &v, err);
    return st ? st : dj_json_as_string(v, out, len, err);
}

dj_status dj_json_opt_int(const dj_json_value *obj, const char *key, int64_t min, int64_t max,
                          int64_t def, int64_t *out, dj_json_error *err)
{
    const dj_json_value *v;
    dj_status st = lookup(obj, key, &v, err);
    if (st)
        return st;
    if (!v) {
        if (out)
            *out = def;
        return DJ_OK;
    }
    return dj_json_as_int(v, min, max, out, err);
}

dj_status dj_json_opt_double(const dj_json_value *obj, const char *key, double def, double *out,
                             dj_json_error *err)
{
    const dj_json_value *v;
    dj_status st = lookup(obj, key, &v, err);
    if (st)
        return st;
    if (!v) {
        if (out)
            *out = def;
        return DJ_OK;
    }
    return dj_json_as_double(v, out, err);
}

dj_status dj_json_opt_bool(const dj_json_value *obj, const char *key, int def, int *out,
                           dj_json_error *err)
{
    const dj_json_value *v;
    dj_status st = lookup(obj, key, &v, err);
    if (st)
        return st;
    if (!v) {
        if (out)
            *out = def;
        return DJ_OK;
    }
    return dj_json_as_bool(v, out, err);
}

dj_status dj_json_opt_string(const dj_json_value *obj, const char *key, const char *def,
                             const char **out, dj_json_error *err)
{
    const dj_json_value *v;
    dj_status st = lookup(obj, key, &v, err);
    if (st)
        return st;
    if (!v) {
        if (out)
            *out = def;
        return DJ_OK;
    }
    return dj_json_as_string(v, out, NULL, err);
}

dj_status dj_json_check_keys(const dj_json_value *obj, const char *const *allowed,
                             dj_json_error *err)
{
    if (!obj || !allowed)
        return error_plain(err, DJ_ERR_ARG, "dj_json_check_keys: object or list is NULL");
    dj_status st = dj_json_expect(obj, DJ_JSON_OBJECT, err);
    if (st)
        return st;
    for (size_t k = 0; k < obj->u.obj.len; k++) {
        const json_member *m = &obj->u.obj.members[k];
        int found = 0;
        for (const char *const *a = allowed; *a && !found; a++)
            found = strlen(*a) == m->key_len && memcmp(*a, m->key, m->key_len) == 0;
        if (!found) {
            char q[160];
            quote_key(q, sizeof q, m->key, m->key_len, 100);
            return at_error(err, DJ_ERR_PARSE, obj, &m->value, "unknown member \"%s\"", q);
        }
    }
    return DJ_OK;
}

/* ---- the writer ---------------------------------------------------------------- */

enum { L_OBJ = 1, L_HAS = 2, L_KEY = 4 };

void dj_json_writer_init(dj_json_writer *w, unsigned flags, const dj_json_allocator *alloc)
{
    memset(w, 0, sizeof *w);
    w->flags = flags;
    w->alloc = alloc;
}

void dj_json_writer_free(dj_json_writer *w)
{
    if (!w)
        return;
    mem_free(w->alloc, w->buf);
    mem_free(w->alloc, w->levels);
    unsigned flags = w->flags;
    const dj_json_allocator *a = w->alloc;
    dj_json_writer_init(w, flags, a);
}

void dj_json_writer_reset(dj_json_writer *w)
{
    w->len = 0;
    w->depth = 0;
    w->wrote_root = 0;
    w->status = DJ_OK;
    w->error[0] = 0;
    if (w->buf)
        w->buf[0] = 0;
}

static dj_status w_fail(dj_json_writer *w, dj_status st, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

static dj_status w_fail(dj_json_writer *w, dj_status st, const char *fmt, ...)
{
    if (w->status == DJ_OK) {
        w->status = st;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(w->error, sizeof w->error, fmt, ap);
        va_end(ap);
    }
    return w->status;
}

/* Room for `extra` more bytes plus a NUL. */
static int w_reserve(dj_json_writer *w, size_t extra)
{
    if (w->status)
        return -1;
    if (extra > SIZE_MAX - 1 - w->len ||
        grow_array(w->alloc, (void **)&w->buf, &w->cap, w->len + extra + 1, 1)) {
        w_fail(w, DJ_ERR_NOMEM, "out of memory");
        return -1;
    }
    return 0;
}

static void w_put(dj_json_writer *w, const char *s, size_t n)
{
    if (n == 0 || w_reserve(w, n))
        return;
    memcpy(w->buf + w->len, s, n);
    w->len += n;
    w->buf[w->len] = 0;
}

static void w_newline(dj_json_writer *w, size_t depth)
{
    if (!(w->flags & DJ_JSON_WRITE_PRETTY))
        return;
    if (depth > (SIZE_MAX - 2) / 2) {
        w_fail(w, DJ_ERR_NOMEM, "out of memory");
        return;
    }
    if (w_reserve(w, 1 + 2 * depth))
        return;
    w->buf[w->len++] = '\n';
    memset(w->buf + w->len, ' ', 2 * depth);
    w->len += 2 * depth;
    w->buf[w->len] = 0;
}

/* Separator and bookkeeping before a value. */
static dj_status w_before_value(dj_json_writer *w)
{
    if (w->status)
        return w->status;
    if (w->depth == 0) {
        if (w->wrote_root)
            return w_fail(w, DJ_ERR_ARG, "more than one top-level value");
        w->wrote_root = 1;
        return DJ_OK;
    }
    unsigned char *lv = &w->levels[w->depth - 1];
    if (*lv & L_OBJ) {
        if (!(*lv & L_KEY))
            return w_fail(w, DJ_ERR_ARG, "value without a key inside an object");
        *lv = (unsigned char)((*lv & ~L_KEY) | L_HAS);
        return DJ_OK;
    }
    if (*lv & L_HAS)
        w_put(w, ",", 1);
    *lv |= L_HAS;
    w_newline(w, w->depth);
    return w->status;
}

static dj_status w_string(dj_json_writer *w, const char *str, size_t len)
{
    static const char hexd[] = "0123456789abcdef";
    const unsigned char *s = (const unsigned char *)str;
    int ascii = (w->flags & DJ_JSON_WRITE_ASCII) != 0;
    size_t run = 0; /* start of the pending run of bytes copied as they are */
    w_put(w, "\"", 1);
    for (size_t i = 0; i < len && !w->status;) {
        unsigned c = s[i];
        if (c >= 0x20 && c != '"' && c != '\\' && c < 0x7F) {
            i++;
            continue;
        }
        size_t l = 0;
        if (c >= 0x80) {
            l = utf8_seq_len(s + i, len - i);
            if (l == 0)
                return w_fail(w, DJ_ERR_ARG, "string is not valid UTF-8 (byte 0x%02X at offset %zu)",
                              c, i);
            if (!ascii) {
                i += l;
                continue;
            }
        }
        w_put(w, str + run, i - run);
        char esc[16];
        size_t el;
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            el = 2;
        } else if (c == '\n' || c == '\r' || c == '\t' || c == '\b' || c == '\f') {
            esc[0] = '\\';
            esc[1] = c == '\n' ? 'n' : c == '\r' ? 'r' : c == '\t' ? 't' : c == '\b' ? 'b' : 'f';
            el = 2;
        } else {
            uint32_t cp = l ? utf8_decode(s + i, l) : c;
            uint32_t units[2];
            size_t nu = 0;
            if (cp >= 0x10000) {
                cp -= 0x10000;
                units[nu++] = 0xD800 + (cp >> 10);
                units[nu++] = 0xDC00 + (cp & 0x3FF);
            } else {
                units[nu++] = cp;
            }
            el = 0;
            for (size_t k = 0; k < nu; k++) {
                esc[el++] = '\\';
                esc[el++] = 'u';
                for (int sh = 12; sh >= 0; sh -= 4)
                    esc[el++] = hexd[(units[k] >> sh) & 0xF];
            }
        }
        w_put(w, esc, el);
        i += l ? l : 1;
        run = i;
    }
    if (!w->status) {
        w_put(w, str + run, len - run);
        w_put(w, "\"", 1);
    }
    return w->status;
}

static dj_status w_begin(dj_json_writer *w, int object)
{
    if (w_before_value(w))
        return w->status;
    if (grow_array(w->alloc, (void **)&w->levels, &w->levels_cap, w->depth + 1, 1))
        return w_fail(w, DJ_ERR_NOMEM, "out of memory");
    w->levels[w->depth++] = object ? L_OBJ : 0;
    w_put(w, object ? "{" : "[", 1);
    return w->status;
}

static dj_status w_end(dj_json_writer *w, int object)
{
    if (w->status)
        return w->status;
    if (w->depth == 0)
        return w_fail(w, DJ_ERR_ARG, "end of %s without a beginning", object ? "object" : "array");
    unsigned char lv = w->levels[w->depth - 1];
    if (!!(lv & L_OBJ) != object)
        return w_fail(w, DJ_ERR_ARG, "end of %s inside an %s", object ? "object" : "array",
                      object ? "array" : "object");
    if (lv & L_KEY)
        return w_fail(w, DJ_ERR_ARG, "key without a value at the end of an object");
    w->depth--;
    if (lv & L_HAS)
        w_newline(w, w->depth);
    w_put(w, object ? "}" : "]", 1);
    return w->status;
}

dj_status dj_json_write_begin_object(dj_json_writer *w) { return w_begin(w, 1); }
dj_status dj_json_write_end_object(dj_json_writer *w) { return w_end(w, 1); }
dj_status dj_json_write_begin_array(dj_json_writer *w) { return w_begin(w, 0); }
dj_status dj_json_write_end_array(dj_json_writer *w) { return w_end(w, 0); }

dj_status dj_json_write_key_n(dj_json_writer *w, const char *key, size_t len)
{
    if (w->status)
        return w->status;
    if (!key && len)
        return w_fail(w, DJ_ERR_ARG, "key is NULL");
    if (w->depth == 0 || !(w->levels[w->depth - 1] & L_OBJ))
        return w_fail(w, DJ_ERR_ARG, "key outside an object");
    unsigned char *lv = &w->levels[w->depth - 1];
    if (*lv & L_KEY)
        return w_fail(w, DJ_ERR_ARG, "two keys in a row without a value");
    if (*lv & L_HAS)
        w_put(w, ",", 1);
    w_newline(w, w->depth);
    w_string(w, key ? key : "", len);
    w_put(w, ": ", (w->flags & DJ_JSON_WRITE_PRETTY) ? 2 : 1);
    *lv |= L_KEY;
    return w->status;
}

dj_status dj_json_write_key(dj_json_writer *w, const char *key)
{
    if (!key)
        return w_fail(w, DJ_ERR_ARG, "key is NULL");
    return dj_json_write_key_n(w, key, strlen(key));
}

dj_status dj_json_write_string_n(dj_json_writer *w, const char *s, size_t len)
{
    if (w->status)
        return w->status;
    if (!s && len)
        return w_fail(w, DJ_ERR_ARG, "string is NULL");
    if (w_before_value(w))
        return w->status;
    return w_string(w, s ? s : "", len);
}

dj_status dj_json_write_string(dj_json_writer *w, const char *s)
{
    if (!s)
        return dj_json_write_null(w);
    return dj_json_write_string_n(w, s, strlen(s));
}

static size_t format_int(int64_t x, char out[24])
{
    char tmp[24];
    size_t n = 0, o = 0;
    uint64_t m = x < 0 ? (uint64_t)0 - (uint64_t)x : (uint64_t)x;
    do {
        tmp[n++] = (char)('0' + m % 10);
        m /= 10;
    } while (m);
    if (x < 0)
        out[o++] = '-';
    while (n)
        out[o++] = tmp[--n];
    out[o] = 0;
    return o;
}

dj_status dj_json_write_int(dj_json_writer *w, int64_t x)
{
    if (w_before_value(w))
        return w->status;
    char b[24];
    w_put(w, b, format_int(x, b));
    return w->status;
}

dj_status dj_json_write_double(dj_json_writer *w, double x)
{
    if (w_before_value(w))
        return w->status;
    if (!isfinite(x)) {
        w_put(w, "null", 4);
        return w->status;
    }
    char b[40];
    w_put(w, b, format_double(x, b));
    return w->status;
}

dj_status dj_json_write_bool(dj_json_writer *w, int b)
{
    if (w_before_value(w))
        return w->status;
    if (b)
        w_put(w, "true", 4);
    else
        w_put(w, "false", 5);
    return w->status;
}

dj_status dj_json_write_null(dj_json_writer *w)
{
    if (w_before_value(w))
        return w->status;
    w_put(w, "null", 4);
    return w->status;
}

/* A parsed number, written so that it parses back to the same value. */
static dj_status w_number(dj_json_writer *w, const dj_json_value *v)
{
    if (v->flags & F_INT) {
        if (v->u.num.i == 0 && signbit(v->u.num.d)) {
            if (w_before_value(w))
                return w->status;
            w_put(w, "-0", 2);
            return w->status;
        }
        return dj_json_write_int(w, v->u.num.i);
    }
    if (v->flags & F_INT_SYNTAX) {
        /* An integer literal beyond int64: its double is an integer; print
         * all its digits so the text stays an integer literal. */
        char b[400];
        int n;
        if (v->u.num.d == -0x1p63) /* "-9223372036854775808" would read back as an int64 */
            n = snprintf(b, sizeof b, "-9223372036854775809");
        else
            n = snprintf(b, sizeof b, "%.0f", v->u.num.d);
        if (n > 0 && (size_t)n < sizeof b) {
            if (w_before_value(w))
                return w->status;
            w_put(w, b, (size_t)n);
            return w->status;
        }
    }
    return dj_json_write_double(w, v->u.num.d);
}

static dj_status w_scalar_or_begin(dj_json_writer *w, const dj_json_value *v)
{
    switch (v->type) {
    case DJ_JSON_NULL: return dj_json_write_null(w);
    case DJ_JSON_BOOL: return dj_json_write_bool(w, v->u.b);
    case DJ_JSON_NUMBER: return w_number(w, v);
    case DJ_JSON_STRING: return dj_json_write_string_n(w, v->u.str.s, v->u.str.len);
    case DJ_JSON_ARRAY: return w_begin(w, 0);
    default: return w_begin(w, 1);
    }
}

static dj_status w_key_of(dj_json_writer *w, const dj_json_value *v)
{
    const dj_json_value *p = v->parent;
    if (p->type != DJ_JSON_OBJECT)
        return w->status;
    const json_member *m = &p->u.obj.members[child_index(v)];
    return dj_json_write_key_n(w, m->key, m->key_len);
}

dj_status dj_json_write_value(dj_json_writer *w, const dj_json_value *v)
{
    if (w->status)
        return w->status;
    if (!v)
        return w_fail(w, DJ_ERR_ARG, "value is NULL");
    const dj_json_value *root = v;
    for (;;) {
        if (v != root && w_key_of(w, v))
            return w->status;
        if (w_scalar_or_begin(w, v))
            return w->status;
        if (v->type == DJ_JSON_ARRAY || v->type == DJ_JSON_OBJECT) {
            if (dj_json_len(v) > 0) {
                v = child(v, 0);
                continue;
            }
            w_end(w, v->type == DJ_JSON_OBJECT);
        }
        for (;;) {
            if (w->status)
                return w->status;
            if (v == root)
                return DJ_OK;
            const dj_json_value *p = v->parent;
            size_t k = child_index(v) + 1;
            if (k < dj_json_len(p)) {
                v = child(p, k);
                break;
            }
            w_end(w, p->type == DJ_JSON_OBJECT);
            v = p;
        }
    }
}

dj_status dj_json_writer_finish(dj_json_writer *w, const char **text, size_t *len)
{
    if (text)
        *text = NULL;
    if (len)
        *len = 0;
    if (w->status)
        return w->status;
    if (w->depth)
        return w_fail(w, DJ_ERR_ARG, "%zu array(s) or object(s) not closed", w->depth);
    if (!w->wrote_root)
        return w_fail(w, DJ_ERR_ARG, "nothing written");
    if (text)
        *text = w->buf;
    if (len)
        *len = w->len;
    return DJ_OK;
}

const char *dj_json_writer_error(const dj_json_writer *w)
{
    return w->error;
}

char *dj_json_writer_take_line(dj_json_writer *w)
{
    const char *text;
    size_t len;
    char *out = NULL;
    if (dj_json_writer_finish(w, &text, &len) == DJ_OK && (out = malloc(len + 2))) {
        memcpy(out, text, len);
        out[len] = '\n';
        out[len + 1] = '\0';
    }
    dj_json_writer_free(w);
    return out;
}

dj_status dj_json_writer_print_line(dj_json_writer *w, FILE *fp)
{
    const char *text;
    size_t len;
    dj_status st = dj_json_writer_finish(w, &text, &len);
    if (st == DJ_OK)
        fprintf(fp, "%s\n", text);
    dj_json_writer_free(w);
    return st;
}
