#define _GNU_SOURCE
#include "channel.h"

#include "buf.h"
#include "debug.h"
#include "fdtable.h"
#include "json.h"
#include "stream.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static struct {
    char *path;
    char *token;
    struct spy_channel_info info;
    char *config;
    size_t config_len;
    int fd;
} C = {.fd = -1};

/* Threads waiting for the answer to a prompt. */
struct prompt_waiter {
    long long id;
    int answered;
    enum spy_prompt_answer answer;
    struct prompt_waiter *next;
};

static struct {
    pthread_mutex_t lock;
    pthread_cond_t answered;
    struct prompt_waiter *waiters;
    long long next_id;
} P = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, NULL, 0};

/* A line reader over one socket; `pending` keeps what arrived after the
 * last complete line. */
struct line_reader {
    int fd;
    char *data;
    size_t len;
    size_t cap;
    size_t skip;            /* consumed bytes at the front */
    int discarding;         /* inside an over-long line */
};

static void
send_line(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t k = send(fd, p, n, MSG_NOSIGNAL);

        if (k < 0) {
            if (errno == EINTR) {
                continue;
            }
            spy_fatal("cannot write to the audit channel", strerror(errno));
        }
        p += k;
        n -= (size_t)k;
    }
}

/* Returns the next line (without its newline) in *line, or 0 at the end
 * of the stream.  Over-long lines come back once with *too_long set. */
static int
read_line(struct line_reader *r, char **line, size_t *n, int *too_long,
          int timeout_ms)
{
    for (;;) {
        char *start = r->data + r->skip;
        char *nl = memchr(start, '\n', r->len - r->skip);

        if (nl != NULL) {
            int was_discarding = r->discarding;

            *line = start;
            *n = (size_t)(nl - start);
            r->skip = (size_t)(nl - r->data) + 1;
            r->discarding = 0;
            *too_long = was_discarding;
            if (was_discarding) {
                continue;       /* the tail of a line already reported */
            }
            return 1;
        }
        if (r->skip > 0) {
            memmove(r->data, start, r->len - r->skip);
            r->len -= r->skip;
            r->skip = 0;
        }
        if (r->len == SPY_CHANNEL_MAX_LINE) {
            *line = r->data;
            *n = 200;
            *too_long = 1;
            r->len = 0;
            if (!r->discarding) {
                r->discarding = 1;
                return 1;
            }
        }
        if (r->len == r->cap) {
            size_t cap = r->cap * 2;
            char *grown = realloc(r->data, cap);

            if (grown == NULL) {
                spy_fatal("out of memory reading the audit channel", NULL);
            }
            r->data = grown;
            r->cap = cap;
        }
        if (timeout_ms >= 0) {
            struct pollfd pfd = {r->fd, POLLIN, 0};
            int ready = poll(&pfd, 1, timeout_ms);

            if (ready == 0) {
                spy_fatal("the audit channel did not answer the handshake",
                          "timed out");
            }
        }
        ssize_t k = recv(r->fd, r->data + r->len, r->cap - r->len, 0);
        if (k < 0 && errno == EINTR) {
            continue;
        }
        if (k <= 0) {
            return 0;
        }
        r->len += (size_t)k;
    }
}

static void
line_reader_init(struct line_reader *r, int fd)
{
    r->fd = fd;
    r->cap = 4096;
    r->len = 0;
    r->skip = 0;
    r->discarding = 0;
    r->data = malloc(r->cap);
    if (r->data == NULL) {
        spy_fatal("out of memory reading the audit channel", NULL);
    }
}

/* {"type":"error","message":...,"line":...}: the echo is cut to 200
 * bytes and made ASCII so the answer is always valid JSON. */
void
spy_channel_protocol_error(const char *message, const char *line, size_t n)
{
    /* Room for the worst case: 200 control characters escaped as \u00XX
     * (1200 bytes) after the longest message (under 100). */
    char data[2048];
    char echo[200];
    struct spy_buf b = {data, 0, sizeof(data), 0};

    if (n > sizeof(echo)) {
        n = sizeof(echo);
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)line[i];
        echo[i] = c < 0x80 ? (char)c : '?';
    }
    spy_buf_lit(&b, "{\"type\":\"error\",\"message\":");
    spy_buf_put_json_string(&b, message, strlen(message));
    spy_buf_lit(&b, ",\"line\":");
    spy_buf_put_json_string(&b, echo, n);
    spy_buf_lit(&b, "}\n");
    spy_stream_control(b.data, b.len);
}

struct control_fields {
    struct spy_json_value type;
    struct spy_json_value id;
    struct spy_json_value answer;
    struct spy_json_value protocol;
    struct spy_json_value message;
    struct spy_json_value config;
};

static int
collect_field(const struct spy_json_value *key,
              const struct spy_json_value *value, void *ctx)
{
    struct control_fields *f = ctx;

    if (spy_json_string_is(key, "type")) {
        f->type = *value;
    }
    else if (spy_json_string_is(key, "id")) {
        f->id = *value;
    }
    else if (spy_json_string_is(key, "answer")) {
        f->answer = *value;
    }
    else if (spy_json_string_is(key, "protocol")) {
        f->protocol = *value;
    }
    else if (spy_json_string_is(key, "message")) {
        f->message = *value;
    }
    else if (spy_json_string_is(key, "config")) {
        f->config = *value;
    }
    return 0;
}

/* Parses a control line into its fields; returns an error text or NULL. */
static const char *
parse_control(const char *line, size_t n, struct control_fields *f)
{
    struct spy_json_value root;
    const char *error = NULL;

    memset(f, 0, sizeof(*f));
    f->type.kind = f->id.kind = f->protocol.kind = SPY_JSON_NULL;
    f->answer.kind = SPY_JSON_NULL;
    f->message.kind = f->config.kind = SPY_JSON_NULL;
    if (spy_json_parse(line, n, &root, &error) < 0) {
        return error;
    }
    if (root.kind != SPY_JSON_OBJECT) {
        return "a control message must be a JSON object";
    }
    spy_json_members(&root, collect_field, f);
    if (f->type.kind != SPY_JSON_STRING) {
        return "a control message needs a string \"type\"";
    }
    return NULL;
}

static void
answer_prompt(const struct control_fields *f, const char *line, size_t n)
{
    long long id = spy_json_integer(&f->id, -1);
    enum spy_prompt_answer answer;
    struct prompt_waiter *w;

    if (spy_json_string_is(&f->answer, "allow")) {
        answer = SPY_PROMPT_ALLOW;
    }
    else if (spy_json_string_is(&f->answer, "allowAlways")) {
        answer = SPY_PROMPT_ALLOW_ALWAYS;
    }
    else if (spy_json_string_is(&f->answer, "deny")) {
        answer = SPY_PROMPT_DENY;
    }
    else {
        spy_channel_protocol_error("promptReply needs \"answer\": \"allow\", "
                            "\"allowAlways\" or \"deny\"", line, n);
        return;
    }
    pthread_mutex_lock(&P.lock);
    for (w = P.waiters; w != NULL && w->id != id; w = w->next) {
    }
    if (w != NULL) {
        w->answer = answer;
        w->answered = 1;
        pthread_cond_broadcast(&P.answered);
    }
    pthread_mutex_unlock(&P.lock);
    if (w == NULL) {
        spy_channel_protocol_error("promptReply for no pending prompt", line, n);
    }
}

static void
handle_control(const char *line, size_t n)
{
    struct control_fields f;
    const char *error = parse_control(line, n, &f);
    char type[32];

    if (error != NULL) {
        spy_channel_protocol_error(error, line, n);
        return;
    }
    if (spy_json_string_is(&f.type, "ping")) {
        char data[64];
        struct spy_buf b = {data, 0, sizeof(data), 0};

        spy_buf_lit(&b, "{\"type\":\"pong\",\"id\":");
        spy_buf_put_i64(&b, spy_json_integer(&f.id, 0));
        spy_buf_lit(&b, "}\n");
        spy_stream_control(b.data, b.len);
        return;
    }
    if (spy_json_string_is(&f.type, "promptReply")) {
        answer_prompt(&f, line, n);
        return;
    }
    if (spy_json_string(&f.type, type, sizeof(type)) >= 0
        && spy_debug_control(type, line, n)) {
        return;
    }
    spy_channel_protocol_error("unknown control message type", line, n);
}

static void *
control_reader_main(void *arg)
{
    struct line_reader *r = arg;
    sigset_t all;
    char *line;
    size_t n;
    int too_long;

    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    if (spy_fdtable_go_private()) {
        /* Its own reference to the socket, kept while it reads. */
        r->fd = spy_fdtable_reach(r->fd);
    }
    while (read_line(r, &line, &n, &too_long, -1)) {
        if (too_long) {
            spy_channel_protocol_error("control message longer than 1 MiB", line, n);
            continue;
        }
        handle_control(line, n);
    }
    if (spy_stream_active()) {
        spy_stream_verify();    /* the program's doing? says so and ends */
        spy_fatal("the audit channel closed; stopping the program", NULL);
    }
    return NULL;
}

static void
put_hello(struct spy_buf *b)
{
    const struct spy_channel_info *i = &C.info;

    spy_buf_lit(b, "{\"type\":\"hello\",\"protocol\":");
    spy_buf_put_u64(b, SPY_PROTOCOL_VERSION);
    spy_buf_lit(b, ",\"token\":");
    spy_buf_put_json_string(b, C.token, strlen(C.token));
    spy_buf_lit(b, ",\"pid\":");
    spy_buf_put_i64(b, getpid());
    spy_buf_lit(b, ",\"ppid\":");
    /* A forked child names the process it was forked from, as its records
     * do, even when that one has exited since and it was re-parented: the
     * reader's peer check follows the name (adapter/peers.ts). */
    spy_buf_put_i64(b, spy_stream_pid() != 0 ? spy_stream_ppid() : getppid());
    spy_buf_lit(b, ",\"python\":");
    spy_buf_put_json_string(b, i->python_version, strlen(i->python_version));
    spy_buf_lit(b, ",\"mode\":");
    spy_buf_put_json_string(b, i->mode, strlen(i->mode));
    spy_buf_lit(b, ",\"executable\":");
    spy_buf_put_json_string(b, i->executable, strlen(i->executable));
    spy_buf_lit(b, ",\"freeThreaded\":");
    if (i->free_threaded) {
        spy_buf_lit(b, "true}\n");
    }
    else {
        spy_buf_lit(b, "false}\n");
    }
}

/* Reads the editor's control messages on the socket from now on (r holds
 * what was read past the welcome).  Only once the socket is one of the
 * stream's destinations: a ping that came with the welcome is answered
 * there, never into the void. */
static void
start_control_reader(struct line_reader *r)
{
    pthread_t thread;

    if (pthread_create(&thread, NULL, control_reader_main, r) != 0) {
        spy_fatal("cannot start the audit channel's reader thread",
                  strerror(errno));
    }
    pthread_detach(thread);
}

/* A reader that falls behind wakes the launcher, blocked in send(),
 * each time its socket buffer drains to a quarter: the default 208 KiB
 * made that thousands of wake-ups a second on a storm, each an
 * inter-processor interrupt (dear in a VM).  1 MiB (the kernel doubles
 * what it is asked; net.core.wmem_max caps it) makes them rare: the end to
 * end storm ran 0.87x the wall time.  A control message queued behind
 * a full buffer waits for at most 1 MiB of records to be read: a few
 * milliseconds. */
static void
set_send_buffer(int fd)
{
    int size = 512 * 1024;

    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
}

/* Connects and completes the handshake; returns the socket, and in
 * *reader its line reader for start_control_reader. */
static int
connect_and_handshake(struct line_reader **reader)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    char hello_data[8192];
    struct spy_buf hello = {hello_data, 0, sizeof(hello_data), 0};
    struct line_reader *r;
    struct control_fields f;
    const char *error;
    char *line;
    size_t n;
    int too_long, fd;

    if (strlen(C.path) >= sizeof(addr.sun_path)) {
        spy_fatal("the audit channel's socket path is too long", C.path);
    }
    strcpy(addr.sun_path, C.path);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
        spy_fatal("cannot connect to the audit channel", strerror(errno));
    }
    set_send_buffer(fd);
    put_hello(&hello);
    if (hello.full) {
        spy_fatal("the handshake message is too long", C.info.executable);
    }
    send_line(fd, hello.data, hello.len);

    r = malloc(sizeof(*r));
    if (r == NULL) {
        spy_fatal("out of memory for the audit channel", NULL);
    }
    line_reader_init(r, fd);
    if (!read_line(r, &line, &n, &too_long,
                   SPY_CHANNEL_HANDSHAKE_SECONDS * 1000) || too_long) {
        spy_fatal("the audit channel closed during the handshake", NULL);
    }
    error = parse_control(line, n, &f);
    if (error != NULL) {
        spy_fatal("the audit channel answered the handshake with "
                  "malformed JSON", error);
    }
    if (spy_json_string_is(&f.type, "reject")) {
        char why[1024] = "no reason given";

        spy_json_string(&f.message, why, sizeof(why));
        spy_fatal("the audit channel refused this process", why);
    }
    if (!spy_json_string_is(&f.type, "welcome")) {
        spy_fatal("the audit channel did not answer the handshake with "
                  "welcome", NULL);
    }
    if (spy_json_integer(&f.protocol, -1) != SPY_PROTOCOL_VERSION) {
        spy_fatal("the audit channel speaks another protocol version "
                  "(this launcher speaks 1)", NULL);
    }
    if (f.config.kind == SPY_JSON_OBJECT && C.config == NULL) {
        C.config = strndup(f.config.start, f.config.len);
        C.config_len = f.config.len;
    }
    else if (f.config.kind == SPY_JSON_OBJECT) {
        /* A fork keeps the policies it inherited, but its own reader (a
         * child debug session) chooses its breakpoints, in force from the
         * event that made it connect. */
        char why[512];

        if (spy_debug_configure(f.config.start, f.config.len, why,
                                sizeof(why)) < 0) {
            fprintf(stderr, "spython: the breakpoints of process %d's "
                    "welcome are ignored: %s\n", (int)getpid(), why);
        }
    }
    *reader = r;
    return fd;
}

/* In a forked child: a connection of its own, with its own hello.  The
 * stream calls this under its lock and makes the new socket its
 * destination before anything else may write there. */
static int
reconnect_in_child(void)
{
    struct line_reader *r;

    C.fd = connect_and_handshake(&r);
    start_control_reader(r);
    return C.fd;
}

/* Takes a variable out of the environment.  The value is also wiped
 * where it stands: unsetenv() leaves the process's original environment
 * block, which /proc/PID/environ shows, untouched. */
static char *
take_variable(const char *name)
{
    char *value = getenv(name);
    char *copy = value != NULL ? strdup(value) : NULL;

    unsetenv(name);
    if (value != NULL) {
        /* getenv() pointed just past "NAME="; glibc never frees it. */
        char *entry = value - strlen(name) - 1;

        memset(entry, 0, strlen(entry));
    }
    return copy;
}

int
spy_channel_open_from_environment(const struct spy_channel_info *info)
{
    struct line_reader *r;

    C.path = take_variable("SPYTHON_CHANNEL");
    C.token = take_variable("SPYTHON_TOKEN");
    if (C.path == NULL) {
        return 0;
    }
    if (C.token == NULL) {
        spy_fatal("SPYTHON_CHANNEL is set but SPYTHON_TOKEN is not", NULL);
    }
    C.info = *info;
    C.fd = connect_and_handshake(&r);
    spy_stream_set_reconnect(reconnect_in_child);
    if (spy_stream_add(C.fd, 1, "the audit channel") < 0) {
        spy_fatal("too many audit destinations", NULL);
    }
    start_control_reader(r);
    return 1;
}

const char *
spy_channel_config(size_t *len)
{
    if (C.config == NULL) {
        *len = 2;
        return "{}";
    }
    *len = C.config_len;
    return C.config;
}

void
spy_channel_address(const char **path, const char **token)
{
    *path = C.path;
    *token = C.token;
}

int
spy_channel_prompt(const char *event, const char *target,
                   enum spy_prompt_answer *answer)
{
    struct prompt_waiter self = {0, 0, SPY_PROMPT_DENY, NULL};
    /* The event name (256 bytes) and target may each grow sixfold when
     * escaped: a cut line would leave the thread waiting forever. */
    char data[8192];
    struct spy_buf b = {data, 0, sizeof(data), 0};

    if (C.fd < 0 || !spy_stream_active()) {
        return -1;
    }
    pthread_mutex_lock(&P.lock);
    self.id = ++P.next_id;
    self.next = P.waiters;
    P.waiters = &self;
    pthread_mutex_unlock(&P.lock);

    spy_buf_lit(&b, "{\"type\":\"prompt\",\"id\":");
    spy_buf_put_i64(&b, self.id);
    spy_buf_lit(&b, ",\"event\":");
    spy_buf_put_json_string(&b, event, strnlen(event, 256));
    spy_buf_lit(&b, ",\"target\":");
    spy_buf_put_json_string(&b, target, strlen(target));
    spy_buf_lit(&b, ",\"pid\":");
    spy_buf_put_i64(&b, getpid());
    spy_buf_lit(&b, ",\"tid\":");
    spy_buf_put_i64(&b, spy_thread_id());
    spy_buf_lit(&b, "}\n");
    spy_stream_control(b.data, b.len);

    /* The reader thread answers; if the reader goes away the process
     * ends, so this wait is never forever. */
    pthread_mutex_lock(&P.lock);
    while (!self.answered) {
        pthread_cond_wait(&P.answered, &P.lock);
    }
    for (struct prompt_waiter **w = &P.waiters; *w != NULL; w = &(*w)->next) {
        if (*w == &self) {
            *w = self.next;
            break;
        }
    }
    pthread_mutex_unlock(&P.lock);
    *answer = self.answer;
    return 0;
}

void
spy_channel_send_exit(int status)
{
    char data[64];
    struct spy_buf b = {data, 0, sizeof(data), 0};

    if (C.fd < 0) {
        return;
    }
    spy_buf_lit(&b, "{\"type\":\"exit\",\"status\":");
    spy_buf_put_i64(&b, status);
    spy_buf_lit(&b, "}\n");
    spy_stream_control(b.data, b.len);
}
