/* SHA-256 (FIPS 180-4), self-contained: the launcher must not need
 * OpenSSL to hash the code it runs.  On x86-64 CPUs with the SHA
 * extensions the block function uses them; elsewhere a portable C one.
 * Every function is reentrant: all state lives in the caller's context. */
#ifndef SPY_SHA256_H
#define SPY_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define SPY_SHA256_SIZE 32          /* digest bytes */
#define SPY_SHA256_HEX_SIZE 65      /* 64 lowercase hex digits and a NUL */

struct spy_sha256_ctx {
    uint32_t state[8];
    uint64_t length;                /* bytes hashed so far */
    unsigned char block[64];        /* a partial block awaiting more data */
    size_t used;                    /* bytes of `block` in use */
};

/* The incremental interface: init, any number of updates (of any sizes,
 * including 0), then final, which leaves the context to be init'ed
 * again before reuse. */
void spy_sha256_init(struct spy_sha256_ctx *ctx);
void spy_sha256_update(struct spy_sha256_ctx *ctx, const void *data,
                       size_t n);
void spy_sha256_final(struct spy_sha256_ctx *ctx,
                      unsigned char out[SPY_SHA256_SIZE]);

/* One shot: the digest of n bytes at data. */
void spy_sha256(const void *data, size_t n,
                unsigned char out[SPY_SHA256_SIZE]);

/* One shot, as `sha256sum` prints it: 64 lowercase hex digits and a NUL. */
void spy_sha256_hex(const void *data, size_t n,
                    char out[SPY_SHA256_HEX_SIZE]);

/* Formats a digest as 64 lowercase hex digits and a NUL. */
void spy_sha256_tohex(const unsigned char digest[SPY_SHA256_SIZE],
                      char out[SPY_SHA256_HEX_SIZE]);

/* Parses exactly 64 hex digits (either case) at hex into a digest.
 * Returns 0, or -1 when any of them is not a hex digit. */
int spy_sha256_fromhex(const char *hex, unsigned char out[SPY_SHA256_SIZE]);

/* Which block function spy_sha256_update uses: "sha-ni" or "portable". */
const char *spy_sha256_impl(void);

#endif /* SPY_SHA256_H */
