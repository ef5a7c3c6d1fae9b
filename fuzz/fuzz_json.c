/* fuzz_json.c - libFuzzer target for the JSON parser and writer.
 *
 * Parses arbitrary bytes. A rejection must come with a positioned message.
 * An accepted document is checked against itself: every member is found by
 * its key, paths can be built for every value, and writing it (compact, and
 * pretty with ASCII escapes) gives text that parses back to an equal DOM
 * and that writes again to the same text.
 *
 *   cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DDOJO_FUZZ=ON -DDOJO_SANITIZE=ON
 *   cmake --build build-fuzz --target fuzz_json
 *   ./build-fuzz/fuzz/fuzz_json -max_total_time=300 CORPUS_DIR */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dojo/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FAIL(...)                                                                 \
    do {                                                                          \
        fprintf(stderr, "fuzz_json: ");                                           \
        fprintf(stderr, __VA_ARGS__);                                             \
        fputc('\n', stderr);                                                      \
        abort();                                                                  \
    } while (0)

/* A number must equal what strtod/strtoll make of its literal in the input
 * (the parser has its own fast path and integer conversion). */
static void check_number(const dj_json_value *v, const uint8_t *data, size_t size)
{
    size_t off, end;
    dj_json_position(v, NULL, NULL, &off);
    end = off;
    int integer = 1;
    while (end < size && strchr("+-.eE0123456789", data[end]) && data[end]) {
        if (data[end] == '.' || data[end] == 'e' || data[end] == 'E')
            integer = 0;
        end++;
    }
    char *lit = malloc(end - off + 1);
    if (!lit)
        abort();
    memcpy(lit, data + off, end - off);
    lit[end - off] = 0;
    double d = strtod(lit, NULL);
    double got = dj_json_number(v);
    if (memcmp(&d, &got, sizeof d) != 0)
        FAIL("number %s read as %.17g, strtod says %.17g", lit, got, d);
    errno = 0;
    long long ll = strtoll(lit, NULL, 10);
    int fits = integer && errno == 0;
    if (fits != dj_json_is_int(v) || (fits && ll != dj_json_int(v)))
        FAIL("integer %s: is_int %d int %lld", lit, dj_json_is_int(v), (long long)dj_json_int(v));
    free(lit);
}

/* Accessor consistency over the whole DOM (explicit stack; the parser's
 * default depth limit bounds it). */
static void walk(const dj_json_value *root, const uint8_t *data, size_t size)
{
    struct {
        const dj_json_value *v;
        size_t next;
    } stack[DJ_JSON_DEFAULT_MAX_DEPTH + 1];
    size_t depth = 0;
    char path[64];
    dj_json_error err;
    stack[0].v = root;
    stack[0].next = 0;
    for (;;) {
        const dj_json_value *v = stack[depth].v;
        if (stack[depth].next == 0) {
            size_t pl = dj_json_path(v, path, sizeof path);
            if (pl != strlen(path) || (v == root) != (pl == 0))
                FAIL("path length %zu for '%s'", pl, path);
            int64_t i;
            dj_status st = dj_json_as_int(v, INT64_MIN, INT64_MAX, &i, &err);
            if ((st == DJ_OK) != (dj_json_is_int(v) != 0))
                FAIL("as_int disagrees with is_int");
            if (st && err.message[0] == 0)
                FAIL("as_int error without message");
            if (dj_json_type_of(v) == DJ_JSON_NUMBER)
                check_number(v, data, size);
            if (dj_json_type_of(v) == DJ_JSON_OBJECT) {
                for (size_t k = 0; k < dj_json_len(v); k++) {
                    size_t kl;
                    const char *key = dj_json_key_at(v, k, &kl);
                    if (dj_json_get_n(v, key, kl) != dj_json_value_at(v, k))
                        FAIL("member %zu not found by its key", k);
                }
            }
        }
        size_t n = dj_json_len(v);
        if (stack[depth].next < n) {
            size_t k = stack[depth].next++;
            const dj_json_value *c =
                dj_json_type_of(v) == DJ_JSON_ARRAY ? dj_json_at(v, k) : dj_json_value_at(v, k);
            if (dj_json_parent(c) != v)
                FAIL("wrong parent");
            if (depth + 1 > DJ_JSON_DEFAULT_MAX_DEPTH)
                FAIL("deeper than the parser allows");
            depth++;
            stack[depth].v = c;
            stack[depth].next = 0;
            continue;
        }
        if (depth == 0)
            return;
        depth--;
    }
}

static char *write_doc(const dj_json_value *v, unsigned flags, size_t *len)
{
    dj_json_writer w;
    dj_json_writer_init(&w, flags, NULL);
    dj_json_write_value(&w, v);
    const char *text;
    if (dj_json_writer_finish(&w, &text, len) != DJ_OK)
        FAIL("writer failed: %s", dj_json_writer_error(&w));
    char *copy = malloc(*len + 1);
    if (!copy)
        abort();
    memcpy(copy, text, *len + 1);
    dj_json_writer_free(&w);
    return copy;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    dj_json_doc *doc = NULL;
    dj_json_error err;
    dj_status st = dj_json_parse((const char *)data, size, NULL, &doc, &err);
    if (st != DJ_OK) {
        if (doc)
            FAIL("document returned with an error");
        if (st != DJ_ERR_PARSE || err.status != st)
            FAIL("status %d for bad input", (int)st);
        if (err.line < 1 || err.column < 1 || err.offset > size ||
            strncmp(err.message, "line ", 5) != 0)
            FAIL("bad error position: %s", err.message);
        return 0;
    }
    const dj_json_value *root = dj_json_root(doc);
    walk(root, data, size);
    if (!dj_json_equal(root, root))
        FAIL("document differs from itself");

    static const unsigned flag_sets[] = {0, DJ_JSON_WRITE_PRETTY | DJ_JSON_WRITE_ASCII};
    for (size_t f = 0; f < 2; f++) {
        size_t len1, len2;
        char *text1 = write_doc(root, flag_sets[f], &len1);
        dj_json_doc *again = NULL;
        if (dj_json_parse(text1, len1, NULL, &again, &err) != DJ_OK)
            FAIL("written text does not parse: %s\n%s", err.message, text1);
        if (!dj_json_equal(root, dj_json_root(again)))
            FAIL("round trip changed the document:\n%s", text1);
        char *text2 = write_doc(dj_json_root(again), flag_sets[f], &len2);
        if (len1 != len2 || memcmp(text1, text2, len1) != 0)
            FAIL("writing is not a fixed point:\n%s\n%s", text1, text2);
        free(text2);
        free(text1);
        dj_json_free(again);
    }
    dj_json_free(doc);
    return 0;
}
