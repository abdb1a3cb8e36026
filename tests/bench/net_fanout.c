/* net_fanout - N simulated hosts following the network service's events, for the security
 * group propagation figure (tests/bench/bench_network.py drives it).
 *
 *   net_fanout -c virga.yaml --set bus.credential_file=DIR/secrets/bus/compute.cred
 *              --group sg-... [--threads 8] [--seconds 300]
 *              [--events DIR/secrets/bus --hosts H1,H2,...]
 *
 * One process stands for every host an agent would run (they are simulated, not agents;
 * one process on the cloud's two cores, where real agents are each on their own host).
 *
 * With --events (what the agents do now): it reads the events the network service
 * publishes on each host's topic, virga.host.<host>, and checks each as the host's agent
 * would: signed or MACed by the `network` principal (the agent's route admits no other
 * sender), the MAC checked with the host's own agent key (DIR/agent-<host>.cred, made
 * for the simulated hosts by the bench; the network keys its messages to them from the
 * principals file). What is not the network's is dropped and counted ("rejected" on
 * stderr). An agent.network_changed with a document is applied at once when its
 * generation is newer than the host's (never an older one); one without (too big, or the
 * network configured to send doorbells only) is pulled, as an agent does. The broker
 * itself is read as its administrator (DIR/admin.cred), one consumer for every host's
 * topic: the hosts have no broker login of their own (100 SCRAM users and consumers
 * would be 100 agents' cost on this one machine, which is not what is measured).
 *
 * Without --events (the first passes' method): it LISTENs to the doorbell's source, the
 * network's NOTIFY network_host_changed "<host> <generation>", and pulls.
 *
 * A pull is network.host_desired {host} over the bus as an agent does (here with compute's
 * credential, which may ask for any host), until the document has at least the rung
 * generation; the document is applied with the datapath's fake driver (parse, validate,
 * reconcile: the agent's own code path minus the kernel), each host with its own state.
 * Per applied document it prints
 *
 *   <host> <generation> <t_rung> <t_applied> <ingress rules of --group in the document>
 *   <t_start> <pull_s> <apply_s> <pulls> <document bytes> <t_sent>
 *
 * with times in seconds since the epoch (CLOCK_REALTIME, comparable with the driver's
 * clock on this machine): t_rung is when the event (or NOTIFY) reached this process,
 * t_sent when the network published the event (its envelope's "ts", ms; 0 without --events),
 * t_start - t_rung the wait for one of the threads, pull_s the bus round trips (0 for a
 * pushed document), apply_s parse and apply. Prints "ready" once reading. Bounded by
 * --seconds. */
#include <libpq-fe.h>
#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <time.h>

#include "bus.h"
#include "bus_auth.h"
#include "bus_mac.h"
#include "config.h"
#include "datapath.h"
#include "db.h"
#include "jsonutil.h"

#define QMAX 4096
#define HOSTS_MAX 1024

/* One simulated host: its own datapath state, as each agent has its host's, and the MAC
 * keys its agent shares with the other principals. A thread takes the host's lock while
 * it pulls or applies, so one host applies in order. */
typedef struct {
    char name[64];
    dp_driver_t *dp;
    bus_macs_t *macs;      /* --events: keyed with agent-<host>'s credential */
    long long applied;     /* generation applied; -1 none */
    pthread_mutex_t mu;
} sim_host_t;

typedef struct {
    long long gen;
    double t_bell;
    double t_sent;         /* --events: when the network published it (its envelope's ts) */
    sim_host_t *sim;
    json_t *doc;           /* pushed with the event; NULL: pull */
} bell_t;

static sim_host_t hosts[HOSTS_MAX];
static size_t nhosts;
static bus_t *bus;
static const char *group;
static bell_t queue[QMAX];
static size_t q_head, q_tail;
static int done;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int rules_of(const json_t *doc)
{
    size_t i;
    json_t *g;
    json_array_foreach(json_object_get(doc, "security_groups"), i, g)
        if (!strcmp(json_str(g, "group_id", ""), group))
            return (int)json_array_size(json_object_get(g, "ingress"));
    return -1;
}

/* The host's state, made on its first event (only the main thread adds hosts). */
static sim_host_t *host_of(const char *name)
{
    for (size_t i = 0; i < nhosts; i++)
        if (!strcmp(hosts[i].name, name))
            return &hosts[i];
    if (nhosts == HOSTS_MAX)
        return NULL;
    verr_t e = {0};
    sim_host_t *h = &hosts[nhosts];
    snprintf(h->name, sizeof h->name, "%s", name);
    if (!(h->dp = dp_open("fake", NULL, &e)))
        return NULL;
    h->applied = -1;
    pthread_mutex_init(&h->mu, NULL);
    nhosts++;
    return h;
}

/* Apply a document to the host's own state (each apply changes only what the document
 * changed, as on an agent) and print its line. */
static void apply(sim_host_t *h, const bell_t *b, json_t *doc, double t_start, double pull, int pulls)
{
    verr_t e = {0};
    double t_apply = now();
    char *text = json_dumps(doc, JSON_COMPACT);
    dp_desired_t *want = dp_desired_parse(text, &e);
    dp_stats_t st = {0};
    int ok = want && dp_apply(h->dp, want, &st, &e) == 0;
    double t = now();
    pthread_mutex_lock(&mu);
    if (ok)
        printf("%s %lld %.6f %.6f %d %.6f %.6f %.6f %d %zu %.3f\n", h->name, (long long)json_int(doc, "generation", 0),
               b->t_bell, t, rules_of(doc), t_start, pull, t - t_apply, pulls, strlen(text), b->t_sent);
    else
        fprintf(stderr, "net_fanout: %s: %s\n", h->name, e.message);
    fflush(stdout);
    pthread_mutex_unlock(&mu);
    if (ok)
        h->applied = json_int(doc, "generation", 0);
    dp_desired_free(want);
    free(text);
}

/* Pull the host's document until it has the rung generation (at most 50 tries). */
static void follow(sim_host_t *h, const bell_t *b)
{
    double t_start = now(), pull = 0;
    for (int attempt = 0; attempt < 50; attempt++) {
        json_t *doc = NULL;
        verr_t e = {0};
        double t_call = now();
        if (bus_call(bus, "network", "network.host_desired", json_pack("{s:s}", "host", h->name), NULL, 10000, &doc,
                     &e) < 0) {
            fprintf(stderr, "net_fanout: %s: %s\n", h->name, e.message);
            return;
        }
        pull += now() - t_call;
        int got = json_int(doc, "generation", 0) >= b->gen;
        if (got)
            apply(h, b, doc, t_start, pull, attempt + 1);
        json_decref(doc);
        if (got)
            return;
    }
}

static void *worker(void *arg)
{
    (void)arg;
    for (;;) {
        pthread_mutex_lock(&mu);
        while (q_head == q_tail && !done)
            pthread_cond_wait(&cv, &mu);
        if (q_head == q_tail && done) {
            pthread_mutex_unlock(&mu);
            break;
        }
        bell_t b = queue[q_head++ % QMAX];
        pthread_mutex_unlock(&mu);
        sim_host_t *h = b.sim;
        pthread_mutex_lock(&h->mu);
        if (!b.doc)
            follow(h, &b);
        else if (b.gen > h->applied)    /* generations only grow: an older document is ignored */
            apply(h, &b, b.doc, now(), 0, 0);
        pthread_mutex_unlock(&h->mu);
        json_decref(b.doc);
    }
    return NULL;
}

static void enqueue(bell_t b)
{
    pthread_mutex_lock(&mu);
    if (q_tail - q_head < QMAX)
        queue[q_tail++ % QMAX] = b;
    else
        json_decref(b.doc);
    pthread_cond_signal(&cv);
    pthread_mutex_unlock(&mu);
}

/* ---- the doorbell's source: the network's NOTIFY (without --events) ---- */

static int listen_notify(const config_t *cfg, double end)
{
    verr_t e = {0};
    db_t *db = db_connect(config_str(cfg, "db.url", NULL), &e);
    if (!db) {
        fprintf(stderr, "net_fanout: %s\n", e.message);
        return 1;
    }
    PGconn *pg = db_conn(db);
    PQclear(PQexec(pg, "LISTEN network_host_changed"));
    printf("ready\n");
    fflush(stdout);
    while (now() < end) {
        int fd = PQsocket(pg);
        fd_set rd;
        FD_ZERO(&rd);
        FD_SET(fd, &rd);
        struct timeval tv = {0, 100000};
        if (select(fd + 1, &rd, NULL, NULL, &tv) < 0 || !PQconsumeInput(pg))
            break;
        PGnotify *n;
        while ((n = PQnotifies(pg))) {
            bell_t b = {.t_bell = now()};
            char host[64];
            if (sscanf(n->extra, "%63s %lld", host, &b.gen) == 2 && (b.sim = host_of(host)))
                enqueue(b);
            PQfreemem(n);
        }
    }
    db_close(db);
    return 0;
}

/* ---- the network's events on the hosts' topics (--events) ---- */

/* A consumer logged in as the broker's administrator (see the top of this file), set as
 * the bus sets every consumer of its own (common/bus.c, bus_base_conf): no Nagle, a fetch
 * answered at its first byte, the cloud's fetch wait. */
static rd_kafka_t *admin_consumer(const config_t *cfg, const char *secrets)
{
    char path[512], err[256];
    snprintf(path, sizeof path, "%s/admin.cred", secrets);
    json_t *cred = json_load_file(path, 0, NULL);
    if (!cred) {
        fprintf(stderr, "net_fanout: cannot read %s\n", path);
        return NULL;
    }
    const char *proto = config_str(cfg, "bus.security_protocol", "sasl_plaintext");
    const char *kv[][2] = {
        {"bootstrap.servers", config_str(cfg, "bus.brokers", "127.0.0.1:9092")},
        {"security.protocol", proto},
        {"sasl.mechanisms", config_str(cfg, "bus.sasl_mechanism", "SCRAM-SHA-512")},
        {"sasl.username", json_str(cred, "principal", "admin")},
        {"sasl.password", json_str(cred, "password", "")},
        {"group.id", "admin.net_fanout"},       /* assign only: nothing is committed */
        {"enable.auto.commit", "false"},
        {"socket.nagle.disable", "true"},
        {"fetch.min.bytes", "1"},
        {"fetch.wait.max.ms", config_str(cfg, "bus.fetch_wait_ms", "500")},
        {"enable.metrics.push", "false"},
    };
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    int ok = 1;
    for (size_t i = 0; ok && i < sizeof kv / sizeof kv[0]; i++)
        if (!strncmp(proto, "sasl", 4) || strncmp(kv[i][0], "sasl.", 5))   /* sasl.* only with SASL */
            ok = rd_kafka_conf_set(c, kv[i][0], kv[i][1], err, sizeof err) == RD_KAFKA_CONF_OK;
    json_decref(cred);
    rd_kafka_t *rk = ok ? rd_kafka_new(RD_KAFKA_CONSUMER, c, err, sizeof err) : NULL;
    if (!rk) {
        if (!ok)
            rd_kafka_conf_destroy(c);
        fprintf(stderr, "net_fanout: %s\n", err);
    }
    return rk;
}

/* The hosts' topics i, i + step, ... from their current ends, so that what the bench does
 * next is read. */
static int assign_hosts(rd_kafka_t *rk, size_t first, size_t step)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new((int)nhosts);
    for (size_t i = first; i < nhosts; i += step) {
        char topic[128];
        int64_t lo = 0, hi = 0;
        snprintf(topic, sizeof topic, "virga.host.%s", hosts[i].name);
        rd_kafka_resp_err_t err = rd_kafka_query_watermark_offsets(rk, topic, 0, &lo, &hi, 10000);
        if (err) {
            fprintf(stderr, "net_fanout: %s: %s\n", topic, rd_kafka_err2str(err));
            rd_kafka_topic_partition_list_destroy(l);
            return -1;
        }
        rd_kafka_topic_partition_list_add(l, topic, 0)->offset = hi;
    }
    rd_kafka_resp_err_t err = rd_kafka_assign(rk, l);
    rd_kafka_topic_partition_list_destroy(l);
    if (err)
        fprintf(stderr, "net_fanout: assign: %s\n", rd_kafka_err2str(err));
    return err ? -1 : 0;
}

static const void *header(const rd_kafka_message_t *m, const char *name, size_t *len)
{
    rd_kafka_headers_t *h = NULL;
    const void *v = NULL;
    if (rd_kafka_message_headers(m, &h) || rd_kafka_header_get_last(h, name, &v, len))
        return NULL;
    return v;
}

/* An event as the host's agent takes it: from the network principal only, its MAC (or
 * signature) checked; then queued with its document, or for a pull. 0 taken, -1 dropped. */
static int take(bus_keys_t *keys, const rd_kafka_message_t *m, double t)
{
    const char *topic = rd_kafka_topic_name(m->rkt);
    sim_host_t *h = NULL;
    for (size_t i = 0; i < nhosts && !h; i++)
        if (!strcmp(topic + strlen("virga.host."), hosts[i].name))
            h = &hosts[i];
    size_t nlen = 0, mlen = 0, slen = 0;
    const char *who = header(m, "vp", &nlen);
    const unsigned char *mac = header(m, "vm", &mlen), *sig = mac ? NULL : header(m, "vs", &slen);
    if (!h || !who || nlen != strlen("network") || memcmp(who, "network", nlen) ||
        (mac ? bus_mac_verify(h->macs, "network", topic, m->payload, m->len, mac, mlen)
             : bus_verify(keys, "network", topic, m->payload, m->len, sig, slen)) < 0)
        return -1;
    json_t *env = json_loadb(m->payload, m->len, 0, NULL);
    const json_t *body = json_object_get(env, "body");
    if (strcmp(json_str(env, "type", ""), "agent.network_changed")) {
        json_decref(env);
        return 0;
    }
    json_t *doc = json_object_get(body, "document");
    bell_t b = {.t_bell = t, .sim = h, .gen = json_int(doc ? doc : body, "generation", -1), .doc = json_incref(doc),
                .t_sent = json_int(env, "ts", 0) / 1000.0};
    if (doc && strcmp(json_str(doc, "host", ""), h->name)) {
        json_decref(b.doc);     /* not this host's: ignored, as the agent does */
        b.doc = NULL;
    } else {
        enqueue(b);
    }
    json_decref(env);
    return 0;
}

/* One reader: a consumer of some hosts' topics, polled on a thread of its own. */
typedef struct {
    rd_kafka_t *rk;
    bus_keys_t *keys;
    double end;
    pthread_t thread;
} reader_t;

static void *read_loop(void *arg)
{
    reader_t *r = arg;
    long rejected = 0;
    while (now() < r->end) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(r->rk, 100);
        if (!m)
            continue;
        if (!m->err && take(r->keys, m, now()) < 0 && !(__atomic_fetch_add(&rejected, 1, __ATOMIC_RELAXED) % 100))
            fprintf(stderr, "net_fanout: %ld rejected: not the network's, or not verified\n", rejected);
        rd_kafka_message_destroy(m);
    }
    return NULL;
}

/* The hosts' topics read by `nreaders` consumers (host i by reader i % nreaders): one per
 * host is what the agents do (each reads its own topic, one partition); one for all is
 * one fetch request naming every host's partition, each answered as soon as any of them
 * has a byte, so the broker walks all hundred partitions per event (docs/network.md). */
static int read_events(const config_t *cfg, const char *secrets, char *host_list, size_t nreaders, double end)
{
    char path[512];
    snprintf(path, sizeof path, "%s/principals.json", secrets);
    verr_t e = {0};
    bus_keys_t *keys = bus_keys_open(path, &e);
    if (!keys) {
        fprintf(stderr, "net_fanout: %s\n", e.message);
        return 1;
    }
    char *save = NULL;
    for (char *t = strtok_r(host_list, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        sim_host_t *h = host_of(t);
        bus_credential_t cred;
        snprintf(path, sizeof path, "%s/agent-%s.cred", secrets, t);
        if (!h || bus_credential_load(path, &cred, &e) < 0) {
            fprintf(stderr, "net_fanout: host %s: %s\n", t, h ? e.message : "too many hosts");
            return 1;
        }
        h->macs = bus_macs_new(&cred, keys);
        bus_credential_wipe(&cred);
    }
    if (nreaders == 0 || nreaders > nhosts)
        nreaders = nhosts;
    reader_t *readers = xcalloc(nreaders, sizeof *readers);
    int rc = 0;
    size_t made = 0;
    for (; made < nreaders; made++) {
        readers[made] = (reader_t){.keys = keys, .end = end};
        if (!(readers[made].rk = admin_consumer(cfg, secrets)) || assign_hosts(readers[made].rk, made, nreaders) < 0) {
            if (readers[made].rk)
                rd_kafka_destroy(readers[made].rk);
            rc = 1;
            break;
        }
    }
    if (!rc) {
        printf("ready\n");
        fflush(stdout);
        for (size_t i = 0; i < made; i++)
            pthread_create(&readers[i].thread, NULL, read_loop, &readers[i]);
        for (size_t i = 0; i < made; i++)
            pthread_join(readers[i].thread, NULL);
    }
    for (size_t i = 0; i < made; i++) {
        rd_kafka_consumer_close(readers[i].rk);
        rd_kafka_destroy(readers[i].rk);
    }
    free(readers);
    for (size_t i = 0; i < nhosts; i++)
        bus_macs_free(hosts[i].macs);
    bus_keys_free(keys);
    return rc;
}

int main(int argc, char **argv)
{
    config_t *cfg = config_new();
    verr_t e = {0};
    char *rest[32];
    int nrest = 0, nthreads = 8, nreaders = 0;
    double seconds = 300;
    const char *secrets = NULL;
    char *host_list = NULL;
    if (argc > 32 || config_parse_args(cfg, argc, argv, &nrest, rest, &e) < 0) {
        fprintf(stderr, "net_fanout: %s\n", e.message);
        return 2;
    }
    for (int i = 0; i + 1 < nrest; i += 2) {
        if (!strcmp(rest[i], "--group")) group = rest[i + 1];
        else if (!strcmp(rest[i], "--threads")) nthreads = atoi(rest[i + 1]);
        else if (!strcmp(rest[i], "--seconds")) seconds = atof(rest[i + 1]);
        else if (!strcmp(rest[i], "--events")) secrets = rest[i + 1];
        else if (!strcmp(rest[i], "--hosts")) host_list = rest[i + 1];
        else if (!strcmp(rest[i], "--readers")) nreaders = atoi(rest[i + 1]);
    }
    if (!group || nthreads < 1 || nthreads > 64 || seconds <= 0 || seconds > 3600 || !secrets != !host_list ||
        nreaders < 0 || nreaders > HOSTS_MAX) {
        fprintf(stderr, "net_fanout: --group is required; --threads 1..64, --seconds up to 3600; "
                        "--events DIR goes with --hosts H,...; --readers 0 (one per host) .. %d\n", HOSTS_MAX);
        return 2;
    }
    if (!(bus = bus_open(cfg, "net_fanout", &e))) {
        fprintf(stderr, "net_fanout: %s\n", e.message);
        return 1;
    }
    pthread_t th[64];
    for (int i = 0; i < nthreads; i++)
        pthread_create(&th[i], NULL, worker, NULL);
    double end = now() + seconds;
    int rc = secrets ? read_events(cfg, secrets, host_list, (size_t)nreaders, end) : listen_notify(cfg, end);
    pthread_mutex_lock(&mu);
    done = 1;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
    for (int i = 0; i < nthreads; i++)
        pthread_join(th[i], NULL);
    for (size_t i = 0; i < nhosts; i++)
        dp_close(hosts[i].dp);
    bus_close(bus);
    return rc;
}
