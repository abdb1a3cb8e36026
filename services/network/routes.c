/* routes.c - CreateRoute, ReplaceRoute, DeleteRoute. A route's destination is an IPv4
 * block; its target one of: "local" (made with the table), an internet gateway attached
 * to the table's VPC (GatewayId), or an interface of the VPC (NetworkInterfaceId, or
 * InstanceId: the instance's primary interface, shown with both ids as EC2 does). The
 * datapath sends traffic for the destination to that interface's address (docs/network.md,
 * "Routes"). Every other target EC2 knows (NAT and transit gateways, peering, endpoints,
 * ...) is refused by name, never stored: this cloud has none of them. */
#include <stdio.h>
#include <string.h>

#include "cidr.h"
#include "ids.h"
#include "jsonutil.h"
#include "network.h"
#include "routing.h"

/* Every target parameter of CreateRoute/ReplaceRoute, and whether this cloud has it. */
static const struct {
    const char *param;
    int supported;
} targets[] = {
    {"GatewayId", 1},
    {"NetworkInterfaceId", 1},
    {"InstanceId", 1},
    {"NatGatewayId", 0},
    {"TransitGatewayId", 0},
    {"VpcPeeringConnectionId", 0},
    {"EgressOnlyInternetGatewayId", 0},
    {"LocalGatewayId", 0},
    {"CarrierGatewayId", 0},
    {"VpcEndpointId", 0},
    {"CoreNetworkArn", 0},
    {"OdbNetworkArn", 0},
};

/* The one target a request names: its parameter and value. */
static int one_target(const json_t *body, const char **param, const char **value, verr_t *e)
{
    *param = *value = NULL;
    for (size_t i = 0; i < sizeof targets / sizeof targets[0]; i++) {
        const char *v = json_str(body, targets[i].param, NULL);
        if (!v)
            continue;
        if (*param)
            return verr_set(e, 400, "InvalidParameterCombination", "A route has one target: both %s and %s given",
                            *param, targets[i].param);
        if (!targets[i].supported)
            return verr_set(e, 400, "InvalidParameterValue", "Route target %s is not supported by this cloud (it has "
                            "no such gateway); a route goes to GatewayId (an internet gateway), NetworkInterfaceId or "
                            "InstanceId", targets[i].param);
        *param = targets[i].param;
        *value = v;
    }
    if (!*param)
        return verr_set(e, 400, "InvalidParameterCombination", "A route needs a target: GatewayId, NetworkInterfaceId "
                        "or InstanceId");
    return 0;
}

/* The destination: IPv4 only (IPv6 and prefix lists are refused by name). */
static int destination(const json_t *body, const char **dest, verr_t *e)
{
    if (json_str(body, "DestinationIpv6CidrBlock", NULL) || json_str(body, "DestinationPrefixListId", NULL))
        return verr_set(e, 400, "InvalidParameterValue", "IPv6 and prefix-list destinations are not supported by "
                        "this cloud; use DestinationCidrBlock");
    cidr_t c;
    *dest = json_str(body, "DestinationCidrBlock", NULL);
    if (!*dest || cidr_parse(*dest, &c) < 0)
        return verr_set(e, 400, "InvalidParameterValue", "Value (%.64s) for parameter destinationCidrBlock is invalid",
                        *dest ? *dest : "");
    return 0;
}

/* The stored target of a request, checked against the table's VPC, inside the caller's
 * transaction: target (igw-/eni- id) and instance (NULL unless InstanceId). */
static int resolve_target(db_t *db, const json_t *body, const char *account, const char *vpc, char *target,
                          char *instance, verr_t *e)
{
    const char *param, *v;
    if (one_target(body, &param, &v, e) < 0)
        return -1;
    instance[0] = 0;
    if (!strcmp(param, "GatewayId")) {
        const char *p[] = {v, account};
        PG_AUTO PGresult *g = db_prepared(db, e, "route_gw", "SELECT coalesce(vpc_id, '') FROM internet_gateways "
                                          "WHERE id = $1 AND account_id = $2", 2, p);
        if (!g)
            return -1;
        if (!PQntuples(g) || strcmp(PQgetvalue(g, 0, 0), vpc))
            return verr_set(e, 400, PQntuples(g) ? "InvalidParameterValue" : "InvalidInternetGatewayID.NotFound",
                            "The gateway '%.64s' %s", v, PQntuples(g) ? "is not attached to the route table's VPC"
                            : "does not exist");
        snprintf(target, IDS_MAX, "%s", v);
        return 0;
    }
    PG_AUTO PGresult *n = NULL;
    const char *p[] = {v, account};
    if (!strcmp(param, "InstanceId")) {
        if (!(n = db_prepared(db, e, "route_inst", "SELECT id, vpc_id FROM enis WHERE instance_id = $1 AND "
                              "account_id = $2 AND device_index = 0", 2, p)))
            return -1;
        if (!PQntuples(n))
            return verr_set(e, 400, "InvalidInstanceID.NotFound", "The instance ID '%.64s' does not exist", v);
        snprintf(instance, IDS_MAX, "%s", v);
    } else {
        if (net_owned(db, &NET_ENI, v, account, 0, e) < 0 ||
            !(n = db_prepared(db, e, "route_eni", "SELECT id, vpc_id FROM enis WHERE id = $1", 1, p)))
            return -1;
    }
    if (strcmp(PQgetvalue(n, 0, 1), vpc))
        return verr_set(e, 400, "InvalidParameterValue", "%s '%.64s' is not in the route table's VPC %s", param, v,
                        vpc);
    snprintf(target, IDS_MAX, "%s", PQgetvalue(n, 0, 0));
    return 0;
}

static int put_route(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e, int replace)
{
    const char *account = net_account(ctx, e), *id = json_str(body, "RouteTableId", NULL), *dest;
    if (!account || destination(body, &dest, e) < 0)
        return -1;
    db_t *db = service_db(ctx);
    char vpc[IDS_MAX], target[IDS_MAX], inst[IDS_MAX];
    PG_AUTO PGresult *r = NULL;
    if (db_begin(db, e) < 0 || routing_lock_table(db, id, account, vpc, NULL, e) < 0 ||
        resolve_target(db, body, account, vpc, target, inst, e) < 0 || net_dry_run(body, e) < 0)
        goto fail;
    const char *p[] = {id, dest, target, *inst ? inst : NULL};
    if (!replace) {
        if (!(r = db_prepared(db, e, "route_add", "INSERT INTO routes (route_table_id, destination, target, "
                              "instance_id) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING", 4, p)))
            goto fail;
        if (strcmp(PQcmdTuples(r), "1")) {
            verr_set(e, 400, "RouteAlreadyExists", "The route identified by %s already exists.", dest);
            goto fail;
        }
    } else {
        /* the local route stays what it is */
        if (!(r = db_prepared(db, e, "route_replace", "UPDATE routes SET target = $3, instance_id = $4, origin = "
                              "'CreateRoute' WHERE route_table_id = $1 AND destination = $2::cidr AND target <> "
                              "'local' RETURNING 1", 4, p)))
            goto fail;
        if (!PQntuples(r)) {
            verr_set(e, 400, "InvalidRoute.NotFound", "no route with destination-cidr-block %s in route table %s "
                     "(the local route cannot be replaced)", dest, id);
            goto fail;
        }
    }
    if (net_vpc_change_commit(db, vpc, reply, e) < 0)
        goto fail;
    return 0;
fail:
    db_rollback(db);
    return -1;
}

int net_create_route(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    return put_route(ctx, body, reply, e, 0);
}

int net_replace_route(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    return put_route(ctx, body, reply, e, 1);
}

int net_delete_route(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    const char *account = net_account(ctx, e), *id = json_str(body, "RouteTableId", NULL), *dest;
    if (!account || destination(body, &dest, e) < 0)
        return -1;
    db_t *db = service_db(ctx);
    char vpc[IDS_MAX];
    const char *p[] = {id, dest};
    PG_AUTO PGresult *r = NULL;
    if (db_begin(db, e) < 0 || routing_lock_table(db, id, account, vpc, NULL, e) < 0 || net_dry_run(body, e) < 0 ||
        !(r = db_prepared(db, e, "route_del", "DELETE FROM routes WHERE route_table_id = $1 AND destination = $2::cidr "
                          "RETURNING target", 2, p)))
        goto fail;
    if (!PQntuples(r)) {
        verr_set(e, 400, "InvalidRoute.NotFound", "no route with destination-cidr-block %s in route table %s", dest, id);
        goto fail;
    }
    if (!strcmp(PQgetvalue(r, 0, 0), "local")) {
        verr_set(e, 400, "InvalidParameterValue", "cannot remove local route %s in route table %s", dest, id);
        goto fail;
    }
    if (net_vpc_change_commit(db, vpc, reply, e) < 0)
        goto fail;
    return 0;
fail:
    db_rollback(db);
    return -1;
}
