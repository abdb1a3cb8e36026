/* virga-agent - the per-host agent. It serves virga.host.<host-id> (commands for this
 * host only) and holds no database credentials: hosts are the least trusted part of a
 * cloud, so everything they learn or report goes through the compute service. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent.h"
#include "log.h"
#include "net_sync.h"
#include "vm_state.h"

static const bus_route_t routes[] = {
    /* commands come from compute, or from the operator */
    {"agent.image_fetch", agent_image_fetch, BUS_P_COMPUTE | BUS_P_OPERATOR},
    {"agent.image_cache_list", agent_image_cache_list, BUS_P_COMPUTE | BUS_P_OPERATOR},
    /* a doorbell: compute changed what this host should run */
    {"agent.instances_changed", agent_instances_changed, BUS_P_COMPUTE},
    /* the network's doorbell: this host's datapath document changed (net_sync.c) */
    {"agent.network_changed", net_sync_event, BUS_P_NETWORK},
    {NULL, NULL, 0},
};

static agent_t agent;
static char host_id[64];

/* The datapath made (or removed) interfaces: launches waiting for theirs go now. */
static void network_applied(void *arg)
{
    instance_sync_network_applied(((agent_t *)arg)->sync);
}

static int init(service_t *svc, verr_t *e)
{
    svc->state = &agent;
    image_cache_opts_t o = {
        .dir = config_str(svc->cfg, "agent.cache_dir", "/var/lib/virga/images"),
        .limit_bytes = strtoull(config_str(svc->cfg, "agent.image_cache_bytes", "21474836480"), NULL, 10),
        .fetch = {
            .timeout_s = config_int(svc->cfg, "agent.fetch_timeout_s", 600),
            .low_speed_bytes = config_int(svc->cfg, "agent.fetch_low_speed_bytes", 1024),
            .low_speed_s = config_int(svc->cfg, "agent.fetch_low_speed_s", 60),
        },
    };
    if (!(agent.images = image_cache_open(&o, e)))
        return -1;
    log_info("image cache %s, limit %llu bytes", image_cache_dir(agent.images),
             (unsigned long long)image_cache_limit(agent.images));
    vm_console_cap_set(strtoull(config_str(svc->cfg, "agent.console_max_bytes", "1048576"), NULL, 10));
    if (net_sync_start(svc, host_id, e) < 0)
        return -1;
    if (agent_instance_sync_start(svc, host_id, e) < 0)
        return -1;
    net_sync_on_applied(network_applied, &agent);
    return (agent.exports = image_export_start(svc, agent.sync, host_id, e)) ? 0 : -1;
}

/* Downloads in flight give up at once instead of holding the stop for up to
 * agent.fetch_timeout_s. */
static void stop(service_t *svc)
{
    (void)svc;
    image_cache_stop(agent.images);
    instance_sync_cancel(agent.sync);  /* boots in flight give up waiting */
    image_export_cancel(agent.exports);
}

/* The bus workers have stopped: nothing uses the cache any more. */
static void fini(service_t *svc)
{
    (void)svc;
    image_export_stop(agent.exports);  /* it uses the drivers of the instance loop */
    agent.exports = NULL;
    net_sync_on_applied(NULL, NULL);   /* the instance loop goes */
    instance_sync_stop(agent.sync);    /* its threads use the cache and the bus */
    agent.sync = NULL;
    net_sync_stop();
    image_cache_close(agent.images);
    agent.images = NULL;
}

/* The heartbeat: this host's report to compute (compute.host_report), which knows the
 * host from this agent's bus principal. The first is sent at start (reconcile_at_start):
 * until compute has one, the host cannot be placed on. */
static void reconcile(service_t *svc)
{
    uint64_t total = 0;
    size_t n = 0;
    image_cache_entry_t *v = NULL;
    verr_t e;
    if (image_cache_list(agent.images, &v, &n, &total, &e) < 0)
        n = total = 0;
    free(v);
    json_t *inv = agent.sync ? instance_sync_inventory(agent.sync) : json_object();
    json_object_set_new(inv, "image_cache", json_pack("{s:I, s:I}", "count", (json_int_t)n, "bytes", (json_int_t)total));
    net_sync_report(inv);
    net_sync_kick();
    json_t *r = NULL;
    if (bus_call(svc->bus, "compute", "compute.host_report", json_pack("{s:o}", "inventory", inv), NULL, 5000, &r,
                 &e) < 0)
        log_warn("host report to compute: %s %s", e.code, e.message);
    json_decref(r);
    instance_sync_wake(agent.sync);
}

/* A host id names this host's topic, group and bus principal (agent-<host id>), so it is
 * a plain word (bus_name_valid): no '.', which would let one host's prefixes cover
 * another's. */
static int valid_host_id(const char *s) { return bus_name_valid(s, 60); }

int main(int argc, char **argv)
{
    /* The host id decides the topic, so read it before the common start-up: from
     * VIRGA_AGENT_HOST_ID or --set agent.host_id=..., else the machine's hostname. */
    static char topic[128], group[128], principal[80];
    config_t *pre = config_new();
    config_parse_args(pre, argc, argv, NULL, NULL, NULL);
    const char *hid = config_str(pre, "agent.host_id", NULL);
    if (hid && *hid)
        snprintf(host_id, sizeof host_id, "%s", hid);
    else
        gethostname(host_id, sizeof host_id - 1);
    config_free(pre);
    if (!valid_host_id(host_id)) {
        fprintf(stderr, "virga-agent: agent.host_id '%s' must be 1 to 60 letters, digits, '-' or '_'\n", host_id);
        return 2;
    }
    snprintf(topic, sizeof topic, "virga.host.%s", host_id);
    snprintf(group, sizeof group, "agent-%s", host_id);
    snprintf(principal, sizeof principal, "agent-%s", host_id);

    static service_def_t def = {
        .name = "agent",
        .makes_calls = 1,
        .schema = NULL,
        .routes = routes,
        .init = init,
        .stop = stop,
        .fini = fini,
        .reconcile = reconcile,
        .reconcile_at_start = 1,
    };
    def.topic = topic;
    def.group = group;
    def.principal = principal;
    return service_main(argc, argv, &def);
}
