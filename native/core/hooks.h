/* The audit hook: turns every event into a record for the stream and, in
 * the seed-compatible log modes, into a line of text. */
#ifndef SPY_HOOKS_H
#define SPY_HOOKS_H

#include "buf.h"

struct spy_hooks_config {
    int log_stderr;         /* LogToStderr: "<event>: <arguments>" */
    int log_minimal;        /* LogToStderrMinimal, on stdout */
};

/* Installs the hook; call before the interpreter starts.  Returns 0 or -1
 * (CPython refused the hook). */
int spy_hooks_install(const struct spy_hooks_config *config);

/* Whether this thread is inside the hook (or a stop the hook started):
 * events raised there are the launcher's own work, not the program's. */
int spy_hooks_busy(void);

/* Appends ,"pid":N,"ppid":N,"tid":N: a record's identity up to its
 * thread name. */
void spy_hooks_put_process_identity(struct spy_buf *b);
void spy_hooks_set_busy(int busy);

#endif /* SPY_HOOKS_H */
