#define _GNU_SOURCE
#include "session.h"

#include "channel.h"
#include "children.h"
#include "codecheck.h"
#include "debug.h"
#include "hooks.h"
#include "location.h"
#include "policy.h"
#include "stream.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Signals that end a process by default and that a handler can still
 * catch: the stream is flushed, then the signal is raised again so the
 * exit status stays true. */
static const int fatal_signals[] = {
    SIGTERM, SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT,
};

static void
on_fatal_signal(int signo)
{
    spy_stream_flush_at_exit();
    /* SA_RESETHAND restored the default action. */
    raise(signo);
}

static void
install_signal_handlers(void)
{
    static char alternate_stack[64 * 1024];
    stack_t stack = {.ss_sp = alternate_stack,
                     .ss_size = sizeof(alternate_stack)};
    struct sigaction action;

    /* A stack overflow must still be able to flush. */
    sigaltstack(&stack, NULL);
    memset(&action, 0, sizeof(action));
    action.sa_handler = on_fatal_signal;
    action.sa_flags = SA_RESETHAND | SA_NODEFER | SA_ONSTACK;
    sigemptyset(&action.sa_mask);
    for (size_t i = 0; i < sizeof(fatal_signals) / sizeof(*fatal_signals);
         i++) {
        sigaction(fatal_signals[i], &action, NULL);
    }
}

/* Set once spy_session_start has run: exit() reports the status from then on. */
static int session_started;

int
spy_session_started(void)
{
    return session_started;
}

static void
flush_at_exit(void)
{
    spy_stream_flush_at_exit();
}

/* os._exit() and C code calling _exit() skip atexit handlers: the
 * launcher and the shim both define _exit so libpython's calls land here
 * first (the executable and LD_PRELOAD objects come first in symbol
 * lookup). */
__attribute__((visibility("default"))) void
_exit(int status)
{
    spy_stream_flush_at_exit();
    syscall(SYS_exit_group, status);
    __builtin_unreachable();
}

/* The configuration a child gets: every line in force here. */
static void
start_children(const struct spy_session_options *options,
               const char *welcome, size_t welcome_len)
{
    size_t own = options->config != NULL ? strlen(options->config) : 0;
    char *all = malloc(own + welcome_len + 2);

    if (all == NULL) {
        spy_fatal("out of memory for the sub-process entry", NULL);
    }
    memcpy(all, options->config != NULL ? options->config : "", own);
    all[own] = '\0';
    if (welcome != NULL) {
        if (own > 0 && all[own - 1] != '\n') {
            all[own++] = '\n';
        }
        memcpy(all + own, welcome, welcome_len);
        all[own + welcome_len] = '\0';
    }
    spy_children_start(options->launcher, options->executable, options->mode,
                       all, options->entry);
    free(all);
}

void
spy_session_start(const struct spy_session_options *options)
{
    struct spy_channel_info info = {
        options->python_version,
        options->mode,
        options->executable,
        options->free_threaded,
    };
    struct spy_hooks_config hooks = {
        options->log_stderr,
        options->log_minimal,
    };

    const char *config;
    size_t config_len;
    char error[512];
    int log;

    session_started = 1;
    install_signal_handlers();
    spy_location_use_cache(!options->free_threaded);
    spy_pyapi_set_runtime(options->python_version, options->free_threaded);
    for (const char *line = options->config; line != NULL && *line != '\0';) {
        const char *end = strchrnul(line, '\n');

        if (spy_policy_merge_json(line, (size_t)(end - line), error,
                                  sizeof(error)) < 0) {
            spy_fatal("bad policy configuration", error);
        }
        line = *end == '\n' ? end + 1 : end;
    }
    config = NULL;
    config_len = 0;
    if (spy_channel_open_from_environment(&info)) {
        config = spy_channel_config(&config_len);
        /* A child already has its parent's whole configuration. */
        if ((options->entry == NULL
             && spy_policy_merge_json(config, config_len, error,
                                      sizeof(error)) < 0)
            || spy_debug_configure(config, config_len, error,
                                   sizeof(error)) < 0) {
            spy_fatal("the editor sent a bad configuration", error);
        }
    }
    if (spy_policy.sub_process) {
        start_children(options, options->entry == NULL ? config : NULL,
                       config_len);
    }
    if (spy_policy.log_file != NULL) {
        /* Children share it (O_APPEND keeps their batches whole); only
         * the first process starts it afresh. */
        log = open(spy_policy.log_file,
                   O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC
                   | (options->entry == NULL ? O_TRUNC : 0), 0600);
        if (log < 0) {
            snprintf(error, sizeof(error), "cannot open the audit log %s",
                     spy_policy.log_file);
            spy_fatal(error, strerror(errno));
        }
        spy_stream_add(log, 0, "the audit log");
    }
    atexit(flush_at_exit);
    if (spy_hooks_install(&hooks) < 0) {
        spy_fatal("CPython refused to install the audit hook", NULL);
    }
    spy_codecheck_start();
}

/* libpython ends the process itself in places (Py_Exit calls exit()),
 * never returning to main(): the launcher and the shim both define exit
 * so the reader still learns the status. */
__attribute__((visibility("default"))) void
exit(int status)
{
    static int finishing;
    void (*libc_exit)(int) = (void (*)(int))dlsym(RTLD_NEXT, "exit");

    if (!finishing && session_started) {
        finishing = 1;
        spy_session_finish(status, 1);
    }
    libc_exit(status);
    __builtin_unreachable();
}

void
spy_session_finish(int status, int status_known)
{
    static int finished;

    if (finished) {
        return;
    }
    finished = 1;
    if (status_known) {
        spy_channel_send_exit(status);
    }
    spy_stream_close();
}
