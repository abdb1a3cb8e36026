/* s3_auth.c - SigV4 for S3: the Authorization header or a presigned URL (whose payload
 * is UNSIGNED-PAYLOAD), the x-amz-content-sha256 payload declaration (a hex SHA-256
 * checked against the body at its end, UNSIGNED-PAYLOAD, or the aws-chunked stream with
 * per-chunk signatures), legacy SigV2 presigned URLs, and S3's names for the failures. Requests with no signature at
 * all are anonymous: only public-read resources answer them. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <string.h>
#include <time.h>

#include "jsonutil.h"
#include "log.h"
#include "objectstore.h"
#include "http_sigv4.h"
#include "s3_chunked.h"
#include "strbuf.h"

#define STREAMING "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"

/* Where a SigV4 check failed: S3 names the failures by it, where EC2 says AuthFailure. */
enum auth_stage { STAGE_HEADER, STAGE_QUERY, STAGE_TIME, STAGE_KEY, STAGE_VERIFY };

static int s3_auth_error(verr_t *e, enum auth_stage stage, int presigned)
{
    if (!strcmp(e->code, "RequestExpired")) {
        if (presigned)
            return verr_set(e, 403, "AccessDenied", "Request has expired");
        return verr_set(e, 403, "RequestTimeTooSkewed", "The difference between the request time and the current time is too large.");
    }
    if (e->http_status >= 500 || !strcmp(e->code, "ServiceUnavailable") || !strcmp(e->code, "RequestTimeout"))
        return -1;   /* identity did not answer: not the client's fault */
    switch (stage) {
    case STAGE_HEADER:
        return verr_recode(e, 400, "AuthorizationHeaderMalformed");
    case STAGE_QUERY:
        return verr_recode(e, 400, "AuthorizationQueryParametersError");
    case STAGE_TIME:
        return presigned ? verr_recode(e, 400, "AuthorizationQueryParametersError") : verr_recode(e, 403, "AccessDenied");
    case STAGE_KEY:
        return verr_set(e, 403, "InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records.");
    case STAGE_VERIFY:
        if (!strcmp(e->code, "SignatureDoesNotMatch"))
            return -1;
        return verr_recode(e, 403, "SignatureDoesNotMatch");
    }
    return -1;
}

static int is_hex64(const char *s)
{
    if (!s || strlen(s) != 64)
        return 0;
    for (; *s; s++)
        if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
            return 0;
    return 1;
}

/* Sub-resources that are part of a SigV2 canonical resource (as botocore signs). */
static const char *v2_subresources[] = {
    "acl", "delete", "lifecycle", "location", "logging", "notification", "partNumber", "policy",
    "requestPayment", "response-cache-control", "response-content-disposition", "response-content-encoding",
    "response-content-language", "response-content-type", "response-expires", "tagging", "torrent",
    "uploadId", "uploads", "versionId", "versioning", "versions", "website", NULL,
};

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Legacy presigned URLs (AWSAccessKeyId, Expires, Signature: SigV2, HMAC-SHA1), which
 * boto3 still makes for S3 by default. The signature needs the raw secret, so identity
 * computes it (identity.sign_v2) and only the result comes back. */
static int authenticate_v2(s3_req_t *r, verr_t *e)
{
    const char *akid = s3_query(r, "AWSAccessKeyId"), *sig = s3_query(r, "Signature");
    const char *expires = s3_query(r, "Expires");
    char *end;
    long long exp = strtoll(expires, &end, 10);
    if (*end || !*expires)
        return verr_set(e, 403, "AccessDenied", "Expires must be a number of seconds since the epoch");
    if (exp < (long long)time(NULL))
        return verr_set(e, 403, "AccessDenied", "Request has expired");
    strbuf_t b = {0};
    const char *md5 = s3_header(r, "Content-MD5"), *ct = s3_header(r, "Content-Type");
    strbuf_puts(&b, r->http->method);
    strbuf_putc(&b, '\n');
    strbuf_puts(&b, md5 ? md5 : "");
    strbuf_putc(&b, '\n');
    strbuf_puts(&b, ct ? ct : "");
    strbuf_putc(&b, '\n');
    strbuf_puts(&b, expires);
    strbuf_putc(&b, '\n');
    const char *names[SIGV4_MAX_HEADERS], *values[SIGV4_MAX_HEADERS];
    size_t n = http_headers(r->http, names, values, SIGV4_MAX_HEADERS);
    char *amz[SIGV4_MAX_HEADERS];
    size_t na = 0;
    for (size_t i = 0; i < n; i++)
        if (!strncasecmp(names[i], "x-amz-", 6)) {
            amz[na] = xasprintf("%s:%s", names[i], values[i]);
            for (char *c = amz[na]; *c && *c != ':'; c++)
                *c = (char)tolower((unsigned char)*c);
            na++;
        }
    qsort(amz, na, sizeof *amz, cmp_str);
    for (size_t i = 0; i < na; i++) {
        strbuf_puts(&b, amz[i]);
        strbuf_putc(&b, '\n');
        free(amz[i]);
    }
    if (r->os->domain[0] && r->bucket[0] && strncmp(r->http->path + 1, r->bucket, strlen(r->bucket))) {
        strbuf_putc(&b, '/');   /* virtual-host style: the bucket is part of the resource */
        strbuf_puts(&b, r->bucket);
    }
    strbuf_puts(&b, r->http->path);
    const char *sub[32];
    size_t ns = 0;
    for (int i = 0; v2_subresources[i] && ns < 32; i++)
        if (s3_query(r, v2_subresources[i]))
            sub[ns++] = v2_subresources[i];
    for (size_t i = 0; i < ns; i++) {   /* v2_subresources is already in byte order */
        const char *v = s3_query(r, sub[i]);
        strbuf_putc(&b, i ? '&' : '?');
        strbuf_puts(&b, sub[i]);
        if (*v) {
            strbuf_putc(&b, '=');
            strbuf_puts(&b, v);
        }
    }
    json_t *reply = NULL;
    json_t *body = json_pack("{s:s, s:s}", "access_key_id", akid, "string_to_sign", b.s);
    free(b.s);
    if (bus_call(r->os->svc->bus, "identity", "identity.sign_v2", body, NULL, r->os->call_timeout_ms, &reply, e) < 0)
        return s3_auth_error(e, STAGE_KEY, 1);
    const char *want = json_str(reply, "signature", "");
    if (strlen(want) != strlen(sig) || sodium_memcmp(want, sig, strlen(sig)) != 0) {
        json_decref(reply);
        return verr_set(e, 403, "SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided. Check your key and signing method.");
    }
    json_object_del(reply, "signature");
    r->caller = reply;
    return 0;
}

int s3_authenticate(s3_req_t *r, verr_t *e)
{
    http_req_t *h = r->http;
    sigv4_auth_t a;
    const char *authz = http_header(h, "Authorization");
    const char *payload = http_header(h, "x-amz-content-sha256");
    int presigned = 0;
    if (authz) {
        const char *date = http_header(h, "X-Amz-Date");
        if (sigv4_parse_header(authz, date ? date : http_header(h, "Date"), &a, e) < 0)
            return s3_auth_error(e, STAGE_HEADER, 0);
        if (!payload)
            return verr_set(e, 400, "InvalidRequest", "Missing required header for this request: x-amz-content-sha256");
    } else if (s3_query(r, "X-Virga-Grant")) {
        return s3_grant_authenticate(r, s3_query(r, "X-Virga-Grant"), e);
    } else if (s3_query(r, "AWSAccessKeyId") && s3_query(r, "Signature") && s3_query(r, "Expires")) {
        return authenticate_v2(r, e);
    } else if (s3_query(r, "X-Amz-Algorithm")) {
        if (sigv4_parse_query(h->query, &a, e) < 0)
            return s3_auth_error(e, STAGE_QUERY, 1);
        presigned = 1;
        payload = "UNSIGNED-PAYLOAD";
    } else {
        return 0;   /* anonymous */
    }
    if (strcmp(a.service, "s3"))
        return verr_set(e, 400, "AuthorizationHeaderMalformed", "The authorization header is malformed; the service '%s' is wrong; expecting 's3'", a.service);
    if (strcmp(a.region, r->os->region))
        return verr_set(e, 400, "AuthorizationHeaderMalformed",
                        "The authorization header is malformed; the region '%s' is wrong; expecting '%s'", a.region, r->os->region);
    if (sigv4_check_time(&a, time(NULL), 900, e) < 0)
        return s3_auth_error(e, STAGE_TIME, presigned);
    int streaming = !strcmp(payload, STREAMING);
    if (!streaming && strcmp(payload, "UNSIGNED-PAYLOAD") && !is_hex64(payload))
        return verr_set(e, 400, "InvalidArgument", "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, " STREAMING " or a SHA-256 hex digest");

    uint8_t key[SIGV4_KEY_LEN];
    json_t *who = NULL;
    if (keycache_fetch(r->os->keys, r->os->svc->bus, &a, r->os->call_timeout_ms, key, &who, e) < 0)
        return s3_auth_error(e, STAGE_KEY, presigned);
    http_sigv4_t hs;
    http_sigv4_request(h, payload, 1, &hs);
    if (sigv4_verify(&hs.req, &a, key, e) < 0) {
        sodium_memzero(key, sizeof key);
        json_decref(who);
        return s3_auth_error(e, STAGE_VERIFY, presigned);
    }
    if (streaming) {
        char scope[160];
        snprintf(scope, sizeof scope, "%s/%s/s3/aws4_request", a.date, a.region);
        r->chunk = s3_chunked_new(key, a.amz_date, scope, a.signature);
        r->chunked = 1;
    } else if (is_hex64(payload)) {
        memcpy(r->want_sha, payload, 65);
    }
    sodium_memzero(key, sizeof key);
    r->caller = who;
    return 0;
}

struct feed {
    s3_req_t *r;
    int (*out)(s3_req_t *r, const char *d, size_t n, verr_t *e);
};

static int to_op(void *arg, const char *d, size_t n, verr_t *e)
{
    struct feed *f = arg;
    f->r->received += n;
    return f->out ? f->out(f->r, d, n, e) : 0;
}

int s3_payload(s3_req_t *r, const char *buf, size_t len,
               int (*out)(s3_req_t *r, const char *d, size_t n, verr_t *e), verr_t *e)
{
    struct feed f = {r, out};
    if (r->chunked)
        return s3_chunked_feed(r->chunk, buf, len, to_op, &f, e);
    if (r->want_sha[0])
        crypto_hash_sha256_update(&r->sha, (const unsigned char *)buf, len);
    return to_op(&f, buf, len, e);
}

int s3_payload_finish(s3_req_t *r, verr_t *e)
{
    if (r->chunked)
        return s3_chunked_finish(r->chunk, e);
    if (!r->want_sha[0])
        return 0;
    unsigned char d[32];
    char hex[65];
    crypto_hash_sha256_final(&r->sha, d);
    sodium_bin2hex(hex, sizeof hex, d, sizeof d);
    if (strcmp(hex, r->want_sha))
        return verr_set(e, 400, "XAmzContentSHA256Mismatch",
                        "The provided 'x-amz-content-sha256' header does not match what was computed.");
    return 0;
}
