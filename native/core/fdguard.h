/* The record stream's descriptors (the channel socket, the audit log)
 * belong to the launcher, not to the program: close(), dup2(), dup3() and
 * close_range() leave them alone, and an attempt is reported as a
 * spython.tamper event.  The launcher and the preload shim export these
 * names, so libpython's calls (os.close, os.dup2, os.closerange...) land
 * here before libc's, as _exit does (session.c).  A raw system call gets
 * past them; stream.c then notices the replaced descriptor before it
 * writes again and ends the program. */
#ifndef SPY_FDGUARD_H
#define SPY_FDGUARD_H

#include <stddef.h>

/* Describes the last refused attempt into out (once per attempt); 0 when
 * there was none since the last call. */
int spy_fdguard_take_report(char *out, size_t out_size);

#endif /* SPY_FDGUARD_H */
