#define _GNU_SOURCE
#include "systemlog.h"

#include "buf.h"
#include "location.h"
#include "policy.h"
#include "render.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* syslog(3) levels and the user facility. */
#define LEVEL_ERR 3
#define LEVEL_WARNING 4
#define LEVEL_INFO 6
#define FACILITY_USER (1 << 3)

#define MESSAGE_MAX 2048

/* Test hooks and unusual systems can point elsewhere. */
#define SYSLOG_PATH_VARIABLE "SPYTHON_SYSLOG_SOCKET"
#define JOURNAL_PATH_VARIABLE "SPYTHON_JOURNAL_SOCKET"

struct log_socket {
    const char *variable;
    const char *default_path;
    const char *what;
    int fd;
    int warned;
};

static struct log_socket syslog_socket = {
    SYSLOG_PATH_VARIABLE, "/dev/log", "syslog", -1, 0};
static struct log_socket journal_socket = {
    JOURNAL_PATH_VARIABLE, "/run/systemd/journal/socket", "the journal", -1,
    0};
static pthread_mutex_t send_lock = PTHREAD_MUTEX_INITIALIZER;

int
spy_systemlog_active(void)
{
    return spy_policy.syslog.count > 0 || spy_policy.journal.count > 0;
}

/* One datagram; a missing log daemon is said once, then not again: the
 * full record stream is elsewhere. */
static void
send_datagram(struct log_socket *s, const char *data, size_t n)
{
    const char *path = getenv(s->variable);
    struct sockaddr_un addr = {.sun_family = AF_UNIX};

    if (path == NULL || path[0] == '\0') {
        path = s->default_path;
    }
    snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path);
    pthread_mutex_lock(&send_lock);
    if (s->fd < 0) {
        s->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    }
    if (s->fd < 0 || sendto(s->fd, data, n, MSG_NOSIGNAL,
                            (struct sockaddr *)&addr, sizeof(addr)) < 0) {
        if (!s->warned) {
            s->warned = 1;
            fprintf(stderr, "spython: cannot write to %s at %s: %m "
                    "(events still reach the other destinations)\n",
                    s->what, path);
        }
    }
    pthread_mutex_unlock(&send_lock);
}

static PyObject *
argument(PyObject *args, Py_ssize_t i)
{
    return args != NULL && spy_py.PyTuple_Size(args) > i
           ? spy_py.PyTuple_GetItem(args, i) : NULL;
}

/* The human line, as the syslog sample words it where it has words. */
static int
put_message(struct spy_buf *b, const char *event, PyObject *args,
            const char *denied, const char *target)
{
    if (denied != NULL) {
        spy_buf_put(b, denied, strlen(denied));
        spy_buf_lit(b, " refused ");
        spy_buf_put(b, event, strnlen(event, 256));
        spy_buf_putc(b, ' ');
        spy_buf_put(b, target, strlen(target));
        return LEVEL_WARNING;
    }
    if (strcmp(event, "import") == 0 && argument(args, 0) != NULL) {
        PyObject *file = argument(args, 1);

        spy_buf_lit(b, "importing ");
        spy_render_str_body(b, argument(args, 0), 200, SPY_STYLE_REPR);
        if (file != NULL && file != spy_py.None) {
            spy_buf_lit(b, " from ");
            spy_render_str_body(b, file, 500, SPY_STYLE_REPR);
        }
        return LEVEL_INFO;
    }
    if (strcmp(event, "os.system") == 0 && argument(args, 0) != NULL) {
        /* The command arrives encoded; the sample shows it as text. */
        PyObject *command = argument(args, 0);
        PyObject *text = NULL;
        char *data;
        Py_ssize_t n;

        if (spy_py.PyBytes_AsStringAndSize(command, &data, &n) == 0) {
            text = spy_py.PyUnicode_DecodeFSDefaultAndSize(data, n);
        }
        spy_py.PyErr_Clear();
        spy_buf_lit(b, "os.system(");
        spy_render_value(b, text != NULL ? text : command, SPY_STYLE_REPR,
                         500);
        spy_buf_lit(b, ") attempted");
        if (text != NULL) {
            spy_py.Py_DecRef(text);
        }
        return LEVEL_ERR;
    }
    spy_buf_put(b, event, strnlen(event, 256));
    spy_buf_lit(b, ": ");
    spy_render_args(b, args, SPY_STYLE_REPR, 1000);
    return LEVEL_INFO;
}

static void
to_syslog(const char *message, size_t n, int level)
{
    char data[MESSAGE_MAX + 128], stamp[32];
    time_t now = time(NULL);
    struct tm tm;
    int k;

    localtime_r(&now, &tm);
    strftime(stamp, sizeof(stamp), "%b %e %H:%M:%S", &tm);
    k = snprintf(data, sizeof(data), "<%d>%s spython[%d]: %.*s",
                 FACILITY_USER | level, stamp, (int)getpid(), (int)n, message);
    send_datagram(&syslog_socket, data,
                  k < (int)sizeof(data) ? (size_t)k : sizeof(data) - 1);
}

/* A journal field; values with a newline use the binary form. */
static void
put_field(struct spy_buf *b, const char *name, const char *value, size_t n)
{
    spy_buf_put(b, name, strlen(name));
    if (memchr(value, '\n', n) == NULL) {
        spy_buf_putc(b, '=');
        spy_buf_put(b, value, n);
    }
    else {
        unsigned char size[8];
        uint64_t v = n;

        for (int i = 0; i < 8; i++) {
            size[i] = (unsigned char)(v >> (8 * i));
        }
        spy_buf_putc(b, '\n');
        spy_buf_put(b, (const char *)size, 8);
        spy_buf_put(b, value, n);
    }
    spy_buf_putc(b, '\n');
}

static void
to_journal(const char *event, PyObject *args, const char *message, size_t n,
           int level, const char *denied)
{
    char data[16384], args_json[8192], number[24];
    struct spy_buf b = {data, 0, sizeof(data), 0};
    struct spy_buf a = {args_json, 0, sizeof(args_json), 0};
    struct spy_location where;

    spy_render_args(&a, args, SPY_STYLE_JSON, sizeof(args_json) / 2);
    put_field(&b, "MESSAGE", message, n);
    snprintf(number, sizeof(number), "%d", level);
    put_field(&b, "PRIORITY", number, strlen(number));
    put_field(&b, "SYSLOG_IDENTIFIER", "spython", 7);
    put_field(&b, "SPYTHON_EVENT", event, strnlen(event, 256));
    put_field(&b, "SPYTHON_ARGS", a.data, a.full ? 0 : a.len);
    if (denied != NULL) {
        put_field(&b, "SPYTHON_DENIED", denied, strlen(denied));
    }
    if (spy_location_get(&where)) {
        put_field(&b, "CODE_FILE", where.file, strlen(where.file));
        snprintf(number, sizeof(number), "%d", where.line);
        put_field(&b, "CODE_LINE", number, strlen(number));
        put_field(&b, "CODE_FUNC", where.func, strlen(where.func));
    }
    if (!b.full) {
        send_datagram(&journal_socket, b.data, b.len);
    }
}

void
spy_systemlog_event(const char *event, PyObject *args, const char *denied,
                    const char *target)
{
    int to_sys = spy_policy.syslog.count > 0
                 && (denied != NULL
                     || spy_rules_first("auditLog.syslog", &spy_policy.syslog,
                                        event, args, 0) != NULL);
    int to_jnl = spy_policy.journal.count > 0
                 && (denied != NULL
                     || spy_rules_first("auditLog.journal",
                                        &spy_policy.journal, event, args,
                                        0) != NULL);
    char message[MESSAGE_MAX];
    struct spy_buf b = {message, 0, sizeof(message), 0};
    int level;

    if (!to_sys && !to_jnl) {
        return;
    }
    level = put_message(&b, event, args, denied, target);
    spy_py.PyErr_Clear();
    if (to_sys) {
        to_syslog(b.data, b.len, level);
    }
    if (to_jnl) {
        to_journal(event, args, b.data, b.len, level, denied);
    }
}
