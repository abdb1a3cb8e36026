/* replay.c - remembered answers for retried requests (replay.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "jsonutil.h"
#include "replay.h"
#include "sigv4.h"

void replay_key(const bus_ctx_t *ctx, const char *action, const json_t *body, char out[REPLAY_KEY_LEN])
{
    json_t *k = json_pack("{s:s, s:s, s:s, s:O}", "account", json_str(ctx->msg->caller, "account_id", ""), "user",
                          json_str(ctx->msg->caller, "user_id", ""), "action", action, "body", body);
    char *s = json_dumps(k, JSON_COMPACT | JSON_SORT_KEYS);
    sigv4_sha256_hex(s, strlen(s), out);
    free(s);
    json_decref(k);
}

int replay_remember(db_t *db, const char *key, const char *resource, const json_t *reply,
                    const unsigned char *seal, int ttl_s, verr_t *e)
{
    char *doc = json_dumps(reply, JSON_COMPACT);
    size_t len = strlen(doc), n = len;
    unsigned char *blob = (unsigned char *)doc;
    if (seal) {
        n = crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES + len;
        blob = xmalloc(n);
        randombytes_buf(blob, crypto_secretbox_NONCEBYTES);
        crypto_secretbox_easy(blob + crypto_secretbox_NONCEBYTES, (unsigned char *)doc, len, blob, seal);
        sodium_memzero(doc, len);
        free(doc);
    }
    size_t b64len = sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_ORIGINAL);
    char *b64 = xmalloc(b64len);
    sodium_bin2base64(b64, b64len, blob, n, sodium_base64_VARIANT_ORIGINAL);
    sodium_memzero(blob, n);
    free(blob);
    char ttl[24];
    snprintf(ttl, sizeof ttl, "%d", ttl_s);
    const char *p[] = {key, resource, b64, seal ? "t" : "f", ttl};
    PGresult *r = db_prepared(db, e, "replay_put",
        "INSERT INTO request_results (key, resource, result, sealed, expires_at) "
        "VALUES ($1, $2, $3, $4::boolean, now() + make_interval(secs => $5::int)) "
        "ON CONFLICT (key) DO UPDATE SET resource = EXCLUDED.resource, result = EXCLUDED.result, "
        "sealed = EXCLUDED.sealed, expires_at = EXCLUDED.expires_at", 5, p);
    sodium_memzero(b64, strlen(b64));
    free(b64);
    if (!r)
        return -1;
    PQclear(r);
    return 0;
}

int replay_recall(db_t *db, const char *key, const unsigned char *seal, json_t **reply, char **resource, verr_t *e)
{
    *reply = NULL;
    *resource = NULL;
    const char *p[] = {key};
    PG_AUTO PGresult *r = db_prepared(db, e, "replay_get",
        "SELECT resource, result, sealed FROM request_results WHERE key = $1 AND expires_at > now()", 1, p);
    if (!r)
        return -1;
    if (PQntuples(r) == 0)
        return 0;
    const char *b64 = PQgetvalue(r, 0, 1);
    size_t n = 0, cap = strlen(b64) + 1;
    unsigned char *blob = xmalloc(cap);
    if (sodium_base642bin(blob, cap, b64, strlen(b64), NULL, &n, NULL, sodium_base64_VARIANT_ORIGINAL) < 0) {
        free(blob);
        blob = NULL;
    }
    int sealed = !strcmp(PQgetvalue(r, 0, 2), "t");
    char *doc = NULL;
    if (blob && sealed && seal && n >= crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES) {
        size_t len = n - crypto_secretbox_NONCEBYTES - crypto_secretbox_MACBYTES;
        doc = xmalloc(len + 1);
        if (crypto_secretbox_open_easy((unsigned char *)doc, blob + crypto_secretbox_NONCEBYTES,
                                       n - crypto_secretbox_NONCEBYTES, blob, seal) == 0)
            doc[len] = 0;
        else {
            free(doc);
            doc = NULL;
        }
    } else if (blob && !sealed) {
        doc = xmalloc(n + 1);
        memcpy(doc, blob, n);
        doc[n] = 0;
    }
    if (blob) {
        sodium_memzero(blob, n);
        free(blob);
    }
    if (!doc)
        return verr_set(e, 500, "InternalError", "a remembered answer cannot be read (wrong key?)");
    *reply = json_loads(doc, 0, NULL);
    sodium_memzero(doc, strlen(doc));
    free(doc);
    if (!*reply)
        return verr_set(e, 500, "InternalError", "a remembered answer is not JSON");
    *resource = xstrdup(PQgetvalue(r, 0, 0));
    return 1;
}

int replay_recall_existing(db_t *db, const char *key, const unsigned char *seal, const char *table,
                           const char *account, json_t **reply, verr_t *e)
{
    json_t *old = NULL;
    AUTOFREE char *id = NULL;
    int rc = replay_recall(db, key, seal, &old, &id, e);
    if (rc <= 0)
        return rc;
    AUTOFREE char *name = xasprintf("replay_exists_%s", table);
    AUTOFREE char *sql = xasprintf("SELECT 1 FROM %s WHERE id = $1 AND account_id = $2", table);
    const char *p[] = {id, account};
    PG_AUTO PGresult *r = db_prepared(db, e, name, sql, 2, p);
    if (!r || PQntuples(r) == 0) {
        json_decref(old);
        return r ? 0 : -1;
    }
    *reply = old;
    return 1;
}

int replay_expire(db_t *db, verr_t *e)
{
    PG_AUTO PGresult *r = db_prepared(db, e, "replay_expire", "DELETE FROM request_results WHERE expires_at <= now()",
                                      0, NULL);
    return r ? 0 : -1;
}

int replay_load_key(const char *path, unsigned char key[crypto_secretbox_KEYBYTES], verr_t *e)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return verr_set(e, 500, "InvalidConfig", "cannot open %s: %s", path, strerror(errno));
    struct stat st;
    int bad_mode = fstat(fd, &st) == 0 && (st.st_mode & 077);
    ssize_t n = read(fd, key, crypto_secretbox_KEYBYTES);
    close(fd);
    if (bad_mode)
        return verr_set(e, 500, "InvalidConfig", "%s is readable by others: chmod 600 it", path);
    if (n != crypto_secretbox_KEYBYTES)
        return verr_set(e, 500, "InvalidConfig", "%s must hold %d random bytes", path, crypto_secretbox_KEYBYTES);
    return 0;
}
