/* registry.c - RegisterImage (from an object-store location the caller may read; the
 * image is pending until a worker has hashed its bytes), DescribeImages (own, public and
 * shared images; ImageId.N, Owner.N, ExecutableBy.N, filters, tags), DeregisterImage, and
 * image.fetch_url, which gives a host a grant URL and checksum for an image it launches.
 *
 * Kernel (aki-) and ramdisk (ari-) images are registered like machine images; the object's
 * user metadata says which it is (`aws s3 cp vmlinuz s3://b/k --metadata image-type=kernel`),
 * as EC2's bundle manifests once did. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "caller.h"
#include "describe.h"
#include "ec2_hypervisor.h"
#include "ids.h"
#include "image.h"
#include "jsonutil.h"
#include "log.h"
#include "tags.h"

int image_id_valid(const char *id)
{
    return id && (ids_valid("ami", id) || ids_valid("aki", id) || ids_valid("ari", id));
}

const char *image_id_prefix(const char *image_type)
{
    return !strcmp(image_type, "kernel") ? "aki" : !strcmp(image_type, "ramdisk") ? "ari" : "ami";
}

int image_owned(bus_ctx_t *ctx, const char *id, verr_t *e)
{
    const char *account = caller_account(ctx->msg->caller, e);
    if (!account)
        return -1;
    if (!image_id_valid(id))
        return verr_set(e, 400, "InvalidAMIID.Malformed", "Invalid id: \"%.64s\" (expecting \"ami-...\")", id ? id : "");
    const char *p[] = {id};
    PG_AUTO PGresult *r = db_prepared(service_db(ctx), e, "img_owner",
        "SELECT account_id FROM images WHERE id = $1 AND state <> 'deregistered'", 1, p);
    if (!r)
        return -1;
    if (PQntuples(r) == 0 || (strcmp(PQgetvalue(r, 0, 0), account) && !caller_is_operator_admin(ctx->msg->caller)))
        return verr_set(e, 400, "InvalidAMIID.NotFound", "The image id '[%s]' does not exist", id);
    return 0;
}

/* EC2: 3 to 128 of letters, digits, ( ) [ ] space . / - ' @ _ */
int image_name_valid(const char *n)
{
    size_t l = n ? strlen(n) : 0;
    if (l < 3 || l > 128)
        return 0;
    for (; *n; n++)
        if (!((*n >= 'a' && *n <= 'z') || (*n >= 'A' && *n <= 'Z') || (*n >= '0' && *n <= '9') || strchr("()[] ./-'@_", *n)))
            return 0;
    return 1;
}

/* SQL: image i may be launched by the account in parameter `acct` ("$2"): its owner's,
 * public, or shared with that account. */
#define LAUNCHABLE_BY(acct) "(i.account_id = " acct " OR i.is_public OR EXISTS (SELECT 1 FROM launch_permissions l " \
    "WHERE l.image_id = i.id AND l.account_id = " acct "))"

int image_launchable(db_t *db, const char *id, const char *account, verr_t *e)
{
    if (!image_id_valid(id))
        return verr_set(e, 400, "InvalidAMIID.Malformed", "Invalid id: \"%.64s\" (expecting \"ami-...\")", id ? id : "");
    const char *p[] = {id, account};
    PG_AUTO PGresult *r = db_prepared(db, e, "img_launchable",
        "SELECT 1 FROM images i WHERE i.id = $1 AND i.state = 'available' AND " LAUNCHABLE_BY("$2"), 2, p);
    if (!r)
        return -1;
    return PQntuples(r) ? 0 : verr_set(e, 400, "InvalidAMIID.NotFound", "The image id '[%.64s]' does not exist", id);
}

void image_changed(bus_t *bus, const char *id)
{
    verr_t e;
    if (bus_publish(bus, "virga.events", "image.changed", json_pack("{s:s}", "image_id", id), &e) < 0)
        log_warn("announcing the change of %s: %s", id, e.message);
}

/* A KernelId/RamdiskId must name a kernel/ramdisk image the caller may use; it may still
 * be pending (registered a moment ago, being hashed). */
static int usable_part(db_t *db, const char *id, const char *type, const char *account, verr_t *e)
{
    const char *p[] = {id, account, type};
    PG_AUTO PGresult *r = db_prepared(db, e, "img_part",
        "SELECT 1 FROM images i WHERE i.id = $1 AND i.image_type = $3 AND i.state IN ('pending', 'available') "
        "AND " LAUNCHABLE_BY("$2"), 3, p);
    if (!r)
        return -1;
    if (PQntuples(r) == 0)
        return verr_set(e, 400, !strcmp(type, "kernel") ? "InvalidAKIID.NotFound" : "InvalidARIID.NotFound",
                        "The %s image id '[%.64s]' does not exist", type, id);
    return 0;
}

int image_register(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    const char *account = caller_account(ctx->msg->caller, e);
    if (!account)
        return -1;
    const char *name = json_str(body, "Name", NULL), *loc = json_str(body, "ImageLocation", NULL);
    if (!image_name_valid(name))
        return verr_set(e, 400, "InvalidAMIName.Malformed",
                        "AMI names must be between 3 and 128 characters long, and may contain letters, numbers, '(', ')', '.', '-', '/' and '_'");
    if (!loc || !*loc)
        return verr_set(e, 400, "MissingParameter", "The request must contain the parameter ImageLocation (bucket/key in the object store)");
    char bucket[64];
    const char *key;
    if (image_split_location(loc, bucket, &key, e) < 0)
        return -1;
    const char *arch = json_str(body, "Architecture", "x86_64"), *virt = json_str(body, "VirtualizationType", "hvm");
    if (strcmp(arch, "x86_64") && strcmp(arch, "i386") && strcmp(arch, "arm64"))
        return verr_set(e, 400, "InvalidParameterValue", "Architecture must be x86_64, i386 or arm64");
    if (strcmp(virt, "hvm") && strcmp(virt, "paravirtual"))
        return verr_set(e, 400, "InvalidParameterValue", "VirtualizationType must be hvm or paravirtual");
    db_t *db = service_db(ctx);
    const char *kernel = json_str(body, "KernelId", NULL), *ramdisk = json_str(body, "RamdiskId", NULL);
    if ((kernel && usable_part(db, kernel, "kernel", account, e) < 0) ||
        (ramdisk && usable_part(db, ramdisk, "ramdisk", account, e) < 0))
        return -1;

    /* the object must exist and the caller must be allowed to read it */
    json_t *obj = NULL;
    if (image_grant_readable(ctx, account, loc, "InvalidParameterValue", "ImageLocation", &obj, e) < 0)
        return -1;
    const char *type = json_str(json_object_get(obj, "metadata"), "image-type", "machine");
    if (strcmp(type, "machine") && strcmp(type, "kernel") && strcmp(type, "ramdisk")) {
        json_decref(obj);
        return verr_set(e, 400, "InvalidParameterValue", "the object's image-type metadata must be machine, kernel or ramdisk, not '%.32s'", type);
    }
    if (strcmp(type, "machine") && (kernel || ramdisk)) {
        json_decref(obj);
        return verr_set(e, 400, "InvalidParameterCombination", "a %s image cannot have a KernelId or RamdiskId", type);
    }
    json_t *tags = describe_tag_spec(body, "image", e);
    if (!tags) {
        json_decref(obj);
        return -1;
    }
    char id[IDS_MAX], size[32];
    ids_new(image_id_prefix(type), id);
    snprintf(size, sizeof size, "%lld", (long long)json_int(obj, "size", 0));
    const char *p[] = {id, account, name, json_str(body, "Description", ""), loc, size, json_str(obj, "etag", ""),
                       arch, kernel, ramdisk, json_str(body, "RootDeviceName", "/dev/sda1"), virt, type};
    int rc = -1;
    json_t *src = json_pack("{s:s}", "location", loc), *params = json_pack("{s:s}", "image_type", type);
    if (db_begin(db, e) < 0 ||
        image_insert_pending_row(db, "img_insert",
            "INSERT INTO images (id, account_id, name, description, location, size, etag, architecture, kernel_id, "
            "ramdisk_id, root_device_name, virtualization_type, image_type, state) "
            "VALUES ($1, $2, $3, $4, $5, $6::bigint, $7, $8, $9, $10, $11, $12, $13, 'pending')", 13, p, name, e) < 0)
        goto out;
    if (tags_put(db, id, account, tags, e) < 0) {
        db_rollback(db);
        goto out;
    }
    rc = image_commit_pending(service_of(ctx), db, &(image_task_row_t){.image_id = id, .kind = "register",
                              .account = account, .source = src, .params = params}, reply, e);
out:
    json_decref(obj);
    json_decref(tags);
    json_decref(src);
    json_decref(params);
    return rc;
}

#define IMAGE_COLS "i.id, i.account_id, i.name, i.description, i.location, i.architecture, i.kernel_id, " \
    "i.ramdisk_id, i.root_device_name, i.virtualization_type, i.state, i.is_public, " \
    "extract(epoch FROM i.created_at)::bigint, i.image_type, i.state_reason, i.platform"

static json_t *image_item(PGresult *r, int i, json_t *tags)
{
    char when[32];
    describe_time(atoll(PQgetvalue(r, i, 12)), when);
    json_t *t = json_object_get(tags, PQgetvalue(r, i, 0));
    json_t *it = json_pack("{s:s, s:s, s:s, s:s, s:s, s:b, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:o}",
        "imageId", PQgetvalue(r, i, 0), "imageLocation", PQgetvalue(r, i, 4), "imageState", PQgetvalue(r, i, 10),
        "imageOwnerId", PQgetvalue(r, i, 1), "creationDate", when, "isPublic", !strcmp(PQgetvalue(r, i, 11), "t"),
        "architecture", PQgetvalue(r, i, 5), "imageType", PQgetvalue(r, i, 13), "name", PQgetvalue(r, i, 2),
        "description", PQgetvalue(r, i, 3), "rootDeviceType", "instance-store", "rootDeviceName", PQgetvalue(r, i, 8),
        "virtualizationType", PQgetvalue(r, i, 9), "hypervisor", ec2_hypervisor(EC2_HV_INSTANCE), "tagSet", t ? json_incref(t) : json_array());
    if (!PQgetisnull(r, i, 6))
        json_object_set_new(it, "kernelId", json_string(PQgetvalue(r, i, 6)));
    if (!PQgetisnull(r, i, 7))
        json_object_set_new(it, "ramdiskId", json_string(PQgetvalue(r, i, 7)));
    if (*PQgetvalue(r, i, 14)) {   /* "Client.InvalidDiskFormat: the disk image is raw, not vmdk" */
        const char *why = PQgetvalue(r, i, 14), *colon = strstr(why, ": ");
        json_object_set_new(it, "stateReason", json_pack("{s:s%, s:s}", "code", why, colon ? (size_t)(colon - why) : strlen(why),
                                                         "message", colon ? colon + 2 : why));
    }
    if (!strcasecmp(PQgetvalue(r, i, 15), "windows"))
        json_object_set_new(it, "platform", json_string("windows"));
    json_object_set_new(it, "platformDetails", json_string(!strcasecmp(PQgetvalue(r, i, 15), "windows") ? "Windows" : "Linux/UNIX"));
    return it;
}

/* Owner.N: "self" or account ids; ExecutableBy.N: "self", "all" or account ids. */
static int keep(const json_t *it, const json_t *owners, const json_t *exec, const char *account, PGresult *perms)
{
    size_t i;
    json_t *v;
    if (json_array_size(owners)) {
        int ok = 0;
        json_array_foreach(owners, i, v) {
            const char *o = json_string_value(v);
            ok |= o && (!strcmp(o, json_str(it, "imageOwnerId", "")) || (!strcmp(o, "self") && !strcmp(account, json_str(it, "imageOwnerId", ""))));
        }
        if (!ok)
            return 0;
    }
    if (json_array_size(exec)) {
        int ok = 0;
        json_array_foreach(exec, i, v) {
            const char *x = json_string_value(v);
            if (!x)
                continue;
            if (!strcmp(x, "all"))
                ok |= json_is_true(json_object_get(it, "isPublic"));
            const char *who = !strcmp(x, "self") ? account : x;
            for (int k = 0; perms && k < PQntuples(perms); k++)
                ok |= !strcmp(PQgetvalue(perms, k, 0), json_str(it, "imageId", "")) && !strcmp(PQgetvalue(perms, k, 1), who);
            if (!strcmp(x, "self"))
                ok |= !strcmp(account, json_str(it, "imageOwnerId", ""));
        }
        if (!ok)
            return 0;
    }
    return 1;
}

int image_describe(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    static const describe_field_t fields[] = {
        {"image-id", "imageId"}, {"name", "name"}, {"state", "imageState"}, {"owner-id", "imageOwnerId"},
        {"is-public", "isPublic"}, {"architecture", "architecture"}, {"image-type", "imageType"},
        {"kernel-id", "kernelId"}, {"ramdisk-id", "ramdiskId"}, {"root-device-name", "rootDeviceName"},
        {"virtualization-type", "virtualizationType"}, {"description", "description"}, {NULL, NULL}};
    const char *account = caller_account(ctx->msg->caller, e);
    if (!account)
        return -1;
    db_t *db = service_db(ctx);
    const char *p[] = {account, caller_is_operator_admin(ctx->msg->caller) ? "t" : "f"};
    PG_AUTO PGresult *r = db_prepared(db, e, "img_list",
        "SELECT " IMAGE_COLS " FROM images i WHERE i.state <> 'deregistered' AND ($2::boolean OR " LAUNCHABLE_BY("$1") ") "
        "ORDER BY i.id", 2, p);
    PG_AUTO PGresult *perms = r ? db_prepared(db, e, "img_perms", "SELECT image_id, account_id FROM launch_permissions", 0, NULL) : NULL;
    if (!r || !perms)
        return -1;
    json_t *tags = tags_load(db, NULL, e);
    if (!tags)
        return -1;
    json_t *items = json_array();
    const json_t *owners = json_object_get(body, "Owner"), *exec = json_object_get(body, "ExecutableBy");
    for (int i = 0; i < PQntuples(r); i++) {
        json_t *it = image_item(r, i, tags);
        if (keep(it, owners, exec, account, perms))
            json_array_append(items, it);
        json_decref(it);
    }
    json_decref(tags);
    /* ImageId.N: each must be visible, as in EC2 */
    const char *missing = NULL;
    json_t *sel = describe_select(items, body, "ImageId", "imageId", &missing);
    json_decref(items);
    if (!sel) {
        if (!image_id_valid(missing))
            return verr_set(e, 400, "InvalidAMIID.Malformed", "Invalid id: \"%.64s\" (expecting \"ami-...\")", missing);
        return verr_set(e, 400, "InvalidAMIID.NotFound", "The image id '[%.64s]' does not exist", missing);
    }
    items = sel;
    json_t *out = describe_filter(items, json_object_get(body, "Filter"), fields, e);
    json_decref(items);
    if (!out)
        return -1;
    *reply = json_pack("{s:o}", "imagesSet", out);
    return 0;
}

int image_deregister(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    const char *id = json_str(body, "ImageId", NULL);
    if (image_owned(ctx, id, e) < 0)
        return -1;
    const char *p[] = {id};
    db_t *db = service_db(ctx);
    if (db_begin(db, e) < 0)
        return -1;
    PGresult *r = db_prepared(db, e, "img_dereg", "UPDATE images SET state = 'deregistered' WHERE id = $1", 1, p);
    PGresult *t = r ? db_prepared(db, e, "img_dereg_tags", "DELETE FROM tags WHERE resource_id = $1", 1, p) : NULL;
    int ok = r && t && db_commit(db, e) == 0;
    if (r)
        PQclear(r);
    if (t)
        PQclear(t);
    if (!ok) {
        db_rollback(db);
        return -1;
    }
    image_changed(ctx->bus, id);
    *reply = json_pack("{s:b}", "return", 1);
    return 0;
}

/* {image_id} → where a host gets the image's bytes (a grant URL made as the operator,
 * since the launch was checked here), and what they must hash to. */
int image_fetch_url(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    const char *account = caller_account(ctx->msg->caller, e), *id = json_str(body, "image_id", NULL);
    if (!account)
        return -1;
    db_t *db = service_db(ctx);
    if (!caller_is_operator_admin(ctx->msg->caller) && image_launchable(db, id, account, e) < 0)
        return -1;
    const char *p[] = {id};
    PG_AUTO PGresult *r = db_prepared(db, e, "img_fetch",
        "SELECT location, sha256, size, disk_format, image_type, kernel_id, ramdisk_id FROM images "
        "WHERE id = $1 AND state = 'available'", 1, p);
    if (!r)
        return -1;
    if (PQntuples(r) == 0)
        return verr_set(e, 400, "InvalidAMIID.NotFound", "The image id '[%.64s]' does not exist", id ? id : "");
    json_t *g = NULL;
    if (image_grant_ask(ctx, NULL, PQgetvalue(r, 0, 0), "GET", &g, e) < 0)
        return -1;
    *reply = json_pack("{s:s, s:s, s:O, s:s, s:I, s:s, s:s}", "image_id", id, "url", json_str(g, "url", ""),
                       "expires", json_object_get(g, "expires"), "sha256", PQgetvalue(r, 0, 1),
                       "size", (json_int_t)atoll(PQgetvalue(r, 0, 2)), "disk_format", PQgetvalue(r, 0, 3),
                       "image_type", PQgetvalue(r, 0, 4));
    if (!PQgetisnull(r, 0, 5))
        json_object_set_new(*reply, "kernel_id", json_string(PQgetvalue(r, 0, 5)));
    if (!PQgetisnull(r, 0, 6))
        json_object_set_new(*reply, "ramdisk_id", json_string(PQgetvalue(r, 0, 6)));
    json_decref(g);
    return 0;
}
