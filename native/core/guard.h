/* The decisions the hook makes before an event proceeds: StartupControl,
 * lockHooks, denyEvents, promptEvents; and the tamper check that runs
 * whatever the policies. */
#ifndef SPY_GUARD_H
#define SPY_GUARD_H

#include "pyapi.h"

#define SPY_TARGET_MAX 300

struct spy_decision {
    const char *policy;             /* NULL: the event may proceed */
    char target[SPY_TARGET_MAX];    /* the event's main argument, as text */
    int explained;                  /* target is already a reason
                                     * ("<path>: hash mismatch ...") */
    int ends_program;               /* an interactive prompt: the program
                                     * ends instead of raising */
};

/* Fills *out.  `nested`: raised by the hook's own work, where conditions
 * and prompts cannot run; only unconditional rules apply. */
void spy_guard_decide(const char *event, PyObject *args, int nested,
                      struct spy_decision *out);

/* Sets the PermissionError a refused event raises in the script (or ends
 * the program, for an interactive prompt StartupControl refuses). */
void spy_guard_refuse(const char *event, const struct spy_decision *d);

/* The event's main argument as repr-like text (socket.connect: the
 * address; open: the path; ...), bounded. */
void spy_guard_target(const char *event, PyObject *args, char *out,
                      size_t out_size);

/* When sys.audit has been replaced since the last call (which silences
 * every event raised from Python code), or the program tried to close or
 * replace a descriptor of the audit stream (fdguard.h), a description of
 * it; else NULL.  Each is reported once. */
const char *spy_guard_tamper_check(void);

#endif /* SPY_GUARD_H */
