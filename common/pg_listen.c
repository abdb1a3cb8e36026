/* pg_listen.c - the LISTEN doorbell thread (pg_listen.h). A byte on a pipe stops it, so
 * a stop never waits for the poll's timeout. */
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "db.h"
#include "log.h"
#include "pg_listen.h"

struct pg_listen {
    service_t *svc;
    pg_listen_spec_t spec;
    pthread_t thread;
    int wake[2];   /* a byte on wake[1] stops the thread */
};

/* Wait up to ms for the stop byte; 1 when asked to stop. */
static int stop_requested(pg_listen_t *l, int ms)
{
    struct pollfd p = {.fd = l->wake[0], .events = POLLIN};
    return poll(&p, 1, ms) > 0;
}

static db_t *connect_and_listen(pg_listen_t *l, verr_t *e)
{
    db_t *db = service_db_connect(l->svc, e);
    for (const char *const *c = l->spec.channels; db && *c; c++) {
        char sql[128];
        snprintf(sql, sizeof sql, "LISTEN %s", *c);
        if (db_exec(db, e, sql) < 0) {
            db_close(db);
            db = NULL;
        }
    }
    return db;
}

static void *listen_main(void *arg)
{
    pg_listen_t *l = arg;
    db_t *db = NULL;
    for (;;) {
        if (!db) {
            verr_t e;
            if (!(db = connect_and_listen(l, &e))) {
                log_warn("%s: listening: %s (retrying)", l->spec.name, e.message);
                if (stop_requested(l, 2000))
                    break;
                continue;
            }
            if (l->spec.on_connect)
                l->spec.on_connect(l->spec.arg);
        }
        PGconn *c = db_conn(db);
        struct pollfd p[2] = {{.fd = l->wake[0], .events = POLLIN}, {.fd = PQsocket(c), .events = POLLIN}};
        int n = poll(p, 2, 5000);
        if (n > 0 && (p[0].revents & POLLIN))
            break;
        if (!PQconsumeInput(c) || PQstatus(c) != CONNECTION_OK) {
            db_close(db);   /* a new connection LISTENs again */
            db = NULL;
            continue;
        }
        PGnotify *note;
        while ((note = PQnotifies(c))) {
            l->spec.on_notify(l->spec.arg, note->relname, note->extra);
            PQfreemem(note);
        }
    }
    db_close(db);
    return NULL;
}

pg_listen_t *pg_listen_start(service_t *svc, const pg_listen_spec_t *spec, verr_t *e)
{
    pg_listen_t *l = xcalloc(1, sizeof *l);
    l->svc = svc;
    l->spec = *spec;
    if (pipe(l->wake) < 0) {
        free(l);
        verr_set(e, 500, "InternalError", "%s: no pipe", spec->name);
        return NULL;
    }
    if (pthread_create(&l->thread, NULL, listen_main, l) != 0) {
        close(l->wake[0]);
        close(l->wake[1]);
        free(l);
        verr_set(e, 500, "InternalError", "%s: no listener thread", spec->name);
        return NULL;
    }
    return l;
}

void pg_listen_stop(pg_listen_t *l)
{
    if (!l)
        return;
    if (write(l->wake[1], "x", 1) < 0)
        log_warn("%s: cannot wake the listener", l->spec.name);
    pthread_join(l->thread, NULL);
    close(l->wake[0]);
    close(l->wake[1]);
    free(l);
}
