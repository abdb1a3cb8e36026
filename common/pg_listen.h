/* pg_listen.h - a PostgreSQL LISTEN doorbell: one thread with its own connection that
 * LISTENs on a few channels and calls back for each notification.
 *
 * PostgreSQL delivers a NOTIFY only when its transaction commits, so a service that
 * wants to act on another's commit (accounting on a new event, network's agents on a
 * changed datapath) listens instead of polling. The thread reconnects (every 2 s while
 * the database is away) and then calls on_connect: whatever committed while nobody
 * listened has no notification, so the caller runs its periodic pass at once. Callbacks
 * run on the listener's thread and must not block for long. A notification is only a
 * doorbell: the caller also runs its work on a timer, so a missed one costs a delay. */
#ifndef VIRGA_PG_LISTEN_H
#define VIRGA_PG_LISTEN_H

#include "err.h"
#include "service.h"

typedef struct pg_listen pg_listen_t;

typedef struct pg_listen_spec {
    const char *name;                    /* for the log: "accounting", "host events" */
    const char *const *channels;         /* NULL-terminated; names, not quoted */
    void (*on_notify)(void *arg, const char *channel, const char *payload);
    void (*on_connect)(void *arg);       /* after each (re)connection; may be NULL */
    void *arg;
} pg_listen_spec_t;

/* Start the thread; NULL with e set when it cannot. The spec's strings must outlive it. */
pg_listen_t *pg_listen_start(service_t *svc, const pg_listen_spec_t *spec, verr_t *e);
/* Stop and join the thread, close its connection; NULL is a no-op. */
void pg_listen_stop(pg_listen_t *l);

#endif
