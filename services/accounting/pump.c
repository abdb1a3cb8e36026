/* pump.c - the accounting service's three threads: a listener (common/pg_listen.c)
 * that LISTENs for the logs' and the outbox's NOTIFYs (sent by triggers, so only at
 * commit) and wakes the other two; a puller that reads every event log past its cursor into usage records;
 * a publisher that empties the outbox onto virga.usage. A lost or missed notification
 * costs at most accounting.poll_ms: both loops also run on that timer (and on the
 * service's reconcile timer), so the doorbell only makes them prompt. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "accounting.h"
#include "config.h"
#include "log.h"
#include "pg_listen.h"

/* A loop that sleeps until woken or until its period ends. */
typedef struct loop {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int woken, started;
} loop_t;

static struct {
    service_t *svc;
    volatile int stop;
    int poll_ms, batch, grace_s;
    pg_listen_t *listener;   /* the doorbell (common/pg_listen.c) */
    loop_t puller, publisher;
} pump;

static void loop_wake(loop_t *l)
{
    pthread_mutex_lock(&l->mu);
    l->woken = 1;
    pthread_cond_signal(&l->cv);
    pthread_mutex_unlock(&l->mu);
}

/* Sleep up to ms unless woken; 0 when asked to stop. */
static int loop_wait(loop_t *l, int ms)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += ms / 1000;
    until.tv_nsec += (long)(ms % 1000) * 1000000;
    if (until.tv_nsec >= 1000000000) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock(&l->mu);
    while (!l->woken && !pump.stop && pthread_cond_timedwait(&l->cv, &l->mu, &until) == 0)
        ;
    l->woken = 0;
    int go = !pump.stop;
    pthread_mutex_unlock(&l->mu);
    return go;
}

/* The logs named in accounting.feeds (sql/002_usage.sql and later migrations). */
static int feeds(db_t *db, char ***out, verr_t *e)
{
    PG_AUTO PGresult *r = db_query(db, e, "SELECT log FROM feeds ORDER BY log", 0, NULL);
    if (!r)
        return -1;
    int n = PQntuples(r);
    *out = xcalloc((size_t)n + 1, sizeof **out);
    for (int i = 0; i < n; i++)
        (*out)[i] = xstrdup(PQgetvalue(r, i, 0));
    return n;
}

long pump_pull(db_t *db, int batch, int grace_s, verr_t *e)
{
    char b[16], g[32];
    snprintf(b, sizeof b, "%d", batch);
    snprintf(g, sizeof g, "%d seconds", grace_s);
    char **logs = NULL;
    int nlogs = feeds(db, &logs, e);
    if (nlogs < 0)
        return -1;
    long total = 0;
    int failed = 0;
    for (int i = 0; i < nlogs && !failed; i++) {
        for (;;) {   /* one transaction per batch: cursor and records commit together */
            const char *p[] = {logs[i], b};
            if (db_begin(db, e) < 0) {
                failed = 1;
                break;
            }
            PG_AUTO PGresult *r = db_prepared(db, e, "pull", "SELECT pull($1, $2::int)", 2, p);
            if (!r || db_commit(db, e) < 0) {
                db_rollback(db);
                failed = 1;
                break;
            }
            long n = atol(PQgetvalue(r, 0, 0));
            total += n;
            if (n < batch || pump.stop)
                break;
        }
    }
    for (int i = 0; i < nlogs; i++)
        free(logs[i]);
    free(logs);
    if (failed)
        return -1;
    const char *q[] = {g};
    PG_AUTO PGresult *m = db_query(db, e, "SELECT meter_open($1::interval)", 1, q);
    return m ? total : -1;
}

static void *puller(void *arg)
{
    (void)arg;
    db_t *db = NULL;
    int ms = pump.poll_ms;
    while (loop_wait(&pump.puller, ms)) {
        verr_t e;
        if (!db && !(db = service_db_connect(pump.svc, &e))) {
            log_warn("accounting: puller: %s", e.message);
            continue;
        }
        long n = pump_pull(db, pump.batch, pump.grace_s, &e);
        if (n < 0)
            log_warn("accounting: reading the event logs: %s", e.message);
        else if (n > 0)
            log_debug("accounting: %ld events taken", n);
    }
    db_close(db);
    return NULL;
}

static void *publisher(void *arg)
{
    (void)arg;
    db_t *db = NULL;
    int ms = pump.poll_ms, failures = 0;
    while (loop_wait(&pump.publisher, ms)) {
        verr_t e;
        if (!db && !(db = service_db_connect(pump.svc, &e))) {
            log_warn("accounting: publisher: %s", e.message);
            continue;
        }
        long n = publish_outbox(pump.svc->bus, db, pump.batch, &e);
        if (n < 0) {
            /* the broker away: the records wait in the outbox; try again, less often */
            log_warn("accounting: publishing usage records: %s", e.message);
            failures += failures < 5;
            ms = pump.poll_ms < 1000 << failures ? pump.poll_ms : 1000 << failures;
        } else {
            failures = 0;
            ms = pump.poll_ms;
        }
    }
    db_close(db);
    return NULL;
}

static void on_notify(void *arg, const char *channel, const char *payload)
{
    (void)arg, (void)payload;
    loop_wake(strcmp(channel, "virga_usage_records") ? &pump.puller : &pump.publisher);
}

static void on_connect(void *arg)
{
    (void)arg;
    loop_wake(&pump.puller);   /* whatever committed while nobody listened */
    loop_wake(&pump.publisher);
}

static int loop_start(loop_t *l, void *(*fn)(void *))
{
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->cv, NULL);
    l->woken = 1;   /* a first pass at once */
    l->started = pthread_create(&l->thread, NULL, fn, NULL) == 0;
    return l->started ? 0 : -1;
}

int pump_start(service_t *svc, verr_t *e)
{
    pump.svc = svc;
    pump.poll_ms = (int)config_int(svc->cfg, "accounting.poll_ms", 5000);
    pump.batch = (int)config_int(svc->cfg, "accounting.batch", 1000);
    pump.grace_s = (int)config_int(svc->cfg, "accounting.close_grace_s", 300);
    if (pump.poll_ms < 10 || pump.poll_ms > 3600000 || pump.batch < 1 || pump.batch > 100000 || pump.grace_s < 0 ||
        pump.grace_s > 86400)
        return verr_set(e, 400, "InvalidParameterValue",
                        "accounting.poll_ms (10..3600000), accounting.batch (1..100000) or "
                        "accounting.close_grace_s (0..86400) out of range");
    if (loop_start(&pump.puller, puller) < 0 || loop_start(&pump.publisher, publisher) < 0)
        return verr_set(e, 500, "InternalError", "accounting: cannot start its threads");
    static const char *const channels[] = {"virga_usage_events", "virga_usage_records", NULL};
    pg_listen_spec_t spec = {.name = "accounting", .channels = channels, .on_notify = on_notify,
                             .on_connect = on_connect};
    return (pump.listener = pg_listen_start(svc, &spec, e)) ? 0 : -1;
}

void pump_wake(void)
{
    if (pump.puller.started)
        loop_wake(&pump.puller);
    if (pump.publisher.started)
        loop_wake(&pump.publisher);
}

static void loop_join(loop_t *l)
{
    if (!l->started)
        return;
    loop_wake(l);
    pthread_join(l->thread, NULL);
    l->started = 0;
}

void pump_stop(void)
{
    pump.stop = 1;
    pg_listen_stop(pump.listener);
    pump.listener = NULL;
    loop_join(&pump.puller);
    loop_join(&pump.publisher);
}
