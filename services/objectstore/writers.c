/* writers.c - which object store processes are alive, so that garbage collection can
 * reclaim the writes a process left when it died within a lease instead of a week.
 *
 * At start a process picks a random writer id, registers it in the writers table
 * (sql/005_writers.sql) and gives it to the backend (os_backend_set_writer), which marks
 * every write in progress with it. A thread of its own (the reconcile loop may be busy
 * collecting garbage) renews the heartbeat every objectstore.writer_lease_s / 4. Garbage
 * collection asks which ids have a heartbeat younger than the lease, by the database's
 * clock; a write marked with any other id is reaped once older than the lease (the
 * backend's rule, os_gc_pending_due). After the database was out of reach, every
 * heartbeat looks old: a process reaps nobody's writes until its own heartbeats have gone
 * through for a whole lease, by which time every live process has renewed its own. A
 * process that stops cleanly deletes its row (its writes were aborted before). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ids.h"
#include "jsonutil.h"
#include "log.h"
#include "objectstore.h"
#include "ticker.h"

struct writers {
    service_t *svc;
    char id[25];
    int lease_s;
    ticker_t *beat;          /* the heartbeat, every lease / 4 */
    db_t *beat_db;           /* the heartbeat's own connection */
    pthread_mutex_t mu;      /* ok_since */
    int64_t ok_since;        /* monotonic seconds of the first heartbeat of an unbroken run; 0 = failing */
    json_t *alive;           /* during a gc pass: {id: true} */
};

static int64_t mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec;
}

/* Register or renew: one upsert, so a row removed meanwhile comes back. */
static int heartbeat(writers_t *w, db_t *db, verr_t *e)
{
    const char *p[] = {w->id, w->svc->instance};
    PG_AUTO PGresult *r = db_prepared(db, e, "writer_heartbeat",
        "INSERT INTO writers (id, instance) VALUES ($1, $2) "
        "ON CONFLICT (id) DO UPDATE SET heartbeat = now()", 2, p);
    return r ? 0 : -1;
}

static void heartbeat_tick(void *arg)
{
    writers_t *w = arg;
    verr_t e;
    if (!w->beat_db && !(w->beat_db = service_db_connect(w->svc, &e)))
        log_warn("object store writer heartbeat: database: %s", e.message);
    int ok = w->beat_db && heartbeat(w, w->beat_db, &e) == 0;
    if (w->beat_db && !ok)
        log_warn("object store writer heartbeat: %s", e.message);
    pthread_mutex_lock(&w->mu);
    if (!ok)
        w->ok_since = 0;
    else if (!w->ok_since)
        w->ok_since = mono_s();
    pthread_mutex_unlock(&w->mu);
}

writers_t *writers_start(service_t *svc, os_backend_t *b, verr_t *e)
{
    writers_t *w = xcalloc(1, sizeof *w);
    w->svc = svc;
    ids_hex(w->id, 24);
    w->lease_s = (int)config_int(svc->cfg, "objectstore.writer_lease_s", 60);
    if (w->lease_s < 1)
        w->lease_s = 1;
    pthread_mutex_init(&w->mu, NULL);
    if (heartbeat(w, svc->db, e) < 0) {
        writers_stop(w);
        return NULL;
    }
    w->ok_since = mono_s();
    if (!(w->beat = ticker_start("s3-writer", (int64_t)(w->lease_s / 4 > 0 ? w->lease_s / 4 : 1) * 1000, 0,
                                 heartbeat_tick, w, e))) {
        writers_stop(w);
        return NULL;
    }
    os_backend_set_writer(b, w->id);
    log_info("object store writer id %s (lease %d s)", w->id, w->lease_s);
    return w;
}

static int is_alive(void *arg, const char *id)
{
    writers_t *w = arg;
    return !strcmp(id, w->id) || json_object_get(w->alive, id) != NULL;
}

void writers_gc_opts(writers_t *w, db_t *db, os_gc_opts_t *o)
{
    o->lease_s = w ? w->lease_s : o->stale_s;
    o->writer_alive = NULL;   /* unknown: every writer counts as alive */
    o->arg = NULL;
    if (!w || !db)
        return;
    pthread_mutex_lock(&w->mu);
    int sure = w->ok_since && mono_s() - w->ok_since >= w->lease_s;
    pthread_mutex_unlock(&w->mu);
    if (!sure)
        return;
    char lease[16];
    snprintf(lease, sizeof lease, "%d", w->lease_s);
    const char *p[] = {lease};
    verr_t e;
    PG_AUTO PGresult *r = db_prepared(db, &e, "writers_alive",
        "SELECT id FROM writers WHERE heartbeat > now() - make_interval(secs => $1::int)", 1, p);
    if (!r) {
        log_warn("object store writers: %s", e.message);
        return;
    }
    json_decref(w->alive);
    w->alive = json_object();
    for (int i = 0; i < PQntuples(r); i++)
        json_object_set_new(w->alive, PQgetvalue(r, i, 0), json_true());
    o->writer_alive = is_alive;
    o->arg = w;
    /* rows of processes long gone: nobody needs them to decide anything any more */
    PG_AUTO PGresult *d = db_prepared(db, &e, "writers_forget",
        "DELETE FROM writers WHERE heartbeat < now() - make_interval(secs => 10 * $1::int)", 1, p);
    (void)d;
}

void writers_stop(writers_t *w)
{
    if (!w)
        return;
    if (w->beat) {
        ticker_stop(w->beat);
        db_close(w->beat_db);
        /* every write of this process has ended (committed or aborted): forget it */
        const char *p[] = {w->id};
        verr_t e;
        PG_AUTO PGresult *r = db_prepared(w->svc->db, &e, "writer_gone", "DELETE FROM writers WHERE id = $1", 1, p);
        if (!r)
            log_warn("object store writers: %s", e.message);
    }
    json_decref(w->alive);
    pthread_mutex_destroy(&w->mu);
    free(w);
}
