#define _GNU_SOURCE
#include "codecheck.h"

#include "policy.h"
#include "stream.h"
#include "verify.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

/* From Linux 6.14 (include/uapi/linux/fcntl.h, securebits.h). */
#define EXECVE_CHECK_FLAG 0x10000
#define SECBIT_RESTRICT_FILE 0x100
#define SECBIT_DENY_INTERACTIVE 0x400
#ifndef SYS_setxattrat
#define SYS_setxattrat 463
#endif

static struct {
    struct spy_manifest *manifest;
    char **exempt;                  /* resolved, without a trailing '/' */
    size_t exempt_count;
    int exec_check;                 /* the flag, or the securebit */
    int deny_interactive;
    PyObject *bytes_io;
} K;

static int
verifying(void)
{
    return spy_policy.verify != SPY_VERIFY_OFF;
}

static int
is_exempt(const char *resolved)
{
    for (size_t i = 0; i < K.exempt_count; i++) {
        size_t n = strlen(K.exempt[i]);

        if (strncmp(resolved, K.exempt[i], n) == 0
            && (resolved[n] == '/' || resolved[n] == '\0')) {
            return 1;
        }
    }
    return 0;
}

/* The path the descriptor really names: symlink games before the open
 * cannot move an exempt check. */
static void
resolved_path(int fd, char *out, size_t size)
{
    char link[64];
    ssize_t n;

    snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
    n = readlink(link, out, size - 1);
    out[n > 0 ? n : 0] = '\0';
}

/* 0 when the kernel would execute it, else errno. */
static int
kernel_exec_check(int fd)
{
    char *argv[] = {"", NULL};
    char *envp[] = {NULL};

    if (syscall(SYS_execveat, fd, "", argv, envp,
                AT_EMPTY_PATH | EXECVE_CHECK_FLAG) == 0) {
        return 0;
    }
    return errno;
}

static char *
read_whole(int fd, size_t *size)
{
    size_t len = 0, cap = 65536;
    char *data = malloc(cap);

    while (data != NULL) {
        ssize_t k = read(fd, data + len, cap - len);

        if (k < 0 && errno == EINTR) {
            continue;
        }
        if (k < 0) {
            free(data);
            return NULL;
        }
        if (k == 0) {
            *size = len;
            return data;
        }
        len += (size_t)k;
        if (len == cap) {
            char *grown = realloc(data, cap *= 2);

            if (grown == NULL) {
                free(data);
            }
            data = grown;
        }
    }
    return NULL;
}

/* Code files are opened with O_NONBLOCK: a FIFO is then refused as "not
 * a regular file" instead of hanging the open.  (Regular files ignore
 * the flag.) */

/* Checks an open code file.  Returns NULL when it may run (with its
 * bytes in *contents when they were read during verification), else the
 * refusing policy, with the reason in why. */
static const char *
check_fd(int fd, char **contents, size_t *size, char *why, size_t why_size)
{
    char resolved[PATH_MAX], detail[256];
    struct spy_verify_options options = {
        spy_policy.xattr_name, spy_policy.max_code_size, K.manifest};
    enum spy_verify_result result;
    int exempt, error;

    *contents = NULL;
    resolved_path(fd, resolved, sizeof(resolved));
    exempt = is_exempt(resolved);
    if (K.exec_check && !exempt && (error = kernel_exec_check(fd)) != 0) {
        snprintf(why, why_size, "%s: the kernel would not execute it (%s)",
                 resolved, strerror(error));
        return "execCheck";
    }
    if (!verifying() || exempt) {
        return NULL;
    }
    detail[0] = '\0';
    result = spy_verify_fd(fd, &options, contents, size, detail,
                           sizeof(detail));
    if (result == SPY_VERIFY_OK) {
        return NULL;
    }
    snprintf(why, why_size, "%s: %s%s%s", resolved, spy_verify_reason(result),
             detail[0] ? ": " : "", detail);
    if (spy_policy.verify == SPY_VERIFY_WARN) {
        fprintf(stderr, "spython: verifyImports (warn): %s\n", why);
        free(*contents);
        *contents = NULL;
        return NULL;
    }
    return "verifyImports";
}

/* Raises spython.refused_code, which the hook records marked denied, and
 * leaves the PermissionError set. */
static void
refuse(PyObject *path, const char *policy, const char *why)
{
    char message[PATH_MAX + 512];

    if (spy_py.PySys_Audit("spython.code_refused", "(Oss)", path, policy,
                           why) < 0) {
        spy_py.PyErr_Clear();
    }
    snprintf(message, sizeof(message), "[spython] %s refused %s", policy,
             why);
    spy_py.PyErr_SetString(spy_py.PermissionError, message);
}

static PyObject *
open_code(PyObject *path, void *unused)
{
    PyObject *encoded, *data, *stream;
    char why[PATH_MAX + 300];
    const char *policy = NULL;
    char *name, *contents = NULL;
    size_t size = 0;
    Py_ssize_t n;
    void *thread_state;
    int fd, error;

    (void)unused;
    encoded = spy_py.PyUnicode_EncodeFSDefault(path);
    if (encoded == NULL) {
        return NULL;
    }
    if (spy_py.PyBytes_AsStringAndSize(encoded, &name, &n) < 0) {
        spy_py.Py_DecRef(encoded);
        return NULL;
    }
    /* Checking and reading block (a slow disk, a FIFO): other threads run
     * meanwhile, as they do while Python reads a file itself. */
    thread_state = spy_py.PyEval_SaveThread();
    fd = open(name, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    error = errno;
    if (fd >= 0) {
        policy = check_fd(fd, &contents, &size, why, sizeof(why));
        if (policy == NULL && contents == NULL) {
            /* Not verified (exempt, warn mode): read it as Python would,
             * blocking, from wherever the descriptor stands. */
            fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
            contents = read_whole(fd, &size);
            error = errno;
        }
        close(fd);
    }
    spy_py.PyEval_RestoreThread(thread_state);
    if (fd >= 0 && policy != NULL) {
        spy_py.Py_DecRef(encoded);
        refuse(path, policy, why);
        return NULL;
    }
    if (fd < 0 || contents == NULL) {
        errno = error;
        spy_py.PyErr_SetFromErrnoWithFilename(spy_py.OSError, name);
        spy_py.Py_DecRef(encoded);
        return NULL;
    }
    spy_py.Py_DecRef(encoded);
    /* Python gets exactly the bytes that were checked. */
    data = spy_py.PyBytes_FromStringAndSize(contents, (Py_ssize_t)size);
    free(contents);
    if (data == NULL) {
        return NULL;
    }
    if (K.bytes_io == NULL) {
        PyObject *io = spy_py.PyImport_ImportModule("_io");

        K.bytes_io = io != NULL ? spy_py.PyObject_GetAttrString(io, "BytesIO")
                                : NULL;
        if (io != NULL) {
            spy_py.Py_DecRef(io);
        }
        if (K.bytes_io == NULL) {
            spy_py.Py_DecRef(data);
            return NULL;
        }
    }
    stream = spy_py.PyObject_CallFunctionObjArgs(K.bytes_io, data, NULL);
    spy_py.Py_DecRef(data);
    return stream;
}

/* Checks a code file named by a str object, opened here. */
static const char *
check_path(PyObject *path, char *why, size_t why_size)
{
    PyObject *encoded = spy_py.PyUnicode_EncodeFSDefault(path);
    char *name, *contents = NULL;
    Py_ssize_t n;
    size_t size;
    const char *policy;
    int fd;

    if (encoded == NULL || spy_py.PyBytes_AsStringAndSize(encoded, &name,
                                                          &n) < 0) {
        spy_py.PyErr_Clear();
        if (encoded != NULL) {
            spy_py.Py_DecRef(encoded);
        }
        snprintf(why, why_size, "a code file's name cannot be read");
        return verifying() ? "verifyImports" : "execCheck";
    }
    fd = open(name, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    spy_py.Py_DecRef(encoded);
    if (fd < 0) {
        return NULL;        /* Python reports the missing file itself */
    }
    policy = check_fd(fd, &contents, &size, why, why_size);
    free(contents);
    close(fd);
    return policy;
}

const char *
spy_codecheck_main_script(PyObject *args, char *why, size_t why_size)
{
    PyObject *path;

    if ((!verifying() && !K.exec_check) || args == NULL
        || spy_py.PyTuple_Size(args) < 1
        || (path = spy_py.PyTuple_GetItem(args, 0)) == NULL) {
        spy_py.PyErr_Clear();
        return NULL;
    }
    return check_path(path, why, why_size);
}

const char *
spy_codecheck_bytecode_read(PyObject *args, char *why, size_t why_size)
{
    PyObject *path, *mode;
    Py_ssize_t n, m;
    const char *text, *how;

    if ((!verifying() && !K.exec_check) || args == NULL
        || spy_py.PyTuple_Size(args) < 2
        || (path = spy_py.PyTuple_GetItem(args, 0)) == NULL
        || (mode = spy_py.PyTuple_GetItem(args, 1)) == NULL
        || (text = spy_py.PyUnicode_AsUTF8AndSize(path, &n)) == NULL
        || (how = spy_py.PyUnicode_AsUTF8AndSize(mode, &m)) == NULL
        || n < 4 || strcmp(text + n - 4, ".pyc") != 0
        || strpbrk(how, "wax+") != NULL) {
        spy_py.PyErr_Clear();
        return NULL;
    }
    return check_path(path, why, why_size);
}

int
spy_codecheck_deny_interactive(void)
{
    return K.deny_interactive;
}

/* Refuses setxattr and friends with EPERM (the linux_xattr sample's
 * rule): the script cannot stamp the files it writes. */
/* Refuses setxattr and friends with EPERM (the linux_xattr sample's
 * rule), so the script cannot stamp the files it writes; and the ways
 * around a syscall filter: the 32-bit and x32 system call tables and
 * io_uring (which can set xattrs without a system call of its own). */
static void
forbid_setxattr(void)
{
#define SPY_REFUSE BPF_STMT(BPF_RET | BPF_K, \
                            SECCOMP_RET_ERRNO | (EPERM & 0xFFFF))
    struct sock_filter filter[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
                 offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
        SPY_REFUSE,
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
                 offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, 0x40000000, 7, 0),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_setxattr, 6, 0),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_lsetxattr, 5, 0),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_fsetxattr, 4, 0),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_setxattrat, 3, 0),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_io_uring_setup, 2, 0),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_io_uring_register, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        SPY_REFUSE,
    };
#undef SPY_REFUSE
    struct sock_fprog program = {sizeof(filter) / sizeof(*filter), filter};

    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0
        || prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &program) < 0) {
        spy_fatal("cannot install the seccomp filter that forbids setxattr",
                  strerror(errno));
    }
}

static void
resolve_exemptions(void)
{
    K.exempt = calloc(spy_policy.verify_exempt_count + 1, sizeof(char *));
    for (size_t i = 0; K.exempt != NULL && i < spy_policy.verify_exempt_count;
         i++) {
        char *resolved = realpath(spy_policy.verify_exempt[i], NULL);

        if (resolved == NULL) {
            char what[PATH_MAX + 64];

            snprintf(what, sizeof(what), "verifyExempt directory %s",
                     spy_policy.verify_exempt[i]);
            spy_fatal(what, strerror(errno));
        }
        K.exempt[K.exempt_count++] = resolved;
    }
}

void
spy_codecheck_start(void)
{
    int bits = prctl(PR_GET_SECUREBITS);
    char err[512];

    K.exec_check = spy_policy.exec_check
                   || (bits > 0 && (bits & SECBIT_RESTRICT_FILE));
    K.deny_interactive = bits > 0 && (bits & SECBIT_DENY_INTERACTIVE);
    if (K.exec_check) {
        /* Probe once: a kernel without AT_EXECVE_CHECK rejects the
         * unknown flag with EINVAL (it never executes anything). */
        int fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
        int error = fd >= 0 ? kernel_exec_check(fd) : errno;

        if (fd >= 0) {
            close(fd);
        }
        if (error == EINVAL) {
            spy_fatal("execCheck needs Linux 6.14 or newer "
                      "(AT_EXECVE_CHECK); this kernel does not know it",
                      NULL);
        }
    }
    if (!verifying() && !K.exec_check) {
        return;
    }
    if (spy_policy.verify == SPY_VERIFY_MANIFEST) {
        enum spy_verify_result why;

        if (spy_policy.manifest == NULL || spy_policy.manifest_key == NULL) {
            spy_fatal("verifyImports \"manifest\" needs manifest and "
                      "manifestKey (--manifest FILE --key PUBLIC.pem)", NULL);
        }
        K.manifest = spy_manifest_load(spy_policy.manifest,
                                       spy_policy.manifest_key, &why, err,
                                       sizeof(err));
        if (K.manifest == NULL) {
            spy_fatal("cannot use the manifest", err);
        }
    }
    resolve_exemptions();
    if (verifying()) {
        forbid_setxattr();
    }
    if (spy_py.PyFile_SetOpenCodeHook(open_code, NULL) < 0) {
        spy_fatal("CPython refused the open_code hook", NULL);
    }
}
