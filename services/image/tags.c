/* tags.c - tags on images: machine (ami-), kernel (aki-) and ramdisk (ari-) images are
 * all "image" to EC2's tag actions. The handlers are common/tags.c's; this file only
 * says which ids are images and who owns one. */
#include <stdio.h>
#include <string.h>

#include "image_tags.h"
#include "tags.h"

/* A deregistered image is gone for tagging, as for everything else a tenant does. */
static int image_owner(db_t *db, const char *id, const char *account, char owner[TAGS_ACCOUNT_MAX], verr_t *e)
{
    const char *p[] = {id};
    PG_AUTO PGresult *r = db_prepared(db, e, "img_tag_owner",
        "SELECT account_id FROM images WHERE id = $1 AND state <> 'deregistered'", 1, p);
    if (!r)
        return -1;
    if (PQntuples(r) == 0 || (account && strcmp(PQgetvalue(r, 0, 0), account)))
        return verr_set(e, 400, "InvalidAMIID.NotFound", "The image id '[%.64s]' does not exist", id);
    snprintf(owner, TAGS_ACCOUNT_MAX, "%s", PQgetvalue(r, 0, 0));
    return 0;
}

static const tags_kind_t kinds[] = {
    {"ami", image_owner},
    {"aki", image_owner},
    {"ari", image_owner},
    {NULL, NULL},
};

int image_create_tags(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    return tags_create_handler(ctx, body, kinds, reply, e);
}

int image_delete_tags(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    return tags_delete_handler(ctx, body, kinds, reply, e);
}

int image_describe_tags(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    return tags_describe_handler(ctx, body, kinds, reply, e);
}
