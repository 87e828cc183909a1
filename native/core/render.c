#include "render.h"

#include "names.h"

#include <math.h>
#include <pthread.h>

struct walk {
    struct spy_buf *b;
    enum spy_style style;
    size_t budget;
    int depth;
    PyObject *open[SPY_RENDER_DEPTH_MAX];    /* containers being rendered */
};

static const char HEX[] = "0123456789abcdef";

static void render(struct walk *w, PyObject *o);

static void
put_hex_escape(struct spy_buf *b, char kind, uint32_t c, int digits)
{
    char e[6];

    e[0] = '\\';
    e[1] = kind;
    for (int i = 0; i < digits; i++) {
        e[2 + i] = HEX[(c >> (4 * (digits - 1 - i))) & 15];
    }
    spy_buf_put(b, e, (size_t)(2 + digits));
}

/* The quote repr() picks: ' unless the text has ' and no ". */
static char
repr_quote(const char *s, size_t n)
{
    return memchr(s, '\'', n) != NULL && memchr(s, '"', n) == NULL ? '"'
                                                                   : '\'';
}

/* Python repr escaping of ASCII specials and of the quote in use; other
 * UTF-8 passes through. */
static void
put_repr_chars(struct spy_buf *b, const char *s, size_t n, char quote)
{
    size_t run = 0;

    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];

        if (c >= 0x20 && c != 0x7F && c != (unsigned char)quote
            && c != '\\') {
            continue;
        }
        spy_buf_put(b, s + run, i - run);
        run = i + 1;
        switch (c) {
        case '\'': spy_buf_lit(b, "\\'"); break;
        case '"': spy_buf_lit(b, "\\\""); break;
        case '\\': spy_buf_lit(b, "\\\\"); break;
        case '\n': spy_buf_lit(b, "\\n"); break;
        case '\r': spy_buf_lit(b, "\\r"); break;
        case '\t': spy_buf_lit(b, "\\t"); break;
        default: put_hex_escape(b, 'x', c, 2); break;
        }
    }
    spy_buf_put(b, s + run, n - run);
}

/* UTF-8 text escaped for the style (quote: the repr quote in use). */
static void
put_text(struct spy_buf *b, const char *s, size_t n, enum spy_style style,
         char quote)
{
    if (style == SPY_STYLE_JSON) {
        spy_buf_put_json_chars(b, s, n);
    }
    else {
        put_repr_chars(b, s, n, quote);
    }
}

/* The slow path of a str with lone surrogates, which cannot be UTF-8:
 * its code points, encoded here a chunk at a time between surrogates,
 * each surrogate as a \udXXX escape. */
static void
put_code_points(struct spy_buf *b, const uint32_t *points, Py_ssize_t n,
                enum spy_style style, char quote)
{
    char chunk[256];
    size_t len = 0;

    for (Py_ssize_t i = 0; i < n; i++) {
        uint32_t c = points[i];

        if (c >= 0xD800 && c <= 0xDFFF) {
            if (len > 0) {
                put_text(b, chunk, len, style, quote);
                len = 0;
            }
            put_hex_escape(b, 'u', c, 4);
            continue;
        }
        if (len > sizeof(chunk) - 4) {
            put_text(b, chunk, len, style, quote);
            len = 0;
        }
        len += spy_utf8_encode(chunk + len, c);
    }
    put_text(b, chunk, len, style, quote);
}

/* The characters of a str of `total` characters, escaped for the style;
 * in the repr style with `quoted`, inside the quotes repr() would choose.
 * Returns total, or -1 (error cleared) when it cannot be read. */
static Py_ssize_t
put_str(struct spy_buf *b, PyObject *s, Py_ssize_t total,
        Py_ssize_t max_chars, enum spy_style style, int quoted)
{
    PyObject *part = NULL;
    const char *utf8;
    Py_ssize_t size;
    char quote = 0;

    if (total < 0) {
        spy_py.PyErr_Clear();
        return -1;
    }
    if (max_chars > SPY_RENDER_STR_MAX) {
        max_chars = SPY_RENDER_STR_MAX;
    }
    if (total > max_chars) {
        /* Only the shown prefix is ever encoded: a 100 MB string is not
         * copied. */
        part = spy_py.PyUnicode_Substring(s, 0, max_chars);
        if (part == NULL) {
            spy_py.PyErr_Clear();
            return -1;
        }
        s = part;
    }
    utf8 = spy_py.PyUnicode_AsUTF8AndSize(s, &size);
    if (utf8 != NULL) {
        quote = quoted && style == SPY_STYLE_REPR
                ? repr_quote(utf8, (size_t)size) : 0;
        if (quote) {
            spy_buf_putc(b, quote);
        }
        put_text(b, utf8, (size_t)size, style, quote);
    }
    else {
        uint32_t points[SPY_RENDER_STR_MAX];
        Py_ssize_t n = total < max_chars ? total : max_chars;

        spy_py.PyErr_Clear();
        quote = quoted && style == SPY_STYLE_REPR ? '\'' : 0;
        if (quote) {
            spy_buf_putc(b, quote);
        }
        if (spy_py.PyUnicode_AsUCS4(s, points, n, 0) != NULL) {
            put_code_points(b, points, n, style, quote);
        }
        else {
            spy_py.PyErr_Clear();
        }
    }
    if (quote) {
        spy_buf_putc(b, quote);
    }
    if (part != NULL) {
        spy_py.Py_DecRef(part);
    }
    return total;
}

Py_ssize_t
spy_render_str_body(struct spy_buf *b, PyObject *s, Py_ssize_t max_chars,
                    enum spy_style style)
{
    return put_str(b, s, spy_py.PyUnicode_GetLength(s), max_chars, style, 0);
}

void
spy_render_type_name(struct spy_buf *b, PyObject *type, int json)
{
    enum spy_style style = json ? SPY_STYLE_JSON : SPY_STYLE_REPR;

    if (spy_py._PyType_Name != NULL) {
        const char *name = spy_py._PyType_Name(type);

        if (json) {
            spy_buf_put_json_chars(b, name, strlen(name));
        }
        else {
            put_repr_chars(b, name, strlen(name), 0);
        }
        return;
    }
    PyObject *name = spy_py.PyType_GetName(type);
    if (name == NULL) {
        spy_py.PyErr_Clear();
        spy_buf_putc(b, '?');
        return;
    }
    spy_render_str_body(b, name, 200, style);
    spy_py.Py_DecRef(name);
}

/* {"$type":"name"} or <name>, with an optional extra JSON member. */
static void
render_opaque(struct walk *w, PyObject *type, const char *tag,
              const char *extra)
{
    int json = w->style == SPY_STYLE_JSON;

    if (json) {
        spy_buf_lit(w->b, "{\"");
        spy_buf_put(w->b, tag, strlen(tag));
        spy_buf_lit(w->b, "\":\"");
    }
    else {
        spy_buf_putc(w->b, '<');
    }
    spy_render_type_name(w->b, type, json);
    if (json) {
        spy_buf_putc(w->b, '"');
        if (extra != NULL) {
            spy_buf_put(w->b, extra, strlen(extra));
        }
        spy_buf_putc(w->b, '}');
    }
    else {
        spy_buf_putc(w->b, '>');
    }
}

static void
render_str(struct walk *w, PyObject *o, PyObject *type)
{
    struct spy_buf *b = w->b;
    int json = w->style == SPY_STYLE_JSON;
    size_t mark = b->len;
    Py_ssize_t total = spy_py.PyUnicode_GetLength(o);
    int truncated = total > SPY_RENDER_STR_MAX;

    if (json) {
        spy_buf_put(b, truncated ? "{\"$str\":\"" : "\"",
                    truncated ? 9 : 1);
    }
    if (put_str(b, o, total, SPY_RENDER_STR_MAX, w->style, 1) < 0) {
        b->len = mark;
        render_opaque(w, type, "$type", NULL);
        return;
    }
    if (json) {
        spy_buf_putc(b, '"');
    }
    if (!truncated) {
        return;
    }
    if (json) {
        spy_buf_lit(b, ",\"len\":");
        spy_buf_put_u64(b, (uint64_t)total);
        spy_buf_putc(b, '}');
    }
    else {
        spy_buf_lit(b, "...");
    }
}

/* The longest escape of one byte: \\xHH, a repr escape in JSON. */
#define BYTE_ESCAPE_MAX 5

/* What one byte becomes in a bytes repr body, padded to a word so a body
 * is built with one fixed-size copy a byte. */
struct byte_escape {
    char text[7];
    unsigned char len;
};

/* Per quote and style: repr in single quotes, repr in double quotes, and
 * JSON (the repr in double quotes, every backslash of it escaped once
 * more, the quote as JSON's). */
enum { ESCAPES_SINGLE, ESCAPES_DOUBLE, ESCAPES_JSON, ESCAPE_STYLES };
static struct byte_escape byte_escapes[ESCAPE_STYLES][256];
static pthread_once_t byte_escapes_once = PTHREAD_ONCE_INIT;

/* Printable ASCII as is, the rest escaped as repr() escapes it. */
static void
fill_byte_escapes(void)
{
    for (int style = 0; style < ESCAPE_STYLES; style++) {
        int json = style == ESCAPES_JSON;
        unsigned char quote = style == ESCAPES_SINGLE ? '\'' : '"';

        for (unsigned int c = 0; c < 256; c++) {
            struct byte_escape *e = &byte_escapes[style][c];
            size_t len = 0;

            if (c - 0x20u < 0x5Fu && c != '\\' && c != quote) {
                e->text[len++] = (char)c;
            }
            else if (c == quote) {
                e->text[len++] = '\\';
                e->text[len++] = (char)c;
            }
            else {
                e->text[len++] = '\\';
                if (json) {
                    e->text[len++] = '\\';
                }
                switch (c) {
                case '\\':
                    memcpy(e->text + len, "\\\\", 2);
                    len += json ? 2 : 1;
                    break;
                case '\n': e->text[len++] = 'n'; break;
                case '\r': e->text[len++] = 'r'; break;
                case '\t': e->text[len++] = 't'; break;
                default:
                    e->text[len++] = 'x';
                    e->text[len++] = HEX[c >> 4];
                    e->text[len++] = HEX[c & 15];
                    break;
                }
            }
            e->len = (unsigned char)len;
        }
    }
}

/* The body of a bytes repr of at most SPY_RENDER_BYTES_MAX bytes, in JSON
 * or in the repr style within `quote`.  Built in a local array and put at
 * once (as much of it as fits, like byte by byte). */
static void
put_bytes_body(struct spy_buf *b, const unsigned char *data, size_t n,
               char quote, int json)
{
    char out[SPY_RENDER_BYTES_MAX * BYTE_ESCAPE_MAX
             + sizeof(struct byte_escape)];
    size_t len = 0, room = b->cap - b->len;
    const struct byte_escape *escapes;

    pthread_once(&byte_escapes_once, fill_byte_escapes);
    escapes = byte_escapes[json ? ESCAPES_JSON
                           : quote == '\'' ? ESCAPES_SINGLE : ESCAPES_DOUBLE];
    for (size_t i = 0; i < n && i < SPY_RENDER_BYTES_MAX; i++) {
        const struct byte_escape *e = &escapes[data[i]];

        /* The whole entry: the bytes past its text are written over. */
        memcpy(out + len, e, sizeof(*e));
        len += e->len;
    }
    if (len > room) {
        len = room;
        b->full = 1;
    }
    memcpy(b->data + b->len, out, len);
    b->len += len;
}

static void
render_bytes(struct walk *w, const char *data, Py_ssize_t n, int bytearray)
{
    struct spy_buf *b = w->b;
    Py_ssize_t shown = n < SPY_RENDER_BYTES_MAX ? n : SPY_RENDER_BYTES_MAX;
    char quote;

    if (w->style == SPY_STYLE_JSON) {
        spy_buf_lit(b, "{\"$bytes\":\"");
        put_bytes_body(b, (const unsigned char *)data, (size_t)shown, '"', 1);
        spy_buf_lit(b, "\",\"len\":");
        spy_buf_put_u64(b, (uint64_t)n);
        spy_buf_putc(b, '}');
        return;
    }
    quote = memchr(data, '\'', (size_t)shown) != NULL
            && memchr(data, '"', (size_t)shown) == NULL ? '"' : '\'';
    if (bytearray) {
        spy_buf_lit(b, "bytearray(");
    }
    spy_buf_putc(b, 'b');
    spy_buf_putc(b, quote);
    put_bytes_body(b, (const unsigned char *)data, (size_t)shown, quote, 0);
    spy_buf_putc(b, quote);
    if (bytearray) {
        spy_buf_putc(b, ')');
    }
    if (shown < n) {
        spy_buf_lit(b, "...");
    }
}

/* {"$int":null,"bits":N}: an int too long to show in decimal. */
static void
render_bits(struct walk *w, size_t bits)
{
    if (w->style == SPY_STYLE_JSON) {
        spy_buf_lit(w->b, "{\"$int\":null,\"bits\":");
        if (bits == (size_t)-1) {
            spy_buf_lit(w->b, "null");
        }
        else {
            spy_buf_put_u64(w->b, bits);
        }
        spy_buf_putc(w->b, '}');
    }
    else {
        spy_buf_lit(w->b, "<int of ");
        spy_buf_put_u64(w->b, bits);
        spy_buf_lit(w->b, " bits>");
    }
}

/* The bits of an int past long long, (size_t)-1 when unknown. */
static size_t
int_bits(PyObject *o)
{
    size_t bits = spy_py._PyLong_NumBits != NULL
                  ? spy_py._PyLong_NumBits(o) : (size_t)-1;

    if (bits == (size_t)-1) {
        spy_py.PyErr_Clear();
    }
    return bits;
}

/* str(o) for an int, without the user code a subclass's __str__ would
 * run: int's own __repr__ slot is called directly. */
static PyObject *
decimal_digits(PyObject *o, PyObject *type)
{
    static PyObject *int_repr;

    if (type == spy_py.LongType) {
        return spy_py.PyObject_Str(o);
    }
    if (!spy_py.Py_IsInitialized()) {
        return NULL;
    }
    if (int_repr == NULL) {
        int_repr = spy_py.PyObject_GetAttrString(spy_py.LongType, "__repr__");
        if (int_repr == NULL) {
            return NULL;
        }
    }
    return spy_py.PyObject_CallFunctionObjArgs(int_repr, o, NULL);
}

/* An int of at most one digit, read from its layout where
 * spy_py_layout_known (one call fewer for the most common argument):
 * 3.8-3.11 keep the signed digit count in ob_size, 3.12+ keep it in
 * lv_tag above a reserved bit and two sign bits (0 positive, 1 zero,
 * 2 negative); the 30-bit digits follow.  0 when o is longer. */
static int
read_one_digit_int(PyObject *o, long long *value)
{
    intptr_t word = ((intptr_t *)o)[SPY_VAR_SIZE_WORD];
    const uint32_t *digits = (const uint32_t *)((PyObject **)o
                                                + SPY_VAR_SIZE_WORD + 1);

    if (spy_py_long_tagged) {
        if ((uintptr_t)word >= (2 << 3)) {
            return 0;
        }
        *value = (1 - (long long)(word & 3)) * digits[0];
        return 1;
    }
    if (word < -1 || word > 1) {
        return 0;
    }
    *value = word == 0 ? 0 : word * (long long)digits[0];
    return 1;
}

/* Whether read_one_digit_int may be used: the digit width is a build
 * option (15-bit digits read wrong), so it is tried once on known ints. */
static int
one_digit_ints_readable(void)
{
    static const long probes[] = {0, 7, -7, (1L << 29) + 12345,
                                  -((1L << 29) + 12345)};
    static int state;   /* 0 unknown, 1 readable, -1 not */
    int readable = spy_py_layout_known;

    if (state != 0) {
        return state == 1;
    }
    for (size_t i = 0; readable && i < sizeof(probes) / sizeof(probes[0]);
         i++) {
        PyObject *probe = spy_py.PyLong_FromLong(probes[i]);
        long long v;

        if (probe == NULL) {
            spy_py.PyErr_Clear();
            return 0;           /* out of memory: tried again next time */
        }
        readable = read_one_digit_int(probe, &v) && v == probes[i];
        spy_py.Py_DecRef(probe);
    }
    state = readable ? 1 : -1;
    return readable;
}

static void
render_int(struct walk *w, PyObject *o, PyObject *type)
{
    const long long exact = 1LL << 53;
    int overflow = 0;
    long long v;
    int json = w->style == SPY_STYLE_JSON;

    if (one_digit_ints_readable() && read_one_digit_int(o, &v)) {
        spy_buf_put_i64(w->b, v);
        return;
    }
    v = spy_py.PyLong_AsLongLongAndOverflow(o, &overflow);
    if (v == -1 && spy_py.PyErr_Occurred() != NULL) {
        spy_py.PyErr_Clear();
        render_opaque(w, type, "$type", NULL);
        return;
    }
    if (!overflow) {
        int tagged = json && (v >= exact || v <= -exact);

        if (tagged) {
            spy_buf_lit(w->b, "{\"$int\":\"");
        }
        spy_buf_put_i64(w->b, v);
        if (tagged) {
            spy_buf_lit(w->b, "\"}");
        }
        return;
    }
    /* Decimal conversion takes time quadratic in the digits: only up to
     * SPY_RENDER_INT_BITS_MAX. */
    size_t bits = int_bits(o);
    PyObject *digits = bits == (size_t)-1 || bits <= SPY_RENDER_INT_BITS_MAX
                       ? decimal_digits(o, type) : NULL;
    const char *text;
    Py_ssize_t n;

    if (digits == NULL
        || (text = spy_py.PyUnicode_AsUTF8AndSize(digits, &n)) == NULL) {
        /* Too long, or past sys.get_int_max_str_digits(). */
        spy_py.PyErr_Clear();
        if (digits != NULL) {
            spy_py.Py_DecRef(digits);
        }
        render_bits(w, bits);
        return;
    }
    if (json) {
        spy_buf_lit(w->b, "{\"$int\":\"");
    }
    spy_buf_put(w->b, text, (size_t)n);
    if (json) {
        spy_buf_lit(w->b, "\"}");
    }
    spy_py.Py_DecRef(digits);
}

static void
render_float(struct walk *w, PyObject *o, PyObject *type)
{
    double d = spy_py.PyFloat_AsDouble(o);
    const char *special = NULL;

    if (d == -1.0 && spy_py.PyErr_Occurred() != NULL) {
        spy_py.PyErr_Clear();
        render_opaque(w, type, "$type", NULL);
        return;
    }
    if (isnan(d)) {
        special = "nan";
    }
    else if (isinf(d)) {
        special = d > 0 ? "inf" : "-inf";
    }
    if (special != NULL) {
        if (w->style == SPY_STYLE_JSON) {
            spy_buf_lit(w->b, "{\"$float\":\"");
            spy_buf_put(w->b, special, strlen(special));
            spy_buf_lit(w->b, "\"}");
        }
        else {
            spy_buf_put(w->b, special, strlen(special));
        }
        return;
    }
    /* Py_DTSF_ADD_DOT_0 == 2: repr() style, shortest round-trip digits. */
    char *text = spy_py.PyOS_double_to_string(d, 'r', 0, 2, NULL);
    if (text == NULL) {
        spy_py.PyErr_Clear();
        spy_buf_lit(w->b, "null");
        return;
    }
    spy_buf_put(w->b, text, strlen(text));
    spy_py.PyMem_Free(text);
}

/* The marker that ends a container cut after `index` of `count` items. */
static void
put_more(struct walk *w, Py_ssize_t index, Py_ssize_t count)
{
    if (w->style == SPY_STYLE_JSON) {
        spy_buf_lit(w->b, "{\"$more\":");
        spy_buf_put_u64(w->b, (uint64_t)(count - index));
        spy_buf_putc(w->b, '}');
    }
    else {
        spy_buf_lit(w->b, "...");
    }
}

/* Separator and "more" marker between container items; returns 0 when
 * the item should be rendered, -1 when the container is cut here.
 * Inline: it runs for every item. */
static inline int
begin_item(struct walk *w, Py_ssize_t index, Py_ssize_t count)
{
    if (index > 0) {
        if (w->style == SPY_STYLE_JSON) {
            spy_buf_putc(w->b, ',');
        }
        else {
            spy_buf_lit(w->b, ", ");
        }
    }
    if (index < SPY_RENDER_ITEMS_MAX && w->b->len <= w->budget) {
        return 0;
    }
    put_more(w, index, count);
    return -1;
}

static void
render_sequence(struct walk *w, PyObject *o, int is_tuple)
{
    int json = w->style == SPY_STYLE_JSON;
    Py_ssize_t n = is_tuple ? spy_tuple_size(o) : spy_py.PyList_Size(o);

    spy_buf_putc(w->b, json || !is_tuple ? '[' : '(');
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item;

        if (begin_item(w, i, n) < 0) {
            break;
        }
        if (is_tuple) {
            render(w, spy_tuple_item(o, i));
        }
        else if (spy_py.PyList_GetItemRef != NULL) {
            /* Free-threaded builds: the list may change under us. */
            item = spy_py.PyList_GetItemRef(o, i);
            render(w, item);
            if (item != NULL) {
                spy_py.Py_DecRef(item);
            }
        }
        else {
            render(w, spy_py.PyList_GetItem(o, i));
        }
    }
    if (json || !is_tuple) {
        spy_buf_putc(w->b, ']');
    }
    else {
        spy_buf_put(w->b, n == 1 ? ",)" : ")", n == 1 ? 2 : 1);
    }
}

static void
render_dict(struct walk *w, PyObject *o)
{
    int json = w->style == SPY_STYLE_JSON;
    Py_ssize_t n = spy_py.PyDict_Size(o);
    Py_ssize_t pos = 0, i = 0;
    PyObject *key, *value;

    spy_buf_put(w->b, json ? "{\"$dict\":[" : "{", json ? 10 : 1);
    while (spy_py.PyDict_Next(o, &pos, &key, &value)) {
        if (begin_item(w, i, n) < 0) {
            break;
        }
        if (json) {
            spy_buf_putc(w->b, '[');
        }
        render(w, key);
        spy_buf_put(w->b, json ? "," : ": ", json ? 1 : 2);
        render(w, value);
        if (json) {
            spy_buf_putc(w->b, ']');
        }
        i++;
    }
    spy_buf_put(w->b, json ? "]}" : "}", json ? 2 : 1);
}

static void
render_code(struct walk *w, PyObject *o)
{
    int json = w->style == SPY_STYLE_JSON;
    PyObject *name = spy_get_attr(o, SPY_NAME_CO_NAME);
    PyObject *file = spy_get_attr(o, SPY_NAME_CO_FILENAME);
    PyObject *first = spy_get_attr(o, SPY_NAME_CO_FIRSTLINENO);
    int overflow;
    long long line = first != NULL
        ? spy_py.PyLong_AsLongLongAndOverflow(first, &overflow) : -1;

    spy_py.PyErr_Clear();
    spy_buf_put(w->b, json ? "{\"$code\":\"" : "<code object ",
                json ? 10 : 13);
    if (name != NULL) {
        spy_render_str_body(w->b, name, 200, w->style);
    }
    spy_buf_put(w->b, json ? "\",\"file\":\"" : " at ", json ? 10 : 4);
    if (file != NULL) {
        spy_render_str_body(w->b, file, SPY_RENDER_STR_MAX, w->style);
    }
    spy_buf_put(w->b, json ? "\",\"line\":" : ":", json ? 9 : 1);
    spy_buf_put_i64(w->b, line);
    spy_buf_putc(w->b, json ? '}' : '>');
    if (name != NULL) {
        spy_py.Py_DecRef(name);
    }
    if (file != NULL) {
        spy_py.Py_DecRef(file);
    }
    if (first != NULL) {
        spy_py.Py_DecRef(first);
    }
}

/* Containers: cycle and depth guards around the walk into them. */
static void
render_container(struct walk *w, PyObject *o, PyObject *type,
                 unsigned long flags)
{
    for (int i = 0; i < w->depth; i++) {
        if (w->open[i] == o) {
            if (w->style == SPY_STYLE_JSON) {
                render_opaque(w, type, "$cycle", NULL);
            }
            else {
                /* As repr() shows a container inside itself. */
                spy_buf_put(w->b, (flags & SPY_TPFLAGS_DICT_SUBCLASS) ? "{...}"
                                  : (flags & SPY_TPFLAGS_TUPLE_SUBCLASS)
                                  ? "(...)" : "[...]", 5);
            }
            return;
        }
    }
    if (w->depth == SPY_RENDER_DEPTH_MAX) {
        render_opaque(w, type, "$type", ",\"depth\":true");
        return;
    }
    w->open[w->depth++] = o;
    if (flags & SPY_TPFLAGS_DICT_SUBCLASS) {
        render_dict(w, o);
    }
    else {
        render_sequence(w, o, (flags & SPY_TPFLAGS_TUPLE_SUBCLASS) != 0);
    }
    w->depth--;
}

static void
render(struct walk *w, PyObject *o)
{
    int json = w->style == SPY_STYLE_JSON;
    PyObject *type;
    unsigned long flags;

    if (o == NULL || o == spy_py.None) {
        spy_buf_put(w->b, json ? "null" : "None", 4);
        spy_py.PyErr_Clear();
        return;
    }
    if (o == spy_py.True || o == spy_py.False) {
        if (json) {
            spy_buf_put(w->b, o == spy_py.True ? "true" : "false",
                        o == spy_py.True ? 4 : 5);
        }
        else {
            spy_buf_put(w->b, o == spy_py.True ? "True" : "False",
                        o == spy_py.True ? 4 : 5);
        }
        return;
    }
    type = spy_type_of(o);
    flags = spy_type_flags(type);
    if (flags & SPY_TPFLAGS_UNICODE_SUBCLASS) {
        render_str(w, o, type);
    }
    else if (flags & SPY_TPFLAGS_BYTES_SUBCLASS) {
        char *data;
        Py_ssize_t n;

        if (spy_py.PyBytes_AsStringAndSize(o, &data, &n) == 0) {
            render_bytes(w, data, n, 0);
        }
        else {
            spy_py.PyErr_Clear();
            render_opaque(w, type, "$type", NULL);
        }
    }
    else if (flags & SPY_TPFLAGS_LONG_SUBCLASS) {
        render_int(w, o, type);
    }
    else if (flags & (SPY_TPFLAGS_TUPLE_SUBCLASS | SPY_TPFLAGS_LIST_SUBCLASS
                      | SPY_TPFLAGS_DICT_SUBCLASS)) {
        render_container(w, o, type, flags);
    }
    else if (type == spy_py.FloatType
             || spy_py.PyType_IsSubtype(type, spy_py.FloatType)) {
        render_float(w, o, type);
    }
    else if (type == spy_py.ByteArrayType
             || spy_py.PyType_IsSubtype(type, spy_py.ByteArrayType)) {
        render_bytes(w, spy_py.PyByteArray_AsString(o),
                     spy_py.PyByteArray_Size(o), 1);
    }
    else if (type == spy_py.CodeType) {
        render_code(w, o);
    }
    else {
        render_opaque(w, type, "$type", NULL);
    }
}

void
spy_render_value(struct spy_buf *b, PyObject *value, enum spy_style style,
                 size_t budget)
{
    struct walk w = {b, style, budget, 0, {NULL}};

    render(&w, value);
}

void
spy_render_args(struct spy_buf *b, PyObject *args, enum spy_style style,
                size_t budget)
{
    struct walk w = {b, style, budget, 0, {NULL}};

    if (args == NULL) {
        spy_buf_put(b, style == SPY_STYLE_JSON ? "[]" : "()", 2);
        return;
    }
    /* The top-level tuple is the event's argument list, not a value: it
     * does not count towards the nesting depth. */
    render_sequence(&w, args, 1);
}
