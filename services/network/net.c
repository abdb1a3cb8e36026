/* net.c - what the network service's handlers share: the caller, DryRun, ownership
 * checks, the Describe* pipeline and tags. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "caller.h"
#include "ids.h"
#include "jsonutil.h"
#include "network.h"
#include "tags.h"

const net_kind_t NET_VPC = {"vpcs", "vpc", "InvalidVpcID.NotFound", "vpc ID", "VPC"};
const net_kind_t NET_SUBNET = {"subnets", "subnet", "InvalidSubnetID.NotFound", "subnet ID", "subnet"};
const net_kind_t NET_SG = {"security_groups", "sg", "InvalidGroup.NotFound", "security group", "security group"};
const net_kind_t NET_ENI = {"enis", "eni", "InvalidNetworkInterfaceID.NotFound", "network interface ID", "network interface"};
const net_kind_t NET_IGW = {"internet_gateways", "igw", "InvalidInternetGatewayID.NotFound", "internet gateway ID",
                           "internet gateway"};
const net_kind_t NET_RTB = {"route_tables", "rtb", "InvalidRouteTableID.NotFound", "route table ID", "route table"};
/* the view of addresses without the auto-assigned ones (sql/011_public_addresses.sql) */
const net_kind_t NET_EIP = {"elastic_ips", "eipalloc", "InvalidAllocationID.NotFound", "allocation ID", "address"};

const char *net_account(bus_ctx_t *ctx, verr_t *e)
{
    return caller_account(ctx->msg->caller, e);
}

int net_dry_run(const json_t *body, verr_t *e)
{
    if (json_flag(body, "DryRun"))
        return verr_set(e, 412, "DryRunOperation", "Request would have succeeded, but DryRun flag is set.");
    return 0;
}

int net_token_mismatch(verr_t *e, const char *token)
{
    return verr_set(e, 400, "IdempotentParameterMismatch",
                    "The client token '%.64s' was already used for a request with other parameters", token);
}

int net_owned(db_t *db, const net_kind_t *k, const char *id, const char *account, int lock, verr_t *e)
{
    if (!id || !ids_valid(k->prefix, id))
        return verr_set(e, 400, k->not_found, "The %s '%.64s' does not exist", k->what, id ? id : "");
    char sql[160], name[64];
    snprintf(sql, sizeof sql, "SELECT 1 FROM %s WHERE id = $1 AND account_id = $2%s", k->table,
             lock ? " FOR UPDATE" : "");
    snprintf(name, sizeof name, "own_%s%s", k->table, lock ? "_l" : "");
    const char *p[] = {id, account};
    PG_AUTO PGresult *r = db_prepared(db, e, name, sql, 2, p);
    if (!r)
        return -1;
    if (PQntuples(r) == 0)
        return verr_set(e, 400, k->not_found, "The %s '%.64s' does not exist", k->what, id);
    return 0;
}

int net_describe(json_t *items, const json_t *body, const char *list, const char *id_field,
                 const char *not_found, const describe_field_t *fields, int page, const char *set_name,
                 json_t **reply, verr_t *e)
{
    const char *missing = NULL;
    JSON_AUTO json_t *all = items;
    JSON_AUTO json_t *listed = list ? describe_select(all, body, list, id_field, &missing) : json_incref(all);
    if (!listed)
        return verr_set(e, 400, not_found, "The ID '%.64s' does not exist", missing);
    JSON_AUTO json_t *kept = describe_filter(listed, json_object_get(body, "Filter"), fields, e);
    if (!kept)
        return -1;
    json_t *out = NULL, *next = NULL;
    if (!page) {
        out = json_incref(kept);
    } else if (describe_page(kept, body, id_field, 5, 1000, &out, &next, e) < 0) {
        return -1;
    }
    *reply = json_pack("{s:o}", set_name, out);
    if (next)
        json_object_set_new(*reply, "nextToken", next);
    return 0;
}

json_t *net_tags(db_t *db, const char *account, verr_t *e)
{
    return tags_load(db, account, e);
}

json_t *net_tag_set(const json_t *tags, const char *id)
{
    json_t *t = json_object_get(tags, id);
    return t ? json_incref(t) : json_array();
}

int net_untag(db_t *db, const char *id, verr_t *e)
{
    const char *p[] = {id};
    PG_AUTO PGresult *r = db_prepared(db, e, "net_untag", "DELETE FROM tags WHERE resource_id = $1", 1, p);
    return r ? 0 : -1;
}

int net_within_quota(db_t *db, const net_kind_t *k, const char *account, long long max, const char *code,
                     verr_t *e)
{
    char sql[128], name[48];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM %s WHERE account_id = $1", k->table);
    snprintf(name, sizeof name, "quota_%s", k->table);
    const char *p[] = {account};
    if (db_lock_xact(db, k->table, account, e) < 0)
        return -1;
    PG_AUTO PGresult *r = db_prepared(db, e, name, sql, 1, p);
    if (!r)
        return -1;
    if (atoll(PQgetvalue(r, 0, 0)) >= max)
        return verr_set(e, 400, code, "The maximum number of %ss (%lld) has been reached.", k->table_noun, max);
    return 0;
}

int net_delete_commit(db_t *db, const net_kind_t *k, const char *id, const json_t *body, json_t **reply, verr_t *e)
{
    char sql[96], name[48];
    snprintf(sql, sizeof sql, "DELETE FROM %s WHERE id = $1", k->table);
    snprintf(name, sizeof name, "del_%s", k->table);
    const char *p[] = {id};
    if (net_dry_run(body, e) < 0)
        return -1;
    PG_AUTO PGresult *r = db_prepared(db, e, name, sql, 1, p);
    if (!r || net_untag(db, id, e) < 0 || db_commit(db, e) < 0)
        return -1;
    *reply = json_pack("{s:b}", "return", 1);
    return 0;
}

int net_vpc_change_commit(db_t *db, const char *vpc_id, json_t **reply, verr_t *e)
{
    if (hosts_touch_vpc(db, vpc_id, NULL, e) < 0 || db_commit(db, e) < 0)
        return -1;
    *reply = json_pack("{s:b}", "return", 1);
    return 0;
}

int net_timeout_ms(bus_ctx_t *ctx)
{
    return (int)config_int(service_of(ctx)->cfg, "network.call_timeout_ms", 10000);
}

/* Every IPv6 parameter of the actions that take one: this cloud's VPCs are IPv4 only, so
 * each is refused by name rather than ignored (a tenant asking for IPv6 must not get a VPC
 * that silently has none). A flag set to false asks for nothing and passes. */
int net_no_ipv6(const json_t *body, verr_t *e)
{
    static const char *const params[] = {
        "AmazonProvidedIpv6CidrBlock", "Ipv6CidrBlock", "Ipv6Pool", "Ipv6IpamPoolId", "Ipv6NetmaskLength",
        "Ipv6CidrBlockNetworkBorderGroup", "Ipv6Native", "AssignIpv6AddressOnCreation", "EnableDns64",
        "EnableResourceNameDnsAAAARecordOnLaunch", "Ipv6AddressCount", "Ipv6Addresses", "Ipv6Prefix",
        "Ipv6PrefixCount", "EnablePrimaryIpv6",
    };
    for (size_t i = 0; i < sizeof params / sizeof params[0]; i++) {
        const json_t *v = json_object_get(body, params[i]);
        if (json_is_object(v))          /* ModifySubnetAttribute's {"Value": ...} */
            v = json_object_get(v, "Value");
        if (!v || json_is_false(v) || (json_is_string(v) && (!strcmp(json_string_value(v), "false") ||
                                                              !strcmp(json_string_value(v), "0"))))
            continue;
        return verr_set(e, 400, "InvalidParameterValue", "IPv6 is not supported by this cloud (%s): VPCs, subnets "
                        "and interfaces are IPv4 only", params[i]);
    }
    return 0;
}
