/* fuzz_numparse.c - libFuzzer target for the input-line parser of
 * `dojo cfloat encode/decode` (src/cli/numparse.c).
 *
 * Feeds arbitrary bytes to dj_numparse_f32 and dj_numparse_code and checks,
 * besides the sanitizers' "no crash, no overflow, no UB":
 *   - the status agrees with the input: EMPTY iff nothing but whitespace,
 *     TOO_LONG iff more than DJ_NUMPARSE_MAX_LINE bytes;
 *   - an accepted number is what its form says: value and bits agree, bits:
 *     gives exactly the written bits, inf/nan the right class and sign, and a
 *     decimal or hex float equals strtof of the trimmed token;
 *   - for tokens made only of number characters the parser accepts exactly
 *     what strtof consumes whole (a differential check of the grammar);
 *   - surrounding whitespace changes nothing;
 *   - an accepted code fits 16 bits and re-parses from its printed forms, and
 *     codes are accepted exactly when they are 1 to 4 hex digits after an
 *     optional 0x.
 *
 * Build: cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DDOJO_FUZZ=ON -DDOJO_SANITIZE=ON
 * Run:   build-fuzz/fuzz/fuzz_numparse -max_len=4200 -max_total_time=120 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/numparse.c" /* the parser is not part of libdojo; compile it in */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REQUIRE(cond)                                                                          \
    do {                                                                                       \
        if (!(cond)) {                                                                         \
            fprintf(stderr, "fuzz_numparse: %s:%d: %s failed\n", __FILE__, __LINE__, #cond);  \
            abort();                                                                           \
        }                                                                                      \
    } while (0)

static int ws(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\r';
}

static int lower(int c)
{
    return (c >= 'A' && c <= 'Z') ? c - 'A' + 'a' : c;
}

static int is_hex(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static int ci_eq(const char *p, size_t n, const char *w)
{
    if (strlen(w) != n)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (lower((unsigned char)p[i]) != w[i])
            return 0;
    return 1;
}

/* The parts of a number check that use a NUL-terminated copy of the token. */
static void check_number(const char *s, size_t n)
{
    dj_np_number num;
    memset(&num, 0xa5, sizeof num);
    dj_np_status st = dj_numparse_f32(s, n, &num);
    REQUIRE(st == DJ_NP_OK || st == DJ_NP_EMPTY || st == DJ_NP_TOO_LONG || st == DJ_NP_SYNTAX);
    if (n > DJ_NUMPARSE_MAX_LINE) {
        REQUIRE(st == DJ_NP_TOO_LONG);
        return;
    }
    REQUIRE(st != DJ_NP_TOO_LONG);

    /* The token, independently trimmed. */
    size_t a = 0, b = n;
    while (a < b && ws((unsigned char)s[a]))
        a++;
    while (b > a && ws((unsigned char)s[b - 1]))
        b--;
    size_t start, len;
    dj_np_trim(s, n, &start, &len);
    REQUIRE(start == a && len == b - a);
    REQUIRE((st == DJ_NP_EMPTY) == (len == 0));
    if (len == 0)
        return;

    char *tok = malloc(len + 1);
    REQUIRE(tok != NULL);
    memcpy(tok, s + a, len);
    tok[len] = '\0';
    int has_nul = memchr(s + a, '\0', len) != NULL;

    if (st == DJ_NP_OK) {
        uint32_t vb;
        memcpy(&vb, &num.value, sizeof vb);
        REQUIRE(vb == num.bits);
        REQUIRE(!has_nul);
        size_t sign = (tok[0] == '+' || tok[0] == '-') ? 1 : 0;
        uint32_t sbit = tok[0] == '-' ? 0x80000000u : 0;
        switch (num.kind) {
        case DJ_NP_BITS: {
            REQUIRE(len >= 8 && ci_eq(tok, 5, "bits:") && tok[5] == '0' && lower(tok[6]) == 'x');
            REQUIRE(len - 7 >= 1 && len - 7 <= 8);
            char *end;
            unsigned long v = strtoul(tok + 7, &end, 16);
            REQUIRE(*end == '\0' && (uint32_t)v == num.bits);
            for (size_t i = 7; i < len; i++)
                REQUIRE(is_hex((unsigned char)tok[i]));
            break;
        }
        case DJ_NP_INF:
            REQUIRE(isinf(num.value));
            REQUIRE(num.bits == (sbit | 0x7f800000u));
            REQUIRE(ci_eq(tok + sign, len - sign, "inf") || ci_eq(tok + sign, len - sign, "infinity"));
            break;
        case DJ_NP_NAN:
            REQUIRE(isnan(num.value));
            REQUIRE(num.bits == (sbit | 0x7fc00000u));
            REQUIRE(ci_eq(tok + sign, len - sign, "nan"));
            break;
        case DJ_NP_DECIMAL:
        case DJ_NP_HEXFLOAT: {
            char *end;
            float v = strtof(tok, &end);
            uint32_t rb;
            memcpy(&rb, &v, sizeof rb);
            REQUIRE(end == tok + len);
            REQUIRE(rb == num.bits);
            REQUIRE(!isnan(num.value));
            int hex = len >= sign + 2 && tok[sign] == '0' && lower(tok[sign + 1]) == 'x';
            REQUIRE(hex == (num.kind == DJ_NP_HEXFLOAT));
            break;
        }
        default:
            REQUIRE(0);
        }
    }

    /* Differential check of the number grammar against strtof, for tokens
     * made only of characters that can appear in a finite number (so not
     * inf, nan, bits:, whitespace or NUL). */
    int numchars = 1;
    for (size_t i = 0; i < len && numchars; i++)
        numchars = strchr("0123456789abcdefABCDEFxXpP.+-", tok[i]) != NULL && tok[i] != '\0';
    if (numchars) {
        char *end;
        (void)strtof(tok, &end);
        int whole = end == tok + len;
        REQUIRE(whole == (st == DJ_NP_OK));
    }
    free(tok);

    /* Surrounding whitespace changes nothing. */
    if (n + 4 <= DJ_NUMPARSE_MAX_LINE) {
        char *w = malloc(n + 4);
        REQUIRE(w != NULL);
        w[0] = ' ';
        w[1] = '\t';
        memcpy(w + 2, s, n);
        w[n + 2] = '\r';
        w[n + 3] = ' ';
        dj_np_number num2;
        dj_np_status st2 = dj_numparse_f32(w, n + 4, &num2);
        REQUIRE(st2 == st);
        if (st == DJ_NP_OK)
            REQUIRE(num2.bits == num.bits && num2.kind == num.kind);
        free(w);
    }
}

static void check_code(const char *s, size_t n)
{
    uint32_t code = 0xdeadbeef;
    dj_np_status st = dj_numparse_code(s, n, &code);
    if (n > DJ_NUMPARSE_MAX_LINE) {
        REQUIRE(st == DJ_NP_TOO_LONG);
        return;
    }
    size_t a = 0, b = n;
    while (a < b && ws((unsigned char)s[a]))
        a++;
    while (b > a && ws((unsigned char)s[b - 1]))
        b--;
    REQUIRE((st == DJ_NP_EMPTY) == (a == b));
    if (a == b)
        return;
    /* Expected: optional 0x, then 1 to 4 hex digits. */
    size_t p = a;
    if (b - p >= 2 && s[p] == '0' && lower((unsigned char)s[p + 1]) == 'x')
        p += 2;
    int ok = b - p >= 1 && b - p <= 4;
    uint32_t want = 0;
    for (size_t i = p; ok && i < b; i++) {
        unsigned char c = (unsigned char)s[i];
        ok = is_hex(c);
        if (ok)
            want = want * 16 + (uint32_t)(c <= '9' ? c - '0' : lower(c) - 'a' + 10);
    }
    REQUIRE((st == DJ_NP_OK) == ok);
    REQUIRE(st == DJ_NP_OK || st == DJ_NP_SYNTAX);
    if (st != DJ_NP_OK) {
        REQUIRE(code == 0xdeadbeef); /* left alone on failure */
        return;
    }
    REQUIRE(code <= 0xffff && code == want);
    char buf[16];
    uint32_t again = 0;
    snprintf(buf, sizeof buf, "%x", (unsigned)code);
    REQUIRE(dj_numparse_code(buf, strlen(buf), &again) == DJ_NP_OK && again == code);
    snprintf(buf, sizeof buf, "0X%04X", (unsigned)code);
    REQUIRE(dj_numparse_code(buf, strlen(buf), &again) == DJ_NP_OK && again == code);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* A heap copy of exactly `size` bytes, so that ASan catches any read
     * past the end (the parser must not rely on a terminator). */
    char *s = malloc(size ? size : 1);
    if (!s)
        return 0;
    if (size)
        memcpy(s, data, size);
    check_number(s, size);
    check_code(s, size);
    free(s);
    return 0;
}
