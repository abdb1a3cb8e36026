/* host_events.c - ring a host agent's doorbell when its datapath document changed.
 *
 * Every change that touches a host bumps hosts.generation in its transaction (hosts.c);
 * a trigger (sql/004_host_events.sql) turns that into a NOTIFY, which PostgreSQL delivers
 * only on commit. One thread per network process LISTENs and publishes
 * `agent.network_changed {"generation": G}` on the host's topic (virga.host.<host>), so
 * the agent pulls network.host_desired at once instead of at its next reconcile tick.
 * The bus is a doorbell: a lost event (this process down at the commit, a broker
 * hiccup) costs the agent one reconcile interval, never a divergence; with several
 * network replicas every one publishes, and the agent's pull is idempotent. */
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "network.h"

#define CHANNEL "network_host_changed"

typedef struct host_events {
    service_t *svc;
    pthread_t thread;
    int wake[2];            /* a byte on wake[1] stops the thread */
    int running;
} host_events_t;

static host_events_t ev = {.wake = {-1, -1}};

/* "<host> <generation>" -> the event on the host's topic. Hosts whose name cannot be a
 * topic (bus_name_valid: no '.') have no agent to tell. */
static void publish(bus_t *bus, const char *payload)
{
    char host[64];
    long long gen;
    if (sscanf(payload, "%63s %lld", host, &gen) != 2 || !bus_name_valid(host, 60))
        return;
    char topic[128];
    snprintf(topic, sizeof topic, "virga.host.%s", host);
    verr_t e;
    if (bus_publish(bus, topic, "agent.network_changed", json_pack("{s:I}", "generation", (json_int_t)gen), &e) < 0)
        log_warn("agent.network_changed to %s: %s %s", host, e.code, e.message);
}

/* Wait up to ms for the stop byte; 1 when asked to stop. */
static int stop_requested(int ms)
{
    struct pollfd p = {.fd = ev.wake[0], .events = POLLIN};
    return poll(&p, 1, ms) > 0;
}

static void *listen_thread(void *arg)
{
    (void)arg;
    db_t *db = NULL;
    for (;;) {
        if (!db) {
            verr_t e;
            db = service_db_connect(ev.svc, &e);
            if (db && db_exec(db, &e, "LISTEN " CHANNEL) < 0) {
                db_close(db);
                db = NULL;
            }
            if (!db) {
                log_warn("host events: %s (retrying)", e.message);
                if (stop_requested(2000))
                    break;
                continue;
            }
        }
        PGconn *c = db_conn(db);
        struct pollfd p[2] = {{.fd = ev.wake[0], .events = POLLIN}, {.fd = PQsocket(c), .events = POLLIN}};
        int n = poll(p, 2, 5000);
        if (n > 0 && (p[0].revents & POLLIN))
            break;
        if (!PQconsumeInput(c) || PQstatus(c) != CONNECTION_OK) {
            /* the connection broke: a new one LISTENs again (what was committed meanwhile
             * reaches the agents at their next reconcile) */
            db_close(db);
            db = NULL;
            continue;
        }
        PGnotify *note;
        while ((note = PQnotifies(c))) {
            publish(ev.svc->bus, note->extra);
            PQfreemem(note);
        }
    }
    db_close(db);
    return NULL;
}

int host_events_start(service_t *svc, verr_t *e)
{
    ev.svc = svc;
    if (pipe(ev.wake) < 0)
        return verr_set(e, 500, "InternalError", "host events: no pipe");
    if (pthread_create(&ev.thread, NULL, listen_thread, NULL) != 0) {
        close(ev.wake[0]);
        close(ev.wake[1]);
        ev.wake[0] = ev.wake[1] = -1;
        return verr_set(e, 500, "InternalError", "host events: no thread");
    }
    ev.running = 1;
    return 0;
}

void host_events_stop(void)
{
    if (!ev.running)
        return;
    if (write(ev.wake[1], "x", 1) < 0)
        log_warn("host events: cannot wake the listener");
    pthread_join(ev.thread, NULL);
    close(ev.wake[0]);
    close(ev.wake[1]);
    ev.wake[0] = ev.wake[1] = -1;
    ev.running = 0;
}
