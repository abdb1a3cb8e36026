/* attributes.c - DescribeImageAttribute and ModifyImageAttribute: launch permissions
 * (public through group "all", or per account id) and the description. Only the owner
 * (or the operator's administrator) may see or change them. */
#include <string.h>

#include "image.h"
#include "jsonutil.h"

int image_describe_attribute(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    const char *id = json_str(body, "ImageId", NULL), *attr = json_str(body, "Attribute", NULL);
    if (image_owned(ctx, id, e) < 0)
        return -1;
    db_t *db = service_db(ctx);
    const char *p[] = {id};
    PG_AUTO PGresult *img = db_prepared(db, e, "img_attr", "SELECT description, kernel_id, ramdisk_id, is_public FROM images WHERE id = $1", 1, p);
    if (!img)
        return -1;
    *reply = json_pack("{s:s}", "imageId", id);
    if (!attr || !strcmp(attr, "launchPermission")) {
        PG_AUTO PGresult *lp = db_prepared(db, e, "img_lp", "SELECT account_id FROM launch_permissions WHERE image_id = $1 ORDER BY account_id", 1, p);
        if (!lp) {
            json_decref(*reply);
            *reply = NULL;
            return -1;
        }
        json_t *list = json_array();
        if (!strcmp(PQgetvalue(img, 0, 3), "t"))
            json_array_append_new(list, json_pack("{s:s}", "group", "all"));
        for (int i = 0; i < PQntuples(lp); i++)
            json_array_append_new(list, json_pack("{s:s}", "userId", PQgetvalue(lp, i, 0)));
        json_object_set_new(*reply, "launchPermission", list);
    } else if (!strcmp(attr, "description") || !strcmp(attr, "kernel") || !strcmp(attr, "ramdisk")) {
        int col = !strcmp(attr, "description") ? 0 : !strcmp(attr, "kernel") ? 1 : 2;
        json_t *v = PQgetisnull(img, 0, col) ? json_object() : json_pack("{s:s}", "value", PQgetvalue(img, 0, col));
        json_object_set_new(*reply, attr, v);
    } else {
        json_decref(*reply);
        *reply = NULL;
        return verr_set(e, 400, "InvalidParameterValue", "Value (%.64s) for parameter attribute is invalid.", attr);
    }
    return 0;
}

/* One launch permission change: group "all" flips is_public, a user id adds/removes a row. */
static int apply(db_t *db, const char *id, int add, const char *group, const char *user, verr_t *e)
{
    if (group) {
        if (strcmp(group, "all"))
            return verr_set(e, 400, "InvalidParameterValue", "The only launch permission group is 'all'");
        const char *p[] = {id, add ? "t" : "f"};
        PG_AUTO PGresult *r = db_prepared(db, e, "img_public", "UPDATE images SET is_public = $2::boolean WHERE id = $1", 2, p);
        return r ? 0 : -1;
    }
    if (!user || strlen(user) != 12 || strspn(user, "0123456789") != 12)
        return verr_set(e, 400, "InvalidUserID.Malformed", "User ID '%.32s' must be a 12-digit account id", user ? user : "");
    const char *p[] = {id, user};
    PG_AUTO PGresult *r = add
        ? db_prepared(db, e, "img_lp_add", "INSERT INTO launch_permissions (image_id, account_id) VALUES ($1, $2) ON CONFLICT DO NOTHING", 2, p)
        : db_prepared(db, e, "img_lp_del", "DELETE FROM launch_permissions WHERE image_id = $1 AND account_id = $2", 2, p);
    return r ? 0 : -1;
}

static int apply_list(db_t *db, const char *id, int add, const json_t *list, verr_t *e)
{
    size_t i;
    json_t *it;
    json_array_foreach(list, i, it)
        if (apply(db, id, add, json_str(it, "Group", NULL), json_str(it, "UserId", NULL), e) < 0)
            return -1;
    return 0;
}

int image_modify_attribute(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    const char *id = json_str(body, "ImageId", NULL);
    if (image_owned(ctx, id, e) < 0)
        return -1;
    db_t *db = service_db(ctx);
    if (db_begin(db, e) < 0)
        return -1;
    int rc = 0;
    json_t *lp = json_object_get(body, "LaunchPermission");
    /* the structured form: LaunchPermission.Add.N.Group / .UserId and .Remove.N */
    if (lp) {
        rc = apply_list(db, id, 1, json_object_get(lp, "Add"), e);
        if (rc == 0)
            rc = apply_list(db, id, 0, json_object_get(lp, "Remove"), e);
    }
    /* the older form: Attribute=launchPermission, OperationType, UserId.N, UserGroup.N */
    const char *op = json_str(body, "OperationType", NULL);
    if (rc == 0 && op) {
        int add = !strcmp(op, "add");
        if (!add && strcmp(op, "remove"))
            rc = verr_set(e, 400, "InvalidParameterValue", "OperationType must be add or remove");
        size_t i;
        json_t *v;
        json_array_foreach(json_object_get(body, "UserGroup"), i, v)
            if (rc == 0)
                rc = apply(db, id, add, json_string_value(v) ? json_string_value(v) : "", NULL, e);
        json_array_foreach(json_object_get(body, "UserId"), i, v)
            if (rc == 0)
                rc = apply(db, id, add, NULL, json_string_value(v), e);
    }
    const char *desc = json_str(json_object_get(body, "Description"), "Value", NULL);
    if (rc == 0 && desc) {
        const char *p[] = {id, desc};
        PG_AUTO PGresult *r = db_prepared(db, e, "img_desc", "UPDATE images SET description = $2 WHERE id = $1", 2, p);
        rc = r ? 0 : -1;
    }
    if (rc < 0 || db_commit(db, e) < 0) {
        db_rollback(db);
        return -1;
    }
    image_changed(ctx->bus, id);
    *reply = json_pack("{s:b}", "return", 1);
    return 0;
}
