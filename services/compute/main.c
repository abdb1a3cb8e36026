/* virga-compute - wiring only: the compute service's message table. */
#include "compute.h"

/* Who may send what (bus_auth.h): the tenant API from the gateway or the operator; host
 * reports from agents. */
#define TENANT_API (BUS_P_GATEWAY | BUS_P_OPERATOR)

static const bus_route_t routes[] = {
    {"compute.CreateKeyPair", compute_create_key_pair, TENANT_API},
    {"compute.ImportKeyPair", compute_import_key_pair, TENANT_API},
    {"compute.DescribeKeyPairs", compute_describe_key_pairs, TENANT_API},
    {"compute.DeleteKeyPair", compute_delete_key_pair, TENANT_API},
    {"compute.CreateTags", compute_create_tags, TENANT_API},
    {"compute.DeleteTags", compute_delete_tags, TENANT_API},
    {"compute.DescribeTags", compute_describe_tags, TENANT_API},
    {"compute.host_report", compute_host_report, BUS_P_AGENT},   /* as the agent's own host only */
    {NULL, NULL, 0},
};

int main(int argc, char **argv)
{
    static const service_def_t def = {
        .name = "compute",
        .schema = "compute",
        .routes = routes,
    };
    return service_main(argc, argv, &def);
}
