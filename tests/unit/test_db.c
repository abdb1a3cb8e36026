/* test_db.c - unit tests for common/db.c against a throwaway PostgreSQL 15 cluster
 * that the test creates (initdb into a mkdtemp directory, pg_ctl start on 127.0.0.1
 * and a free port, fsync off) and destroys again: at exit through atexit (also
 * after failed tests), and - because a test killed by a signal, even SIGKILL, must
 * not leave a postmaster behind - from a small guardian child that notices the test
 * process is gone and stops the cluster by the pid in postmaster.pid. Covered:
 * connection failure (ServiceUnavailable), parameterised queries, prepared
 * statements reused by name and past the prepared-name cache, transactions,
 * SQLSTATE reporting, migrations (order, bookkeeping, idempotence, concurrent
 * runners, an SQL error rolling back the whole migration), schema search paths,
 * ping, server notices kept off stderr, and lost connections: after the server kills
 * the backend (idle, or while a statement runs) the next call works at once on a new
 * connection, with its schema restored and its prepared statement prepared again;
 * inside a transaction, or under db_migrate's session lock, the call fails instead and
 * nothing runs outside the transaction until db_rollback. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "db.h"
#include "free_port.h"
#include "log.h"

#define PGBIN "/usr/lib/postgresql/15/bin"

static char tmpdir[64];            /* mkdtemp root, removed at the end */
static char datadir[128];
static int pg_port;
static char url[256];
static pid_t guardian_pid;
/* Process group of the setup command (initdb, pg_ctl) running right now, in memory
 * shared with the guardian so it can kill a half-done setup too. */
static volatile pid_t *cmd_pgid;

/* ---- throwaway cluster ------------------------------------------------------------ */


/* Run argv in its own process group with stdout/stderr into logfile (never our
 * stdout: run-unit.sh reads it through a pipe and would wait for any daemon that
 * inherited it). Returns the exit status. */
static int run(char *const argv[], const char *logfile)
{
    pid_t p = fork();
    if (p < 0)
        return -1;
    if (p == 0) {
        setpgid(0, 0);
        int fd = open(logfile, O_WRONLY | O_CREAT | O_APPEND, 0644);
        int nul = open("/dev/null", O_RDONLY);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        if (nul >= 0)
            dup2(nul, 0);
        execv(argv[0], argv);
        _exit(127);
    }
    setpgid(p, p);   /* also here, so the group exists before we publish it */
    *cmd_pgid = p;
    int st;
    while (waitpid(p, &st, 0) < 0 && errno == EINTR)
        ;
    *cmd_pgid = 0;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

static pid_t read_postmaster_pid(void)
{
    char path[192];
    snprintf(path, sizeof path, "%s/postmaster.pid", datadir);
    FILE *f = fopen(path, "r");
    long p = 0;
    if (f) {
        if (fscanf(f, "%ld", &p) != 1)
            p = 0;
        fclose(f);
    }
    return (pid_t)p;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Stop the postmaster as `pg_ctl stop -m immediate` does (SIGQUIT to the pid in
 * postmaster.pid) and wait for it to exit; SIGKILL if it lingers. */
static void stop_postmaster(void)
{
    pid_t p = read_postmaster_pid();
    if (p <= 0 || kill(p, 0) != 0)
        return;
    kill(p, SIGQUIT);
    for (int i = 0; i < 500 && kill(p, 0) == 0; i++)
        sleep_ms(10);
    if (kill(p, 0) == 0)
        kill(p, SIGKILL);
}

/* Undo everything start_cluster may have done so far. Runs in the test process at
 * exit, or in the guardian after the test process died. */
static void teardown_cluster(void)
{
    if (!tmpdir[0])
        return;
    pid_t g = cmd_pgid ? *cmd_pgid : 0;
    if (g > 0) {
        /* initdb or pg_ctl in flight; pg_ctl puts the postmaster in its own session,
         * so it is stopped below, after giving it time to write postmaster.pid */
        kill(-g, SIGKILL);
        sleep_ms(300);
    }
    stop_postmaster();
    nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    tmpdir[0] = 0;
}

static void cleanup(void)
{
    teardown_cluster();
    if (guardian_pid > 0) {
        kill(guardian_pid, SIGTERM);
        waitpid(guardian_pid, NULL, 0);
        guardian_pid = 0;
    }
}

/* A child that blocks on a pipe whose write end only the test process holds: EOF
 * means the test is gone, however it died (SIGKILL included), and the guardian
 * then tears the cluster down. A clean exit tears down first and then kills it. */
static int start_guardian(void)
{
    int fds[2];
    if (pipe(fds) < 0)
        return -1;
    pid_t g = fork();
    if (g < 0) {
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    if (g == 0) {
        close(fds[1]);
        int nul = open("/dev/null", O_RDWR);
        if (nul >= 0) {
            dup2(nul, 0);
            dup2(nul, 1);
            dup2(nul, 2);
        }
        /* ^C or a hangup reaches the whole group: outlive the test by design */
        signal(SIGINT, SIG_IGN);
        signal(SIGHUP, SIG_IGN);
        char c;
        while (read(fds[0], &c, 1) < 0 && errno == EINTR)
            ;
        teardown_cluster();
        _exit(0);
    }
    close(fds[0]);
    fcntl(fds[1], F_SETFD, FD_CLOEXEC);   /* the commands we exec must not hold it */
    guardian_pid = g;
    return 0;
}

static int start_cluster(void)
{
    void *shm = mmap(NULL, sizeof(pid_t), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (shm == MAP_FAILED)
        return -1;
    cmd_pgid = shm;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/virga-test-db.XXXXXX");
    if (!mkdtemp(tmpdir)) {
        tmpdir[0] = 0;
        return -1;
    }
    snprintf(datadir, sizeof datadir, "%s/data", tmpdir);
    atexit(cleanup);
    if (start_guardian() < 0)
        return -1;
    chmod(tmpdir, 0755);
    struct passwd *pw = getpwnam("postgres");
    if (!pw || mkdir(datadir, 0700) < 0 || chown(datadir, pw->pw_uid, pw->pw_gid) < 0)
        return -1;
    char logf[192];
    snprintf(logf, sizeof logf, "%s/pg.log", tmpdir);
    /* pg_ctl -l opens the log as the postgres user */
    int lfd = open(logf, O_WRONLY | O_CREAT, 0644);
    if (lfd < 0 || fchown(lfd, pw->pw_uid, pw->pw_gid) < 0) {
        if (lfd >= 0)
            close(lfd);
        return -1;
    }
    close(lfd);

    char *initdb[] = {"/usr/sbin/runuser", "-u", "postgres", "--", PGBIN "/initdb", "-D", datadir,
                      "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-locale", "--no-sync", NULL};
    if (run(initdb, logf) != 0)
        return -1;

    for (int tries = 0; tries < 3; tries++) {   /* the free port may be taken meanwhile */
        pg_port = free_port();
        char opts[512];
        snprintf(opts, sizeof opts, "-k %s -p %d -c listen_addresses=127.0.0.1 -c fsync=off "
                 "-c full_page_writes=off -c synchronous_commit=off", datadir, pg_port);
        char *start[] = {"/usr/sbin/runuser", "-u", "postgres", "--", PGBIN "/pg_ctl", "-D", datadir,
                         "-w", "-t", "30", "-l", logf, "-o", opts, "start", NULL};
        if (run(start, logf) == 0 && read_postmaster_pid() > 0) {
            snprintf(url, sizeof url, "host=127.0.0.1 port=%d dbname=postgres user=postgres connect_timeout=5",
                     pg_port);
            return 0;
        }
        stop_postmaster();
    }
    return -1;
}

static int group_setup(void **state)
{
    (void)state;
    /* db.c logs failed statements at error level, the expected ones included */
    log_init("test_db", "error", "text");
    if (start_cluster() < 0) {
        fprintf(stderr, "cannot start a throwaway PostgreSQL in %s\n", tmpdir);
        cleanup();
        return -1;
    }
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    cleanup();
    return 0;
}

/* ---- helpers ------------------------------------------------------------------- */

static db_t *connect_ok(void)
{
    verr_t e = {0};
    db_t *db = db_connect(url, &e);
    if (!db)
        fail_msg("db_connect: %s %s", e.code, e.message);
    return db;
}

static void exec_ok(db_t *db, const char *sql)
{
    verr_t e = {0};
    if (db_exec(db, &e, sql) != 0)
        fail_msg("%s: %s %s (%s)", sql, e.code, e.message, db_last_sqlstate(db));
}

/* First column of the first row of a query, as text, into out ("" for no row). */
static void scalar(db_t *db, const char *sql, char *out, size_t outsz)
{
    verr_t e = {0};
    PG_AUTO PGresult *r = db_query(db, &e, sql, 0, NULL);
    if (!r)
        fail_msg("%s: %s %s", sql, e.code, e.message);
    snprintf(out, outsz, "%s", PQntuples(r) > 0 ? PQgetvalue(r, 0, 0) : "");
}

static long scalar_long(db_t *db, const char *sql)
{
    char v[64];
    scalar(db, sql, v, sizeof v);
    return strtol(v, NULL, 10);
}

/* Schemas holding a table of that name, comma separated ("" for none). Asked of the
 * catalog rather than through to_regclass, whose text form depends on search_path. */
static void table_schemas(db_t *db, const char *table, char *out, size_t outsz)
{
    verr_t e = {0};
    const char *p[] = {table};
    PG_AUTO PGresult *r = db_query(db, &e, "SELECT coalesce(string_agg(schemaname::text, ',' ORDER BY schemaname), '') "
                                           "FROM pg_tables WHERE tablename = $1", 1, p);
    if (!r)
        fail_msg("pg_tables: %s", e.message);
    snprintf(out, outsz, "%s", PQgetvalue(r, 0, 0));
}

/* ---- tests --------------------------------------------------------------------- */

static void test_connect_failure(void **state)
{
    (void)state;
    verr_t e = {0};
    char bad[256];
    int p = free_port();   /* nobody listens there */
    snprintf(bad, sizeof bad, "host=127.0.0.1 port=%d dbname=postgres user=postgres connect_timeout=3", p);
    assert_null(db_connect(bad, &e));
    assert_string_equal(e.code, "ServiceUnavailable");
    assert_int_equal(e.http_status, 503);

    verr_clear(&e);
    assert_null(db_connect(NULL, &e));
    assert_string_equal(e.code, "InternalError");
    verr_clear(&e);
    assert_null(db_connect("", &e));
    assert_string_equal(e.code, "InternalError");

    /* a wrong database on a live server is also a connection failure */
    verr_clear(&e);
    snprintf(bad, sizeof bad, "host=127.0.0.1 port=%d dbname=no_such_db user=postgres", pg_port);
    assert_null(db_connect(bad, &e));
    assert_string_equal(e.code, "ServiceUnavailable");

    assert_null(db_connect(bad, NULL));   /* e may be NULL */
    db_close(NULL);                        /* no-op */
}

static void test_query_params(void **state)
{
    (void)state;
    db_t *db = connect_ok();
    assert_non_null(db_conn(db));
    assert_int_equal(db_ping(db), 1);
    verr_t e = {0};
    const char *p[] = {"21", "it's a \"test\"; DROP TABLE x", NULL};
    PGresult *r = db_query(db, &e, "SELECT $1::int * 2, $2::text, $3::text IS NULL", 3, p);
    assert_non_null(r);
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    assert_int_equal(PQntuples(r), 1);
    assert_string_equal(PQgetvalue(r, 0, 0), "42");
    assert_string_equal(PQgetvalue(r, 0, 1), p[1]);   /* parameters are never spliced */
    assert_string_equal(PQgetvalue(r, 0, 2), "t");
    PQclear(r);

    exec_ok(db, "CREATE TABLE qp (id int PRIMARY KEY, name text)");
    const char *ins[] = {"1", "one"};
    r = db_query(db, &e, "INSERT INTO qp VALUES ($1, $2)", 2, ins);
    assert_non_null(r);
    assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
    assert_string_equal(PQcmdTuples(r), "1");
    PQclear(r);

    /* a failing statement: NULL, InternalError, and the SQLSTATE is kept */
    verr_clear(&e);
    assert_null(db_query(db, &e, "SELECT * FROM no_such_table", 0, NULL));
    assert_string_equal(e.code, "InternalError");
    assert_int_equal(e.http_status, 500);
    assert_string_equal(db_last_sqlstate(db), "42P01");
    assert_non_null(strstr(e.message, "42P01"));
    /* and it is cleared by the next success */
    assert_int_equal(scalar_long(db, "SELECT 7"), 7);
    assert_string_equal(db_last_sqlstate(db), "");
    assert_string_equal(db_last_sqlstate(NULL), "");

    exec_ok(db, "DROP TABLE qp");
    db_close(db);
}

/* db_text_array: PostgreSQL reads the literal back as the same strings, quotes,
 * backslashes, commas, braces and spaces included; none is an empty array. */
static void test_text_array(void **state)
{
    (void)state;
    db_t *db = connect_ok();
    verr_t e = {0};
    const char *v[] = {"i-0123", "a \"quoted\" one", "back\\slash", "comma,{brace}", " NULL"};
    char *lit = db_text_array(v, 5);
    const char *p[] = {lit};
    PGresult *r = db_query(db, &e, "SELECT x FROM unnest($1::text[]) WITH ORDINALITY AS t(x, n) ORDER BY n", 1, p);
    assert_non_null(r);
    assert_int_equal(PQntuples(r), 5);
    for (int i = 0; i < 5; i++)
        assert_string_equal(PQgetvalue(r, i, 0), v[i]);
    PQclear(r);
    free(lit);
    lit = db_text_array(NULL, 0);
    assert_string_equal(lit, "{}");
    free(lit);
    db_close(db);
}

static void test_unique_violation(void **state)
{
    (void)state;
    db_t *db = connect_ok();
    exec_ok(db, "CREATE TABLE uv (k text PRIMARY KEY)");
    verr_t e = {0};
    const char *p[] = {"dup"};
    PG_AUTO PGresult *a = db_query(db, &e, "INSERT INTO uv VALUES ($1)", 1, p);
    assert_non_null(a);
    assert_null(db_query(db, &e, "INSERT INTO uv VALUES ($1)", 1, p));
    assert_string_equal(db_last_sqlstate(db), "23505");
    assert_string_equal(e.code, "InternalError");
    /* the same through a prepared statement and through db_exec */
    assert_null(db_prepared(db, &e, "uv_ins", "INSERT INTO uv VALUES ($1)", 1, p));
    assert_string_equal(db_last_sqlstate(db), "23505");
    assert_int_equal(db_exec(db, &e, "INSERT INTO uv VALUES ('x'), ('x')"), -1);
    assert_string_equal(db_last_sqlstate(db), "23505");
    assert_int_equal(db_exec(db, &e, "SELEKT"), -1);
    assert_string_equal(db_last_sqlstate(db), "42601");
    exec_ok(db, "DROP TABLE uv");
    db_close(db);
}

static void test_prepared(void **state)
{
    (void)state;
    db_t *db = connect_ok();
    verr_t e = {0};
    for (int i = 0; i < 5; i++) {   /* first call prepares, the others reuse */
        char a[16];
        snprintf(a, sizeof a, "%d", i);
        const char *p[] = {a, "x"};
        PGresult *r = db_prepared(db, &e, "sq", "SELECT $1::int * $1::int, $2::text || $1::text", 2, p);
        if (!r)
            fail_msg("db_prepared #%d: %s", i, e.message);
        char want[16];
        snprintf(want, sizeof want, "%d", i * i);
        assert_string_equal(PQgetvalue(r, 0, 0), want);
        snprintf(want, sizeof want, "x%d", i);
        assert_string_equal(PQgetvalue(r, 0, 1), want);
        PQclear(r);
    }
    /* exactly one server-side statement of that name exists */
    assert_int_equal(scalar_long(db, "SELECT count(*) FROM pg_prepared_statements WHERE name = 'sq'"), 1);

    /* A statement that fails to prepare is not remembered: fixing nothing, the next
     * call must try to prepare again (and fail the same way), not run a ghost. */
    assert_null(db_prepared(db, &e, "broken", "SELECT FROM WHERE", 0, NULL));
    assert_string_equal(db_last_sqlstate(db), "42601");
    assert_null(db_prepared(db, &e, "broken", "SELECT FROM WHERE", 0, NULL));
    assert_string_equal(db_last_sqlstate(db), "42601");

    /* More distinct names than the per-connection cache holds still all work. */
    for (int i = 0; i < 300; i++) {
        char name[32], v[16];
        snprintf(name, sizeof name, "many_%d", i);
        snprintf(v, sizeof v, "%d", i);
        const char *p[] = {v};
        PGresult *r = db_prepared(db, &e, name, "SELECT $1::int + 1", 1, p);
        if (!r)
            fail_msg("db_prepared %s: %s", name, e.message);
        assert_int_equal(strtol(PQgetvalue(r, 0, 0), NULL, 10), i + 1);
        PQclear(r);
    }
    db_close(db);
}

static void test_transactions(void **state)
{
    (void)state;
    db_t *db = connect_ok();
    db_t *other = connect_ok();
    verr_t e = {0};
    exec_ok(db, "CREATE TABLE tx (v int)");

    assert_int_equal(db_begin(db, &e), 0);
    exec_ok(db, "INSERT INTO tx VALUES (1)");
    assert_int_equal(scalar_long(db, "SELECT count(*) FROM tx"), 1);      /* visible inside */
    assert_int_equal(scalar_long(other, "SELECT count(*) FROM tx"), 0);   /* not outside */
    db_rollback(db);
    assert_int_equal(scalar_long(db, "SELECT count(*) FROM tx"), 0);

    assert_int_equal(db_begin(db, &e), 0);
    exec_ok(db, "INSERT INTO tx VALUES (2)");
    exec_ok(db, "INSERT INTO tx VALUES (3)");
    assert_int_equal(db_commit(db, &e), 0);
    assert_int_equal(scalar_long(other, "SELECT sum(v) FROM tx"), 5);

    /* An error aborts the transaction; rollback makes the connection usable again. */
    assert_int_equal(db_begin(db, &e), 0);
    exec_ok(db, "INSERT INTO tx VALUES (100)");
    assert_int_equal(db_exec(db, &e, "INSERT INTO tx VALUES ('nan')"), -1);
    assert_null(db_query(db, &e, "SELECT 1", 0, NULL));
    assert_string_equal(db_last_sqlstate(db), "25P02");   /* in failed transaction */
    db_rollback(db);
    assert_int_equal(scalar_long(db, "SELECT sum(v) FROM tx"), 5);
    db_rollback(db);   /* rollback outside a transaction is harmless */
    assert_int_equal(db_ping(db), 1);

    exec_ok(db, "DROP TABLE tx");
    db_close(other);
    db_close(db);
}

static const db_migration_t mig_good[] = {
    {1, "create_widgets", "CREATE TABLE widgets (id int PRIMARY KEY)"},
    /* depends on 1: only works if applied after it, in its schema */
    {2, "add_name", "ALTER TABLE widgets ADD COLUMN name text NOT NULL DEFAULT 'w';"
                    "INSERT INTO widgets (id) VALUES (1)"},
    {5, "create_gadgets", "CREATE TABLE gadgets (w int REFERENCES widgets(id))"},
};

static void test_migrate(void **state)
{
    (void)state;
    db_t *db = connect_ok();
    verr_t e = {0};
    if (db_migrate(db, "mig_a", mig_good, ARRAY_LEN(mig_good), &e) != 0)
        fail_msg("db_migrate: %s %s", e.code, e.message);
    /* unqualified names in migrations land in the schema, not in public */
    char v[128];
    table_schemas(db, "widgets", v, sizeof v);
    assert_string_equal(v, "mig_a");
    table_schemas(db, "gadgets", v, sizeof v);
    assert_string_equal(v, "mig_a");
    scalar(db, "SELECT string_agg(version || ':' || name, ',' ORDER BY version) FROM mig_a.schema_migrations",
           v, sizeof v);
    assert_string_equal(v, "1:create_widgets,2:add_name,5:create_gadgets");
    /* applied in array order: 1 before 2 before 5 */
    assert_int_equal(scalar_long(db, "SELECT count(*) FROM mig_a.schema_migrations a "
                                     "JOIN mig_a.schema_migrations b ON a.version < b.version "
                                     "WHERE a.applied_at > b.applied_at"), 0);
    /* SET LOCAL did not leak out of the migration transactions */
    scalar(db, "SHOW search_path", v, sizeof v);
    assert_null(strstr(v, "mig_a"));

    /* Second run: a no-op (re-running 1 would fail: CREATE TABLE without IF NOT EXISTS). */
    assert_int_equal(db_migrate(db, "mig_a", mig_good, ARRAY_LEN(mig_good), &e), 0);
    assert_int_equal(scalar_long(db, "SELECT count(*) FROM mig_a.schema_migrations"), 3);
    assert_int_equal(scalar_long(db, "SELECT count(*) FROM mig_a.widgets"), 1);

    /* A later list adds one migration: only that one runs. */
    const db_migration_t more[] = {
        mig_good[0], mig_good[1], mig_good[2],
        {6, "more_widgets", "INSERT INTO widgets (id) VALUES (2)"},
    };
    assert_int_equal(db_migrate(db, "mig_a", more, ARRAY_LEN(more), &e), 0);
    assert_int_equal(scalar_long(db, "SELECT count(*) FROM mig_a.widgets"), 2);
    assert_int_equal(scalar_long(db, "SELECT count(*) FROM mig_a.schema_migrations"), 4);

    /* Bad schema names are refused before touching the database. */
    verr_clear(&e);
    assert_int_equal(db_migrate(db, "Bad;Schema", mig_good, 1, &e), -1);
    assert_string_equal(e.code, "InternalError");
    assert_int_equal(db_migrate(db, NULL, mig_good, 1, &e), -1);

    /* the advisory lock was released: another session can take it at once */
    db_t *other = connect_ok();
    scalar(other, "SELECT pg_try_advisory_lock(hashtext('virga.migrate.mig_a'))", v, sizeof v);
    assert_string_equal(v, "t");
    db_close(other);
    db_close(db);
}

static void test_migrate_failure_rolls_back(void **state)
{
    (void)state;
    db_t *db = connect_ok();
    verr_t e = {0};
    const db_migration_t m[] = {
        {1, "ok_one", "CREATE TABLE first_ok (id int)"},
        {2, "ok_two", "CREATE TABLE second_ok (id int); INSERT INTO second_ok VALUES (1)"},
        /* creates a table and inserts, then hits an error: all of it must vanish */
        {3, "broken", "CREATE TABLE half_done (id int); INSERT INTO first_ok VALUES (99);"
                      "SELECT no_such_function()"},
        {4, "after", "CREATE TABLE never_reached (id int)"},
    };
    assert_int_equal(db_migrate(db, "mig_b", m, ARRAY_LEN(m), &e), -1);
    assert_string_equal(e.code, "InternalError");
    char v[128];
    table_schemas(db, "half_done", v, sizeof v);
    assert_string_equal(v, "");
    table_schemas(db, "never_reached", v, sizeof v);
    assert_string_equal(v, "");
    assert_int_equal(scalar_long(db, "SELECT count(*) FROM mig_b.first_ok"), 0);   /* 99 undone */
    assert_int_equal(scalar_long(db, "SELECT count(*) FROM mig_b.second_ok"), 1);  /* earlier ones stay */
    scalar(db, "SELECT string_agg(version::text, ',' ORDER BY version) FROM mig_b.schema_migrations", v, sizeof v);
    assert_string_equal(v, "1,2");
    /* the connection is usable and not left inside a transaction */
    assert_int_equal(PQtransactionStatus(db_conn(db)), PQTRANS_IDLE);
    assert_int_equal(db_ping(db), 1);
    /* the lock was released on the failure path too */
    db_t *other = connect_ok();
    scalar(other, "SELECT pg_try_advisory_lock(hashtext('virga.migrate.mig_b'))", v, sizeof v);
    assert_string_equal(v, "t");
    db_close(other);

    /* once fixed, the run picks up at 3 */
    const db_migration_t fixed[] = {m[0], m[1], {3, "fixed", "CREATE TABLE half_done (id int)"}, m[3]};
    assert_int_equal(db_migrate(db, "mig_b", fixed, ARRAY_LEN(fixed), &e), 0);
    scalar(db, "SELECT string_agg(version || ':' || name, ',' ORDER BY version) FROM mig_b.schema_migrations",
           v, sizeof v);
    assert_string_equal(v, "1:ok_one,2:ok_two,3:fixed,4:after");
    db_close(db);
}

/* Replicas starting together: several connections migrate the same schema at once;
 * every migration must run exactly once and every caller must succeed. */
#define MIG_THREADS 4

static const db_migration_t mig_race[] = {
    {1, "counter", "CREATE TABLE runs (n int)"},
    {2, "count_once", "INSERT INTO runs VALUES (1)"},
    {3, "slow_one", "SELECT pg_sleep(0.2); INSERT INTO runs VALUES (1)"},
};

static void *migrate_thread(void *arg)
{
    (void)arg;
    verr_t e = {0};
    db_t *db = db_connect(url, &e);
    if (!db)
        return (void *)(intptr_t)-2;
    int rc = db_migrate(db, "mig_race", mig_race, ARRAY_LEN(mig_race), &e);
    db_close(db);
    return (void *)(intptr_t)rc;
}

static void test_migrate_concurrent(void **state)
{
    (void)state;
    pthread_t th[MIG_THREADS];
    for (int i = 0; i < MIG_THREADS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, migrate_thread, NULL), 0);
    for (int i = 0; i < MIG_THREADS; i++) {
        void *rv;
        pthread_join(th[i], &rv);
        assert_int_equal((intptr_t)rv, 0);
    }
    db_t *db = connect_ok();
    assert_int_equal(scalar_long(db, "SELECT count(*) FROM mig_race.runs"), 2);
    assert_int_equal(scalar_long(db, "SELECT count(*) FROM mig_race.schema_migrations"), 3);
    db_close(db);
}

/* db_connect means to keep server NOTICEs out of the output (it installs a notice
 * processor); raw "NOTICE: ..." lines on stderr would also break log.format json. */
static void test_notices_not_on_stderr(void **state)
{
    (void)state;
    db_t *db = connect_ok();
    fflush(stderr);
    FILE *cap = tmpfile();
    assert_non_null(cap);
    int saved = dup(STDERR_FILENO);
    dup2(fileno(cap), STDERR_FILENO);
    verr_t e = {0};
    int rc = db_exec(db, &e, "DO $$ BEGIN RAISE NOTICE 'notice-marker-31337'; END $$");
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
    char buf[4096] = "";
    rewind(cap);
    size_t n = fread(buf, 1, sizeof buf - 1, cap);
    buf[n] = 0;
    fclose(cap);
    db_close(db);
    assert_int_equal(rc, 0);
    if (strstr(buf, "notice-marker-31337"))
        fail_msg("server notice leaked to stderr: %s", buf);
}

static void test_set_schema(void **state)
{
    (void)state;
    db_t *db = connect_ok();
    verr_t e = {0};
    exec_ok(db, "CREATE SCHEMA IF NOT EXISTS sch_x;"
                "CREATE TABLE sch_x.thing (v text); INSERT INTO sch_x.thing VALUES ('from sch_x');"
                "CREATE TABLE public.thing (v text); INSERT INTO public.thing VALUES ('from public');"
                "CREATE TABLE public.only_public (v text); INSERT INTO public.only_public VALUES ('pub')");
    char v[64];
    scalar(db, "SELECT v FROM thing", v, sizeof v);
    assert_string_equal(v, "from public");
    assert_int_equal(db_set_schema(db, "sch_x", &e), 0);
    scalar(db, "SELECT v FROM thing", v, sizeof v);
    assert_string_equal(v, "from sch_x");
    scalar(db, "SELECT v FROM only_public", v, sizeof v);   /* public is still searched */
    assert_string_equal(v, "pub");
    /* new unqualified objects are created in the schema */
    exec_ok(db, "CREATE TABLE created_here (v int)");
    table_schemas(db, "created_here", v, sizeof v);
    assert_string_equal(v, "sch_x");

    assert_int_equal(db_set_schema(db, "Bad-Name", &e), -1);
    assert_string_equal(e.code, "InternalError");
    assert_int_equal(db_set_schema(db, "x; DROP TABLE thing", &e), -1);
    assert_int_equal(db_set_schema(db, "", &e), -1);
    scalar(db, "SELECT v FROM thing", v, sizeof v);   /* the good setting survived */
    assert_string_equal(v, "from sch_x");

    exec_ok(db, "DROP SCHEMA sch_x CASCADE; DROP TABLE public.thing, public.only_public");
    db_close(db);
}

/* Kill db's backend from another session and wait until it is gone. */
static void terminate_backend(db_t *db)
{
    int pid = PQbackendPID(db_conn(db));
    assert_true(pid > 0);
    db_t *admin = connect_ok();
    char sql[128], v[16];
    snprintf(sql, sizeof sql, "SELECT pg_terminate_backend(%d, 5000)", pid);
    scalar(admin, sql, v, sizeof v);
    assert_string_equal(v, "t");
    db_close(admin);
}

static void test_reconnect(void **state)
{
    (void)state;
    db_t *db = connect_ok();
    verr_t e = {0};
    exec_ok(db, "CREATE SCHEMA IF NOT EXISTS sch_rc; CREATE TABLE IF NOT EXISTS sch_rc.rc (v int);"
                "INSERT INTO sch_rc.rc VALUES (41)");
    assert_int_equal(db_set_schema(db, "sch_rc", &e), 0);
    const char *p[] = {"1"};
    PGresult *r = db_prepared(db, &e, "rc_q", "SELECT v + $1::int FROM rc", 1, p);
    assert_non_null(r);
    assert_string_equal(PQgetvalue(r, 0, 0), "42");
    PQclear(r);
    int old_pid = PQbackendPID(db_conn(db));

    /* The call that runs into the dead connection works: it is reset under the call
     * (outside a transaction), on a new backend. */
    terminate_backend(db);
    verr_clear(&e);
    r = db_query(db, &e, "SELECT v FROM rc", 0, NULL);   /* unqualified: schema restored */
    if (!r)
        fail_msg("query after reconnect: %s %s", e.code, e.message);
    assert_string_equal(PQgetvalue(r, 0, 0), "41");
    PQclear(r);
    assert_int_not_equal(PQbackendPID(db_conn(db)), old_pid);

    /* The prepared statement died with the backend; the name must work again
     * (the cache of prepared names has to be forgotten on reset). */
    terminate_backend(db);
    r = db_prepared(db, &e, "rc_q", "SELECT v + $1::int FROM rc", 1, p);
    if (!r)
        fail_msg("prepared after reconnect: %s %s", e.code, e.message);
    assert_string_equal(PQgetvalue(r, 0, 0), "42");
    PQclear(r);

    /* db_ping (health checks) and db_exec recover the same way. */
    terminate_backend(db);
    assert_int_equal(db_ping(db), 1);
    terminate_backend(db);
    exec_ok(db, "UPDATE rc SET v = v");

    exec_ok(db, "DROP SCHEMA sch_rc CASCADE");
    db_close(db);
}

/* The case a tenant would see: a worker's connection is killed between two requests;
 * the next request's prepared statement must work on its first call, prepared again
 * under the same name on the new backend. */
static void test_retry_prepared_after_kill(void **state)
{
    (void)state;
    db_t *db = connect_ok();
    verr_t e = {0};
    exec_ok(db, "CREATE TABLE rk (id int PRIMARY KEY, v int)");
    const char *p1[] = {"1", "10"};
    PGresult *r = db_prepared(db, &e, "rk_ins", "INSERT INTO rk VALUES ($1::int, $2::int) RETURNING v", 2, p1);
    assert_non_null(r);
    PQclear(r);
    int old_pid = PQbackendPID(db_conn(db));

    terminate_backend(db);
    verr_clear(&e);
    const char *p2[] = {"2", "20"};
    r = db_prepared(db, &e, "rk_ins", "INSERT INTO rk VALUES ($1::int, $2::int) RETURNING v", 2, p2);
    if (!r)
        fail_msg("prepared statement after the backend was killed: %s %s", e.code, e.message);
    assert_string_equal(PQgetvalue(r, 0, 0), "20");
    PQclear(r);
    assert_string_equal(db_last_sqlstate(db), "");
    assert_int_not_equal(PQbackendPID(db_conn(db)), old_pid);
    /* prepared anew on this backend, exactly once, and reused from now on */
    assert_int_equal(scalar_long(db, "SELECT count(*) FROM pg_prepared_statements WHERE name = 'rk_ins'"), 1);
    const char *p3[] = {"3", "30"};
    r = db_prepared(db, &e, "rk_ins", "INSERT INTO rk VALUES ($1::int, $2::int) RETURNING v", 2, p3);
    assert_non_null(r);
    PQclear(r);
    /* each statement ran exactly once */
    assert_int_equal(scalar_long(db, "SELECT count(*) FROM rk"), 3);
    assert_int_equal(scalar_long(db, "SELECT sum(v) FROM rk"), 60);

    /* BEGIN on a connection killed while idle is also sent on the new one */
    terminate_backend(db);
    assert_int_equal(db_begin(db, &e), 0);
    exec_ok(db, "INSERT INTO rk VALUES (4, 40)");
    assert_int_equal(db_commit(db, &e), 0);
    assert_int_equal(scalar_long(db, "SELECT count(*) FROM rk"), 4);

    exec_ok(db, "DROP TABLE rk");
    db_close(db);
}

/* Inside a transaction the earlier statements died with the backend: the next ones
 * must fail (never run in autocommit on a new session), COMMIT must fail, and after
 * db_rollback the connection works again. */
static void test_no_retry_inside_transaction(void **state)
{
    (void)state;
    db_t *db = connect_ok();
    verr_t e = {0};
    exec_ok(db, "CREATE TABLE txk (v int)");
    const char *sql = "INSERT INTO txk VALUES ($1::int)";
    const char *one[] = {"1"}, *two[] = {"2"}, *four[] = {"4"}, *eight[] = {"8"};

    /* killed, failed, rolled back */
    assert_int_equal(db_begin(db, &e), 0);
    PGresult *r = db_prepared(db, &e, "txk_ins", sql, 1, one);
    assert_non_null(r);
    PQclear(r);
    terminate_backend(db);
    verr_clear(&e);
    assert_null(db_prepared(db, &e, "txk_ins", sql, 1, two));
    assert_true(e.http_status >= 500);
    db_rollback(db);
    r = db_prepared(db, &e, "txk_ins", sql, 1, four);   /* works again, prepared anew */
    if (!r)
        fail_msg("statement after db_rollback: %s %s", e.code, e.message);
    PQclear(r);
    assert_int_equal(scalar_long(db, "SELECT coalesce(sum(v), 0) FROM txk"), 4);

    /* every later statement of the lost transaction fails too, and so does COMMIT */
    assert_int_equal(db_begin(db, &e), 0);
    exec_ok(db, "INSERT INTO txk VALUES (100)");
    terminate_backend(db);
    assert_null(db_prepared(db, &e, "txk_ins", sql, 1, two));
    assert_int_equal(db_exec(db, &e, "INSERT INTO txk VALUES (200)"), -1);
    assert_null(db_query(db, &e, "SELECT 1", 0, NULL));
    assert_int_equal(db_commit(db, &e), -1);
    db_rollback(db);
    r = db_prepared(db, &e, "txk_ins", sql, 1, eight);
    assert_non_null(r);
    PQclear(r);
    assert_int_equal(PQtransactionStatus(db_conn(db)), PQTRANS_IDLE);
    assert_int_equal(scalar_long(db, "SELECT sum(v) FROM txk"), 12);   /* 4 + 8: nothing of the lost ones */

    exec_ok(db, "DROP TABLE txk");
    db_close(db);
}

/* Kills backend `pid` from another session once it is running a statement that
 * contains `marker`: the connection breaks while the statement is in flight. */
typedef struct killer {
    pthread_t th;
    int pid;
    const char *marker;
    int killed;
} killer_t;

static void *killer_main(void *arg)
{
    killer_t *k = arg;
    verr_t e = {0};
    db_t *admin = db_connect(url, &e);
    if (!admin)
        return NULL;
    char pid[16];
    snprintf(pid, sizeof pid, "%d", k->pid);
    const char *p[] = {pid, k->marker};
    for (int i = 0; i < 500 && !k->killed; i++) {
        PGresult *r = db_query(admin, &e, "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity "
                                          "WHERE pid = $1::int AND state = 'active' AND strpos(query, $2) > 0", 2, p);
        k->killed = r && PQntuples(r) == 1 && !strcmp(PQgetvalue(r, 0, 0), "t");
        if (r)
            PQclear(r);
        if (!k->killed)
            sleep_ms(10);
    }
    db_close(admin);
    return NULL;
}

static void killer_start(killer_t *k, db_t *victim, const char *marker)
{
    *k = (killer_t){.pid = PQbackendPID(db_conn(victim)), .marker = marker};
    assert_int_equal(pthread_create(&k->th, NULL, killer_main, k), 0);
}

static void killer_join(killer_t *k)
{
    pthread_join(k->th, NULL);
    assert_true(k->killed);
}

/* The connection breaks while the statement runs: outside a transaction it is sent
 * once more on a new connection (a statement killed while running was rolled back by
 * the server, so it takes effect once); inside one it fails. */
static void test_retry_in_flight(void **state)
{
    (void)state;
    db_t *db = connect_ok();
    verr_t e = {0};
    exec_ok(db, "CREATE TABLE inflight (v int)");
    killer_t k;

    const char *p[] = {"0.4"};
    killer_start(&k, db, "marker-sleep-1");
    PGresult *r = db_prepared(db, &e, "if_sleep", "SELECT pg_sleep($1::float8), 'marker-sleep-1'::text", 1, p);
    killer_join(&k);
    if (!r)
        fail_msg("statement whose connection broke under it: %s %s", e.code, e.message);
    assert_string_equal(PQgetvalue(r, 0, 1), "marker-sleep-1");
    PQclear(r);
    assert_int_not_equal(PQbackendPID(db_conn(db)), k.pid);

    killer_start(&k, db, "marker-insert-1");
    assert_int_equal(db_exec(db, &e, "INSERT INTO inflight SELECT 1 FROM pg_sleep(0.4) /* marker-insert-1 */"), 0);
    killer_join(&k);
    assert_int_equal(scalar_long(db, "SELECT count(*) FROM inflight"), 1);

    assert_int_equal(db_begin(db, &e), 0);
    exec_ok(db, "INSERT INTO inflight VALUES (2)");
    killer_start(&k, db, "marker-insert-2");
    assert_null(db_query(db, &e, "INSERT INTO inflight SELECT 3 FROM pg_sleep(0.4) /* marker-insert-2 */", 0, NULL));
    killer_join(&k);
    assert_int_equal(db_commit(db, &e), -1);
    db_rollback(db);
    assert_int_equal(scalar_long(db, "SELECT count(*) FROM inflight"), 1);

    exec_ok(db, "DROP TABLE inflight");
    db_close(db);
}

/* db_migrate holds a session-level advisory lock, which a new session would not hold:
 * a connection lost under a migration fails the run (the lock and the migration's
 * transaction died together), and the next run applies it. */
static void test_migrate_connection_lost(void **state)
{
    (void)state;
    db_t *db = connect_ok();
    verr_t e = {0};
    const db_migration_t m[] = {
        {1, "slow", "CREATE TABLE slow_t (v int); SELECT pg_sleep(0.4) /* marker-migrate */"},
    };
    killer_t k;
    killer_start(&k, db, "marker-migrate");
    assert_int_equal(db_migrate(db, "mig_lost", m, ARRAY_LEN(m), &e), -1);
    killer_join(&k);
    char v[64];
    table_schemas(db, "slow_t", v, sizeof v);   /* works again: reset after the run */
    assert_string_equal(v, "");
    assert_int_equal(db_migrate(db, "mig_lost", m, ARRAY_LEN(m), &e), 0);
    table_schemas(db, "slow_t", v, sizeof v);
    assert_string_equal(v, "mig_lost");
    db_t *other = connect_ok();
    scalar(other, "SELECT pg_try_advisory_lock(hashtext('virga.migrate.mig_lost'))", v, sizeof v);
    assert_string_equal(v, "t");
    db_close(other);
    db_close(db);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_connect_failure),
        cmocka_unit_test(test_query_params),
        cmocka_unit_test(test_text_array),
        cmocka_unit_test(test_unique_violation),
        cmocka_unit_test(test_prepared),
        cmocka_unit_test(test_transactions),
        cmocka_unit_test(test_migrate),
        cmocka_unit_test(test_migrate_failure_rolls_back),
        cmocka_unit_test(test_migrate_concurrent),
        cmocka_unit_test(test_set_schema),
        cmocka_unit_test(test_notices_not_on_stderr),
        cmocka_unit_test(test_reconnect),
        cmocka_unit_test(test_retry_prepared_after_kill),
        cmocka_unit_test(test_no_retry_inside_transaction),
        cmocka_unit_test(test_retry_in_flight),
        cmocka_unit_test(test_migrate_connection_lost),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
