/* default_vpc.c - the account's default VPC, made on first use as on AWS: 172.31.0.0/16,
 * one default subnet (a /20, public addresses on launch) per availability zone, the
 * VPC's default security group, its main route table and an internet gateway attached
 * with a 0.0.0.0/0 route to it. Two first calls at once make one: the second waits for
 * the account's lock and then finds the first's VPC; the partial unique index
 * vpcs_one_default makes any other path fail rather than make two. */
#include <stdio.h>
#include <string.h>

#include "cidr.h"
#include "ids.h"
#include "jsonutil.h"
#include "network.h"
#include "routing.h"

static int find(db_t *db, const char *account, char *id, verr_t *e)
{
    const char *p[] = {account};
    PG_AUTO PGresult *r = db_prepared(db, e, "dv_find", "SELECT id FROM vpcs WHERE account_id = $1 AND is_default", 1, p);
    if (!r)
        return -1;
    if (!PQntuples(r))
        return 0;
    snprintf(id, IDS_MAX, "%s", PQgetvalue(r, 0, 0));
    return 1;
}

static int make(bus_ctx_t *ctx, db_t *db, const char *account, char *id, verr_t *e)
{
    ids_new("vpc", id);
    const char *p[] = {id, account};
    /* the VPC counts toward the account's quota: take the lock CreateVpc counts under */
    if (db_lock_xact(db, "vpcs", account, e) < 0)
        return -1;
    PG_AUTO PGresult *v = db_prepared(db, e, "dv_insert", "INSERT INTO vpcs (id, account_id, cidr, is_default, "
                                      "dns_hostnames) VALUES ($1, $2, '172.31.0.0/16', true, true)", 2, p);
    char sg[IDS_MAX], rtb[IDS_MAX];
    if (!v || default_group_create(db, account, id, sg, e) < 0 ||
        routing_vpc_created(db, account, id, "172.31.0.0/16", rtb, e) < 0 ||
        routing_default_internet(db, account, id, rtb, e) < 0)
        return -1;
    char zones[16][64];
    int nz = net_zones(service_of(ctx), zones, 16);
    for (int i = 0; i < nz; i++) {
        char sid[IDS_MAX], block[CIDR_STR_MAX];
        cidr_t c;
        cidr_default_subnet(i, &c);
        cidr_format(&c, block);
        ids_new("subnet", sid);
        const char *q[] = {sid, account, id, block, zones[i]};
        PG_AUTO PGresult *s = db_prepared(db, e, "dv_subnet", "INSERT INTO subnets (id, account_id, vpc_id, cidr, az, "
                                          "is_default, map_public) VALUES ($1, $2, $3, $4, $5, true, true)", 5, q);
        if (!s)
            return -1;
    }
    return 0;
}

/* network.default_vpc {} -> {"vpcId"}: the caller's default VPC (made if need be), for
 * DescribeAccountAttributes' default-vpc. */
int net_default_vpc_id(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    (void)body;
    const char *account = net_account(ctx, e);
    char id[IDS_MAX];
    if (!account || default_vpc(ctx, account, id, e) < 0)
        return -1;
    *reply = json_pack("{s:s}", "vpcId", id);
    return 0;
}

int default_vpc(bus_ctx_t *ctx, const char *account, char *id, verr_t *e)
{
    db_t *db = service_db(ctx);
    int found = find(db, account, id, e);
    if (found != 0)
        return found < 0 ? -1 : 0;
    if (db_begin(db, e) < 0 || db_lock_xact(db, "default_vpc", account, e) < 0 || (found = find(db, account, id, e)) < 0 ||
        (!found && make(ctx, db, account, id, e) < 0) || db_commit(db, e) < 0) {
        db_rollback(db);
        return -1;
    }
    return 0;
}
