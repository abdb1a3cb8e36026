/* internet_gateways.c - CreateInternetGateway, AttachInternetGateway,
 * DetachInternetGateway, DeleteInternetGateway, DescribeInternetGateways. A gateway is
 * attached to at most one VPC, a VPC has at most one (UNIQUE vpc_id); routes through it
 * live in route tables (route_tables.c). A VPC whose interfaces have elastic IPs cannot
 * lose its gateway, as on AWS. */
#include <stdio.h>
#include <string.h>

#include "ids.h"
#include "jsonutil.h"
#include "network.h"
#include "routing.h"
#include "tags.h"

int net_create_internet_gateway(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    const char *account = net_account(ctx, e);
    if (!account)
        return -1;
    JSON_AUTO json_t *tags = describe_tag_spec(body, "internet-gateway", e);
    if (!tags || net_dry_run(body, e) < 0)
        return -1;
    db_t *db = service_db(ctx);
    char id[IDS_MAX];
    ids_new("igw", id);
    const char *p[] = {id, account};
    PG_AUTO PGresult *r = NULL;
    if (db_begin(db, e) < 0 ||
        !(r = db_prepared(db, e, "igw_insert", "INSERT INTO internet_gateways (id, account_id) VALUES ($1, $2)", 2, p)) ||
        tags_put(db, id, account, tags, e) < 0 || db_commit(db, e) < 0) {
        db_rollback(db);
        return -1;
    }
    *reply = json_pack("{s:{s:s, s:s, s:[], s:O}}", "internetGateway", "internetGatewayId", id, "ownerId", account,
                       "attachmentSet", "tagSet", tags);
    return 0;
}

int routing_default_internet(db_t *db, const char *account, const char *vpc_id, const char *rtb, verr_t *e)
{
    char id[IDS_MAX];
    ids_new("igw", id);
    const char *p[] = {id, account, vpc_id};
    const char *q[] = {rtb, id};
    PG_AUTO PGresult *g = db_prepared(db, e, "igw_default", "INSERT INTO internet_gateways (id, account_id, vpc_id) "
                                      "VALUES ($1, $2, $3)", 3, p);
    PG_AUTO PGresult *r = g ? db_prepared(db, e, "igw_default_route", "INSERT INTO routes (route_table_id, destination, "
                                          "target) VALUES ($1, '0.0.0.0/0', $2)", 2, q) : NULL;
    return r ? 0 : -1;
}

/* The gateway's current VPC (empty when detached), with its row locked. */
static int lock_gateway(db_t *db, const char *id, const char *account, char *vpc, verr_t *e)
{
    if (net_owned(db, &NET_IGW, id, account, 1, e) < 0)
        return -1;
    const char *p[] = {id};
    PG_AUTO PGresult *r = db_prepared(db, e, "igw_vpc", "SELECT coalesce(vpc_id, '') FROM internet_gateways WHERE id = $1",
                                      1, p);
    if (!r)
        return -1;
    snprintf(vpc, IDS_MAX, "%s", PQgetvalue(r, 0, 0));
    return 0;
}

int net_attach_internet_gateway(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    const char *account = net_account(ctx, e);
    const char *id = json_str(body, "InternetGatewayId", NULL), *vpc = json_str(body, "VpcId", NULL);
    if (!account)
        return -1;
    db_t *db = service_db(ctx);
    char cur[IDS_MAX];
    const char *p[] = {id, vpc};
    PG_AUTO PGresult *other = NULL;
    PG_AUTO PGresult *u = NULL;
    if (db_begin(db, e) < 0 || lock_gateway(db, id, account, cur, e) < 0 ||
        net_owned(db, &NET_VPC, vpc, account, 1, e) < 0 ||
        !(other = db_prepared(db, e, "igw_of_vpc", "SELECT id FROM internet_gateways WHERE vpc_id = $2 AND id <> $1",
                              2, p)))
        goto fail;
    if (*cur) {
        verr_set(e, 400, "Resource.AlreadyAssociated", "resource %s is already attached to network %s", id, cur);
        goto fail;
    }
    if (PQntuples(other)) {
        verr_set(e, 400, "Resource.AlreadyAssociated", "network %s already has an internet gateway attached (%s)",
                 vpc, PQgetvalue(other, 0, 0));
        goto fail;
    }
    if (net_dry_run(body, e) < 0 ||
        !(u = db_prepared(db, e, "igw_attach", "UPDATE internet_gateways SET vpc_id = $2 WHERE id = $1", 2, p)) ||
        net_vpc_change_commit(db, vpc, reply, e) < 0)
        goto fail;
    return 0;
fail:
    db_rollback(db);
    return -1;
}

int net_detach_internet_gateway(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    const char *account = net_account(ctx, e);
    const char *id = json_str(body, "InternetGatewayId", NULL), *vpc = json_str(body, "VpcId", NULL);
    if (!account)
        return -1;
    db_t *db = service_db(ctx);
    char cur[IDS_MAX];
    const char *p[] = {id, vpc ? vpc : ""};
    PG_AUTO PGresult *mapped = NULL;
    PG_AUTO PGresult *u = NULL;
    if (db_begin(db, e) < 0 || lock_gateway(db, id, account, cur, e) < 0)
        goto fail;
    if (!vpc || strcmp(cur, vpc)) {
        verr_set(e, 400, "Gateway.NotAttached", "resource %s is not attached to network %.64s", id, vpc ? vpc : "");
        goto fail;
    }
    if (!(mapped = db_prepared(db, e, "igw_mapped", "SELECT host(a.public_ip) FROM addresses a JOIN enis n ON "
                               "n.id = a.eni_id WHERE n.vpc_id = $1 LIMIT 1", 1, p + 1)))
        goto fail;
    if (PQntuples(mapped)) {
        verr_set(e, 400, "DependencyViolation", "Network %s has some mapped public address(es) (%s). Please unmap those "
                 "public address(es) before detaching the gateway.", vpc, PQgetvalue(mapped, 0, 0));
        goto fail;
    }
    if (net_dry_run(body, e) < 0 ||
        !(u = db_prepared(db, e, "igw_detach", "UPDATE internet_gateways SET vpc_id = NULL WHERE id = $1", 1, p)) ||
        net_vpc_change_commit(db, vpc, reply, e) < 0)
        goto fail;
    return 0;
fail:
    db_rollback(db);
    return -1;
}

int net_delete_internet_gateway(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    const char *account = net_account(ctx, e), *id = json_str(body, "InternetGatewayId", NULL);
    if (!account)
        return -1;
    db_t *db = service_db(ctx);
    char cur[IDS_MAX];
    if (db_begin(db, e) < 0 || lock_gateway(db, id, account, cur, e) < 0)
        goto fail;
    if (*cur) {
        verr_set(e, 400, "DependencyViolation", "The internetGateway '%s' has dependencies and cannot be deleted "
                 "(attached to %s).", id, cur);
        goto fail;
    }
    if (net_delete_commit(db, &NET_IGW, id, body, reply, e) < 0)
        goto fail;
    return 0;
fail:
    db_rollback(db);
    return -1;
}

int net_describe_internet_gateways(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    static const describe_field_t fields[] = {
        {"internet-gateway-id", "internetGatewayId"}, {"attachment.vpc-id", "attachmentSet.vpcId"},
        {"attachment.state", "attachmentSet.state"}, {"owner-id", "ownerId"}, {NULL, NULL}};
    const char *account = net_account(ctx, e);
    char def[IDS_MAX];
    if (!account || default_vpc(ctx, account, def, e) < 0)
        return -1;
    db_t *db = service_db(ctx);
    const char *p[] = {account};
    PG_AUTO PGresult *r = db_prepared(db, e, "igw_all", "SELECT id, vpc_id FROM internet_gateways WHERE account_id = $1 "
                                      "ORDER BY id", 1, p);
    JSON_AUTO json_t *tags = r ? net_tags(db, account, e) : NULL;
    if (!tags)
        return -1;
    json_t *items = json_array();
    for (int i = 0; i < PQntuples(r); i++) {
        const char *id = PQgetvalue(r, i, 0);
        json_t *att = PQgetisnull(r, i, 1) ? json_array()
            : json_pack("[{s:s, s:s}]", "vpcId", PQgetvalue(r, i, 1), "state", "available");
        json_array_append_new(items, json_pack("{s:s, s:s, s:o, s:o}", "internetGatewayId", id, "ownerId", account,
                                               "attachmentSet", att, "tagSet", net_tag_set(tags, id)));
    }
    return net_describe(items, body, "InternetGatewayId", "internetGatewayId", "InvalidInternetGatewayID.NotFound",
                        fields, 1, "internetGatewaySet", reply, e);
}
