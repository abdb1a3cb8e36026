/* create.c - CreateImage: a new image from an instance's disk (docs/images.md, "CreateImage").
 *
 * The gateway asks compute first (compute.CreateImage: the instance is the caller's, running
 * or stopped, on a driver that can export it) and then sends image.create_from_instance with
 * compute's answer under "instance". Here the image is recorded `pending` (its name taken:
 * InvalidAMIName.Duplicate) with a 'create' task, in one transaction, and its id answered at
 * once (with DryRun, nothing is recorded: DryRunOperation). The task (pipeline.c) has the instance's host export the disk through compute and
 * makes the image available when the bytes are in the operator's bucket. */
#include <stdio.h>
#include <string.h>

#include "caller.h"
#include "describe.h"
#include "ids.h"
#include "image.h"
#include "jsonutil.h"
#include "tags.h"

int image_create_from_instance(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    const char *account = caller_account(ctx->msg->caller, e);
    if (!account)
        return -1;
    const json_t *inst = json_object_get(body, "instance");
    const char *name = json_str(body, "Name", NULL), *instance_id = json_str(inst, "instance_id", "");
    const char *owner = json_str(inst, "account_id", ""), *format = json_str(inst, "disk_format", "");
    if (!*instance_id || !*owner || (strcmp(format, "tar.gz") && strcmp(format, "qcow2")))
        return verr_set(e, 400, "InvalidParameterValue", "compute's answer about the instance is missing");
    if (!image_name_valid(name))
        return verr_set(e, 400, "InvalidAMIName.Malformed",
                        "AMI names must be between 3 and 128 characters long, and may contain letters, numbers, '(', ')', '[', ']', ' ', '.', '-', '/', ''', '@' and '_'");
    const char *desc = json_str(body, "Description", "");
    if (strlen(desc) > 255)
        return verr_set(e, 400, "InvalidParameterValue", "Description must be at most 255 characters");
    json_t *tags = describe_tag_spec(body, "image", e);
    if (!tags)
        return -1;
    service_t *svc = service_of(ctx);
    char id[IDS_MAX], location[256];
    ids_new("ami", id);
    snprintf(location, sizeof location, "%s/%s.%s", config_str(svc->cfg, "image.bucket", "virga-images"), id, format);
    const char *kernel = json_str(inst, "kernel_id", NULL), *ramdisk = json_str(inst, "ramdisk_id", NULL);
    const char *p[] = {id, owner, name, desc, location, kernel, ramdisk,
                       !strcmp(format, "qcow2") ? "/dev/vda" : "/dev/sda1", format};
    json_t *src = json_pack("{s:s, s:s, s:b, s:s}", "instance_id", instance_id, "location", location, "no_reboot",
                            json_flag(body, "NoReboot"), "source_image_id", json_str(inst, "source_image_id", ""));
    int rc = -1;
    db_t *db = service_db(ctx);
    if (db_begin(db, e) < 0 ||
        image_insert_pending_row(db, "create_insert",
            "INSERT INTO images (id, account_id, name, description, location, size, etag, kernel_id, ramdisk_id, "
            "root_device_name, disk_format, state) VALUES ($1, $2, $3, $4, $5, 0, '', $6, $7, $8, $9, 'pending')",
            9, p, name, e) < 0)
        goto out;
    if (tags_put(db, id, owner, tags, e) < 0) {
        db_rollback(db);
        goto out;
    }
    /* DryRun: every check passed (the name is free, the tags are good), nothing is kept
     * (a DryRun made a real image, and a host exported its disk) */
    if (json_flag(body, "DryRun")) {
        db_rollback(db);
        verr_set(e, 412, "DryRunOperation", "Request would have succeeded, but DryRun flag is set.");
        goto out;
    }
    rc = image_commit_pending(svc, db, &(image_task_row_t){.image_id = id, .kind = "create", .account = owner,
                                                           .source = src}, reply, e);
out:
    json_decref(src);
    json_decref(tags);
    return rc;
}
