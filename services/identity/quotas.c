/* quotas.c - per-account limits. Defaults come from config (quota.<resource>); an
 * operator can override them per account. The services that own each resource
 * (compute: instances, vcpus, memory_mib, key_pairs; network: elastic_ips, vpcs; objectstore:
 * buckets, stored_bytes; identity itself: users) ask identity.quota_get and refuse what
 * would exceed it, counting and inserting in one transaction under a lock on the account
 * (db_lock_xact), so concurrent requests cannot pass a limit together. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "identity.h"
#include "jsonutil.h"

static const struct {
    const char *name;
    long long def;
} resources[] = {
    {"instances", 20}, {"vcpus", 64}, {"memory_mib", 262144}, {"elastic_ips", 5}, {"vpcs", 5},
    {"buckets", 100}, {"stored_bytes", 1099511627776LL},
    {"key_pairs", 5000}, {"users", 5000},   /* AWS's: key pairs per region, IAM users per account */
};

static int known(const char *r)
{
    for (size_t i = 0; r && i < ARRAY_LEN(resources); i++)
        if (!strcmp(resources[i].name, r))
            return 1;
    return 0;
}

static long long configured(const config_t *cfg, size_t i)
{
    char key[64];
    snprintf(key, sizeof key, "quota.%s", resources[i].name);
    const char *v = config_str(cfg, key, NULL);
    return v ? atoll(v) : resources[i].def;
}

int identity_quota_of(bus_ctx_t *ctx, const char *acct, const char *resource, long long *max, verr_t *e)
{
    size_t i = 0;
    while (i < ARRAY_LEN(resources) && strcmp(resources[i].name, resource))
        i++;
    if (i == ARRAY_LEN(resources))
        return verr_set(e, 500, "InternalError", "no quota named %s", resource);
    const char *p[] = {acct, resource};
    PG_AUTO PGresult *r = db_prepared(service_db(ctx), e, "quota_one",
                                      "SELECT max_value FROM quotas WHERE account_id = $1 AND resource = $2", 2, p);
    if (!r)
        return -1;
    *max = PQntuples(r) ? atoll(PQgetvalue(r, 0, 0)) : configured(service_of(ctx)->cfg, i);
    return 0;
}

int identity_quota_get(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    service_t *svc = service_of(ctx);
    const char *acct = json_str(body, "account_id", json_str(ctx->msg->caller, "account_id", NULL));
    if (!acct || strlen(acct) != 12)
        return verr_set(e, 400, "InvalidParameterValue", "account_id must be 12 digits");
    const char *p[] = {acct};
    PG_AUTO PGresult *a = db_prepared(service_db(ctx), e, "quota_acct", "SELECT 1 FROM accounts WHERE id = $1", 1, p);
    if (!a)
        return -1;
    if (PQntuples(a) == 0)
        return verr_set(e, 404, "NoSuchEntity", "no account %s", acct);
    PG_AUTO PGresult *r = db_prepared(service_db(ctx), e, "quota_get",
                                      "SELECT resource, max_value FROM quotas WHERE account_id = $1", 1, p);
    if (!r)
        return -1;
    json_t *q = json_object();
    for (size_t i = 0; i < ARRAY_LEN(resources); i++)
        json_object_set_new(q, resources[i].name, json_integer(configured(svc->cfg, i)));
    for (int i = 0; i < PQntuples(r); i++)
        json_object_set_new(q, PQgetvalue(r, i, 0), json_integer(atoll(PQgetvalue(r, i, 1))));
    *reply = json_pack("{s:s, s:o}", "account_id", acct, "quotas", q);
    return 0;
}

int identity_quota_set(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    const char *acct = json_str(body, "account_id", NULL), *res = json_str(body, "resource", NULL);
    json_t *max = json_object_get(body, "max");
    if (!acct || strlen(acct) != 12 || !known(res) || !json_is_integer(max) || json_integer_value(max) < 0)
        return verr_set(e, 400, "InvalidParameterValue",
                        "account_id (12 digits), resource (instances, vcpus, memory_mib, elastic_ips, vpcs, buckets, "
                        "stored_bytes, key_pairs, users) and max (integer >= 0) are required");
    char v[32];
    snprintf(v, sizeof v, "%lld", (long long)json_integer_value(max));
    const char *p[] = {acct, res, v};
    PG_AUTO PGresult *r = db_query(service_db(ctx), e,
        "INSERT INTO quotas (account_id, resource, max_value) SELECT $1, $2, $3::bigint "
        "WHERE EXISTS (SELECT 1 FROM accounts WHERE id = $1) "
        "ON CONFLICT (account_id, resource) DO UPDATE SET max_value = EXCLUDED.max_value", 3, p);
    if (!r)
        return -1;
    if (strcmp(PQcmdTuples(r), "1"))
        return verr_set(e, 404, "NoSuchEntity", "no account %s", acct);
    if (identity_quota_get(ctx, body, reply, e) < 0)
        return -1;
    /* the owners keep the account's quotas (compute: launch_facts.c): the new ones */
    verr_t pe;
    bus_publish(ctx->bus, "virga.events", "identity.changed",
                json_pack("{s:s, s:s, s:O}", "what", "quota", "id", acct, "quotas", json_object_get(*reply, "quotas")),
                &pe);
    return 0;
}
