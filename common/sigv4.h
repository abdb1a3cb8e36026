/* sigv4.h - AWS Signature Version 4: canonical request, string to sign, signing key
 * derivation, and verification of both the Authorization header form and the presigned
 * query form (X-Amz-Algorithm, X-Amz-Credential, X-Amz-Date, X-Amz-Expires,
 * X-Amz-SignedHeaders, X-Amz-Signature).
 *
 * The verifier never sees a secret: it takes the 32-byte signing key for
 * (date, region, service), which identity derives and the caller caches. */
#ifndef VIRGA_SIGV4_H
#define VIRGA_SIGV4_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "err.h"

#define SIGV4_KEY_LEN 32
#define SIGV4_MAX_HEADERS 64

typedef struct sigv4_header {
    const char *name;   /* as received; compared case-insensitively */
    const char *value;
} sigv4_header_t;

/* What a request looks like to the signer. query is the raw query string (without '?'),
 * possibly empty; payload_hash is the lowercase hex SHA-256 of the body, or the literal
 * "UNSIGNED-PAYLOAD" / "STREAMING-AWS4-HMAC-SHA256-PAYLOAD" when the client said so. */
typedef struct sigv4_request {
    const char *method;
    const char *path;            /* raw (already URI-encoded) path as sent */
    const char *query;
    const sigv4_header_t *headers;
    size_t nheaders;
    const char *payload_hash;
    int s3;                      /* S3 does not normalise or double-encode the path */
} sigv4_request_t;

/* The parsed credential and signature of a request. */
typedef struct sigv4_auth {
    char access_key[128];
    char date[9];                /* YYYYMMDD of the credential scope */
    char region[64];
    char service[32];
    char amz_date[17];           /* YYYYMMDDTHHMMSSZ */
    char signed_headers[1024];   /* "host;x-amz-date" */
    char signature[65];          /* lowercase hex */
    long expires;                /* presigned only: X-Amz-Expires seconds, else 0 */
    int presigned;
} sigv4_auth_t;

/* Lowercase hex SHA-256 of data (out: 65 bytes). */
void sigv4_sha256_hex(const void *data, size_t len, char out[65]);
/* HMAC-SHA256 with a key of any length. */
void sigv4_hmac(const uint8_t *key, size_t keylen, const void *msg, size_t len, uint8_t out[32]);
/* kSigning = HMAC(HMAC(HMAC(HMAC("AWS4"+secret, date), region), service), "aws4_request") */
void sigv4_signing_key(const char *secret, const char *date, const char *region,
                       const char *service, uint8_t out[SIGV4_KEY_LEN]);

/* Build the canonical request (caller frees). For presigned requests X-Amz-Signature is
 * left out of the canonical query. Returns NULL with e set when the request cannot be
 * canonicalised (a signed header missing, bad percent-encoding). */
char *sigv4_canonical_request(const sigv4_request_t *r, const char *signed_headers, verr_t *e);
/* "AWS4-HMAC-SHA256\n<amz_date>\n<date>/<region>/<service>/aws4_request\n<hex(sha256(creq))>" */
char *sigv4_string_to_sign(const char *amz_date, const char *date, const char *region,
                           const char *service, const char *canonical_request);
/* hex(HMAC(key, string_to_sign)) into out[65]. */
void sigv4_sign(const uint8_t key[SIGV4_KEY_LEN], const char *string_to_sign, char out[65]);

/* Parse "AWS4-HMAC-SHA256 Credential=AK/20150830/us-east-1/iam/aws4_request,
 * SignedHeaders=..., Signature=..." plus the X-Amz-Date (or Date) header. Errors: code
 * "IncompleteSignature" / "AuthFailure" style, http 400/403. */
int sigv4_parse_header(const char *authorization, const char *amz_date, sigv4_auth_t *out, verr_t *e);
/* Parse the presigned query parameters out of a raw query string. */
int sigv4_parse_query(const char *query, sigv4_auth_t *out, verr_t *e);

/* Check the request time against now: |now - amz_date| <= skew seconds (header form), or
 * for presigned: amz_date - skew <= now <= amz_date + expires (expires <= 604800).
 * Error code "RequestExpired" (EC2) — S3 callers map it to their own. */
int sigv4_check_time(const sigv4_auth_t *a, time_t now, long skew, verr_t *e);

/* Full verification with a derived key: canonicalise, sign, compare in constant time.
 * Error code "SignatureDoesNotMatch", http 403. */
int sigv4_verify(const sigv4_request_t *r, const sigv4_auth_t *a,
                 const uint8_t key[SIGV4_KEY_LEN], verr_t *e);

/* URI-encode per SigV4 rules (unreserved A-Z a-z 0-9 - _ . ~ kept; '/' kept when
 * keep_slash). Caller frees. */
char *sigv4_uri_encode(const char *s, size_t len, int keep_slash);

#endif
