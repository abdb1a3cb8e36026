/* signing.c - identity.signing_key: the gateway's (and object store's) only way to
 * check a SigV4 signature. It gets the date/region/service-scoped signing key, never
 * the secret, together with who the key belongs to and the user's policies, and caches
 * that until the date changes or an invalidation event arrives. */
#include <openssl/hmac.h>
#include <stdlib.h>
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

/* The key's owner, its decrypted secret (wiped by the caller) and its policies. */
static int load_key(bus_ctx_t *ctx, const char *akid, char secret[64], json_t **who, verr_t *e)
{
    identity_t *id = service_of(ctx)->state;
    db_t *db = service_db(ctx);
    const char *p[] = {akid};
    PG_AUTO PGresult *r = db_prepared(db, e, "sk_lookup",
        "SELECT k.secret_box, k.status, u.id, u.name, u.path, u.is_admin, a.id, a.is_operator, a.name "
        "FROM access_keys k JOIN users u ON u.id = k.user_id JOIN accounts a ON a.id = u.account_id "
        "WHERE k.id = $1 "
        /* a console session's own key (sessions.c), while the session lives */
        "UNION ALL SELECT s.secret_box, 'Active', u.id, u.name, u.path, u.is_admin, a.id, a.is_operator, a.name "
        "FROM console_sessions s JOIN users u ON u.id = s.user_id JOIN accounts a ON a.id = u.account_id "
        "WHERE s.access_key_id = $1 AND s.expires_at > now()", 1, p);
    if (!r)
        return -1;
    if (PQntuples(r) == 0 || strcmp(PQgetvalue(r, 0, 1), "Active"))
        return verr_set(e, 401, "AuthFailure", "AWS was not able to validate the provided access credentials");
    size_t boxlen;
    unsigned char *box = PQunescapeBytea((const unsigned char *)PQgetvalue(r, 0, 0), &boxlen);
    int ok = box && identity_open(id, box, boxlen, secret, 64) == 0;
    PQfreemem(box);
    if (!ok) {
        log_error("access key %s: secret does not decrypt (wrong master key?)", akid);
        return verr_set(e, 500, "InternalError", "credential store error");
    }
    if (identity_who(ctx, r, 2, who, e) < 0) {
        sodium_memzero(secret, 64);
        return -1;
    }
    return 0;
}

/* Who a user is, as the gateway and the object store see a caller: row r of res holds,
 * from column c on, user id, name, path, is_admin, account id, is_operator, account
 * name. The user's policies are read here. */
int identity_who(bus_ctx_t *ctx, PGresult *res, int c, json_t **who, verr_t *e)
{
    const char *user_id = PQgetvalue(res, 0, c);
    const char *pp[] = {user_id};
    PG_AUTO PGresult *pol = db_prepared(service_db(ctx), e, "sk_policies",
        "SELECT document FROM user_policies WHERE user_id = $1 ORDER BY name", 1, pp);
    if (!pol)
        return -1;
    json_t *docs = json_array();
    for (int i = 0; i < PQntuples(pol); i++) {
        json_t *d = json_loads(PQgetvalue(pol, i, 0), 0, NULL);
        if (d)
            json_array_append_new(docs, d);
    }
    const char *account = PQgetvalue(res, 0, c + 4);
    char *arn = xasprintf("arn:aws:iam::%s:user%s%s", account, PQgetvalue(res, 0, c + 2), PQgetvalue(res, 0, c + 1));
    *who = json_pack("{s:s, s:s, s:s, s:s, s:b, s:b, s:o, s:s}", "account_id", account, "user_id", user_id,
                     "user_name", PQgetvalue(res, 0, c + 1), "arn", arn, "is_admin", !strcmp(PQgetvalue(res, 0, c + 3), "t"),
                     "is_operator", !strcmp(PQgetvalue(res, 0, c + 5), "t"), "policies", docs, "account_name",
                     PQgetvalue(res, 0, c + 6));
    free(arn);
    return 0;
}

/* identity.sign_v2: the legacy (SigV2, HMAC-SHA1) signature of a string to sign, for
 * clients that still presign S3 URLs that way (boto3's default for S3 presigned URLs).
 * SigV2 keys are the raw secret, so the signing happens here and only the signature
 * and the owner leave. */
int identity_sign_v2(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    const char *akid = json_str(body, "access_key_id", NULL), *sts = json_str(body, "string_to_sign", NULL);
    if (!valid_scope_part(akid, 128) || !sts || strlen(sts) > 16384)
        return verr_set(e, 400, "MissingParameter", "access_key_id and string_to_sign are required");
    char secret[64];
    json_t *who = NULL;
    if (load_key(ctx, akid, secret, &who, e) < 0)
        return -1;
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    HMAC(EVP_sha1(), secret, (int)strlen(secret), (const unsigned char *)sts, strlen(sts), mac, &maclen);
    sodium_memzero(secret, sizeof secret);
    char b64[64];
    sodium_bin2base64(b64, sizeof b64, mac, maclen, sodium_base64_VARIANT_ORIGINAL);
    json_object_set_new(who, "signature", json_string(b64));
    *reply = who;
    return 0;
}

int identity_signing_key(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    const char *akid = json_str(body, "access_key_id", NULL);
    const char *date = json_str(body, "date", NULL);
    const char *region = json_str(body, "region", NULL);
    const char *service = json_str(body, "service", NULL);
    if (!valid_scope_part(akid, 128) || !valid_scope_part(date, 8) || !valid_scope_part(region, 63) ||
        !valid_scope_part(service, 31))
        return verr_set(e, 400, "MissingParameter", "access_key_id, date, region and service are required");
    char secret[64];
    json_t *who = NULL;
    if (load_key(ctx, akid, secret, &who, e) < 0)
        return -1;
    uint8_t key[SIGV4_KEY_LEN];
    sigv4_signing_key(secret, date, region, service, key);
    sodium_memzero(secret, sizeof secret);
    char hex[SIGV4_KEY_LEN * 2 + 1];
    sodium_bin2hex(hex, sizeof hex, key, sizeof key);
    sodium_memzero(key, sizeof key);
    json_object_set_new(who, "key", json_string(hex));
    sodium_memzero(hex, sizeof hex);
    *reply = who;
    return 0;
}
