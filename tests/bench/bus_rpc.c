/* bus_rpc - bus RPC round trip latency and throughput against a running cloud.
 *
 *   bus_rpc -c virga.yaml [--service compute] [--rate 1000] [--seconds 10] [--threads 8]
 *           [--throughput-seconds 5]
 *   bus_rpc -c virga.yaml --serve SECONDS [--service compute]
 *
 * --serve answers sys.echo on virga.rpc.<service> for SECONDS (as the principal in
 * bus.principal): the echo server for a broker that runs no services (virga-busd, the
 * mock, in make bench).
 *
 * Phase 1 paces sys.echo calls at --rate calls/s in total across --threads callers
 * (open loop: a caller that falls behind does not slow the schedule) and prints
 * p50/p99/max. Phase 2 runs the same callers unpaced for --throughput-seconds and
 * prints calls/s. Every loop is bounded by its time limit. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bus.h"
#include "config.h"
#include "loadgen.h"
#include "log.h"

static bus_t *bus;
static const char *service = "compute";
static double rate = 1000, seconds = 10, tput_seconds = 5;
static int nthreads = 8;
static double serve_s = 0;

static int h_echo(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    (void)ctx, (void)e;
    *reply = json_deep_copy(body);
    return 0;
}

static int serve(void)
{
    static const bus_route_t routes[] = {{"sys.echo", h_echo, BUS_FROM_ANY}, {"sys.health", h_echo, BUS_FROM_ANY},
                                         {NULL, NULL, 0}};
    char topic[128];
    snprintf(topic, sizeof topic, "virga.rpc.%s", service);
    bus_serve_opts_t o = {.topic = topic, .group = service, .routes = routes, .workers = 4};
    verr_t e;
    if (bus_serve(bus, &o, &e) < 0) {
        fprintf(stderr, "bus_rpc: serve: %s\n", e.message);
        return 1;
    }
    usleep((useconds_t)(serve_s * 1e6));
    return 0;
}

/* Each caller echoes its own payload. */
static void *caller_start(void *arg, int idx)
{
    (void)arg;
    return json_pack("{s:s, s:i}", "hello", "virga", "n", idx);
}

static int echo(void *arg, void *payload, long seq, size_t *bytes)
{
    (void)arg, (void)seq, (void)bytes;
    json_t *r = NULL;
    verr_t e;
    if (bus_call(bus, service, "sys.echo", json_incref(payload), NULL, 5000, &r, &e) < 0)
        return -1;
    json_decref(r);
    return 0;
}

static void caller_stop(void *arg, void *payload)
{
    (void)arg;
    json_decref(payload);
}

static void phase(int paced)
{
    loadgen_t lg = {.threads = nthreads, .seconds = paced ? seconds : tput_seconds, .rate = paced ? rate : 0,
                    .thread_start = caller_start, .call = echo, .thread_stop = caller_stop};
    loadgen_result_t r;
    loadgen_run(&lg, &r);
    if (r.calls == 0) {
        printf("bus_rpc %s: no successful calls (%zu errors)\n", paced ? "latency" : "throughput", r.errors);
    } else if (paced) {
        printf("bus_rpc latency: target %.0f calls/s, achieved %.0f calls/s over %.1f s, %zu calls, %zu errors: "
               "p50 %.2f ms, p99 %.2f ms, max %.2f ms\n",
               rate, r.per_s, r.elapsed, r.calls, r.errors, r.p50, r.p99, r.max);
    } else {
        printf("bus_rpc throughput: %d callers unpaced: %.0f calls/s over %.1f s (%zu calls, %zu errors), p50 %.2f ms\n",
               nthreads, r.per_s, r.elapsed, r.calls, r.errors, r.p50);
    }
}

int main(int argc, char **argv)
{
    config_t *cfg = config_new();
    verr_t e = {0};
    char *rest[32];
    int nrest = 0;
    if (argc > 32 || config_parse_args(cfg, argc, argv, &nrest, rest, &e) < 0) {
        fprintf(stderr, "bus_rpc: %s\n", e.message);
        return 2;
    }
    for (int i = 0; i + 1 < nrest; i += 2) {
        if (!strcmp(rest[i], "--service")) service = rest[i + 1];
        else if (!strcmp(rest[i], "--rate")) rate = atof(rest[i + 1]);
        else if (!strcmp(rest[i], "--seconds")) seconds = atof(rest[i + 1]);
        else if (!strcmp(rest[i], "--threads")) nthreads = atoi(rest[i + 1]);
        else if (!strcmp(rest[i], "--throughput-seconds")) tput_seconds = atof(rest[i + 1]);
        else if (!strcmp(rest[i], "--serve")) serve_s = atof(rest[i + 1]);
        else {
            fprintf(stderr, "bus_rpc: unknown option %s\n", rest[i]);
            return 2;
        }
    }
    if (rate <= 0 || seconds <= 0 || seconds > 600 || tput_seconds > 600 || nthreads < 1 || nthreads > 256 ||
        serve_s < 0 || serve_s > 3600) {
        fprintf(stderr, "bus_rpc: rate > 0, 0 < seconds <= 600, 1 <= threads <= 256\n");
        return 2;
    }
    log_init("bench", config_str(cfg, "log.level", "warn"), "text");
    if (!(bus = bus_open(cfg, "bench", &e))) {
        fprintf(stderr, "bus_rpc: %s\n", e.message);
        return 1;
    }
    if (serve_s > 0) {
        int rc = serve();
        bus_close(bus);
        config_free(cfg);
        return rc;
    }
    json_t *r = NULL;
    if (bus_call(bus, service, "sys.health", NULL, NULL, 10000, &r, &e) < 0) { /* warm up */
        fprintf(stderr, "bus_rpc: %s is not answering: %s\n", service, e.message);
        return 1;
    }
    json_decref(r);
    phase(1);
    if (tput_seconds > 0)
        phase(0);
    bus_close(bus);
    config_free(cfg);
    return 0;
}
