#define _GNU_SOURCE
#include "hooks.h"

#include "buf.h"
#include "children.h"
#include "debug.h"
#include "guard.h"
#include "hookwatch.h"
#include "location.h"
#include "names.h"
#include "policy.h"
#include "pyapi.h"
#include "render.h"
#include "stream.h"
#include "systemlog.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A record is cut off well before the stream's batch size. */
#define RECORD_CAPACITY (80 * 1024)
#define ARGS_BUDGET (56 * 1024)
#define EVENT_NAME_MAX 512
#define THREAD_NAME_MAX 128
/* Thread names can change; re-read them now and then. */
#define THREAD_NAME_REFRESH 4096
/* A thread not registered with threading yet, or a program that never
 * imports it: looked for again only now and then. */
#define THREAD_NAME_RETRY 64
#define MINIMAL_ARGS_MAX 80
#define COMPILE_SOURCE_MAX 200

/* Per-thread scratch space: rendering happens outside the stream lock. */
struct scratch {
    char record[RECORD_CAPACITY];
    char name[EVENT_NAME_MAX * 6];
    size_t name_len;
    /* The raw name `name` was escaped from: a run of one event (the
     * common case) is escaped once. */
    char raw_name[EVENT_NAME_MAX];
    size_t raw_name_len;
    char thread[THREAD_NAME_MAX * 6 + 2];
    size_t thread_len;      /* 0: not known yet */
    unsigned int thread_age;
    /* ,"pid":P,"ppid":Q,"tid":T,"thread":N: the same on every record of
     * this thread until a fork or a new thread name. */
    char identity[THREAD_NAME_MAX * 6 + 128];
    size_t identity_len;
    unsigned int identity_generation;   /* spy_fork_generation + 1 */
};

static struct spy_hooks_config config;
static pthread_key_t scratch_key;     /* frees a thread's scratch at its exit */
static __thread struct scratch *tls_scratch;
/* Set while this thread is inside the hook: events our own work raises
 * (object.__getattr__ on 3.8, for one) are not recorded. */
static __thread int tls_in_hook;

int
spy_hooks_busy(void)
{
    return tls_in_hook;
}

void
spy_hooks_set_busy(int busy)
{
    tls_in_hook = busy;
}

static struct scratch *
get_scratch(void)
{
    if (tls_scratch == NULL) {
        tls_scratch = calloc(1, sizeof(*tls_scratch));
        if (tls_scratch == NULL) {
            spy_fatal("out of memory in the audit hook", NULL);
        }
        pthread_setspecific(scratch_key, tls_scratch);
    }
    return tls_scratch;
}

static int
is_dict(PyObject *o)
{
    PyObject *type;
    unsigned long flags;

    if (o == NULL) {
        return 0;
    }
    type = spy_py.PyObject_Type(o);
    flags = spy_py.PyType_GetFlags(type);
    spy_py.Py_DecRef(type);
    return (flags & SPY_TPFLAGS_DICT_SUBCLASS) != 0;
}

/* threading._active[get_ident()]._name, read from dicts only, so no user
 * code (a property, a __getattr__) can run. */
static void
refresh_thread_name(struct scratch *s)
{
    PyObject *modules, *module, *globals, *active, *ident, *thread, *attrs;
    PyObject *name, *type;
    int is_module;
    struct spy_buf b = {s->thread, 0, sizeof(s->thread), 0};

    /* During finalization the modules dictionary may already be gone. */
    if (!spy_names_ready() || !spy_py.Py_IsInitialized()) {
        return;
    }
    modules = spy_py.PyImport_GetModuleDict();
    if (!is_dict(modules)) {
        return;
    }
    module = spy_py.PyDict_GetItem(modules, spy_name(SPY_NAME_THREADING));
    if (module == NULL) {
        return;
    }
    type = spy_py.PyObject_Type(module);
    is_module = type == spy_py.ModuleType
                || spy_py.PyType_IsSubtype(type, spy_py.ModuleType);
    spy_py.Py_DecRef(type);
    if (!is_module) {
        return;
    }
    globals = spy_py.PyModule_GetDict(module);
    active = globals != NULL ? spy_py.PyDict_GetItem(globals, spy_name(SPY_NAME_ACTIVE))
                             : NULL;
    if (!is_dict(active)) {
        return;
    }
    ident = spy_py.PyLong_FromUnsignedLong(spy_py.PyThread_get_thread_ident());
    if (ident == NULL) {
        spy_py.PyErr_Clear();
        return;
    }
    thread = spy_py.PyDict_GetItem(active, ident);
    spy_py.Py_DecRef(ident);
    if (thread == NULL) {
        return;
    }
    attrs = spy_py.PyObject_GenericGetDict(thread, NULL);
    if (attrs == NULL) {
        spy_py.PyErr_Clear();
        return;
    }
    name = is_dict(attrs) ? spy_py.PyDict_GetItem(attrs, spy_name(SPY_NAME_NAME)) : NULL;
    if (name != NULL) {
        spy_buf_putc(&b, '"');
        if (spy_render_str_body(&b, name, THREAD_NAME_MAX, SPY_STYLE_JSON) >= 0
            && !b.full) {
            spy_buf_putc(&b, '"');
            s->thread_len = b.len;
            s->thread_age = 0;
        }
    }
    spy_py.Py_DecRef(attrs);
}

void
spy_hooks_put_process_identity(struct spy_buf *b)
{
    spy_buf_lit(b, ",\"pid\":");
    spy_buf_put_i64(b, spy_stream_pid());
    spy_buf_lit(b, ",\"ppid\":");
    spy_buf_put_i64(b, spy_stream_ppid());
    spy_buf_lit(b, ",\"tid\":");
    spy_buf_put_i64(b, spy_thread_id());
}

static void
put_identity(struct scratch *s)
{
    struct spy_buf b = {s->identity, 0, sizeof(s->identity), 0};

    spy_hooks_put_process_identity(&b);
    spy_buf_lit(&b, ",\"thread\":");
    if (s->thread_len > 0) {
        spy_buf_put(&b, s->thread, s->thread_len);
    }
    else {
        spy_buf_lit(&b, "null");
    }
    s->identity_len = b.len;
    s->identity_generation = spy_fork_generation + 1;
}

/* The event name, JSON-escaped and cut at a character boundary. */
static size_t
put_event_name(struct scratch *s, const char *event)
{
    struct spy_buf b = {s->name, 0, sizeof(s->name), 0};
    size_t n = spy_utf8_prefix(event, strnlen(event, EVENT_NAME_MAX + 1),
                               EVENT_NAME_MAX);

    if (n == s->raw_name_len && memcmp(event, s->raw_name, n) == 0) {
        return s->name_len;
    }
    spy_buf_put_json_chars(&b, event, n);
    memcpy(s->raw_name, event, n);
    s->raw_name_len = n;
    s->name_len = b.len;
    return b.len;
}

static uint64_t
emit_record(struct scratch *s, const char *event, PyObject *args,
            const char *denied)
{
    struct spy_buf b = {s->record, 0, sizeof(s->record), 0};
    size_t name_len = put_event_name(s, event);
    size_t args_mark;

    if (++s->thread_age >= (s->thread_len > 0 ? THREAD_NAME_REFRESH
                                              : THREAD_NAME_RETRY)
        || s->identity_generation != spy_fork_generation + 1) {
        s->thread_age = 0;
        refresh_thread_name(s);
        put_identity(s);
    }
    spy_buf_put(&b, s->identity, s->identity_len);
    spy_location_put_json(&b);
    spy_buf_lit(&b, ",\"args\":");
    args_mark = b.len;
    spy_render_args(&b, args, SPY_STYLE_JSON, ARGS_BUDGET);
    if (b.full || b.len + 64 > b.cap) {
        /* Cannot happen within the budget; never send a broken line. */
        b.len = args_mark;
        b.full = 0;
        spy_buf_lit(&b, "[{\"$more\":null}]");
    }
    if (denied != NULL) {
        spy_buf_lit(&b, ",\"denied\":\"");
        spy_buf_put(&b, denied, strlen(denied));
        spy_buf_putc(&b, '"');
    }
    spy_buf_lit(&b, "}\n");
    return spy_stream_record(s->name, name_len, b.data, b.len);
}

static void
write_line(int fd, struct spy_buf *b)
{
    const char *p = b->data;
    size_t n = b->len;

    while (n > 0) {
        ssize_t k = write(fd, p, n);

        if (k <= 0) {
            return;     /* a closed stdout must not stop the program */
        }
        p += k;
        n -= (size_t)k;
    }
}

/* LogToStderr's compile line: "compile: compiling <file>: <source>". */
static int
put_compile_text(struct spy_buf *b, PyObject *args)
{
    PyObject *source, *filename;

    if (args == NULL || spy_py.PyTuple_Size(args) != 2) {
        spy_py.PyErr_Clear();
        return -1;
    }
    source = spy_py.PyTuple_GetItem(args, 0);
    filename = spy_py.PyTuple_GetItem(args, 1);
    spy_buf_lit(b, "compiling ");
    if (spy_render_str_body(b, filename, SPY_RENDER_STR_MAX,
                            SPY_STYLE_REPR) < 0) {
        spy_render_value(b, filename, SPY_STYLE_REPR, ARGS_BUDGET);
    }
    if (source == spy_py.None) {
        return 0;
    }
    spy_buf_lit(b, ": ");
    Py_ssize_t total = spy_render_str_body(b, source, COMPILE_SOURCE_MAX,
                                           SPY_STYLE_REPR);
    if (total < 0) {
        /* bytes or an AST: its repr, cut to as many characters. */
        size_t start = b->len, end, chars = 0;

        spy_render_value(b, source, SPY_STYLE_REPR, ARGS_BUDGET);
        for (end = start; end < b->len && chars < COMPILE_SOURCE_MAX; end++) {
            chars += ((unsigned char)b->data[end] & 0xC0) != 0x80;
        }
        while (end < b->len && ((unsigned char)b->data[end] & 0xC0) == 0x80) {
            end++;
        }
        total = end < b->len ? COMPILE_SOURCE_MAX + 1 : 0;
        b->len = end;
    }
    if (total > COMPILE_SOURCE_MAX) {
        spy_buf_lit(b, "...");
    }
    return 0;
}

static void
emit_stderr_line(struct scratch *s, const char *event, PyObject *args)
{
    struct spy_buf b = {s->record, 0, sizeof(s->record) - 1, 0};

    spy_buf_put(&b, event, strnlen(event, EVENT_NAME_MAX));
    spy_buf_lit(&b, ": ");
    if (strcmp(event, "compile") != 0 || put_compile_text(&b, args) < 0) {
        spy_render_args(&b, args, SPY_STYLE_REPR, ARGS_BUDGET);
    }
    b.full = 0;
    b.cap++;
    spy_buf_putc(&b, '\n');
    write_line(STDERR_FILENO, &b);
}

static void
emit_minimal_line(struct scratch *s, const char *event, PyObject *args)
{
    struct spy_buf b = {s->record, 0, sizeof(s->record) - 2, 0};
    size_t args_start, args_end;

    spy_buf_lit(&b, "Event occurred: ");
    spy_buf_put(&b, event, strnlen(event, EVENT_NAME_MAX));
    spy_buf_putc(&b, '(');
    args_start = b.len;
    spy_render_args(&b, args, SPY_STYLE_REPR, MINIMAL_ARGS_MAX * 4);
    /* "%.80s" of the repr, but never half a UTF-8 character. */
    args_end = b.len;
    if (args_end - args_start > MINIMAL_ARGS_MAX) {
        args_end = args_start + MINIMAL_ARGS_MAX;
        while (args_end > args_start
               && ((unsigned char)b.data[args_end] & 0xC0) == 0x80) {
            args_end--;
        }
    }
    b.len = args_end;
    b.full = 0;
    b.cap += 2;
    spy_buf_lit(&b, ")\n");
    write_line(STDOUT_FILENO, &b);
}

/* An event raised by the hook's own work (a condition, a prompt, an
 * inspection): not recorded, but unconditional refusals still apply, so
 * code that runs there cannot slip past them. */
static int
nested_event(const char *event, PyObject *args)
{
    struct spy_decision decision;

    if (!spy_policy_decides()) {
        return 0;
    }
    spy_guard_decide(event, args, 1, &decision);
    if (decision.policy == NULL) {
        return 0;
    }
    spy_guard_refuse(event, &decision);
    return -1;
}

static int
audit_hook(const char *event, PyObject *args, void *unused)
{
    PyObject *type = NULL, *value = NULL, *traceback = NULL;
    struct spy_decision decision;
    const char *tamper, *unaudited;
    int had_error;
    struct scratch *s;

    (void)unused;
    /* Not an initializer: that would clear the whole target buffer on
     * every event. */
    decision.policy = NULL;
    decision.target[0] = '\0';
    decision.explained = 0;
    decision.ends_program = 0;
    if (tls_in_hook) {
        return nested_event(event, args);
    }
    tls_in_hook = 1;
    had_error = spy_py.PyErr_Occurred() != NULL;
    if (had_error) {
        spy_py.PyErr_Fetch(&type, &value, &traceback);
    }
    s = get_scratch();
    spy_names_ready();
    if (spy_policy_decides()) {
        spy_guard_decide(event, args, 0, &decision);
    }
    if (spy_stream_active()) {
        uint64_t seq = emit_record(s, event, args, decision.policy);

        /* The process image is about to be replaced. */
        if (event[0] == 'o' && strcmp(event, "os.exec") == 0) {
            spy_stream_flush();
        }
        if (spy_debug_active()
            && spy_debug_event(event, args, seq, decision.policy)
            && decision.policy == NULL) {
            decision.policy = "debugger";
            spy_guard_target(event, args, decision.target,
                             sizeof(decision.target));
        }
    }
    if (config.log_stderr) {
        emit_stderr_line(s, event, args);
    }
    if (config.log_minimal) {
        emit_minimal_line(s, event, args);
    }
    if (spy_systemlog_active()) {
        spy_systemlog_event(event, args, decision.policy, decision.target);
    }
    if (event[0] == 'c' && strncmp(event, "cpython.run_", 12) == 0) {
        spy_children_program_starts();
    }
    if (event[0] == 'c' && strcmp(event, "cpython._PySys_ClearAuditHooks") == 0) {
        spy_hookwatch_stop();   /* CPython unhooks everything now */
    }
    tamper = spy_guard_tamper_check();
    unaudited = spy_children_unaudited(event, args);
    if (spy_py.PyErr_Occurred() != NULL) {     /* cheaper than clearing */
        spy_py.PyErr_Clear();
    }
    tls_in_hook = 0;
    /* Real audit events, so every hook and log sees them. */
    if (tamper != NULL
        && spy_py.PySys_Audit("spython.tamper", "(s)", tamper) < 0) {
        spy_py.PyErr_Clear();
    }
    if (unaudited != NULL
        && spy_py.PySys_Audit("spython.unaudited_child", "(s)", unaudited) < 0) {
        spy_py.PyErr_Clear();
    }
    if (had_error) {
        spy_py.PyErr_Restore(type, value, traceback);
    }
    if (decision.policy != NULL) {
        spy_guard_refuse(event, &decision);
        return -1;
    }
    return 0;
}

int
spy_hooks_install(const struct spy_hooks_config *requested)
{
    config = *requested;
    if (pthread_key_create(&scratch_key, free) != 0) {
        return -1;
    }
    return spy_hookwatch_add(audit_hook) == 0 ? 0 : -1;
}
