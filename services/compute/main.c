/* virga-compute - wiring only: the compute service's message table. */
#include "compute.h"

static const bus_route_t routes[] = {
    {"compute.CreateKeyPair", compute_create_key_pair},
    {"compute.ImportKeyPair", compute_import_key_pair},
    {"compute.DescribeKeyPairs", compute_describe_key_pairs},
    {"compute.DeleteKeyPair", compute_delete_key_pair},
    {"compute.CreateTags", compute_create_tags},
    {"compute.DeleteTags", compute_delete_tags},
    {"compute.DescribeTags", compute_describe_tags},
    {NULL, NULL},
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
