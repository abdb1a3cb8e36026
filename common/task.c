/* task.c - the task pool (task.h): claim with a lease, renew, release with backoff,
 * reclaim the leases of dead processes, give up exhausted tasks. Grown out of the image
 * service's worker loop so that every service with work outliving a request (image
 * imports, compute's launches and terminations) runs it the same way. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "deadline.h"
#include "jsonutil.h"
#include "log.h"
#include "task.h"

struct task_pool {
    service_t *svc;
    task_opts_t o;
    pthread_mutex_t mu;
    pthread_cond_t wake;
    /* wake-ups so far (under mu): a worker whose claim found nothing sleeps only if none
     * came since it began that claim. A signal between the claim and the wait was lost
     * before, and a launch the handler had just committed (RunInstances waits for it)
     * then waited for the next timer, idle_wait_ms: 100 ms and more. */
    unsigned long wakes;
    int stop;
    int nthreads;               /* started, and so joined by task_pool_stop */
    pthread_t *threads;
    int seq;
    /* statement names, per table: prepared statements are per connection and name */
    char n_claim[64], n_done[64], n_release[64], n_renew[64], n_due[64];
};

int task_insert(db_t *db, const char *table, const char *id, const char *kind, const json_t *payload,
                long delay_ms, verr_t *e)
{
    char sql[512], name[64], delay[32];
    AUTOFREE char *doc = payload ? json_dumps(payload, JSON_COMPACT) : NULL;
    snprintf(delay, sizeof delay, "%ld", delay_ms > 0 ? delay_ms : 0);
    snprintf(name, sizeof name, "task_ins_%s%s", table, doc ? "_p" : "");
    if (doc)
        snprintf(sql, sizeof sql, "INSERT INTO %s (id, kind, payload, next_run_at) VALUES ($1, $2, $4::jsonb, "
                 "now() + make_interval(secs => $3::double precision / 1000)) ON CONFLICT (id) DO NOTHING", table);
    else
        snprintf(sql, sizeof sql, "INSERT INTO %s (id, kind, next_run_at) VALUES ($1, $2, "
                 "now() + make_interval(secs => $3::double precision / 1000)) ON CONFLICT (id) DO NOTHING", table);
    const char *p[] = {id, kind, delay, doc};
    PG_AUTO PGresult *r = db_prepared(db, e, name, sql, doc ? 4 : 3, p);
    return r ? 0 : -1;
}

int task_pool_stopping(task_pool_t *p)
{
    if (!p)
        return 0;
    pthread_mutex_lock(&p->mu);
    int s = p->stop;
    pthread_mutex_unlock(&p->mu);
    return s;
}

int task_renew(task_t *t, verr_t *e)
{
    if (task_pool_stopping(t->pool))
        return verr_set(e, 503, "Stopping", "the %s service is stopping", t->svc->def->name);
    char sql[256], lease[16];
    snprintf(lease, sizeof lease, "%d", t->lease_s);
    snprintf(sql, sizeof sql, "UPDATE %s SET lease_until = now() + make_interval(secs => $3::int), updated_at = now() "
             "WHERE id = $1 AND lease_owner = $2 AND status = 'active'", t->pool->o.table);
    const char *p[] = {t->id, t->lease_owner, lease};
    PG_AUTO PGresult *r = db_prepared(t->db, e, t->pool->n_renew, sql, 3, p);
    if (!r)
        return -1;
    t->renewed = time(NULL);
    if (strcmp(PQcmdTuples(r), "1"))
        return verr_set(e, 499, "Canceled", "task %s was canceled or taken over", t->id);
    return 0;
}

int task_keepalive(task_t *t, verr_t *e)
{
    if (task_pool_stopping(t->pool))
        return verr_set(e, 503, "Stopping", "the %s service is stopping", t->svc->def->name);
    if (time(NULL) - t->renewed < (t->lease_s > 6 ? t->lease_s / 3 : 2))
        return 0;
    return task_renew(t, e);
}

/* Claim one due task; 1 = claimed (t filled), 0 = none, -1 = database error. */
static int claim(task_pool_t *p, task_t *t, verr_t *e)
{
    char sql[1024], lease[16], max[16];
    snprintf(lease, sizeof lease, "%d", t->lease_s);
    snprintf(max, sizeof max, "%d", p->o.max_attempts);
    snprintf(sql, sizeof sql,
             "UPDATE %s SET lease_owner = $1, lease_until = now() + make_interval(secs => $2::int), "
             "attempts = attempts + 1, updated_at = now() "
             "WHERE id = (SELECT id FROM %s WHERE status = 'active' AND next_run_at <= now() "
             "AND (lease_until IS NULL OR lease_until < now()) AND attempts < $3::int "
             "ORDER BY next_run_at, created_at LIMIT 1 FOR UPDATE SKIP LOCKED) "
             "RETURNING id, kind, attempts, %s", p->o.table, p->o.table,
             p->o.payload_column ? p->o.payload_column : "NULL");
    const char *q[] = {t->lease_owner, lease, max};
    PG_AUTO PGresult *r = db_prepared(t->db, e, p->n_claim, sql, 3, q);
    if (!r)
        return -1;
    if (PQntuples(r) == 0)
        return 0;
    snprintf(t->id, sizeof t->id, "%s", PQgetvalue(r, 0, 0));
    snprintf(t->kind, sizeof t->kind, "%s", PQgetvalue(r, 0, 1));
    t->attempts = atoi(PQgetvalue(r, 0, 2));
    t->payload = PQgetisnull(r, 0, 3) ? NULL : json_loads(PQgetvalue(r, 0, 3), 0, NULL);
    t->renewed = time(NULL);
    return 1;
}

/* End an attempt: done (status), or released to run again after delay_ms (the attempt
 * uncounted when `uncount`). */
/* How long an idle worker may sleep: until the earliest task becomes claimable (its
 * next_run_at, or the end of the lease a dead or slow worker holds), at most idle_ms
 * (tasks other processes insert; this process's own wake the pool) and at least 100 ms
 * (a row another worker locked only for its claim must not make us spin). Sleeping on
 * a timer instead of asking every poll_ms is what keeps an idle service off the CPU:
 * one claim query a second per worker was most of an idle compute's and image's time. */
static long idle_wait_ms(task_pool_t *p, db_t *db)
{
    if (!db)
        return p->o.poll_ms;
    char sql[512], max[16];
    verr_t e;
    snprintf(max, sizeof max, "%d", p->o.max_attempts);
    snprintf(sql, sizeof sql,
             "SELECT ceil(extract(epoch FROM min(GREATEST(next_run_at, COALESCE(lease_until, next_run_at))) - now()) "
             "* 1000)::bigint FROM %s WHERE status = 'active' AND attempts < $1::int", p->o.table);
    const char *q[] = {max};
    PG_AUTO PGresult *r = db_prepared(db, &e, p->n_due, sql, 1, q);
    if (!r)
        return p->o.poll_ms;
    long ms = PQgetisnull(r, 0, 0) ? p->o.idle_ms : atol(PQgetvalue(r, 0, 0));
    return ms < 100 ? 100 : ms > p->o.idle_ms ? p->o.idle_ms : ms;
}

static void finish(task_pool_t *p, task_t *t, int rc)
{
    char sql[512], delay[32];
    verr_t e;
    PGresult *r;
    if (rc == TASK_DONE) {
        snprintf(sql, sizeof sql, "UPDATE %s SET status = $3, lease_until = NULL, updated_at = now() "
                 "WHERE id = $1 AND lease_owner = $2 AND status = 'active'", p->o.table);
        const char *q[] = {t->id, t->lease_owner, p->o.done_status};
        r = db_prepared(t->db, &e, p->n_done, sql, 3, q);
    } else {
        long ms = t->again_ms > 0 ? t->again_ms : p->o.poll_ms;
        if (rc == TASK_FAILED) {
            ms = p->o.backoff_ms;
            for (int i = 1; i < t->attempts && ms < p->o.backoff_max_ms; i++)
                ms *= 2;
            if (ms > p->o.backoff_max_ms)
                ms = p->o.backoff_max_ms;
        }
        snprintf(delay, sizeof delay, "%ld", ms);
        snprintf(sql, sizeof sql, "UPDATE %s SET lease_until = NULL, updated_at = now(), "
                 "next_run_at = now() + make_interval(secs => $3::double precision / 1000), "
                 "attempts = attempts - $4::int WHERE id = $1 AND lease_owner = $2 AND status = 'active'", p->o.table);
        const char *q[] = {t->id, t->lease_owner, delay, rc == TASK_AGAIN ? "1" : "0"};
        r = db_prepared(t->db, &e, p->n_release, sql, 4, q);
    }
    if (r)
        PQclear(r);
    else
        log_warn("task %s: ending the attempt: %s (its lease will run out)", t->id, e.message);
}

static task_run_fn find_kind(task_pool_t *p, const char *kind)
{
    for (const task_kind_t *k = p->o.kinds; k && k->kind; k++)
        if (!strcmp(k->kind, kind))
            return k->run;
    return NULL;
}

static void run_one(task_pool_t *p, task_t *t)
{
    task_run_fn run = find_kind(p, t->kind);
    verr_t e = {0};
    int rc;
    if (!run) {
        verr_set(&e, 500, "InternalError", "no run function for task kind '%s'", t->kind);
        rc = TASK_FAILED;
    } else {
        rc = run(t, &e);
    }
    if (rc == TASK_FAILED && (!strcmp(e.code, "Stopping") || !strcmp(e.code, "Canceled"))) {
        if (!strcmp(e.code, "Stopping")) {
            /* let the next process take it over at once, the attempt uncounted */
            t->again_ms = 1;
            finish(p, t, TASK_AGAIN);
        }
        return;
    }
    if (rc == TASK_FAILED)
        log_warn("task %s (%s), attempt %d: %s: %s", t->id, t->kind, t->attempts, e.code, e.message);
    finish(p, t, rc);
}

static void *worker_main(void *arg)
{
    task_pool_t *p = arg;
    service_t *svc = p->svc;
    int me = __sync_add_and_fetch(&p->seq, 1);
    verr_t e;
    db_t *db = NULL;
    while (!task_pool_stopping(p)) {
        if (!db && !(db = service_db_connect(svc, &e)))
            log_warn("%s task worker %d: database: %s", svc->def->name, me, e.message);
        int got = 0;
        pthread_mutex_lock(&p->mu);
        unsigned long seen = p->wakes;
        pthread_mutex_unlock(&p->mu);
        task_t t = {.pool = p, .svc = svc, .db = db, .lease_s = p->o.lease_s};
        snprintf(t.lease_owner, sizeof t.lease_owner, "%s/%d", svc->instance, me);
        if (db && (got = claim(p, &t, &e)) < 0)
            log_warn("%s task worker %d: claim: %s", svc->def->name, me, e.message);
        if (got == 1) {
            log_debug("task %s (%s) claimed by worker %d", t.id, t.kind, me);
            run_one(p, &t);
            json_decref(t.payload);
            continue;   /* there may be more */
        }
        struct timespec until = deadline_in_ms(idle_wait_ms(p, db));
        pthread_mutex_lock(&p->mu);
        if (!p->stop && p->wakes == seen)
            pthread_cond_timedwait(&p->wake, &p->mu, &until);
        pthread_mutex_unlock(&p->mu);
    }
    db_close(db);
    return NULL;
}

/* Leases held by processes of this service on this host that no longer exist (killed,
 * crashed) are freed at once instead of when they run out: owners are
 * "<service>@<host>:<pid>/<worker>". */
static void reclaim_dead(task_pool_t *p, db_t *db)
{
    verr_t e;
    char mine[128], sql[256], name[64];
    const char *colon = strrchr(p->svc->instance, ':');
    snprintf(mine, sizeof mine, "%.*s", colon ? (int)(colon - p->svc->instance + 1) : 0, p->svc->instance);
    if (!mine[0] || !db)
        return;
    snprintf(sql, sizeof sql, "SELECT DISTINCT lease_owner FROM %s WHERE status = 'active' AND lease_until > now() "
             "AND starts_with(lease_owner, $1)", p->o.table);
    snprintf(name, sizeof name, "task_owners_%s", p->o.table);
    const char *q[] = {mine};
    PG_AUTO PGresult *r = db_prepared(db, &e, name, sql, 1, q);
    for (int i = 0; r && i < PQntuples(r); i++) {
        const char *owner = PQgetvalue(r, i, 0);
        long pid = strtol(owner + strlen(mine), NULL, 10);
        if (pid <= 0 || pid == (long)getpid() || kill((pid_t)pid, 0) == 0 || errno != ESRCH)
            continue;
        snprintf(sql, sizeof sql, "UPDATE %s SET lease_until = now() WHERE lease_owner = $1 AND status = 'active'",
                 p->o.table);
        snprintf(name, sizeof name, "task_free_%s", p->o.table);
        const char *o[] = {owner};
        PGresult *u = db_prepared(db, &e, name, sql, 1, o);
        if (u) {
            log_info("freed the tasks of %s (process gone): %s", owner, PQcmdTuples(u));
            PQclear(u);
        }
    }
}

/* Tasks that used up max_attempts (crashes included: each claim counts) are no longer
 * claimed; here they are ended for good, and the service told. */
static void give_up_exhausted(task_pool_t *p, db_t *db)
{
    char sql[512], name[64], max[16];
    verr_t e;
    snprintf(max, sizeof max, "%d", p->o.max_attempts);
    snprintf(sql, sizeof sql, "UPDATE %s SET status = $2, updated_at = now() WHERE status = 'active' "
             "AND attempts >= $1::int AND (lease_until IS NULL OR lease_until < now()) RETURNING id, kind, %s",
             p->o.table, p->o.payload_column ? p->o.payload_column : "NULL");
    snprintf(name, sizeof name, "task_exhausted_%s", p->o.table);
    const char *q[] = {max, p->o.failed_status};
    PG_AUTO PGresult *r = db_prepared(db, &e, name, sql, 2, q);
    for (int i = 0; r && i < PQntuples(r); i++) {
        log_warn("task %s (%s): gave up after %d attempts", PQgetvalue(r, i, 0), PQgetvalue(r, i, 1),
                 p->o.max_attempts);
        if (!p->o.give_up)
            continue;
        JSON_AUTO json_t *payload = PQgetisnull(r, i, 2) ? NULL : json_loads(PQgetvalue(r, i, 2), 0, NULL);
        p->o.give_up(p->svc, db, PQgetvalue(r, i, 0), PQgetvalue(r, i, 1), payload);
    }
}

void task_pool_reconcile(task_pool_t *p, db_t *db)
{
    if (!p || !db)
        return;
    reclaim_dead(p, db);
    give_up_exhausted(p, db);
    /* freed leases are claimable now; and a task another process inserted is found
     * within a reconcile period rather than idle_ms */
    pthread_mutex_lock(&p->mu);
    p->wakes++;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
}

task_pool_t *task_pool_start(service_t *svc, const task_opts_t *opts, verr_t *e)
{
    if (opts->workers < 0 || opts->workers > TASK_MAX_WORKERS) {
        verr_set(e, 400, "InvalidParameterValue", "%s must be 0..%d, not %d",
                 opts->workers_key ? opts->workers_key : "task workers", TASK_MAX_WORKERS, opts->workers);
        return NULL;
    }
    task_pool_t *p = xcalloc(1, sizeof *p);
    p->svc = svc;
    p->o = *opts;
    if (!p->o.done_status)
        p->o.done_status = "completed";
    if (!p->o.failed_status)
        p->o.failed_status = "failed";
    if (p->o.lease_s <= 0)
        p->o.lease_s = 30;
    if (p->o.poll_ms <= 0)
        p->o.poll_ms = 1000;
    if (p->o.idle_ms <= 0)
        p->o.idle_ms = 30000;
    if (p->o.max_attempts <= 0)
        p->o.max_attempts = 5;
    if (p->o.backoff_ms <= 0)
        p->o.backoff_ms = 500;
    if (p->o.backoff_max_ms < p->o.backoff_ms)
        p->o.backoff_max_ms = p->o.backoff_ms > 60000 ? p->o.backoff_ms : 60000;
    snprintf(p->n_claim, sizeof p->n_claim, "task_claim_%s", p->o.table);
    snprintf(p->n_done, sizeof p->n_done, "task_done_%s", p->o.table);
    snprintf(p->n_release, sizeof p->n_release, "task_release_%s", p->o.table);
    snprintf(p->n_renew, sizeof p->n_renew, "task_renew_%s", p->o.table);
    snprintf(p->n_due, sizeof p->n_due, "task_due_%s", p->o.table);
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->wake, NULL);
    reclaim_dead(p, svc->db);
    p->threads = xcalloc((size_t)p->o.workers + 1, sizeof *p->threads);
    for (int i = 0; i < p->o.workers; i++) {
        int rc = pthread_create(&p->threads[p->nthreads], NULL, worker_main, p);
        if (rc != 0) {
            verr_set(e, 500, "InternalError", "cannot start task worker %d of %d: %s", i + 1, p->o.workers,
                     strerror(rc));
            task_pool_stop(p);
            return NULL;
        }
        p->nthreads++;
    }
    return p;
}

void task_pool_wake(task_pool_t *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    p->wakes++;
    pthread_cond_signal(&p->wake);
    pthread_mutex_unlock(&p->mu);
}

void task_pool_stop(task_pool_t *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    p->stop = 1;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    /* a worker in the middle of a task finishes its current step first */
    for (int i = 0; i < p->nthreads; i++)
        pthread_join(p->threads[i], NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->wake);
    free(p->threads);
    free(p);
}
