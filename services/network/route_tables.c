/* route_tables.c - CreateRouteTable, DeleteRouteTable, CreateRoute, DeleteRoute,
 * AssociateRouteTable, DisassociateRouteTable, DescribeRouteTables. Every VPC has a main
 * table with its local route (made with the VPC); a subnet uses the table it is
 * associated with, else the main one. The routes themselves: routes.c. Changes reach
 * the datapath generation of the hosts running the VPC. CreateRouteTable honours a
 * ClientToken (route_table_tokens). */
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "cidr.h"
#include "ids.h"
#include "jsonutil.h"
#include "network.h"
#include "routing.h"
#include "tags.h"

static int insert_table(db_t *db, const char *account, const char *vpc, const char *cidr, int main, char *id,
                        verr_t *e)
{
    ids_new("rtb", id);
    const char *p[] = {id, account, vpc, main ? "t" : "f"};
    PG_AUTO PGresult *t = db_prepared(db, e, "rtb_insert", "INSERT INTO route_tables (id, account_id, vpc_id, is_main) "
                                      "VALUES ($1, $2, $3, $4)", 4, p);
    const char *q[] = {id, cidr};
    PG_AUTO PGresult *r = t ? db_prepared(db, e, "rtb_local", "INSERT INTO routes (route_table_id, destination, target, "
                                          "origin) VALUES ($1, $2, 'local', 'CreateRouteTable')", 2, q) : NULL;
    return r ? 0 : -1;
}

int routing_vpc_created(db_t *db, const char *account, const char *vpc_id, const char *cidr, char *rtb, verr_t *e)
{
    char id[IDS_MAX];
    if (insert_table(db, account, vpc_id, cidr, 1, id, e) < 0)
        return -1;
    if (rtb)
        snprintf(rtb, IDS_MAX, "%s", id);
    return 0;
}

int routing_vpc_deleting(db_t *db, const char *vpc_id, verr_t *e)
{
    const char *p[] = {vpc_id};
    PG_AUTO PGresult *g = db_prepared(db, e, "rt_vpc_igw", "SELECT id FROM internet_gateways WHERE vpc_id = $1", 1, p);
    PG_AUTO PGresult *t = g ? db_prepared(db, e, "rt_vpc_rtb", "SELECT id FROM route_tables WHERE vpc_id = $1 AND "
                                          "NOT is_main", 1, p) : NULL;
    if (!t)
        return -1;
    if (PQntuples(g) || PQntuples(t))
        return verr_set(e, 400, "DependencyViolation", "The vpc '%s' has dependencies and cannot be deleted (%s).",
                        vpc_id, PQntuples(g) ? PQgetvalue(g, 0, 0) : PQgetvalue(t, 0, 0));
    PG_AUTO PGresult *d = db_prepared(db, e, "rt_vpc_main_del", "DELETE FROM route_tables WHERE vpc_id = $1 "
                                      "RETURNING id", 1, p);
    if (!d)
        return -1;
    for (int i = 0; i < PQntuples(d); i++)
        if (net_untag(db, PQgetvalue(d, i, 0), e) < 0)
            return -1;
    return 0;
}

/* The table's VPC (the caller's account's, row locked). */
int routing_lock_table(db_t *db, const char *id, const char *account, char *vpc, int *is_main, verr_t *e)
{
    if (net_owned(db, &NET_RTB, id, account, 1, e) < 0)
        return -1;
    const char *p[] = {id};
    PG_AUTO PGresult *r = db_prepared(db, e, "rtb_vpc", "SELECT vpc_id, is_main FROM route_tables WHERE id = $1", 1, p);
    if (!r)
        return -1;
    snprintf(vpc, IDS_MAX, "%s", PQgetvalue(r, 0, 0));
    if (is_main)
        *is_main = PQgetvalue(r, 0, 1)[0] == 't';
    return 0;
}

/* The request's parameters but its token, in one canonical form: what a retry with the
 * same ClientToken must repeat. */
static void token_request_hash(const json_t *body, char out[65])
{
    JSON_AUTO json_t *rest = json_deep_copy(body);
    json_object_del(rest, "ClientToken");
    json_object_del(rest, "DryRun");
    AUTOFREE char *canon = json_dumps(rest, JSON_SORT_KEYS | JSON_COMPACT);
    unsigned char h[32];
    crypto_generichash(h, sizeof h, (const unsigned char *)canon, strlen(canon), NULL, 0);
    sodium_bin2hex(out, 65, h, sizeof h);
}

/* 1 with the first answer to this token, 0 when there is none, -1 (a token used before
 * with other parameters is IdempotentParameterMismatch). */
static int token_answer(db_t *db, const char *account, const char *token, const char *hash, json_t **reply,
                        verr_t *e)
{
    const char *p[] = {account, token};
    PG_AUTO PGresult *r = db_prepared(db, e, "rtb_token", "SELECT request_hash, reply::text FROM route_table_tokens "
                                      "WHERE account_id = $1 AND client_token = $2", 2, p);
    if (!r)
        return -1;
    if (!PQntuples(r))
        return 0;
    if (strcmp(PQgetvalue(r, 0, 0), hash))
        return net_token_mismatch(e, token);
    *reply = json_loads(PQgetvalue(r, 0, 1), 0, NULL);
    return *reply ? 1 : verr_set(e, 500, "InternalError", "a stored answer does not parse");
}

int net_create_route_table(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    const char *account = net_account(ctx, e), *vpc = json_str(body, "VpcId", NULL);
    const char *token = json_str(body, "ClientToken", NULL);
    if (!account)
        return -1;
    if (token && (!*token || strlen(token) > 64))
        return verr_set(e, 400, "InvalidParameterValue", "ClientToken must have 1 to 64 characters");
    JSON_AUTO json_t *tags = describe_tag_spec(body, "route-table", e);
    if (!tags)
        return -1;
    db_t *db = service_db(ctx);
    char id[IDS_MAX], hash[65];
    token_request_hash(body, hash);
    if (token) {
        int found = token_answer(db, account, token, hash, reply, e);
        if (found)
            return found < 0 ? -1 : 0;
    }
    const char *p[] = {vpc};
    PG_AUTO PGresult *c = NULL;
    PG_AUTO PGresult *t = NULL;
    if (db_begin(db, e) < 0 || net_owned(db, &NET_VPC, vpc, account, 1, e) < 0 || net_dry_run(body, e) < 0 ||
        !(c = db_prepared(db, e, "rtb_vpc_cidr", "SELECT cidr::text FROM vpcs WHERE id = $1", 1, p)) ||
        insert_table(db, account, vpc, PQgetvalue(c, 0, 0), 0, id, e) < 0 || tags_put(db, id, account, tags, e) < 0)
        goto fail;
    *reply = json_pack("{s:{s:s, s:s, s:s, s:[{s:s, s:s, s:s, s:s}], s:[], s:[], s:O}}", "routeTable", "routeTableId",
                       id, "vpcId", vpc, "ownerId", account, "routeSet", "destinationCidrBlock", PQgetvalue(c, 0, 0),
                       "gatewayId", "local", "state", "active", "origin", "CreateRouteTable", "associationSet",
                       "propagatingVgwSet", "tagSet", tags);
    if (token) {
        json_object_set_new(*reply, "clientToken", json_string(token));
        AUTOFREE char *text = json_dumps(*reply, JSON_COMPACT);
        const char *q[] = {account, token, hash, id, text};
        if (!(t = db_prepared(db, e, "rtb_token_put", "INSERT INTO route_table_tokens (account_id, client_token, "
                              "request_hash, route_table_id, reply) VALUES ($1, $2, $3, $4, $5::jsonb)", 5, q)))
            goto fail;
    }
    if (db_commit(db, e) < 0)
        goto fail;
    return 0;
fail:
    db_rollback(db);
    json_decref(*reply);
    *reply = NULL;
    /* a concurrent retry with the same token made the table first: its answer is ours */
    if (token && !strcmp(db_last_sqlstate(db), "23505")) {
        verr_t e2 = {0};
        int found = token_answer(db, account, token, hash, reply, &e2);
        if (found == 1)
            return 0;
        if (found < 0)
            *e = e2;
    }
    return -1;
}

int net_delete_route_table(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    const char *account = net_account(ctx, e), *id = json_str(body, "RouteTableId", NULL);
    if (!account)
        return -1;
    db_t *db = service_db(ctx);
    char vpc[IDS_MAX];
    int is_main = 0;
    const char *p[] = {id};
    PG_AUTO PGresult *a = NULL;
    if (db_begin(db, e) < 0 || routing_lock_table(db, id, account, vpc, &is_main, e) < 0 ||
        !(a = db_prepared(db, e, "rtb_assocs", "SELECT id FROM route_table_assocs WHERE route_table_id = $1 LIMIT 1", 1,
                          p)))
        goto fail;
    if (is_main || PQntuples(a)) {
        verr_set(e, 400, "DependencyViolation", "The routeTable '%s' has dependencies and cannot be deleted (%s).", id,
                 is_main ? "the VPC's main route table" : PQgetvalue(a, 0, 0));
        goto fail;
    }
    if (net_delete_commit(db, &NET_RTB, id, body, reply, e) < 0)
        goto fail;
    return 0;
fail:
    db_rollback(db);
    return -1;
}

int net_associate_route_table(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    const char *account = net_account(ctx, e), *id = json_str(body, "RouteTableId", NULL);
    const char *subnet = json_str(body, "SubnetId", NULL);
    if (!account)
        return -1;
    if (!subnet)
        return verr_set(e, 400, "MissingParameter", "The request must contain the parameter SubnetId (gateway "
                        "associations are not supported)");
    db_t *db = service_db(ctx);
    char vpc[IDS_MAX], assoc[IDS_MAX];
    ids_new("rtbassoc", assoc);
    const char *p[] = {assoc, id, subnet};
    PG_AUTO PGresult *s = NULL;
    PG_AUTO PGresult *r = NULL;
    if (db_begin(db, e) < 0 || routing_lock_table(db, id, account, vpc, NULL, e) < 0 ||
        net_owned(db, &NET_SUBNET, subnet, account, 1, e) < 0 ||
        !(s = db_prepared(db, e, "rta_subnet_vpc", "SELECT vpc_id FROM subnets WHERE id = $1", 1, p + 2)))
        goto fail;
    if (strcmp(PQgetvalue(s, 0, 0), vpc)) {
        verr_set(e, 400, "InvalidParameterValue", "route table %s and subnet %s belong to different networks", id, subnet);
        goto fail;
    }
    if (net_dry_run(body, e) < 0 ||
        !(r = db_prepared(db, e, "rta_insert", "INSERT INTO route_table_assocs (id, route_table_id, subnet_id) "
                          "VALUES ($1, $2, $3) ON CONFLICT (subnet_id) DO NOTHING", 3, p)))
        goto fail;
    if (strcmp(PQcmdTuples(r), "1")) {
        verr_set(e, 400, "Resource.AlreadyAssociated", "the specified association for route table %s conflicts with an "
                 "existing association of subnet %s", id, subnet);
        goto fail;
    }
    if (hosts_touch_vpc(db, vpc, NULL, e) < 0 || db_commit(db, e) < 0)
        goto fail;
    *reply = json_pack("{s:s, s:{s:s}}", "associationId", assoc, "associationState", "state", "associated");
    return 0;
fail:
    db_rollback(db);
    return -1;
}

int net_disassociate_route_table(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    const char *account = net_account(ctx, e), *assoc = json_str(body, "AssociationId", "");
    if (!account)
        return -1;
    db_t *db = service_db(ctx);
    const char *p[] = {assoc, account};
    PG_AUTO PGresult *r = NULL;
    if (db_begin(db, e) < 0 ||
        !(r = db_prepared(db, e, "rta_del", "DELETE FROM route_table_assocs a USING route_tables t WHERE a.id = $1 AND "
                          "t.id = a.route_table_id AND t.account_id = $2 RETURNING t.vpc_id", 2, p)))
        goto fail;
    if (!PQntuples(r)) {
        verr_set(e, 400, "InvalidAssociationID.NotFound", "The association ID '%.64s' does not exist", assoc);
        goto fail;
    }
    if (net_dry_run(body, e) < 0 || net_vpc_change_commit(db, PQgetvalue(r, 0, 0), reply, e) < 0)
        goto fail;
    return 0;
fail:
    db_rollback(db);
    return -1;
}

int net_describe_route_tables(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    static const describe_field_t fields[] = {
        {"route-table-id", "routeTableId"}, {"vpc-id", "vpcId"}, {"owner-id", "ownerId"},
        {"association.subnet-id", "associationSet.subnetId"}, {"association.main", "associationSet.main"},
        {"association.route-table-association-id", "associationSet.routeTableAssociationId"},
        {"route.destination-cidr-block", "routeSet.destinationCidrBlock"}, {"route.gateway-id", "routeSet.gatewayId"},
        {"route.network-interface-id", "routeSet.networkInterfaceId"}, {"route.instance-id", "routeSet.instanceId"},
        {"route.state", "routeSet.state"},
        {NULL, NULL}};
    const char *account = net_account(ctx, e);
    char def[IDS_MAX];
    if (!account || default_vpc(ctx, account, def, e) < 0)
        return -1;
    db_t *db = service_db(ctx);
    const char *p[] = {account};
    PG_AUTO PGresult *t = db_prepared(db, e, "rtb_all",
        "SELECT t.id, t.vpc_id, t.is_main, "
        "(SELECT coalesce(json_agg(json_strip_nulls(json_build_object('destinationCidrBlock', r.destination::text, "
        "  'gatewayId', CASE WHEN r.target NOT LIKE 'eni-%' THEN r.target END, "
        "  'networkInterfaceId', CASE WHEN r.target LIKE 'eni-%' THEN r.target END, 'instanceId', r.instance_id, "
        "  'instanceOwnerId', CASE WHEN r.instance_id IS NOT NULL THEN t.account_id END, "
        "  'state', CASE WHEN r.target = 'local' OR EXISTS (SELECT 1 FROM internet_gateways g WHERE g.id = r.target "
        "  AND g.vpc_id = t.vpc_id) OR EXISTS (SELECT 1 FROM enis n WHERE n.id = r.target AND n.vpc_id = t.vpc_id) "
        "  THEN 'active' ELSE 'blackhole' END, 'origin', r.origin)) ORDER BY r.destination), '[]') FROM routes r "
        "  WHERE r.route_table_id = t.id)::text, "
        "(SELECT coalesce(json_agg(json_build_object('routeTableAssociationId', a.id, 'routeTableId', t.id, 'subnetId', "
        "  a.subnet_id, 'main', false, 'associationState', json_build_object('state', 'associated')) ORDER BY a.id), "
        "  '[]') FROM route_table_assocs a WHERE a.route_table_id = t.id)::text "
        "FROM route_tables t WHERE t.account_id = $1 ORDER BY t.id", 1, p);
    JSON_AUTO json_t *tags = t ? net_tags(db, account, e) : NULL;
    if (!tags)
        return -1;
    json_t *items = json_array();
    for (int i = 0; i < PQntuples(t); i++) {
        const char *id = PQgetvalue(t, i, 0);
        json_t *assocs = json_loads(PQgetvalue(t, i, 4), 0, NULL);
        if (PQgetvalue(t, i, 2)[0] == 't') {
            char main_assoc[IDS_MAX + 8];
            snprintf(main_assoc, sizeof main_assoc, "rtbassoc-%s", id + 4);
            json_array_insert_new(assocs, 0, json_pack("{s:s, s:s, s:b, s:{s:s}}", "routeTableAssociationId",
                                                       main_assoc, "routeTableId", id, "main", 1, "associationState",
                                                       "state", "associated"));
        }
        json_array_append_new(items, json_pack("{s:s, s:s, s:s, s:o, s:o, s:[], s:o}", "routeTableId", id, "vpcId",
                                               PQgetvalue(t, i, 1), "ownerId", account, "routeSet",
                                               json_loads(PQgetvalue(t, i, 3), 0, NULL), "associationSet", assocs,
                                               "propagatingVgwSet", "tagSet", net_tag_set(tags, id)));
    }
    return net_describe(items, body, "RouteTableId", "routeTableId", "InvalidRouteTableID.NotFound", fields, 1,
                        "routeTableSet", reply, e);
}
