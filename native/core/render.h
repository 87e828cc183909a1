/* Rendering audit-event arguments without running user code.
 *
 * Two styles share one walk over the value: JSON (the event record of
 * docs/protocol.md) and Python-repr-like text (the --stderr and --minimal
 * log modes).  Only C API functions that never call back into Python code
 * are used: no __repr__, no __str__ except on exact ints, no iteration of
 * subclasses. */
#ifndef SPY_RENDER_H
#define SPY_RENDER_H

#include "buf.h"
#include "pyapi.h"

enum spy_style {
    SPY_STYLE_JSON,
    SPY_STYLE_REPR,
};

#define SPY_RENDER_STR_MAX 1024
#define SPY_RENDER_BYTES_MAX 256
#define SPY_RENDER_ITEMS_MAX 32
#define SPY_RENDER_DEPTH_MAX 4
/* Longer ints show their size in bits, not their decimal digits. */
#define SPY_RENDER_INT_BITS_MAX 1024

/* Renders the event's argument tuple (NULL renders as empty) as a JSON
 * array or a Python tuple.  Stops adding items once b->len passes
 * `budget`, leaving a "more" marker, so the output stays bounded. */
void spy_render_args(struct spy_buf *b, PyObject *args, enum spy_style style,
                     size_t budget);

/* One value, same rules. */
void spy_render_value(struct spy_buf *b, PyObject *value,
                      enum spy_style style, size_t budget);

/* The characters of a str (no quotes), escaped for the style, at most
 * max_chars (capped at SPY_RENDER_STR_MAX).  Lone surrogates survive as
 * \udXXX escapes.  Returns the string's whole length, or -1 (error
 * cleared) when it cannot be read. */
Py_ssize_t spy_render_str_body(struct spy_buf *b, PyObject *s,
                               Py_ssize_t max_chars, enum spy_style style);

/* The name of an object's type, for "<TypeName>" renderings. */
void spy_render_type_name(struct spy_buf *b, PyObject *type, int json);

#endif /* SPY_RENDER_H */
