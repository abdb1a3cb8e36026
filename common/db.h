/* db.h - PostgreSQL through libpq: connections, transactions, parameterised and
 * prepared statements, and migrations.
 *
 * A db_t is one connection and is used by one thread at a time (libpq connections
 * are not shared between threads): the bus gives every worker thread its own.
 * A lost connection is reset (same URL, same schema, prepared statements prepared
 * again) within the call that meets it: outside a transaction the statement is sent
 * once more on the new connection, so a PostgreSQL restart or a killed backend fails
 * no request; a statement whose connection broke after it committed may thus run
 * twice (db.c explains why that is accepted). Inside a transaction (db_begin), or
 * under db_migrate's session lock, the statement fails instead, and so does every
 * later one until db_rollback or db_commit ends the lost transaction. */
#ifndef VIRGA_DB_H
#define VIRGA_DB_H

#include <libpq-fe.h>
#include <stddef.h>

#include "err.h"

typedef struct db db_t;

/* One migration compiled into a binary from services/<svc>/sql/NNN_name.sql. */
typedef struct db_migration {
    int version;
    const char *name;
    const char *sql;
} db_migration_t;

db_t *db_connect(const char *url, verr_t *e);
void db_close(db_t *db);
PGconn *db_conn(db_t *db);
/* Make unqualified names resolve in schema (then public), now and after reconnects. */
int db_set_schema(db_t *db, const char *schema, verr_t *e);
/* 1 if a trivial query succeeds (used by health checks). */
int db_ping(db_t *db);

/* Run a statement; NULL on failure with e set ("InternalError", 500, the server's
 * message in the log, a short one in e). Result status is TUPLES_OK or COMMAND_OK. */
PGresult *db_query(db_t *db, verr_t *e, const char *sql, int nparams, const char *const *params);
/* Same, preparing `sql` under `name` on first use on this connection. */
PGresult *db_prepared(db_t *db, verr_t *e, const char *name, const char *sql, int nparams,
                      const char *const *params);
int db_exec(db_t *db, verr_t *e, const char *sql);

int db_begin(db_t *db, verr_t *e);
int db_commit(db_t *db, verr_t *e);
void db_rollback(db_t *db);

/* Inside a transaction: wait for, then hold until its end, the lock on (space, key),
 * e.g. ("buckets", account id). Makes a count-then-insert limit exact: every
 * transaction that counts and inserts under the same lock sees the others' rows
 * (READ COMMITTED takes a fresh snapshot per statement, after the lock is granted).
 * Different keys may share a lock (32-bit hashes): that only serialises them. */
int db_lock_xact(db_t *db, const char *space, const char *key, verr_t *e);

/* SQLSTATE of the last failed statement ("23505" for unique violation), or "". */
const char *db_last_sqlstate(const db_t *db);

/* Apply migrations not yet recorded in <schema>.schema_migrations, each in its own
 * transaction with search_path = <schema>, all under a per-schema advisory lock so
 * replicas starting together apply each exactly once. */
int db_migrate(db_t *db, const char *schema, const db_migration_t *m, size_t n, verr_t *e);

/* A PostgreSQL text[] literal of the n strings v, each quoted and escaped: {"a","b\"c"}
 * (malloc'd), for a parameter such as `col = ANY($1::text[])`. */
char *db_text_array(const char *const *v, size_t n);

void db_result_free(PGresult **r);
#define PG_AUTO __attribute__((cleanup(db_result_free)))

#endif
