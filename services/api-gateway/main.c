/* virga-gateway - wiring only: the public EC2/IAM Query API endpoint in front of the
 * bus. It also listens on virga.events for identity.changed to drop cached keys. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gateway.h"
#include "jsonutil.h"
#include "log.h"
#include "metrics.h"
#include "service_http.h"

static const http_route_t http_routes[] = {
    {NULL, "/console/s3/", NULL, &gw_console_s3},
    {NULL, "/console", gw_console, NULL},
    {NULL, "/", gw_handle, NULL},
    {NULL, NULL, NULL, NULL},
};

static int on_event(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    (void)reply;
    (void)e;
    gateway_t *gw = ((service_t *)ctx->app)->state;
    if (strcmp(ctx->msg->type, "identity.changed"))
        return 0;
    keycache_apply_event(gw->keys, body);
    log_debug("identity.changed %s %s: cache entries dropped", json_str(body, "what", ""), json_str(body, "id", ""));
    return 0;
}

static int init(service_t *svc, verr_t *e)
{
    if (gw_check_actions(e) < 0)
        return -1;
    gateway_t *gw = xcalloc(1, sizeof *gw);
    gw->region = config_str(svc->cfg, "region", "us-east-1");
    static char zones[256];
    snprintf(zones, sizeof zones, "%sa", gw->region);
    gw->zones = config_str(svc->cfg, "gateway.availability_zones", zones);
    gw->skew_s = config_int(svc->cfg, "gateway.clock_skew_s", 900);
    gw->call_timeout_ms = (int)config_int(svc->cfg, "gateway.call_timeout_ms", 10000);
    gw->keys = keycache_new((int)config_int(svc->cfg, "gateway.key_cache_ttl_s", 60));
    keycache_set_unknown_ttl(gw->keys, (int)config_int(svc->cfg, "gateway.unknown_key_ttl_s", KEYCACHE_UNKNOWN_TTL_S));
    gw->limits = ratelimit_new(atof(config_str(svc->cfg, "gateway.rate_limit", "200")),
                               atof(config_str(svc->cfg, "gateway.rate_burst", "400")));
    gw->authfail = authfail_new(atof(config_str(svc->cfg, "gateway.auth_fail_rate", "5")),
                                atof(config_str(svc->cfg, "gateway.auth_fail_burst", "200")));
    gw->metrics = gw_metrics_new();
    /* console logins: a few failures per address a minute (docs/console.md) */
    gw->console_fails = authfail_new(atof(config_str(svc->cfg, "console.login_fail_rate", "0.1")),
                                     atof(config_str(svc->cfg, "console.login_fail_burst", "10")));
    gw->console_secure = config_str(svc->cfg, "console.secure_cookie", "auto");
    /* the object store as this gateway and the browser reach it (docs/console.md) */
    const char *os_listen = config_str(svc->cfg, "objectstore.listen", "127.0.0.1");
    snprintf(gw->console_s3_url, sizeof gw->console_s3_url, "%s",
             config_str(svc->cfg, "console.s3_url", ""));
    if (!gw->console_s3_url[0])
        snprintf(gw->console_s3_url, sizeof gw->console_s3_url, "http://%s:%ld",
                 strcmp(os_listen, "0.0.0.0") ? os_listen : "127.0.0.1", config_int(svc->cfg, "objectstore.port", 8774));
    gw->console_s3_url_ttl_s = config_int(svc->cfg, "console.s3_url_ttl_s", 300);
    gw->console_s3_max_upload = (size_t)config_int(svc->cfg, "console.s3_max_upload", 64L << 20);
    gw->console_s3_max_response = (size_t)config_int(svc->cfg, "console.s3_max_response", 16L << 20);
    svc->state = gw;
    if (bus_listen(svc->bus, "virga.events", on_event, svc, e) < 0)
        return -1;
    /* no request holds a thread while the bus works, so one HTTP thread per core is
     * enough, and fewer threads than 16 switch less: on a quiet 2-core machine 2 threads
     * halved the p99 of signed DescribeRegions at 64 connections (about 10 ms against 20)
     * with forwarded calls the same (docs/performance.md, issue 14) */
    if (!config_str(svc->cfg, "gateway.http_threads", NULL)) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        char n[24];
        snprintf(n, sizeof n, "%ld", cores < 2 ? 2 : cores);
        config_set(svc->cfg, "gateway.http_threads", n);
    }
    return service_http_start(svc, "gateway", 8773, http_routes, gw_refuse, e);
}

static void fini(service_t *svc)
{
    /* service_main has stopped HTTP (forwarded actions still in flight were answered
     * 503) and the event listener; their bus callbacks still use gw: they all run by the
     * call deadline */
    gateway_t *gw = svc->state;
    for (int i = 0; gw && __atomic_load_n(&gw->inflight, __ATOMIC_SEQ_CST) && i < gw->call_timeout_ms / 10 + 100; i++)
        usleep(10 * 1000);
    if (gw && __atomic_load_n(&gw->inflight, __ATOMIC_SEQ_CST)) {
        log_warn("%d deferred requests never called back: keeping their state", gw->inflight);
        svc->state = NULL;
        return;
    }
    if (gw) {
        keycache_free(gw->keys);
        ratelimit_free(gw->limits);
        authfail_free(gw->authfail);
        authfail_free(gw->console_fails);
        gw_metrics_free(gw->metrics);
        free(gw);
    }
    svc->state = NULL;
}

static void health(service_t *svc, json_t *out)
{
    gateway_t *gw = svc->state;
    json_object_set_new(out, "port", json_integer(config_int(svc->cfg, "gateway.port", 8773)));
    if (gw)
        json_object_set_new(out, "requests", json_integer((json_int_t)gw->requests));
}

static void metrics(service_t *svc, strbuf_t *out)
{
    gateway_t *gw = svc->state;
    if (!gw)
        return;
    gw_metrics_render(gw->metrics, out);
    keycache_render_metrics(gw->keys, "virga_gateway_signing_key_lookups_total", out);
    metrics_family(out, "virga_gateway_source_refused_total", "counter",
                   "Requests refused unread because their address failed to authenticate too often.");
    metrics_sample(out, "virga_gateway_source_refused_total", "", authfail_refused(gw->authfail));
}

int main(int argc, char **argv)
{
    static const bus_route_t routes[] = {{NULL, NULL, 0}};
    static const service_def_t def = {
        .name = "gateway",
        .makes_calls = 1,
        .schema = "gateway",
        .routes = routes,
        .init = init,
        .health = health,
        .metrics = metrics,
        .fini = fini,
    };
    return service_main(argc, argv, &def);
}
