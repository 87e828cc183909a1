#define _GNU_SOURCE
#include "fdguard.h"

#include "stream.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

/* Refused attempts not yet reported: one bit per call, and the
 * descriptor.  Set where no Python code may run (os.close releases the
 * GIL); reported by the next audit event. */
static const char *const calls[] = {"close", "dup2", "dup3", "close_range"};
enum { CALL_CLOSE, CALL_DUP2, CALL_DUP3, CALL_CLOSE_RANGE };
static volatile unsigned int refused_calls;
static volatile int refused_fd = -1;

static void
refuse(int call, int fd)
{
    refused_fd = fd;
    __atomic_or_fetch(&refused_calls, 1U << call, __ATOMIC_SEQ_CST);
}

int
spy_fdguard_take_report(char *out, size_t out_size)
{
    unsigned int taken;
    const char *what;
    size_t len = 0;

    /* Every event asks: a plain read first, the exchange only when set. */
    if (__atomic_load_n(&refused_calls, __ATOMIC_RELAXED) == 0) {
        return 0;
    }
    taken = __atomic_exchange_n(&refused_calls, 0, __ATOMIC_SEQ_CST);
    what = spy_stream_fd_name(refused_fd);
    out[0] = '\0';
    for (size_t i = 0; i < sizeof(calls) / sizeof(*calls); i++) {
        if ((taken & (1U << i)) && len < out_size) {
            len += (size_t)snprintf(out + len, out_size - len, "%s%s()",
                                    len > 0 ? ", " : "", calls[i]);
        }
    }
    if (len < out_size) {
        snprintf(out + len, out_size - len, " on %s's descriptor (fd %d) "
                 "refused: it belongs to the launcher",
                 what != NULL ? what : "the audit stream", refused_fd);
    }
    return 1;
}

/* Pretends success: a program closing every descriptor it inherited
 * (daemons do) goes on, and so does its audit. */
__attribute__((visibility("default"))) int
close(int fd)
{
    if (spy_stream_fd_name(fd) != NULL) {
        refuse(CALL_CLOSE, fd);
        return 0;
    }
    return (int)syscall(SYS_close, fd);
}

/* Fails: the program must not believe newfd now holds its own file. */
static int
replace_fd(int call, int oldfd, int newfd, int flags)
{
    if (spy_stream_fd_name(newfd) != NULL) {
        refuse(call, newfd);
        errno = EBUSY;
        return -1;
    }
    return (int)syscall(SYS_dup3, oldfd, newfd, flags);
}

__attribute__((visibility("default"))) int
dup3(int oldfd, int newfd, int flags)
{
    return replace_fd(CALL_DUP3, oldfd, newfd, flags);
}

__attribute__((visibility("default"))) int
dup2(int oldfd, int newfd)
{
    if (oldfd == newfd) {
        return fcntl(oldfd, F_GETFD) < 0 ? -1 : newfd;
    }
    return replace_fd(CALL_DUP2, oldfd, newfd, 0);
}

/* Closes the range but for the stream's descriptors in it. */
__attribute__((visibility("default"))) int
close_range(unsigned int first, unsigned int last, int flags)
{
    int own[SPY_STREAM_MAX_FDS];
    int n = spy_stream_own_fds(own);
    unsigned int from = first;

    if ((unsigned int)flags & CLOSE_RANGE_CLOEXEC) {
        /* Marking them close-on-exec changes nothing: they are. */
        return (int)syscall(SYS_close_range, first, last, flags);
    }
    for (int i = 0; i < n; i++) {
        unsigned int fd = (unsigned int)own[i];

        if (fd < from || fd > last) {
            continue;
        }
        refuse(CALL_CLOSE_RANGE, own[i]);
        if (fd > from
            && syscall(SYS_close_range, from, fd - 1, flags) != 0) {
            return -1;
        }
        from = fd + 1;
    }
    /* (A descriptor is below 2**31: from never wraps.) */
    return from > last ? 0 : (int)syscall(SYS_close_range, from, last, flags);
}
