/* The system logs: syslog (the syslog sample: "importing json from ...",
 * "os.system('...') attempted") and the systemd journal (the
 * WindowsEventLog sample's Linux counterpart: structured entries with
 * the event, its arguments and its location as fields). */
#ifndef SPY_SYSTEMLOG_H
#define SPY_SYSTEMLOG_H

#include "pyapi.h"

/* 1 when either log is configured. */
int spy_systemlog_active(void);

/* Sends the event to the logs whose globs match it; a refused event
 * (`denied` names the policy) goes to every configured log. */
void spy_systemlog_event(const char *event, PyObject *args,
                         const char *denied, const char *target);

#endif /* SPY_SYSTEMLOG_H */
