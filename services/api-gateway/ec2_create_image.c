/* ec2_create_image.c - CreateImage, which needs two services in turn, holding no thread:
 * compute checks the instance (the caller's, running or stopped, a driver that can export
 * it: InvalidInstanceID.NotFound, IncorrectInstanceState, ...) and says what the image
 * will be; then the image service records the pending image under its name
 * (InvalidAMIName.Malformed / .Duplicate) with the task that has the instance's host
 * export the disk, and answers its id (docs/compute.md, "CreateImage"). */
#include "gateway.h"
#include "jsonutil.h"

static void image_done(gw_req_t *r, void *arg, json_t **replies, const verr_t *errs, size_t n)
{
    (void)arg;
    (void)n;
    if (!replies[0])
        gw_finish(r, -1, NULL, &errs[0]);
    else
        gw_finish(r, 0, json_pack("{s:s}", "imageId", json_str(replies[0], "imageId", "")), NULL);
    json_decref(replies[0]);
}

static void instance_done(gw_req_t *r, void *arg, json_t **replies, const verr_t *errs, size_t n)
{
    (void)arg;
    (void)n;
    if (!replies[0]) {
        gw_finish(r, -1, NULL, &errs[0]);
        return;
    }
    static const char *const services[] = {"image"};
    static const char *const types[] = {"image.create_from_instance"};
    json_t *body = json_deep_copy(r->params);
    json_object_set_new(body, "instance", replies[0]);
    gw_fanout(r, 1, services, types, &body, image_done, NULL);
}

int ec2_create_image(gw_req_t *r, json_t **result, verr_t *e)
{
    (void)result;
    (void)e;
    static const char *const services[] = {"compute"};
    static const char *const types[] = {"compute.CreateImage"};
    json_t *body = json_incref(r->params);
    gw_fanout(r, 1, services, types, &body, instance_done, NULL);
    return GW_ASYNC;
}
