/* One audited process, from "the C API is resolved" to exit: shared by
 * the launcher (libpython loaded with dlopen) and the LD_PRELOAD shim. */
#ifndef SPY_SESSION_H
#define SPY_SESSION_H

struct spy_session_options {
    int log_stderr;
    int log_minimal;
    const char *mode;           /* "dlopen" or "preload" */
    const char *executable;     /* the interpreter, as given */
    const char *python_version; /* "3.12.1" */
    int free_threaded;
    const char *config;         /* policy configuration: JSON objects, one
                                 * per line, merged in order; or NULL */
    const char *launcher;       /* the launcher binary (subProcess entries) */
    const char *entry;          /* the entry this process was started
                                 * through (a child), or NULL */
};

/* Fatal-signal handlers, the channel, the hooks.  Any failure ends the
 * process with status 125 and a message: the script never runs
 * unaudited. */
void spy_session_start(const struct spy_session_options *options);

/* After the interpreter returned `status` (status_known = 0 where it is
 * not known, at exit in the preload shim): last records, then the end of
 * the stream. */
void spy_session_finish(int status, int status_known);

/* Whether spy_session_start has run in this process. */
int spy_session_started(void);

#endif /* SPY_SESSION_H */
