/* showback.c - tenants' view of their own usage and cost through the EC2 endpoint:
 * Virga-specific actions DescribeUsage and GetInvoice (docs/api.md), forwarded by the
 * gateway after SigV4 and IAM (ec2:DescribeUsage, ec2:GetInvoice). They take EC2-style
 * parameters and answer EC2-style sets; the account is always the caller's own
 * (accounting_scope), whatever a request names. */
#include <stdlib.h>
#include <string.h>

#include "accounting.h"
#include "jsonutil.h"

/* EC2 parameter -> accounting.usage filter */
static const struct {
    const char *param, *filter;
} usage_params[] = {
    {"UserId", "user_id"}, {"ResourceId", "resource_id"}, {"UsageType", "usage_type"},
    {"StartTime", "start"}, {"EndTime", "end"},
};

/* {"a_b": v} -> {"aB": v}, the EC2 element names botocore expects; sets as *Set. */
static json_t *camel(const json_t *o)
{
    json_t *out = json_object(), *v;
    const char *k;
    json_object_foreach((json_t *)o, k, v) {
        char name[64];
        size_t n = 0;
        /* upper-case the letter after each '_' */
        for (const char *c = k; *c && n < sizeof name - 1; c++) {
            if (*c == '_' && c[1]) {
                c++;
                name[n++] = (char)(*c >= 'a' && *c <= 'z' ? *c - 32 : *c);
            } else {
                name[n++] = *c;
            }
        }
        name[n] = 0;
        json_object_set(out, name, v);
    }
    return out;
}

static json_t *camel_set(const json_t *a)
{
    json_t *out = json_array(), *v;
    size_t i;
    json_array_foreach((json_t *)a, i, v)
        json_array_append_new(out, camel(v));
    return out;
}

int accounting_describe_usage(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    JSON_AUTO json_t *q = json_object();
    for (size_t i = 0; i < sizeof usage_params / sizeof usage_params[0]; i++) {
        const char *v = json_str(body, usage_params[i].param, NULL);
        if (v)
            json_object_set_new(q, usage_params[i].filter, json_string(v));
    }
    const char *max = json_str(body, "MaxResults", NULL);
    if (max)
        json_object_set_new(q, "limit", json_integer(atoll(max)));
    JSON_AUTO json_t *r = NULL;
    if (accounting_usage(ctx, q, &r, e) < 0)
        return -1;
    *reply = json_pack("{s:o, s:o, s:O}", "usageRecordSet", camel_set(json_object_get(r, "records")),
                       "usageTotalSet", camel_set(json_object_get(r, "totals")), "truncated",
                       json_object_get(r, "truncated"));
    return 0;
}

int accounting_get_invoice(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    JSON_AUTO json_t *q = json_pack("{s:s}", "month", json_str(body, "Month", ""));
    JSON_AUTO json_t *r = NULL;
    if (accounting_invoice(ctx, q, &r, e) < 0)
        return -1;
    json_t *inv = json_pack("{s:O, s:O, s:O, s:O, s:o}", "accountId", json_object_get(r, "account_id"),
                            "month", json_object_get(r, "month"), "currency", json_object_get(r, "currency"),
                            "total", json_object_get(r, "total"), "lineSet",
                            camel_set(json_object_get(r, "lines")));
    *reply = json_pack("{s:o}", "invoice", inv);
    return 0;
}
