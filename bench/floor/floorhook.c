/* Floors for the event storm, measured beside the launcher: what any C
 * audit hook pays before it does anything of its own.
 *
 *   mode 0: a hook that returns at once (CPython's own dispatch: the
 *           argument tuple, the hook call);
 *   mode 1: a hook that appends one fixed line as long as a launcher
 *           record to a 64 KiB buffer and write()s it when full (the
 *           kernel's cost of a record's bytes, with no formatting at all).
 *
 * Built by bench/run.js against the interpreter's own headers and loaded
 * with ctypes by bench/workloads/floorhook.py. */
#include <Python.h>

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BATCH (64 * 1024)

static char batch[BATCH];
static size_t used;
static int log_fd = -1;
static char line[512];
static size_t line_len;

static void
flush(void)
{
    size_t done = 0;

    while (done < used) {
        ssize_t n = write(log_fd, batch + done, used - done);

        if (n <= 0) {
            break;
        }
        done += (size_t)n;
    }
    used = 0;
}

static int
empty_hook(const char *event, PyObject *args, void *data)
{
    return 0;
}

static int
line_hook(const char *event, PyObject *args, void *data)
{
    if (used + line_len > BATCH) {
        flush();
    }
    memcpy(batch + used, line, line_len);
    used += line_len;
    return 0;
}

int
floor_install(int mode, const char *log_path, int record_bytes)
{
    if (mode == 0) {
        return PySys_AddAuditHook(empty_hook, NULL);
    }
    log_fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (log_fd < 0 || record_bytes < 2 || (size_t)record_bytes > sizeof(line)) {
        return -1;
    }
    memset(line, 'x', (size_t)record_bytes - 1);
    line[record_bytes - 1] = '\n';
    line_len = (size_t)record_bytes;
    atexit(flush);
    return PySys_AddAuditHook(line_hook, NULL);
}
