/* libspython-preload.so: the launcher's hooks for interpreters without a
 * shared libpython.  The launcher sets LD_PRELOAD and execs the real
 * interpreter; this constructor installs the hooks before its main()
 * runs, using the C API the interpreter executable exports itself. */
#define _GNU_SOURCE
#include "../core/pyapi.h"
#include "../core/session.h"
#include "../core/stream.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *
take(const char *name)
{
    const char *value = getenv(name);
    char *copy = strdup(value != NULL ? value : "");

    unsetenv(name);
    return copy;
}

static void
finish_at_exit(void)
{
    spy_session_finish(0, 0);
}

typedef int (*main_function)(int, char **, char **);
static main_function interpreter_main;

/* The interpreter's main() with its status reported: returning from main
 * ends the process through libc's own exit, which no preloaded exit()
 * sees. */
static int
reporting_main(int argc, char **argv, char **envp)
{
    int status = interpreter_main(argc, argv, envp);

    spy_session_finish(status, 1);
    return status;
}

/* glibc's entry calls this with the program's main: when the shim runs
 * the session, it passes reporting_main instead. */
__attribute__((visibility("default"))) int
__libc_start_main(main_function main, int argc, char **argv,
                  void (*init)(void), void (*fini)(void),
                  void (*rtld_fini)(void), void *stack_end)
{
    int (*libc_start_main)(main_function, int, char **, void (*)(void),
                           void (*)(void), void (*)(void), void *)
        = dlsym(RTLD_NEXT, "__libc_start_main");

    if (spy_session_started()) {
        interpreter_main = main;
        main = reporting_main;
    }
    return libc_start_main(main, argc, argv, init, fini, rtld_fini,
                           stack_end);
}

__attribute__((constructor)) static void
spy_preload_start(void)
{
    const char *missing = NULL;
    char *options, *executable, *version, *config, *launcher, *entry, *saved;

    if (getenv("SPYTHON_PRELOAD_OPTIONS") == NULL) {
        return;     /* not started by the launcher: stay inert */
    }
    options = take("SPYTHON_PRELOAD_OPTIONS");
    executable = take("SPYTHON_PRELOAD_EXECUTABLE");
    version = take("SPYTHON_PRELOAD_VERSION");
    config = take("SPYTHON_PRELOAD_CONFIG");
    launcher = take("SPYTHON_PRELOAD_LAUNCHER");
    entry = take("SPYTHON_PRELOAD_ENTRY");
    /* Children must not inherit the shim: restore the user's own value. */
    saved = getenv("SPYTHON_PRELOAD_SAVED_LD_PRELOAD");
    if (saved != NULL) {
        setenv("LD_PRELOAD", saved, 1);
        unsetenv("SPYTHON_PRELOAD_SAVED_LD_PRELOAD");
    }
    else {
        unsetenv("LD_PRELOAD");
    }
    if (spy_pyapi_load(RTLD_DEFAULT, &missing) < 0) {
        char detail[1024];

        snprintf(detail, sizeof(detail),
                 "%s exports no %s, so hooks cannot be installed in it; "
                 "install its shared library (Debian: apt install "
                 "libpython%s) or use a build configured with "
                 "--enable-shared", executable, missing, version);
        spy_fatal("no way to audit this interpreter", detail);
    }

    struct spy_session_options session = {
        strstr(options, "stderr") != NULL,
        strstr(options, "minimal") != NULL,
        "preload",
        executable,
        version,
        0,
        config,
        launcher,
        entry[0] != '\0' ? entry : NULL,
    };
    spy_session_start(&session);
    atexit(finish_at_exit);
}
