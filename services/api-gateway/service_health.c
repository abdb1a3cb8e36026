/* service_health.c - DescribeServiceHealth (a Virga action, operator account only): the
 * health of every service of the cloud (cluster.services) as each answers sys.health
 * over the bus - the same question `virgadm status` asks - and of every host agent as
 * compute's host registry has it (DescribeHosts: its state and last heartbeat; the
 * gateway may not write to the agents' topics, docs/security.md), all asked at once
 * without holding a thread (gw_fanout_within). A service that does not answer within
 * gateway.health_timeout_ms is down. Beside what the service says of itself (version,
 * instance, pid, uptime, database, bus counters), each row carries when this gateway
 * last heard it answer, so a service that went down shows since when. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gateway.h"
#include "jsonutil.h"

#define MAX_TARGETS 64

/* When each target last answered (this gateway's memory; bounded, first come). */
static struct {
    char name[96];
    time_t at;
} last_seen[MAX_TARGETS];
static pthread_mutex_t seen_lock = PTHREAD_MUTEX_INITIALIZER;

static time_t seen(const char *name, int answered)
{
    time_t t = 0, now = time(NULL);
    pthread_mutex_lock(&seen_lock);
    for (int i = 0; i < MAX_TARGETS; i++) {
        if (!last_seen[i].name[0] && answered)
            snprintf(last_seen[i].name, sizeof last_seen[i].name, "%s", name);
        if (!strcmp(last_seen[i].name, name)) {
            if (answered)
                last_seen[i].at = now;
            t = last_seen[i].at;
            break;
        }
    }
    pthread_mutex_unlock(&seen_lock);
    return t;
}

typedef struct probe {
    size_t n;
    char *names[MAX_TARGETS];     /* the services asked */
    const char *types[MAX_TARGETS];
    json_t *bodies[MAX_TARGETS];
    struct timespec t0;
} probe_t;

static void iso(time_t t, char out[32])
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static json_t *row(const char *name, json_t *h, const verr_t *err)
{
    json_t *o = json_pack("{s:s, s:s}", "serviceName", name, "kind", "service");
    char when[32] = "";
    time_t last = seen(name, h != NULL);
    if (last)
        iso(last, when);
    json_object_set_new(o, "lastSeen", json_string(when));
    if (!h) {
        json_object_set_new(o, "status", json_string("down"));
        json_object_set_new(o, "errorCode", json_string(err && err->code[0] ? err->code : "Unavailable"));
        json_object_set_new(o, "errorMessage", json_string(err ? err->message : ""));
        return o;
    }
    json_t *bus = json_object_get(h, "bus");
    json_object_set_new(o, "status", json_string(json_str(h, "status", "unknown")));
    json_object_set_new(o, "version", json_string(json_str(h, "version", "")));
    json_object_set_new(o, "instance", json_string(json_str(h, "instance", "")));
    json_object_set_new(o, "host", json_string(json_str(h, "host", "")));
    json_object_set_new(o, "pid", json_integer(json_int(h, "pid", 0)));
    json_object_set_new(o, "uptimeSeconds", json_integer(json_int(h, "uptime_s", 0)));
    json_object_set_new(o, "database", json_string(json_str(h, "db", "none")));
    json_object_set_new(o, "busServed", json_integer(json_int(bus, "served", 0)));
    json_object_set_new(o, "busCalls", json_integer(json_int(bus, "calls", 0)));
    json_object_set_new(o, "busTimeouts", json_integer(json_int(bus, "timeouts", 0)));
    json_object_set_new(o, "busRejected", json_integer(json_int(bus, "rejected", 0)));
    return o;
}

/* compute's hosts (DescribeHosts, which lists them for the operator's administrator):
 * an agent is up while compute hears its heartbeat (state "available"). */
static void agents(json_t *set, json_t *hosts, const verr_t *err)
{
    if (!hosts) {
        json_array_append_new(set, json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "serviceName", "agents", "kind", "agent",
                                             "lastSeen", "", "status", "unknown", "errorCode", err->code,
                                             "errorMessage", err->message));
        return;
    }
    size_t i;
    json_t *h;
    json_array_foreach(json_object_get(hosts, "hostSet"), i, h)
        json_array_append_new(set, json_pack("{s:s, s:s, s:s, s:s, s:s}", "serviceName", json_str(h, "hostId", ""),
                                             "kind", "agent", "lastSeen", json_str(h, "lastSeen", ""),
                                             "status", strcmp(json_str(h, "state", ""), "available") ? "down" : "healthy",
                                             "drivers", json_str(h, "drivers", "")));
}

static void done(gw_req_t *r, void *arg, json_t **replies, const verr_t *errs, size_t n)
{
    probe_t *p = arg;
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    json_t *set = json_array();
    for (size_t i = 0; i < n; i++) {
        if (!strcmp(p->types[i], "sys.health"))
            json_array_append_new(set, row(p->names[i], replies[i], replies[i] ? NULL : &errs[i]));
        else
            agents(set, replies[i], &errs[i]);
        json_decref(replies[i]);
        free(p->names[i]);
    }
    char now[32];
    iso(time(NULL), now);
    double ms = (t1.tv_sec - p->t0.tv_sec) * 1e3 + (t1.tv_nsec - p->t0.tv_nsec) / 1e6;
    free(p);
    gw_finish(r, 0, json_pack("{s:o, s:s, s:f}", "serviceSet", set, "checkedAt", now, "elapsedMs", ms), NULL);
}

static void add(probe_t *p, const char *service, const char *type)
{
    p->names[p->n] = xstrdup(service);
    p->types[p->n] = type;
    p->bodies[p->n] = json_object();
    p->n++;
}

int ec2_describe_service_health(gw_req_t *r, json_t **result, verr_t *e)
{
    (void)result;
    (void)e;
    const config_t *cfg = r->svc->cfg;
    probe_t *p = xcalloc(1, sizeof *p);
    AUTOFREE char *list = xstrdup(config_str(cfg, "cluster.services", VIRGA_DEFAULT_SERVICES));
    char *save = NULL;
    for (char *t = strtok_r(list, ", ", &save); t && p->n < MAX_TARGETS - 1; t = strtok_r(NULL, ", ", &save))
        add(p, t, "sys.health");
    add(p, "compute", "compute.DescribeHosts");
    clock_gettime(CLOCK_MONOTONIC, &p->t0);
    /* 5 s, as virgadm status: a loaded machine's answer can take over a second */
    gw_fanout_within(r, (int)config_int(cfg, "gateway.health_timeout_ms", 5000), p->n, (const char *const *)p->names,
                     p->types, p->bodies, done, p);
    return GW_ASYNC;
}
