#include "location.h"

#include "names.h"
#include "render.h"

#include <string.h>

/* The innermost frame's code object (new reference) and line. */
static PyObject *
current_code(int *line)
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
    *line = spy_py.PyFrame_GetLineNumber(frame);
    /* 3.8 has no PyFrame_GetCode; the attribute read raises a nested
     * object.__getattr__ event, which the hook's guard drops. */
    code = spy_py.PyFrame_GetCode != NULL
           ? spy_py.PyFrame_GetCode(frame)
           : spy_get_attr(frame, SPY_NAME_F_CODE);
    if (code == NULL) {
        spy_py.PyErr_Clear();
    }
    return code;
}

void
spy_location_put_json(struct spy_buf *b)
{
    int line = 0;
    PyObject *code = current_code(&line);
    PyObject *file, *func;

    if (code == NULL) {
        return;
    }
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
    PyObject *code = current_code(&out->line);
    PyObject *file, *func;

    if (code == NULL) {
        return 0;
    }
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
