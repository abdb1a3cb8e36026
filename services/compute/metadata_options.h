/* metadata_options.h - an instance's own metadata options (metadata_options.c). */
#ifndef VIRGA_COMPUTE_METADATA_OPTIONS_H
#define VIRGA_COMPUTE_METADATA_OPTIONS_H

#include "compute.h"

typedef struct md_options {
    const char *tokens;   /* "optional" | "required" | NULL: not given */
    int hop_limit;        /* 1..64, 0: not given */
    int endpoint;         /* 1 enabled, -1 disabled, 0 not given */
    int given;            /* any of them */
} md_options_t;

/* The MetadataOptions structure of a request (or a ModifyInstanceMetadataOptions body):
 * InvalidParameterValue for a bad value, Unsupported for IPv6 or tags turned on. */
int md_options_parse(const json_t *o, md_options_t *out, verr_t *e);
/* What was given, onto the instance's row (nothing when nothing was). */
int md_options_record(db_t *db, const char *instance_id, const md_options_t *o, verr_t *e);
/* EC2's InstanceMetadataOptionsResponse of the row's columns (NULL or "": the cloud's
 * setting) with the given state ("applied", "pending"). */
json_t *md_options_shape(const config_t *cfg, const char *tokens, const char *hop_limit, int endpoint_disabled,
                         const char *state);
/* The metadata service's view: only what the instance set (agent/metadata_http.c). */
json_t *md_options_document(const char *tokens, const char *hop_limit, int endpoint_disabled);

#endif
