/* virga-objectstore - wiring only: the S3 endpoint over the configured storage backend
 * (RADOS or a directory). It also listens on virga.events for identity.changed to drop
 * cached signing keys, keeps this process's writer heartbeat (writers.c), runs the
 * backend's garbage collection and the lifecycle expiration pass on the reconcile timer,
 * and reports whether the storage answers in its health (sys.health and /healthz). */
#include <stdlib.h>
#include <string.h>

#include "jsonutil.h"
#include "log.h"
#include "objectstore.h"
#include "service_http.h"
#include "strbuf.h"

static const http_route_t http_routes[] = {
    {NULL, "/", NULL, &s3_stream},
    {NULL, NULL, NULL, NULL},
};

static int on_event(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    (void)reply;
    (void)e;
    objectstore_t *os = ((service_t *)ctx->app)->state;
    if (!strcmp(ctx->msg->type, "identity.changed"))
        keycache_apply_event(os->keys, body);
    return 0;
}

static int init(service_t *svc, verr_t *e)
{
    objectstore_t *os = xcalloc(1, sizeof *os);
    os->svc = svc;
    os->region = config_str(svc->cfg, "region", "us-east-1");
    os->domain = config_str(svc->cfg, "objectstore.domain", "");
    os->call_timeout_ms = (int)config_int(svc->cfg, "objectstore.call_timeout_ms", 10000);
    os->max_put = strtoull(config_str(svc->cfg, "objectstore.max_object_bytes", "5368709120"), NULL, 10);
    os->keys = keycache_new((int)config_int(svc->cfg, "objectstore.key_cache_ttl_s", 60));
    os->operator_account = config_str(svc->cfg, "identity.operator_account_id", "000000000001");
    os_lifecycle_init(os, svc->cfg);
    svc->state = os;
    if (s3_ops_check(e) < 0)
        return -1;
    long port = config_int(svc->cfg, "objectstore.port", 8774);
    const char *pub = config_str(svc->cfg, "objectstore.public_url", NULL);
    if (pub && *pub)
        snprintf(os->public_url, sizeof os->public_url, "%s", pub);
    else
        snprintf(os->public_url, sizeof os->public_url, "http://127.0.0.1:%ld", port);
    if (os_grant_init(os, e) < 0)
        return -1;
    if (!(os->backend = os_backend_open(svc->cfg, e)))
        return -1;
    log_info("object store backend: %s", os_backend_name(os->backend));
    if (!(os->writers = writers_start(svc, os->backend, e)))
        return -1;
    if (bus_listen(svc->bus, "virga.events", on_event, svc, e) < 0)
        return -1;
    /* storage calls block an HTTP thread for a RADOS round trip: more threads than
     * cores keep the cluster busy (objectstore.http_threads overrides) */
    if (!config_str(svc->cfg, "objectstore.http_threads", NULL))
        config_set(svc->cfg, "objectstore.http_threads", "16");
    if (transfer_start(os, e) < 0)
        return -1;
    return service_http_start(svc, "objectstore", 8774, http_routes, s3_refuse, e);
}

static void reconcile(service_t *svc)
{
    objectstore_t *os = svc->state;
    verr_t e;
    os_health_t h;
    os_backend_health(os->backend, &h);
    if (!h.ok)
        return;   /* every storage call would wait for its timeout */
    os_gc_opts_t o = {
        .grace_s = (int)config_int(svc->cfg, "objectstore.gc_grace_s", 300),
        .stale_s = (int)config_int(svc->cfg, "objectstore.upload_stale_s", 7 * 86400),
        .interrupted = service_stopping,   /* a pass can be long: it must not hold up SIGTERM */
    };
    writers_gc_opts(os->writers, svc->db, &o);
    if (os_backend_gc_run(os->backend, &o, &e) < 0)
        log_warn("garbage collection: %s", e.message);
    if (svc->db) {
        s3_uploads_expire(svc->db, o.stale_s);
        storage_recount(os, svc->db);   /* usage for billing (recount.c, transfer.c) */
        storage_sample(svc->db);
    }
    os_lifecycle_tick(os);
}

/* Before the HTTP endpoint drains: uploads cut short by the stop leave their data to gc
 * instead of deleting it now (a storage round trip each would hold the stop up). */
static void stop(service_t *svc)
{
    objectstore_t *os = svc->state;
    if (os)
        os_backend_stopping(os->backend);
}

static void fini(service_t *svc)
{
    objectstore_t *os = svc->state;
    service_http_stop(svc);
    if (os) {
        transfer_stop(os, svc->db);   /* after the last request: the last window of GET bytes */
        writers_stop(os->writers);   /* after the last request: no write of ours is left */
        os_lifecycle_fini(os);
        os_backend_close(os->backend);
        keycache_free(os->keys);
        free(os);
    }
    svc->state = NULL;
}

static void health(service_t *svc, json_t *out)
{
    objectstore_t *os = svc->state;
    json_object_set_new(out, "port", json_integer(config_int(svc->cfg, "objectstore.port", 8774)));
    if (!os || !os->backend)
        return;
    json_object_set_new(out, "backend", json_string(os_backend_name(os->backend)));
    os_health_t h;
    os_backend_health(os->backend, &h);
    json_t *st = json_pack("{s:s, s:I}", "state", h.ok ? "ok" : "down", "reconnects", (json_int_t)h.reconnects);
    if (!h.ok) {
        json_object_set_new(st, "detail", json_string(h.detail));
        json_object_set_new(st, "down_since", json_integer(h.since));
        json_object_set_new(out, "status", json_string("degraded"));
    }
    json_object_set_new(out, "storage", st);
}

static void metrics(service_t *svc, strbuf_t *out)
{
    objectstore_t *os = svc->state;
    if (!os)
        return;
    keycache_render_metrics(os->keys, "virga_objectstore_signing_key_lookups_total", out);
    s3_wait_render_metrics(os, out);
}

int main(int argc, char **argv)
{
    static const bus_route_t routes[] = {
        /* grants and buckets for the image service, which acts for a tenant, and the operator */
        {"objectstore.ensure_bucket", os_bus_ensure_bucket, BUS_P_IMAGE | BUS_P_OPERATOR},
        {"objectstore.grant", os_bus_grant, BUS_P_IMAGE | BUS_P_OPERATOR},
        {NULL, NULL, 0},
    };
    static const service_def_t def = {
        .name = "objectstore",
        .makes_calls = 1,
        .schema = "objectstore",
        .routes = routes,
        .init = init,
        .reconcile = reconcile,
        .health = health,
        .metrics = metrics,
        .stop = stop,
        .fini = fini,
    };
    return service_main(argc, argv, &def);
}
