/* crc.c - reflected CRCs and their combination (crc.h).
 *
 * One generic engine serves the three CRCs: a reflected CRC of width 32 or 64 is its
 * polynomial plus eight 256-entry tables, t[k][b] = the CRC register after byte b
 * followed by k zero bytes, so eight input bytes cost eight lookups (slice-by-8).
 * Combination uses zlib's method: crc(a||b) = crc(a) * x^(8*len(b)) mod P  xor  crc(b),
 * with x^(2^k) mod P tabulated so the power costs O(log len) multiplications.
 *
 * Long buffers go faster with carry-less multiplication where the CPU has it (PCLMULQDQ):
 * the message is folded 64 bytes at a time into four 128-bit remainders R, each step
 * R <- R * x^512 + D computed as two 64x64 products with constants x^n mod P (so R stays
 * congruent to the message mod P), then the 16 bytes left are reduced by the tables. The
 * constants are derived at start from the polynomial, not typed in. */
#include "crc.h"

#include <pthread.h>
#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <nmmintrin.h>
#include <wmmintrin.h>
#define HAVE_SSE42_PATH 1
#endif

#define FOLD_MIN 128        /* shorter buffers: the tables (setting up the fold costs more) */

typedef struct crc_def {
    uint64_t poly;          /* reflected polynomial */
    int width;              /* 32 or 64 */
    uint64_t t[8][256];
    uint64_t x2n[67];       /* x^(2^k) mod P; k up to 3 + 63 for a 64-bit byte count */
    uint64_t fold512[2];    /* x^575, x^511 mod P, 64-bit reflected: R * x^512 */
    uint64_t fold128[2];    /* x^191, x^127 mod P: R * x^128 */
} crc_def_t;

static crc_def_t crc32_def = {.poly = 0xEDB88320u, .width = 32};
static crc_def_t crc32c_def = {.poly = 0x82F63B78u, .width = 32};
static crc_def_t crc64_def = {.poly = 0x9A6C9329AC4BC9B5ull, .width = 64};
static pthread_once_t tables_once = PTHREAD_ONCE_INIT;
static int have_sse42, have_pclmul;

/* a * b mod P in the reflected representation (bit width-1 is x^0). a must not be 0,
 * which x^n mod P never is. */
static uint64_t multmodp(const crc_def_t *d, uint64_t a, uint64_t b)
{
    uint64_t m = 1ull << (d->width - 1), p = 0;
    for (;;) {
        if (a & m) {
            p ^= b;
            if ((a & (m - 1)) == 0)
                break;
        }
        m >>= 1;
        b = b & 1 ? (b >> 1) ^ d->poly : b >> 1;
    }
    return p;
}

/* x^n mod P (reflected, width bits), by squaring: x2n[k] = x^(2^k) must be built up to
 * the highest bit of n. */
static uint64_t xpow(const crc_def_t *d, uint64_t n)
{
    uint64_t p = 1ull << (d->width - 1);   /* x^0 */
    for (int k = 0; n; n >>= 1, k++)
        if (n & 1)
            p = multmodp(d, d->x2n[k], p);
    return p;
}

static void build(crc_def_t *d)
{
    for (int i = 0; i < 256; i++) {
        uint64_t c = (uint64_t)i;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? (c >> 1) ^ d->poly : c >> 1;
        d->t[0][i] = c;
    }
    for (int i = 0; i < 256; i++)
        for (int k = 1; k < 8; k++)
            d->t[k][i] = (d->t[k - 1][i] >> 8) ^ d->t[0][d->t[k - 1][i] & 0xff];
    d->x2n[0] = 1ull << (d->width - 2);   /* x^1 */
    for (size_t k = 1; k < sizeof d->x2n / sizeof d->x2n[0]; k++)
        d->x2n[k] = multmodp(d, d->x2n[k - 1], d->x2n[k - 1]);
    /* A carry-less product of two reflected 64-bit values is the reflected 128-bit product
     * times x, hence the exponents one lower than the shift they stand for. */
    d->fold512[0] = xpow(d, 575) << (64 - d->width);
    d->fold512[1] = xpow(d, 511) << (64 - d->width);
    d->fold128[0] = xpow(d, 191) << (64 - d->width);
    d->fold128[1] = xpow(d, 127) << (64 - d->width);
}

static void build_all(void)
{
    build(&crc32_def);
    build(&crc32c_def);
    build(&crc64_def);
#ifdef HAVE_SSE42_PATH
    __builtin_cpu_init();
    have_sse42 = __builtin_cpu_supports("sse4.2");
    have_pclmul = __builtin_cpu_supports("pclmul") && __builtin_cpu_supports("sse4.1");
#endif
}

/* The register after len bytes, without the inversions (slice-by-8). */
static uint64_t update_raw(const crc_def_t *d, uint64_t crc, const unsigned char *p, size_t len)
{
    while (len && ((uintptr_t)p & 7)) {
        crc = d->t[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
        len--;
    }
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    while (len >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        w ^= crc;
        crc = d->t[7][w & 0xff] ^ d->t[6][(w >> 8) & 0xff] ^ d->t[5][(w >> 16) & 0xff] ^
              d->t[4][(w >> 24) & 0xff] ^ d->t[3][(w >> 32) & 0xff] ^ d->t[2][(w >> 40) & 0xff] ^
              d->t[1][(w >> 48) & 0xff] ^ d->t[0][w >> 56];
        p += 8;
        len -= 8;
    }
#endif
    while (len--)
        crc = d->t[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
    return crc;
}

#ifdef HAVE_SSE42_PATH
__attribute__((target("pclmul,sse4.1"))) static __m128i fold(__m128i r, __m128i k)
{
    return _mm_xor_si128(_mm_clmulepi64_si128(r, k, 0x00), _mm_clmulepi64_si128(r, k, 0x11));
}

/* The register after the first n = len rounded down to 64 bytes (len >= FOLD_MIN); the
 * register's bits start as the first bytes' (a reflected CRC register is the message's
 * first W bits to come). */
__attribute__((target("pclmul,sse4.1"))) static uint64_t update_pclmul(const crc_def_t *d, uint64_t crc,
                                                                      const unsigned char *p, size_t *len)
{
    const __m128i k512 = _mm_set_epi64x((long long)d->fold512[1], (long long)d->fold512[0]);
    const __m128i k128 = _mm_set_epi64x((long long)d->fold128[1], (long long)d->fold128[0]);
    __m128i r0 = _mm_xor_si128(_mm_loadu_si128((const __m128i *)p), _mm_set_epi64x(0, (long long)crc));
    __m128i r1 = _mm_loadu_si128((const __m128i *)(p + 16));
    __m128i r2 = _mm_loadu_si128((const __m128i *)(p + 32));
    __m128i r3 = _mm_loadu_si128((const __m128i *)(p + 48));
    size_t n = 64;
    for (; n + 64 <= *len; n += 64) {
        r0 = _mm_xor_si128(fold(r0, k512), _mm_loadu_si128((const __m128i *)(p + n)));
        r1 = _mm_xor_si128(fold(r1, k512), _mm_loadu_si128((const __m128i *)(p + n + 16)));
        r2 = _mm_xor_si128(fold(r2, k512), _mm_loadu_si128((const __m128i *)(p + n + 32)));
        r3 = _mm_xor_si128(fold(r3, k512), _mm_loadu_si128((const __m128i *)(p + n + 48)));
    }
    r1 = _mm_xor_si128(r1, fold(r0, k128));
    r2 = _mm_xor_si128(r2, fold(r1, k128));
    r3 = _mm_xor_si128(r3, fold(r2, k128));
    unsigned char rest[16];
    _mm_storeu_si128((__m128i *)rest, r3);
    *len = n;
    return update_raw(d, 0, rest, sizeof rest);   /* (R * x^W) mod P: the CRC of R */
}
#endif

/* The register runs inverted (init and xorout all ones); mask keeps a 32-bit CRC's. */
static uint64_t update(const crc_def_t *d, uint64_t crc, const unsigned char *p, size_t len)
{
    const uint64_t mask = d->width == 64 ? ~0ull : 0xffffffffull;
    crc = ~crc & mask;
#ifdef HAVE_SSE42_PATH
    if (have_pclmul && len >= FOLD_MIN) {
        size_t n = len;
        crc = update_pclmul(d, crc, p, &n);
        p += n;
        len -= n;
    }
#endif
    return ~update_raw(d, crc, p, len) & mask;
}

#ifdef HAVE_SSE42_PATH
__attribute__((target("sse4.2"))) static uint32_t crc32c_sse42(uint32_t crc, const unsigned char *p, size_t len)
{
    uint64_t c = (uint32_t)~crc;
    while (len && ((uintptr_t)p & 7)) {
        c = _mm_crc32_u8((uint32_t)c, *p++);
        len--;
    }
    while (len >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        c = _mm_crc32_u64(c, w);
        p += 8;
        len -= 8;
    }
    while (len--)
        c = _mm_crc32_u8((uint32_t)c, *p++);
    return ~(uint32_t)c;
}
#endif

static uint64_t combine(const crc_def_t *d, uint64_t crc1, uint64_t crc2, uint64_t len2)
{
    pthread_once(&tables_once, build_all);
    uint64_t p = 1ull << (d->width - 1);   /* x^0 */
    for (int k = 3; len2; len2 >>= 1, k++)  /* k = 3: len2 counts bytes, the power bits */
        if (len2 & 1)
            p = multmodp(d, d->x2n[k], p);
    return multmodp(d, p, crc1) ^ crc2;
}

uint32_t crc32_update(uint32_t crc, const void *buf, size_t len)
{
    pthread_once(&tables_once, build_all);
    return (uint32_t)update(&crc32_def, crc, buf, len);
}

uint32_t crc32c_update(uint32_t crc, const void *buf, size_t len)
{
    pthread_once(&tables_once, build_all);
#ifdef HAVE_SSE42_PATH
    if (have_sse42)
        return crc32c_sse42(crc, buf, len);
#endif
    return (uint32_t)update(&crc32c_def, crc, buf, len);
}

uint64_t crc64nvme_update(uint64_t crc, const void *buf, size_t len)
{
    pthread_once(&tables_once, build_all);
    return update(&crc64_def, crc, buf, len);
}

uint32_t crc32_combine(uint32_t crc1, uint32_t crc2, uint64_t len2)
{
    return (uint32_t)combine(&crc32_def, crc1, crc2, len2);
}

uint32_t crc32c_combine(uint32_t crc1, uint32_t crc2, uint64_t len2)
{
    return (uint32_t)combine(&crc32c_def, crc1, crc2, len2);
}

uint64_t crc64nvme_combine(uint64_t crc1, uint64_t crc2, uint64_t len2)
{
    return combine(&crc64_def, crc1, crc2, len2);
}
