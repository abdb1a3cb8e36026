/* access_keys.c - IAM access keys: CreateAccessKey (at most two per user, as in AWS;
 * the secret is returned once), ListAccessKeys, UpdateAccessKey (Active/Inactive, which
 * every gateway honours at once through an invalidation event), DeleteAccessKey. */
#include <stdlib.h>
#include <string.h>

#include "identity.h"
#include "jsonutil.h"

#define MAX_KEYS_PER_USER 2
#define KEY_COLS "k.id, k.status, to_char(k.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"

int identity_insert_key_tx(bus_ctx_t *ctx, const char *user_id, char key_id[21], char secret[41], verr_t *e)
{
    identity_t *id = service_of(ctx)->state;
    db_t *db = service_db(ctx);
    identity_new_access_key(key_id, secret);
    unsigned char *box;
    size_t boxlen;
    identity_seal(id, secret, &box, &boxlen);
    size_t esclen;
    unsigned char *esc = PQescapeByteaConn(db_conn(db), box, boxlen, &esclen);
    free(box);
    /* lock the user's row, then count: concurrent creates for one user serialise, and
     * each statement's fresh snapshot (READ COMMITTED) sees the other's committed key */
    const char *pu[] = {user_id};
    const char *p[] = {key_id, user_id, (const char *)esc};
    PGresult *lock = NULL, *cnt = NULL, *ins = NULL;
    int rc = -1;
    if ((lock = db_prepared(db, e, "key_lock_user", "SELECT 1 FROM users WHERE id = $1 FOR UPDATE", 1, pu)) &&
        PQntuples(lock) == 0) {
        /* deleted since it was looked up (DeleteUser locks the row the same way) */
        rc = verr_set(e, 404, "NoSuchEntity", "The user %s was deleted.", user_id);
    } else if (lock &&
               (cnt = db_prepared(db, e, "key_count", "SELECT count(*) FROM access_keys WHERE user_id = $1", 1, pu))) {
        if (atoi(PQgetvalue(cnt, 0, 0)) >= MAX_KEYS_PER_USER)
            rc = verr_set(e, 409, "LimitExceeded", "Cannot exceed quota for AccessKeysPerUser: %d", MAX_KEYS_PER_USER);
        else if ((ins = db_prepared(db, e, "key_insert",
                      "INSERT INTO access_keys (id, user_id, secret_box) VALUES ($1, $2, $3::bytea)", 3, p)))
            rc = 0;
    }
    PQfreemem(esc);
    if (lock) PQclear(lock);
    if (cnt) PQclear(cnt);
    if (ins) PQclear(ins);
    return rc;
}

int identity_insert_key(bus_ctx_t *ctx, const char *user_id, char key_id[21], char secret[41], verr_t *e)
{
    db_t *db = service_db(ctx);
    if (db_begin(db, e) < 0)
        return -1;
    if (identity_insert_key_tx(ctx, user_id, key_id, secret, e) < 0 || db_commit(db, e) < 0) {
        db_rollback(db);
        return -1;
    }
    return 0;
}

int iam_create_access_key(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    identity_user_t u;
    if (identity_find_user(ctx, body, &u, e) < 0)
        return -1;
    char key_id[21], secret[41];
    if (identity_insert_key(ctx, u.id, key_id, secret, e) < 0)
        return -1;
    const char *p[] = {key_id};
    PG_AUTO PGresult *r = db_prepared(service_db(ctx), e, "key_get",
        "SELECT " KEY_COLS " FROM access_keys k WHERE k.id = $1", 1, p);
    if (!r || PQntuples(r) == 0) {
        sodium_memzero(secret, sizeof secret);
        if (!r)
            return -1;
        return verr_set(e, 409, "ConcurrentModification", "The access key %s was deleted as it was being created.", key_id);
    }
    *reply = json_pack("{s:{s:s, s:s, s:s, s:s, s:s}}", "AccessKey", "UserName", u.name, "AccessKeyId", key_id,
                       "Status", PQgetvalue(r, 0, 1), "SecretAccessKey", secret, "CreateDate", PQgetvalue(r, 0, 2));
    sodium_memzero(secret, sizeof secret);
    return 0;
}

int iam_list_access_keys(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    identity_user_t u;
    if (identity_find_user(ctx, body, &u, e) < 0)
        return -1;
    const char *p[] = {u.id};
    PG_AUTO PGresult *r = db_prepared(service_db(ctx), e, "key_list",
        "SELECT " KEY_COLS " FROM access_keys k WHERE k.user_id = $1 ORDER BY k.created_at, k.id", 1, p);
    if (!r)
        return -1;
    json_t *list = json_array();
    for (int i = 0; i < PQntuples(r); i++)
        json_array_append_new(list, json_pack("{s:s, s:s, s:s, s:s}", "UserName", u.name, "AccessKeyId",
                                              PQgetvalue(r, i, 0), "Status", PQgetvalue(r, i, 1), "CreateDate",
                                              PQgetvalue(r, i, 2)));
    *reply = json_pack("{s:o, s:b}", "AccessKeyMetadata", list, "IsTruncated", 0);
    return 0;
}

/* The key must belong to the named user (or the caller) in the caller's account. */
static int owned_key(bus_ctx_t *ctx, const json_t *body, identity_user_t *u, const char **key_id, verr_t *e)
{
    *key_id = json_str(body, "AccessKeyId", NULL);
    if (!*key_id || strlen(*key_id) < 16 || strlen(*key_id) > 128)
        return verr_set(e, 400, "ValidationError", "AccessKeyId is required (16 to 128 characters)");
    if (identity_find_user(ctx, body, u, e) < 0)
        return -1;
    const char *p[] = {*key_id, u->id};
    PG_AUTO PGresult *r = db_prepared(service_db(ctx), e, "key_owned",
        "SELECT 1 FROM access_keys WHERE id = $1 AND user_id = $2", 2, p);
    if (!r)
        return -1;
    if (PQntuples(r) == 0)
        return verr_set(e, 404, "NoSuchEntity", "The Access Key with id %s cannot be found.", *key_id);
    return 0;
}

int iam_update_access_key(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    const char *status = json_str(body, "Status", NULL);
    if (!status || (strcmp(status, "Active") && strcmp(status, "Inactive")))
        return verr_set(e, 400, "ValidationError", "Status must be Active or Inactive");
    identity_user_t u;
    const char *key_id;
    if (owned_key(ctx, body, &u, &key_id, e) < 0)
        return -1;
    const char *p[] = {key_id, status};
    PG_AUTO PGresult *r = db_prepared(service_db(ctx), e, "key_status",
        "UPDATE access_keys SET status = $2 WHERE id = $1", 2, p);
    if (!r)
        return -1;
    identity_changed(ctx, "access_key", key_id);
    *reply = json_object();
    return 0;
}

int iam_delete_access_key(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    identity_user_t u;
    const char *key_id;
    if (owned_key(ctx, body, &u, &key_id, e) < 0)
        return -1;
    const char *p[] = {key_id};
    PG_AUTO PGresult *r = db_prepared(service_db(ctx), e, "key_delete", "DELETE FROM access_keys WHERE id = $1", 1, p);
    if (!r)
        return -1;
    identity_changed(ctx, "access_key", key_id);
    *reply = json_object();
    return 0;
}
