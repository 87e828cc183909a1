/* libFuzzer target: the launcher's end of the channel, from the bytes the
 * reader sends to the messages the launcher answers with, without Python.
 *
 * core/channel.c is compiled whole into this unit (its parser and
 * dispatcher are static), unchanged except that SPY_CHANNEL_MAX_LINE is
 * 8 KiB instead of 1 MiB so that small inputs reach the over-long-line
 * path.  The input is written to one end of a socketpair and read back
 * with channel.c's own read_line(), as the reader thread does:
 *
 *   - the first line is the handshake answer: parse_control() and the
 *     checks connect_and_handshake() makes (welcome/reject, protocol,
 *     message), then, for a welcome's config object, what session.c does
 *     with it: spy_policy_merge_json() and spy_debug_configure();
 *   - every later line goes through handle_control(), exactly as in
 *     control_reader_main() (ping, promptReply against three pending
 *     prompts, setBreakpoints, pause, continue, request, errors);
 *   - after each line (program running), the breakpoints meet three events
 *     as in a hook thread: globs, hit counts, stub conditions, logpoints;
 *   - the whole input runs twice: once with the program running, once
 *     with a thread stopped, when continue/request lines are queued and
 *     then served by debug.c's serve_one() (request bodies come from a
 *     stub agent).
 *
 * Checked besides what ASan/UBSan catch: every line the launcher sends
 * back (spy_stream_control) is one complete line holding one JSON object
 * with a string "type", valid UTF-8, and its "error" echo stays short.
 *
 * Run: make -C native fuzz && dist-asan/fuzz/fuzz_control native/fuzz/corpus/fuzz_control
 */
#define _GNU_SOURCE
#include "../core/channel.h"

#undef SPY_CHANNEL_MAX_LINE
#define SPY_CHANNEL_MAX_LINE (8 * 1024)

#include "../core/channel.c"

#include "../core/agent.h"
#include "../core/codecheck.h"
#include "../core/guard.h"
#include "../core/hooks.h"
#include "../core/location.h"
#include "../core/policy.h"
#include "../core/pyapi.h"

#include "fuzz_control.h"

#include <stdint.h>

/* Inputs are written to the socket at once: larger ones are cut here. */
#define FUZZ_MAX_INPUT (64 * 1024)

/* ---- stand-ins for the parts of the launcher that need Python or a
 * process of their own: anything unexpected ends the run loudly. ------- */

static int
fake_is_initialized(void)
{
    return 0;       /* pause: no pending call, no nudge thread */
}

static void
unexpected(const char *what)
{
    fprintf(stderr, "fuzz_control: unexpected call of %s\n", what);
    abort();
}

void
spy_fatal(const char *message, const char *detail)
{
    fprintf(stderr, "fuzz_control: spy_fatal(%s, %s)\n", message,
            detail != NULL ? detail : "NULL");
    abort();
}

int
spy_stream_active(void)
{
    return 0;
}

int
spy_stream_add(int fd, int is_socket, const char *what)
{
    unexpected("spy_stream_add");
    return -1;
}

void
spy_stream_set_reconnect(spy_stream_reconnect_fn reconnect)
{
    unexpected("spy_stream_set_reconnect");
}

void
spy_stream_verify(void)
{
    unexpected("spy_stream_verify");
}

pid_t
spy_stream_pid(void)
{
    return 4242;
}

pid_t
spy_stream_ppid(void)
{
    return 4200;
}

pid_t
spy_thread_id(void)
{
    return 4242;
}

/* Conditions hold unless they say "False"; "raise" makes one fail as a
 * raising condition does (-2), "syntax" as one that does not compile. */
int
spy_agent_test_condition(struct spy_rule *rule, const char *event,
                         PyObject *args, char *err, size_t err_size)
{
    FUZZ_CHECK(rule->condition != NULL);
    if (strstr(rule->condition, "syntax") != NULL) {
        snprintf(err, err_size, "SyntaxError in '%s'", rule->condition);
        return -1;
    }
    if (strstr(rule->condition, "raise") != NULL) {
        snprintf(err, err_size, "ValueError: %s\n\x01\"", rule->condition);
        return -2;
    }
    return strstr(rule->condition, "False") == NULL;
}

/* A logpoint's message: the template itself ("{" fails, as a template
 * that does not evaluate does). */
int
spy_agent_format_log(const char *template, const char *event,
                     PyObject *args, char *out, size_t out_size)
{
    snprintf(out, out_size, "%s", template);
    return strchr(template, '{') != NULL ? -1 : 0;
}

void
spy_agent_begin_stop(const char *event, PyObject *args, PyObject *frame,
                     long thread_id)
{
    unexpected("spy_agent_begin_stop");
}

void
spy_agent_end_stop(void)
{
    unexpected("spy_agent_end_stop");
}

/* The agent answers inspection requests in Python; here the contract
 * only: the arguments are one JSON value, the answer a malloc'ed JSON
 * body or NULL with a message (some with quotes and control characters,
 * which the launcher must escape). */
char *
spy_agent_request(const char *command, const char *arguments,
                  size_t arguments_len, char *err, size_t err_size)
{
    struct spy_json_value v;
    const char *error = NULL;

    FUZZ_CHECK(spy_json_parse(arguments, arguments_len, &v, &error) == 0);
    if (strcmp(command, "threads") == 0) {
        return strdup("{\"threads\":[{\"id\":4242,\"name\":\"MainThread\"}]}");
    }
    if (strcmp(command, "evaluate") == 0) {
        char *body = malloc(arguments_len + 16);

        FUZZ_CHECK(body != NULL);
        memcpy(body, "{\"echo\":", 8);
        memcpy(body + 8, arguments, arguments_len);
        memcpy(body + 8 + arguments_len, "}", 2);
        return body;
    }
    snprintf(err, err_size, "unknown \"command\" '%s'\n\x01\x1f\\", command);
    return NULL;
}

void
spy_guard_target(const char *event, PyObject *args, char *out,
                 size_t out_size)
{
    unexpected("spy_guard_target");
}

int
spy_hooks_busy(void)
{
    unexpected("spy_hooks_busy");
    return 0;
}

void
spy_hooks_set_busy(int busy)
{
    unexpected("spy_hooks_set_busy");
}

int
spy_location_get(struct spy_location *out)
{
    return 0;
}

int
spy_agent_loaded(void)
{
    return 0;
}

int
spy_codecheck_deny_interactive(void)
{
    return 0;
}

/* ---- what the launcher sends back -------------------------------------- */

static size_t sent_lines;

static int
find_type(const struct spy_json_value *key, const struct spy_json_value *value,
          void *ctx)
{
    if (spy_json_string_is(key, "type")) {
        *(struct spy_json_value *)ctx = *value;
    }
    return 0;
}

static int
find_line(const struct spy_json_value *key, const struct spy_json_value *value,
          void *ctx)
{
    if (spy_json_string_is(key, "line")) {
        *(struct spy_json_value *)ctx = *value;
    }
    return 0;
}

void
spy_stream_control(const char *line, size_t len)
{
    struct spy_json_value root, type = {SPY_JSON_NULL, NULL, 0};
    const char *error = NULL;

    sent_lines++;
    if (len == 0 || line[len - 1] != '\n'
        || memchr(line, '\n', len - 1) != NULL) {
        fprintf(stderr, "fuzz_control: the launcher sent a broken line "
                "(%zu bytes, %s): %.*s\n", len,
                len > 0 && line[len - 1] == '\n' ? "embedded newline"
                                                 : "no final newline",
                (int)(len > 300 ? 300 : len), line);
        abort();
    }
    if (spy_json_parse(line, len - 1, &root, &error) < 0
        || root.kind != SPY_JSON_OBJECT) {
        fprintf(stderr, "fuzz_control: the launcher sent invalid JSON (%s): "
                "%.*s\n", error != NULL ? error : "not an object",
                (int)(len > 300 ? 300 : len), line);
        abort();
    }
    spy_json_members(&root, find_type, &type);
    FUZZ_CHECK(type.kind == SPY_JSON_STRING);
    if (spy_json_string_is(&type, "error")) {
        struct spy_json_value echo = {SPY_JSON_NULL, NULL, 0};
        char text[256];

        spy_json_members(&root, find_line, &echo);
        FUZZ_CHECK(echo.kind == SPY_JSON_STRING);
        /* The echo is the first 200 bytes of the line, made ASCII. */
        FUZZ_CHECK(spy_json_string(&echo, text, sizeof(text)) <= 200);
    }
}

/* ---- the harness ----------------------------------------------------------- */

static void
reset_rules(struct spy_rules *rules)
{
    for (size_t i = 0; i < rules->count; i++) {
        FUZZ_CHECK(rules->items[i].glob != NULL);
        free(rules->items[i].glob);
        free(rules->items[i].condition);
        FUZZ_CHECK(rules->items[i].compiled == NULL);
    }
    free(rules->items);
}

static void
reset_policy(void)
{
    struct spy_policy *p = &spy_policy;

    reset_rules(&p->deny);
    reset_rules(&p->prompt);
    reset_rules(&p->syslog);
    reset_rules(&p->journal);
    free(p->log_file);
    for (size_t i = 0; i < p->verify_exempt_count; i++) {
        free(p->verify_exempt[i]);
    }
    free(p->verify_exempt);
    free(p->xattr_name);
    free(p->manifest);
    free(p->manifest_key);
    memset(p, 0, sizeof(*p));
}

/* connect_and_handshake() after its read_line(), and what session.c does
 * with the welcome's config; where the launcher would end the process
 * (spy_fatal), this returns. */
static void
handshake(const char *line, size_t n)
{
    struct control_fields f;
    const char *error = parse_control(line, n, &f);
    char err[512];
    char *config;

    if (error != NULL) {
        FUZZ_CHECK(error[0] != '\0');
        return;
    }
    FUZZ_CHECK(f.type.kind == SPY_JSON_STRING);
    if (spy_json_string_is(&f.type, "reject")) {
        char why[1024] = "no reason given";

        spy_json_string(&f.message, why, sizeof(why));
        FUZZ_CHECK(strlen(why) < sizeof(why));
        return;
    }
    if (!spy_json_string_is(&f.type, "welcome")
        || spy_json_integer(&f.protocol, -1) != SPY_PROTOCOL_VERSION
        || f.config.kind != SPY_JSON_OBJECT) {
        return;
    }
    config = strndup(f.config.start, f.config.len);
    FUZZ_CHECK(config != NULL);
    err[0] = '\0';
    if (spy_policy_merge_json(config, f.config.len, err, sizeof(err)) < 0) {
        FUZZ_CHECK(err[0] != '\0');
    }
    else if (spy_debug_configure(config, f.config.len, err,
                                 sizeof(err)) < 0) {
        FUZZ_CHECK(err[0] != '\0');
    }
    fuzz_debug_check_current();
    free(config);
}

static void
run_stream(const uint8_t *data, size_t size, int stopped)
{
    struct prompt_waiter waiters[3];
    struct line_reader r;
    int fds[2];
    char *line;
    size_t n;
    int too_long, first = 1;

    FUZZ_CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0);
    if (size > 0) {
        ssize_t k = send(fds[1], data, size, MSG_NOSIGNAL | MSG_DONTWAIT);

        FUZZ_CHECK(k == (ssize_t)size);
    }
    close(fds[1]);

    /* Three prompts waiting for an answer, as spy_channel_prompt leaves
     * them (ids 1-3). */
    pthread_mutex_lock(&P.lock);
    for (int i = 0; i < 3; i++) {
        waiters[i] = (struct prompt_waiter){i + 1, 0, SPY_PROMPT_DENY,
                                            i < 2 ? &waiters[i + 1] : NULL};
    }
    P.waiters = &waiters[0];
    pthread_mutex_unlock(&P.lock);
    fuzz_debug_set_stopped(stopped);

    line_reader_init(&r, fds[0]);
    while (read_line(&r, &line, &n, &too_long, -1)) {
        FUZZ_CHECK(line >= r.data && line + n <= r.data + r.cap);
        FUZZ_CHECK(memchr(line, '\n', n) == NULL);
        if (too_long) {
            /* control_reader_main() */
            FUZZ_CHECK(n == 200);
            spy_channel_protocol_error("control message longer than 1 MiB", line, n);
            first = 0;
            continue;
        }
        if (first) {
            handshake(line, n);
            first = 0;
            continue;
        }
        handle_control(line, n);
        fuzz_debug_check_current();
        if (!stopped) {
            fuzz_debug_match("open");
            fuzz_debug_match("socket.connect");
            fuzz_debug_match("x");
        }
        if (stopped) {
            fuzz_debug_serve_queue();
        }
    }
    free(r.data);
    close(fds[0]);

    pthread_mutex_lock(&P.lock);
    P.waiters = NULL;
    pthread_mutex_unlock(&P.lock);
    fuzz_debug_reset();
    reset_policy();
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    spy_py.Py_IsInitialized = fake_is_initialized;
    return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > FUZZ_MAX_INPUT) {
        size = FUZZ_MAX_INPUT;
    }
    sent_lines = 0;
    run_stream(data, size, 0);
    run_stream(data, size, 1);
    return 0;
}
