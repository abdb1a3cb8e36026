/* instance_enis.h - compute's questions about an instance's interfaces (instance_enis.c). */
#ifndef VIRGA_NETWORK_INSTANCE_ENIS_H
#define VIRGA_NETWORK_INSTANCE_ENIS_H

#include "service.h"

int net_instance_enis(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e);
int net_instance_source_dest_check(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e);

#endif
