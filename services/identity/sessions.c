/* sessions.c - web console logins (docs/console.md). The gateway sends the account (id
 * or alias), user name, password and the client's address; a right password gives a
 * random session token (the browser keeps it in an HttpOnly cookie; only its SHA-256
 * is stored here) and a CSRF token. Every console call then asks identity.console_session
 * for the caller the token stands for, the same caller object a signing key lookup
 * gives, so the gateway applies the user's policies exactly as for the CLI.
 *
 * Failed logins are counted per user in a window (console.login_max_failures within
 * console.login_window_s): past the limit the user cannot log in, even with the right
 * password, until the window ends. Sessions last console.session_ttl_s.
 *
 * A session also holds its own temporary access key (ASIA...; secret sealed like any
 * other), which identity.signing_key honours while the session lives: the gateway signs
 * the console's object store requests with it (console_s3.c) and never sees a secret.
 * Ending a session publishes an invalidation of that key, so no cache keeps it alive. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "identity.h"
#include "jsonutil.h"
#include "log.h"

#define TOKEN_BYTES 32
#define TOKEN_HEX (TOKEN_BYTES * 2)

static const char auth_failed[] = "The account, user name or password is wrong.";

static void random_hex(char *out, size_t bytes)
{
    unsigned char raw[TOKEN_BYTES];
    randombytes_buf(raw, bytes);
    sodium_bin2hex(out, bytes * 2 + 1, raw, bytes);
    sodium_memzero(raw, sizeof raw);
}

/* The stored form of a token: hex of its SHA-256. -1 unless token is 64 hex digits. */
static int token_hash(const char *token, char out[crypto_hash_sha256_BYTES * 2 + 1])
{
    if (!token || strlen(token) != TOKEN_HEX || strspn(token, "0123456789abcdef") != TOKEN_HEX)
        return -1;
    unsigned char h[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(h, (const unsigned char *)token, TOKEN_HEX);
    sodium_bin2hex(out, crypto_hash_sha256_BYTES * 2 + 1, h, sizeof h);
    return 0;
}

static long cfg(bus_ctx_t *ctx, const char *key, long def)
{
    return config_int(service_of(ctx)->cfg, key, def);
}

/* One more failure for user_id in the current window (a new window when the last ended). */
static int count_failure(db_t *db, const char *user_id, long window_s, verr_t *e)
{
    char w[32];
    snprintf(w, sizeof w, "%ld", window_s);
    const char *p[] = {user_id, w};
    PG_AUTO PGresult *r = db_query(db, e,
        "INSERT INTO console_login_failures (user_id, failures, window_from) VALUES ($1, 1, now()) "
        "ON CONFLICT (user_id) DO UPDATE SET "
        "failures = CASE WHEN console_login_failures.window_from > now() - $2::int * interval '1 second' "
        "  THEN console_login_failures.failures + 1 ELSE 1 END, "
        "window_from = CASE WHEN console_login_failures.window_from > now() - $2::int * interval '1 second' "
        "  THEN console_login_failures.window_from ELSE now() END", 2, p);
    return r ? 0 : -1;
}

int identity_console_login(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    const char *acct = json_str(body, "account", ""), *user = json_str(body, "user_name", "");
    const char *pw = json_str(body, "password", ""), *addr = json_str(body, "address", "");
    if (!*acct || !*user || !*pw || strlen(acct) > 64 || strlen(user) > 64 || strlen(pw) > 128)
        return verr_set(e, 400, "MissingParameter", "Give the account id or alias, the user name and the password.");
    db_t *db = service_db(ctx);
    long max = cfg(ctx, "console.login_max_failures", 5), window_s = cfg(ctx, "console.login_window_s", 300);
    long ttl_s = cfg(ctx, "console.session_ttl_s", 8 * 3600);
    char w[32];
    snprintf(w, sizeof w, "%ld", window_s);
    const char *p[] = {acct, user, w};
    PG_AUTO PGresult *r = db_query(db, e,
        "SELECT u.password_hash, u.id, u.name, u.path, u.is_admin, a.id, a.is_operator, a.name, "
        "  coalesce(f.failures, 0), "
        "  greatest(0, ceil(extract(epoch FROM f.window_from + $3::int * interval '1 second' - now())))::bigint "
        "FROM users u JOIN accounts a ON a.id = u.account_id "
        "LEFT JOIN console_login_failures f ON f.user_id = u.id "
        "  AND f.window_from > now() - $3::int * interval '1 second' "
        "WHERE (a.id::text = $1 OR a.name = $1) AND u.name = $2", 3, p);
    if (!r)
        return -1;
    if (PQntuples(r) == 0)
        return verr_set(e, 401, "AuthFailure", auth_failed);
    const char *uid = PQgetvalue(r, 0, 1);
    if (atol(PQgetvalue(r, 0, 8)) >= max)
        return verr_set(e, 429, "Throttling", "Too many failed logins for this user; try again in %s seconds.",
                        PQgetvalue(r, 0, 9));
    int ok = !PQgetisnull(r, 0, 0) && crypto_pwhash_str_verify(PQgetvalue(r, 0, 0), pw, strlen(pw)) == 0;
    if (!ok) {
        if (count_failure(db, uid, window_s, e) < 0)
            return -1;
        log_info("console login of %s in %s from %s refused", user, acct, addr);
        return verr_set(e, 401, "AuthFailure", auth_failed);
    }
    char token[TOKEN_HEX + 1], csrf[TOKEN_HEX + 1], hash[crypto_hash_sha256_BYTES * 2 + 1], ttl[32];
    random_hex(token, TOKEN_BYTES);
    random_hex(csrf, TOKEN_BYTES);
    token_hash(token, hash);
    snprintf(ttl, sizeof ttl, "%ld", ttl_s);
    char akid[21], secret[41];
    identity_new_access_key(akid, secret);
    memcpy(akid, "ASIA", 4);   /* AWS's prefix for temporary credentials */
    unsigned char *box = NULL;
    size_t boxlen = 0;
    int sealed = identity_seal(service_of(ctx)->state, secret, &box, &boxlen);
    sodium_memzero(secret, sizeof secret);
    if (sealed < 0)
        return verr_set(e, 500, "InternalError", "cannot seal the session's key");
    char *boxhex = xmalloc(boxlen * 2 + 1);
    sodium_bin2hex(boxhex, boxlen * 2 + 1, box, boxlen);
    free(box);
    const char *ps[] = {hash, uid, csrf, addr, ttl, akid, boxhex};
    const char *pf[] = {uid};
    PG_AUTO PGresult *del = db_query(db, e, "DELETE FROM console_login_failures WHERE user_id = $1", 1, pf);
    PG_AUTO PGresult *ins = del ? db_query(db, e,
        "INSERT INTO console_sessions (token_hash, user_id, csrf, address, expires_at, access_key_id, secret_box) "
        "VALUES (decode($1, 'hex'), $2, $3, $4, now() + $5::int * interval '1 second', $6, decode($7, 'hex'))",
        7, ps) : NULL;
    free(boxhex);
    json_t *who = NULL;
    if (!ins || identity_who(ctx, r, 1, &who, e) < 0) {
        sodium_memzero(token, sizeof token);
        return -1;
    }
    json_object_set_new(who, "token", json_string(token));
    json_object_set_new(who, "csrf", json_string(csrf));
    json_object_set_new(who, "session_id", json_stringn(hash, 16));
    json_object_set_new(who, "expires_in", json_integer(ttl_s));
    sodium_memzero(token, sizeof token);
    log_info("console login of %s in %s from %s", user, PQgetvalue(r, 0, 5), addr);
    *reply = who;
    return 0;
}

int identity_console_session(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    char hash[crypto_hash_sha256_BYTES * 2 + 1];
    if (token_hash(json_str(body, "token", NULL), hash) < 0)
        return verr_set(e, 401, "AuthFailure", "Your console session has ended; log in again.");
    const char *p[] = {hash};
    PG_AUTO PGresult *r = db_prepared(service_db(ctx), e, "console_session",
        "SELECT u.id, u.name, u.path, u.is_admin, a.id, a.is_operator, a.name, s.csrf, "
        "  ceil(extract(epoch FROM s.expires_at - now()))::bigint, s.access_key_id "
        "FROM console_sessions s JOIN users u ON u.id = s.user_id JOIN accounts a ON a.id = u.account_id "
        "WHERE s.token_hash = decode($1, 'hex') AND s.expires_at > now()", 1, p);
    if (!r)
        return -1;
    if (PQntuples(r) == 0)
        return verr_set(e, 401, "AuthFailure", "Your console session has ended; log in again.");
    json_t *who = NULL;
    if (identity_who(ctx, r, 0, &who, e) < 0)
        return -1;
    json_object_set_new(who, "csrf", json_string(PQgetvalue(r, 0, 7)));
    json_object_set_new(who, "session_id", json_stringn(hash, 16));
    json_object_set_new(who, "expires_in", json_integer(atoll(PQgetvalue(r, 0, 8))));
    json_object_set_new(who, "s3_key_id", json_string(PQgetvalue(r, 0, 9)));
    *reply = who;
    return 0;
}

/* Ended sessions (column 0: their keys): every gateway and object store drops the
 * signing keys it cached for them. */
static void forget_keys(bus_ctx_t *ctx, PGresult *r)
{
    for (int i = 0; i < PQntuples(r); i++)
        identity_changed(ctx, "access_key", PQgetvalue(r, i, 0));
}

int identity_console_logout(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    char hash[crypto_hash_sha256_BYTES * 2 + 1];
    if (token_hash(json_str(body, "token", NULL), hash) == 0) {
        const char *p[] = {hash};
        PG_AUTO PGresult *r = db_query(service_db(ctx), e,
            "DELETE FROM console_sessions WHERE token_hash = decode($1, 'hex') RETURNING access_key_id", 1, p);
        if (!r)
            return -1;
        forget_keys(ctx, r);
    }
    *reply = json_object();
    return 0;
}

int identity_console_end_sessions(bus_ctx_t *ctx, const char *user_id, verr_t *e)
{
    const char *p[] = {user_id};
    PG_AUTO PGresult *r = db_query(service_db(ctx), e,
        "DELETE FROM console_sessions WHERE user_id = $1 RETURNING access_key_id", 1, p);
    if (!r)
        return -1;
    forget_keys(ctx, r);
    return PQntuples(r);
}

/* identity.console_revoke (operator): end every console session of a user. */
int identity_console_revoke(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    const char *acct = json_str(body, "account_id", ""), *user = json_str(body, "user_name", "");
    const char *p[] = {acct, user};
    PG_AUTO PGresult *r = db_query(service_db(ctx), e,
        "DELETE FROM console_sessions s USING users u WHERE u.id = s.user_id AND u.account_id::text = $1 "
        "AND u.name = $2 RETURNING s.access_key_id", 2, p);
    if (!r)
        return -1;
    forget_keys(ctx, r);
    *reply = json_pack("{s:i}", "revoked", PQntuples(r));
    return 0;
}

void identity_console_expire(db_t *db)
{
    verr_t e;
    PG_AUTO PGresult *a = db_query(db, &e, "DELETE FROM console_sessions WHERE expires_at < now()", 0, NULL);
    PG_AUTO PGresult *b = a ? db_query(db, &e,
        "DELETE FROM console_login_failures WHERE window_from < now() - interval '1 day'", 0, NULL) : NULL;
    if (!b)
        log_warn("expiring console sessions: %s", e.message);
}
