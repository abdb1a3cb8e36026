/* quota.c - see quota.h. */
#include "quota.h"

#include "jsonutil.h"

int quota_get(bus_t *bus, const char *account, const char *resource, long long def, int timeout_ms,
              long long *max, verr_t *e)
{
    json_t *q = NULL;
    json_t *body = json_pack("{s:s}", "account_id", account);
    if (bus_call(bus, "identity", "identity.quota_get", body, NULL, timeout_ms, &q, e) < 0)
        return -1;
    *max = (long long)json_int(json_object_get(q, "quotas"), resource, def);
    json_decref(q);
    return 0;
}

int quota_ask(bus_ctx_t *ctx, const char *account, const char *resource, long long def, int timeout_ms,
              long long *max, verr_t *e)
{
    json_t *q = NULL;
    if (bus_ask(ctx, "identity", "identity.quota_get", json_pack("{s:s}", "account_id", account), timeout_ms, &q,
                e) < 0)
        return -1;
    *max = (long long)json_int(json_object_get(q, "quotas"), resource, def);
    json_decref(q);
    return 0;
}
