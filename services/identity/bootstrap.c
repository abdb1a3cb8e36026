/* bootstrap.c - identity's start-up (master key) and the first operator account.
 *
 * identity.bootstrap is idempotent: the first call creates the operator account
 * "admin" (id 000000000001 unless identity.operator_account_id says otherwise), its
 * admin user and one access key, and returns the secret; later calls return the same
 * account and key id without the secret, which is never shown twice. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "identity.h"
#include "ids.h"
#include "jsonutil.h"
#include "log.h"

int identity_init(service_t *svc, verr_t *e)
{
    if (sodium_init() < 0)
        return verr_set(e, 500, "InternalError", "libsodium failed to initialise");
    identity_t *id = xcalloc(1, sizeof *id);
    const char *path = config_str(svc->cfg, "identity.master_key_file", "/etc/virga/master.key");
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        free(id);
        return verr_set(e, 500, "InternalError", "master key %s: %s (deploy creates it, 0600, 32 random bytes)",
                        path, strerror(errno));
    }
    struct stat st;
    ssize_t n = read(fd, id->master_key, sizeof id->master_key);
    int bad_mode = fstat(fd, &st) == 0 && (st.st_mode & 077);
    close(fd);
    if (n != (ssize_t)sizeof id->master_key) {
        free(id);
        return verr_set(e, 500, "InternalError", "master key %s must hold %zu bytes", path, sizeof id->master_key);
    }
    if (bad_mode)
        log_warn("master key %s is readable by group or others; it should be 0600", path);
    svc->state = id;
    return 0;
}

void identity_fini(service_t *svc)
{
    if (svc->state)
        sodium_memzero(svc->state, sizeof(identity_t));
    free(svc->state);
    svc->state = NULL;
}

static int existing(db_t *db, const char *acct, json_t **reply, verr_t *e)
{
    const char *p[] = {acct};
    PG_AUTO PGresult *r = db_prepared(db, e, "boot_existing",
        "SELECT a.id, a.name, u.name, k.id FROM accounts a JOIN users u ON u.account_id = a.id "
        "AND u.is_admin LEFT JOIN access_keys k ON k.user_id = u.id AND k.status = 'Active' "
        "WHERE a.id = $1 ORDER BY k.created_at LIMIT 1", 1, p);
    if (!r)
        return -1;
    if (PQntuples(r) == 0)
        return 0;
    *reply = json_pack("{s:s, s:s, s:s, s:s?, s:b}", "account_id", PQgetvalue(r, 0, 0),
                       "account_name", PQgetvalue(r, 0, 1), "user_name", PQgetvalue(r, 0, 2),
                       "access_key_id", PQgetisnull(r, 0, 3) ? NULL : PQgetvalue(r, 0, 3), "created", 0);
    return 1;
}

int identity_bootstrap(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    (void)body;
    service_t *svc = service_of(ctx);
    identity_t *id = svc->state;
    db_t *db = service_db(ctx);
    if (!db)
        return verr_set(e, 503, "ServiceUnavailable", "identity has no database connection");
    const char *acct = config_str(svc->cfg, "identity.operator_account_id", "000000000001");

    int found = existing(db, acct, reply, e);
    if (found != 0)
        return found < 0 ? -1 : 0;

    char key_id[21], secret[41], user_id[IDS_MAX];
    identity_new_access_key(key_id, secret);
    snprintf(user_id, sizeof user_id, "AIDA%.16s", key_id + 4);
    unsigned char *box;
    size_t boxlen;
    identity_seal(id, secret, &box, &boxlen);
    size_t esclen;
    unsigned char *esc = PQescapeByteaConn(db_conn(db), box, boxlen, &esclen);
    free(box);

    const char *p1[] = {acct};
    const char *p2[] = {user_id, acct};
    const char *p3[] = {key_id, user_id, (const char *)esc};
    PGresult *r1 = NULL, *r2 = NULL, *r3 = NULL;
    int rc = -1;
    if (db_begin(db, e) < 0)
        goto out;
    /* ON CONFLICT keeps two concurrent bootstraps from creating two accounts */
    r1 = db_query(db, e, "INSERT INTO accounts (id, name, is_operator) VALUES ($1, 'admin', true) "
                         "ON CONFLICT DO NOTHING", 1, p1);
    if (!r1 || strcmp(PQcmdTuples(r1), "1")) {
        db_rollback(db);
        if (r1) /* someone else won the race: report theirs */
            rc = existing(db, acct, reply, e) < 0 ? -1 : 0;
        goto out;
    }
    r2 = db_query(db, e, "INSERT INTO users (id, account_id, name, is_admin) VALUES ($1, $2, 'admin', true)", 2, p2);
    r3 = r2 ? db_query(db, e, "INSERT INTO access_keys (id, user_id, secret_box) VALUES ($1, $2, $3::bytea)", 3, p3) : NULL;
    if (!r3 || db_commit(db, e) < 0) {
        db_rollback(db);
        goto out;
    }
    log_info("bootstrapped operator account %s with access key %s", acct, key_id);
    *reply = json_pack("{s:s, s:s, s:s, s:s, s:s, s:b}", "account_id", acct, "account_name", "admin",
                       "user_name", "admin", "access_key_id", key_id, "secret_access_key", secret, "created", 1);
    rc = 0;
out:
    sodium_memzero(secret, sizeof secret);
    PQfreemem(esc);
    if (r1) PQclear(r1);
    if (r2) PQclear(r2);
    if (r3) PQclear(r3);
    return rc;
}
