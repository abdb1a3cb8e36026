/* vpcs.c - CreateVpc, DescribeVpcs, DeleteVpc, ModifyVpcAttribute,
 * DescribeVpcAttribute. A VPC gets a VNI (unique cloud-wide, the datapath's segment id)
 * and, as on AWS, a security group named "default". The account's `vpcs` quota
 * (identity; 5 when identity has none) is counted under the account's lock. */
#include <stdlib.h>
#include <string.h>

#include "cidr.h"
#include "ids.h"
#include "jsonutil.h"
#include "network.h"
#include "quota.h"
#include "routing.h"
#include "strbuf.h"
#include "tags.h"

int net_create_vpc(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    const char *account = net_account(ctx, e);
    if (!account || net_no_ipv6(body, e) < 0)
        return -1;
    const char *block = json_str(body, "CidrBlock", NULL);
    cidr_t c;
    if (!block)
        return verr_set(e, 400, "MissingParameter", "The request must contain the parameter CidrBlock");
    if (cidr_parse(block, &c) < 0)
        return verr_set(e, 400, "InvalidParameterValue", "Value (%.64s) for parameter cidrBlock is invalid. "
                        "This is not a valid CIDR block.", block);
    if (c.len < 16 || c.len > 28)
        return verr_set(e, 400, "InvalidVpc.Range", "The CIDR '%s' is invalid: a VPC is a /16 to a /28.", block);
    JSON_AUTO json_t *tags = describe_tag_spec(body, "vpc", e);
    if (!tags || net_dry_run(body, e) < 0)
        return -1;
    long long max;
    if (quota_ask(ctx, account, "vpcs", 5, net_timeout_ms(ctx), &max, e) < 0)   /* before any write */
        return -1;
    db_t *db = service_db(ctx);
    char id[IDS_MAX], sg[IDS_MAX];
    ids_new("vpc", id);
    const char *p[] = {id, account, block};
    PG_AUTO PGresult *r = NULL;
    if (db_begin(db, e) < 0 || net_within_quota(db, &NET_VPC, account, max, "VpcLimitExceeded", e) < 0 ||
        !(r = db_prepared(db, e, "vpc_insert", "INSERT INTO vpcs (id, account_id, cidr) VALUES ($1, $2, $3)", 3, p)) ||
        default_group_create(db, account, id, sg, e) < 0 || routing_vpc_created(db, account, id, block, NULL, e) < 0 ||
        tags_put(db, id, account, tags, e) < 0 ||
        db_commit(db, e) < 0)
        goto fail;
    *reply = json_pack("{s:{s:s, s:s, s:s, s:s, s:s, s:b, s:O}}", "vpc", "vpcId", id, "ownerId", account, "state",
                       "available", "cidrBlock", block, "instanceTenancy", "default", "isDefault", 0, "tagSet", tags);
    return 0;
fail:
    db_rollback(db);
    return -1;
}

static json_t *vpc_items(db_t *db, const char *account, verr_t *e)
{
    const char *p[] = {account};
    PG_AUTO PGresult *r = db_prepared(db, e, "vpc_all", "SELECT id, cidr, is_default FROM vpcs WHERE account_id = $1 "
                                      "ORDER BY id", 1, p);
    JSON_AUTO json_t *tags = r ? net_tags(db, account, e) : NULL;
    if (!tags)
        return NULL;
    json_t *items = json_array();
    for (int i = 0; i < PQntuples(r); i++) {
        const char *id = PQgetvalue(r, i, 0), *cidr = PQgetvalue(r, i, 1);
        char assoc[IDS_MAX + 16];
        snprintf(assoc, sizeof assoc, "vpc-cidr-assoc-%s", id + 4);
        json_array_append_new(items, json_pack(
            "{s:s, s:s, s:s, s:s, s:s, s:s, s:b, s:[{s:s, s:s, s:{s:s}}], s:o}", "vpcId", id, "ownerId", account,
            "state", "available", "cidrBlock", cidr, "dhcpOptionsId", "default", "instanceTenancy", "default",
            "isDefault", PQgetvalue(r, i, 2)[0] == 't', "cidrBlockAssociationSet", "associationId", assoc, "cidrBlock",
            cidr, "cidrBlockState", "state", "associated", "tagSet", net_tag_set(tags, id)));
    }
    return items;
}

int net_describe_vpcs(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    static const describe_field_t fields[] = {
        {"vpc-id", "vpcId"}, {"cidr", "cidrBlock"}, {"cidr-block-association.cidr-block", "cidrBlock"},
        {"is-default", "isDefault"}, {"state", "state"}, {"owner-id", "ownerId"},
        {"dhcp-options-id", "dhcpOptionsId"}, {NULL, NULL}};
    const char *account = net_account(ctx, e);
    char def[IDS_MAX];
    if (!account || default_vpc(ctx, account, def, e) < 0)
        return -1;
    json_t *items = vpc_items(service_db(ctx), account, e);
    if (!items)
        return -1;
    return net_describe(items, body, "VpcId", "vpcId", "InvalidVpcID.NotFound", fields, 1, "vpcSet", reply, e);
}

/* What keeps a VPC alive: EC2 answers DependencyViolation while any remains. */
static const char *const vpc_dependents[] = {
    "SELECT 'subnet ' || id FROM subnets WHERE vpc_id = $1",
    "SELECT 'network interface ' || id FROM enis WHERE vpc_id = $1",
    "SELECT 'security group ' || id FROM security_groups WHERE vpc_id = $1 AND name <> 'default'",
};

int net_delete_vpc(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    const char *account = net_account(ctx, e), *id = json_str(body, "VpcId", NULL);
    if (!account)
        return -1;
    db_t *db = service_db(ctx);
    PG_AUTO PGresult *g = NULL;
    PG_AUTO PGresult *d = NULL;
    if (db_begin(db, e) < 0 || net_owned(db, &NET_VPC, id, account, 1, e) < 0)
        goto fail;
    const char *p[] = {id};
    for (size_t i = 0; i < ARRAY_LEN(vpc_dependents); i++) {
        char name[32];
        snprintf(name, sizeof name, "vpc_dep_%zu", i);
        PG_AUTO PGresult *r = db_prepared(db, e, name, vpc_dependents[i], 1, p);
        if (!r)
            goto fail;
        if (PQntuples(r)) {
            verr_set(e, 400, "DependencyViolation", "The vpc '%s' has dependencies and cannot be deleted (%s).", id,
                     PQgetvalue(r, 0, 0));
            goto fail;
        }
    }
    if (routing_vpc_deleting(db, id, e) < 0 || net_dry_run(body, e) < 0)
        goto fail;
    g = db_prepared(db, e, "vpc_del_sg", "DELETE FROM security_groups WHERE vpc_id = $1 "
                                      "RETURNING id", 1, p);
    if (!g)
        goto fail;
    for (int i = 0; i < PQntuples(g); i++)
        if (net_untag(db, PQgetvalue(g, i, 0), e) < 0)
            goto fail;
    d = db_prepared(db, e, "vpc_del", "DELETE FROM vpcs WHERE id = $1", 1, p);
    if (!d || net_untag(db, id, e) < 0 || db_commit(db, e) < 0)
        goto fail;
    *reply = json_pack("{s:b}", "return", 1);
    return 0;
fail:
    db_rollback(db);
    return -1;
}

/* The VPC attributes EC2 lets a tenant set: which column and the response's name. */
static const struct {
    const char *param, *column, *response;
} vpc_attrs[] = {
    {"EnableDnsSupport", "dns_support", "enableDnsSupport"},
    {"EnableDnsHostnames", "dns_hostnames", "enableDnsHostnames"},
};

int net_modify_vpc_attribute(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    const char *account = net_account(ctx, e), *id = json_str(body, "VpcId", NULL);
    if (!account)
        return -1;
    db_t *db = service_db(ctx);
    int found = 0;
    for (size_t i = 0; i < ARRAY_LEN(vpc_attrs); i++)
        found += json_object_get(body, vpc_attrs[i].param) != NULL;
    if (found != 1)
        return verr_set(e, 400, "InvalidParameterCombination",
                        "Exactly one of EnableDnsSupport and EnableDnsHostnames is required.");
    if (net_owned(db, &NET_VPC, id, account, 0, e) < 0 || net_dry_run(body, e) < 0)
        return -1;
    for (size_t i = 0; i < ARRAY_LEN(vpc_attrs); i++) {
        json_t *v = json_object_get(body, vpc_attrs[i].param);
        if (!v)
            continue;
        int on = -1;
        if (json_bool_strict(v, "Value", -1, &on) < 0 || on < 0)
            return verr_set(e, 400, "InvalidParameterValue", "%s.Value must be true or false", vpc_attrs[i].param);
        const char *val = on ? "true" : "false";
        char sql[128], name[40];
        snprintf(sql, sizeof sql, "UPDATE vpcs SET %s = $2 WHERE id = $1", vpc_attrs[i].column);
        snprintf(name, sizeof name, "vpc_set_%zu", i);
        const char *p[] = {id, val};
        PG_AUTO PGresult *r = db_prepared(db, e, name, sql, 2, p);
        if (!r)
            return -1;
    }
    *reply = json_pack("{s:b}", "return", 1);
    return 0;
}

int net_describe_vpc_attribute(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    const char *account = net_account(ctx, e), *id = json_str(body, "VpcId", NULL);
    const char *attr = json_str(body, "Attribute", "");
    if (!account)
        return -1;
    db_t *db = service_db(ctx);
    for (size_t i = 0; i < ARRAY_LEN(vpc_attrs); i++) {
        if (strcmp(attr, vpc_attrs[i].response))
            continue;
        if (net_owned(db, &NET_VPC, id, account, 0, e) < 0)
            return -1;
        char sql[128], name[40];
        snprintf(sql, sizeof sql, "SELECT %s FROM vpcs WHERE id = $1", vpc_attrs[i].column);
        snprintf(name, sizeof name, "vpc_get_%zu", i);
        const char *p[] = {id};
        PG_AUTO PGresult *r = db_prepared(db, e, name, sql, 1, p);
        if (!r)
            return -1;
        *reply = json_pack("{s:s, s:{s:b}}", "vpcId", id, vpc_attrs[i].response, "value",
                           PQgetvalue(r, 0, 0)[0] == 't');
        return 0;
    }
    return verr_set(e, 400, "InvalidParameterValue", "Value (%.64s) for parameter attribute is invalid: "
                    "enableDnsSupport or enableDnsHostnames", attr);
}

#define VPCS_EXIST_MAX 256

/* network.vpcs_exist {"vpc_ids": [...]} -> {"vpc_ids": [those that exist]} (a host's
 * agent): an agent keeps a VPC's datapath a while after its last interface there went
 * (agent.datapath_vpc_idle_teardown_s), for the next launch into it, and asks this on its
 * tick so that a deleted VPC's bridge, router and DHCP go then, not at the grace's end.
 * Ids only: nothing of a tenant's but whether the id still exists. */
int net_vpcs_exist(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    const json_t *ids = json_object_get(body, "vpc_ids"), *v;
    size_t i;
    if (!json_is_array(ids) || json_array_size(ids) > VPCS_EXIST_MAX)
        return verr_set(e, 400, "InvalidParameterValue", "vpc_ids must be an array of at most %d VPC ids",
                        VPCS_EXIST_MAX);
    strbuf_t list = {0};
    strbuf_putc(&list, '{');
    json_array_foreach(ids, i, v) {
        const char *id = json_string_value(v);
        if (!id || !ids_valid("vpc", id)) {
            free(list.s);
            return verr_set(e, 400, "InvalidParameterValue", "vpc_ids: '%.64s' is not a VPC id", id ? id : "?");
        }
        strbuf_printf(&list, "%s%s", i ? "," : "", id);     /* ids are [a-z0-9-]: no quoting needed */
    }
    strbuf_putc(&list, '}');
    const char *p[] = {list.s};
    PG_AUTO PGresult *r = db_prepared(service_db(ctx), e, "vpcs_exist", "SELECT id FROM vpcs WHERE id = ANY($1::text[])",
                                      1, p);
    free(list.s);
    if (!r)
        return -1;
    json_t *out = json_array();
    for (int k = 0; k < PQntuples(r); k++)
        json_array_append_new(out, json_string(PQgetvalue(r, k, 0)));
    *reply = json_pack("{s:o}", "vpc_ids", out);
    return 0;
}
