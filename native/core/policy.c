#define _GNU_SOURCE
#include "policy.h"

#include "agent.h"
#include "codecheck.h"
#include "json.h"

#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct spy_policy spy_policy;

static void *
xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n);

    if (q == NULL) {
        fprintf(stderr, "spython: out of memory reading the policy\n");
        exit(125);
    }
    return q;
}

static char *
xstrndup(const char *s, size_t n)
{
    char *copy = xrealloc(NULL, n + 1);

    memcpy(copy, s, n);
    copy[n] = '\0';
    return copy;
}

static void
add_rule(struct spy_rules *rules, char *glob, char *condition)
{
    rules->items = xrealloc(rules->items,
                            (rules->count + 1) * sizeof(*rules->items));
    rules->items[rules->count++] = (struct spy_rule){glob, condition, NULL, 0,
                                                     0};
}

void
spy_rules_add_spec(struct spy_rules *rules, const char *spec)
{
    const char *cut = strstr(spec, " if ");

    if (cut == NULL) {
        add_rule(rules, xstrndup(spec, strlen(spec)), NULL);
        return;
    }
    add_rule(rules, xstrndup(spec, (size_t)(cut - spec)),
             xstrndup(cut + 4, strlen(cut + 4)));
}

static void
report_failed_condition(const char *policy, struct spy_rule *rule,
                        const char *why, int compiles)
{
    if (!compiles) {
        fprintf(stderr, "spython: %s rule '%s if %s' is ignored: its "
                "condition does not compile (%s)\n", policy, rule->glob,
                rule->condition, why);
        rule->broken = 1;
    }
    else if (!rule->reported) {
        fprintf(stderr, "spython: %s rule '%s if %s' does not match where "
                "its condition raises (%s)\n", policy, rule->glob,
                rule->condition, why);
    }
    rule->reported = 1;
}

struct spy_rule *
spy_rules_first(const char *policy, struct spy_rules *rules,
                const char *event, PyObject *args, int nested)
{
    for (size_t i = 0; i < rules->count; i++) {
        struct spy_rule *rule = &rules->items[i];
        char why[512];
        int holds;

        if (rule->broken || (nested && rule->condition != NULL)
            || fnmatch(rule->glob, event, 0) != 0) {
            continue;
        }
        if (rule->condition == NULL) {
            return rule;
        }
        holds = spy_agent_test_condition(rule, event, args, why, sizeof(why));
        if (holds > 0) {
            return rule;
        }
        if (holds < 0) {
            report_failed_condition(policy, rule, why, holds == -2);
        }
    }
    return NULL;
}

int
spy_policy_decides(void)
{
    return spy_policy.startup_control || spy_policy.lock_hooks
           || spy_policy.deny.count > 0 || spy_policy.prompt.count > 0
           || spy_policy.verify != SPY_VERIFY_OFF || spy_policy.exec_check
           || spy_codecheck_deny_interactive() || spy_agent_loaded();
}

/* ---- reading the configuration ---------------------------------------- */

struct reader {
    char *err;
    size_t err_size;
    int failed;
};

static int
fail(struct reader *r, const char *key, const char *what)
{
    if (!r->failed) {
        snprintf(r->err, r->err_size, "%s %s", key, what);
        r->failed = 1;
    }
    return 1;
}

static char *
string_value(const struct spy_json_value *v)
{
    char *out = xrealloc(NULL, v->len + 1);

    spy_json_string(v, out, v->len + 1);
    return out;
}

struct list_target {
    struct reader *r;
    const char *key;
    struct spy_rules *rules;        /* a rule list, or */
    char ***strings;                /* a plain string list */
    size_t *string_count;
};

struct rule_object {
    struct spy_json_value event;
    struct spy_json_value condition;
};

static int
rule_member(const struct spy_json_value *key,
            const struct spy_json_value *value, void *ctx)
{
    struct rule_object *o = ctx;

    if (spy_json_string_is(key, "event")) {
        o->event = *value;
    }
    else if (spy_json_string_is(key, "condition")) {
        o->condition = *value;
    }
    return 0;
}

static int
list_element(const struct spy_json_value *unused,
             const struct spy_json_value *value, void *ctx)
{
    struct list_target *t = ctx;

    (void)unused;
    if (t->strings != NULL) {
        if (value->kind != SPY_JSON_STRING) {
            return fail(t->r, t->key, "must be a list of strings");
        }
        *t->strings = xrealloc(*t->strings,
                               (*t->string_count + 1) * sizeof(char *));
        (*t->strings)[(*t->string_count)++] = string_value(value);
        return 0;
    }
    if (value->kind == SPY_JSON_STRING) {
        char *spec = string_value(value);

        spy_rules_add_spec(t->rules, spec);
        free(spec);
        return 0;
    }
    if (value->kind == SPY_JSON_OBJECT) {
        struct rule_object o = {{SPY_JSON_NULL, NULL, 0},
                                {SPY_JSON_NULL, NULL, 0}};

        spy_json_members(value, rule_member, &o);
        if (o.event.kind != SPY_JSON_STRING
            || (o.condition.kind != SPY_JSON_STRING
                && o.condition.kind != SPY_JSON_NULL)) {
            return fail(t->r, t->key, "entries are \"glob\" or "
                        "{\"event\": \"glob\", \"condition\": \"python\"}");
        }
        add_rule(t->rules, string_value(&o.event),
                 o.condition.kind == SPY_JSON_STRING
                 ? string_value(&o.condition) : NULL);
        return 0;
    }
    return fail(t->r, t->key, "entries are \"glob\" or "
                "{\"event\": \"glob\", \"condition\": \"python\"}");
}

static void
read_rules(struct reader *r, const char *key, const struct spy_json_value *v,
           struct spy_rules *rules)
{
    struct list_target t = {r, key, rules, NULL, NULL};

    if (v->kind != SPY_JSON_ARRAY) {
        fail(r, key, "must be a list");
        return;
    }
    spy_json_elements(v, list_element, &t);
}

static void
read_strings(struct reader *r, const char *key,
             const struct spy_json_value *v, char ***strings, size_t *count)
{
    struct list_target t = {r, key, NULL, strings, count};

    if (v->kind != SPY_JSON_ARRAY) {
        fail(r, key, "must be a list of strings");
        return;
    }
    spy_json_elements(v, list_element, &t);
}

static void
read_switch(struct reader *r, const char *key, const struct spy_json_value *v,
            int *out)
{
    if (v->kind == SPY_JSON_TRUE) {
        *out = 1;
    }
    else if (v->kind != SPY_JSON_FALSE) {
        fail(r, key, "must be true or false");
    }
}

static void
read_path(struct reader *r, const char *key, const struct spy_json_value *v,
          char **out)
{
    if (v->kind != SPY_JSON_STRING || v->len <= 2) {
        fail(r, key, "must be a non-empty string");
        return;
    }
    free(*out);
    *out = string_value(v);
}

static int
audit_log_member(const struct spy_json_value *key,
                 const struct spy_json_value *value, void *ctx)
{
    struct reader *r = ctx;

    if (spy_json_string_is(key, "file")) {
        read_path(r, "auditLog.file", value, &spy_policy.log_file);
    }
    else if (spy_json_string_is(key, "syslog")) {
        read_rules(r, "auditLog.syslog", value, &spy_policy.syslog);
    }
    else if (spy_json_string_is(key, "journal")) {
        read_rules(r, "auditLog.journal", value, &spy_policy.journal);
    }
    return r->failed;
}

static int
config_member(const struct spy_json_value *key,
              const struct spy_json_value *value, void *ctx)
{
    struct reader *r = ctx;
    struct spy_policy *p = &spy_policy;

    if (spy_json_string_is(key, "startupControl")) {
        read_switch(r, "startupControl", value, &p->startup_control);
    }
    else if (spy_json_string_is(key, "lockHooks")) {
        read_switch(r, "lockHooks", value, &p->lock_hooks);
    }
    else if (spy_json_string_is(key, "subProcess")) {
        read_switch(r, "subProcess", value, &p->sub_process);
    }
    else if (spy_json_string_is(key, "execCheck")) {
        read_switch(r, "execCheck", value, &p->exec_check);
    }
    else if (spy_json_string_is(key, "denyEvents")) {
        read_rules(r, "denyEvents", value, &p->deny);
    }
    else if (spy_json_string_is(key, "promptEvents")) {
        read_rules(r, "promptEvents", value, &p->prompt);
    }
    else if (spy_json_string_is(key, "auditLog")) {
        if (value->kind != SPY_JSON_OBJECT) {
            return fail(r, "auditLog", "must be an object");
        }
        spy_json_members(value, audit_log_member, r);
    }
    else if (spy_json_string_is(key, "verifyImports")) {
        if (spy_json_string_is(value, "xattr")) {
            p->verify = SPY_VERIFY_XATTR;
        }
        else if (spy_json_string_is(value, "warn")) {
            p->verify = SPY_VERIFY_WARN;
        }
        else if (spy_json_string_is(value, "manifest")) {
            p->verify = SPY_VERIFY_MANIFEST;
        }
        else if (value->kind != SPY_JSON_NULL
                 && !spy_json_string_is(value, "off")) {
            return fail(r, "verifyImports",
                        "must be \"xattr\", \"warn\", \"manifest\" or \"off\"");
        }
    }
    else if (spy_json_string_is(key, "verifyExempt")) {
        read_strings(r, "verifyExempt", value, &p->verify_exempt,
                     &p->verify_exempt_count);
    }
    else if (spy_json_string_is(key, "xattrName")) {
        read_path(r, "xattrName", value, &p->xattr_name);
    }
    else if (spy_json_string_is(key, "manifest")) {
        read_path(r, "manifest", value, &p->manifest);
    }
    else if (spy_json_string_is(key, "manifestKey")) {
        read_path(r, "manifestKey", value, &p->manifest_key);
    }
    else if (spy_json_string_is(key, "maxCodeSize")) {
        long long size = spy_json_integer(value, -1);

        if (size <= 0) {
            return fail(r, "maxCodeSize", "must be a positive integer");
        }
        p->max_code_size = (size_t)size;
    }
    /* Other keys belong to the adapter (breakpoints, display filters). */
    return r->failed;
}

int
spy_policy_merge_json(const char *json, size_t len, char *err,
                      size_t err_size)
{
    struct spy_json_value root;
    const char *error = NULL;
    struct reader r = {err, err_size, 0};

    if (spy_json_parse(json, len, &root, &error) < 0) {
        snprintf(err, err_size, "the configuration is not valid JSON: %s",
                 error);
        return -1;
    }
    if (root.kind != SPY_JSON_OBJECT) {
        snprintf(err, err_size, "the configuration must be a JSON object");
        return -1;
    }
    spy_json_members(&root, config_member, &r);
    return r.failed ? -1 : 0;
}
