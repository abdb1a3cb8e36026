/* launch_network.h - the network part of RunInstances (launch_network.c). */
#ifndef VIRGA_COMPUTE_LAUNCH_NETWORK_H
#define VIRGA_COMPUTE_LAUNCH_NETWORK_H

#include "service.h"

#define LAUNCH_NET_MAX_IFACES 16   /* device indexes 0..15, as AttachNetworkInterface takes */

/* A NetworkInterfaces entry beyond the primary (DeviceIndex 1..15). */
typedef struct launch_nic {
    long index;
    const char *eni;                   /* NetworkInterfaceId: an existing interface; NULL: a new one */
    const char *subnet, *private_ip, *description;   /* a new one's, as asked (borrowed) */
    const json_t *ids;                 /* a new one's Groups as asked */
    int delete_on_termination;         /* as asked; default: a new one's true, an existing one's false */
    json_t *facts;                     /* after the check: network.launch_check's answer */
} launch_nic_t;

typedef struct launch_net {
    const char *subnet, *private_ip;   /* as asked (borrowed from the request) */
    const json_t *ids, *names;         /* SecurityGroupIds / SecurityGroups as asked */
    json_t *group_ids;                 /* after the check: ids of what was asked, [] if nothing */
    char zone[64];                     /* after the check: the zone a given subnet or interface decides, else "" */
    int public_ip;                     /* AssociatePublicIpAddress: 1, 0, or -1 (not given: the subnet's choice) */
    launch_nic_t more[LAUNCH_NET_MAX_IFACES - 1];   /* by device index */
    size_t n_more;
} launch_net_t;

/* The parameters, checked for form: 0, or -1 with the EC2 error. */
int launch_net_parse(const json_t *body, int max_count, launch_net_t *n, verr_t *e);
/* Checked against the network's data (zone: the requested one, or NULL). */
int launch_net_check(bus_ctx_t *ctx, const char *account, const char *zone, launch_net_t *n, verr_t *e);
void launch_net_free(launch_net_t *n);
/* g: absent or a list of well-formed group ids (InvalidGroupId.Malformed). */
int launch_net_group_ids_valid(const json_t *g, const char *param, verr_t *e);

/* What the launch task needs of the interfaces beyond the primary, for its payload:
 * [{device_index, eni} | {device_index, subnet, groups, private_ip?, description},
 * each with delete_on_termination]; NULL when there are none. */
json_t *launch_net_more_doc(const launch_net_t *n);
/* The launch task, after the primary port is made: the network attaches (or makes) the
 * interfaces of payload's "interfaces" (launch_net_more_doc) in one transaction;
 * *ports = their ports with device_index, as compute records them ([] when none). */
int launch_net_more_ports(service_t *svc, int timeout_ms, const char *instance, const char *account,
                          const json_t *primary_port, const json_t *payload, json_t **ports, verr_t *e);

#endif
