/* A small, strict JSON reader for control messages from the adapter.
 *
 * Messages are short and few, so this favours being easy to fuzz over
 * being fast: it validates a whole text and hands out spans of the
 * original bytes; nothing is allocated. */
#ifndef SPY_JSON_H
#define SPY_JSON_H

#include <stddef.h>

enum spy_json_kind {
    SPY_JSON_NULL,
    SPY_JSON_FALSE,
    SPY_JSON_TRUE,
    SPY_JSON_NUMBER,
    SPY_JSON_STRING,     /* span includes the quotes */
    SPY_JSON_ARRAY,
    SPY_JSON_OBJECT,
};

struct spy_json_value {
    enum spy_json_kind kind;
    const char *start;
    size_t len;
};

#define SPY_JSON_MAX_DEPTH 64

/* Checks that s[0..n) is exactly one JSON value (surrounding white space
 * allowed) and describes it.  Returns 0, or -1 with a reason in *error. */
int spy_json_parse(const char *s, size_t n, struct spy_json_value *out,
                   const char **error);

/* Calls visit for each member of an object value (already validated), in
 * order; stops early and returns visit's value when it is non-zero. */
typedef int (*spy_json_member_fn)(const struct spy_json_value *key,
                                  const struct spy_json_value *value,
                                  void *ctx);
int spy_json_members(const struct spy_json_value *object,
                     spy_json_member_fn visit, void *ctx);

/* Calls visit (key NULL) for each element of an array value. */
int spy_json_elements(const struct spy_json_value *array,
                      spy_json_member_fn visit, void *ctx);

/* Decodes a string value into out as UTF-8 (NUL-terminated, cut to fit
 * out_size).  Returns the decoded length, or -1 if it is not a string. */
long spy_json_string(const struct spy_json_value *v, char *out,
                     size_t out_size);

/* 1 when a string value equals the given text exactly. */
int spy_json_string_is(const struct spy_json_value *v, const char *text);

/* The value of an integer-valued number, or `fallback`. */
long long spy_json_integer(const struct spy_json_value *v,
                           long long fallback);

#endif /* SPY_JSON_H */
