/* The slice of the CPython C API the hooks use, resolved at run time.
 *
 * The launcher is built once and runs any CPython 3.8-3.13, so it cannot
 * include one version's Python.h.  It declares opaque objects and looks
 * every function up with dlsym().  Only functions are used: struct fields
 * and refcount macros differ between versions and free-threaded builds.
 */
#ifndef SPY_PYAPI_H
#define SPY_PYAPI_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct _object PyObject;
typedef ssize_t Py_ssize_t;
typedef int (*spy_audit_hook_fn)(const char *, PyObject *, void *);
typedef PyObject *(*spy_open_code_fn)(PyObject *, void *);
typedef int (*spy_trace_fn)(PyObject *, PyObject *, int, PyObject *);

/* PyTrace_LINE, stable since Python 2. */
#define SPY_TRACE_LINE 2

/* Type flags: stable values since Python 3.0. */
#define SPY_TPFLAGS_LONG_SUBCLASS    (1UL << 24)
#define SPY_TPFLAGS_LIST_SUBCLASS    (1UL << 25)
#define SPY_TPFLAGS_TUPLE_SUBCLASS   (1UL << 26)
#define SPY_TPFLAGS_BYTES_SUBCLASS   (1UL << 27)
#define SPY_TPFLAGS_UNICODE_SUBCLASS (1UL << 28)
#define SPY_TPFLAGS_DICT_SUBCLASS    (1UL << 29)

/* X(required, return type, name, parameter list) */
#define SPY_PYAPI_FUNCTIONS(X) \
    X(1, const char *, Py_GetVersion, (void)) \
    X(1, int, Py_BytesMain, (int, char **)) \
    X(1, int, Py_IsInitialized, (void)) \
    X(1, int, PySys_AddAuditHook, (spy_audit_hook_fn, void *)) \
    X(1, int, PyFile_SetOpenCodeHook, (spy_open_code_fn, void *)) \
    X(1, PyObject *, PyImport_GetModuleDict, (void)) \
    X(1, void, Py_IncRef, (PyObject *)) \
    X(1, void, Py_DecRef, (PyObject *)) \
    X(1, PyObject *, PyObject_Type, (PyObject *)) \
    X(1, unsigned long, PyType_GetFlags, (PyObject *)) \
    X(1, int, PyType_IsSubtype, (PyObject *, PyObject *)) \
    X(0, const char *, _PyType_Name, (PyObject *)) \
    X(0, PyObject *, PyType_GetName, (PyObject *)) \
    X(1, PyObject *, PyObject_GetAttrString, (PyObject *, const char *)) \
    X(1, PyObject *, PyObject_GetAttr, (PyObject *, PyObject *)) \
    X(1, PyObject *, PyObject_GenericGetDict, (PyObject *, void *)) \
    X(1, PyObject *, PyObject_Str, (PyObject *)) \
    X(1, Py_ssize_t, PyTuple_Size, (PyObject *)) \
    X(1, PyObject *, PyTuple_GetItem, (PyObject *, Py_ssize_t)) \
    X(1, Py_ssize_t, PyList_Size, (PyObject *)) \
    X(1, PyObject *, PyList_GetItem, (PyObject *, Py_ssize_t)) \
    X(0, PyObject *, PyList_GetItemRef, (PyObject *, Py_ssize_t)) \
    X(1, Py_ssize_t, PyDict_Size, (PyObject *)) \
    X(1, int, PyDict_Next, \
      (PyObject *, Py_ssize_t *, PyObject **, PyObject **)) \
    X(1, PyObject *, PyDict_GetItem, (PyObject *, PyObject *)) \
    X(1, PyObject *, PyDict_GetItemWithError, (PyObject *, PyObject *)) \
    X(1, PyObject *, PyModule_GetDict, (PyObject *)) \
    X(1, const char *, PyUnicode_AsUTF8AndSize, (PyObject *, Py_ssize_t *)) \
    X(1, Py_ssize_t, PyUnicode_GetLength, (PyObject *)) \
    X(1, PyObject *, PyUnicode_Substring, \
      (PyObject *, Py_ssize_t, Py_ssize_t)) \
    X(1, uint32_t *, PyUnicode_AsUCS4, \
      (PyObject *, uint32_t *, Py_ssize_t, int)) \
    X(1, PyObject *, PyUnicode_InternFromString, (const char *)) \
    X(1, int, PyBytes_AsStringAndSize, (PyObject *, char **, Py_ssize_t *)) \
    X(1, char *, PyByteArray_AsString, (PyObject *)) \
    X(1, Py_ssize_t, PyByteArray_Size, (PyObject *)) \
    X(1, long long, PyLong_AsLongLongAndOverflow, (PyObject *, int *)) \
    X(1, PyObject *, PyLong_FromUnsignedLong, (unsigned long)) \
    X(1, PyObject *, PyLong_FromLong, (long)) \
    X(0, size_t, _PyLong_NumBits, (PyObject *)) \
    X(1, double, PyFloat_AsDouble, (PyObject *)) \
    X(1, char *, PyOS_double_to_string, (double, char, int, int, int *)) \
    X(1, void, PyMem_Free, (void *)) \
    X(1, PyObject *, PyErr_Occurred, (void)) \
    X(1, void, PyErr_Fetch, (PyObject **, PyObject **, PyObject **)) \
    X(1, void, PyErr_Restore, (PyObject *, PyObject *, PyObject *)) \
    X(1, void, PyErr_NormalizeException, \
      (PyObject **, PyObject **, PyObject **)) \
    X(1, void, PyErr_Clear, (void)) \
    X(1, PyObject *, PyEval_GetFrame, (void)) \
    X(1, int, PyFrame_GetLineNumber, (PyObject *)) \
    X(0, PyObject *, PyFrame_GetCode, (PyObject *)) \
    X(0, PyObject *, PyFrame_GetBack, (PyObject *)) \
    X(1, PyObject *, PySys_GetObject, (const char *)) \
    X(0, void *, PyThreadState_GetUnchecked, (void)) \
    X(0, void *, _PyThreadState_UncheckedGet, (void)) \
    X(1, unsigned long, PyThread_get_thread_ident, (void)) \
    X(1, PyObject *, PyUnicode_FromString, (const char *)) \
    X(1, PyObject *, PyUnicode_FromStringAndSize, (const char *, Py_ssize_t)) \
    X(1, PyObject *, PyObject_CallFunctionObjArgs, (PyObject *, ...)) \
    X(1, int, PyObject_IsTrue, (PyObject *)) \
    X(1, PyObject *, Py_CompileString, (const char *, const char *, int)) \
    X(1, PyObject *, PyEval_EvalCode, (PyObject *, PyObject *, PyObject *)) \
    X(1, PyObject *, PyDict_New, (void)) \
    X(1, PyObject *, PyEval_GetBuiltins, (void)) \
    X(1, int, PyDict_SetItemString, (PyObject *, const char *, PyObject *)) \
    X(1, PyObject *, PyDict_GetItemString, (PyObject *, const char *)) \
    X(1, int, PyDict_SetItem, (PyObject *, PyObject *, PyObject *)) \
    X(1, int, PyDict_DelItem, (PyObject *, PyObject *)) \
    X(1, PyObject *, PyFunction_GetGlobals, (PyObject *)) \
    X(1, void, PyErr_SetString, (PyObject *, const char *)) \
    X(1, void *, PyEval_SaveThread, (void)) \
    X(1, void, PyEval_RestoreThread, (void *)) \
    X(1, int, PySys_Audit, (const char *, const char *, ...)) \
    X(1, void, PyEval_SetTrace, (spy_trace_fn, PyObject *)) \
    X(1, int, Py_AddPendingCall, (int (*)(void *), void *)) \
    X(1, PyObject *, PyUnicode_EncodeFSDefault, (PyObject *)) \
    X(1, PyObject *, PyUnicode_DecodeFSDefaultAndSize, \
      (const char *, Py_ssize_t)) \
    X(1, PyObject *, PyBytes_FromStringAndSize, (const char *, Py_ssize_t)) \
    X(1, PyObject *, PyImport_ImportModule, (const char *)) \
    X(1, PyObject *, PyErr_SetFromErrnoWithFilename, (PyObject *, const char *)) \
    X(1, PyObject *, PyWeakref_NewRef, (PyObject *, PyObject *)) \
    X(1, PyObject *, PyWeakref_GetObject, (PyObject *)) \
    X(0, int, PyFrame_GetLasti, (PyObject *)) \
    X(0, PyObject *, PyUnstable_InterpreterFrame_GetCode, (void *)) \
    X(0, int, PyUnstable_InterpreterFrame_GetLasti, (void *)) \
    X(0, int, PyUnstable_InterpreterFrame_GetLine, (void *)) \
    X(1, int, PyGILState_Ensure, (void)) \
    X(1, int, PySys_SetObject, (const char *, PyObject *)) \
    X(1, PyObject *, PyUnicode_DecodeFSDefault, (const char *)) \
    X(1, void, PyGILState_Release, (int))

/* Objects: types and singletons, looked up by their exported names. */
#define SPY_PYAPI_OBJECTS(X) \
    X(None, _Py_NoneStruct) \
    X(True, _Py_TrueStruct) \
    X(False, _Py_FalseStruct) \
    X(LongType, PyLong_Type) \
    X(FloatType, PyFloat_Type) \
    X(ByteArrayType, PyByteArray_Type) \
    X(CodeType, PyCode_Type) \
    X(ModuleType, PyModule_Type)

/* Variables holding object pointers (exception types). */
#define SPY_PYAPI_POINTERS(X) \
    X(PermissionError, PyExc_PermissionError) \
    X(OSError, PyExc_OSError) \
    X(SystemExit, PyExc_SystemExit)

/* Py_file_input and Py_eval_input, stable since Python 2. */
#define SPY_FILE_INPUT 257
#define SPY_EVAL_INPUT 258

#define SPY_DECLARE_FUNCTION(required, ret, name, params) ret (*name) params;
#define SPY_DECLARE_OBJECT(field, symbol) PyObject *field;

struct spy_pyapi {
    SPY_PYAPI_FUNCTIONS(SPY_DECLARE_FUNCTION)
    SPY_PYAPI_OBJECTS(SPY_DECLARE_OBJECT)
    SPY_PYAPI_POINTERS(SPY_DECLARE_OBJECT)
};

#undef SPY_DECLARE_FUNCTION
#undef SPY_DECLARE_OBJECT

/* The one table every part of the hooks reads; filled by spy_pyapi_load. */
extern struct spy_pyapi spy_py;

/* Resolve everything from a dlopen() handle (or RTLD_DEFAULT).  Returns 0,
 * or -1 with the name of the first missing required symbol in *missing. */
int spy_pyapi_load(void *handle, const char **missing);

/* Whether the running interpreter is a GIL build of CPython 3.8-3.13,
 * whose fixed object layouts the hot path may read directly instead of
 * calling a function (each such read says which field it takes). */
extern int spy_py_layout_known;
/* 3.12+: an int's sign and digit count are in lv_tag, not ob_size. */
extern int spy_py_long_tagged;
/* 3.12 and 3.13, where a thread's frames are a list of interpreter frames
 * that can be walked without making frame objects (location.c): the byte
 * offset of PyCodeObject's _co_firsttraceable (cpython/code.h); 0 on
 * other versions. */
extern int spy_py_code_firsttraceable_at;
void spy_pyapi_set_runtime(const char *python_version, int free_threaded);

/* The fields read where spy_py_layout_known, by their index in
 * pointer-sized words: PyObject.ob_type, PyVarObject.ob_size, a tuple's
 * ob_item[0] and PyTypeObject.tp_flags (an unsigned long after the
 * variable-size header and eighteen pointer-sized slots). */
#define SPY_OBJECT_TYPE_WORD 1
#define SPY_VAR_SIZE_WORD 2
#define SPY_TUPLE_ITEMS_WORD 3
#define SPY_TYPE_FLAGS_WORD 21

/* o's type, borrowed: o holds a reference to it. */
static inline PyObject *
spy_type_of(PyObject *o)
{
    PyObject *type;

    if (spy_py_layout_known) {
        return ((PyObject **)o)[SPY_OBJECT_TYPE_WORD];
    }
    type = spy_py.PyObject_Type(o);
    spy_py.Py_DecRef(type);
    return type;
}

static inline unsigned long
spy_type_flags(PyObject *type)
{
    return spy_py_layout_known
        ? ((unsigned long *)type)[SPY_TYPE_FLAGS_WORD]
        : spy_py.PyType_GetFlags(type);
}

/* The size of a tuple (or tuple subclass) and its item i < size,
 * borrowed. */
static inline Py_ssize_t
spy_tuple_size(PyObject *tuple)
{
    return spy_py_layout_known
        ? ((Py_ssize_t *)tuple)[SPY_VAR_SIZE_WORD]
        : spy_py.PyTuple_Size(tuple);
}

static inline PyObject *
spy_tuple_item(PyObject *tuple, Py_ssize_t i)
{
    return spy_py_layout_known
        ? ((PyObject **)tuple)[SPY_TUPLE_ITEMS_WORD + i]
        : spy_py.PyTuple_GetItem(tuple, i);
}

/* The current thread's state, or NULL before start-up, after shutdown
 * and in threads Python does not know. */
void *spy_pyapi_thread_state(void);

#endif /* SPY_PYAPI_H */
