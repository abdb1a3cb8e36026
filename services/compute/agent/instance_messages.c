/* instance_messages.c - the agent's instance messages on the bus (docs/compute.md):
 * agent.instances_changed from compute only hands the doorbell to the instance loop
 * (never driver work on a bus worker); the loop calls compute.host_instances and
 * compute.instances_observed, which know the host from this agent's signature. */
#include "agent.h"
#include "jsonutil.h"
#include "metadata_server.h"

/* {"generation": G, "changes"?: [...]} -> {}. Only compute rings (the route): the
 * changes are the specs of the instances whose last change is G, which the loop applies
 * when it has G - 1, else it pulls (instance_sync_doorbell). Compute rings with
 * generation 0 when it asks for an export (create_image.c): only then is the export
 * loop woken too. It used to be woken by every ring, so each launch also cost a
 * compute.host_exports question, its answer and a query (issue 11's launch rate); the
 * export loop still asks on its timer (agent.sync_interval_s), so a ring lost or
 * misread costs an export at most that long. */
int agent_instances_changed(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    (void)reply;
    (void)e;
    agent_t *a = service_of(ctx)->state;
    instance_sync_doorbell(a->sync, body);
    if (json_int(body, "generation", 0) == 0)
        image_export_wake(a->exports);
    return 0;
}

static int bus_desired(void *arg, json_t **doc, verr_t *e)
{
    service_t *svc = arg;
    int timeout = (int)config_int(svc->cfg, "agent.compute_timeout_ms", 10000);
    return bus_call(svc->bus, "compute", "compute.host_instances", json_object(), NULL, timeout, doc, e);
}

/* One-way (issue 11's launch rate: a request and its reply were two messages on the
 * broker, and the loop used nothing of the reply): the report's seq orders it in
 * compute, the next pass reports again, and the pull says which console compute has. */
static int bus_observed(void *arg, json_t *body, verr_t *e)
{
    service_t *svc = arg;
    return bus_publish(svc->bus, "virga.rpc.compute", "compute.instances_observed", body, e);
}

/* A launch's doorbell carries the guest's metadata document (compute's
 * instance_metadata.c): the metadata servers answer its first questions from it. */
static void primed(void *arg, const char *instance_id, const json_t *md)
{
    (void)arg;
    if (instance_id)
        md_servers_prime(instance_id, md);
    else
        md_servers_primed_keep(md);
}

int agent_instance_sync_start(service_t *svc, const char *host_id, verr_t *e)
{
    agent_t *a = svc->state;
    instance_sync_opts_t o = {
        .cfg = svc->cfg,
        .host_id = host_id,
        .images = a->images,
        .io = {.desired = bus_desired, .observed = bus_observed, .metadata = primed, .arg = svc},
    };
    a->sync = instance_sync_start(&o, e);
    return a->sync ? 0 : -1;
}
