/* Debugging through the channel: breakpoints on events (with conditions,
 * hit conditions and logpoints), stops inside the hook, stepping to the
 * next event, pause, stop on entry, and inspection while stopped
 * (docs/protocol.md, "Debugging"). */
#ifndef SPY_DEBUG_H
#define SPY_DEBUG_H

#include "pyapi.h"

#include <stddef.h>
#include <stdint.h>

/* Reads breakpoints, breakOnDenied and stopOnEntry from a configuration
 * object; returns 0, or -1 with the reason in err. */
int spy_debug_configure(const char *json, size_t len, char *err,
                        size_t err_size);

/* Handles a control message of the debugging kind (setBreakpoints,
 * continue, pause, request), from the channel's reader thread; returns 0
 * when it was not one. */
int spy_debug_control(const char *type, const char *line, size_t n);

/* 1 when any event could stop or log: the hook calls spy_debug_event. */
int spy_debug_active(void);

/* After the event's record (seq) is out: stops or logs as the
 * breakpoints, a step or a pause say.  Returns 1 when the user denied the
 * operation at the stop. */
int spy_debug_event(const char *event, PyObject *args, uint64_t seq,
                    const char *denied_by);

#endif /* SPY_DEBUG_H */
