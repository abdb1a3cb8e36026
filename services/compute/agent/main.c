/* virga-agent - the per-host agent. It serves virga.host.<host-id> (commands for this
 * host only) and holds no database credentials: hosts are the least trusted part of a
 * cloud, so everything they learn or report goes through the compute service. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "agent.h"
#include "log.h"

static const bus_route_t routes[] = {
    {"agent.image_fetch", agent_image_fetch},
    {"agent.image_cache_list", agent_image_cache_list},
    {NULL, NULL},
};

static agent_t agent;

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
    return 0;
}

/* Downloads in flight give up at once instead of holding the stop for up to
 * agent.fetch_timeout_s. */
static void stop(service_t *svc)
{
    (void)svc;
    image_cache_stop(agent.images);
}

/* The bus workers have stopped: nothing uses the cache any more. */
static void fini(service_t *svc)
{
    (void)svc;
    image_cache_close(agent.images);
    agent.images = NULL;
}

int main(int argc, char **argv)
{
    /* The host id decides the topic, so read it before the common start-up: from
     * VIRGA_AGENT_HOST_ID or --set agent.host_id=..., else the machine's hostname. */
    static char host_id[64], topic[128], group[128];
    config_t *pre = config_new();
    config_parse_args(pre, argc, argv, NULL, NULL, NULL);
    const char *hid = config_str(pre, "agent.host_id", NULL);
    if (hid && *hid)
        snprintf(host_id, sizeof host_id, "%s", hid);
    else
        gethostname(host_id, sizeof host_id - 1);
    config_free(pre);
    snprintf(topic, sizeof topic, "virga.host.%s", host_id);
    snprintf(group, sizeof group, "agent.%s", host_id);

    static service_def_t def = {
        .name = "agent",
        .schema = NULL,
        .routes = routes,
        .init = init,
        .stop = stop,
        .fini = fini,
    };
    def.topic = topic;
    def.group = group;
    return service_main(argc, argv, &def);
}
