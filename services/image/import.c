/* import.c - ImportImage, DescribeImportImageTasks and CancelImportTask.
 *
 * ImportImage takes one disk from the caller's bucket (DiskContainer.1: Format vmdk, vhd,
 * vhdx, vdi, qcow2 or raw, and UserBucket), checks at once that the caller may read it,
 * and leaves an import task (import-ami-...) for the workers; the AMI id is chosen now and
 * appears in DescribeImages when the task completes. Status and progress follow EC2:
 * active (pending, downloading, validating, converting, uploading) → completed, or
 * deleted with "ClientError: ..." / "canceled". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "caller.h"
#include "describe.h"
#include "ids.h"
#include "image.h"
#include "jsonutil.h"
#include "tags.h"

#define TASK_COLS "t.id, t.image_id, t.status, t.status_message, t.progress, t.source::text, t.params::text, " \
    "t.result::text"

static json_t *task_item(PGresult *r, int i, json_t *tags)
{
    json_t *src = json_loads(PQgetvalue(r, i, 5), 0, NULL), *par = json_loads(PQgetvalue(r, i, 6), 0, NULL);
    json_t *res = json_loads(PQgetvalue(r, i, 7), 0, NULL);
    const char *status = PQgetvalue(r, i, 2);
    char progress[16];
    snprintf(progress, sizeof progress, "%s", PQgetvalue(r, i, 4));
    json_t *disk = json_pack("{s:s, s:s, s:{s:s, s:s}, s:s}", "deviceName", "/dev/sda1",
                             "format", json_str(src, "format", ""), "userBucket", "s3Bucket", json_str(src, "bucket", ""),
                             "s3Key", json_str(src, "key", ""), "status", !strcmp(status, "completed") ? "completed" : status);
    if (json_object_get(res, "size"))
        json_object_set_new(disk, "diskImageSize", json_real((double)json_int(res, "size", 0)));
    json_t *t = json_object_get(tags, PQgetvalue(r, i, 0));
    json_t *it = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:[o], s:o}", "importTaskId", PQgetvalue(r, i, 0),
                           "status", status, "architecture", json_str(par, "architecture", "x86_64"),
                           "platform", json_str(par, "platform", "Linux"), "description", json_str(par, "description", ""),
                           "licenseType", "BYOL", "snapshotDetailSet", disk, "tagSet", t ? json_incref(t) : json_array());
    if (*PQgetvalue(r, i, 3))
        json_object_set_new(it, "statusMessage", json_string(PQgetvalue(r, i, 3)));
    if (!strcmp(status, "active"))
        json_object_set_new(it, "progress", json_string(progress));
    if (!strcmp(status, "completed"))
        json_object_set_new(it, "imageId", json_string(PQgetvalue(r, i, 1)));
    json_decref(src);
    json_decref(par);
    json_decref(res);
    return it;
}

static int load_task(db_t *db, const char *id, const char *account, json_t **item, verr_t *e)
{
    const char *p[] = {id, account};
    PG_AUTO PGresult *r = db_prepared(db, e, "task_one",
        "SELECT " TASK_COLS " FROM image_tasks t WHERE t.id = $1 AND t.account_id = $2 AND t.kind = 'import'", 2, p);
    if (!r)
        return -1;
    if (PQntuples(r) == 0)
        return verr_set(e, 400, "InvalidConversionTaskId", "The import task id '%.64s' does not exist", id);
    json_t *tags = tags_load(db, account, e);
    if (!tags)
        return -1;
    *item = task_item(r, 0, tags);
    json_decref(tags);
    return 0;
}

int image_import(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    const char *account = caller_account(ctx->msg->caller, e);
    if (!account)
        return -1;
    const json_t *disks = json_object_get(body, "DiskContainer");
    if (json_array_size(disks) != 1)
        return verr_set(e, 400, "InvalidParameter", "ImportImage takes exactly one DiskContainer (multi-disk images are not supported)");
    const json_t *d = json_array_get(disks, 0);
    const char *format = json_str(d, "Format", NULL);
    if (json_str(d, "Url", NULL) || json_str(d, "SnapshotId", NULL))
        return verr_set(e, 400, "InvalidParameter", "Only DiskContainer.1.UserBucket (an object in this cloud's object store) is supported");
    const json_t *ub = json_object_get(d, "UserBucket");
    const char *bucket = json_str(ub, "S3Bucket", NULL), *key = json_str(ub, "S3Key", NULL);
    if (!bucket || !*bucket || !key || !*key)
        return verr_set(e, 400, "MissingParameter", "DiskContainer.1.UserBucket.S3Bucket and S3Key are required");
    if (!format)
        return verr_set(e, 400, "MissingParameter", "DiskContainer.1.Format is required (vmdk, vhd, vhdx, vdi, qcow2 or raw)");
    if (!image_qemu_format(format))
        return verr_set(e, 400, "InvalidParameter", "Unsupported disk format '%.32s': use vmdk, vhd, vhdx, vdi, qcow2 or raw", format);
    const char *arch = json_str(body, "Architecture", "x86_64"), *platform = json_str(body, "Platform", "Linux");
    if (strcmp(arch, "x86_64") && strcmp(arch, "i386") && strcmp(arch, "arm64"))
        return verr_set(e, 400, "InvalidParameter", "Architecture must be x86_64, i386 or arm64");
    if (strcmp(platform, "Linux") && strcmp(platform, "Windows"))
        return verr_set(e, 400, "InvalidParameter", "Platform must be Linux or Windows");
    if (strlen(bucket) > 63 || strlen(key) > 1024)
        return verr_set(e, 400, "InvalidParameter", "S3Bucket or S3Key is too long");
    db_t *db = service_db(ctx);
    const char *token = json_str(body, "ClientToken", "");
    if (*token) {   /* the same request again: the same task */
        const char *p[] = {account, token};
        PG_AUTO PGresult *r = db_prepared(db, e, "task_by_token",
            "SELECT id FROM image_tasks WHERE account_id = $1 AND client_token = $2 AND kind = 'import'", 2, p);
        if (!r)
            return -1;
        if (PQntuples(r))
            return load_task(db, PQgetvalue(r, 0, 0), account, reply, e);
    }
    /* fail now, not later, when the disk cannot be read */
    char location[1100];
    snprintf(location, sizeof location, "%s/%s", bucket, key);
    json_t *obj = NULL;
    if (image_grant_readable(ctx, account, location, "InvalidParameter", "The disk cannot be read:", &obj, e) < 0)
        return -1;
    json_decref(obj);
    json_t *tags = describe_tag_spec(body, "import-image-task", e);
    if (!tags)
        return -1;
    char id[IDS_MAX], image[IDS_MAX];
    ids_new("import-ami", id);
    ids_new("ami", image);
    json_t *src = json_pack("{s:s, s:s, s:s}", "bucket", bucket, "key", key, "format", format);
    json_t *params = json_pack("{s:s, s:s, s:s}", "architecture", arch, "platform", platform, "description",
                               json_str(body, "Description", ""));
    int rc = -1;
    if (db_begin(db, e) < 0)
        goto out;
    if (image_task_insert(db, id, "import", account, image, src, params, token, e) < 0 ||
        tags_put(db, id, account, tags, e) < 0 || db_commit(db, e) < 0) {
        db_rollback(db);
        goto out;
    }
    image_workers_wake(service_of(ctx));
    rc = load_task(db, id, account, reply, e);
out:
    json_decref(src);
    json_decref(params);
    json_decref(tags);
    return rc;
}

int image_describe_import_tasks(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    static const describe_field_t fields[] = {
        {"task-state", "status"}, {"import-task-id", "importTaskId"}, {"image-id", "imageId"}, {NULL, NULL}};
    const char *account = caller_account(ctx->msg->caller, e);
    if (!account)
        return -1;
    db_t *db = service_db(ctx);
    const char *p[] = {account};
    PG_AUTO PGresult *r = db_prepared(db, e, "task_list",
        "SELECT " TASK_COLS " FROM image_tasks t WHERE t.account_id = $1 AND t.kind = 'import' ORDER BY t.id", 1, p);
    if (!r)
        return -1;
    json_t *tags = tags_load(db, account, e);
    if (!tags)
        return -1;
    json_t *items = json_array();
    for (int i = 0; i < PQntuples(r); i++)
        json_array_append_new(items, task_item(r, i, tags));
    json_decref(tags);
    const char *missing = NULL;
    json_t *sel = describe_select(items, body, "ImportTaskId", "importTaskId", &missing);
    json_decref(items);
    if (!sel)
        return verr_set(e, 400, "InvalidConversionTaskId", "The import task id '%.64s' does not exist", missing);
    json_t *out = describe_filter(sel, json_object_get(body, "Filters"), fields, e);
    json_decref(sel);
    if (!out)
        return -1;
    json_t *page = NULL, *next = NULL;
    int rc = describe_page(out, body, "importTaskId", 1, 500, &page, &next, e);
    json_decref(out);
    if (rc < 0)
        return -1;
    *reply = json_pack("{s:o}", "importImageTaskSet", page);
    if (next)
        json_object_set_new(*reply, "nextToken", next);
    return 0;
}

int image_cancel_import(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    const char *account = caller_account(ctx->msg->caller, e), *id = json_str(body, "ImportTaskId", NULL);
    if (!account)
        return -1;
    if (!id || !*id)
        return verr_set(e, 400, "MissingParameter", "The request must contain the parameter ImportTaskId");
    const char *p[] = {id, account, json_str(body, "CancelReason", "")};
    db_t *db = service_db(ctx);
    PG_AUTO PGresult *r = db_prepared(db, e, "task_cancel",
        "UPDATE image_tasks SET status = 'deleted', updated_at = now(), "
        "status_message = 'canceled' || CASE WHEN $3 = '' THEN '' ELSE ': ' || $3 END "
        "WHERE id = $1 AND account_id = $2 AND kind = 'import' AND status = 'active' RETURNING id", 3, p);
    if (!r)
        return -1;
    if (PQntuples(r) == 0) {
        json_t *it = NULL;
        if (load_task(db, id, account, &it, e) < 0)
            return -1;
        verr_set(e, 400, "IncorrectState", "The import task %.64s is %s and cannot be canceled", id, json_str(it, "status", ""));
        json_decref(it);
        return -1;
    }
    *reply = json_pack("{s:s, s:s, s:s}", "importTaskId", id, "previousState", "active", "state", "deleted");
    return 0;
}
