/* objects.c - the image service's view of the object store: locations ("bucket/key"),
 * grant URLs asked for over the bus as the account the service acts for, and the
 * operator's bucket that holds imported and copied images. */
#include <stdio.h>
#include <string.h>

#include "image.h"
#include "jsonutil.h"

int image_split_location(const char *loc, char bucket[64], const char **key, verr_t *e)
{
    const char *slash = loc ? strchr(loc, '/') : NULL;
    if (!slash || slash == loc || !slash[1] || slash - loc > 63)
        return verr_set(e, 400, "InvalidParameterValue", "ImageLocation must be bucket/key, not '%.128s'", loc ? loc : "");
    snprintf(bucket, 64, "%.*s", (int)(slash - loc), loc);
    *key = slash + 1;
    return 0;
}

static json_t *caller_for(service_t *svc, const char *account)
{
    if (account)
        return json_pack("{s:s, s:b, s:s}", "account_id", account, "is_admin", 1, "user_id", "");
    return json_pack("{s:s, s:b, s:b, s:s}", "account_id",
                     config_str(svc->cfg, "identity.operator_account_id", "000000000001"), "is_admin", 1,
                     "is_operator", 1, "user_id", "");
}

/* A bus handler (ctx) asks without holding its worker (bus_ask_as: -1 with ctx->waiting,
 * the message handled again with the answer); a task's thread (ctx NULL) waits. */
static int call(service_t *svc, bus_ctx_t *ctx, const char *type, json_t *body, const char *account, json_t **out,
                verr_t *e)
{
    json_t *caller = caller_for(svc, account);
    int timeout = (int)config_int(svc->cfg, "image.call_timeout_ms", 10000);
    int rc = ctx ? bus_ask_as(ctx, "objectstore", type, body, caller, timeout, out, e)
                 : bus_call(svc->bus, "objectstore", type, body, caller, timeout, out, e);
    json_decref(caller);
    if (rc < 0 && !(ctx && ctx->waiting) && !strcmp(e->code, "RequestTimeout"))
        verr_set(e, 503, "Unavailable", "The object store is not answering; try again.");
    return rc;
}

static int grant(service_t *svc, bus_ctx_t *ctx, const char *account, const char *location, const char *method,
                 json_t **out, verr_t *e)
{
    char bucket[64];
    const char *key;
    if (image_split_location(location, bucket, &key, e) < 0)
        return -1;
    json_t *body = json_pack("{s:s, s:s, s:s, s:I}", "bucket", bucket, "key", key, "method", method, "ttl_s",
                             (json_int_t)config_int(svc->cfg, "image.grant_ttl_s", 3600));
    return call(svc, ctx, "objectstore.grant", body, account, out, e);
}

int image_grant(service_t *svc, const char *account, const char *location, const char *method, json_t **out,
                verr_t *e)
{
    return grant(svc, NULL, account, location, method, out, e);
}

int image_grant_ask(bus_ctx_t *ctx, const char *account, const char *location, const char *method, json_t **out,
                    verr_t *e)
{
    return grant(service_of(ctx), ctx, account, location, method, out, e);
}

int image_grant_readable(bus_ctx_t *ctx, const char *account, const char *location, const char *code,
                         const char *what, json_t **out, verr_t *e)
{
    if (image_grant_ask(ctx, account, location, "GET", out, e) == 0)
        return 0;
    if (ctx->waiting || !strcmp(e->code, "Unavailable"))
        return -1;
    char why[sizeof e->message];   /* e->message cannot be both source and target */
    snprintf(why, sizeof why, "%s", e->message);
    return verr_set(e, 400, code, "%s %.200s: %.300s", what, location, why);
}

const char *image_bucket(service_t *svc, verr_t *e)
{
    image_service_t *is = svc->state;
    const char *name = config_str(svc->cfg, "image.bucket", "virga-images");
    pthread_mutex_lock(&is->mu);
    int ready = is->bucket_ready;
    pthread_mutex_unlock(&is->mu);
    if (ready)
        return name;
    json_t *out = NULL;
    if (call(svc, NULL, "objectstore.ensure_bucket", json_pack("{s:s}", "bucket", name), NULL, &out, e) < 0)
        return NULL;
    json_decref(out);
    pthread_mutex_lock(&is->mu);
    is->bucket_ready = 1;
    pthread_mutex_unlock(&is->mu);
    return name;
}
