/* db.c - libpq wrapper with reconnect, prepared-statement cache and migrations.
 *
 * Lost connections. A connection can die under us at any moment (a PostgreSQL restart,
 * pg_terminate_backend, a failover, a cut network). Every statement goes through run(),
 * which deals with it at two points:
 *
 *  - before sending: a backend that ended while we were idle has usually said so
 *    already (its FATAL message and the end of the stream wait in our socket). We read
 *    them, see the dead connection and reset it before the statement leaves, so nothing
 *    of the statement can have run: this case costs nothing and risks nothing.
 *  - after sending: if the statement fails and the connection is now dead (PQstatus
 *    CONNECTION_BAD, or an SQLSTATE of class 08), we reset it and send the statement
 *    once more, preparing it again if it was a prepared one.
 *
 * The second point is a trade-off. libpq cannot tell whether the server ran a statement
 * whose connection broke before its result came back. Most often it did not (the
 * backend was gone before the statement arrived, or died while running it and rolled it
 * back), but an autocommit statement whose connection broke after its commit and before
 * its result reached us did run, and runs again: an UPDATE of x = x + 1 applies twice,
 * an INSERT may fail on its own row (23505), a sequence advances twice. We accept that:
 * handlers are idempotent by the project's rules (docs/bus.md: ClientToken, ON CONFLICT,
 * state checks), the window is small, and failing the request for a cause the tenant
 * cannot see is the worse outcome. Guaranteed: a statement is sent at most twice, and
 * never again on a new session when it depended on session state the new session lacks:
 *
 *  - inside a transaction (db_begin .. db_commit/db_rollback, or a BEGIN the server saw)
 *    the earlier statements died with the session. The statement fails, and so does
 *    every later one until the caller ends the transaction with db_rollback (or
 *    db_commit, which fails), so no part of a transaction ever runs in autocommit on a
 *    new session. COMMIT itself is never sent twice.
 *  - while db_migrate holds its session-level advisory lock, likewise.
 *
 * docs/architecture.md (Decisions, "Lost database connections") says the same. */
#include "db.h"

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "strbuf.h"

#define DB_MAX_PREPARED 256

struct db {
    PGconn *conn;
    char *url;
    char *prepared[DB_MAX_PREPARED];
    size_t nprepared;
    char sqlstate[6];
    char schema[64];
    /* Session state a reconnect cannot bring back; while either is set a lost
     * connection fails the caller instead of being reset under it. */
    int in_tx;           /* inside a transaction block, as last seen alive */
    int session_locks;   /* session-level advisory locks held (db_migrate) */
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

static int session_bound(const db_t *db) { return db->in_tx || db->session_locks; }

/* Follow the server's view of the transaction while the connection is alive, so a
 * BEGIN or COMMIT sent any way (db_begin, db_exec, a multi-statement string) counts. */
static void track_tx(db_t *db)
{
    switch (PQtransactionStatus(db->conn)) {
    case PQTRANS_IDLE:
        db->in_tx = 0;
        break;
    case PQTRANS_INTRANS:
    case PQTRANS_INERROR:
        db->in_tx = 1;
        break;
    default:   /* UNKNOWN (connection dead) or ACTIVE: keep what we knew */
        break;
    }
}

/* Read whatever the server sent while we were idle. A backend that was terminated or
 * shut down left a FATAL message and the end of the stream; consuming them marks the
 * connection CONNECTION_BAD now, before a statement is sent into it. Bounded, as a
 * chatty connection must not keep us here. */
static void read_idle_input(db_t *db)
{
    for (int i = 0; i < 4 && PQstatus(db->conn) == CONNECTION_OK; i++) {
        struct pollfd p = {.fd = PQsocket(db->conn), .events = POLLIN};
        if (p.fd < 0 || poll(&p, 1, 0) <= 0 || !PQconsumeInput(db->conn))
            return;
    }
}

/* Reconnect with the same parameters. Prepared statements died with the old session;
 * the search_path is set again. */
static int reset_conn(db_t *db, verr_t *e)
{
    PQreset(db->conn);
    forget_prepared(db);
    db->in_tx = 0;
    db->sqlstate[0] = 0;
    if (PQstatus(db->conn) != CONNECTION_OK)
        return verr_set(e, 503, "ServiceUnavailable", "database unavailable");
    return apply_schema(db, e);
}

/* A usable connection for the next statement: reset a dead one, unless it held session
 * state the caller relies on (a transaction, a session lock). */
static int ensure_conn(db_t *db, verr_t *e)
{
    read_idle_input(db);
    if (PQstatus(db->conn) == CONNECTION_OK) {
        track_tx(db);
        return 0;
    }
    if (session_bound(db)) {
        db->sqlstate[0] = 0;
        const char *where = db->in_tx ? "inside a transaction" : "while holding a session lock";
        log_error("database connection lost %s; failing until it ends", where);
        return verr_set(e, 503, "ServiceUnavailable", "database connection lost %s", where);
    }
    const char *why = PQerrorMessage(db->conn);
    log_warn("database connection lost (%.*s), reconnecting", (int)strcspn(why, "\n"), why);
    return reset_conn(db, e);
}

static int result_ok(const PGresult *r)
{
    ExecStatusType st = PQresultStatus(r);
    return st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK;
}

/* The statement failed because the connection broke, not because of its SQL. */
static int conn_lost(db_t *db, const PGresult *r)
{
    if (PQstatus(db->conn) == CONNECTION_BAD)
        return 1;
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    return state && !strncmp(state, "08", 2);   /* class 08: connection exception */
}

static PGresult *fail(db_t *db, PGresult *r, verr_t *e, const char *what)
{
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    snprintf(db->sqlstate, sizeof db->sqlstate, "%s", state ? state : "");
    log_error("sql %s failed (%s): %s", what, db->sqlstate,
              r ? PQresultErrorMessage(r) : PQerrorMessage(db->conn));
    verr_set(e, 500, "InternalError", "database error (%s)", db->sqlstate[0] ? db->sqlstate : "connection");
    if (r)
        PQclear(r);
    return NULL;
}

/* One statement as the caller gave it, so that it can be sent again after a reset. */
typedef struct stmt {
    const char *what;                 /* for the log: the prepared name, "query", "exec" */
    const char *name;                 /* prepared statement name, or NULL */
    const char *sql;
    int nparams;
    const char *const *params;
    int simple;                       /* PQexec: several statements, no parameters */
} stmt_t;

static int is_prepared(const db_t *db, const char *name)
{
    for (size_t i = 0; i < db->nprepared; i++)
        if (!strcmp(db->prepared[i], name))
            return 1;
    return 0;
}

/* Send s once; the result, failed or not (NULL if libpq could not even send it). */
static PGresult *send_stmt(db_t *db, const stmt_t *s)
{
    if (s->simple)
        return PQexec(db->conn, s->sql);
    if (!s->name || (!is_prepared(db, s->name) && db->nprepared == DB_MAX_PREPARED))
        return PQexecParams(db->conn, s->sql, s->nparams, NULL, s->params, NULL, NULL, 0);
    if (!is_prepared(db, s->name)) {
        PGresult *p = PQprepare(db->conn, s->name, s->sql, s->nparams, NULL);
        if (!result_ok(p))
            return p;   /* not remembered: the next call prepares again */
        PQclear(p);
        db->prepared[db->nprepared++] = xstrdup(s->name);
    }
    return PQexecPrepared(db->conn, s->name, s->nparams, s->params, NULL, NULL, 0);
}

/* Run s; on a connection lost under it outside session state, reset and send it once
 * more (the trade-off is in the comment at the top of this file). */
static PGresult *run(db_t *db, verr_t *e, const stmt_t *s)
{
    if (ensure_conn(db, e) < 0)
        return NULL;
    for (int retried = 0;; retried = 1) {
        int bound = session_bound(db);   /* as before the statement: BEGIN itself may retry */
        PGresult *r = send_stmt(db, s);
        track_tx(db);
        if (result_ok(r)) {
            db->sqlstate[0] = 0;
            return r;
        }
        if (retried || bound || !conn_lost(db, r))
            return fail(db, r, e, s->what);
        const char *why = r ? PQresultErrorMessage(r) : PQerrorMessage(db->conn);
        log_warn("sql %s: connection lost under it (%.*s), reconnecting to send it once more",
                 s->what, (int)strcspn(why, "\n"), why);
        if (r)
            PQclear(r);
        if (reset_conn(db, e) < 0)
            return NULL;
    }
}

PGresult *db_query(db_t *db, verr_t *e, const char *sql, int nparams, const char *const *params)
{
    const stmt_t s = {.what = "query", .sql = sql, .nparams = nparams, .params = params};
    return run(db, e, &s);
}

PGresult *db_prepared(db_t *db, verr_t *e, const char *name, const char *sql, int nparams,
                      const char *const *params)
{
    const stmt_t s = {.what = name, .name = name, .sql = sql, .nparams = nparams, .params = params};
    return run(db, e, &s);
}

int db_exec(db_t *db, verr_t *e, const char *sql)
{
    const stmt_t s = {.what = "exec", .sql = sql, .simple = 1};
    PGresult *r = run(db, e, &s);
    if (!r)
        return -1;
    PQclear(r);
    return 0;
}

int db_begin(db_t *db, verr_t *e)
{
    if (db_exec(db, e, "BEGIN") < 0)
        return -1;
    db->in_tx = 1;
    return 0;
}

/* A COMMIT ends the transaction whatever its outcome (committed, rolled back by the
 * server, or lost with the connection); it is never sent twice. */
int db_commit(db_t *db, verr_t *e)
{
    int rc = db_exec(db, e, "COMMIT");
    db->in_tx = 0;
    return rc;
}

void db_rollback(db_t *db)
{
    PGresult *r = PQexec(db->conn, "ROLLBACK");
    PQclear(r);
    db->in_tx = 0;
}

int db_lock_xact(db_t *db, const char *space, const char *key, verr_t *e)
{
    if (!db->in_tx)
        return verr_set(e, 500, "InternalError", "db_lock_xact(%s) outside a transaction", space);
    const char *p[] = {space, key};
    PG_AUTO PGresult *r = db_prepared(db, e, "db_lock_xact", "SELECT pg_advisory_xact_lock(hashtext($1), hashtext($2))", 2, p);
    return r ? 0 : -1;
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
    db->session_locks++;   /* a new session would not hold the lock: no silent reset */
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
    db->session_locks--;
    return rc;
}

char *db_text_array(const char *const *v, size_t n)
{
    strbuf_t b = {0};
    strbuf_putc(&b, '{');
    for (size_t i = 0; i < n; i++) {
        strbuf_puts(&b, i ? ",\"" : "\"");
        for (const char *c = v[i]; *c; c++) {
            if (*c == '"' || *c == '\\')
                strbuf_putc(&b, '\\');
            strbuf_putc(&b, *c);
        }
        strbuf_putc(&b, '"');
    }
    strbuf_putc(&b, '}');
    return b.s;
}
