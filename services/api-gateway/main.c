/* virga-gateway - wiring only: the public EC2 endpoint in front of the bus. */
#include "service_http.h"

static const http_route_t http_routes[] = {
    {NULL, NULL, NULL},
};

static int init(service_t *svc, verr_t *e)
{
    return service_http_start(svc, "gateway", 8773, http_routes, e);
}

static void health(service_t *svc, json_t *out)
{
    json_object_set_new(out, "port", json_integer(config_int(svc->cfg, "gateway.port", 8773)));
}

int main(int argc, char **argv)
{
    static const bus_route_t routes[] = {{NULL, NULL}};
    static const service_def_t def = {
        .name = "gateway",
        .schema = "gateway",
        .routes = routes,
        .init = init,
        .health = health,
        .fini = service_http_stop,
    };
    return service_main(argc, argv, &def);
}
