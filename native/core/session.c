#define _GNU_SOURCE
#include "session.h"

#include "channel.h"
#include "hooks.h"
#include "stream.h"

#include <signal.h>
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

static void
flush_at_exit(void)
{
    spy_stream_flush_at_exit();
}

/* os._exit() and C code calling _exit() skip atexit handlers: the
 * launcher and the shim both define _exit so libpython's calls land here
 * first (the executable and LD_PRELOAD objects come first in symbol
 * lookup). */
void
_exit(int status)
{
    spy_stream_flush_at_exit();
    syscall(SYS_exit_group, status);
    __builtin_unreachable();
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

    install_signal_handlers();
    spy_channel_open_from_environment(&info);
    atexit(flush_at_exit);
    if (spy_hooks_install(&hooks) < 0) {
        spy_fatal("CPython refused to install the audit hook", NULL);
    }
}

void
spy_session_finish(int status, int status_known)
{
    if (status_known) {
        spy_channel_send_exit(status);
    }
    spy_stream_close();
}
