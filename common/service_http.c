/* service_http.c - /healthz and /metrics in front of a service's own HTTP routes. */
#include "service_http.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "strbuf.h"

/* One public endpoint per process: its route table lives until service_http_stop(). */
static http_route_t *table;

/* 200 "ok" once the service serves its bus topic and its own health hook (what it knows of
 * what it depends on: the object store's storage cluster) does not say "degraded";
 * otherwise 503 with the reason. */
static void healthz(http_req_t *req, http_resp_t *resp)
{
    service_t *svc = req->app;
    if (!bus_serving(svc->bus)) {
        http_resp_set(resp, 503, "text/plain", "starting\n", 9);
        return;
    }
    json_t *h = json_pack("{s:s}", "status", "healthy");
    if (svc->def->health)
        svc->def->health(svc, h);
    const char *status = json_string_value(json_object_get(h, "status"));
    if (status && strcmp(status, "healthy")) {
        char *detail = json_dumps(h, JSON_COMPACT | JSON_SORT_KEYS);
        char *body = xasprintf("%s %s\n", status, detail ? detail : "");
        free(detail);
        http_resp_take(resp, 503, "text/plain", body, strlen(body));
    } else {
        http_resp_set(resp, 200, "text/plain", "ok\n", 3);
    }
    json_decref(h);
}

void service_metrics_render(service_t *svc, strbuf_t *out)
{
    bus_stats_t st;
    bus_get_stats(svc->bus, &st);
    const char *n = svc->def->name;
    strbuf_printf(out,
        "# HELP virga_http_requests_total HTTP requests answered.\n"
        "# TYPE virga_http_requests_total counter\n"
        "virga_http_requests_total{service=\"%s\"} %llu\n"
        "# HELP virga_bus_calls_total RPC calls made over the bus.\n"
        "# TYPE virga_bus_calls_total counter\n"
        "virga_bus_calls_total{service=\"%s\"} %llu\n"
        "# HELP virga_bus_call_timeouts_total RPC calls that got no reply in time.\n"
        "# TYPE virga_bus_call_timeouts_total counter\n"
        "virga_bus_call_timeouts_total{service=\"%s\"} %llu\n"
        "# HELP virga_bus_served_total Bus messages handled.\n"
        "# TYPE virga_bus_served_total counter\n"
        "virga_bus_served_total{service=\"%s\"} %llu\n"
        "# HELP virga_uptime_seconds Seconds since the process started.\n"
        "# TYPE virga_uptime_seconds gauge\n"
        "virga_uptime_seconds{service=\"%s\"} %lld\n",
        n, (unsigned long long)http_requests_served(svc->http), n, (unsigned long long)st.calls, n,
        (unsigned long long)st.call_timeouts, n, (unsigned long long)st.served, n,
        (long long)(time(NULL) - svc->started));
    bus_metrics_render(svc->bus, out);
    if (svc->def->metrics)
        svc->def->metrics(svc, out);
}

static void metrics(http_req_t *req, http_resp_t *resp)
{
    strbuf_t out = {0};
    service_metrics_render(req->app, &out);
    http_resp_take(resp, 200, "text/plain; version=0.0.4", out.s, out.len);
}

int service_http_start(service_t *svc, const char *section, int default_port,
                       const http_route_t *routes, http_refuse_fn refuse, verr_t *e)
{
    size_t n = 0;
    while (routes && routes[n].prefix)
        n++;
    /* ops routes first: they are exact paths no API uses */
    table = xcalloc(n + 3, sizeof *table);
    table[0] = (http_route_t){"GET", "/healthz", healthz, NULL};
    table[1] = (http_route_t){"GET", "/metrics", metrics, NULL};
    for (size_t i = 0; i < n; i++)
        table[i + 2] = routes[i];
    static const char *const keys[] = {"listen", "port", "http_threads", "max_body", "max_uri_bytes",
                                       "max_header_bytes", "body_idle_timeout_s", "drain_ms"};
    char k[ARRAY_LEN(keys)][96];
    for (size_t i = 0; i < ARRAY_LEN(keys); i++)
        snprintf(k[i], sizeof k[i], "%s.%s", section, keys[i]);
    http_opts_t o = {
        .address = config_str(svc->cfg, k[0], "127.0.0.1"),
        .port = (int)config_int(svc->cfg, k[1], default_port),
        .threads = (int)config_int(svc->cfg, k[2], 4),
        .max_body = (size_t)config_int(svc->cfg, k[3], 1024 * 1024),
        .max_uri = (size_t)config_int(svc->cfg, k[4], 8 * 1024),
        .max_headers = (size_t)config_int(svc->cfg, k[5], 8 * 1024),
        .body_idle_s = (int)config_int(svc->cfg, k[6], 20),
        .refuse = refuse,
        .server_name = "Virga",
        .routes = table,
        .app = svc,
        .drain_ms = (int)config_int(svc->cfg, k[7], 1000),
    };
    if (o.max_uri < 1024 || o.max_headers < 1024 || o.body_idle_s < 1)
        return verr_set(e, 500, "InvalidConfig", "%s: %s and %s must be at least 1024, %s at least 1", section,
                        keys[4], keys[5], keys[6]);
    svc->http = http_start(&o, e);
    if (!svc->http)
        return -1;
    log_info("HTTP endpoint listening on %s:%d", o.address, o.port);
    return 0;
}

void service_http_stop(service_t *svc)
{
    http_stop(svc->http);
    svc->http = NULL;
    free(table);
    table = NULL;
}
