/* db.c - libpq wrapper with reconnect, prepared-statement cache and migrations. */
#include "db.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

#define DB_MAX_PREPARED 256

struct db {
    PGconn *conn;
    char *url;
    char *prepared[DB_MAX_PREPARED];
    size_t nprepared;
    char sqlstate[6];
    char schema[64];
};

static void forget_prepared(db_t *db)
{
    for (size_t i = 0; i < db->nprepared; i++) {
        free(db->prepared[i]);
        db->prepared[i] = NULL;
    }
    db->nprepared = 0;
}

/* Server notices ("schema already exists, skipping") belong in our log at debug
 * level, not raw on stderr where they would break JSON-lines logging. */
static void notice_to_log(void *arg, const char *message)
{
    (void)arg;
    log_debug("postgres: %.*s", (int)strcspn(message, "\n"), message);
}

db_t *db_connect(const char *url, verr_t *e)
{
    if (!url || !*url) {
        verr_set(e, 500, "InternalError", "db.url is not configured");
        return NULL;
    }
    db_t *db = xcalloc(1, sizeof *db);
    db->url = xstrdup(url);
    db->conn = PQconnectdb(url);
    if (PQstatus(db->conn) != CONNECTION_OK) {
        verr_set(e, 503, "ServiceUnavailable", "database connection failed: %s",
                 PQerrorMessage(db->conn));
        db_close(db);
        return NULL;
    }
    PQsetNoticeProcessor(db->conn, notice_to_log, NULL);
    return db;
}

void db_close(db_t *db)
{
    if (!db)
        return;
    if (db->conn)
        PQfinish(db->conn);
    forget_prepared(db);
    free(db->url);
    free(db);
}

PGconn *db_conn(db_t *db) { return db->conn; }

const char *db_last_sqlstate(const db_t *db) { return db ? db->sqlstate : ""; }

void db_result_free(PGresult **r)
{
    if (*r)
        PQclear(*r);
    *r = NULL;
}

static int valid_schema(const char *s);

static int apply_schema(db_t *db, verr_t *e)
{
    if (!db->schema[0])
        return 0;
    char sql[128];
    snprintf(sql, sizeof sql, "SET search_path = %s, public", db->schema);
    PGresult *r = PQexec(db->conn, sql);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
    return ok ? 0 : verr_set(e, 503, "ServiceUnavailable", "cannot set search_path: %s", PQerrorMessage(db->conn));
}

int db_set_schema(db_t *db, const char *schema, verr_t *e)
{
    if (!valid_schema(schema))
        return verr_set(e, 500, "InternalError", "bad schema name");
    snprintf(db->schema, sizeof db->schema, "%s", schema);
    return apply_schema(db, e);
}

/* Reset a dead connection before use. Prepared statements die with it. */
static int ensure_conn(db_t *db, verr_t *e)
{
    if (PQstatus(db->conn) == CONNECTION_OK)
        return 0;
    log_warn("database connection lost, reconnecting");
    PQreset(db->conn);
    forget_prepared(db);
    if (PQstatus(db->conn) != CONNECTION_OK)
        return verr_set(e, 503, "ServiceUnavailable", "database unavailable");
    return apply_schema(db, e);
}

static PGresult *check(db_t *db, PGresult *r, verr_t *e, const char *what)
{
    ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) {
        db->sqlstate[0] = 0;
        return r;
    }
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    snprintf(db->sqlstate, sizeof db->sqlstate, "%s", state ? state : "");
    log_error("sql %s failed (%s): %s", what, db->sqlstate,
              r ? PQresultErrorMessage(r) : PQerrorMessage(db->conn));
    verr_set(e, 500, "InternalError", "database error (%s)", db->sqlstate[0] ? db->sqlstate : "connection");
    if (r)
        PQclear(r);
    return NULL;
}

PGresult *db_query(db_t *db, verr_t *e, const char *sql, int nparams, const char *const *params)
{
    if (ensure_conn(db, e) < 0)
        return NULL;
    PGresult *r = PQexecParams(db->conn, sql, nparams, NULL, params, NULL, NULL, 0);
    return check(db, r, e, "query");
}

PGresult *db_prepared(db_t *db, verr_t *e, const char *name, const char *sql, int nparams,
                      const char *const *params)
{
    if (ensure_conn(db, e) < 0)
        return NULL;
    int known = 0;
    for (size_t i = 0; i < db->nprepared && !known; i++)
        known = !strcmp(db->prepared[i], name);
    if (!known) {
        if (db->nprepared == DB_MAX_PREPARED)
            return db_query(db, e, sql, nparams, params);
        PGresult *p = check(db, PQprepare(db->conn, name, sql, nparams, NULL), e, name);
        if (!p)
            return NULL;
        PQclear(p);
        db->prepared[db->nprepared++] = xstrdup(name);
    }
    PGresult *r = PQexecPrepared(db->conn, name, nparams, params, NULL, NULL, 0);
    return check(db, r, e, name);
}

int db_exec(db_t *db, verr_t *e, const char *sql)
{
    if (ensure_conn(db, e) < 0)
        return -1;
    PGresult *r = check(db, PQexec(db->conn, sql), e, "exec");
    if (!r)
        return -1;
    PQclear(r);
    return 0;
}

int db_begin(db_t *db, verr_t *e) { return db_exec(db, e, "BEGIN"); }
int db_commit(db_t *db, verr_t *e) { return db_exec(db, e, "COMMIT"); }

void db_rollback(db_t *db)
{
    PGresult *r = PQexec(db->conn, "ROLLBACK");
    PQclear(r);
}

int db_ping(db_t *db)
{
    verr_t e;
    PG_AUTO PGresult *r = db_query(db, &e, "SELECT 1", 0, NULL);
    return r != NULL;
}

static int valid_schema(const char *s)
{
    if (!s || !*s || strlen(s) > 48)
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_'))
            return 0;
    return 1;
}

int db_migrate(db_t *db, const char *schema, const db_migration_t *m, size_t n, verr_t *e)
{
    if (!valid_schema(schema))
        return verr_set(e, 500, "InternalError", "bad schema name '%s'", schema ? schema : "");
    const char *lockp[] = {schema};
    PG_AUTO PGresult *lk = db_query(db, e, "SELECT pg_advisory_lock(hashtext('virga.migrate.' || $1))", 1, lockp);
    if (!lk)
        return -1;
    int rc = -1;
    AUTOFREE char *setup = xasprintf(
        "CREATE SCHEMA IF NOT EXISTS %s;"
        "CREATE TABLE IF NOT EXISTS %s.schema_migrations ("
        " version integer PRIMARY KEY, name text NOT NULL,"
        " applied_at timestamptz NOT NULL DEFAULT now())", schema, schema);
    if (db_exec(db, e, setup) < 0)
        goto out;
    for (size_t i = 0; i < n; i++) {
        char ver[16];
        snprintf(ver, sizeof ver, "%d", m[i].version);
        AUTOFREE char *q = xasprintf("SELECT 1 FROM %s.schema_migrations WHERE version = $1", schema);
        const char *p1[] = {ver};
        PG_AUTO PGresult *seen = db_query(db, e, q, 1, p1);
        if (!seen)
            goto out;
        if (PQntuples(seen) > 0)
            continue;
        AUTOFREE char *path = xasprintf("SET LOCAL search_path = %s, public", schema);
        AUTOFREE char *ins = xasprintf("INSERT INTO %s.schema_migrations (version, name) VALUES ($1, $2)", schema);
        const char *p2[] = {ver, m[i].name};
        if (db_begin(db, e) < 0)
            goto out;
        PGresult *done = NULL;
        if (db_exec(db, e, path) < 0 || db_exec(db, e, m[i].sql) < 0 ||
            !(done = db_query(db, e, ins, 2, p2)) || db_commit(db, e) < 0) {
            if (done)
                PQclear(done);
            db_rollback(db);
            log_error("migration %s %03d_%s failed: %s", schema, m[i].version, m[i].name, e ? e->message : "");
            goto out;
        }
        PQclear(done);
        log_info("applied migration %s %03d_%s", schema, m[i].version, m[i].name);
    }
    rc = 0;
out:;
    PGresult *ul = db_query(db, NULL, "SELECT pg_advisory_unlock(hashtext('virga.migrate.' || $1))", 1, lockp);
    if (ul)
        PQclear(ul);
    return rc;
}
