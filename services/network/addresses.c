/* addresses.c - elastic IPs: AllocateAddress (from the operator's pool,
 * network.public_pool; at most the account's `elastic_ips` quota, counted under the
 * account's lock), AssociateAddress (to an interface, or to an instance's interface),
 * DisassociateAddress, ReleaseAddress, DescribeAddresses. An association touches the
 * datapath of the hosts running the interface's VPC (1:1 NAT there). The addresses a
 * launch gave interfaces (public_addresses.c) are not elastic IPs: none of these
 * actions finds them, an association replaces the interface's one, and an elastic IP
 * leaving such an interface (disassociated, or moved) gives it a new one. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "enis.h"
#include "ids.h"
#include "ipam.h"
#include "jsonutil.h"
#include "network.h"
#include "quota.h"
#include "tags.h"

int net_allocate_address(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    const char *account = net_account(ctx, e);
    if (!account)
        return -1;
    const char *domain = json_str(body, "Domain", "vpc");
    if (strcmp(domain, "vpc") && strcmp(domain, "standard"))
        return verr_set(e, 400, "InvalidParameterValue", "Domain is vpc");
    if (json_object_get(body, "Address") || json_object_get(body, "PublicIpv4Pool"))
        return verr_set(e, 400, "InvalidParameterValue", "Addresses come from the cloud's one public pool: "
                        "Address and PublicIpv4Pool are not supported");
    JSON_AUTO json_t *tags = describe_tag_spec(body, "elastic-ip", e);
    if (!tags || net_dry_run(body, e) < 0)
        return -1;
    long long max;
    if (quota_ask(ctx, account, "elastic_ips", 5, net_timeout_ms(ctx), &max, e) < 0)   /* before any write */
        return -1;
    db_t *db = service_db(ctx);
    service_t *svc = service_of(ctx);
    char id[IDS_MAX], ip[CIDR_STR_MAX];
    ids_new("eipalloc", id);
    const char *p[] = {account, id, ip};
    PG_AUTO PGresult *r = NULL;
    if (db_begin(db, e) < 0 || net_within_quota(db, &NET_EIP, account, max, "AddressLimitExceeded", e) < 0 ||
        ipam_public(db, svc->cfg, NULL, ip, e) < 0 ||
        !(r = db_prepared(db, e, "eip_insert", "INSERT INTO addresses (account_id, id, public_ip) VALUES ($1, $2, $3)",
                          3, p)) ||
        tags_put(db, id, account, tags, e) < 0 || db_commit(db, e) < 0)
        goto fail;
    *reply = json_pack("{s:s, s:s, s:s, s:s, s:s}", "publicIp", ip, "allocationId", id, "domain", "vpc",
                       "publicIpv4Pool", "virga", "networkBorderGroup", config_str(svc->cfg, "region", "us-east-1"));
    return 0;
fail:
    db_rollback(db);
    return -1;
}

/* The allocation a request names, by AllocationId or PublicIp; written into id. */
static int allocation_of(db_t *db, const json_t *body, const char *account, char *id, verr_t *e)
{
    const char *alloc = json_str(body, "AllocationId", NULL), *ip = json_str(body, "PublicIp", NULL);
    if (alloc) {
        if (net_owned(db, &NET_EIP, alloc, account, 1, e) < 0)
            return -1;
        snprintf(id, IDS_MAX, "%s", alloc);
        return 0;
    }
    if (!ip)
        return verr_set(e, 400, "MissingParameter", "The request must contain the parameter AllocationId or PublicIp");
    const char *p[] = {account, ip};
    PG_AUTO PGresult *r = db_prepared(db, e, "eip_by_ip", "SELECT id FROM elastic_ips WHERE account_id = $1 AND "
                                      "host(public_ip) = $2 FOR UPDATE", 2, p);
    if (!r)
        return -1;
    if (!PQntuples(r))
        return verr_set(e, 400, "InvalidAddress.NotFound", "Address '%.64s' not found.", ip);
    snprintf(id, IDS_MAX, "%s", PQgetvalue(r, 0, 0));
    return 0;
}

/* The interface an association targets: NetworkInterfaceId, or the instance's. */
static int target_eni(db_t *db, const json_t *body, const char *account, char *eni, char *vpc, verr_t *e)
{
    const char *id = json_str(body, "NetworkInterfaceId", NULL), *inst = json_str(body, "InstanceId", NULL);
    if (!id && !inst)
        return verr_set(e, 400, "MissingParameter", "Either NetworkInterfaceId or InstanceId is required");
    const char *p[] = {account, id ? id : inst};
    PG_AUTO PGresult *r = id
        ? db_prepared(db, e, "eip_eni", "SELECT id, vpc_id FROM enis WHERE account_id = $1 AND id = $2 FOR UPDATE", 2, p)
        : db_prepared(db, e, "eip_inst", "SELECT id, vpc_id FROM enis WHERE account_id = $1 AND instance_id = $2 "
                      "ORDER BY created_at LIMIT 1 FOR UPDATE", 2, p);
    if (!r)
        return -1;
    if (!PQntuples(r))
        return id ? verr_set(e, 400, "InvalidNetworkInterfaceID.NotFound", "The networkInterface ID '%.64s' does not "
                             "exist", id)
                  : verr_set(e, 400, "InvalidInstanceID.NotFound", "The instance ID '%.64s' does not exist", inst);
    snprintf(eni, IDS_MAX, "%s", PQgetvalue(r, 0, 0));
    snprintf(vpc, IDS_MAX, "%s", PQgetvalue(r, 0, 1));
    return 0;
}

int net_associate_address(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    const char *account = net_account(ctx, e);
    if (!account)
        return -1;
    db_t *db = service_db(ctx);
    char alloc[IDS_MAX], eni[IDS_MAX], vpc[IDS_MAX], assoc[IDS_MAX];
    ids_new("eipassoc", assoc);
    const char *p[] = {alloc, eni, assoc};
    PG_AUTO PGresult *cur = NULL;
    PG_AUTO PGresult *old = NULL;
    PG_AUTO PGresult *up = NULL;
    if (db_begin(db, e) < 0 || allocation_of(db, body, account, alloc, e) < 0 ||
        target_eni(db, body, account, eni, vpc, e) < 0 ||
        !(cur = db_prepared(db, e, "eip_cur", "SELECT e.vpc_id, a.eni_id FROM addresses a LEFT JOIN enis e "
                            "ON e.id = a.eni_id WHERE a.id = $1", 1, p)))
        goto fail;
    if (!PQgetisnull(cur, 0, 1) && strcmp(PQgetvalue(cur, 0, 1), eni) && !json_flag(body, "AllowReassociation")) {
        verr_set(e, 400, "Resource.AlreadyAssociated", "resource %s is already associated with associate-id %s", alloc,
                 PQgetvalue(cur, 0, 1));
        goto fail;
    }
    /* the interface's earlier address, if any, is replaced, as on AWS (an auto-assigned
     * one is released); an interface the elastic IP is moved away from gets a new
     * auto-assigned one if its launch gave it one (as a disassociation does) */
    const char *from = PQgetisnull(cur, 0, 1) || !strcmp(PQgetvalue(cur, 0, 1), eni) ? NULL : PQgetvalue(cur, 0, 1);
    if (net_dry_run(body, e) < 0 || eni_public_release(db, eni, e) < 0 ||
        !(old = db_prepared(db, e, "eip_unset", "UPDATE addresses SET eni_id = NULL, association_id = NULL WHERE "
                            "eni_id = $2 AND id <> $1", 2, p)) ||
        !(up = db_prepared(db, e, "eip_set", "UPDATE addresses SET eni_id = $2, association_id = $3 WHERE id = $1", 3,
                           p)) ||
        (from && eni_public_reassign(db, service_of(ctx)->cfg, from, e) < 0) ||
        hosts_touch_vpc(db, vpc, NULL, e) < 0 ||
        (!PQgetisnull(cur, 0, 0) && strcmp(PQgetvalue(cur, 0, 0), vpc) &&
         hosts_touch_vpc(db, PQgetvalue(cur, 0, 0), NULL, e) < 0) ||
        db_commit(db, e) < 0)
        goto fail;
    *reply = json_pack("{s:b, s:s}", "return", 1, "associationId", assoc);
    return 0;
fail:
    db_rollback(db);
    return -1;
}

int net_disassociate_address(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    const char *account = net_account(ctx, e);
    if (!account)
        return -1;
    const char *assoc = json_str(body, "AssociationId", NULL), *ip = json_str(body, "PublicIp", NULL);
    if (!assoc && !ip)
        return verr_set(e, 400, "MissingParameter", "The request must contain the parameter AssociationId or PublicIp");
    db_t *db = service_db(ctx);
    const char *p[] = {account, assoc ? assoc : ip};
    PG_AUTO PGresult *r = NULL;
    if (db_begin(db, e) < 0 ||
        !(r = assoc ? db_prepared(db, e, "eip_dis_assoc", "UPDATE addresses a SET eni_id = NULL, association_id = NULL "
                                  "FROM enis n WHERE n.id = a.eni_id AND a.account_id = $1 AND a.association_id = $2 "
                                  "AND NOT a.auto_assigned RETURNING n.vpc_id, n.id", 2, p)
                    : db_prepared(db, e, "eip_dis_ip", "UPDATE addresses a SET eni_id = NULL, association_id = NULL "
                                  "FROM enis n WHERE n.id = a.eni_id AND a.account_id = $1 AND host(a.public_ip) = $2 "
                                  "AND NOT a.auto_assigned RETURNING n.vpc_id, n.id", 2, p)))
        goto fail;
    if (!PQntuples(r)) {
        if (assoc)
            verr_set(e, 400, "InvalidAssociationID.NotFound", "The association ID '%.64s' does not exist", assoc);
        else
            verr_set(e, 400, "InvalidAddress.NotFound", "Address '%.64s' is not associated.", ip);
        goto fail;
    }
    /* an interface whose launch gave it a public address gets a new one (AWS does; not
     * the old one, which went back to the pool), in the same transaction, so the hosts'
     * documents never show it without one when the pool has one */
    if (net_dry_run(body, e) < 0 || eni_public_reassign(db, service_of(ctx)->cfg, PQgetvalue(r, 0, 1), e) < 0 ||
        net_vpc_change_commit(db, PQgetvalue(r, 0, 0), reply, e) < 0)
        goto fail;
    return 0;
fail:
    db_rollback(db);
    return -1;
}

int net_release_address(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    const char *account = net_account(ctx, e);
    if (!account)
        return -1;
    db_t *db = service_db(ctx);
    char alloc[IDS_MAX];
    const char *p[] = {alloc};
    PG_AUTO PGresult *r = NULL;
    if (db_begin(db, e) < 0 || allocation_of(db, body, account, alloc, e) < 0 ||
        !(r = db_prepared(db, e, "eip_assoc_of", "SELECT eni_id FROM addresses WHERE id = $1", 1, p)))
        goto fail;
    if (!PQgetisnull(r, 0, 0)) {
        verr_set(e, 400, "InvalidIPAddress.InUse", "Address %s is in use (associated with %s).", alloc,
                 PQgetvalue(r, 0, 0));
        goto fail;
    }
    if (net_delete_commit(db, &NET_EIP, alloc, body, reply, e) < 0)
        goto fail;
    return 0;
fail:
    db_rollback(db);
    return -1;
}

int net_describe_addresses(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    static const describe_field_t fields[] = {
        {"allocation-id", "allocationId"}, {"public-ip", "publicIp"}, {"association-id", "associationId"},
        {"network-interface-id", "networkInterfaceId"}, {"instance-id", "instanceId"},
        {"private-ip-address", "privateIpAddress"}, {"domain", "domain"}, {NULL, NULL}};
    const char *account = net_account(ctx, e);
    if (!account)
        return -1;
    db_t *db = service_db(ctx);
    const char *p[] = {account};
    PG_AUTO PGresult *r = db_prepared(db, e, "eip_all",
        "SELECT a.id, host(a.public_ip), a.association_id, a.eni_id, host(n.ip), n.instance_id FROM addresses a "
        "LEFT JOIN enis n ON n.id = a.eni_id WHERE a.account_id = $1 AND NOT a.auto_assigned ORDER BY a.id", 1, p);
    JSON_AUTO json_t *tags = r ? net_tags(db, account, e) : NULL;
    if (!tags)
        return -1;
    json_t *items = json_array();
    for (int i = 0; i < PQntuples(r); i++) {
        const char *id = PQgetvalue(r, i, 0);
        json_t *it = json_pack("{s:s, s:s, s:s, s:s, s:o}", "allocationId", id, "publicIp", PQgetvalue(r, i, 1),
                               "domain", "vpc", "publicIpv4Pool", "virga", "tagSet", net_tag_set(tags, id));
        if (!PQgetisnull(r, i, 2)) {
            json_object_set_new(it, "associationId", json_string(PQgetvalue(r, i, 2)));
            json_object_set_new(it, "networkInterfaceId", json_string(PQgetvalue(r, i, 3)));
            json_object_set_new(it, "networkInterfaceOwnerId", json_string(account));
            json_object_set_new(it, "privateIpAddress", json_string(PQgetvalue(r, i, 4)));
            if (!PQgetisnull(r, i, 5))
                json_object_set_new(it, "instanceId", json_string(PQgetvalue(r, i, 5)));
        }
        json_array_append_new(items, it);
    }
    /* PublicIp.N and AllocationId.N: each must be the account's */
    const char *missing = NULL;
    JSON_AUTO json_t *by_ip = describe_select(items, body, "PublicIp", "publicIp", &missing);
    json_decref(items);
    if (!by_ip)
        return verr_set(e, 400, "InvalidAddress.NotFound", "Address '%.64s' not found.", missing);
    return net_describe(json_incref(by_ip), body, "AllocationId", "allocationId", "InvalidAllocationID.NotFound",
                        fields, 0, "addressesSet", reply, e);
}
