#define _GNU_SOURCE
#include "stream.h"

#include "buf.h"
#include "clock.h"
#include "fdtable.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define MAX_DESTINATIONS SPY_STREAM_MAX_FDS
/* Longest `{"event":"...","seq":N,"ts":T` for a name of n bytes. */
#define HEADER_SIZE(n) (sizeof("{\"event\":\"\",\"seq\":,\"ts\":") + (n) + 40)

struct destination {
    int fd;
    int is_socket;
    const char *what;
    dev_t dev;          /* what fd was when attached: spy_stream_verify */
    ino_t ino;
};

static struct {
    pthread_mutex_t lock;
    volatile pid_t lock_owner;      /* for signal handlers: who holds it */
    char *data;
    volatile size_t used;           /* bytes of complete records only */
    uint64_t seq;
    /* seq as decimal text, counted up in place (most records change one
     * digit), with room for a fixed-size copy: see put_header. */
    char seq_text[SPY_U64_DIGITS];
    size_t seq_len;
    struct destination dests[MAX_DESTINATIONS];
    int ndests;
    pid_t pid;
    pid_t ppid;
    int flusher_running;
    int child_pending;              /* forked: reconnect, restart flusher */
    int closed;
    spy_stream_reconnect_fn reconnect;
    void (*watch)(void);
} S = {.lock = PTHREAD_MUTEX_INITIALIZER, .seq_text = "0", .seq_len = 1};

volatile unsigned int spy_fork_generation;

static __thread pid_t tls_tid;
static __thread unsigned int tls_generation;

pid_t
spy_thread_id(void)
{
    /* The generation is offset by one so a zeroed TLS block never
     * matches. */
    if (tls_generation != spy_fork_generation + 1) {
        tls_tid = (pid_t)syscall(SYS_gettid);
        tls_generation = spy_fork_generation + 1;
    }
    return tls_tid;
}

pid_t
spy_stream_pid(void)
{
    return S.pid;
}

pid_t
spy_stream_ppid(void)
{
    return S.ppid;
}

void
spy_fatal(const char *message, const char *detail)
{
    struct iovec iov[5] = {
        {(void *)"spython: ", 9},
        {(void *)message, strlen(message)},
        {(void *)": ", detail != NULL ? 2 : 0},
        {(void *)(detail != NULL ? detail : ""),
         detail != NULL ? strlen(detail) : 0},
        {(void *)"\n", 1},
    };
    ssize_t ignored = writev(spy_fdtable_reach(STDERR_FILENO), iov, 5);

    (void)ignored;
    syscall(SYS_exit_group, SPY_EXIT_LAUNCHER_ERROR);
}

static void
lock_stream(void)
{
    pthread_mutex_lock(&S.lock);
    S.lock_owner = spy_thread_id();
}

static void
unlock_stream(void)
{
    S.lock_owner = 0;
    pthread_mutex_unlock(&S.lock);
}

static void
remember_identity(struct destination *d)
{
    struct stat st;

    if (d->fd >= 0 && fstat(d->fd, &st) == 0) {
        d->dev = st.st_dev;
        d->ino = st.st_ino;
    }
}

/* d's descriptor as this thread reaches it (spy_fdtable_reach; give it
 * back with spy_fdtable_release), once it is known to be the file or
 * socket attached.  The program can close or replace any descriptor with
 * a raw system call (fdguard.c stops the libc ones): a record must never
 * go to whatever took the number over. */
static int
reach_checked(const struct destination *d)
{
    int fd = spy_fdtable_reach(d->fd);
    struct stat st;
    char detail[64];

    if (fd < 0 && errno != EBADF) {
        /* A helper thread was refused its way in (a seccomp filter the
         * program installed for every thread): not the program's doing. */
        snprintf(detail, sizeof(detail), "fd %d: %s", d->fd, strerror(errno));
        spy_fatal("a launcher thread cannot reach the audit stream's "
                  "descriptor; stopping the program", detail);
    }
    if (fd >= 0 && fstat(fd, &st) == 0 && st.st_dev == d->dev
        && st.st_ino == d->ino) {
        return fd;
    }
    snprintf(detail, sizeof(detail), "fd %d", d->fd);
    spy_fatal(d->is_socket
              ? "the program closed or replaced the audit channel's "
                "descriptor; stopping the program"
              : "the program closed or replaced the audit log's "
                "descriptor; stopping the program", detail);
    return -1;
}

static void
write_all(const struct destination *d, const char *p, size_t n)
{
    int fd = reach_checked(d);

    while (n > 0) {
        ssize_t k = d->is_socket ? send(fd, p, n, MSG_NOSIGNAL)
                                 : write(fd, p, n);
        if (k < 0) {
            if (errno == EINTR) {
                continue;
            }
            /* The reader is gone or the log is unwritable: an audited
             * program must not go on unaudited. */
            spy_fatal(d->is_socket
                      ? "the audit channel closed; stopping the program"
                      : "cannot write the audit log; stopping the program",
                      strerror(errno));
        }
        p += k;
        n -= (size_t)k;
    }
    spy_fdtable_release(fd);
}

static void
write_to_all(const char *p, size_t n)
{
    for (int i = 0; i < S.ndests; i++) {
        if (S.dests[i].fd >= 0) {
            write_all(&S.dests[i], p, n);
        }
    }
}

/* Caller holds the lock.  SIGTERM is held back while bytes are in flight
 * so its handler never writes a batch twice. */
static void
flush_locked(void)
{
    sigset_t term, old;

    if (S.used == 0 || S.closed) {
        return;
    }
    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &term, &old);
    write_to_all(S.data, S.used);
    S.used = 0;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}

static void *
flusher_main(void *unused)
{
    const struct timespec interval = {0, SPY_STREAM_FLUSH_NS};
    sigset_t all;
    void (*watch)(void);

    (void)unused;
    /* Process signals belong to the threads that run Python. */
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    spy_fdtable_go_private();
    for (;;) {
        nanosleep(&interval, NULL);
        watch = __atomic_load_n(&S.watch, __ATOMIC_ACQUIRE);
        if (watch != NULL) {
            watch();
        }
        lock_stream();
        if (S.closed) {
            unlock_stream();
            return NULL;
        }
        flush_locked();
        unlock_stream();
    }
}

static void
start_flusher(void)
{
    pthread_t thread;
    pthread_attr_t attr;

    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 64 * 1024);
    if (pthread_create(&thread, &attr, flusher_main, NULL) != 0) {
        spy_fatal("cannot start the audit stream's flusher thread",
                  strerror(errno));
    }
    pthread_attr_destroy(&attr);
    S.flusher_running = 1;
}

static void
before_fork(void)
{
    lock_stream();
    flush_locked();
}

static void
after_fork_parent(void)
{
    unlock_stream();
}

static void
after_fork_child(void)
{
    spy_fork_generation++;
    S.ppid = S.pid;
    S.pid = getpid();
    S.seq = 0;
    memcpy(S.seq_text, "0", 1);
    S.seq_len = 1;
    S.flusher_running = 0;
    for (int i = 0; i < S.ndests; i++) {
        if (S.dests[i].is_socket && S.dests[i].fd >= 0) {
            /* The parent's connection: the child opens its own (and
             * fdguard.c's close() lets go of a number no longer ours). */
            int fd = S.dests[i].fd;

            S.dests[i].fd = -1;
            close(fd);
        }
    }
    S.child_pending = 1;
    S.lock_owner = 0;
    pthread_mutex_unlock(&S.lock);
}

static void
init_once(void)
{
    S.data = malloc(SPY_STREAM_BUFFER_SIZE);
    if (S.data == NULL) {
        spy_fatal("out of memory for the audit stream", NULL);
    }
    S.pid = getpid();
    S.ppid = getppid();
    pthread_atfork(before_fork, after_fork_parent, after_fork_child);
}

int
spy_stream_add(int fd, int is_socket, const char *what)
{
    if (S.ndests == MAX_DESTINATIONS) {
        return -1;
    }
    if (S.data == NULL) {
        init_once();
    }
    lock_stream();
    S.dests[S.ndests].fd = fd;
    S.dests[S.ndests].is_socket = is_socket;
    S.dests[S.ndests].what = what;
    remember_identity(&S.dests[S.ndests]);
    S.ndests++;
    if (!S.flusher_running) {
        start_flusher();
    }
    unlock_stream();
    return 0;
}

int
spy_stream_active(void)
{
    /* Read without the lock (the hook, the control reader). */
    return S.ndests > 0 && !__atomic_load_n(&S.closed, __ATOMIC_RELAXED);
}

void
spy_stream_set_reconnect(spy_stream_reconnect_fn reconnect)
{
    S.reconnect = reconnect;
}

void
spy_stream_set_watch(void (*watch)(void))
{
    /* The flusher is already running: what `watch` reads was written
     * before this store, and its load sees all of it. */
    __atomic_store_n(&S.watch, watch, __ATOMIC_RELEASE);
}

static void
restart_in_child_locked(void)
{
    S.child_pending = 0;
    for (int i = 0; i < S.ndests; i++) {
        if (S.dests[i].is_socket && S.dests[i].fd < 0
            && S.reconnect != NULL) {
            S.dests[i].fd = S.reconnect();
            remember_identity(&S.dests[i]);
        }
    }
    start_flusher();
}

static void
count_seq(void)
{
    size_t i = S.seq_len;

    S.seq++;
    while (i > 0 && S.seq_text[i - 1] == '9') {
        S.seq_text[--i] = '0';
    }
    if (i > 0) {
        S.seq_text[i - 1]++;
    }
    else {
        memmove(S.seq_text + 1, S.seq_text, S.seq_len);
        S.seq_text[0] = '1';
        S.seq_len++;
    }
}

/* The timestamp's digits above the last eight change every 0.1 s: they
 * are formatted then, not on every record. */
static size_t
put_timestamp(char *p, uint64_t ns)
{
    static uint64_t cached_high = UINT64_MAX;
    static char high_digits[SPY_U64_DIGITS];
    static size_t high_len;
    const uint64_t e8 = 100000000u;
    uint64_t high = ns / e8;

    if (high == 0) {
        return spy_format_u64(p, ns);
    }
    if (high != cached_high) {
        high_len = spy_format_u64(high_digits, high);
        cached_high = high;
    }
    memcpy(p, high_digits, SPY_U64_DIGITS);     /* see put_header */
    spy_format_8_digits(p + high_len, (uint32_t)(ns % e8));
    return high_len + 8;
}

/* Under the stream lock, into HEADER_SIZE(name_len) bytes.  The sequence
 * number and the timestamp's leading digits are copied SPY_U64_DIGITS
 * bytes at a time (a fixed-size copy is a few moves, not a call): the
 * bytes past their digits are within those reserved and written over. */
static size_t
put_header(char *p, const char *name, size_t name_len)
{
    char *start = p;
    uint64_t now = spy_clock_now_ns();

    memcpy(p, "{\"event\":\"", 10);
    p += 10;
    memcpy(p, name, name_len);
    p += name_len;
    memcpy(p, "\",\"seq\":", 8);
    p += 8;
    count_seq();
    memcpy(p, S.seq_text, SPY_U64_DIGITS);
    p += S.seq_len;
    memcpy(p, ",\"ts\":", 6);
    p += 6;
    p += put_timestamp(p, now);
    return (size_t)(p - start);
}

uint64_t
spy_stream_record(const char *name, size_t name_len, const char *rest,
                  size_t rest_len)
{
    size_t need = HEADER_SIZE(name_len) + rest_len;
    uint64_t seq;

    if (S.ndests == 0) {
        return 0;
    }
    lock_stream();
    if (S.closed) {
        unlock_stream();
        return 0;
    }
    if (S.child_pending) {
        restart_in_child_locked();
    }
    if (need > SPY_STREAM_BUFFER_SIZE - S.used) {
        flush_locked();
    }
    if (need <= SPY_STREAM_BUFFER_SIZE) {
        size_t n = put_header(S.data + S.used, name, name_len);

        memcpy(S.data + S.used + n, rest, rest_len);
        /* Published last: a signal handler only ever sees whole records. */
        S.used += n + rest_len;
    }
    else {
        /* Larger than a whole batch: straight through, in order. */
        char *header = malloc(HEADER_SIZE(name_len));

        if (header == NULL) {
            spy_fatal("out of memory for an audit record", NULL);
        }
        size_t n = put_header(header, name, name_len);
        write_to_all(header, n);
        write_to_all(rest, rest_len);
        free(header);
    }
    seq = S.seq;
    unlock_stream();
    return seq;
}

void
spy_stream_control(const char *line, size_t len)
{
    lock_stream();
    if (!S.closed) {
        flush_locked();
        for (int i = 0; i < S.ndests; i++) {
            if (S.dests[i].is_socket && S.dests[i].fd >= 0) {
                write_all(&S.dests[i], line, len);
            }
        }
    }
    unlock_stream();
}

void
spy_stream_flush(void)
{
    if (S.ndests == 0) {
        return;
    }
    lock_stream();
    flush_locked();
    unlock_stream();
}

void
spy_stream_flush_at_exit(void)
{
    const struct timespec pause = {0, 1000 * 1000};
    pid_t self;

    /* A vfork()ed child shares our memory but is another process. */
    if (S.ndests == 0 || S.closed || getpid() != S.pid) {
        return;
    }
    self = spy_thread_id();
    if (S.lock_owner != self) {
        /* Another thread holds the lock (the flusher, mid-write to a slow
         * reader): it makes progress, so wait for it, boundedly. */
        for (int i = 0; i < 5000; i++) {
            if (pthread_mutex_trylock(&S.lock) == 0) {
                S.lock_owner = self;
                flush_locked();
                unlock_stream();
                return;
            }
            nanosleep(&pause, NULL);
        }
    }
    /* This thread was interrupted inside the stream (or the holder is
     * stuck): write the complete records as they are. */
    write_to_all(S.data, S.used);
    S.used = 0;
}

const char *
spy_stream_fd_name(int fd)
{
    for (int i = 0; i < S.ndests; i++) {
        if (fd >= 0 && S.dests[i].fd == fd) {
            /* A vfork()ed child shares this memory, not the descriptors. */
            return S.closed || getpid() != S.pid ? NULL : S.dests[i].what;
        }
    }
    return NULL;
}

int
spy_stream_own_fds(int fds[SPY_STREAM_MAX_FDS])
{
    int n = 0;

    for (int i = 0; i < S.ndests; i++) {
        int fd = S.dests[i].fd, k;

        if (spy_stream_fd_name(fd) == NULL) {
            continue;
        }
        for (k = n; k > 0 && fds[k - 1] > fd; k--) {
            fds[k] = fds[k - 1];
        }
        fds[k] = fd;
        n++;
    }
    return n;
}

void
spy_stream_verify(void)
{
    for (int i = 0; i < S.ndests; i++) {
        if (S.dests[i].fd >= 0 && getpid() == S.pid) {
            spy_fdtable_release(reach_checked(&S.dests[i]));
        }
    }
}

void
spy_stream_close(void)
{
    if (S.ndests == 0) {
        return;
    }
    lock_stream();
    flush_locked();
    __atomic_store_n(&S.closed, 1, __ATOMIC_RELAXED);
    for (int i = 0; i < S.ndests; i++) {
        if (S.dests[i].is_socket && S.dests[i].fd >= 0) {
            int fd = spy_fdtable_reach(S.dests[i].fd);

            shutdown(fd, SHUT_WR);
            spy_fdtable_release(fd);
        }
    }
    unlock_stream();
}
