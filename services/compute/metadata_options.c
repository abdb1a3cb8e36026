/* metadata_options.c - an instance's own metadata options: RunInstances' MetadataOptions
 * and ModifyInstanceMetadataOptions (metadata_options_api.c) parsed and recorded, and what
 * DescribeInstances and the metadata service's document say of them. Only what a tenant
 * set is stored (compute migrations 012, 014); what was not set is the host's
 * agent.metadata_tokens / agent.metadata_hop_limit, which this file reads once from the
 * same configuration (md_options_defaults_load) to show; tags in the metadata are off
 * unless turned on (InstanceMetadataTags), as on AWS. The agent's metadata server enforces
 * them (agent/metadata_http.c): the endpoint off answers 403, tokens required refuse
 * IMDSv1, the hop limit is the token answer's IP TTL; the tags are in the document
 * (agent_api.c) only when turned on. A change reaches a running instance when the agent's
 * cached document expires (agent.metadata_cache_s), so ModifyInstanceMetadataOptions
 * answers `pending`, as EC2 does, and DescribeInstances `applied`. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compute.h"
#include "jsonutil.h"
#include "metadata_options.h"

/* md_options_defaults_load: written once at compute's start, before any request */
static char default_tokens[16] = "optional";
static int default_hop_limit = 1;

void md_options_defaults_load(const config_t *cfg)
{
    const char *tokens = config_str(cfg, "agent.metadata_tokens", "optional");
    long long hop = config_int(cfg, "agent.metadata_hop_limit", 1);
    snprintf(default_tokens, sizeof default_tokens, "%s", strcmp(tokens, "required") ? "optional" : "required");
    default_hop_limit = hop >= 1 && hop <= 64 ? (int)hop : 1;
}

const char *md_options_default_tokens(void) { return default_tokens; }
int md_options_default_hop_limit(void) { return default_hop_limit; }

/* AWS's rule for the keys of an instance whose tags are in its metadata: each key is a
 * path element of /latest/meta-data/tags/instance/KEY */
int md_tag_key_valid(const char *key)
{
    size_t n = strlen(key);
    if (!n || n > 255 || !strcmp(key, ".") || !strcmp(key, "..") || !strcmp(key, "_index"))
        return 0;
    return strspn(key, "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-_+=,.@:") == n;
}

int md_tag_keys_check(const json_t *keys, verr_t *e)
{
    size_t i;
    const json_t *k;
    json_array_foreach(keys, i, k) {
        const char *key = json_is_string(k) ? json_string_value(k) : json_string_value(json_object_get(k, "key"));
        if (key && !md_tag_key_valid(key))
            return verr_set(e, 400, "InvalidParameterValue", "'%.255s' is not a valid tag key. Tag keys must match "
                            "pattern ([0-9a-zA-Z\\-_+=,.@:]{1,255}), and must not be a reserved name ('.', '..', "
                            "'_index')", key);
    }
    return 0;
}

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
    if (v6 && !strcmp(v6, "enabled"))
        return verr_set(e, 400, "Unsupported", "HttpProtocolIpv6 'enabled' is not supported here: the metadata "
                        "service over IPv6");
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
    if (tags)
        out->tags = !strcmp(tags, "enabled") ? 1 : -1;
    out->given = out->tokens || out->hop_limit || out->endpoint || out->tags;
    return 0;
}

int md_options_record(db_t *db, const char *instance_id, const md_options_t *o, verr_t *e)
{
    if (!o->given)
        return 0;
    char hop[16];
    snprintf(hop, sizeof hop, "%d", o->hop_limit);
    const char *p[] = {instance_id, o->tokens, o->hop_limit ? hop : NULL,
                       !o->endpoint ? NULL : o->endpoint < 0 ? "t" : "f", !o->tags ? NULL : o->tags > 0 ? "t" : "f"};
    PG_AUTO PGresult *r = db_prepared(db, e, "md_options_set",
        "UPDATE instances SET metadata_tokens = COALESCE($2, metadata_tokens), "
        "metadata_hop_limit = COALESCE($3::int, metadata_hop_limit), "
        "metadata_endpoint_disabled = COALESCE($4::boolean, metadata_endpoint_disabled), "
        "metadata_tags = COALESCE($5::boolean, metadata_tags), updated_at = now() WHERE id = $1", 5, p);
    return r ? 0 : -1;
}

json_t *md_options_shape(const char *tokens, const char *hop_limit, int endpoint_disabled, int tags,
                         const char *state)
{
    return json_pack("{s:s, s:s, s:I, s:s, s:s, s:s}", "state", state, "httpTokens",
                     tokens && *tokens ? tokens : default_tokens, "httpPutResponseHopLimit",
                     (json_int_t)(hop_limit && *hop_limit ? atoll(hop_limit) : default_hop_limit), "httpEndpoint",
                     endpoint_disabled ? "disabled" : "enabled", "httpProtocolIpv6", "disabled",
                     "instanceMetadataTags", tags ? "enabled" : "disabled");
}

void md_options_put_tags(json_t *meta_data, const char *tags)
{
    JSON_AUTO json_t *t = json_loads(tags, 0, NULL);
    const char *k;
    json_t *v;
    char path[300];
    /* a key AWS would not have let in (one tagged by hand in the database, or before the
     * option was on) is left out rather than served as a path of its own */
    json_object_foreach(t, k, v) {
        if (md_tag_key_valid(k) && json_is_string(v)) {
            snprintf(path, sizeof path, "tags/instance/%s", k);
            json_object_set(meta_data, path, v);
        }
    }
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

