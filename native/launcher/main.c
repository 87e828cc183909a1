/* spython: run a CPython 3.8+ interpreter with audit hooks installed
 * before it starts.  One binary serves every interpreter: libpython is
 * loaded with dlopen() (or, where there is none, the hooks are preloaded
 * into the interpreter itself). */
#define _GNU_SOURCE
#include "interp.h"

#include "../core/buf.h"
#include "../core/channel.h"
#include "../core/children.h"
#include "../core/pyapi.h"
#include "../core/session.h"
#include "../core/stream.h"

#include <dlfcn.h>
#include <errno.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <unistd.h>

#define SPYTHON_VERSION "0.1.0"
#define PRELOAD_LIBRARY "libspython-preload.so"
/* Set for the one re-run after cached interpreter facts proved stale. */
#define RETRY_VARIABLE "SPYTHON_INTERNAL_CACHE_RETRY"

static const char USAGE[] =
    "usage: spython [launcher options] [--python INTERPRETER] [--] "
    "[python arguments]\n"
    "\n"
    "Runs Python with PEP 578 audit hooks installed before it starts.  With\n"
    "no options it behaves exactly like the interpreter.\n"
    "\n"
    "launcher options:\n"
    "  --python PATH   the interpreter (default: $SPYTHON_PYTHON, else\n"
    "                  python3 on PATH)\n"
    "  --stderr        write '<event>: <arguments>' to stderr per event\n"
    "  --minimal       write 'Event occurred: <event>(<arguments>)' to\n"
    "                  stdout per event\n"
    "  --mode MODE     auto (default), dlopen (load the interpreter's\n"
    "                  libpython) or preload (LD_PRELOAD the hooks into it)\n"
    "\n"
    "policies (each also a launch.json attribute; GLOB matches event names,\n"
    "'GLOB if EXPR' adds a Python condition over `event` and `args`):\n"
    "  --startup-control      only a script file may run: no -c, -m, stdin,\n"
    "                         REPL, -i or PYTHONSTARTUP\n"
    "  --deny SPEC            matching events raise PermissionError\n"
    "  --prompt SPEC          ask on the terminal whether they may proceed\n"
    "  --lock-hooks           the script may not add audit hooks\n"
    "  --verify MODE          xattr, warn or manifest: verify every code file\n"
    "  --verify-exempt DIR    trust a tree without verifying it\n"
    "  --xattr-name NAME      default user.org.python.x-spython-hash\n"
    "  --max-code-size BYTES  default 2097152\n"
    "  --manifest FILE        with --verify manifest: the signed manifest\n"
    "  --key FILE             its Ed25519 public key (PEM)\n"
    "  --exec-check           ask the kernel (AT_EXECVE_CHECK) about code\n"
    "  --syslog GLOB          send matching events to syslog\n"
    "  --journal GLOB         send matching events to the systemd journal\n"
    "  --log-file PATH        every record as one JSON line\n"
    "  --sub-process          audit children started through sys.executable\n"
    "                         with the same policies and channel\n"
    "  --help          this text\n"
    "  --version       the launcher's version and protocol version\n"
    "\n"
    "Everything from the first argument that is not a launcher option (or\n"
    "after --) goes to Python unchanged.  When SPYTHON_CHANNEL and\n"
    "SPYTHON_TOKEN are set, events stream to that channel (docs/protocol.md).\n"
    "Launcher errors exit with status 125.\n";

enum mode {
    MODE_AUTO,
    MODE_DLOPEN,
    MODE_PRELOAD,
};

struct options {
    const char *python;
    int log_stderr;
    int log_minimal;
    enum mode mode;
    int first_python_arg;
    struct spy_buf config;      /* the policy flags, as configuration JSON */
};

/* Flags that take a value and become configuration: repeatable ones are
 * lists. */
static const struct {
    const char *flag;
    const char *key;            /* "a.b": member b of object a */
    enum { LIST, TEXT, NUMBER } kind;
} value_flags[] = {
    {"--deny", "denyEvents", LIST},
    {"--prompt", "promptEvents", LIST},
    {"--verify-exempt", "verifyExempt", LIST},
    {"--syslog", "auditLog.syslog", LIST},
    {"--journal", "auditLog.journal", LIST},
    {"--verify", "verifyImports", TEXT},
    {"--xattr-name", "xattrName", TEXT},
    {"--manifest", "manifest", TEXT},
    {"--key", "manifestKey", TEXT},
    {"--log-file", "auditLog.file", TEXT},
    {"--max-code-size", "maxCodeSize", NUMBER},
};

static const struct {
    const char *flag;
    const char *key;
} switch_flags[] = {
    {"--startup-control", "startupControl"},
    {"--lock-hooks", "lockHooks"},
    {"--exec-check", "execCheck"},
    {"--sub-process", "subProcess"},
};

static void
die(const char *format, ...)
{
    va_list ap;

    fputs("spython: ", stderr);
    va_start(ap, format);
    vfprintf(stderr, format, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(SPY_EXIT_LAUNCHER_ERROR);
}

/* --name VALUE or --name=VALUE; returns the value or NULL. */
static const char *
option_value(int argc, char **argv, int *i, const char *name)
{
    size_t n = strlen(name);

    if (strncmp(argv[*i], name, n) != 0) {
        return NULL;
    }
    if (argv[*i][n] == '=') {
        return argv[*i] + n + 1;
    }
    if (argv[*i][n] != '\0') {
        return NULL;
    }
    if (*i + 1 >= argc) {
        die("%s needs a value (see spython --help)", name);
    }
    return argv[++*i];
}

/* Each flag becomes its own one-member configuration object; they are
 * merged in order, which is what the policy reader does with several
 * objects anyway (lists append, switches turn on). */
static void
add_config(struct options *o, const char *key, const char *value, int kind)
{
    const char *dot = strchr(key, '.');
    struct spy_buf *b = &o->config;

    spy_buf_lit(b, "{\"");
    spy_buf_put(b, key, dot != NULL ? (size_t)(dot - key) : strlen(key));
    spy_buf_lit(b, "\":");
    if (dot != NULL) {
        spy_buf_lit(b, "{\"");
        spy_buf_put(b, dot + 1, strlen(dot + 1));
        spy_buf_lit(b, "\":");
    }
    if (kind == NUMBER) {
        char *end;
        long long n = strtoll(value, &end, 10);

        if (*value == '\0' || *end != '\0' || n <= 0) {
            die("%s needs a positive number of bytes, not '%s'", key, value);
        }
        spy_buf_put_i64(b, n);
    }
    else if (kind == LIST || kind == TEXT) {
        spy_buf_put(b, kind == LIST ? "[" : "", kind == LIST ? 1 : 0);
        spy_buf_put_json_string(b, value, strlen(value));
        spy_buf_put(b, kind == LIST ? "]" : "", kind == LIST ? 1 : 0);
    }
    else {
        spy_buf_lit(b, "true");
    }
    spy_buf_put(b, dot != NULL ? "}}\n" : "}\n", dot != NULL ? 3 : 2);
    if (b->full) {
        die("too many policy flags");
    }
}

/* A policy flag at argv[*i]: returns 1 when it was one. */
static int
parse_policy_flag(int argc, char **argv, int *i, struct options *o)
{
    const char *value;

    for (size_t k = 0; k < sizeof(value_flags) / sizeof(*value_flags); k++) {
        value = option_value(argc, argv, i, value_flags[k].flag);
        if (value != NULL) {
            add_config(o, value_flags[k].key, value, value_flags[k].kind);
            return 1;
        }
    }
    for (size_t k = 0; k < sizeof(switch_flags) / sizeof(*switch_flags);
         k++) {
        if (strcmp(argv[*i], switch_flags[k].flag) == 0) {
            add_config(o, switch_flags[k].key, NULL, -1);
            return 1;
        }
    }
    return 0;
}

static char config_text[256 * 1024];

/* A child started through a sub-process entry: every argument is
 * Python's, and the rest comes from the entry's description. */
static void
options_from_entry(const struct spy_entry *entry, struct options *o)
{
    memset(o, 0, sizeof(*o));
    o->python = entry->python;
    o->mode = strcmp(entry->mode, "preload") == 0 ? MODE_PRELOAD : MODE_DLOPEN;
    o->first_python_arg = 1;
    o->config = (struct spy_buf){config_text, 0, sizeof(config_text) - 1, 0};
    spy_buf_put(&o->config, entry->config, strlen(entry->config));
    if (o->config.full) {
        die("the sub-process entry's configuration is too long");
    }
    o->config.data[o->config.len] = '\0';
    if (entry->channel != NULL && entry->token != NULL) {
        setenv("SPYTHON_CHANNEL", entry->channel, 1);
        setenv("SPYTHON_TOKEN", entry->token, 1);
    }
}

static void
parse_options(int argc, char **argv, struct options *o)
{
    int i;

    memset(o, 0, sizeof(*o));
    o->config = (struct spy_buf){config_text, 0, sizeof(config_text) - 1, 0};
    for (i = 1; i < argc; i++) {
        const char *arg = argv[i];
        const char *value;

        if (strcmp(arg, "--") == 0) {
            i++;
            break;
        }
        if (parse_policy_flag(argc, argv, &i, o)) {
            continue;
        }
        if ((value = option_value(argc, argv, &i, "--python")) != NULL) {
            o->python = value;
        }
        else if ((value = option_value(argc, argv, &i, "--mode")) != NULL) {
            if (strcmp(value, "auto") == 0) {
                o->mode = MODE_AUTO;
            }
            else if (strcmp(value, "dlopen") == 0) {
                o->mode = MODE_DLOPEN;
            }
            else if (strcmp(value, "preload") == 0) {
                o->mode = MODE_PRELOAD;
            }
            else {
                die("--mode is auto, dlopen or preload, not '%s'", value);
            }
        }
        else if (strcmp(arg, "--stderr") == 0) {
            o->log_stderr = 1;
        }
        else if (strcmp(arg, "--minimal") == 0) {
            o->log_minimal = 1;
        }
        else if (strcmp(arg, "--help") == 0) {
            fputs(USAGE, stdout);
            exit(0);
        }
        else if (strcmp(arg, "--version") == 0) {
            printf("spython %s (channel protocol %d)\n", SPYTHON_VERSION,
                   SPY_PROTOCOL_VERSION);
            exit(0);
        }
        else {
            break;
        }
    }
    o->first_python_arg = i;
    o->config.data[o->config.len] = '\0';
    if (o->python == NULL) {
        o->python = getenv("SPYTHON_PYTHON");
    }
    if (o->python == NULL || o->python[0] == '\0') {
        o->python = "python3";
    }
}

/* argv for the interpreter: its own (unresolved) path, then the python
 * arguments. */
static char **
python_argv(const char *executable, int argc, char **argv, int first,
            int *count)
{
    int n = argc - first + 1;
    char **out = calloc((size_t)n + 1, sizeof(char *));

    if (out == NULL) {
        die("out of memory");
    }
    out[0] = (char *)executable;
    memcpy(out + 1, argv + first, (size_t)(n - 1) * sizeof(char *));
    *count = n;
    return out;
}

/* This launcher's own path. */
static const char *
launcher_path(void)
{
    static char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);

    if (n < 0) {
        die("cannot find the launcher's own path: %s", strerror(errno));
    }
    self[n] = '\0';
    return self;
}

static void
run_preloaded(const struct options *o, const struct spy_interp *interp,
              char **pargv, const char *entry)
{
    char dir[PATH_MAX], shim[PATH_MAX + 64];
    const char *saved = getenv("LD_PRELOAD");

    snprintf(dir, sizeof(dir), "%s", launcher_path());
    snprintf(shim, sizeof(shim), "%s/%s", dirname(dir), PRELOAD_LIBRARY);
    if (access(shim, R_OK) != 0) {
        die("%s is missing: the launcher's installation is incomplete "
            "(rebuild with npm run build)", shim);
    }
    if (saved != NULL) {
        setenv("SPYTHON_PRELOAD_SAVED_LD_PRELOAD", saved, 1);
    }
    setenv("LD_PRELOAD", shim, 1);
    setenv("SPYTHON_PRELOAD_OPTIONS",
           o->log_stderr && o->log_minimal ? "stderr,minimal"
           : o->log_stderr ? "stderr" : o->log_minimal ? "minimal" : "", 1);
    setenv("SPYTHON_PRELOAD_EXECUTABLE", interp->executable, 1);
    setenv("SPYTHON_PRELOAD_VERSION", interp->short_version, 1);
    setenv("SPYTHON_PRELOAD_CONFIG", o->config.data, 1);
    setenv("SPYTHON_PRELOAD_LAUNCHER", launcher_path(), 1);
    if (entry != NULL) {
        setenv("SPYTHON_PRELOAD_ENTRY", entry, 1);
    }
    execv(interp->executable, pargv);
    die("cannot run %s: %s", interp->executable, strerror(errno));
}

static int
run_loaded(const struct options *o, const struct spy_interp *interp,
           int pargc, char **pargv, char **argv, const char *entry)
{
    const char *missing = NULL;
    /* Bound lazily, as the interpreter's own executable binds it: binding
     * all of libpython up front cost every start ~0.6 M instructions. */
    void *handle = dlopen(interp->libpython, RTLD_LAZY | RTLD_GLOBAL);
    int status;

    if (handle == NULL) {
        die("cannot load %s: %s", interp->libpython, dlerror());
    }
    if (spy_pyapi_load(handle, &missing) < 0) {
        die("%s lacks %s: is it CPython 3.8 or newer?", interp->libpython,
            missing);
    }
    if (strcmp(spy_py.Py_GetVersion(), interp->version) != 0) {
        if (interp->from_cache && getenv(RETRY_VARIABLE) == NULL) {
            /* Stale cache: forget it and start over in a clean process. */
            spy_interp_forget(o->python);
            setenv(RETRY_VARIABLE, "1", 1);
            execv("/proc/self/exe", argv);
        }
        die("%s is Python %s, but %s is Python %.*s: they must match "
            "(a wrong libpython runs silently otherwise); check the "
            "interpreter's installation or use --mode preload",
            interp->libpython, spy_py.Py_GetVersion(), interp->executable,
            (int)strcspn(interp->version, " "), interp->version);
    }
    unsetenv(RETRY_VARIABLE);

    struct spy_session_options session = {
        o->log_stderr,
        o->log_minimal,
        "dlopen",
        interp->executable,
        interp->short_version,
        interp->free_threaded,
        o->config.data,
        launcher_path(),
        entry,
    };
    spy_session_start(&session);
    status = spy_py.Py_BytesMain(pargc, pargv);
    spy_session_finish(status, 1);
    return status;
}

int
main(int argc, char **argv)
{
    struct options o;
    struct spy_interp interp;
    struct spy_entry entry;
    /* The path the kernel executed (an entry's symlink), not argv[0]. */
    const char *executed = (const char *)getauxval(AT_EXECFN);
    char error[PATH_MAX + 512];
    char **pargv;
    int pargc;

    if (spy_entry_read(executed, &entry)) {
        options_from_entry(&entry, &o);
    }
    else {
        executed = NULL;
        parse_options(argc, argv, &o);
    }
    if (spy_interp_resolve(o.python, &interp, 1, error, sizeof(error)) < 0) {
        die("%s", error);
    }
    pargv = python_argv(interp.executable, argc, argv, o.first_python_arg,
                        &pargc);

    if (o.mode == MODE_PRELOAD
        || (o.mode == MODE_AUTO && interp.libpython[0] == '\0')) {
        run_preloaded(&o, &interp, pargv, executed);
    }
    if (interp.libpython[0] == '\0') {
        die("%s has no shared libpython (Debian: apt install libpython%.*s; "
            "or use --mode preload)", interp.executable,
            (int)(strrchr(interp.short_version, '.') - interp.short_version),
            interp.short_version);
    }
    return run_loaded(&o, &interp, pargc, pargv, argv, executed);
}
