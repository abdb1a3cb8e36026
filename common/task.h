/* task.h - persistent background work that outlives a request, for any service: a row
 * per task in a table of the service's own schema, run by a pool of task threads (never
 * by bus workers), held with a lease, taken over when the lease of a dead worker runs out.
 *
 * The table (named by the pool; unqualified, so the service's search_path picks it) has
 * at least these columns:
 *   id text PRIMARY KEY, kind text, status text ('active' = still to run),
 *   attempts integer, lease_owner text, lease_until timestamptz,
 *   next_run_at timestamptz NOT NULL DEFAULT now(), created_at timestamptz,
 *   updated_at timestamptz
 * and, if task_opts_t.payload_column names it, a jsonb payload.
 *
 * A worker claims the oldest active row that is due (next_run_at) and whose lease is free
 * or expired (FOR UPDATE SKIP LOCKED: several threads and several processes share the
 * table); each claim counts an attempt. The run function then says how it ended:
 *   TASK_DONE    the row gets the pool's done status (unless the run function already
 *                ended it itself, e.g. with a status of its own),
 *   TASK_AGAIN   nothing failed, look again after t->again_ms (waiting on another part
 *                of the cloud); the attempt is not counted,
 *   TASK_FAILED  run again after a backoff (backoff_ms doubling per attempt up to
 *                backoff_max_ms) until max_attempts, after which the pool's give_up
 *                callback ends it on the reconcile pass (task_pool_reconcile).
 * A process that dies mid-task loses nothing: its leases run out (or, for processes of
 * this host, are freed at once when their pid is gone) and another worker runs the task
 * again from the start, so every step of a run function must be repeatable. A task whose
 * row is no longer active and this worker's (canceled, taken over) is noticed by
 * task_renew, which answers "Canceled". Thread-safety: one task_pool_t per service
 * process; task_pool_wake may be called from any thread. */
#ifndef VIRGA_TASK_H
#define VIRGA_TASK_H

#include <time.h>

#include "service.h"

typedef struct task_pool task_pool_t;

enum { TASK_DONE = 0, TASK_AGAIN = 1, TASK_FAILED = -1 };

typedef struct task {
    task_pool_t *pool;
    service_t *svc;
    db_t *db;                   /* the worker thread's own connection */
    char id[96], kind[32];
    json_t *payload;            /* the payload column's value (NULL without one) */
    int attempts;               /* counting this one */
    char lease_owner[160];      /* "<service>@<host>:<pid>/<worker>" */
    int lease_s;
    time_t renewed;
    long again_ms;              /* for TASK_AGAIN; default the pool's poll interval */
} task_t;

typedef int (*task_run_fn)(task_t *t, verr_t *e);
/* An exhausted task (row already set to failed_status in db): end what it was doing. */
typedef void (*task_give_up_fn)(service_t *svc, db_t *db, const char *id, const char *kind, const json_t *payload);

typedef struct task_kind {
    const char *kind;
    task_run_fn run;
} task_kind_t;

typedef struct task_opts {
    const char *table;          /* "tasks", "image_tasks" */
    const char *payload_column; /* "payload", or NULL */
    const task_kind_t *kinds;   /* ends with {NULL, NULL} */
    const char *done_status;    /* default "completed" */
    const char *failed_status;  /* default "failed" */
    task_give_up_fn give_up;    /* may be NULL */
    int workers;                /* 0..TASK_MAX_WORKERS */
    const char *workers_key;    /* its config key, for the error ("image.workers") */
    int lease_s;                /* default 30 */
    int poll_ms;                /* a task that asks to run again (TASK_AGAIN) waits this long by default (1000) */
    int idle_ms;                /* an idle worker sleeps until the next task is due, at most this long
                                 * (default 30000): tasks of this process wake it (task_pool_wake),
                                 * the reconcile pass too, so this bounds only other processes' */
    int max_attempts;           /* default 5 */
    int backoff_ms;             /* first retry delay (default 500) */
    int backoff_max_ms;         /* default 60000 */
} task_opts_t;

#define TASK_MAX_WORKERS 64

/* Start the pool's threads (every one, or none: -1 with e set). Frees the leases of this
 * host's dead processes first. opts is copied (its strings and kinds must outlive it). */
task_pool_t *task_pool_start(service_t *svc, const task_opts_t *opts, verr_t *e);
/* Stop: workers finish the step in flight (run functions see "Stopping" from task_renew
 * and task_keepalive), release their task for the next process, and are joined. NULL ok. */
void task_pool_stop(task_pool_t *p);
/* A task row was committed: an idle worker looks now. NULL is a no-op. */
void task_pool_wake(task_pool_t *p);
/* The reconcile pass: free dead local processes' leases, give up exhausted tasks. */
void task_pool_reconcile(task_pool_t *p, db_t *db);
/* 1 once task_pool_stop began. */
int task_pool_stopping(task_pool_t *p);

/* Insert a task in the caller's transaction, due after delay_ms. An id that exists
 * already is left as it is (0 returned): ids name the work ("launch:i-..."), so doing it
 * twice is asking once. */
int task_insert(db_t *db, const char *table, const char *id, const char *kind, const json_t *payload,
                long delay_ms, verr_t *e);

/* Renew the lease now; -1 "Canceled" (499) when the task is no longer this worker's,
 * "Stopping" (503) when the pool is stopping. */
int task_renew(task_t *t, verr_t *e);
/* task_renew at most every lease_s/3 seconds: for long loops. */
int task_keepalive(task_t *t, verr_t *e);

#endif
