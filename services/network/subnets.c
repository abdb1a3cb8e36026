/* subnets.c - CreateSubnet, DescribeSubnets, DeleteSubnet, ModifySubnetAttribute
 * (MapPublicIpOnLaunch). A subnet lies inside its VPC's block and overlaps no other
 * subnet of the VPC: checked under the VPC's row lock, so two concurrent creates of
 * overlapping blocks cannot both pass. */
#include <stdlib.h>
#include <string.h>

#include "cidr.h"
#include "ids.h"
#include "jsonutil.h"
#include "network.h"
#include "tags.h"

/* The zones subnets may live in: the gateway's list (gateway.availability_zones,
 * default "<region>a"), so DescribeAvailabilityZones and subnets agree. */
int net_zones(service_t *svc, char out[][64], int max)
{
    char def[64];
    snprintf(def, sizeof def, "%sa", config_str(svc->cfg, "region", "us-east-1"));
    AUTOFREE char *list = xstrdup(config_str(svc->cfg, "gateway.availability_zones", def));
    char *save = NULL;
    int n = 0;
    for (char *z = strtok_r(list, ",", &save); z && n < max; z = strtok_r(NULL, ",", &save))
        snprintf(out[n++], 64, "%s", z);
    return n;
}

static int check_block(db_t *db, const char *vpc_id, const char *block, cidr_t *c, verr_t *e)
{
    const char *p[] = {vpc_id};
    PG_AUTO PGresult *v = db_prepared(db, e, "sn_vpc_cidr", "SELECT cidr FROM vpcs WHERE id = $1", 1, p);
    PG_AUTO PGresult *s = v ? db_prepared(db, e, "sn_siblings", "SELECT cidr, id FROM subnets WHERE vpc_id = $1", 1, p)
                            : NULL;
    if (!s)
        return -1;
    cidr_t vc;
    cidr_parse(PQgetvalue(v, 0, 0), &vc);
    if (c->len < 16 || c->len > 28 || !cidr_contains(&vc, c))
        return verr_set(e, 400, "InvalidSubnet.Range", "The CIDR '%s' is invalid: a subnet is a /16 to a /28 "
                        "inside its VPC's %s.", block, PQgetvalue(v, 0, 0));
    for (int i = 0; i < PQntuples(s); i++) {
        cidr_t o;
        if (cidr_parse(PQgetvalue(s, i, 0), &o) == 0 && cidr_overlaps(&o, c))
            return verr_set(e, 400, "InvalidSubnet.Conflict", "The CIDR '%s' conflicts with another subnet (%s)",
                            block, PQgetvalue(s, i, 1));
    }
    return 0;
}

int net_create_subnet(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    const char *account = net_account(ctx, e);
    const char *vpc = json_str(body, "VpcId", NULL), *block = json_str(body, "CidrBlock", NULL);
    if (!account || net_no_ipv6(body, e) < 0)
        return -1;
    if (!vpc || !block)
        return verr_set(e, 400, "MissingParameter", "The request must contain the parameters VpcId and CidrBlock");
    cidr_t c;
    if (cidr_parse(block, &c) < 0)
        return verr_set(e, 400, "InvalidParameterValue", "Value (%.64s) for parameter cidrBlock is invalid. "
                        "This is not a valid CIDR block.", block);
    char zones[16][64];
    int nz = net_zones(service_of(ctx), zones, 16);
    const char *az = json_str(body, "AvailabilityZone", zones[0]);
    int known = 0;
    for (int i = 0; i < nz; i++)
        known |= !strcmp(az, zones[i]);
    if (!known)
        return verr_set(e, 400, "InvalidParameterValue", "Value (%.64s) for parameter availabilityZone is invalid. "
                        "Subnets can currently only be created in the following availability zones: %s", az,
                        zones[0]);
    JSON_AUTO json_t *tags = describe_tag_spec(body, "subnet", e);
    if (!tags)
        return -1;
    db_t *db = service_db(ctx);
    char id[IDS_MAX];
    ids_new("subnet", id);
    const char *p[] = {id, account, vpc, block, az};
    PG_AUTO PGresult *r = NULL;
    if (db_begin(db, e) < 0 || net_owned(db, &NET_VPC, vpc, account, 1, e) < 0 ||
        check_block(db, vpc, block, &c, e) < 0 || net_dry_run(body, e) < 0 ||
        !(r = db_prepared(db, e, "sn_insert", "INSERT INTO subnets (id, account_id, vpc_id, cidr, az) "
                          "VALUES ($1, $2, $3, $4, $5)", 5, p)) ||
        tags_put(db, id, account, tags, e) < 0 || db_commit(db, e) < 0) {
        db_rollback(db);
        return -1;
    }
    *reply = json_pack("{s:{s:s, s:s, s:s, s:s, s:s, s:I, s:s, s:b, s:b, s:O}}", "subnet", "subnetId", id, "vpcId",
                       vpc, "ownerId", account, "state", "available", "cidrBlock", block, "availableIpAddressCount",
                       (json_int_t)(cidr_size(&c) - CIDR_RESERVED), "availabilityZone", az, "defaultForAz", 0,
                       "mapPublicIpOnLaunch", 0, "tagSet", tags);
    return 0;
}

int net_describe_subnets(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    static const describe_field_t fields[] = {
        {"subnet-id", "subnetId"}, {"vpc-id", "vpcId"}, {"cidr-block", "cidrBlock"}, {"cidr", "cidrBlock"},
        {"availability-zone", "availabilityZone"}, {"default-for-az", "defaultForAz"}, {"state", "state"},
        {"map-public-ip-on-launch", "mapPublicIpOnLaunch"}, {"owner-id", "ownerId"},
        {"available-ip-address-count", "availableIpAddressCount"}, {NULL, NULL}};
    const char *account = net_account(ctx, e);
    char def[IDS_MAX];
    if (!account || default_vpc(ctx, account, def, e) < 0)
        return -1;
    db_t *db = service_db(ctx);
    const char *p[] = {account};
    PG_AUTO PGresult *r = db_prepared(db, e, "sn_all",
        "SELECT s.id, s.vpc_id, s.cidr, s.az, s.is_default, s.map_public, "
        "(SELECT count(*) FROM enis n WHERE n.subnet_id = s.id) FROM subnets s WHERE s.account_id = $1 "
        "ORDER BY s.id", 1, p);
    JSON_AUTO json_t *tags = r ? net_tags(db, account, e) : NULL;
    if (!tags)
        return -1;
    json_t *items = json_array();
    for (int i = 0; i < PQntuples(r); i++) {
        cidr_t c;
        cidr_parse(PQgetvalue(r, i, 2), &c);
        const char *id = PQgetvalue(r, i, 0);
        json_array_append_new(items, json_pack(
            "{s:s, s:s, s:s, s:s, s:s, s:I, s:s, s:b, s:b, s:o}", "subnetId", id, "vpcId", PQgetvalue(r, i, 1),
            "ownerId", account, "state", "available", "cidrBlock", PQgetvalue(r, i, 2), "availableIpAddressCount",
            (json_int_t)(cidr_size(&c) - CIDR_RESERVED - atoll(PQgetvalue(r, i, 6))), "availabilityZone",
            PQgetvalue(r, i, 3), "defaultForAz", PQgetvalue(r, i, 4)[0] == 't', "mapPublicIpOnLaunch",
            PQgetvalue(r, i, 5)[0] == 't', "tagSet", net_tag_set(tags, id)));
    }
    return net_describe(items, body, "SubnetId", "subnetId", "InvalidSubnetID.NotFound", fields, 1, "subnetSet",
                        reply, e);
}

int net_delete_subnet(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    const char *account = net_account(ctx, e), *id = json_str(body, "SubnetId", NULL);
    if (!account)
        return -1;
    db_t *db = service_db(ctx);
    const char *p[] = {id};
    PG_AUTO PGresult *n = NULL;
    if (db_begin(db, e) < 0 || net_owned(db, &NET_SUBNET, id, account, 1, e) < 0 ||
        !(n = db_prepared(db, e, "sn_enis", "SELECT id FROM enis WHERE subnet_id = $1 LIMIT 1", 1, p)))
        goto fail;
    if (PQntuples(n)) {
        verr_set(e, 400, "DependencyViolation", "The subnet '%s' has dependencies and cannot be deleted "
                 "(network interface %s).", id, PQgetvalue(n, 0, 0));
        goto fail;
    }
    if (net_delete_commit(db, &NET_SUBNET, id, body, reply, e) < 0)
        goto fail;
    return 0;
fail:
    db_rollback(db);
    return -1;
}

int net_modify_subnet_attribute(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    const char *account = net_account(ctx, e), *id = json_str(body, "SubnetId", NULL);
    if (!account || net_no_ipv6(body, e) < 0)
        return -1;
    json_t *m = json_object_get(body, "MapPublicIpOnLaunch");
    if (!m || json_object_size(body) > 2 + !!json_object_get(body, "DryRun"))
        return verr_set(e, 400, "InvalidParameterCombination",
                        "Only MapPublicIpOnLaunch can be modified on a subnet here.");
    int on = -1;
    if (json_bool_strict(m, "Value", -1, &on) < 0 || on < 0)
        return verr_set(e, 400, "InvalidParameterValue", "MapPublicIpOnLaunch.Value must be true or false");
    const char *val = on ? "true" : "false";
    db_t *db = service_db(ctx);
    if (net_owned(db, &NET_SUBNET, id, account, 0, e) < 0 || net_dry_run(body, e) < 0)
        return -1;
    const char *p[] = {id, val};
    PG_AUTO PGresult *r = db_prepared(db, e, "sn_map_public", "UPDATE subnets SET map_public = $2 WHERE id = $1", 2, p);
    if (!r)
        return -1;
    *reply = json_pack("{s:b}", "return", 1);
    return 0;
}

int subnets_defaults_of(db_t *db, const char *vpc_id, json_t *out, verr_t *e)
{
    const char *p[] = {vpc_id};
    PG_AUTO PGresult *r = db_prepared(db, e, "subnet_defaults", "SELECT DISTINCT ON (az) az, id FROM subnets WHERE "
                                      "vpc_id = $1 AND is_default ORDER BY az, cidr", 1, p);
    if (!r)
        return -1;
    json_t *m = json_object();
    for (int i = 0; i < PQntuples(r); i++)
        json_object_set_new(m, PQgetvalue(r, i, 0), json_string(PQgetvalue(r, i, 1)));
    json_object_set_new(out, "default_subnets", m);
    return 0;
}
