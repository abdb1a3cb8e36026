/* virga-image - wiring only: the image registry's message table, and the worker threads
 * that run image tasks (worker.c). */
#include "image.h"
#include "image_tags.h"

/* Who may send what (bus_auth.h): the tenant API from the gateway or the operator; grant
 * URLs for image bytes (image.fetch_url) only to compute, which launches, and the operator. */
#define TENANT_API (BUS_P_GATEWAY | BUS_P_OPERATOR)

static const bus_route_t routes[] = {
    {"image.RegisterImage", image_register, TENANT_API},
    {"image.DescribeImages", image_describe, TENANT_API},
    {"image.DeregisterImage", image_deregister, TENANT_API},
    {"image.DescribeImageAttribute", image_describe_attribute, TENANT_API},
    {"image.ModifyImageAttribute", image_modify_attribute, TENANT_API},
    {"image.CopyImage", image_copy, TENANT_API},
    {"image.ImportImage", image_import, TENANT_API},
    {"image.DescribeImportImageTasks", image_describe_import_tasks, TENANT_API},
    {"image.CancelImportTask", image_cancel_import, TENANT_API},
    /* CreateImage: the gateway sends it after compute.CreateImage checked the instance */
    {"image.create_from_instance", image_create_from_instance, BUS_P_GATEWAY},
    {"image.fetch_url", image_fetch_url, BUS_P_COMPUTE | BUS_P_OPERATOR},
    {"image.CreateTags", image_create_tags, TENANT_API},
    {"image.DeleteTags", image_delete_tags, TENANT_API},
    {"image.DescribeTags", image_describe_tags, TENANT_API},
    {NULL, NULL, 0},
};

static int init(service_t *svc, verr_t *e) { return image_workers_start(svc, e); }
static void fini(service_t *svc) { image_workers_stop(svc); }

static void reconcile(service_t *svc)
{
    image_tasks_reconcile(svc);
    image_collect_deregistered(svc);
    image_abort_abandoned_uploads(svc);
}

int main(int argc, char **argv)
{
    static const service_def_t def = {
        .name = "image",
        .makes_calls = 1,
        .schema = "image",
        .routes = routes,
        .init = init,
        .fini = fini,
        .reconcile = reconcile,
    };
    return service_main(argc, argv, &def);
}
