/* Trust checks for code files: the one implementation behind the
 * launcher's open_code hook and the stamping/verifying tools.
 *
 * A code file is trusted when, checked through the one descriptor it is
 * then read from (no window between check and use):
 *   - it is a regular file,
 *   - of at most max_size bytes (default 2 MiB),
 *   - not on a file system mounted noexec (fstatvfs ST_NOEXEC),
 *   - and its SHA-256 either equals the extended attribute
 *     "user.org.python.x-spython-hash" (64 lowercase hex digits, exactly
 *     as zooba/spython's linux_xattr sample and its mkxattr.py write it),
 *     or, in manifest mode, is listed in a manifest whose Ed25519
 *     signature checked out when it was loaded.
 *
 * A manifest is `sha256sum` output: "<64 hex>  <path>" or "<64 hex> *<path>"
 * lines, '#' comments and blank lines.  Only the hashes count (like a
 * catalogue); paths are informational.  Its signature is "<manifest>.sig",
 * the raw 64 bytes or their base64, made over the manifest's exact bytes,
 * e.g. by `openssl pkeyutl -sign -inkey k.pem -rawin -in M -out M.sig`.
 * The public key is a PEM file ("-----BEGIN PUBLIC KEY-----").
 *
 * Hashing is built in (sha256.c); only Ed25519 uses OpenSSL, whose
 * libcrypto.so.3 is dlopen()ed on first use, so linking needs libc and
 * -ldl alone and xattr mode needs no OpenSSL at all.
 *
 * Every function is thread-safe; the only process-wide state is that
 * libcrypto handle, set up once (pthread_once).  Loaded manifests are
 * immutable and may be shared between threads.  Functions that fail
 * write a short, NUL-terminated explanation into the caller's buffer
 * (detail/err, of the given size; NULL or size 0 means none wanted), and
 * an empty string on success. */
#ifndef SPY_VERIFY_H
#define SPY_VERIFY_H

#include <stddef.h>

#include "sha256.h"

#define SPY_VERIFY_XATTR_NAME "user.org.python.x-spython-hash"
#define SPY_VERIFY_MAX_SIZE (2 * 1024 * 1024)

enum spy_verify_result {
    SPY_VERIFY_OK = 0,
    SPY_VERIFY_NO_XATTR,
    SPY_VERIFY_MISMATCH,
    SPY_VERIFY_TOO_LARGE,
    SPY_VERIFY_NOT_REGULAR,
    SPY_VERIFY_NOEXEC_MOUNT,
    SPY_VERIFY_NOT_IN_MANIFEST,
    SPY_VERIFY_BAD_SIGNATURE,
    SPY_VERIFY_IO_ERROR,
    SPY_VERIFY_BAD_MANIFEST,    /* signed, but not in sha256sum format */
};

/* A short phrase for a result: "ok", "no xattr", "hash mismatch",
 * "too large", "not a regular file", "on a noexec mount", "not in
 * manifest", "bad signature", "I/O error", "malformed manifest". */
const char *spy_verify_reason(enum spy_verify_result r);

/* Opaque: the manifest's hashes, sorted, looked up by binary search. */
struct spy_manifest;

struct spy_verify_options {
    const char *xattr_name;     /* NULL: SPY_VERIFY_XATTR_NAME */
    size_t max_size;            /* 0: SPY_VERIFY_MAX_SIZE */
    const struct spy_manifest *manifest;   /* NULL: xattr mode */
};

/* Checks the file open on fd (o may be NULL for the defaults), reading it
 * whole from offset 0 with pread (the descriptor's offset is not used or
 * moved).  The checks come in the order of the enum: NOT_REGULAR,
 * TOO_LARGE, NOEXEC_MOUNT, then NO_XATTR / MISMATCH (xattr mode) or
 * NOT_IN_MANIFEST (manifest mode).  A file that grows past max_size while
 * being read is TOO_LARGE.
 *
 * On OK, when contents is not NULL, *contents receives the bytes that were
 * hashed (malloc'd, with an extra NUL after them; the caller frees) and
 * *size their number, so the caller runs exactly what was verified.  On
 * any failure *contents is NULL.  With contents NULL the file is hashed in
 * chunks and nothing is kept.
 *
 * detail receives e.g. "xattr user.org.python.x-spython-hash is <hex> but
 * the file hashes to <hex>"; on IO_ERROR it names the failing call and its
 * strerror, and errno keeps that call's value. */
enum spy_verify_result spy_verify_fd(int fd,
                                     const struct spy_verify_options *o,
                                     char **contents, size_t *size,
                                     char *detail, size_t detail_size);

/* Opens path (following symlinks, as Python's open() does; without
 * blocking on a FIFO) and runs spy_verify_fd on the descriptor.  A path
 * that cannot be opened is IO_ERROR with the open() error in detail. */
enum spy_verify_result spy_verify_path(const char *path,
                                       const struct spy_verify_options *o,
                                       char *detail, size_t detail_size);

/* Stamps a file for xattr mode: hashes it through one descriptor and
 * sets the xattr (xattr_name NULL: the default) on that same descriptor
 * to the 64 hex digits (no newline), leaving it alone when it already
 * holds them (so ctime does not change).  hex_out (may be NULL) receives
 * the digest as hex.  Refuses anything but a regular file.  Returns 1 when
 * the xattr was written, 0 when it was already current, -1 on failure
 * with err explaining it (e.g. a file system without user xattrs). */
int spy_stamp_path(const char *path, const char *xattr_name,
                   char hex_out[SPY_SHA256_HEX_SIZE],
                   char *err, size_t err_size);

/* Loads a manifest after verifying "<manifest_path>.sig" with the Ed25519
 * public key in public_key_path.  Returns NULL on failure with *why (may
 * be NULL) set to BAD_SIGNATURE (no or unreadable .sig, a signature that
 * does not match, a key that is not Ed25519), IO_ERROR (manifest or key
 * unreadable, libcrypto not loadable) or BAD_MANIFEST (a line that is not
 * "<64 hex>  <path>"), and err naming the file and the problem. */
struct spy_manifest *spy_manifest_load(const char *manifest_path,
                                       const char *public_key_path,
                                       enum spy_verify_result *why,
                                       char *err, size_t err_size);

/* Number of distinct hashes a loaded manifest holds. */
size_t spy_manifest_count(const struct spy_manifest *m);

/* Whether a digest is listed (1) or not (0). */
int spy_manifest_contains(const struct spy_manifest *m,
                          const unsigned char digest[SPY_SHA256_SIZE]);

/* Frees a manifest; NULL is ignored. */
void spy_manifest_free(struct spy_manifest *m);

/* Generates an Ed25519 key pair: the private key as unencrypted PKCS#8
 * PEM ("-----BEGIN PRIVATE KEY-----", mode 0600) and the public key as
 * PEM ("-----BEGIN PUBLIC KEY-----", mode 0644), the same files
 * `openssl genpkey -algorithm ed25519` / `openssl pkey -pubout` write.
 * Existing files are replaced (atomically, by rename).  Returns 0, or -1
 * with err set. */
int spy_manifest_keygen(const char *private_pem, const char *public_pem,
                        char *err, size_t err_size);

/* Signs the manifest's bytes with the Ed25519 private key in private_pem
 * and writes the raw 64-byte signature to "<manifest_path>.sig".
 * Returns 0, or -1 with err set. */
int spy_manifest_sign(const char *manifest_path, const char *private_pem,
                      char *err, size_t err_size);

#endif /* SPY_VERIFY_H */
