/* Launcher policies: what the hook refuses, asks about or sends to the
 * system logs.  One configuration, read from JSON: the launcher turns its
 * flags into that JSON, the adapter sends it in the channel's welcome
 * (docs/protocol.md, "Configuration"), and both merge. */
#ifndef SPY_POLICY_H
#define SPY_POLICY_H

#include "pyapi.h"

#include <stddef.h>

/* One glob over event names, optionally with a Python condition over
 * `event` and `args` (evaluated in the frame that raised the event). */
struct spy_rule {
    char *glob;
    char *condition;            /* NULL: always */
    PyObject *compiled;         /* the condition's code, once compiled */
    int broken;                 /* the condition does not compile */
    int reported;               /* a failure of it was reported */
};

struct spy_rules {
    struct spy_rule *items;
    size_t count;
};

enum spy_verify_mode {
    SPY_VERIFY_OFF,
    SPY_VERIFY_XATTR,
    SPY_VERIFY_WARN,
    SPY_VERIFY_MANIFEST,
};

struct spy_policy {
    int startup_control;
    int lock_hooks;
    int sub_process;
    int exec_check;
    struct spy_rules deny;
    struct spy_rules prompt;
    struct spy_rules syslog;
    struct spy_rules journal;
    char *log_file;
    enum spy_verify_mode verify;
    char **verify_exempt;
    size_t verify_exempt_count;
    char *xattr_name;
    size_t max_code_size;
    char *manifest;
    char *manifest_key;
};

extern struct spy_policy spy_policy;

/* Merges a configuration object (lists append, switches turn on).
 * Returns 0, or -1 with what is wrong in err. */
int spy_policy_merge_json(const char *json, size_t len, char *err,
                          size_t err_size);

/* Adds "GLOB" or "GLOB if CONDITION" to a rule list. */
void spy_rules_add_spec(struct spy_rules *rules, const char *spec);

/* The first rule whose glob matches the event and whose condition holds,
 * or NULL.  A condition that does not compile is reported on stderr
 * (naming `policy`) and its rule ignored from then on; one that raises
 * does not match that event (reported the first time).  `nested` skips
 * rules with conditions: they cannot be evaluated inside the hook's own
 * work. */
struct spy_rule *spy_rules_first(const char *policy, struct spy_rules *rules,
                                 const char *event, PyObject *args,
                                 int nested);

/* 1 when any policy needs the hook to decide before an event proceeds. */
int spy_policy_decides(void);

#endif /* SPY_POLICY_H */
