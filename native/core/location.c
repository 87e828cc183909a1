#include "location.h"

#include "names.h"
#include "render.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Per code object, its file and function names as JSON text and the
 * lines of the last few instruction offsets: rendering them is most of
 * the cost of a record.  Entries are checked through a weak reference, so
 * a code object that died (and whose address came back) is never taken
 * for its successor, and none is kept alive. */
#define CODE_CACHE_SIZE 1024
#define LINES_PER_CODE 4

struct code_entry {
    PyObject *code;             /* identity only */
    PyObject *weak;
    char *file;
    size_t file_len;
    char *func;
    size_t func_len;
    int lasti[LINES_PER_CODE];
    int line[LINES_PER_CODE];
    unsigned int next_line;
};

static struct code_entry code_cache[CODE_CACHE_SIZE];
static int cache_enabled;

void
spy_location_use_cache(int enabled)
{
    cache_enabled = enabled;
}

/* A str attribute of the code object as JSON characters (malloc'd). */
static char *
json_attribute(PyObject *code, enum spy_name name, Py_ssize_t max,
               size_t *len)
{
    char data[SPY_RENDER_STR_MAX * 6];
    struct spy_buf b = {data, 0, sizeof(data), 0};
    PyObject *value = spy_get_attr(code, name);
    char *copy;

    if (value == NULL) {
        spy_py.PyErr_Clear();
        return NULL;
    }
    spy_render_str_body(&b, value, max, SPY_STYLE_JSON);
    spy_py.Py_DecRef(value);
    copy = malloc(b.len + 1);
    if (copy != NULL) {
        memcpy(copy, b.data, b.len);
        *len = b.len;
    }
    return copy;
}

static void
clear_entry(struct code_entry *e)
{
    if (e->weak != NULL) {
        spy_py.Py_DecRef(e->weak);
    }
    free(e->file);
    free(e->func);
    memset(e, 0, sizeof(*e));
}

/* The cache entry for a live code object, filled on first sight; NULL
 * when it cannot be cached. */
static struct code_entry *
cached_code(PyObject *code)
{
    struct code_entry *e;

    if (!cache_enabled || !spy_names_ready()) {
        return NULL;
    }
    e = &code_cache[((uintptr_t)code >> 4) % CODE_CACHE_SIZE];
    if (e->code == code && spy_py.PyWeakref_GetObject(e->weak) == code) {
        return e;
    }
    clear_entry(e);
    e->weak = spy_py.PyWeakref_NewRef(code, NULL);
    e->file = json_attribute(code, SPY_NAME_CO_FILENAME, SPY_RENDER_STR_MAX,
                             &e->file_len);
    e->func = json_attribute(code, SPY_NAME_CO_NAME, 200, &e->func_len);
    if (e->weak == NULL || e->file == NULL || e->func == NULL) {
        spy_py.PyErr_Clear();
        clear_entry(e);
        return NULL;
    }
    e->code = code;
    for (int i = 0; i < LINES_PER_CODE; i++) {
        e->lasti[i] = -1;
    }
    return e;
}

/* PyFrame_GetLineNumber scans the line table; an offset seen before
 * needs no scan (3.11+, where the offset can be asked for). */
static int
cached_line(struct code_entry *e, PyObject *frame)
{
    int lasti, line;

    if (spy_py.PyFrame_GetLasti == NULL) {
        return spy_py.PyFrame_GetLineNumber(frame);
    }
    lasti = spy_py.PyFrame_GetLasti(frame);
    for (int i = 0; i < LINES_PER_CODE; i++) {
        if (e->lasti[i] == lasti) {
            return e->line[i];
        }
    }
    line = spy_py.PyFrame_GetLineNumber(frame);
    e->lasti[e->next_line] = lasti;
    e->line[e->next_line] = line;
    e->next_line = (e->next_line + 1) % LINES_PER_CODE;
    return line;
}

/* The innermost frame (borrowed) and its code object (new reference). */
static PyObject *
current_code(PyObject **frame_out)
{
    PyObject *frame, *code;

    if (spy_pyapi_thread_state() == NULL) {
        return NULL;
    }
    frame = spy_py.PyEval_GetFrame();
    if (frame == NULL) {
        spy_py.PyErr_Clear();
        return NULL;
    }
    *frame_out = frame;
    /* 3.8 has no PyFrame_GetCode, and reading the attribute raises an
     * object.__getattr__ event, whose hooks are the program's: they would
     * run inside this hook, and a RecursionError they hit there (a hook
     * that audits recursively) would be swallowed here, leaving CPython
     * past its recursion limit for good ("Cannot recover from stack
     * overflow").  Its frame starts with PyObject_VAR_HEAD, f_back,
     * f_code: read it there. */
    if (spy_py.PyFrame_GetCode != NULL) {
        code = spy_py.PyFrame_GetCode(frame);
    }
    else {
        code = ((PyObject **)frame)[4];
        spy_py.Py_IncRef(code);
    }
    if (code == NULL) {
        spy_py.PyErr_Clear();
    }
    return code;
}

void
spy_location_put_json(struct spy_buf *b)
{
    PyObject *frame = NULL;
    PyObject *code = current_code(&frame);
    PyObject *file, *func;
    struct code_entry *e;
    int line;

    if (code == NULL) {
        return;
    }
    e = cached_code(code);
    if (e != NULL) {
        spy_buf_lit(b, ",\"file\":\"");
        spy_buf_put(b, e->file, e->file_len);
        spy_buf_lit(b, "\",\"line\":");
        spy_buf_put_i64(b, cached_line(e, frame));
        spy_buf_lit(b, ",\"func\":\"");
        spy_buf_put(b, e->func, e->func_len);
        spy_buf_putc(b, '"');
        spy_py.Py_DecRef(code);
        return;
    }
    line = spy_py.PyFrame_GetLineNumber(frame);
    file = spy_get_attr(code, SPY_NAME_CO_FILENAME);
    func = spy_get_attr(code, SPY_NAME_CO_NAME);
    spy_py.PyErr_Clear();
    if (file != NULL) {
        spy_buf_lit(b, ",\"file\":\"");
        spy_render_str_body(b, file, SPY_RENDER_STR_MAX, SPY_STYLE_JSON);
        spy_buf_lit(b, "\",\"line\":");
        spy_buf_put_i64(b, line);
        spy_py.Py_DecRef(file);
    }
    if (func != NULL) {
        spy_buf_lit(b, ",\"func\":\"");
        spy_render_str_body(b, func, 200, SPY_STYLE_JSON);
        spy_buf_putc(b, '"');
        spy_py.Py_DecRef(func);
    }
    spy_py.Py_DecRef(code);
}

static void
copy_text(PyObject *s, char *out, size_t size)
{
    struct spy_buf b = {out, 0, size - 1, 0};
    Py_ssize_t n;
    const char *utf8 = s != NULL ? spy_py.PyUnicode_AsUTF8AndSize(s, &n)
                                 : NULL;

    if (utf8 != NULL) {
        spy_buf_put(&b, utf8, (size_t)n < size - 1 ? (size_t)n : size - 1);
    }
    else if (s != NULL) {
        spy_py.PyErr_Clear();
        spy_render_str_body(&b, s, (Py_ssize_t)size / 8, SPY_STYLE_REPR);
    }
    out[b.len] = '\0';
}

int
spy_location_get(struct spy_location *out)
{
    PyObject *frame = NULL;
    PyObject *code = current_code(&frame);
    PyObject *file, *func;

    if (code == NULL) {
        return 0;
    }
    out->line = spy_py.PyFrame_GetLineNumber(frame);
    file = spy_get_attr(code, SPY_NAME_CO_FILENAME);
    func = spy_get_attr(code, SPY_NAME_CO_NAME);
    spy_py.PyErr_Clear();
    copy_text(file, out->file, sizeof(out->file));
    copy_text(func, out->func, sizeof(out->func));
    if (file != NULL) {
        spy_py.Py_DecRef(file);
    }
    if (func != NULL) {
        spy_py.Py_DecRef(func);
    }
    spy_py.Py_DecRef(code);
    return 1;
}
