/* copy.c - CopyImage within this region: a new image of the caller's, with its own copy
 * of the bytes in the operator's bucket (so it outlives the source and whatever happens
 * to the bucket the source was registered from). The new image is pending until a worker
 * has copied and checked the bytes. ClientToken makes a repeated request answer the same
 * image; CopyImageTags copies the source's tags when the caller owns it. */
#include <stdio.h>
#include <string.h>

#include "caller.h"
#include "ids.h"
#include "image.h"
#include "jsonutil.h"
#include "tags.h"

int image_copy(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    const char *account = caller_account(ctx->msg->caller, e);
    if (!account)
        return -1;
    service_t *svc = service_of(ctx);
    const char *src_id = json_str(body, "SourceImageId", NULL), *region = json_str(body, "SourceRegion", NULL);
    const char *name = json_str(body, "Name", NULL), *token = json_str(body, "ClientToken", "");
    const char *here = config_str(svc->cfg, "region", "us-east-1");
    if (!region || strcmp(region, here))
        return verr_set(e, 400, "InvalidParameterValue", "SourceRegion must be this cloud's region, %s", here);
    if (!name || strlen(name) < 3 || strlen(name) > 128)
        return verr_set(e, 400, "InvalidAMIName.Malformed", "AMI names must be between 3 and 128 characters long");
    if (json_flag(body, "Encrypted"))
        return verr_set(e, 400, "InvalidParameterValue", "Encrypted copies are not supported");
    db_t *db = service_db(ctx);
    if (*token) {
        const char *p[] = {account, token};
        PG_AUTO PGresult *r = db_prepared(db, e, "copy_by_token",
            "SELECT image_id FROM image_tasks WHERE account_id = $1 AND client_token = $2 AND kind = 'copy'", 2, p);
        if (!r)
            return -1;
        if (PQntuples(r)) {
            *reply = json_pack("{s:s}", "imageId", PQgetvalue(r, 0, 0));
            return 0;
        }
    }
    if (image_launchable(db, src_id, account, e) < 0)
        return -1;
    const char *sp[] = {src_id};
    PG_AUTO PGresult *s = db_prepared(db, e, "copy_source",
        "SELECT location, sha256, image_type, architecture, kernel_id, ramdisk_id, root_device_name, "
        "virtualization_type, disk_format, size, etag, description, account_id, platform FROM images WHERE id = $1", 1, sp);
    if (!s)
        return -1;
    char id[IDS_MAX];
    ids_new(image_id_prefix(PQgetvalue(s, 0, 2)), id);
    char location[256];
    snprintf(location, sizeof location, "%s/%s", config_str(svc->cfg, "image.bucket", "virga-images"), id);
    const char *desc = json_str(body, "Description", PQgetvalue(s, 0, 11));
    const char *p[] = {id, account, name, desc, location, PQgetvalue(s, 0, 9), PQgetvalue(s, 0, 10),
                       PQgetvalue(s, 0, 3), PQgetisnull(s, 0, 4) ? NULL : PQgetvalue(s, 0, 4),
                       PQgetisnull(s, 0, 5) ? NULL : PQgetvalue(s, 0, 5), PQgetvalue(s, 0, 6), PQgetvalue(s, 0, 7),
                       PQgetvalue(s, 0, 2), PQgetvalue(s, 0, 8), PQgetvalue(s, 0, 1), PQgetvalue(s, 0, 13)};
    json_t *src = json_pack("{s:s, s:s, s:s}", "image_id", src_id, "location", PQgetvalue(s, 0, 0), "sha256", PQgetvalue(s, 0, 1));
    int copy_tags = json_flag(body, "CopyImageTags") && !strcmp(PQgetvalue(s, 0, 12), account);
    int rc = -1;
    if (db_begin(db, e) < 0)
        goto out;
    /* The source row is locked until the task is committed: a DeregisterImage of the source
     * waits for it, and from then on the reconcile pass sees the active copy task and keeps
     * the source's bytes until the copy has read them (cleanup.c). */
    PGresult *r = db_prepared(db, e, "copy_lock_source",
        "SELECT 1 FROM images WHERE id = $1 AND state <> 'deregistered' FOR SHARE", 1, sp);
    if (!r || PQntuples(r) == 0) {
        if (r) {
            PQclear(r);
            verr_set(e, 400, "InvalidAMIID.NotFound", "The image id '[%.64s]' does not exist", src_id);
        }
        db_rollback(db);
        goto out;
    }
    PQclear(r);
    if (image_insert_pending_row(db, "copy_insert",
            "INSERT INTO images (id, account_id, name, description, location, size, etag, architecture, kernel_id, ramdisk_id, "
            "root_device_name, virtualization_type, image_type, disk_format, sha256, platform, state) "
            "VALUES ($1, $2, $3, $4, $5, $6::bigint, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, 'pending')",
            16, p, name, e) < 0)
        goto out;
    if (copy_tags) {
        const char *tp[] = {id, src_id};
        r = db_prepared(db, e, "copy_tags",
            "INSERT INTO tags (resource_id, account_id, key, value) SELECT $1, account_id, key, value FROM tags "
            "WHERE resource_id = $2", 2, tp);
        if (!r) {
            db_rollback(db);
            goto out;
        }
        PQclear(r);
    }
    rc = image_commit_pending(svc, db, &(image_task_row_t){.image_id = id, .kind = "copy", .account = account,
                                                           .source = src, .client_token = token}, reply, e);
out:
    json_decref(src);
    return rc;
}
