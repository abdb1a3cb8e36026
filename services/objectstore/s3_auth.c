/* s3_auth.c - SigV4 for S3: the Authorization header or a presigned URL (whose payload
 * is UNSIGNED-PAYLOAD), the x-amz-content-sha256 payload declaration (a hex SHA-256
 * checked against the body at its end, UNSIGNED-PAYLOAD, or an aws-chunked stream:
 * signed chunks, signed chunks with a signed trailer, or plain chunks with a trailer),
 * the declared payload length, legacy SigV2 presigned URLs, and S3's names for the
 * failures. Requests with no signature at all are anonymous: only public-read resources
 * answer them. */
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
#include "s3_checksum.h"
#include "s3_chunked.h"
#include "strbuf.h"

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

/* The key for a's scope: from the cache; else, the first time, asked of identity without
 * holding this thread (r->waiting); after the wait, identity's answer. */
static int signing_key(s3_req_t *r, const sigv4_auth_t *a, uint8_t key[SIGV4_KEY_LEN], json_t **who, verr_t *e)
{
    if (r->wait)   /* woken: the callback has run (it wakes only after it wrote) */
        return s3_wait_take(r, key, who, e);
    int hit = keycache_lookup(r->os->keys, a, key, who, e);
    if (hit)
        return hit > 0 ? 0 : -1;
    s3_wait_t *w = s3_wait_start(r);
    if (keycache_fetch_async(r->os->keys, r->os->svc->bus, a, r->os->call_timeout_ms, s3_wait_key_fetched, w, e) < 0)
        s3_wait_not_sent(w, e);
    return verr_set(e, 503, "ServiceUnavailable", "waiting for a signing key");
}

/* A SigV2 signature of string_to_sign by akid's secret, which only identity holds:
 * asked without holding this thread; identity's reply is {signature, and who signed}. */
static int identity_sign_v2(s3_req_t *r, const char *akid, const char *string_to_sign, json_t **reply, verr_t *e)
{
    json_t *body = json_pack("{s:s, s:s}", "access_key_id", akid, "string_to_sign", string_to_sign);
    return s3_ask(r, "identity", "identity.sign_v2", body, reply, e);
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
    int rc = identity_sign_v2(r, akid, b.s, &reply, e);
    free(b.s);
    if (rc < 0)
        return r->waiting ? -1 : s3_auth_error(e, STAGE_KEY, 1);
    const char *want = json_str(reply, "signature", "");
    if (strlen(want) != strlen(sig) || sodium_memcmp(want, sig, strlen(sig)) != 0) {
        json_decref(reply);
        return verr_set(e, 403, "SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided. Check your key and signing method.");
    }
    json_object_del(reply, "signature");
    r->caller = reply;
    return 0;
}

/* The payload declarations of x-amz-content-sha256, one row each. */
typedef struct payload_kind {
    const char *name;
    int chunked;              /* aws-chunked body */
    int signed_chunks;        /* every chunk (and the trailer) signed */
    int trailer;              /* may end with a trailer (x-amz-trailer) */
    int supported;
} payload_kind_t;

static const payload_kind_t payload_kinds[] = {
    /* name                                               chunked signed trailer supported */
    {"UNSIGNED-PAYLOAD",                                  0,      0,     0,      1},
    {"STREAMING-AWS4-HMAC-SHA256-PAYLOAD",                1,      1,     0,      1},
    {"STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER",        1,      1,     1,      1},
    {"STREAMING-UNSIGNED-PAYLOAD-TRAILER",                1,      0,     1,      1},
    {"STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD",          1,      1,     0,      0},   /* SigV4a */
    {"STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD-TRAILER",  1,      1,     1,      0},
};
static const payload_kind_t sha_payload = {"<sha256 hex>", 0, 0, 0, 1};

static const payload_kind_t *payload_kind(const char *v)
{
    for (size_t i = 0; i < ARRAY_LEN(payload_kinds); i++)
        if (!strcmp(v, payload_kinds[i].name))
            return &payload_kinds[i];
    return hex_lower_exact(v, 64) ? &sha_payload : NULL;
}

/* What a header-signed request leaves for the chunk decoder. */
typedef struct signing {
    int have;
    uint8_t key[SIGV4_KEY_LEN];
    char amz_date[17], scope[160], seed[65];
} signing_t;

/* Who sent it: sets r->caller (NULL for anonymous), *kind for header-signed requests. */
static int authenticate(s3_req_t *r, const payload_kind_t **kind, signing_t *sg, verr_t *e)
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
    const payload_kind_t *k = payload_kind(payload);
    if (!k)
        return verr_set(e, 400, "InvalidArgument", "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, a SHA-256 hex "
                        "digest or one of the STREAMING-* payload types");
    if (!k->supported)
        return verr_set(e, 501, "NotImplemented", "%s (SigV4a) is not implemented; sign with AWS4-HMAC-SHA256.",
                        payload);

    uint8_t key[SIGV4_KEY_LEN];
    json_t *who = NULL;
    if (signing_key(r, &a, key, &who, e) < 0)
        return r->waiting ? -1 : s3_auth_error(e, STAGE_KEY, presigned);
    http_sigv4_t hs;
    http_sigv4_request(h, payload, 1, &hs);
    if (sigv4_verify(&hs.req, &a, key, e) < 0) {
        sodium_memzero(key, sizeof key);
        json_decref(who);
        return s3_auth_error(e, STAGE_VERIFY, presigned);
    }
    if (k->signed_chunks) {
        sg->have = 1;
        memcpy(sg->key, key, sizeof key);
        snprintf(sg->amz_date, sizeof sg->amz_date, "%s", a.amz_date);
        snprintf(sg->scope, sizeof sg->scope, "%s/%s/s3/aws4_request", a.date, a.region);
        snprintf(sg->seed, sizeof sg->seed, "%s", a.signature);
    } else if (k == &sha_payload) {
        memcpy(r->want_sha, payload, 65);
    }
    sodium_memzero(key, sizeof key);
    r->caller = who;
    *kind = k;
    return 0;
}

static int missing_length(verr_t *e)
{
    return verr_set(e, 411, "MissingContentLength", "You must provide the Content-Length HTTP header.");
}

/* A decimal byte count as HTTP and S3 write them: digits only, no sign, no overflow. */
static int64_t parse_length(const char *s)
{
    if (!s || !*s || strlen(s) > 18 || strspn(s, "0123456789") != strlen(s))
        return -1;
    return (int64_t)strtoll(s, NULL, 10);
}

/* What the body will be: its declared length, the aws-chunked decoder, checksum claims. */
static int payload_begin(s3_req_t *r, const payload_kind_t *k, signing_t *sg, verr_t *e)
{
    const char *tr = s3_header(r, "x-amz-trailer");
    ck_alg_t trailer = CK_NONE;
    if (tr) {
        char name[64];
        size_t n = strlen(tr);
        while (n && tr[n - 1] == ' ')
            n--;
        snprintf(name, sizeof name, "%.*s", (int)(n < sizeof name ? n : sizeof name - 1), tr + strspn(tr, " "));
        trailer = ck_by_header(name);
        if (trailer == CK_NONE)
            return verr_set(e, 400, "InvalidRequest", "The value specified in the x-amz-trailer header is not supported");
        if (!k || !k->trailer)
            return verr_set(e, 400, "InvalidRequest", "x-amz-trailer needs x-amz-content-sha256 "
                            "STREAMING-UNSIGNED-PAYLOAD-TRAILER or STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER");
    }
    if (s3_checksum_begin(r, trailer, e) < 0)
        return -1;
    if (!k || !k->chunked) {
        const char *cl = s3_header(r, "Content-Length");
        r->payload_len = cl ? parse_length(cl) : -1;
        return 0;
    }
    const char *dl = s3_header(r, "x-amz-decoded-content-length");
    if ((r->payload_len = parse_length(dl)) < 0)
        return missing_length(e);   /* absent, negative or not a number: as S3 answers */
    char lname[64] = "";
    if (trailer != CK_NONE)
        snprintf(lname, sizeof lname, "%s", ck_header(trailer));
    s3_chunked_opts_t o = {.key = sg->have ? sg->key : NULL, .amz_date = sg->amz_date, .scope = sg->scope,
                           .seed_signature = sg->seed, .trailer = lname[0] ? lname : NULL,
                           .decoded_length = r->payload_len};
    r->chunk = s3_chunked_new(&o);
    r->chunked = 1;
    return 0;
}

int s3_authenticate(s3_req_t *r, verr_t *e)
{
    const payload_kind_t *k = NULL;
    signing_t sg = {0};
    r->payload_len = -1;
    int rc = authenticate(r, &k, &sg, e);
    if (rc == 0)
        rc = payload_begin(r, k, &sg, e);
    sodium_memzero(&sg, sizeof sg);
    return rc;
}

int s3_payload_size_check(s3_req_t *r, verr_t *e)
{
    if (r->payload_len < 0 && !s3_header(r, "Transfer-Encoding"))
        return missing_length(e);
    if (r->payload_len > 0 && (uint64_t)r->payload_len > r->os->max_put)
        return verr_set(e, 400, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed object size.");
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
    s3_checksum_data(f->r, d, n);
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
    if (r->chunked) {
        if (s3_chunked_finish(r->chunk, e) < 0 || s3_checksum_trailer(r, s3_chunked_trailer(r->chunk), e) < 0)
            return -1;
    } else if (r->want_sha[0]) {
        unsigned char d[32];
        char hex[65];
        crypto_hash_sha256_final(&r->sha, d);
        sodium_bin2hex(hex, sizeof hex, d, sizeof d);
        if (strcmp(hex, r->want_sha))
            return verr_set(e, 400, "XAmzContentSHA256Mismatch",
                            "The provided 'x-amz-content-sha256' header does not match what was computed.");
    }
    return s3_checksum_finish_small(r, e);
}
