#include "json.h"

#include "buf.h"

#include <stdlib.h>
#include <string.h>

struct cursor {
    const char *p;
    const char *end;
    const char *error;
};

static int parse_value(struct cursor *c, struct spy_json_value *out,
                       int depth);

static void
skip_space(struct cursor *c)
{
    while (c->p < c->end
           && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n'
               || *c->p == '\r')) {
        c->p++;
    }
}

static int
fail(struct cursor *c, const char *why)
{
    if (c->error == NULL) {
        c->error = why;
    }
    return -1;
}

static int
hex_value(char ch)
{
    if (ch >= '0' && ch <= '9') {
        return ch - '0';
    }
    if (ch >= 'a' && ch <= 'f') {
        return ch - 'a' + 10;
    }
    if (ch >= 'A' && ch <= 'F') {
        return ch - 'A' + 10;
    }
    return -1;
}

/* Length of the UTF-8 sequence at p if it is well formed, else 0. */
static size_t
utf8_sequence(const unsigned char *p, const unsigned char *end)
{
    unsigned char c = p[0];
    size_t n;
    unsigned int min, cp;

    if (c < 0x80) {
        return 1;
    }
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2, min = 0x80, cp = c & 0x1F;
    }
    else if (c >= 0xE0 && c <= 0xEF) {
        n = 3, min = 0x800, cp = c & 0x0F;
    }
    else if (c >= 0xF0 && c <= 0xF4) {
        n = 4, min = 0x10000, cp = c & 0x07;
    }
    else {
        return 0;
    }
    if ((size_t)(end - p) < n) {
        return 0;
    }
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xC0) != 0x80) {
            return 0;
        }
        cp = (cp << 6) | (p[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
        return 0;
    }
    return n;
}

static int
parse_string(struct cursor *c)
{
    c->p++;                                     /* opening quote */
    while (c->p < c->end) {
        unsigned char ch = (unsigned char)*c->p;

        if (ch == '"') {
            c->p++;
            return 0;
        }
        if (ch < 0x20) {
            return fail(c, "control character in string");
        }
        if (ch == '\\') {
            if (c->end - c->p < 2) {
                break;
            }
            char e = c->p[1];
            if (e == 'u') {
                if (c->end - c->p < 6) {
                    break;
                }
                for (int i = 2; i < 6; i++) {
                    if (hex_value(c->p[i]) < 0) {
                        return fail(c, "bad \\u escape");
                    }
                }
                c->p += 6;
                continue;
            }
            if (strchr("\"\\/bfnrt", e) == NULL || e == '\0') {
                return fail(c, "bad escape");
            }
            c->p += 2;
            continue;
        }
        size_t n = utf8_sequence((const unsigned char *)c->p,
                                 (const unsigned char *)c->end);
        if (n == 0) {
            return fail(c, "invalid UTF-8");
        }
        c->p += n;
    }
    return fail(c, "unterminated string");
}

static int
parse_number(struct cursor *c)
{
    const char *p = c->p;

    if (p < c->end && *p == '-') {
        p++;
    }
    if (p >= c->end) {
        return fail(c, "bad number");
    }
    if (*p == '0') {
        p++;
    }
    else if (*p >= '1' && *p <= '9') {
        while (p < c->end && *p >= '0' && *p <= '9') {
            p++;
        }
    }
    else {
        return fail(c, "bad number");
    }
    if (p < c->end && *p == '.') {
        p++;
        if (p >= c->end || *p < '0' || *p > '9') {
            return fail(c, "bad number");
        }
        while (p < c->end && *p >= '0' && *p <= '9') {
            p++;
        }
    }
    if (p < c->end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < c->end && (*p == '+' || *p == '-')) {
            p++;
        }
        if (p >= c->end || *p < '0' || *p > '9') {
            return fail(c, "bad number");
        }
        while (p < c->end && *p >= '0' && *p <= '9') {
            p++;
        }
    }
    c->p = p;
    return 0;
}

static int
parse_literal(struct cursor *c, const char *word)
{
    size_t n = strlen(word);

    if ((size_t)(c->end - c->p) < n || memcmp(c->p, word, n) != 0) {
        return fail(c, "unexpected character");
    }
    c->p += n;
    return 0;
}

static int
parse_container(struct cursor *c, int depth, int is_object)
{
    char close = is_object ? '}' : ']';
    struct spy_json_value item;

    if (depth >= SPY_JSON_MAX_DEPTH) {
        return fail(c, "nested too deeply");
    }
    c->p++;
    skip_space(c);
    if (c->p < c->end && *c->p == close) {
        c->p++;
        return 0;
    }
    for (;;) {
        skip_space(c);
        if (is_object) {
            if (c->p >= c->end || *c->p != '"') {
                return fail(c, "expected a key");
            }
            if (parse_string(c) < 0) {
                return -1;
            }
            skip_space(c);
            if (c->p >= c->end || *c->p != ':') {
                return fail(c, "expected ':'");
            }
            c->p++;
        }
        if (parse_value(c, &item, depth + 1) < 0) {
            return -1;
        }
        skip_space(c);
        if (c->p >= c->end) {
            return fail(c, "unterminated container");
        }
        if (*c->p == close) {
            c->p++;
            return 0;
        }
        if (*c->p != ',') {
            return fail(c, "expected ',' or the end of the container");
        }
        c->p++;
    }
}

static int
parse_value(struct cursor *c, struct spy_json_value *out, int depth)
{
    int rc;

    skip_space(c);
    if (c->p >= c->end) {
        return fail(c, "missing value");
    }
    out->start = c->p;
    switch (*c->p) {
    case '{':
        out->kind = SPY_JSON_OBJECT;
        rc = parse_container(c, depth, 1);
        break;
    case '[':
        out->kind = SPY_JSON_ARRAY;
        rc = parse_container(c, depth, 0);
        break;
    case '"':
        out->kind = SPY_JSON_STRING;
        rc = parse_string(c);
        break;
    case 't':
        out->kind = SPY_JSON_TRUE;
        rc = parse_literal(c, "true");
        break;
    case 'f':
        out->kind = SPY_JSON_FALSE;
        rc = parse_literal(c, "false");
        break;
    case 'n':
        out->kind = SPY_JSON_NULL;
        rc = parse_literal(c, "null");
        break;
    default:
        out->kind = SPY_JSON_NUMBER;
        rc = parse_number(c);
        break;
    }
    out->len = (size_t)(c->p - out->start);
    return rc;
}

int
spy_json_parse(const char *s, size_t n, struct spy_json_value *out,
               const char **error)
{
    struct cursor c = {s, s + n, NULL};

    if (parse_value(&c, out, 0) < 0) {
        *error = c.error;
        return -1;
    }
    skip_space(&c);
    if (c.p != c.end) {
        *error = "trailing characters after the value";
        return -1;
    }
    return 0;
}

/* Walks an already validated container: re-parsing is cheap and keeps a
 * single source of truth for the grammar. */
static int
walk_container(const struct spy_json_value *v, int is_object,
               spy_json_member_fn visit, void *ctx)
{
    struct cursor c = {v->start, v->start + v->len, NULL};
    struct spy_json_value key, value;
    int rc;

    if (v->kind != (is_object ? SPY_JSON_OBJECT : SPY_JSON_ARRAY)) {
        return -1;
    }
    c.p++;
    skip_space(&c);
    if (*c.p == (is_object ? '}' : ']')) {
        return 0;
    }
    for (;;) {
        skip_space(&c);
        if (is_object) {
            key.kind = SPY_JSON_STRING;
            key.start = c.p;
            parse_string(&c);
            key.len = (size_t)(c.p - key.start);
            skip_space(&c);
            c.p++;                              /* ':' */
        }
        parse_value(&c, &value, 0);
        rc = visit(is_object ? &key : NULL, &value, ctx);
        if (rc != 0) {
            return rc;
        }
        skip_space(&c);
        if (*c.p != ',') {
            return 0;
        }
        c.p++;
    }
}

int
spy_json_members(const struct spy_json_value *object,
                 spy_json_member_fn visit, void *ctx)
{
    return walk_container(object, 1, visit, ctx);
}

int
spy_json_elements(const struct spy_json_value *array,
                  spy_json_member_fn visit, void *ctx)
{
    return walk_container(array, 0, visit, ctx);
}

static unsigned int
read_hex4(const char *p)
{
    return (unsigned int)(hex_value(p[0]) << 12 | hex_value(p[1]) << 8
                          | hex_value(p[2]) << 4 | hex_value(p[3]));
}

long
spy_json_string(const struct spy_json_value *v, char *out, size_t out_size)
{
    const char *p, *end;
    size_t n = 0;

    if (v->kind != SPY_JSON_STRING || out_size == 0) {
        return -1;
    }
    p = v->start + 1;
    end = v->start + v->len - 1;
    while (p < end) {
        char tmp[4];
        size_t k = 1;

        if (*p != '\\') {
            tmp[0] = *p++;
        }
        else if (p[1] != 'u') {
            switch (p[1]) {
            case 'b': tmp[0] = '\b'; break;
            case 'f': tmp[0] = '\f'; break;
            case 'n': tmp[0] = '\n'; break;
            case 'r': tmp[0] = '\r'; break;
            case 't': tmp[0] = '\t'; break;
            default: tmp[0] = p[1]; break;
            }
            p += 2;
        }
        else {
            unsigned int cp = read_hex4(p + 2);

            p += 6;
            if (cp >= 0xD800 && cp <= 0xDBFF && end - p >= 6 && p[0] == '\\'
                && p[1] == 'u') {
                unsigned int low = read_hex4(p + 2);

                if (low >= 0xDC00 && low <= 0xDFFF) {
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
                    p += 6;
                }
            }
            if (cp >= 0xD800 && cp <= 0xDFFF) {
                cp = 0xFFFD;                    /* lone surrogate */
            }
            k = spy_utf8_encode(tmp, cp);
        }
        if (n + k >= out_size) {
            break;
        }
        memcpy(out + n, tmp, k);
        n += k;
    }
    out[n] = '\0';
    return (long)n;
}

int
spy_json_string_is(const struct spy_json_value *v, const char *text)
{
    char tmp[256];
    long n = spy_json_string(v, tmp, sizeof(tmp));

    return n >= 0 && (size_t)n == strlen(text) && n < (long)sizeof(tmp) - 1
           && memcmp(tmp, text, (size_t)n) == 0;
}

long long
spy_json_integer(const struct spy_json_value *v, long long fallback)
{
    char tmp[32];
    char *end;
    long long value;

    if (v->kind != SPY_JSON_NUMBER || v->len >= sizeof(tmp)) {
        return fallback;
    }
    memcpy(tmp, v->start, v->len);
    tmp[v->len] = '\0';
    value = strtoll(tmp, &end, 10);
    return *end == '\0' ? value : fallback;
}
