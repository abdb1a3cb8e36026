/* enis.c - network interfaces: CreateNetworkInterface, DeleteNetworkInterface,
 * DescribeNetworkInterfaces, and eni_create, which the port API (ports.c) shares. An
 * interface has one private address from its subnet (ipam.c), a MAC derived from its
 * id, and security groups of its VPC (the VPC's default group when none is named). A
 * ClientToken makes a create idempotent: the retry returns the interface made first. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cidr.h"
#include "enis.h"
#include "ids.h"
#include "ipam.h"
#include "jsonutil.h"
#include "network.h"
#include "public_dns.h"
#include "strbuf.h"
#include "tags.h"

static int by_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* What a create asks for, as one hash: the same request retried has the same one (groups
 * in any order). The host is left out: compute may place a retried instance elsewhere. */
void eni_request_hash(const eni_spec_t *s, char out[65])
{
    strbuf_t b = {0};
    strbuf_printf(&b, "%s|%s|%s|%s|%s|", s->subnet_id ? s->subnet_id : "", s->private_ip ? s->private_ip : "",
                  s->description ? s->description : "", s->instance_id ? s->instance_id : "",
                  s->device_kind ? s->device_kind : "veth");
    size_t n = json_array_size(s->groups);
    const char **g = xcalloc(n + 1, sizeof *g);
    for (size_t i = 0; i < n; i++)
        g[i] = json_is_string(json_array_get(s->groups, i)) ? json_string_value(json_array_get(s->groups, i)) : "";
    qsort(g, n, sizeof *g, by_str);
    for (size_t i = 0; i < n; i++)
        strbuf_printf(&b, "%s,", g[i]);
    free(g);
    unsigned char h[32];
    crypto_generichash(h, sizeof h, (const unsigned char *)b.s, b.len, NULL, 0);
    sodium_bin2hex(out, 65, h, sizeof h);
    free(b.s);
}

/* 1 with the id of the interface the token made, 0 when none; a token used before with
 * other parameters is IdempotentParameterMismatch. */
static int find_by_token(db_t *db, const eni_spec_t *s, const char *hash, char *id, verr_t *e)
{
    const char *p[] = {s->account, s->client_token};
    PG_AUTO PGresult *r = db_prepared(db, e, "eni_token", "SELECT id, request_hash FROM enis WHERE account_id = $1 "
                                      "AND client_token = $2", 2, p);
    if (!r)
        return -1;
    if (!PQntuples(r))
        return 0;
    if (!PQgetisnull(r, 0, 1) && strcmp(PQgetvalue(r, 0, 1), hash))
        return net_token_mismatch(e, s->client_token);
    snprintf(id, IDS_MAX, "%s", PQgetvalue(r, 0, 0));
    return 1;
}

/* The new interface's groups as ENI_INSERT added them (added: their ids, a JSON array)
 * against what was asked (NULL or empty: the VPC's default group): 0 when each was, else
 * InvalidGroup.NotFound naming the first that was not (one not the account's, not in the
 * VPC, or named twice). */
int eni_groups_added(const char *added, const char *vpc, const json_t *groups, verr_t *e)
{
    JSON_AUTO json_t *got = json_loads(added, 0, NULL);
    if (!json_array_size(groups))
        return json_array_size(got) == 1 ? 0
               : verr_set(e, 400, "InvalidGroup.NotFound", "The security group '' does not exist in VPC '%s'", vpc);
    JSON_AUTO json_t *seen = json_object();
    size_t i, k;
    json_t *g, *x;
    json_array_foreach(groups, i, g) {
        const char *id = json_is_string(g) ? json_string_value(g) : "";
        int in = 0;
        json_array_foreach(got, k, x)
            in = in || (json_is_string(x) && !strcmp(json_string_value(x), id));
        if (!in || json_object_get(seen, id))
            return verr_set(e, 400, "InvalidGroup.NotFound", "The security group '%.64s' does not exist in VPC '%s'",
                            id, vpc);
        json_object_set_new(seen, id, json_true());
    }
    return 0;
}

/* The interface's row, its groups (each the account's and in the VPC; none named: the
 * VPC's default group) and, plugged at once, the new generation of the VPC's hosts and
 * this one (as a plug's), in one statement: three round trips a launch's port made
 * apart. The groups' foreign key is checked at the statement's end, when the row is
 * there. Answers the ids of the groups added. */
#define ENI_INSERT                                                                                                    \
    "WITH n AS (INSERT INTO enis (id, account_id, vpc_id, subnet_id, ip, mac, description, instance_id, host, "      \
    "client_token, device_kind, request_hash, device_index, attachment_id, plugged, delete_on_termination) VALUES "   \
    "($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, CASE WHEN $8::text IS NULL THEN NULL ELSE 0 END, CASE WHEN " \
    "$8::text IS NULL THEN NULL ELSE 'eni-attach-' || substr($1, 5) END, $13::boolean, $8::text IS NOT NULL)), "    \
    "g AS (INSERT INTO eni_groups (eni_id, group_id) SELECT $1, sg.id FROM security_groups sg WHERE sg.vpc_id = $3 "  \
    "AND sg.account_id = $2 AND CASE WHEN $14::json IS NULL THEN sg.name = 'default' ELSE sg.id IN (SELECT "          \
    "json_array_elements_text($14::json)) END RETURNING group_id), "                                                 \
    HOSTS_TOUCH_VPC_CTES("CASE WHEN $13::boolean THEN $3 END", "CASE WHEN $13::boolean THEN $9 END")                 \
    " SELECT coalesce((SELECT json_agg(group_id) FROM g), '[]')::text"

/* The interface's row, its groups, tags and public address, inside the caller's
 * transaction; writes its new id. With by_token (eni_create), the interface
 * s->client_token made before is looked for in the statement that locks the subnet, a
 * round trip less than a lookup of its own (every launch's port has a token): *found 1
 * and its id written when there is one (nothing else is done). */
static int insert_row(db_t *db, service_t *svc, const eni_spec_t *s, const char *hash, int by_token, char *id,
                      int *found, verr_t *e)
{
    *found = 0;
    ids_new("eni", id);
    char mac[18], ip[CIDR_STR_MAX];
    cidr_mac_for(id, mac);
    PG_AUTO PGresult *sub = NULL;
    PG_AUTO PGresult *ins = NULL;
    /* (a port made for an instance, its primary, goes with it: DeleteOnTermination; an
     * existing interface a launch adopts keeps its own: ports.c) the subnet's row locked
     * (its addresses are picked under it: ipam.c) and read in one statement; a port whose facts go back in the create's answer (facts_in_reply) marks
     * the transaction so that its push is not sent too (network 015), added to the ones
     * the transaction named before (a batch's: network 019, ports_many.c) */
    /* and the public pool's lock when the port will have a public address (asked, or the
     * subnet's MapPublicIpOnLaunch; not for a token's port found), taken after the
     * subnet's row lock as eni_public_assign would (the CTE's rows come locked): a
     * statement a launch less */
    const char *lp[] = {s->subnet_id, s->account, s->facts_in_reply ? id : "", by_token ? s->client_token : NULL,
                        s->public_ip < 0 ? NULL : s->public_ip ? "t" : "f"};
    if (!(sub = db_prepared(db, e, "eni_subnet_token_pool", "WITH l AS (SELECT vpc_id, cidr, map_public, set_config("
                            "'virga.facts_replied', concat_ws(',', nullif(current_setting('virga.facts_replied', true), "
                            "''), nullif($3, '')), true) AS facts, (SELECT t.id FROM enis t WHERE t.account_id = $2 AND "
                            "t.client_token = $4) AS token_eni, (SELECT t.request_hash FROM enis t WHERE t.account_id = "
                            "$2 AND t.client_token = $4) AS token_hash FROM subnets WHERE id = $1 AND account_id = $2 "
                            "FOR UPDATE OF subnets) SELECT l.*, (SELECT count(*) FROM (SELECT " IPAM_PUBLIC_LOCK_SQL
                            " WHERE coalesce($5::boolean, l.map_public) AND l.token_eni IS NULL) p) FROM l", 5, lp)))
        return -1;
    if (!PQntuples(sub))
        return net_owned(db, &NET_SUBNET, s->subnet_id, s->account, 0, e) < 0 ? -1
               : verr_set(e, 400, NET_SUBNET.not_found, "The subnet ID '%.64s' does not exist", s->subnet_id);
    if (!PQgetisnull(sub, 0, 4)) {   /* the token's interface, as find_by_token answers */
        if (!PQgetisnull(sub, 0, 5) && strcmp(PQgetvalue(sub, 0, 5), hash))
            return net_token_mismatch(e, s->client_token);
        snprintf(id, IDS_MAX, "%s", PQgetvalue(sub, 0, 4));
        *found = 1;
        return 0;
    }
    if (ipam_private(db, s->subnet_id, PQgetvalue(sub, 0, 1), s->private_ip, ip, e) < 0)
        return -1;
    const char *vpc = PQgetvalue(sub, 0, 0);
    if (json_array_size(s->groups) > 5)
        return verr_set(e, 400, "SecurityGroupsPerInterfaceLimitExceeded", "At most 5 security groups per interface");
    AUTOFREE char *groups = json_array_size(s->groups) ? json_dumps(s->groups, JSON_COMPACT) : NULL;
    const char *p[] = {id, s->account, vpc, s->subnet_id, ip, mac, s->description ? s->description : "",
                       s->instance_id, s->host, s->client_token, s->device_kind ? s->device_kind : "veth",
                       s->client_token ? hash : NULL, s->plug && s->host ? "t" : "f", groups};
    if (s->host && hosts_ensure(db, svc, s->host, e) < 0)
        return -1;
    if (!(ins = db_prepared(db, e, "eni_insert_groups", ENI_INSERT, 14, p)) ||
        eni_groups_added(PQgetvalue(ins, 0, 0), vpc, s->groups, e) < 0 || tags_put(db, id, s->account, s->tags, e) < 0)
        return -1;
    /* a public address at launch: asked for, or the subnet's MapPublicIpOnLaunch */
    int pub = s->public_ip < 0 ? PQgetvalue(sub, 0, 2)[0] == 't' : s->public_ip;
    return pub ? eni_public_assign_locked(db, svc->cfg, s->account, id, e) : 0;
}

int eni_insert(db_t *db, service_t *svc, const eni_spec_t *s, const char *hash, char *id, verr_t *e)
{
    int found;
    return insert_row(db, svc, s, hash, 0, id, &found, e);
}

int eni_create(bus_ctx_t *ctx, const eni_spec_t *s, char *id, verr_t *e)
{
    db_t *db = service_db(ctx);
    char hash[65];
    eni_request_hash(s, hash);
    int found = 0;
    if (db_begin(db, e) < 0 || insert_row(db, service_of(ctx), s, hash, s->client_token != NULL, id, &found, e) < 0)
        goto fail;
    if (found) {   /* made before with this token */
        db_rollback(db);
        return 0;
    }
    if (db_commit(db, e) < 0)
        goto fail;
    return 0;
fail:
    db_rollback(db);
    /* a concurrent retry with the same token got there first: its interface is ours */
    if (s->client_token && !strcmp(db_last_sqlstate(db), "23505")) {
        verr_t e2 = {0};
        int again = find_by_token(db, s, hash, id, &e2);
        if (again == 1)
            return 0;
        if (again < 0)
            *e = e2;
    }
    return -1;
}

json_t *eni_items(db_t *db, const char *account, const char *only_id, verr_t *e)
{
    const char *p[] = {account, only_id};
    PG_AUTO PGresult *r = db_prepared(db, e, "eni_all",
        "SELECT n.id, n.subnet_id, n.vpc_id, s.az, n.description, host(n.ip), n.mac::text, n.instance_id, "
        "host(a.public_ip), a.id, a.association_id, "
        "(SELECT coalesce(json_agg(json_build_object('groupId', g.id, 'groupName', g.name) ORDER BY g.id), '[]')::text "
        "   FROM eni_groups eg JOIN security_groups g ON g.id = eg.group_id WHERE eg.eni_id = n.id), n.host, "
        "n.device_index, n.attachment_id, n.source_dest_check, n.delete_on_termination "
        "FROM enis n JOIN subnets s ON s.id = n.subnet_id LEFT JOIN addresses a ON a.eni_id = n.id "
        "WHERE n.account_id = $1 AND ($2::text IS NULL OR n.id = $2) ORDER BY n.id", 2, p);
    JSON_AUTO json_t *tags = r ? net_tags(db, account, e) : NULL;
    if (!tags)
        return NULL;
    json_t *items = json_array();
    for (int i = 0; i < PQntuples(r); i++) {
        const char *id = PQgetvalue(r, i, 0);
        char dns[320];
        public_dns_name(PQgetvalue(r, i, 8), dns, sizeof dns);
        /* an auto-assigned address (no association id) is the cloud's, as EC2 shows it */
        json_t *assoc = PQgetisnull(r, i, 8) ? NULL
            : PQgetisnull(r, i, 10) ? json_pack("{s:s, s:s, s:s}", "publicIp", PQgetvalue(r, i, 8), "ipOwnerId",
                                                "amazon", "publicDnsName", dns)
            : json_pack("{s:s, s:s, s:s, s:s, s:s}", "publicIp", PQgetvalue(r, i, 8), "allocationId",
                        PQgetvalue(r, i, 9), "associationId", PQgetvalue(r, i, 10), "ipOwnerId", account,
                        "publicDnsName", dns);
        json_t *ip = json_pack("{s:s, s:b}", "privateIpAddress", PQgetvalue(r, i, 5), "primary", 1);
        if (assoc)
            json_object_set(ip, "association", assoc);
        json_t *it = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:b, s:s, s:s, s:s, s:[o], s:o, s:s, s:b, s:o}",
            "networkInterfaceId", id, "subnetId", PQgetvalue(r, i, 1), "vpcId", PQgetvalue(r, i, 2),
            "availabilityZone", PQgetvalue(r, i, 3), "description", PQgetvalue(r, i, 4), "ownerId", account,
            "requesterManaged", 0, "status", PQgetisnull(r, i, 7) ? "available" : "in-use", "macAddress",
            PQgetvalue(r, i, 6), "privateIpAddress", PQgetvalue(r, i, 5), "privateIpAddressesSet", ip, "groupSet",
            json_loads(PQgetvalue(r, i, 11), 0, NULL), "interfaceType", "interface", "sourceDestCheck",
            PQgetvalue(r, i, 15)[0] == 't', "tagSet", net_tag_set(tags, id));
        if (assoc)
            json_object_set_new(it, "association", assoc);
        if (!PQgetisnull(r, i, 7))
            json_object_set_new(it, "attachment", json_pack(
                "{s:s, s:s, s:s, s:i, s:i, s:b, s:s}", "attachmentId", PQgetvalue(r, i, 14), "instanceId",
                PQgetvalue(r, i, 7), "status", "attached", "deviceIndex", atoi(PQgetvalue(r, i, 13)),
                "networkCardIndex", 0, "deleteOnTermination", PQgetvalue(r, i, 16)[0] == 't', "instanceOwnerId",
                account));
        json_array_append_new(items, it);
    }
    return items;
}

int net_create_network_interface(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    const char *account = net_account(ctx, e);
    if (!account || net_no_ipv6(body, e) < 0)
        return -1;
    const char *desc = json_str(body, "Description", "");
    if (strlen(desc) > 255)
        return verr_set(e, 400, "InvalidParameterValue", "Description is at most 255 characters");
    JSON_AUTO json_t *tags = describe_tag_spec(body, "network-interface", e);
    if (!tags || net_owned(service_db(ctx), &NET_SUBNET, json_str(body, "SubnetId", NULL), account, 0, e) < 0 ||
        net_dry_run(body, e) < 0)
        return -1;
    eni_spec_t s = {.account = account, .subnet_id = json_str(body, "SubnetId", NULL),
                    .private_ip = json_str(body, "PrivateIpAddress", NULL),
                    .groups = json_object_get(body, "SecurityGroupId"), .description = desc,
                    .client_token = json_str(body, "ClientToken", NULL), .tags = tags};
    char id[IDS_MAX];
    if (eni_create(ctx, &s, id, e) < 0)
        return -1;
    JSON_AUTO json_t *items = eni_items(service_db(ctx), account, id, e);
    if (!items)
        return -1;
    *reply = json_pack("{s:O}", "networkInterface", json_array_get(items, 0));
    if (s.client_token)
        json_object_set_new(*reply, "clientToken", json_string(s.client_token));
    return 0;
}

int net_describe_network_interfaces(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    static const describe_field_t fields[] = {
        {"network-interface-id", "networkInterfaceId"}, {"subnet-id", "subnetId"}, {"vpc-id", "vpcId"},
        {"availability-zone", "availabilityZone"}, {"description", "description"}, {"status", "status"},
        {"mac-address", "macAddress"}, {"private-ip-address", "privateIpAddress"}, {"owner-id", "ownerId"},
        {"group-id", "groupSet.groupId"}, {"attachment.instance-id", "attachment.instanceId"},
        {"attachment.attachment-id", "attachment.attachmentId"}, {"attachment.device-index", "attachment.deviceIndex"},
        {"association.public-ip", "association.publicIp"}, {NULL, NULL}};
    const char *account = net_account(ctx, e);
    if (!account)
        return -1;
    json_t *items = eni_items(service_db(ctx), account, NULL, e);
    if (!items)
        return -1;
    return net_describe(items, body, "NetworkInterfaceId", "networkInterfaceId",
                        "InvalidNetworkInterfaceID.NotFound", fields, 1, "networkInterfaceSet", reply, e);
}

/* eni_remove of an interface whose VPC and host (NULL: none) the caller has read. */
static int remove_at(db_t *db, const char *id, const char *vpc, const char *host, verr_t *e)
{
    const char *p[] = {id};
    PG_AUTO PGresult *d = NULL;
    /* an elastic IP on the interface stays the account's, unassociated; an
     * auto-assigned address goes with it */
    if (eni_detach_children(db, id, e) < 0 || eni_public_release(db, id, e) < 0 || eni_eip_unlink(db, id, e) < 0 ||
        hosts_touch_vpc(db, vpc, host, e) < 0 ||
        !(d = db_prepared(db, e, "eni_del", "DELETE FROM enis WHERE id = $1", 1, p)) || net_untag(db, id, e) < 0)
        return -1;
    return 0;
}

int eni_remove(db_t *db, const char *id, verr_t *e)
{
    const char *p[] = {id};
    PG_AUTO PGresult *r = db_prepared(db, e, "eni_where", "SELECT vpc_id, host FROM enis WHERE id = $1", 1, p);
    if (!r)
        return -1;
    if (!PQntuples(r))
        return 0;
    return remove_at(db, id, PQgetvalue(r, 0, 0), PQgetisnull(r, 0, 1) ? NULL : PQgetvalue(r, 0, 1), e);
}

int eni_delete(db_t *db, const char *account, const char *id, int force, long long *replied, verr_t *e)
{
    /* the row locked and read in one statement; account NULL (compute's port_delete):
     * whoever owns it. replied: the caller answers with the interface's new facts (gone,
     * at a new version), so the transaction is marked for the push not to be sent too */
    const char *p[] = {id, account, replied ? id : ""};
    PG_AUTO PGresult *r = NULL;
    if (db_begin(db, e) < 0 ||
        !(r = db_prepared(db, e, "eni_get", "SELECT instance_id, set_config('virga.facts_replied', $3, true), "
                          "CASE WHEN $3 <> '' THEN nextval('eni_facts_seq') END, vpc_id, host FROM enis WHERE id = $1 "
                          "AND ($2::text IS NULL OR account_id = $2) FOR UPDATE", 3, p)))
        goto fail;
    if (!PQntuples(r)) {
        if (!account || net_owned(db, &NET_ENI, id, account, 0, e) == 0)
            verr_set(e, 400, NET_ENI.not_found, "The network interface ID '%.64s' does not exist", id);
        goto fail;
    }
    if (!force && !PQgetisnull(r, 0, 0)) {
        verr_set(e, 400, "InvalidNetworkInterface.InUse", "Interface %s is currently in use by %s.", id,
                 PQgetvalue(r, 0, 0));
        goto fail;
    }
    if (remove_at(db, id, PQgetvalue(r, 0, 3), PQgetisnull(r, 0, 4) ? NULL : PQgetvalue(r, 0, 4), e) < 0 ||
        db_commit(db, e) < 0)
        goto fail;
    if (replied)
        *replied = atoll(PQgetvalue(r, 0, 2));
    return 0;
fail:
    db_rollback(db);
    return -1;
}

int net_delete_network_interface(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    const char *account = net_account(ctx, e), *id = json_str(body, "NetworkInterfaceId", NULL);
    if (!account || net_owned(service_db(ctx), &NET_ENI, id, account, 0, e) < 0 || net_dry_run(body, e) < 0 ||
        eni_delete(service_db(ctx), account, id, 0, NULL, e) < 0)
        return -1;
    *reply = json_pack("{s:b}", "return", 1);
    return 0;
}

/* network.addresses_free {account, addresses: [{subnet, ip}]} -> {}: RunInstances' own
 * refusal of a PrivateIpAddress that an interface holds already (InvalidIPAddress.InUse,
 * in EC2's words), asked by compute's handler before it records anything
 * (services/compute/launch_network.c). Read only, never cached by compute: the
 * launch_check answer compute keeps (ports.c) says the address is in the subnet, not
 * that it is free now. A launch that takes the address between this answer and its
 * port is still refused by the port's IPAM (ipam_private), at its task. Only compute may
 * ask (the route's sender mask); each subnet must be the account's. */
int net_addresses_free(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    db_t *db = service_db(ctx);
    const char *account = json_str(body, "account", NULL);
    const json_t *list = json_object_get(body, "addresses");
    if (!account || strlen(account) != 12 || !json_is_array(list) || json_array_size(list) > 16)
        return verr_set(e, 400, "InvalidParameterValue", "account (12 digits) and up to 16 addresses are required");
    size_t i;
    const json_t *a;
    json_array_foreach(list, i, a) {
        const char *subnet = json_str(a, "subnet", ""), *ip = json_str(a, "ip", "");
        uint32_t v;
        if (cidr_ip_parse(ip, &v) < 0)
            return verr_set(e, 400, "InvalidParameterValue", "Invalid IPv4 address: %.32s", ip);
        if (net_owned(db, &NET_SUBNET, subnet, account, 0, e) < 0)
            return -1;
        char holder[64];
        int taken = ipam_holder(db, subnet, ip, holder, e);
        if (taken)
            return taken < 0 ? -1 : verr_set(e, 400, "InvalidIPAddress.InUse", "Address %s is in use.", ip);
    }
    *reply = json_object();
    return 0;
}
