/* metadata_options_api.c - ModifyInstanceMetadataOptions: an instance's own metadata
 * options changed (metadata_options.c parses, records and shows them). */
#include <string.h>

#include "compute.h"
#include "jsonutil.h"
#include "metadata_options.h"

/* ModifyInstanceMetadataOptions: InstanceId, HttpTokens, HttpPutResponseHopLimit,
 * HttpEndpoint, InstanceMetadataTags (HttpProtocolIpv6: disabled only), DryRun. Tags
 * turned on with a key AWS does not allow in the metadata (a space, a slash) among the
 * instance's tags: InvalidParameterValue naming it, as on AWS, and nothing changes. */
int compute_modify_instance_metadata_options(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    const char *account;
    if (instances_scope(ctx, &account, e) < 0)
        return -1;
    const char *id = json_str(body, "InstanceId", NULL);
    if (!id || !*id)
        return verr_set(e, 400, "MissingParameter", "The request must contain the parameter InstanceId");
    md_options_t o;
    if (md_options_parse(body, &o, e) < 0)
        return -1;
    db_t *db = service_db(ctx);
    if (db_begin(db, e) < 0)
        return -1;
    PG_AUTO PGresult *now = NULL;   /* before the first goto: their cleanup runs at every exit */
    PG_AUTO PGresult *keys = NULL;
    char state[32];
    if (instance_lock(db, account, id, state, e) < 0)
        goto fail;
    if (!strcmp(state, "terminated") || !strcmp(state, "shutting-down")) {
        verr_set(e, 400, "IncorrectInstanceState", "The instance '%s' is not in a state from which its metadata "
                 "options can be modified.", id);
        goto fail;
    }
    if (json_flag(body, "DryRun")) {
        verr_set(e, 412, "DryRunOperation", "Request would have succeeded, but DryRun flag is set.");
        goto fail;
    }
    const char *p[] = {id};
    if (o.tags > 0) {
        if (!(keys = db_prepared(db, e, "md_options_tag_keys", "SELECT coalesce(json_agg(key ORDER BY key), '[]')::text "
                                 "FROM tags WHERE resource_id = $1", 1, p)))
            goto fail;
        JSON_AUTO json_t *k = json_loads(PQgetvalue(keys, 0, 0), 0, NULL);
        if (md_tag_keys_check(k, e) < 0)
            goto fail;
    }
    if (md_options_record(db, id, &o, e) < 0)
        goto fail;
    now = db_prepared(db, e, "md_options_get",
        "SELECT metadata_tokens, metadata_hop_limit::text, metadata_endpoint_disabled, metadata_tags FROM instances "
        "WHERE id = $1", 1, p);
    if (!now || db_commit(db, e) < 0)
        goto fail;
    *reply = json_pack("{s:s, s:o}", "instanceId", id, "instanceMetadataOptions",
                       md_options_shape(PQgetvalue(now, 0, 0), PQgetvalue(now, 0, 1), PQgetvalue(now, 0, 2)[0] == 't',
                                        PQgetvalue(now, 0, 3)[0] == 't', "pending"));
    return 0;
fail:
    db_rollback(db);
    return -1;
}
