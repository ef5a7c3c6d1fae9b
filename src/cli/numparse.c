/* numparse.c - parse one input line of `dojo cfloat encode/decode` into a
 * float32 or a code (see numparse.h for the accepted forms).
 *
 * The grammar is checked here, byte by byte, before strtof sees the token:
 * strtof alone would accept more than the contract (leading newlines,
 * "nan(...)", a prefix followed by junk) and reads past the token when it is
 * not NUL-terminated. Everything is a pure function of its arguments; there
 * are no globals, so the fuzzer can call it as often as it likes. */
#include <stdlib.h>
#include <string.h>

#include "cli/numparse.h"

static int is_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\r';
}

static int is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static int hex_val(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static unsigned char to_lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c - 'A' + 'a') : c;
}

/* Nonzero if p[0..n) equals the lower-case word w, ignoring case. */
static int word_is(const char *p, size_t n, const char *w)
{
    size_t wn = strlen(w);
    if (n != wn)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (to_lower((unsigned char)p[i]) != (unsigned char)w[i])
            return 0;
    return 1;
}

/* Nonzero if p[0..n) starts with the lower-case word w, ignoring case. */
static int prefix_is(const char *p, size_t n, const char *w)
{
    size_t wn = strlen(w);
    return n >= wn && word_is(p, wn, w);
}

void dj_np_trim(const char *s, size_t n, size_t *start, size_t *len)
{
    size_t a = 0, b = n;
    while (a < b && is_space((unsigned char)s[a]))
        a++;
    while (b > a && is_space((unsigned char)s[b - 1]))
        b--;
    *start = a;
    *len = b - a;
}

/* 1 to max_digits hex digits making up all of p[0..n), into *v. */
static int hex_digits(const char *p, size_t n, size_t max_digits, uint32_t *v)
{
    uint32_t acc = 0;
    if (n < 1 || n > max_digits)
        return 0;
    for (size_t i = 0; i < n; i++) {
        int d = hex_val((unsigned char)p[i]);
        if (d < 0)
            return 0;
        acc = (acc << 4) | (uint32_t)d;
    }
    *v = acc;
    return 1;
}

/* Checks that p[0..n) (sign already removed) is a whole decimal or hex
 * float as described in numparse.h; sets *hex. */
static int float_syntax_ok(const char *p, size_t n, int *hex)
{
    size_t i = 0, mant_digits = 0;
    *hex = 0;
    if (n >= 2 && p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
        *hex = 1;
        i = 2;
    }
    for (; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (*hex ? hex_val(c) < 0 : !is_digit(c))
            break;
        mant_digits++;
    }
    if (i < n && p[i] == '.') {
        for (i++; i < n; i++) {
            unsigned char c = (unsigned char)p[i];
            if (*hex ? hex_val(c) < 0 : !is_digit(c))
                break;
            mant_digits++;
        }
    }
    if (mant_digits == 0)
        return 0;
    if (i == n)
        return 1;
    /* The exponent: e/E for decimal, p/P for hex; always decimal digits. */
    if (to_lower((unsigned char)p[i]) != (*hex ? 'p' : 'e'))
        return 0;
    i++;
    if (i < n && (p[i] == '+' || p[i] == '-'))
        i++;
    if (i == n)
        return 0;
    for (; i < n; i++)
        if (!is_digit((unsigned char)p[i]))
            return 0;
    return 1;
}

dj_np_status dj_numparse_f32(const char *s, size_t n, dj_np_number *out)
{
    size_t start, len;
    if (n > DJ_NUMPARSE_MAX_LINE)
        return DJ_NP_TOO_LONG;
    dj_np_trim(s, n, &start, &len);
    if (len == 0)
        return DJ_NP_EMPTY;
    const char *p = s + start;
    dj_np_number r;

    if (prefix_is(p, len, "bits:")) {
        uint32_t v;
        const char *q = p + 5;
        size_t m = len - 5;
        if (m < 3 || q[0] != '0' || (q[1] != 'x' && q[1] != 'X') || !hex_digits(q + 2, m - 2, 8, &v))
            return DJ_NP_SYNTAX;
        r.bits = v;
        r.kind = DJ_NP_BITS;
        memcpy(&r.value, &v, sizeof v);
        *out = r;
        return DJ_NP_OK;
    }

    uint32_t sign = 0;
    size_t i = 0;
    if (p[0] == '+' || p[0] == '-') {
        sign = p[0] == '-' ? 0x80000000u : 0;
        i = 1;
    }
    if (word_is(p + i, len - i, "inf") || word_is(p + i, len - i, "infinity")) {
        r.bits = sign | 0x7f800000u;
        r.kind = DJ_NP_INF;
    } else if (word_is(p + i, len - i, "nan")) {
        r.bits = sign | 0x7fc00000u;
        r.kind = DJ_NP_NAN;
    } else {
        int hex;
        char buf[DJ_NUMPARSE_MAX_LINE + 1];
        char *end;
        if (!float_syntax_ok(p + i, len - i, &hex))
            return DJ_NP_SYNTAX;
        memcpy(buf, p, len);
        buf[len] = '\0';
        float v = strtof(buf, &end); /* ERANGE (inf, 0, subnormal) is the answer */
        if (end != buf + len)
            return DJ_NP_SYNTAX; /* not reached: the syntax was checked */
        memcpy(&r.bits, &v, sizeof v);
        r.kind = hex ? DJ_NP_HEXFLOAT : DJ_NP_DECIMAL;
    }
    memcpy(&r.value, &r.bits, sizeof r.bits);
    *out = r;
    return DJ_NP_OK;
}

dj_np_status dj_numparse_code(const char *s, size_t n, uint32_t *code)
{
    size_t start, len;
    if (n > DJ_NUMPARSE_MAX_LINE)
        return DJ_NP_TOO_LONG;
    dj_np_trim(s, n, &start, &len);
    if (len == 0)
        return DJ_NP_EMPTY;
    const char *p = s + start;
    if (len >= 2 && p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
        p += 2;
        len -= 2;
    }
    uint32_t v;
    if (!hex_digits(p, len, 4, &v))
        return DJ_NP_SYNTAX;
    *code = v;
    return DJ_NP_OK;
}
