#include "pyapi.h"

#include <dlfcn.h>
#include <stdio.h>

struct spy_pyapi spy_py;
int spy_py_layout_known;
int spy_py_long_tagged;
int spy_py_code_firsttraceable_at;

void
spy_pyapi_set_runtime(const char *python_version, int free_threaded)
{
    int major = 0, minor = 0;

    spy_py_layout_known = !free_threaded
        && sscanf(python_version, "%d.%d", &major, &minor) == 2
        && major == 3 && minor >= 8 && minor <= 13;
    spy_py_long_tagged = spy_py_layout_known && minor >= 12;
    spy_py_code_firsttraceable_at = !spy_py_layout_known ? 0
        : minor == 12 ? 176 : minor == 13 ? 184 : 0;
}

int
spy_pyapi_load(void *handle, const char **missing)
{
    void *sym;

#define SPY_LOAD_FUNCTION(required, ret, name, params) \
    sym = dlsym(handle, #name); \
    if (sym == NULL && (required)) { \
        *missing = #name; \
        return -1; \
    } \
    *(void **)&spy_py.name = sym;
#define SPY_LOAD_OBJECT(field, symbol) \
    sym = dlsym(handle, #symbol); \
    if (sym == NULL) { \
        *missing = #symbol; \
        return -1; \
    } \
    spy_py.field = (PyObject *)sym;

#define SPY_LOAD_POINTER(field, symbol) \
    sym = dlsym(handle, #symbol); \
    if (sym == NULL) { \
        *missing = #symbol; \
        return -1; \
    } \
    spy_py.field = *(PyObject **)sym;

    SPY_PYAPI_FUNCTIONS(SPY_LOAD_FUNCTION)
    SPY_PYAPI_OBJECTS(SPY_LOAD_OBJECT)
    SPY_PYAPI_POINTERS(SPY_LOAD_POINTER)
#undef SPY_LOAD_FUNCTION
#undef SPY_LOAD_OBJECT
#undef SPY_LOAD_POINTER

    if (spy_py._PyType_Name == NULL && spy_py.PyType_GetName == NULL) {
        *missing = "PyType_GetName";
        return -1;
    }
    if (spy_py.PyThreadState_GetUnchecked == NULL) {
        spy_py.PyThreadState_GetUnchecked = spy_py._PyThreadState_UncheckedGet;
    }
    if (spy_py.PyThreadState_GetUnchecked == NULL) {
        *missing = "PyThreadState_GetUnchecked";
        return -1;
    }
    return 0;
}

void *
spy_pyapi_thread_state(void)
{
    return spy_py.PyThreadState_GetUnchecked();
}
