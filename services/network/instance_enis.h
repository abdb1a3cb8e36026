/* instance_enis.h - what compute keeps of its instances' interfaces: the push after each
 * commit, the pull compute repairs it with, and ModifyInstanceAttribute SourceDestCheck
 * (instance_enis.c). */
#ifndef VIRGA_NETWORK_INSTANCE_ENIS_H
#define VIRGA_NETWORK_INSTANCE_ENIS_H

#include "service.h"

int net_instance_interfaces(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e);
int net_interface_digest(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e);
int net_instance_source_dest_check(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e);
/* The LISTEN thread of the push (a connection of its own); stop joins it. */
int instance_eni_events_start(service_t *svc, verr_t *e);
void instance_eni_events_stop(void);

#endif
