/* Calls into agent.py, the launcher's Python-side helper, for what is far
 * simpler in Python than through the C API (conditions now; inspection at
 * a stop later).  Only ever called from inside the hook, with the GIL. */
#ifndef SPY_AGENT_H
#define SPY_AGENT_H

#include "policy.h"

#include <stddef.h>

/* 1 when the rule's condition holds for this event, 0 when it does not,
 * -1 when it cannot be evaluated (message in err; the caller reports it
 * once and marks the rule broken). */
int spy_agent_test_condition(struct spy_rule *rule, const char *event,
                             PyObject *args, char *err, size_t err_size);

#endif /* SPY_AGENT_H */
