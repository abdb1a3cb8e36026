/* worker.c - the threads that run image tasks.
 *
 * A task is a row in image_tasks. A worker claims the oldest active row whose lease is
 * free or expired (FOR UPDATE SKIP LOCKED, so several workers and several image service
 * processes share the table), and holds it by renewing lease_until while it works. If the
 * process dies, the lease runs out and any worker takes the task over and runs it again
 * from the start: every step is repeatable (see pipeline.c). Handlers that commit a new
 * task wake an idle worker; otherwise workers look every image.task_poll_ms. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "deadline.h"
#include "image_task.h"
#include "jsonutil.h"
#include "log.h"

int image_task_insert(db_t *db, const char *id, const char *kind, const char *account, const char *image_id,
                      const json_t *source, const json_t *params, const char *client_token, verr_t *e)
{
    char *src = json_dumps(source, JSON_COMPACT), *par = params ? json_dumps(params, JSON_COMPACT) : strdup("{}");
    const char *p[] = {id, kind, account, image_id, src, par, client_token ? client_token : ""};
    PG_AUTO PGresult *r = db_prepared(db, e, "task_insert",
        "INSERT INTO image_tasks (id, kind, account_id, image_id, source, params, client_token) "
        "VALUES ($1, $2, $3, $4, $5::jsonb, $6::jsonb, $7)", 7, p);
    free(src);
    free(par);
    return r ? 0 : -1;
}

int task_progress(image_task_t *t, int percent, const char *message, verr_t *e)
{
    char pct[16], lease[16];
    snprintf(pct, sizeof pct, "%d", percent);
    snprintf(lease, sizeof lease, "%d", t->lease_s);
    const char *p[] = {t->id, t->lease_owner, pct, message, lease};
    PG_AUTO PGresult *r = db_prepared(t->db, e, "task_progress",
        "UPDATE image_tasks SET progress = CASE WHEN $3::int < 0 THEN progress ELSE $3::int END, "
        "status_message = COALESCE(NULLIF($4, ''), status_message), updated_at = now(), "
        "lease_until = now() + make_interval(secs => $5::int) "
        "WHERE id = $1 AND lease_owner = $2 AND status = 'active'", 5, p);
    if (!r)
        return -1;
    t->renewed = time(NULL);
    if (strcmp(PQcmdTuples(r), "1"))
        return verr_set(e, 499, "Canceled", "task %s was canceled or taken over", t->id);
    return 0;
}

int task_keepalive(image_task_t *t, verr_t *e)
{
    image_service_t *is = t->svc->state;
    pthread_mutex_lock(&is->mu);
    int stop = is->stop;
    pthread_mutex_unlock(&is->mu);
    if (stop)
        return verr_set(e, 503, "Stopping", "the image service is stopping");
    if (time(NULL) - t->renewed < (t->lease_s > 6 ? t->lease_s / 3 : 2))
        return 0;
    return task_progress(t, -1, "", e);
}

/* Claim one task; 1 = claimed (t filled), 0 = none, -1 = database error. */
static int claim(db_t *db, image_task_t *t, int max_attempts, verr_t *e)
{
    char lease[16], max[16];
    snprintf(lease, sizeof lease, "%d", t->lease_s);
    snprintf(max, sizeof max, "%d", max_attempts);
    const char *p[] = {t->lease_owner, lease, max};
    PG_AUTO PGresult *r = db_prepared(db, e, "task_claim",
        "UPDATE image_tasks SET lease_owner = $1, lease_until = now() + make_interval(secs => $2::int), "
        "attempts = attempts + 1, updated_at = now() "
        "WHERE id = (SELECT id FROM image_tasks WHERE status = 'active' AND (lease_until IS NULL OR lease_until < now()) "
        "AND attempts < $3::int ORDER BY created_at LIMIT 1 FOR UPDATE SKIP LOCKED) "
        "RETURNING id, kind, account_id, image_id, source::text, params::text, attempts", 3, p);
    if (!r)
        return -1;
    if (PQntuples(r) == 0)
        return 0;
    snprintf(t->id, sizeof t->id, "%s", PQgetvalue(r, 0, 0));
    snprintf(t->kind, sizeof t->kind, "%s", PQgetvalue(r, 0, 1));
    snprintf(t->account, sizeof t->account, "%s", PQgetvalue(r, 0, 2));
    snprintf(t->image_id, sizeof t->image_id, "%s", PQgetvalue(r, 0, 3));
    t->source = json_loads(PQgetvalue(r, 0, 4), 0, NULL);
    t->params = json_loads(PQgetvalue(r, 0, 5), 0, NULL);
    t->renewed = time(NULL);
    log_info("task %s (%s of %s): attempt %s", t->id, t->kind, t->image_id, PQgetvalue(r, 0, 6));
    return 1;
}

/* A task that failed image.task_max_attempts times (crashes included: each claim counts)
 * is no longer claimed (see claim) and is failed for good here, on the reconcile pass. */
void image_give_up_exhausted(service_t *svc)
{
    if (!svc->db)
        return;
    char m[16];
    snprintf(m, sizeof m, "%d", (int)config_int(svc->cfg, "image.task_max_attempts", 5));
    const char *p[] = {m};
    PGresult *r = db_prepared(svc->db, NULL, "task_exhausted",
        "WITH t AS (UPDATE image_tasks SET status = 'deleted', status_message = 'ServerError: gave up after ' || attempts || ' attempts', "
        "updated_at = now() WHERE status = 'active' AND attempts >= $1::int AND lease_until < now() RETURNING image_id) "
        "UPDATE images SET state = 'failed', state_reason = 'Server.InternalError: the image could not be processed' "
        "WHERE id IN (SELECT image_id FROM t) AND state = 'pending'", 1, p);
    if (r)
        PQclear(r);
}

static void *worker_main(void *arg)
{
    image_service_t *is = arg;
    service_t *svc = is->svc;
    static int seq;
    int me = __sync_add_and_fetch(&seq, 1);
    verr_t e;
    db_t *db = NULL;
    int poll_ms = (int)config_int(svc->cfg, "image.task_poll_ms", 1000);
    int max_attempts = (int)config_int(svc->cfg, "image.task_max_attempts", 5);
    for (;;) {
        pthread_mutex_lock(&is->mu);
        int stop = is->stop;
        pthread_mutex_unlock(&is->mu);
        if (stop)
            break;
        if (!db && !(db = service_db_connect(svc, &e)))
            log_warn("image worker %d: database: %s", me, e.message);
        int got = 0;
        image_task_t t = {.svc = svc, .db = db, .lease_s = (int)config_int(svc->cfg, "image.task_lease_s", 30)};
        snprintf(t.lease_owner, sizeof t.lease_owner, "%s/%d", svc->instance, me);
        snprintf(t.work_dir, sizeof t.work_dir, "%s", config_str(svc->cfg, "image.work_dir", "/var/lib/virga/image"));
        if (db) {
            got = claim(db, &t, max_attempts, &e);
            if (got < 0)
                log_warn("image worker %d: claim: %s", me, e.message);
        }
        if (got == 1) {
            verr_t te = {0};
            image_abort_task_uploads(svc, db, t.id);   /* what an attempt that died left */
            if (pipeline_run(&t, &te) < 0 && !strcmp(te.code, "Stopping")) {
                /* let the next process take it over at once */
                const char *p[] = {t.id, t.lease_owner};
                PGresult *r = db_prepared(db, NULL, "task_release",
                    "UPDATE image_tasks SET lease_until = now() WHERE id = $1 AND lease_owner = $2", 2, p);
                if (r)
                    PQclear(r);
            } else if (te.code[0]) {
                log_warn("task %s: %s: %s", t.id, te.code, te.message);
            }
            json_decref(t.source);
            json_decref(t.params);
            continue;   /* there may be more */
        }
        struct timespec until = deadline_in_ms(poll_ms);
        pthread_mutex_lock(&is->mu);
        if (!is->stop)
            pthread_cond_timedwait(&is->wake, &is->mu, &until);
        pthread_mutex_unlock(&is->mu);
    }
    db_close(db);
    return NULL;
}

/* Leases held by image service processes of this host that no longer exist (killed, or
 * crashed) are freed at once instead of when they run out: owners are
 * "image@<host>:<pid>/<worker>". Runs at start and on the reconcile timer. */
void image_reclaim_dead_leases(service_t *svc)
{
    verr_t e;
    char mine[128];
    const char *colon = strrchr(svc->instance, ':');
    snprintf(mine, sizeof mine, "%.*s", colon ? (int)(colon - svc->instance + 1) : 0, svc->instance);
    if (!mine[0] || !svc->db)
        return;
    const char *p[] = {mine};
    PG_AUTO PGresult *r = db_prepared(svc->db, &e, "task_local_owners",
        "SELECT DISTINCT lease_owner FROM image_tasks WHERE status = 'active' AND lease_until > now() "
        "AND starts_with(lease_owner, $1)", 1, p);
    for (int i = 0; r && i < PQntuples(r); i++) {
        const char *owner = PQgetvalue(r, i, 0);
        long pid = strtol(owner + strlen(mine), NULL, 10);
        if (pid <= 0 || pid == (long)getpid() || kill((pid_t)pid, 0) == 0 || errno != ESRCH)
            continue;
        const char *q[] = {owner};
        PGresult *u = db_prepared(svc->db, &e, "task_free_dead",
            "UPDATE image_tasks SET lease_until = now() WHERE lease_owner = $1 AND status = 'active'", 1, q);
        if (u) {
            log_info("freed the tasks of %s (process gone): %s", owner, PQcmdTuples(u));
            PQclear(u);
        }
    }
}

int image_workers_start(service_t *svc, verr_t *e)
{
    image_service_t *is = xcalloc(1, sizeof *is);
    pthread_mutex_init(&is->mu, NULL);
    pthread_cond_init(&is->wake, NULL);
    is->svc = svc;
    svc->state = is;
    const char *dir = config_str(svc->cfg, "image.work_dir", "/var/lib/virga/image");
    if (mkdir(dir, 0700) < 0 && errno != EEXIST)
        return verr_set(e, 500, "InternalError", "image.work_dir %s: %s", dir, strerror(errno));
    image_reclaim_dead_leases(svc);
    /* nthreads counts only threads that started: image_workers_stop joins those */
    long want = config_int(svc->cfg, "image.workers", 2);
    if (want < 0 || want > IMAGE_MAX_WORKERS)
        return verr_set(e, 400, "InvalidParameterValue", "image.workers must be 0..%d, not %ld", IMAGE_MAX_WORKERS, want);
    is->threads = xcalloc((size_t)want + 1, sizeof *is->threads);
    for (long i = 0; i < want; i++) {
        int rc = pthread_create(&is->threads[is->nthreads], NULL, worker_main, is);
        if (rc != 0)
            return verr_set(e, 500, "InternalError", "cannot start image worker %ld of %ld: %s", i + 1, want, strerror(rc));
        is->nthreads++;
    }
    return 0;
}

void image_workers_wake(service_t *svc)
{
    image_service_t *is = svc->state;
    pthread_mutex_lock(&is->mu);
    pthread_cond_signal(&is->wake);
    pthread_mutex_unlock(&is->mu);
}

void image_workers_stop(service_t *svc)
{
    image_service_t *is = svc->state;
    if (!is)
        return;
    pthread_mutex_lock(&is->mu);
    is->stop = 1;
    pthread_cond_broadcast(&is->wake);
    pthread_mutex_unlock(&is->mu);
    /* A worker in the middle of a task finishes its current step first; a task cut short
     * by the stop is taken over after its lease. */
    for (int i = 0; i < is->nthreads; i++)
        pthread_join(is->threads[i], NULL);
    free(is->threads);
    free(is);
    svc->state = NULL;
}
