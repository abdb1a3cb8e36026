/* service_http.h - a service's public HTTP endpoint: the service's own routes behind
 * the operational ones every endpoint has, GET /healthz (200 once the service serves
 * its bus topic, 503 before) and GET /metrics (Prometheus text format). */
#ifndef VIRGA_SERVICE_HTTP_H
#define VIRGA_SERVICE_HTTP_H

#include "http.h"
#include "service.h"

/* Listen on <section>.listen (default 127.0.0.1) and <section>.port (default
 * default_port), with <section>.http_threads, .max_body, .max_uri_bytes,
 * .max_header_bytes and .body_idle_timeout_s (http_opts_t). refuse renders the HTTP
 * layer's refusals in the API's error shape. Handlers get req->app == svc. Sets
 * svc->http. */
int service_http_start(service_t *svc, const char *section, int default_port,
                       const http_route_t *routes, http_refuse_fn refuse, verr_t *e);
void service_http_stop(service_t *svc);
/* What GET /metrics answers (also sys.metrics over the bus, for services without an
 * endpoint): the process's counters, the bus server's per message type, the service's
 * own (service_def_t.metrics). */
struct strbuf;
void service_metrics_render(service_t *svc, struct strbuf *out);

#endif
