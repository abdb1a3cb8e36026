/* host_events.c - tell a host's agent that its datapath document changed, with the
 * document itself.
 *
 * Every change that touches a host bumps hosts.generation in its transaction (hosts.c);
 * a trigger (sql/004_host_events.sql) turns that into a NOTIFY, which PostgreSQL delivers
 * only on commit. One thread per network process LISTENs (common/pg_listen.c) and queues
 * the hosts it rang; a second thread of this file takes what is queued, reads those
 * hosts' documents at once (desired.c: the hosts' rows in one statement, each VPC's part
 * built once for all of them) and publishes `agent.network_changed {"generation": G,
 * "document": {...}}` on each host's topic (virga.host.<host>). One message per host and
 * change: before, the event was a doorbell and each agent then pulled network.host_desired
 * (a request and its answer: three messages, and the pulls of a change's hundred hosts
 * queued for the network's four bus workers; docs/network.md, "Figures").
 *
 * A document longer than network.push_document_max_bytes (default 256 KiB; at most the
 * bus's bus.max_message_bytes less room for the envelope) or one that could not be read goes as the doorbell alone,
 * {"generation": G}, and the agent pulls it, as it does at its start and on its resync
 * tick; 0 sends every event as a doorbell (the protocol before). Still a doorbell in its
 * guarantees: a lost event (this process down at the commit, a broker hiccup) costs the
 * agent one reconcile interval, never a divergence; with several network replicas every
 * one publishes, and the agent applies a generation once and never an older one.
 *
 * The events of one change go out through network.push_producers producers of their own
 * (default 4; 0: the service's own), each host always through the same one, so one host's
 * events keep their order. One producer made the hundred events of a change to a
 * hundred hosts a hundred produce requests in a row: librdkafka puts one partition in a
 * request, and the broker serves one connection's requests one at a time (docs/bus.md, "A
 * change to a hundred hosts"). Several connections are served side by side. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "jsonutil.h"
#include "log.h"
#include "network.h"
#include "pg_listen.h"

#define CHANNEL "network_host_changed"
#define QUEUE_MAX 4096          /* hosts rung and not pushed yet; beyond, a doorbell at once */
#define BATCH_MAX 256           /* hosts read in one statement */
#define PUSH_DEFAULT (256 * 1024)
#define ENVELOPE_ROOM (100 * 1024) /* the bus's bound less this for the envelope */
#define PUSHERS_MAX 16

typedef struct rung {
    char host[64];
    long long gen;
} rung_t;

static struct {
    service_t *svc;
    pg_listen_t *listener;
    long push_max;              /* bytes; 0: doorbells only */
    pthread_t thread;
    int started, stopping;      /* under mu */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    rung_t queue[QUEUE_MAX];    /* one entry per host, its latest generation */
    size_t n;
    db_t *db;                   /* the pushing thread's own */
    bus_t *pushers[PUSHERS_MAX];
    int npushers;
} ev = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

/* The producer of a host's events: always the same one (FNV-1a of its name). */
static bus_t *pusher(const char *host)
{
    if (!ev.npushers)
        return ev.svc->bus;
    uint32_t h = 2166136261u;
    for (const unsigned char *p = (const unsigned char *)host; *p; p++)
        h = (h ^ *p) * 16777619u;
    return ev.pushers[h % (uint32_t)ev.npushers];
}

static void publish(const char *host, json_t *body)
{
    char topic[128];
    snprintf(topic, sizeof topic, "virga.host.%s", host);
    verr_t e;
    if (bus_publish(pusher(host), topic, "agent.network_changed", body, &e) < 0)
        log_warn("agent.network_changed to %s: %s %s", host, e.code, e.message);
}

static void doorbell(const char *host, long long gen)
{
    publish(host, json_pack("{s:I}", "generation", (json_int_t)gen));
}

/* The documents of a batch of rung hosts, each pushed when it fits in a message. */
static void push(const rung_t *b, size_t n)
{
    json_t *docs[BATCH_MAX] = {0};
    const char *hosts[BATCH_MAX];
    for (size_t i = 0; i < n; i++)
        hosts[i] = b[i].host;
    if (ev.push_max > 0 && !ev.db) {
        verr_t e;
        if (!(ev.db = service_db_connect(ev.svc, &e)))
            log_warn("host events: no database for the documents (doorbells only): %s", e.message);
    }
    if (ev.push_max > 0 && ev.db) {
        desired_host_documents(ev.db, ev.svc, hosts, n, docs);
        if (PQstatus(db_conn(ev.db)) != CONNECTION_OK) {
            db_close(ev.db);    /* connected again for the next batch */
            ev.db = NULL;
        }
    }
    for (size_t i = 0; i < n; i++) {
        AUTOFREE char *text = docs[i] ? json_dumps(docs[i], JSON_COMPACT) : NULL;
        if (text && strlen(text) <= (size_t)ev.push_max)
            publish(b[i].host, json_pack("{s:I, s:o}", "generation", (json_int_t)json_int(docs[i], "generation", 0),
                                         "document", docs[i]));
        else {
            json_decref(docs[i]);
            doorbell(b[i].host, b[i].gen);
        }
    }
}

static void *push_main(void *arg)
{
    (void)arg;
    rung_t batch[BATCH_MAX];
    for (;;) {
        pthread_mutex_lock(&ev.mu);
        while (!ev.n && !ev.stopping)
            pthread_cond_wait(&ev.cv, &ev.mu);
        if (ev.stopping) {
            pthread_mutex_unlock(&ev.mu);
            break;
        }
        size_t k = ev.n < BATCH_MAX ? ev.n : BATCH_MAX;
        memcpy(batch, ev.queue, k * sizeof *batch);
        memmove(ev.queue, ev.queue + k, (ev.n - k) * sizeof *batch);
        ev.n -= k;
        pthread_mutex_unlock(&ev.mu);
        push(batch, k);
    }
    return NULL;
}

/* "<host> <generation>": queued for the pushing thread (a host already queued keeps one
 * entry, its latest generation). Hosts whose name cannot be a topic (bus_name_valid: no
 * '.') have no agent to tell. */
static void on_notify(void *arg, const char *channel, const char *payload)
{
    (void)arg;
    (void)channel;
    rung_t r;
    if (sscanf(payload, "%63s %lld", r.host, &r.gen) != 2 || !bus_name_valid(r.host, 60))
        return;
    pthread_mutex_lock(&ev.mu);
    size_t i = 0;
    while (i < ev.n && strcmp(ev.queue[i].host, r.host))
        i++;
    int full = i == QUEUE_MAX;
    if (i < ev.n && r.gen > ev.queue[i].gen)
        ev.queue[i].gen = r.gen;
    else if (i == ev.n && !full)
        ev.queue[ev.n++] = r;
    pthread_cond_signal(&ev.cv);
    pthread_mutex_unlock(&ev.mu);
    if (full)
        doorbell(r.host, r.gen);
}

int host_events_start(service_t *svc, verr_t *e)
{
    static const char *const channels[] = {CHANNEL, NULL};
    ev.svc = svc;
    ev.push_max = config_int(svc->cfg, "network.push_document_max_bytes", PUSH_DEFAULT);
    long limit = (long)bus_max_message_bytes(svc->bus) - ENVELOPE_ROOM;
    if (ev.push_max < 0 || ev.push_max > limit)
        return verr_set(e, 400, "InvalidConfig", "network.push_document_max_bytes is 0 to %ld (bus.max_message_bytes "
                        "less %d for the envelope)", limit, ENVELOPE_ROOM);
    long np = config_int(svc->cfg, "network.push_producers", 4);
    if (np < 0 || np > PUSHERS_MAX)
        return verr_set(e, 400, "InvalidConfig", "network.push_producers is 0 to %d", PUSHERS_MAX);
    for (ev.npushers = 0; ev.npushers < np; ev.npushers++)
        if (!(ev.pushers[ev.npushers] = bus_open_publisher(svc->cfg, svc->def->name, e))) {
            host_events_stop();
            return -1;
        }
    if (pthread_create(&ev.thread, NULL, push_main, NULL) != 0)
        return verr_set(e, 500, "InternalError", "host events: no pushing thread");
    ev.started = 1;
    /* a broken connection LISTENs again; what committed meanwhile reaches the agents at
     * their next reconcile */
    pg_listen_spec_t spec = {.name = "host events", .channels = channels, .on_notify = on_notify};
    if (!(ev.listener = pg_listen_start(svc, &spec, e))) {
        host_events_stop();
        return -1;
    }
    return 0;
}

void host_events_stop(void)
{
    pg_listen_stop(ev.listener);    /* no more on_notify */
    ev.listener = NULL;
    if (ev.started) {
        pthread_mutex_lock(&ev.mu);
        ev.stopping = 1;
        pthread_cond_signal(&ev.cv);
        pthread_mutex_unlock(&ev.mu);
        pthread_join(ev.thread, NULL);
        ev.started = 0;
    }
    db_close(ev.db);
    ev.db = NULL;
    for (int i = 0; i < ev.npushers; i++)
        bus_close(ev.pushers[i]);   /* flushes what is queued */
    ev.npushers = 0;
}
