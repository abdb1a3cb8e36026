/* tags.c - tags on compute's resources (key pairs and instances). The handlers are
 * common/tags.c's; this file says which ids are compute's and who owns one, and refuses
 * a key that an instance with its tags in its metadata cannot serve. */
#include <stdio.h>
#include <string.h>

#include "caller.h"
#include "compute.h"
#include "jsonutil.h"
#include "metadata_options.h"
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

/* An instance of the request whose tags are in its metadata (InstanceMetadataTags on)
 * takes only keys that are a path element of /latest/meta-data/tags/instance/ (AWS's
 * rule, the one RunInstances and ModifyInstanceMetadataOptions apply:
 * metadata_options.c). Read before common/tags.c's transaction, without the instance's
 * lock that ModifyInstanceMetadataOptions takes: a key let in by the two at once is
 * left out of the metadata (md_options_put_tags), never served as a path of its own. */
static int metadata_tag_keys(bus_ctx_t *ctx, const json_t *body, verr_t *e)
{
    const char *account = caller_account(ctx->msg->caller, e);
    if (!account)
        return -1;
    size_t n = json_array_size(json_object_get(body, "ResourceId")), i;
    AUTOFREE const char **ids = xcalloc(n + 1, sizeof *ids);
    for (i = 0; i < n; i++) {
        const json_t *id = json_array_get(json_object_get(body, "ResourceId"), i);
        ids[i] = json_is_string(id) ? json_string_value(id) : "";
    }
    AUTOFREE char *arr = db_text_array(ids, n);
    const char *p[] = {arr, caller_is_operator_admin(ctx->msg->caller) ? NULL : account};
    PG_AUTO PGresult *r = db_prepared(service_db(ctx), e, "tags_md_on", "SELECT 1 FROM instances WHERE id = "
                                      "ANY($1::text[]) AND metadata_tags AND ($2::bpchar IS NULL OR account_id = $2::bpchar) "
                                      "LIMIT 1", 2, p);
    if (!r)
        return -1;
    if (!PQntuples(r))
        return 0;
    JSON_AUTO json_t *keys = json_array();
    const json_t *t;
    json_array_foreach(json_object_get(body, "Tag"), i, t)
        if (json_str(t, "Key", NULL))
            json_array_append_new(keys, json_string(json_str(t, "Key", "")));
    return md_tag_keys_check(keys, e);
}

int compute_create_tags(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    if (metadata_tag_keys(ctx, body, e) < 0)
        return -1;
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
