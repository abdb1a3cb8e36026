/* checksum.c - S3's checksum algorithms as one table, and a state computing a set of
 * them in one pass (checksum.h). */
#include "checksum.h"

#include <openssl/evp.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "crc.h"

static const struct ck_row {
    const char *name, *header, *xml;
    size_t len;
} rows[CK_COUNT] = {
    [CK_CRC32] = {"CRC32", "x-amz-checksum-crc32", "ChecksumCRC32", 4},
    [CK_CRC32C] = {"CRC32C", "x-amz-checksum-crc32c", "ChecksumCRC32C", 4},
    [CK_CRC64NVME] = {"CRC64NVME", "x-amz-checksum-crc64nvme", "ChecksumCRC64NVME", 8},
    [CK_SHA1] = {"SHA1", "x-amz-checksum-sha1", "ChecksumSHA1", 20},
    [CK_SHA256] = {"SHA256", "x-amz-checksum-sha256", "ChecksumSHA256", 32},
};

static int valid(ck_alg_t a) { return a > CK_NONE && a < CK_COUNT; }

const char *ck_name(ck_alg_t a) { return valid(a) ? rows[a].name : ""; }
const char *ck_header(ck_alg_t a) { return valid(a) ? rows[a].header : ""; }
const char *ck_xml(ck_alg_t a) { return valid(a) ? rows[a].xml : ""; }
size_t ck_digest_len(ck_alg_t a) { return valid(a) ? rows[a].len : 0; }
int ck_is_crc(ck_alg_t a) { return a == CK_CRC32 || a == CK_CRC32C || a == CK_CRC64NVME; }

ck_alg_t ck_by_name(const char *name)
{
    for (int a = CK_FIRST; name && a < CK_COUNT; a++)
        if (!strcasecmp(name, rows[a].name))
            return (ck_alg_t)a;
    return CK_NONE;
}

ck_alg_t ck_by_header(const char *header)
{
    for (int a = CK_FIRST; header && a < CK_COUNT; a++)
        if (!strcasecmp(header, rows[a].header))
            return (ck_alg_t)a;
    return CK_NONE;
}

/* ---- SHA through OpenSSL: the algorithms are fetched once (a global lock each time
 * otherwise, not something to do per request). ---- */

static EVP_MD *sha1_md, *sha256_md;
static pthread_once_t sha_once = PTHREAD_ONCE_INIT;

static void sha_fetch(void)
{
    sha1_md = EVP_MD_fetch(NULL, "SHA1", NULL);
    sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
    if (!sha1_md || !sha256_md) {
        fprintf(stderr, "virga: OpenSSL has no SHA1/SHA256\n");
        abort();
    }
}

static void *sha_new(ck_alg_t a)
{
    pthread_once(&sha_once, sha_fetch);
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    if (!c || EVP_DigestInit_ex(c, a == CK_SHA1 ? sha1_md : sha256_md, NULL) != 1)
        abort();
    return c;
}

static void put_be(unsigned char *out, uint64_t v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        out[i] = (unsigned char)(v >> (8 * (n - 1 - i)));
}

static uint64_t get_be(const unsigned char *in, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v = v << 8 | in[i];
    return v;
}

void ck_init(ck_state_t *s)
{
    memset(s, 0, sizeof *s);
}

int ck_add(ck_state_t *s, ck_alg_t a)
{
    if (!valid(a))
        return -1;
    if (s->mask & (1u << a))
        return 0;
    if (s->updated)
        return -1;
    s->mask |= 1u << a;
    if (a == CK_SHA1)
        s->sha1 = sha_new(a);
    else if (a == CK_SHA256)
        s->sha256 = sha_new(a);
    return 0;
}

void ck_update(ck_state_t *s, const void *data, size_t len)
{
    unsigned live = s->mask & ~s->done;
    s->updated = 1;
    if (!len || !live)
        return;
    if (live & 1u << CK_CRC32)
        s->crc32 = crc32_update(s->crc32, data, len);
    if (live & 1u << CK_CRC32C)
        s->crc32c = crc32c_update(s->crc32c, data, len);
    if (live & 1u << CK_CRC64NVME)
        s->crc64 = crc64nvme_update(s->crc64, data, len);
    if (live & 1u << CK_SHA1)
        EVP_DigestUpdate(s->sha1, data, len);
    if (live & 1u << CK_SHA256)
        EVP_DigestUpdate(s->sha256, data, len);
}

const unsigned char *ck_digest(ck_state_t *s, ck_alg_t a)
{
    if (!valid(a) || !(s->mask & 1u << a))
        return NULL;
    if (s->done & 1u << a)
        return s->digest[a];
    unsigned char *d = s->digest[a];
    unsigned int n = 0;
    switch (a) {
    case CK_CRC32: put_be(d, s->crc32, 4); break;
    case CK_CRC32C: put_be(d, s->crc32c, 4); break;
    case CK_CRC64NVME: put_be(d, s->crc64, 8); break;
    case CK_SHA1: EVP_DigestFinal_ex(s->sha1, d, &n); break;
    case CK_SHA256: EVP_DigestFinal_ex(s->sha256, d, &n); break;
    default: return NULL;
    }
    s->done |= 1u << a;
    return d;
}

int ck_value(ck_state_t *s, ck_alg_t a, char out[CK_B64_MAX])
{
    const unsigned char *d = ck_digest(s, a);
    if (!d)
        return -1;
    ck_b64(d, ck_digest_len(a), out);
    return 0;
}

void ck_free(ck_state_t *s)
{
    EVP_MD_CTX_free(s->sha1);
    EVP_MD_CTX_free(s->sha256);
    s->sha1 = s->sha256 = NULL;
}

void ck_compute(ck_alg_t a, const void *data, size_t len, unsigned char out[CK_MAX_DIGEST])
{
    ck_state_t s;
    ck_init(&s);
    ck_add(&s, a);
    ck_update(&s, data, len);
    const unsigned char *d = ck_digest(&s, a);
    if (d)
        memcpy(out, d, ck_digest_len(a));
    ck_free(&s);
}

void ck_b64(const unsigned char *digest, size_t len, char out[CK_B64_MAX])
{
    if (len > CK_MAX_DIGEST)
        len = CK_MAX_DIGEST;
    sodium_bin2base64(out, CK_B64_MAX, digest, len, sodium_base64_VARIANT_ORIGINAL);
}

int ck_parse(ck_alg_t a, const char *b64, unsigned char out[CK_MAX_DIGEST])
{
    size_t want = ck_digest_len(a), n = 0, slen = b64 ? strlen(b64) : 0;
    if (!want || slen == 0 || slen >= CK_B64_MAX)
        return -1;
    unsigned char buf[CK_MAX_DIGEST + 3];
    if (sodium_base642bin(buf, sizeof buf, b64, slen, NULL, &n, NULL, sodium_base64_VARIANT_ORIGINAL) != 0 ||
        n != want)
        return -1;
    memcpy(out, buf, n);
    return 0;
}

int ck_combine(ck_alg_t a, const unsigned char *da, const unsigned char *db, uint64_t len_b,
               unsigned char out[CK_MAX_DIGEST])
{
    size_t n = ck_digest_len(a);
    uint64_t x = get_be(da, n), y = get_be(db, n), r;
    switch (a) {
    case CK_CRC32: r = crc32_combine((uint32_t)x, (uint32_t)y, len_b); break;
    case CK_CRC32C: r = crc32c_combine((uint32_t)x, (uint32_t)y, len_b); break;
    case CK_CRC64NVME: r = crc64nvme_combine(x, y, len_b); break;
    default: return -1;
    }
    put_be(out, r, n);
    return 0;
}
