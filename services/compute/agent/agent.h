/* agent.h - the per-host agent's state and its bus message handlers. */
#ifndef VIRGA_AGENT_H
#define VIRGA_AGENT_H

#include "image_cache.h"
#include "image_export.h"
#include "instance_sync.h"
#include "service.h"

typedef struct agent {
    image_cache_t *images;
    instance_sync_t *sync;    /* the instance loop (instance_sync.h) */
    image_export_t *exports;  /* CreateImage's exports (image_export.h) */
} agent_t;

/* image_messages.c */
int agent_image_fetch(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e);
int agent_image_cache_list(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e);

/* instance_messages.c */
int agent_instances_changed(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e);
int agent_instance_sync_start(service_t *svc, const char *host_id, verr_t *e);

#endif
