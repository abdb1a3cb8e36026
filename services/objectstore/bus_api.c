/* bus_api.c - what other services ask the object store over the bus (they never get
 * credentials for it): objectstore.head_object checks that the calling account may
 * read an object and describes it (the image service registers images from a tenant's
 * bucket with it); objectstore.ensure_bucket makes a bucket for the calling account if it
 * has none of that name (the image service keeps imported images in one). Grants
 * (objectstore.grant) are in grants.c. */
#include <string.h>

#include "jsonutil.h"
#include "objectstore.h"

int os_bus_head_object(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    objectstore_t *os = service_of(ctx)->state;
    const char *bucket = json_str(body, "bucket", NULL), *key = json_str(body, "key", NULL);
    const char *account = json_str(ctx->msg->caller, "account_id", "");
    if (!bucket || !key || !*key || strlen(key) > S3_MAX_KEY)
        return verr_set(e, 400, "InvalidParameterValue", "bucket and key are required");
    const char *p[] = {bucket};
    PG_AUTO PGresult *r = db_prepared(service_db(ctx), e, "bus_bucket",
                                      "SELECT id, account_id FROM buckets WHERE name = $1", 1, p);
    if (!r)
        return -1;
    if (PQntuples(r) == 0)
        return verr_set(e, 404, "NoSuchBucket", "The bucket %s does not exist", bucket);
    os_meta_t m = {0};
    if (os_head(os->backend, PQgetvalue(r, 0, 0), key, &m, e) < 0)
        return -1;
    int operator = json_bool(ctx->msg->caller, "is_operator", 0) && json_bool(ctx->msg->caller, "is_admin", 0);
    int ok = !strcmp(PQgetvalue(r, 0, 1), account) || operator ||
             !strcmp(json_str(m.extra, "x-amz-acl", "private"), "public-read");
    if (ok)
        *reply = json_pack("{s:s, s:s, s:I, s:s, s:s}", "bucket", bucket, "key", key, "size", (json_int_t)m.size,
                           "etag", m.etag, "content_type", m.content_type);
    os_meta_clear(&m);
    return ok ? 0 : verr_set(e, 403, "AccessDenied", "The account may not read %s/%s", bucket, key);
}

/* {bucket, acl?} as the calling account → {bucket, created}. Idempotent. */
int os_bus_ensure_bucket(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    objectstore_t *os = service_of(ctx)->state;
    const char *bucket = json_str(body, "bucket", ""), *acl = json_str(body, "acl", "private");
    const char *account = json_str(ctx->msg->caller, "account_id", "");
    if (!s3_valid_bucket_name(bucket))
        return verr_set(e, 400, "InvalidBucketName", "The bucket name '%.64s' is not valid.", bucket);
    if (strcmp(acl, "private") && strcmp(acl, "public-read"))
        return verr_set(e, 400, "InvalidParameterValue", "acl must be private or public-read");
    if (strlen(account) != 12)
        return verr_set(e, 401, "AuthFailure", "the request must name the account it acts for");
    int rc = os_bucket_make(os, service_db(ctx), bucket, account, acl, e);
    if (rc < 0)
        return -1;
    *reply = json_pack("{s:s, s:b}", "bucket", bucket, "created", rc == 0);
    return 0;
}
