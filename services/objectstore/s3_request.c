/* s3_request.c - one S3 request from headers to answer: addressing (path-style or
 * virtual-host), the operations table, SigV4, bucket lookup and access control
 * (s3_access.c), then
 * the body (streamed into the backend for PutObject/UploadPart, buffered for the small
 * XML documents other operations take) and the operation's answer. */
#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "caller.h"
#include "jsonutil.h"
#include "log.h"
#include "objectstore.h"
#include "s3_checksum.h"
#include "s3_chunked.h"
#include "strbuf.h"
#include "utf8.h"

#define G S3F_GRANTS
#define T S3F_TAGGING
#define V S3F_VERSION_ID
#define C S3F_COPY_IF
#define P (S3F_PART_NUMBER | S3F_RESPONSE)
static const s3_op_t ops[] = {
    /* name                          method    lvl sub-resource         header               body         write features   begin                 data          run */
    {"ListBuckets",                  "GET",    0, NULL,                 NULL,                BODY_NONE,   0, 0,         NULL,                 NULL,         s3_list_buckets},
    {"GetBucketLocation",            "GET",    1, "location",           NULL,                BODY_NONE,   0, 0,         NULL,                 NULL,         s3_get_bucket_location},
    {"GetBucketAcl",                 "GET",    1, "acl",                NULL,                BODY_NONE,   0, 0,         NULL,                 NULL,         s3_get_bucket_acl},
    {"PutBucketAcl",                 "PUT",    1, "acl",                NULL,                BODY_SMALL,  1, G,         NULL,                 NULL,         s3_put_bucket_acl},
    {"GetBucketPolicy",              "GET",    1, "policy",             NULL,                BODY_NONE,   0, 0,         NULL,                 NULL,         s3_get_bucket_policy},
    {"PutBucketPolicy",              "PUT",    1, "policy",             NULL,                BODY_SMALL,  1, 0,         NULL,                 NULL,         s3_put_bucket_policy},
    {"DeleteBucketPolicy",           "DELETE", 1, "policy",             NULL,                BODY_NONE,   1, 0,         NULL,                 NULL,         s3_delete_bucket_policy},
    {"GetBucketPolicyStatus",        "GET",    1, "policyStatus",       NULL,                BODY_NONE,   0, 0,         NULL,                 NULL,         s3_get_bucket_policy_status},
    {"GetBucketOwnershipControls",   "GET",    1, "ownershipControls",  NULL,                BODY_NONE,   0, 0,         NULL,                 NULL,         s3_get_ownership},
    {"PutBucketOwnershipControls",   "PUT",    1, "ownershipControls",  NULL,                BODY_SMALL,  1, 0,         NULL,                 NULL,         s3_put_ownership},
    {"DeleteBucketOwnershipControls","DELETE", 1, "ownershipControls",  NULL,                BODY_NONE,   1, 0,         NULL,                 NULL,         s3_delete_ownership},
    {"GetPublicAccessBlock",         "GET",    1, "publicAccessBlock",  NULL,                BODY_NONE,   0, 0,         NULL,                 NULL,         s3_get_public_access_block},
    {"PutPublicAccessBlock",         "PUT",    1, "publicAccessBlock",  NULL,                BODY_SMALL,  1, 0,         NULL,                 NULL,         s3_put_public_access_block},
    {"DeletePublicAccessBlock",      "DELETE", 1, "publicAccessBlock",  NULL,                BODY_NONE,   1, 0,         NULL,                 NULL,         s3_delete_public_access_block},
    {"GetBucketCors",                "GET",    1, "cors",               NULL,                BODY_NONE,   0, 0,         NULL,                 NULL,         s3_get_bucket_cors},
    {"PutBucketCors",                "PUT",    1, "cors",               NULL,                BODY_SMALL,  1, 0,         NULL,                 NULL,         s3_put_bucket_cors},
    {"DeleteBucketCors",             "DELETE", 1, "cors",               NULL,                BODY_NONE,   1, 0,         NULL,                 NULL,         s3_delete_bucket_cors},
    {"GetBucketTagging",             "GET",    1, "tagging",            NULL,                BODY_NONE,   0, 0,         NULL,                 NULL,         s3_get_bucket_tagging},
    {"PutBucketTagging",             "PUT",    1, "tagging",            NULL,                BODY_SMALL,  1, 0,         NULL,                 NULL,         s3_put_bucket_tagging},
    {"DeleteBucketTagging",          "DELETE", 1, "tagging",            NULL,                BODY_NONE,   1, 0,         NULL,                 NULL,         s3_delete_bucket_tagging},
    {"GetBucketLifecycleConfiguration","GET",  1, "lifecycle",          NULL,                BODY_NONE,   0, 0,         NULL,                 NULL,         s3_get_bucket_lifecycle},
    {"PutBucketLifecycleConfiguration","PUT",  1, "lifecycle",          NULL,                BODY_SMALL,  1, 0,         NULL,                 NULL,         s3_put_bucket_lifecycle},
    {"DeleteBucketLifecycle",        "DELETE", 1, "lifecycle",          NULL,                BODY_NONE,   1, 0,         NULL,                 NULL,         s3_delete_bucket_lifecycle},
    {"GetBucketVersioning",          "GET",    1, "versioning",         NULL,                BODY_NONE,   0, 0,         NULL,                 NULL,         s3_get_bucket_versioning},
    {"PutBucketVersioning",          "PUT",    1, "versioning",         NULL,                BODY_SMALL,  1, 0,         NULL,                 NULL,         s3_put_bucket_versioning},
    {"ListObjectVersions",           "GET",    1, "versions",           NULL,                BODY_NONE,   0, 0,         NULL,                 NULL,         s3_list_object_versions},
    {"ListMultipartUploads",         "GET",    1, "uploads",            NULL,                BODY_NONE,   0, 0,         NULL,                 NULL,         s3_list_multipart_uploads},
    {"ListObjectsV2",                "GET",    1, "list-type",          NULL,                BODY_NONE,   0, 0,         NULL,                 NULL,         s3_list_objects_v2},
    {"ListObjects",                  "GET",    1, NULL,                 NULL,                BODY_NONE,   0, 0,         NULL,                 NULL,         s3_list_objects},
    {"CreateBucket",                 "PUT",    1, NULL,                 NULL,                BODY_SMALL,  1, G,         NULL,                 NULL,         s3_create_bucket},
    {"HeadBucket",                   "HEAD",   1, NULL,                 NULL,                BODY_NONE,   0, 0,         NULL,                 NULL,         s3_head_bucket},
    {"DeleteBucket",                 "DELETE", 1, NULL,                 NULL,                BODY_NONE,   1, 0,         NULL,                 NULL,         s3_delete_bucket},
    {"DeleteObjects",                "POST",   1, "delete",             NULL,                BODY_SMALL,  1, 0,         NULL,                 NULL,         s3_delete_objects},
    {"OptionsBucket",                "OPTIONS",1, NULL,                 NULL,                BODY_NONE,   0, 0,         NULL,                 NULL,         s3_cors_preflight},
    {"GetObjectAcl",                 "GET",    2, "acl",                NULL,                BODY_NONE,   0, V,         NULL,                 NULL,         s3_get_object_acl},
    {"PutObjectAcl",                 "PUT",    2, "acl",                NULL,                BODY_SMALL,  1, V | G,     NULL,                 NULL,         s3_put_object_acl},
    {"GetObjectTagging",             "GET",    2, "tagging",            NULL,                BODY_NONE,   0, V,         NULL,                 NULL,         s3_get_object_tagging},
    {"PutObjectTagging",             "PUT",    2, "tagging",            NULL,                BODY_SMALL,  1, V,         NULL,                 NULL,         s3_put_object_tagging},
    {"DeleteObjectTagging",          "DELETE", 2, "tagging",            NULL,                BODY_NONE,   1, V,         NULL,                 NULL,         s3_delete_object_tagging},
    {"UploadPartCopy",               "PUT",    2, "uploadId",           "x-amz-copy-source", BODY_NONE,   1, C,         NULL,                 NULL,         s3_upload_part_copy},
    {"UploadPart",                   "PUT",    2, "uploadId",           NULL,                BODY_STREAM, 1, 0,         s3_upload_part_begin, s3_put_data,  s3_upload_part},
    {"CopyObject",                   "PUT",    2, NULL,                 "x-amz-copy-source", BODY_NONE,   1, G | T | C, NULL,                 NULL,         s3_copy_object},
    {"PutObject",                    "PUT",    2, NULL,                 NULL,                BODY_STREAM, 1, G | T,     s3_put_object_begin,  s3_put_data,  s3_put_object},
    {"ListParts",                    "GET",    2, "uploadId",           NULL,                BODY_NONE,   0, 0,         NULL,                 NULL,         s3_list_parts},
    {"GetObjectAttributes",          "GET",    2, "attributes",         NULL,                BODY_NONE,   0, V,         NULL,                 NULL,         s3_get_object_attributes},
    {"GetObject",                    "GET",    2, NULL,                 NULL,                BODY_NONE,   0, V | P,     NULL,                 NULL,         s3_get_object},
    {"HeadObject",                   "HEAD",   2, NULL,                 NULL,                BODY_NONE,   0, V | P,     NULL,                 NULL,         s3_head_object},
    {"AbortMultipartUpload",         "DELETE", 2, "uploadId",           NULL,                BODY_NONE,   1, 0,         NULL,                 NULL,         s3_abort_multipart},
    {"DeleteObject",                 "DELETE", 2, NULL,                 NULL,                BODY_NONE,   1, V,         NULL,                 NULL,         s3_delete_object},
    {"CreateMultipartUpload",        "POST",   2, "uploads",            NULL,                BODY_NONE,   1, G | T,     NULL,                 NULL,         s3_create_multipart},
    {"CompleteMultipartUpload",      "POST",   2, "uploadId",           NULL,                BODY_SMALL,  1, 0,         NULL,                 NULL,         s3_complete_multipart},
    {"OptionsObject",                "OPTIONS",2, NULL,                 NULL,                BODY_NONE,   0, 0,         NULL,                 NULL,         s3_cors_preflight},
};
#undef G
#undef T
#undef V
#undef C
#undef P

const char *s3_query(const s3_req_t *r, const char *name) { return query_get(&r->q, name); }
const char *s3_header(const s3_req_t *r, const char *name) { return http_header(r->http, name); }

int s3_list_limits(const s3_req_t *r, const char *param, size_t *max, verr_t *e)
{
    const char *v = s3_query(r, param);
    *max = 1000;
    if (v) {
        char *end;
        long n = strtol(v, &end, 10);
        if (!*v || *end || n < 0)
            return verr_set(e, 400, "InvalidArgument", "Provided %s not an integer or within integer range", param);
        *max = n > 1000 ? 1000 : (size_t)n;
    }
    const char *enc = s3_query(r, "encoding-type");
    if (enc && strcmp(enc, "url"))
        return verr_set(e, 400, "InvalidArgument", "Invalid Encoding Method specified in Request");
    return 0;
}

const char *s3_account(const s3_req_t *r)
{
    return r->caller ? json_str(r->caller, "account_id", "") : "";
}

int s3_ops_check(verr_t *e)
{
    for (size_t i = 0; i < ARRAY_LEN(ops); i++)
        if (!s3_access_rule(ops[i].name))
            return verr_set(e, 500, "InternalError", "S3 operation %s has no access rule (s3_access.c)", ops[i].name);
    return 0;
}

/* Each HTTP thread opens its own connection on first use; the key's destructor closes
 * it when the thread pool stops. */
static pthread_key_t db_key;
static pthread_once_t db_key_once = PTHREAD_ONCE_INIT;

static void close_thread_db(void *db) { db_close(db); }
static void make_db_key(void) { pthread_key_create(&db_key, close_thread_db); }

db_t *s3_db(objectstore_t *os, verr_t *e)
{
    pthread_once(&db_key_once, make_db_key);
    db_t *db = pthread_getspecific(db_key);
    if (!db) {
        db = service_db_connect(os->svc, e);
        pthread_setspecific(db_key, db);
    }
    return db;
}

/* Percent-decode a path piece; InvalidURI on bad escapes or NUL bytes. */
static int decode(const char *s, size_t n, char *out, size_t outsz, verr_t *e)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)s[i];
        if (c == '%') {
            int hi = i + 2 < n ? hex_digit_value((unsigned char)s[i + 1]) : -1;
            int lo = i + 2 < n ? hex_digit_value((unsigned char)s[i + 2]) : -1;
            if (hi < 0 || lo < 0)
                return verr_set(e, 400, "InvalidURI", "Couldn't parse the specified URI.");
            c = hi * 16 + lo;
            i += 2;
        }
        if (c == 0)
            return verr_set(e, 400, "InvalidURI", "Couldn't parse the specified URI.");
        if (o + 1 >= outsz)
            return verr_set(e, 400, "KeyTooLongError", "Your key is too long");
        out[o++] = (char)c;
    }
    out[o] = 0;
    return 0;
}

/* Keys are UTF-8 (S3's rule): other bytes could be stored but not listed, as XML and
 * JSON carry only text, so such a key is refused before anything is written. */
static int valid_key(const char *key, verr_t *e)
{
    if (!utf8_valid(key, strlen(key)))
        return verr_set(e, 400, "InvalidArgument", "Object keys must be valid UTF-8.");
    return 0;
}

/* Bucket and key from the Host header (virtual-host style) or the path. Returns the
 * level: 0 service, 1 bucket, 2 object. */
static int address(s3_req_t *r, verr_t *e)
{
    const char *path = r->http->path;
    const char *host = s3_header(r, "Host");
    size_t dl = strlen(r->os->domain);
    if (host && dl) {
        size_t hl = strcspn(host, ":");
        if (hl > dl + 1 && host[hl - dl - 1] == '.' && !strncasecmp(host + hl - dl, r->os->domain, dl)) {
            size_t bl = hl - dl - 1;
            if (bl >= sizeof r->bucket)
                return verr_set(e, 400, "InvalidBucketName", "The specified bucket is not valid.");
            memcpy(r->bucket, host, bl);
            r->bucket[bl] = 0;
            const char *k = path[0] == '/' ? path + 1 : path;
            if (decode(k, strlen(k), r->key, sizeof r->key, e) < 0 || valid_key(r->key, e) < 0)
                return -1;
            return r->key[0] ? 2 : 1;
        }
    }
    if (path[0] != '/')
        return verr_set(e, 400, "InvalidURI", "Couldn't parse the specified URI.");
    const char *b = path + 1, *slash = strchr(b, '/');
    size_t bl = slash ? (size_t)(slash - b) : strlen(b);
    if (bl == 0)
        return 0;
    if (decode(b, bl, r->bucket, sizeof r->bucket, e) < 0) {
        if (!strcmp(e->code, "KeyTooLongError"))
            verr_set(e, 400, "InvalidBucketName", "The specified bucket is not valid.");
        return -1;
    }
    if (!slash || !slash[1])
        return 1;
    if (decode(slash + 1, strlen(slash + 1), r->key, sizeof r->key, e) < 0)
        return -1;
    return valid_key(r->key, e) < 0 ? -1 : 2;
}

/* The request's headers are in: 0 to take its body, or -1 with e set; with r->waiting
 * also set, a step waits for another service's answer (s3_wait.c) and this runs again
 * when it is known, from that step on: the steps before it are not done twice. */
static int begin_request(s3_req_t *r, verr_t *e)
{
    if (r->phase == 0) {
        int level = address(r, e);
        if (level < 0)
            return -1;
        if (query_parse(r->http->query, strlen(r->http->query), &r->q, e) < 0) {
            return verr_recode(e, 400, "InvalidArgument");
        }
        if (!(r->op = s3_route(r, ops, ARRAY_LEN(ops), level, e)))
            return -1;
        /* A version id this store could not have made names nothing: S3 says InvalidArgument
         * before looking (an unknown well-formed one is NoSuchVersion, from the backend). */
        const char *vid = s3_query(r, "versionId");
        if (vid && !os_version_id_valid(vid))
            return verr_set(e, 400, "InvalidArgument", "Invalid version id specified");
        r->phase = 1;
    }
    if (r->phase == 1) {
        /* CORS preflights are never signed: browsers send them before the request itself */
        if (strcmp(r->http->method, "OPTIONS") && s3_authenticate(r, e) < 0)
            return -1;
        r->phase = 2;
    }
    if (r->phase == 2) {
        if (r->op->level >= 1 && strcmp(r->op->name, "CreateBucket") && s3_load_bucket(r, e) < 0)
            return -1;
        const char *expected = s3_header(r, "x-amz-expected-bucket-owner");
        if (expected && r->have_bucket && strcmp(expected, r->bucket_owner))
            return verr_set(e, 403, "AccessDenied", "Access Denied");
        if (s3_authorize(r, e) < 0)
            return -1;
        if (r->op->level >= 1 && !r->have_bucket && strcmp(r->op->name, "CreateBucket"))
            return verr_set(e, 404, "NoSuchBucket", "The specified bucket does not exist");
        r->phase = 3;
    }
    /* accounts named by x-amz-grant-* headers, asked before any step that writes */
    if (s3_acl_prefetch(r, e) < 0)
        return -1;
    if (r->op->begin && r->op->begin(r, e) < 0)
        return -1;
    return 0;
}

static int s_begin(http_req_t *req, void **ctx, http_resp_t *resp)
{
    s3_req_t *r = *ctx;
    if (!r) {   /* else: again, after a wait */
        r = xcalloc(1, sizeof *r);
        r->os = ((service_t *)req->app)->state;
        r->http = req;
        crypto_hash_sha256_init(&r->sha);
        *ctx = r;
    }
    r->waiting = 0;
    int rc = begin_request(r, &r->err);
    if (r->waiting) {
        r->err = (verr_t){0};
        return HTTP_STREAM_WAIT;
    }
    if (rc < 0) {
        log_info("%s %s/%s -> %d %s: %s", r->op ? r->op->name : req->method, r->bucket, r->key, r->err.http_status,
                 r->err.code, r->err.message);
        s3_error(r, &r->err, resp);
        s3_cors_headers(r, resp);
        return -1;   /* s_done still runs and frees r */
    }
    return 0;
}

static int keep_small(s3_req_t *r, const char *d, size_t n, verr_t *e)
{
    if (r->body_len + n > S3_SMALL_BODY)
        return verr_set(e, 400, "MaxMessageLengthExceeded", "Your request was too big.");
    r->body = xrealloc(r->body, r->body_len + n + 1);
    memcpy(r->body + r->body_len, d, n);
    r->body_len += n;
    r->body[r->body_len] = 0;
    return 0;
}

static int s_data(void *ctx, const char *buf, size_t len, http_resp_t *resp)
{
    s3_req_t *r = ctx;
    int rc;
    r->in_data = 1;
    if (r->op->body == BODY_STREAM)
        rc = s3_payload(r, buf, len, r->op->data, &r->err);
    else if (r->op->body == BODY_SMALL)
        rc = s3_payload(r, buf, len, keep_small, &r->err);
    else
        rc = s3_payload(r, buf, len, NULL, &r->err);
    r->in_data = 0;
    if (rc < 0) {
        log_info("%s %s/%s -> %d %s: %s", r->op->name, r->bucket, r->key, r->err.http_status, r->err.code,
                 r->err.message);
        s3_error(r, &r->err, resp);
        return -1;
    }
    return 0;
}

static void s_end(void *ctx, http_req_t *req, http_resp_t *resp)
{
    s3_req_t *r = ctx;
    (void)req;
    verr_t e = {0};
    if (!r->finished) {   /* once: end may run again after a wait */
        r->finished = 1;
        if (s3_payload_finish(r, &e) < 0) {
            s3_error(r, &e, resp);
            return;
        }
    }
    r->waiting = 0;
    r->op->run(r, resp, &e);
    if (r->waiting)
        return;   /* asked another service: end runs again when it has answered */
    if (e.code[0])
        s3_error(r, &e, resp);
    s3_cors_headers(r, resp);
    log_info("%s %s/%s -> %d%s%s", r->op->name, r->bucket, r->key, e.code[0] ? e.http_status : resp->status,
             e.code[0] ? " " : "", e.code);
}

static void s_done(void *ctx)
{
    s3_req_t *r = ctx;
    if (!r)
        return;
    os_put_abort(r->put);
    s3_wait_release(r);
    if (r->charged > 0)   /* reserved for a write that did not keep it */
        s3_usage_refund(r, (uint64_t)r->charged);
    os_meta_clear(&r->meta);
    query_free(&r->q);
    json_decref(r->caller);
    s3_bucket_clear(&r->row);
    s3_chunked_free(r->chunk);
    s3_checksum_free(r->ck);
    s3_md5_free(r->md5);
    free(r->body);
    free(r);
}

const http_stream_t s3_stream = {s_begin, s_data, s_end, s_done};
