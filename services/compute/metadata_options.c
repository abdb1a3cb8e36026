/* metadata_options.c - an instance's own metadata options: RunInstances' MetadataOptions,
 * ModifyInstanceMetadataOptions, and what DescribeInstances and the metadata service's
 * document say of them. Only what a tenant set is stored (compute migration 012); what was
 * not set is the host's agent.metadata_tokens / agent.metadata_hop_limit, which compute
 * reads from the same configuration to show. The agent's metadata server enforces them
 * (agent/metadata_http.c): the endpoint off answers 403, tokens required refuse IMDSv1,
 * the hop limit is the token answer's IP TTL. A change reaches a running instance when the
 * agent's cached document expires (agent.metadata_cache_s), so ModifyInstanceMetadataOptions
 * answers `pending`, as EC2 does, and DescribeInstances `applied`. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compute.h"
#include "jsonutil.h"
#include "metadata_options.h"

static int parse_word(const json_t *o, const char *key, const char *a, const char *b, const char **out, verr_t *e)
{
    const char *v = json_str(o, key, NULL);
    if (!v)
        return 0;
    if (strcmp(v, a) && strcmp(v, b))
        return verr_set(e, 400, "InvalidParameterValue", "Value (%.32s) for parameter %s is invalid. Valid values: %s, %s",
                        v, key, a, b);
    *out = v;
    return 0;
}

int md_options_parse(const json_t *o, md_options_t *out, verr_t *e)
{
    memset(out, 0, sizeof *out);
    if (!o)
        return 0;
    const char *endpoint = NULL, *v6 = NULL, *tags = NULL;
    if (parse_word(o, "HttpTokens", "optional", "required", &out->tokens, e) < 0 ||
        parse_word(o, "HttpEndpoint", "enabled", "disabled", &endpoint, e) < 0 ||
        parse_word(o, "HttpProtocolIpv6", "disabled", "enabled", &v6, e) < 0 ||
        parse_word(o, "InstanceMetadataTags", "disabled", "enabled", &tags, e) < 0)
        return -1;
    if ((v6 && !strcmp(v6, "enabled")) || (tags && !strcmp(tags, "enabled")))
        return verr_set(e, 400, "Unsupported", "%s 'enabled' is not supported here: %s",
                        v6 && !strcmp(v6, "enabled") ? "HttpProtocolIpv6" : "InstanceMetadataTags",
                        v6 && !strcmp(v6, "enabled") ? "the metadata service over IPv6" : "tags in instance metadata");
    const json_t *hop = json_object_get(o, "HttpPutResponseHopLimit");
    if (hop) {
        const char *s = json_is_string(hop) ? json_string_value(hop) : NULL;
        char *end = NULL;
        long n = json_is_integer(hop) ? (long)json_integer_value(hop) : s ? strtol(s, &end, 10) : -1;
        if ((s && (!*s || *end)) || n < 1 || n > 64)
            return verr_set(e, 400, "InvalidParameterValue",
                            "HttpPutResponseHopLimit must be an integer from 1 to 64");
        out->hop_limit = (int)n;
    }
    if (endpoint)
        out->endpoint = !strcmp(endpoint, "disabled") ? -1 : 1;
    out->given = out->tokens || out->hop_limit || out->endpoint;
    return 0;
}

int md_options_record(db_t *db, const char *instance_id, const md_options_t *o, verr_t *e)
{
    if (!o->given)
        return 0;
    char hop[16];
    snprintf(hop, sizeof hop, "%d", o->hop_limit);
    const char *p[] = {instance_id, o->tokens, o->hop_limit ? hop : NULL,
                       !o->endpoint ? NULL : o->endpoint < 0 ? "t" : "f"};
    PG_AUTO PGresult *r = db_prepared(db, e, "md_options_set",
        "UPDATE instances SET metadata_tokens = COALESCE($2, metadata_tokens), "
        "metadata_hop_limit = COALESCE($3::int, metadata_hop_limit), "
        "metadata_endpoint_disabled = COALESCE($4::boolean, metadata_endpoint_disabled), updated_at = now() "
        "WHERE id = $1", 4, p);
    return r ? 0 : -1;
}

json_t *md_options_shape(const config_t *cfg, const char *tokens, const char *hop_limit, int endpoint_disabled,
                         const char *state)
{
    long long hop = hop_limit && *hop_limit ? atoll(hop_limit) : config_int(cfg, "agent.metadata_hop_limit", 1);
    return json_pack("{s:s, s:s, s:I, s:s, s:s, s:s}", "state", state, "httpTokens",
                     tokens && *tokens ? tokens : config_str(cfg, "agent.metadata_tokens", "optional"),
                     "httpPutResponseHopLimit", (json_int_t)hop, "httpEndpoint",
                     endpoint_disabled ? "disabled" : "enabled", "httpProtocolIpv6", "disabled",
                     "instanceMetadataTags", "disabled");
}

json_t *md_options_document(const char *tokens, const char *hop_limit, int endpoint_disabled)
{
    json_t *o = json_object();
    if (tokens && *tokens)
        json_object_set_new(o, "http_tokens", json_string(tokens));
    if (hop_limit && *hop_limit)
        json_object_set_new(o, "hop_limit", json_integer(atoll(hop_limit)));
    if (endpoint_disabled)
        json_object_set_new(o, "http_endpoint", json_string("disabled"));
    return o;
}

/* ModifyInstanceMetadataOptions: InstanceId, HttpTokens, HttpPutResponseHopLimit,
 * HttpEndpoint (HttpProtocolIpv6, InstanceMetadataTags: disabled only), DryRun. */
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
    PG_AUTO PGresult *now = NULL;   /* before the first goto: its cleanup runs at every exit */
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
    if (md_options_record(db, id, &o, e) < 0)
        goto fail;
    const char *p[] = {id};
    now = db_prepared(db, e, "md_options_get",
        "SELECT metadata_tokens, metadata_hop_limit::text, metadata_endpoint_disabled FROM instances WHERE id = $1",
        1, p);
    if (!now || db_commit(db, e) < 0)
        goto fail;
    *reply = json_pack("{s:s, s:o}", "instanceId", id, "instanceMetadataOptions",
                       md_options_shape(service_of(ctx)->cfg, PQgetvalue(now, 0, 0), PQgetvalue(now, 0, 1),
                                        PQgetvalue(now, 0, 2)[0] == 't', "pending"));
    return 0;
fail:
    db_rollback(db);
    return -1;
}
