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
#include "s3_xmlbody.h"
#include "service.h"
#include "sigv4.h"
#include "strbuf.h"
#include "xml.h"

#define S3_MAX_KEY 1024
#define S3_SMALL_BODY (1024 * 1024)
#define S3_MAX_PUT (5ULL << 30)        /* S3's single PUT limit */

typedef struct writers writers_t;

/* The lifecycle expiration pass (lifecycle_pass.c): objectstore.lifecycle.* config and
 * its own database connection, used on the reconcile thread only. */
typedef struct os_lifecycle_cfg {
    long day_seconds;                 /* length of a lifecycle "day" (86400; smaller in tests) */
    long interval_s;                  /* between passes (negative: never) */
    long max_scan, max_actions;       /* versions listed / expirations made per pass */
    time_t last;                      /* last pass started */
    db_t *db;
} os_lifecycle_cfg_t;

typedef struct objectstore {
    service_t *svc;
    os_backend_t *backend;
    writers_t *writers;               /* this process's writer id and heartbeat (writers.c) */
    keycache_t *keys;
    uint64_t asked[4];                /* calls s3_ask sent, by message type (s3_wait.c, /metrics) */
    const char *region;
    const char *domain;               /* virtual-host suffix, "" = path-style only */
    int call_timeout_ms;
    uint64_t max_put;                 /* objectstore.max_object_bytes */
    char public_url[256];             /* how others reach this endpoint, for grant URLs */
    unsigned char grant_key[32];      /* HMAC key of grant tokens (grants.c) */
    const char *operator_account;     /* identity.operator_account_id: aws-exec-read's reader */
    os_lifecycle_cfg_t lc;
} objectstore_t;

/* The calling HTTP thread's own database connection (opened on first use). */
db_t *s3_db(objectstore_t *os, verr_t *e);

typedef struct s3_req s3_req_t;

/* A bucket's row: who owns it and what else decides access to it (s3_access.c), with
 * its CORS rules. The JSON members are owned (s3_bucket_clear). */
typedef struct s3_bucket {
    char name[64];
    char id[40];
    char owner[13];                   /* account id */
    char ownership[24];               /* ObjectOwnership, "" when none is configured */
    json_t *acl;                      /* grants: [{"g": account | group, "p": permission}] */
    json_t *policy;                   /* the bucket policy (parsed), or NULL */
    json_t *pab;                      /* PublicAccessBlock {"BlockPublicAcls": true, ...} or NULL */
    json_t *cors;                     /* CORS rules (s3_cors.c), or NULL */
    os_versioning_t versioning;       /* S3 versioning state (s3_versioning.c) */
} s3_bucket_t;

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

/* ACL permissions (s3_acl.c); FULL_CONTROL is all of them. */
enum {
    S3_READ = 1,
    S3_WRITE = 2,
    S3_READ_ACP = 4,
    S3_WRITE_ACP = 8,
    S3_FULL_CONTROL = 15,
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
    int write;                        /* changes something (access itself: s3_access.c) */
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
    /* bucket row, when the operation has a bucket that exists (bucket_id and bucket_owner
     * are copies of row.id and row.owner, for the operations that need only those) */
    int have_bucket;
    char bucket_id[40], bucket_owner[13];
    char bucket_owner_id[65];         /* the owner's canonical user id */
    s3_bucket_t row;
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
    int64_t charged;                  /* bytes reserved against the stored_bytes quota and not yet
                                       * kept (s3_usage.c); given back when the request ends */
    /* operation state */
    void *md5;                        /* Content-MD5 check in progress (s3_objects.c) */
    os_put_t *put;
    os_meta_t meta;
    int failed;
    verr_t err;
    struct s3_wait *wait;             /* an answer asked of another service (s3_wait.c) */
    json_t *asked;                    /* answers already had, by question (s3_wait.c) */
    int waiting;                      /* begin or end has started a wait: it runs again */
    int phase;                        /* begin_request's steps done before a wait */
    int finished;                     /* the payload checks at the body's end are done */
    int in_data;                      /* in the body's callback, which cannot wait */
};

/* s3_route.c: the operation the request names, or NULL + NotImplemented/MethodNotAllowed */
const s3_op_t *s3_route(const s3_req_t *r, const s3_op_t *ops, size_t nops, int level, verr_t *e);

/* s3_request.c */
extern const http_stream_t s3_stream;
const char *s3_query(const s3_req_t *r, const char *name);
const char *s3_header(const s3_req_t *r, const char *name);
/* A listing's page size (param: "max-keys", "max-uploads"; absent 1000, capped at 1000;
 * empty, negative or not a number: InvalidArgument) and its encoding-type (url or none). */
int s3_list_limits(const s3_req_t *r, const char *param, size_t *max, verr_t *e);
/* The caller's account ("" for anonymous requests). */
const char *s3_account(const s3_req_t *r);
/* Every operation of the table has an access rule (s3_access.c)? -1 naming the first
 * that has none: the service refuses to start rather than decide such a request. */
int s3_ops_check(verr_t *e);

/* s3_auth.c: verify the request signature (sets r->caller) and prepare payload checks
 * (aws-chunked decoding, declared length, checksum claims). 0, or -1 with e set; with
 * r->waiting also set, identity is being asked (a signing key not cached, a SigV2
 * signature) and begin runs this again when woken, with the answer at hand. */
int s3_authenticate(s3_req_t *r, verr_t *e);

/* s3_wait.c: asking another service without holding an HTTP thread. s3_ask answers
 * from what this request was already told (0, or -1 with the remote error); else it
 * sends the call, suspends the request and returns -1 with r->waiting set: the caller
 * unwinds as on an error, begin or end sees r->waiting, and runs again when woken, and
 * the same s3_ask then answers. body is stolen. */
typedef struct s3_wait s3_wait_t;
int s3_ask(s3_req_t *r, const char *service, const char *type, json_t *body, json_t **reply, verr_t *e);
/* For other callbacks (a signing key from the key cache): start a wait, deliver to it,
 * or give the error of a call that could not be sent (which wakes at once); take the
 * woken wait's answer (0, or -1 with e). */
s3_wait_t *s3_wait_start(s3_req_t *r);
void s3_wait_key_fetched(void *arg, const uint8_t *key, json_t *who, const verr_t *err);
void s3_wait_not_sent(s3_wait_t *w, const verr_t *e);
int s3_wait_take(s3_req_t *r, uint8_t key[SIGV4_KEY_LEN], json_t **reply, verr_t *e);
/* An account's limit for resource (common/quota.h), by s3_ask. */
int s3_quota(s3_req_t *r, const char *account, const char *resource, long long def, long long *max, verr_t *e);
/* /metrics: the calls s3_ask sent, by message type. */
void s3_wait_render_metrics(objectstore_t *os, strbuf_t *out);
/* Let go of the request's wait and answers (s_done). */
void s3_wait_release(s3_req_t *r);
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
/* http_opts.refuse: the HTTP layer's refusals as S3 error documents. */
void s3_refuse(const http_req_t *req, http_refusal_t why, uint64_t limit, http_resp_t *resp);
void s3_xml_reply(http_resp_t *resp, int status, char *doc, size_t len);
/* Finish the document x and answer it with 200 (frees x). */
struct xml;
void s3_xml_send(http_resp_t *resp, struct xml *x);
void s3_http_date(int64_t t, char out[40]);
void s3_iso_date(int64_t t, char out[40]);

/* s3_buckets.c */
int s3_load_bucket(s3_req_t *r, verr_t *e);
/* The row of bucket `name` into b: 1 found, 0 no such bucket, -1 error. */
int s3_bucket_load(db_t *db, const char *name, s3_bucket_t *b, verr_t *e);
void s3_bucket_clear(s3_bucket_t *b);
/* Set one setting column of r's bucket (acl, policy, ownership, public_access_block,
 * cors, tags, lifecycle) to value (NULL clears it), in one statement. */
int s3_bucket_set(s3_req_t *r, const char *column, const char *value, verr_t *e);
/* The same with a JSON value (NULL clears it), answering status when it is done. */
void s3_bucket_set_json(s3_req_t *r, const char *column, const json_t *value, int status, http_resp_t *resp,
                        verr_t *e);
int s3_valid_bucket_name(const char *name);
/* acl: the grants as JSON text; ownership: ObjectOwnership or NULL for none. */
int os_bucket_make(objectstore_t *os, db_t *db, const char *name, const char *account, const char *acl,
                   const char *ownership, verr_t *e);
void s3_list_buckets(s3_req_t *r, http_resp_t *resp, verr_t *e);
void s3_create_bucket(s3_req_t *r, http_resp_t *resp, verr_t *e);
void s3_head_bucket(s3_req_t *r, http_resp_t *resp, verr_t *e);
void s3_delete_bucket(s3_req_t *r, http_resp_t *resp, verr_t *e);
void s3_get_bucket_location(s3_req_t *r, http_resp_t *resp, verr_t *e);

/* s3_acl.c: the ACL model. An ACL is {"owner": account, "grants": [{"g", "p"}]}; a
 * grantee "g" is an account id or a group (AllUsers, AuthenticatedUsers, LogDelivery);
 * "p" a permission name. Buckets keep their owner in their row, objects in the ACL. */
/* The ACL a request asks for with x-amz-acl or x-amz-grant-* (both: InvalidRequest),
 * for a resource owned by owner in bucket b. *acl is NULL when the
 * request names none. AccessControlListNotSupported when b's ownership is
 * BucketOwnerEnforced and the ACL is not the bucket owner's full control. */
int s3_acl_from_request(s3_req_t *r, const s3_bucket_t *b, const char *owner, json_t **acl, verr_t *e);

/* Ask identity, before anything is written, for the accounts the request's
 * x-amz-grant-* headers name, so the operation finds them at hand. 0, or -1 with
 * r->waiting (begin runs again when identity has answered). */
int s3_acl_prefetch(s3_req_t *r, verr_t *e);
/* An AccessControlPolicy document (PutBucketAcl, PutObjectAcl): MalformedACLError,
 * InvalidArgument for unknown grantees, UnresolvableGrantByEmailAddress. */
int s3_acl_from_xml(s3_req_t *r, const s3_bucket_t *b, const char *owner, json_t **acl, verr_t *e);
/* A canned ACL by name ("private", ...), NULL + InvalidArgument if there is none. */
json_t *s3_acl_canned(const objectstore_t *os, const char *name, const char *owner, const char *bucket_owner,
                      verr_t *e);
/* The permissions grants gives account (NULL: anonymous); public_ok = 0 ignores grants to
 * AllUsers and AuthenticatedUsers (PublicAccessBlock IgnorePublicAcls). */
unsigned s3_acl_perms(const json_t *grants, const char *account, int public_ok);
/* Grants to AllUsers or AuthenticatedUsers? */
int s3_acl_is_public(const json_t *grants);
/* Grants that give nothing to anyone but owner (and that full control)? */
int s3_acl_owner_only(const json_t *grants, const char *owner);
/* Answer the ACL as an AccessControlPolicy, with display names from identity. */
void s3_acl_reply(s3_req_t *r, const char *owner, const json_t *grants, http_resp_t *resp, verr_t *e);
/* The ACL of an object as stored, or what objects written before ACLs had: the bucket
 * owner's, public-read if x-amz-acl said so. New reference. */
json_t *s3_object_acl(const s3_bucket_t *b, const os_meta_t *m);
/* Who owns an object account writes into bucket b with acl (ObjectOwnership), and the ACL
 * it is stored with: *acl is replaced. Anonymous writes belong to the bucket owner. */
const char *s3_object_owner(const s3_bucket_t *b, const char *account, json_t **acl);

/* s3_acl_ops.c: Get/PutBucketAcl, Get/PutObjectAcl, Get/Put/DeleteBucketOwnershipControls */
void s3_get_bucket_acl(s3_req_t *r, http_resp_t *resp, verr_t *e);
void s3_put_bucket_acl(s3_req_t *r, http_resp_t *resp, verr_t *e);
void s3_get_object_acl(s3_req_t *r, http_resp_t *resp, verr_t *e);
void s3_put_object_acl(s3_req_t *r, http_resp_t *resp, verr_t *e);
void s3_get_ownership(s3_req_t *r, http_resp_t *resp, verr_t *e);
void s3_put_ownership(s3_req_t *r, http_resp_t *resp, verr_t *e);
void s3_delete_ownership(s3_req_t *r, http_resp_t *resp, verr_t *e);

/* s3_access.c: who may do what. One evaluation for every request: the operator's
 * administrator; the caller's IAM policies; the bucket policy; the bucket's or the
 * object's ACL; PublicAccessBlock; explicit Deny wins (docs/objectstore.md). */
typedef struct s3_access_rule {
    const char *op;                   /* operation name, as in the table */
    const char *action;               /* IAM action */
    const char *version_action;       /* IAM action when a version is named, NULL: action */
    unsigned perm;                    /* ACL permission that grants it, 0: none does */
    int on_object;                    /* the permission is in the object's ACL, checked by the
                                       * operation once it has the object */
} s3_access_rule_t;
/* The rule of an operation, NULL when it has none (refused). */
const s3_access_rule_t *s3_access_rule(const char *op);
/* May r's caller do op on bucket b (key, or NULL for the bucket itself; version_id: the
 * version the request names, or NULL)? object_acl is the object version's ACL for
 * on_object operations. 0, or -1 with AccessDenied. r may stand for a request that did
 * not come over HTTP (grants): only its caller is used then. */
int s3_access_check(const s3_req_t *r, const s3_bucket_t *b, const char *op, const char *key,
                    const char *version_id, const json_t *object_acl, verr_t *e);
/* The check made when the request arrives (everything but on_object operations). */
int s3_authorize(s3_req_t *r, verr_t *e);
/* An ACL a request would set that PublicAccessBlock's BlockPublicAcls refuses? */
int s3_access_block_acl(const s3_bucket_t *b, const json_t *acl, verr_t *e);
/* Is the policy public (an Allow to everyone not narrowed by a condition)? */
int s3_policy_is_public(const json_t *policy);

/* s3_bucket_policy.c: bucket policies and PublicAccessBlock */
void s3_get_bucket_policy(s3_req_t *r, http_resp_t *resp, verr_t *e);
void s3_put_bucket_policy(s3_req_t *r, http_resp_t *resp, verr_t *e);
void s3_delete_bucket_policy(s3_req_t *r, http_resp_t *resp, verr_t *e);
void s3_get_bucket_policy_status(s3_req_t *r, http_resp_t *resp, verr_t *e);
void s3_get_public_access_block(s3_req_t *r, http_resp_t *resp, verr_t *e);
void s3_put_public_access_block(s3_req_t *r, http_resp_t *resp, verr_t *e);
void s3_delete_public_access_block(s3_req_t *r, http_resp_t *resp, verr_t *e);

/* s3_cors.c */
void s3_get_bucket_cors(s3_req_t *r, http_resp_t *resp, verr_t *e);
void s3_put_bucket_cors(s3_req_t *r, http_resp_t *resp, verr_t *e);
void s3_delete_bucket_cors(s3_req_t *r, http_resp_t *resp, verr_t *e);
/* OPTIONS: the preflight answer (403 CORSResponse when no rule allows it). */
void s3_cors_preflight(s3_req_t *r, http_resp_t *resp, verr_t *e);
/* CORS headers for an actual request that carries Origin, when a rule allows it. */
void s3_cors_headers(const s3_req_t *r, http_resp_t *resp);

/* s3_bucket_tagging.c */
void s3_get_bucket_tagging(s3_req_t *r, http_resp_t *resp, verr_t *e);
void s3_put_bucket_tagging(s3_req_t *r, http_resp_t *resp, verr_t *e);
void s3_delete_bucket_tagging(s3_req_t *r, http_resp_t *resp, verr_t *e);

/* s3_lifecycle.c: Put/Get/DeleteBucketLifecycle(Configuration) */
void s3_get_bucket_lifecycle(s3_req_t *r, http_resp_t *resp, verr_t *e);
void s3_put_bucket_lifecycle(s3_req_t *r, http_resp_t *resp, verr_t *e);
void s3_delete_bucket_lifecycle(s3_req_t *r, http_resp_t *resp, verr_t *e);

/* lifecycle_pass.c: read objectstore.lifecycle.*; run a pass when one is due (reconcile
 * timer); close its connection. */
void os_lifecycle_init(objectstore_t *os, const config_t *cfg);
void os_lifecycle_tick(objectstore_t *os);
void os_lifecycle_fini(objectstore_t *os);

/* s3_versioning.c: bucket versioning state (objectstore.buckets.versioning) */
os_versioning_t s3_versioning_from_db(const char *value);
void s3_get_bucket_versioning(s3_req_t *r, http_resp_t *resp, verr_t *e);
void s3_put_bucket_versioning(s3_req_t *r, http_resp_t *resp, verr_t *e);
/* x-amz-version-id as S3 sends it on object answers: in a bucket that was ever versioned,
 * or when the request named a version. */
void s3_version_header(const s3_req_t *r, http_resp_t *resp, const char *version_id);

/* s3_tagging.c: object tags */
/* Walk a <Tagging><TagSet><Tag><Key/><Value/></Tag>...</TagSet></Tagging> body (object and
 * bucket tagging take the same document), calling add(arg, key, value, e) per Tag in
 * order (value NULL when the Tag has none); anything else is MalformedXML. */
int s3_tagging_walk(const s3_req_t *r, int (*add)(void *arg, const char *key, const char *value, verr_t *e),
                    void *arg, verr_t *e);
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
/* os_delete for r's bucket, giving what it removes for good back to the quota. */
int s3_delete_version(s3_req_t *r, const char *key, const char *version_id, os_meta_t *out, verr_t *e);
void s3_copy_object(s3_req_t *r, http_resp_t *resp, verr_t *e);
/* Start checking Content-MD5 if the request has one (InvalidDigest if malformed). */
int s3_md5_begin(s3_req_t *r, verr_t *e);
/* Content-MD5 (if the request had one) against the bytes received. */
int s3_check_md5(s3_req_t *r, verr_t *e);
void s3_md5_free(void *md5);
/* Metadata from request headers (Content-Type, x-amz-meta-*, ..., the ACL) into m. */
int s3_meta_from_headers(s3_req_t *r, os_meta_t *m, verr_t *e);
/* Resolve "x-amz-copy-source" (bucket/key[?versionId=]) into bucket id, key and version
 * (NULL: the latest), checking read access; src receives that version, opened, and its
 * metadata (s3_source_clear releases them; done on failure). */
typedef struct s3_source {
    char bucket_id[40];
    char key[S3_MAX_KEY + 1];
    char version_id[OS_VERSION_ID_MAX];   /* "" when the source names none */
    os_object_t *obj;
    os_meta_t meta;
} s3_source_t;
int s3_copy_source(s3_req_t *r, s3_source_t *src, verr_t *e);
void s3_source_clear(s3_source_t *src);
/* Copy [off, off+len) of that version into put: its bytes whatever happens meanwhile. */
int s3_copy_read(s3_req_t *r, const s3_source_t *src, uint64_t off, uint64_t len, os_put_t *put, verr_t *e);
/* x-amz-copy-source-version-id, when the source version has an id or one was named. */
void s3_copy_source_header(const s3_source_t *src, http_resp_t *resp);
/* An S3 error answer for a delete marker read: 404 NoSuchKey (the latest) or 405
 * MethodNotAllowed (named by id), with x-amz-delete-marker and the marker's id. */
void s3_delete_marker_error(s3_req_t *r, const os_meta_t *m, int by_id, http_resp_t *resp);
/* The ACL and owner of an object the request writes into r's bucket, into m->acl. */
int s3_meta_acl(s3_req_t *r, os_meta_t *m, verr_t *e);
/* Head the version of r's object that the request names (versionId, else the latest)
 * and check r's operation on it against that version's ACL; *acl gets the ACL. With obj,
 * open that version instead (*obj: the caller closes it; NULL after a failure). A
 * missing key or version is told only to callers who may list the bucket (AccessDenied
 * otherwise). A delete marker has no ACL: it is decided as the bucket owner's, and a
 * 0 return with m->delete_marker set leaves the answer (s3_delete_marker_error) to the
 * caller. */
int s3_object_access(s3_req_t *r, os_meta_t *m, json_t **acl, os_object_t **obj, verr_t *e);

/* s3_get_options.c: partNumber and response-* on GetObject / HeadObject */
/* response-* on an anonymous request is InvalidRequest (S3). */
int s3_response_overrides_check(const s3_req_t *r, verr_t *e);
/* The answer's content type and headers as the response-* parameters override them. */
void s3_response_overrides(const s3_req_t *r, os_meta_t *m);
/* partNumber: 0 when absent, 1 with [*off, *off+*len) that part's bytes (a simple object
 * is part 1, whole) and x-amz-mp-parts-count set, -1 with InvalidArgument,
 * InvalidRequest (with Range) or 416 InvalidPartNumber. */
int s3_part_range(const s3_req_t *r, const os_meta_t *m, uint64_t *off, uint64_t *len, http_resp_t *resp,
                  verr_t *e);
/* s3_attributes.c */
void s3_get_object_attributes(s3_req_t *r, http_resp_t *resp, verr_t *e);

/* s3_list.c */
/* A key in a listing, URL-encoded when the client asked (encoding-type=url). */
void s3_key_elem(xml_t *x, const char *tag, const char *key, int url);
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
/* s3_list_uploads.c */
void s3_list_multipart_uploads(s3_req_t *r, http_resp_t *resp, verr_t *e);
/* An upload's Initiator (the IAM user's ARN, else the account's canonical id) and Owner
 * (the initiating account's canonical id; the bucket owner's when none was recorded). */
void s3_upload_parties_xml(s3_req_t *r, xml_t *x, const char *account, const char *arn);

/* s3_uploads.c: who started each multipart upload and what completing it answered */
/* Record r's caller as the initiator of upload_id (r's bucket and key). */
int s3_upload_record(s3_req_t *r, const char *upload_id, verr_t *e);
/* May r's caller do r's operation (ListParts, AbortMultipartUpload) on upload_id? The
 * bucket owner, the initiator's account, or whom the bucket policy allows (s3_access.c). */
int s3_upload_access(s3_req_t *r, const char *upload_id, verr_t *e);
/* A completion's answer, kept for a repeated CompleteMultipartUpload. */
void s3_upload_completed(s3_req_t *r, const char *upload_id, const os_meta_t *m, const char *xml);
/* The answer of an earlier completion of upload_id when r's key still holds the version
 * it made: 1 with resp set, 0 when there is none (NoSuchUpload stands). */
int s3_upload_repeat(s3_req_t *r, const char *upload_id, http_resp_t *resp);
void s3_upload_forget(s3_req_t *r, const char *upload_id);
/* The upload's Initiator and Owner elements (ListParts). */
void s3_upload_parties(s3_req_t *r, const char *upload_id, xml_t *x);
/* Uploads and their answers older than max_age_s are forgotten (the reconcile timer). */
void s3_uploads_expire(db_t *db, int max_age_s);

/* s3_usage.c: the stored_bytes quota (the bucket owner's account) */
/* Reserve n more bytes for r (r->charged); 403 QuotaExceeded past the quota. */
int s3_usage_charge(s3_req_t *r, int64_t n, verr_t *e);
/* Before a body of unknown length: a limit kept for the bucket owner that is fresh, asked
 * of identity if need be (-1 with r->waiting: begin runs again). */
int s3_usage_prepare(s3_req_t *r, verr_t *e);
/* Give back n bytes of r's bucket owner / of an account (removed for good). */
void s3_usage_refund(s3_req_t *r, uint64_t n);
void s3_usage_refund_bucket(objectstore_t *os, const char *account, const char *bucket_id, uint64_t n);
/* The write succeeded keeping `kept` bytes: the rest of r->charged goes back. */
void s3_usage_settle(s3_req_t *r, uint64_t kept);
/* The size of the version that writing or deleting key (version_id NULL: per the
 * bucket's versioning; else that version) removes for good, 0 for none. */
uint64_t s3_usage_replaced(s3_req_t *r, const char *key, const char *version_id);
/* The bytes of an upload's parts (number 0) or of one part: what aborting gives back. */
uint64_t s3_usage_upload_bytes(objectstore_t *os, const char *bucket_id, const char *upload_id, int number);

/* transfer.c: bytes GetObject sends, counted per bucket in memory and written to
 * transfer_events by a flusher thread (transfer_start) every
 * objectstore.transfer_flush_ms, and once more by transfer_stop after the HTTP endpoint
 * has drained; each bucket's stored bytes sampled into storage_samples once per clock
 * hour (docs/usage.md). */
void transfer_count(const char *account, const char *bucket, unsigned long long bytes);
int transfer_start(objectstore_t *os, verr_t *e);
void transfer_stop(objectstore_t *os, db_t *db);
void storage_sample(db_t *db);
/* recount.c: set a few buckets' stored-bytes totals from the backend's listing (the
 * reconcile timer). */
void storage_recount(objectstore_t *os, db_t *db);

#endif
