/* enis.h - network interfaces, shared by the EC2 actions (enis.c) and the port API
 * (ports.c). */
#ifndef VIRGA_NETWORK_ENIS_H
#define VIRGA_NETWORK_ENIS_H

#include "service.h"

typedef struct eni_spec {
    const char *account;
    const char *subnet_id;
    const char *private_ip;     /* NULL: the lowest free one */
    const json_t *groups;       /* array of group ids; NULL/empty: the VPC's default group */
    const char *description;
    const char *instance_id;    /* NULL for a detached interface */
    const char *host;           /* NULL until placed */
    const char *client_token;   /* idempotency: a second create with it returns the first's id */
    const json_t *tags;         /* tagSet or NULL */
    const char *device_kind;    /* "veth" (NULL: the default) or "tap": what the host's datapath makes */
    int public_ip;              /* 0: none; 1: one from the pool; -1: as the subnet's MapPublicIpOnLaunch */
    int plug;                   /* made plugged on host (a launch's port: one transaction, not two) */
    int facts_in_reply;         /* the caller answers with the port's facts (compute's port_create): no push */
} eni_spec_t;

/* What an interface is once detached, whoever detaches it (an UPDATE's SET list):
 * DetachNetworkInterface, a terminated instance's (attachments.c), an adopted primary
 * given back (ports.c); the instance type's interface limit it held as a primary goes with
 * its instance (interface_limit.c). */
#define ENI_DETACHED "instance_id = NULL, device_index = NULL, attachment_id = NULL, parent_eni = NULL, host = NULL, " \
                     "plugged = false, delete_on_termination = false, interface_limit = NULL, interface_limit_seq = 0"

/* What a create asks for, as one hash (stored with its client token: the same token
 * with another request is IdempotentParameterMismatch). */
void eni_request_hash(const eni_spec_t *s, char out[65]);
/* The new interface's groups as its INSERT added them (added: their ids, a JSON array)
 * against what was asked (NULL or empty: the VPC's default group): 0 when each was, else
 * InvalidGroup.NotFound naming the first that was not. */
int eni_groups_added(const char *added, const char *vpc, const json_t *groups, verr_t *e);
/* Make the interface (or find the one made with s->client_token); writes its id. */
int eni_create(bus_ctx_t *ctx, const eni_spec_t *s, char *id, verr_t *e);
/* The same inside the caller's transaction, without the token's lookup (hash: the
 * request's, stored with s->client_token; NULL without one). */
int eni_insert(db_t *db, service_t *svc, const eni_spec_t *s, const char *hash, char *id, verr_t *e);
/* EC2 NetworkInterface items of the account (only_id: that one), sorted by id. */
json_t *eni_items(db_t *db, const char *account, const char *only_id, verr_t *e);
/* Delete an interface (its own transaction); without force, one attached to an
 * instance is InvalidNetworkInterface.InUse; account NULL: whoever's it is. With
 * replied, the caller answers with the interface's facts itself: no push is sent for
 * this change, and *replied is the version those facts carry. */
int eni_delete(db_t *db, const char *account, const char *id, int force, long long *replied, verr_t *e);
/* Delete it inside the caller's transaction, whoever owns it and whatever it is attached
 * to (the interfaces attached to it, a primary, go as eni_detach_children says); gone
 * already: 0. */
int eni_remove(db_t *db, const char *id, verr_t *e);

/* public_addresses.c, inside the caller's transaction: give the new interface an
 * address from the operator's pool (auto-assigned: not an elastic IP; the pool empty is
 * InsufficientAddressCapacity), and delete the one the interface has (its deletion, an
 * elastic IP replacing it). */
int eni_public_assign(db_t *db, const config_t *cfg, const char *account, const char *eni, verr_t *e);
/* The same in a transaction that holds the pool's lock already (IPAM_PUBLIC_LOCK_SQL). */
int eni_public_assign_locked(db_t *db, const config_t *cfg, const char *account, const char *eni, verr_t *e);
int eni_public_release(db_t *db, const char *eni, verr_t *e);
/* An elastic IP on the interface (being deleted) stays the account's, unassociated. */
int eni_eip_unlink(db_t *db, const char *eni, verr_t *e);
/* After an elastic IP left the interface: a new auto-assigned address when its launch
 * gave it one (public_ip_on_launch) and it is still attached; none, and no error, when
 * the pool is empty. */
int eni_public_reassign(db_t *db, const config_t *cfg, const char *eni, verr_t *e);

/* attachments.c: inside the caller's transaction, of the interfaces attached to the
 * instance whose primary interface is `primary` (it is being deleted), delete those
 * with delete_on_termination and detach the others. */
int eni_detach_children(db_t *db, const char *primary, verr_t *e);
/* network.launch_check's answer for an existing interface a launch names (attachments.c). */
int eni_launch_check(db_t *db, const char *account, const char *eni, const char *az, json_t **reply, verr_t *e);

#endif
