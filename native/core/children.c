#define _GNU_SOURCE
#include "children.h"

#include "buf.h"
#include "channel.h"
#include "json.h"
#include "stream.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DESCRIPTION_MAX (1024 * 1024)

static struct {
    int active;
    int is_child;
    char *entry;
    char *made_dir;             /* removed at exit by the process made it */
    pid_t maker;
} E;

/* ---- the description file -------------------------------------------- */

struct description_fields {
    struct spy_json_value python, mode, config, channel, token;
};

static int
description_member(const struct spy_json_value *key,
                   const struct spy_json_value *value, void *ctx)
{
    struct description_fields *f = ctx;

    if (spy_json_string_is(key, "python")) {
        f->python = *value;
    }
    else if (spy_json_string_is(key, "mode")) {
        f->mode = *value;
    }
    else if (spy_json_string_is(key, "config")) {
        f->config = *value;
    }
    else if (spy_json_string_is(key, "channel")) {
        f->channel = *value;
    }
    else if (spy_json_string_is(key, "token")) {
        f->token = *value;
    }
    return 0;
}

static char *
string_or_null(const struct spy_json_value *v)
{
    char *out;

    if (v->kind != SPY_JSON_STRING) {
        return NULL;
    }
    out = malloc(v->len);
    if (out == NULL) {
        spy_fatal("out of memory reading the entry", NULL);
    }
    spy_json_string(v, out, v->len);
    return out;
}

int
spy_entry_read(const char *executed, struct spy_entry *out)
{
    char path[PATH_MAX];
    struct spy_json_value root;
    struct description_fields f;
    const char *error = NULL;
    char *data;
    ssize_t n;
    int fd;

    memset(out, 0, sizeof(*out));
    if (executed == NULL
        || snprintf(path, sizeof(path), "%s%s", executed, SPY_ENTRY_SUFFIX)
           >= (int)sizeof(path)) {
        return 0;
    }
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return 0;
    }
    data = malloc(DESCRIPTION_MAX);
    n = data != NULL ? read(fd, data, DESCRIPTION_MAX) : -1;
    close(fd);
    memset(&f, 0, sizeof(f));
    if (n <= 0 || spy_json_parse(data, (size_t)n, &root, &error) < 0
        || root.kind != SPY_JSON_OBJECT) {
        spy_fatal("the audited parent's description of this child is broken",
                  path);
    }
    spy_json_members(&root, description_member, &f);
    out->python = string_or_null(&f.python);
    out->mode = string_or_null(&f.mode);
    out->config = string_or_null(&f.config);
    out->channel = string_or_null(&f.channel);
    out->token = string_or_null(&f.token);
    free(data);
    if (out->python == NULL || out->mode == NULL || out->config == NULL) {
        spy_fatal("the audited parent's description of this child lacks "
                  "python, mode or config", path);
    }
    return 1;
}

static void
put_member(struct spy_buf *b, const char *key, const char *value, int first)
{
    if (!first) {
        spy_buf_putc(b, ',');
    }
    spy_buf_put_json_string(b, key, strlen(key));
    spy_buf_putc(b, ':');
    if (value == NULL) {
        spy_buf_lit(b, "null");
    }
    else {
        spy_buf_put_json_string(b, value, strlen(value));
    }
}

static void
write_description(const char *entry, const char *python, const char *mode,
                  const char *config)
{
    char path[PATH_MAX + 64], tmp[PATH_MAX + 80];
    const char *channel, *token;
    struct spy_buf b;
    int fd;

    spy_channel_address(&channel, &token);
    b.cap = strlen(config) * 6 + 8192;
    b.data = malloc(b.cap);
    b.len = 0;
    b.full = 0;
    if (b.data == NULL) {
        spy_fatal("out of memory describing the sub-process entry", NULL);
    }
    spy_buf_putc(&b, '{');
    put_member(&b, "python", python, 1);
    put_member(&b, "mode", mode, 0);
    put_member(&b, "config", config, 0);
    put_member(&b, "channel", channel, 0);
    put_member(&b, "token", token, 0);
    spy_buf_lit(&b, "}\n");
    snprintf(path, sizeof(path), "%s%s", entry, SPY_ENTRY_SUFFIX);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || write(fd, b.data, b.len) != (ssize_t)b.len
        || close(fd) < 0 || rename(tmp, path) < 0) {
        spy_fatal("cannot write the sub-process entry", strerror(errno));
    }
    free(b.data);
}

/* ---- the entry ---------------------------------------------------------- */

static void
remove_entry_at_exit(void)
{
    char path[PATH_MAX + 64];

    if (E.maker != getpid() || E.entry == NULL) {
        return;
    }
    snprintf(path, sizeof(path), "%s%s", E.entry, SPY_ENTRY_SUFFIX);
    unlink(path);
    unlink(E.entry);
    if (E.made_dir != NULL) {
        rmdir(E.made_dir);
    }
}

void
spy_children_start(const char *launcher, const char *python,
                   const char *mode, const char *config,
                   const char *inherited)
{
    char dir[PATH_MAX - 32], entry[PATH_MAX];
    const char *channel, *token;

    E.active = 1;
    if (inherited != NULL) {
        E.is_child = 1;
        E.entry = strdup(inherited);
        return;
    }
    spy_channel_address(&channel, &token);
    if (channel != NULL) {
        /* The reader's private directory, removed with the session. */
        char socket_path[PATH_MAX];

        snprintf(socket_path, sizeof(socket_path), "%s", channel);
        snprintf(dir, sizeof(dir), "%s", dirname(socket_path));
    }
    else {
        const char *tmp = getenv("TMPDIR");

        snprintf(dir, sizeof(dir), "%s/spython-entry-XXXXXX",
                 tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
        if (mkdtemp(dir) == NULL) {
            spy_fatal("cannot make a directory for the sub-process entry",
                      strerror(errno));
        }
        E.made_dir = strdup(dir);
    }
    snprintf(entry, sizeof(entry), "%s/python-%d", dir, (int)getpid());
    unlink(entry);
    if (symlink(launcher, entry) < 0) {
        spy_fatal("cannot make the sub-process entry", strerror(errno));
    }
    E.entry = strdup(entry);
    E.maker = getpid();
    write_description(entry, python, mode, config);
    atexit(remove_entry_at_exit);
}

int
spy_children_is_child(void)
{
    return E.is_child;
}

void
spy_children_program_starts(void)
{
    PyObject *path;

    if (!E.active) {
        return;
    }
    path = spy_py.PyUnicode_DecodeFSDefault(E.entry);
    if (path == NULL || spy_py.PySys_SetObject("executable", path) < 0) {
        spy_py.PyErr_Clear();
    }
    if (path != NULL) {
        spy_py.Py_DecRef(path);
    }
}

/* ---- interpreters started another way ---------------------------------- */

/* A path (str or bytes) as UTF-8 text, or NULL. */
static const char *
path_text(PyObject *o, Py_ssize_t *n)
{
    char *data;
    const char *text = spy_py.PyUnicode_AsUTF8AndSize(o, n);

    if (text == NULL) {
        spy_py.PyErr_Clear();
        if (spy_py.PyBytes_AsStringAndSize(o, &data, n) == 0) {
            text = data;
        }
    }
    spy_py.PyErr_Clear();
    return text;
}

/* python, python3, python3.12, python3.13t, pythond: a CPython by name. */
static int
names_python(const char *path, Py_ssize_t n)
{
    const char *base = path;

    for (Py_ssize_t i = 0; i < n; i++) {
        if (path[i] == '/') {
            base = path + i + 1;
        }
    }
    if (strncmp(base, "python", 6) != 0) {
        return 0;
    }
    for (const char *p = base + 6; p < path + n; p++) {
        if (strchr("0123456789.dmt", *p) == NULL) {
            return 0;
        }
    }
    return 1;
}

/* The program a spawn-like event starts. */
static PyObject *
started_program(const char *event, PyObject *args)
{
    Py_ssize_t count = args != NULL ? spy_py.PyTuple_Size(args) : 0;
    PyObject *first, *argv;

    if (strcmp(event, "subprocess.Popen") == 0 && count >= 2) {
        first = spy_py.PyTuple_GetItem(args, 0);
        if (first != spy_py.None) {
            return first;
        }
        /* No executable given: the first word of args. */
        argv = spy_py.PyTuple_GetItem(args, 1);
        if (spy_py.PyTuple_Size(argv) > 0) {
            return spy_py.PyTuple_GetItem(argv, 0);
        }
        spy_py.PyErr_Clear();
        if (spy_py.PyList_Size(argv) > 0) {
            return spy_py.PyList_GetItem(argv, 0);
        }
        spy_py.PyErr_Clear();
        return argv;
    }
    if ((strcmp(event, "os.exec") == 0 || strcmp(event, "os.posix_spawn") == 0)
        && count >= 1) {
        return spy_py.PyTuple_GetItem(args, 0);
    }
    if (strcmp(event, "os.spawn") == 0 && count >= 2) {
        return spy_py.PyTuple_GetItem(args, 1);
    }
    return NULL;
}

const char *
spy_children_unaudited(const char *event, PyObject *args)
{
    static __thread char report[PATH_MAX + 128];
    PyObject *program;
    const char *path;
    Py_ssize_t n;

    if (!E.active || (event[0] != 's' && event[0] != 'o')) {
        return NULL;
    }
    program = started_program(event, args);
    path = program != NULL ? path_text(program, &n) : NULL;
    spy_py.PyErr_Clear();
    if (path == NULL || !names_python(path, n)
        || ((size_t)n == strlen(E.entry) && memcmp(path, E.entry, n) == 0)) {
        return NULL;
    }
    snprintf(report, sizeof(report), "%.*s was started directly, not "
             "through sys.executable: it is not audited", (int)n, path);
    return report;
}
