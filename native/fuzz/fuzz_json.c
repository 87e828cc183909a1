/* libFuzzer target: core/json.c, the strict reader of control messages.
 *
 * Arbitrary bytes go to spy_json_parse; when they are accepted, every
 * member and element is walked recursively and every string decoded into
 * a tiny, a small and an exactly sized buffer, every number read as an
 * integer, and keys compared with spy_json_string_is, so the walkers and
 * decoders only ever see what the parser validated.  Checked besides what
 * ASan/UBSan catch:
 *   - a parse never reads past its input (the input is copied to a heap
 *     block of exactly its size);
 *   - a value's span lies inside the input and re-parses to the same kind;
 *   - decoded strings are NUL-terminated, never longer than the buffer,
 *     valid UTF-8 (lone surrogates become U+FFFD), and a decode into a
 *     smaller buffer is a prefix of the one into a larger buffer.
 *
 * Run: make -C native fuzz && dist-asan/fuzz/fuzz_json native/fuzz/corpus/fuzz_json
 */
#include "../core/json.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(cond)                                                        \
    do {                                                                   \
        if (!(cond)) {                                                     \
            fprintf(stderr, "fuzz_json: check failed at %s:%d: %s\n",      \
                    __FILE__, __LINE__, #cond);                            \
            abort();                                                       \
        }                                                                  \
    } while (0)

struct walk {
    const char *base;
    size_t size;
    int depth;
    size_t visited;
};

/* 1 when s[0..n) is well-formed UTF-8 without surrogates. */
static int
valid_utf8(const unsigned char *s, size_t n)
{
    size_t i = 0;

    while (i < n) {
        unsigned char c = s[i];
        size_t k;
        unsigned int cp, min;

        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xC2 && c <= 0xDF) {
            k = 2, min = 0x80, cp = c & 0x1F;
        }
        else if (c >= 0xE0 && c <= 0xEF) {
            k = 3, min = 0x800, cp = c & 0x0F;
        }
        else if (c >= 0xF0 && c <= 0xF4) {
            k = 4, min = 0x10000, cp = c & 0x07;
        }
        else {
            return 0;
        }
        if (n - i < k) {
            return 0;
        }
        for (size_t j = 1; j < k; j++) {
            if ((s[i + j] & 0xC0) != 0x80) {
                return 0;
            }
            cp = (cp << 6) | (s[i + j] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
            return 0;
        }
        i += k;
    }
    return 1;
}

static void
check_string(const struct spy_json_value *v)
{
    char tiny[1], small[8], *big;
    long n_tiny, n_small, n_big;

    CHECK(v->len >= 2 && v->start[0] == '"' && v->start[v->len - 1] == '"');
    n_tiny = spy_json_string(v, tiny, sizeof(tiny));
    CHECK(n_tiny == 0 && tiny[0] == '\0');
    n_small = spy_json_string(v, small, sizeof(small));
    CHECK(n_small >= 0 && (size_t)n_small < sizeof(small));
    CHECK(small[n_small] == '\0');
    /* Decoded UTF-8 is at most as long as the escaped text (\uXXXX -> 3,
     * a surrogate pair's 12 -> 4), so len - 1 bytes always suffice. */
    big = malloc(v->len - 1);
    CHECK(big != NULL);
    n_big = spy_json_string(v, big, v->len - 1);
    CHECK(n_big >= 0 && (size_t)n_big < v->len - 1 && big[n_big] == '\0');
    CHECK(n_small <= n_big && memcmp(small, big, (size_t)n_small) == 0);
    CHECK(valid_utf8((const unsigned char *)big, (size_t)n_big));
    /* spy_json_string_is agrees with the decoding, for short strings. */
    if (n_big < 200 && memchr(big, '\0', (size_t)n_big) == NULL) {
        CHECK(spy_json_string_is(v, big));
        if (n_big > 0) {
            char last = big[n_big - 1];

            big[n_big - 1] = '\0';
            CHECK(!spy_json_string_is(v, big));
            big[n_big - 1] = last;
        }
    }
    CHECK(!spy_json_string_is(v, "\xff"));
    free(big);
}

static int visit(const struct spy_json_value *key,
                 const struct spy_json_value *value, void *ctx);

static void
check_value(struct walk *w, const struct spy_json_value *v)
{
    struct spy_json_value again;
    const char *error = NULL;

    CHECK(v->start >= w->base && v->len > 0
          && v->start + v->len <= w->base + w->size);
    /* A value's span is itself one JSON text of the same kind. */
    CHECK(spy_json_parse(v->start, v->len, &again, &error) == 0);
    CHECK(again.kind == v->kind && again.start == v->start
          && again.len == v->len);

    switch (v->kind) {
    case SPY_JSON_STRING:
        check_string(v);
        CHECK(spy_json_integer(v, 7) == 7);
        break;
    case SPY_JSON_NUMBER: {
        long long a = spy_json_integer(v, -1), b = spy_json_integer(v, -2);

        /* The fallback shows through exactly when it is not an integer. */
        CHECK(a == b || (a == -1 && b == -2));
        CHECK(spy_json_string(v, (char[4]){0}, 4) == -1);
        break;
    }
    case SPY_JSON_OBJECT:
    case SPY_JSON_ARRAY: {
        size_t before = w->visited;

        w->depth++;
        CHECK(w->depth <= SPY_JSON_MAX_DEPTH + 1);
        if (v->kind == SPY_JSON_OBJECT) {
            CHECK(spy_json_members(v, visit, w) == 0);
            CHECK(spy_json_elements(v, visit, w) == -1);
        }
        else {
            CHECK(spy_json_elements(v, visit, w) == 0);
            CHECK(spy_json_members(v, visit, w) == -1);
        }
        w->depth--;
        (void)before;
        break;
    }
    case SPY_JSON_NULL:
    case SPY_JSON_TRUE:
    case SPY_JSON_FALSE:
        CHECK(spy_json_integer(v, 3) == 3);
        CHECK(!spy_json_string_is(v, ""));
        break;
    }
}

static int
visit(const struct spy_json_value *key, const struct spy_json_value *value,
      void *ctx)
{
    struct walk *w = ctx;

    w->visited++;
    if (key != NULL) {
        CHECK(key->kind == SPY_JSON_STRING);
        check_value(w, key);
        /* What the launcher's field collectors do with every key. */
        (void)spy_json_string_is(key, "type");
        (void)spy_json_string_is(key, "breakpoints");
    }
    check_value(w, value);
    return 0;
}

/* Stops a walk early: the visitor's non-zero value comes back. */
static int
stop_at_first(const struct spy_json_value *key,
              const struct spy_json_value *value, void *ctx)
{
    (void)key;
    (void)value;
    ++*(int *)ctx;
    return 42;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* An exact-size heap copy: ASan sees any read past the end. */
    char *copy = malloc(size ? size : 1);
    struct spy_json_value root;
    const char *error = NULL;
    struct walk w;

    if (copy == NULL) {
        return 0;
    }
    memcpy(copy, data, size);
    if (spy_json_parse(copy, size, &root, &error) < 0) {
        CHECK(error != NULL && error[0] != '\0');
        free(copy);
        return 0;
    }
    w.base = copy;
    w.size = size;
    w.depth = 0;
    w.visited = 0;
    check_value(&w, &root);
    if (root.kind == SPY_JSON_OBJECT || root.kind == SPY_JSON_ARRAY) {
        int calls = 0;
        int rc = root.kind == SPY_JSON_OBJECT
                 ? spy_json_members(&root, stop_at_first, &calls)
                 : spy_json_elements(&root, stop_at_first, &calls);

        CHECK((rc == 42 && calls == 1) || (rc == 0 && calls == 0));
    }
    free(copy);
    return 0;
}
