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
/* Set-associative: the few code objects every import walks through (the
 * import system's own functions) would otherwise, sharing a slot, evict
 * each other on every event. */
#define CODE_CACHE_WAYS 4
#define CODE_CACHE_SETS (CODE_CACHE_SIZE / CODE_CACHE_WAYS)
#define LINES_PER_CODE 4
/* The longest site text kept whole, and the longest int as text. */
#define SITE_TEXT_MAX 1024
#define SPY_INT_TEXT_MAX 11
/* How far the search for the caller of library code goes up the stack. */
#define MAX_CALLER_DEPTH 64

struct code_entry {
    PyObject *code;             /* identity only */
    PyObject *weak;
    /* "file":"<co_filename>","line": and ,"func":"<co_name>" as JSON
     * text: the pieces a site text is made of. */
    char *site;
    size_t site_len;
    char *func;
    size_t func_len;
    const char *file;           /* co_filename's text, within site */
    size_t file_len;
    /* The last few instruction offsets seen, each with its whole site text
     * (site, line number, func) in `sites`, `site_stride` bytes apart:
     * a record's location is then one copy.  NULL when too long. */
    int lasti[LINES_PER_CODE];
    char *sites;
    size_t site_stride;
    size_t sites_len[LINES_PER_CODE];
    unsigned int next_line;
    /* Whether the file is the interpreter's own code (see is_library);
     * decided once the library roots are known. */
    unsigned char library_known;
    unsigned char library;
};

static struct code_entry code_cache[CODE_CACHE_SIZE];
static unsigned char next_victim[CODE_CACHE_SETS];
/* Checked first: runs of events from one function are the common case,
 * and looking through a set would cost each of them a load per way. */
static struct code_entry *last_hit = code_cache;
static int cache_enabled;

/* The interpreter's library: files under <prefix>/lib/ for each of
 * sys.prefix, base_prefix, exec_prefix and base_exec_prefix (the standard
 * library and site-packages, of a venv too), as JSON text like the cached
 * file names, plus frozen modules. */
#define MAX_LIBRARY_ROOTS 4
static char *library_roots[MAX_LIBRARY_ROOTS];
static size_t library_root_lens[MAX_LIBRARY_ROOTS];
static int library_root_count = -1;     /* -1: not known yet */

void
spy_location_use_cache(int enabled)
{
    cache_enabled = enabled;
}

/* A str attribute of the code object as JSON characters between `before`
 * and `after` (malloc'd); *len counts all three. */
static char *
json_attribute(PyObject *code, enum spy_name name, Py_ssize_t max,
               const char *before, const char *after, size_t *len)
{
    char data[SPY_RENDER_STR_MAX * 6 + 32];
    struct spy_buf b = {data, 0, sizeof(data), 0};
    PyObject *value = spy_get_attr(code, name);
    char *copy;

    if (value == NULL) {
        spy_py.PyErr_Clear();
        return NULL;
    }
    spy_buf_put(&b, before, strlen(before));
    spy_render_str_body(&b, value, max, SPY_STYLE_JSON);
    spy_buf_put(&b, after, strlen(after));
    spy_py.Py_DecRef(value);
    if (b.full) {
        return NULL;
    }
    copy = malloc(b.len);
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
    free(e->site);
    free(e->func);
    free(e->sites);
    memset(e, 0, sizeof(*e));
}

/* The object a weak reference points to (borrowed; None once dead):
 * PyWeakReference's wr_object follows PyObject_HEAD. */
static PyObject *
referent(PyObject *weak)
{
    return spy_py_layout_known ? ((PyObject **)weak)[2]
                               : spy_py.PyWeakref_GetObject(weak);
}

/* Whether the entry is that of `code`, alive (not a dead one's whose
 * address came back). */
static int
holds(const struct code_entry *e, PyObject *code)
{
    return e->code == code && referent(e->weak) == code;
}

/* The cache entry for a live code object, filled on first sight; NULL
 * when it cannot be cached. */
static struct code_entry *
cached_code(PyObject *code)
{
    static const char site_start[] = "\"file\":\"";
    static const char site_end[] = "\",\"line\":";
    struct code_entry *ways, *e = NULL;
    size_t set;

    if (!cache_enabled || !spy_names_ready()) {
        return NULL;
    }
    if (holds(last_hit, code)) {
        return last_hit;
    }
    /* Fibonacci hashing: the set from all of the address's bits. */
    set = (size_t)(((uint64_t)(uintptr_t)code * 0x9E3779B97F4A7C15u) >> 32)
          % CODE_CACHE_SETS;
    ways = &code_cache[set * CODE_CACHE_WAYS];
    for (int i = 0; i < CODE_CACHE_WAYS; i++) {
        if (holds(&ways[i], code)) {
            last_hit = &ways[i];
            return last_hit;
        }
    }
    /* An empty way or one whose code object died, else each in turn. */
    for (int i = 0; i < CODE_CACHE_WAYS && e == NULL; i++) {
        if (ways[i].code == NULL || !holds(&ways[i], ways[i].code)) {
            e = &ways[i];
        }
    }
    if (e == NULL) {
        e = &ways[next_victim[set]];
        next_victim[set] = (next_victim[set] + 1) % CODE_CACHE_WAYS;
    }
    clear_entry(e);
    e->weak = spy_py.PyWeakref_NewRef(code, NULL);
    e->site = json_attribute(code, SPY_NAME_CO_FILENAME, SPY_RENDER_STR_MAX,
                             site_start, site_end, &e->site_len);
    e->func = json_attribute(code, SPY_NAME_CO_NAME, 200, ",\"func\":\"",
                             "\"", &e->func_len);
    if (e->weak == NULL || e->site == NULL || e->func == NULL) {
        spy_py.PyErr_Clear();
        clear_entry(e);
        return NULL;
    }
    e->file = e->site + sizeof(site_start) - 1;
    e->file_len = e->site_len - (sizeof(site_start) - 1)
                  - (sizeof(site_end) - 1);
    e->code = code;
    for (int i = 0; i < LINES_PER_CODE; i++) {
        e->lasti[i] = -1;
    }
    /* Room for the longest line number; a site is rarely longer than a
     * few hundred bytes, and one that is only costs three copies. */
    e->site_stride = e->site_len + SPY_INT_TEXT_MAX + e->func_len;
    if (e->site_stride <= SITE_TEXT_MAX && spy_py.PyFrame_GetLasti != NULL) {
        e->sites = malloc(LINES_PER_CODE * e->site_stride);
    }
    return e;
}

/* Reads the library roots once sys.prefix and friends are set (they are
 * not while the import system bootstraps); 0 until then. */
static int
library_roots_ready(void)
{
    static const char *const prefixes[MAX_LIBRARY_ROOTS] = {
        "prefix", "base_prefix", "exec_prefix", "base_exec_prefix",
    };

    if (library_root_count >= 0) {
        return 1;
    }
    for (int i = 0; i < MAX_LIBRARY_ROOTS; i++) {
        PyObject *prefix = spy_py.PySys_GetObject(prefixes[i]);  /* borrowed */
        char data[SPY_RENDER_STR_MAX * 6];
        struct spy_buf b = {data, 0, sizeof(data), 0};
        PyObject *type = prefix != NULL ? spy_py.PyObject_Type(prefix) : NULL;
        int is_str = type != NULL
                     && (spy_py.PyType_GetFlags(type)
                         & SPY_TPFLAGS_UNICODE_SUBCLASS);
        int known = 0;

        if (type != NULL) {
            spy_py.Py_DecRef(type);
        }
        if (!is_str) {
            spy_py.PyErr_Clear();
            return 0;
        }
        spy_render_str_body(&b, prefix, SPY_RENDER_STR_MAX, SPY_STYLE_JSON);
        spy_buf_lit(&b, "/lib/");
        for (int j = 0; j < library_root_count && !known; j++) {
            known = library_root_lens[j] == b.len
                    && memcmp(library_roots[j], b.data, b.len) == 0;
        }
        if (b.len <= 5 || known || b.full) {
            continue;
        }
        if (library_root_count < 0) {
            library_root_count = 0;
        }
        library_roots[library_root_count] = malloc(b.len);
        if (library_roots[library_root_count] == NULL) {
            continue;
        }
        memcpy(library_roots[library_root_count], b.data, b.len);
        library_root_lens[library_root_count++] = b.len;
    }
    if (library_root_count < 0) {
        library_root_count = 0;
    }
    return 1;
}

static int
has_prefix(const char *text, size_t len, const char *prefix, size_t n)
{
    return len >= n && memcmp(text, prefix, n) == 0;
}

/* Whether the code object's file is the interpreter's own code: events
 * it raises are better placed at the line of the program that called it
 * (subprocess.run, not subprocess.py). */
static int
is_library(struct code_entry *e)
{
    static const char frozen[] = "<frozen ";

    if (!e->library_known) {
        if (has_prefix(e->file, e->file_len, frozen, sizeof(frozen) - 1)) {
            e->library = 1;
        }
        else if (!library_roots_ready()) {
            return 0;
        }
        e->library_known = 1;
        for (int i = 0; i < library_root_count && !e->library; i++) {
            e->library = has_prefix(e->file, e->file_len, library_roots[i],
                                    library_root_lens[i]);
        }
    }
    return e->library;
}

/* A frame a site is read from: a frame object, or (the caller walk on
 * 3.12 and 3.13) an interpreter frame that may have none. */
struct frame_ref {
    PyObject *object;
    void *interpreter;
};

static int
frame_line(struct frame_ref f)
{
    return f.object != NULL
           ? spy_py.PyFrame_GetLineNumber(f.object)
           : spy_py.PyUnstable_InterpreterFrame_GetLine(f.interpreter);
}

static int
frame_lasti(struct frame_ref f)
{
    return f.object != NULL
           ? spy_py.PyFrame_GetLasti(f.object)
           : spy_py.PyUnstable_InterpreterFrame_GetLasti(f.interpreter);
}

/* "file":…,"line":N,"func":… of the frame, from the entry's pieces. */
static void
put_site_parts(struct spy_buf *b, const struct code_entry *e,
               struct frame_ref frame)
{
    spy_buf_put(b, e->site, e->site_len);
    spy_buf_put_i64(b, frame_line(frame));
    spy_buf_put(b, e->func, e->func_len);
}

/* ,"file":…,"line":N,"func":… of a cached frame, after `start`.
 * PyFrame_GetLineNumber scans the line table: an instruction offset seen
 * before needs no scan and no formatting (3.11+, where the offset can be
 * asked for). */
static void
put_cached_site(struct spy_buf *b, const char *start, size_t start_len,
                struct code_entry *e, struct frame_ref frame)
{
    struct spy_buf text;
    unsigned int slot;
    int lasti;

    spy_buf_put(b, start, start_len);
    if (e->sites == NULL) {
        put_site_parts(b, e, frame);
        return;
    }
    lasti = frame_lasti(frame);
    for (slot = 0; slot < LINES_PER_CODE; slot++) {
        if (e->lasti[slot] == lasti) {
            spy_buf_put(b, e->sites + slot * e->site_stride, e->sites_len[slot]);
            return;
        }
    }
    slot = e->next_line;
    e->next_line = (slot + 1) % LINES_PER_CODE;
    text = (struct spy_buf){e->sites + slot * e->site_stride, 0,
                            e->site_stride, 0};
    put_site_parts(&text, e, frame);
    e->lasti[slot] = lasti;
    e->sites_len[slot] = text.len;
    spy_buf_put(b, text.data, text.len);
}

/* 3.8 has no PyFrame_GetCode or PyFrame_GetBack, and reading the
 * attributes raises an object.__getattr__ event, whose hooks are the
 * program's: they would run inside this hook, and a RecursionError they
 * hit there (a hook that audits recursively) would be swallowed here,
 * leaving CPython past its recursion limit for good ("Cannot recover from
 * stack overflow").  Its frame starts with PyObject_VAR_HEAD, f_back,
 * f_code: read them there. */
#define SPY_38_FRAME_BACK 3
#define SPY_38_FRAME_CODE 4

/* The frame's code object (new reference), or NULL. */
static PyObject *
frame_code(PyObject *frame)
{
    PyObject *code;

    if (spy_py.PyFrame_GetCode != NULL) {
        code = spy_py.PyFrame_GetCode(frame);
    }
    else {
        code = ((PyObject **)frame)[SPY_38_FRAME_CODE];
        spy_py.Py_IncRef(code);
    }
    if (code == NULL) {
        spy_py.PyErr_Clear();
    }
    return code;
}

/* The calling frame (new reference), or NULL at the bottom. */
static PyObject *
frame_back(PyObject *frame)
{
    PyObject *back;

    if (spy_py.PyFrame_GetBack != NULL) {
        back = spy_py.PyFrame_GetBack(frame);
    }
    else {
        back = ((PyObject **)frame)[SPY_38_FRAME_BACK];
        if (back != NULL) {
            spy_py.Py_IncRef(back);
        }
    }
    if (back == NULL) {
        spy_py.PyErr_Clear();
    }
    return back;
}

/* The innermost frame (borrowed) and its code object (new reference). */
static PyObject *
current_code(PyObject **frame_out)
{
    PyObject *frame;

    if (spy_pyapi_thread_state() == NULL) {
        return NULL;
    }
    frame = spy_py.PyEval_GetFrame();
    if (frame == NULL) {
        spy_py.PyErr_Clear();
        return NULL;
    }
    *frame_out = frame;
    return frame_code(frame);
}

/* 3.12 and 3.13: PyFrame_GetBack makes a frame object for each frame it
 * passes that has none yet (freed when that frame returns): the import
 * system's frames, 19 on average between an import's events and the
 * program's line, are new at every nested import.  The caller walk reads
 * the interpreter frames instead: PyFrameObject's f_frame (word 3) points
 * to its frame's; an interpreter frame's first word is its code object,
 * its second `previous`, its byte 70 the owner. */
#define SPY_FRAME_INTERPRETER_WORD 3
#define SPY_INTERPRETER_CODE_WORD 0
#define SPY_INTERPRETER_PREVIOUS_WORD 1
#define SPY_INTERPRETER_OWNER_BYTE 70
#define SPY_OWNED_BY_GENERATOR 1
#define SPY_OWNED_BY_C_STACK 3

/* The interpreter frame of a frame object. */
static void *
interpreter_frame_of(PyObject *frame)
{
    return ((void **)frame)[SPY_FRAME_INTERPRETER_WORD];
}

static int
interpreter_frames_walkable(void)
{
    return spy_py_code_firsttraceable_at != 0
           && spy_py.PyUnstable_InterpreterFrame_GetCode != NULL
           && spy_py.PyUnstable_InterpreterFrame_GetLasti != NULL
           && spy_py.PyUnstable_InterpreterFrame_GetLine != NULL;
}

/* Whether PyFrame_GetBack passes over the interpreter frame: a shim that C
 * code pushes before it calls Python code, or one not yet past its first
 * traceable instruction (CPython's _PyFrame_IsIncomplete), such as the
 * shims 3.13 pushes around __init__ calls, whose code is static. */
static int
passed_over(void *frame)
{
    char owner = ((char *)frame)[SPY_INTERPRETER_OWNER_BYTE];
    PyObject *code = ((PyObject **)frame)[SPY_INTERPRETER_CODE_WORD];
    int first_traceable;

    if (owner == SPY_OWNED_BY_C_STACK) {
        return 1;
    }
    if (owner == SPY_OWNED_BY_GENERATOR) {
        return 0;
    }
    if (spy_type_of(code) != spy_py.CodeType) {
        return 1;
    }
    first_traceable = *(int *)((char *)code + spy_py_code_firsttraceable_at);
    /* Most code starts traceable: no call then.  _co_firsttraceable counts
     * code units, lasti bytes. */
    return first_traceable > 0
           && spy_py.PyUnstable_InterpreterFrame_GetLasti(frame)
              < 2 * first_traceable;
}

/* The frame that called f, as a reference of f's kind (a frame object is
 * a new reference); both members NULL at the bottom. */
static struct frame_ref
caller_of(struct frame_ref f)
{
    struct frame_ref back = {NULL, NULL};
    void *previous = f.interpreter;

    if (f.object != NULL) {
        back.object = frame_back(f.object);
        return back;
    }
    do {
        previous = ((void **)previous)[SPY_INTERPRETER_PREVIOUS_WORD];
    } while (previous != NULL && passed_over(previous));
    back.interpreter = previous;
    return back;
}

/* The frame's code object (new reference), or NULL. */
static PyObject *
code_of(struct frame_ref f)
{
    PyObject *code;

    if (f.object != NULL) {
        return frame_code(f.object);
    }
    code = spy_py.PyUnstable_InterpreterFrame_GetCode(f.interpreter);
    if (code == NULL) {
        spy_py.PyErr_Clear();
    }
    return code;
}

static void
release_frame(struct frame_ref f)
{
    if (f.object != NULL) {
        spy_py.Py_DecRef(f.object);
    }
}

/* Whether the fields read above give what the API gives for `frame` and
 * its caller: 1 yes, -1 no, 0 not known yet (no caller to compare). */
static int
interpreter_frames_agree(PyObject *frame)
{
    struct frame_ref mine = {NULL, interpreter_frame_of(frame)};
    struct frame_ref theirs = {frame, NULL};
    PyObject *code = code_of(theirs);
    PyObject *code_read = code_of(mine);
    struct frame_ref back_theirs = caller_of(theirs);
    struct frame_ref back_mine = caller_of(mine);
    PyObject *back_code = back_theirs.object != NULL ? code_of(back_theirs)
                                                     : NULL;
    PyObject *back_code_read = back_mine.interpreter != NULL
                               ? code_of(back_mine) : NULL;
    int agree = code != NULL && code == code_read
        && ((PyObject **)mine.interpreter)[SPY_INTERPRETER_CODE_WORD] == code
        && back_code == back_code_read
        && (back_code == NULL
            || frame_lasti(back_theirs) == frame_lasti(back_mine));

    PyObject *held[] = {code, code_read, back_code, back_code_read};

    for (size_t i = 0; i < sizeof(held) / sizeof(held[0]); i++) {
        if (held[i] != NULL) {
            spy_py.Py_DecRef(held[i]);
        }
    }
    release_frame(back_theirs);
    return !agree ? -1 : back_code != NULL ? 1 : 0;
}

/* Appends ,"caller":{"file":…,"line":N,"func":…}: the innermost frame
 * below `frame` that is not library code, if one is near enough. */
static void
put_caller_json(struct spy_buf *b, PyObject *frame)
{
    /* Decided on the first walk with a caller: a CPython release that moved
     * the fields read costs the faster walk, not a wrong record. */
    static int interpreter_walk;
    struct frame_ref start = {frame, NULL};
    struct frame_ref current;

    if (interpreter_walk == 0) {
        interpreter_walk = interpreter_frames_walkable()
                           ? interpreter_frames_agree(frame) : -1;
    }
    if (interpreter_walk > 0) {
        start.object = NULL;
        start.interpreter = interpreter_frame_of(frame);
    }
    current = caller_of(start);
    for (int depth = 0;
         (current.object != NULL || current.interpreter != NULL)
         && depth < MAX_CALLER_DEPTH;
         depth++) {
        PyObject *code = code_of(current);
        struct code_entry *e = code != NULL ? cached_code(code) : NULL;
        struct frame_ref back;

        if (code != NULL) {
            spy_py.Py_DecRef(code);
        }
        if (e == NULL) {
            break;
        }
        if (!is_library(e)) {
            put_cached_site(b, ",\"caller\":{", 11, e, current);
            spy_buf_putc(b, '}');
            break;
        }
        back = caller_of(current);
        release_frame(current);
        current = back;
    }
    release_frame(current);
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
        put_cached_site(b, ",", 1, e, (struct frame_ref){frame, NULL});
        spy_py.Py_DecRef(code);
        if (is_library(e)) {
            put_caller_json(b, frame);
        }
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
