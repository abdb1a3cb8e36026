/* virga-image - wiring only: the image registry's message table. */
#include "image.h"

static const bus_route_t routes[] = {
    {"image.RegisterImage", image_register},
    {"image.DescribeImages", image_describe},
    {"image.DeregisterImage", image_deregister},
    {"image.DescribeImageAttribute", image_describe_attribute},
    {"image.ModifyImageAttribute", image_modify_attribute},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
    static const service_def_t def = {
        .name = "image",
        .schema = "image",
        .routes = routes,
    };
    return service_main(argc, argv, &def);
}
