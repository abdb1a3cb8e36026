/* bus_api.c - what other services ask the object store over the bus (they never get
 * credentials for it): objectstore.ensure_bucket makes a bucket for the calling account if
 * it has none of that name (the image service keeps imported images in one). Access to
 * one object, checked as the calling account, is a grant (objectstore.grant, grants.c). */
#include <stdlib.h>
#include <string.h>

#include "jsonutil.h"
#include "objectstore.h"

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
    json_t *canned = s3_acl_canned(os, acl, account, account, e);
    char *grants = json_dumps(json_object_get(canned, "grants"), JSON_COMPACT);
    json_decref(canned);
    int rc = os_bucket_make(os, service_db(ctx), bucket, account, grants, NULL, e);
    free(grants);
    if (rc < 0)
        return -1;
    *reply = json_pack("{s:s, s:b}", "bucket", bucket, "created", rc == 0);
    return 0;
}
