/* users.c - IAM users: CreateUser, GetUser, ListUsers, DeleteUser, and the lookups the
 * other IAM handlers share. Every query is scoped to the caller's account. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "identity.h"
#include "ids.h"
#include "jsonutil.h"
#include "replay.h"

#define USER_COLS "id, account_id, name, path, is_admin, " \
    "to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"

const char *identity_caller_account(bus_ctx_t *ctx, verr_t *e)
{
    const char *a = json_str(ctx->msg->caller, "account_id", NULL);
    if (!a || strlen(a) != 12) {
        verr_set(e, 400, "ValidationError", "request has no calling account");
        return NULL;
    }
    return a;
}

/* IAM: [\w+=,.@-]{1,64} */
static int valid_user_name(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n < 1 || n > 64)
        return 0;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && !strchr("_+=,.@-", *s))
            return 0;
    return 1;
}

static int valid_path(const char *p)
{
    size_t n = strlen(p);
    if (n < 1 || n > 512 || p[0] != '/' || p[n - 1] != '/')
        return 0;
    for (; *p; p++)
        if (*p < 0x21 || *p > 0x7e)
            return 0;
    return 1;
}

static void fill_user(PGresult *r, int row, identity_user_t *u)
{
    snprintf(u->id, sizeof u->id, "%s", PQgetvalue(r, row, 0));
    snprintf(u->account_id, sizeof u->account_id, "%s", PQgetvalue(r, row, 1));
    snprintf(u->name, sizeof u->name, "%s", PQgetvalue(r, row, 2));
    snprintf(u->path, sizeof u->path, "%s", PQgetvalue(r, row, 3));
    u->is_admin = !strcmp(PQgetvalue(r, row, 4), "t");
    snprintf(u->created, sizeof u->created, "%s", PQgetvalue(r, row, 5));
    snprintf(u->arn, sizeof u->arn, "arn:aws:iam::%s:user%s%s", u->account_id, u->path, u->name);
}

json_t *identity_user_json(const identity_user_t *u)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:s}", "Path", u->path, "UserName", u->name, "UserId", u->id,
                     "Arn", u->arn, "CreateDate", u->created);
}

int identity_find_user(bus_ctx_t *ctx, const json_t *body, identity_user_t *u, verr_t *e)
{
    const char *acct = identity_caller_account(ctx, e);
    if (!acct)
        return -1;
    const char *name = json_str(body, "UserName", NULL);
    PGresult *r;
    if (!name || !*name) {
        const char *uid = json_str(ctx->msg->caller, "user_id", "");
        const char *p[] = {acct, uid};
        r = db_prepared(service_db(ctx), e, "user_by_id",
                        "SELECT " USER_COLS " FROM users WHERE account_id = $1 AND id = $2", 2, p);
    } else {
        const char *p[] = {acct, name};
        r = db_prepared(service_db(ctx), e, "user_by_name",
                        "SELECT " USER_COLS " FROM users WHERE account_id = $1 AND name = $2", 2, p);
    }
    if (!r)
        return -1;
    int found = PQntuples(r) > 0;
    if (found)
        fill_user(r, 0, u);
    PQclear(r);
    if (!found)
        return verr_set(e, 404, "NoSuchEntity", "The user with name %s cannot be found.", name ? name : "(caller)");
    return 0;
}

void identity_changed(bus_ctx_t *ctx, const char *what, const char *id)
{
    verr_t e;
    bus_publish(ctx->bus, "virga.events", "identity.changed", json_pack("{s:s, s:s}", "what", what, "id", id), &e);
}

int iam_create_user(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    const char *acct = identity_caller_account(ctx, e);
    if (!acct)
        return -1;
    const char *name = json_str(body, "UserName", NULL);
    const char *path = json_str(body, "Path", "/");
    if (!valid_user_name(name))
        return verr_set(e, 400, "ValidationError",
                        "1 validation error detected: Value at 'userName' failed to satisfy constraint: "
                        "Member must satisfy regular expression pattern: [\\w+=,.@-]+ and length 1..64");
    if (!valid_path(path))
        return verr_set(e, 400, "ValidationError", "The specified value for path is invalid. It must begin and end with / and contain only alphanumeric characters and/or / characters.");
    char hex[IDS_HEX_DIGITS + 1];
    ids_hex(hex, IDS_HEX_DIGITS);
    char uid[32];
    snprintf(uid, sizeof uid, "AIDA%s", hex);
    for (char *c = uid + 4; *c; c++)
        *c = (char)toupper((unsigned char)*c);
    long long max;
    if (identity_quota_of(ctx, acct, "users", &max, e) < 0)
        return -1;
    /* insert, then count, under the account's lock: concurrent creates see each other */
    db_t *db = service_db(ctx);
    const char *p[] = {uid, acct, name, path};
    PG_AUTO PGresult *r = NULL;
    PG_AUTO PGresult *n = NULL;
    if (db_begin(db, e) < 0 || db_lock_xact(db, "users", acct, e) < 0 ||
        !(r = db_prepared(db, e, "user_insert", "INSERT INTO users (id, account_id, name, path) VALUES ($1, $2, $3, $4) "
                          "ON CONFLICT (account_id, name) DO NOTHING RETURNING " USER_COLS, 4, p)) ||
        !(n = db_prepared(db, e, "user_count", "SELECT count(*) FROM users WHERE account_id = $1",
                          1, p + 1))) {
        db_rollback(db);
        return -1;
    }
    char rkey[REPLAY_KEY_LEN];
    replay_key(ctx, "CreateUser", body, rkey);
    if (PQntuples(r) == 0) {
        db_rollback(db);
        verr_t e2 = {0};
        /* the same request retried by its caller after a lost answer (replay.h) */
        if (replay_recall_existing(db, rkey, NULL, "users", acct, reply, &e2) == 1)
            return 0;
        return verr_set(e, 409, "EntityAlreadyExists", "User with name %s already exists.", name);
    }
    if (atoll(PQgetvalue(n, 0, 0)) > max) {
        db_rollback(db);
        return verr_set(e, 409, "LimitExceeded", "Cannot exceed quota for UsersPerAccount: %lld", max);
    }
    identity_user_t u;
    fill_user(r, 0, &u);
    json_t *out = json_pack("{s:o}", "User", identity_user_json(&u));
    if (replay_remember(db, rkey, u.id, out, NULL, (int)config_int(service_of(ctx)->cfg,
                        "identity.retry_window_s", 600), e) < 0 || db_commit(db, e) < 0) {
        db_rollback(db);
        json_decref(out);
        return -1;
    }
    *reply = out;
    return 0;
}

int iam_get_user(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    identity_user_t u;
    if (identity_find_user(ctx, body, &u, e) < 0)
        return -1;
    *reply = json_pack("{s:o}", "User", identity_user_json(&u));
    return 0;
}

int iam_list_users(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    const char *acct = identity_caller_account(ctx, e);
    if (!acct)
        return -1;
    const char *prefix = json_str(body, "PathPrefix", "/");
    const char *marker = json_str(body, "Marker", "");
    long max = 100;
    const char *mi = json_str(body, "MaxItems", NULL);
    if (mi && (sscanf(mi, "%ld", &max) != 1 || max < 1 || max > 1000))
        return verr_set(e, 400, "ValidationError", "MaxItems must be between 1 and 1000");
    char lim[24];
    snprintf(lim, sizeof lim, "%ld", max + 1);
    const char *p[] = {acct, prefix, marker, lim};
    PG_AUTO PGresult *r = db_prepared(service_db(ctx), e, "user_list",
        "SELECT " USER_COLS " FROM users WHERE account_id = $1 AND starts_with(path, $2) AND name > $3 "
        "ORDER BY name LIMIT $4::int", 4, p);
    if (!r)
        return -1;
    json_t *users = json_array();
    int n = PQntuples(r), shown = n > max ? (int)max : n;
    for (int i = 0; i < shown; i++) {
        identity_user_t u;
        fill_user(r, i, &u);
        json_array_append_new(users, identity_user_json(&u));
    }
    *reply = json_pack("{s:o, s:b}", "Users", users, "IsTruncated", n > max);
    if (n > max)
        json_object_set_new(*reply, "Marker", json_string(PQgetvalue(r, shown - 1, 2)));
    return 0;
}

/* Lock the user's row, then look for what would be left behind, then delete: an
 * access key or policy being added meanwhile holds a key-share lock on the row (its
 * foreign key), so the lock waits for it and the count sees it (DeleteConflict); one
 * added after finds the row locked, then gone (NoSuchEntity). Without the lock, the
 * delete's cascade silently took the new key with it. */
static int delete_user_tx(db_t *db, const identity_user_t *u, verr_t *e)
{
    const char *p[] = {u->id};
    if (db_begin(db, e) < 0)
        return -1;
    PGresult *lock = NULL, *deps = NULL, *del = NULL;
    int rc = -1;
    if (!(lock = db_prepared(db, e, "user_lock", "SELECT 1 FROM users WHERE id = $1 FOR UPDATE", 1, p)))
        goto out;
    if (PQntuples(lock) == 0) {
        verr_set(e, 404, "NoSuchEntity", "The user with name %s cannot be found.", u->name);
        goto out;
    }
    if (!(deps = db_prepared(db, e, "user_deps",
                             "SELECT (SELECT count(*) FROM access_keys WHERE user_id = $1), "
                             "(SELECT count(*) FROM user_policies WHERE user_id = $1)", 1, p)))
        goto out;
    if (strcmp(PQgetvalue(deps, 0, 0), "0"))
        verr_set(e, 409, "DeleteConflict", "Cannot delete entity, must delete access keys first.");
    else if (strcmp(PQgetvalue(deps, 0, 1), "0"))
        verr_set(e, 409, "DeleteConflict", "Cannot delete entity, must delete policies first.");
    else if ((del = db_prepared(db, e, "user_delete", "DELETE FROM users WHERE id = $1", 1, p)))
        rc = db_commit(db, e);
out:
    if (rc < 0)
        db_rollback(db);
    if (lock) PQclear(lock);
    if (deps) PQclear(deps);
    if (del) PQclear(del);
    return rc;
}

int iam_delete_user(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    identity_user_t u;
    if (!json_str(body, "UserName", NULL))
        return verr_set(e, 400, "MissingParameter", "The request must contain the parameter UserName");
    if (identity_find_user(ctx, body, &u, e) < 0)
        return -1;
    if (u.is_admin)
        return verr_set(e, 409, "DeleteConflict", "Cannot delete the account's administrator user.");
    if (delete_user_tx(service_db(ctx), &u, e) < 0)
        return -1;
    identity_changed(ctx, "user", u.id);
    *reply = json_object();
    return 0;
}
