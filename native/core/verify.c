/* Trust checks for code files (see verify.h).  Everything a check needs is
 * done through one descriptor; OpenSSL is reached through dlopen() and
 * only for Ed25519. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "verify.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>
#include <sys/xattr.h>
#include <unistd.h>

#define SPY_CHUNK (64 * 1024)
#define SPY_MANIFEST_LIMIT ((size_t)256 * 1024 * 1024)
#define SPY_KEY_LIMIT ((size_t)64 * 1024)
#define SPY_SIG_LIMIT ((size_t)4096)
#define SPY_ED25519_SIG_SIZE 64
#define SPY_NID_ED25519 1087    /* NID_ED25519 = EVP_PKEY_ED25519 */
#define SPY_BIO_CTRL_INFO 3     /* BIO_get_mem_data is this BIO_ctrl */

/* ------------------------------------------------------------------ */
/* Messages */

__attribute__((format(printf, 3, 4)))
static void
spy_msg(char *buf, size_t size, const char *fmt, ...)
{
    va_list ap;

    if (buf == NULL || size == 0) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(buf, size, fmt, ap);
    va_end(ap);
}

static void
spy_msg_clear(char *buf, size_t size)
{
    if (buf != NULL && size > 0) {
        buf[0] = '\0';
    }
}

/* strerror, thread-safely, whichever strerror_r the libc has. */
static const char *
spy_strerror(int err, char *buf, size_t size)
{
#if defined(__GLIBC__)
    return strerror_r(err, buf, size);
#else
    if (strerror_r(err, buf, size) != 0) {
        snprintf(buf, size, "error %d", err);
    }
    return buf;
#endif
}

const char *
spy_verify_reason(enum spy_verify_result r)
{
    switch (r) {
    case SPY_VERIFY_OK: return "ok";
    case SPY_VERIFY_NO_XATTR: return "no xattr";
    case SPY_VERIFY_MISMATCH: return "hash mismatch";
    case SPY_VERIFY_TOO_LARGE: return "too large";
    case SPY_VERIFY_NOT_REGULAR: return "not a regular file";
    case SPY_VERIFY_NOEXEC_MOUNT: return "on a noexec mount";
    case SPY_VERIFY_NOT_IN_MANIFEST: return "not in manifest";
    case SPY_VERIFY_BAD_SIGNATURE: return "bad signature";
    case SPY_VERIFY_IO_ERROR: return "I/O error";
    case SPY_VERIFY_BAD_MANIFEST: return "malformed manifest";
    }
    return "unknown result";
}

static const char *
spy_file_kind(mode_t mode)
{
    if (S_ISDIR(mode)) {
        return "a directory";
    }
    if (S_ISFIFO(mode)) {
        return "a FIFO";
    }
    if (S_ISSOCK(mode)) {
        return "a socket";
    }
    if (S_ISCHR(mode)) {
        return "a character device";
    }
    if (S_ISBLK(mode)) {
        return "a block device";
    }
    return "not a regular file";
}

/* ------------------------------------------------------------------ */
/* Reading and hashing through a descriptor */

/* Reads the file on fd whole, from offset 0, hashing as it goes.  With
 * keep != NULL the bytes are kept (malloc'd, NUL-terminated) in *keep and
 * their number in *kept.  More than limit bytes is TOO_LARGE. */
static enum spy_verify_result
spy_read_hash(int fd, off_t st_size, size_t limit, char **keep, size_t *kept,
              unsigned char digest[SPY_SHA256_SIZE],
              char *detail, size_t detail_size)
{
    struct spy_sha256_ctx ctx;
    size_t hint = st_size > 0 ? (size_t)st_size : 0;
    size_t cap, total = 0;
    char *buf;

    if (limit > SIZE_MAX / 2) {
        limit = SIZE_MAX / 2;   /* so limit + 1 and cap * 2 cannot wrap */
    }
    if (keep != NULL) {
        *keep = NULL;
        /* Room for the whole file and one byte more, to see EOF at once. */
        cap = hint < limit ? hint + 1 : limit + 1;
    }
    else {
        cap = hint < SPY_CHUNK ? hint + 1 : SPY_CHUNK;
    }
    buf = malloc(cap + 1);
    if (buf == NULL) {
        errno = ENOMEM;
        spy_msg(detail, detail_size, "out of memory for %zu bytes", cap);
        return SPY_VERIFY_IO_ERROR;
    }
    spy_sha256_init(&ctx);
    for (;;) {
        char *dst = buf;
        size_t room = cap;
        ssize_t n;

        if (keep != NULL) {
            if (total == cap) {
                /* The file grew since fstat; total <= limit here. */
                size_t ncap = cap > limit / 2 ? limit + 1 : cap * 2;
                char *nbuf = realloc(buf, ncap + 1);

                if (nbuf == NULL) {
                    free(buf);
                    errno = ENOMEM;
                    spy_msg(detail, detail_size,
                            "out of memory for %zu bytes", ncap);
                    return SPY_VERIFY_IO_ERROR;
                }
                buf = nbuf;
                cap = ncap;
            }
            dst = buf + total;
            room = cap - total;
        }
        n = pread(fd, dst, room, (off_t)total);
        if (n < 0) {
            int err = errno;
            char eb[128];

            if (err == EINTR) {
                continue;
            }
            free(buf);
            spy_msg(detail, detail_size, "read: %s",
                    spy_strerror(err, eb, sizeof(eb)));
            errno = err;
            return SPY_VERIFY_IO_ERROR;
        }
        if (n == 0) {
            break;
        }
        total += (size_t)n;
        if (total > limit) {
            free(buf);
            spy_msg(detail, detail_size,
                    "grew past the %zu-byte limit while being read", limit);
            return SPY_VERIFY_TOO_LARGE;
        }
        spy_sha256_update(&ctx, dst, (size_t)n);
        /* As many bytes as fstat said, and the one asked for beyond them
         * did not come: that is the end, without one more read to see 0
         * (a file with no size of its own, as in /proc, reads on). */
        if (total == hint && (size_t)n < room) {
            break;
        }
    }
    spy_sha256_final(&ctx, digest);
    if (keep != NULL) {
        buf[total] = '\0';
        *keep = buf;
        if (kept != NULL) {
            *kept = total;
        }
    }
    else {
        free(buf);
    }
    return SPY_VERIFY_OK;
}

/* Copies an xattr value for a message, printable ASCII only. */
static void
spy_printable(const char *v, size_t n, char *out, size_t out_size)
{
    size_t i;

    for (i = 0; i < n && i + 1 < out_size; i++) {
        out[i] = (v[i] >= 0x20 && v[i] < 0x7f) ? v[i] : '?';
    }
    out[i] = '\0';
}

static int
spy_manifest_find(const struct spy_manifest *m,
                  const unsigned char digest[SPY_SHA256_SIZE]);

enum spy_verify_result
spy_verify_fd(int fd, const struct spy_verify_options *o, char **contents,
              size_t *size, char *detail, size_t detail_size)
{
    const char *name = SPY_VERIFY_XATTR_NAME;
    size_t limit = SPY_VERIFY_MAX_SIZE;
    const struct spy_manifest *manifest = NULL;
    unsigned char digest[SPY_SHA256_SIZE];
    char hex[SPY_SHA256_HEX_SIZE];
    char value[2 * SPY_SHA256_HEX_SIZE];    /* as the sample: up to 128 */
    ssize_t vlen = 0;
    struct stat st;
    struct statvfs vfs;
    enum spy_verify_result r;
    char eb[128];
    char *data = NULL;
    size_t n = 0;

    if (contents != NULL) {
        *contents = NULL;
    }
    if (size != NULL) {
        *size = 0;
    }
    spy_msg_clear(detail, detail_size);
    if (o != NULL) {
        if (o->xattr_name != NULL) {
            name = o->xattr_name;
        }
        if (o->max_size != 0) {
            limit = o->max_size;
        }
        manifest = o->manifest;
    }

    if (fstat(fd, &st) != 0) {
        int err = errno;

        spy_msg(detail, detail_size, "fstat: %s",
                spy_strerror(err, eb, sizeof(eb)));
        errno = err;
        return SPY_VERIFY_IO_ERROR;
    }
    if (!S_ISREG(st.st_mode)) {
        spy_msg(detail, detail_size, "it is %s", spy_file_kind(st.st_mode));
        return SPY_VERIFY_NOT_REGULAR;
    }
    if (st.st_size < 0 || (uintmax_t)st.st_size > (uintmax_t)limit) {
        spy_msg(detail, detail_size, "%jd bytes, over the %zu-byte limit",
                (intmax_t)st.st_size, limit);
        return SPY_VERIFY_TOO_LARGE;
    }
    if (fstatvfs(fd, &vfs) != 0) {
        int err = errno;

        spy_msg(detail, detail_size, "fstatvfs: %s",
                spy_strerror(err, eb, sizeof(eb)));
        errno = err;
        return SPY_VERIFY_IO_ERROR;
    }
    if (vfs.f_flag & ST_NOEXEC) {
        spy_msg(detail, detail_size,
                "its file system is mounted noexec, so no code runs from it");
        return SPY_VERIFY_NOEXEC_MOUNT;
    }

    /* xattr mode: fetch the expected hash before reading, so an unstamped
     * file costs no read. */
    if (manifest == NULL) {
        vlen = fgetxattr(fd, name, value, sizeof(value));
        if (vlen < 0) {
            int err = errno;

            if (err == ENODATA) {
                spy_msg(detail, detail_size,
                        "the file has no xattr %s; stamp it with its SHA-256",
                        name);
                return SPY_VERIFY_NO_XATTR;
            }
            if (err == ENOTSUP) {
                spy_msg(detail, detail_size,
                        "its file system does not support user xattrs, so "
                        "it cannot carry %s", name);
                return SPY_VERIFY_NO_XATTR;
            }
            if (err == ERANGE) {
                spy_msg(detail, detail_size,
                        "xattr %s is longer than %zu bytes, not a SHA-256 "
                        "hex digest", name, sizeof(value));
                return SPY_VERIFY_MISMATCH;
            }
            spy_msg(detail, detail_size, "fgetxattr %s: %s", name,
                    spy_strerror(err, eb, sizeof(eb)));
            errno = err;
            return SPY_VERIFY_IO_ERROR;
        }
    }

    r = spy_read_hash(fd, st.st_size, limit, contents != NULL ? &data : NULL,
                      &n, digest, detail, detail_size);
    if (r != SPY_VERIFY_OK) {
        return r;
    }
    spy_sha256_tohex(digest, hex);

    if (manifest != NULL) {
        if (!spy_manifest_find(manifest, digest)) {
            free(data);
            spy_msg(detail, detail_size,
                    "its SHA-256 %s is not listed in the manifest", hex);
            return SPY_VERIFY_NOT_IN_MANIFEST;
        }
    }
    else if (vlen != 2 * SPY_SHA256_SIZE
             || memcmp(value, hex, (size_t)vlen) != 0) {
        char shown[sizeof(value) + 1];

        free(data);
        spy_printable(value, (size_t)vlen, shown, sizeof(shown));
        if (vlen == 2 * SPY_SHA256_SIZE) {
            spy_msg(detail, detail_size,
                    "xattr %s is %s but the file hashes to %s", name, shown,
                    hex);
        }
        else {
            spy_msg(detail, detail_size,
                    "xattr %s is \"%s\" (%zd bytes), not the 64 lowercase hex "
                    "digits of the file's SHA-256 %s", name, shown, vlen, hex);
        }
        return SPY_VERIFY_MISMATCH;
    }

    if (contents != NULL) {
        *contents = data;
        if (size != NULL) {
            *size = n;
        }
    }
    return SPY_VERIFY_OK;
}

/* Opens for reading without blocking on a FIFO (the checks refuse it
 * anyway).  O_NONBLOCK stays: it means nothing for a regular file (open(2)),
 * and the callers read nothing else. */
static int
spy_open_read(const char *path)
{
    return open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
}

enum spy_verify_result
spy_verify_path(const char *path, const struct spy_verify_options *o,
                char *detail, size_t detail_size)
{
    enum spy_verify_result r;
    int fd = spy_open_read(path);
    int err;

    if (fd < 0) {
        char eb[128];

        err = errno;
        spy_msg(detail, detail_size, "open: %s",
                spy_strerror(err, eb, sizeof(eb)));
        errno = err;
        return SPY_VERIFY_IO_ERROR;
    }
    r = spy_verify_fd(fd, o, NULL, NULL, detail, detail_size);
    err = errno;
    close(fd);
    errno = err;
    return r;
}

int
spy_stamp_path(const char *path, const char *xattr_name,
               char hex_out[SPY_SHA256_HEX_SIZE], char *err, size_t err_size)
{
    const char *name = xattr_name != NULL ? xattr_name : SPY_VERIFY_XATTR_NAME;
    unsigned char digest[SPY_SHA256_SIZE];
    char hex[SPY_SHA256_HEX_SIZE];
    char value[SPY_SHA256_HEX_SIZE];
    char detail[256];
    char eb[128];
    struct stat st;
    ssize_t vlen;
    int fd, e;

    spy_msg_clear(err, err_size);
    if (hex_out != NULL) {
        hex_out[0] = '\0';
    }
    fd = spy_open_read(path);
    if (fd < 0) {
        e = errno;
        spy_msg(err, err_size, "cannot open %s: %s", path,
                spy_strerror(e, eb, sizeof(eb)));
        return -1;
    }
    if (fstat(fd, &st) != 0) {
        e = errno;
        spy_msg(err, err_size, "cannot stat %s: %s", path,
                spy_strerror(e, eb, sizeof(eb)));
        close(fd);
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        spy_msg(err, err_size, "not stamping %s: it is %s", path,
                spy_file_kind(st.st_mode));
        close(fd);
        return -1;
    }
    if (spy_read_hash(fd, st.st_size, SIZE_MAX, NULL, NULL, digest,
                      detail, sizeof(detail)) != SPY_VERIFY_OK) {
        spy_msg(err, err_size, "cannot hash %s: %s", path, detail);
        close(fd);
        return -1;
    }
    spy_sha256_tohex(digest, hex);
    if (hex_out != NULL) {
        memcpy(hex_out, hex, SPY_SHA256_HEX_SIZE);
    }
    vlen = fgetxattr(fd, name, value, sizeof(value));
    if (vlen == 2 * SPY_SHA256_SIZE && memcmp(value, hex, (size_t)vlen) == 0) {
        close(fd);
        return 0;
    }
    if (fsetxattr(fd, name, hex, 2 * SPY_SHA256_SIZE, 0) != 0) {
        e = errno;
        if (e == ENOTSUP) {
            spy_msg(err, err_size,
                    "cannot stamp %s: its file system does not support user "
                    "extended attributes (tmpfs needs Linux 6.6+, ext4 the "
                    "user_xattr option); keep the code on one that does",
                    path);
        }
        else if (e == EPERM || e == EACCES) {
            spy_msg(err, err_size,
                    "cannot stamp %s: %s (only the file's owner, or root, "
                    "may set %s)", path, spy_strerror(e, eb, sizeof(eb)),
                    name);
        }
        else {
            spy_msg(err, err_size, "cannot set xattr %s on %s: %s", name,
                    path, spy_strerror(e, eb, sizeof(eb)));
        }
        close(fd);
        return -1;
    }
    close(fd);
    return 1;
}

/* ------------------------------------------------------------------ */
/* Whole small files, and writing files atomically */

/* Reads a regular file whole (at most limit bytes) into a malloc'd,
 * NUL-terminated buffer.  Returns 0, or -1 with errno set (EFBIG: over
 * the limit, EINVAL: not a regular file). */
static int
spy_slurp(const char *path, size_t limit, unsigned char **out, size_t *n)
{
    unsigned char digest[SPY_SHA256_SIZE];
    struct stat st;
    char detail[8];
    enum spy_verify_result r;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    int e;

    if (fd < 0) {
        return -1;
    }
    if (fstat(fd, &st) != 0) {
        e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        errno = S_ISDIR(st.st_mode) ? EISDIR : EINVAL;
        return -1;
    }
    if ((uintmax_t)st.st_size > (uintmax_t)limit) {
        close(fd);
        errno = EFBIG;
        return -1;
    }
    r = spy_read_hash(fd, st.st_size, limit, (char **)out, n, digest,
                      detail, sizeof(detail));
    e = errno;
    close(fd);
    if (r == SPY_VERIFY_TOO_LARGE) {
        errno = EFBIG;
        return -1;
    }
    if (r != SPY_VERIFY_OK) {
        errno = e;
        return -1;
    }
    return 0;
}

/* Writes a file through a temporary name and rename(), with the given
 * mode.  Returns 0, or -1 with err set. */
static int
spy_write_atomic(const char *path, const void *data, size_t n, mode_t mode,
                 char *err, size_t err_size)
{
    size_t len = strlen(path);
    char *tmp = malloc(len + sizeof(".tmpXXXXXX"));
    const unsigned char *p = data;
    char eb[128];
    int fd, e;

    if (tmp == NULL) {
        spy_msg(err, err_size, "cannot write %s: out of memory", path);
        return -1;
    }
    memcpy(tmp, path, len);
    memcpy(tmp + len, ".tmpXXXXXX", sizeof(".tmpXXXXXX"));
    fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) {
        e = errno;
        spy_msg(err, err_size, "cannot create %s: %s", tmp,
                spy_strerror(e, eb, sizeof(eb)));
        free(tmp);
        return -1;
    }
    while (n > 0) {
        ssize_t w = write(fd, p, n);

        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            e = w < 0 ? errno : EIO;
            goto fail;
        }
        p += w;
        n -= (size_t)w;
    }
    if (fchmod(fd, mode) != 0 || fsync(fd) != 0) {
        e = errno;
        goto fail;
    }
    if (close(fd) != 0) {
        e = errno;
        fd = -1;
        goto fail;
    }
    fd = -1;
    if (rename(tmp, path) != 0) {
        e = errno;
        goto fail;
    }
    free(tmp);
    return 0;

  fail:
    spy_msg(err, err_size, "cannot write %s: %s", path,
            spy_strerror(e, eb, sizeof(eb)));
    if (fd >= 0) {
        close(fd);
    }
    unlink(tmp);
    free(tmp);
    return -1;
}

/* ------------------------------------------------------------------ */
/* libcrypto, dlopen()ed once */

typedef int (*spy_pem_cb)(char *, int, int, void *);

struct spy_crypto {
    const char *error;          /* NULL once loaded */
    char error_buf[512];
    void *(*BIO_new_mem_buf)(const void *, int);
    void *(*BIO_new)(const void *);
    const void *(*BIO_s_mem)(void);
    long (*BIO_ctrl)(void *, int, long, void *);
    int (*BIO_free)(void *);
    void *(*PEM_read_bio_PUBKEY)(void *, void **, spy_pem_cb, void *);
    void *(*PEM_read_bio_PrivateKey)(void *, void **, spy_pem_cb, void *);
    int (*PEM_write_bio_PrivateKey)(void *, const void *, const void *,
                                    const unsigned char *, int,
                                    spy_pem_cb, void *);
    int (*PEM_write_bio_PUBKEY)(void *, const void *);
    int (*EVP_PKEY_get_id)(const void *);
    void (*EVP_PKEY_free)(void *);
    void *(*EVP_PKEY_CTX_new_id)(int, void *);
    int (*EVP_PKEY_keygen_init)(void *);
    int (*EVP_PKEY_keygen)(void *, void **);
    void (*EVP_PKEY_CTX_free)(void *);
    void *(*EVP_MD_CTX_new)(void);
    void (*EVP_MD_CTX_free)(void *);
    int (*EVP_DigestVerifyInit)(void *, void **, const void *, void *, void *);
    int (*EVP_DigestVerify)(void *, const unsigned char *, size_t,
                            const unsigned char *, size_t);
    int (*EVP_DigestSignInit)(void *, void **, const void *, void *, void *);
    int (*EVP_DigestSign)(void *, unsigned char *, size_t *,
                          const unsigned char *, size_t);
    unsigned long (*ERR_get_error)(void);
    void (*ERR_error_string_n)(unsigned long, char *, size_t);
    void (*ERR_clear_error)(void);
};

static pthread_once_t spy_crypto_once = PTHREAD_ONCE_INIT;
static struct spy_crypto spy_crypto;

static void
spy_crypto_load(void)
{
    static const char *const names[] = {"libcrypto.so.3", "libcrypto.so.1.1"};
    struct spy_crypto *c = &spy_crypto;
    const char *missing = NULL;
    char first_error[256] = "";
    void *h = NULL;

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        h = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
        if (h != NULL) {
            break;
        }
        if (i == 0) {
            const char *e = dlerror();

            snprintf(first_error, sizeof(first_error), "%s",
                     e != NULL ? e : "not found");
        }
    }
    if (h == NULL) {
        snprintf(c->error_buf, sizeof(c->error_buf),
                 "cannot load libcrypto.so.3 for Ed25519 signatures (%s): "
                 "install OpenSSL 3 (Debian/Ubuntu: apt install libssl3; "
                 "Fedora/RHEL: dnf install openssl-libs)", first_error);
        c->error = c->error_buf;
        return;
    }
#define SPY_SYM(field, name)                                              \
    do {                                                                  \
        *(void **)&c->field = dlsym(h, name);                             \
        if (c->field == NULL && missing == NULL) {                        \
            missing = name;                                               \
        }                                                                 \
    } while (0)
    SPY_SYM(BIO_new_mem_buf, "BIO_new_mem_buf");
    SPY_SYM(BIO_new, "BIO_new");
    SPY_SYM(BIO_s_mem, "BIO_s_mem");
    SPY_SYM(BIO_ctrl, "BIO_ctrl");
    SPY_SYM(BIO_free, "BIO_free");
    SPY_SYM(PEM_read_bio_PUBKEY, "PEM_read_bio_PUBKEY");
    SPY_SYM(PEM_read_bio_PrivateKey, "PEM_read_bio_PrivateKey");
    SPY_SYM(PEM_write_bio_PrivateKey, "PEM_write_bio_PrivateKey");
    SPY_SYM(PEM_write_bio_PUBKEY, "PEM_write_bio_PUBKEY");
    SPY_SYM(EVP_PKEY_free, "EVP_PKEY_free");
    SPY_SYM(EVP_PKEY_CTX_new_id, "EVP_PKEY_CTX_new_id");
    SPY_SYM(EVP_PKEY_keygen_init, "EVP_PKEY_keygen_init");
    SPY_SYM(EVP_PKEY_keygen, "EVP_PKEY_keygen");
    SPY_SYM(EVP_PKEY_CTX_free, "EVP_PKEY_CTX_free");
    SPY_SYM(EVP_MD_CTX_new, "EVP_MD_CTX_new");
    SPY_SYM(EVP_MD_CTX_free, "EVP_MD_CTX_free");
    SPY_SYM(EVP_DigestVerifyInit, "EVP_DigestVerifyInit");
    SPY_SYM(EVP_DigestVerify, "EVP_DigestVerify");
    SPY_SYM(EVP_DigestSignInit, "EVP_DigestSignInit");
    SPY_SYM(EVP_DigestSign, "EVP_DigestSign");
    SPY_SYM(ERR_get_error, "ERR_get_error");
    SPY_SYM(ERR_error_string_n, "ERR_error_string_n");
    SPY_SYM(ERR_clear_error, "ERR_clear_error");
    /* OpenSSL 3 renamed EVP_PKEY_id (now a macro) to EVP_PKEY_get_id. */
    *(void **)&c->EVP_PKEY_get_id = dlsym(h, "EVP_PKEY_get_id");
    if (c->EVP_PKEY_get_id == NULL) {
        SPY_SYM(EVP_PKEY_get_id, "EVP_PKEY_id");
    }
#undef SPY_SYM
    if (missing != NULL) {
        snprintf(c->error_buf, sizeof(c->error_buf),
                 "the libcrypto found lacks %s, needed for Ed25519 "
                 "signatures: install OpenSSL 3 (Debian/Ubuntu: apt install "
                 "libssl3)", missing);
        c->error = c->error_buf;
        return;     /* the handle stays open; it is never used */
    }
    c->error = NULL;
}

/* The loaded libcrypto, or NULL with err set. */
static const struct spy_crypto *
spy_crypto_get(char *err, size_t err_size)
{
    pthread_once(&spy_crypto_once, spy_crypto_load);
    if (spy_crypto.error != NULL) {
        spy_msg(err, err_size, "%s", spy_crypto.error);
        return NULL;
    }
    return &spy_crypto;
}

/* OpenSSL's reason for the last failure on this thread (and an empty
 * error queue afterwards, so nothing leaks to other libcrypto users in
 * the process, such as Python's ssl and hashlib). */
static const char *
spy_crypto_why(const struct spy_crypto *c, char *buf, size_t size)
{
    unsigned long e = c->ERR_get_error();

    if (e == 0) {
        snprintf(buf, size, "no details from OpenSSL");
    }
    else {
        c->ERR_error_string_n(e, buf, size);
    }
    c->ERR_clear_error();
    return buf;
}

/* Never prompts for a passphrase (OpenSSL's default would read the
 * terminal, from whatever thread we are on). */
static int
spy_no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return -1;
}

/* Reads a PEM key file: public (PUBKEY) or private.  Returns the
 * EVP_PKEY, or NULL with err set and *why set to IO_ERROR (unreadable)
 * or BAD_SIGNATURE (not an Ed25519 key of that kind). */
static void *
spy_read_key(const struct spy_crypto *c, const char *path, int private,
             enum spy_verify_result *why, char *err, size_t err_size)
{
    unsigned char *pem = NULL;
    size_t n = 0;
    void *bio, *key;
    char eb[256];
    int id;

    if (spy_slurp(path, SPY_KEY_LIMIT, &pem, &n) != 0) {
        int e = errno;

        *why = SPY_VERIFY_IO_ERROR;
        spy_msg(err, err_size, "cannot read %s key %s: %s",
                private ? "private" : "public", path,
                e == EFBIG ? "over 64 KiB, not a PEM key"
                           : spy_strerror(e, eb, sizeof(eb)));
        return NULL;
    }
    bio = c->BIO_new_mem_buf(pem, (int)n);
    if (bio == NULL) {
        free(pem);
        *why = SPY_VERIFY_IO_ERROR;
        spy_msg(err, err_size, "cannot read key %s: %s", path,
                spy_crypto_why(c, eb, sizeof(eb)));
        return NULL;
    }
    if (private) {
        key = c->PEM_read_bio_PrivateKey(bio, NULL, spy_no_passphrase, NULL);
    }
    else {
        key = c->PEM_read_bio_PUBKEY(bio, NULL, spy_no_passphrase, NULL);
    }
    c->BIO_free(bio);
    if (key == NULL) {
        const char *hint;

        spy_crypto_why(c, eb, sizeof(eb));
        if (private && strstr((char *)pem, "ENCRYPTED") != NULL) {
            hint = "it is passphrase-protected; write an unencrypted copy "
                   "with `openssl pkey -in KEY -out PLAIN.pem`";
        }
        else if (private) {
            hint = "expected a PEM private key (-----BEGIN PRIVATE KEY-----, "
                   "from `openssl genpkey -algorithm ed25519`)";
        }
        else if (strstr((char *)pem, "PRIVATE KEY-----") != NULL) {
            hint = "it is a private key; pass the public one "
                   "(`openssl pkey -in KEY -pubout -out KEY.pub`)";
        }
        else {
            hint = "expected a PEM public key (-----BEGIN PUBLIC KEY-----, "
                   "from `openssl pkey -in KEY -pubout`)";
        }
        free(pem);
        *why = SPY_VERIFY_BAD_SIGNATURE;
        spy_msg(err, err_size, "%s is not a usable %s key: %s (%s)", path,
                private ? "private" : "public", hint, eb);
        return NULL;
    }
    free(pem);
    id = c->EVP_PKEY_get_id(key);
    if (id != SPY_NID_ED25519) {
        c->EVP_PKEY_free(key);
        *why = SPY_VERIFY_BAD_SIGNATURE;
        spy_msg(err, err_size,
                "%s is not an Ed25519 key (OpenSSL key type %d); make one "
                "with `openssl genpkey -algorithm ed25519`", path, id);
        return NULL;
    }
    return key;
}

/* Base64 (standard alphabet, '=' padding, whitespace ignored) into out.
 * Returns the decoded length, or -1 on a bad character or overflow. */
static long
spy_base64_decode(const unsigned char *in, size_t n, unsigned char *out,
                  size_t out_size)
{
    uint32_t acc = 0;
    int bits = 0, pad = 0;
    size_t len = 0;

    for (size_t i = 0; i < n; i++) {
        unsigned char ch = in[i];
        int v;

        if (ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n') {
            continue;
        }
        if (ch == '=') {
            pad++;
            continue;
        }
        if (pad > 0) {
            return -1;  /* data after padding */
        }
        if (ch >= 'A' && ch <= 'Z') {
            v = ch - 'A';
        }
        else if (ch >= 'a' && ch <= 'z') {
            v = ch - 'a' + 26;
        }
        else if (ch >= '0' && ch <= '9') {
            v = ch - '0' + 52;
        }
        else if (ch == '+') {
            v = 62;
        }
        else if (ch == '/') {
            v = 63;
        }
        else {
            return -1;
        }
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (len == out_size) {
                return -1;
            }
            out[len++] = (unsigned char)(acc >> bits);
        }
    }
    if (pad > 2) {
        return -1;
    }
    return (long)len;
}

/* ------------------------------------------------------------------ */
/* Manifests */

struct spy_manifest {
    size_t count;
    unsigned char (*hashes)[SPY_SHA256_SIZE];
};

static int
spy_hash_cmp(const void *a, const void *b)
{
    return memcmp(a, b, SPY_SHA256_SIZE);
}

static int
spy_manifest_find(const struct spy_manifest *m,
                  const unsigned char digest[SPY_SHA256_SIZE])
{
    size_t lo = 0, hi = m->count;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = memcmp(m->hashes[mid], digest, SPY_SHA256_SIZE);

        if (c == 0) {
            return 1;
        }
        if (c < 0) {
            lo = mid + 1;
        }
        else {
            hi = mid;
        }
    }
    return 0;
}

int
spy_manifest_contains(const struct spy_manifest *m,
                      const unsigned char digest[SPY_SHA256_SIZE])
{
    return m != NULL && spy_manifest_find(m, digest);
}

size_t
spy_manifest_count(const struct spy_manifest *m)
{
    return m != NULL ? m->count : 0;
}

void
spy_manifest_free(struct spy_manifest *m)
{
    if (m != NULL) {
        free(m->hashes);
        free(m);
    }
}

/* Parses sha256sum lines into a sorted, duplicate-free manifest.  Returns
 * NULL with err set (and *why) on a malformed line or no memory. */
static struct spy_manifest *
spy_manifest_parse(const char *path, const unsigned char *text, size_t n,
                   enum spy_verify_result *why, char *err, size_t err_size)
{
    struct spy_manifest *m = calloc(1, sizeof(*m));
    size_t cap = 0, lineno = 0, pos = 0;

    if (m == NULL) {
        goto nomem;
    }
    while (pos < n) {
        const unsigned char *line = text + pos;
        const unsigned char *nl = memchr(line, '\n', n - pos);
        size_t len = nl != NULL ? (size_t)(nl - line) : n - pos;
        size_t i = 0;

        pos += len + (nl != NULL);
        lineno++;
        if (len > 0 && line[len - 1] == '\r') {
            len--;
        }
        while (i < len && (line[i] == ' ' || line[i] == '\t')) {
            i++;
        }
        if (i == len || line[i] == '#') {
            continue;
        }
        /* sha256sum starts a line with '\' when it escaped the name. */
        if (line[i] == '\\') {
            i++;
        }
        if (len - i < 2 * SPY_SHA256_SIZE + 3
            || line[i + 64] != ' '
            || (line[i + 65] != ' ' && line[i + 65] != '*')) {
            goto malformed;
        }
        if (m->count == cap) {
            size_t ncap = cap == 0 ? 64 : cap * 2;
            void *nh = realloc(m->hashes, ncap * SPY_SHA256_SIZE);

            if (nh == NULL) {
                goto nomem;
            }
            m->hashes = nh;
            cap = ncap;
        }
        {
            char hex[2 * SPY_SHA256_SIZE];

            memcpy(hex, line + i, sizeof(hex));
            if (spy_sha256_fromhex(hex, m->hashes[m->count]) != 0) {
                goto malformed;
            }
        }
        m->count++;
    }
    if (m->count > 1) {
        size_t j = 1;

        qsort(m->hashes, m->count, SPY_SHA256_SIZE, spy_hash_cmp);
        for (size_t k = 1; k < m->count; k++) {
            if (memcmp(m->hashes[k], m->hashes[j - 1], SPY_SHA256_SIZE) != 0) {
                if (j != k) {
                    memcpy(m->hashes[j], m->hashes[k], SPY_SHA256_SIZE);
                }
                j++;
            }
        }
        m->count = j;
    }
    return m;

  malformed:
    spy_manifest_free(m);
    *why = SPY_VERIFY_BAD_MANIFEST;
    spy_msg(err, err_size,
            "manifest %s, line %zu: expected \"<64 hex digits>  <path>\" "
            "(sha256sum output), '#' comments or blank lines", path, lineno);
    return NULL;

  nomem:
    spy_manifest_free(m);
    *why = SPY_VERIFY_IO_ERROR;
    spy_msg(err, err_size, "manifest %s: out of memory", path);
    return NULL;
}

/* "<path>.sig", malloc'd. */
static char *
spy_sig_path(const char *manifest_path)
{
    size_t len = strlen(manifest_path);
    char *p = malloc(len + sizeof(".sig"));

    if (p != NULL) {
        memcpy(p, manifest_path, len);
        memcpy(p + len, ".sig", sizeof(".sig"));
    }
    return p;
}

struct spy_manifest *
spy_manifest_load(const char *manifest_path, const char *public_key_path,
                  enum spy_verify_result *why, char *err, size_t err_size)
{
    enum spy_verify_result dummy;
    const struct spy_crypto *c = NULL;
    struct spy_manifest *m = NULL;
    unsigned char *text = NULL, *sigfile = NULL;
    unsigned char sig[SPY_ED25519_SIG_SIZE];
    size_t text_n = 0, sig_n = 0;
    char *sig_path = NULL;
    void *key = NULL, *ctx = NULL;
    char eb[256];
    int ok;

    if (why == NULL) {
        why = &dummy;
    }
    *why = SPY_VERIFY_OK;
    spy_msg_clear(err, err_size);

    if (spy_slurp(manifest_path, SPY_MANIFEST_LIMIT, &text, &text_n) != 0) {
        int e = errno;

        *why = SPY_VERIFY_IO_ERROR;
        spy_msg(err, err_size, "cannot read manifest %s: %s", manifest_path,
                e == EFBIG ? "over 256 MiB" : spy_strerror(e, eb, sizeof(eb)));
        return NULL;
    }
    sig_path = spy_sig_path(manifest_path);
    if (sig_path == NULL) {
        *why = SPY_VERIFY_IO_ERROR;
        spy_msg(err, err_size, "manifest %s: out of memory", manifest_path);
        goto done;
    }
    if (spy_slurp(sig_path, SPY_SIG_LIMIT, &sigfile, &sig_n) != 0) {
        int e = errno;

        *why = SPY_VERIFY_BAD_SIGNATURE;
        spy_msg(err, err_size,
                "cannot read the signature %s of manifest %s: %s; sign the "
                "manifest (openssl pkeyutl -sign -inkey KEY.pem -rawin -in "
                "MANIFEST -out MANIFEST.sig)", sig_path, manifest_path,
                e == EFBIG ? "over 4 KiB" : spy_strerror(e, eb, sizeof(eb)));
        goto done;
    }
    if (sig_n == SPY_ED25519_SIG_SIZE) {
        memcpy(sig, sigfile, SPY_ED25519_SIG_SIZE);
    }
    else if (spy_base64_decode(sigfile, sig_n, sig, sizeof(sig))
             != SPY_ED25519_SIG_SIZE) {
        *why = SPY_VERIFY_BAD_SIGNATURE;
        spy_msg(err, err_size,
                "signature %s is neither a raw 64-byte Ed25519 signature nor "
                "its base64 (it has %zu bytes)", sig_path, sig_n);
        goto done;
    }

    c = spy_crypto_get(err, err_size);
    if (c == NULL) {
        *why = SPY_VERIFY_IO_ERROR;
        goto done;
    }
    key = spy_read_key(c, public_key_path, 0, why, err, err_size);
    if (key == NULL) {
        goto done;
    }
    ctx = c->EVP_MD_CTX_new();
    if (ctx == NULL
        || c->EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, key) != 1) {
        *why = SPY_VERIFY_IO_ERROR;
        spy_msg(err, err_size, "cannot set up Ed25519 verification: %s",
                spy_crypto_why(c, eb, sizeof(eb)));
        goto done;
    }
    ok = c->EVP_DigestVerify(ctx, sig, sizeof(sig), text, text_n);
    if (ok != 1) {
        c->ERR_clear_error();
        *why = SPY_VERIFY_BAD_SIGNATURE;
        spy_msg(err, err_size,
                "signature %s does not match manifest %s under key %s: the "
                "manifest changed after signing, or another key signed it",
                sig_path, manifest_path, public_key_path);
        goto done;
    }
    m = spy_manifest_parse(manifest_path, text, text_n, why, err, err_size);

  done:
    if (ctx != NULL) {
        c->EVP_MD_CTX_free(ctx);
    }
    if (key != NULL) {
        c->EVP_PKEY_free(key);
    }
    free(sig_path);
    free(sigfile);
    free(text);
    return m;
}

/* The PEM text a BIO holds, written to path. */
static int
spy_write_bio(const struct spy_crypto *c, void *bio, const char *path,
              mode_t mode, char *err, size_t err_size)
{
    char *data = NULL;
    long n = c->BIO_ctrl(bio, SPY_BIO_CTRL_INFO, 0, &data);

    if (n <= 0 || data == NULL) {
        spy_msg(err, err_size, "OpenSSL produced no PEM text for %s", path);
        return -1;
    }
    return spy_write_atomic(path, data, (size_t)n, mode, err, err_size);
}

int
spy_manifest_keygen(const char *private_pem, const char *public_pem,
                    char *err, size_t err_size)
{
    const struct spy_crypto *c;
    void *pctx = NULL, *key = NULL, *priv = NULL, *pub = NULL;
    char eb[256];
    int rc = -1;

    spy_msg_clear(err, err_size);
    c = spy_crypto_get(err, err_size);
    if (c == NULL) {
        return -1;
    }
    pctx = c->EVP_PKEY_CTX_new_id(SPY_NID_ED25519, NULL);
    if (pctx == NULL || c->EVP_PKEY_keygen_init(pctx) != 1
        || c->EVP_PKEY_keygen(pctx, &key) != 1) {
        spy_msg(err, err_size, "cannot generate an Ed25519 key: %s",
                spy_crypto_why(c, eb, sizeof(eb)));
        goto done;
    }
    priv = c->BIO_new(c->BIO_s_mem());
    pub = c->BIO_new(c->BIO_s_mem());
    if (priv == NULL || pub == NULL
        || c->PEM_write_bio_PrivateKey(priv, key, NULL, NULL, 0, NULL,
                                       NULL) != 1
        || c->PEM_write_bio_PUBKEY(pub, key) != 1) {
        spy_msg(err, err_size, "cannot encode the Ed25519 key as PEM: %s",
                spy_crypto_why(c, eb, sizeof(eb)));
        goto done;
    }
    if (spy_write_bio(c, priv, private_pem, 0600, err, err_size) != 0
        || spy_write_bio(c, pub, public_pem, 0644, err, err_size) != 0) {
        goto done;
    }
    rc = 0;

  done:
    if (priv != NULL) {
        c->BIO_free(priv);
    }
    if (pub != NULL) {
        c->BIO_free(pub);
    }
    if (key != NULL) {
        c->EVP_PKEY_free(key);
    }
    if (pctx != NULL) {
        c->EVP_PKEY_CTX_free(pctx);
    }
    return rc;
}

int
spy_manifest_sign(const char *manifest_path, const char *private_pem,
                  char *err, size_t err_size)
{
    const struct spy_crypto *c;
    enum spy_verify_result why;
    unsigned char *text = NULL;
    unsigned char sig[SPY_ED25519_SIG_SIZE];
    size_t text_n = 0, sig_n = sizeof(sig);
    char *sig_path = NULL;
    void *key = NULL, *ctx = NULL;
    char eb[256];
    int rc = -1;

    spy_msg_clear(err, err_size);
    c = spy_crypto_get(err, err_size);
    if (c == NULL) {
        return -1;
    }
    if (spy_slurp(manifest_path, SPY_MANIFEST_LIMIT, &text, &text_n) != 0) {
        int e = errno;

        spy_msg(err, err_size, "cannot read manifest %s: %s", manifest_path,
                e == EFBIG ? "over 256 MiB" : spy_strerror(e, eb, sizeof(eb)));
        return -1;
    }
    key = spy_read_key(c, private_pem, 1, &why, err, err_size);
    if (key == NULL) {
        goto done;
    }
    ctx = c->EVP_MD_CTX_new();
    if (ctx == NULL || c->EVP_DigestSignInit(ctx, NULL, NULL, NULL, key) != 1
        || c->EVP_DigestSign(ctx, sig, &sig_n, text, text_n) != 1
        || sig_n != sizeof(sig)) {
        spy_msg(err, err_size, "cannot sign %s with %s: %s", manifest_path,
                private_pem, spy_crypto_why(c, eb, sizeof(eb)));
        goto done;
    }
    sig_path = spy_sig_path(manifest_path);
    if (sig_path == NULL) {
        spy_msg(err, err_size, "manifest %s: out of memory", manifest_path);
        goto done;
    }
    if (spy_write_atomic(sig_path, sig, sizeof(sig), 0644, err,
                         err_size) != 0) {
        goto done;
    }
    rc = 0;

  done:
    if (ctx != NULL) {
        c->EVP_MD_CTX_free(ctx);
    }
    if (key != NULL) {
        c->EVP_PKEY_free(key);
    }
    free(sig_path);
    free(text);
    return rc;
}
