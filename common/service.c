/* service.c - the life cycle shared by every service binary (see service.h). */
#include "service.h"

#include <errno.h>
#include <semaphore.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "jsonutil.h"
#include "log.h"
#include "strbuf.h"
#include "service_http.h"
#include "service_memory.h"

#define VIRGA_VERSION "0.1.0"

static volatile sig_atomic_t stopping;
static sem_t wake;   /* posted by the signal handler: the main thread sleeps on it */

static void on_signal(int sig)
{
    (void)sig;
    stopping = 1;
    sem_post(&wake);   /* async-signal-safe */
}
int service_stopping(void) { return stopping != 0; }

db_t *service_db_connect(service_t *svc, verr_t *e)
{
    db_t *db = db_connect(config_str(svc->cfg, "db.url", NULL), e);
    if (db && db_set_schema(db, svc->def->schema, e) < 0) {
        db_close(db);
        db = NULL;
    }
    return db;
}

static void *worker_init(void *app)
{
    service_t *svc = app;
    if (!svc->def->schema)
        return NULL;
    verr_t e;
    db_t *db = service_db_connect(svc, &e);
    if (!db)
        log_error("worker database connection: %s", e.message);
    return db;
}

static void worker_fini(void *w) { db_close(w); }

db_t *service_db(bus_ctx_t *ctx) { return ctx->worker; }
service_t *service_of(bus_ctx_t *ctx) { return ctx->app; }

static int sys_health(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    (void)body;
    (void)e;
    service_t *svc = ctx->app;
    char host[128] = "";
    gethostname(host, sizeof host - 1);
    const char *dbstate = "none";
    if (svc->def->schema)
        dbstate = (ctx->worker && db_ping(ctx->worker)) ? "ok" : "down";
    bus_stats_t st;
    bus_get_stats(ctx->bus, &st);
    *reply = json_pack("{s:s, s:s, s:s, s:i, s:s, s:I, s:s, s:s, s:{s:I, s:I, s:I, s:I, s:s}}",
                       "service", svc->def->name, "instance", svc->instance, "host", host,
                       "pid", (int)getpid(), "version", VIRGA_VERSION,
                       "uptime_s", (json_int_t)(time(NULL) - svc->started),
                       "db", dbstate, "status", strcmp(dbstate, "down") ? "healthy" : "degraded",
                       "bus", "served", (json_int_t)st.served, "calls", (json_int_t)st.calls,
                       "timeouts", (json_int_t)st.call_timeouts, "rejected", (json_int_t)st.rejected,
                       "principal", bus_principal(ctx->bus));
    if (svc->def->health)
        svc->def->health(svc, *reply);
    return 0;
}

static int sys_echo(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    (void)ctx;
    (void)e;
    *reply = json_deep_copy(body);
    return 0;
}

/* Service-to-service round trip: this service calls another's sys.health over the
 * bus and reports what came back and how long it took. Used by the integration test
 * and by operators checking that two services can reach each other. */
static int sys_probe(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    const char *target = json_str(body, "service", NULL);
    if (!target)
        return verr_set(e, 400, "MissingParameter", "sys.probe needs 'service'");
    int timeout = (int)json_int(body, "timeout_ms", 3000);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    json_t *r = NULL;
    if (bus_call(ctx->bus, target, "sys.health", NULL, NULL, timeout, &r, e) < 0)
        return -1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ms = (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6;
    *reply = json_pack("{s:s, s:o, s:f}", "from", ((service_t *)ctx->app)->instance, "health", r, "rtt_ms", ms);
    return 0;
}

/* The service's Prometheus metrics (what /metrics answers where there is an endpoint),
 * for the operator: `virgadm call <service> sys.metrics`. */
static int sys_metrics(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    (void)body;
    (void)e;
    strbuf_t out = {0};
    service_metrics_render(ctx->app, &out);
    *reply = json_pack("{s:s}", "text", out.s ? out.s : "");
    free(out.s);
    return 0;
}

/* The message types this service handles (its route table), for the operator and for
 * the test that every action the gateway forwards has a handler. */
static int sys_routes(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    (void)body;
    (void)e;
    service_t *svc = ctx->app;
    json_t *types = json_array();
    for (const bus_route_t *r = svc->def->routes; r && r->type; r++)
        json_array_append_new(types, json_string(r->type));
    *reply = json_pack("{s:o}", "types", types);
    return 0;
}

/* Test-only: hold a request for body.ms milliseconds (enabled by debug.test_handlers)
 * so tests can kill a service while a call is in flight. */
static int sys_sleep(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    (void)ctx;
    (void)e;
    int64_t ms = json_int(body, "ms", 1000);
    if (ms < 0 || ms > 60000)
        return verr_set(e, 400, "InvalidParameterValue", "ms must be 0..60000");
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
    *reply = json_pack("{s:I}", "slept_ms", (json_int_t)ms);
    return 0;
}

static bus_route_t *build_routes(const service_def_t *def, int test_handlers)
{
    static const bus_route_t builtins[] = {
        {"sys.health", sys_health, BUS_FROM_ANY},
        {"sys.echo", sys_echo, BUS_FROM_ANY},
        {"sys.probe", sys_probe, BUS_P_OPERATOR},   /* makes this service call another */
        {"sys.metrics", sys_metrics, BUS_P_OPERATOR},
        {"sys.routes", sys_routes, BUS_P_OPERATOR},
    };
    size_t n = 0;
    while (def->routes && def->routes[n].type)
        n++;
    bus_route_t *r = xcalloc(n + ARRAY_LEN(builtins) + 2, sizeof *r);
    size_t k = 0;
    for (size_t i = 0; i < ARRAY_LEN(builtins); i++)
        r[k++] = builtins[i];
    if (test_handlers)
        r[k++] = (bus_route_t){"sys.sleep", sys_sleep, BUS_P_OPERATOR};
    for (size_t i = 0; i < n; i++)
        r[k++] = def->routes[i];
    return r;
}

static void usage(const char *name)
{
    fprintf(stderr, "usage: virga-%s [-c FILE] [--set key=value]...\n"
                    "Configuration keys and defaults: docs/config.md\n", name);
}

int service_main(int argc, char **argv, const service_def_t *def)
{
    service_t svc = {.def = def, .started = time(NULL)};
    verr_t e = {0};
    int rc = 1;
    bus_route_t *routes = NULL;
    char **rest = xcalloc((size_t)argc + 1, sizeof *rest);
    int nrest = 0;
    svc.cfg = config_new();
    if (config_parse_args(svc.cfg, argc, argv, &nrest, rest, &e) < 0) {
        fprintf(stderr, "virga-%s: %s\n", def->name, e.message);
        goto out;
    }
    if (nrest > 0) {
        usage(def->name);
        rc = 2;
        goto out;
    }
    log_init(def->name, config_str(svc.cfg, "log.level", "info"), config_str(svc.cfg, "log.format", "text"));
    service_memory_opts_t mem;
    if (service_memory_setup(svc.cfg, &mem, &e) < 0) {
        log_error("%s", e.message);
        goto out;
    }
    char host[64] = "";
    gethostname(host, sizeof host - 1);
    snprintf(svc.instance, sizeof svc.instance, "%s@%s:%d", def->name, host, (int)getpid());

    sem_init(&wake, 0, 0);
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    signal(SIGPIPE, SIG_IGN);

    if (def->schema) {
        if (!(svc.db = db_connect(config_str(svc.cfg, "db.url", NULL), &e)) ||
            db_migrate(svc.db, def->schema, virga_migrations, virga_migrations_count, &e) < 0 ||
            db_set_schema(svc.db, def->schema, &e) < 0) {
            log_error("database: %s", e.message);
            goto out;
        }
    }
    if (def->principal && !config_str(svc.cfg, "bus.principal", NULL))
        config_set(svc.cfg, "bus.principal", def->principal);
    if (!(svc.bus = bus_open(svc.cfg, def->name, &e))) {
        log_error("bus: %s", e.message);
        goto out;
    }
    if (def->init && def->init(&svc, &e) < 0) {
        log_error("init: %s", e.message);
        goto out;
    }
    char topic[128];
    snprintf(topic, sizeof topic, "virga.rpc.%s", def->name);
    routes = build_routes(def, config_bool(svc.cfg, "debug.test_handlers", 0));
    bus_serve_opts_t so = {
        .topic = def->topic ? def->topic : topic,
        .group = def->group ? def->group : def->name,
        .routes = routes,
        .workers = (int)config_int(svc.cfg, "bus.workers", 4),
        .worker_init = worker_init,
        .worker_fini = worker_fini,
        .app = &svc,
    };
    if (bus_serve(svc.bus, &so, &e) < 0) {
        log_error("bus: %s", e.message);
        goto out;
    }
    log_info("started %s (version %s), serving %s", svc.instance, VIRGA_VERSION, so.topic);
    /* The reply reader starts with the first call (a consumer, its connection and the
     * reply topic's end): about a second, which the first tenant request after a start
     * paid (a signed DescribeRegions took 1.0-1.5 s, docs/performance.md). Made here,
     * it is ready when the first request comes; a request in the meantime waits for it
     * as before. A failure is the first call's to report. */
    verr_t warm;
    if (def->makes_calls && bus_read_replies(svc.bus, &warm) < 0)
        log_warn("bus: reply topic not read yet: %s", warm.message);

    char key[96];
    snprintf(key, sizeof key, "%s.reconcile_interval_s", def->name);
    long interval = config_int(svc.cfg, key, 10);
    time_t next = time(NULL) + (def->reconcile_at_start ? 0 : interval);
    /* what a burst of work freed goes back to the system within trim_interval_s, after
     * the reconcile pass when both are due (service_memory.h) */
    time_t next_trim = mem.trim_interval_s ? time(NULL) + mem.trim_interval_s : 0;
    /* and soon after a burst of large messages (the bus posts `wake` at the first) */
    if (mem.trim_interval_s)
        service_memory_wake_with(&wake);
    /* asleep until the next reconcile pass, trim or a signal, not polling the stop flag */
    while (!stopping) {
        struct timespec until = {.tv_sec = def->reconcile ? next : time(NULL) + 3600};
        if (next_trim && next_trim < until.tv_sec)
            until.tv_sec = next_trim;
        int64_t burst = mem.trim_interval_s ? service_memory_burst_trim_at() : 0;
        if (burst && burst < (int64_t)until.tv_sec * 1000)
            until = (struct timespec){.tv_sec = burst / 1000, .tv_nsec = burst % 1000 * 1000000};
        if (sem_timedwait(&wake, &until) < 0 && errno != ETIMEDOUT && errno != EINTR)
            usleep(100 * 1000);   /* cannot happen (EINVAL): do not spin */
        if (!stopping && def->reconcile && time(NULL) >= next) {
            def->reconcile(&svc);
            service_memory_note_work();   /* what the pass freed: the next timer trim's */
            next = time(NULL) + interval;
        }
        if (!stopping && mem.trim_interval_s && service_memory_trim_after_burst())
            next_trim = time(NULL) + mem.trim_interval_s;
        if (!stopping && next_trim && time(NULL) >= next_trim) {
            service_memory_trim_if_busy();   /* an idle service has nothing new to give back */
            next_trim = time(NULL) + mem.trim_interval_s;
        }
    }
    service_memory_wake_with(NULL);
    log_info("stopping on signal");
    rc = 0;
out:
    /* Shutdown order: first stop whatever can still run code that uses the service's
     * state, then let fini free that state. The HTTP endpoint goes first (its handlers
     * call over the bus), then the bus consumer with its workers and the broadcast
     * listener (handlers in flight finish). The reconcile timer runs on this thread, so
     * it has stopped already. Calls and replies keep working until bus_close, so fini may
     * still wait for its own calls in flight (the gateway's forwarded actions). */
    if (def->stop && svc.bus)
        def->stop(&svc);
    service_http_stop(&svc);
    bus_stop_serving(svc.bus);
    if (def->fini && svc.bus)
        def->fini(&svc);
    bus_close(svc.bus);
    db_close(svc.db);
    config_free(svc.cfg);
    free(routes);
    free(rest);
    if (rc == 0)
        log_info("stopped");
    return rc;
}
