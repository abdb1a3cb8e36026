/* virga-objectstore - wiring only: the S3 endpoint. */
#include "service_http.h"

static const http_route_t http_routes[] = {
    {NULL, NULL, NULL, NULL},
};

static int init(service_t *svc, verr_t *e)
{
    return service_http_start(svc, "objectstore", 8774, http_routes, e);
}

static void health(service_t *svc, json_t *out)
{
    json_object_set_new(out, "port", json_integer(config_int(svc->cfg, "objectstore.port", 8774)));
}

int main(int argc, char **argv)
{
    static const bus_route_t routes[] = {{NULL, NULL}};
    static const service_def_t def = {
        .name = "objectstore",
        .schema = "objectstore",
        .routes = routes,
        .init = init,
        .health = health,
        .fini = service_http_stop,
    };
    return service_main(argc, argv, &def);
}
