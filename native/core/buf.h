/* A bounded byte buffer: appends never allocate and never overrun; when
 * the capacity is reached further appends are dropped and `full` is set,
 * so a hostile argument can slow a record down but never grow it. */
#ifndef SPY_BUF_H
#define SPY_BUF_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct spy_buf {
    char *data;
    size_t len;
    size_t cap;
    int full;
};

static inline void
spy_buf_put(struct spy_buf *b, const char *s, size_t n)
{
    if (n > b->cap - b->len) {
        b->full = 1;
        return;
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
}

static inline void
spy_buf_putc(struct spy_buf *b, char c)
{
    if (b->len == b->cap) {
        b->full = 1;
        return;
    }
    b->data[b->len++] = c;
}

#define spy_buf_lit(b, s) spy_buf_put((b), (s), sizeof(s) - 1)

/* The most decimal digits a uint64_t has. */
#define SPY_U64_DIGITS 20

/* Writes v's decimal digits to out (room for SPY_U64_DIGITS); returns how many. */
size_t spy_format_u64(char *out, uint64_t v);
/* Exactly eight digits of v < 10^8, leading zeros included. */
void spy_format_8_digits(char *out, uint32_t v);
void spy_buf_put_u64(struct spy_buf *b, uint64_t v);
void spy_buf_put_i64(struct spy_buf *b, int64_t v);
/* A JSON string literal, quotes included, from UTF-8 text. */
void spy_buf_put_json_string(struct spy_buf *b, const char *s, size_t n);
/* The same, without the quotes. */
void spy_buf_put_json_chars(struct spy_buf *b, const char *s, size_t n);

/* The length of the longest prefix of s[0..n) of at most max bytes that
 * does not end inside a UTF-8 character (inline: the hook cuts every
 * event name with it). */
static inline size_t
spy_utf8_prefix(const char *s, size_t n, size_t max)
{
    if (n <= max) {
        return n;
    }
    while (max > 0 && ((unsigned char)s[max] & 0xC0) == 0x80) {
        max--;
    }
    return max;
}

/* Code point cp as UTF-8 into out (room for 4); returns its length. */
static inline size_t
spy_utf8_encode(char *out, uint32_t cp)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* A JSON string literal of the NUL-terminated text s, at most max bytes
 * of it: when longer, cut at a character boundary and ended with "...". */
void spy_buf_put_json_text(struct spy_buf *b, const char *s, size_t max);

#endif /* SPY_BUF_H */
