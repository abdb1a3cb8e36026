/* operator_api.c - the operator's account and quota administration as API actions
 * (DescribeAccounts, DescribeAccountQuotas, ModifyAccountQuota: Virga actions on the EC2
 * endpoint, docs/api.md), for the web console's operator pages and any signed client.
 * They arrive from the gateway after its action table, SigV4 (or a console session) and
 * the operator-only and IAM checks (authorize.c), and do what virgadm's `account list`,
 * `quota show` and `quota set` do (accounts.c, quotas.c), answering in EC2's shape. The
 * caller is checked again here: only a caller of the operator account may ask, whoever
 * delivered the message. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "identity.h"
#include "jsonutil.h"

static int operator_only(bus_ctx_t *ctx, verr_t *e)
{
    if (json_bool(ctx->msg->caller, "is_operator", 0))
        return 0;
    return verr_set(e, 403, "UnauthorizedOperation",
                    "You are not authorized to perform this operation. It is for the operator account only.");
}

static int account_param(const json_t *body, const char **acct, verr_t *e)
{
    *acct = json_str(body, "AccountId", NULL);
    if (!*acct || strlen(*acct) != 12 || strspn(*acct, "0123456789") != 12)
        return verr_set(e, 400, "InvalidParameterValue", "AccountId must be an account's 12 digits");
    return 0;
}

/* AccountId.N given: is acct one of them? */
static int wanted(const json_t *ids, const char *acct)
{
    if (!ids)
        return 1;
    if (json_is_string(ids))
        return !strcmp(json_string_value(ids), acct);
    size_t i;
    json_t *v;
    json_array_foreach(ids, i, v)
        if (json_is_string(v) && !strcmp(json_string_value(v), acct))
            return 1;
    return 0;
}

int identity_describe_accounts(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    if (operator_only(ctx, e) < 0)
        return -1;
    JSON_AUTO json_t *all = NULL;
    if (identity_account_list(ctx, NULL, &all, e) < 0)
        return -1;
    const json_t *ids = json_object_get(body, "AccountId");
    json_t *set = json_array();
    size_t i;
    json_t *a;
    json_array_foreach(json_object_get(all, "accounts"), i, a) {
        const char *id = json_str(a, "account_id", "");
        if (wanted(ids, id))
            json_array_append_new(set, json_pack("{s:s, s:s, s:b, s:I, s:s, s:s}", "accountId", id,
                                                 "accountName", json_str(a, "name", ""),
                                                 "isOperator", json_bool(a, "is_operator", 0),
                                                 "userCount", (json_int_t)json_int(a, "users", 0),
                                                 "createTime", json_str(a, "created", ""), "email", json_str(a, "email", "")));
    }
    *reply = json_pack("{s:o}", "accountSet", set);
    return 0;
}

/* identity_quota_get's {account_id, quotas: {name: max}} as EC2 would say it. */
static json_t *quota_set_of(json_t *q)
{
    json_t *set = json_array();
    const char *name;
    json_t *v;
    json_object_foreach(json_object_get(q, "quotas"), name, v)
        json_array_append_new(set, json_pack("{s:s, s:I}", "resource", name, "value", (json_int_t)json_integer_value(v)));
    return json_pack("{s:s, s:o}", "accountId", json_str(q, "account_id", ""), "quotaSet", set);
}

int identity_describe_account_quotas(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    const char *acct;
    if (operator_only(ctx, e) < 0 || account_param(body, &acct, e) < 0)
        return -1;
    JSON_AUTO json_t *q = NULL;
    JSON_AUTO json_t *ask = json_pack("{s:s}", "account_id", acct);
    if (identity_quota_get(ctx, ask, &q, e) < 0)
        return -1;
    *reply = quota_set_of(q);
    return 0;
}

int identity_modify_account_quota(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    const char *acct, *res = json_str(body, "Resource", ""), *val = json_str(body, "Value", "");
    if (operator_only(ctx, e) < 0 || account_param(body, &acct, e) < 0)
        return -1;
    size_t n = strlen(val);
    if (n == 0 || n > 18 || strspn(val, "0123456789") != n)
        return verr_set(e, 400, "InvalidParameterValue", "Value must be a whole number of at least 0");
    JSON_AUTO json_t *q = NULL;
    JSON_AUTO json_t *set = json_pack("{s:s, s:s, s:I}", "account_id", acct, "resource", res,
                                      "max", (json_int_t)atoll(val));
    if (identity_quota_set(ctx, set, &q, e) < 0)
        return -1;
    *reply = quota_set_of(q);
    return 0;
}
