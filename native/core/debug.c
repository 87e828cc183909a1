#define _GNU_SOURCE
#include "debug.h"

#include "agent.h"
#include "buf.h"
#include "channel.h"
#include "guard.h"
#include "hooks.h"
#include "json.h"
#include "location.h"
#include "policy.h"
#include "stream.h"

#include <fnmatch.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum hit_test {
    HIT_ALWAYS,
    HIT_AT_LEAST,
    HIT_MORE,
    HIT_EXACTLY,
    HIT_FEWER,
    HIT_AT_MOST,
    HIT_EVERY,
};

struct breakpoint {
    long long id;
    struct spy_rule rule;       /* glob and condition */
    char *log_message;
    enum hit_test hit_test;
    long long hit_count;
    long long hits;
    int is_filter;
};

/* Breakpoint sets are replaced whole by the reader thread and retired,
 * then freed by a hook thread (which holds the GIL, for the compiled
 * conditions) once nothing uses them. */
struct breakpoint_set {
    struct breakpoint *items;
    size_t count;
    int users;
    struct breakpoint_set *next_retired;
};

struct queued {
    char *line;
    size_t len;
    struct queued *next;
};

enum resume {
    RESUME_ALLOW,
    RESUME_DENY,
    RESUME_STEP,
};

static struct {
    pthread_mutex_t lock;
    pthread_cond_t changed;
    struct breakpoint_set *current;
    struct breakpoint_set *retired;
    volatile int break_on_denied;
    volatile int stop_on_entry;
    volatile int pause_requested;
    int pause_call_pending;
    volatile pid_t step_thread;
    int stopped;
    pid_t stopped_thread;
    struct queued *queue;
    struct queued **queue_tail;
} D = {.lock = PTHREAD_MUTEX_INITIALIZER, .changed = PTHREAD_COND_INITIALIZER};

/* ---- messages ------------------------------------------------------------ */

static void
send_message(struct spy_buf *b)
{
    if (b->full) {
        return;     /* bounded texts make this unreachable; never half */
    }
    spy_stream_control(b->data, b->len);
}

static void
send_breakpoint_error(long long id, const char *message)
{
    char data[8192];    /* 800 bytes of message, escaped: up to 4800 */
    struct spy_buf b = {data, 0, sizeof(data), 0};

    spy_buf_lit(&b, "{\"type\":\"breakpointError\",\"id\":");
    spy_buf_put_i64(&b, id);
    spy_buf_lit(&b, ",\"message\":");
    spy_buf_put_json_text(&b, message, 800);
    spy_buf_lit(&b, "}\n");
    send_message(&b);
}

static void
send_failure(long long id, const char *message)
{
    char data[8192];    /* 800 bytes of message, escaped: up to 4800 */
    struct spy_buf b = {data, 0, sizeof(data), 0};

    spy_buf_lit(&b, "{\"type\":\"response\",\"id\":");
    spy_buf_put_i64(&b, id);
    spy_buf_lit(&b, ",\"success\":false,\"message\":");
    spy_buf_put_json_text(&b, message, 800);
    spy_buf_lit(&b, "}\n");
    send_message(&b);
}

/* ---- reading breakpoints ----------------------------------------------- */

struct entry_fields {
    struct spy_json_value id, event, condition, hit, log, kind;
};

static int
entry_member(const struct spy_json_value *key,
             const struct spy_json_value *value, void *ctx)
{
    struct entry_fields *f = ctx;

    if (spy_json_string_is(key, "id")) {
        f->id = *value;
    }
    else if (spy_json_string_is(key, "event")) {
        f->event = *value;
    }
    else if (spy_json_string_is(key, "condition")) {
        f->condition = *value;
    }
    else if (spy_json_string_is(key, "hitCondition")) {
        f->hit = *value;
    }
    else if (spy_json_string_is(key, "logMessage")) {
        f->log = *value;
    }
    else if (spy_json_string_is(key, "kind")) {
        f->kind = *value;
    }
    return 0;
}

static char *
optional_string(const struct spy_json_value *v)
{
    char *out;

    if (v->kind != SPY_JSON_STRING || v->len <= 2) {
        return NULL;
    }
    out = malloc(v->len);
    if (out != NULL) {
        spy_json_string(v, out, v->len);
    }
    return out;
}

/* "N", ">=N", ">N", "==N", "<N", "<=N", "%N"; -1 when unreadable. */
static int
parse_hit_condition(const char *text, enum hit_test *test, long long *count)
{
    static const struct {
        const char *prefix;
        enum hit_test test;
    } forms[] = {
        {">=", HIT_AT_LEAST}, {"<=", HIT_AT_MOST}, {"==", HIT_EXACTLY},
        {">", HIT_MORE}, {"<", HIT_FEWER}, {"%", HIT_EVERY}, {"", HIT_AT_LEAST},
    };
    char *end;

    while (*text == ' ') {
        text++;
    }
    for (size_t i = 0; i < sizeof(forms) / sizeof(*forms); i++) {
        size_t n = strlen(forms[i].prefix);

        if (strncmp(text, forms[i].prefix, n) == 0) {
            *count = strtoll(text + n, &end, 10);
            while (*end == ' ') {
                end++;
            }
            if (end == text + n || *end != '\0' || *count < 0
                || (forms[i].test == HIT_EVERY && *count == 0)) {
                return -1;
            }
            *test = forms[i].test;
            return 0;
        }
    }
    return -1;
}

struct set_builder {
    struct breakpoint_set *set;
    const char *error;
};

static int
add_entry(const struct spy_json_value *unused,
          const struct spy_json_value *value, void *ctx)
{
    struct set_builder *sb = ctx;
    struct entry_fields f;
    struct breakpoint *bp;
    char *hit;

    (void)unused;
    memset(&f, 0, sizeof(f));
    if (value->kind != SPY_JSON_OBJECT) {
        sb->error = "each breakpoint must be an object";
        return 1;
    }
    spy_json_members(value, entry_member, &f);
    if (f.id.kind != SPY_JSON_NUMBER || f.event.kind != SPY_JSON_STRING) {
        sb->error = "each breakpoint needs a numeric \"id\" and an "
                    "\"event\" glob";
        return 1;
    }
    bp = &sb->set->items[sb->set->count++];
    memset(bp, 0, sizeof(*bp));
    bp->id = spy_json_integer(&f.id, 0);
    bp->rule.glob = optional_string(&f.event);
    bp->rule.condition = optional_string(&f.condition);
    bp->log_message = optional_string(&f.log);
    bp->is_filter = spy_json_string_is(&f.kind, "filter");
    hit = optional_string(&f.hit);
    if (hit != NULL && parse_hit_condition(hit, &bp->hit_test,
                                           &bp->hit_count) < 0) {
        char message[300];

        snprintf(message, sizeof(message), "hit condition '%.200s' is not "
                 "N, >=N, >N, ==N, <N, <=N or %%N", hit);
        send_breakpoint_error(bp->id, message);
        bp->rule.broken = 1;
    }
    free(hit);
    if (bp->rule.glob == NULL) {
        bp->rule.broken = 1;
    }
    return 0;
}

static int
count_entry(const struct spy_json_value *unused,
            const struct spy_json_value *value, void *ctx)
{
    (void)unused;
    (void)value;
    ++*(size_t *)ctx;
    return 0;
}

static struct breakpoint_set *
read_breakpoints(const struct spy_json_value *list, const char **error)
{
    struct set_builder sb = {NULL, NULL};
    size_t count = 0;

    if (list->kind != SPY_JSON_ARRAY) {
        *error = "breakpoints must be a list";
        return NULL;
    }
    spy_json_elements(list, count_entry, &count);
    sb.set = calloc(1, sizeof(*sb.set));
    if (sb.set == NULL
        || (sb.set->items = calloc(count + 1, sizeof(struct breakpoint)))
           == NULL) {
        free(sb.set);
        *error = "out of memory";
        return NULL;
    }
    spy_json_elements(list, add_entry, &sb);
    *error = sb.error;
    return sb.set;
}

/* Caller holds the GIL (compiled conditions are Python objects). */
static void
free_set(struct breakpoint_set *set)
{
    for (size_t i = 0; i < set->count; i++) {
        struct breakpoint *bp = &set->items[i];

        free(bp->rule.glob);
        free(bp->rule.condition);
        free(bp->log_message);
        if (bp->rule.compiled != NULL) {
            spy_py.Py_DecRef(bp->rule.compiled);
        }
    }
    free(set->items);
    free(set);
}

static void
install_set(struct breakpoint_set *set)
{
    pthread_mutex_lock(&D.lock);
    if (D.current != NULL) {
        D.current->next_retired = D.retired;
        D.retired = D.current;
    }
    D.current = set;
    pthread_mutex_unlock(&D.lock);
}

struct config_fields {
    struct spy_json_value breakpoints, break_on_denied, stop_on_entry;
};

static int
config_member(const struct spy_json_value *key,
              const struct spy_json_value *value, void *ctx)
{
    struct config_fields *f = ctx;

    if (spy_json_string_is(key, "breakpoints")) {
        f->breakpoints = *value;
    }
    else if (spy_json_string_is(key, "breakOnDenied")) {
        f->break_on_denied = *value;
    }
    else if (spy_json_string_is(key, "stopOnEntry")) {
        f->stop_on_entry = *value;
    }
    return 0;
}

/* Applies a configuration or setBreakpoints object. */
static const char *
apply(const char *json, size_t len)
{
    struct spy_json_value root;
    struct config_fields f;
    const char *error = NULL;

    memset(&f, 0, sizeof(f));
    if (spy_json_parse(json, len, &root, &error) < 0) {
        return error;
    }
    if (root.kind != SPY_JSON_OBJECT) {
        return "not a JSON object";
    }
    spy_json_members(&root, config_member, &f);
    if (f.breakpoints.start != NULL) {
        struct breakpoint_set *set = read_breakpoints(&f.breakpoints, &error);

        if (set == NULL) {
            return error;
        }
        install_set(set);
        if (error != NULL) {
            return error;
        }
    }
    if (f.break_on_denied.start != NULL) {
        D.break_on_denied = f.break_on_denied.kind == SPY_JSON_TRUE;
    }
    if (f.stop_on_entry.kind == SPY_JSON_TRUE) {
        D.stop_on_entry = 1;
    }
    return NULL;
}

/* A fork must not copy the lock held: the reader thread takes it for a
 * breakpoint update at any moment, and a forked child reconfigures its
 * breakpoints under it (spy_debug_configure from its own welcome). */
static void
lock_before_fork(void)
{
    pthread_mutex_lock(&D.lock);
}

static void
unlock_after_fork_parent(void)
{
    pthread_mutex_unlock(&D.lock);
}

static void
reset_after_fork_child(void)
{
    pthread_mutex_unlock(&D.lock);
    /* No thread of the parent waits on it here. */
    pthread_cond_init(&D.changed, NULL);
}

static void
register_fork_handlers(void)
{
    pthread_atfork(lock_before_fork, unlock_after_fork_parent,
                   reset_after_fork_child);
}

int
spy_debug_configure(const char *json, size_t len, char *err, size_t err_size)
{
    static pthread_once_t fork_handlers = PTHREAD_ONCE_INIT;
    const char *error;

    pthread_once(&fork_handlers, register_fork_handlers);
    error = apply(json, len);

    if (error != NULL) {
        snprintf(err, err_size, "%s", error);
        return -1;
    }
    return 0;
}

/* ---- stops ---------------------------------------------------------------- */

static int pause_now(void *unused);

/* Takes the GIL for a moment, on a thread of its own: the main thread
 * then looks at its pending calls when it takes the GIL back.  Never on
 * the reader thread, which must stay free to bring a stopped thread its
 * resume. */
static void *
nudge_main_thread(void *unused)
{
    sigset_t all;
    int state;

    (void)unused;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    if (spy_py.Py_IsInitialized()) {
        state = spy_py.PyGILState_Ensure();
        spy_py.PyGILState_Release(state);
    }
    return NULL;
}

/* Asks the main thread to run pause_now at its next bytecode boundary.
 * Before 3.13 a pending call added from a thread that is not the main
 * one may not wake the main thread, hence the nudge. */
static void
schedule_pause(void)
{
    pthread_t nudge;
    int add;

    pthread_mutex_lock(&D.lock);
    add = !D.pause_call_pending;
    D.pause_call_pending = 1;
    pthread_mutex_unlock(&D.lock);
    if (!add || !spy_py.Py_IsInitialized()) {
        return;
    }
    spy_py.Py_AddPendingCall(pause_now, NULL);
    if (spy_pyapi_thread_state() == NULL
        && pthread_create(&nudge, NULL, nudge_main_thread, NULL) == 0) {
        pthread_detach(nudge);
    }
}

static void
queue_for_stopped_thread(const char *line, size_t n)
{
    struct queued *q = malloc(sizeof(*q));

    if (q == NULL || (q->line = malloc(n + 1)) == NULL) {
        free(q);
        return;
    }
    memcpy(q->line, line, n);
    q->line[n] = '\0';
    q->len = n;
    q->next = NULL;
    *D.queue_tail = q;
    D.queue_tail = &q->next;
    pthread_cond_broadcast(&D.changed);
}

struct control_fields {
    struct spy_json_value type, id, thread, action, command, arguments;
};

static int
control_member(const struct spy_json_value *key,
               const struct spy_json_value *value, void *ctx)
{
    struct control_fields *f = ctx;

    if (spy_json_string_is(key, "type")) {
        f->type = *value;
    }
    else if (spy_json_string_is(key, "id")) {
        f->id = *value;
    }
    else if (spy_json_string_is(key, "threadId")) {
        f->thread = *value;
    }
    else if (spy_json_string_is(key, "action")) {
        f->action = *value;
    }
    else if (spy_json_string_is(key, "command")) {
        f->command = *value;
    }
    else if (spy_json_string_is(key, "arguments")) {
        f->arguments = *value;
    }
    return 0;
}

static void
read_control(const char *line, size_t n, struct control_fields *f)
{
    struct spy_json_value root;
    const char *error;

    memset(f, 0, sizeof(*f));
    if (spy_json_parse(line, n, &root, &error) == 0) {
        spy_json_members(&root, control_member, f);
    }
}

int
spy_debug_control(const char *type, const char *line, size_t n)
{
    struct control_fields f;

    if (strcmp(type, "setBreakpoints") == 0) {
        const char *error = apply(line, n);

        if (error != NULL) {
            send_breakpoint_error(0, error);
        }
        return 1;
    }
    if (strcmp(type, "pause") == 0) {
        D.pause_requested = 1;
        schedule_pause();
        return 1;
    }
    if (strcmp(type, "continue") != 0 && strcmp(type, "request") != 0) {
        return 0;
    }
    read_control(line, n, &f);
    pthread_mutex_lock(&D.lock);
    if (D.stopped) {
        queue_for_stopped_thread(line, n);
        pthread_mutex_unlock(&D.lock);
        return 1;
    }
    pthread_mutex_unlock(&D.lock);
    if (strcmp(type, "request") == 0) {
        send_failure(spy_json_integer(&f.id, 0),
                     "the program is running: inspection needs a stop");
    }
    return 1;
}

static void
send_response(long long id, const char *body)
{
    size_t n = strlen(body);
    struct spy_buf b;

    b.cap = n + 128;
    b.data = malloc(b.cap);
    b.len = 0;
    b.full = 0;
    if (b.data == NULL) {
        send_failure(id, "out of memory");
        return;
    }
    spy_buf_lit(&b, "{\"type\":\"response\",\"id\":");
    spy_buf_put_i64(&b, id);
    spy_buf_lit(&b, ",\"success\":true,\"body\":");
    spy_buf_put(&b, body, n);
    spy_buf_lit(&b, "}\n");
    send_message(&b);
    free(b.data);
}

/* One queued message for the stopped thread: an inspection answered, or
 * the resume that ends the stop (returned; -1 otherwise). */
static int
serve_one(struct queued *q, pid_t self)
{
    struct control_fields f;
    char command[64], err[512];
    char *body;

    read_control(q->line, q->len, &f);
    if (spy_json_string_is(&f.type, "continue")) {
        if (f.action.kind != SPY_JSON_NULL
            && !spy_json_string_is(&f.action, "allow")
            && !spy_json_string_is(&f.action, "deny")
            && !spy_json_string_is(&f.action, "step")) {
            /* Guessing could let a mistyped "deny" through: stay. */
            spy_channel_protocol_error("continue needs \"action\": "
                                       "\"allow\", \"deny\" or \"step\"",
                                       q->line, q->len);
            return -1;
        }
        if (spy_json_integer(&f.thread, self) != self) {
            return -1;      /* a stale resume for a thread not stopped */
        }
        return spy_json_string_is(&f.action, "deny") ? RESUME_DENY
               : spy_json_string_is(&f.action, "step") ? RESUME_STEP
               : RESUME_ALLOW;
    }
    if (spy_json_string(&f.command, command, sizeof(command)) < 0) {
        send_failure(spy_json_integer(&f.id, 0), "request needs a command");
        return -1;
    }
    body = spy_agent_request(command,
                             f.arguments.start != NULL ? f.arguments.start
                                                       : "{}",
                             f.arguments.start != NULL ? f.arguments.len : 2,
                             err, sizeof(err));
    if (body == NULL) {
        send_failure(spy_json_integer(&f.id, 0), err);
    }
    else {
        send_response(spy_json_integer(&f.id, 0), body);
        free(body);
    }
    return -1;
}

/* Stops this thread: tells the reader, answers its requests, returns how
 * to resume.  The GIL stays held, so the other Python threads wait too. */
static enum resume
stop(const char *reason, const char *event, PyObject *args, uint64_t seq,
     long long breakpoint_id, PyObject *frame, const char *description)
{
    pid_t self = spy_thread_id();
    /* Event name and description, escaped, fit whatever the program
     * named its event: a dropped "stopped" would hang it. */
    char data[8192];
    struct spy_buf b = {data, 0, sizeof(data), 0};
    int resume = -1;

    pthread_mutex_lock(&D.lock);
    while (D.stopped) {
        pthread_cond_wait(&D.changed, &D.lock);
    }
    D.stopped = 1;
    D.stopped_thread = self;
    D.queue_tail = &D.queue;
    pthread_mutex_unlock(&D.lock);

    spy_agent_begin_stop(event, args, frame, self);
    spy_buf_lit(&b, "{\"type\":\"stopped\",\"reason\":\"");
    spy_buf_put(&b, reason, strlen(reason));
    spy_buf_lit(&b, "\",\"threadId\":");
    spy_buf_put_i64(&b, self);
    if (seq != 0) {
        spy_buf_lit(&b, ",\"seq\":");
        spy_buf_put_u64(&b, seq);
    }
    if (event != NULL) {
        spy_buf_lit(&b, ",\"event\":");
        spy_buf_put_json_string(&b, event, strnlen(event, 256));
    }
    if (breakpoint_id != 0) {
        spy_buf_lit(&b, ",\"breakpointId\":");
        spy_buf_put_i64(&b, breakpoint_id);
    }
    spy_buf_lit(&b, ",\"description\":");
    spy_buf_put_json_string(&b, description, strnlen(description, 1024));
    spy_buf_lit(&b, "}\n");
    send_message(&b);

    while (resume < 0) {
        struct queued *q;

        pthread_mutex_lock(&D.lock);
        while (D.queue == NULL) {
            pthread_cond_wait(&D.changed, &D.lock);
        }
        q = D.queue;
        D.queue = q->next;
        if (D.queue == NULL) {
            D.queue_tail = &D.queue;
        }
        pthread_mutex_unlock(&D.lock);
        resume = serve_one(q, self);
        free(q->line);
        free(q);
    }
    spy_agent_end_stop();
    spy_py.PyErr_Clear();

    pthread_mutex_lock(&D.lock);
    D.stopped = 0;
    pthread_cond_broadcast(&D.changed);
    pthread_mutex_unlock(&D.lock);
    if (resume == RESUME_STEP) {
        D.step_thread = self;
    }
    return (enum resume)resume;
}

/* A pending call: runs in the main thread at its next bytecode boundary. */
static int
pause_now(void *unused)
{
    (void)unused;
    pthread_mutex_lock(&D.lock);
    D.pause_call_pending = 0;
    pthread_mutex_unlock(&D.lock);
    if (!D.pause_requested) {
        return 0;
    }
    if (spy_hooks_busy()) {
        /* Inside the hook's own work: try again at the next boundary. */
        schedule_pause();
        return 0;
    }
    D.pause_requested = 0;
    spy_hooks_set_busy(1);
    stop("pause", NULL, NULL, 0, 0, spy_py.PyEval_GetFrame(), "Paused");
    spy_hooks_set_busy(0);
    return 0;
}

/* A trace function for one purpose: the first line of __main__. */
static int
entry_trace(PyObject *unused, PyObject *frame, int what, PyObject *arg)
{
    PyObject *globals, *name;
    Py_ssize_t n;
    const char *text;
    int is_main;

    (void)unused;
    (void)arg;
    if (what != SPY_TRACE_LINE || spy_hooks_busy()) {
        return 0;
    }
    globals = spy_py.PyObject_GetAttrString(frame, "f_globals");
    name = globals != NULL ? spy_py.PyDict_GetItemString(globals, "__name__")
                           : NULL;
    text = name != NULL ? spy_py.PyUnicode_AsUTF8AndSize(name, &n) : NULL;
    is_main = text != NULL && strcmp(text, "__main__") == 0;
    if (globals != NULL) {
        spy_py.Py_DecRef(globals);
    }
    spy_py.PyErr_Clear();
    if (!is_main) {
        return 0;
    }
    spy_hooks_set_busy(1);
    spy_py.PyEval_SetTrace(NULL, NULL);
    spy_py.PyErr_Clear();
    stop("entry", NULL, NULL, 0, 0, frame, "Paused on entry");
    spy_hooks_set_busy(0);
    return 0;
}

/* ---- events ---------------------------------------------------------------- */

int
spy_debug_active(void)
{
    return D.current != NULL || D.break_on_denied || D.stop_on_entry
           || D.pause_requested || D.step_thread != 0;
}

static void
free_retired(void)
{
    struct breakpoint_set *keep = NULL, *set, *next;

    pthread_mutex_lock(&D.lock);
    set = D.retired;
    D.retired = NULL;
    for (; set != NULL; set = next) {
        next = set->next_retired;
        if (set->users == 0) {
            free_set(set);
        }
        else {
            set->next_retired = keep;
            keep = set;
        }
    }
    D.retired = keep;
    pthread_mutex_unlock(&D.lock);
}

static int
hits_pass(struct breakpoint *bp)
{
    long long h = ++bp->hits;

    switch (bp->hit_test) {
    case HIT_ALWAYS: return 1;
    case HIT_AT_LEAST: return h >= bp->hit_count;
    case HIT_MORE: return h > bp->hit_count;
    case HIT_EXACTLY: return h == bp->hit_count;
    case HIT_FEWER: return h < bp->hit_count;
    case HIT_AT_MOST: return h <= bp->hit_count;
    case HIT_EVERY: return h % bp->hit_count == 0;
    }
    return 1;
}

static void
send_log(struct breakpoint *bp, const char *event, PyObject *args,
         uint64_t seq)
{
    char message[4096], data[32768];
    struct spy_buf b = {data, 0, sizeof(data), 0};
    struct spy_location where;

    if (spy_agent_format_log(bp->log_message, event, args, message,
                             sizeof(message)) < 0) {
        send_breakpoint_error(bp->id, message);
        bp->rule.broken = 1;
        return;
    }
    spy_buf_lit(&b, "{\"type\":\"log\",\"breakpointId\":");
    spy_buf_put_i64(&b, bp->id);
    spy_buf_lit(&b, ",\"seq\":");
    spy_buf_put_u64(&b, seq);
    spy_buf_lit(&b, ",\"message\":");
    spy_buf_put_json_string(&b, message, strlen(message));
    if (spy_location_get(&where)) {
        spy_buf_lit(&b, ",\"file\":");
        spy_buf_put_json_string(&b, where.file, strlen(where.file));
        spy_buf_lit(&b, ",\"line\":");
        spy_buf_put_i64(&b, where.line);
    }
    spy_buf_lit(&b, "}\n");
    send_message(&b);
}

/* The first breakpoint that stops here (logpoints on the way log). */
static struct breakpoint *
matching_breakpoint(struct breakpoint_set *set, const char *event,
                    PyObject *args, uint64_t seq)
{
    for (size_t i = 0; i < set->count; i++) {
        struct breakpoint *bp = &set->items[i];
        char why[512];
        int holds = 1;

        if (bp->rule.broken || fnmatch(bp->rule.glob, event, 0) != 0) {
            continue;
        }
        if (bp->rule.condition != NULL) {
            holds = spy_agent_test_condition(&bp->rule, event, args, why,
                                             sizeof(why));
            if (holds < 0) {
                /* Not compiling disables it; raising here only skips. */
                if (!bp->rule.reported) {
                    send_breakpoint_error(bp->id, why);
                    bp->rule.reported = 1;
                }
                bp->rule.broken = holds == -1;
                continue;
            }
        }
        if (!holds || !hits_pass(bp)) {
            continue;
        }
        if (bp->log_message != NULL) {
            send_log(bp, event, args, seq);
            continue;
        }
        return bp;
    }
    return NULL;
}

int
spy_debug_event(const char *event, PyObject *args, uint64_t seq,
                const char *denied_by)
{
    pid_t self = spy_thread_id();
    const char *reason = NULL;
    long long breakpoint_id = 0;
    char target[SPY_TARGET_MAX], description[SPY_TARGET_MAX + 300];
    struct breakpoint_set *set;

    if (D.stop_on_entry && strncmp(event, "cpython.run_", 12) == 0) {
        /* Start-up is over and nothing of the program has run. */
        D.stop_on_entry = 0;
        spy_py.PyEval_SetTrace(entry_trace, NULL);
        spy_py.PyErr_Clear();
    }
    if (D.retired != NULL) {
        free_retired();
    }
    if (D.step_thread == self) {
        D.step_thread = 0;
        reason = "step";
    }
    else if (D.pause_requested) {
        D.pause_requested = 0;
        reason = "pause";
    }
    else if (denied_by != NULL && D.break_on_denied) {
        reason = "exception";
    }
    else if (D.current != NULL) {
        struct breakpoint *bp;

        pthread_mutex_lock(&D.lock);
        set = D.current;
        set->users++;
        pthread_mutex_unlock(&D.lock);
        bp = matching_breakpoint(set, event, args, seq);
        if (bp != NULL) {
            reason = bp->is_filter ? "exception" : "breakpoint";
            breakpoint_id = bp->id;
        }
        pthread_mutex_lock(&D.lock);
        set->users--;
        pthread_mutex_unlock(&D.lock);
    }
    if (reason == NULL) {
        return 0;
    }
    spy_guard_target(event, args, target, sizeof(target));
    if (denied_by != NULL) {
        snprintf(description, sizeof(description), "Refused by %s: %s %s",
                 denied_by, event, target);
    }
    else {
        snprintf(description, sizeof(description), "Paused on %s %s", event,
                 target);
    }
    return stop(reason, event, args, seq, breakpoint_id,
                spy_py.PyEval_GetFrame(), description) == RESUME_DENY;
}
