/* virga-agent - the per-host agent. It serves virga.host.<host-id> (commands for this
 * host only) and holds no database credentials: hosts are the least trusted part of a
 * cloud, so everything they learn or report goes through the compute service. */
#include <stdio.h>
#include <unistd.h>

#include "log.h"
#include "service.h"

static const bus_route_t routes[] = {
    {NULL, NULL},
};

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
    };
    def.topic = topic;
    def.group = group;
    return service_main(argc, argv, &def);
}
