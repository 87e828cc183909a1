/* The record stream: one buffer of event records written in batches to
 * every destination (the channel socket, the JSONL audit log).
 *
 * Delivery rules (docs/protocol.md, "Delivery guarantees"): batches are
 * written at the latest every 10 ms, when the buffer fills, before fork,
 * at exit and from fatal-signal handlers; writes block, so a slow reader
 * slows the script instead of losing records. */
#ifndef SPY_STREAM_H
#define SPY_STREAM_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define SPY_STREAM_BUFFER_SIZE (64 * 1024)
#define SPY_STREAM_FLUSH_NS (10 * 1000 * 1000)

/* Exit status used whenever auditing cannot go on (reader gone, log
 * unwritable, handshake refused). */
#define SPY_EXIT_LAUNCHER_ERROR 125

/* Adds a destination.  A socket also receives control messages.  `what`
 * names it in error messages ("the audit channel", "the audit log"). */
int spy_stream_add(int fd, int is_socket, const char *what);

/* 1 when at least one destination is attached. */
int spy_stream_active(void);

/* Commits one record: `{"event":"<name>","seq":N,"ts":T` followed by
 * `rest`, which must start with ',' and end with "}\n".  `name` is
 * already JSON-escaped.  Returns the record's seq (0: not recorded). */
uint64_t spy_stream_record(const char *name, size_t name_len,
                           const char *rest, size_t rest_len);

/* Writes one control line to the socket destination, after the records
 * committed before it. */
void spy_stream_control(const char *line, size_t len);

/* Writes out what is buffered now. */
void spy_stream_flush(void);

/* The last flush before the process ends; safe in a signal handler and
 * after a fork()/vfork() (a child never writes its parent's records). */
void spy_stream_flush_at_exit(void);

/* Called in a forked child, under the stream lock, before its first
 * record: must replace the socket destination (it belongs to the parent's
 * connection) and return its new descriptor, or -1. */
typedef int (*spy_stream_reconnect_fn)(void);
void spy_stream_set_reconnect(spy_stream_reconnect_fn reconnect);

/* Has the flusher thread call `watch` before each of its flushes,
 * without the stream's lock (hookwatch.c). */
void spy_stream_set_watch(void (*watch)(void));

/* Stops the flusher thread and flushes; the socket is shut down for
 * writing so the reader sees the end of the stream. */
void spy_stream_close(void);

/* Most descriptors the stream writes to. */
#define SPY_STREAM_MAX_FDS 4

/* Who writes to fd in this process: "the audit channel", "the audit log",
 * or NULL when it is none of the stream's (or fd belongs to the process
 * this one was vfork()ed from).  Safe anywhere: no lock, no allocation. */
const char *spy_stream_fd_name(int fd);

/* The stream's descriptors in this process, ascending, into fds; returns
 * how many. */
int spy_stream_own_fds(int fds[SPY_STREAM_MAX_FDS]);

/* Ends the program (SPY_EXIT_LAUNCHER_ERROR) with a message saying so when
 * a descriptor of the stream no longer is the file or socket it was: the
 * program closed or replaced it behind the launcher's back. */
void spy_stream_verify(void);

/* The pid the stream belongs to, and its parent. */
pid_t spy_stream_pid(void);
pid_t spy_stream_ppid(void);

/* The calling thread's native id (cached per thread, fork-aware). */
pid_t spy_thread_id(void);

/* Incremented in every forked child: lets per-thread caches notice a
 * fork (the thread id changes). */
extern volatile unsigned int spy_fork_generation;

/* Prints "spython: <message>" on stderr and ends the process with
 * SPY_EXIT_LAUNCHER_ERROR, without flushing. */
void spy_fatal(const char *message, const char *detail);

#endif /* SPY_STREAM_H */
