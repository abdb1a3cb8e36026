/* objectstore.h - the S3 endpoint: request state and the operations table.
 *
 * Every request goes through one streaming HTTP route (s3_request.c): addressing
 * (path-style /bucket/key or virtual-host bucket.<objectstore.domain>), SigV4 (header,
 * presigned, UNSIGNED-PAYLOAD, aws-chunked), then one operation from the table. PutObject
 * and UploadPart stream their body into the backend as it arrives; other operations get
 * a small buffered body (XML documents). */
#ifndef VIRGA_OBJECTSTORE_H
#define VIRGA_OBJECTSTORE_H

#include <sodium.h>

#include "backend.h"
#include "http.h"
#include "keycache.h"
#include "query.h"
#include "service.h"
#include "sigv4.h"

#define S3_MAX_KEY 1024
#define S3_SMALL_BODY (1024 * 1024)
#define S3_MAX_PUT (5ULL << 30)        /* S3's single PUT limit */

typedef struct objectstore {
    service_t *svc;
    os_backend_t *backend;
    keycache_t *keys;
    const char *region;
    const char *domain;               /* virtual-host suffix, "" = path-style only */
    int call_timeout_ms;
    uint64_t max_put;                 /* objectstore.max_object_bytes */
    char public_url[256];             /* how others reach this endpoint, for grant URLs */
    unsigned char grant_key[32];      /* HMAC key of grant tokens (grants.c) */
} objectstore_t;

/* The calling HTTP thread's own database connection (opened on first use). */
db_t *s3_db(objectstore_t *os, verr_t *e);

typedef struct s3_req s3_req_t;

typedef enum s3_body { BODY_NONE, BODY_SMALL, BODY_STREAM } s3_body_t;

/* Features a request may ask for with a query parameter or header (s3_route.c); an
 * operation's row names those it serves, anything else is NotImplemented. */
enum {
    S3F_VERSION_ID = 1 << 0,          /* ?versionId= */
    S3F_PART_NUMBER = 1 << 1,         /* ?partNumber= on GetObject/HeadObject */
    S3F_RESPONSE = 1 << 2,            /* ?response-content-type= ... overrides */
    S3F_GRANTS = 1 << 3,              /* x-amz-grant-* */
    S3F_TAGGING = 1 << 4,             /* x-amz-tagging, x-amz-tagging-directive */
    S3F_COPY_IF = 1 << 5,             /* x-amz-copy-source-if-* */
    S3F_SSE = 1 << 6,                 /* x-amz-server-side-encryption* */
    S3F_OBJECT_LOCK = 1 << 7,         /* x-amz-object-lock-*, x-amz-bucket-object-lock-enabled */
    S3F_WEBSITE = 1 << 8,             /* x-amz-website-redirect-location */
    S3F_MFA = 1 << 9,                 /* x-amz-mfa */
    S3F_APPEND = 1 << 10,             /* x-amz-write-offset-bytes */
};

/* One row per operation: matched on method, level, the sub-resource (exactly: a request
 * naming another sub-resource matches no row) and a selecting header. */
typedef struct s3_op {
    const char *name;                 /* "PutObject": IAM action s3:<name>, logs */
    const char *method;
    int level;                        /* 0 service, 1 bucket, 2 object */
    const char *subresource;          /* query parameter that selects it, or NULL for none */
    const char *header;               /* request header that selects it (x-amz-copy-source), or NULL */
    s3_body_t body;
    int write;                        /* needs write access to the bucket */
    unsigned features;                /* S3F_* it serves */
    /* BODY_STREAM: begin/data, then run at the end */
    int (*begin)(s3_req_t *r, verr_t *e);
    int (*data)(s3_req_t *r, const char *buf, size_t len, verr_t *e);
    void (*run)(s3_req_t *r, http_resp_t *resp, verr_t *e);
} s3_op_t;

struct s3_req {
    objectstore_t *os;
    http_req_t *http;
    const s3_op_t *op;
    char bucket[64];
    char key[S3_MAX_KEY + 1];
    query_t q;                        /* decoded query parameters */
    json_t *caller;                   /* who signed (NULL: anonymous) */
    /* bucket row, when the operation has a bucket that exists */
    int have_bucket;
    char bucket_id[40], bucket_owner[13], bucket_acl[16];
    os_versioning_t versioning;       /* the bucket's S3 versioning state */
    /* body */
    char *body;
    size_t body_len;
    crypto_hash_sha256_state sha;     /* payload hash, checked at the end */
    char want_sha[65];                /* declared x-amz-content-sha256 hex, "" when unsigned */
    int chunked;                      /* aws-chunked payload being decoded */
    void *chunk;                      /* aws-chunked decoder state (s3_chunked.c) */
    int64_t payload_len;              /* declared payload bytes (x-amz-decoded-content-length for
                                       * aws-chunked, else Content-Length), -1 unknown */
    void *ck;                         /* the request's checksum claims (s3_checksum.c) */
    uint64_t received;
    /* operation state */
    void *md5;                        /* Content-MD5 check in progress (s3_objects.c) */
    os_put_t *put;
    os_meta_t meta;
    int failed;
    verr_t err;
};

/* s3_route.c: the operation the request names, or NULL + NotImplemented/MethodNotAllowed */
const s3_op_t *s3_route(const s3_req_t *r, const s3_op_t *ops, size_t nops, int level, verr_t *e);

/* s3_request.c */
extern const http_stream_t s3_stream;
const char *s3_query(const s3_req_t *r, const char *name);
const char *s3_header(const s3_req_t *r, const char *name);
/* The caller's account ("" for anonymous requests). */
const char *s3_account(const s3_req_t *r);
/* The caller owns the bucket or is the operator's administrator (what configuration
 * reads like GetBucketVersioning and GetObjectTagging need; public-read grants neither). */
int s3_owner_or_operator(const s3_req_t *r);

/* s3_auth.c: verify the request signature (sets r->caller) and prepare payload checks
 * (aws-chunked decoding, declared length, checksum claims) */
int s3_authenticate(s3_req_t *r, verr_t *e);
/* PutObject/UploadPart: the declared size within objectstore.max_object_bytes
 * (EntityTooLarge), and declared at all (MissingContentLength). */
int s3_payload_size_check(s3_req_t *r, verr_t *e);
/* Feed body bytes through the payload check (and aws-chunked decoding). Calls out(r, data)
 * with the decoded payload. */
int s3_payload(s3_req_t *r, const char *buf, size_t len,
               int (*out)(s3_req_t *r, const char *d, size_t n, verr_t *e), verr_t *e);
/* At the end of the body: the payload matched what was signed (and its checksum claim,
 * for bodies other than PutObject/UploadPart's, whose writer checks it)? */
int s3_payload_finish(s3_req_t *r, verr_t *e);

/* s3_reply.c: XML answers and errors */
void s3_error(const s3_req_t *r, const verr_t *e, http_resp_t *resp);
void s3_xml_reply(http_resp_t *resp, int status, char *doc, size_t len);
void s3_http_date(int64_t t, char out[40]);
void s3_iso_date(int64_t t, char out[40]);

/* s3_buckets.c */
int s3_load_bucket(s3_req_t *r, verr_t *e);
int s3_valid_bucket_name(const char *name);
int os_bucket_make(objectstore_t *os, db_t *db, const char *name, const char *account, const char *acl, verr_t *e);
void s3_list_buckets(s3_req_t *r, http_resp_t *resp, verr_t *e);
void s3_create_bucket(s3_req_t *r, http_resp_t *resp, verr_t *e);
void s3_head_bucket(s3_req_t *r, http_resp_t *resp, verr_t *e);
void s3_delete_bucket(s3_req_t *r, http_resp_t *resp, verr_t *e);
void s3_get_bucket_location(s3_req_t *r, http_resp_t *resp, verr_t *e);
void s3_get_bucket_acl(s3_req_t *r, http_resp_t *resp, verr_t *e);
void s3_put_bucket_acl(s3_req_t *r, http_resp_t *resp, verr_t *e);

/* s3_versioning.c: bucket versioning state (objectstore.buckets.versioning) */
os_versioning_t s3_versioning_from_db(const char *value);
void s3_get_bucket_versioning(s3_req_t *r, http_resp_t *resp, verr_t *e);
void s3_put_bucket_versioning(s3_req_t *r, http_resp_t *resp, verr_t *e);
/* x-amz-version-id as S3 sends it on object answers: in a bucket that was ever versioned,
 * or when the request named a version. */
void s3_version_header(const s3_req_t *r, http_resp_t *resp, const char *version_id);

/* s3_tagging.c: object tags */
/* The x-amz-tagging header as a tag set (NULL when absent); InvalidTag per S3's limits. */
int s3_tags_from_header(const s3_req_t *r, json_t **out, verr_t *e);
/* x-amz-tagging-count on GET/HEAD when the version has tags. */
void s3_tagging_count_header(const os_meta_t *m, http_resp_t *resp);
void s3_get_object_tagging(s3_req_t *r, http_resp_t *resp, verr_t *e);
void s3_put_object_tagging(s3_req_t *r, http_resp_t *resp, verr_t *e);
void s3_delete_object_tagging(s3_req_t *r, http_resp_t *resp, verr_t *e);

/* s3_objects.c */
int s3_put_object_begin(s3_req_t *r, verr_t *e);
int s3_put_data(s3_req_t *r, const char *buf, size_t len, verr_t *e);
void s3_put_object(s3_req_t *r, http_resp_t *resp, verr_t *e);
void s3_get_object(s3_req_t *r, http_resp_t *resp, verr_t *e);
void s3_head_object(s3_req_t *r, http_resp_t *resp, verr_t *e);
void s3_delete_object(s3_req_t *r, http_resp_t *resp, verr_t *e);
void s3_copy_object(s3_req_t *r, http_resp_t *resp, verr_t *e);
/* Start checking Content-MD5 if the request has one (InvalidDigest if malformed). */
int s3_md5_begin(s3_req_t *r, verr_t *e);
/* Content-MD5 (if the request had one) against the bytes received. */
int s3_check_md5(s3_req_t *r, verr_t *e);
void s3_md5_free(void *md5);
/* Metadata from request headers (Content-Type, x-amz-meta-*, ...) into m. */
int s3_meta_from_headers(s3_req_t *r, os_meta_t *m, verr_t *e);
/* Resolve "x-amz-copy-source" (bucket/key[?versionId=]) into bucket id, key and version
 * (NULL: the latest), checking read access; *src receives that version's metadata. */
typedef struct s3_source {
    char bucket_id[40];
    char key[S3_MAX_KEY + 1];
    char version_id[OS_VERSION_ID_MAX];   /* "" when the source names none */
    os_meta_t meta;
} s3_source_t;
int s3_copy_source(s3_req_t *r, s3_source_t *src, verr_t *e);
/* Copy [off, off+len) of that version into put (SlowDown if it changed meanwhile). */
int s3_copy_read(s3_req_t *r, const s3_source_t *src, uint64_t off, uint64_t len, os_put_t *put, verr_t *e);
/* x-amz-copy-source-version-id, when the source version has an id or one was named. */
void s3_copy_source_header(const s3_source_t *src, http_resp_t *resp);
/* An S3 error answer for a delete marker read: 404 NoSuchKey (the latest) or 405
 * MethodNotAllowed (named by id), with x-amz-delete-marker and the marker's id. */
void s3_delete_marker_error(s3_req_t *r, const os_meta_t *m, int by_id, http_resp_t *resp);

/* s3_list.c */
void s3_list_objects(s3_req_t *r, http_resp_t *resp, verr_t *e);
void s3_list_objects_v2(s3_req_t *r, http_resp_t *resp, verr_t *e);
void s3_list_object_versions(s3_req_t *r, http_resp_t *resp, verr_t *e);
void s3_delete_objects(s3_req_t *r, http_resp_t *resp, verr_t *e);

/* bus_api.c: what other services ask over the bus */
int os_bus_ensure_bucket(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e);

/* grants.c: capability URLs for one object (objectstore.grant) */
int os_grant_init(objectstore_t *os, verr_t *e);
char *os_grant_url(const objectstore_t *os, const char *account, const char *method, const char *bucket,
                   const char *key, int64_t expires);
int s3_grant_authenticate(s3_req_t *r, const char *token, verr_t *e);
int os_bus_grant(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e);

/* s3_multipart.c */
void s3_create_multipart(s3_req_t *r, http_resp_t *resp, verr_t *e);
int s3_upload_part_begin(s3_req_t *r, verr_t *e);
void s3_upload_part(s3_req_t *r, http_resp_t *resp, verr_t *e);
void s3_upload_part_copy(s3_req_t *r, http_resp_t *resp, verr_t *e);
void s3_complete_multipart(s3_req_t *r, http_resp_t *resp, verr_t *e);
void s3_abort_multipart(s3_req_t *r, http_resp_t *resp, verr_t *e);
void s3_list_parts(s3_req_t *r, http_resp_t *resp, verr_t *e);
void s3_list_multipart_uploads(s3_req_t *r, http_resp_t *resp, verr_t *e);

#endif
