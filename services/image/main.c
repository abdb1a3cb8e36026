/* virga-image - wiring only: the image registry's message table, and the worker threads
 * that run image tasks (worker.c). */
#include "image.h"
#include "image_tags.h"

static const bus_route_t routes[] = {
    {"image.RegisterImage", image_register},
    {"image.DescribeImages", image_describe},
    {"image.DeregisterImage", image_deregister},
    {"image.DescribeImageAttribute", image_describe_attribute},
    {"image.ModifyImageAttribute", image_modify_attribute},
    {"image.CopyImage", image_copy},
    {"image.ImportImage", image_import},
    {"image.DescribeImportImageTasks", image_describe_import_tasks},
    {"image.CancelImportTask", image_cancel_import},
    {"image.fetch_url", image_fetch_url},
    {"image.CreateTags", image_create_tags},
    {"image.DeleteTags", image_delete_tags},
    {"image.DescribeTags", image_describe_tags},
    {NULL, NULL},
};

static int init(service_t *svc, verr_t *e) { return image_workers_start(svc, e); }
static void fini(service_t *svc) { image_workers_stop(svc); }

static void reconcile(service_t *svc)
{
    image_reclaim_dead_leases(svc);
    image_give_up_exhausted(svc);
    image_collect_deregistered(svc);
    image_abort_abandoned_uploads(svc);
}

int main(int argc, char **argv)
{
    static const service_def_t def = {
        .name = "image",
        .schema = "image",
        .routes = routes,
        .init = init,
        .fini = fini,
        .reconcile = reconcile,
    };
    return service_main(argc, argv, &def);
}
