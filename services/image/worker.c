/* worker.c - image tasks on the common task pool (common/task.h).
 *
 * A task is a row in image_tasks; the pool's threads claim it with a lease, renew it
 * while the pipeline works, and take it over when the lease of a dead worker runs out,
 * running it again from the start: every step is repeatable (see pipeline.c). Handlers
 * that commit a new task wake an idle worker. What is the image service's own: the task
 * row's columns (source, params, progress), the pipeline, and what giving up means (the
 * image fails). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

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

int image_task_progress(image_task_t *t, int percent, const char *message, verr_t *e)
{
    if (task_pool_stopping(t->task->pool))
        return verr_set(e, 503, "Stopping", "the image service is stopping");
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
    t->renewed = t->task->renewed = time(NULL);
    if (strcmp(PQcmdTuples(r), "1"))
        return verr_set(e, 499, "Canceled", "task %s was canceled or taken over", t->id);
    return 0;
}

int image_task_keepalive(image_task_t *t, verr_t *e)
{
    if (task_pool_stopping(t->task->pool))
        return verr_set(e, 503, "Stopping", "the image service is stopping");
    if (time(NULL) - t->renewed < (t->lease_s > 6 ? t->lease_s / 3 : 2))
        return 0;
    return image_task_progress(t, -1, "", e);
}

/* The pool's run function for every kind: the row's own columns, then the pipeline,
 * which writes the task's and the image's final state itself. */
static int run(task_t *task, verr_t *e)
{
    const char *p[] = {task->id};
    PG_AUTO PGresult *r = db_prepared(task->db, e, "task_load",
        "SELECT account_id, image_id, source::text, params::text FROM image_tasks WHERE id = $1", 1, p);
    if (!r)
        return TASK_FAILED;
    if (!PQntuples(r))
        return TASK_DONE;
    image_task_t t = {.task = task, .svc = task->svc, .db = task->db, .lease_s = task->lease_s,
                      .renewed = task->renewed};
    snprintf(t.id, sizeof t.id, "%.63s", task->id);
    snprintf(t.kind, sizeof t.kind, "%.15s", task->kind);
    snprintf(t.account, sizeof t.account, "%s", PQgetvalue(r, 0, 0));
    snprintf(t.image_id, sizeof t.image_id, "%s", PQgetvalue(r, 0, 1));
    snprintf(t.lease_owner, sizeof t.lease_owner, "%s", task->lease_owner);
    snprintf(t.work_dir, sizeof t.work_dir, "%s", config_str(task->svc->cfg, "image.work_dir", "/var/lib/virga/image"));
    t.source = json_loads(PQgetvalue(r, 0, 2), 0, NULL);
    t.params = json_loads(PQgetvalue(r, 0, 3), 0, NULL);
    log_info("task %s (%s of %s): attempt %d", t.id, t.kind, t.image_id, task->attempts);
    image_abort_task_uploads(task->svc, task->db, t.id);   /* what an attempt that died left */
    int rc = pipeline_run(&t, e) == 0 ? TASK_DONE : TASK_FAILED;
    json_decref(t.source);
    json_decref(t.params);
    return rc;
}

static const task_kind_t kinds[] = {
    {"register", run},
    {"import", run},
    {"copy", run},
    {"create", run},
    {NULL, NULL},
};

/* A task that failed image.task_max_attempts times (crashes included: each claim
 * counts) is set to 'deleted' by the pool; its image fails. */
static void give_up(service_t *svc, db_t *db, const char *id, const char *kind, const json_t *payload)
{
    (void)svc;
    (void)kind;
    (void)payload;
    const char *p[] = {id};
    PGresult *r = db_prepared(db, NULL, "task_exhausted",
        "WITH t AS (UPDATE image_tasks SET status_message = 'ServerError: gave up after ' || attempts || ' attempts' "
        "WHERE id = $1 RETURNING image_id) "
        "UPDATE images SET state = 'failed', state_reason = 'Server.InternalError: the image could not be processed' "
        "WHERE id IN (SELECT image_id FROM t) AND state = 'pending'", 1, p);
    if (r)
        PQclear(r);
}

void image_tasks_reconcile(service_t *svc)
{
    image_service_t *is = svc->state;
    if (is)
        task_pool_reconcile(is->pool, svc->db);
}

int image_workers_start(service_t *svc, verr_t *e)
{
    image_service_t *is = xcalloc(1, sizeof *is);
    pthread_mutex_init(&is->mu, NULL);
    is->svc = svc;
    svc->state = is;
    const char *dir = config_str(svc->cfg, "image.work_dir", "/var/lib/virga/image");
    if (mkdir(dir, 0700) < 0 && errno != EEXIST)
        return verr_set(e, 500, "InternalError", "image.work_dir %s: %s", dir, strerror(errno));
    /* a failure not the tenant's is tried again after 15 s, as many times as allowed */
    task_opts_t o = {
        .table = "image_tasks",
        .kinds = kinds,
        .done_status = "completed",
        .failed_status = "deleted",
        .give_up = give_up,
        .workers = (int)config_int(svc->cfg, "image.workers", 2),
        .workers_key = "image.workers",
        .lease_s = (int)config_int(svc->cfg, "image.task_lease_s", 30),
        .poll_ms = (int)config_int(svc->cfg, "image.task_poll_ms", 1000),
        .idle_ms = (int)config_int(svc->cfg, "image.task_idle_ms", 30000),
        .max_attempts = (int)config_int(svc->cfg, "image.task_max_attempts", 5),
        .backoff_ms = 15000,
        .backoff_max_ms = 15000,
    };
    return (is->pool = task_pool_start(svc, &o, e)) ? 0 : -1;
}

void image_workers_wake(service_t *svc)
{
    image_service_t *is = svc->state;
    if (is)
        task_pool_wake(is->pool);
}

void image_workers_stop(service_t *svc)
{
    image_service_t *is = svc->state;
    if (!is)
        return;
    /* a worker in the middle of a task finishes its current step first; a task cut
     * short by the stop is released for the next process at once */
    task_pool_stop(is->pool);
    pthread_mutex_destroy(&is->mu);
    free(is);
    svc->state = NULL;
}
