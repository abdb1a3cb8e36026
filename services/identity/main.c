/* virga-identity - wiring only: accounts, users, access keys. */
#include "identity.h"

static const bus_route_t routes[] = {
    {"identity.bootstrap", identity_bootstrap},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
    static const service_def_t def = {
        .name = "identity",
        .schema = "identity",
        .routes = routes,
        .init = identity_init,
        .fini = identity_fini,
    };
    return service_main(argc, argv, &def);
}
