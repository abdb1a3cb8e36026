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
    const char *acct = config_str(svc->cfg, "identity.operator_account_id", "000000000001");
    int found = existing(service_db(ctx), acct, reply, e);
    if (found != 0)
        return found < 0 ? -1 : 0;
    int rc = identity_create_account(ctx, acct, "admin", 1, reply, e);
    if (rc == 0) /* a concurrent bootstrap won the race: report its account */
        return existing(service_db(ctx), acct, reply, e) < 0 ? -1 : 0;
    return rc < 0 ? -1 : 0;
}
