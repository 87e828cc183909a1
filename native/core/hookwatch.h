/* PEP 578's own warning: code that can write memory (ctypes) can unhook
 * the audit hook, by clearing the head of CPython's list of C hooks or by
 * pointing its entry at another function.  No event is raised then, so
 * the hook cannot see it happen: the stream's flusher thread looks every
 * 10 ms instead and, when the entry is gone, records a spython.tamper and
 * ends the program, which must not go on unaudited. */
#ifndef SPY_HOOKWATCH_H
#define SPY_HOOKWATCH_H

#include "pyapi.h"

/* PySys_AddAuditHook(hook, NULL), remembering where CPython keeps the
 * entry when it can be found (best effort: otherwise nothing is
 * watched).  Returns what PySys_AddAuditHook returned. */
int spy_hookwatch_add(spy_audit_hook_fn hook);

/* CPython is about to clear its hooks (interpreter shutdown): stop
 * watching. */
void spy_hookwatch_stop(void);

#endif /* SPY_HOOKWATCH_H */
