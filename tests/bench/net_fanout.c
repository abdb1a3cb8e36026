/* net_fanout - N simulated hosts following the network's doorbell, for the security group
 * propagation figure (tests/bench/bench_network.py drives it).
 *
 *   net_fanout -c virga.yaml --set bus.credential_file=DIR/secrets/bus/compute.cred
 *              --group sg-... [--threads 8] [--seconds 300]
 *
 * One process stands for every host an agent would run (they are simulated, not agents):
 * it LISTENs to the doorbell's source, the network's NOTIFY network_host_changed "<host>
 * <generation>" (what host_events.c turns into agent.network_changed on each host's topic),
 * and for each one pulls network.host_desired {host} over the bus as an agent does (here
 * with compute's credential, which may ask for any host), until the document has at least
 * that generation, then applies it with the datapath's fake driver (parse, validate,
 * reconcile: the agent's own code path minus the kernel). Per doorbell it prints
 *
 *   <host> <generation> <t_doorbell> <t_applied> <ingress rules of --group in the document>
 *   <t_pull_start> <pull_s> <apply_s> <pulls> <document bytes>
 *
 * with times in seconds since the epoch (CLOCK_REALTIME, comparable with the driver's
 * clock on this machine): t_pull_start - t_doorbell is the wait for one of the pulling
 * threads, pull_s the bus round trips (all attempts), apply_s parse and apply. Prints
 * "ready" once listening. Bounded by --seconds. */
#include <libpq-fe.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <time.h>

#include "bus.h"
#include "config.h"
#include "datapath.h"
#include "db.h"
#include "jsonutil.h"

#define QMAX 4096

typedef struct {
    char host[64];
    long long gen;
    double t_bell;
    void *sim;     /* the host's sim_host_t */
} bell_t;

/* One simulated host: its own datapath state, as each agent has its host's. A pulling
 * thread takes the host's lock while it pulls and applies, so one host applies in order. */
typedef struct {
    char name[64];
    dp_driver_t *dp;
    pthread_mutex_t mu;
} sim_host_t;

#define HOSTS_MAX 1024

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

/* The host's state, made on its first doorbell (only the main thread adds hosts). */
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
    pthread_mutex_init(&h->mu, NULL);
    nhosts++;
    return h;
}

/* Pull the host's document until it has the rung generation (at most 50 tries), apply it
 * to that host's own state: like an agent, each apply changes only what the document
 * changed (with one state per thread, every apply rebuilt another host from scratch). */
static void follow(dp_driver_t *dp, const bell_t *b)
{
    double t_start = now(), pull = 0;
    for (int attempt = 0; attempt < 50; attempt++) {
        json_t *doc = NULL;
        verr_t e = {0};
        double t_call = now();
        if (bus_call(bus, "network", "network.host_desired", json_pack("{s:s}", "host", b->host), NULL, 10000, &doc,
                     &e) < 0) {
            fprintf(stderr, "net_fanout: %s: %s\n", b->host, e.message);
            return;
        }
        pull += now() - t_call;
        if (json_int(doc, "generation", 0) >= b->gen) {
            double t_apply = now();
            char *text = json_dumps(doc, JSON_COMPACT);
            dp_desired_t *want = dp_desired_parse(text, &e);
            dp_stats_t st = {0};
            int ok = want && dp_apply(dp, want, &st, &e) == 0;
            double t = now();
            pthread_mutex_lock(&mu);
            if (ok)
                printf("%s %lld %.6f %.6f %d %.6f %.6f %.6f %d %zu\n", b->host, b->gen, b->t_bell, t, rules_of(doc),
                       t_start, pull, t - t_apply, attempt + 1, strlen(text));
            else
                fprintf(stderr, "net_fanout: %s: %s\n", b->host, e.message);
            fflush(stdout);
            pthread_mutex_unlock(&mu);
            dp_desired_free(want);
            free(text);
            json_decref(doc);
            return;
        }
        json_decref(doc);
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
        follow(h->dp, &b);
        pthread_mutex_unlock(&h->mu);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    config_t *cfg = config_new();
    verr_t e = {0};
    char *rest[32];
    int nrest = 0, nthreads = 8;
    double seconds = 300;
    if (argc > 32 || config_parse_args(cfg, argc, argv, &nrest, rest, &e) < 0) {
        fprintf(stderr, "net_fanout: %s\n", e.message);
        return 2;
    }
    for (int i = 0; i + 1 < nrest; i += 2) {
        if (!strcmp(rest[i], "--group")) group = rest[i + 1];
        else if (!strcmp(rest[i], "--threads")) nthreads = atoi(rest[i + 1]);
        else if (!strcmp(rest[i], "--seconds")) seconds = atof(rest[i + 1]);
    }
    if (!group || nthreads < 1 || nthreads > 64 || seconds <= 0 || seconds > 3600) {
        fprintf(stderr, "net_fanout: --group is required; --threads 1..64, --seconds up to 3600\n");
        return 2;
    }
    db_t *db = db_connect(config_str(cfg, "db.url", NULL), &e);
    if (!db || !(bus = bus_open(cfg, "net_fanout", &e))) {
        fprintf(stderr, "net_fanout: %s\n", e.message);
        return 1;
    }
    PGconn *pg = db_conn(db);
    PQclear(PQexec(pg, "LISTEN network_host_changed"));
    pthread_t th[64];
    for (int i = 0; i < nthreads; i++)
        pthread_create(&th[i], NULL, worker, NULL);
    printf("ready\n");
    fflush(stdout);
    double end = now() + seconds;
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
            if (sscanf(n->extra, "%63s %lld", b.host, &b.gen) == 2 && (b.sim = host_of(b.host))) {
                pthread_mutex_lock(&mu);
                if (q_tail - q_head < QMAX)
                    queue[q_tail++ % QMAX] = b;
                pthread_cond_signal(&cv);
                pthread_mutex_unlock(&mu);
            }
            PQfreemem(n);
        }
    }
    pthread_mutex_lock(&mu);
    done = 1;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
    for (int i = 0; i < nthreads; i++)
        pthread_join(th[i], NULL);
    for (size_t i = 0; i < nhosts; i++)
        dp_close(hosts[i].dp);
    bus_close(bus);
    return 0;
}
