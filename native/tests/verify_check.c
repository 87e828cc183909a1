/* Test driver for core/sha256.c and core/verify.c.
 *
 *   verify_check                 runs every check; the last line is
 *                                "N passed, N failed"; exit 1 on a failure
 *   verify_check --hash FILE...  prints "<sha256>  FILE" like sha256sum
 *   verify_check --stamp FILE... stamps files for xattr mode
 *   verify_check --verify FILE... verifies files in xattr mode
 *
 * Build: cc -O2 -Wall -Wextra -o verify_check native/tests/verify_check.c \
 *            native/core/verify.c native/core/sha256.c -ldl -lpthread
 * The xattr checks need user xattrs (tmpfs on Linux 6.6+, ext4, xfs...);
 * the noexec check needs root; the OpenSSL CLI checks /usr/bin/openssl. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "../core/sha256.h"
#include "../core/verify.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/xattr.h>
#include <unistd.h>

static int passed, failed;

__attribute__((format(printf, 2, 3)))
static void
check(int ok, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    if (ok) {
        passed++;
        fputs("ok    ", stdout);
    }
    else {
        failed++;
        fputs("FAIL  ", stdout);
    }
    vprintf(fmt, ap);
    fputc('\n', stdout);
    va_end(ap);
    fflush(stdout);
}

static void
skip(const char *what)
{
    printf("skip  %s\n", what);
    fflush(stdout);
}

/* Checks a verification result, showing both names and the detail. */
static void
expect(enum spy_verify_result got, enum spy_verify_result want,
       const char *what, const char *detail)
{
    check(got == want, "%s: got \"%s\", want \"%s\"%s%s", what,
          spy_verify_reason(got), spy_verify_reason(want),
          detail != NULL && detail[0] ? " -- " : "",
          detail != NULL ? detail : "");
}

static char *
path_in(const char *dir, const char *name)
{
    char *p;

    if (asprintf(&p, "%s/%s", dir, name) < 0) {
        perror("asprintf");
        exit(2);
    }
    return p;
}

static int
write_file(const char *path, const void *data, size_t n)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    const char *p = data;

    if (fd < 0) {
        return -1;
    }
    while (n > 0) {
        ssize_t w = write(fd, p, n);

        if (w <= 0) {
            close(fd);
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return close(fd);
}

static void
write_text(const char *path, const char *text)
{
    if (write_file(path, text, strlen(text)) != 0) {
        fprintf(stderr, "cannot write %s: %s\n", path, strerror(errno));
        exit(2);
    }
}

static void
append_text(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);

    if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text)) {
        fprintf(stderr, "cannot append to %s: %s\n", path, strerror(errno));
        exit(2);
    }
    close(fd);
}

static unsigned char *
read_all(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    unsigned char *buf = NULL;
    size_t cap = 0, len = 0;

    if (f == NULL) {
        return NULL;
    }
    for (;;) {
        if (len == cap) {
            cap = cap ? cap * 2 : 4096;
            buf = realloc(buf, cap);
            if (buf == NULL) {
                exit(2);
            }
        }
        size_t r = fread(buf + len, 1, cap - len, f);
        if (r == 0) {
            break;
        }
        len += r;
    }
    fclose(f);
    *n = len;
    return buf;
}

/* ------------------------------------------------------------------ */
/* SHA-256 */

static void
hash_vector(const char *name, const void *data, size_t n, const char *want)
{
    char hex[SPY_SHA256_HEX_SIZE];

    spy_sha256_hex(data, n, hex);
    check(strcmp(hex, want) == 0, "sha256 %s: %s%s%s", name, hex,
          strcmp(hex, want) == 0 ? "" : " != ", strcmp(hex, want) == 0 ? "" : want);
}

static void
test_sha256(void)
{
    static const char *million_a =
        "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0";
    struct spy_sha256_ctx ctx;
    unsigned char digest[SPY_SHA256_SIZE], again[SPY_SHA256_SIZE];
    char hex[SPY_SHA256_HEX_SIZE];
    unsigned char *buf;
    unsigned int seed = 12345;
    int same = 1;

    printf("# sha256 block function: %s\n", spy_sha256_impl());
    hash_vector("of \"\"", "", 0,
                "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    hash_vector("of \"abc\"", "abc", 3,
                "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    hash_vector("of the 448-bit vector",
                "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 56,
                "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    hash_vector("of the 896-bit vector",
                "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmn"
                "hijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu", 112,
                "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");

    buf = malloc(1000000);
    if (buf == NULL) {
        exit(2);
    }
    memset(buf, 'a', 1000000);
    hash_vector("of a million 'a' (one shot)", buf, 1000000, million_a);

    /* The same million through the incremental API, in uneven pieces that
     * straddle block boundaries. */
    spy_sha256_init(&ctx);
    for (size_t off = 0, step = 1; off < 1000000; step = step * 7 % 1031 + 1) {
        size_t take = step < 1000000 - off ? step : 1000000 - off;

        spy_sha256_update(&ctx, buf + off, take);
        off += take;
    }
    spy_sha256_final(&ctx, digest);
    spy_sha256_tohex(digest, hex);
    check(strcmp(hex, million_a) == 0,
          "sha256 of a million 'a' (uneven incremental updates): %s", hex);

    /* Every length 0..300 and a few pseudo-random splits: incremental and
     * one-shot agree. */
    for (size_t i = 0; i < 1000000; i++) {
        seed = seed * 1103515245u + 12345u;
        buf[i] = (unsigned char)(seed >> 16);
    }
    for (size_t len = 0; len <= 300 && same; len++) {
        for (size_t cut = 0; cut <= len && same; cut += 1 + len / 5) {
            spy_sha256(buf, len, digest);
            spy_sha256_init(&ctx);
            spy_sha256_update(&ctx, buf, cut);
            spy_sha256_update(&ctx, buf + cut, 0);
            spy_sha256_update(&ctx, buf + cut, len - cut);
            spy_sha256_final(&ctx, again);
            if (memcmp(digest, again, sizeof(digest)) != 0) {
                same = 0;
                printf("# differs at length %zu, cut %zu\n", len, cut);
            }
        }
    }
    check(same, "sha256 incremental == one shot for lengths 0..300, any split");

    check(spy_sha256_fromhex(million_a, digest) == 0
          && (spy_sha256_tohex(digest, hex), strcmp(hex, million_a) == 0),
          "sha256 hex round trip");
    check(spy_sha256_fromhex("CDC76E5C9914FB9281A1C7E284D73E67F1809A48A497200E"
                             "046D39CCC7112CD0", again) == 0
          && memcmp(digest, again, sizeof(digest)) == 0,
          "sha256 hex parses upper case");
    check(spy_sha256_fromhex("cdc76e5c", digest) == -1,
          "sha256 hex refuses a short string");
    free(buf);
}

/* ------------------------------------------------------------------ */
/* xattr mode */

/* A scratch directory on a file system with user xattrs, or NULL. */
static char *
scratch_dir(void)
{
    static const char *const bases[] = {"/tmp", "/var/tmp", "."};

    for (size_t i = 0; i < sizeof(bases) / sizeof(bases[0]); i++) {
        char *tmpl = path_in(bases[i], "spy-verify-XXXXXX");
        char *probe;

        if (mkdtemp(tmpl) == NULL) {
            free(tmpl);
            continue;
        }
        probe = path_in(tmpl, "probe");
        write_text(probe, "x");
        if (setxattr(probe, "user.spy-probe", "1", 1, 0) == 0) {
            unlink(probe);
            free(probe);
            return tmpl;
        }
        printf("# %s has no user xattrs (%s); trying elsewhere\n", bases[i],
               strerror(errno));
        unlink(probe);
        free(probe);
        rmdir(tmpl);
        free(tmpl);
    }
    return NULL;
}

static void
test_xattr(const char *dir)
{
    static const char code[] = "print('hello')\n";
    struct spy_verify_options opts = {0};
    char detail[512], err[512], hex[SPY_SHA256_HEX_SIZE], want[SPY_SHA256_HEX_SIZE];
    char value[128];
    char *good = path_in(dir, "good.py");
    char *bare = path_in(dir, "bare.py");
    char *big = path_in(dir, "big.py");
    char *fifo = path_in(dir, "fifo");
    char *link = path_in(dir, "link.py");
    char *contents = NULL;
    size_t size = 0;
    enum spy_verify_result r;
    ssize_t vlen;
    int fd, rc;

    write_text(good, code);
    rc = spy_stamp_path(good, NULL, hex, err, sizeof(err));
    spy_sha256_hex(code, sizeof(code) - 1, want);
    check(rc == 1 && strcmp(hex, want) == 0, "stamp writes the xattr (rc %d) %s",
          rc, err);
    vlen = getxattr(good, SPY_VERIFY_XATTR_NAME, value, sizeof(value));
    check(vlen == 64 && memcmp(value, want, 64) == 0,
          "the xattr is exactly the 64 hex digits, no newline (%zd bytes)", vlen);
    rc = spy_stamp_path(good, NULL, NULL, err, sizeof(err));
    check(rc == 0, "stamping again leaves a current xattr alone (rc %d) %s",
          rc, err);

    r = spy_verify_path(good, NULL, detail, sizeof(detail));
    expect(r, SPY_VERIFY_OK, "stamped file verifies", detail);

    fd = open(good, O_RDONLY | O_CLOEXEC);
    lseek(fd, 5, SEEK_SET);
    r = spy_verify_fd(fd, &opts, &contents, &size, detail, sizeof(detail));
    expect(r, SPY_VERIFY_OK, "verify_fd (offset moved) hands back contents",
           detail);
    check(contents != NULL && size == sizeof(code) - 1
          && memcmp(contents, code, size) == 0 && contents[size] == '\0',
          "the contents handed back are the verified bytes, NUL-terminated");
    check(lseek(fd, 0, SEEK_CUR) == 5, "verify_fd leaves the offset alone");
    free(contents);
    close(fd);

    if (symlink("good.py", link) == 0) {
        r = spy_verify_path(link, NULL, detail, sizeof(detail));
        expect(r, SPY_VERIFY_OK, "a symlink to a stamped file verifies", detail);
    }

    /* Another xattr name. */
    opts.xattr_name = "user.spy-test-hash";
    r = spy_verify_path(good, &opts, detail, sizeof(detail));
    expect(r, SPY_VERIFY_NO_XATTR, "a configured xattr name is honoured", detail);
    rc = spy_stamp_path(good, "user.spy-test-hash", NULL, err, sizeof(err));
    r = spy_verify_path(good, &opts, detail, sizeof(detail));
    expect(r, SPY_VERIFY_OK, "stamped under the configured name verifies", detail);
    opts.xattr_name = NULL;

    /* Tampering keeps the xattr (O_TRUNC does not drop it). */
    write_text(good, "print('pwned')\n");
    fd = open(good, O_RDONLY | O_CLOEXEC);
    contents = (char *)1;
    r = spy_verify_fd(fd, &opts, &contents, &size, detail, sizeof(detail));
    close(fd);
    expect(r, SPY_VERIFY_MISMATCH, "tampered content", detail);
    check(contents == NULL, "no contents handed back on failure");
    check(strstr(detail, want) != NULL,
          "the mismatch detail shows the expected hash");

    setxattr(good, SPY_VERIFY_XATTR_NAME, "abc\n", 4, 0);
    r = spy_verify_path(good, NULL, detail, sizeof(detail));
    expect(r, SPY_VERIFY_MISMATCH, "a garbage xattr value", detail);

    write_text(bare, code);
    r = spy_verify_path(bare, NULL, detail, sizeof(detail));
    expect(r, SPY_VERIFY_NO_XATTR, "unstamped file", detail);

    /* Upper-case hex is not what the sample writes or accepts. */
    {
        char upper[64];

        for (int i = 0; i < 64; i++) {
            upper[i] = (char)(want[i] >= 'a' ? want[i] - 32 : want[i]);
        }
        setxattr(bare, SPY_VERIFY_XATTR_NAME, upper, 64, 0);
        r = spy_verify_path(bare, NULL, detail, sizeof(detail));
        expect(r, SPY_VERIFY_MISMATCH, "an upper-case hex xattr", detail);
    }

    /* Size limits. */
    write_text(big, code);
    spy_stamp_path(big, NULL, NULL, err, sizeof(err));
    opts.max_size = 10;
    r = spy_verify_path(big, &opts, detail, sizeof(detail));
    expect(r, SPY_VERIFY_TOO_LARGE, "over max_size", detail);
    opts.max_size = sizeof(code) - 1;
    r = spy_verify_path(big, &opts, detail, sizeof(detail));
    expect(r, SPY_VERIFY_OK, "exactly max_size", detail);
    opts.max_size = SIZE_MAX;
    fd = open(big, O_RDONLY | O_CLOEXEC);
    r = spy_verify_fd(fd, &opts, &contents, &size, detail, sizeof(detail));
    close(fd);
    expect(r, SPY_VERIFY_OK, "max_size SIZE_MAX", detail);
    free(contents);
    opts.max_size = 0;
    {
        size_t n = SPY_VERIFY_MAX_SIZE + 1;
        char *blob = malloc(n);

        memset(blob, '#', n);
        write_file(big, blob, n);
        spy_stamp_path(big, NULL, NULL, err, sizeof(err));
        r = spy_verify_path(big, NULL, detail, sizeof(detail));
        expect(r, SPY_VERIFY_TOO_LARGE, "over the 2 MiB default", detail);
        write_file(big, blob, n - 1);
        rc = spy_stamp_path(big, NULL, NULL, err, sizeof(err));
        fd = open(big, O_RDONLY | O_CLOEXEC);
        r = spy_verify_fd(fd, NULL, &contents, &size, detail, sizeof(detail));
        close(fd);
        expect(r, SPY_VERIFY_OK, "exactly 2 MiB, with contents", detail);
        check(size == n - 1 && contents != NULL
              && memcmp(contents, blob, size) == 0,
              "all 2 MiB handed back");
        free(contents);
        free(blob);
    }

    /* Not regular files. */
    r = spy_verify_path(dir, NULL, detail, sizeof(detail));
    expect(r, SPY_VERIFY_NOT_REGULAR, "a directory", detail);
    if (mkfifo(fifo, 0600) == 0) {
        r = spy_verify_path(fifo, NULL, detail, sizeof(detail));
        expect(r, SPY_VERIFY_NOT_REGULAR, "a FIFO (without blocking)", detail);
        rc = spy_stamp_path(fifo, NULL, NULL, err, sizeof(err));
        check(rc == -1, "stamp refuses a FIFO: %s", err);
    }
    else {
        skip("a FIFO: mkfifo failed");
    }
    r = spy_verify_path("/dev/null", NULL, detail, sizeof(detail));
    expect(r, SPY_VERIFY_NOT_REGULAR, "/dev/null", detail);

    r = spy_verify_path("/nonexistent/spy.py", NULL, detail, sizeof(detail));
    expect(r, SPY_VERIFY_IO_ERROR, "a missing file", detail);
    r = spy_verify_fd(-1, NULL, NULL, NULL, detail, sizeof(detail));
    expect(r, SPY_VERIFY_IO_ERROR, "a bad descriptor", detail);
    check(errno == EBADF, "errno is kept for I/O errors (%s)", strerror(errno));

    unlink(good);
    unlink(bare);
    unlink(big);
    unlink(fifo);
    unlink(link);
    free(good);
    free(bare);
    free(big);
    free(fifo);
    free(link);
}

static void
test_noexec(const char *dir)
{
    char *mnt = path_in(dir, "noexec");
    char *file = path_in(mnt, "code.py");
    char detail[512];
    enum spy_verify_result r;

    if (geteuid() != 0) {
        skip("noexec mount: not running as root");
        goto done;
    }
    if (mkdir(mnt, 0700) != 0) {
        skip("noexec mount: cannot make the mount point");
        goto done;
    }
    if (mount("tmpfs", mnt, "tmpfs", MS_NOEXEC | MS_NOSUID | MS_NODEV,
              "size=1m") != 0) {
        printf("skip  noexec mount: mount -t tmpfs -o noexec failed (%s)\n",
               strerror(errno));
        rmdir(mnt);
        goto done;
    }
    write_text(file, "print(1)\n");
    /* Stamped if tmpfs takes user xattrs; the noexec check comes first
     * either way. */
    spy_stamp_path(file, NULL, NULL, detail, sizeof(detail));
    r = spy_verify_path(file, NULL, detail, sizeof(detail));
    expect(r, SPY_VERIFY_NOEXEC_MOUNT, "a file on a noexec mount", detail);
    unlink(file);
    if (umount2(mnt, MNT_DETACH) != 0) {
        printf("# umount %s: %s\n", mnt, strerror(errno));
    }
    rmdir(mnt);

  done:
    free(file);
    free(mnt);
}

/* ------------------------------------------------------------------ */
/* Manifest mode */

static char *
base64(const unsigned char *in, size_t n)
{
    static const char tab[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *out = malloc(n * 2 + 8), *o = out;
    int col = 0;

    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)in[i] << 16;

        v |= i + 1 < n ? (unsigned)in[i + 1] << 8 : 0;
        v |= i + 2 < n ? in[i + 2] : 0;
        *o++ = tab[v >> 18 & 63];
        *o++ = tab[v >> 12 & 63];
        *o++ = i + 1 < n ? tab[v >> 6 & 63] : '=';
        *o++ = i + 2 < n ? tab[v & 63] : '=';
        col += 4;
        if (col == 64) {    /* wrapped like `openssl base64` */
            *o++ = '\n';
            col = 0;
        }
    }
    *o++ = '\n';
    *o = '\0';
    return out;
}

struct thread_arg {
    const char *manifest, *pub, *listed;
    int failures;
};

static void *
thread_main(void *p)
{
    struct thread_arg *a = p;
    struct spy_verify_options opts = {0};
    char detail[256];

    for (int i = 0; i < 30; i++) {
        struct spy_manifest *m = spy_manifest_load(a->manifest, a->pub, NULL,
                                                   detail, sizeof(detail));

        opts.manifest = m;
        if (m == NULL
            || spy_verify_path(a->listed, &opts, detail, sizeof(detail))
               != SPY_VERIFY_OK) {
            a->failures++;
        }
        spy_manifest_free(m);
    }
    return NULL;
}

static void
test_manifest(const char *dir)
{
    static const char code_a[] = "import os\n";
    static const char code_b[] = "import sys\n";
    char *priv = path_in(dir, "k.pem");
    char *pub = path_in(dir, "k.pub");
    char *priv2 = path_in(dir, "other.pem");
    char *pub2 = path_in(dir, "other.pub");
    char *manifest = path_in(dir, "MANIFEST.sha256");
    char *sig = path_in(dir, "MANIFEST.sha256.sig");
    char *a = path_in(dir, "a.py");
    char *b = path_in(dir, "b.py");
    char *bad = path_in(dir, "BAD.sha256");
    char hex_a[SPY_SHA256_HEX_SIZE], hex_b[SPY_SHA256_HEX_SIZE];
    char err[512], detail[512], text[1024], cmd[4096];
    struct spy_verify_options opts = {0};
    struct spy_manifest *m;
    enum spy_verify_result why;
    unsigned char *raw;
    size_t raw_n = 0;
    struct stat st;
    int rc;

    write_text(a, code_a);
    write_text(b, code_b);
    spy_sha256_hex(code_a, sizeof(code_a) - 1, hex_a);
    spy_sha256_hex(code_b, sizeof(code_b) - 1, hex_b);

    rc = spy_manifest_keygen(priv, pub, err, sizeof(err));
    check(rc == 0, "keygen %s", err);
    if (rc != 0) {
        return;
    }
    raw = read_all(priv, &raw_n);
    check(raw != NULL && strncmp((char *)raw, "-----BEGIN PRIVATE KEY-----", 27) == 0,
          "the private key is PKCS#8 PEM");
    free(raw);
    raw = read_all(pub, &raw_n);
    check(raw != NULL && strncmp((char *)raw, "-----BEGIN PUBLIC KEY-----", 26) == 0,
          "the public key is SubjectPublicKeyInfo PEM");
    free(raw);
    memset(&st, 0, sizeof(st));
    rc = stat(priv, &st);
    check(rc == 0 && (st.st_mode & 0777) == 0600,
          "the private key is mode 0600 (%o)", (unsigned)(st.st_mode & 0777));

    /* sha256sum format: text and binary markers, comments, blank lines,
     * CRLF, an escaped name, duplicates. */
    snprintf(text, sizeof(text),
             "# signed list of trusted code\n"
             "\n"
             "%s  a.py\n"
             "%s *a-copy.py\r\n"
             "\\%s  dir\\\\a.py\n"
             "   \n"
             "0000000000000000000000000000000000000000000000000000000000000000  zeros\n",
             hex_a, hex_a, hex_a);
    write_text(manifest, text);
    rc = spy_manifest_sign(manifest, priv, err, sizeof(err));
    check(rc == 0, "sign %s", err);
    raw = read_all(sig, &raw_n);
    check(raw != NULL && raw_n == 64, "the .sig is the raw 64 bytes (%zu)", raw_n);

    m = spy_manifest_load(manifest, pub, &why, err, sizeof(err));
    check(m != NULL && why == SPY_VERIFY_OK, "load a signed manifest %s", err);
    check(spy_manifest_count(m) == 2, "duplicates collapse (%zu hashes)",
          spy_manifest_count(m));
    opts.manifest = m;
    expect(spy_verify_path(a, &opts, detail, sizeof(detail)), SPY_VERIFY_OK,
           "listed file, manifest mode", detail);
    expect(spy_verify_path(b, &opts, detail, sizeof(detail)),
           SPY_VERIFY_NOT_IN_MANIFEST, "unlisted file, manifest mode", detail);
    check(strstr(detail, hex_b) != NULL, "the detail shows the file's hash");
    opts.max_size = 4;
    expect(spy_verify_path(a, &opts, detail, sizeof(detail)),
           SPY_VERIFY_TOO_LARGE, "file checks still apply in manifest mode",
           detail);
    opts.max_size = 0;
    expect(spy_verify_path(dir, &opts, detail, sizeof(detail)),
           SPY_VERIFY_NOT_REGULAR, "a directory, manifest mode", detail);
    write_text(a, "import os  \n");
    expect(spy_verify_path(a, &opts, detail, sizeof(detail)),
           SPY_VERIFY_NOT_IN_MANIFEST, "a listed file changed afterwards", detail);
    write_text(a, code_a);
    spy_manifest_free(m);

    /* Threads loading and checking at once. */
    {
        pthread_t t[4];
        struct thread_arg args[4];
        int failures = 0;

        for (int i = 0; i < 4; i++) {
            args[i] = (struct thread_arg){manifest, pub, a, 0};
            pthread_create(&t[i], NULL, thread_main, &args[i]);
        }
        for (int i = 0; i < 4; i++) {
            pthread_join(t[i], NULL);
            failures += args[i].failures;
        }
        check(failures == 0, "4 threads x 30 loads and checks (%d failed)",
              failures);
    }

    /* base64 signature. */
    {
        char *b64 = base64(raw, raw_n);

        write_text(sig, b64);
        m = spy_manifest_load(manifest, pub, &why, err, sizeof(err));
        check(m != NULL, "a base64 .sig is accepted %s", err);
        spy_manifest_free(m);
        write_text(sig, "bm90IGEgc2lnbmF0dXJl\n");
        m = spy_manifest_load(manifest, pub, &why, err, sizeof(err));
        check(m == NULL && why == SPY_VERIFY_BAD_SIGNATURE,
              "a base64 .sig of the wrong length: %s", err);
        free(b64);
        write_file(sig, raw, raw_n);
    }

    /* Tampering. */
    append_text(manifest, hex_b);
    append_text(manifest, "  b.py\n");
    m = spy_manifest_load(manifest, pub, &why, err, sizeof(err));
    check(m == NULL && why == SPY_VERIFY_BAD_SIGNATURE,
          "a manifest changed after signing: %s", err);
    spy_manifest_free(m);
    write_text(manifest, text);
    raw[10] ^= 1;
    write_file(sig, raw, raw_n);
    m = spy_manifest_load(manifest, pub, &why, err, sizeof(err));
    check(m == NULL && why == SPY_VERIFY_BAD_SIGNATURE, "a flipped signature bit");
    raw[10] ^= 1;
    write_file(sig, raw, raw_n);
    unlink(sig);
    m = spy_manifest_load(manifest, pub, &why, err, sizeof(err));
    check(m == NULL && why == SPY_VERIFY_BAD_SIGNATURE && strstr(err, ".sig") != NULL,
          "a missing .sig: %s", err);
    write_file(sig, raw, raw_n);

    rc = spy_manifest_keygen(priv2, pub2, err, sizeof(err));
    m = spy_manifest_load(manifest, pub2, &why, err, sizeof(err));
    check(rc == 0 && m == NULL && why == SPY_VERIFY_BAD_SIGNATURE,
          "another key's public half: %s", err);
    m = spy_manifest_load(manifest, priv, &why, err, sizeof(err));
    check(m == NULL && why == SPY_VERIFY_BAD_SIGNATURE
          && strstr(err, "private") != NULL,
          "a private key passed as the public one: %s", err);
    m = spy_manifest_load(manifest, "/nonexistent/k.pub", &why, err, sizeof(err));
    check(m == NULL && why == SPY_VERIFY_IO_ERROR
          && strstr(err, "/nonexistent/k.pub") != NULL,
          "an unreadable key: %s", err);
    m = spy_manifest_load("/nonexistent/M", pub, &why, err, sizeof(err));
    check(m == NULL && why == SPY_VERIFY_IO_ERROR
          && strstr(err, "/nonexistent/M") != NULL,
          "an unreadable manifest: %s", err);

    /* Signed but malformed. */
    snprintf(text, sizeof(text), "%s a.py\n", hex_a);
    write_text(bad, text);
    spy_manifest_sign(bad, priv, err, sizeof(err));
    m = spy_manifest_load(bad, pub, &why, err, sizeof(err));
    check(m == NULL && why == SPY_VERIFY_BAD_MANIFEST && strstr(err, "line 1"),
          "a signed manifest with one space: %s", err);
    write_text(bad, "SHA256 (a.py) = 00\n");
    spy_manifest_sign(bad, priv, err, sizeof(err));
    m = spy_manifest_load(bad, pub, &why, err, sizeof(err));
    check(m == NULL && why == SPY_VERIFY_BAD_MANIFEST, "a BSD-style line: %s", err);

    /* Empty manifest: loads, trusts nothing. */
    write_text(bad, "");
    spy_manifest_sign(bad, priv, err, sizeof(err));
    m = spy_manifest_load(bad, pub, &why, err, sizeof(err));
    opts.manifest = m;
    check(m != NULL && spy_manifest_count(m) == 0, "an empty manifest loads %s", err);
    expect(spy_verify_path(a, &opts, detail, sizeof(detail)),
           SPY_VERIFY_NOT_IN_MANIFEST, "nothing is in an empty manifest", detail);
    spy_manifest_free(m);

    /* The OpenSSL CLI, both ways. */
    if (access("/usr/bin/openssl", X_OK) != 0) {
        skip("openssl CLI: /usr/bin/openssl is missing");
    }
    else {
        char *cli_priv = path_in(dir, "cli.pem");
        char *cli_pub = path_in(dir, "cli.pub");

        snprintf(cmd, sizeof(cmd),
                 "cd '%s' && openssl genpkey -algorithm ed25519 -out cli.pem "
                 "&& openssl pkey -in cli.pem -pubout -out cli.pub "
                 "&& openssl pkeyutl -sign -inkey cli.pem -rawin "
                 "-in MANIFEST.sha256 -out MANIFEST.sha256.sig", dir);
        rc = system(cmd);
        check(rc == 0, "openssl genpkey/pkey/pkeyutl -sign ran (status %d)", rc);
        m = spy_manifest_load(manifest, cli_pub, &why, err, sizeof(err));
        check(m != NULL, "a signature and key made by the openssl CLI verify %s",
              err);
        spy_manifest_free(m);

        snprintf(cmd, sizeof(cmd),
                 "cd '%s' && openssl base64 -in MANIFEST.sha256.sig "
                 "-out sig.b64 && mv sig.b64 MANIFEST.sha256.sig", dir);
        rc = system(cmd);
        m = spy_manifest_load(manifest, cli_pub, &why, err, sizeof(err));
        check(rc == 0 && m != NULL, "`openssl base64` of it verifies too %s", err);
        spy_manifest_free(m);

        rc = spy_manifest_sign(manifest, cli_priv, err, sizeof(err));
        m = spy_manifest_load(manifest, cli_pub, &why, err, sizeof(err));
        check(rc == 0 && m != NULL, "sign with the CLI's private key, verify "
              "with its public one %s", err);
        spy_manifest_free(m);

        rc = spy_manifest_sign(manifest, priv, err, sizeof(err));
        snprintf(cmd, sizeof(cmd),
                 "cd '%s' && openssl pkeyutl -verify -pubin -inkey k.pub "
                 "-rawin -in MANIFEST.sha256 -sigfile MANIFEST.sha256.sig "
                 ">/dev/null 2>&1", dir);
        rc = rc == 0 ? system(cmd) : -1;
        check(rc == 0, "`openssl pkeyutl -verify` accepts our key and "
              "signature (status %d)", rc);

        snprintf(cmd, sizeof(cmd),
                 "cd '%s' && openssl genpkey -algorithm rsa "
                 "-pkeyopt rsa_keygen_bits:1024 -out rsa.pem 2>/dev/null "
                 "&& openssl pkey -in rsa.pem -pubout -out rsa.pub", dir);
        if (system(cmd) == 0) {
            char *rsa = path_in(dir, "rsa.pub");
            char *rsa_priv = path_in(dir, "rsa.pem");

            m = spy_manifest_load(manifest, rsa, &why, err, sizeof(err));
            check(m == NULL && why == SPY_VERIFY_BAD_SIGNATURE
                  && strstr(err, "Ed25519") != NULL,
                  "an RSA public key is refused: %s", err);
            rc = spy_manifest_sign(manifest, rsa_priv, err, sizeof(err));
            check(rc == -1 && strstr(err, "Ed25519") != NULL,
                  "signing with an RSA key is refused: %s", err);
            unlink(rsa);
            unlink(rsa_priv);
            free(rsa);
            free(rsa_priv);
        }
        snprintf(cmd, sizeof(cmd),
                 "cd '%s' && openssl genpkey -algorithm ed25519 -aes256 "
                 "-pass pass:secret -out enc.pem 2>/dev/null", dir);
        if (system(cmd) == 0) {
            char *enc = path_in(dir, "enc.pem");

            rc = spy_manifest_sign(manifest, enc, err, sizeof(err));
            check(rc == -1 && strstr(err, "passphrase") != NULL,
                  "an encrypted key is refused without prompting: %s", err);
            unlink(enc);
            free(enc);
        }
        unlink(cli_priv);
        unlink(cli_pub);
        free(cli_priv);
        free(cli_pub);
    }

    free(raw);
    unlink(priv);
    unlink(pub);
    unlink(priv2);
    unlink(pub2);
    unlink(manifest);
    unlink(sig);
    unlink(a);
    unlink(b);
    unlink(bad);
    {
        char *bad_sig = path_in(dir, "BAD.sha256.sig");

        unlink(bad_sig);
        free(bad_sig);
    }
    free(priv);
    free(pub);
    free(priv2);
    free(pub2);
    free(manifest);
    free(sig);
    free(a);
    free(b);
    free(bad);
}

/* ------------------------------------------------------------------ */
/* Modes */

static int
hash_files(int argc, char **argv)
{
    static unsigned char buf[1 << 16];
    int status = 0;

    for (int i = 0; i < argc; i++) {
        struct spy_sha256_ctx ctx;
        unsigned char digest[SPY_SHA256_SIZE];
        char hex[SPY_SHA256_HEX_SIZE];
        int fd = open(argv[i], O_RDONLY | O_CLOEXEC);
        size_t piece = 1;
        ssize_t n;

        if (fd < 0) {
            fprintf(stderr, "verify_check: %s: %s\n", argv[i], strerror(errno));
            status = 1;
            continue;
        }
        spy_sha256_init(&ctx);
        while ((n = read(fd, buf, sizeof(buf))) > 0) {
            /* Uneven pieces, to exercise the buffering. */
            for (size_t off = 0; off < (size_t)n; ) {
                size_t take = piece < (size_t)n - off ? piece : (size_t)n - off;

                spy_sha256_update(&ctx, buf + off, take);
                off += take;
                piece = piece * 5 % 4099 + 1;
            }
        }
        close(fd);
        if (n < 0) {
            fprintf(stderr, "verify_check: %s: %s\n", argv[i], strerror(errno));
            status = 1;
            continue;
        }
        spy_sha256_final(&ctx, digest);
        spy_sha256_tohex(digest, hex);
        printf("%s  %s\n", hex, argv[i]);
    }
    return status;
}

static int
stamp_files(int argc, char **argv)
{
    int status = 0;

    for (int i = 0; i < argc; i++) {
        char hex[SPY_SHA256_HEX_SIZE], err[512];
        int rc = spy_stamp_path(argv[i], NULL, hex, err, sizeof(err));

        if (rc < 0) {
            fprintf(stderr, "verify_check: %s\n", err);
            status = 1;
        }
        else {
            printf("%s  %s%s\n", hex, argv[i], rc ? "" : " (unchanged)");
        }
    }
    return status;
}

static int
verify_files(int argc, char **argv)
{
    int status = 0;

    for (int i = 0; i < argc; i++) {
        char detail[512];
        enum spy_verify_result r = spy_verify_path(argv[i], NULL, detail,
                                                   sizeof(detail));

        printf("%s: %s%s%s\n", argv[i], spy_verify_reason(r),
               detail[0] ? ": " : "", detail);
        if (r != SPY_VERIFY_OK) {
            status = 1;
        }
    }
    return status;
}

int
main(int argc, char **argv)
{
    char *dir;

    if (argc >= 2 && strcmp(argv[1], "--hash") == 0) {
        return hash_files(argc - 2, argv + 2);
    }
    if (argc >= 2 && strcmp(argv[1], "--stamp") == 0) {
        return stamp_files(argc - 2, argv + 2);
    }
    if (argc >= 2 && strcmp(argv[1], "--verify") == 0) {
        return verify_files(argc - 2, argv + 2);
    }
    if (argc >= 2) {
        fprintf(stderr, "usage: verify_check [--hash|--stamp|--verify FILE...]\n");
        return 2;
    }

    test_sha256();
    dir = scratch_dir();
    if (dir == NULL) {
        check(0, "no scratch directory with user xattrs under /tmp, /var/tmp "
              "or the current directory");
    }
    else {
        printf("# scratch directory %s\n", dir);
        test_xattr(dir);
        test_noexec(dir);
        test_manifest(dir);
        if (rmdir(dir) != 0) {
            printf("# could not remove %s: %s\n", dir, strerror(errno));
        }
        free(dir);
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
