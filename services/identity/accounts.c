/* accounts.c - operator-only messages (over the bus, never through the gateway):
 * create, list and delete accounts (tenants), and user passwords (argon2id). A new
 * account gets an administrator user "admin" and one access key, returned once. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "identity.h"
#include "ids.h"
#include "jsonutil.h"
#include "log.h"

/* Create account `acct` named `name` with its admin user and first key in one
 * transaction. Returns 1 when created, 0 when the id or name already exists, -1 on
 * error. On 1, *reply holds the credentials (secret included). */
int identity_create_account(bus_ctx_t *ctx, const char *acct, const char *name, int is_operator,
                            json_t **reply, verr_t *e)
{
    db_t *db = service_db(ctx);
    char hex[17];
    ids_hex(hex, 16);
    char user_id[32] = "AIDA";
    for (int i = 0; i < 16; i++)
        user_id[4 + i] = (char)(hex[i] >= 'a' ? hex[i] - 32 : hex[i]);
    user_id[20] = 0;
    const char *p1[] = {acct, name, is_operator ? "t" : "f"};
    const char *p2[] = {user_id, acct};
    PGresult *r1 = NULL, *r2 = NULL;
    char key_id[21], secret[41];
    int rc = -1;
    if (db_begin(db, e) < 0)
        return -1;
    r1 = db_query(db, e, "INSERT INTO accounts (id, name, is_operator) VALUES ($1, $2, $3::boolean) "
                         "ON CONFLICT DO NOTHING", 3, p1);
    if (!r1)
        goto fail;
    if (strcmp(PQcmdTuples(r1), "1")) {
        rc = 0;
        goto fail;
    }
    r2 = db_query(db, e, "INSERT INTO users (id, account_id, name, is_admin) VALUES ($1, $2, 'admin', true)", 2, p2);
    /* the key in the same transaction: an account exists with its key or not at all,
     * so a failure here leaves nothing that would block creating it again */
    if (!r2 || identity_insert_key_tx(ctx, user_id, key_id, secret, e) < 0 || db_commit(db, e) < 0)
        goto fail;
    *reply = json_pack("{s:s, s:s, s:s, s:s, s:s, s:b}", "account_id", acct, "account_name", name,
                       "user_name", "admin", "access_key_id", key_id, "secret_access_key", secret, "created", 1);
    log_info("created account %s (%s) with access key %s", acct, name, key_id);
    rc = 1;
    goto out;
fail:
    db_rollback(db);
out:
    sodium_memzero(secret, sizeof secret);
    if (r1) PQclear(r1);
    if (r2) PQclear(r2);
    return rc;
}

static int valid_account_name(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n < 1 || n > 64)
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || strchr("-_.", *s)))
            return 0;
    return 1;
}

int identity_account_create(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    const char *name = json_str(body, "name", NULL);
    if (!valid_account_name(name))
        return verr_set(e, 400, "InvalidParameterValue", "account name: 1 to 64 of A-Z a-z 0-9 - _ .");
    for (int attempt = 0; attempt < 5; attempt++) {
        unsigned char r[12];
        randombytes_buf(r, sizeof r);
        char acct[13];
        for (int i = 0; i < 12; i++)
            acct[i] = (char)('0' + r[i] % 10);
        acct[0] = (char)('1' + r[0] % 9);   /* never 000000000001-style operator ids */
        acct[12] = 0;
        int rc = identity_create_account(ctx, acct, name, 0, reply, e);
        if (rc != 0)
            return rc < 0 ? -1 : 0;
        /* 0: the id or the name exists; which one? */
        const char *p[] = {name};
        PG_AUTO PGresult *x = db_query(service_db(ctx), e, "SELECT 1 FROM accounts WHERE name = $1", 1, p);
        if (!x)
            return -1;
        if (PQntuples(x) > 0)
            return verr_set(e, 409, "EntityAlreadyExists", "an account named %s already exists", name);
    }
    return verr_set(e, 500, "InternalError", "could not allocate an account id");
}

int identity_account_list(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    (void)body;
    PG_AUTO PGresult *r = db_query(service_db(ctx), e,
        "SELECT a.id, a.name, a.is_operator, (SELECT count(*) FROM users u WHERE u.account_id = a.id), "
        "to_char(a.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), coalesce(a.email, ''), "
        "a.canonical_id FROM accounts a ORDER BY a.id", 0, NULL);
    if (!r)
        return -1;
    json_t *list = json_array();
    for (int i = 0; i < PQntuples(r); i++)
        json_array_append_new(list, json_pack("{s:s, s:s, s:b, s:i, s:s, s:s, s:s}", "account_id", PQgetvalue(r, i, 0),
                                              "name", PQgetvalue(r, i, 1), "is_operator", !strcmp(PQgetvalue(r, i, 2), "t"),
                                              "users", atoi(PQgetvalue(r, i, 3)), "created", PQgetvalue(r, i, 4),
                                              "email", PQgetvalue(r, i, 5), "canonical_id", PQgetvalue(r, i, 6)));
    *reply = json_pack("{s:o}", "accounts", list);
    return 0;
}

int identity_account_delete(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    const char *acct = json_str(body, "account_id", NULL);
    if (!acct || strlen(acct) != 12)
        return verr_set(e, 400, "InvalidParameterValue", "account_id must be 12 digits");
    const char *p[] = {acct};
    PG_AUTO PGresult *r = db_query(service_db(ctx), e,
        "DELETE FROM accounts WHERE id = $1 AND NOT is_operator RETURNING id", 1, p);
    if (!r)
        return -1;
    if (PQntuples(r) == 0)
        return verr_set(e, 404, "NoSuchEntity", "no tenant account %s (the operator account cannot be deleted)", acct);
    identity_changed(ctx, "account", acct);
    *reply = json_pack("{s:s}", "deleted", acct);
    return 0;
}

static int user_in(bus_ctx_t *ctx, const json_t *body, char uid[32], verr_t *e)
{
    const char *acct = json_str(body, "account_id", NULL), *name = json_str(body, "user_name", NULL);
    if (!acct || !name)
        return verr_set(e, 400, "MissingParameter", "account_id and user_name are required");
    const char *p[] = {acct, name};
    PG_AUTO PGresult *r = db_query(service_db(ctx), e, "SELECT id FROM users WHERE account_id = $1 AND name = $2", 2, p);
    if (!r)
        return -1;
    if (PQntuples(r) == 0)
        return verr_set(e, 404, "NoSuchEntity", "no user %s in account %s", name, acct);
    snprintf(uid, 32, "%s", PQgetvalue(r, 0, 0));
    return 0;
}

int identity_set_password(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    const char *pw = json_str(body, "password", NULL);
    if (!pw || strlen(pw) < 8 || strlen(pw) > 128)
        return verr_set(e, 400, "PasswordPolicyViolation", "passwords have 8 to 128 characters");
    char uid[32];
    if (user_in(ctx, body, uid, e) < 0)
        return -1;
    char hash[crypto_pwhash_STRBYTES];
    if (crypto_pwhash_str(hash, pw, strlen(pw), crypto_pwhash_OPSLIMIT_INTERACTIVE,
                          crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0)
        return verr_set(e, 500, "InternalError", "password hashing ran out of memory");
    const char *p[] = {uid, hash};
    PG_AUTO PGresult *r = db_query(service_db(ctx), e, "UPDATE users SET password_hash = $2 WHERE id = $1", 2, p);
    /* a new password ends the console sessions the old one opened */
    if (!r || identity_console_end_sessions(ctx, uid, e) < 0)
        return -1;
    *reply = json_object();
    return 0;
}

int identity_verify_password(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    const char *pw = json_str(body, "password", "");
    char uid[32];
    if (user_in(ctx, body, uid, e) < 0)
        return -1;
    const char *p[] = {uid};
    PG_AUTO PGresult *r = db_query(service_db(ctx), e, "SELECT password_hash FROM users WHERE id = $1", 1, p);
    if (!r)
        return -1;
    int ok = !PQgetisnull(r, 0, 0) && crypto_pwhash_str_verify(PQgetvalue(r, 0, 0), pw, strlen(pw)) == 0;
    *reply = json_pack("{s:b}", "valid", ok);
    return 0;
}
