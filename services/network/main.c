/* virga-network - wiring only: the network service's message table and life cycle. */
#include "service.h"

static const bus_route_t routes[] = {
    {NULL, NULL, 0},
};

int main(int argc, char **argv)
{
    static const service_def_t def = {
        .name = "network",
        .schema = "network",
        .routes = routes,
    };
    return service_main(argc, argv, &def);
}
