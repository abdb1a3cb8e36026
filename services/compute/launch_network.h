/* launch_network.h - the network part of RunInstances (launch_network.c). */
#ifndef VIRGA_COMPUTE_LAUNCH_NETWORK_H
#define VIRGA_COMPUTE_LAUNCH_NETWORK_H

#include "service.h"

typedef struct launch_net {
    const char *subnet, *private_ip;   /* as asked (borrowed from the request) */
    const json_t *ids, *names;         /* SecurityGroupIds / SecurityGroups as asked */
    json_t *group_ids;                 /* after the check: ids of what was asked, [] if nothing */
    char zone[64];                     /* after the check: the given subnet's zone, else "" */
    int public_ip;                     /* AssociatePublicIpAddress: 1, 0, or -1 (not given: the subnet's choice) */
} launch_net_t;

/* The parameters, checked for form: 0, or -1 with the EC2 error. */
int launch_net_parse(const json_t *body, int max_count, launch_net_t *n, verr_t *e);
/* Checked against the network's data (zone: the requested one, or NULL). */
int launch_net_check(bus_ctx_t *ctx, const char *account, const char *zone, launch_net_t *n, verr_t *e);
void launch_net_free(launch_net_t *n);
/* g: absent or a list of well-formed group ids (InvalidGroupId.Malformed). */
int launch_net_group_ids_valid(const json_t *g, const char *param, verr_t *e);

#endif
