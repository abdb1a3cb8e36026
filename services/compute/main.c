/* virga-compute - wiring only: the compute service's message table and life cycle. */
#include "service.h"

static const bus_route_t routes[] = {
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
