#define _GNU_SOURCE
#include "interp.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* Prints NUL-separated facts; runs under -I -S so neither site nor the
 * user's environment can change the answer. */
static const char PROBE[] =
    "import sys, sysconfig\n"
    "v = sysconfig.get_config_var\n"
    "facts = [sys.implementation.name, sys.executable, sys.version,\n"
    "         '%d.%d.%d' % sys.version_info[:3], '%d' % sys.hexversion,\n"
    "         sys.base_prefix, v('INSTSONAME') or '', v('LDLIBRARY') or '',\n"
    "         v('LIBDIR') or '', v('MULTIARCH') or '',\n"
    "         str(v('Py_GIL_DISABLED') or 0), str(v('Py_ENABLE_SHARED') or 0)]\n"
    "sys.stdout.write('\\0'.join(facts))\n";

enum {
    FACT_IMPLEMENTATION,
    FACT_EXECUTABLE,
    FACT_VERSION,
    FACT_SHORT_VERSION,
    FACT_HEXVERSION,
    FACT_BASE_PREFIX,
    FACT_INSTSONAME,
    FACT_LDLIBRARY,
    FACT_LIBDIR,
    FACT_MULTIARCH,
    FACT_GIL_DISABLED,
    FACT_ENABLE_SHARED,
    FACT_COUNT,
};

#define CACHE_FORMAT "spython-interpreter-cache 1"

/* Finds `name` on PATH the way execvp would; copies it as is when it
 * contains a slash. */
static int
find_program(const char *name, char *out, size_t size)
{
    const char *path = getenv("PATH");

    if (strchr(name, '/') != NULL) {
        snprintf(out, size, "%s", name);
        return access(out, X_OK) == 0 ? 0 : -1;
    }
    if (path == NULL) {
        path = "/usr/local/bin:/usr/bin:/bin";
    }
    while (*path != '\0') {
        const char *end = strchrnul(path, ':');
        int n = (int)(end - path);

        snprintf(out, size, "%.*s/%s", n, n > 0 ? path : ".", name);
        if (n == 0) {
            snprintf(out, size, "./%s", name);
        }
        if (access(out, X_OK) == 0) {
            struct stat st;

            if (stat(out, &st) == 0 && S_ISREG(st.st_mode)) {
                return 0;
            }
        }
        path = *end == ':' ? end + 1 : end;
    }
    return -1;
}

static int
is_elf(const char *path)
{
    char magic[4];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    int ok;

    if (fd < 0) {
        return 0;
    }
    ok = read(fd, magic, 4) == 4 && memcmp(magic, "\x7f" "ELF", 4) == 0;
    close(fd);
    return ok;
}

static uint64_t
fnv1a(uint64_t h, const void *data, size_t n)
{
    const unsigned char *p = data;

    for (size_t i = 0; i < n; i++) {
        h = (h ^ p[i]) * 1099511628211u;
    }
    return h;
}

static int
cache_dir(char *out, size_t size)
{
    const char *dir = getenv("SPYTHON_CACHE_DIR");
    const char *xdg = getenv("XDG_CACHE_HOME");
    const char *home = getenv("HOME");

    if (dir != NULL && *dir != '\0') {
        snprintf(out, size, "%s", dir);
    }
    else if (xdg != NULL && *xdg != '\0') {
        snprintf(out, size, "%s/spython", xdg);
    }
    else if (home != NULL && *home != '\0') {
        snprintf(out, size, "%s/.cache/spython", home);
    }
    else {
        return -1;
    }
    return 0;
}

/* The cache entry's path: keyed by the path as given and by the identity
 * of the file it resolves to, so a reinstalled interpreter is re-asked.
 * Script shims (pyenv's) are never cached: what they run can change. */
static int
cache_path(const char *program, char *out, size_t size)
{
    char dir[PATH_MAX - 32];
    struct stat st;
    uint64_t h = 1469598103934665603u;

    if (!is_elf(program) || stat(program, &st) != 0
        || cache_dir(dir, sizeof(dir)) < 0) {
        return -1;
    }
    h = fnv1a(h, program, strlen(program));
    h = fnv1a(h, &st.st_dev, sizeof(st.st_dev));
    h = fnv1a(h, &st.st_ino, sizeof(st.st_ino));
    h = fnv1a(h, &st.st_size, sizeof(st.st_size));
    h = fnv1a(h, &st.st_mtim, sizeof(st.st_mtim));
    snprintf(out, size, "%s/interpreter-%016llx", dir, (unsigned long long)h);
    return 0;
}

/* Splits NUL-separated fields; -1 unless there are exactly `count`. */
static int
split_fields(char *data, size_t len, char **fields, int count)
{
    char *p = data, *end = data + len;

    for (int i = 0; i < count; i++) {
        if (p > end) {
            return -1;
        }
        fields[i] = p;
        p += strlen(p) + 1;
    }
    return p == end + 1 ? 0 : -1;
}

static int
read_cache(const char *path, struct spy_interp *out)
{
    char data[4 * PATH_MAX + 1024];
    char *fields[6];
    FILE *f = fopen(path, "re");
    size_t n;
    struct stat st;

    if (f == NULL) {
        return -1;
    }
    n = fread(data, 1, sizeof(data) - 1, f);
    fclose(f);
    data[n] = '\0';
    /* format, executable, version, short version, libpython, ft */
    if (split_fields(data, n, fields, 6) < 0) {
        return -1;
    }
    if (strcmp(fields[0], CACHE_FORMAT) != 0) {
        return -1;
    }
    snprintf(out->executable, sizeof(out->executable), "%s", fields[1]);
    snprintf(out->version, sizeof(out->version), "%s", fields[2]);
    snprintf(out->short_version, sizeof(out->short_version), "%s", fields[3]);
    snprintf(out->libpython, sizeof(out->libpython), "%s", fields[4]);
    out->free_threaded = fields[5][0] == '1';
    if (out->libpython[0] != '\0' && stat(out->libpython, &st) != 0) {
        return -1;
    }
    out->from_cache = 1;
    return 0;
}

static void
write_cache(const char *path, const struct spy_interp *in)
{
    char dir[PATH_MAX], tmp[PATH_MAX + 32];
    FILE *f;

    snprintf(dir, sizeof(dir), "%s", path);
    *strrchr(dir, '/') = '\0';
    mkdir(dir, 0700);       /* the parent may be missing: one level only */
    snprintf(tmp, sizeof(tmp), "%s.%d", path, (int)getpid());
    f = fopen(tmp, "we");
    if (f == NULL) {
        char parent[PATH_MAX];

        snprintf(parent, sizeof(parent), "%s", dir);
        *strrchr(parent, '/') = '\0';
        mkdir(parent, 0700);
        mkdir(dir, 0700);
        f = fopen(tmp, "we");
        if (f == NULL) {
            return;         /* caching is an optimisation only */
        }
    }
    fprintf(f, "%s%c%s%c%s%c%s%c%s%c%d", CACHE_FORMAT, 0, in->executable, 0,
            in->version, 0, in->short_version, 0, in->libpython, 0,
            in->free_threaded);
    if (fclose(f) == 0) {
        rename(tmp, path);
    }
    else {
        unlink(tmp);
    }
}

/* Runs the probe; returns its output (NUL-separated facts) or NULL. */
static char *
run_probe(const char *program, size_t *len_out, char *err, size_t err_size)
{
    int out[2];
    pid_t pid;
    char *data = NULL;
    size_t len = 0, cap = 0;
    int status;

    if (pipe2(out, O_CLOEXEC) < 0) {
        snprintf(err, err_size, "cannot create a pipe: %s", strerror(errno));
        return NULL;
    }
    pid = fork();
    if (pid == 0) {
        char *argv[] = {(char *)program, "-I", "-S", "-c", (char *)PROBE,
                        NULL};

        dup2(out[1], STDOUT_FILENO);
        execv(program, argv);
        dprintf(STDERR_FILENO, "spython: cannot run %s: %s\n", program,
                strerror(errno));
        _exit(127);
    }
    close(out[1]);
    if (pid < 0) {
        close(out[0]);
        snprintf(err, err_size, "cannot fork: %s", strerror(errno));
        return NULL;
    }
    for (;;) {
        if (len + 4096 > cap) {
            cap = cap ? cap * 2 : 8192;
            data = realloc(data, cap);
            if (data == NULL) {
                break;
            }
        }
        ssize_t k = read(out[0], data + len, cap - len - 1);
        if (k < 0 && errno == EINTR) {
            continue;
        }
        if (k <= 0) {
            break;
        }
        len += (size_t)k;
    }
    close(out[0]);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (data == NULL || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        free(data);
        snprintf(err, err_size,
                 "%s did not answer as a Python interpreter (is it "
                 "CPython 3.8 or newer?)", program);
        return NULL;
    }
    data[len] = '\0';
    *len_out = len;
    return data;
}

static int
exists(const char *path)
{
    struct stat st;

    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* Where a shared libpython can be: the build's LIBDIR, the installation's
 * own lib/ (relocated builds), and the multiarch directory (Debian). */
static void
find_libpython(char *facts[FACT_COUNT], char *out, size_t size)
{
    const char *names[2] = {facts[FACT_INSTSONAME], facts[FACT_LDLIBRARY]};
    const char *dirs[4];
    char multiarch_dir[PATH_MAX], prefix_dir[PATH_MAX];

    snprintf(prefix_dir, sizeof(prefix_dir), "%s/lib",
             facts[FACT_BASE_PREFIX]);
    snprintf(multiarch_dir, sizeof(multiarch_dir), "%s/lib/%s",
             facts[FACT_BASE_PREFIX], facts[FACT_MULTIARCH]);
    dirs[0] = facts[FACT_LIBDIR];
    dirs[1] = prefix_dir;
    dirs[2] = multiarch_dir;
    dirs[3] = "/usr/lib";
    out[0] = '\0';
    for (int n = 0; n < 2; n++) {
        if (strstr(names[n], ".so") == NULL) {
            continue;       /* libpython3.X.a: a static build */
        }
        for (int d = 0; d < 4; d++) {
            if (dirs[d][0] == '\0') {
                continue;
            }
            snprintf(out, size, "%s/%s", dirs[d], names[n]);
            if (exists(out)) {
                return;
            }
        }
    }
    out[0] = '\0';
}

int
spy_interp_resolve(const char *python, struct spy_interp *out,
                   int use_cache, char *err, size_t err_size)
{
    char program[PATH_MAX], cache[PATH_MAX];
    char *facts[FACT_COUNT];
    char *data;
    size_t len;
    int cacheable;

    memset(out, 0, sizeof(*out));
    if (find_program(python, program, sizeof(program)) < 0) {
        snprintf(err, err_size,
                 "cannot find the Python interpreter '%s'; give one with "
                 "--python PATH or SPYTHON_PYTHON", python);
        return -1;
    }
    cacheable = cache_path(program, cache, sizeof(cache)) == 0;
    if (use_cache && cacheable && read_cache(cache, out) == 0) {
        return 0;
    }
    data = run_probe(program, &len, err, err_size);
    if (data == NULL) {
        return -1;
    }
    if (split_fields(data, len, facts, FACT_COUNT) < 0) {
        snprintf(err, err_size, "%s gave an unexpected answer about itself",
                 program);
        free(data);
        return -1;
    }
    if (strcmp(facts[FACT_IMPLEMENTATION], "cpython") != 0) {
        snprintf(err, err_size, "%s is %s, not CPython: audit hooks need "
                 "CPython 3.8 or newer", program, facts[FACT_IMPLEMENTATION]);
        free(data);
        return -1;
    }
    if (strtol(facts[FACT_HEXVERSION], NULL, 10) < 0x03080000) {
        snprintf(err, err_size, "%s is Python %s: audit hooks need CPython "
                 "3.8 or newer", program, facts[FACT_SHORT_VERSION]);
        free(data);
        return -1;
    }
    /* argv[0] must be the unresolved path: a venv finds pyvenv.cfg
     * through it.  A shim's sys.executable is the real interpreter. */
    snprintf(out->executable, sizeof(out->executable), "%s",
             is_elf(program) || facts[FACT_EXECUTABLE][0] == '\0'
             ? program : facts[FACT_EXECUTABLE]);
    snprintf(out->version, sizeof(out->version), "%s", facts[FACT_VERSION]);
    snprintf(out->short_version, sizeof(out->short_version), "%s",
             facts[FACT_SHORT_VERSION]);
    out->free_threaded = facts[FACT_GIL_DISABLED][0] == '1';
    find_libpython(facts, out->libpython, sizeof(out->libpython));
    free(data);
    if (cacheable) {
        write_cache(cache, out);
    }
    return 0;
}

void
spy_interp_forget(const char *python)
{
    char program[PATH_MAX], cache[PATH_MAX];

    if (find_program(python, program, sizeof(program)) == 0
        && cache_path(program, cache, sizeof(cache)) == 0) {
        unlink(cache);
    }
}
