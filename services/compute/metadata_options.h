/* metadata_options.h - an instance's own metadata options (metadata_options.c). */
#ifndef VIRGA_COMPUTE_METADATA_OPTIONS_H
#define VIRGA_COMPUTE_METADATA_OPTIONS_H

#include "compute.h"

typedef struct md_options {
    const char *tokens;   /* "optional" | "required" | NULL: not given */
    int hop_limit;        /* 1..64, 0: not given */
    int endpoint;         /* 1 enabled, -1 disabled, 0 not given */
    int tags;             /* InstanceMetadataTags: 1 enabled, -1 disabled, 0 not given */
    int given;            /* any of them */
} md_options_t;

/* The cloud's agent.metadata_tokens and agent.metadata_hop_limit, read once at compute's
 * start (before any request), and what they are: what an instance that set nothing has. */
void md_options_defaults_load(const config_t *cfg);
const char *md_options_default_tokens(void);
int md_options_default_hop_limit(void);

/* The MetadataOptions structure of a request (or a ModifyInstanceMetadataOptions body):
 * InvalidParameterValue for a bad value, Unsupported for IPv6 turned on. */
int md_options_parse(const json_t *o, md_options_t *out, verr_t *e);
/* What was given, onto the instance's row (nothing when nothing was). */
int md_options_record(db_t *db, const char *instance_id, const md_options_t *o, verr_t *e);
/* EC2's InstanceMetadataOptionsResponse of the row's columns (NULL or "": the cloud's
 * setting) with the given state ("applied", "pending"). */
json_t *md_options_shape(const char *tokens, const char *hop_limit, int endpoint_disabled, int tags,
                         const char *state);
/* Whether a tag key may be an instance's with its tags in the metadata (AWS's rule:
 * [0-9a-zA-Z-_+=,.@:]{1,255}, not ".", ".." or "_index"). */
int md_tag_key_valid(const char *key);
/* Every key of tags ([{"key", "value"}] or ["key"]) valid, else InvalidParameterValue
 * with AWS's message naming the first that is not. */
int md_tag_keys_check(const json_t *tags, verr_t *e);
/* The instance's tags (tags: a JSON object key -> value) into its metadata document, as
 * "tags/instance/<key>": the metadata service lists the keys at tags/instance and gives
 * each value at tags/instance/KEY (agent/metadata_http.c). */
void md_options_put_tags(json_t *meta_data, const char *tags);
/* The metadata service's view: only what the instance set (agent/metadata_http.c). */
json_t *md_options_document(const char *tokens, const char *hop_limit, int endpoint_disabled);

#endif
