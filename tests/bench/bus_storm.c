/* bus_storm - RPCs and events through a broker that is killed and restarted meanwhile:
 * what a caller and a listener see (tests/integration/test_bus_restart.py, make bench).
 *
 *   bus_storm -c virga.yaml [--calls 1000] [--events 1000] [--rate 200] [--limit-s 180]
 *
 * Three buses, each as its own principal from the cloud's credentials: "identity"
 * publishes the events to virga.events, "gateway" listens to them, "virgadm" makes the
 * calls (sys.echo to compute, 8 callers; a call that fails is idempotent and is made again
 * until it succeeds or the limit passes). Both streams are paced at --rate per second.
 * After a third of each is out it prints "storm: killing time" (the test kills the broker
 * then), and at the end one JSON line: calls made, calls that needed retries, events sent
 * and received (distinct, duplicates), and recovery_ms, the longest time in which no call
 * succeeded. Every loop is bounded by --limit-s. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bus.h"
#include "config.h"
#include "ids.h"
#include "jsonutil.h"
#include "log.h"

static int ncalls = 1000, nevents = 1000, limit_s = 180;
static double rate = 200;
static char run[17];
static bus_t *pub, *lis, *rpc;
static unsigned char *seen;
static int received, duplicates, next_call, calls_ok, calls_retried, events_sent, announced;
static double start, last_ok, longest_gap;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void pace(int i)
{
    double due = start + i / rate, t = now_s();
    if (due > t)
        usleep((useconds_t)((due - t) * 1e6));
}

static void maybe_announce(void)
{
    pthread_mutex_lock(&mu);
    if (!announced && calls_ok >= ncalls / 3 && events_sent >= nevents / 3) {
        announced = 1;
        printf("storm: killing time\n");
        fflush(stdout);
    }
    pthread_mutex_unlock(&mu);
}

static int on_event(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    (void)ctx, (void)reply, (void)e;
    if (strcmp(json_str(body, "storm", ""), run))
        return 0;
    int64_t n = json_int(body, "n", -1);
    if (n < 0 || n >= nevents)
        return 0;
    pthread_mutex_lock(&mu);
    if (seen[n])
        duplicates++;
    else {
        seen[n] = 1;
        received++;
    }
    pthread_mutex_unlock(&mu);
    return 0;
}

static void *caller(void *arg)
{
    (void)arg;
    for (;;) {
        pthread_mutex_lock(&mu);
        int i = next_call < ncalls ? next_call++ : -1;
        pthread_mutex_unlock(&mu);
        if (i < 0)
            break;
        pace(i);
        int tries = 0;
        while (now_s() - start < limit_s) {
            json_t *r = NULL;
            verr_t e;
            tries++;
            if (bus_call(rpc, "compute", "sys.echo", json_pack("{s:i}", "i", i), NULL, 5000, &r, &e) == 0) {
                int ok = json_int(r, "i", -1) == i;
                json_decref(r);
                if (ok) {
                    double t = now_s();
                    pthread_mutex_lock(&mu);
                    calls_ok++;
                    calls_retried += tries > 1;
                    if (t - last_ok > longest_gap)
                        longest_gap = t - last_ok;
                    last_ok = t;
                    pthread_mutex_unlock(&mu);
                    break;
                }
            } else {
                usleep(200 * 1000);   /* the broker is away: try again shortly */
            }
        }
        maybe_announce();
    }
    return NULL;
}

static void *publisher(void *arg)
{
    (void)arg;
    for (int i = 0; i < nevents && now_s() - start < limit_s; i++) {
        pace(i);
        verr_t e;
        while (bus_publish(pub, "virga.events", "storm.event", json_pack("{s:s, s:i}", "storm", run, "n", i), &e) < 0 &&
               now_s() - start < limit_s)
            usleep(100 * 1000);   /* the producer's queue is full: wait */
        pthread_mutex_lock(&mu);
        events_sent++;
        pthread_mutex_unlock(&mu);
        maybe_announce();
    }
    return NULL;
}

static bus_t *open_as(const config_t *base, const char *principal)
{
    config_t *c = config_new();
    config_load_file(c, config_str(base, "storm.config", ""), NULL);
    config_set(c, "bus.principal", principal);
    config_set(c, "log.level", "error");
    verr_t e;
    bus_t *b = bus_open(c, principal, &e);
    if (!b)
        fprintf(stderr, "bus_storm: %s: %s\n", principal, e.message);
    config_free(c);
    return b;
}

int main(int argc, char **argv)
{
    config_t *cfg = config_new();
    verr_t e = {0};
    char *rest[32];
    int nrest = 0;
    const char *path = NULL;
    for (int i = 1; i + 1 < argc; i++)
        if (!strcmp(argv[i], "-c"))
            path = argv[i + 1];
    if (!path || argc > 32 || config_parse_args(cfg, argc, argv, &nrest, rest, &e) < 0) {
        fprintf(stderr, "usage: bus_storm -c virga.yaml [--calls N] [--events N] [--rate R] [--limit-s S]\n");
        return 2;
    }
    for (int i = 0; i + 1 < nrest; i += 2) {
        if (!strcmp(rest[i], "--calls")) ncalls = atoi(rest[i + 1]);
        else if (!strcmp(rest[i], "--events")) nevents = atoi(rest[i + 1]);
        else if (!strcmp(rest[i], "--rate")) rate = atof(rest[i + 1]);
        else if (!strcmp(rest[i], "--limit-s")) limit_s = atoi(rest[i + 1]);
    }
    if (ncalls < 1 || ncalls > 100000 || nevents < 1 || nevents > 100000 || rate <= 0 || limit_s < 1 || limit_s > 900) {
        fprintf(stderr, "bus_storm: 1..100000 calls and events, rate > 0, limit 1..900 s\n");
        return 2;
    }
    config_set(cfg, "storm.config", path);
    log_init("storm", "error", "text");
    ids_hex(run, 16);
    seen = calloc((size_t)nevents, 1);
    if (!(pub = open_as(cfg, "identity")) || !(lis = open_as(cfg, "gateway")) || !(rpc = open_as(cfg, "virgadm")))
        return 1;
    if (bus_listen(lis, "virga.events", on_event, NULL, &e) < 0) {
        fprintf(stderr, "bus_storm: listen: %s\n", e.message);
        return 1;
    }
    start = last_ok = now_s();
    pthread_t th[9];
    for (int i = 0; i < 8; i++)
        pthread_create(&th[i], NULL, caller, NULL);
    pthread_create(&th[8], NULL, publisher, NULL);
    for (int i = 0; i < 9; i++)
        pthread_join(th[i], NULL);
    /* every event published must arrive (the producer retries across the restart) */
    while (now_s() - start < limit_s) {
        pthread_mutex_lock(&mu);
        int done = received >= nevents;
        pthread_mutex_unlock(&mu);
        if (done)
            break;
        usleep(100 * 1000);
    }
    pthread_mutex_lock(&mu);
    printf("{\"calls\": %d, \"calls_ok\": %d, \"calls_retried\": %d, \"events\": %d, \"events_sent\": %d, "
           "\"events_received\": %d, \"duplicates\": %d, \"recovery_ms\": %.0f, \"elapsed_s\": %.1f}\n",
           ncalls, calls_ok, calls_retried, nevents, events_sent, received, duplicates, longest_gap * 1000,
           now_s() - start);
    pthread_mutex_unlock(&mu);
    fflush(stdout);
    bus_close(rpc);
    bus_close(lis);
    bus_close(pub);
    free(seen);
    config_free(cfg);
    return 0;
}
