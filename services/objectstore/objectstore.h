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

typedef struct writers writers_t;

typedef struct objectstore {
    service_t *svc;
    os_backend_t *backend;
    writers_t *writers;               /* this process's writer id and heartbeat (writers.c) */
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

/* One row per operation: matched on method, level and sub-resource. */
typedef struct s3_op {
    const char *name;                 /* "PutObject": IAM action s3:<name>, logs */
    const char *method;
    int level;                        /* 0 service, 1 bucket, 2 object */
    const char *subresource;          /* query parameter that selects it, or NULL */
    const char *header;               /* request header that selects it (x-amz-copy-source), or NULL */
    s3_body_t body;
    int write;                        /* needs write access to the bucket */
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
    /* body */
    char *body;
    size_t body_len;
    crypto_hash_sha256_state sha;     /* payload hash, checked at the end */
    char want_sha[65];                /* declared x-amz-content-sha256 hex, "" when unsigned */
    int chunked;                      /* aws-chunked payload being decoded */
    void *chunk;                      /* aws-chunked decoder state (s3_chunked.c) */
    uint64_t received;
    /* operation state */
    void *md5;                        /* Content-MD5 check in progress (s3_objects.c) */
    os_put_t *put;
    os_meta_t meta;
    int failed;
    verr_t err;
};

/* s3_request.c */
extern const http_stream_t s3_stream;
const char *s3_query(const s3_req_t *r, const char *name);
const char *s3_header(const s3_req_t *r, const char *name);
/* The caller's account ("" for anonymous requests). */
const char *s3_account(const s3_req_t *r);

/* s3_auth.c: verify the request signature (sets r->caller) and prepare payload checks */
int s3_authenticate(s3_req_t *r, verr_t *e);
/* Feed body bytes through the payload check (and aws-chunked decoding). Calls out(r, data)
 * with the decoded payload. */
int s3_payload(s3_req_t *r, const char *buf, size_t len,
               int (*out)(s3_req_t *r, const char *d, size_t n, verr_t *e), verr_t *e);
/* At the end of the body: the payload matched what was signed? */
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
/* Resolve "x-amz-copy-source" into bucket id and key, open its current version (*src,
 * with its metadata in *meta: the caller closes and clears them) and check read access. */
int s3_copy_source(s3_req_t *r, char bucket_id[40], char *key, size_t keysz, os_object_t **src, os_meta_t *meta,
                   verr_t *e);

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

/* writers.c: the liveness of object store processes, for reclaiming a dead one's writes */
writers_t *writers_start(service_t *svc, os_backend_t *b, verr_t *e);
/* lease_s and writer_alive of one gc pass (writer_alive NULL while liveness is unknown). */
void writers_gc_opts(writers_t *w, db_t *db, os_gc_opts_t *o);
void writers_stop(writers_t *w);   /* deletes this process's row; NULL is a no-op */

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
