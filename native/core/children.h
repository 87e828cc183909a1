/* subProcess: children started through sys.executable are audited with
 * the same policies and channel.  sys.executable becomes an "entry": a
 * symlink to the launcher beside a file describing the session; the
 * launcher, started through it, finds that file (by the path the kernel
 * executed, whatever argv[0] says) and runs the same interpreter the same
 * way.  Python interpreters started by another path are reported. */
#ifndef SPY_CHILDREN_H
#define SPY_CHILDREN_H

#include "pyapi.h"

#include <stddef.h>

/* The suffix of an entry's description file. */
#define SPY_ENTRY_SUFFIX ".spython.json"

struct spy_entry {
    char *python;           /* the interpreter, as given */
    char *mode;             /* "dlopen" or "preload" */
    char *config;           /* configuration JSON, one object per line */
    char *channel;          /* socket path, or NULL */
    char *token;
};

/* When the launcher was started through an entry: reads its description
 * into *out and returns 1; 0 when it was not; exits on a broken one. */
int spy_entry_read(const char *executed, struct spy_entry *out);

/* In an audited process with subProcess on: makes the entry (or reuses
 * `inherited`, the one this process was started through).  `config` is
 * every configuration line in force. */
void spy_children_start(const char *launcher, const char *python,
                        const char *mode, const char *config,
                        const char *inherited);

/* 1 when this process was started through an entry. */
int spy_children_is_child(void);

/* At the program's start (cpython.run_*): sys.executable becomes the
 * entry. */
void spy_children_program_starts(void);

/* subprocess.Popen, os.exec, os.posix_spawn, os.spawn: a Python
 * interpreter started by another path than the entry is reported as a
 * spython.unaudited_child event (raised after the hook returns). */
const char *spy_children_unaudited(const char *event, PyObject *args);

#endif /* SPY_CHILDREN_H */
