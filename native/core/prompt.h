/* promptEvents (the NetworkPrompt sample, done better): ask whether a
 * matching event may proceed.  The editor answers through the channel
 * when there is one (allow / allow always for this target / deny); else
 * the terminal, "Continue [Y/n]"; with neither, the answer is no. */
#ifndef SPY_PROMPT_H
#define SPY_PROMPT_H

#include "pyapi.h"

/* 1 when the event may proceed, 0 when refused.  Releases the GIL while
 * it waits, so the program's other threads go on. */
int spy_prompt_ask(const char *event, PyObject *args, const char *target);

#endif /* SPY_PROMPT_H */
