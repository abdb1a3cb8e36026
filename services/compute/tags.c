/* tags.c - tags on compute's resources (key pairs and instances). The handlers are
 * common/tags.c's; this file only says which ids are compute's and who owns one. */
#include <stdio.h>
#include <string.h>

#include "compute.h"
#include "tags.h"

static int key_pair_owner(db_t *db, const char *id, const char *account, char owner[TAGS_ACCOUNT_MAX], verr_t *e)
{
    const char *p[] = {id};
    PG_AUTO PGresult *r = db_prepared(db, e, "kp_tag_owner", "SELECT account_id FROM key_pairs WHERE id = $1", 1, p);
    if (!r)
        return -1;
    if (PQntuples(r) == 0 || (account && strcmp(PQgetvalue(r, 0, 0), account)))
        return verr_set(e, 400, "InvalidKeyPair.NotFound", "The key pair '%.64s' does not exist", id);
    snprintf(owner, TAGS_ACCOUNT_MAX, "%s", PQgetvalue(r, 0, 0));
    return 0;
}

static int instance_owner(db_t *db, const char *id, const char *account, char owner[TAGS_ACCOUNT_MAX], verr_t *e)
{
    const char *p[] = {id};
    PG_AUTO PGresult *r = db_prepared(db, e, "inst_tag_owner",
                                      "SELECT account_id FROM instances WHERE id = $1 AND state <> 'terminated'", 1, p);
    if (!r)
        return -1;
    if (PQntuples(r) == 0 || (account && strcmp(PQgetvalue(r, 0, 0), account)))
        return verr_set(e, 400, "InvalidInstanceID.NotFound", "The instance ID '%.64s' does not exist", id);
    snprintf(owner, TAGS_ACCOUNT_MAX, "%s", PQgetvalue(r, 0, 0));
    return 0;
}

static const tags_kind_t kinds[] = {
    {"key", key_pair_owner},
    {"i", instance_owner},
    {NULL, NULL},
};

int compute_create_tags(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    return tags_create_handler(ctx, body, kinds, reply, e);
}

int compute_delete_tags(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    return tags_delete_handler(ctx, body, kinds, reply, e);
}

int compute_describe_tags(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    return tags_describe_handler(ctx, body, kinds, reply, e);
}
