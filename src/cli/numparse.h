/* numparse.h - the parser for one input line of `dojo cfloat encode` and
 * `dojo cfloat decode`, kept apart from the command so that it can be
 * fuzzed on its own (fuzz/fuzz_numparse.c).
 *
 * Input is a byte range (pointer and length; no NUL terminator needed, and a
 * NUL byte inside is just an invalid character). Leading and trailing spaces,
 * tabs and carriage returns are ignored. Nothing here keeps state.
 *
 * Numbers (dj_numparse_f32):
 *   decimal      [+-]digits[.digits][(e|E)[+-]digits], also ".5", "5."
 *   hex float    [+-]0x hexdigits[.hexdigits][(p|P)[+-]digits] (C99; the
 *                exponent may be left out, as strtof allows)
 *   inf          inf, +inf, -inf, infinity (any case)
 *   nan          nan, +nan, -nan (any case): the quiet NaN 0x7fc00000, with
 *                the sign bit set for -nan
 *   bits         bits:0x followed by 1 to 8 hex digits: exactly those float32
 *                bits (NaN payloads and signalling NaNs included)
 * Decimal and hex input is rounded to the nearest float32 by strtof (which
 * is correctly rounded in glibc); overflow to inf and underflow to a
 * subnormal or zero are the float32 value, not errors.
 *
 * Codes (dj_numparse_code): 1 to 4 hex digits, with or without 0x/0X. */
#ifndef DOJO_CLI_NUMPARSE_H
#define DOJO_CLI_NUMPARSE_H

#include <stddef.h>
#include <stdint.h>

/* The longest line accepted, in bytes, not counting the newline. */
#define DJ_NUMPARSE_MAX_LINE 4096

typedef enum {
    DJ_NP_OK = 0,
    DJ_NP_EMPTY,    /* nothing but whitespace */
    DJ_NP_TOO_LONG, /* more than DJ_NUMPARSE_MAX_LINE bytes */
    DJ_NP_SYNTAX    /* not a number (or code) as described above */
} dj_np_status;

typedef enum {
    DJ_NP_DECIMAL,
    DJ_NP_HEXFLOAT,
    DJ_NP_INF,
    DJ_NP_NAN,
    DJ_NP_BITS
} dj_np_kind;

typedef struct {
    float value;     /* the float32 value */
    uint32_t bits;   /* its bits (value and bits always agree) */
    dj_np_kind kind; /* which form the input had */
} dj_np_number;

/* Finds the token: [*start, *start + *len) is s[0..n) without the leading
 * and trailing whitespace (space, tab, CR). */
void dj_np_trim(const char *s, size_t n, size_t *start, size_t *len);

/* Parses one input line as a number. On DJ_NP_OK *out is set; otherwise it
 * is left alone. */
dj_np_status dj_numparse_f32(const char *s, size_t n, dj_np_number *out);

/* Parses one input line as a code of at most 16 bits (1 to 4 hex digits,
 * optional 0x). On DJ_NP_OK *code is set (<= 0xffff). */
dj_np_status dj_numparse_code(const char *s, size_t n, uint32_t *code);

#endif
