/* checksum.h - the object checksum algorithms of S3's flexible checksums (CRC32, CRC32C,
 * CRC64NVME, SHA1, SHA256): one table row each (S3 name, header, digest size), a state
 * that computes any set of them in one pass over the bytes, their base64 form, and the
 * two ways S3 derives a multipart object's checksum from its parts' (composite: the
 * algorithm over the concatenated part digests; full object: CRCs combined).
 * SHA1/SHA256 come from OpenSSL (hardware-accelerated where the CPU allows), the CRCs
 * from crc.c. */
#ifndef VIRGA_CHECKSUM_H
#define VIRGA_CHECKSUM_H

#include <stddef.h>
#include <stdint.h>

/* CK_NONE is 0 so that a zeroed struct holding an algorithm means "no checksum". */
typedef enum ck_alg {
    CK_NONE = 0,
    CK_CRC32,
    CK_CRC32C,
    CK_CRC64NVME,
    CK_SHA1,
    CK_SHA256,
    CK_COUNT,
} ck_alg_t;
#define CK_FIRST CK_CRC32

#define CK_MAX_DIGEST 32             /* SHA256 */
#define CK_B64_MAX 64                /* base64 of the largest digest, "-10000", NUL */

const char *ck_name(ck_alg_t a);     /* "CRC32" ... as in x-amz-checksum-algorithm; "" for CK_NONE */
const char *ck_header(ck_alg_t a);   /* "x-amz-checksum-crc32" ... */
const char *ck_xml(ck_alg_t a);      /* "ChecksumCRC32" ... */
size_t ck_digest_len(ck_alg_t a);
int ck_is_crc(ck_alg_t a);           /* has a full-object combination */
/* By S3 name, case-insensitive ("crc32", "CRC64NVME"); CK_NONE if unknown. */
ck_alg_t ck_by_name(const char *name);
/* By header name, case-insensitive ("x-amz-checksum-crc32c"); CK_NONE if unknown. */
ck_alg_t ck_by_header(const char *header);

/* Several algorithms over the same bytes. Not thread-safe; one per stream. */
typedef struct ck_state {
    unsigned mask;                   /* 1 << ck_alg_t of each algorithm computed */
    unsigned done;                   /* finished: digest[] holds the result */
    int updated;                     /* bytes were fed: the set is fixed */
    uint32_t crc32, crc32c;
    uint64_t crc64;
    void *sha1, *sha256;             /* EVP_MD_CTX */
    unsigned char digest[CK_COUNT][CK_MAX_DIGEST];
} ck_state_t;

void ck_init(ck_state_t *s);         /* empty set */
/* Add an algorithm; only before the first update (returns -1 after it). */
int ck_add(ck_state_t *s, ck_alg_t a);
void ck_update(ck_state_t *s, const void *data, size_t len);
/* The digest of a computed algorithm (finishes it; later updates no longer count for it).
 * NULL if a is not in the set. */
const unsigned char *ck_digest(ck_state_t *s, ck_alg_t a);
/* The base64 value of a computed algorithm into out[CK_B64_MAX]; -1 if not in the set. */
int ck_value(ck_state_t *s, ck_alg_t a, char out[CK_B64_MAX]);
void ck_free(ck_state_t *s);         /* releases OpenSSL state; s may be reused after ck_init */

/* One-shot digest of a buffer. */
void ck_compute(ck_alg_t a, const void *data, size_t len, unsigned char out[CK_MAX_DIGEST]);

/* Base64 (standard alphabet, padded) of a digest into out[CK_B64_MAX]. */
void ck_b64(const unsigned char *digest, size_t len, char out[CK_B64_MAX]);
/* A base64 value of algorithm a back to its digest: -1 unless it decodes to exactly
 * ck_digest_len(a) bytes. */
int ck_parse(ck_alg_t a, const char *b64, unsigned char out[CK_MAX_DIGEST]);

/* Full-object combination (CRCs only): the digest of a||b from digest(a), digest(b) and
 * len(b). -1 for an algorithm without one (SHA). */
int ck_combine(ck_alg_t a, const unsigned char *da, const unsigned char *db, uint64_t len_b,
               unsigned char out[CK_MAX_DIGEST]);

#endif
