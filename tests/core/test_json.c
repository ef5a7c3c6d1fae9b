/* test_json.c - the JSON parser, accessors, path errors and writer.
 *
 * Valid documents of every kind, every rejection the parser promises (with
 * the line and column in its message), the schema errors that name a JSON
 * path, writer output (exact text, escaping, round trips through the
 * parser), allocation failure at every allocation, and the regression
 * inputs found by fuzz/fuzz_json.c. */
#include <float.h>
#include <locale.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dojo/json.h"
#include "harness.h"

/* ---- helpers ------------------------------------------------------------------ */

static dj_json_doc *parse_n(const char *text, size_t len)
{
    dj_json_doc *doc = NULL;
    dj_json_error err;
    dj_status st = dj_json_parse(text, len, NULL, &doc, &err);
    CHECK(st == DJ_OK && doc, "parse of '%.60s' failed: %s", text, err.message);
    CHECK(err.status == DJ_OK && err.message[0] == 0, "error not cleared on success");
    return doc;
}

static dj_json_doc *parse(const char *text)
{
    return parse_n(text, strlen(text));
}

/* Parsing text[0..len) must fail with DJ_ERR_PARSE, at line/col, with a
 * message "line L, column C: <what...>". */
static void reject_n(const char *text, size_t len, size_t line, size_t col, const char *what,
                     int src_line)
{
    dj_json_doc *doc = (dj_json_doc *)1;
    dj_json_error err;
    dj_status st = dj_json_parse(text, len, NULL, &doc, &err);
    char prefix[64];
    snprintf(prefix, sizeof prefix, "line %zu, column %zu: ", line, col);
    CHECK(st == DJ_ERR_PARSE && doc == NULL, "(line %d) '%.40s' accepted (status %d)", src_line,
          text, (int)st);
    CHECK(err.status == st, "(line %d) err.status %d", src_line, (int)err.status);
    CHECK(err.line == line && err.column == col,
          "(line %d) '%.40s': position %zu:%zu, expected %zu:%zu (%s)", src_line, text, err.line,
          err.column, line, col, err.message);
    CHECK(strncmp(err.message, prefix, strlen(prefix)) == 0 &&
              strstr(err.message + strlen(prefix), what) == err.message + strlen(prefix),
          "(line %d) message '%s', expected '%s%s...'", src_line, err.message, prefix, what);
    if (st == DJ_OK)
        dj_json_free(doc);
}

#define REJECT(text, line, col, what) reject_n(text, strlen(text), line, col, what, __LINE__)
#define REJECT_N(text, len, line, col, what) reject_n(text, len, line, col, what, __LINE__)

static uint64_t bits(double d)
{
    uint64_t u;
    memcpy(&u, &d, sizeof u);
    return u;
}

/* Write v with the given flags, parse the text back, compare. Returns 1 on
 * success. */
static int roundtrip(const dj_json_value *v, unsigned flags)
{
    dj_json_writer w;
    dj_json_writer_init(&w, flags, NULL);
    dj_json_write_value(&w, v);
    const char *text;
    size_t len;
    dj_status st = dj_json_writer_finish(&w, &text, &len);
    int ok = 0;
    if (st == DJ_OK) {
        dj_json_doc *doc = NULL;
        dj_json_error err;
        if (dj_json_parse(text, len, NULL, &doc, &err) == DJ_OK) {
            ok = dj_json_equal(v, dj_json_root(doc));
            if (!ok)
                fprintf(stderr, "round trip differs: %.200s\n", text);
            dj_json_free(doc);
        } else {
            fprintf(stderr, "writer output does not parse: %s\n  %.200s\n", err.message, text);
        }
    } else {
        fprintf(stderr, "writer failed: %s\n", dj_json_writer_error(&w));
    }
    dj_json_writer_free(&w);
    return ok;
}

/* ---- valid documents ------------------------------------------------------------ */

static void test_scalars(void)
{
    dj_json_doc *d;
    const dj_json_value *v;

    d = parse("null");
    CHECK(dj_json_type_of(dj_json_root(d)) == DJ_JSON_NULL, "null");
    dj_json_free(d);
    d = parse(" true ");
    CHECK(dj_json_type_of(dj_json_root(d)) == DJ_JSON_BOOL && dj_json_bool(dj_json_root(d)) == 1,
          "true");
    dj_json_free(d);
    d = parse("\t\r\nfalse\n");
    v = dj_json_root(d);
    CHECK(dj_json_type_of(v) == DJ_JSON_BOOL && dj_json_bool(v) == 0, "false");
    dj_json_free(d);

    static const struct {
        const char *text;
        double d;
        int is_int;
        int64_t i;
    } nums[] = {
        {"0", 0.0, 1, 0},
        {"-0", -0.0, 1, 0},
        {"-0.0", -0.0, 0, 0},
        {"123", 123.0, 1, 123},
        {"-123", -123.0, 1, -123},
        {"1.5", 1.5, 0, 0},
        {"0.1", 0.1, 0, 0},
        {"1e3", 1000.0, 0, 0},
        {"1E+3", 1000.0, 0, 0},
        {"25e-1", 2.5, 0, 0},
        {"-1.25E-2", -0.0125, 0, 0},
        {"0e0", 0.0, 0, 0},
        {"1e308", 1e308, 0, 0},
        {"1.7976931348623157e308", DBL_MAX, 0, 0},
        {"4.9e-324", 4.9406564584124654e-324, 0, 0},
        {"1e-400", 0.0, 0, 0},
        {"9007199254740993", 9007199254740992.0, 1, 9007199254740993LL},
        {"-9007199254740993", -9007199254740992.0, 1, -9007199254740993LL},
        {"9223372036854775807", 9223372036854775807.0, 1, INT64_MAX},
        {"-9223372036854775808", -9223372036854775808.0, 1, INT64_MIN},
        {"9223372036854775808", 9223372036854775808.0, 0, 0},
        {"-9223372036854775809", -9223372036854775808.0, 0, 0},
        {"123456789012345678901234567890", 1.2345678901234568e29, 0, 0},
        {"0.30000000000000004", 0.30000000000000004, 0, 0},
        {"2.2250738585072011e-308", 2.2250738585072011e-308, 0, 0},
        /* edges of the short-decimal fast path and the strtod path */
        {"1e22", 1e22, 0, 0},
        {"1e23", 1e23, 0, 0},
        {"123456789012345e-22", 123456789012345e-22, 0, 0},
        {"1234567890123456e-22", 1234567890123456e-22, 0, 0},
        {"0.000000000000000000001", 1e-21, 0, 0},
        {"0.0000000000000000000000001", 1e-25, 0, 0},
        {"123456789012345.6", 123456789012345.6, 0, 0},
        {"9007199254740993.0", 9007199254740992.0, 0, 0},
        {"9007199254740995e0", 9007199254740996.0, 0, 0},
        {"-0e-999999999999", -0.0, 0, 0},
        {"0.1e1", 1.0, 0, 0},
        {"100000000000000000000000e-2", 1e21, 0, 0},
        {"2.5e-1", 0.25, 0, 0},
    };
    for (size_t k = 0; k < sizeof nums / sizeof nums[0]; k++) {
        d = parse(nums[k].text);
        v = dj_json_root(d);
        CHECK(dj_json_type_of(v) == DJ_JSON_NUMBER, "%s: type", nums[k].text);
        CHECK(bits(dj_json_number(v)) == bits(nums[k].d), "%s: double %.17g, expected %.17g",
              nums[k].text, dj_json_number(v), nums[k].d);
        CHECK(dj_json_is_int(v) == nums[k].is_int, "%s: is_int %d", nums[k].text, dj_json_is_int(v));
        CHECK(dj_json_int(v) == nums[k].i, "%s: int %lld", nums[k].text, (long long)dj_json_int(v));
        dj_json_free(d);
    }
}

static void test_strings(void)
{
    static const struct {
        const char *text;
        const char *want;
        size_t want_len;
    } strs[] = {
        {"\"\"", "", 0},
        {"\"plain\"", "plain", 5},
        {"\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"", "\"\\/\b\f\n\r\t", 8},
        {"\"\\u0041\\u00e9\\u00E9\"", "A\xc3\xa9\xc3\xa9", 5},
        {"\"\\u20AC\"", "\xe2\x82\xac", 3},
        {"\"\\uD83D\\uDE00\"", "\xf0\x9f\x98\x80", 4},
        {"\"\\udbff\\udfff\"", "\xf4\x8f\xbf\xbf", 4},
        {"\"\\uFFFF\"", "\xef\xbf\xbf", 3},
        {"\"a\\u0000b\"", "a\0b", 3},
        {"\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"", "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 9},
        {"\"\x7f\"", "\x7f", 1},
    };
    for (size_t k = 0; k < sizeof strs / sizeof strs[0]; k++) {
        dj_json_doc *d = parse(strs[k].text);
        const dj_json_value *v = dj_json_root(d);
        size_t len = 99;
        const char *s = dj_json_string(v, &len);
        CHECK(s && len == strs[k].want_len && memcmp(s, strs[k].want, len) == 0 && s[len] == 0,
              "string %s: got %zu bytes", strs[k].text, len);
        dj_json_free(d);
    }
}

static void test_nested(void)
{
    const char *text = "{\"a\": [1, {\"b\": null}, \"x\"],\n \"c\": {\"d\": [[], {}]},\n \"e\": {},"
                       " \"\": true, \"\\u00e9\": 2}";
    dj_json_doc *d = parse(text);
    const dj_json_value *r = dj_json_root(d);
    CHECK(dj_json_type_of(r) == DJ_JSON_OBJECT && dj_json_len(r) == 5, "root object of 5");
    const char *order[] = {"a", "c", "e", "", "\xc3\xa9"};
    for (size_t k = 0; k < 5; k++) {
        size_t kl;
        const char *key = dj_json_key_at(r, k, &kl);
        CHECK(key && strcmp(key, order[k]) == 0 && kl == strlen(order[k]), "key %zu", k);
        CHECK(dj_json_value_at(r, k) == dj_json_get(r, order[k]), "value_at %zu", k);
    }
    const dj_json_value *a = dj_json_get(r, "a");
    CHECK(dj_json_type_of(a) == DJ_JSON_ARRAY && dj_json_len(a) == 3, "a");
    CHECK(dj_json_int(dj_json_at(a, 0)) == 1, "a[0]");
    CHECK(dj_json_type_of(dj_json_get(dj_json_at(a, 1), "b")) == DJ_JSON_NULL, "a[1].b");
    CHECK(dj_json_get(dj_json_at(a, 1), "b") != NULL, "a[1].b present");
    CHECK(strcmp(dj_json_string(dj_json_at(a, 2), NULL), "x") == 0, "a[2]");
    CHECK(dj_json_at(a, 3) == NULL && dj_json_at(r, 0) == NULL, "at out of range / on object");
    const dj_json_value *dd = dj_json_get(dj_json_get(r, "c"), "d");
    CHECK(dj_json_len(dd) == 2 && dj_json_len(dj_json_at(dd, 0)) == 0 &&
              dj_json_type_of(dj_json_at(dd, 1)) == DJ_JSON_OBJECT,
          "c.d");
    CHECK(dj_json_get(r, "missing") == NULL && dj_json_get(a, "a") == NULL, "missing lookups");
    CHECK(dj_json_get_n(r, "ab", 1) == a, "get_n with length");
    CHECK(dj_json_bool(dj_json_get(r, "")) == 1, "empty key");
    CHECK(dj_json_parent(a) == r && dj_json_parent(r) == NULL, "parents");
    size_t line, col, off;
    dj_json_position(dd, &line, &col, &off);
    CHECK(line == 2 && col == 13 && text[off] == '[', "position of c.d: %zu:%zu", line, col);
    CHECK(roundtrip(r, 0) && roundtrip(r, DJ_JSON_WRITE_PRETTY) && roundtrip(r, DJ_JSON_WRITE_ASCII),
          "nested round trip");
    dj_json_free(d);
}

/* Objects larger than the linear-search size use the sorted index. */
static void test_big_object(void)
{
    char *text = malloc(64 * 1000 + 16);
    size_t o = 0;
    text[o++] = '{';
    for (int k = 0; k < 1000; k++)
        o += (size_t)sprintf(text + o, "%s\"k%d\":%d", k ? "," : "", (k * 7919) % 1000, k);
    text[o++] = '}';
    text[o] = 0;
    dj_json_doc *d = parse(text);
    const dj_json_value *r = dj_json_root(d);
    CHECK(dj_json_len(r) == 1000, "1000 members");
    int bad = 0;
    for (int k = 0; k < 1000; k++) {
        char key[16];
        sprintf(key, "k%d", (k * 7919) % 1000);
        if (dj_json_int(dj_json_get(r, key)) != k)
            bad++;
        size_t kl;
        if (strcmp(dj_json_key_at(r, (size_t)k, &kl), key) != 0)
            bad++;
    }
    CHECK(bad == 0, "%d lookups wrong", bad);
    CHECK(dj_json_get(r, "k1000") == NULL && dj_json_get(r, "") == NULL && dj_json_get(r, "k") == NULL,
          "absent keys");
    dj_json_free(d);

    /* duplicate in a big object: the first repeat in document order */
    o = 0;
    text[o++] = '{';
    for (int k = 0; k < 20; k++)
        o += (size_t)sprintf(text + o, "%s\n\"k%d\":%d", k ? "," : "", k, k);
    o += (size_t)sprintf(text + o, ",\n\"k15\":0,\n\"k3\":0,\n\"k3\":1}");
    text[o] = 0;
    REJECT(text, 22, 1, "duplicate key \"k15\" in object (first at line 17, column 1)");
    free(text);
}

static void test_buffer_not_terminated(void)
{
    const char buf[] = {'[', '1', ',', '2', ']', 'x', 'y'};
    dj_json_doc *d = parse_n(buf, 5);
    CHECK(dj_json_len(dj_json_root(d)) == 2, "[1,2] from a 5-byte prefix");
    dj_json_free(d);
    d = parse_n("123", 2);
    CHECK(dj_json_int(dj_json_root(d)) == 12, "number cut by length");
    dj_json_free(d);
    d = parse_n("1.5e3", 3);
    CHECK(dj_json_number(dj_json_root(d)) == 1.5, "fraction cut by length");
    dj_json_free(d);
    /* a number running to the very end of an unterminated heap buffer */
    char *h = malloc(20);
    memcpy(h, "-12345.678e-2", 13);
    d = parse_n(h, 13);
    CHECK(dj_json_number(dj_json_root(d)) == -123.45678, "heap number");
    dj_json_free(d);
    memcpy(h, "\"ab", 3);
    REJECT_N(h, 3, 1, 1, "unterminated string");
    memcpy(h, "\"a\\", 3);
    REJECT_N(h, 3, 1, 1, "unterminated string");
    memcpy(h, "\"\\u00", 5);
    REJECT_N(h, 5, 1, 2, "invalid \\u escape");
    memcpy(h, "\"\\uD83D\\uDE0", 12);
    REJECT_N(h, 12, 1, 2, "lone high surrogate");
    memcpy(h, "tru", 3);
    REJECT_N(h, 3, 1, 1, "invalid literal 'tru'");
    free(h);
    dj_json_doc *doc = (dj_json_doc *)1;
    CHECK(dj_json_parse(NULL, 0, NULL, &doc, NULL) == DJ_ERR_PARSE && doc == NULL, "NULL, 0");
    CHECK(dj_json_parse(NULL, 3, NULL, &doc, NULL) == DJ_ERR_ARG, "NULL text");
    CHECK(dj_json_parse("1", 1, NULL, NULL, NULL) == DJ_ERR_ARG, "NULL out");
}

static void test_depth(void)
{
    enum { N = 100000 };
    char *text = malloc(2 * N + 1);
    for (int k = 0; k < N; k++) {
        text[k] = '[';
        text[N + k] = ']';
    }
    text[2 * N] = 0;

    /* default limit 256: 256 levels pass, 257 fail */
    dj_json_doc *d = NULL;
    dj_json_error err;
    char *t256 = malloc(2 * 257 + 1);
    memset(t256, '[', 256);
    memset(t256 + 256, ']', 256);
    d = parse_n(t256, 512);
    dj_json_free(d);
    memset(t256, '[', 257);
    memset(t256 + 257, ']', 257);
    REJECT_N(t256, 514, 1, 257, "nesting deeper than 256 levels");
    free(t256);

    dj_json_options opt = {3, NULL};
    CHECK(dj_json_parse("[{\"a\":[]}]", 10, &opt, &d, &err) == DJ_OK, "depth 3 with limit 3");
    dj_json_free(d);
    CHECK(dj_json_parse("[{\"a\":[{}]}]", 12, &opt, &d, &err) == DJ_ERR_PARSE &&
              strcmp(err.message, "line 1, column 8: nesting deeper than 3 levels of arrays and objects") == 0,
          "depth 4 with limit 3: %s", err.message);

    /* 100000 levels with the limit raised: nothing recurses, so parse,
     * compare, write and free all work on hostile depth. */
    opt.max_depth = N;
    CHECK(dj_json_parse(text, 2 * N, &opt, &d, &err) == DJ_OK, "deep parse: %s", err.message);
    if (d) {
        const dj_json_value *v = dj_json_root(d);
        size_t depth = 0;
        while (dj_json_len(v) == 1) {
            v = dj_json_at(v, 0);
            depth++;
        }
        CHECK(depth == N - 1, "depth %zu", depth);
        char path[32];
        size_t pl = dj_json_path(v, path, sizeof path);
        CHECK(pl == strlen(path) && strncmp(path, "...", 3) == 0 &&
                  strcmp(path + pl - 6, "[0][0]") == 0,
              "deep path '%s'", path);
        CHECK(dj_json_equal(dj_json_root(d), dj_json_root(d)), "deep equal");
        dj_json_writer w;
        dj_json_writer_init(&w, 0, NULL);
        const char *out;
        size_t len;
        CHECK(dj_json_write_value(&w, dj_json_root(d)) == DJ_OK &&
                  dj_json_writer_finish(&w, &out, &len) == DJ_OK && len == 2 * N &&
                  memcmp(out, text, len) == 0,
              "deep write");
        dj_json_writer_free(&w);
        dj_json_free(d);
    }
    free(text);
}

/* ---- rejections ------------------------------------------------------------------- */

static void test_rejections(void)
{
    /* structure */
    REJECT("", 1, 1, "unexpected end of input, expected a JSON value");
    REJECT("   ", 1, 4, "unexpected end of input, expected a JSON value");
    REJECT("[1,2,]", 1, 6, "trailing comma before ']'");
    REJECT("{\"a\":1,}", 1, 8, "trailing comma before '}'");
    REJECT("[,1]", 1, 2, "unexpected ',', expected a JSON value");
    REJECT("[1,,2]", 1, 4, "unexpected ',', expected a JSON value");
    REJECT("{\"a\":1 \"b\":2}", 1, 8, "expected ',' or '}' after object member, got '\"'");
    REJECT("{\n  \"a\": 1,\n  \"b\": 2\n  \"c\": 3\n}", 4, 3,
           "expected ',' or '}' after object member");
    REJECT("[1 2]", 1, 4, "expected ',' or ']' after array element, got '2'");
    REJECT("[1,2", 1, 5, "unexpected end of input, expected ',' or ']' after array element");
    REJECT("{\"a\":1", 1, 7, "unexpected end of input, expected ',' or '}' after object member");
    REJECT("{\"a\" 1}", 1, 6, "expected ':' after object key, got '1'");
    REJECT("{\"a\"", 1, 5, "expected ':' after object key, got end of input");
    REJECT("{\"a\":}", 1, 6, "unexpected '}', expected a JSON value");
    REJECT("{1:2}", 1, 2, "expected a string key or '}', got '1'");
    REJECT("{\"a\":1,2:3}", 1, 8, "expected a string key after ',', got '2'");
    REJECT("{'a':1}", 1, 2, "object keys must be strings in double quotes");
    REJECT("['a']", 1, 2, "strings must be in double quotes");
    REJECT("[1]]", 1, 4, "unexpected ']' after the JSON value");
    REJECT("1 2", 1, 3, "unexpected '2' after the JSON value");
    REJECT("{} x", 1, 4, "unexpected 'x' after the JSON value");
    REJECT("]", 1, 1, "unexpected ']', expected a JSON value");
    REJECT("{\"a\":1]", 1, 7, "expected ',' or '}' after object member, got ']'");
    REJECT("[1}", 1, 3, "expected ',' or ']' after array element, got '}'");
    /* comments */
    REJECT("// comment\n1", 1, 1, "comments are not allowed in JSON");
    REJECT("[1 /* c */]", 1, 4, "comments are not allowed in JSON");
    REJECT("[1, /* c */ 2]", 1, 5, "comments are not allowed in JSON");
    REJECT("{/* c */}", 1, 2, "comments are not allowed in JSON");
    REJECT("1 // c", 1, 3, "unexpected '/' after the JSON value");
    /* literals */
    REJECT("NaN", 1, 1, "invalid literal 'NaN'");
    REJECT("[Infinity]", 1, 2, "invalid literal 'Infinity'");
    REJECT("-Infinity", 1, 2, "expected a digit after '-'");
    REJECT("tru", 1, 1, "invalid literal 'tru'");
    REJECT("truex", 1, 1, "invalid literal 'truex'");
    REJECT("True", 1, 1, "invalid literal 'True'");
    REJECT("nul", 1, 1, "invalid literal 'nul'");
    REJECT("[undefined]", 1, 2, "invalid literal 'undefined'");
    /* numbers */
    REJECT("01", 1, 1, "leading zeros are not allowed in numbers");
    REJECT("-01", 1, 1, "leading zeros are not allowed in numbers");
    REJECT("[00]", 1, 2, "leading zeros are not allowed in numbers");
    REJECT("-", 1, 2, "expected a digit after '-'");
    REJECT("+1", 1, 1, "a number cannot start with '+'");
    REJECT(".5", 1, 1, "a number cannot start with '.'");
    REJECT("1.", 1, 3, "expected a digit after '.' in number");
    REJECT("1.e3", 1, 3, "expected a digit after '.' in number");
    REJECT("1e", 1, 3, "expected a digit in the exponent of number");
    REJECT("1e+", 1, 4, "expected a digit in the exponent of number");
    REJECT("[1E-x]", 1, 5, "expected a digit in the exponent of number");
    REJECT("1x", 1, 2, "unexpected 'x' after the JSON value");
    REJECT("0x10", 1, 2, "unexpected 'x' after the JSON value");
    REJECT("1e400", 1, 1, "number is too large for a double");
    REJECT("[-1e400]", 1, 2, "number is too large for a double");
    /* strings: control characters, escapes, surrogates */
    REJECT("\"a\tb\"", 1, 3, "unescaped control character U+0009 in string");
    REJECT("\"a\nb\"", 1, 3, "unescaped newline in string");
    REJECT("[\"abc\n]", 1, 6, "unescaped newline in string");
    REJECT_N("\"a\0b\"", 5, 1, 3, "unescaped control character U+0000 in string");
    REJECT("\"\x1f\"", 1, 2, "unescaped control character U+001F in string");
    REJECT("\"abc", 1, 1, "unterminated string");
    REJECT("[\"abc\\\"]", 1, 2, "unterminated string");
    REJECT("\"\\x\"", 1, 2, "invalid escape '\\' followed by 'x' in string");
    REJECT("\"\\U0041\"", 1, 2, "invalid escape '\\' followed by 'U' in string");
    REJECT("\"\\'\"", 1, 2, "invalid escape '\\' followed by ''' in string");
    REJECT("\"\\u12\"", 1, 2, "invalid \\u escape in string: expected 4 hex digits");
    REJECT("\"\\u12G4\"", 1, 2, "invalid \\u escape in string: expected 4 hex digits");
    REJECT("\"\\u\"", 1, 2, "invalid \\u escape in string: expected 4 hex digits");
    REJECT("\"ab\\uD800\"", 1, 4, "lone high surrogate \\uD800 in string");
    REJECT("\"\\uD800\\u0041\"", 1, 2, "lone high surrogate \\uD800 in string");
    REJECT("\"\\uDBFF\\uDBFF\"", 1, 2, "lone high surrogate \\uDBFF in string");
    REJECT("\"\\uD800x\"", 1, 2, "lone high surrogate \\uD800 in string");
    REJECT("\"\\uD800\\n\"", 1, 2, "lone high surrogate \\uD800 in string");
    REJECT("\"\\uDC00\"", 1, 2, "lone low surrogate \\uDC00 in string");
    REJECT("\"\\uDFFF\\uD800\"", 1, 2, "lone low surrogate \\uDFFF in string");
    /* invalid UTF-8 inside strings */
    REJECT("\"\xff\"", 1, 2, "invalid UTF-8 in string (byte 0xFF)");
    REJECT("\"\x80\"", 1, 2, "invalid UTF-8 in string (byte 0x80)");
    REJECT("\"\xc0\xaf\"", 1, 2, "invalid UTF-8 in string (byte 0xC0)");       /* overlong '/' */
    REJECT("\"\xc1\xbf\"", 1, 2, "invalid UTF-8 in string (byte 0xC1)");
    REJECT("\"\xe0\x80\xaf\"", 1, 2, "invalid UTF-8 in string (byte 0xE0)");   /* overlong */
    REJECT("\"\xf0\x80\x80\xaf\"", 1, 2, "invalid UTF-8 in string (byte 0xF0)");
    REJECT("\"\xed\xa0\x80\"", 1, 2, "invalid UTF-8 in string (byte 0xED)");   /* surrogate */
    REJECT("\"\xf4\x90\x80\x80\"", 1, 2, "invalid UTF-8 in string (byte 0xF4)"); /* > U+10FFFF */
    REJECT("\"\xf5\x80\x80\x80\"", 1, 2, "invalid UTF-8 in string (byte 0xF5)");
    REJECT("\"\xe2\x82\"", 1, 2, "invalid UTF-8 in string (byte 0xE2)");       /* truncated */
    REJECT("\"a\xc3\"", 1, 3, "invalid UTF-8 in string (byte 0xC3)");
    REJECT("\"\xc3\xa9\xc3(\"", 1, 3, "invalid UTF-8 in string (byte 0xC3)");
    /* outside strings */
    REJECT("\xc3\xa9", 1, 1, "unexpected character U+00E9, expected a JSON value");
    REJECT("[\xff]", 1, 2, "unexpected byte 0xFF (not UTF-8), expected a JSON value");
    REJECT_N("[1,\0]", 5, 1, 4, "unexpected control character U+0000, expected a JSON value");
    REJECT("\xef\xbb\xbf{}", 1, 1, "byte order mark (U+FEFF) is not allowed in JSON");
    REJECT("[\x0c]", 1, 2, "unexpected control character U+000C, expected a JSON value");
    /* duplicate keys, compared after unescaping */
    REJECT("{\"a\":1,\"a\":2}", 1, 8, "duplicate key \"a\" in object (first at line 1, column 2)");
    REJECT("{\"a\":1,\n \"b\":{},\n \"\\u0061\":2}", 3, 2,
           "duplicate key \"a\" in object (first at line 1, column 2)");
    REJECT("[{\"x\":{\"q\\\"\\n\":1,\"q\\\"\\u000a\":2}}]", 1, 18,
           "duplicate key \"q\\\"\\u000a\" in object");
    REJECT("{\"\":1,\"\":2}", 1, 7, "duplicate key \"\" in object");
    /* columns count characters, not bytes; lines count '\n' */
    REJECT("{\"\xc3\xa9\xe2\x82\xac\": x}", 1, 8, "invalid literal 'x'");
    REJECT("[\r\n1,\r\n\t2,\r\n]", 4, 1, "trailing comma before ']'");
}

static void test_error_offsets(void)
{
    dj_json_doc *d;
    dj_json_error err;
    const char *t = "{\n  \"\xc3\xa9\": [1, 2,, 3]\n}";
    CHECK(dj_json_parse(t, strlen(t), NULL, &d, &err) == DJ_ERR_PARSE, "parse fails");
    CHECK(err.line == 2 && err.column == 14 && err.offset == 16 && t[err.offset] == ',',
          "line %zu column %zu offset %zu", err.line, err.column, err.offset);
    CHECK(strcmp(err.message, "line 2, column 14: unexpected ',', expected a JSON value") == 0,
          "message '%s'", err.message);
}

/* ---- path-tracking errors ----------------------------------------------------------- */

static const char *spec_text =
    "{\n"
    "  \"layers\": [\n"
    "    {\"type\": \"Conv2d\", \"out_channels\": 16, \"kernel_size\": 3, \"bias\": true},\n"
    "    {\"type\": \"ReLU\"},\n"
    "    {\"type\": \"Conv2d\", \"out_channels\": 2.5, \"kernel_size\": \"3\", \"name\": \"a\\u0000b\"},\n"
    "    {\"type\": \"Linear\", \"in_features\": 99999999999999999999, \"kernal_size\": 1}\n"
    "  ],\n"
    "  \"odd key\": {\"x y\": [null, {\"\\\"q\\\"\": false}]},\n"
    "  \"lr\": 0.001\n"
    "}\n";

static void expect_msg(dj_status st, dj_status want, const dj_json_error *err, const char *msg,
                       int src_line)
{
    CHECK(st == want && err->status == want, "(line %d) status %d, expected %d", src_line, (int)st,
          (int)want);
    CHECK(strcmp(err->message, msg) == 0, "(line %d) message\n  '%s'\nexpected\n  '%s'", src_line,
          err->message, msg);
}
#define EXPECT_MSG(st, want, msg) expect_msg(st, want, &err, msg, __LINE__)

static void test_paths(void)
{
    dj_json_doc *d = parse(spec_text);
    const dj_json_value *r = dj_json_root(d);
    const dj_json_value *layers, *l0, *l1, *l2, *l3;
    dj_json_error err;
    int64_t i;
    double x;
    int b;
    const char *s;
    size_t len;
    char path[128];

    CHECK(dj_json_member(r, "layers", &layers, &err) == DJ_OK, "layers");
    CHECK(dj_json_expect(layers, DJ_JSON_ARRAY, &err) == DJ_OK, "layers is an array");
    l0 = dj_json_at(layers, 0);
    l1 = dj_json_at(layers, 1);
    l2 = dj_json_at(layers, 2);
    l3 = dj_json_at(layers, 3);

    /* successes */
    CHECK(dj_json_get_int(l0, "kernel_size", 1, 11, &i, &err) == DJ_OK && i == 3, "l0 kernel_size");
    CHECK(dj_json_get_string(l0, "type", &s, NULL, &err) == DJ_OK && strcmp(s, "Conv2d") == 0, "type");
    CHECK(dj_json_get_bool(l0, "bias", &b, &err) == DJ_OK && b == 1, "bias");
    CHECK(dj_json_opt_bool(l1, "bias", 0, &b, &err) == DJ_OK && b == 0, "opt bias default");
    CHECK(dj_json_opt_int(l1, "stride", 1, 8, 1, &i, &err) == DJ_OK && i == 1, "opt stride default");
    CHECK(dj_json_opt_int(l0, "out_channels", 1, 64, 1, &i, &err) == DJ_OK && i == 16, "opt present");
    CHECK(dj_json_get_double(r, "lr", &x, &err) == DJ_OK && x == 0.001, "lr");
    CHECK(dj_json_get_double(l0, "out_channels", &x, &err) == DJ_OK && x == 16.0, "int as double");
    CHECK(dj_json_opt_double(r, "momentum", 0.9, &x, &err) == DJ_OK && x == 0.9, "opt double");
    CHECK(dj_json_opt_string(l1, "name", "relu", &s, &err) == DJ_OK && strcmp(s, "relu") == 0,
          "opt string");
    CHECK(dj_json_get_string(l2, "name", &s, &len, &err) == DJ_OK && len == 3, "string with NUL, len");
    static const char *const conv_keys[] = {"type", "out_channels", "kernel_size", "bias", NULL};
    CHECK(dj_json_check_keys(l0, conv_keys, &err) == DJ_OK, "check_keys ok");

    /* failures name the path and the position */
    EXPECT_MSG(dj_json_get_int(l2, "kernel_size", 1, 11, &i, &err), DJ_ERR_PARSE,
               "layers[2].kernel_size: expected an integer, got string (line 5, column 60)");
    CHECK(err.line == 5 && err.column == 60 && spec_text[err.offset] == '"', "position fields");
    EXPECT_MSG(dj_json_get_int(l2, "out_channels", 1, 64, &i, &err), DJ_ERR_PARSE,
               "layers[2].out_channels: expected an integer, got number 2.5 (line 5, column 40)");
    EXPECT_MSG(dj_json_get_int(l1, "kernel_size", 1, 11, &i, &err), DJ_ERR_PARSE,
               "layers[1]: missing member \"kernel_size\" (line 4, column 5)");
    EXPECT_MSG(dj_json_get_int(l0, "kernel_size", 5, 7, &i, &err), DJ_ERR_RANGE,
               "layers[0].kernel_size: 3 is out of range (expected 5 to 7) (line 3, column 59)");
    EXPECT_MSG(dj_json_get_int(l0, "kernel_size", 4, INT64_MAX, &i, &err), DJ_ERR_RANGE,
               "layers[0].kernel_size: 3 is out of range (expected at least 4) (line 3, column 59)");
    EXPECT_MSG(dj_json_get_int(l0, "kernel_size", INT64_MIN, 2, &i, &err), DJ_ERR_RANGE,
               "layers[0].kernel_size: 3 is out of range (expected at most 2) (line 3, column 59)");
    EXPECT_MSG(dj_json_get_int(l3, "in_features", 1, INT64_MAX, &i, &err), DJ_ERR_RANGE,
               "layers[3].in_features: integer is out of the 64-bit range (about 1e+20) (line 6, "
               "column 39)");
    EXPECT_MSG(dj_json_get_double(l0, "type", &x, &err), DJ_ERR_PARSE,
               "layers[0].type: expected a number, got string (line 3, column 14)");
    EXPECT_MSG(dj_json_get_bool(l0, "type", &b, &err), DJ_ERR_PARSE,
               "layers[0].type: expected a boolean, got string (line 3, column 14)");
    EXPECT_MSG(dj_json_get_string(l0, "bias", &s, NULL, &err), DJ_ERR_PARSE,
               "layers[0].bias: expected a string, got boolean (line 3, column 70)");
    EXPECT_MSG(dj_json_get_string(l2, "name", &s, NULL, &err), DJ_ERR_PARSE,
               "layers[2].name: string contains a NUL character (\\u0000) (line 5, column 73)");
    EXPECT_MSG(dj_json_opt_int(l2, "kernel_size", 1, 11, 1, &i, &err), DJ_ERR_PARSE,
               "layers[2].kernel_size: expected an integer, got string (line 5, column 60)");
    EXPECT_MSG(dj_json_opt_int(layers, "x", 1, 11, 1, &i, &err), DJ_ERR_PARSE,
               "layers: expected an object, got array (line 2, column 13)");
    EXPECT_MSG(dj_json_member(dj_json_at(l0, 0), "x", NULL, &err), DJ_ERR_ARG,
               "JSON member lookup: object or key is NULL");
    EXPECT_MSG(dj_json_expect(r, DJ_JSON_ARRAY, &err), DJ_ERR_PARSE,
               "top level: expected an array, got object (line 1, column 1)");
    EXPECT_MSG(dj_json_check_keys(l3, conv_keys, &err), DJ_ERR_PARSE,
               "layers[3]: unknown member \"in_features\" (line 6, column 39)");
    static const char *const lin_keys[] = {"type", "in_features", NULL};
    EXPECT_MSG(dj_json_check_keys(l3, lin_keys, &err), DJ_ERR_PARSE,
               "layers[3]: unknown member \"kernal_size\" (line 6, column 76)");

    /* array lengths */
    CHECK(dj_json_expect_len(layers, 1, 8, &err) == DJ_OK, "layers length");
    EXPECT_MSG(dj_json_expect_len(layers, 2, 2, &err), DJ_ERR_PARSE,
               "layers: expected an array of 2 items, got 4 (line 2, column 13)");
    EXPECT_MSG(dj_json_expect_len(layers, 1, 1, &err), DJ_ERR_PARSE,
               "layers: expected an array of 1 item, got 4 (line 2, column 13)");
    EXPECT_MSG(dj_json_expect_len(layers, 5, SIZE_MAX, &err), DJ_ERR_PARSE,
               "layers: expected an array of at least 5 items, got 4 (line 2, column 13)");
    EXPECT_MSG(dj_json_expect_len(layers, 5, 6, &err), DJ_ERR_PARSE,
               "layers: expected an array of 5 to 6 items, got 4 (line 2, column 13)");
    EXPECT_MSG(dj_json_expect_len(l0, 0, 1, &err), DJ_ERR_PARSE,
               "layers[0]: expected an array, got object (line 3, column 5)");

    /* paths through odd keys */
    const dj_json_value *odd = dj_json_get(r, "odd key");
    const dj_json_value *q = dj_json_get(dj_json_at(dj_json_get(odd, "x y"), 1), "\"q\"");
    CHECK(q != NULL, "odd lookup");
    dj_json_path(q, path, sizeof path);
    CHECK(strcmp(path, "[\"odd key\"][\"x y\"][1][\"\\\"q\\\"\"]") == 0, "odd path '%s'", path);
    EXPECT_MSG(dj_json_as_int(q, 0, 1, &i, &err), DJ_ERR_PARSE,
               "[\"odd key\"][\"x y\"][1][\"\\\"q\\\"\"]: expected an integer, got boolean "
               "(line 8, column 39)");
    CHECK(dj_json_path(r, path, sizeof path) == 0 && path[0] == 0, "root path is empty");
    dj_json_path(dj_json_get(l0, "kernel_size"), path, sizeof path);
    CHECK(strcmp(path, "layers[0].kernel_size") == 0, "path '%s'", path);
    CHECK(dj_json_path(dj_json_get(l0, "kernel_size"), path, 12) == 11 &&
              strcmp(path, "...nel_size") == 0,
          "truncated path '%s'", path);
    CHECK(dj_json_path(dj_json_get(l0, "kernel_size"), path, 1) == 0 && path[0] == 0, "size 1");

    /* dj_json_errorf for the caller's own checks */
    EXPECT_MSG(dj_json_errorf(&err, DJ_ERR_ARG, l2, "in_channels %d does not match %d", 3, 16),
               DJ_ERR_ARG, "layers[2]: in_channels 3 does not match 16 (line 5, column 5)");
    CHECK(dj_json_errorf(NULL, DJ_ERR_RANGE, l2, "x") == DJ_ERR_RANGE, "errorf with NULL err");
    dj_json_free(d);
}

/* ---- the writer ------------------------------------------------------------------------ */

static void expect_text(dj_json_writer *w, const char *want, int src_line)
{
    const char *text;
    size_t len;
    dj_status st = dj_json_writer_finish(w, &text, &len);
    CHECK(st == DJ_OK, "(line %d) finish failed: %s", src_line, dj_json_writer_error(w));
    CHECK(st == DJ_OK && len == strlen(want) && strcmp(text, want) == 0,
          "(line %d) wrote\n  %s\nexpected\n  %s", src_line, st == DJ_OK ? text : "", want);
}
#define EXPECT_TEXT(w, want) expect_text(w, want, __LINE__)

static void write_sample(dj_json_writer *w)
{
    dj_json_write_begin_object(w);
    dj_json_write_key(w, "epoch");
    dj_json_write_int(w, 3);
    dj_json_write_key(w, "loss");
    dj_json_write_double(w, 0.25);
    dj_json_write_key(w, "tags");
    dj_json_write_begin_array(w);
    dj_json_write_string(w, "a");
    dj_json_write_bool(w, 1);
    dj_json_write_null(w);
    dj_json_write_begin_object(w);
    dj_json_write_end_object(w);
    dj_json_write_begin_array(w);
    dj_json_write_end_array(w);
    dj_json_write_end_array(w);
    dj_json_write_key(w, "ok");
    dj_json_write_bool(w, 0);
    dj_json_write_end_object(w);
}

static void test_writer_basic(void)
{
    dj_json_writer w;
    dj_json_writer_init(&w, 0, NULL);
    write_sample(&w);
    EXPECT_TEXT(&w, "{\"epoch\":3,\"loss\":0.25,\"tags\":[\"a\",true,null,{},[]],\"ok\":false}");
    dj_json_writer_free(&w);

    dj_json_writer_init(&w, DJ_JSON_WRITE_PRETTY, NULL);
    write_sample(&w);
    EXPECT_TEXT(&w, "{\n"
                    "  \"epoch\": 3,\n"
                    "  \"loss\": 0.25,\n"
                    "  \"tags\": [\n"
                    "    \"a\",\n"
                    "    true,\n"
                    "    null,\n"
                    "    {},\n"
                    "    []\n"
                    "  ],\n"
                    "  \"ok\": false\n"
                    "}");
    dj_json_writer_free(&w);

    /* JSON lines: reset between lines keeps the buffer */
    dj_json_writer_init(&w, 0, NULL);
    for (int k = 0; k < 3; k++) {
        dj_json_writer_reset(&w);
        dj_json_write_begin_object(&w);
        dj_json_write_key(&w, "step");
        dj_json_write_int(&w, k);
        dj_json_write_end_object(&w);
        char want[32];
        snprintf(want, sizeof want, "{\"step\":%d}", k);
        EXPECT_TEXT(&w, want);
    }
    dj_json_writer_free(&w);

    /* scalars at the top level */
    dj_json_writer_init(&w, DJ_JSON_WRITE_PRETTY, NULL);
    dj_json_write_int(&w, INT64_MIN);
    EXPECT_TEXT(&w, "-9223372036854775808");
    dj_json_writer_reset(&w);
    dj_json_write_int(&w, INT64_MAX);
    EXPECT_TEXT(&w, "9223372036854775807");
    dj_json_writer_reset(&w);
    dj_json_write_string(&w, NULL);
    EXPECT_TEXT(&w, "null");
    dj_json_writer_reset(&w);
    dj_json_write_begin_array(&w);
    dj_json_write_begin_array(&w);
    dj_json_write_int(&w, 1);
    dj_json_write_end_array(&w);
    dj_json_write_end_array(&w);
    EXPECT_TEXT(&w, "[\n  [\n    1\n  ]\n]");
    dj_json_writer_free(&w);
}

static void test_writer_doubles(void)
{
    static const struct {
        double x;
        const char *want;
    } cases[] = {
        {0.0, "0.0"},
        {-0.0, "-0.0"},
        {1.0, "1.0"},
        {-3.0, "-3.0"},
        {0.1, "0.1"},
        {0.25, "0.25"},
        {1.0 / 3.0, "0.3333333333333333"},
        {0.1 + 0.2, "0.30000000000000004"},
        {1e300, "1e+300"},
        {1e21, "1e+21"},
        {123456789.0, "123456789.0"},
        {100.0, "100.0"},
        {-250.0, "-250.0"},
        {1e14, "100000000000000.0"},
        {1e15, "1e+15"},
        {1234567e10, "1.234567e+16"},
        {0.001, "0.001"},
        {1e-7, "1e-07"},
        {5e-324, "5e-324"},
        {DBL_MAX, "1.7976931348623157e+308"},
        {9007199254740993.0, "9007199254740992.0"},
    };
    dj_json_writer w;
    dj_json_writer_init(&w, 0, NULL);
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        dj_json_writer_reset(&w);
        dj_json_write_double(&w, cases[k].x);
        EXPECT_TEXT(&w, cases[k].want);
    }
    /* non-finite numbers are written as null */
    dj_json_writer_reset(&w);
    dj_json_write_begin_array(&w);
    dj_json_write_double(&w, NAN);
    dj_json_write_double(&w, INFINITY);
    dj_json_write_double(&w, -INFINITY);
    dj_json_write_end_array(&w);
    EXPECT_TEXT(&w, "[null,null,null]");

    /* random bit patterns round-trip exactly, and read back as non-integers */
    uint64_t state = 0x9E3779B97F4A7C15ULL;
    int bad = 0;
    for (int k = 0; k < 20000; k++) {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        double x;
        uint64_t u = state;
        if (k % 4 == 0) /* also ordinary magnitudes */
            u = (u & 0x800FFFFFFFFFFFFFULL) | ((uint64_t)(1023 + (int)(state >> 52) % 40 - 20) << 52);
        memcpy(&x, &u, sizeof x);
        if (!isfinite(x))
            continue;
        dj_json_writer_reset(&w);
        dj_json_write_double(&w, x);
        const char *text;
        size_t len;
        dj_json_doc *d = NULL;
        if (dj_json_writer_finish(&w, &text, &len) != DJ_OK ||
            dj_json_parse(text, len, NULL, &d, NULL) != DJ_OK ||
            bits(dj_json_number(dj_json_root(d))) != u || dj_json_is_int(dj_json_root(d))) {
            if (bad++ < 5)
                fprintf(stderr, "double %a does not round-trip\n", x);
        }
        dj_json_free(d);
    }
    CHECK(bad == 0, "%d doubles did not round-trip", bad);
    dj_json_writer_free(&w);
}

static void test_writer_escaping(void)
{
    dj_json_writer w;
    dj_json_writer_init(&w, 0, NULL);
    char all[32];
    for (int c = 0; c < 32; c++)
        all[c] = (char)c;
    dj_json_write_string_n(&w, all, 32);
    EXPECT_TEXT(&w, "\"\\u0000\\u0001\\u0002\\u0003\\u0004\\u0005\\u0006\\u0007\\b\\t\\n\\u000b\\f\\r"
                    "\\u000e\\u000f\\u0010\\u0011\\u0012\\u0013\\u0014\\u0015\\u0016\\u0017\\u0018"
                    "\\u0019\\u001a\\u001b\\u001c\\u001d\\u001e\\u001f\"");
    dj_json_writer_reset(&w);
    dj_json_write_string(&w, "q\"b\\s/ del\x7f \xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
    EXPECT_TEXT(&w, "\"q\\\"b\\\\s/ del\\u007f \xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"");
    dj_json_writer_free(&w);

    dj_json_writer_init(&w, DJ_JSON_WRITE_ASCII, NULL);
    dj_json_write_begin_object(&w);
    dj_json_write_key(&w, "k\xc3\xa9y\n");
    dj_json_write_string(&w, "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xef\xbf\xbf\xf4\x8f\xbf\xbfz");
    dj_json_write_end_object(&w);
    EXPECT_TEXT(&w, "{\"k\\u00e9y\\n\":\"\\u00e9\\u20ac\\ud83d\\ude00\\uffff\\udbff\\udfffz\"}");
    /* parse it back: the same bytes */
    const char *text;
    size_t len;
    dj_json_writer_finish(&w, &text, &len);
    dj_json_doc *d = parse_n(text, len);
    const char *s = dj_json_string(dj_json_get(dj_json_root(d), "k\xc3\xa9y\n"), &len);
    CHECK(s && strcmp(s, "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xef\xbf\xbf\xf4\x8f\xbf\xbfz") == 0,
          "ASCII-escaped string reads back");
    dj_json_free(d);
    dj_json_writer_free(&w);

    /* a string with an embedded NUL round-trips */
    dj_json_writer_init(&w, 0, NULL);
    dj_json_write_string_n(&w, "a\0b", 3);
    EXPECT_TEXT(&w, "\"a\\u0000b\"");
    dj_json_writer_free(&w);

    /* invalid UTF-8 is refused, sticky */
    static const char *const bad[] = {"\xff", "a\xc3", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80"};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        dj_json_writer_init(&w, k % 2 ? DJ_JSON_WRITE_ASCII : 0, NULL);
        dj_json_write_begin_array(&w);
        CHECK(dj_json_write_string(&w, bad[k]) == DJ_ERR_ARG, "bad UTF-8 %zu accepted", k);
        CHECK(dj_json_write_end_array(&w) == DJ_ERR_ARG, "error not sticky");
        CHECK(dj_json_writer_finish(&w, &text, &len) == DJ_ERR_ARG && text == NULL, "finish");
        CHECK(strncmp(dj_json_writer_error(&w), "string is not valid UTF-8", 25) == 0, "msg '%s'",
              dj_json_writer_error(&w));
        dj_json_writer_free(&w);
    }
    dj_json_writer_init(&w, 0, NULL);
    dj_json_write_string(&w, "a\xc3");
    CHECK(strcmp(dj_json_writer_error(&w), "string is not valid UTF-8 (byte 0xC3 at offset 1)") == 0,
          "msg '%s'", dj_json_writer_error(&w));
    dj_json_writer_free(&w);
}

static void expect_misuse(void (*fn)(dj_json_writer *), const char *msg, int src_line)
{
    dj_json_writer w;
    dj_json_writer_init(&w, 0, NULL);
    fn(&w);
    const char *text = "x";
    size_t len = 1;
    dj_status st = dj_json_writer_finish(&w, &text, &len);
    CHECK(st == DJ_ERR_ARG && text == NULL && len == 0, "(line %d) misuse accepted", src_line);
    CHECK(strcmp(dj_json_writer_error(&w), msg) == 0, "(line %d) error '%s', expected '%s'",
          src_line, dj_json_writer_error(&w), msg);
    dj_json_writer_free(&w);
}

static void mis_no_key(dj_json_writer *w)
{
    dj_json_write_begin_object(w);
    dj_json_write_int(w, 1);
}
static void mis_key_in_array(dj_json_writer *w)
{
    dj_json_write_begin_array(w);
    dj_json_write_key(w, "a");
}
static void mis_key_top(dj_json_writer *w) { dj_json_write_key(w, "a"); }
static void mis_two_keys(dj_json_writer *w)
{
    dj_json_write_begin_object(w);
    dj_json_write_key(w, "a");
    dj_json_write_key(w, "b");
}
static void mis_dangling_key(dj_json_writer *w)
{
    dj_json_write_begin_object(w);
    dj_json_write_key(w, "a");
    dj_json_write_end_object(w);
}
static void mis_wrong_end(dj_json_writer *w)
{
    dj_json_write_begin_object(w);
    dj_json_write_end_array(w);
}
static void mis_extra_end(dj_json_writer *w)
{
    dj_json_write_begin_array(w);
    dj_json_write_end_array(w);
    dj_json_write_end_array(w);
}
static void mis_two_roots(dj_json_writer *w)
{
    dj_json_write_int(w, 1);
    dj_json_write_int(w, 2);
}
static void mis_unclosed(dj_json_writer *w)
{
    dj_json_write_begin_array(w);
    dj_json_write_begin_object(w);
}
static void mis_nothing(dj_json_writer *w) { (void)w; }
static void mis_null_value(dj_json_writer *w) { dj_json_write_value(w, NULL); }

static void test_writer_misuse(void)
{
    expect_misuse(mis_no_key, "value without a key inside an object", __LINE__);
    expect_misuse(mis_key_in_array, "key outside an object", __LINE__);
    expect_misuse(mis_key_top, "key outside an object", __LINE__);
    expect_misuse(mis_two_keys, "two keys in a row without a value", __LINE__);
    expect_misuse(mis_dangling_key, "key without a value at the end of an object", __LINE__);
    expect_misuse(mis_wrong_end, "end of array inside an object", __LINE__);
    expect_misuse(mis_extra_end, "end of array without a beginning", __LINE__);
    expect_misuse(mis_two_roots, "more than one top-level value", __LINE__);
    expect_misuse(mis_unclosed, "2 array(s) or object(s) not closed", __LINE__);
    expect_misuse(mis_nothing, "nothing written", __LINE__);
    expect_misuse(mis_null_value, "value is NULL", __LINE__);
}

/* Writer output of parsed documents parses back to an equal DOM. */
static void test_roundtrip(void)
{
    static const char *const docs[] = {
        "null", "true", "0", "-0", "-0.0", "1e-400", "9007199254740993", "-9223372036854775808",
        "9223372036854775808", "18446744073709551616", "-99999999999999999999999", "1e308",
        "123.456e-7", "\"\"", "\"\\u0000\\u001f\\u007f\\ud83d\\ude00\\\"\\\\/\"", "[]", "{}",
        "[[[]],{},[{}]]",
        "{\"a\":{\"b\":{\"c\":[1,2.5,-3e-5,\"x\",true,false,null]}},\"\":{\"\":[]},\"\\u00e9\":1}",
        ("{\"shape\":[4096,4096],\"dtype\":\"F32\",\"data_offsets\":[9007199254740993,"
         "9007199254741001]}"),
    };
    for (size_t k = 0; k < sizeof docs / sizeof docs[0]; k++) {
        dj_json_doc *d = parse(docs[k]);
        const dj_json_value *r = dj_json_root(d);
        CHECK(roundtrip(r, 0), "compact round trip of %s", docs[k]);
        CHECK(roundtrip(r, DJ_JSON_WRITE_PRETTY), "pretty round trip of %s", docs[k]);
        CHECK(roundtrip(r, DJ_JSON_WRITE_PRETTY | DJ_JSON_WRITE_ASCII), "ascii round trip of %s",
              docs[k]);
        dj_json_free(d);
    }

    /* exact texts of number forms written from the DOM */
    static const struct {
        const char *in, *out;
    } forms[] = {
        {"[-0,0,-0.0,1.0,1e2,9007199254740993,18446744073709551616]",
         "[-0,0,-0.0,1.0,100.0,9007199254740993,18446744073709551616]"},
        {"{\"a\" : [ 1 , 2 ] , \"b\" : { } }", "{\"a\":[1,2],\"b\":{}}"},
    };
    for (size_t k = 0; k < sizeof forms / sizeof forms[0]; k++) {
        dj_json_doc *d = parse(forms[k].in);
        dj_json_writer w;
        dj_json_writer_init(&w, 0, NULL);
        dj_json_write_value(&w, dj_json_root(d));
        EXPECT_TEXT(&w, forms[k].out);
        dj_json_writer_free(&w);
        dj_json_free(d);
    }

    /* a value inside a document, written alone, and as a member */
    dj_json_doc *d = parse("{\"x\":[1,{\"y\":2}],\"z\":3}");
    dj_json_writer w;
    dj_json_writer_init(&w, 0, NULL);
    dj_json_write_begin_object(&w);
    dj_json_write_key(&w, "copy");
    dj_json_write_value(&w, dj_json_get(dj_json_root(d), "x"));
    dj_json_write_end_object(&w);
    EXPECT_TEXT(&w, "{\"copy\":[1,{\"y\":2}]}");
    dj_json_writer_free(&w);

    /* equality sees differences */
    dj_json_doc *e = parse("{\"x\":[1,{\"y\":2}],\"z\":3}");
    dj_json_doc *f = parse("{\"x\":[1,{\"y\":2.0}],\"z\":3}");
    dj_json_doc *g = parse("{\"z\":3,\"x\":[1,{\"y\":2}]}");
    dj_json_doc *h = parse("{\"x\":[1,{\"Y\":2}],\"z\":3}");
    dj_json_doc *z1 = parse("[0]");
    dj_json_doc *z2 = parse("[-0]");
    CHECK(dj_json_equal(dj_json_root(d), dj_json_root(e)), "equal docs");
    CHECK(!dj_json_equal(dj_json_root(d), dj_json_root(f)), "2 vs 2.0");
    CHECK(!dj_json_equal(dj_json_root(d), dj_json_root(g)), "member order");
    CHECK(!dj_json_equal(dj_json_root(d), dj_json_root(h)), "key differs");
    CHECK(!dj_json_equal(dj_json_root(z1), dj_json_root(z2)), "0 vs -0");
    CHECK(!dj_json_equal(dj_json_root(d), NULL) && dj_json_equal(NULL, NULL), "NULL");
    dj_json_free(d);
    dj_json_free(e);
    dj_json_free(f);
    dj_json_free(g);
    dj_json_free(h);
    dj_json_free(z1);
    dj_json_free(z2);
    dj_json_free(NULL);
}

/* ---- allocation failure ---------------------------------------------------------------- */

typedef struct {
    long budget; /* allocations left before failing; -1: unlimited */
    long live;   /* blocks currently allocated */
} fail_alloc;

static void *fa_realloc(void *ctx, void *p, size_t n)
{
    fail_alloc *fa = ctx;
    if (fa->budget == 0)
        return NULL;
    if (fa->budget > 0)
        fa->budget--;
    void *q = realloc(p, n);
    if (q && !p)
        fa->live++;
    return q;
}

static void fa_free(void *ctx, void *p)
{
    fail_alloc *fa = ctx;
    fa->live--;
    free(p);
}

static void test_alloc_failure(void)
{
    /* big enough to need several arena chunks, a sorted index and a long
     * number buffer */
    char *text = malloc(200000);
    size_t o = 0;
    o += (size_t)sprintf(text + o, "{\"n\":1.%0200d,\"big\":{", 5);
    for (int k = 0; k < 3000; k++)
        o += (size_t)sprintf(text + o, "%s\"key%d\":[%d,\"v\\u00e9\"]", k ? "," : "", k, k);
    o += (size_t)sprintf(text + o, "}}");
    fail_alloc fa = {-1, 0};
    dj_json_allocator al = {fa_realloc, fa_free, &fa};
    dj_json_options opt = {0, &al};
    int succeeded = 0, wrong = 0;
    for (long budget = 0; budget < 10000 && !succeeded; budget++) {
        fa.budget = budget;
        fa.live = 0;
        dj_json_doc *d = NULL;
        dj_json_error err;
        dj_status st = dj_json_parse(text, o, &opt, &d, &err);
        if (st == DJ_OK) {
            succeeded = 1;
            CHECK(dj_json_len(dj_json_get(dj_json_root(d), "big")) == 3000, "content");
            dj_json_free(d);
        } else if (st != DJ_ERR_NOMEM || d != NULL || strstr(err.message, "out of memory") == NULL) {
            wrong++;
        }
        CHECK(fa.live == 0, "budget %ld: %ld blocks leaked", budget, fa.live);
    }
    CHECK(succeeded && wrong == 0, "parse under failing allocator: succeeded %d, wrong %d",
          succeeded, wrong);

    /* the writer: every allocation failure is reported, nothing leaks */
    fa.budget = -1;
    fa.live = 0;
    dj_json_doc *d = NULL;
    CHECK(dj_json_parse(text, o, NULL, &d, NULL) == DJ_OK, "parse for writer test");
    succeeded = wrong = 0;
    for (long budget = 0; budget < 1000 && !succeeded; budget++) {
        fa.budget = budget;
        dj_json_writer w;
        dj_json_writer_init(&w, DJ_JSON_WRITE_PRETTY, &al);
        dj_json_write_value(&w, dj_json_root(d));
        const char *out;
        size_t len;
        dj_status st = dj_json_writer_finish(&w, &out, &len);
        if (st == DJ_OK)
            succeeded = 1;
        else if (st != DJ_ERR_NOMEM || strcmp(dj_json_writer_error(&w), "out of memory") != 0)
            wrong++;
        dj_json_writer_free(&w);
        CHECK(fa.live == 0, "writer budget %ld: %ld blocks leaked", budget, fa.live);
    }
    CHECK(succeeded && wrong == 0, "writer under failing allocator: succeeded %d, wrong %d",
          succeeded, wrong);
    dj_json_free(d);
    free(text);
}

/* ---- files ------------------------------------------------------------------------------- */

static void test_files(void)
{
    char path[128];
    snprintf(path, sizeof path, "/tmp/dojo_test_json_%lx_%lx.json", (unsigned long)time(NULL),
             (unsigned long)(uintptr_t)&path);
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL, "cannot create %s", path);
    if (!f)
        return;
    fputs("{\n  \"lr\": 0.5,\n  \"layers\": [1, 2,]\n}\n", f);
    fclose(f);
    dj_json_doc *d = (dj_json_doc *)1;
    dj_json_error err;
    CHECK(dj_json_parse_file(path, NULL, &d, &err) == DJ_ERR_PARSE && d == NULL, "bad file parses");
    char want[256];
    snprintf(want, sizeof want, "%s: line 3, column 19: trailing comma before ']'", path);
    CHECK(strncmp(err.message, want, strlen(want)) == 0 && err.line == 3 && err.column == 19,
          "file error '%s'", err.message);

    f = fopen(path, "wb");
    fputs("{\"lr\": 0.5}", f);
    fclose(f);
    CHECK(dj_json_parse_file(path, NULL, &d, &err) == DJ_OK &&
              dj_json_number(dj_json_get(dj_json_root(d), "lr")) == 0.5,
          "good file: %s", err.message);
    dj_json_free(d);

    /* bigger than one read */
    f = fopen(path, "wb");
    fputc('[', f);
    for (int k = 0; k < 50000; k++)
        fprintf(f, "%s%d", k ? "," : "", k);
    fputc(']', f);
    fclose(f);
    CHECK(dj_json_parse_file(path, NULL, &d, &err) == DJ_OK && dj_json_len(dj_json_root(d)) == 50000 &&
              dj_json_int(dj_json_at(dj_json_root(d), 49999)) == 49999,
          "big file: %s", err.message);
    dj_json_free(d);
    remove(path);

    CHECK(dj_json_parse_file(path, NULL, &d, &err) == DJ_ERR_IO && d == NULL, "missing file");
    snprintf(want, sizeof want, "cannot open '%s': ", path);
    CHECK(strncmp(err.message, want, strlen(want)) == 0, "missing file message '%s'", err.message);
    CHECK(dj_json_parse_file("/", NULL, &d, &err) == DJ_ERR_IO &&
              strncmp(err.message, "cannot ", 7) == 0 && strstr(err.message, "'/'") != NULL,
          "directory: '%s'", err.message);
}

/* ---- locale independence ------------------------------------------------------------------ */

static void test_locale(void)
{
    static const char *const names[] = {"de_DE.UTF-8", "de_DE.utf8", "fr_FR.UTF-8", "fr_FR.utf8"};
    const char *set = NULL;
    for (size_t k = 0; k < 4 && !set; k++)
        set = setlocale(LC_NUMERIC, names[k]);
    if (!set)
        return; /* no comma-decimal locale installed: nothing to check */
    dj_json_doc *d = parse("[1.5, 2.25e1]");
    CHECK(dj_json_number(dj_json_at(dj_json_root(d), 0)) == 1.5 &&
              dj_json_number(dj_json_at(dj_json_root(d), 1)) == 22.5,
          "parse under %s", set);
    dj_json_writer w;
    dj_json_writer_init(&w, 0, NULL);
    dj_json_write_value(&w, dj_json_root(d));
    EXPECT_TEXT(&w, "[1.5,22.5]");
    dj_json_writer_free(&w);
    dj_json_free(d);
    setlocale(LC_NUMERIC, "C");
}

/* ---- fuzzer regressions ------------------------------------------------------------------- */

static void test_fuzz_regressions(void)
{
    /* Inputs found by fuzz/fuzz_json.c (or written while reading its
     * results): each must parse or fail cleanly, and round-trip if it
     * parses. */
    static const struct {
        const char *text;
        size_t len;
        int ok;
    } cases[] = {
        {"\"\\", 2, 0},
        {"\"\\u", 3, 0},
        {"\"\\uD800\\", 8, 0},
        {"\"\\uD800\\u", 9, 0},
        {"[-", 2, 0},
        {"{\"", 2, 0},
        {"{\"\":", 4, 0},
        {"[1e-99999999999999999999]", 25, 1},
        {"[0.0000000000000000000000000000001e-999999]", 43, 1},
        /* beyond int64, but its double is -2^63: written as "-9223372036854775808"
         * it read back as an int64 */
        {"-9223372036854775809", 20, 1},
        {"[-9223372036854775809,-9223372036854775808,9223372036854775808]", 63, 1},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        dj_json_doc *d = NULL;
        dj_json_error err;
        dj_status st = dj_json_parse(cases[k].text, cases[k].len, NULL, &d, &err);
        CHECK((st == DJ_OK) == cases[k].ok, "regression %zu: status %d (%s)", k, (int)st, err.message);
        if (st == DJ_OK) {
            CHECK(roundtrip(dj_json_root(d), 0), "regression %zu round trip", k);
            dj_json_free(d);
        }
    }
}

/* The one-line helpers: the text plus a newline, the writer freed; a
 * writer in error gives NULL / its status and prints nothing. */
static void test_writer_lines(void)
{
    dj_json_writer w;
    dj_json_writer_init(&w, 0, NULL);
    dj_json_write_begin_object(&w);
    dj_json_write_key(&w, "a");
    dj_json_write_int(&w, 1);
    dj_json_write_end_object(&w);
    char *line = dj_json_writer_take_line(&w);
    CHECK(line && strcmp(line, "{\"a\":1}\n") == 0, "take_line: '%s'", line ? line : "(null)");
    free(line);
    dj_json_writer_init(&w, 0, NULL);
    dj_json_write_begin_array(&w); /* unclosed: an error */
    CHECK(dj_json_writer_take_line(&w) == NULL, "take_line of an unfinished document is NULL");
    FILE *fp = tmpfile();
    CHECK(fp != NULL, "tmpfile");
    if (!fp)
        return;
    dj_json_writer_init(&w, 0, NULL);
    dj_json_write_string(&w, "x");
    CHECK(dj_json_writer_print_line(&w, fp) == DJ_OK, "print_line");
    dj_json_writer_init(&w, 0, NULL);
    dj_json_write_begin_object(&w);
    CHECK(dj_json_writer_print_line(&w, fp) != DJ_OK, "print_line of an unfinished document fails");
    char buf[32] = "";
    rewind(fp);
    size_t n = fread(buf, 1, sizeof buf - 1, fp);
    CHECK(n == 4 && strcmp(buf, "\"x\"\n") == 0, "printed '%s'", buf);
    fclose(fp);
}

int main(void)
{
    test_writer_lines();
    test_scalars();
    test_strings();
    test_nested();
    test_big_object();
    test_buffer_not_terminated();
    test_depth();
    test_rejections();
    test_error_offsets();
    test_paths();
    test_writer_basic();
    test_writer_doubles();
    test_writer_escaping();
    test_writer_misuse();
    test_roundtrip();
    test_alloc_failure();
    test_files();
    test_locale();
    test_fuzz_regressions();
    return th_done("test_json");
}
