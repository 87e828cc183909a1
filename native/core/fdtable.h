/* Descriptor tables of their own for the launcher's helper threads.
 *
 * While a second thread shares a process's descriptor table, the kernel
 * takes a reference on the file (and, for a regular file, its position
 * lock) in every read(), write(), fstat(), lseek() and close() the
 * program makes; with the table unshared it skips both.  The stream's
 * flusher and the channel's reader sleeping beside a file-heavy program
 * cost it ~3% that way.  So each moves to a table of its own holding only
 * a pidfd of the process, through which it reaches the process's
 * descriptors by number when it needs one (pidfd_getfd(2)): it never
 * holds a file open that the program closes, and always writes where the
 * process's number points now.  Where the kernel refuses (before Linux
 * 5.9, or a seccomp filter), the thread keeps the shared table. */
#ifndef SPY_FDTABLE_H
#define SPY_FDTABLE_H

/* Moves the calling thread to a table of its own; 1 if it did, 0 if it
 * stays on the process's. */
int spy_fdtable_go_private(void);

/* A descriptor the calling thread can use for the process's `fd`: on a
 * private thread a new one (give it back with spy_fdtable_release), -1
 * when the process has no such descriptor; elsewhere `fd` itself. */
int spy_fdtable_reach(int fd);

/* Gives back what spy_fdtable_reach returned. */
void spy_fdtable_release(int reached);

#endif
