/* libFuzzer target: core/render.c, the argument renderer, over real
 * Python objects.
 *
 * libpython is loaded the way the launcher loads it (dlopen, then
 * spy_pyapi_load), from SPYTHON_FUZZ_LIBPYTHON or else the newest pyenv
 * CPython 3.8-3.13 found, with PYTHONMALLOC=malloc so that ASan sees every
 * object (a reference dropped too early is a use-after-free, one never
 * dropped a leak).  Python starts once; each input builds an object graph
 * without running user code:
 *
 *   - first byte even: a small stack machine (decode_objects below) builds
 *     None/bools/ints (small, +-2^53 edges, huge)/floats (any bit
 *     pattern)/str (lone surrogates, U+2028, astral, controls, quotes,
 *     long)/bytes/bytearray/tuples/lists/dicts, shared references, self-
 *     references, deep nesting, instances of subclasses whose every dunder
 *     counts a call, opaque objects of types with odd names, code objects;
 *   - first byte odd: marshal.loads of the rest (cycles through marshal's
 *     references, sets, complex...), when marshal_ok() finds its sizes
 *     sane and no code object in it; the stack machine otherwise.
 *
 * Then spy_render_args and spy_render_value run in both styles into heap
 * buffers of exactly their capacity, with the launcher's capacities and
 * budgets (record: 72 KiB left for 56 KiB of arguments) and with small
 * ones taken from the input.  Checked besides what ASan/UBSan catch:
 *   - no user code ran (no counting dunder was called);
 *   - the output never passes the buffer, and in the JSON style it is
 *     valid JSON whenever the buffer did not fill;
 *   - with the launcher's record capacity the buffer never fills (hooks.c
 *     relies on it: "Cannot happen within the budget");
 *   - a JSON-rendered str decodes back to the str (lone surrogates as
 *     U+FFFD, adjacent surrogates as JSON readers pair them);
 *   - the repr style equals repr() for plain values (exact builtin types,
 *     ASCII str, within the item, depth and length limits).
 *
 * Run: make -C native fuzz && dist-asan/fuzz/fuzz_render native/fuzz/corpus/fuzz_render
 */
#define _GNU_SOURCE
#include "../core/buf.h"
#include "../core/json.h"
#include "../core/pyapi.h"
#include "../core/render.h"

#include <dirent.h>
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CHECK(cond)                                                        \
    do {                                                                   \
        if (!(cond)) {                                                     \
            fprintf(stderr, "fuzz_render: check failed at %s:%d: %s\n",    \
                    __FILE__, __LINE__, #cond);                            \
            abort();                                                       \
        }                                                                  \
    } while (0)

/* hooks.c: the record's capacity and the arguments' budget in it; the
 * rest of a record (pid, thread, location: file 1024 chars escaped...)
 * takes at most about 8 KiB before the arguments. */
#define RECORD_CAPACITY (80 * 1024)
#define ARGS_BUDGET (56 * 1024)
#define RECORD_ROOM (RECORD_CAPACITY - 8 * 1024)

#define POOL_MAX 64

/* The C API this harness needs beyond the launcher's table. */
#define FUZZ_API(X) \
    X(void, Py_InitializeEx, (int)) \
    X(int, PyRun_SimpleStringFlags, (const char *, void *)) \
    X(PyObject *, PyImport_AddModule, (const char *)) \
    X(PyObject *, PyTuple_New, (Py_ssize_t)) \
    X(int, PyTuple_SetItem, (PyObject *, Py_ssize_t, PyObject *)) \
    X(PyObject *, PyList_New, (Py_ssize_t)) \
    X(int, PyList_Append, (PyObject *, PyObject *)) \
    X(int, PyList_SetSlice, (PyObject *, Py_ssize_t, Py_ssize_t, PyObject *)) \
    X(int, PyDict_SetItem, (PyObject *, PyObject *, PyObject *)) \
    X(void, PyDict_Clear, (PyObject *)) \
    X(PyObject *, PyLong_FromLongLong, (long long)) \
    X(PyObject *, PyNumber_Lshift, (PyObject *, PyObject *)) \
    X(PyObject *, PyNumber_Negative, (PyObject *)) \
    X(PyObject *, PyNumber_Subtract, (PyObject *, PyObject *)) \
    X(PyObject *, PyFloat_FromDouble, (double)) \
    X(PyObject *, PyUnicode_FromKindAndData, (int, const void *, Py_ssize_t)) \
    X(PyObject *, PyByteArray_FromStringAndSize, (const char *, Py_ssize_t)) \
    X(PyObject *, PyMarshal_ReadObjectFromString, (const char *, Py_ssize_t)) \
    X(Py_ssize_t, PyGC_Collect, (void)) \
    X(PyObject *, PyObject_Repr, (PyObject *)) \
    X(void, PyErr_Print, (void))

#define FUZZ_DECLARE(ret, name, params) ret (*name) params;
static struct {
    FUZZ_API(FUZZ_DECLARE)
} api;

/* Exact types, for the plain-value oracle. */
static PyObject *str_type, *bytes_type, *tuple_type, *list_type, *dict_type,
                *bool_type;

/* From the Python set-up below. */
static PyObject *calls;             /* [count of dunder calls] */
static PyObject *subclasses;        /* tuple of counting subclasses */
static PyObject *opaque_factory;    /* _opaque(name, base_index) */
static PyObject *others;            /* tuple of assorted builtins */
static PyObject *code_factory;      /* _code_with(filename, name, line) */

static const char SETUP[] =
    "import sys\n"
    "_calls = [0]\n"
    "def _count():\n"
    "    _calls[0] += 1\n"
    "_DUNDERS = ('__repr__', '__str__', '__format__', '__len__', '__iter__',\n"
    "            '__getitem__', '__hash__', '__eq__', '__bool__', '__index__',\n"
    "            '__int__', '__float__', '__bytes__', '__contains__', 'keys',\n"
    "            'items', 'values', '__sizeof__', '__reduce_ex__', '__dir__')\n"
    "def _counting(base):\n"
    "    ns = {}\n"
    "    for name in _DUNDERS:\n"
    "        orig = getattr(base, name, None)\n"
    "        if orig is None:\n"
    "            continue\n"
    "        def f(self, *a, _o=orig):\n"
    "            _count()\n"
    "            return _o(self, *a)\n"
    "        ns[name] = f\n"
    "    def ga(self, name):\n"
    "        _count()\n"
    "        return object.__getattribute__(self, name)\n"
    "    ns['__getattribute__'] = ga\n"
    "    return type('Counting' + base.__name__.title(), (base,), ns)\n"
    "_subclasses = tuple(_counting(b) for b in\n"
    "                    (str, int, float, bytes, bytearray, list, tuple, dict))\n"
    "def _opaque(name, base):\n"
    "    bases = (_subclasses[base],) if base < len(_subclasses) else ()\n"
    "    t = type(name, bases, {})\n"
    "    return t\n"
    "class _Weird(type):\n"
    "    def __getattribute__(cls, name):\n"
    "        _count()\n"
    "        return type.__getattribute__(cls, name)\n"
    "class _WeirdInstance(metaclass=_Weird):\n"
    "    pass\n"
    "def _gen():\n"
    "    yield 1\n"
    "_others = (set(), frozenset({1, 2}), object(), len, sys, type, 1j,\n"
    "           range(3), memoryview(b'ab'), Ellipsis, NotImplemented,\n"
    "           _gen(), _WeirdInstance(), _WeirdInstance, _count, {1: 2}.keys(),\n"
    "           ValueError('x'), slice(1, 2), type(None), _Weird)\n"
    "_code = compile('x', 'f', 'eval')\n"
    "def _code_with(filename, name, line):\n"
    "    return _code.replace(co_filename=filename, co_name=name,\n"
    "                         co_firstlineno=line)\n"
    "sys.setrecursionlimit(10000)\n";

/* ---- start-up ------------------------------------------------------------------ */

static char libpython_path[4096];

/* The newest /root/.pyenv/versions/3.N.* (8 <= N <= 13) with a libpython. */
static int
find_libpython(void)
{
    const char *root = "/root/.pyenv/versions";
    DIR *d = opendir(root);
    struct dirent *e;
    int best = -1, best_micro = -1;

    if (d == NULL) {
        return -1;
    }
    while ((e = readdir(d)) != NULL) {
        int minor, micro;
        char path[4096];

        if (sscanf(e->d_name, "3.%d.%d", &minor, &micro) != 2 || minor < 8
            || minor > 13 || strchr(e->d_name, 't') != NULL) {
            continue;
        }
        snprintf(path, sizeof(path), "%s/%s/lib/libpython3.%d.so", root,
                 e->d_name, minor);
        if (access(path, R_OK) != 0) {
            continue;
        }
        if (minor > best || (minor == best && micro > best_micro)) {
            best = minor;
            best_micro = micro;
            snprintf(libpython_path, sizeof(libpython_path), "%s", path);
        }
    }
    closedir(d);
    return best < 0 ? -1 : 0;
}

static PyObject *
main_global(PyObject *globals, const char *name)
{
    PyObject *o = spy_py.PyDict_GetItemString(globals, name);

    if (o == NULL) {
        fprintf(stderr, "fuzz_render: the set-up defined no %s\n", name);
        exit(1);
    }
    spy_py.Py_IncRef(o);
    return o;
}

static void *
need(void *handle, const char *name)
{
    void *sym = dlsym(handle, name);

    if (sym == NULL) {
        fprintf(stderr, "fuzz_render: %s lacks %s\n", libpython_path, name);
        exit(1);
    }
    return sym;
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    const char *chosen = getenv("SPYTHON_FUZZ_LIBPYTHON");
    const char *missing = NULL;
    char home[4096], *cut;
    void *handle;
    PyObject *globals;

    (void)argc;
    (void)argv;
    if (chosen != NULL && chosen[0] != '\0') {
        snprintf(libpython_path, sizeof(libpython_path), "%s", chosen);
    }
    else if (find_libpython() < 0) {
        fprintf(stderr, "fuzz_render: no CPython 3.8-3.13 under "
                "/root/.pyenv/versions; set SPYTHON_FUZZ_LIBPYTHON\n");
        exit(1);
    }
    /* PREFIX/lib/libpythonX.Y.so: PYTHONHOME is PREFIX. */
    snprintf(home, sizeof(home), "%s", libpython_path);
    for (int i = 0; i < 2 && (cut = strrchr(home, '/')) != NULL; i++) {
        *cut = '\0';
    }
    setenv("PYTHONHOME", home, 1);
    setenv("PYTHONMALLOC", "malloc", 1);
    setenv("PYTHONDONTWRITEBYTECODE", "1", 1);
    setenv("PYTHONNOUSERSITE", "1", 1);
    setenv("PYTHONHASHSEED", "0", 1);
    unsetenv("PYTHONPATH");
    unsetenv("PYTHONSTARTUP");

    handle = dlopen(libpython_path, RTLD_NOW | RTLD_GLOBAL);
    if (handle == NULL) {
        fprintf(stderr, "fuzz_render: cannot load %s: %s\n", libpython_path,
                dlerror());
        exit(1);
    }
    if (spy_pyapi_load(handle, &missing) < 0) {
        fprintf(stderr, "fuzz_render: %s lacks %s\n", libpython_path,
                missing);
        exit(1);
    }
#define FUZZ_LOAD(ret, name, params) *(void **)&api.name = need(handle, #name);
    FUZZ_API(FUZZ_LOAD)
#undef FUZZ_LOAD
    str_type = need(handle, "PyUnicode_Type");
    bytes_type = need(handle, "PyBytes_Type");
    tuple_type = need(handle, "PyTuple_Type");
    list_type = need(handle, "PyList_Type");
    dict_type = need(handle, "PyDict_Type");
    bool_type = need(handle, "PyBool_Type");

    api.Py_InitializeEx(0);     /* no signal handlers: libFuzzer's stay */
    if (api.PyRun_SimpleStringFlags(SETUP, NULL) != 0) {
        fprintf(stderr, "fuzz_render: the Python set-up failed\n");
        exit(1);
    }
    globals = spy_py.PyModule_GetDict(api.PyImport_AddModule("__main__"));
    calls = main_global(globals, "_calls");
    subclasses = main_global(globals, "_subclasses");
    opaque_factory = main_global(globals, "_opaque");
    others = main_global(globals, "_others");
    code_factory = main_global(globals, "_code_with");
    if (getenv("SPYTHON_FUZZ_QUIET") == NULL) {
        const char *version = spy_py.Py_GetVersion();

        fprintf(stderr, "fuzz_render: CPython %.*s from %s\n",
                (int)strcspn(version, " "), version, libpython_path);
    }
    return 0;
}

/* ---- building objects ------------------------------------------------------------ */

struct reader {
    const uint8_t *p, *end;
};

static unsigned
byte(struct reader *r)
{
    return r->p < r->end ? *r->p++ : 0;
}

static uint64_t
bytes8(struct reader *r)
{
    uint64_t v = 0;

    for (int i = 0; i < 8; i++) {
        v = v << 8 | byte(r);
    }
    return v;
}

struct pool {
    PyObject *items[POOL_MAX];
    int count;
    PyObject *mutable_[POOL_MAX * 2];   /* lists and dicts, to break cycles */
    int mutable_count;
};

static void
push(struct pool *pl, PyObject *o)
{
    if (o == NULL) {
        spy_py.PyErr_Clear();
        return;
    }
    if (pl->count == POOL_MAX) {
        spy_py.Py_DecRef(o);
        return;
    }
    pl->items[pl->count++] = o;
}

static void
remember_mutable(struct pool *pl, PyObject *o)
{
    if (o != NULL && pl->mutable_count < POOL_MAX * 2) {
        spy_py.Py_IncRef(o);
        pl->mutable_[pl->mutable_count++] = o;
    }
}

/* One code point from one input byte: the classes a renderer must get
 * right. */
static uint32_t
code_point(unsigned b, unsigned salt)
{
    switch (b >> 4) {
    case 0: return b & 15;                              /* controls */
    case 1: return "\"'\\\n\r\t\x7f\x1f\x0b\x08\x0c \x20/ab"[b & 15];
    case 2: case 3: case 4: case 5: case 6: case 7:
        return b;                                       /* ASCII */
    case 8: return 0x80 + (b & 15) * 8 + (salt & 7);     /* C1, Latin-1 */
    case 9: return 0xD800 + (b & 15) * 0x40 + (salt & 0x3F); /* high surr. */
    case 10: return 0xDC00 + (b & 15) * 0x40 + (salt & 0x3F); /* low surr. */
    case 11: return (b & 1) ? 0x2029 : 0x2028;
    case 12: return 0xE2 + ((b & 15) << 8);              /* E2xx, ...: 3 bytes */
    case 13: return 0x1F600 + (b & 15);                  /* astral */
    case 14: return (b & 1) ? 0x10FFFF : 0xFFFF;
    default: return 0x100 + ((b & 15) << 4) + (salt & 15);
    }
}

static PyObject *
make_str(struct reader *r)
{
    unsigned len = byte(r) % 48, rep = byte(r), salt = byte(r);
    uint32_t unit[48], *all;
    size_t total;
    PyObject *s;

    if (rep > 40) {
        rep = rep * 4;  /* up to 1020 repeats: past SPY_RENDER_STR_MAX */
    }
    rep = rep == 0 ? 1 : rep;
    for (unsigned i = 0; i < len; i++) {
        unit[i] = code_point(byte(r), salt + i);
    }
    total = (size_t)len * rep;
    all = malloc((total + 1) * sizeof(*all));
    CHECK(all != NULL);
    for (size_t i = 0; i < total; i++) {
        all[i] = unit[i % len];
    }
    s = api.PyUnicode_FromKindAndData(4, all, (Py_ssize_t)total);
    free(all);
    return s;
}

static PyObject *
make_bytes(struct reader *r, int bytearray)
{
    unsigned len = byte(r) % 64, rep = byte(r);
    char unit[64], *all;
    size_t total;
    PyObject *o;

    rep = rep == 0 ? 1 : rep > 100 ? rep * 2 : rep;
    for (unsigned i = 0; i < len; i++) {
        unit[i] = (char)byte(r);
    }
    total = (size_t)len * rep;
    all = malloc(total + 1);
    CHECK(all != NULL);
    for (size_t i = 0; i < total; i++) {
        all[i] = unit[i % len];
    }
    o = bytearray ? api.PyByteArray_FromStringAndSize(all, (Py_ssize_t)total)
                  : spy_py.PyBytes_FromStringAndSize(all, (Py_ssize_t)total);
    free(all);
    return o;
}

static PyObject *
make_int(struct reader *r)
{
    unsigned kind = byte(r);
    PyObject *one, *shift, *big, *result;
    long bits;

    switch (kind % 4) {
    case 0:
        return api.PyLong_FromLongLong((long long)bytes8(r));
    case 1: {
        /* Around +-2^53 (JSON's exact range) and +-2^63. */
        static const long long edges[] = {
            (1LL << 53) - 1, 1LL << 53, (1LL << 53) + 1, -(1LL << 53),
            -(1LL << 53) + 1, -(1LL << 53) - 1, INT64_MAX, INT64_MIN, 0, -1,
        };
        return api.PyLong_FromLongLong(edges[byte(r) % 10]);
    }
    default:
        /* 1 << bits (+- a little): from 64 bits to past the 4300-digit
         * str() limit and on to a million bits. */
        bits = 60 + (long)(byte(r) << 8 | byte(r));
        if (kind & 4) {
            bits *= 16;
        }
        one = api.PyLong_FromLongLong(1);
        shift = api.PyLong_FromLongLong(bits);
        big = one && shift ? api.PyNumber_Lshift(one, shift) : NULL;
        result = big;
        if (big != NULL && (kind & 8)) {
            result = api.PyNumber_Subtract(big, one);
            spy_py.Py_DecRef(big);
        }
        if (result != NULL && (kind & 16)) {
            big = result;
            result = api.PyNumber_Negative(big);
            spy_py.Py_DecRef(big);
        }
        if (one != NULL) {
            spy_py.Py_DecRef(one);
        }
        if (shift != NULL) {
            spy_py.Py_DecRef(shift);
        }
        return result;
    }
}

static PyObject *
make_float(struct reader *r)
{
    uint64_t bits = bytes8(r);
    double d;

    memcpy(&d, &bits, sizeof(d));
    return api.PyFloat_FromDouble(d);
}

/* The top n pool items (n from the input), moved into a new container. */
static PyObject *
make_container(struct pool *pl, struct reader *r, int kind)
{
    int n = (int)(byte(r) % 40);
    PyObject *c;

    if (n > pl->count) {
        n = pl->count;
    }
    if (kind == 2) {
        n -= n % 2;
    }
    c = kind == 0 ? api.PyTuple_New(n) : kind == 1 ? api.PyList_New(0)
                                                   : spy_py.PyDict_New();
    if (c == NULL) {
        return NULL;
    }
    for (int i = 0; i < n; i++) {
        PyObject *o = pl->items[pl->count - n + i];

        if (kind == 0) {
            api.PyTuple_SetItem(c, i, o);   /* steals */
            continue;
        }
        if (kind == 1) {
            api.PyList_Append(c, o);
        }
        else if (i % 2 == 1) {
            /* Unhashable keys fail: the pair is dropped. */
            if (api.PyDict_SetItem(c, pl->items[pl->count - n + i - 1], o)
                < 0) {
                spy_py.PyErr_Clear();
            }
        }
    }
    if (kind != 0) {
        for (int i = 0; i < n; i++) {
            spy_py.Py_DecRef(pl->items[pl->count - n + i]);
        }
        remember_mutable(pl, c);
    }
    pl->count -= n;
    return c;
}

/* The same value as an instance of the counting subclass of its type. */
static PyObject *
make_subclass(PyObject *o)
{
    PyObject *exact_types[8];
    PyObject *type = spy_py.PyObject_Type(o), *cls = NULL, *result = NULL;

    exact_types[0] = str_type;
    exact_types[1] = spy_py.LongType;
    exact_types[2] = spy_py.FloatType;
    exact_types[3] = bytes_type;
    exact_types[4] = spy_py.ByteArrayType;
    exact_types[5] = list_type;
    exact_types[6] = tuple_type;
    exact_types[7] = dict_type;
    for (int i = 0; i < 8; i++) {
        if (type == exact_types[i]) {
            cls = spy_py.PyTuple_GetItem(subclasses, i);
        }
    }
    if (cls != NULL) {
        result = spy_py.PyObject_CallFunctionObjArgs(cls, o, NULL);
    }
    spy_py.Py_DecRef(type);
    return result;
}

static PyObject *
make_opaque(struct reader *r)
{
    unsigned len = byte(r) % 40, base = byte(r);
    char name[40];
    PyObject *text, *index, *cls, *result = NULL;

    for (unsigned i = 0; i < len; i++) {
        name[i] = (char)byte(r);
    }
    text = spy_py.PyUnicode_FromStringAndSize(name, len);
    if (text == NULL) {
        spy_py.PyErr_Clear();
        text = api.PyUnicode_FromKindAndData(1, name, len);     /* Latin-1 */
    }
    index = api.PyLong_FromLongLong(base % 12);
    cls = text && index ? spy_py.PyObject_CallFunctionObjArgs(
                              opaque_factory, text, index, NULL)
                        : NULL;
    /* An instance: of a plain class, or (bases 0-7) of a subclass of a
     * counting type, made from an empty value. */
    result = cls != NULL ? spy_py.PyObject_CallFunctionObjArgs(cls, NULL)
                         : NULL;
    if (text != NULL) {
        spy_py.Py_DecRef(text);
    }
    if (index != NULL) {
        spy_py.Py_DecRef(index);
    }
    if (cls != NULL) {
        spy_py.Py_DecRef(cls);
    }
    return result;
}

/* A code object with a filename from the input (decoded as the file
 * system does, so undecodable bytes become lone surrogates), an odd name
 * and first line: _code.replace(), no compiling. */
static PyObject *
make_code(struct reader *r)
{
    unsigned len = byte(r) % 64, name_len = byte(r) % 16;
    char file[64], name[16];
    PyObject *filename, *co_name, *line, *code = NULL;

    for (unsigned i = 0; i < len; i++) {
        file[i] = (char)byte(r);
    }
    for (unsigned i = 0; i < name_len; i++) {
        name[i] = (char)byte(r);
    }
    filename = spy_py.PyUnicode_DecodeFSDefaultAndSize(file, len);
    co_name = api.PyUnicode_FromKindAndData(1, name, name_len);
    line = api.PyLong_FromLongLong(1 + (long long)byte(r) * 8388607);
    if (filename != NULL && co_name != NULL && line != NULL) {
        code = spy_py.PyObject_CallFunctionObjArgs(code_factory, filename,
                                                   co_name, line, NULL);
    }
    if (filename != NULL) {
        spy_py.Py_DecRef(filename);
    }
    if (co_name != NULL) {
        spy_py.Py_DecRef(co_name);
    }
    if (line != NULL) {
        spy_py.Py_DecRef(line);
    }
    return code;
}

static void
decode_objects(struct pool *pl, struct reader *r)
{
    int cost = 0;

    /* The costly operations (types, huge ints, long texts) count more:
     * every input stays quick. */
    while (r->p < r->end && cost < 400) {
        unsigned op = byte(r) % 20;

        cost += op == 3 || op == 14 || op == 15 || op == 16 ? 8
                : op >= 5 && op <= 8 ? 3 : 1;
        PyObject *top = pl->count > 0 ? pl->items[pl->count - 1] : NULL;

        switch (op) {
        case 0: spy_py.Py_IncRef(spy_py.None); push(pl, spy_py.None); break;
        case 1: spy_py.Py_IncRef(spy_py.True); push(pl, spy_py.True); break;
        case 2: spy_py.Py_IncRef(spy_py.False); push(pl, spy_py.False); break;
        case 3: push(pl, make_int(r)); break;
        case 4: push(pl, make_float(r)); break;
        case 5: case 6: push(pl, make_str(r)); break;
        case 7: push(pl, make_bytes(r, 0)); break;
        case 8: push(pl, make_bytes(r, 1)); break;
        case 9: push(pl, make_container(pl, r, 0)); break;
        case 10: push(pl, make_container(pl, r, 1)); break;
        case 11: push(pl, make_container(pl, r, 2)); break;
        case 12:
            /* A container inside itself. */
            if (top != NULL) {
                PyObject *type = spy_py.PyObject_Type(top);
                unsigned long flags = spy_py.PyType_GetFlags(type);

                if (flags & SPY_TPFLAGS_LIST_SUBCLASS) {
                    api.PyList_Append(top, top);
                }
                else if (flags & SPY_TPFLAGS_DICT_SUBCLASS) {
                    PyObject *key = api.PyLong_FromLongLong(byte(r));

                    api.PyDict_SetItem(top, key, top);
                    spy_py.Py_DecRef(key);
                }
                spy_py.PyErr_Clear();
                spy_py.Py_DecRef(type);
            }
            break;
        case 13:
            /* Another reference to an earlier value. */
            if (pl->count > 0) {
                PyObject *o = pl->items[byte(r) % (unsigned)pl->count];

                spy_py.Py_IncRef(o);
                push(pl, o);
            }
            break;
        case 14:
            if (top != NULL) {
                PyObject *sub = make_subclass(top);

                if (sub != NULL) {
                    PyObject *type = spy_py.PyObject_Type(sub);

                    if (spy_py.PyType_GetFlags(type)
                        & (SPY_TPFLAGS_LIST_SUBCLASS
                           | SPY_TPFLAGS_DICT_SUBCLASS)) {
                        remember_mutable(pl, sub);
                    }
                    spy_py.Py_DecRef(type);
                }
                push(pl, sub);
            }
            break;
        case 15: push(pl, make_opaque(r)); break;
        case 16: push(pl, make_code(r)); break;
        case 17: {
            /* Nest the top in 1-tuples: deep quickly. */
            unsigned n = byte(r) % 8;

            for (unsigned i = 0; i < n && pl->count > 0; i++) {
                PyObject *t = api.PyTuple_New(1);

                if (t == NULL) {
                    spy_py.PyErr_Clear();
                    break;
                }
                api.PyTuple_SetItem(t, 0, pl->items[pl->count - 1]);
                pl->items[pl->count - 1] = t;
            }
            break;
        }
        case 18: {
            PyObject *o = spy_py.PyTuple_GetItem(
                others, (Py_ssize_t)(byte(r) % (unsigned)spy_py.PyTuple_Size(
                                                    others)));

            spy_py.Py_IncRef(o);
            push(pl, o);
            break;
        }
        default:
            /* Drop the top. */
            if (pl->count > 0) {
                spy_py.Py_DecRef(pl->items[--pl->count]);
            }
            break;
        }
    }
}

/* marshal.loads allocates a container's claimed size before reading its
 * items (PyTuple_New(n) of a 4-byte n), which would only find CPython's
 * appetite: this walks the format first and accepts only data whose sizes
 * fit in what follows, without code objects (whose layout changes with
 * every version, and whose unmarshalling is not what is tested here).
 * Returns the bytes used, or -1. */
static long
marshal_ok(const uint8_t *p, const uint8_t *end, int depth)
{
    const uint8_t *start = p;
    long n;
    unsigned type;

#define NEED(k) do { if (end - p < (long)(k)) return -1; } while (0)
#define U32() (p += 4, (long)((uint32_t)p[-4] | (uint32_t)p[-3] << 8 \
                              | (uint32_t)p[-2] << 16 | (uint32_t)p[-1] << 24))
    if (depth > 60) {
        return -1;
    }
    NEED(1);
    type = *p++ & 0x7F;     /* FLAG_REF */
    switch (type) {
    case '0': case 'N': case 'F': case 'T': case 'S': case '.':
        break;
    case 'i':
        NEED(4);
        p += 4;
        break;
    case 'g':
        NEED(8);
        p += 8;
        break;
    case 'y':
        NEED(16);
        p += 16;
        break;
    case 'f':
        NEED(1);
        n = *p++;
        NEED(n);
        p += n;
        break;
    case 'x':
        for (int i = 0; i < 2; i++) {
            NEED(1);
            n = *p++;
            NEED(n);
            p += n;
        }
        break;
    case 'l':
        NEED(4);
        n = (int32_t)U32();
        n = n < 0 ? -n : n;
        if (n < 0 || n > 10000) {
            return -1;
        }
        NEED(2 * n);
        p += 2 * n;
        break;
    case 's': case 't': case 'u': case 'a': case 'A':
        NEED(4);
        n = U32();
        NEED(n);
        p += n;
        break;
    case 'z': case 'Z':
        NEED(1);
        n = *p++;
        NEED(n);
        p += n;
        break;
    case 'r':
        NEED(4);
        p += 4;
        break;
    case ')':
    case '(': case '[': case '<': case '>':
        if (type == ')') {
            NEED(1);
            n = *p++;
        }
        else {
            NEED(4);
            n = U32();
        }
        NEED(n);        /* each item takes at least one byte */
        for (long i = 0; i < n; i++) {
            long k = marshal_ok(p, end, depth + 1);

            if (k < 0) {
                return -1;
            }
            p += k;
        }
        break;
    case '{':
        for (;;) {
            long k;

            NEED(1);
            if ((*p & 0x7F) == '0') {
                p++;
                break;
            }
            for (int i = 0; i < 2; i++) {
                k = marshal_ok(p, end, depth + 1);
                if (k < 0) {
                    return -1;
                }
                p += k;
            }
        }
        break;
    default:
        return -1;      /* code objects, unknown codes */
    }
    return (long)(p - start);
#undef NEED
#undef U32
}

/* ---- checking the output ----------------------------------------------------------- */

static long long
dunder_calls(void)
{
    int overflow = 0;

    return spy_py.PyLong_AsLongLongAndOverflow(
        spy_py.PyList_GetItem(calls, 0), &overflow);
}

static void
fail_output(const char *what, const struct spy_buf *b, const char *expected)
{
    fprintf(stderr, "fuzz_render: %s (len %zu, cap %zu, full %d)\n  got: %.*s\n",
            what, b->len, b->cap, b->full, (int)(b->len > 2000 ? 2000 : b->len),
            b->data);
    if (expected != NULL) {
        fprintf(stderr, "  expected: %.2000s\n", expected);
    }
    abort();
}

/* Renders into a heap buffer of exactly `cap` bytes; the caller frees
 * b->data. */
static void
render_into(struct spy_buf *b, size_t cap, PyObject *o, int as_args,
            enum spy_style style, size_t budget)
{
    long long before;

    b->data = malloc(cap ? cap : 1);
    CHECK(b->data != NULL);
    b->len = 0;
    b->cap = cap;
    b->full = 0;
    before = dunder_calls();
    if (as_args) {
        spy_render_args(b, o, style, budget);
    }
    else {
        spy_render_value(b, o, style, budget);
    }
    if (dunder_calls() != before) {
        fail_output("rendering ran user code (a counting dunder was called)",
                    b, NULL);
    }
    CHECK(spy_py.PyErr_Occurred() == NULL);
    CHECK(b->len <= b->cap);
}

static void
expect_json(const struct spy_buf *b)
{
    struct spy_json_value v;
    const char *error = NULL;

    if (!b->full && spy_json_parse(b->data, b->len, &v, &error) < 0) {
        char why[200];

        snprintf(why, sizeof(why), "JSON style output is not JSON: %s", error);
        fail_output(why, b, NULL);
    }
}

static void
put_cp(char **p, uint32_t c)
{
    char *o = *p;

    if (c < 0x80) {
        *o++ = (char)c;
    }
    else if (c < 0x800) {
        *o++ = (char)(0xC0 | (c >> 6));
        *o++ = (char)(0x80 | (c & 0x3F));
    }
    else if (c < 0x10000) {
        *o++ = (char)(0xE0 | (c >> 12));
        *o++ = (char)(0x80 | ((c >> 6) & 0x3F));
        *o++ = (char)(0x80 | (c & 0x3F));
    }
    else {
        *o++ = (char)(0xF0 | (c >> 18));
        *o++ = (char)(0x80 | ((c >> 12) & 0x3F));
        *o++ = (char)(0x80 | ((c >> 6) & 0x3F));
        *o++ = (char)(0x80 | (c & 0x3F));
    }
    *p = o;
}

/* An exact str of at most SPY_RENDER_STR_MAX characters renders as a
 * JSON string that decodes back to it, as JSON readers decode: an
 * escaped high surrogate followed by an escaped low one is one astral
 * character; other surrogates become U+FFFD (json.c's choice). */
static void
check_str_roundtrip(PyObject *s)
{
    Py_ssize_t n = spy_py.PyUnicode_GetLength(s);
    uint32_t *points;
    char *expected, *e, *decoded;
    struct spy_buf b;
    struct spy_json_value v;
    const char *error = NULL;
    long got;

    if (n < 0 || n > SPY_RENDER_STR_MAX) {
        spy_py.PyErr_Clear();
        return;
    }
    points = malloc(((size_t)n + 1) * sizeof(*points));
    expected = malloc((size_t)n * 4 + 1);
    CHECK(points != NULL && expected != NULL);
    CHECK(spy_py.PyUnicode_AsUCS4(s, points, n + 1, 1) != NULL);
    e = expected;
    for (Py_ssize_t i = 0; i < n; i++) {
        uint32_t c = points[i];

        if (c >= 0xD800 && c <= 0xDBFF && i + 1 < n
            && points[i + 1] >= 0xDC00 && points[i + 1] <= 0xDFFF) {
            c = 0x10000 + ((c - 0xD800) << 10) + (points[i + 1] - 0xDC00);
            i++;
        }
        else if (c >= 0xD800 && c <= 0xDFFF) {
            c = 0xFFFD;
        }
        put_cp(&e, c);
    }
    render_into(&b, (size_t)n * 6 + 16, s, 0, SPY_STYLE_JSON, ARGS_BUDGET);
    if (b.full) {
        fail_output("a str of at most 1024 characters filled 6 bytes a "
                    "character", &b, NULL);
    }
    if (spy_json_parse(b.data, b.len, &v, &error) < 0
        || v.kind != SPY_JSON_STRING) {
        fail_output("a str did not render as a JSON string", &b, NULL);
    }
    decoded = malloc(b.len + 1);
    CHECK(decoded != NULL);
    got = spy_json_string(&v, decoded, b.len + 1);
    if (got != e - expected || memcmp(decoded, expected, (size_t)got) != 0) {
        *e = '\0';
        fail_output("a str's JSON does not decode to the str", &b, expected);
    }
    free(decoded);
    free(b.data);
    free(expected);
    free(points);
}

/* Values whose repr style must equal repr(): exact builtin types, ASCII
 * str, within the renderer's limits, no cycles (depth-limited anyway).
 * *room bounds the repr's size: shared references make a small input a
 * huge repr. */
static int
plain(PyObject *o, int level, long *room)
{
    PyObject *type;
    int ok = 0;

    if (--*room < 0) {
        return 0;
    }
    if (o == spy_py.None || o == spy_py.True || o == spy_py.False) {
        *room -= 5;
        return 1;
    }
    type = spy_py.PyObject_Type(o);
    if (type == str_type) {
        Py_ssize_t n;
        const char *s = spy_py.PyUnicode_AsUTF8AndSize(o, &n);

        ok = s != NULL && n <= SPY_RENDER_STR_MAX;
        for (Py_ssize_t i = 0; ok && i < n; i++) {
            ok = (unsigned char)s[i] < 0x80;
        }
        *room -= (long)n * 4 + 2;
        spy_py.PyErr_Clear();
    }
    else if (type == bytes_type) {
        char *data;
        Py_ssize_t n = 0;

        ok = spy_py.PyBytes_AsStringAndSize(o, &data, &n) == 0
             && n <= SPY_RENDER_BYTES_MAX;
        *room -= (long)n * 4 + 3;
    }
    else if (type == spy_py.ByteArrayType) {
        Py_ssize_t n = spy_py.PyByteArray_Size(o);

        /* CPython's bytearray repr escapes ' even inside "...": the
         * renderer does as bytes' repr does, so such values are left out. */
        ok = n <= SPY_RENDER_BYTES_MAX
             && memchr(spy_py.PyByteArray_AsString(o), '\'', (size_t)n) == NULL;
        *room -= (long)n * 4 + 14;
    }
    else if (type == spy_py.LongType) {
        /* Longer ones show their size in bits. */
        ok = spy_py._PyLong_NumBits == NULL
             || spy_py._PyLong_NumBits(o) <= SPY_RENDER_INT_BITS_MAX;
        *room -= 320;
    }
    else if (type == spy_py.FloatType) {
        ok = 1;
        *room -= 25;
    }
    else if (type == tuple_type || type == list_type) {
        Py_ssize_t n = type == tuple_type ? spy_py.PyTuple_Size(o)
                                          : spy_py.PyList_Size(o);

        ok = level < SPY_RENDER_DEPTH_MAX && n <= SPY_RENDER_ITEMS_MAX;
        for (Py_ssize_t i = 0; ok && i < n; i++) {
            ok = plain(type == tuple_type ? spy_py.PyTuple_GetItem(o, i)
                                          : spy_py.PyList_GetItem(o, i),
                       level + 1, room);
        }
    }
    else if (type == dict_type) {
        Py_ssize_t pos = 0;
        PyObject *k, *v;

        ok = level < SPY_RENDER_DEPTH_MAX
             && spy_py.PyDict_Size(o) <= SPY_RENDER_ITEMS_MAX;
        while (ok && spy_py.PyDict_Next(o, &pos, &k, &v)) {
            ok = plain(k, level + 1, room) && plain(v, level + 1, room);
        }
    }
    spy_py.Py_DecRef(type);
    return ok && *room >= 0;
}

static void
check_repr(PyObject *o, int as_args)
{
    PyObject *repr;
    const char *expected;
    Py_ssize_t n;
    struct spy_buf b;
    int is_plain;
    long room = ARGS_BUDGET;

    if (as_args) {
        Py_ssize_t count = spy_py.PyTuple_Size(o);

        is_plain = count <= SPY_RENDER_ITEMS_MAX;
        for (Py_ssize_t i = 0; is_plain && i < count; i++) {
            is_plain = plain(spy_py.PyTuple_GetItem(o, i), 0, &room);
        }
    }
    else {
        is_plain = plain(o, 0, &room);
    }
    if (!is_plain) {
        return;
    }
    repr = api.PyObject_Repr(o);
    if (repr == NULL) {
        spy_py.PyErr_Clear();   /* e.g. a recursion limit */
        return;
    }
    expected = spy_py.PyUnicode_AsUTF8AndSize(repr, &n);
    CHECK(expected != NULL);
    if ((size_t)n < ARGS_BUDGET) {
        render_into(&b, (size_t)n + 64, o, as_args, SPY_STYLE_REPR,
                    ARGS_BUDGET);
        if (b.len != (size_t)n || memcmp(b.data, expected, (size_t)n) != 0) {
            fail_output("the repr style differs from repr()", &b, expected);
        }
        free(b.data);
    }
    spy_py.Py_DecRef(repr);
}

/* Every way the launcher renders: the record (JSON, its real capacity and
 * budget), the journal (8 KiB, half as budget), the --stderr and guard
 * texts (repr), and bounded buffers from the input. */
static void
render_everything(PyObject *args, size_t small_cap, size_t small_budget)
{
    struct spy_buf b;

    render_into(&b, RECORD_ROOM, args, 1, SPY_STYLE_JSON, ARGS_BUDGET);
    expect_json(&b);
    if (b.full) {
        fail_output("the arguments filled the record: hooks.c's budget "
                    "does not bound them", &b, NULL);
    }
    free(b.data);

    render_into(&b, 8192, args, 1, SPY_STYLE_JSON, 4096);
    expect_json(&b);
    free(b.data);

    render_into(&b, small_cap, args, 1, SPY_STYLE_JSON, small_budget);
    expect_json(&b);
    free(b.data);

    render_into(&b, RECORD_ROOM, args, 1, SPY_STYLE_REPR, ARGS_BUDGET);
    free(b.data);
    render_into(&b, small_cap, args, 1, SPY_STYLE_REPR, small_budget);
    free(b.data);
    /* guard.c: SPY_TARGET_MAX 300, out_size - 4, budget out_size / 2. */
    render_into(&b, 296, args, 1, SPY_STYLE_REPR, 150);
    free(b.data);
    /* No arguments at all. */
    render_into(&b, small_cap, NULL, 1, SPY_STYLE_JSON, small_budget);
    CHECK(b.full || (b.len == 2 && memcmp(b.data, "[]", 2) == 0));
    free(b.data);

    check_repr(args, 1);

    /* The first items alone (the whole tuple took the time already). */
    for (Py_ssize_t i = 0; i < spy_py.PyTuple_Size(args) && i < 8; i++) {
        PyObject *o = spy_py.PyTuple_GetItem(args, i);
        PyObject *type = spy_py.PyObject_Type(o);
        char body[1200];
        struct spy_buf s = {body, 0, sizeof(body) - 2, 0};

        render_into(&b, 16384, o, 0, SPY_STYLE_JSON, 8192);
        expect_json(&b);
        free(b.data);
        render_into(&b, small_cap, o, 0, SPY_STYLE_JSON, small_budget);
        expect_json(&b);
        free(b.data);
        render_into(&b, small_cap, o, 0, SPY_STYLE_REPR, small_budget);
        free(b.data);
        check_repr(o, 0);

        /* The type name, as a JSON string body. */
        body[s.len++] = '"';
        spy_render_type_name(&s, type, 1);
        s.cap += 2;
        spy_buf_putc(&s, '"');
        expect_json(&s);
        s.len = 0;
        s.cap = sizeof(body);
        s.full = 0;
        spy_render_type_name(&s, type, 0);

        if (spy_py.PyType_GetFlags(type) & SPY_TPFLAGS_UNICODE_SUBCLASS) {
            long long before = dunder_calls();
            Py_ssize_t total;

            if (type == str_type) {
                check_str_roundtrip(o);
            }
            /* A location's text: a JSON string body, cut to max chars. */
            s.len = 0;
            s.cap = sizeof(body) - 1;
            s.full = 0;
            body[s.len++] = '"';
            total = spy_render_str_body(&s, o, 150, SPY_STYLE_JSON);
            CHECK(total >= 0 && s.len <= 150 * 6 + 1);
            s.cap = sizeof(body);
            spy_buf_putc(&s, '"');
            expect_json(&s);
            s.len = 0;
            s.full = 0;
            (void)spy_render_str_body(&s, o, 200, SPY_STYLE_REPR);
            CHECK(s.len <= 200 * 6);     /* a lone surrogate: 6 bytes */
            /* A max_chars past SPY_RENDER_STR_MAX is capped. */
            render_into(&b, small_cap, NULL, 1, SPY_STYLE_REPR, 0);
            free(b.data);
            b.data = malloc(8 * 1024);
            CHECK(b.data != NULL);
            b.len = 0;
            b.cap = 8 * 1024;
            b.full = 0;
            total = spy_render_str_body(&b, o, (Py_ssize_t)1 << 40,
                                        SPY_STYLE_JSON);
            CHECK(total >= 0 && b.len <= SPY_RENDER_STR_MAX * 6);
            free(b.data);
            CHECK(dunder_calls() == before);
        }
        spy_py.Py_DecRef(type);
    }
    CHECK(spy_py.PyErr_Occurred() == NULL);
}

/* ---- the target ---------------------------------------------------------------------- */

static unsigned long inputs;

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct reader r = {data, data + size};
    struct pool pl;
    PyObject *args;
    unsigned mode, cap_byte, budget_byte;
    size_t small_cap, small_budget;

    if (size < 3) {
        return 0;
    }
    mode = byte(&r);
    cap_byte = byte(&r);
    budget_byte = byte(&r);
    small_cap = cap_byte < 200 ? (size_t)cap_byte * 4 : (size_t)cap_byte * 64;
    small_budget = small_cap * budget_byte / 256;

    pl.count = 0;
    pl.mutable_count = 0;
    if ((mode & 1) && marshal_ok(r.p, r.end, 0) > 0) {
        PyObject *o = api.PyMarshal_ReadObjectFromString(
            (const char *)r.p, (Py_ssize_t)(r.end - r.p));

        push(&pl, o);
    }
    else {
        decode_objects(&pl, &r);
    }
    spy_py.PyErr_Clear();

    args = api.PyTuple_New(pl.count);
    CHECK(args != NULL);
    for (int i = 0; i < pl.count; i++) {
        api.PyTuple_SetItem(args, i, pl.items[i]);     /* steals */
    }
    render_everything(args, small_cap, small_budget);
    if (pl.count == 1) {
        /* A lone marshalled tuple: render it as the argument tuple. */
        PyObject *only = spy_py.PyTuple_GetItem(args, 0);
        PyObject *type = spy_py.PyObject_Type(only);

        if (spy_py.PyType_GetFlags(type) & SPY_TPFLAGS_TUPLE_SUBCLASS) {
            struct spy_buf b;

            render_into(&b, RECORD_ROOM, only, 1, SPY_STYLE_JSON,
                        ARGS_BUDGET);
            expect_json(&b);
            free(b.data);
            render_into(&b, small_cap, only, 1, SPY_STYLE_REPR, small_budget);
            free(b.data);
        }
        spy_py.Py_DecRef(type);
    }
    spy_py.Py_DecRef(args);

    /* Break the cycles this input made, then let them go. */
    for (int i = 0; i < pl.mutable_count; i++) {
        PyObject *c = pl.mutable_[i];
        PyObject *type = spy_py.PyObject_Type(c);

        if (spy_py.PyType_GetFlags(type) & SPY_TPFLAGS_LIST_SUBCLASS) {
            api.PyList_SetSlice(c, 0, spy_py.PyList_Size(c), NULL);
        }
        else {
            api.PyDict_Clear(c);
        }
        spy_py.Py_DecRef(type);
        spy_py.Py_DecRef(c);
    }
    spy_py.PyErr_Clear();
    if (++inputs % 64 == 0) {
        api.PyGC_Collect();     /* marshal's and subclasses' cycles */
    }
    return 0;
}
