#define _GNU_SOURCE
#include "fdtable.h"

#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

/* The process's pidfd, on a thread with a table of its own; else -1.
 * Closed with the raw system call: fdguard.c's close() judges numbers of
 * the process's table, not this one's. */
static __thread int tls_pidfd = -1;

static void
close_raw(int fd)
{
    syscall(SYS_close, fd);
}

int
spy_fdtable_go_private(void)
{
#if defined(SYS_pidfd_open) && defined(SYS_pidfd_getfd) \
    && defined(SYS_close_range)
    int pidfd = (int)syscall(SYS_pidfd_open, getpid(), 0);
    int probe = pidfd < 0 ? -1
                          : (int)syscall(SYS_pidfd_getfd, pidfd, pidfd, 0);

    /* Each call the private table will need, tried while a refusal
     * still costs nothing: closing the probe tries close_range(). */
    if (probe < 0 || syscall(SYS_close_range, probe, probe, 0) != 0) {
        if (probe >= 0) {
            close_raw(probe);
        }
        if (pidfd >= 0) {
            close_raw(pidfd);
        }
        return 0;
    }
    if (unshare(CLONE_FILES) != 0) {
        close_raw(pidfd);
        return 0;
    }
    /* The copy holds every file the process has open: let go of all but
     * the pidfd, or a pipe the program closes would stay open here. */
    if (pidfd > 0) {
        syscall(SYS_close_range, 0, pidfd - 1, 0);
    }
    syscall(SYS_close_range, pidfd + 1, ~0U, 0);
    tls_pidfd = pidfd;
    return 1;
#else
    return 0;
#endif
}

int
spy_fdtable_reach(int fd)
{
    if (tls_pidfd < 0) {
        return fd;
    }
#ifdef SYS_pidfd_getfd
    return fd < 0 ? -1 : (int)syscall(SYS_pidfd_getfd, tls_pidfd, fd, 0);
#else
    return -1;
#endif
}

void
spy_fdtable_release(int reached)
{
    if (tls_pidfd >= 0 && reached >= 0) {
        close_raw(reached);
    }
}
