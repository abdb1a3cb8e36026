/* signing.c - identity.signing_key: the gateway's (and object store's) only way to
 * check a SigV4 signature. It gets the date/region/service-scoped signing key, never
 * the secret, together with who the key belongs to and the user's policies, and caches
 * that until the date changes or an invalidation event arrives. */
#include <string.h>

#include "identity.h"
#include "jsonutil.h"
#include "log.h"
#include "sigv4.h"

static int valid_scope_part(const char *s, size_t max)
{
    size_t n = s ? strlen(s) : 0;
    return n > 0 && n <= max;
}

int identity_signing_key(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    identity_t *id = service_of(ctx)->state;
    db_t *db = service_db(ctx);
    const char *akid = json_str(body, "access_key_id", NULL);
    const char *date = json_str(body, "date", NULL);
    const char *region = json_str(body, "region", NULL);
    const char *service = json_str(body, "service", NULL);
    if (!valid_scope_part(akid, 128) || !valid_scope_part(date, 8) || !valid_scope_part(region, 63) ||
        !valid_scope_part(service, 31))
        return verr_set(e, 400, "MissingParameter", "access_key_id, date, region and service are required");

    const char *p[] = {akid};
    PG_AUTO PGresult *r = db_prepared(db, e, "sk_lookup",
        "SELECT k.secret_box, k.status, u.id, u.name, u.path, u.is_admin, a.id, a.is_operator "
        "FROM access_keys k JOIN users u ON u.id = k.user_id JOIN accounts a ON a.id = u.account_id "
        "WHERE k.id = $1", 1, p);
    if (!r)
        return -1;
    if (PQntuples(r) == 0)
        return verr_set(e, 401, "AuthFailure", "AWS was not able to validate the provided access credentials");
    if (strcmp(PQgetvalue(r, 0, 1), "Active"))
        return verr_set(e, 401, "AuthFailure", "AWS was not able to validate the provided access credentials");

    size_t boxlen;
    unsigned char *box = PQunescapeBytea((const unsigned char *)PQgetvalue(r, 0, 0), &boxlen);
    char secret[64];
    int ok = box && identity_open(id, box, boxlen, secret, sizeof secret) == 0;
    PQfreemem(box);
    if (!ok) {
        log_error("access key %s: secret does not decrypt (wrong master key?)", akid);
        return verr_set(e, 500, "InternalError", "credential store error");
    }
    uint8_t key[SIGV4_KEY_LEN];
    sigv4_signing_key(secret, date, region, service, key);
    sodium_memzero(secret, sizeof secret);
    char hex[SIGV4_KEY_LEN * 2 + 1];
    sodium_bin2hex(hex, sizeof hex, key, sizeof key);
    sodium_memzero(key, sizeof key);

    const char *user_id = PQgetvalue(r, 0, 2);
    const char *pp[] = {user_id};
    PG_AUTO PGresult *pol = db_prepared(db, e, "sk_policies",
        "SELECT document FROM user_policies WHERE user_id = $1 ORDER BY name", 1, pp);
    if (!pol)
        return -1;
    json_t *docs = json_array();
    for (int i = 0; i < PQntuples(pol); i++) {
        json_t *d = json_loads(PQgetvalue(pol, i, 0), 0, NULL);
        if (d)
            json_array_append_new(docs, d);
    }
    const char *account = PQgetvalue(r, 0, 6);
    *reply = json_pack("{s:s, s:s, s:s, s:s, s:s, s:b, s:b, s:o}", "key", hex, "account_id", account,
                       "user_id", user_id, "user_name", PQgetvalue(r, 0, 3), "arn", "",
                       "is_admin", !strcmp(PQgetvalue(r, 0, 5), "t"),
                       "is_operator", !strcmp(PQgetvalue(r, 0, 7), "t"), "policies", docs);
    char *arn = xasprintf("arn:aws:iam::%s:user%s%s", account, PQgetvalue(r, 0, 4), PQgetvalue(r, 0, 3));
    json_object_set_new(*reply, "arn", json_string(arn));
    free(arn);
    sodium_memzero(hex, sizeof hex);
    return 0;
}
