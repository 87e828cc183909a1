#include "buf.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

/* "00" "01" ... "99": two digits per division. */
static const char DIGIT_PAIRS[] =
    "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
    "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
    "8081828384858687888990919293949596979899";

/* The digits of v < 10^8 ending at `end`, written backwards two at a time
 * in 32-bit arithmetic. */
static void
put_small(char *end, uint32_t v)
{
    char *p = end;

    while (v >= 100) {
        p -= 2;
        memcpy(p, DIGIT_PAIRS + 2 * (v % 100), 2);
        v /= 100;
    }
    if (v >= 10) {
        memcpy(p - 2, DIGIT_PAIRS + 2 * v, 2);
    }
    else {
        p[-1] = (char)('0' + v);
    }
}

static const uint32_t POWERS_OF_TEN[] = {
    1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000,
    1000000000,
};

/* From the bit length: 1233 / 4096 is just under log10(2), so `guess` is
 * the digit count or one short of it. */
static size_t
small_digit_count(uint32_t v)
{
    uint32_t nonzero = v | 1;
    size_t guess = (size_t)((32 - __builtin_clz(nonzero)) * 1233) >> 12;

    return guess + (nonzero >= POWERS_OF_TEN[guess]);
}

void
spy_format_8_digits(char *out, uint32_t v)
{
    uint32_t high = v / 10000, low = v % 10000;

    memcpy(out, DIGIT_PAIRS + 2 * (high / 100), 2);
    memcpy(out + 2, DIGIT_PAIRS + 2 * (high % 100), 2);
    memcpy(out + 4, DIGIT_PAIRS + 2 * (low / 100), 2);
    memcpy(out + 6, DIGIT_PAIRS + 2 * (low % 100), 2);
}

size_t
spy_format_u64(char *out, uint64_t v)
{
    const uint64_t e8 = 100000000u;
    size_t n;

    if (v < e8) {
        n = small_digit_count((uint32_t)v);
        put_small(out + n, (uint32_t)v);
        return n;
    }
    /* Eight digits at a time below the first: one 64-bit division each. */
    n = spy_format_u64(out, v / e8);
    spy_format_8_digits(out + n, (uint32_t)(v % e8));
    return n + 8;
}

void
spy_buf_put_u64(struct spy_buf *b, uint64_t v)
{
    if (b->cap - b->len < SPY_U64_DIGITS) {
        char tmp[SPY_U64_DIGITS];
        size_t n = spy_format_u64(tmp, v);

        if (n > b->cap - b->len) {
            b->full = 1;
            return;
        }
        memcpy(b->data + b->len, tmp, n);
        b->len += n;
        return;
    }
    b->len += spy_format_u64(b->data + b->len, v);
}

void
spy_buf_put_i64(struct spy_buf *b, int64_t v)
{
    if (v < 0) {
        spy_buf_putc(b, '-');
        spy_buf_put_u64(b, (uint64_t)0 - (uint64_t)v);
    }
    else {
        spy_buf_put_u64(b, (uint64_t)v);
    }
}

/* What spy_buf_put_json_chars writes for a byte: 0 copies it, 'u' makes a
 * \u00XX escape, 'E' is 0xE2, the first byte of U+2028 and U+2029 (JSON
 * allows them raw, JavaScript source and some line splitters do not);
 * anything else is the letter after the backslash. */
#define JSON_U4 'u', 'u', 'u', 'u'
static const unsigned char JSON_ESCAPE[256] = {
    JSON_U4, JSON_U4, 'u', 't', 'n', 'u', 'u', 'r', 'u', 'u',
    JSON_U4, JSON_U4, JSON_U4, JSON_U4,
    ['"'] = '"', ['\\'] = '\\', [0xE2] = 'E',
};
#undef JSON_U4

#define BYTES_01 0x0101010101010101ULL
#define BYTES_80 0x8080808080808080ULL

/* Nonzero when one of the 8 bytes in w is a JSON_ESCAPE one (and, past
 * such a byte, perhaps for others: the caller looks byte by byte). */
static inline uint64_t
json_escape_in(uint64_t w)
{
    uint64_t quote = w ^ (BYTES_01 * '"');
    uint64_t backslash = w ^ (BYTES_01 * '\\');
    uint64_t e2 = w ^ (BYTES_01 * 0xE2);

    return (((w - BYTES_01 * 0x20) & ~w)
            | ((quote - BYTES_01) & ~quote)
            | ((backslash - BYTES_01) & ~backslash)
            | ((e2 - BYTES_01) & ~e2)) & BYTES_80;
}

#if defined(__SSE2__)
/* A bit for each of the 16 bytes at p that is a JSON_ESCAPE one: '"',
 * '\\', below 0x20 (the unsigned minimum with 0x1F is itself), or 0xE2. */
static inline unsigned int
json_escapes_in_16(const char *p)
{
    __m128i v = _mm_loadu_si128((const __m128i *)p);
    __m128i special = _mm_or_si128(
        _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('"')),
                     _mm_cmpeq_epi8(v, _mm_set1_epi8('\\'))),
        _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8((char)0xE2)),
                     _mm_cmpeq_epi8(_mm_min_epu8(v, _mm_set1_epi8(0x1F)), v)));

    return (unsigned int)_mm_movemask_epi8(special);
}
#endif

/* The first i' >= i with s[i'] to escape (or n): 16 bytes a step where
 * SSE2 is (x86-64 always), else 8. */
static inline size_t
json_safe_end(const char *s, size_t i, size_t n)
{
    uint64_t w;

#if defined(__SSE2__)
    if (n >= 16) {
        unsigned int found;

        while (n - i >= 16) {
            found = json_escapes_in_16(s + i);
            if (found != 0) {
                return i + (size_t)__builtin_ctz(found);
            }
            i += 16;
        }
        if (i == n) {
            return n;
        }
        /* The last 16 bytes, less those before i (clean, or escaped
         * already). */
        found = json_escapes_in_16(s + n - 16) >> (i - (n - 16));
        return found != 0 ? i + (size_t)__builtin_ctz(found) : n;
    }
#endif
    while (n - i >= 8) {
        memcpy(&w, s + i, 8);
        if (json_escape_in(w)) {
            break;
        }
        i += 8;
    }
    if (i < n && n - i < 8 && n >= 8) {
        /* The last 8 bytes: those before i are clean or escaped. */
        memcpy(&w, s + n - 8, 8);
        if (!json_escape_in(w)) {
            return n;
        }
    }
    while (i < n && JSON_ESCAPE[(unsigned char)s[i]] == 0) {
        i++;
    }
    return i;
}

/* Copies runs of safe bytes at once; escapes quotes, backslashes, control
 * characters, and U+2028/U+2029. */
void
spy_buf_put_json_chars(struct spy_buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    size_t run = 0, i = 0;

    while ((i = json_safe_end(s, i, n)) < n) {
        unsigned char c = (unsigned char)s[i];
        char e[6] = {'\\', (char)JSON_ESCAPE[c]};
        size_t len = 2, skip = 1;

        if (e[1] == 'E') {
            if (n - i < 3 || (unsigned char)s[i + 1] != 0x80
                || ((unsigned char)s[i + 2] & 0xFE) != 0xA8) {
                i++;
                continue;
            }
            memcpy(e + 1, (unsigned char)s[i + 2] == 0xA8 ? "u2028" : "u2029",
                   5);
            len = 6;
            skip = 3;
        }
        else if (e[1] == 'u') {
            e[2] = '0';
            e[3] = '0';
            e[4] = hex[c >> 4];
            e[5] = hex[c & 15];
            len = 6;
        }
        spy_buf_put(b, s + run, i - run);
        spy_buf_put(b, e, len);
        i += skip;
        run = i;
    }
    spy_buf_put(b, s + run, n - run);
}

void
spy_buf_put_json_string(struct spy_buf *b, const char *s, size_t n)
{
    spy_buf_putc(b, '"');
    spy_buf_put_json_chars(b, s, n);
    spy_buf_putc(b, '"');
}

void
spy_buf_put_json_text(struct spy_buf *b, const char *s, size_t max)
{
    size_t n = strnlen(s, max + 1);
    size_t cut = spy_utf8_prefix(s, n, max);

    spy_buf_putc(b, '"');
    spy_buf_put_json_chars(b, s, cut);
    if (cut < n) {
        spy_buf_lit(b, "...");
    }
    spy_buf_putc(b, '"');
}
