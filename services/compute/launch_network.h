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
    const char *eni;                   /* an existing interface as the primary (DeviceIndex 0), or NULL */
    char eni_ip[48];                   /* after the check: that interface's address ("" unknown) */
    const json_t *ids, *names;         /* SecurityGroupIds / SecurityGroups as asked */
    json_t *group_ids;                 /* after the check: ids of what was asked, [] if nothing */
    json_t *groups;                    /* after the check: the primary's groups [{groupId, groupName}] (the
                                        * VPC's default if none asked), or NULL from a network of before */
    char zone[64];                     /* after the check: the zone a given subnet or interface decides, else "" */
    int public_ip;                     /* AssociatePublicIpAddress: 1, 0, or -1 (not given: the subnet's choice) */
    char subnet_id[48], vpc_id[48];    /* after the check: the primary's subnet (as given, else the default one
                                        * of the zone asked, or of the first zone) and VPC */
    json_t *default_subnets;           /* after the check, with no subnet given: {zone: default subnet}, or NULL */
    launch_nic_t more[LAUNCH_NET_MAX_IFACES - 1];   /* by device index */
    size_t n_more;
} launch_net_t;

/* The parameters, checked for form: 0, or -1 with the EC2 error. */
int launch_net_parse(const json_t *body, int max_count, launch_net_t *n, verr_t *e);
/* Checked against the network's data (zone: the requested one, or NULL). */
int launch_net_check(bus_ctx_t *ctx, const char *account, const char *zone, launch_net_t *n, verr_t *e);
void launch_net_free(launch_net_t *n);
/* After the check: every PrivateIpAddress asked (the primary's, the new interfaces'), as
 * [{subnet, ip}] for network.addresses_free, which RunInstances asks before it records
 * anything (InvalidIPAddress.InUse); NULL when none was asked. */
json_t *launch_net_addresses(const launch_net_t *n);
/* What RunInstances' answer can say of an instance's network before its launch task made
 * the port (the instance's zone: its primary's subnet when none was given). */
const char *launch_net_subnet_in(const launch_net_t *n, const char *zone);
/* Into an instance item of RunInstances' answer whose port the launch task has not made
 * yet (no subnetId): its subnet, VPC, private address when one was asked, and its
 * interfaces as far as they are known (an existing one's id; a new one's id and chosen
 * address come with the port, docs/compute.md). */
void launch_net_answer(const launch_net_t *n, json_t *instance, const char *owner);
/* In RunInstances' transaction, under the account's launch lock: the instance row
 * names the existing interface it takes as its primary (instances.primary_eni, which
 * its launch task adopts), unless an instance not yet terminated names it already
 * (InvalidNetworkInterface.InUse: of two launches of one interface, the second is
 * refused here). Nothing to do without one. */
int launch_net_claim(db_t *db, const char *instance, const launch_net_t *n, verr_t *e);
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
