/* compute.h - the compute service's handlers. */
#ifndef VIRGA_COMPUTE_H
#define VIRGA_COMPUTE_H

#include <sodium.h>

#include "service.h"

/* The service's state (main.c). */
typedef struct compute {
    unsigned char seal[crypto_secretbox_KEYBYTES];   /* compute.result_key_file */
    int can_seal;                                      /* else retried creates get Duplicate */
    int retry_window_s;                                /* compute.key_pair_retry_window_s */
} compute_t;

/* key_pairs.c */
int compute_create_key_pair(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e);
int compute_import_key_pair(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e);
int compute_describe_key_pairs(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e);
int compute_delete_key_pair(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e);
/* tags.c: CreateTags, DeleteTags, DescribeTags on key pairs (common/tags.c's handlers) */
int compute_create_tags(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e);
int compute_delete_tags(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e);
int compute_describe_tags(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e);
/* hosts.c: the host registry, from the agents' reports */
int compute_host_report(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e);

#endif
