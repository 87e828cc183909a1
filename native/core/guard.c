#define _GNU_SOURCE
#include "guard.h"

#include "agent.h"
#include "children.h"
#include "codecheck.h"
#include "fdguard.h"
#include "policy.h"
#include "prompt.h"
#include "render.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Which argument says what an event is about; the whole tuple otherwise. */
static const struct {
    const char *event;
    int index;
} main_argument[] = {
    {"socket.connect", 1},
    {"socket.bind", 1},
    {"socket.sendto", 1},
    {"socket.getaddrinfo", 0},
    {"socket.gethostbyname", 0},
    {"open", 0},
    {"os.open", 0},
    {"os.remove", 0},
    {"os.rename", 0},
    {"os.system", 0},
    {"os.exec", 1},
    {"os.posix_spawn", 1},
    {"subprocess.Popen", 1},
    {"import", 0},
    {"urllib.Request", 0},
    {"shutil.rmtree", 0},
};

void
spy_guard_target(const char *event, PyObject *args, char *out,
                 size_t out_size)
{
    struct spy_buf b = {out, 0, out_size - 4, 0};
    PyObject *value = NULL;

    for (size_t i = 0; i < sizeof(main_argument) / sizeof(*main_argument);
         i++) {
        if (args != NULL && strcmp(event, main_argument[i].event) == 0
            && spy_py.PyTuple_Size(args) > main_argument[i].index) {
            value = spy_py.PyTuple_GetItem(args, main_argument[i].index);
            break;
        }
    }
    if (value != NULL) {
        spy_render_value(&b, value, SPY_STYLE_REPR, out_size / 2);
    }
    else {
        spy_render_args(&b, args, SPY_STYLE_REPR, out_size / 2);
    }
    if (b.full) {
        /* Cut at a character boundary and say so. */
        while (b.len > 0 && ((unsigned char)out[b.len] & 0xC0) == 0x80) {
            b.len--;
        }
        memcpy(out + b.len, "...", 3);
        b.len += 3;
    }
    spy_py.PyErr_Clear();
    out[b.len] = '\0';
}

/* -c, stdin, the REPL (and -i after a script), PYTHONSTARTUP, the
 * interactive hook: code that is not a file. */
static int
is_interactive_start(const char *event)
{
    return strcmp(event, "cpython.run_command") == 0
           || strcmp(event, "cpython.run_stdin") == 0
           || strcmp(event, "cpython.run_startup") == 0
           || strcmp(event, "cpython.run_interactivehook") == 0;
}

/* The REPL (after -i, after PYTHONSTARTUP, or set up by the script through
 * PYTHONINSPECT) raises no cpython.run_* event of its own on every
 * version, but compiles each statement as "<stdin>". */
static int
compiles_stdin(PyObject *args)
{
    PyObject *name = args != NULL && spy_py.PyTuple_Size(args) >= 2
                     ? spy_py.PyTuple_GetItem(args, 1) : NULL;
    Py_ssize_t n;
    const char *text = name != NULL
        ? spy_py.PyUnicode_AsUTF8AndSize(name, &n) : NULL;

    spy_py.PyErr_Clear();
    return text != NULL && strcmp(text, "<stdin>") == 0;
}

/* spython.code_refused(path, policy, reason): raised by the open_code
 * hook, already refused; the record names the policy. */
static const char *
refused_code_policy(PyObject *args)
{
    PyObject *policy = args != NULL && spy_py.PyTuple_Size(args) == 3
                       ? spy_py.PyTuple_GetItem(args, 1) : NULL;
    Py_ssize_t n;
    const char *text = policy != NULL
        ? spy_py.PyUnicode_AsUTF8AndSize(policy, &n) : NULL;

    spy_py.PyErr_Clear();
    return text != NULL ? text : "verifyImports";
}

/* A child started through the sub-process entry, running what
 * multiprocessing runs there with -c: StartupControl lets it through. */
static int
multiprocessing_child(const char *event, PyObject *args)
{
    return spy_children_is_child()
           && strcmp(event, "cpython.run_command") == 0 && args != NULL
           && spy_py.PyTuple_Size(args) >= 1
           && spy_agent_is_multiprocessing_bootstrap(
                  spy_py.PyTuple_GetItem(args, 0));
}

/* Refusals that come with the launcher's switches rather than rules. */
static const char *
switch_policy(const char *event, PyObject *args, struct spy_decision *out)
{
    if (strncmp(event, "cpython.run_", 12) == 0) {
        int run_file = strcmp(event, "cpython.run_file") == 0;

        if (spy_policy.startup_control
            && (strcmp(event, "cpython.run_stdin") == 0
                || strcmp(event, "cpython.run_interactivehook") == 0)) {
            out->ends_program = 1;
        }
        if (spy_policy.startup_control && !run_file
            && !multiprocessing_child(event, args)) {
            return "startupControl";    /* only a script file may run */
        }
        if (spy_codecheck_deny_interactive() && is_interactive_start(event)) {
            return "execCheck";
        }
        return run_file ? spy_codecheck_main_script(args, out->target,
                                                    sizeof(out->target))
                        : NULL;
    }
    if (strcmp(event, "spython.code_refused") == 0) {
        return refused_code_policy(args);
    }
    if (spy_policy.startup_control && strcmp(event, "compile") == 0
        && compiles_stdin(args)) {
        out->ends_program = 1;
        return "startupControl";
    }
    if (strcmp(event, "open") == 0) {
        /* Worded as the open_code hook words its refusals. */
        const char *policy = spy_codecheck_bytecode_read(args, out->target,
                                                         sizeof(out->target));

        out->explained = policy != NULL;
        return policy;
    }
    if (spy_policy.lock_hooks && strcmp(event, "sys.addaudithook") == 0) {
        return "lockHooks";
    }
    if ((strcmp(event, "object.__setattr__") == 0
         || strcmp(event, "object.__delattr__") == 0)
        && args != NULL && spy_py.PyTuple_Size(args) >= 1
        && spy_agent_owns(spy_py.PyTuple_GetItem(args, 0))) {
        return "launcherIntegrity";     /* whatever the policies */
    }
    return NULL;
}

void
spy_guard_decide(const char *event, PyObject *args, int nested,
                 struct spy_decision *out)
{
    out->target[0] = '\0';
    out->explained = 0;
    out->ends_program = 0;
    out->policy = switch_policy(event, args, out);
    if (out->policy == NULL
        && spy_rules_first("denyEvents", &spy_policy.deny, event, args,
                           nested) != NULL) {
        out->policy = "denyEvents";
    }
    else if (out->policy == NULL && !nested && spy_policy.prompt.count > 0
             && spy_rules_first("promptEvents", &spy_policy.prompt, event,
                                args, nested) != NULL) {
        spy_guard_target(event, args, out->target, sizeof(out->target));
        if (!spy_prompt_ask(event, args, out->target)) {
            out->policy = "promptEvents";
        }
        return;
    }
    if (out->policy != NULL && out->target[0] == '\0') {
        spy_guard_target(event, args, out->target, sizeof(out->target));
    }
}

static void
say(const char *text)
{
    ssize_t ignored = write(STDERR_FILENO, text, strlen(text));

    (void)ignored;
}

void
spy_guard_refuse(const char *event, const struct spy_decision *d)
{
    char message[SPY_TARGET_MAX + 256];

    if (d->ends_program) {
        /* An interactive prompt after the program (-i, PYTHONSTARTUP,
         * PYTHONINSPECT): CPython ignores, loops on or prompts again after
         * an exception here, so the program ends, as it would have
         * without the prompt, but with status 1. */
        snprintf(message, sizeof(message),
                 "PermissionError: [spython] %s refused %s %s: an "
                 "interactive prompt; the program ends\n", d->policy, event,
                 d->target);
        spy_agent_flush_standard_streams();
        say(message);
        exit(1);
    }
    if (d->explained) {
        snprintf(message, sizeof(message), "[spython] %s refused %s",
                 d->policy, d->target);
    }
    else {
        snprintf(message, sizeof(message), "[spython] %s refused %s %s",
                 d->policy, event, d->target);
    }
    spy_py.PyErr_SetString(spy_py.PermissionError, message);
}

/* PyDictObject's ma_version_tag (PEP 509) where spy_py_layout_known:
 * PyObject_HEAD and ma_used, then the tag, which changes whenever an item
 * is added, replaced or deleted.  Reading it spares a dictionary lookup on
 * every event. */
#define SPY_DICT_VERSION_WORD 3

const char *
spy_guard_tamper_check(void)
{
    static PyObject *sys_dict, *original, *reported, *key_audit;
    static const volatile uint64_t *sys_dict_version;
    static uint64_t checked_version;
    static char descriptor_report[256];
    PyObject *current;

    const char *agent_report = spy_agent_take_tamper_report();

    if (agent_report != NULL) {
        return agent_report;
    }
    if (spy_fdguard_take_report(descriptor_report,
                                sizeof(descriptor_report))) {
        return descriptor_report;
    }
    if (sys_dict_version != NULL && *sys_dict_version == checked_version) {
        return NULL;
    }
    if (!spy_py.Py_IsInitialized()) {
        return NULL;
    }
    if (sys_dict == NULL) {
        PyObject *modules = spy_py.PyImport_GetModuleDict();
        PyObject *sys = modules != NULL
            ? spy_py.PyDict_GetItemString(modules, "sys") : NULL;

        key_audit = spy_py.PyUnicode_InternFromString("audit");
        if (sys == NULL || key_audit == NULL) {
            spy_py.PyErr_Clear();
            return NULL;
        }
        sys_dict = spy_py.PyModule_GetDict(sys);
        original = sys_dict != NULL
            ? spy_py.PyDict_GetItem(sys_dict, key_audit) : NULL;
        if (original == NULL) {
            sys_dict = NULL;
            return NULL;
        }
        /* Both live as long as the interpreter; keep them so. */
        spy_py.Py_IncRef(sys_dict);
        spy_py.Py_IncRef(original);
        reported = original;
        if (spy_py_layout_known) {
            sys_dict_version = (const volatile uint64_t *)sys_dict
                               + SPY_DICT_VERSION_WORD;
        }
    }
    if (sys_dict_version != NULL) {
        checked_version = *sys_dict_version;
    }
    /* Not PyDict_GetItem, which saves and restores the error state: an
     * interned key in a real dict cannot raise. */
    current = spy_py.PyDict_GetItemWithError(sys_dict, key_audit);
    if (current == reported) {
        return NULL;
    }
    reported = current;     /* compared by identity only, never used */
    if (current == original) {
        return NULL;
    }
    return current == NULL ? "sys.audit was deleted: events raised from "
                             "Python code no longer reach the audit hooks"
                           : "sys.audit was replaced: events raised from "
                             "Python code no longer reach the audit hooks";
}
