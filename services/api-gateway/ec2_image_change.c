/* ec2_image_change.c - DeregisterImage and ModifyImageAttribute: the image service makes
 * the change, then compute is told (compute.image_changed) before the tenant has the
 * answer, so that the tenant's next RunInstances is decided on the image as it is now.
 * The image service also announces every change on virga.events (image.changed), which
 * compute follows, but that event may reach compute after a RunInstances sent right
 * after the answer (it did, on a loaded machine: a deregistered image launched). If
 * compute does not answer, the tenant still gets the image service's answer: the change
 * is made, and the event and the launch task's own check with the image service remain. */
#include <stdio.h>

#include "gateway.h"
#include "jsonutil.h"
#include "log.h"

static void compute_told(gw_req_t *r, void *arg, json_t **replies, const verr_t *errs, size_t n)
{
    (void)n;
    if (!replies[0])
        log_warn("compute.image_changed %s: %s", json_str(r->params, "ImageId", ""), errs[0].message);
    json_decref(replies[0]);
    gw_finish(r, 0, arg, NULL);
}

static void image_changed(gw_req_t *r, void *arg, json_t **replies, const verr_t *errs, size_t n)
{
    (void)arg;
    (void)n;
    if (!replies[0]) {
        gw_finish(r, -1, NULL, &errs[0]);
        return;
    }
    static const char *const services[] = {"compute"};
    static const char *const types[] = {"compute.image_changed"};
    json_t *body = json_pack("{s:s}", "image_id", json_str(r->params, "ImageId", ""));
    gw_fanout(r, 1, services, types, &body, compute_told, replies[0]);
}

int ec2_image_change(gw_req_t *r, json_t **result, verr_t *e)
{
    (void)result;
    (void)e;
    char type[80];
    snprintf(type, sizeof type, "image.%s", r->action->name);
    const char *const services[] = {"image"};
    const char *const types[] = {type};
    json_t *body = json_incref(r->params);
    gw_fanout(r, 1, services, types, &body, image_changed, NULL);
    return GW_ASYNC;
}
