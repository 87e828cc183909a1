/* Calls into agent.py, the launcher's Python-side helper, for what is far
 * simpler in Python than through the C API (conditions now; inspection at
 * a stop later).  Only ever called from inside the hook, with the GIL. */
#ifndef SPY_AGENT_H
#define SPY_AGENT_H

#include "policy.h"

#include <stddef.h>

/* 1 when the rule's condition holds for this event, 0 when it does not,
 * -1 when it does not compile (message in err: the rule is broken), -2
 * when it raised for this event (message in err: no match this time). */
int spy_agent_test_condition(struct spy_rule *rule, const char *event,
                             PyObject *args, char *err, size_t err_size);



/* A logpoint's message, interpolated in the event's frame; 0, or -1 with
 * the reason in out. */
int spy_agent_format_log(const char *template, const char *event,
                         PyObject *args, char *out, size_t out_size);

/* Hands the stop's context to the agent: frame ids and variable
 * references are counted from here until spy_agent_end_stop(). */
void spy_agent_begin_stop(const char *event, PyObject *args, PyObject *frame,
                          long thread_id);
void spy_agent_end_stop(void);

/* Answers an inspection request: the body as malloc'd JSON text, or NULL
 * with the reason in err. */
char *spy_agent_request(const char *command, const char *arguments,
                        size_t arguments_len, char *err, size_t err_size);
/* 1 when a -c program is one multiprocessing starts its children with
 * (a known entry point called with literal arguments only). */
int spy_agent_is_multiprocessing_bootstrap(PyObject *source);

/* 1 once the agent runs in this process (its integrity is then guarded
 * whatever the policies). */
int spy_agent_loaded(void);

/* 1 when o is the agent's namespace or an object bound in it or a function
 * of it: the program may not set its attributes (a function's __code__). */
int spy_agent_owns(PyObject *o);

/* What the last check of the agent found tampered with and undid, once;
 * else NULL. */
const char *spy_agent_take_tamper_report(void);

/* Flushes sys.stdout and sys.stderr (before the launcher ends the
 * program itself). */
void spy_agent_flush_standard_streams(void);

#endif /* SPY_AGENT_H */
