/* quota.c - see quota.h. */
#include "quota.h"

#include "jsonutil.h"

json_t *quota_question(const char *account)
{
    return json_pack("{s:s}", "account_id", account);
}

long long quota_of(json_t *reply, const char *resource, long long def)
{
    long long max = (long long)json_int(json_object_get(reply, "quotas"), resource, def);
    json_decref(reply);
    return max;
}

int quota_ask(bus_ctx_t *ctx, const char *account, const char *resource, long long def, int timeout_ms,
              long long *max, verr_t *e)
{
    json_t *q = NULL;
    if (bus_ask(ctx, "identity", QUOTA_MESSAGE, quota_question(account), timeout_ms, &q, e) < 0)
        return -1;
    *max = quota_of(q, resource, def);
    return 0;
}
