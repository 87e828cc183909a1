#include "names.h"

static const char *const texts[SPY_NAME_COUNT] = {
    "threading", "_active", "_name", "co_filename", "co_name",
    "co_firstlineno",
};
static PyObject *interned[SPY_NAME_COUNT];
static int ready;

int
spy_names_ready(void)
{
    if (ready || !spy_py.Py_IsInitialized()) {
        return ready;
    }
    for (int i = 0; i < SPY_NAME_COUNT; i++) {
        if (interned[i] == NULL) {
            interned[i] = spy_py.PyUnicode_InternFromString(texts[i]);
            if (interned[i] == NULL) {
                spy_py.PyErr_Clear();
                return 0;
            }
        }
    }
    ready = 1;
    return 1;
}

PyObject *
spy_name(enum spy_name name)
{
    return ready ? interned[name] : NULL;
}

PyObject *
spy_get_attr(PyObject *o, enum spy_name name)
{
    return ready ? spy_py.PyObject_GetAttr(o, interned[name])
                 : spy_py.PyObject_GetAttrString(o, texts[name]);
}
