/* key_pairs.c - EC2 key pairs: CreateKeyPair (rsa or ed25519; the private key is in the
 * reply, and sealed for compute.key_pair_retry_window_s in request_results so that a
 * client retrying after a lost answer gets it rather than InvalidKeyPair.Duplicate:
 * common/replay.h), ImportKeyPair, DescribeKeyPairs (names, ids, filters, tags,
 * IncludePublicKey), DeleteKeyPair. Scoped to the caller's account; the operator's
 * administrator (caller_is_operator_admin, not any user of the operator account) sees
 * every account's key pairs, each tagged with its owner. */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "caller.h"
#include "compute.h"
#include "describe.h"
#include "ids.h"
#include "jsonutil.h"
#include "keypair.h"
#include "quota.h"
#include "replay.h"
#include "tags.h"

static int valid_key_name(const char *s, verr_t *e)
{
    size_t n = s ? strlen(s) : 0;
    int ok = n >= 1 && n <= 255;
    for (size_t i = 0; ok && i < n; i++)
        ok = s[i] >= 0x20 && s[i] < 0x7f;
    if (!ok)
        return verr_set(e, 400, "InvalidParameterValue",
                        "Value (%.64s) for parameter keyName is invalid: 1 to 255 ASCII characters.", s ? s : "");
    return 0;
}

/* Insert the key pair and its tags in one transaction, with the answer remembered for a
 * retry (rkey) when compute has a sealing key; InvalidKeyPair.Duplicate if the account
 * already has the name, ResourceLimitExceeded past the account's key_pairs quota (counted
 * under the account's lock, so concurrent creates cannot pass it). */
static int store(bus_ctx_t *ctx, const char *account, const char *name, const keypair_t *k, const json_t *tags,
                 const char *id, const json_t *reply, const char *rkey, long long max, verr_t *e)
{
    const compute_t *c = service_of(ctx)->state;
    db_t *db = service_db(ctx);
    const char *p[] = {id, account, name, k->type, k->fingerprint, k->public_openssh};
    PG_AUTO PGresult *r = NULL;
    PG_AUTO PGresult *n = NULL;
    if (db_begin(db, e) < 0 || db_lock_xact(db, "key_pairs", account, e) < 0 ||
        !(r = db_prepared(db, e, "kp_insert",
                          "INSERT INTO key_pairs (id, account_id, name, key_type, fingerprint, public_key) "
                          "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (account_id, name) DO NOTHING", 6, p)) ||
        !(n = db_prepared(db, e, "kp_count", "SELECT count(*) FROM key_pairs WHERE account_id = $1", 1, p + 1))) {
        db_rollback(db);
        return -1;
    }
    if (strcmp(PQcmdTuples(r), "1")) {
        db_rollback(db);
        return verr_set(e, 400, "InvalidKeyPair.Duplicate", "The keypair '%s' already exists.", name);
    }
    if (atoll(PQgetvalue(n, 0, 0)) > max) {
        db_rollback(db);
        return verr_set(e, 400, "ResourceLimitExceeded", "You have reached the limit of %lld key pairs.", max);
    }
    if (tags_put(db, id, account, tags, e) < 0 ||
        (c->can_seal && replay_remember(db, rkey, id, reply, c->seal, c->retry_window_s, e) < 0) ||
        db_commit(db, e) < 0) {
        db_rollback(db);
        return -1;
    }
    return 0;
}

/* The answer to this very request (same caller, same parameters) if compute gave it
 * already and the key pair still exists: 1 with *reply, 0, or -1 with e set. */
static int recall(bus_ctx_t *ctx, const char *account, const char *rkey, json_t **reply, verr_t *e)
{
    const compute_t *c = service_of(ctx)->state;
    if (!c->can_seal)
        return 0;
    return replay_recall_existing(service_db(ctx), rkey, c->seal, "key_pairs", account, reply, e);
}

/* DryRun of a key pair action: every check the action makes, then DryRunOperation; the
 * key pair named (by name or id) exists or not as `exists` says it must (-1: either). It
 * made, imported and deleted key pairs: `delete-key-pair --dry-run` deleted the key. */
static int key_pair_dry_run(bus_ctx_t *ctx, const char *account, const char *name, const char *id, int exists,
                            verr_t *e)
{
    const char *p[] = {account, id ? id : name};
    PG_AUTO PGresult *r = db_prepared(service_db(ctx), e, id ? "kp_dry_id" : "kp_dry_name",
                                      id ? "SELECT 1 FROM key_pairs WHERE account_id = $1 AND id = $2"
                                         : "SELECT 1 FROM key_pairs WHERE account_id = $1 AND name = $2", 2, p);
    if (!r)
        return -1;
    if (exists == 0 && PQntuples(r) > 0)
        return verr_set(e, 400, "InvalidKeyPair.Duplicate", "The keypair '%s' already exists.", name);
    if (exists == 1 && PQntuples(r) == 0)
        return verr_set(e, 400, "InvalidKeyPair.NotFound", "The key pair '%.64s' does not exist", id ? id : name);
    return verr_set(e, 412, "DryRunOperation", "Request would have succeeded, but DryRun flag is set.");
}

static int create_or_import(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e, int import)
{
    const char *account = caller_account(ctx->msg->caller, e), *name = json_str(body, "KeyName", NULL);
    if (!account || valid_key_name(name, e) < 0)
        return -1;
    /* a retry of a request already done gets its answer, private key included */
    char rkey[REPLAY_KEY_LEN];
    replay_key(ctx, import ? "ImportKeyPair" : "CreateKeyPair", body, rkey);
    int again = recall(ctx, account, rkey, reply, e);
    if (again != 0)
        return again < 0 ? -1 : 0;
    /* the account's limit, asked of identity without holding this worker (the handler
     * runs again with it), before the key is made */
    long long max;
    int timeout_ms = (int)config_int(service_of(ctx)->cfg, "compute.call_timeout_ms", 10000);
    if (quota_ask(ctx, account, "key_pairs", 5000, timeout_ms, &max, e) < 0)
        return -1;
    json_t *tags = describe_tag_spec(body, "key-pair", e);
    if (!tags)
        return -1;
    keypair_t k = {0};
    int rc = -1;
    if (import) {
        const char *b64 = json_str(body, "PublicKeyMaterial", "");
        size_t cap = strlen(b64) + 1, len = 0;
        unsigned char *raw = xmalloc(cap);
        /* botocore base64-encodes the blob; a hand-written request may send the line */
        if (sodium_base642bin(raw, cap, b64, strlen(b64), " \r\n", &len, NULL, sodium_base64_VARIANT_ORIGINAL) == 0)
            rc = keypair_import((const char *)raw, len, &k, e);
        else
            rc = keypair_import(b64, strlen(b64), &k, e);
        free(raw);
    } else {
        const char *fmt = json_str(body, "KeyFormat", "pem");
        if (strcmp(fmt, "pem"))
            verr_set(e, 400, "InvalidParameterValue", "KeyFormat '%.16s' is not supported; use pem", fmt);
        else
            rc = keypair_create(json_str(body, "KeyType", "rsa"), &k, e);
    }
    if (rc == 0 && json_flag(body, "DryRun")) {   /* the key made or read, nothing stored */
        keypair_free(&k);
        json_decref(tags);
        return key_pair_dry_run(ctx, account, name, NULL, 0, e);
    }
    char id[IDS_MAX];
    ids_new("key", id);
    json_t *out = NULL;
    if (rc == 0) {
        out = json_pack("{s:s, s:s, s:s, s:O}", "keyPairId", id, "keyName", name, "keyFingerprint", k.fingerprint,
                        "tagSet", tags);
        if (!import)
            json_object_set_new(out, "keyMaterial", json_string(k.private_pem));
        rc = store(ctx, account, name, &k, tags, id, out, rkey, max, e);
    }
    /* the same request, done meanwhile by another worker (the first try still running
     * when the client retried): its answer, not Duplicate */
    if (rc < 0 && !strcmp(e->code, "InvalidKeyPair.Duplicate")) {
        json_t *old = NULL;
        verr_t e2 = {0};
        if (recall(ctx, account, rkey, &old, &e2) == 1) {
            json_decref(out);
            out = old;
            rc = 0;
            verr_clear(e);
        }
    }
    if (rc == 0)
        *reply = out;
    else
        json_decref(out);
    keypair_free(&k);
    json_decref(tags);
    return rc;
}

int compute_create_key_pair(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    return create_or_import(ctx, body, reply, e, 0);
}

int compute_import_key_pair(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    return create_or_import(ctx, body, reply, e, 1);
}

/* In the operator's administrator's view, which account owns each key pair: a tag, as
 * KeyPairInfo has no owner field and every EC2 client shows tags and filters on them
 * (Name=tag:virga:owner-account-id). It replaces any tag of that key a tenant set. */
#define OWNER_TAG "virga:owner-account-id"

static json_t *with_owner_tag(const json_t *tags, const char *owner)
{
    json_t *out = json_array(), *t;
    size_t i;
    json_array_foreach(tags, i, t)
        if (strcmp(json_str(t, "key", ""), OWNER_TAG))
            json_array_append(out, t);
    json_array_append_new(out, json_pack("{s:s, s:s}", "key", OWNER_TAG, "value", owner));
    return out;
}

/* Every key pair the caller may see, as keySet items sorted by id: the account's own,
 * or every account's, each tagged with its owner, for the operator's administrator
 * (all_accounts). One query: each row brings its tags (as tags_load would give them,
 * sorted by key), so a describe is one database round trip, not two, and reads the tags
 * of key pairs only, not every tag of the account. */
#define KP_COLS "SELECT k.id, k.name, k.key_type, k.fingerprint, k.public_key, " \
                "extract(epoch FROM k.created_at)::bigint, k.account_id, " \
                "(SELECT json_agg(json_build_object('key', t.key, 'value', t.value) ORDER BY t.key) " \
                "FROM tags t WHERE t.resource_id = k.id"
static json_t *load_all(bus_ctx_t *ctx, const char *account, int all_accounts, int with_public, verr_t *e)
{
    db_t *db = service_db(ctx);
    const char *p[] = {account};
    PG_AUTO PGresult *r = all_accounts
        ? db_prepared(db, e, "kp_all_tagged", KP_COLS ") FROM key_pairs k ORDER BY k.id", 0, NULL)
        : db_prepared(db, e, "kp_account_tagged", KP_COLS " AND t.account_id = $1) FROM key_pairs k "
                      "WHERE k.account_id = $1 ORDER BY k.id", 1, p);
    if (!r)
        return NULL;
    json_t *items = json_array();
    for (int i = 0; i < PQntuples(r); i++) {
        char created[32];
        describe_time(atoll(PQgetvalue(r, i, 5)), created);
        JSON_AUTO json_t *t = PQgetisnull(r, i, 7) ? NULL : json_loads(PQgetvalue(r, i, 7), 0, NULL);
        json_t *tag_set = all_accounts ? with_owner_tag(t, PQgetvalue(r, i, 6)) : t ? json_incref(t) : json_array();
        json_t *it = json_pack("{s:s, s:s, s:s, s:s, s:o, s:s}", "keyPairId", PQgetvalue(r, i, 0), "keyFingerprint",
                               PQgetvalue(r, i, 3), "keyName", PQgetvalue(r, i, 1), "keyType", PQgetvalue(r, i, 2),
                               "tagSet", tag_set, "createTime", created);
        if (with_public)
            json_object_set_new(it, "publicKey", json_string(PQgetvalue(r, i, 4)));
        json_array_append_new(items, it);
    }
    return items;
}

/* KeyName.N / KeyPairId.N: each must exist, as in EC2. */
static json_t *select_listed(json_t *items, const json_t *body, const char *param, const char *field, verr_t *e)
{
    const char *missing = NULL;
    json_t *out = describe_select(items, body, param, field, &missing);
    if (!out)
        verr_set(e, 400, "InvalidKeyPair.NotFound", "The key pair '%.255s' does not exist", missing);
    return out;
}

int compute_describe_key_pairs(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    static const describe_field_t fields[] = {
        {"key-pair-id", "keyPairId"}, {"key-name", "keyName"}, {"fingerprint", "keyFingerprint"},
        {"key-type", "keyType"}, {NULL, NULL}};
    const char *account = caller_account(ctx->msg->caller, e);
    if (!account)
        return -1;
    json_t *all = load_all(ctx, account, caller_is_operator_admin(ctx->msg->caller), json_flag(body, "IncludePublicKey"), e);
    if (!all)
        return -1;
    json_t *named = select_listed(all, body, "KeyName", "keyName", e);
    json_decref(all);
    json_t *by_id = named ? select_listed(named, body, "KeyPairId", "keyPairId", e) : NULL;
    json_decref(named);
    json_t *out = by_id ? describe_filter(by_id, json_object_get(body, "Filter"), fields, e) : NULL;
    json_decref(by_id);
    if (!out)
        return -1;
    *reply = json_pack("{s:o}", "keySet", out);
    return 0;
}

int compute_delete_key_pair(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    const char *account = caller_account(ctx->msg->caller, e);
    if (!account)
        return -1;
    const char *name = json_str(body, "KeyName", NULL), *id = json_str(body, "KeyPairId", NULL);
    if (!name && !id)
        return verr_set(e, 400, "MissingParameter", "The request must contain the parameter KeyName or KeyPairId");
    if (json_flag(body, "DryRun"))   /* as below: an unknown id is an error, a name is not */
        return key_pair_dry_run(ctx, account, name, id, id ? 1 : -1, e);
    db_t *db = service_db(ctx);
    const char *p[] = {account, id ? id : name};
    PG_AUTO PGresult *r = id
        ? db_prepared(db, e, "kp_del_id", "DELETE FROM key_pairs WHERE account_id = $1 AND id = $2 RETURNING id", 2, p)
        : db_prepared(db, e, "kp_del_name", "DELETE FROM key_pairs WHERE account_id = $1 AND name = $2 RETURNING id", 2, p);
    if (!r)
        return -1;
    /* EC2 answers true for a name that does not exist; an unknown id is an error */
    if (PQntuples(r) == 0 && id)
        return verr_set(e, 400, "InvalidKeyPair.NotFound", "The key pair '%.64s' does not exist", id);
    if (PQntuples(r) > 0) {
        const char *del[] = {PQgetvalue(r, 0, 0)};
        PG_AUTO PGresult *t = db_prepared(db, e, "tag_del_res", "DELETE FROM tags WHERE resource_id = $1", 1, del);
        if (!t)
            return -1;
        *reply = json_pack("{s:b, s:s}", "return", 1, "keyPairId", PQgetvalue(r, 0, 0));
    } else {
        *reply = json_pack("{s:b}", "return", 1);
    }
    return 0;
}
