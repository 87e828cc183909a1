/* SHA-256 after FIPS 180-4.  Two block functions: portable C, and on
 * x86 the SHA extensions (SHA-NI), picked per call from the CPU's feature
 * bits (which libgcc reads once; we keep no state of our own).  Build
 * with -DSPY_SHA256_PORTABLE to leave the SHA-NI one out. */
#include "sha256.h"

#include <string.h>

#if !defined(SPY_SHA256_PORTABLE) \
    && (defined(__x86_64__) || defined(__i386__)) \
    && (defined(__GNUC__) || defined(__clang__))
#  define SPY_SHA256_HAVE_SHANI 1
#  include <immintrin.h>
#endif

static const uint32_t spy_sha256_k[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5,
    0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3,
    0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc,
    0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
    0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
    0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3,
    0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5,
    0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208,
    0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

static const uint32_t spy_sha256_h0[8] = {
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
    0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
};

static inline uint32_t
spy_load_be32(const unsigned char *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16)
           | ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

static inline void
spy_store_be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

#define SPY_ROTR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))
#define SPY_CH(x, y, z) ((z) ^ ((x) & ((y) ^ (z))))
#define SPY_MAJ(x, y, z) (((x) & (y)) | ((z) & ((x) | (y))))
#define SPY_BSIG0(x) (SPY_ROTR(x, 2) ^ SPY_ROTR(x, 13) ^ SPY_ROTR(x, 22))
#define SPY_BSIG1(x) (SPY_ROTR(x, 6) ^ SPY_ROTR(x, 11) ^ SPY_ROTR(x, 25))
#define SPY_SSIG0(x) (SPY_ROTR(x, 7) ^ SPY_ROTR(x, 18) ^ ((x) >> 3))
#define SPY_SSIG1(x) (SPY_ROTR(x, 17) ^ SPY_ROTR(x, 19) ^ ((x) >> 10))

/* One round; the caller rotates the roles of a..h instead of the values. */
#define SPY_ROUND(a, b, c, d, e, f, g, h, i)                              \
    do {                                                                  \
        uint32_t t1_ = (h) + SPY_BSIG1(e) + SPY_CH(e, f, g)               \
                       + spy_sha256_k[i] + w[i];                          \
        uint32_t t2_ = SPY_BSIG0(a) + SPY_MAJ(a, b, c);                   \
        (d) += t1_;                                                       \
        (h) = t1_ + t2_;                                                  \
    } while (0)

static void
spy_sha256_blocks_portable(uint32_t state[8], const unsigned char *p,
                           size_t nblocks)
{
    uint32_t w[64];

    while (nblocks-- > 0) {
        uint32_t a = state[0], b = state[1], c = state[2], d = state[3];
        uint32_t e = state[4], f = state[5], g = state[6], h = state[7];

        for (int i = 0; i < 16; i++) {
            w[i] = spy_load_be32(p + 4 * i);
        }
        for (int i = 16; i < 64; i++) {
            w[i] = SPY_SSIG1(w[i - 2]) + w[i - 7]
                   + SPY_SSIG0(w[i - 15]) + w[i - 16];
        }
        for (int i = 0; i < 64; i += 8) {
            SPY_ROUND(a, b, c, d, e, f, g, h, i);
            SPY_ROUND(h, a, b, c, d, e, f, g, i + 1);
            SPY_ROUND(g, h, a, b, c, d, e, f, i + 2);
            SPY_ROUND(f, g, h, a, b, c, d, e, i + 3);
            SPY_ROUND(e, f, g, h, a, b, c, d, i + 4);
            SPY_ROUND(d, e, f, g, h, a, b, c, i + 5);
            SPY_ROUND(c, d, e, f, g, h, a, b, i + 6);
            SPY_ROUND(b, c, d, e, f, g, h, a, i + 7);
        }
        state[0] += a;
        state[1] += b;
        state[2] += c;
        state[3] += d;
        state[4] += e;
        state[5] += f;
        state[6] += g;
        state[7] += h;
        p += 64;
    }
}

#ifdef SPY_SHA256_HAVE_SHANI
/* Four rounds with message words m (already in schedule order). */
#define SPY_NI_RNDS4(m, k)                                                \
    do {                                                                  \
        msg = _mm_add_epi32((m), _mm_loadu_si128(                         \
                  (const __m128i *)&spy_sha256_k[(k)]));                  \
        st1 = _mm_sha256rnds2_epu32(st1, st0, msg);                       \
        msg = _mm_shuffle_epi32(msg, 0x0E);                               \
        st0 = _mm_sha256rnds2_epu32(st0, st1, msg);                       \
    } while (0)

/* Finishes the schedule words `next` from cur and prev (msg2 step). */
#define SPY_NI_MSG2(next, cur, prev)                                      \
    do {                                                                  \
        (next) = _mm_add_epi32((next), _mm_alignr_epi8((cur), (prev), 4)); \
        (next) = _mm_sha256msg2_epu32((next), (cur));                     \
    } while (0)

#define SPY_NI_MSG1(older, cur) \
    ((older) = _mm_sha256msg1_epu32((older), (cur)))

__attribute__((target("sha,sse4.1,ssse3")))
static void
spy_sha256_blocks_shani(uint32_t state[8], const unsigned char *p,
                        size_t nblocks)
{
    const __m128i bswap = _mm_set_epi64x(0x0c0d0e0f08090a0bULL,
                                         0x0405060700010203ULL);
    __m128i st0, st1, tmp, msg, m0, m1, m2, m3, save0, save1;

    /* The instructions want the state as ABEF and CDGH. */
    tmp = _mm_loadu_si128((const __m128i *)&state[0]);      /* DCBA */
    st1 = _mm_loadu_si128((const __m128i *)&state[4]);      /* HGFE */
    tmp = _mm_shuffle_epi32(tmp, 0xB1);                     /* CDAB */
    st1 = _mm_shuffle_epi32(st1, 0x1B);                     /* EFGH */
    st0 = _mm_alignr_epi8(tmp, st1, 8);                     /* ABEF */
    st1 = _mm_blend_epi16(st1, tmp, 0xF0);                  /* CDGH */

    while (nblocks-- > 0) {
        save0 = st0;
        save1 = st1;

        m0 = _mm_shuffle_epi8(
            _mm_loadu_si128((const __m128i *)(p + 0)), bswap);
        m1 = _mm_shuffle_epi8(
            _mm_loadu_si128((const __m128i *)(p + 16)), bswap);
        m2 = _mm_shuffle_epi8(
            _mm_loadu_si128((const __m128i *)(p + 32)), bswap);
        m3 = _mm_shuffle_epi8(
            _mm_loadu_si128((const __m128i *)(p + 48)), bswap);

        /* Group i uses word group i (held in m[i % 4]); it then finishes
         * group i + 1 (msg2, for 3 <= i <= 14) and starts group i + 3
         * (msg1, for 1 <= i <= 12) in the register of group i - 1. */
        SPY_NI_RNDS4(m0, 0);
        SPY_NI_RNDS4(m1, 4);
        SPY_NI_MSG1(m0, m1);
        SPY_NI_RNDS4(m2, 8);
        SPY_NI_MSG1(m1, m2);
        SPY_NI_RNDS4(m3, 12);
        SPY_NI_MSG2(m0, m3, m2);
        SPY_NI_MSG1(m2, m3);
        SPY_NI_RNDS4(m0, 16);
        SPY_NI_MSG2(m1, m0, m3);
        SPY_NI_MSG1(m3, m0);
        SPY_NI_RNDS4(m1, 20);
        SPY_NI_MSG2(m2, m1, m0);
        SPY_NI_MSG1(m0, m1);
        SPY_NI_RNDS4(m2, 24);
        SPY_NI_MSG2(m3, m2, m1);
        SPY_NI_MSG1(m1, m2);
        SPY_NI_RNDS4(m3, 28);
        SPY_NI_MSG2(m0, m3, m2);
        SPY_NI_MSG1(m2, m3);
        SPY_NI_RNDS4(m0, 32);
        SPY_NI_MSG2(m1, m0, m3);
        SPY_NI_MSG1(m3, m0);
        SPY_NI_RNDS4(m1, 36);
        SPY_NI_MSG2(m2, m1, m0);
        SPY_NI_MSG1(m0, m1);
        SPY_NI_RNDS4(m2, 40);
        SPY_NI_MSG2(m3, m2, m1);
        SPY_NI_MSG1(m1, m2);
        SPY_NI_RNDS4(m3, 44);
        SPY_NI_MSG2(m0, m3, m2);
        SPY_NI_MSG1(m2, m3);
        SPY_NI_RNDS4(m0, 48);
        SPY_NI_MSG2(m1, m0, m3);
        SPY_NI_MSG1(m3, m0);
        SPY_NI_RNDS4(m1, 52);
        SPY_NI_MSG2(m2, m1, m0);
        SPY_NI_RNDS4(m2, 56);
        SPY_NI_MSG2(m3, m2, m1);
        SPY_NI_RNDS4(m3, 60);

        st0 = _mm_add_epi32(st0, save0);
        st1 = _mm_add_epi32(st1, save1);
        p += 64;
    }

    tmp = _mm_shuffle_epi32(st0, 0x1B);                     /* FEBA */
    st1 = _mm_shuffle_epi32(st1, 0xB1);                     /* DCHG */
    st0 = _mm_blend_epi16(tmp, st1, 0xF0);                  /* DCBA */
    st1 = _mm_alignr_epi8(st1, tmp, 8);                     /* HGFE */
    _mm_storeu_si128((__m128i *)&state[0], st0);
    _mm_storeu_si128((__m128i *)&state[4], st1);
}

static int
spy_sha256_use_shani(void)
{
    /* Cheap after the first call (libgcc checks its own flag); needed in
     * case we run before libgcc's constructor, e.g. from another one. */
    __builtin_cpu_init();
    return __builtin_cpu_supports("sha") && __builtin_cpu_supports("sse4.1")
           && __builtin_cpu_supports("ssse3");
}
#endif /* SPY_SHA256_HAVE_SHANI */

static void
spy_sha256_blocks(uint32_t state[8], const unsigned char *p, size_t nblocks)
{
#ifdef SPY_SHA256_HAVE_SHANI
    if (spy_sha256_use_shani()) {
        spy_sha256_blocks_shani(state, p, nblocks);
        return;
    }
#endif
    spy_sha256_blocks_portable(state, p, nblocks);
}

const char *
spy_sha256_impl(void)
{
#ifdef SPY_SHA256_HAVE_SHANI
    if (spy_sha256_use_shani()) {
        return "sha-ni";
    }
#endif
    return "portable";
}

void
spy_sha256_init(struct spy_sha256_ctx *ctx)
{
    memcpy(ctx->state, spy_sha256_h0, sizeof(ctx->state));
    ctx->length = 0;
    ctx->used = 0;
}

void
spy_sha256_update(struct spy_sha256_ctx *ctx, const void *data, size_t n)
{
    const unsigned char *p = data;

    ctx->length += n;
    if (ctx->used > 0) {
        size_t take = 64 - ctx->used;

        if (take > n) {
            take = n;
        }
        memcpy(ctx->block + ctx->used, p, take);
        ctx->used += take;
        p += take;
        n -= take;
        if (ctx->used < 64) {
            return;
        }
        spy_sha256_blocks(ctx->state, ctx->block, 1);
        ctx->used = 0;
    }
    if (n >= 64) {
        spy_sha256_blocks(ctx->state, p, n / 64);
        p += n & ~(size_t)63;
        n &= 63;
    }
    if (n > 0) {
        memcpy(ctx->block, p, n);
        ctx->used = n;
    }
}

void
spy_sha256_final(struct spy_sha256_ctx *ctx,
                 unsigned char out[SPY_SHA256_SIZE])
{
    uint64_t bits = ctx->length * 8;

    ctx->block[ctx->used++] = 0x80;
    if (ctx->used > 56) {
        memset(ctx->block + ctx->used, 0, 64 - ctx->used);
        spy_sha256_blocks(ctx->state, ctx->block, 1);
        ctx->used = 0;
    }
    memset(ctx->block + ctx->used, 0, 56 - ctx->used);
    spy_store_be32(ctx->block + 56, (uint32_t)(bits >> 32));
    spy_store_be32(ctx->block + 60, (uint32_t)bits);
    spy_sha256_blocks(ctx->state, ctx->block, 1);
    for (int i = 0; i < 8; i++) {
        spy_store_be32(out + 4 * i, ctx->state[i]);
    }
    memset(ctx, 0, sizeof(*ctx));
}

void
spy_sha256(const void *data, size_t n, unsigned char out[SPY_SHA256_SIZE])
{
    struct spy_sha256_ctx ctx;

    spy_sha256_init(&ctx);
    spy_sha256_update(&ctx, data, n);
    spy_sha256_final(&ctx, out);
}

void
spy_sha256_tohex(const unsigned char digest[SPY_SHA256_SIZE],
                 char out[SPY_SHA256_HEX_SIZE])
{
    static const char hex[] = "0123456789abcdef";

    for (int i = 0; i < SPY_SHA256_SIZE; i++) {
        out[2 * i] = hex[digest[i] >> 4];
        out[2 * i + 1] = hex[digest[i] & 15];
    }
    out[2 * SPY_SHA256_SIZE] = '\0';
}

void
spy_sha256_hex(const void *data, size_t n, char out[SPY_SHA256_HEX_SIZE])
{
    unsigned char digest[SPY_SHA256_SIZE];

    spy_sha256(data, n, digest);
    spy_sha256_tohex(digest, out);
}

static int
spy_hexval(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

int
spy_sha256_fromhex(const char *hex, unsigned char out[SPY_SHA256_SIZE])
{
    for (int i = 0; i < SPY_SHA256_SIZE; i++) {
        int hi = spy_hexval(hex[2 * i]);
        int lo = hi < 0 ? -1 : spy_hexval(hex[2 * i + 1]);

        if (lo < 0) {
            return -1;
        }
        out[i] = (unsigned char)(hi << 4 | lo);
    }
    return 0;
}
